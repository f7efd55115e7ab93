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
import { netlinkRead, runIpOps, type IpOp } from './ip.js';
import { LINK_DUMP_BODY, linkNames } from './links.js';
import { AF_UNSPEC, attr, familyCode, getU32, headerTable, ipBytes, ipText, nested, NLM_F, parseAttrs, payload, RTM, rtmsg, u32 } from './netlink/codec.js';
import { rtnlDump } from './netlink/socket.js';
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
const ROUTE_TYPE_CODES = Object.fromEntries(Object.entries(ROUTE_TYPES).map(([k, v]) => [v, Number(k)])) as Record<RouteType, number>;
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
  return {
    args,
    nl: { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.REPLACE, devs: [...new Set(r.nexthops.map((n) => n.dev))], build: (ctx) => encodeRoute(r, ctx.ifindex) },
  };
}

// rtnetlink route attributes (linux/rtnetlink.h).
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, PRIORITY: 6, PREFSRC: 7, METRICS: 8, MULTIPATH: 9, TABLE: 15 } as const;
const RTAX_MTU = 2;
const RTNH_F_ONLINK = 4;
const RT_SCOPE_NOWHERE = 255;

const dstParts = (dst: string) => {
  const [addr, len] = dst.split('/') as [string, string];
  return { addr, len: Number(len) };
};

/** RTM_NEWROUTE body for a canonical route: iproute2's encoding (one path: RTA_OIF/RTA_GATEWAY; several: RTA_MULTIPATH). */
export function encodeRoute(r: Route, ifindex: (dev: string) => number): Buffer {
  const { addr, len } = dstParts(r.dst);
  const single = r.nexthops.length === 1 ? r.nexthops[0]! : undefined;
  const attrs = [attr(RTA.TABLE, u32(r.table))];
  if (len > 0) attrs.push(attr(RTA.DST, ipBytes(addr)));
  attrs.push(attr(RTA.PRIORITY, u32(r.metric)));
  if (r.src !== undefined) attrs.push(attr(RTA.PREFSRC, ipBytes(r.src)));
  if (r.mtu !== undefined) attrs.push(nested(RTA.METRICS, [attr(RTAX_MTU, u32(r.mtu))]));
  if (single) {
    if (single.via !== undefined) attrs.push(attr(RTA.GATEWAY, ipBytes(single.via)));
    attrs.push(attr(RTA.OIF, u32(ifindex(single.dev))));
  } else if (r.nexthops.length > 1) {
    // struct rtnexthop {len u16, flags u8, hops u8 (= weight - 1), ifindex s32} + its own attributes (the gateway).
    const hops = r.nexthops.map((nh) => {
      const gw = nh.via !== undefined ? attr(RTA.GATEWAY, ipBytes(nh.via)) : Buffer.alloc(0);
      const h = Buffer.alloc(8);
      h.writeUInt16LE(8 + gw.length, 0);
      h.writeUInt8(nh.onlink ? RTNH_F_ONLINK : 0, 2);
      h.writeUInt8(nh.weight - 1, 3);
      h.writeInt32LE(ifindex(nh.dev), 4);
      return Buffer.concat([h, gw]);
    });
    attrs.push(attr(RTA.MULTIPATH, Buffer.concat(hops)));
  }
  const head = rtmsg({
    family: familyCode(r.family), dstLen: len, table: headerTable(r.table), protocol: r.protocol, scope: r.scope,
    type: ROUTE_TYPE_CODES[r.type], flags: single?.onlink ? RTNH_F_ONLINK : 0,
  });
  return payload(head, attrs);
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
  const table = checkInt('table', k.table, 1, 0xffffffff);
  const metric = checkInt('metric', k.metric, 0, 0xffffffff);
  const protocol = checkInt('protocol', k.protocol ?? RT_PROTO_OPENTRANSIT, 0, 255);
  args.push(dst, 'table', String(table), 'metric', String(metric), 'proto', String(protocol));
  const { addr, len } = dstParts(dst);
  // Scope "nowhere" and type 0 match any (as iproute2 sends them for a delete); the protocol must match.
  const head = rtmsg({ family: familyCode(k.family), dstLen: len, table: headerTable(table), protocol, scope: RT_SCOPE_NOWHERE,
    type: k.type && k.type !== 'unicast' ? ROUTE_TYPE_CODES[k.type] : 0 });
  const body = payload(head, [attr(RTA.TABLE, u32(table)), ...(len > 0 ? [attr(RTA.DST, ipBytes(addr))] : []), attr(RTA.PRIORITY, u32(metric))]);
  return { args, tolerate: ['ENOENT'], nl: { type: RTM.DELROUTE, flags: 0, build: () => body } };
}

/** Twin: `ip -n NS route replace …` for each (in-process requests, in order). */
export async function replaceRoutes(ns: NetnsRef, specs: readonly RouteSpec[]): Promise<void> {
  await runIpOps(ns, specs.map(routeReplaceOp));
}

/** Twin: `ip -n NS route delete …` for each (delete-if-present). */
export async function deleteRoutesIfPresent(ns: NetnsRef, keys: readonly RouteKey[]): Promise<void> {
  await runIpOps(ns, keys.map(routeDeleteOp));
}

/** The entries of an RTA_MULTIPATH attribute: struct rtnexthop {len u16, flags u8, hops u8 (= weight - 1), ifindex s32}, then each hop's own attributes. */
function rtnexthops(mp: Buffer): { ifindex: number; flags: number; weight: number; attrs: Map<number, Buffer> }[] {
  const out = [];
  for (let o = 0; o + 8 <= mp.length; ) {
    const len = mp.readUInt16LE(o);
    if (len < 8) break;
    out.push({ ifindex: mp.readInt32LE(o + 4), flags: mp.readUInt8(o + 2), weight: mp.readUInt8(o + 3) + 1, attrs: parseAttrs(mp.subarray(o, o + len), 8) });
    o += (len + 3) & ~3;
  }
  return out;
}

/** A route message's table: RTA_TABLE holds all 32 bits, the header's byte only those below 256. */
const routeTable = (body: Buffer, a: ReadonlyMap<number, Buffer>): number => getU32(a.get(RTA.TABLE)) ?? body.readUInt8(4);

/**
 * Where a route message (RTM_NEWROUTE/DELROUTE body) belongs and points, without decoding the rest: its table,
 * its protocol (whose it is), and every device it points into (RTA_OIF, or each hop of a multipath route).
 * kernel/netlink/watch.ts reads notifications with it.
 */
export function routeWhere(body: Buffer): { table: number; protocol: number; oifs: number[] } {
  const a = parseAttrs(body, 12);
  const oif = getU32(a.get(RTA.OIF));
  const mp = a.get(RTA.MULTIPATH);
  const oifs = [...(oif !== undefined ? [oif] : []), ...(mp ? rtnexthops(mp).map((h) => h.ifindex) : [])];
  return { table: routeTable(body, a), protocol: body.readUInt8(5), oifs };
}

/**
 * Decodes RTM_NEWROUTE message bodies (rtmsg + attributes) of IPv4 and IPv6 into canonical routes, as
 * `ip -N -j route show table all` shows them; `names` maps ifindex → device name.
 */
export function decodeRoutes(bodies: readonly Buffer[], names: ReadonlyMap<number, string>): Route[] {
  const out: Route[] = [];
  const devName = (i: number) => names.get(i) ?? `if${i}`;
  for (const body of bodies) {
    const fam = body.readUInt8(0);
    if (fam !== 2 && fam !== 10) continue;
    const family: IpFamily = fam === 2 ? 4 : 6;
    const a = parseAttrs(body, 12);
    const type = ROUTE_TYPES[body.readUInt8(7)] ?? 'unicast';
    const dstLen = body.readUInt8(1);
    const dstAddr = ipText(a.get(RTA.DST));
    let nexthops: CanonicalNexthop[] = [];
    const mp = a.get(RTA.MULTIPATH);
    if (mp) {
      for (const hop of rtnexthops(mp)) {
        const gw = ipText(hop.attrs.get(RTA.GATEWAY));
        const nh: CanonicalNexthop = { dev: devName(hop.ifindex), weight: hop.weight, onlink: (hop.flags & RTNH_F_ONLINK) !== 0 };
        if (gw !== undefined) nh.via = gw;
        nexthops.push(nh);
      }
    } else if (type === 'unicast' && (a.has(RTA.OIF) || a.has(RTA.GATEWAY))) {
      const oif = getU32(a.get(RTA.OIF));
      const nh: CanonicalNexthop = { dev: oif === undefined ? '' : devName(oif), weight: 1, onlink: (body.readUInt32LE(8) & RTNH_F_ONLINK) !== 0 };
      const gw = ipText(a.get(RTA.GATEWAY));
      if (gw !== undefined) nh.via = gw;
      nexthops = [nh];
    }
    nexthops.sort(compareNexthops);
    const route: Route = {
      family,
      dst: dstAddr === undefined ? canonicalDst('default', family) : `${dstAddr}/${dstLen}`,
      table: routeTable(body, a),
      type,
      metric: getU32(a.get(RTA.PRIORITY)) ?? 0,
      protocol: body.readUInt8(5),
      scope: body.readUInt8(6),
      nexthops,
    };
    const metrics = a.get(RTA.METRICS);
    const mtu = metrics ? getU32(parseAttrs(metrics).get(RTAX_MTU)) : undefined;
    if (mtu !== undefined) route.mtu = mtu;
    const src = ipText(a.get(RTA.PREFSRC));
    if (src !== undefined) route.src = src;
    out.push(route);
  }
  return out;
}

/** The request body of a route dump: every table, both families (and multicast families, which decodeRoutes skips). */
export const ROUTE_DUMP_BODY = rtmsg({ family: AF_UNSPEC });

export interface RouteFilter {
  table?: number;
  protocol?: number;
  family?: IpFamily;
}

export function filterRoutes(routes: readonly Route[], f: RouteFilter): Route[] {
  return routes.filter((r) => (f.table === undefined || r.table === f.table) && (f.protocol === undefined || r.protocol === f.protocol) && (f.family === undefined || r.family === f.family));
}

/**
 * Twin: `ip -N -j route show table all` for both families (one in-process dump, plus a link dump for device
 * names), filtered by table / protocol / family in code (the kernel filters dumps only on strict-checking sockets).
 */
export async function listRoutes(ns: NetnsRef, filter: RouteFilter = {}): Promise<Route[]> {
  return netlinkRead(ns, ['route', 'show', 'table', 'all'], async () => {
    const links = await rtnlDump(ns, RTM.GETLINK, LINK_DUMP_BODY, RTM.NEWLINK);
    const routes = await rtnlDump(ns, RTM.GETROUTE, ROUTE_DUMP_BODY, RTM.NEWROUTE);
    return filterRoutes(decodeRoutes(routes, linkNames(links)), filter);
  });
}
