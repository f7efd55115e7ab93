/**
 * Routes, including multipath with onlink nexthops and weights, per-route MTU, and `unreachable` routes in a
 * policy table (DESIGN.md §2). Ownership: every route we write carries protocol RT_PROTO_OPENTRANSIT; prune lists
 * with `{ protocol: RT_PROTO_OPENTRANSIT }` and never touches another protocol's routes.
 *
 * A route's identity in the kernel (what `replace` replaces and `delete` deletes) is
 * (family, table, dst, metric) — NOT the nexthops. Changing a route's metric therefore adds a second route:
 * the reconciler must delete the old-metric one (`routeKey` gives the identity to diff on).
 */
import { KernelInputError } from './exec.js';
import { ipJsonBatch, runIpOps, type IpOp } from './ip.js';
import type { NetnsRef } from './netns.js';
import { checkIfname, checkInt, checkIp, checkRouteDst, familyOf, type IpFamily } from './validate.js';

/**
 * Our route protocol number (rtm_protocol), also used on policy rules and neighbour entries. 247 (0xf7) is not
 * in iproute2's rt_protos list nor used by the routing daemons we know (BIRD 12, FRR 186–196).
 */
export const RT_PROTO_OPENTRANSIT = 247;
export const RT_TABLE_MAIN = 254;
export const RT_TABLE_LOCAL = 255;

export type RouteType = 'unicast' | 'unreachable' | 'blackhole' | 'prohibit' | 'local' | 'broadcast' | 'throw' | 'multicast' | 'anycast' | 'nat';
const ROUTE_TYPES: Record<number, RouteType> = {
  1: 'unicast', 2: 'local', 3: 'broadcast', 4: 'anycast', 5: 'multicast', 6: 'blackhole', 7: 'unreachable', 8: 'prohibit', 9: 'throw', 10: 'nat',
};
/** Types we write (the others are listed but never created). */
const WRITABLE_TYPES = new Set<RouteType>(['unicast', 'unreachable', 'blackhole', 'prohibit']);

export interface Nexthop {
  /** Gateway; omit for a device route. */
  via?: string;
  dev: string;
  /** 1..256; only meaningful with several nexthops (default 1). */
  weight?: number;
  /**
   * Gateway need not be in a connected subnet (required for our tunnel peers, DESIGN.md §2). Gotcha: the kernel
   * checks an onlink gateway against the local table, which does not exist in a namespace without any address —
   * there the route fails with "Nexthop has invalid gateway" until e.g. `lo` is up.
   */
  onlink?: boolean;
}

export interface RouteSpec {
  /** `addr/len` with host bits zero, or 'default'. */
  dst: string;
  /** Needed only to tell an IPv6 'default' from IPv4; otherwise taken from dst. Default 4. */
  family?: IpFamily;
  /** Default main (254). */
  table?: number;
  /** Default 'unicast'. Non-unicast types take no nexthops. */
  type?: RouteType;
  /** Default 0 (IPv4) / 1024 (IPv6), what the kernel uses when none is given. */
  metric?: number;
  /** Default RT_PROTO_OPENTRANSIT. */
  protocol?: number;
  /** Path MTU for the route (1476 inside customer netns: GRE costs 24 bytes). */
  mtu?: number;
  /** Preferred source address. */
  src?: string;
  /** 'link' for a device route that should not need a gateway; default as the kernel decides. */
  scope?: 'global' | 'link' | 'host';
  nexthops?: readonly Nexthop[];
}

/** A route in canonical form: what `normalizeRoute` makes of a spec, and what `listRoutes` reads back. */
export interface Route {
  family: IpFamily;
  /** Always `addr/len` (default is 0.0.0.0/0 or ::/0). */
  dst: string;
  table: number;
  type: RouteType;
  metric: number;
  protocol: number;
  mtu?: number;
  src?: string;
  /** Numeric scope (0 global, 253 link, 254 host). */
  scope: number;
  /** Sorted by (via, dev); weight and onlink always present. Empty for unreachable/blackhole/prohibit. */
  nexthops: CanonicalNexthop[];
}

export interface CanonicalNexthop {
  via?: string;
  dev: string;
  weight: number;
  onlink: boolean;
}

/** The identity of a route in the kernel: what replace overwrites and delete removes. */
export interface RouteKey {
  family: IpFamily;
  dst: string;
  table: number;
  metric: number;
  /** Deletion is restricted to this protocol (default RT_PROTO_OPENTRANSIT) — never removes another's route. */
  protocol?: number;
  type?: RouteType;
}

const SCOPES = { global: 0, link: 253, host: 254 } as const;

function canonicalDst(dst: string, family: IpFamily): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
}

/** Checks a spec and puts it in the same canonical form as routes read back, so the two compare with `sameRoute`. */
export function normalizeRoute(spec: RouteSpec): Route {
  const dstIn = checkRouteDst('dst', spec.dst);
  const family: IpFamily = dstIn === 'default' ? (spec.family ?? 4) : familyOf(dstIn.split('/')[0]!);
  if (spec.family !== undefined && spec.family !== family) throw new KernelInputError('family', `IPv${spec.family} does not match dst ${spec.dst}`);
  const type = spec.type ?? 'unicast';
  if (!WRITABLE_TYPES.has(type)) throw new KernelInputError('type', `must be one of ${[...WRITABLE_TYPES].join(', ')}, got ${type}`);
  const nhs = spec.nexthops ?? [];
  if (type === 'unicast' && nhs.length === 0) throw new KernelInputError('nexthops', 'a unicast route needs at least one nexthop');
  if (type !== 'unicast' && nhs.length > 0) throw new KernelInputError('nexthops', `an ${type} route takes no nexthops`);
  const nexthops = nhs.map((nh, i) => {
    const out: CanonicalNexthop = {
      dev: checkIfname(`nexthops[${i}].dev`, nh.dev),
      weight: nhs.length === 1 ? 1 : checkInt(`nexthops[${i}].weight`, nh.weight ?? 1, 1, 256),
      onlink: nh.onlink ?? false,
    };
    if (nh.via !== undefined) {
      out.via = checkIp(`nexthops[${i}].via`, nh.via);
      if (familyOf(out.via) !== family) throw new KernelInputError(`nexthops[${i}].via`, `is not IPv${family} like dst`);
    } else if (out.onlink) throw new KernelInputError(`nexthops[${i}].onlink`, 'needs a gateway (via)');
    return out;
  });
  nexthops.sort(compareNexthops);
  const route: Route = {
    family,
    dst: canonicalDst(dstIn, family),
    table: checkInt('table', spec.table ?? RT_TABLE_MAIN, 1, 0xffffffff),
    type,
    metric: checkInt('metric', spec.metric ?? (family === 4 ? 0 : 1024), 0, 0xffffffff),
    protocol: checkInt('protocol', spec.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255),
    scope: spec.scope !== undefined ? SCOPES[spec.scope] : defaultScope(family, type, nexthops),
    nexthops,
  };
  if (spec.mtu !== undefined) route.mtu = checkInt('mtu', spec.mtu, 68, 65535);
  if (spec.src !== undefined) route.src = checkIp('src', spec.src);
  return route;
}

/** The kernel's default scope: link for an IPv4 device route without a gateway, global otherwise (IPv6 has none). */
function defaultScope(family: IpFamily, type: RouteType, nhs: readonly CanonicalNexthop[]): number {
  return family === 4 && type === 'unicast' && nhs.length > 0 && nhs.every((n) => n.via === undefined) ? SCOPES.link : SCOPES.global;
}

function compareNexthops(a: CanonicalNexthop, b: CanonicalNexthop): number {
  return (a.via ?? '').localeCompare(b.via ?? '') || a.dev.localeCompare(b.dev);
}

export function routeKey(r: Route): RouteKey {
  return { family: r.family, dst: r.dst, table: r.table, metric: r.metric, protocol: r.protocol, type: r.type };
}

/** A stable string for maps/sets keyed by route identity. */
export function routeKeyString(k: RouteKey): string {
  return `${k.family}|${k.table}|${k.dst}|${k.metric}`;
}

/** True when the kernel's route `actual` is what `wanted` (canonical) asks for. */
export function sameRoute(wanted: Route, actual: Route): boolean {
  return JSON.stringify(canonicalJson(wanted)) === JSON.stringify(canonicalJson(actual));
}

function canonicalJson(r: Route): unknown[] {
  return [r.family, r.dst, r.table, r.type, r.metric, r.protocol, r.mtu ?? null, r.src ?? null, r.scope,
    r.nexthops.map((n) => [n.via ?? null, n.dev, n.weight, n.onlink])];
}

/**
 * Twin: `ip route replace [TYPE] DST table T metric M proto P [mtu N] [src S] [scope S]
 *   via GW dev D [onlink] | nexthop via GW dev D [onlink] weight W …` (idempotent).
 */
export function routeReplaceOp(spec: RouteSpec): IpOp {
  const r = normalizeRoute(spec);
  const args = ['route', 'replace'];
  if (r.type !== 'unicast') args.push(r.type);
  args.push(r.dst, 'table', String(r.table), 'metric', String(r.metric), 'proto', String(r.protocol));
  if (r.mtu !== undefined) args.push('mtu', String(r.mtu));
  if (r.src !== undefined) args.push('src', r.src);
  if (spec.scope !== undefined) args.push('scope', spec.scope);
  const nhArgs = (nh: CanonicalNexthop) => [...(nh.via ? ['via', nh.via] : []), 'dev', nh.dev, ...(nh.onlink ? ['onlink'] : [])];
  if (r.nexthops.length === 1) args.push(...nhArgs(r.nexthops[0]!));
  else for (const nh of r.nexthops) args.push('nexthop', ...nhArgs(nh), 'weight', String(nh.weight));
  return { args };
}

/**
 * Twin: `ip route delete [TYPE] DST table T metric M proto P`, succeeding when absent. The protocol is part of
 * the match, so a route of another protocol with the same key is never deleted. Note: for IPv4 the kernel treats
 * metric 0 as "any metric" and deletes the lowest one.
 */
export function routeDeleteOp(k: RouteKey): IpOp {
  const dst = canonicalDst(checkRouteDst('dst', k.dst), k.family);
  const args = ['route', 'delete'];
  if (k.type && k.type !== 'unicast') args.push(k.type);
  args.push(dst, 'table', String(checkInt('table', k.table, 1, 0xffffffff)), 'metric', String(checkInt('metric', k.metric, 0, 0xffffffff)),
    'proto', String(checkInt('protocol', k.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255)));
  return { args, tolerate: ['ENOENT'] };
}

/** Twin: `ip -n NS route replace …` for each, in one spawn. */
export async function replaceRoutes(ns: NetnsRef, specs: readonly RouteSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(routeReplaceOp));
}

/** Twin: `ip -n NS route delete …` for each, in one spawn (delete-if-present). */
export async function deleteRoutesIfPresent(ns: NetnsRef, keys: readonly RouteKey[]): Promise<void> {
  await runIpOps(ns, keys.map(routeDeleteOp));
}

interface RawNexthop {
  gateway?: string;
  dev?: string;
  weight?: number;
  flags?: string[];
}
interface RawRoute extends RawNexthop {
  type?: string;
  dst: string;
  table?: string;
  protocol?: string;
  metric?: number;
  scope?: string;
  prefsrc?: string;
  metrics?: Record<string, number>[];
  nexthops?: RawNexthop[];
}

/** Parses `ip -N -j route show` output of ONE family (the JSON does not say which). */
export function parseRoutes(raw: unknown, family: IpFamily): Route[] {
  return (raw as RawRoute[]).map((r) => {
    const type = r.type === undefined ? 'unicast' : (ROUTE_TYPES[Number(r.type)] ?? 'unicast');
    const nh = (n: RawNexthop, weight: number): CanonicalNexthop => {
      const out: CanonicalNexthop = { dev: n.dev ?? '', weight, onlink: n.flags?.includes('onlink') ?? false };
      if (n.gateway !== undefined) out.via = n.gateway;
      return out;
    };
    let nexthops: CanonicalNexthop[] = [];
    if (r.nexthops) nexthops = r.nexthops.map((n) => nh(n, n.weight ?? 1));
    else if (type === 'unicast' && (r.dev || r.gateway)) nexthops = [nh(r, 1)];
    nexthops.sort(compareNexthops);
    const route: Route = {
      family,
      dst: canonicalDst(r.dst, family),
      table: r.table === undefined ? RT_TABLE_MAIN : Number(r.table),
      type,
      metric: r.metric ?? 0,
      protocol: r.protocol === undefined ? 0 : Number(r.protocol),
      scope: r.scope === undefined ? 0 : Number(r.scope),
      nexthops,
    };
    const mtu = r.metrics?.find((m) => m.mtu !== undefined)?.mtu;
    if (mtu !== undefined) route.mtu = mtu;
    if (r.prefsrc !== undefined) route.src = r.prefsrc;
    return route;
  });
}

export interface RouteFilter {
  table?: number;
  protocol?: number;
  family?: IpFamily;
}

/** The two show commands (one per family) that `listRoutes` and `readIpState` batch. `root ::/0` selects IPv6. */
export const ROUTE_SHOW_COMMANDS: readonly (readonly string[])[] = [
  ['route', 'show', 'table', 'all', 'root', '0.0.0.0/0'],
  ['route', 'show', 'table', 'all', 'root', '::/0'],
];

export function filterRoutes(routes: readonly Route[], f: RouteFilter): Route[] {
  return routes.filter((r) => (f.table === undefined || r.table === f.table) && (f.protocol === undefined || r.protocol === f.protocol) && (f.family === undefined || r.family === f.family));
}

/**
 * Twin: `ip -N -j route show table all root 0.0.0.0/0` + `… root ::/0` (one spawn), filtered by table / protocol /
 * family in code (iproute2 drops the filtered field from its output and cannot show both families for one table).
 */
export async function listRoutes(ns: NetnsRef, filter: RouteFilter = {}): Promise<Route[]> {
  const [v4, v6] = await ipJsonBatch(ns, ROUTE_SHOW_COMMANDS);
  return filterRoutes([...parseRoutes(v4, 4), ...parseRoutes(v6, 6)], filter);
}
