/**
 * The agent's status publisher on a real LMDB store (no root): the status and the liveness key under a lease,
 * `local-status.json` (the contract the lab's outage tests read), reachability transitions logged once each way,
 * revoke vs release on stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initialStoreStatus, StatusPublisher } from '../../src/agent/status-publisher.js';
import { keys } from '../../src/model/keys.js';
import { LOCAL_STATUS_FILE, nodeItems, type NodeStatus } from '../../src/model/node-status.js';
import { openLmdbStore, type LmdbStore } from '../../src/store/lmdb.js';

function statusDoc(kind: string): NodeStatus {
  return {
    node_id: 'edge-1',
    host_netns: 'host',
    store: initialStoreStatus(kind),
    replica_revision: null,
    applied_revision: null,
    host: { state: 'pending' },
    accounts: {},
    last_reconcile_at: null,
    updated_at: new Date().toISOString(),
    heartbeat_ms: 200,
  };
}

async function withPublisher(fn: (p: StatusPublisher, ctx: { store: LmdbStore; dir: string; status: NodeStatus; logs: string[] }) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-publisher-'));
  const store = await openLmdbStore(path.join(dir, 'store'));
  const status = statusDoc(store.kind);
  const logs: string[] = [];
  const p = new StatusPublisher({ store, nodeId: 'edge-1', dataDir: path.join(dir, 'agent'), heartbeatMs: 200, status, log: (m) => logs.push(m) });
  try {
    await fn(p, { store, dir: path.join(dir, 'agent'), status, logs });
  } finally {
    await p.stop('revoke');
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const readLocal = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, LOCAL_STATUS_FILE), 'utf8')) as NodeStatus;

test('publisher: status and liveness key (under a lease of 3 heartbeats) in the store; local-status.json holds the same document', () =>
  withPublisher(async (p, { store, dir, status, logs }) => {
    await p.flush();
    const published = JSON.parse((await store.get(keys.nodeStatus('edge-1')))!.value) as NodeStatus;
    assert.equal(published.store.reachable, true);
    assert.equal(published.store.kind, 'lmdb');
    const alive = await store.get(keys.nodeAlive('edge-1'));
    assert.ok(alive?.lease, 'liveness key under a lease');
    assert.equal((JSON.parse(alive.value) as { lease_ttl_ms: number }).lease_ttl_ms, 600);
    // The next write carries the field exactly as the agent holds it.
    await p.flush();
    const local = readLocal(dir);
    assert.deepEqual(local, status);
    assert.deepEqual(Object.keys(local.store).sort(), ['kind', 'reachable', 'since']);
    assert.deepEqual(JSON.parse((await store.get(keys.nodeStatus('edge-1')))!.value), local);
    assert.deepEqual(logs, [], 'the first contact is not logged');
    assert.deepEqual(fs.readdirSync(dir), [LOCAL_STATUS_FILE], 'no temp file left behind');
    const [item] = nodeItems((await store.list(keys.nodesPrefix)).items, Date.now());
    assert.deepEqual([item!.alive, item!.stale], [true, false]);
  }));

test('publisher: unreachable and back — one log line each way, since set at each transition, error only while down', () =>
  withPublisher(async (p, { dir, status, logs }) => {
    await p.flush();
    const up = status.store.since;
    p.setReachable(false, new Error('etcd at http://127.0.0.1:1 is unreachable'));
    p.setReachable(false, new Error('still down'));
    await p.flush();
    assert.equal(status.store.reachable, true, 'a write that succeeds means the store answered');
    const down = logs.filter((l) => l.startsWith('store lmdb: unreachable:'));
    assert.equal(down.length, 1, logs.join('\n'));
    assert.match(down[0]!, /etcd at http:\/\/127\.0\.0\.1:1 is unreachable/);
    assert.deepEqual(logs.filter((l) => l.includes('reachable again')).length, 1, logs.join('\n'));
    assert.notEqual(status.store.since, up);
    assert.equal(readLocal(dir).store.error, undefined);
  }));

test('publisher: the local file says unreachable with since and error while the store cannot be written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-publisher-'));
  const store = await openLmdbStore(path.join(dir, 'store'));
  const status = statusDoc(store.kind);
  const logs: string[] = [];
  const p = new StatusPublisher({ store, nodeId: 'edge-1', dataDir: path.join(dir, 'agent'), heartbeatMs: 200, status, log: (m) => logs.push(m) });
  try {
    await p.flush();
    // A closed store fails every call with StoreUnavailableError, as an unreachable one does.
    await store.close();
    await p.flush();
    const local = readLocal(path.join(dir, 'agent'));
    assert.equal(local.store.reachable, false);
    assert.match(local.store.error!, /closed/);
    assert.ok(Date.parse(local.store.since) > 0);
    assert.equal(logs.filter((l) => l.startsWith('store lmdb: unreachable:')).length, 1, logs.join('\n'));
  } finally {
    await p.stop('release');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('publisher: stop(revoke) deletes the liveness key at once; stop(release) leaves it to expire', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-publisher-'));
  const store = await openLmdbStore(path.join(dir, 'store'));
  try {
    const mk = (id: string) => new StatusPublisher({ store, nodeId: id, dataDir: path.join(dir, id), heartbeatMs: 200, status: { ...statusDoc('lmdb'), node_id: id }, log: () => {} });
    const a = mk('a');
    const b = mk('b');
    await a.flush();
    await b.flush();
    await a.stop('revoke');
    assert.equal(await store.get(keys.nodeAlive('a')), undefined);
    await b.stop('release');
    assert.ok(await store.get(keys.nodeAlive('b')), 'released: still there until the TTL runs out');
    // Expiry is the store's: a reader after the TTL no longer sees it (a hang guard, not a timing assertion).
    for (let i = 0; i < 100 && (await store.get(keys.nodeAlive('b'))); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await store.get(keys.nodeAlive('b')), undefined);
    assert.ok(await store.get(keys.nodeStatus('b')), 'the status stays');
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
