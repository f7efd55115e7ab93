import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcileKind, isNoop, type KindOps } from '../../src/agent/reconcile/engine.js';
import { Scheduler } from '../../src/agent/reconcile/scheduler.js';

interface Obj {
  name: string;
  value: number;
}

/** An in-memory "kernel" that records every write, so tests can assert what the engine did and in which order. */
function memoryKind(initial: Obj[], failOn = new Set<string>()) {
  const objects = new Map(initial.map((o) => [o.name, { ...o }]));
  const log: string[] = [];
  const ops: KindOps<Obj, Obj> = {
    kind: 'obj',
    desiredKey: (d) => d.name,
    actualKey: (a) => a.name,
    list: async () => [...objects.values()].map((o) => ({ ...o })),
    matches: (d, a) => d.value === a.value,
    apply: async (d) => {
      if (failOn.has(d.name)) throw new Error(`cannot apply ${d.name}`);
      log.push(`apply ${d.name}`);
      objects.set(d.name, { ...d });
    },
    remove: async (a) => {
      if (failOn.has(a.name)) throw new Error(`cannot remove ${a.name}`);
      log.push(`remove ${a.name}`);
      objects.delete(a.name);
    },
  };
  return { ops, objects, log };
}

test('engine writes only what differs, adds before removes, and is idempotent', async () => {
  const k = memoryKind([
    { name: 'a', value: 1 },
    { name: 'b', value: 1 },
    { name: 'old', value: 1 },
  ]);
  const desired = [
    { name: 'a', value: 1 },
    { name: 'b', value: 2 },
    { name: 'c', value: 3 },
  ];
  const r = await reconcileKind(k.ops, desired, { prune: true });
  assert.deepEqual(r.applied, ['b', 'c']);
  assert.deepEqual(r.removed, ['old']);
  assert.equal(r.unchanged, 1);
  assert.deepEqual(k.log, ['apply b', 'apply c', 'remove old']);
  const again = await reconcileKind(k.ops, desired, { prune: true });
  assert.ok(isNoop(again));
  assert.equal(again.unchanged, 3);
});

test('engine never prunes unless told the desired set is complete', async () => {
  const k = memoryKind([{ name: 'keep-me', value: 1 }]);
  const r = await reconcileKind(k.ops, [{ name: 'x', value: 1 }], { prune: false });
  assert.deepEqual(r.removed, []);
  assert.ok(k.objects.has('keep-me'));
});

test('dry run plans without writing', async () => {
  const k = memoryKind([{ name: 'gone', value: 1 }]);
  const r = await reconcileKind(k.ops, [{ name: 'new', value: 1 }], { prune: true, dryRun: true });
  assert.deepEqual(r.applied, ['new']);
  assert.deepEqual(r.removed, ['gone']);
  assert.deepEqual(k.log, []);
});

test("one object's failure is reported and does not stop the others", async () => {
  const k = memoryKind([{ name: 'stuck', value: 0 }], new Set(['bad', 'stuck']));
  const r = await reconcileKind(
    k.ops,
    [
      { name: 'bad', value: 1 },
      { name: 'good', value: 1 },
    ],
    { prune: true },
  );
  assert.deepEqual(
    r.failures.map((f) => `${f.action} ${f.key}`),
    ['apply bad', 'remove stuck'],
  );
  assert.match(r.failures[0]!.error, /cannot apply bad/);
  assert.ok(k.objects.has('good'));
});

test('duplicate desired keys are a bug in the desired-state code, not something to apply', async () => {
  const k = memoryKind([]);
  await assert.rejects(
    reconcileKind(
      k.ops,
      [
        { name: 'x', value: 1 },
        { name: 'x', value: 2 },
      ],
      { prune: false },
    ),
    /share the key x/,
  );
});

test('scheduler coalesces changes that arrive while a key runs into one more run', async () => {
  const runs: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const s = new Scheduler({
    worker: async (key) => {
      runs.push(key);
      if (runs.length === 1) await gate;
    },
  });
  s.schedule('acct');
  await new Promise((r) => setImmediate(r));
  s.schedule('acct');
  s.schedule('acct');
  s.schedule('acct');
  release();
  await s.idle();
  assert.deepEqual(runs, ['acct', 'acct']);
});

test('scheduler retries a failing key with backoff and reports attempts', async () => {
  let calls = 0;
  const results: Array<[string, boolean, number]> = [];
  const s = new Scheduler({
    baseBackoffMs: 5,
    worker: async () => {
      calls++;
      if (calls < 3) throw new Error('kernel busy');
    },
    onResult: (key, err, attempt) => results.push([key, err === undefined, attempt]),
  });
  s.schedule('k');
  for (let i = 0; i < 200 && calls < 3; i++) await new Promise((r) => setTimeout(r, 5));
  await s.idle();
  assert.equal(calls, 3);
  assert.deepEqual(results, [
    ['k', false, 1],
    ['k', false, 2],
    ['k', true, 0],
  ]);
  assert.equal(s.failures('k'), 0);
  await s.stop();
});

test('scheduler runs at most `concurrency` keys at once', async () => {
  let inFlight = 0;
  let peak = 0;
  const s = new Scheduler({
    concurrency: 2,
    worker: async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
    },
  });
  for (let i = 0; i < 10; i++) s.schedule(`k${i}`);
  await s.idle();
  assert.equal(peak, 2);
});
