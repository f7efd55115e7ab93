/**
 * Regression: a process sharing the LMDB store is SIGKILLed while it commits, then another process that wrote
 * earlier closes its store. With lmdb-js's default overlappingSync, close() could spin in mdb_env_sync forever
 * (seen in the agent-crash test: the API's close after SIGKILLing agents; reproduced in 14 of 40 such rounds).
 * Each round runs in its own process (a native spin blocks the event loop, so only another process can notice)
 * under a bound that is generous for a close and short against forever.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSupportScript } from '../support/node-script.js';
import { openLmdbStore } from '../../src/store/lmdb.js';

const ROUNDS = 12;
/** Far above a round's normal ~1 s (two Node start-ups and a close), far below a hang. */
const ROUND_BOUND_MS = 30_000;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-store-lmdb-kill-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function round(dir: string, delayMs: number): Promise<string> {
  const child = spawnSupportScript('lmdb-kill-close', [dir, String(delayMs)]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(`no exit within ${ROUND_BOUND_MS} ms (hung in close?); stdout: ${JSON.stringify(out)}`);
    }, ROUND_BOUND_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 && out.includes('closed') ? 'ok' : `exited with ${signal ?? code}; stdout: ${JSON.stringify(out)}`);
    });
  });
}

test(`lmdb: close() returns after a writer sharing the store is SIGKILLed mid-commit (${ROUNDS} rounds)`, async () => {
  const dir = path.join(root, 'store');
  const results: string[] = [];
  // Kills spread over the writer's loop; the same store every round, so later rounds also open what earlier
  // kills left behind.
  for (let i = 0; i < ROUNDS; i++) results.push(`round ${i}: ${await round(dir, (i * 7) % 40)}`);
  assert.deepEqual(results.filter((r) => !r.endsWith(': ok')), []);
  // And the store is still whole: it opens, holds the writer's keys and takes a write.
  const s = await openLmdbStore(dir, { create: false });
  try {
    assert.ok((await s.list('/w/')).items.length > 0);
    const before = await s.revision();
    assert.equal((await s.txn([], [{ type: 'put', key: '/after', value: 'y' }])).revision, before + 1);
  } finally {
    await s.close();
  }
});
