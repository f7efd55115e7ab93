import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openLmdbStore } from '../../src/store/lmdb.js';
import { StoreUnavailableError, type WatchEvent } from '../../src/store/store.js';
import { registerStoreContract } from '../support/store-contract.js';
import { asMap, describe as describeEvent, fold, record, revOf } from '../support/watch-recorder.js';
import { finished, spawnSupportScript } from '../support/node-script.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-store-lmdb-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => path.join(root, `s${++n}`);

registerStoreContract('lmdb', {
  async open() {
    const dir = freshDir();
    return {
      store: await openLmdbStore(dir, { pollIntervalMs: 200 }),
      prefix: '/t/',
      second: () => openLmdbStore(dir, { pollIntervalMs: 200 }),
      dispose: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
});

test('lmdb: reopening keeps keys, metadata and the revision', async () => {
  const dir = freshDir();
  const a = await openLmdbStore(dir);
  await a.txn([], [{ type: 'put', key: '/k', value: 'v' }]);
  const rev = await a.revision();
  const kv = await a.get('/k');
  await a.close();
  const b = await openLmdbStore(dir, { create: false });
  assert.equal(await b.revision(), rev);
  assert.deepEqual(await b.get('/k'), kv);
  await b.close();
  await assert.rejects(b.get('/k'), StoreUnavailableError);
});

test('lmdb: create:false on a directory without a store is StoreUnavailableError', async () => {
  await assert.rejects(openLmdbStore(freshDir(), { create: false }), StoreUnavailableError);
  await assert.rejects(openLmdbStore(''), /lmdb dir/);
  await assert.rejects(openLmdbStore(freshDir(), { historyRevisions: 0 }), /historyRevisions/);
});

test('lmdb: history is trimmed to the last historyRevisions revisions', async () => {
  const s = await openLmdbStore(freshDir(), { historyRevisions: 5 });
  for (let i = 0; i < 12; i++) await s.txn([], [{ type: 'put', key: `/h/${i % 3}`, value: String(i) }]);
  const head = await s.revision();
  // The last 5 revisions are kept: resuming from head-5 replays them exactly.
  const ok = await record(s, '/h/', { fromRevision: head - 5 });
  await ok.synced();
  assert.deepEqual(ok.events.map(revOf).filter(Boolean), [head - 4, head - 3, head - 2, head - 1, head]);
  // One further back is gone: reset and a full list.
  const gone = await record(s, '/h/', { fromRevision: head - 6 });
  await gone.synced();
  assert.deepEqual(gone.events.map(describeEvent)[0], `reset@${head}`);
  assert.deepEqual(fold(gone.events), asMap((await s.list('/h/')).items));
  await ok.close();
  await gone.close();
  await s.close();
});

test('lmdb: another process writes 500+ times while this one watches: each change once, in order', async () => {
  const dir = freshDir();
  const s = await openLmdbStore(dir, { pollIntervalMs: 1000 });
  await s.txn([], [{ type: 'put', key: '/x/seed', value: '0' }]);
  const latenciesMs: number[] = [];
  const rec = await record(s, '/x/', undefined, (e) => {
    if (e.type === 'put' && e.kv.key === '/x/paced') {
      const sent = BigInt((JSON.parse(e.kv.value) as { t: string }).t);
      latenciesMs.push(Number(process.hrtime.bigint() - sent) / 1e6);
    }
  });
  await rec.synced();
  const start = (rec.events.at(-1) as Extract<WatchEvent, { type: 'synced' }>).revision;

  const writer = finished(spawnSupportScript('lmdb-writer', [dir, '/x/', '500', '50', '10']));
  // A second watcher lists while the other process is writing: its list and its changes must join exactly.
  await rec.until((ev) => ev.length > 100, 'the writer to be under way');
  const mid = await record(s, '/x/');
  const out = await writer;
  const { first, last } = JSON.parse(out) as { first: number; last: number };
  assert.ok(first > start && last - first > 450, `writer revisions ${first}..${last}`);
  await rec.until((ev) => ev.some((e) => revOf(e) === last), `the event at revision ${last}`);
  await mid.until((ev) => ev.some((e) => revOf(e) === last), `the second watcher at revision ${last}`);
  const midSync = mid.events.findIndex((e) => e.type === 'synced');
  const midRev = (mid.events[midSync] as Extract<WatchEvent, { type: 'synced' }>).revision;
  assert.ok(midRev > first && midRev < last, `second watcher listed at ${midRev}, inside the burst ${first}..${last}`);
  assert.deepEqual(mid.events.slice(midSync + 1).map(revOf), Array.from({ length: last - midRev }, (_, i) => midRev + 1 + i));
  assert.deepEqual(fold(mid.events), asMap((await s.list('/x/')).items));
  await mid.close();

  // Every revision after the list is one writer txn touching one key: exactly one event per revision, gapless.
  const live = rec.events.slice(rec.events.findIndex((e) => e.type === 'synced') + 1);
  assert.deepEqual(live.map(revOf), Array.from({ length: last - start }, (_, i) => start + 1 + i));
  assert.deepEqual(fold(rec.events), asMap((await s.list('/x/')).items));
  await rec.close();

  // Resuming from a revision in the middle replays exactly the same events from there on.
  const half = Math.floor((first + last) / 2);
  const resumed = await record(s, '/x/', { fromRevision: half });
  await resumed.synced();
  assert.deepEqual(resumed.events.slice(0, -1), live.filter((e) => revOf(e)! > half));
  assert.deepEqual(resumed.events.at(-1), { type: 'synced', revision: last });
  await resumed.close();
  await s.close();

  latenciesMs.sort((a, b) => a - b);
  const q = (f: number): string => latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(f * latenciesMs.length))]!.toFixed(2);
  console.log(
    `# LMDB cross-process watch latency (commit start in writer → handler in watcher), ${latenciesMs.length} paced writes: ` +
      `p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms`,
  );
  assert.equal(latenciesMs.length, 50);
});

test('lmdb: watchers still hear another process after the notify file was removed', async () => {
  const dir = freshDir();
  // A poll far beyond the test's time: only the notifier re-watching the re-created file can deliver.
  const s = await openLmdbStore(dir, { pollIntervalMs: 600_000 });
  const rec = await record(s, '/r/');
  await rec.synced();
  fs.rmSync(path.join(dir, 'notify'));
  const out = await finished(spawnSupportScript('lmdb-writer', [dir, '/r/', '5', '0', '0']));
  const { last } = JSON.parse(out) as { last: number };
  await rec.until((ev) => ev.some((e) => revOf(e) === last), `the event at revision ${last}`);
  assert.ok(fs.existsSync(path.join(dir, 'notify')));
  await rec.close();
  await s.close();
});
