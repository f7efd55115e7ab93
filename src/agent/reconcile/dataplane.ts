/**
 * Keeps the node's eBPF data plane equal to the desired state (desired/dataplane.ts): the pinned programs and
 * maps, XDP on the uplink, tc on every customer veth, and every map entry.
 *
 *   open()            load the objects, or reopen the pins an earlier run left (an agent restart changes nothing)
 *   syncGlobal()      ot_anycast, ot_blocklist (+ its IPv4 index ot_bl4_*), ot_mitigation, ot_config (diff, prune
 *                     after sync); then XDP on the uplink
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
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccountDocument } from '../../model/schemas.js';
import type { CounterItem, NodeCounters, RuleCounters } from '../../model/counters.js';
import {
  OT_PROG_TC_GRE,
  OT_PROG_TC_HOST_FWD,
  OT_PROG_XDP_EDGE,
  OT_REASON_SLOTS,
  OT_RULES_PER_PREFIX,
  REASON_NAMES,
  REASON_VERDICT,
  VERDICT_NAMES,
  type Rule,
  type RuleSet,
} from '../../kernel/bpf/abi.generated.js';
import {
  attachTc,
  attachXdp,
  BpfProgram,
  detachXdp,
  ifIndex,
  netnsCookie,
  queryTc,
  queryXdp,
  type TypedMap,
  type XdpMode,
} from '../../kernel/bpf/index.js';
import {
  cidrOfLpmKey,
  dataplaneExists,
  ipv4Be32,
  loadDataplane,
  lpmKey,
  macBytes,
  openDataplane,
  readCounters,
  type Dataplane,
} from '../../kernel/bpf/dataplane.js';
import { syncBlocklistV4Index } from '../../kernel/bpf/blocklist4.js';
import { bpfObjectPath } from '../../kernel/bpf/paths.js';
import { formatIp } from '../../model/ip.js';
import { readLinkFeatures, setLinkFeatures } from '../../kernel/links.js';
import type { AccountDataplane, DataplanePlan, GlobalDataplane } from '../desired/dataplane.js';
import { CUSTOMER_VETH, customerNetns, type NodeConfig } from '../desired/node.js';
import { DataplaneNumbers } from './dataplane-numbers.js';
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
}

interface ObjectsRecord {
  xdp_edge: { sha256: string; prog_id: number };
  tc_gre: { sha256: string; prog_id: number };
  /** Missing in records of older runs: the objects are loaded again. */
  tc_host_fwd?: { sha256: string; prog_id: number };
}

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
  private dp: Dataplane | undefined;
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
  private readonly mode: XdpMode;

  constructor(private readonly o: DataplaneOptions) {
    this.mode = o.xdpMode ?? 'native';
    this.numbers = DataplaneNumbers.open(join(o.dataDir, 'dataplane-numbers.json'), o.node.nodeId);
  }

  get loaded(): Dataplane | undefined {
    return this.dp;
  }

  /** Why the data plane is not loaded (undefined when it is). */
  get error(): string | undefined {
    return this.dp ? undefined : (this.loadError ?? 'not loaded yet');
  }

  private require(): Dataplane {
    if (!this.dp) throw new Error(`data plane not loaded: ${this.error}`);
    return this.dp;
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
  open(changes: string[] = []): Dataplane {
    if (this.dp) return this.dp;
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
      let dp: Dataplane | undefined;
      if (record && record.xdp_edge?.sha256 === hashes.xdp && record.tc_gre?.sha256 === hashes.tc && record.tc_host_fwd?.sha256 === hashes.fwd && dataplaneExists(where)) {
        try {
          dp = openDataplane(where);
          if (dp.xdpEdge.id !== record.xdp_edge.prog_id || dp.tcGre.id !== record.tc_gre.prog_id || dp.tcHostFwd.id !== record.tc_host_fwd?.prog_id) {
            dp.close();
            dp = undefined;
          }
        } catch {
          dp = undefined;
        }
      }
      if (!dp) {
        dp = loadDataplane({ ...where, objects: paths });
        const next: ObjectsRecord = { xdp_edge: { sha256: hashes.xdp, prog_id: dp.xdpEdge.id }, tc_gre: { sha256: hashes.tc, prog_id: dp.tcGre.id }, tc_host_fwd: { sha256: hashes.fwd, prog_id: dp.tcHostFwd.id } };
        const tmp = `${this.recordPath()}.tmp`;
        writeFileSync(tmp, JSON.stringify(next, null, 1) + '\n');
        renameSync(tmp, this.recordPath());
        changes.push(`bpf: load ${OT_PROG_XDP_EDGE} (prog ${dp.xdpEdge.id}), ${OT_PROG_TC_GRE} (prog ${dp.tcGre.id}) and ${OT_PROG_TC_HOST_FWD} (prog ${dp.tcHostFwd.id}), pinned under ${dp.layout.root}`);
      }
      this.dp = dp;
      this.bl4Known = undefined;
      this.loadError = undefined;
      return dp;
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
  accountNumbers(accounts: readonly AccountDocument[]): Map<string, number> {
    const dp = this.require();
    if (this.numbers.fresh && !this.adopted) this.adoptAccountNumbers(dp, accounts);
    const fresh = accounts.filter((a) => !this.numbers.accounts.has(a.id));
    if (fresh.length) {
      const assigned = fresh.map((a) => this.numbers.accounts.assign(a.id));
      this.numbers.save();
      for (const n of assigned) for (let r = 0; r < OT_REASON_SLOTS; r++) dp.maps.counters.set(n * OT_REASON_SLOTS + r, { packets: 0n, bytes: 0n });
    }
    return new Map(accounts.map((a) => [a.id, this.numbers.accounts.get(a.id)!]));
  }

  /** Slots for the active rules; new slots start with a full bucket and zero statistics. */
  ruleSlots(ruleIds: readonly string[]): Map<string, number> {
    const dp = this.require();
    const fresh = ruleIds.filter((id) => !this.numbers.slots.has(id));
    if (fresh.length) {
      const assigned = fresh.map((id) => this.numbers.slots.assign(id));
      this.numbers.save();
      for (const s of assigned) {
        dp.maps.rlState.set(s, { tokens: 0n, last_ns: 0n });
        dp.maps.ruleStats.set(s, { packets: 0n, bytes: 0n, dropped_packets: 0n, dropped_bytes: 0n });
      }
    }
    return new Map(ruleIds.map((id) => [id, this.numbers.slots.get(id)!]));
  }

  /**
   * The numbers file is gone but the maps survived (data dir wiped, pins kept): take each account's number from
   * the ot_prefixes entry of one of its customer prefixes, so nothing in the kernel is renumbered.
   */
  private adoptAccountNumbers(dp: Dataplane, accounts: readonly AccountDocument[]): void {
    this.adopted = true;
    const held = new Map<string, number>();
    for (const [k, v] of dp.maps.prefixes.entries()) held.set(cidrOfLpmKey(k), v);
    if (held.size === 0) return;
    for (const a of [...accounts].sort((x, y) => (x.id < y.id ? -1 : 1))) {
      for (const p of a.prefixes) {
        const n = held.get(p.cidr);
        if (n !== undefined && this.numbers.accounts.isFree(n)) {
          this.numbers.accounts.set(a.id, n);
          break;
        }
      }
    }
    this.numbers.save();
  }

  // --- generic map diffing -----------------------------------------------------------------------------------------

  /**
   * Writes the wanted entries that are missing or differ (one lookup each). `present` says whether a key exists
   * exactly: an LPM trie's lookup answers the longest match, so a covering prefix would pass for a missing one.
   */
  private ensure<K, V>(
    map: TypedMap<K, V>,
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
    map: TypedMap<K, V>,
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

  private bytesEqual<V>(map: TypedMap<unknown, V>): (a: V, b: V) => boolean {
    return (a, b) => map.spec.value.encode(a).equals(map.spec.value.encode(b));
  }

  // --- global ------------------------------------------------------------------------------------------------------

  /** XDP on the uplink: attached, or atomically replaced when an older program of ours runs there. */
  private ensureXdp(dp: Dataplane, changes: string[]): void {
    const { hostNetns: netns, uplink } = this.o.node;
    const ifindex = ifIndex(uplink, netns);
    const state = queryXdp({ ifindex, netns });
    if (state.progId === dp.xdpEdge.id && state.mode === this.mode) return;
    if (state.progId === 0) {
      attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: null });
      changes.push(`${netns}: attach XDP ${OT_PROG_XDP_EDGE} (prog ${dp.xdpEdge.id}, ${this.mode}) on ${uplink}`);
      this.groChecked = false;
      return;
    }
    const old = BpfProgram.fromId(state.progId);
    try {
      if (old.name !== OT_PROG_XDP_EDGE)
        throw new Error(`${uplink} runs another XDP program (${old.name || 'unnamed'}, id ${old.id}): not replacing what is not ours`);
      if (state.mode === this.mode) {
        // One netlink call swaps the program: no packet sees the uplink without one (XDP_FLAGS_REPLACE).
        attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: old });
        changes.push(`${netns}: replace XDP on ${uplink}: prog ${old.id} → ${dp.xdpEdge.id} (atomic)`);
      } else if (state.mode === 'native' || state.mode === 'generic') {
        // Across modes there is no atomic swap: the operator asked for another mode.
        detachXdp({ ifindex, netns, mode: state.mode, expected: old });
        attachXdp({ ifindex, netns, prog: dp.xdpEdge, mode: this.mode, replace: null });
        changes.push(`${netns}: move XDP on ${uplink} from ${state.mode} to ${this.mode} mode (prog ${dp.xdpEdge.id})`);
      } else {
        throw new Error(`${uplink} has XDP in ${state.mode} mode: not supported`);
      }
    } finally {
      old.close();
    }
  }

  /**
   * DESIGN.md §2: GRO on the XDP device (native XDP on a veth turns TSO off on its peer; GRO gets the throughput
   * back). Checked once per run and after every new attachment (one ethtool spawn).
   */
  async ensureGro(changes: string[]): Promise<void> {
    if (this.groChecked || !this.dp) return;
    const { hostNetns, uplink } = this.o.node;
    const f = await readLinkFeatures(hostNetns, uplink);
    if (!f.gro) {
      await setLinkFeatures(hostNetns, uplink, { gro: true });
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
      this.ensureXdp(dp, changes);
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
    this.ensure(m.config, [{ key: 0, value: g.config, label: `sample_every=${g.config.sample_every}` }], this.bytesEqual(m.config), changes);
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
      if (released) this.numbers.save();
    }
    // The program after its maps: an upgraded program may read maps (ot_bl4_*) its predecessor never filled.
    this.ensureXdp(dp, changes);
    this.globalSynced = { version, pruned: o.prune };
  }

  // --- per account -------------------------------------------------------------------------------------------------

  private prefixWants(a: AccountDataplane): Want<ReturnType<typeof lpmKey>, number>[] {
    return a.prefixes.map((p) => ({ key: lpmKey(p.cidr), value: a.number, label: `${p.cidr} → ${a.number} (${p.source})` }));
  }

  private peerWants(a: AccountDataplane) {
    return a.peers.map((p) => ({ key: ipv4Be32(p), value: { account: a.number, flags: 0 }, label: `${p} → ${a.number}` }));
  }

  private tunnelWants(a: AccountDataplane, cookie: bigint) {
    return a.tunnels.map((t) => ({
      key: { netns_cookie: cookie, mac: macBytes(t.mac) },
      value: { local: ipv4Be32(t.local), remote: ipv4Be32(t.remote), account: a.number, ttl: t.ttl, flags: t.df ? 1 : 0, host_mac: macBytes(t.hostMac) },
      label: `${t.name} (${t.mac}): ${t.local} → ${t.remote}`,
    }));
  }

  /**
   * One account: tc_gre on edge0's egress in its netns (the pinned program shared by every customer) and
   * tc_host_fwd on the host-side veth's ingress (the fast path out, shared likewise), then its
   * entries — prefixes and delivery before tunnels and GRE peers, so decap never accepts a peer whose packets it
   * could not check or deliver.
   */
  applyAccount(a: AccountDataplane, netns: string, hostVeth: string, changes: string[]): void {
    const dp = this.require();
    const ifindex = ifIndex(CUSTOMER_VETH, netns);
    const attached = queryTc({ ifindex, netns, direction: 'egress' });
    if (attached !== dp.tcGre.id) {
      // `tc filter replace`: the new program takes over in one step, whatever ran before.
      attachTc({ ifindex, netns, direction: 'egress', prog: dp.tcGre });
      changes.push(`${netns}: ${attached ? `replace tc egress prog ${attached} →` : 'attach tc egress'} ${OT_PROG_TC_GRE} (prog ${dp.tcGre.id}) on ${CUSTOMER_VETH}`);
    }
    const cookie = netnsCookie(netns);
    const hostIfindex = ifIndex(hostVeth, this.o.node.hostNetns);
    // The fast path out of the customer netns (bpf/tc_host_fwd.c): it reads ot_config and ot_prefixes only, so it
    // may run before this account's entries exist (it then leaves packets to the host stack).
    const { hostNetns } = this.o.node;
    const fwdAttached = queryTc({ ifindex: hostIfindex, netns: hostNetns, direction: 'ingress' });
    if (fwdAttached !== dp.tcHostFwd.id) {
      attachTc({ ifindex: hostIfindex, netns: hostNetns, direction: 'ingress', prog: dp.tcHostFwd });
      changes.push(`${hostNetns}: ${fwdAttached ? `replace tc ingress prog ${fwdAttached} →` : 'attach tc ingress'} ${OT_PROG_TC_HOST_FWD} (prog ${dp.tcHostFwd.id}) on ${hostVeth}`);
    }
    const m = dp.maps;
    const wants = this.prefixWants(a);
    this.ensure(m.prefixes, wants, (x, y) => x === y, changes, this.prefixPresent);
    for (const w of wants) this.prefixKeys?.add(this.prefixKeyOf(w.key));
    this.ensure(
      m.delivery,
      [{ key: a.number, value: { ifindex: hostIfindex, dmac: macBytes(a.delivery.dmac), smac: macBytes(a.delivery.smac) }, label: `${a.number} → ${hostVeth} (ifindex ${hostIfindex})` }],
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
      let cookie: bigint;
      try {
        cookie = netnsCookie(customerNetns(this.o.node, a.accountId));
      } catch {
        continue;
      }
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
    if (released) this.numbers.save();
  }

  /** Every entry of one account (deleted), then its number is free. */
  removeAccount(accountId: string, changes: string[]): void {
    const n = this.numbers.accounts.get(accountId);
    if (n === undefined || !this.dp) return;
    const m = this.dp.maps;
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
    this.numbers.save();
  }

  // --- counters ----------------------------------------------------------------------------------------------------

  /** Every non-zero counter by account id (null: no account) and reason, and each rule's statistics. */
  counters(): Omit<NodeCounters, 'node_id' | 'updated_at'> {
    const dp = this.require();
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
  describe(): { xdp_prog_id: number; tc_prog_id: number; pins: string } | undefined {
    if (!this.dp) return undefined;
    return { xdp_prog_id: this.dp.xdpEdge.id, tc_prog_id: this.dp.tcGre.id, pins: this.dp.layout.root };
  }

  /** Closes fds; pins and attachments stay (traffic keeps flowing while the agent restarts). */
  close(): void {
    this.dp?.close();
    this.dp = undefined;
    this.loadError = 'closed';
  }
}

/** Whether a record of loaded objects exists in a data dir (tests). */
export function objectsRecordExists(dataDir: string): boolean {
  return existsSync(join(dataDir, 'dataplane-objects.json'));
}
