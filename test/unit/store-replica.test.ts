import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLmdbStore, type LmdbStore } from '../../src/store/lmdb.js';
import { followIntoReplica, Replica } from '../../src/store/replica.js';
import { StoreUnavailableError, type KeyValue, type WatchEvent } from '../../src/store/store.js';
import { sleep } from '../support/watch-recorder.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-replica-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => path.join(root, `d${++n}`);

const kv = (key: string, value: string, rev: number, createRevision = rev, version = 1): KeyValue => ({
  key,
  value,
  createRevision,
  modRevision: rev,
  version,
});
const keysOf = (r: Replica): string[] => r.snapshot().map((x) => x.key);

async function until(pred: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await pred()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('replica: a full list is staged until synced, then persisted with its revision', async () => {
  const dir = freshDir();
  const r = await Replica.open(dir, '/a/');
  assert.equal(r.revision, undefined);
  await r.apply({ type: 'put', kv: kv('/a/2', 'two', 5) });
  await r.apply({ type: 'put', kv: kv('/a/1', 'one', 4) });
  assert.equal(r.listing, true);
  assert.deepEqual(r.snapshot(), [], 'a half-received list is not visible');
  await r.apply({ type: 'synced', revision: 7 });
  assert.equal(r.revision, 7);
  assert.deepEqual(keysOf(r), ['/a/1', '/a/2']);
  await r.close();

  const again = await Replica.open(dir, '/a/');
  assert.equal(again.revision, 7);
  assert.deepEqual(again.snapshot(), [kv('/a/1', 'one', 4), kv('/a/2', 'two', 5)]);
  await again.close();
});

test('replica: live changes are persisted; the resume revision trails the last event by one', async () => {
  const dir = freshDir();
  const r = await Replica.open(dir, '/a/');
  await r.apply({ type: 'put', kv: kv('/a/1', 'one', 4) });
  await r.apply({ type: 'synced', revision: 4 });
  await r.apply({ type: 'put', kv: kv('/a/2', 'two', 8) });
  await r.apply({ type: 'put', kv: kv('/a/3', 'three', 8) });
  // Revision 8 might have more events to come: resuming must replay it.
  assert.equal(r.revision, 7);
  await r.apply({ type: 'delete', key: '/a/1', modRevision: 9 });
  assert.equal(r.revision, 8);
  await r.apply({ type: 'put', kv: kv('/b/other', 'x', 10) }); // not under the prefix: ignored
  await r.close();
  const again = await Replica.open(dir, '/a/');
  assert.equal(again.revision, 8);
  assert.deepEqual(keysOf(again), ['/a/2', '/a/3']);
  // Replaying revision 9 is harmless.
  await again.apply({ type: 'delete', key: '/a/1', modRevision: 9 });
  assert.deepEqual(keysOf(again), ['/a/2', '/a/3']);
  await again.close();
});

test('replica: after a reset the old state stays visible until the new list is complete', async () => {
  const r = await Replica.open(freshDir(), '/a/');
  await r.apply({ type: 'put', kv: kv('/a/old', 'o', 2) });
  await r.apply({ type: 'put', kv: kv('/a/kept', 'k', 2) });
  await r.apply({ type: 'synced', revision: 2 });
  await r.apply({ type: 'reset', revision: 50 });
  await r.apply({ type: 'put', kv: kv('/a/kept', 'k2', 40, 2, 2) });
  await r.apply({ type: 'put', kv: kv('/a/new', 'n', 45) });
  assert.deepEqual(keysOf(r), ['/a/kept', '/a/old']);
  assert.equal(r.revision, 2);
  await r.apply({ type: 'synced', revision: 50 });
  assert.deepEqual(keysOf(r), ['/a/kept', '/a/new']);
  assert.equal(r.get('/a/kept')?.value, 'k2');
  assert.equal(r.revision, 50);
  await r.close();
});

test('replica: a replica of another prefix is cleared on open', async () => {
  const dir = freshDir();
  const r = await Replica.open(dir, '/a/');
  await r.apply({ type: 'put', kv: kv('/a/1', 'one', 4) });
  await r.apply({ type: 'synced', revision: 4 });
  await r.close();
  const other = await Replica.open(dir, '/b/');
  assert.equal(other.revision, undefined);
  assert.equal(other.size, 0);
  await other.close();
  await assert.rejects(Replica.open(dir, 'bad\u0001'), /replica prefix/);
});

test('followIntoReplica: mirrors the store, resumes from the replica revision after a restart', async () => {
  const store = await openLmdbStore(freshDir());
  const rdir = freshDir();
  await store.txn([], [
    { type: 'put', key: '/acc/1', value: 'a' },
    { type: 'put', key: '/acc/2', value: 'b' },
    { type: 'put', key: '/other', value: 'x' },
  ]);
  let replica = await Replica.open(rdir, '/acc/');
  let seen: WatchEvent[] = [];
  let f = followIntoReplica(store, replica, { onEvent: (e) => void seen.push(e) });
  assert.equal(await f.firstSync, await store.revision());
  assert.deepEqual(replica.snapshot(), (await store.list('/acc/')).items);
  await store.txn([], [{ type: 'put', key: '/acc/3', value: 'c' }]);
  await until(() => replica.size === 3, 'the live put');
  await f.close();
  await replica.close();

  // While the agent is down: one change and one delete.
  await store.txn([], [{ type: 'put', key: '/acc/1', value: 'a2' }]);
  await store.txn([], [{ type: 'delete', key: '/acc/2' }]);
  replica = await Replica.open(rdir, '/acc/');
  assert.equal(replica.size, 3, 'the replica serves its last state before any store contact');
  seen = [];
  const resumeFrom = replica.revision!;
  f = followIntoReplica(store, replica, { onEvent: (e) => void seen.push(e) });
  await f.firstSync;
  assert.deepEqual(replica.snapshot(), (await store.list('/acc/')).items);
  // Resumed, not re-listed: only changes after the replica's revision (which trails the last event by one).
  for (const e of seen) {
    if (e.type === 'put') assert.ok(e.kv.modRevision > resumeFrom, JSON.stringify(e));
    else if (e.type === 'delete') assert.ok(e.modRevision > resumeFrom, JSON.stringify(e));
    else assert.equal(e.type, 'synced');
  }
  assert.equal(seen.filter((e) => e.type !== 'synced').length, 3, JSON.stringify(seen));
  await f.close();
  await replica.close();
  await store.close();
});

test('followIntoReplica: history compacted while away → reset → the replica converges', async () => {
  const store = await openLmdbStore(freshDir(), { historyRevisions: 3 });
  const rdir = freshDir();
  await store.txn([], [{ type: 'put', key: '/acc/1', value: 'a' }]);
  let replica = await Replica.open(rdir, '/acc/');
  let f = followIntoReplica(store, replica);
  await f.firstSync;
  await f.close();
  await replica.close();
  for (let i = 0; i < 8; i++) await store.txn([], [{ type: 'put', key: `/acc/k${i}`, value: String(i) }]);
  await store.txn([], [{ type: 'delete', key: '/acc/1' }]);
  replica = await Replica.open(rdir, '/acc/');
  const seen: WatchEvent[] = [];
  f = followIntoReplica(store, replica, { onEvent: (e) => void seen.push(e) });
  await f.firstSync;
  assert.equal(seen[0]?.type, 'reset');
  assert.deepEqual(replica.snapshot(), (await store.list('/acc/')).items);
  assert.equal(replica.revision, await store.revision());
  await f.close();
  await replica.close();
  await store.close();
});

test('followIntoReplica: an unavailable store is retried and reported; the replica keeps serving', async () => {
  const dir = freshDir();
  const seed = await openLmdbStore(dir);
  await seed.txn([], [{ type: 'put', key: '/acc/1', value: 'a' }]);
  const rdir = freshDir();
  let replica = await Replica.open(rdir, '/acc/');
  let f = followIntoReplica(seed, replica);
  await f.firstSync;
  await f.close();
  await replica.close();

  const down: LmdbStore = await openLmdbStore(dir);
  await down.close(); // a real store that answers StoreUnavailableError to everything
  replica = await Replica.open(rdir, '/acc/');
  const errors: unknown[] = [];
  f = followIntoReplica(down, replica, { retryMinMs: 5, retryMaxMs: 20, onError: (e) => void errors.push(e) });
  await until(() => errors.length >= 3, 'three failed attempts');
  assert.ok(errors.every((e) => e instanceof StoreUnavailableError));
  assert.deepEqual(keysOf(replica), ['/acc/1']);
  await f.close();
  const count = errors.length;
  await sleep(50);
  assert.equal(errors.length, count, 'no retries after close');
  await replica.close();
  await seed.close();
});
