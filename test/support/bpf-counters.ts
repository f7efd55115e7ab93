/** The data plane's per-account reason counters around a test step, for BPF_PROG_RUN tests. */
import { OT_REASON_SLOTS, REASON_NAMES, type Reason } from '../../src/kernel/bpf/abi.generated.js';
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
