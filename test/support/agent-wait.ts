/** Waiting on an in-process agent in privileged tests; a timeout fails with what the agent reports (and `context`). */
import assert from 'node:assert/strict';
import type { Agent } from '../../src/agent/agent.js';

export interface WaitOptions {
  timeoutMs?: number;
  /** Appended to a timeout's message, e.g. the agent's last log lines. */
  context?: () => string;
}

const suffix = (o: WaitOptions) => (o.context ? `\n${o.context()}` : '');

/** Waits until the agent applied `revision` of every account. */
export async function waitConverged(agent: Agent, revision: number, o: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 15_000);
  for (;;) {
    await agent.idle();
    const s = agent.snapshotStatus();
    if (s.applied_revision !== null && s.applied_revision >= revision) return;
    if (Date.now() > deadline) assert.fail(`not converged to ${revision}: ${JSON.stringify(s, null, 1)}${suffix(o)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `check` until it holds. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, o: WaitOptions = {}): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 8000);
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}${suffix(o)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
