/**
 * Keeps the node's eBPF data plane equal to the desired state (desired/dataplane.ts): the pinned programs and
 * maps, XDP on the uplink, tc on every customer veth, and every map entry.
 *
 *   open()            load the objects, or reopen the pins an earlier run left (an agent restart changes nothing)
 *   syncGlobal()      ot_anycast, ot_blocklist (+ its IPv4 index ot_bl4_*), ot_mitigation, ot_config (diff, prune
 *                     after sync); then XDP on the uplink
 *   syncHostRouting() reads the host netns's rules and routes: the fast path's shortcuts in ot_config.flags
 *                     (OT_CONFIG_F_FIB_DIRECT*, OT_CONFIG_F_SRC_UNICAST: dataplane-fib.ts) and ot_host_local (async:
 *                     every data-plane pass runs it)
 *   applyAccount()    tc on edge0 of the account's netns; its ot_prefixes, ot_delivery, ot_tunnels, ot_gre_peers
 *                     entries (point lookups: an account's pass costs O(its entries), not O(all entries))
 *   pruneAccounts()   what no account wants any more (full dumps, only from a complete desired state)
 *   removeAccount()   every entry of a deleted account, then its number is free again
 *
 * Every call here is synchronous (the addon's map, attach and query calls are), so a pass is never interleaved
 * with another: a prune never deletes what an account's pass wrote for a newer state between its dump and its
 * deletes. Entries are compared before they are written; nothing right is rewritten (no packet notices a resync).
 *
 * Pins: /sys/fs/bpf/opentransit/<node>/{maps,progs}. Which object files the pinned programs came from is kept in
 * the data dir (dataplane-objects.json, by SHA-256): same files → the pins are reused and the attached programs stay
 * (same program ids); new files (an upgrade) → loaded again, pins replaced, maps kept, and every attachment
 * replaced atomically (XDP_FLAGS_REPLACE, tc filter replace) — never detached first.
 *
 * Dry run (`opentransit plan`, `dryRun: true`): the same code runs, but every write (load, pin, attach, map update
 * or delete, the blocklist index, numbers and records saved in the data dir) goes through planEffects() from
 * dataplane-effects.ts, which only lets the change lines describe it. Maps then read as the pinned ones plus what
 * the pass would have written so far; on a node where nothing is loaded yet, as empty maps.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccountDocument } from '../../model/schemas.js';
import type { CounterItem, NodeCounters, RuleCounters } from '../../model/counters.js';
import {
  OT_CONFIG_F_FAST_PATH,
  OT_PROG_TC_GRE,
  OT_PROG_TC_HOST_FWD,
  OT_PROG_TC_UPLINK_IN,
  OT_PROG_XDP_EDGE,
  OT_REASON_SLOTS,
  OT_RULES_PER_PREFIX,
  REASON_NAMES,
  REASON_VERDICT,
  VERDICT_NAMES,
  type Config,
  type Rule,
  type RuleSet,
} from '../../kernel/bpf/abi.generated.js';
import { BpfProgram, numPossibleCpus, queryXdp, type TcDirection, type XdpMode } from '../../kernel/bpf/index.js';
import {
  cidrOfLpmKey,
  dataplaneExists,
  ipv4Be32,
  lpmKey,
  macBytes,
  openDataplane,
  pinLayout,
  readCounters,
  type Dataplane,
} from '../../kernel/bpf/dataplane.js';
import { syncBlocklistV4Index } from '../../kernel/bpf/blocklist4.js';
import { bpfObjectPath } from '../../kernel/bpf/paths.js';
import { formatIp } from '../../model/ip.js';
import { readLinkFeatures } from '../../kernel/links.js';
import { listRoutes } from '../../kernel/routes.js';
import { listRuleDetails } from '../../kernel/rules.js';
import { FIB_BITS, fibDirectVerdict, localOverlap, RTN_OF, RULE_BITS, SHORTCUT_BITS, type FibDirectVerdict } from './dataplane-fib.js';
import { dataplanePlan, type AccountDataplane, type DataplanePlan, type DataplanePlanInput, type GlobalDataplane } from '../desired/dataplane.js';
import { CUSTOMER_VETH, HOST_LINK_ADDRESS, HOST_LINK_ADDRESS6, customerNetns, hostVethName, type NodeConfig } from '../desired/node.js';
import { DataplaneNumbers } from './dataplane-numbers.js';
import { kernelEffects, planEffects, type DataplaneEffects, type MapAccess, type PlaneMaps, type ProgRef, type TcFilterRef } from './dataplane-effects.js';
import { errorText } from './engine.js';

export interface DataplaneOptions {
  node: NodeConfig;
  /** The agent's directory: numbers and the record of loaded objects live here. */
  dataDir: string;
  /** bpffs directory holding every node's pins (default /sys/fs/bpf/opentransit). */
  pinBase?: string;
  /** Object files (default build/bpf/{xdp_edge,tc_gre,tc_host_fwd}.o). */
  objects?: { xdpEdge?: string; tcGre?: string; tcHostFwd?: string };
  /** XDP attach mode on the uplink: native (default; works on veth, DESIGN.md §2) or generic. */
  xdpMode?: XdpMode;
  /** Change nothing anywhere; only describe every change (see the module comment). */
  dryRun?: boolean;
}

/**
 * The data plane as the diff code sees it: its maps (the pinned ones, or overlays of them in a dry run) and its
 * programs (id -1: not loaded yet, a plan's "would load").
 */
interface Plane {
  maps: PlaneMaps;
  xdpEdge: ProgRef;
  tcGre: ProgRef;
  /** The fast path out of customer netns (tc ingress of each host-side veth, bpf/tc_host_fwd.c). */
  tcHostFwd: ProgRef;
  /** The fast path into customer netns after GRO (tc ingress of the uplink, bpf/tc_host_fwd.c). */
  tcUplinkIn: ProgRef;
  root: string;
}

const progRef = (p: BpfProgram): ProgRef => ({ id: p.id, name: p.name, prog: p });
const progLabel = (p: ProgRef) => (p.prog ? `${p.name} (prog ${p.id})` : `${p.name} (to be loaded)`);
/** A program's id in change lines; a plan's program that is not loaded yet has none. */
const progId = (p: ProgRef) => (p.prog ? String(p.id) : `${p.name} (to be loaded)`);
/** The label of a device that a plan would create before using it. */
const TO_BE_CREATED = '(veth to be created)';

interface ObjectsRecord {
  xdp_edge: { sha256: string; prog_id: number };
  tc_gre: { sha256: string; prog_id: number };
  /** Missing in records of older runs: the objects are loaded again. */
  tc_host_fwd?: { sha256: string; prog_id: number };
  /** The second program of tc_host_fwd.o; missing in older records likewise. */
  tc_uplink_in?: { prog_id: number };
}

/** tc_uplink_in's filter on the uplink's tc ingress ("OT" as the handle; after an operator's own filters). */
export const UPLINK_TC_FILTER: TcFilterRef = { handle: 0x4f54, priority: 0xc000 };

/** Expiry times are recomputed from wall-clock time by every run; within this much they are the same rule. */
const EXPIRY_TOLERANCE_NS = 2_000_000_000n;

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const stable = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : Buffer.isBuffer(x) ? x.toString('hex') : x));

function sameRule(a: Rule, b: Rule): boolean {
  const { expires_ns: ea, ...ra } = a;
  const { expires_ns: eb, ...rb } = b;
  if (stable(ra) !== stable(rb)) return false;
  if ((ea === 0n) !== (eb === 0n)) return false;
  const d = ea > eb ? ea - eb : eb - ea;
  return d <= EXPIRY_TOLERANCE_NS;
}

function sameRuleSet(a: RuleSet, b: RuleSet): boolean {
  if (a.count !== b.count) return false;
  for (let i = 0; i < a.count; i++) if (!sameRule(a.rules[i]!, b.rules[i]!)) return false;
  return true;
}

/** A rule set value: the kernel reads `count` rules; the unused slots are zero (action 0 = unused). */
function ruleSetOf(rules: readonly Rule[]): RuleSet {
  const empty: Rule = {
    expires_ns: 0n, slot: 0, rate_pps: 0, burst: 0, sport_min: 0, sport_max: 0, dport_min: 0, dport_max: 0,
    len_min: 0, len_max: 0, proto: 0, tcp_flags_mask: 0, tcp_flags_value: 0, ttl_min: 0, ttl_max: 0, action: 0,
  };
  const all = [...rules];
  while (all.length < OT_RULES_PER_PREFIX) all.push(empty);
  return { count: rules.length, rules: all };
}

interface Want<K, V> {
  key: K;
  value: V;
  label: string;
}

const macText = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export class DataplaneManager {
  /** The pinned data plane (opened or loaded; in a dry run only what was pinned before, read-only). */
  private dp: Dataplane | undefined;
  /** What the diff code reads and writes through (set by open()). */
  private plane: Plane | undefined;
  /** Every write goes through these (kernelEffects, or planEffects in a dry run). */
  private readonly fx: DataplaneEffects;
  private loadError: string | undefined;
  readonly numbers: DataplaneNumbers;
  /** bpf_ktime_get_ns() − wall-clock ns, fixed for this run so that expiry times compare equal between passes. */
  readonly monotonicOffsetNs = process.hrtime.bigint() - BigInt(Date.now()) * 1_000_000n;
  /** The global state last synced without failure (and whether unwanted entries were pruned then). */
  private globalSynced: { version: string; pruned: boolean } | undefined;
  /**
   * ot_bl4_slash16 as the last sync left it, and when the map was last read (a 65536-entry read, ~0.1 s on a loaded
   * machine): read again after open, and by a forced sync once a minute (drift repair), not on every resync.
   */
  private bl4Known: Uint32Array | undefined;
  private bl4ReadAt = 0;
  private adopted = false;
  private groChecked = false;
  /** The last check of the host's routing for the shortcuts (undefined: none yet, every shortcut stays off). */
  private fib: FibDirectVerdict | undefined;
  /** The global state of the last syncGlobal and the plan of the last desiredPlan (syncHostRouting's inputs). */
  private lastGlobal: GlobalDataplane | undefined;
  private lastPlan: DataplanePlan | undefined;
  private readonly mode: XdpMode;

  constructor(private readonly o: DataplaneOptions) {
    this.mode = o.xdpMode ?? 'native';
    this.fx = o.dryRun ? planEffects() : kernelEffects();
    this.numbers = DataplaneNumbers.open(join(o.dataDir, 'dataplane-numbers.json'), o.node.nodeId);
  }

  get loaded(): Dataplane | undefined {
    return this.dp;
  }

  /** Why the data plane is not loaded (undefined when it is). */
  get error(): string | undefined {
    return this.plane ? undefined : (this.loadError ?? 'not loaded yet');
  }

  /** Whether this manager only describes changes (`opentransit plan`). */
  get dryRun(): boolean {
    return this.fx.dryRun;
  }

  private require(): Plane {
    if (!this.plane) throw new Error(`data plane not loaded: ${this.error}`);
    return this.plane;
  }

  private objectPaths(): { xdpEdge: string; tcGre: string; tcHostFwd: string } {
    return {
      xdpEdge: this.o.objects?.xdpEdge ?? bpfObjectPath('xdp_edge'),
      tcGre: this.o.objects?.tcGre ?? bpfObjectPath('tc_gre'),
      tcHostFwd: this.o.objects?.tcHostFwd ?? bpfObjectPath('tc_host_fwd'),
    };
  }

  private recordPath(): string {
    return join(this.o.dataDir, 'dataplane-objects.json');
  }

  /**
   * Loads the programs and maps, or reopens the pins of an earlier run built from the same object files. Idempotent;
   * throws (and remembers why) on failure. `bpftool prog loadall … pinmaps …` / `bpftool prog show pinned …`
   */
  open(changes: string[] = []): void {
    if (this.plane) return;
    try {
      const paths = this.objectPaths();
      const hashes = { xdp: sha256(paths.xdpEdge), tc: sha256(paths.tcGre), fwd: sha256(paths.tcHostFwd) };
      const where = { node: this.o.node.nodeId, ...(this.o.pinBase ? { base: this.o.pinBase } : {}) };
      let record: ObjectsRecord | undefined;
      try {
        record = JSON.parse(readFileSync(this.recordPath(), 'utf8')) as ObjectsRecord;
      } catch {
        record = undefined;
      }
      const sameObjects = record?.xdp_edge?.sha256 === hashes.xdp && record.tc_gre?.sha256 === hashes.tc && record.tc_host_fwd?.sha256 === hashes.fwd;
      let dp = sameObjects && dataplaneExists(where) ? tryOpen(where) : undefined;
      if (dp && (dp.xdpEdge.id !== record!.xdp_edge.prog_id || dp.tcGre.id !== record!.tc_gre.prog_id || dp.tcHostFwd.id !== record!.tc_host_fwd?.prog_id || dp.tcUplinkIn.id !== record!.tc_uplink_in?.prog_id)) {
        dp.close();
        dp = undefined;
      }
      const planeOf = (d: Dataplane): Plane => ({ maps: this.fx.maps(d), xdpEdge: progRef(d.xdpEdge), tcGre: progRef(d.tcGre), tcHostFwd: progRef(d.tcHostFwd), tcUplinkIn: progRef(d.tcUplinkIn), root: d.layout.root });
      let plane: Plane;
      if (dp) {
        plane = planeOf(dp);
      } else {
        const loaded = this.fx.load({ ...where, objects: paths });
        if (loaded) {
          dp = loaded;
          plane = planeOf(dp);
        } else {
          // Dry run: nothing loaded. A load would reuse the pinned maps (an upgrade keeps them): diff against those.
          dp = dataplaneExists(where) ? tryOpen(where) : undefined;
          plane = {
            maps: this.fx.maps(dp),
            xdpEdge: { id: -1, name: OT_PROG_XDP_EDGE },
            tcGre: { id: -1, name: OT_PROG_TC_GRE },
            tcHostFwd: { id: -1, name: OT_PROG_TC_HOST_FWD },
            tcUplinkIn: { id: -1, name: OT_PROG_TC_UPLINK_IN },
            root: pinLayout(where.node, where.base).root,
          };
        }
        const next: ObjectsRecord = { xdp_edge: { sha256: hashes.xdp, prog_id: plane.xdpEdge.id }, tc_gre: { sha256: hashes.tc, prog_id: plane.tcGre.id }, tc_host_fwd: { sha256: hashes.fwd, prog_id: plane.tcHostFwd.id }, tc_uplink_in: { prog_id: plane.tcUplinkIn.id } };
        this.fx.writeFile(this.recordPath(), JSON.stringify(next, null, 1) + '\n');
        const maps = loaded ? '' : dp ? ' (reusing the pinned maps)' : ' (creating its maps)';
        changes.push(`bpf: load ${progLabel(plane.xdpEdge)}, ${progLabel(plane.tcGre)}, ${progLabel(plane.tcHostFwd)} and ${progLabel(plane.tcUplinkIn)}, pinned under ${plane.root}${maps}`);
      }
      this.dp = dp;
      this.plane = plane;
      this.bl4Known = undefined;
      this.loadError = undefined;
    } catch (e) {
      this.loadError = errorText(e);
      throw new Error(`data plane not loaded: ${this.loadError}`);
    }
  }

  // --- numbers ---------------------------------------------------------------------------------------------------

  /**
   * Numbers for `accounts`: adopted from the maps when the numbers file was lost, else the lowest free one. New
   * numbers are saved before use and their counters zeroed (a number freed earlier may have old counts).
   */
  accountNumbers(accounts: readonly AccountDocument[], changes: string[] = []): Map<string, number> {
    const dp = this.require();
    if (this.numbers.fresh && !this.adopted) this.adoptAccountNumbers(dp, accounts, changes);
    const fresh = accounts.filter((a) => !this.numbers.accounts.has(a.id));
    if (fresh.length) {
      const assigned = fresh.map((a) => this.numbers.accounts.assign(a.id));
      this.fx.saveNumbers(this.numbers);
      for (const [i, n] of assigned.entries()) {
        for (let r = 0; r < OT_REASON_SLOTS; r++) dp.maps.counters.set(n * OT_REASON_SLOTS + r, { packets: 0n, bytes: 0n });
        changes.push(`data dir: account ${fresh[i]!.id} gets data-plane number ${n} (saved in ${this.numbers.path}; its ${dp.maps.counters.spec.name} zeroed)`);
      }
    }
    return new Map(accounts.map((a) => [a.id, this.numbers.accounts.get(a.id)!]));
  }

  /** Slots for the active rules; new slots start with a full bucket and zero statistics. */
  ruleSlots(ruleIds: readonly string[], changes: string[] = []): Map<string, number> {
    const dp = this.require();
    const fresh = ruleIds.filter((id) => !this.numbers.slots.has(id));
    if (fresh.length) {
      const assigned = fresh.map((id) => this.numbers.slots.assign(id));
      this.fx.saveNumbers(this.numbers);
      for (const [i, s] of assigned.entries()) {
        dp.maps.rlState.set(s, { tokens: 0n, last_ns: 0n });
        dp.maps.ruleStats.set(s, { packets: 0n, bytes: 0n, dropped_packets: 0n, dropped_bytes: 0n });
        changes.push(`data dir: mitigation rule ${fresh[i]} gets slot ${s} (saved in ${this.numbers.path}; its bucket and statistics zeroed)`);
      }
    }
    return new Map(ruleIds.map((id) => [id, this.numbers.slots.get(id)!]));
  }

  /**
   * The desired data plane (desired/dataplane.ts) for these inputs, with this node's account numbers and rule slots
   * (new ones assigned and saved — in a dry run only described in `changes`). `activeRuleIds`: the ids of
   * activeMitigations(mitigations, nowMs), which the caller has computed already.
   */
  desiredPlan(
    i: Omit<DataplanePlanInput, 'numbers' | 'slots' | 'monotonicOffsetNs' | 'cpus'> & { activeRuleIds: readonly string[] },
    changes: string[] = [],
  ): DataplanePlan {
    const { activeRuleIds, ...input } = i;
    const numbers = this.accountNumbers(input.accounts, changes);
    const slots = this.ruleSlots(activeRuleIds, changes);
    this.lastPlan = dataplanePlan({ ...input, numbers, slots, monotonicOffsetNs: this.monotonicOffsetNs, cpus: numPossibleCpus() });
    return this.lastPlan;
  }

  /**
   * The numbers file is gone but the maps survived (data dir wiped, pins kept): take each account's number from
   * the ot_prefixes entry of one of its customer prefixes, so nothing in the kernel is renumbered.
   */
  private adoptAccountNumbers(dp: Plane, accounts: readonly AccountDocument[], changes: string[]): void {
    this.adopted = true;
    const held = new Map<string, number>();
    for (const [k, v] of dp.maps.prefixes.entries()) held.set(cidrOfLpmKey(k), v);
    if (held.size === 0) return;
    for (const a of [...accounts].sort((x, y) => (x.id < y.id ? -1 : 1))) {
      for (const p of a.prefixes) {
        const n = held.get(p.cidr);
        if (n !== undefined && this.numbers.accounts.isFree(n)) {
          this.numbers.accounts.set(a.id, n);
          changes.push(`data dir: account ${a.id} keeps data-plane number ${n} (adopted from ${dp.maps.prefixes.spec.name} ${p.cidr})`);
          break;
        }
      }
    }
    this.fx.saveNumbers(this.numbers);
  }

  // --- generic map diffing -----------------------------------------------------------------------------------------

  /**
   * Writes the wanted entries that are missing or differ (one lookup each). `present` says whether a key exists
   * exactly: an LPM trie's lookup answers the longest match, so a covering prefix would pass for a missing one.
   */
  private ensure<K, V>(
    map: MapAccess<K, V>,
    wants: readonly Want<K, V>[],
    same: (a: V, b: V) => boolean,
    changes: string[],
    present?: (k: K) => boolean,
  ): void {
    for (const w of wants) {
      const have = present && !present(w.key) ? undefined : map.get(w.key);
      if (have !== undefined && same(w.value, have)) continue;
      map.set(w.key, w.value);
      changes.push(`bpf: ${have === undefined ? 'add' : 'update'} ${map.spec.name} ${w.label}`);
    }
  }

  /** Exact keys of ot_prefixes (hex), kept from the last dump plus our own writes and deletes. */
  private prefixKeys: Set<string> | undefined;
  private prefixKeyOf(k: ReturnType<typeof lpmKey>): string {
    return this.require().maps.prefixes.spec.key.encode(k).toString('hex');
  }
  private prefixPresent = (k: ReturnType<typeof lpmKey>): boolean => {
    const m = this.require().maps.prefixes;
    this.prefixKeys ??= new Set(m.entries().map(([key]) => this.prefixKeyOf(key)));
    return this.prefixKeys.has(this.prefixKeyOf(k));
  };

  /** Makes a whole map equal to `wants` (one dump); deletes unwanted entries only with `prune`. */
  private sync<K, V>(
    map: MapAccess<K, V>,
    wants: readonly Want<K, V>[],
    same: (a: V, b: V) => boolean,
    label: (k: K) => string,
    changes: string[],
    o: { prune: boolean; write?: boolean },
  ): Set<string> {
    const keyOf = (k: K) => map.spec.key.encode(k).toString('hex');
    const actual = new Map<string, [K, V]>();
    for (const [k, v] of map.entries()) actual.set(keyOf(k), [k, v]);
    const keys = new Set(actual.keys());
    const wanted = new Set<string>();
    for (const w of wants) {
      const key = keyOf(w.key);
      wanted.add(key);
      if (o.write === false) continue;
      const have = actual.get(key);
      if (have && same(w.value, have[1])) continue;
      map.set(w.key, w.value);
      keys.add(key);
      changes.push(`bpf: ${have ? 'update' : 'add'} ${map.spec.name} ${w.label}`);
    }
    if (!o.prune) return keys;
    // Deletions after every add: a prefix moving to a longer or shorter key is covered throughout.
    for (const [key, [k]] of actual) {
      if (wanted.has(key)) continue;
      map.delete(k);
      keys.delete(key);
      changes.push(`bpf: delete ${map.spec.name} ${label(k)}`);
    }
    return keys;
  }

  private bytesEqual<V>(map: Pick<MapAccess<unknown, V>, 'spec'>): (a: V, b: V) => boolean {
    return (a, b) => map.spec.value.encode(a).equals(map.spec.value.encode(b));
  }

  // --- global ------------------------------------------------------------------------------------------------------

  /**
   * The uplink's programs: XDP, and tc_uplink_in on its tc ingress (the fast path in after GRO, bpf/tc_host_fwd.c).
   * The tc filter sits at its own handle and a late priority (UPLINK_TC_FILTER): an operator's own filters there run
   * first and keep theirs; the program hands back what it does not take as TC_ACT_UNSPEC, so later filters run too.
   */
  private ensureUplink(dp: Plane, changes: string[]): void {
    this.ensureXdp(dp, changes);
    const { hostNetns: netns, uplink } = this.o.node;
    this.ensureTc(netns, uplink, this.fx.ifindex(uplink, netns), 'ingress', dp.tcUplinkIn, changes, UPLINK_TC_FILTER);
  }

  /** XDP on the uplink: attached, or atomically replaced when an older program of ours runs there. */
  private ensureXdp(dp: Plane, changes: string[]): void {
    const { hostNetns: netns, uplink } = this.o.node;
    const ifindex = this.fx.ifindex(uplink, netns);
    if (ifindex === undefined) throw new Error(`uplink ${uplink} not found in ${netns}`);
    const state = queryXdp({ ifindex, netns });
    if (state.progId === dp.xdpEdge.id && state.mode === this.mode) return;
    if (state.progId === 0) {
      this.fx.attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: null });
      changes.push(`${netns}: attach XDP ${OT_PROG_XDP_EDGE} (${dp.xdpEdge.prog ? `prog ${dp.xdpEdge.id}` : 'to be loaded'}, ${this.mode}) on ${uplink}`);
      this.groChecked = false;
      return;
    }
    const old = BpfProgram.fromId(state.progId);
    try {
      if (old.name !== OT_PROG_XDP_EDGE)
        throw new Error(`${uplink} runs another XDP program (${old.name || 'unnamed'}, id ${old.id}): not replacing what is not ours`);
      if (state.mode === this.mode) {
        // One netlink call swaps the program: no packet sees the uplink without one (XDP_FLAGS_REPLACE).
        this.fx.attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: old });
        changes.push(`${netns}: replace XDP on ${uplink}: prog ${old.id} → ${progId(dp.xdpEdge)} (atomic)`);
      } else if (state.mode === 'native' || state.mode === 'generic') {
        // Across modes there is no atomic swap: the operator asked for another mode.
        this.fx.detachXdp({ ifindex, netns, mode: state.mode, expected: old });
        this.fx.attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: null });
        changes.push(`${netns}: move XDP on ${uplink} from ${state.mode} to ${this.mode} mode (prog ${progId(dp.xdpEdge)})`);
      } else {
        throw new Error(`${uplink} has XDP in ${state.mode} mode: not supported`);
      }
    } finally {
      old.close();
    }
  }

  /**
   * DESIGN.md §2: GRO on the XDP device (native XDP on a veth turns TSO off on its peer; GRO gets the throughput
   * back). Checked once per run and after every new attachment (one ethtool netlink request).
   */
  async ensureGro(changes: string[]): Promise<void> {
    if (this.groChecked || !this.plane) return;
    const { hostNetns, uplink } = this.o.node;
    const f = await readLinkFeatures(hostNetns, uplink);
    if (!f.gro) {
      await this.fx.setGro(hostNetns, uplink);
      changes.push(`${hostNetns}: ethtool -K ${uplink} gro on`);
    }
    this.groChecked = true;
  }

  /**
   * XDP on the uplink and the global maps. Map contents are diffed only when the desired global state changed
   * since the last success (or with `force`: the periodic resync); unwanted entries go only with `prune`.
   */
  syncGlobal(g: GlobalDataplane, o: { force?: boolean; prune: boolean }, changes: string[]): void {
    const dp = this.require();
    const version = stable(g);
    const last = this.globalSynced;
    if (!o.force && last?.version === version && (last.pruned || !o.prune)) {
      this.ensureUplink(dp, changes);
      return;
    }
    this.globalSynced = undefined;
    const m = dp.maps;
    this.sync(m.anycast, g.anycast.map((a) => ({ key: ipv4Be32(a), value: 0, label: a })), (a, b) => a === b, (k) => formatIp({ family: 4, value: BigInt(k) }), changes, o);
    // Value 1: the operator's list (the map's value is an informational list id).
    this.sync(m.blocklist, g.blocklist.map((c) => ({ key: lpmKey(c), value: 1, label: c })), (a, b) => a === b, cidrOfLpmKey, changes, o);
    // The program looks up IPv4 sources in this index of the trie, so it follows whatever the trie holds now.
    const reread = !this.bl4Known || (o.force && Date.now() - this.bl4ReadAt > 60_000);
    this.bl4Known = syncBlocklistV4Index(m, changes, { known: reread ? undefined : this.bl4Known });
    if (reread) this.bl4ReadAt = Date.now();
    this.sync(
      m.mitigation,
      g.mitigation.map((s) => ({ key: lpmKey(s.prefix), value: ruleSetOf(s.rules), label: `${s.prefix} (${s.ruleIds.join(', ')})` })),
      sameRuleSet,
      cidrOfLpmKey,
      changes,
      o,
    );
    this.lastGlobal = g;
    this.ensureConfig(dp, changes);
    if (o.prune) {
      // Slots of rules no longer in the map are free again (their statistics go with them).
      const active = new Set(g.activeRuleIds);
      let released = false;
      for (const id of this.numbers.slots.ids()) {
        if (!active.has(id)) {
          this.numbers.slots.release(id);
          released = true;
        }
      }
      if (released) this.fx.saveNumbers(this.numbers);
    }
    // The programs after their maps: an upgraded program may read maps (ot_bl4_*) its predecessor never filled.
    this.ensureUplink(dp, changes);
    this.globalSynced = { version, pruned: o.prune };
  }

  /**
   * Addresses the agent itself makes local on the host — the host side of every customer veth, the anycast
   * endpoints — kept in ot_host_local whether or not the local table has them yet: ot_host_local may hold more
   * than the local table (the programs then take the slow path for them), never less. Without them an address
   * the agent adds between two checks would pass as a foreign source until the next check.
   */
  private ownLocal(): Map<string, number> {
    const own = new Map<string, number>([[`${HOST_LINK_ADDRESS}/32`, RTN_OF.local], [`${HOST_LINK_ADDRESS6}/128`, RTN_OF.local]]);
    for (const a of this.lastGlobal?.anycast ?? []) own.set(`${a}/32`, RTN_OF.local);
    return own;
  }

  /** ot_config: the plan's, plus the shortcuts (dataplane-fib.ts) the last host-routing check allows. */
  private ensureConfig(dp: Plane, changes: string[]): void {
    const g = this.lastGlobal;
    if (!g) return;
    // Not checked yet in this run (an agent restart, a plan): the shortcuts the map holds stay until the first
    // check (this data-plane pass's) confirms or clears them — a restart changes nothing.
    const shortcuts = this.fib ? this.fibFlags() : (dp.maps.config.get(0)?.flags ?? 0) & SHORTCUT_BITS & this.fastFlag();
    const value: Config = { ...g.config, flags: g.config.flags | shortcuts };
    const label = `sample_every=${value.sample_every} flags=0x${value.flags.toString(16)} fwmark=0x${value.fwmark.toString(16)} fib_table=${value.fib_table}`;
    this.ensure(dp.maps.config, [{ key: 0, value, label }], this.bytesEqual(dp.maps.config), changes);
  }

  /** All bits when the plan has the fast path on, else 0. */
  private fastFlag(): number {
    return this.lastGlobal !== undefined && (this.lastGlobal.config.flags & OT_CONFIG_F_FAST_PATH) !== 0 ? ~0 : 0;
  }

  private fibFlags(): number {
    return this.fib ? this.fib.flags & this.fastFlag() : 0;
  }

  /** The fast path's shortcuts now on (by short name: in, gre, all, src) and why the others are off. */
  get fibShortcuts(): { on: string[]; off: Record<string, string> } {
    const flags = this.fibFlags();
    const on = Object.entries(FIB_BITS).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name);
    const why = !this.fib ? 'not checked yet' : 'the fast path is off';
    const off = Object.fromEntries(Object.keys(FIB_BITS).filter((n) => !on.includes(n)).map((n) => [n, this.fib?.off[n] ?? why]));
    return { on, off };
  }

  /**
   * The host netns's policy rules and routes against what the fast path's shortcuts assume (dataplane-fib.ts):
   * each of OT_CONFIG_F_FIB_DIRECT_IN, _GRE, OT_CONFIG_F_FIB_DIRECT and OT_CONFIG_F_SRC_UNICAST on while its
   * premises hold, off from the first check that finds otherwise (the programs then do what the stack does, with
   * a full lookup); ot_host_local made equal to the local table. Flags going off are written before
   * ot_host_local changes, flags going on after. A failed read turns every shortcut off (and says why). One rule
   * dump and one route dump of the host netns per call (every data-plane pass).
   */
  async syncHostRouting(changes: string[]): Promise<void> {
    const dp = this.plane;
    const plan = this.lastPlan;
    // A plan leaves them out: they are derived from the kernel's state at each pass, not from the desired state
    // (a plan made right after an agent pass would otherwise list what the host's own passes changed since).
    if (!dp || !this.lastGlobal || !plan || this.fx.dryRun) return;
    const written = () => (dp.maps.config.get(0)?.flags ?? 0) & SHORTCUT_BITS;
    const before = written();
    const { hostNetns, fwmark, table, rulePriority, uplink } = this.o.node;
    let verdict: FibDirectVerdict;
    try {
      const [rules, routes] = await Promise.all([listRuleDetails(hostNetns), listRoutes(hostNetns)]);
      const veths = new Set([...plan.accounts.keys()].map(hostVethName));
      verdict = fibDirectVerdict({
        fwmark, table, rulePriority, uplink, rules, routes, ...directKeys(plan),
        // our veths, and any device named like one (an account's veth that outlives the plan)
        isCustomerVeth: (dev) => veths.has(dev) || /^ot[0-9a-f]{12}$/.test(dev),
      });
    } catch (e) {
      const why = `reading the host's rules and routes: ${errorText(e)}`;
      verdict = { flags: 0, off: Object.fromEntries(Object.keys(FIB_BITS).map((n) => [n, why])), local: this.fib?.local ?? new Map(), watch: this.fib?.watch ?? [], keys: this.fib?.keys ?? new Set() };
    }
    // Off first: the bits both checks allow, while ot_host_local changes.
    this.fib = { ...verdict, flags: verdict.flags & before };
    this.ensureConfig(dp, changes);
    const m = dp.maps.hostLocal;
    const wanted = new Map([...this.ownLocal(), ...verdict.local]);
    this.sync(m, [...wanted].map(([cidr, type]) => ({ key: lpmKey(cidr), value: type, label: `${cidr} (type ${type})` })), (x, y) => x === y, cidrOfLpmKey, changes, { prune: true });
    this.fib = verdict;
    this.ensureConfig(dp, changes);
    if (written() !== before) {
      const after = this.fibShortcuts;
      const offText = Object.entries(after.off).map(([n, why]) => `${n}: ${why}`).join('; ');
      changes.push(`bpf: fast path's shortcuts: ${after.on.join(', ') || 'none'}${offText ? ` (off — ${offText})` : ''}`);
    }
  }

  // --- per account -------------------------------------------------------------------------------------------------

  private prefixWants(a: AccountDataplane): Want<ReturnType<typeof lpmKey>, number>[] {
    return a.prefixes.map((p) => ({ key: lpmKey(p.cidr), value: a.number, label: `${p.cidr} → ${a.number} (${p.source})` }));
  }

  private peerWants(a: AccountDataplane) {
    return a.peers.map((p) => ({ key: ipv4Be32(p), value: { account: a.number, flags: 0 }, label: `${p} → ${a.number}` }));
  }

  /** `cookie` undefined: the account's netns is still to be created (a plan); its cookie is not known yet. */
  private tunnelWants(a: AccountDataplane, cookie: bigint | undefined) {
    return a.tunnels.map((t) => ({
      key: { netns_cookie: cookie ?? 0n, mac: macBytes(t.mac) },
      value: { local: ipv4Be32(t.local), remote: ipv4Be32(t.remote), account: a.number, ttl: t.ttl, flags: t.df ? 1 : 0, host_mac: macBytes(t.hostMac) },
      label: `${t.name} (${t.mac}${cookie === undefined ? ' in the netns to be created' : ''}): ${t.local} → ${t.remote}, account ${a.number}, ttl ${t.ttl}${t.df ? ', df' : ''}`,
    }));
  }

  /**
   * A program on a tc hook of a device in `netns`: attached, or replaced in one step (`tc filter replace`). Every
   * tc attach goes through here (and so through the effects: a plan only describes it). `ifindex` undefined: the
   * device is still to be created (a plan).
   */
  private ensureTc(netns: string, dev: string, ifindex: number | undefined, direction: TcDirection, prog: ProgRef, changes: string[], filter?: TcFilterRef): void {
    const attached = this.fx.queryTc({ ifindex, netns, direction, filter });
    if (attached === prog.id) return;
    if (ifindex !== undefined) this.fx.attachTc({ ifindex, netns, direction, prog, filter });
    const at = filter ? ` (handle ${filter.handle} prio ${filter.priority})` : '';
    changes.push(`${netns}: ${attached ? `replace tc ${direction}${at} prog ${attached} →` : `attach tc ${direction}${at}`} ${progLabel(prog)} on ${dev}${ifindex === undefined ? ` ${TO_BE_CREATED}` : ''}`);
  }

  /**
   * One account: tc_gre on edge0's egress in its netns (the pinned program shared by every customer) and
   * tc_host_fwd on the host-side veth's ingress (the fast path out, shared likewise), then its
   * entries — prefixes and delivery before tunnels and GRE peers, so decap never accepts a peer whose packets it
   * could not check or deliver.
   */
  applyAccount(a: AccountDataplane, netns: string, hostVeth: string, changes: string[]): void {
    const dp = this.require();
    const ifindex = this.fx.ifindex(CUSTOMER_VETH, netns);
    this.ensureTc(netns, CUSTOMER_VETH, ifindex, 'egress', dp.tcGre, changes);
    const cookie = this.fx.cookie(netns);
    const hostIfindex = this.fx.ifindex(hostVeth, this.o.node.hostNetns);
    // The fast path out of the customer netns (bpf/tc_host_fwd.c): it reads ot_config and ot_prefixes only, so it
    // may run before this account's entries exist (it then leaves packets to the host stack).
    this.ensureTc(this.o.node.hostNetns, hostVeth, hostIfindex, 'ingress', dp.tcHostFwd, changes);
    const m = dp.maps;
    // Our veth's host address is local from now on (ownLocal; an entry that covers it will do: the programs ask
    // whether an address is covered). Derived state: not in plans, like syncHostRouting.
    if (!this.fx.dryRun) this.ensure(m.hostLocal, [...this.ownLocal()].map(([cidr, type]) => ({ key: lpmKey(cidr), value: type, label: `${cidr} (type ${type})` })), (x, y) => x === y, changes);
    // A new key under a local route or a foreign rule's `to` (dataplane-fib.ts, premises L and R): the rule
    // shortcuts go off before the key exists, until the next check looks at it again.
    const fib = this.fib;
    if (fib && (fib.flags & RULE_BITS) !== 0) {
      const keys = directKeys({ accounts: new Map([[a.accountId, a]]) });
      const fresh = [...keys.prefixes, ...keys.peers].filter((k) => !fib.keys.has(k));
      const overlap = fresh.length ? localOverlap(fib.watch, fresh) : undefined;
      if (overlap !== undefined) {
        const why = `${overlap} (new)`;
        this.fib = { ...fib, flags: fib.flags & ~RULE_BITS, off: { ...fib.off, in: fib.off['in'] ?? why, gre: fib.off['gre'] ?? why, all: fib.off['all'] ?? why } };
        this.ensureConfig(dp, changes);
        changes.push(`bpf: fast path's rule shortcuts off: ${why}`);
      }
    }
    const wants = this.prefixWants(a);
    this.ensure(m.prefixes, wants, (x, y) => x === y, changes, this.prefixPresent);
    for (const w of wants) this.prefixKeys?.add(this.prefixKeyOf(w.key));
    this.ensure(
      m.delivery,
      [
        {
          key: a.number,
          value: { ifindex: hostIfindex ?? 0, dmac: macBytes(a.delivery.dmac), smac: macBytes(a.delivery.smac), mtu6: a.delivery.mtu6 },
          label: `${a.number} → ${hostVeth} (${hostIfindex === undefined ? TO_BE_CREATED.slice(1, -1) : `ifindex ${hostIfindex}`}), dmac ${a.delivery.dmac}, smac ${a.delivery.smac}`,
        },
      ],
      this.bytesEqual(m.delivery),
      changes,
    );
    this.ensure(m.tunnels, this.tunnelWants(a, cookie), this.bytesEqual(m.tunnels), changes);
    this.ensure(m.grePeers, this.peerWants(a), this.bytesEqual(m.grePeers), changes);
  }

  /**
   * Deletes per-account entries nobody wants (only from a complete desired state), and frees the numbers of
   * accounts that are gone once nothing refers to them.
   */
  pruneAccounts(plan: DataplanePlan, changes: string[]): void {
    const dp = this.require();
    const m = dp.maps;
    const accounts = [...plan.accounts.values()];
    // Prefixes are written too (attribution and anti-spoofing are always safe to add); GRE peers only by each
    // account's own pass, after its delivery entry.
    this.prefixKeys = this.sync(m.prefixes, accounts.flatMap((a) => this.prefixWants(a)), (x, y) => x === y, cidrOfLpmKey, changes, { prune: true });
    this.sync(m.grePeers, accounts.flatMap((a) => this.peerWants(a)), this.bytesEqual(m.grePeers), (k) => formatIp({ family: 4, value: BigInt(k) }), changes, {
      prune: true,
      write: false,
    });
    const byNumber = new Map(accounts.map((a) => [a.number, a]));
    for (const [k] of m.delivery.entries()) {
      if (byNumber.has(k)) continue;
      m.delivery.delete(k);
      changes.push(`bpf: delete ${m.delivery.spec.name} ${k}`);
    }
    // Tunnels are keyed by the customer netns's cookie: entries of a netns that is gone (or was recreated) go.
    const wantedTunnels = new Set<string>();
    for (const a of accounts) {
      let cookie: bigint | undefined;
      try {
        cookie = this.fx.cookie(customerNetns(this.o.node, a.accountId));
      } catch {
        continue;
      }
      // undefined: a plan's netns still to be created; its entries are the ones the plan keyed without a cookie.
      for (const w of this.tunnelWants(a, cookie)) wantedTunnels.add(m.tunnels.spec.key.encode(w.key).toString('hex'));
    }
    for (const [k, v] of m.tunnels.entries()) {
      if (wantedTunnels.has(m.tunnels.spec.key.encode(k).toString('hex')) && byNumber.has(v.account)) continue;
      m.tunnels.delete(k);
      changes.push(`bpf: delete ${m.tunnels.spec.name} cookie ${k.netns_cookie} ${macText(k.mac)}`);
    }
    let released = false;
    for (const id of this.numbers.accounts.ids()) {
      if (plan.accounts.has(id)) continue;
      this.numbers.accounts.release(id);
      released = true;
    }
    if (released) this.fx.saveNumbers(this.numbers);
  }

  /** Every entry of one account (deleted), then its number is free. */
  removeAccount(accountId: string, changes: string[]): void {
    const n = this.numbers.accounts.get(accountId);
    if (n === undefined || !this.plane) return;
    const m = this.plane.maps;
    for (const [k, v] of m.prefixes.entries()) {
      if (v !== n) continue;
      m.prefixes.delete(k);
      this.prefixKeys?.delete(this.prefixKeyOf(k));
      changes.push(`bpf: delete ${m.prefixes.spec.name} ${cidrOfLpmKey(k)}`);
    }
    for (const [k, v] of m.grePeers.entries())
      if (v.account === n) (m.grePeers.delete(k), changes.push(`bpf: delete ${m.grePeers.spec.name} ${formatIp({ family: 4, value: BigInt(k) })}`));
    for (const [k, v] of m.tunnels.entries()) if (v.account === n) (m.tunnels.delete(k), changes.push(`bpf: delete ${m.tunnels.spec.name} ${macText(k.mac)}`));
    if (m.delivery.delete(n)) changes.push(`bpf: delete ${m.delivery.spec.name} ${n}`);
    this.numbers.accounts.release(accountId);
    this.fx.saveNumbers(this.numbers);
  }

  // --- counters ----------------------------------------------------------------------------------------------------

  /** Every non-zero counter by account id (null: no account) and reason, and each rule's statistics. */
  counters(): Omit<NodeCounters, 'node_id' | 'updated_at'> {
    const dp = this.dp;
    if (!dp) throw new Error(`data plane not loaded: ${this.error}`);
    const idOf = new Map(this.numbers.accounts.entries().map(([id, n]) => [n, id]));
    const items: CounterItem[] = [];
    for (const t of readCounters(dp.maps.counters)) {
      const accountId = t.account === 0 ? null : idOf.get(t.account);
      if (accountId === undefined) continue; // a number no account holds now
      items.push({
        account_id: accountId,
        verdict: VERDICT_NAMES[REASON_VERDICT[t.reason]].toLowerCase(),
        reason: (REASON_NAMES[t.reason] ?? `reason_${t.reason}`).toLowerCase(),
        packets: Number(t.packets),
        bytes: Number(t.bytes),
      });
    }
    const mitigations: Record<string, RuleCounters> = {};
    for (const [id, slot] of this.numbers.slots.entries()) {
      const perCpu = dp.maps.ruleStats.getPerCpu(slot) ?? [];
      const sum = { packets: 0, bytes: 0, dropped_packets: 0, dropped_bytes: 0 };
      for (const c of perCpu) {
        sum.packets += Number(c.packets);
        sum.bytes += Number(c.bytes);
        sum.dropped_packets += Number(c.dropped_packets);
        sum.dropped_bytes += Number(c.dropped_bytes);
      }
      mitigations[id] = sum;
    }
    return { items, mitigations };
  }

  /** Program ids and modes, for the node status. */
  describe(): { xdp_prog_id: number; tc_prog_id: number; pins: string; fast_path_shortcuts: { on: string[]; off: Record<string, string> } } | undefined {
    if (!this.dp) return undefined;
    return { xdp_prog_id: this.dp.xdpEdge.id, tc_prog_id: this.dp.tcGre.id, pins: this.dp.layout.root, fast_path_shortcuts: this.fibShortcuts };
  }

  /** Closes fds; pins and attachments stay (traffic keeps flowing while the agent restarts). */
  close(): void {
    this.dp?.close();
    this.dp = undefined;
    this.plane = undefined;
    this.loadError = 'closed';
  }
}

/** directKeys of each plan (the same arrays while a plan stands: dataplane-fib.ts indexes them once). */
const planKeys = new WeakMap<object, { prefixes: string[]; peers: string[] }>();

/** The destinations the programs look up without asking ot_host_local: keys of ot_prefixes and ot_gre_peers. */
function directKeys(plan: Pick<DataplanePlan, 'accounts'>): { prefixes: string[]; peers: string[] } {
  const cached = planKeys.get(plan);
  if (cached) return cached;
  const keys = collectKeys(plan);
  planKeys.set(plan, keys);
  return keys;
}

function collectKeys(plan: Pick<DataplanePlan, 'accounts'>): { prefixes: string[]; peers: string[] } {
  const prefixes: string[] = [];
  const peers: string[] = [];
  for (const a of plan.accounts.values()) {
    for (const p of a.prefixes) prefixes.push(p.cidr);
    for (const peer of a.peers) peers.push(`${peer}/32`);
  }
  return { prefixes, peers };
}

/** Opens a node's pins for reading, or undefined when they cannot be opened. */
function tryOpen(where: { node: string; base?: string }): Dataplane | undefined {
  try {
    return openDataplane(where);
  } catch {
    return undefined;
  }
}

/** Whether a record of loaded objects exists in a data dir (tests). */
export function objectsRecordExists(dataDir: string): boolean {
  return existsSync(join(dataDir, 'dataplane-objects.json'));
}
