/**
 * Node liveness and store reachability with real `opentransit agent` processes (needs `make build`):
 *  - on both backends (LMDB, etcd), an agent SIGKILLed turns stale in GET /v1/nodes once its liveness lease
 *    expires (alive: false), and its status document stays listed (stale, not vanished);
 *  - on etcd, with every member killed, the agent's `<data-dir>/local-status.json` says the store is unreachable
 *    (since, error), the agent logs it once, and when etcd returns the file and the published status say
 *    reachable with the same `since`.
 * Waits are hang guards (several TTLs), never timing assertions.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../../src/api/app.js';
import { BPFFS, unpin } from '../../src/kernel/bpf/index.js';
import { ensureVeth } from '../../src/kernel/links.js';
import { keys } from '../../src/model/keys.js';
import { LOCAL_STATUS_FILE, type NodeStatus } from '../../src/model/node-status.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import { openLmdbStore } from '../../src/store/lmdb.js';
import type { Store } from '../../src/store/store.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';
import { netnsHarness } from '../support/netns.js';

const HEARTBEAT_MS = 1000;
const TTL_MS = 3 * HEARTBEAT_MS;
const OPERATOR_TOKEN = 'ot_test-operator-token-liveness-0123456789';

function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'bin', 'opentransit'))) d = path.dirname(d);
  return d;
}
const bin = path.join(repoRoot(), 'bin', 'opentransit');
const harness = netnsHarness();
const pinBase = `${BPFFS}/ot-test-liveness-${process.pid}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-liveness-'));
const children = new Set<ChildProcess>();
let etcd: EtcdCluster | undefined;
let host = '';

before(async () => {
  assert.ok(fs.existsSync(path.join(repoRoot(), 'dist', 'src', 'main.js')), 'run `make build` first: this test runs bin/opentransit');
  host = await harness.create('host');
  const peer = await harness.create('uplink');
  await ensureVeth({ ns: host, name: 'up0', mac: '02:00:00:00:07:01', peerNs: peer, peerName: 'eth0', peerMac: '02:00:00:00:07:02' });
});

after(async () => {
  for (const c of children) await kill(c);
  await etcd?.destroy();
  unpin(pinBase);
  fs.rmSync(tmp, { recursive: true, force: true });
  await harness.cleanup();
});

interface RunningAgent {
  child: ChildProcess;
  dataDir: string;
  log(): string;
}

function startAgent(nodeId: string, storeSpec: string): RunningAgent {
  const dataDir = path.join(tmp, nodeId);
  const child = spawn(
    process.execPath,
    [bin, 'agent', '--node-id', nodeId, '--host-netns', host, '--uplink', 'up0', '--store', storeSpec, '--data-dir', dataDir,
      '--netns-prefix', `${harness.prefix}${nodeId}-`, '--heartbeat-ms', String(HEARTBEAT_MS), '--bpf-pin-base', pinBase],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  return { child, dataDir, log: () => log };
}

async function kill(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, why: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${why()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type NodeItem = Partial<NodeStatus> & { id: string; alive: boolean; stale: boolean; age_ms: number | null };

async function nodesOf(store: Store): Promise<(id: string) => Promise<NodeItem | undefined>> {
  const app = await build({ store, operatorToken: OPERATOR_TOKEN });
  after(() => app.close());
  return async (id) => {
    const res = await app.inject({ method: 'GET', url: '/v1/nodes', headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { items: NodeItem[] }).items.find((n) => n.id === id);
  };
}

function readLocal(dataDir: string): NodeStatus {
  return JSON.parse(fs.readFileSync(path.join(dataDir, LOCAL_STATUS_FILE), 'utf8')) as NodeStatus;
}

async function killedTurnsStale(store: Store, spec: string, nodeId: string): Promise<void> {
  const node = await nodesOf(store);
  const agent = startAgent(nodeId, spec);
  const up = await waitFor('the agent alive and fresh', async () => {
    const n = await node(nodeId);
    return n?.alive && !n.stale && n.store?.reachable ? n : undefined;
  }, 30_000, agent.log);
  assert.equal(up.heartbeat_ms, HEARTBEAT_MS);
  assert.ok((await store.get(keys.nodeAlive(nodeId)))?.lease, 'the liveness key is under a lease');
  const local = await waitFor('local-status.json to say reachable', async () => {
    const s = readLocal(agent.dataDir);
    return s.store.reachable ? s : undefined;
  }, 10_000);
  assert.equal(local.node_id, nodeId);
  assert.ok(!Number.isNaN(Date.parse(local.store.since)));

  const killedAt = Date.now();
  await kill(agent.child);
  const stale = await waitFor('the killed node to turn stale with its lease expired', async () => {
    const n = await node(nodeId);
    return n && !n.alive && n.stale ? n : undefined;
  }, 6 * TTL_MS);
  process.stderr.write(`# ${store.kind}: stale (lease expired) ${Date.now() - killedAt} ms after SIGKILL (TTL ${TTL_MS} ms)\n`);
  assert.equal(stale.node_id, nodeId, 'the status document is still listed: stale, not vanished');
  assert.equal(await store.get(keys.nodeAlive(nodeId)), undefined);
}

test('lmdb: a SIGKILLed agent turns stale when its liveness lease expires; its status stays listed', { timeout: 120_000 }, async () => {
  const dir = path.join(tmp, 'lmdb-store');
  const store = await openLmdbStore(dir);
  after(() => store.close());
  await killedTurnsStale(store, `lmdb:${dir}`, 'live-lmdb');
});

test('etcd: a SIGKILLed agent turns stale when its liveness lease expires; its status stays listed', { timeout: 120_000 }, async () => {
  etcd ??= await startEtcd();
  const store = await openEtcdStore(etcd.endpoints);
  after(() => store.close());
  await killedTurnsStale(store, `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}`, 'live-etcd');
});

test('etcd down: local-status.json says unreachable (since, error), logged once; back: reachable again, published with the same store field', { timeout: 180_000 }, async () => {
  etcd ??= await startEtcd();
  const spec = `etcd://${etcd.endpoints.map((e) => e.replace('http://', '')).join(',')}`;
  const nodeId = 'live-outage';
  const agent = startAgent(nodeId, spec);
  const store = await openEtcdStore(etcd.endpoints, { onError: () => undefined });
  after(() => store.close());
  await waitFor('the agent to publish reachable', async () => {
    const kv = await store.get(keys.nodeStatus(nodeId));
    return kv && (JSON.parse(kv.value) as NodeStatus).store.reachable ? true : undefined;
  }, 30_000, agent.log);

  const stoppedAt = new Date();
  await etcd.stop(0);
  const down = await waitFor('local-status.json to say unreachable', async () => {
    const s = readLocal(agent.dataDir);
    return s.store.reachable === false ? s : undefined;
  }, 60_000, agent.log);
  assert.equal(down.node_id, nodeId);
  assert.equal(down.store.kind, 'etcd');
  assert.ok(Date.parse(down.store.since) >= stoppedAt.getTime(), `since ${down.store.since} is after the outage began`);
  assert.equal(typeof down.store.error, 'string');
  assert.ok(down.store.error!.length > 0);
  // Rewritten every heartbeat while down (updated_at moves), still unreachable, same since.
  const later = await waitFor('a later heartbeat in local-status.json', async () => {
    const s = readLocal(agent.dataDir);
    return s.updated_at > down.updated_at ? s : undefined;
  }, 10 * HEARTBEAT_MS);
  assert.equal(later.store.reachable, false);
  assert.equal(later.store.since, down.store.since);
  assert.equal(agent.child.exitCode, null, 'the agent keeps running without its store');

  await etcd.start(0);
  const back = await waitFor('local-status.json to say reachable again', async () => {
    const s = readLocal(agent.dataDir);
    return s.store.reachable ? s : undefined;
  }, 60_000, agent.log);
  assert.equal(back.store.error, undefined);
  await waitFor('the published status to carry the same store field', async () => {
    const kv = await store.get(keys.nodeStatus(nodeId));
    const published = kv ? (JSON.parse(kv.value) as NodeStatus) : undefined;
    return published && JSON.stringify(published.store) === JSON.stringify(readLocal(agent.dataDir).store) ? true : undefined;
  }, 30_000);
  await waitFor('the liveness key back', async () => ((await store.get(keys.nodeAlive(nodeId))) ? true : undefined), 30_000);
  const log = agent.log();
  assert.equal(log.match(/store etcd: unreachable/g)?.length, 1, `one log line going down:\n${log}`);
  assert.equal(log.match(/store etcd: reachable again/g)?.length, 1, `one log line coming back:\n${log}`);
  await kill(agent.child);
});
