/** The data plane's per-account reason counters: around a BPF_PROG_RUN step, or snapshots by reason name. */
import { OT_REASON_SLOTS, REASON_NAMES, REASON_VERDICT, Verdict, type Reason } from '../../src/kernel/bpf/abi.generated.js';
import { readCounters } from '../../src/kernel/bpf/dataplane.js';

/** What `run` added to the counters, one "account N REASON +d" line per slot that moved. */
export function reasonCountersDelta(counters: Parameters<typeof readCounters>[0], run: () => void): string[] {
  const sum = () => new Map(readCounters(counters).map((c) => [c.account * OT_REASON_SLOTS + c.reason, c.packets]));
  const before = sum();
  run();
  const out: string[] = [];
  for (const [slot, p] of sum()) {
    const d = p - (before.get(slot) ?? 0n);
    if (d) out.push(`account ${Math.floor(slot / OT_REASON_SLOTS)} ${REASON_NAMES[(slot % OT_REASON_SLOTS) as Reason]} +${d}`);
  }
  return out;
}

/** One account's packets by reason name (FORWARD_XDP, …), for a test to compare before and after a step. */
export function countersByReason(counters: Parameters<typeof readCounters>[0], account: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of readCounters(counters)) if (c.account === account) out[REASON_NAMES[c.reason] ?? String(c.reason)] = Number(c.packets);
  return out;
}

/** How many packets reason `k` gained from snapshot `a` to `b` (a reason not counted yet is 0). */
export const grew = (a: Record<string, number>, b: Record<string, number>, k: string): number => (b[k] ?? 0) - (a[k] ?? 0);

/** Packets every drop reason counted so far, over all accounts: "REASON" → packets (a loss report's evidence). */
export function dropsByReason(counters: Parameters<typeof readCounters>[0]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of readCounters(counters)) {
    if (REASON_VERDICT[c.reason] !== Verdict.DROP) continue;
    const k = REASON_NAMES[c.reason] ?? String(c.reason);
    out[k] = (out[k] ?? 0) + Number(c.packets);
  }
  return out;
}
