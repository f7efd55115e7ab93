/**
 * Which shortcuts the host netns's routing allows the fast path now (ot_config.flags OT_CONFIG_F_FIB_DIRECT_IN,
 * _GRE, OT_CONFIG_F_FIB_DIRECT, OT_CONFIG_F_SRC_UNICAST; bpf/lib/fastpath.h, ot_direct_table and ot_v4_source_ok,
 * says what the programs then do and why it is the stack's own decision). Pure: from the host netns's rules and
 * routes as they are now, and the keys of ot_prefixes and ot_gre_peers.
 *
 * The premises, each one the kernel's behaviour depends on:
 *  R. The rules of both families include the kernel's — 0 lookup local, 32766 lookup main, IPv4 also 32767 lookup
 *     default — and ours, `fwmark F/0xffffffff lookup T` at our priority, each plain (no other selector: no
 *     from/to/iif/oif/tos, no "not", suppress_prefixlen unset, no other attribute at all). Any other rule is
 *     "foreign". A foreign rule cannot match a class of lookups when it has a selector that excludes the whole
 *     class and is not inverted (selectors are ANDed in fib_rule_match, so whatever else it carries only narrows
 *     it further): `oif` (our lookups are input lookups: flowi_oif 0), `iif` naming another device, a `fwmark`
 *     the class's mark fails, a `to` prefix disjoint from every destination of the class.
 *       _FIB_DIRECT_IN  (xdp_edge and tc_uplink_in: from the uplink, to a key of ot_prefixes, mark F): R, and every foreign rule
 *                       of either family excluded for that class; L for the keys of ot_prefixes.
 *       _FIB_DIRECT_GRE (tc_host_fwd: from a customer veth, IPv4 to a key of ot_gre_peers, mark 0): R, every
 *                       foreign IPv4 rule excluded for that class; L for the keys of ot_gre_peers.
 *       _FIB_DIRECT     (everything else tc_host_fwd looks up, and the reverse lookups): R with no foreign rule
 *                       at all; L for both; H.
 *  L. The local table (255) has no route overlapping those keys: the first rule's lookup misses for every
 *     destination the programs look up directly without asking ot_host_local (any route there counts, whatever its
 *     type: the local table answers first).
 *  U. Every IPv4 route outside the local table is unicast or an error route (unreachable, blackhole, prohibit,
 *     throw): a reverse lookup for a source outside the local table — whatever rules it walks, and in whatever
 *     table — either fails or finds a unicast route, and fib_validate_source with rp_filter 0 accepts both
 *     (OT_CONFIG_F_SRC_UNICAST: U and H).
 *  H. The local table fits ot_host_local (OT_HOST_LOCAL_MAX prefixes), which the agent keeps equal to it (both
 *     families): the programs ask it about sources, and about destinations that are no key of the two maps.
 * Drift (a rule or an address added by hand) is seen by the next check — every data-plane pass (the resync
 * period) — and the flag goes off then; packets between the change and that pass took the shortcut. The agent's
 * own new keys are checked at once against the last check's local routes and foreign `to` prefixes (watch).
 */
import { OT_CONFIG_F_FIB_DIRECT, OT_CONFIG_F_FIB_DIRECT_GRE, OT_CONFIG_F_FIB_DIRECT_IN, OT_CONFIG_F_SRC_UNICAST, OT_HOST_LOCAL_MAX } from '../../kernel/bpf/abi.generated.js';
import type { Route, RouteType } from '../../kernel/routes.js';
import type { RuleDetail } from '../../kernel/rules.js';
import { cidrOf, lastAddress, parseAddressWithLength, type Cidr } from '../../model/ip.js';

/** A prefix as the kernel reports it (a rule's `to` may keep host bits: fib_rule_match masks them). */
function prefixOf(text: string): Cidr {
  const { address, length } = parseAddressWithLength(text);
  return cidrOf(address, length);
}

const RT_TABLE_DEFAULT = 253;
const RT_TABLE_MAIN = 254;
const RT_TABLE_LOCAL = 255;
/** FIB_RULE_PERMANENT: a flag of the kernel's own rules in some versions; it changes no match. */
const FIB_RULE_PERMANENT = 1;
/** FIB_RULE_INVERT: `not` — the rule matches what its selectors do not. */
const FIB_RULE_INVERT = 2;
const NO_SUPPRESS = 0xffffffff;

/** RTN_* of each route type (ot_host_local's value: informational). */
export const RTN_OF: Record<RouteType, number> = {
  unicast: 1, local: 2, broadcast: 3, anycast: 4, multicast: 5, blackhole: 6, unreachable: 7, prohibit: 8, throw: 9, nat: 10,
};
/** Types whose lookup is a unicast route or a failure (with rp_filter 0: accepted). */
const UNICAST_OR_ERROR: ReadonlySet<RouteType> = new Set(['unicast', 'blackhole', 'unreachable', 'prohibit', 'throw']);

export interface FibDirectInput {
  fwmark: number;
  /** The customer table our rule looks up. */
  table: number;
  rulePriority: number;
  /** The uplink (xdp_edge's device). */
  uplink: string;
  /** Is this a host-side customer veth (where tc_host_fwd runs)? */
  isCustomerVeth: (dev: string) => boolean;
  /** Every rule of the host netns, both families (listRuleDetails). */
  rules: readonly RuleDetail[];
  /** Every route of the host netns, every table, both families (listRoutes). */
  routes: readonly Route[];
  /** Keys of ot_prefixes (customer prefixes, tunnel subnets) and of ot_gre_peers (as /32), as CIDRs. */
  prefixes: readonly string[];
  peers: readonly string[];
}

export interface FibDirectVerdict {
  /** The OT_CONFIG_F_FIB_DIRECT* and OT_CONFIG_F_SRC_UNICAST bits whose premises hold. */
  flags: number;
  /** Why each other bit is off, by its short name (in, gre, all, src), for the log. */
  off: Record<string, string>;
  /** The local table's prefixes (both families, deduplicated) → RTN type: what ot_host_local must hold. */
  local: Map<string, number>;
  /** Prefixes a new key must not overlap while the rule bits stay on: the local table's, foreign rules' `to`. */
  watch: string[];
  /** The keys (prefixes and peers) this verdict was made with: any other key is new. */
  keys: Set<string>;
}

export const FIB_BITS = { in: OT_CONFIG_F_FIB_DIRECT_IN, gre: OT_CONFIG_F_FIB_DIRECT_GRE, all: OT_CONFIG_F_FIB_DIRECT, src: OT_CONFIG_F_SRC_UNICAST } as const;
/** The bits that depend on the rules and on keys not being local (R, L). */
export const RULE_BITS = OT_CONFIG_F_FIB_DIRECT_IN | OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_FIB_DIRECT;
/** Every bit this module decides. */
export const SHORTCUT_BITS = RULE_BITS | OT_CONFIG_F_SRC_UNICAST;

const ruleText = (r: RuleDetail) =>
  `IPv${r.family} rule ${r.priority}: ${r.action}${r.table !== undefined ? ` table ${r.table}` : ''}${r.fwmark !== undefined ? ` fwmark 0x${r.fwmark.toString(16)}/0x${(r.fwmask ?? 0).toString(16)}` : ''}${r.from ? ` from ${r.from}` : ''}${r.to ? ` to ${r.to}` : ''}${r.iif ? ` iif ${r.iif}` : ''}${r.oif ? ` oif ${r.oif}` : ''}${r.otherAttributes.length ? ` (attributes ${r.otherAttributes.join(', ')})` : ''}`;

/** Which of premise R's rules `r` is, if it is one. */
function expectedRuleKey(r: RuleDetail, i: FibDirectInput): string | undefined {
  const plain =
    r.action === 'lookup' && r.from === undefined && r.to === undefined && r.iif === undefined && r.oif === undefined && r.tos === 0 &&
    (r.flags & ~FIB_RULE_PERMANENT) === 0 && (r.suppressPrefixlen ?? NO_SUPPRESS) === NO_SUPPRESS && r.otherAttributes.length === 0;
  if (!plain) return undefined;
  const noMark = r.fwmark === undefined;
  if (r.priority === 0 && r.table === RT_TABLE_LOCAL && noMark) return 'local';
  if (r.priority === 32766 && r.table === RT_TABLE_MAIN && noMark) return 'main';
  if (r.priority === 32767 && r.table === RT_TABLE_DEFAULT && noMark && r.family === 4) return 'default';
  if (r.priority === i.rulePriority && r.table === i.table && r.fwmark === i.fwmark && r.fwmask === 0xffffffff) return 'ours';
  return undefined;
}

/** A class of lookups: from which devices, to which destinations (does one overlap this prefix?), with which mark. */
interface LookupClass {
  iif: (dev: string) => boolean;
  dsts: (c: Cidr) => boolean;
  mark: number;
}

/** Can `r` never match a lookup of class `c`? (premise R) */
export function ruleExcludes(r: RuleDetail, c: LookupClass): boolean {
  if (r.flags & FIB_RULE_INVERT) return false;
  if (r.oif !== undefined) return true;
  if (r.iif !== undefined && !c.iif(r.iif)) return true;
  if (r.fwmark !== undefined && ((r.fwmark ^ c.mark) & (r.fwmask ?? 0xffffffff)) >>> 0 !== 0) return true;
  if (r.to !== undefined && !c.dsts(prefixOf(r.to))) return true;
  return false;
}

export function fibDirectVerdict(i: FibDirectInput): FibDirectVerdict {
  const local = new Map<string, number>();
  for (const r of i.routes) if (r.table === RT_TABLE_LOCAL && !local.has(r.dst)) local.set(r.dst, RTN_OF[r.type]);
  const off: Record<string, string> = {};
  const watch = [...local.keys()];
  const rulesOff = (why: string) => {
    for (const k of ['in', 'gre', 'all'] as const) off[k] ??= why;
  };
  if (i.fwmark === 0) rulesOff('the fwmark is 0');
  // R: the kernel's rules and ours, once each; the rest is foreign
  const foreign: RuleDetail[] = [];
  for (const family of [4, 6] as const) {
    const want = family === 4 ? ['default', 'local', 'main', 'ours'] : ['local', 'main', 'ours'];
    const seen = new Set<string>();
    for (const r of i.rules) {
      if (r.family !== family) continue;
      const k = expectedRuleKey(r, i);
      if (k === undefined || seen.has(k)) foreign.push(r);
      else seen.add(k);
    }
    const missing = want.filter((k) => !seen.has(k));
    if (missing.length) rulesOff(`IPv${family} lacks the plain rule${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  }
  for (const r of foreign) if (r.to !== undefined) watch.push(r.to);
  if (foreign.length) off['all'] ??= `a policy rule besides the kernel's and ours: ${ruleText(foreign[0]!)}`;
  const prefixes = keyIndex(i.prefixes);
  const peers = keyIndex(i.peers);
  const inClass: LookupClass = { iif: (d) => d === i.uplink, dsts: (c) => prefixes.overlapping(c) !== undefined, mark: i.fwmark };
  const blockerIn = foreign.find((r) => !ruleExcludes(r, inClass));
  if (blockerIn) off['in'] ??= `a policy rule that may match customer traffic from the uplink: ${ruleText(blockerIn)}`;
  const greClass: LookupClass = { iif: i.isCustomerVeth, dsts: (c) => peers.overlapping(c) !== undefined, mark: 0 };
  const blockerGre = foreign.find((r) => r.family === 4 && !ruleExcludes(r, greClass));
  if (blockerGre) off['gre'] ??= `a policy rule that may match GRE to customer routers: ${ruleText(blockerGre)}`;
  // L: the local table claims no key
  const hitPrefix = localOverlap(local, i.prefixes);
  if (hitPrefix !== undefined) (off['in'] ??= `the local table's ${hitPrefix}`), (off['all'] ??= `the local table's ${hitPrefix}`);
  const hitPeer = localOverlap(local, i.peers);
  if (hitPeer !== undefined) (off['gre'] ??= `the local table's ${hitPeer}`), (off['all'] ??= `the local table's ${hitPeer}`);
  // H: room in ot_host_local
  if (local.size > OT_HOST_LOCAL_MAX) {
    const why = `the local table has ${local.size} prefixes, more than ot_host_local holds (${OT_HOST_LOCAL_MAX})`;
    off['all'] ??= why;
    off['src'] ??= why;
  }
  // U: IPv4 routes outside the local table are unicast or error routes
  const odd = i.routes.find((r) => r.family === 4 && r.table !== RT_TABLE_LOCAL && !UNICAST_OR_ERROR.has(r.type));
  if (odd) off['src'] ??= `a ${odd.type} route ${odd.dst} in table ${odd.table}`;
  let flags = 0;
  for (const [name, bit] of Object.entries(FIB_BITS)) if (off[name] === undefined) flags |= bit;
  return { flags, off, local, watch, keys: new Set([...i.prefixes, ...i.peers]) };
}

/** The first of `keys` one of `prefixes` overlaps ("<prefix> overlaps <key>"). */
export function localOverlap(prefixes: ReadonlyMap<string, number> | readonly string[], keys: readonly string[]): string | undefined {
  const index = keyIndex(keys);
  for (const dst of Array.isArray(prefixes) ? prefixes : (prefixes as ReadonlyMap<string, number>).keys()) {
    const hit = index.overlapping(prefixOf(dst));
    if (hit !== undefined) return `${dst} overlaps ${hit}`;
  }
  return undefined;
}

/**
 * Keys (prefixes) indexed for "which key overlaps this prefix?" in O(distinct lengths + log n): a key contains
 * the prefix when the prefix's network, cut to the key's length, is that key; a key lies inside the prefix (or
 * contains it) when its network falls in the prefix's range — one binary search in the keys sorted by network.
 * Built once per keys array (the agent passes the same arrays while its plan stands): parsing thousands of keys
 * on every check cost ~30 ms at 1000 customers.
 */
interface KeyIndex {
  overlapping(c: Cidr): string | undefined;
}

const keyIndexes = new WeakMap<readonly string[], KeyIndex>();

export function keyIndex(keys: readonly string[]): KeyIndex {
  const cached = keyIndexes.get(keys);
  if (cached) return cached;
  const fams = new Map<number, { exact: Map<string, string>; lengths: number[]; sorted: { network: bigint; text: string }[] }>();
  for (const text of keys) {
    const c = prefixOf(text);
    let f = fams.get(c.family);
    if (!f) fams.set(c.family, (f = { exact: new Map(), lengths: [], sorted: [] }));
    f.exact.set(`${c.network}/${c.length}`, text);
    if (!f.lengths.includes(c.length)) f.lengths.push(c.length);
    f.sorted.push({ network: c.network, text });
  }
  for (const f of fams.values()) f.sorted.sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  const index: KeyIndex = {
    overlapping(c) {
      const f = fams.get(c.family);
      if (!f) return undefined;
      for (const len of f.lengths) {
        if (len > c.length) continue;
        const hit = f.exact.get(`${cidrOf({ family: c.family, value: c.network }, len).network}/${len}`);
        if (hit !== undefined) return hit;
      }
      // the first key whose network is >= c's; inside c's range: it overlaps (a shorter one was found above)
      const last = lastAddress(c).value;
      let lo = 0;
      let hi = f.sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (f.sorted[mid]!.network < c.network) lo = mid + 1;
        else hi = mid;
      }
      const next = f.sorted[lo];
      return next !== undefined && next.network <= last ? next.text : undefined;
    },
  };
  keyIndexes.set(keys, index);
  return index;
}
