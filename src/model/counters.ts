/**
 * Data-plane counters: what each edge agent publishes under keys.nodeCounters(nodeId) (totals since the account got
 * its data-plane number on that node), and their sum over nodes (`GET /v1/counters`, `opentransit counters`).
 *
 * Verdicts and reasons are the data plane's (bpf/opentransit_abi.h: enum ot_verdict, enum ot_reason) in lower case:
 * verdict "drop", reason "drop_blocklist". Packets and bytes are JSON numbers: exact up to 2^53.
 */

export interface CounterItem {
  /** The account the packets were attributed to (by destination prefix, or by GRE peer); null = none. */
  account_id: string | null;
  verdict: string;
  reason: string;
  packets: number;
  bytes: number;
}

export interface RuleCounters {
  /** Packets the rule matched (whatever it did with them). */
  packets: number;
  bytes: number;
  dropped_packets: number;
  dropped_bytes: number;
}

export interface NodeCounters {
  node_id: string;
  updated_at: string;
  items: CounterItem[];
  /** Per mitigation rule id. */
  mitigations: Record<string, RuleCounters>;
}

/** Parses a node's counters document leniently: an unreadable one counts as empty (it is only statistics). */
export function decodeNodeCounters(text: string): NodeCounters | undefined {
  try {
    const v = JSON.parse(text) as Partial<NodeCounters>;
    if (typeof v !== 'object' || v === null || !Array.isArray(v.items)) return undefined;
    const items = v.items.filter(
      (i): i is CounterItem =>
        typeof i === 'object' && i !== null && (typeof i.account_id === 'string' || i.account_id === null) &&
        typeof i.verdict === 'string' && typeof i.reason === 'string' && Number.isFinite(i.packets) && Number.isFinite(i.bytes),
    );
    const mitigations: Record<string, RuleCounters> = {};
    for (const [id, c] of Object.entries(v.mitigations ?? {})) {
      if (typeof c === 'object' && c !== null && Number.isFinite(c.packets)) mitigations[id] = c;
    }
    return { node_id: String(v.node_id ?? ''), updated_at: String(v.updated_at ?? ''), items, mitigations };
  } catch {
    return undefined;
  }
}

const itemKey = (i: CounterItem) => `${i.account_id ?? ''}\u0000${i.verdict}\u0000${i.reason}`;

/** Sums items with the same (account, verdict, reason); sorted by account, verdict, reason. */
export function sumCounterItems(lists: readonly (readonly CounterItem[])[]): CounterItem[] {
  const sums = new Map<string, CounterItem>();
  for (const list of lists) {
    for (const i of list) {
      const k = itemKey(i);
      const s = sums.get(k);
      if (s) {
        s.packets += i.packets;
        s.bytes += i.bytes;
      } else sums.set(k, { account_id: i.account_id, verdict: i.verdict, reason: i.reason, packets: i.packets, bytes: i.bytes });
    }
  }
  return [...sums.values()].sort((a, b) => (itemKey(a) < itemKey(b) ? -1 : itemKey(a) > itemKey(b) ? 1 : 0));
}

export function sumRuleCounters(lists: readonly Record<string, RuleCounters>[]): Record<string, RuleCounters> {
  const out: Record<string, RuleCounters> = {};
  for (const list of lists) {
    for (const [id, c] of Object.entries(list)) {
      const s = (out[id] ??= { packets: 0, bytes: 0, dropped_packets: 0, dropped_bytes: 0 });
      s.packets += c.packets;
      s.bytes += c.bytes;
      s.dropped_packets += c.dropped_packets;
      s.dropped_bytes += c.dropped_bytes;
    }
  }
  return out;
}
