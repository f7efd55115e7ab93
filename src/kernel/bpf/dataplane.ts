/**
 * The OpenTransit data plane of one node, as pinned objects in bpffs:
 *
 *   /sys/fs/bpf/opentransit/<node>/maps/<map>     every map of bpf/opentransit_abi.h (ot_counters, ot_blocklist…)
 *   /sys/fs/bpf/opentransit/<node>/progs/<prog>   ot_xdp_edge (uplink XDP), ot_tc_gre (customer veth tc egress),
 *                                                  ot_tc_host_fwd (host-side customer veth tc ingress: fast path)
 *                                                  ot_tc_uplink_in (uplink tc ingress: fast path in, after GRO)
 *
 * Every object declares every map pinned by name, and are loaded with the node's maps directory as libbpf's pin
 * root: the first load creates and pins the maps, every later load (the other object, an upgrade, an agent
 * restart) reuses them, so counters and tables survive program upgrades. A map whose type or sizes changed (a new
 * ABI version) makes the load fail loudly; removeDataplane() then starts over.
 *
 * Also here: the conversions the agent needs to fill the maps (CIDR → LPM key, IPv4 → __be32, MAC → bytes,
 * tunnel MACs) and counter totals.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KernelInputError } from '../exec.js';
import { checkMac } from '../validate.js';
import { formatIp, IpFormatError, parseAddressWithLength, parseIpv4, type IpAddress } from '../../model/ip.js';
import {
  MAPS,
  type MapSpec,
  OT_LPM_V4_OFFSET,
  OT_PROG_TC_GRE,
  OT_PROG_TC_HOST_FWD,
  OT_PROG_TC_UPLINK_IN,
  OT_PROG_XDP_EDGE,
  OT_REASON_SLOTS,
  OT_TUNNEL_MAC_0,
  OT_TUNNEL_MAC_1,
  RINGBUFS,
  type Bl4Hosts,
  type Bl4Page,
  type Config,
  type Counter,
  type Delivery,
  type GrePeer,
  type LpmKey,
  type Reason,
  type RlBucket,
  type RuleSet,
  type RuleStats,
  type Tunnel,
  type TunnelKey,
} from './abi.generated.js';
import { BPFFS, BpfMap, BpfProgram, ensureBpffs, loadObject, numPossibleCpus, perCpuStride, TypedMap, type LoadedObject, type UpdateFlag } from './index.js';
import { bpfObjectPath } from './paths.js';

/** Where every node's pins live. */
export const PIN_BASE = `${BPFFS}/opentransit`;

export interface PinLayout {
  /** <base>/<node> */
  root: string;
  /** <root>/maps: libbpf's pin root for LIBBPF_PIN_BY_NAME maps. */
  maps: string;
  /** <root>/progs */
  progs: string;
}

/** Node names become bpffs directory names: no '.', no '/', short. */
const NODE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function pinLayout(node: string, base: string = PIN_BASE): PinLayout {
  if (typeof node !== 'string' || !NODE_RE.test(node))
    throw new KernelInputError('node', `must be 1–63 characters of [a-z0-9_-] starting with a letter or digit (a bpffs name), got ${JSON.stringify(node)}`);
  const root = join(base, node);
  return { root, maps: join(root, 'maps'), progs: join(root, 'progs') };
}

export interface DataplaneMaps {
  config: TypedMap<number, Config>;
  counters: TypedMap<number, Counter>;
  blocklist: TypedMap<LpmKey, number>;
  /** The IPv4 index of ot_blocklist (blocklist4.ts): after writing `blocklist`, call syncBlocklistV4Index(maps). */
  bl4Slash16: TypedMap<number, number>;
  bl4Pages: TypedMap<number, Bl4Page>;
  bl4L2: TypedMap<number, Bl4Hosts>;
  /** Writes to prefixes and mitigation bump `generation` (DstTableMap): xdp_edge caches what they say per CPU. */
  prefixes: TypedMap<LpmKey, number>;
  mitigation: TypedMap<LpmKey, RuleSet>;
  /** ot_generation: key 0. */
  generation: TypedMap<number, bigint>;
  rlState: TypedMap<number, RlBucket>;
  ruleStats: TypedMap<number, RuleStats>;
  anycast: TypedMap<number, number>;
  grePeers: TypedMap<number, GrePeer>;
  delivery: TypedMap<number, Delivery>;
  tunnels: TypedMap<TunnelKey, Tunnel>;
  /** ot_host_local: the host netns's local table, while OT_CONFIG_F_FIB_DIRECT is on (reconcile/dataplane-fib.ts). */
  hostLocal: TypedMap<LpmKey, number>;
  /** The ot_samples ring buffer (read it with `new RingBuffer(maps.samples, …)`). */
  samples: BpfMap;
}

export interface Dataplane {
  layout: PinLayout;
  xdpEdge: BpfProgram;
  tcGre: BpfProgram;
  /** The fast path out of customer netns (tc ingress on each host-side customer veth). */
  tcHostFwd: BpfProgram;
  /** The fast path into customer netns after GRO (tc ingress on the uplink; from tc_host_fwd.o). */
  tcUplinkIn: BpfProgram;
  maps: DataplaneMaps;
  /** Closes every fd; the pins (and attachments) stay. */
  close(): void;
}

/** Invalidates every slot of ot_dst_cache: xdp_edge looks the destination up again for the next packet. */
export function bumpGeneration(generation: TypedMap<number, bigint>): void {
  generation.set(0, (generation.get(0) ?? 0n) + 1n);
}

/**
 * ot_prefixes and ot_mitigation: every write bumps ot_generation once it is done, so no CPU keeps answering from
 * a cached copy of what these maps said before (xdp_edge.c, ot_dst_tables). Two syscalls more per write.
 */
class DstTableMap<K, V> extends TypedMap<K, V> {
  constructor(
    map: BpfMap,
    spec: MapSpec<K, V>,
    private readonly generation: TypedMap<number, bigint>,
  ) {
    super(map, spec);
  }

  override set(k: K, v: V, flag?: UpdateFlag): void {
    super.set(k, v, flag);
    bumpGeneration(this.generation);
  }

  override setMany(entries: readonly (readonly [K, V])[], flag?: UpdateFlag): number {
    const n = super.setMany(entries, flag);
    bumpGeneration(this.generation);
    return n;
  }

  override delete(k: K): boolean {
    const deleted = super.delete(k);
    if (deleted) bumpGeneration(this.generation);
    return deleted;
  }
}

function wrapMaps(get: (name: string) => BpfMap): DataplaneMaps {
  const samples = get(RINGBUFS.ot_samples.name);
  if (samples.type !== RINGBUFS.ot_samples.type || samples.maxEntries !== RINGBUFS.ot_samples.bytes)
    throw new Error(`map ${samples.name} does not match the ABI's ring buffer (${RINGBUFS.ot_samples.bytes} bytes)`);
  const generation = new TypedMap(get(MAPS.ot_generation.name), MAPS.ot_generation);
  return {
    config: new TypedMap(get(MAPS.ot_config.name), MAPS.ot_config),
    counters: new TypedMap(get(MAPS.ot_counters.name), MAPS.ot_counters),
    blocklist: new TypedMap(get(MAPS.ot_blocklist.name), MAPS.ot_blocklist),
    bl4Slash16: new TypedMap(get(MAPS.ot_bl4_slash16.name), MAPS.ot_bl4_slash16),
    bl4Pages: new TypedMap(get(MAPS.ot_bl4_pages.name), MAPS.ot_bl4_pages),
    bl4L2: new TypedMap(get(MAPS.ot_bl4_l2.name), MAPS.ot_bl4_l2),
    prefixes: new DstTableMap(get(MAPS.ot_prefixes.name), MAPS.ot_prefixes, generation),
    mitigation: new DstTableMap(get(MAPS.ot_mitigation.name), MAPS.ot_mitigation, generation),
    generation,
    rlState: new TypedMap(get(MAPS.ot_rl_state.name), MAPS.ot_rl_state),
    ruleStats: new TypedMap(get(MAPS.ot_rule_stats.name), MAPS.ot_rule_stats),
    anycast: new TypedMap(get(MAPS.ot_anycast.name), MAPS.ot_anycast),
    grePeers: new TypedMap(get(MAPS.ot_gre_peers.name), MAPS.ot_gre_peers),
    delivery: new TypedMap(get(MAPS.ot_delivery.name), MAPS.ot_delivery),
    tunnels: new TypedMap(get(MAPS.ot_tunnels.name), MAPS.ot_tunnels),
    hostLocal: new TypedMap(get(MAPS.ot_host_local.name), MAPS.ot_host_local),
    samples,
  };
}

const ALL_MAP_NAMES = [...Object.values(MAPS).map((m) => m.name), ...Object.values(RINGBUFS).map((r) => r.name)];

function closeMaps(maps: DataplaneMaps): void {
  for (const m of Object.values(maps)) (m instanceof TypedMap ? m.map : (m as BpfMap)).close();
}

/** Pins `prog` at `path`, replacing an existing pin atomically (pin under a temporary name, then rename). */
function pinReplacing(prog: BpfProgram, dir: string, name: string): void {
  const tmp = join(dir, `${name}_new_${process.pid}`); // bpffs names cannot contain '.'
  rmSync(tmp, { force: true });
  prog.pin(tmp);
  renameSync(tmp, join(dir, name));
}

/** The object files of the edge data plane (default: build/bpf/<name>.o). */
export interface DataplaneObjects {
  xdpEdge?: string;
  tcGre?: string;
  tcHostFwd?: string;
}

/**
 * Loads xdp_edge.o, tc_gre.o and tc_host_fwd.o (two programs) for `node` and pins them (`bpftool prog loadall … pinmaps …`),
 * reusing the node's pinned maps when they exist. Idempotent: loading again replaces the program pins (attachments
 * keep running the programs they were given until re-attached) and keeps the maps and their contents.
 */
export function loadDataplane(o: { node: string; base?: string; objects?: DataplaneObjects }): Dataplane {
  const layout = pinLayout(o.node, o.base);
  ensureBpffs();
  mkdirSync(layout.maps, { recursive: true });
  mkdirSync(layout.progs, { recursive: true });
  const loaded: LoadedObject[] = [];
  try {
    const xdp = loadObject(o.objects?.xdpEdge ?? bpfObjectPath('xdp_edge'), { mapPinDir: layout.maps });
    loaded.push(xdp);
    const tc = loadObject(o.objects?.tcGre ?? bpfObjectPath('tc_gre'), { mapPinDir: layout.maps });
    loaded.push(tc);
    const fwd = loadObject(o.objects?.tcHostFwd ?? bpfObjectPath('tc_host_fwd'), { mapPinDir: layout.maps });
    loaded.push(fwd);
    const xdpEdge = xdp.programs.get(OT_PROG_XDP_EDGE);
    const tcGre = tc.programs.get(OT_PROG_TC_GRE);
    const tcHostFwd = fwd.programs.get(OT_PROG_TC_HOST_FWD);
    const tcUplinkIn = fwd.programs.get(OT_PROG_TC_UPLINK_IN);
    if (!xdpEdge || !tcGre || !tcHostFwd || !tcUplinkIn)
      throw new Error(`the BPF objects lack ${!xdpEdge ? OT_PROG_XDP_EDGE : !tcGre ? OT_PROG_TC_GRE : !tcHostFwd ? OT_PROG_TC_HOST_FWD : OT_PROG_TC_UPLINK_IN}`);
    for (const name of ALL_MAP_NAMES) {
      for (const other of [tc, fwd]) {
        if (!xdp.maps.has(name) || !other.maps.has(name)) throw new Error(`the BPF objects do not all define map ${name}`);
        if (xdp.maps.get(name)!.id !== other.maps.get(name)!.id) throw new Error(`map ${name} is not shared between the objects (pinning)`);
      }
    }
    pinReplacing(xdpEdge, layout.progs, OT_PROG_XDP_EDGE);
    pinReplacing(tcGre, layout.progs, OT_PROG_TC_GRE);
    pinReplacing(tcHostFwd, layout.progs, OT_PROG_TC_HOST_FWD);
    pinReplacing(tcUplinkIn, layout.progs, OT_PROG_TC_UPLINK_IN);
    const maps = wrapMaps((name) => xdp.maps.get(name)!);
    // Keep the programs and one fd per map; release the rest.
    const keptProgs = new Set([xdpEdge, tcGre, tcHostFwd, tcUplinkIn]);
    for (const p of [...xdp.programs.values(), ...tc.programs.values(), ...fwd.programs.values()]) if (!keptProgs.has(p)) p.close();
    for (const m of [...tc.maps.values(), ...fwd.maps.values()]) m.close();
    // Maps the edge does not use (.rodata, the customer router's ot_cpe_*) are closed too.
    const kept = new Set<BpfMap>(Object.values(maps).map((m) => (m instanceof TypedMap ? m.map : (m as BpfMap))));
    for (const m of xdp.maps.values()) if (!kept.has(m)) m.close();
    return {
      layout,
      xdpEdge,
      tcGre,
      tcHostFwd,
      tcUplinkIn,
      maps,
      close() {
        xdpEdge.close();
        tcGre.close();
        tcHostFwd.close();
        tcUplinkIn.close();
        closeMaps(maps);
      },
    };
  } catch (e) {
    for (const l of loaded) l.close();
    throw e;
  }
}

/**
 * Opens pinned programs (by name, under layout.progs) and maps (through `wrap`, under layout.maps) without loading
 * anything; if one is missing, closes what it had opened and throws. Shared by the edge and customer-router data
 * planes.
 */
export function openPinned<M>(
  layout: PinLayout,
  programs: readonly string[],
  wrap: (get: (name: string) => BpfMap) => M,
): { programs: BpfProgram[]; maps: M; close(): void } {
  const opened: { close(): void }[] = [];
  try {
    const progs = programs.map((name) => {
      const p = BpfProgram.fromPin(join(layout.progs, name));
      opened.push(p);
      return p;
    });
    const maps = wrap((name) => {
      const m = BpfMap.fromPin(join(layout.maps, name));
      opened.push(m);
      return m;
    });
    return {
      programs: progs,
      maps,
      close() {
        for (const x of opened) x.close();
      },
    };
  } catch (e) {
    for (const x of opened) x.close();
    throw e;
  }
}

/** Opens a node's data plane from its pins (an agent restart), without loading anything. */
export function openDataplane(o: { node: string; base?: string }): Dataplane {
  const layout = pinLayout(o.node, o.base);
  const { programs, maps, close } = openPinned(layout, [OT_PROG_XDP_EDGE, OT_PROG_TC_GRE, OT_PROG_TC_HOST_FWD, OT_PROG_TC_UPLINK_IN], wrapMaps);
  return { layout, xdpEdge: programs[0]!, tcGre: programs[1]!, tcHostFwd: programs[2]!, tcUplinkIn: programs[3]!, maps, close };
}

/**
 * Removes every pin of a node (`rm -r /sys/fs/bpf/opentransit/<node>`). Programs stay loaded while attached; maps
 * while a program or fd uses them.
 */
export function removeDataplane(o: { node: string; base?: string }): void {
  const layout = pinLayout(o.node, o.base);
  rmSync(layout.root, { recursive: true, force: true });
}

/** Whether a node has pins. */
export function dataplaneExists(o: { node: string; base?: string }): boolean {
  const layout = pinLayout(o.node, o.base);
  return existsSync(join(layout.progs, OT_PROG_XDP_EDGE));
}

// --- values for the maps ---------------------------------------------------------------------------------------

function bigintTo16(v: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(v >> 64n, 0);
  b.writeBigUInt64BE(v & 0xffffffffffffffffn, 8);
  return b;
}

/**
 * The LPM key of a prefix (`203.0.113.0/24`, `2001:db8::/32`) or an address (a /32 or /128). IPv4 is stored
 * IPv4-mapped: ::ffff:203.0.113.0/120. Host bits are cleared (the kernel ignores them in lookups, but two keys
 * for one prefix would be two entries).
 */
export function lpmKey(cidr: string, field = 'prefix'): LpmKey {
  let address: IpAddress;
  let length: number;
  try {
    const text = cidr.includes('/') ? cidr : `${cidr}/${cidr.includes(':') ? 128 : 32}`;
    ({ address, length } = parseAddressWithLength(text));
  } catch (e) {
    if (e instanceof IpFormatError) throw new KernelInputError(field, e.message);
    throw e;
  }
  const bits = address.family === 4 ? 32 : 128;
  const mask = length === 0 ? 0n : ((1n << BigInt(length)) - 1n) << BigInt(bits - length);
  const network = address.value & mask;
  const value = address.family === 4 ? (0xffffn << 32n) | network : network;
  return { prefixlen: address.family === 4 ? OT_LPM_V4_OFFSET + length : length, addr: bigintTo16(value) };
}

/** The prefix an LPM key holds, in CIDR notation (IPv4-mapped keys as IPv4). */
export function cidrOfLpmKey(k: LpmKey): string {
  const v = BigInt(`0x${Buffer.from(k.addr).toString('hex')}`);
  const isV4 = v >> 32n === 0xffffn && k.prefixlen >= OT_LPM_V4_OFFSET;
  if (isV4) return `${formatIp({ family: 4, value: v & 0xffffffffn })}/${k.prefixlen - OT_LPM_V4_OFFSET}`;
  return `${formatIp({ family: 6, value: v })}/${k.prefixlen}`;
}

/** An IPv4 address as the __be32 codecs take it (a number in host terms: 192.0.2.1 → 0xc0000201). */
export function ipv4Be32(addr: string, field = 'address'): number {
  try {
    return Number(parseIpv4(addr).value);
  } catch (e) {
    if (e instanceof IpFormatError) throw new KernelInputError(field, e.message);
    throw e;
  }
}

/** A MAC address as 6 bytes. */
export function macBytes(mac: string, field = 'mac'): Buffer {
  return Buffer.from(checkMac(field, mac).replace(/:/g, ''), 'hex');
}

/** The MAC that stands for tunnel `id` (0..2^32-1) in a customer netns's neighbour table. */
export function tunnelMac(id: number): string {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new KernelInputError('tunnel id', `must be an integer in 0..2^32-1, got ${id}`);
  const b = Buffer.alloc(6);
  b[0] = OT_TUNNEL_MAC_0;
  b[1] = OT_TUNNEL_MAC_1;
  b.writeUInt32BE(id, 2);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * A rule's total rate limit as the per-CPU token bucket of ot_rule takes it (see xdp_edge.c for why per CPU): rate
 * and burst divided by the CPU count, rounded up and at least 1, so the total admitted when traffic spreads over
 * every CPU is the configured one (plus at most one token per CPU of rounding).
 */
export function perCpuRateLimit(totalPps: number, totalBurst: number, cpus: number = numPossibleCpus()): { rate_pps: number; burst: number } {
  for (const [field, v] of [['rate', totalPps], ['burst', totalBurst]] as const)
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new KernelInputError(field, `must be an integer in 1..2^32-1, got ${v}`);
  if (!Number.isInteger(cpus) || cpus < 1) throw new KernelInputError('cpus', `must be a positive integer, got ${cpus}`);
  return { rate_pps: Math.ceil(totalPps / cpus), burst: Math.ceil(totalBurst / cpus) };
}

/** bpf_ktime_get_ns()'s clock (CLOCK_MONOTONIC), for rule expiry times. */
export function monotonicNowNs(): bigint {
  return process.hrtime.bigint();
}

export interface CounterTotal {
  account: number;
  reason: Reason;
  packets: bigint;
  bytes: bigint;
}

/**
 * Every non-zero counter, summed over CPUs: one batch read of the whole map, summed straight from the bytes
 * (decoding 16k slots × CPUs into objects first would cost more than the read).
 */
export function readCounters(counters: TypedMap<number, Counter>): CounterTotal[] {
  const out: CounterTotal[] = [];
  const map = counters.map;
  const stride = perCpuStride(map.valueSize);
  for (const [key, value] of map.dump()) {
    let packets = 0n;
    let bytes = 0n;
    for (let off = 0; off + 16 <= value.length; off += stride) {
      packets += value.readBigUInt64LE(off);
      bytes += value.readBigUInt64LE(off + 8);
    }
    if (packets === 0n && bytes === 0n) continue;
    const slot = key.readUInt32LE(0);
    out.push({ account: Math.floor(slot / OT_REASON_SLOTS), reason: (slot % OT_REASON_SLOTS) as Reason, packets, bytes });
  }
  return out;
}
