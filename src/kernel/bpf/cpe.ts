/**
 * The customer router side of anycast GRE, for the lab and end-to-end tests (DESIGN.md §6: customer routers decap
 * and encap GRE with eBPF too, there is no ip_gre here). One call sets up a router netns:
 *
 *   uplink (e.g. `uplink`)   tc ingress ot_cpe_decap: GRE from a tunnel's anycast endpoint to the router's public
 *                            address loses its outer headers and is handed to the tunnel device's ingress
 *   tunnel device per tunnel an ifb (no ip_gre/dummy on these kernels; ifb is ARP-less, so the neighbour of the
 *   (e.g. `gre0`)            tunnel peer needs no entry) holding the tunnel's interface address (10.200.0.1/31),
 *                            MTU 1476, alias `opentransit:cpe`; tc egress ot_cpe_encap adds outer IPv4 + GRE
 *                            (router public address → anycast endpoint) and sends it out of the uplink to the
 *                            next hop of the router's own route to the anycast endpoint (bpf_redirect_neigh)
 *   return path 'tunnel'     `ip rule to <prefix> lookup main` (so the LAN stays local), then
 *                            `ip rule from <prefix> lookup <table>`, with `default via <peer> dev <tunnel>` routes
 *                            in that table: lower priority wins, equal priorities share the traffic (ECMP by weight).
 *                            IPv6 prefixes (IPv6 inside the IPv4 tunnel) get the same rules and `default via fe80::1
 *                            dev <tunnel>` IPv6 routes: the tunnel device is ARP/ND-less, so any link-local gateway
 *                            resolves to the device itself, and a gateway is what lets IPv6 routes share by ECMP
 *   return path 'direct'     DSR: no rules; replies leave by the router's main table with the customer's source
 *
 * The BPF programs and maps are pinned once per pin directory and shared by every router that uses it (tunnels
 * are keyed by the router netns's cookie): the lab uses one directory per lab. setupCustomerRouterGre is
 * idempotent and converges (tunnels, addresses, routes, rules and map entries of this router that are no longer
 * wanted are removed); teardownCustomerRouterGre removes what it made.
 *
 * Requirements on the router netns: the uplink and the public address (`local`, e.g. on lo) exist, and the main
 * table routes the anycast endpoints out of the uplink. Forwarding and rp_filter are set on the tunnel devices
 * (forwarding 1, rp_filter 0: the maximum of `all` and the device applies); the LAN side's forwarding is the
 * caller's (the lab sets net.ipv4.ip_forward=1 on routers).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KernelInputError } from '../exec.js';
import { runIpOps, type IpOp } from '../ip.js';
import { addressDeleteOp, addressReplaceOp, listAddresses } from '../addresses.js';
import { linkDeleteOp, linkSetOp, listLinks, ownerAlias, type Link } from '../links.js';
import { netnsExists, setSysctls } from '../netns.js';
import { listRoutes, routeDeleteOp, routeKey, routeKeyString, routeReplaceOp, normalizeRoute, RT_PROTO_OPENTRANSIT, RT_TABLE_MAIN, type RouteSpec } from '../routes.js';
import { listRules, normalizeRule, ruleAddOp, ruleDeleteOp, sameRule, type Rule, type RuleSpec } from '../rules.js';
import { checkIfname, checkInt, checkNetnsName } from '../validate.js';
import { cidrContainsIp, cidrOf, cidrsOverlap, formatCidr, formatIp, IpFormatError, parseAddressWithLength, parseCidr, parseIpv4, type Cidr } from '../../model/ip.js';
import {
  MAPS,
  OT_PROG_CPE_DECAP,
  OT_PROG_CPE_ENCAP,
  OT_TUNNEL_F_DF,
  type Counter,
  type CpeDecap,
  type CpeDecapKey,
  type CpeEncap,
  type CpeEncapKey,
} from './abi.generated.js';
import { macBytes, openPinned, pinLayout, type PinLayout } from './dataplane.js';
import { attachTc, BPFFS, BpfMap, BpfProgram, detachTc, ensureBpffs, ifIndex, isNativeError, loadObject, netnsCookie, TypedMap, type LoadedObject } from './index.js';
import { bpfObjectPath } from './paths.js';

/** Default root of CPE pin directories (`<base>/<node>/{maps,progs}`); the lab passes its own. */
export const CPE_PIN_BASE = `${BPFFS}/opentransit-cpe`;
/** Owner tag of tunnel devices: alias `opentransit:cpe`. Only such devices are ever changed or deleted. */
export const CPE_OWNER = 'cpe';
/** The decap filter on the uplink's tc ingress: `tc filter … ingress handle 1 prio 1 bpf da`. */
export const CPE_TC_FILTER = { handle: 1, priority: 1 } as const;
export const CPE_DEFAULTS = { ttl: 64, mtu: 1476, priority: 100, weight: 1, table: 200, rulePriority: 1000 } as const;
/**
 * Gateway of the IPv6 return routes on every tunnel device. Never on the wire: the ifb is NOARP, so the kernel's
 * neighbour entry is the device's own MAC; it exists because the kernel merges IPv6 routes into one ECMP route only
 * when they have a gateway.
 */
export const CPE_TUNNEL_PEER6 = 'fe80::1';

export type CpeReturnPath = 'tunnel' | 'direct';

export interface CpeTunnelSpec {
  /** The tunnel device in the router netns: 1–15 of [A-Za-z0-9_-], e.g. `gre0`. */
  name: string;
  /** Outer source: the router's public address (already configured in the router netns, e.g. on lo). */
  local: string;
  /** Outer destination: the edge's anycast GRE endpoint. Only GRE from it to `local` is decapsulated. */
  remote: string;
  /** The router side of the tunnel's interface subnet, e.g. `10.200.0.1/31` (put on the tunnel device). */
  interfaceAddress: string;
  /** The edge side (next hop of the return routes). Default: the other address of a /31 or /30. */
  peer?: string;
  /** Outer TTL, 1..255 (default 64). */
  ttl?: number;
  /** Don't Fragment on the outer header (default true). */
  df?: boolean;
  /** Tunnel device MTU (default 1476: GRE costs 24 bytes of a 1500-byte uplink). */
  mtu?: number;
  /** Return path 'tunnel': the route metric; the lowest wins, equal ones share traffic (default 100). */
  priority?: number;
  /** Return path 'tunnel': ECMP weight 1..256 among tunnels of equal priority (default 1). */
  weight?: number;
}

export interface CustomerRouterGreSpec {
  /** The router's named netns (/run/netns/NAME). */
  netns: string;
  /** Pin directory `<base>/<node>`: one per lab (shared by its routers); [a-z0-9_-], no '.'. */
  node: string;
  /** Default CPE_PIN_BASE. */
  base?: string;
  /** The device GRE arrives on and leaves by (e.g. `uplink`). */
  uplink: string;
  /** At least one; names, (local, remote) pairs and interface subnets are unique. */
  tunnels: readonly CpeTunnelSpec[];
  /** 'tunnel' (default): replies from `prefixes` go back through the tunnels; 'direct': DSR. */
  returnPath?: CpeReturnPath;
  /** The customer's prefixes behind the router (IPv4 or IPv6 CIDRs); required for returnPath 'tunnel'. */
  prefixes?: readonly string[];
  /** Policy routing table of the tunnel return path (default 200). */
  table?: number;
  /** Priority of the `to <prefix> lookup main` rules; the `from <prefix>` rules take the next one (default 1000). */
  rulePriority?: number;
}

/** A tunnel as planned: every default applied, addresses canonical. */
export interface CpeTunnelPlan {
  name: string;
  local: string;
  remote: string;
  /** `10.200.0.1/31` */
  interfaceAddress: string;
  peer: string;
  ttl: number;
  df: boolean;
  mtu: number;
  priority: number;
  weight: number;
}

/** What setupCustomerRouterGre makes of a spec (pure; see planCustomerRouterGre). */
export interface CustomerRouterGrePlan {
  netns: string;
  node: string;
  base: string;
  uplink: string;
  tunnels: CpeTunnelPlan[];
  returnPath: CpeReturnPath;
  prefixes: string[];
  table: number;
  rulePriority: number;
  /** Return routes (table `table`, protocol RT_PROTO_OPENTRANSIT); empty for 'direct'. */
  routes: RouteSpec[];
  /** Policy rules (protocol RT_PROTO_OPENTRANSIT); empty for 'direct'. */
  rules: RuleSpec[];
}

function fail(field: string, reason: string): never {
  throw new KernelInputError(field, reason);
}

function ipv4Field(field: string, v: unknown): string {
  try {
    return formatIp(parseIpv4(v as string));
  } catch (e) {
    if (e instanceof IpFormatError) fail(field, e.message);
    throw e;
  }
}

function intField(field: string, v: unknown, dflt: number, min: number, max: number): number {
  return v === undefined ? dflt : checkInt(field, v, min, max);
}

/** The other end of a point-to-point subnet: /31 → the other address, /30 → the other host. */
function defaultPeer(field: string, address: bigint, subnet: Cidr): bigint {
  if (subnet.length === 31) return address ^ 1n;
  if (subnet.length === 30) return address === subnet.network + 1n ? subnet.network + 2n : subnet.network + 1n;
  fail(field, `is required when the interface subnet is not a /31 or /30 (it is a /${subnet.length})`);
}

function planTunnel(t: CpeTunnelSpec, i: number): CpeTunnelPlan & { subnet: Cidr } {
  const f = `tunnels[${i}]`;
  if (typeof t !== 'object' || t === null) fail(f, 'must be an object {name, local, remote, interfaceAddress, …}');
  const known = ['name', 'local', 'remote', 'interfaceAddress', 'peer', 'ttl', 'df', 'mtu', 'priority', 'weight'];
  for (const k of Object.keys(t)) if (!known.includes(k)) fail(`${f}.${k}`, `unknown field; known: ${known.join(', ')}`);
  const name = checkIfname(`${f}.name`, t.name);
  const local = ipv4Field(`${f}.local`, t.local);
  const remote = ipv4Field(`${f}.remote`, t.remote);
  if (local === remote) fail(`${f}.remote`, 'must differ from local');
  let address: bigint;
  let length: number;
  try {
    const a = parseAddressWithLength(t.interfaceAddress);
    if (a.address.family !== 4) fail(`${f}.interfaceAddress`, 'must be an IPv4 address/length');
    address = a.address.value;
    length = a.length;
  } catch (e) {
    if (e instanceof IpFormatError) fail(`${f}.interfaceAddress`, e.message);
    throw e;
  }
  if (length < 1 || length > 31) fail(`${f}.interfaceAddress`, `prefix length must be 1..31 (a tunnel has two ends), got /${length}`);
  const subnet = cidrOf({ family: 4, value: address }, length);
  const broadcast = subnet.network + (1n << BigInt(32 - length)) - 1n;
  if (length < 31 && (address === subnet.network || address === broadcast))
    fail(`${f}.interfaceAddress`, `${formatIp({ family: 4, value: address })} is the network or broadcast address of ${formatCidr(subnet)}`);
  let peer: bigint;
  if (t.peer === undefined) peer = defaultPeer(`${f}.peer`, address, subnet);
  else {
    peer = parseIpv4(ipv4Field(`${f}.peer`, t.peer)).value;
    if (!cidrContainsIp(subnet, { family: 4, value: peer })) fail(`${f}.peer`, `${t.peer} is not in the interface subnet ${formatCidr(subnet)}`);
    if (peer === address) fail(`${f}.peer`, 'must differ from the interface address');
  }
  if (t.df !== undefined && typeof t.df !== 'boolean') fail(`${f}.df`, 'must be a boolean');
  return {
    name,
    local,
    remote,
    interfaceAddress: `${formatIp({ family: 4, value: address })}/${length}`,
    peer: formatIp({ family: 4, value: peer }),
    ttl: intField(`${f}.ttl`, t.ttl, CPE_DEFAULTS.ttl, 1, 255),
    df: t.df ?? true,
    mtu: intField(`${f}.mtu`, t.mtu, CPE_DEFAULTS.mtu, 576, 65511),
    priority: intField(`${f}.priority`, t.priority, CPE_DEFAULTS.priority, 0, 0xffffffff),
    weight: intField(`${f}.weight`, t.weight, CPE_DEFAULTS.weight, 1, 256),
    subnet,
  };
}

/**
 * Checks a spec and computes everything setupCustomerRouterGre will make (pure: no kernel access). Throws
 * KernelInputError naming the field and the reason.
 */
export function planCustomerRouterGre(spec: CustomerRouterGreSpec): CustomerRouterGrePlan {
  if (typeof spec !== 'object' || spec === null) fail('spec', 'must be an object');
  const netns = checkNetnsName('netns', spec.netns);
  pinLayout(spec.node, spec.base ?? CPE_PIN_BASE); // checks node (a bpffs name)
  const uplink = checkIfname('uplink', spec.uplink);
  if (!Array.isArray(spec.tunnels) || spec.tunnels.length === 0)
    fail('tunnels', 'must list at least one tunnel (teardownCustomerRouterGre removes them all)');
  const planned = spec.tunnels.map(planTunnel);
  planned.forEach((t, i) => {
    if (t.name === uplink) fail(`tunnels[${i}].name`, `must differ from the uplink (${uplink})`);
    for (let j = 0; j < i; j++) {
      const o = planned[j]!;
      if (o.name === t.name) fail(`tunnels[${i}].name`, `repeats tunnels[${j}].name (${t.name})`);
      if (o.local === t.local && o.remote === t.remote)
        fail(`tunnels[${i}].remote`, `tunnels[${j}] already carries GRE from ${t.remote} to ${t.local} (without GRE keys the two could not be told apart)`);
      if (cidrsOverlap(o.subnet, t.subnet)) fail(`tunnels[${i}].interfaceAddress`, `overlaps tunnels[${j}].interfaceAddress (${o.interfaceAddress})`);
    }
  });
  const returnPath = spec.returnPath ?? 'tunnel';
  if (returnPath !== 'tunnel' && returnPath !== 'direct') fail('returnPath', `must be 'tunnel' or 'direct', got ${JSON.stringify(returnPath)}`);
  if (spec.prefixes !== undefined && !Array.isArray(spec.prefixes)) fail('prefixes', 'must be a list of CIDRs');
  const prefixes = (spec.prefixes ?? []).map((p, i) => {
    try {
      return formatCidr(parseCidr(p));
    } catch (e) {
      if (e instanceof IpFormatError) fail(`prefixes[${i}]`, e.message);
      throw e;
    }
  });
  if (returnPath === 'tunnel' && prefixes.length === 0) fail('prefixes', "must list the customer's prefixes when returnPath is 'tunnel'");
  const table = intField('table', spec.table, CPE_DEFAULTS.table, 1, 0xffffffff);
  if (table >= 253 && table <= 255) fail('table', `${table} is one of the kernel's own tables (default, main, local)`);
  const rulePriority = intField('rulePriority', spec.rulePriority, CPE_DEFAULTS.rulePriority, 1, 32764);

  const tunnels: CpeTunnelPlan[] = planned.map(({ subnet: _subnet, ...t }) => t);
  const routes: RouteSpec[] = [];
  const rules: RuleSpec[] = [];
  if (returnPath === 'tunnel') {
    const byPriority = new Map<number, CpeTunnelPlan[]>();
    for (const t of tunnels) byPriority.set(t.priority, [...(byPriority.get(t.priority) ?? []), t]);
    for (const [metric, group] of [...byPriority].sort((a, b) => a[0] - b[0]))
      routes.push({ dst: 'default', table, metric, nexthops: group.map((t) => ({ via: t.peer, dev: t.name, onlink: true, weight: t.weight })) });
    if (prefixes.some((p) => p.includes(':'))) {
      for (const [metric, group] of [...byPriority].sort((a, b) => a[0] - b[0]))
        routes.push({ dst: 'default', family: 6, table, metric, nexthops: group.map((t) => ({ via: CPE_TUNNEL_PEER6, dev: t.name, weight: t.weight })) });
    }
    // `to` before `from`: traffic between the customer's own addresses (the router's LAN address to a host) stays
    // on the LAN instead of following the customer's default route into a tunnel.
    for (const p of prefixes) rules.push({ priority: rulePriority, to: p, table: RT_TABLE_MAIN });
    for (const p of prefixes) rules.push({ priority: rulePriority + 1, from: p, table });
  }
  return { netns, node: spec.node, base: spec.base ?? CPE_PIN_BASE, uplink, tunnels, returnPath, prefixes, table, rulePriority, routes, rules };
}

// --- the BPF objects ---------------------------------------------------------------------------------------------

export interface CpeMaps {
  decaps: TypedMap<CpeDecapKey, CpeDecap>;
  encaps: TypedMap<CpeEncapKey, CpeEncap>;
  /** ot_counters: the CPE programs count under account 0 (readCounters in dataplane.ts sums them). */
  counters: TypedMap<number, Counter>;
}

export interface CpeDataplane {
  layout: PinLayout;
  decap: BpfProgram;
  encap: BpfProgram;
  maps: CpeMaps;
  /** Closes every fd; pins and attachments stay. */
  close(): void;
}

const CPE_MAP_NAMES = [MAPS.ot_cpe_decaps.name, MAPS.ot_cpe_encaps.name, MAPS.ot_counters.name];

function wrapCpeMaps(get: (name: string) => BpfMap): CpeMaps {
  return {
    decaps: new TypedMap(get(MAPS.ot_cpe_decaps.name), MAPS.ot_cpe_decaps),
    encaps: new TypedMap(get(MAPS.ot_cpe_encaps.name), MAPS.ot_cpe_encaps),
    counters: new TypedMap(get(MAPS.ot_counters.name), MAPS.ot_counters),
  };
}

/** Pins `prog` as `dir/name`, replacing an existing pin atomically (bpffs names cannot contain '.'). */
function pinReplacing(prog: BpfProgram, dir: string, name: string): void {
  const tmp = join(dir, `${name}_new_${process.pid}`);
  rmSync(tmp, { force: true });
  prog.pin(tmp);
  renameSync(tmp, join(dir, name));
}

/**
 * Loads build/bpf/cpe_gre.o and pins its programs under `<base>/<node>/progs` (`bpftool prog loadall … pinmaps …`),
 * reusing the maps pinned under `<base>/<node>/maps` when they exist. Loading again replaces the program pins;
 * attached filters keep running the programs they were given until set up again.
 */
export function loadCpeDataplane(o: { node: string; base?: string; object?: string }): CpeDataplane {
  const layout = pinLayout(o.node, o.base ?? CPE_PIN_BASE);
  ensureBpffs();
  mkdirSync(layout.maps, { recursive: true });
  mkdirSync(layout.progs, { recursive: true });
  let obj: LoadedObject | undefined;
  try {
    obj = loadObject(o.object ?? bpfObjectPath('cpe_gre'), { mapPinDir: layout.maps });
    const decap = obj.programs.get(OT_PROG_CPE_DECAP);
    const encap = obj.programs.get(OT_PROG_CPE_ENCAP);
    if (!decap || !encap) throw new Error(`the BPF object lacks ${decap ? OT_PROG_CPE_ENCAP : OT_PROG_CPE_DECAP}`);
    for (const name of CPE_MAP_NAMES) if (!obj.maps.has(name)) throw new Error(`the BPF object lacks map ${name}`);
    const maps = wrapCpeMaps((name) => obj!.maps.get(name)!);
    pinReplacing(decap, layout.progs, OT_PROG_CPE_DECAP);
    pinReplacing(encap, layout.progs, OT_PROG_CPE_ENCAP);
    for (const p of obj.programs.values()) if (p !== decap && p !== encap) p.close();
    for (const [name, m] of obj.maps) if (!CPE_MAP_NAMES.includes(name)) m.close();
    return {
      layout,
      decap,
      encap,
      maps,
      close() {
        decap.close();
        encap.close();
        for (const m of Object.values(maps)) m.map.close();
      },
    };
  } catch (e) {
    obj?.close();
    throw e;
  }
}

/** Opens the pinned CPE programs and maps of `<base>/<node>` without loading anything. */
export function openCpeDataplane(o: { node: string; base?: string }): CpeDataplane {
  const layout = pinLayout(o.node, o.base ?? CPE_PIN_BASE);
  const { programs, maps, close } = openPinned(layout, [OT_PROG_CPE_DECAP, OT_PROG_CPE_ENCAP], wrapCpeMaps);
  return { layout, decap: programs[0]!, encap: programs[1]!, maps, close };
}

/** Opens the pins when they exist, else loads and pins. */
export function ensureCpeDataplane(o: { node: string; base?: string }): CpeDataplane {
  const layout = pinLayout(o.node, o.base ?? CPE_PIN_BASE);
  return existsSync(join(layout.progs, OT_PROG_CPE_ENCAP)) && existsSync(join(layout.progs, OT_PROG_CPE_DECAP)) ? openCpeDataplane(o) : loadCpeDataplane(o);
}

/** Removes every pin of `<base>/<node>` (`rm -r`). Attached programs keep running until their devices go. */
export function removeCpeDataplane(o: { node: string; base?: string }): void {
  rmSync(pinLayout(o.node, o.base ?? CPE_PIN_BASE).root, { recursive: true, force: true });
}

// --- set up and tear down ------------------------------------------------------------------------------------------

export interface CpeTunnelState extends CpeTunnelPlan {
  ifindex: number;
  /** The tunnel device's MAC (decapsulated frames are addressed to it). */
  mac: string;
}

/** What setupCustomerRouterGre made. */
export interface CustomerRouterGre {
  netns: string;
  /** SO_NETNS_COOKIE of the router netns: the first half of every map key of this router. */
  netnsCookie: bigint;
  uplink: { name: string; ifindex: number };
  tunnels: CpeTunnelState[];
  returnPath: CpeReturnPath;
  prefixes: string[];
  table: number;
  /** `<base>/<node>`: the pin directory of the programs and maps. */
  pinDir: string;
}

const ipv4Be32 = (a: string) => Number(parseIpv4(a).value);
const be32Ipv4 = (n: number) => formatIp({ family: 4, value: BigInt(n >>> 0) });

function isOurTunnelDevice(l: Link): boolean {
  return l.owner === CPE_OWNER && l.kind === 'ifb';
}

/**
 * Sets up (or converges) the GRE tunnels of a customer router: see the module comment for what it makes.
 * Twin, per tunnel: `ip link add gre0 mtu 1476 type ifb; ip link set gre0 addrgenmode none; ip link set gre0 alias
 * opentransit:cpe up; sysctl net.ipv4.conf.gre0.forwarding=1 net.ipv4.conf.gre0.rp_filter=0;
 * ip addr replace 10.200.0.1/31 dev gre0; tc filter replace dev gre0 egress bpf da pinned …/ot_cpe_encap`, once:
 * `tc filter replace dev uplink ingress handle 1 prio 1 bpf da pinned …/ot_cpe_decap`, then the map entries, and for
 * returnPath 'tunnel' the rules and routes of the plan.
 */
export async function setupCustomerRouterGre(spec: CustomerRouterGreSpec): Promise<CustomerRouterGre> {
  const plan = planCustomerRouterGre(spec);
  const ns = plan.netns;
  if (!(await netnsExists(ns))) fail('netns', `no network namespace ${ns}`);
  const links = await listLinks(ns);
  const uplink = links.find((l) => l.name === plan.uplink);
  if (!uplink) fail('uplink', `no device ${plan.uplink} in netns ${ns}`);
  plan.tunnels.forEach((t, i) => {
    const l = links.find((x) => x.name === t.name);
    if (l && !isOurTunnelDevice(l)) fail(`tunnels[${i}].name`, `a device ${t.name} exists in netns ${ns} and is not an OpenTransit tunnel device (${l.kind ?? 'no kind'}, alias ${JSON.stringify(l.alias ?? '')})`);
  });
  const wanted = new Set(plan.tunnels.map((t) => t.name));

  // Devices: stale ones go (their addresses, routes and filters go with them), wanted ones are made and converged.
  const linkOps: IpOp[] = links.filter((l) => isOurTunnelDevice(l) && !wanted.has(l.name)).map((l) => linkDeleteOp(l.name));
  for (const t of plan.tunnels) {
    linkOps.push({ args: ['link', 'add', t.name, 'mtu', String(t.mtu), 'type', 'ifb'], tolerate: ['EEXIST'] });
    // No IPv6 link-local address: without one the kernel sends no MLD reports or router solicitations, which would
    // otherwise be encapsulated to the edge (and dropped there as spoofed). Set before `up`; IPv6 still routes.
    linkOps.push({ args: ['link', 'set', 'dev', t.name, 'addrgenmode', 'none'] });
    linkOps.push(linkSetOp({ name: t.name, mtu: t.mtu, alias: ownerAlias(CPE_OWNER), up: true }));
  }
  await runIpOps(ns, linkOps);
  const after = await listLinks(ns);
  const tunnels: CpeTunnelState[] = plan.tunnels.map((t) => {
    const l = after.find((x) => x.name === t.name);
    if (!l) throw new Error(`tunnel device ${t.name} vanished from netns ${ns}`);
    return { ...t, ifindex: l.ifindex, mac: l.mac };
  });
  await setSysctls(ns, Object.fromEntries(tunnels.flatMap((t) => [[`net.ipv4.conf.${t.name}.forwarding`, 1], [`net.ipv4.conf.${t.name}.rp_filter`, 0]])));

  // Map entries before the filters: a filter never runs without its tunnel (a miss would pass or drop).
  const dp = ensureCpeDataplane(plan);
  let cookie: bigint;
  try {
    cookie = netnsCookie(ns);
    writeMapEntries(dp.maps, cookie, uplink.ifindex, tunnels);
    attachTc({ ifindex: uplink.ifindex, netns: ns, direction: 'ingress', prog: dp.decap, ...CPE_TC_FILTER });
    for (const t of tunnels) attachTc({ ifindex: t.ifindex, netns: ns, direction: 'egress', prog: dp.encap, ...CPE_TC_FILTER });
  } finally {
    dp.close();
  }

  await convergeAddressesRoutesRules(plan, tunnels);
  return {
    netns: ns,
    netnsCookie: cookie,
    uplink: { name: uplink.name, ifindex: uplink.ifindex },
    tunnels,
    returnPath: plan.returnPath,
    prefixes: plan.prefixes,
    table: plan.table,
    pinDir: pinLayout(plan.node, plan.base).root,
  };
}

/** Writes this router's entries and deletes its others (entries of other routers, other cookies, stay). */
function writeMapEntries(maps: CpeMaps, cookie: bigint, uplinkIfindex: number, tunnels: readonly CpeTunnelState[]): void {
  const encaps: [CpeEncapKey, CpeEncap][] = tunnels.map((t) => [
    { netns_cookie: cookie, ifindex: t.ifindex },
    { local: ipv4Be32(t.local), remote: ipv4Be32(t.remote), uplink_ifindex: uplinkIfindex, ttl: t.ttl, flags: t.df ? OT_TUNNEL_F_DF : 0 },
  ]);
  const decaps: [CpeDecapKey, CpeDecap][] = tunnels.map((t) => [
    { netns_cookie: cookie, local: ipv4Be32(t.local), remote: ipv4Be32(t.remote) },
    { ifindex: t.ifindex, mac: macBytes(t.mac, `tunnel ${t.name} MAC`) },
  ]);
  for (const [k, v] of encaps) maps.encaps.set(k, v);
  for (const [k, v] of decaps) maps.decaps.set(k, v);
  const keepEncap = new Set(encaps.map(([k]) => k.ifindex));
  const keepDecap = new Set(decaps.map(([k]) => `${k.local}|${k.remote}`));
  for (const [k] of maps.encaps.entries()) if (k.netns_cookie === cookie && !keepEncap.has(k.ifindex)) maps.encaps.delete(k);
  for (const [k] of maps.decaps.entries()) if (k.netns_cookie === cookie && !keepDecap.has(`${k.local}|${k.remote}`)) maps.decaps.delete(k);
}

function deleteMapEntries(maps: CpeMaps, cookie: bigint): void {
  for (const [k] of maps.encaps.entries()) if (k.netns_cookie === cookie) maps.encaps.delete(k);
  for (const [k] of maps.decaps.entries()) if (k.netns_cookie === cookie) maps.decaps.delete(k);
}

/** Our rules of a router: protocol RT_PROTO_OPENTRANSIT at the plan's two priorities. */
function isOurRule(r: Rule, rulePriority: number): boolean {
  return r.protocol === RT_PROTO_OPENTRANSIT && (r.priority === rulePriority || r.priority === rulePriority + 1);
}

/** Rules with our protocol number, IPv4 and IPv6 (listRules reads one family at a time). */
async function listOurRules(ns: string): Promise<Rule[]> {
  const [v4, v6] = await Promise.all([listRules(ns, { protocol: RT_PROTO_OPENTRANSIT }), listRules(ns, { family: 6, protocol: RT_PROTO_OPENTRANSIT })]);
  return [...v4, ...v6];
}

async function convergeAddressesRoutesRules(plan: CustomerRouterGrePlan, tunnels: readonly CpeTunnelState[]): Promise<void> {
  const ns = plan.netns;
  const [addresses, routes, rules] = await Promise.all([listAddresses(ns), listRoutes(ns, { table: plan.table, protocol: RT_PROTO_OPENTRANSIT }), listOurRules(ns)]);
  const ops: IpOp[] = [];
  // Adds first, removals after: a packet always finds a rule and a route while the old ones are replaced.
  for (const t of tunnels) ops.push(addressReplaceOp({ dev: t.name, cidr: t.interfaceAddress }));
  for (const r of plan.routes) ops.push(routeReplaceOp(r));
  for (const r of plan.rules) ops.push(ruleAddOp(r));
  // Any other address on a tunnel device goes, IPv6 link-local included (see addrgenmode above).
  for (const a of addresses) {
    const t = tunnels.find((x) => x.name === a.dev);
    if (t && a.cidr !== t.interfaceAddress) ops.push(addressDeleteOp({ dev: a.dev, cidr: a.cidr }));
  }
  const wantedRoutes = new Set(plan.routes.map((r) => routeKeyString(routeKey(normalizeRoute(r)))));
  for (const r of routes) if (!wantedRoutes.has(routeKeyString(routeKey(r)))) ops.push(routeDeleteOp(routeKey(r)));
  const wantedRules = plan.rules.map(normalizeRule);
  for (const r of rules) if (isOurRule(r, plan.rulePriority) && !wantedRules.some((w) => sameRule(w, r))) ops.push(ruleDeleteOp(r));
  await runIpOps(ns, ops);
}

export interface CustomerRouterGreTeardown {
  netns: string;
  node: string;
  base?: string;
  uplink: string;
  /** As given to setup (defaults alike). */
  table?: number;
  rulePriority?: number;
}

/**
 * Removes what setupCustomerRouterGre made in a router netns: the decap filter on the uplink, every tunnel device
 * (alias opentransit:cpe), our rules at the two priorities and our routes in the table, and this router's map
 * entries. The pins stay (other routers share them; removeCpeDataplane removes them). Idempotent; a netns that
 * is gone already took everything but its map entries with it, and those are keyed by a cookie that is never
 * reused (removeCpeDataplane drops them).
 */
export async function teardownCustomerRouterGre(o: CustomerRouterGreTeardown): Promise<void> {
  const ns = checkNetnsName('netns', o.netns);
  const layout = pinLayout(o.node, o.base ?? CPE_PIN_BASE);
  const uplinkName = checkIfname('uplink', o.uplink);
  const table = intField('table', o.table, CPE_DEFAULTS.table, 1, 0xffffffff);
  const rulePriority = intField('rulePriority', o.rulePriority, CPE_DEFAULTS.rulePriority, 1, 32764);
  if (!(await netnsExists(ns))) return;
  if (existsSync(join(layout.progs, OT_PROG_CPE_DECAP))) {
    const dp = openCpeDataplane({ node: o.node, ...(o.base !== undefined ? { base: o.base } : {}) });
    try {
      deleteMapEntries(dp.maps, netnsCookie(ns));
    } finally {
      dp.close();
    }
  }
  try {
    detachTc({ ifindex: ifIndex(uplinkName, ns), netns: ns, direction: 'ingress', ...CPE_TC_FILTER });
  } catch (e) {
    if (!(isNativeError(e) && (e.code === 'ENODEV' || e.code === 'ENOENT'))) throw e;
  }
  const [links, routes, rules] = await Promise.all([listLinks(ns), listRoutes(ns, { table, protocol: RT_PROTO_OPENTRANSIT }), listOurRules(ns)]);
  const ops: IpOp[] = [];
  for (const r of rules) if (isOurRule(r, rulePriority)) ops.push(ruleDeleteOp(r));
  for (const r of routes) ops.push(routeDeleteOp(routeKey(r)));
  for (const l of links) if (isOurTunnelDevice(l)) ops.push(linkDeleteOp(l.name));
  await runIpOps(ns, ops);
}

/** The tunnels of a router as the maps hold them (for status output and tests). */
export function readCpeTunnels(maps: CpeMaps, cookie: bigint): { ifindex: number; local: string; remote: string; ttl: number; df: boolean; uplinkIfindex: number }[] {
  return maps.encaps
    .entries()
    .filter(([k]) => k.netns_cookie === cookie)
    .map(([k, v]) => ({ ifindex: k.ifindex, local: be32Ipv4(v.local), remote: be32Ipv4(v.remote), ttl: v.ttl, df: (v.flags & OT_TUNNEL_F_DF) !== 0, uplinkIfindex: v.uplink_ifindex }))
    .sort((a, b) => a.ifindex - b.ifindex);
}
