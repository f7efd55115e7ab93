/**
 * What the eBPF data plane's maps must hold on an edge server — pure, from the accounts, the operator settings,
 * the mitigation rules and the numbers this node gave accounts and rules (DESIGN.md §1–2):
 *
 *   per account (its data-plane number n, 1..1023):
 *     ot_prefixes   customer prefix → n                    attribution by destination; anti-spoofing of decap
 *                   tunnel interface subnet → n            health checks come back from the customer's tunnel
 *                                                          address: without this they would count as spoofed
 *     ot_gre_peers  customer GRE endpoint → n              decap accepts GRE from it (to any anycast endpoint)
 *     ot_delivery   n → host-side veth (ifindex at runtime), MACs of both ends, MTU of its IPv6 host routes
 *     ot_tunnels    (customer netns cookie at runtime, tunnel MAC) → outer src = anycast endpoint,
 *                   outer dst = customer endpoint, TTL, DF, Ethernet dst = host-side veth
 *   global:
 *     ot_anycast    settings.anycast_endpoints
 *     ot_blocklist  settings.blocklist (source prefixes)
 *     ot_mitigation destination prefix → rule set: its own rules and those of covering prefixes, copied down
 *                   (the program reads the longest match only), expired rules left out
 *     ot_config     sampling; the node's fwmark and customer table, whether the fast path is on (bpf/lib/fastpath.h)
 *
 * Two accounts cannot both own one map key. Customer prefixes never collide (the API keeps tenants apart), but
 * tunnel interface subnets (private, per tunnel) and customer GRE endpoints paired with different anycast
 * endpoints can: the account whose id sorts first keeps the key, and the other gets a warning — not an error: its
 * forward path works, and an account in error would have its prefixes withdrawn from BGP for what is at worst a
 * failing health check or GRE return path.
 */
import type { AccountDocument, Settings } from '../../model/schemas.js';
import { tunnelAddresses } from '../../model/gre-tunnel.js';
import { keys } from '../../model/keys.js';
import {
  decodeMitigation,
  effectiveRuleSets,
  isExpired,
  MITIGATION_MAX_PREFIXES,
  MITIGATION_RULES_PER_PREFIX,
  protocolNumber,
  tcpFlagsMatch,
  type Mitigation,
} from '../../model/mitigation.js';
import { Action, OT_CONFIG_F_FAST_PATH, type Config, type Rule } from '../../kernel/bpf/abi.generated.js';
import { accountMtu } from './host.js';
import { customerVethMac, hostVethMac, tunnelMac, tunnelNumbers, type NodeConfig } from './node.js';

export interface PrefixEntry {
  cidr: string;
  /** Why the account holds it: "prefix" or "tunnel <name>". */
  source: string;
}

export interface TunnelEntry {
  name: string;
  /** The tunnel MAC the customer netns's neighbour entry holds (key, with the netns cookie). */
  mac: string;
  local: string;
  remote: string;
  ttl: number;
  df: boolean;
  /** Ethernet destination after encapsulation: the host-side veth. */
  hostMac: string;
}

export interface AccountDataplane {
  accountId: string;
  number: number;
  prefixes: PrefixEntry[];
  /** Customer GRE endpoints. */
  peers: string[];
  /** mtu6: the MTU of the account's IPv6 routes in the customer table (desired/customer.ts host routes). */
  delivery: { dmac: string; smac: string; mtu6: number };
  tunnels: TunnelEntry[];
  /** Keys this account could not get (another account holds them): what will not work for it on this node. */
  warnings: string[];
}

export interface MitigationEntry {
  prefix: string;
  /** Rule ids in evaluation order (for logs and statistics). */
  ruleIds: string[];
  rules: Rule[];
}

export interface GlobalDataplane {
  anycast: string[];
  blocklist: string[];
  mitigation: MitigationEntry[];
  config: Config;
  /** Rules that are in force now (not expired). */
  activeRuleIds: string[];
  /** When the next active rule expires (wall-clock ms), to re-plan then; null when none does. */
  nextExpiryMs: number | null;
  /** Rules the data plane has no room for. */
  warnings: string[];
}

export interface DataplanePlanInput {
  node: NodeConfig;
  /** Accounts to serve (decoded, without kernel-name clashes). */
  accounts: readonly AccountDocument[];
  /** Every account's number on this node. */
  numbers: ReadonlyMap<string, number>;
  settings: Settings;
  mitigations: readonly Mitigation[];
  /** Rule id → slot (token bucket and statistics index); every active rule has one. */
  slots: ReadonlyMap<string, number>;
  nowMs: number;
  /** bpf_ktime_get_ns() − wall-clock ns: turns expires_at into the program's clock. */
  monotonicOffsetNs: bigint;
  /** CPUs the per-CPU token buckets are divided over. */
  cpus: number;
  /** Sample one packet in N to the ring buffer (0 = off). */
  sampleEvery: number;
}

export interface DataplanePlan {
  accounts: Map<string, AccountDataplane>;
  global: GlobalDataplane;
}

const byId = (a: AccountDocument, b: AccountDocument) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Per-account entries, keys shared between accounts resolved (first account id wins). */
function accountEntries(node: NodeConfig, accounts: readonly AccountDocument[], numbers: ReadonlyMap<string, number>): Map<string, AccountDataplane> {
  const out = new Map<string, AccountDataplane>();
  const sorted = [...accounts].sort(byId);
  for (const a of sorted) {
    const number = numbers.get(a.id);
    if (number === undefined) throw new Error(`account ${a.id} has no data-plane number`);
    const hostMac = hostVethMac(node, a.id);
    const tunnelNumber = tunnelNumbers(a.gre_tunnels.map((t) => t.id));
    out.set(a.id, {
      accountId: a.id,
      number,
      prefixes: [],
      peers: [],
      delivery: { dmac: customerVethMac(node, a.id), smac: hostMac, mtu6: accountMtu(a) },
      tunnels: a.gre_tunnels.map((t) => ({
        name: t.name,
        mac: tunnelMac(tunnelNumber.get(t.id)!),
        local: t.edge_gre_endpoint,
        remote: t.customer_gre_endpoint,
        ttl: t.ttl,
        // DF on the outer header: the route MTU inside the customer netns already leaves room for GRE, so a
        // packet that still does not fit must not be fragmented by the internet (path MTU discovery works).
        df: true,
        hostMac,
      })),
      warnings: [],
    });
  }
  // Prefixes first, for every account, then tunnel subnets: a customer prefix always keeps its key.
  const prefixOwner = new Map<string, string>();
  const claim = (a: AccountDocument, cidr: string, source: string) => {
    const owner = prefixOwner.get(cidr);
    const entry = out.get(a.id)!;
    if (owner === undefined) {
      prefixOwner.set(cidr, a.id);
      entry.prefixes.push({ cidr, source });
    } else if (owner !== a.id) {
      const other = accounts.find((x) => x.id === owner);
      entry.warnings.push(`${source} ${cidr}: account ${other?.name ?? owner} holds this prefix in the data plane on this node`);
    }
  };
  for (const a of sorted) for (const p of a.prefixes) claim(a, p.cidr, 'prefix');
  for (const a of sorted) {
    for (const t of a.gre_tunnels) {
      // Health checks (and anything the customer router sends from its tunnel address) come back with a source
      // in the tunnel's interface subnet: decap accepts only sources the account holds.
      claim(a, tunnelAddresses(t.interface_address).subnet, `tunnel ${t.name}`);
    }
  }
  const peerOwner = new Map<string, string>();
  for (const a of sorted) {
    const entry = out.get(a.id)!;
    for (const t of a.gre_tunnels) {
      const owner = peerOwner.get(t.customer_gre_endpoint);
      if (owner === undefined) {
        peerOwner.set(t.customer_gre_endpoint, a.id);
        entry.peers.push(t.customer_gre_endpoint);
      } else if (owner !== a.id) {
        const other = accounts.find((x) => x.id === owner);
        entry.warnings.push(
          `tunnel ${t.name}: GRE from ${t.customer_gre_endpoint} is already accepted for account ${other?.name ?? owner} on this node ` +
            '(decap knows a customer endpoint by its address alone)',
        );
      }
    }
  }
  return out;
}

/** A rule as ot_mitigation holds it. */
export function ruleValue(m: Mitigation, slot: number, o: { monotonicOffsetNs: bigint; cpus: number }): Rule {
  const flags = tcpFlagsMatch(m.tcp_flags);
  let rate = { rate_pps: 0, burst: 0 };
  if (m.action === 'rate-limit' && m.rate_limit) {
    // Per CPU (see bpf/xdp_edge.c): the total admitted when traffic spreads over every CPU is the configured one.
    rate = { rate_pps: Math.ceil(m.rate_limit.pps / o.cpus), burst: Math.ceil(m.rate_limit.burst / o.cpus) };
  }
  return {
    expires_ns: m.expires_at === null ? 0n : BigInt(Date.parse(m.expires_at)) * 1_000_000n + o.monotonicOffsetNs,
    slot,
    ...rate,
    sport_min: m.source_ports?.min ?? 0,
    sport_max: m.source_ports?.max ?? 0xffff,
    dport_min: m.destination_ports?.min ?? 0,
    dport_max: m.destination_ports?.max ?? 0xffff,
    len_min: m.length?.min ?? 0,
    len_max: m.length?.max ?? 0xffff,
    proto: protocolNumber(m.protocol),
    tcp_flags_mask: flags.mask,
    tcp_flags_value: flags.value,
    ttl_min: m.ttl?.min ?? 0,
    ttl_max: m.ttl?.max ?? 255,
    action: m.action === 'drop' ? Action.DROP : Action.RATELIMIT,
  };
}

/**
 * The mitigation rules among a store listing's key-values (other keys are skipped). A document that does not
 * decode is left out and reported as "<rule id>: <why>" — the others still apply.
 */
export function decodeMitigations(kvs: Iterable<{ key: string; value: string }>): { mitigations: Mitigation[]; problems: string[] } {
  const mitigations: Mitigation[] = [];
  const problems: string[] = [];
  for (const kv of kvs) {
    if (!kv.key.startsWith(keys.mitigationsPrefix)) continue;
    try {
      mitigations.push(decodeMitigation(kv.value));
    } catch (err) {
      problems.push(`${kv.key.slice(keys.mitigationsPrefix.length)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { mitigations, problems };
}

/** Mitigation rules in force at `nowMs`, oldest first. */
export function activeMitigations(mitigations: readonly Mitigation[], nowMs: number): Mitigation[] {
  return mitigations
    .filter((m) => !isExpired(m, nowMs))
    .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1));
}

function globalEntries(i: DataplanePlanInput): GlobalDataplane {
  const warnings: string[] = [];
  const active = activeMitigations(i.mitigations, i.nowMs);
  let sets = effectiveRuleSets(active);
  if (sets.length > MITIGATION_MAX_PREFIXES) {
    warnings.push(`mitigation: ${sets.length} prefixes have rules, the data plane holds ${MITIGATION_MAX_PREFIXES}; the rest are not applied`);
    sets = sets.slice(0, MITIGATION_MAX_PREFIXES);
  }
  const mitigation: MitigationEntry[] = [];
  for (const s of sets) {
    let rules = s.rules.filter((r) => i.slots.has(r.id));
    if (rules.length > MITIGATION_RULES_PER_PREFIX) {
      const left = rules.slice(MITIGATION_RULES_PER_PREFIX).map((r) => r.id);
      warnings.push(`mitigation ${s.prefix}: ${rules.length} rules apply, the data plane evaluates ${MITIGATION_RULES_PER_PREFIX}; not applied there: ${left.join(', ')}`);
      rules = rules.slice(0, MITIGATION_RULES_PER_PREFIX);
    }
    mitigation.push({
      prefix: s.prefix,
      ruleIds: rules.map((r) => r.id),
      rules: rules.map((r) => ruleValue(r, i.slots.get(r.id)!, i)),
    });
  }
  const expiries = active.filter((m) => m.expires_at !== null).map((m) => Date.parse(m.expires_at!));
  return {
    anycast: [...i.settings.anycast_endpoints].sort(),
    blocklist: i.settings.blocklist.map((b) => b.cidr),
    mitigation,
    // The fast path routes with the node's fwmark: the one its ip rule and nft `mark` chain use (desired/host.ts).
    // OT_CONFIG_F_FIB_DIRECT is not the plan's: the data-plane manager adds it while the host's routing allows it.
    config: { sample_every: i.sampleEvery, flags: (i.node.fastPath ?? true) ? OT_CONFIG_F_FAST_PATH : 0, fwmark: i.node.fwmark, fib_table: i.node.table },
    activeRuleIds: active.map((m) => m.id),
    nextExpiryMs: expiries.length ? Math.min(...expiries) : null,
    warnings,
  };
}

export function dataplanePlan(i: DataplanePlanInput): DataplanePlan {
  return { accounts: accountEntries(i.node, i.accounts, i.numbers), global: globalEntries(i) };
}
