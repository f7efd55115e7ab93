/**
 * The Store contract and failure behaviour against real etcd processes (Debian's etcd 3.4): the same contract
 * suite as LMDB, then crashes, partitions and compaction while watching.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { openEtcdStore, type EtcdStore } from '../../src/store/etcd.js';
import { openStore } from '../../src/store/open.js';
import { followIntoReplica, Replica } from '../../src/store/replica.js';
import { StoreUnavailableError, type WatchEvent } from '../../src/store/store.js';
import { registerStoreContract } from '../support/store-contract.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { asMap, fold, record, revOf, sleep, type Recorder } from '../support/watch-recorder.js';

let etcd: EtcdCluster;
const quiet = { onError: () => undefined };
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.destroy();
});

let n = 0;
registerStoreContract('etcd', {
  async open() {
    // Tiny pages, so every list and resume in the contract also exercises paging (pinned at one revision).
    return {
      store: await openEtcdStore(etcd.endpoints, { pageSize: 2 }),
      prefix: `/t${++n}/`,
      second: () => openEtcdStore(etcd.endpoints),
      dispose: async () => undefined,
    };
  },
});

/** Every change event exactly once, in revision order, and the events fold into the store's current state. */
async function assertExactlyOnce(store: EtcdStore, rec: Recorder, prefix: string): Promise<void> {
  const seen = new Set<string>();
  let last = 0;
  for (const e of rec.events) {
    const r = revOf(e);
    if (r === undefined) continue;
    const id = `${e.type === 'put' ? e.kv.key : e.type === 'delete' ? e.key : ''}@${r}`;
    assert.ok(!seen.has(id), `duplicate ${id}`);
    seen.add(id);
    assert.ok(r >= last, `out of order: ${id} after revision ${last}`);
    last = r;
  }
  assert.deepEqual(fold(rec.events), asMap((await store.list(prefix)).items));
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('etcd: an unreachable endpoint is StoreUnavailableError; bad endpoints are named', async () => {
  const port = await closedPort();
  await assert.rejects(openEtcdStore([`127.0.0.1:${port}`], { callTimeoutMs: 2000 }), StoreUnavailableError);
  const lazy = await openEtcdStore([`127.0.0.1:${port}`], { requireConnection: false, callTimeoutMs: 2000 });
  await assert.rejects(lazy.get('/x'), StoreUnavailableError);
  await assert.rejects(lazy.listAndWatch('/x/', () => undefined), StoreUnavailableError);
  await lazy.close();
  await assert.rejects(openEtcdStore([]), /at least one/);
  await assert.rejects(openEtcdStore(['127.0.0.1']), /endpoints\[0\].*host:port/);
  await assert.rejects(openEtcdStore(['127.0.0.1:2379', 'x:99999']), /endpoints\[1\]: port 99999/);
});

test('etcd: openStore opens an etcd:// spec', async () => {
  const s = await openStore(`etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}`);
  assert.equal(s.kind, 'etcd');
  const r = await s.txn([], [{ type: 'put', key: '/open/a', value: '1' }]);
  assert.equal((await s.get('/open/a'))?.modRevision, r.revision);
  await s.close();
});

test('etcd: killed and restarted during a watch — the watcher resumes without loss or duplicates', async () => {
  const store = await openEtcdStore(etcd.endpoints, { ...quiet, callTimeoutMs: 2000 });
  const p = '/crash/';
  for (let i = 0; i < 5; i++) await store.txn([], [{ type: 'put', key: `${p}k${i}`, value: 'before' }]);
  const rec = await record(store, p);
  await rec.synced();
  for (let i = 0; i < 5; i++) await store.txn([], [{ type: 'put', key: `${p}k${i}`, value: 'live' }]);
  await rec.until((ev) => ev.filter((e) => e.type === 'put' && e.kv.value === 'live').length === 5, 'live puts');

  await etcd.stop();
  await assert.rejects(store.get(`${p}k0`), StoreUnavailableError);
  await etcd.start();

  const writes: number[] = [];
  for (let i = 0; i < 10; i++) {
    writes.push((await store.txn([], i === 9 ? [{ type: 'delete', key: `${p}k0` }] : [{ type: 'put', key: `${p}a${i}`, value: 'after' }])).revision);
  }
  await rec.until((ev) => ev.some((e) => revOf(e) === writes.at(-1)), 'the writes after the restart', 15_000);
  await sleep(100);
  const after = rec.events.filter((e) => (revOf(e) ?? 0) >= writes[0]!);
  assert.deepEqual(after.map(revOf), writes);
  await assertExactlyOnce(store, rec, p);
  await rec.close();
  await store.close();
});

test('etcd: an agent boots while etcd is down — the replica serves, then catches up when etcd returns', async () => {
  const p = '/boot/';
  const rdir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-etcd-replica-'));
  try {
    const writer = await openEtcdStore(etcd.endpoints);
    await writer.txn([], [{ type: 'put', key: `${p}1`, value: 'a' }]);
    let replica = await Replica.open(rdir, p);
    let f = followIntoReplica(writer, replica, quiet);
    await f.firstSync;
    await f.close();
    await replica.close();
    await writer.txn([], [{ type: 'put', key: `${p}2`, value: 'b' }]);

    await etcd.stop();
    const store = await openEtcdStore(etcd.endpoints, { requireConnection: false, callTimeoutMs: 1000 });
    replica = await Replica.open(rdir, p);
    const errors: unknown[] = [];
    f = followIntoReplica(store, replica, { retryMinMs: 50, retryMaxMs: 200, onError: (e) => void errors.push(e) });
    for (let i = 0; i < 200 && errors.length === 0; i++) await sleep(10);
    assert.ok(errors[0] instanceof StoreUnavailableError, String(errors[0]));
    assert.deepEqual(replica.snapshot().map((kv) => kv.value), ['a'], 'the last known state is served offline');

    await etcd.start();
    await f.firstSync;
    assert.deepEqual(replica.snapshot(), (await writer.list(p)).items);
    await f.close();
    await replica.close();
    await store.close();
    await writer.close();
  } finally {
    fs.rmSync(rdir, { recursive: true, force: true });
  }
});

test('etcd 3 members: a watcher cut off from its member misses nothing; compaction while cut off → reset', async () => {
  const cluster = await startEtcd({ members: 3 });
  try {
    // The watcher only knows one follower; the writer the two others, so writes go on while that one is down.
    // (A follower, not the leader: killing the leader loses in-flight proposals until etcd's request timeout.)
    const cut = ((await cluster.leader()) + 1) % 3;
    const others = cluster.endpoints.filter((_, i) => i !== cut);
    const watcherStore = await openEtcdStore([cluster.endpoints[cut]!], { ...quiet, callTimeoutMs: 2000 });
    const writer = await openEtcdStore(others);
    const p = '/part/';
    await writer.txn([], [{ type: 'put', key: `${p}seed`, value: '0' }]);
    const rec = await record(watcherStore, p);
    await rec.synced();

    await cluster.stop(cut);
    const missed: number[] = [];
    for (let i = 0; i < 20; i++) missed.push((await writer.txn([], [{ type: 'put', key: `${p}k${i % 7}`, value: String(i) }])).revision);
    await cluster.start(cut);
    await rec.until((ev) => ev.some((e) => revOf(e) === missed.at(-1)), 'the writes made while cut off', 15_000);
    assert.deepEqual(rec.events.filter((e) => (revOf(e) ?? 0) >= missed[0]!).map(revOf), missed);
    assert.ok(!rec.events.some((e) => e.type === 'reset'));
    await assertExactlyOnce(writer, rec, p);

    await cluster.stop(cut);
    await writer.txn([], [{ type: 'delete', key: `${p}k1` }]);
    await writer.txn([], [{ type: 'put', key: `${p}new`, value: 'x' }]);
    const head = await writer.revision();
    await writer.compact(head);
    await cluster.start(cut);
    await rec.until((ev) => ev.some((e) => e.type === 'reset'), 'a reset after compaction', 15_000);
    await rec.synced(2);
    const fromReset = rec.events.slice(rec.events.findIndex((e) => e.type === 'reset'));
    assert.deepEqual(fromReset[0], { type: 'reset', revision: (fromReset.at(-1) as Extract<WatchEvent, { type: 'synced' }>).revision });
    assert.deepEqual(fold(rec.events), asMap((await writer.list(p)).items));
    const live = await writer.txn([], [{ type: 'put', key: `${p}after`, value: 'y' }]);
    await rec.until((ev) => ev.some((e) => revOf(e) === live.revision), 'a live change after the reset');
    await rec.close();
    await watcherStore.close();
    await writer.close();
  } finally {
    await cluster.destroy();
  }
});
