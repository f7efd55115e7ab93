/**
 * A fleet in the lab: three edge agents on a 3-member etcd cluster (`store: etcd`), and the store's outages while a
 * steady TCP and UDP stream flows from the client to Acme through the edges (ECMP over all three):
 *   - every member killed → no datagram or byte lost, agents keep serving and report the store unreachable in their
 *     local status file; an agent restarted meanwhile boots from its replica (no loss either);
 *   - etcd back → a firewall rule and a route change made through the API apply on every agent;
 *   - the leader killed (one member of three) → writes and watches go on, traffic does not notice;
 *   - one agent frozen (SIGSTOP) while etcd restarts, changes are made and the history is compacted → once thawed
 *     it re-lists and converges.
 * Real etcd, BIRD, agents and kernel; the lab's own name. Needs `make build`.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { customerNetns } from '../../src/agent/desired/node.js';
import { readRuleCounters } from '../../src/kernel/nft.js';
import { listNetns } from '../../src/kernel/netns.js';
import { edgeNetnsPrefix, labAgentPinBase } from '../../src/lab/agents.js';
import { openDataplane } from '../../src/kernel/bpf/dataplane.js';
import { dropsByReason } from '../support/bpf-counters.js';
import { etcdLeaderIndex } from '../../src/lab/etcd.js';
import { labDown, labExec, labRestartAgent, labStatus, labUp, readAgentLocalStatus, type LabStatus } from '../../src/lab/lab.js';
import { labPaths, nodeEntryArgv } from '../../src/lab/paths.js';
import { findLabPids, isRunning } from '../../src/lab/processes.js';
import { readLabState, type LabState } from '../../src/lab/state.js';
import { labStoreStart, labStoreStop } from '../../src/lab/store.js';
import { openEtcdStore } from '../../src/store/etcd.js';
import { labRequest, type LabApi } from '../support/lab-api.js';

const name = `flt${process.pid % 100000}`;
const EDGES = ['chi-edge1', 'chi-edge2', 'chi-edge3'];
const ACME = '203.0.113.100';
let state: LabState;
let status: LabStatus;
let acmeId = '';
/** Agent pids frozen by a test, thawed in after() whatever happens. */
const frozen = new Set<number>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string | (() => string), fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) assert.fail(`${typeof what === 'string' ? what : what()}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(200);
  }
}

const api: LabApi = (method, url, body) => labRequest(status, method, url, body, { timeoutMs: 15_000 });

interface AcmeChange {
  /** Ports blocked by Acme's firewall, one rule each (the stream's ports stay open). */
  blocked: number[];
  priority: number;
}

const acmeConfig = (c: AcmeChange) => ({
  account: 'acme',
  prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
  gre_tunnels: [{ name: 'acme-chi', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
  routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: c.priority }],
  firewall: { default_action: 'allow', rules: c.blocked.map((p) => ({ action: 'block', expression: `tcp.dstport == ${p}` })) },
});

/** PUT Acme's config through the API; resolves with the store revision it was written at. */
async function applyAcme(c: AcmeChange): Promise<{ revision: number; ruleIds: string[] }> {
  const put = await api('PUT', `/v1/accounts/${acmeId}/config`, acmeConfig(c));
  assert.equal(put.status, 200, JSON.stringify(put.json));
  const got = await api('GET', `/v1/accounts/${acmeId}/config`);
  assert.equal(got.status, 200, JSON.stringify(got.json));
  return { revision: put.json.revision as number, ruleIds: (got.json.firewall.rules as Array<{ id: string }>).map((r) => r.id) };
}

/**
 * Waits until the API reads from etcd again after the cluster restarted: its client reconnects on its own, and a
 * write sent on a connection that just broke has an unknown outcome (503), which would only test the timing.
 */
async function apiReadsAgain(): Promise<void> {
  await waitFor('the API reading from etcd again', async () => (await api('GET', `/v1/accounts/${acmeId}/config`)).status === 200);
}

/** What one edge's kernel holds for Acme: the firewall rules (by id) and the metric of the route to its prefix. */
async function edgeKernel(edge: string): Promise<{ rules: string[]; metrics: number[] }> {
  const netns = customerNetns({ netnsPrefix: edgeNetnsPrefix(state, edge) }, acmeId);
  const rules = [...new Set((await readRuleCounters(netns, 'inet', 'opentransit')).map((c) => c.comment ?? '').filter((c) => c.startsWith('rule:')).map((c) => c.slice(5)))].sort();
  const r = await new Promise<string>((resolve, reject) => {
    const child = spawn('ip', ['-n', netns, '-j', 'route', 'show', 'table', 'all'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ip route in ${netns}: exit ${code}`))));
  });
  const metrics = (JSON.parse(r) as Array<{ dst: string; metric?: number }>).filter((x) => x.dst === '203.0.113.0/24').map((x) => x.metric ?? 0);
  return { rules, metrics };
}

/** Per edge, the packets Acme's firewall let through there (its default rule's counter). */
async function edgePackets(): Promise<number[]> {
  return Promise.all(
    EDGES.map(async (edge) => {
      const netns = customerNetns({ netnsPrefix: edgeNetnsPrefix(state, edge) }, acmeId);
      return (await readRuleCounters(netns, 'inet', 'opentransit')).filter((c) => c.comment === 'default').reduce((a, c) => a + c.packets, 0);
    }),
  );
}

/** Every agent reported `revision` applied for Acme (through the API), and every edge's kernel holds `change`. */
async function appliedEverywhere(revision: number, ruleIds: string[], change: AcmeChange, timeoutMs = 30_000): Promise<void> {
  let seen = '';
  await waitFor(
    () => `revision ${revision} applied by every agent (Acme per node: ${seen})`,
    async () => {
      const nodes = (await api('GET', '/v1/nodes')).json.items as Array<{ id: string; accounts?: Record<string, { applied_revision?: number }> }>;
      seen = JSON.stringify(Object.fromEntries(nodes.map((n) => [n.id, n.accounts?.[acmeId] ?? null])));
      return EDGES.every((e) => (nodes.find((n) => n.id === e)?.accounts?.[acmeId]?.applied_revision ?? 0) >= revision);
    },
    timeoutMs,
  );
  for (const e of EDGES) {
    assert.deepEqual(await edgeKernel(e), { rules: [...ruleIds].sort(), metrics: [change.priority] }, `${e}'s kernel after revision ${revision}`);
  }
}

/** The nexthops of Acme's prefix at the site router: one per edge that announces it. */
async function siteNexthops(): Promise<string[]> {
  const r = await labExec(name, 'chi-router', ['ip', '-j', 'route', 'show', '203.0.113.0/24']);
  const routes = JSON.parse(r.stdout || '[]') as Array<{ gateway?: string; nexthops?: Array<{ gateway: string }> }>;
  return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway) : x.gateway ? [x.gateway] : [])).sort();
}

// --- the stream --------------------------------------------------------------------------------------------------

/**
 * From the client: 6 UDP flows to Acme's udp/7 (echo) and 3 TCP connections to tcp/21 (banner, then echo), one
 * datagram per flow and one line per connection every 20 ms, until stdin closes; then up to 3 s for the last
 * answers. Different source ports: ECMP spreads the flows over the edges. Prints one JSON summary.
 */
const STREAM_PY = String.raw`
import json, select, socket, sys, threading, time
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
ACME = sys.argv[1]
udp = []
for i in range(6):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((ACME, 7)); s.setblocking(False); udp.append(s)
tcp, errors = [], []
for i in range(3):
    s = socket.create_connection((ACME, 21), timeout=5)
    banner = b''
    while not banner.endswith(b'\n'):
        banner += s.recv(100)
    s.setblocking(False); tcp.append(s)
sent_udp, got_udp = set(), set()
tcp_sent, tcp_got = [0] * 3, [0] * 3
seq = 0
print('streaming', flush=True)
def receive(timeout):
    r, _, _ = select.select(udp + tcp, [], [], timeout)
    for s in r:
        try:
            data = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError as e:
            errors.append(repr(e)); continue
        if s in udp:
            got_udp.add(data.decode())
        else:
            if not data:
                errors.append('tcp connection %d closed' % tcp.index(s))
            tcp_got[tcp.index(s)] += len(data)
next_at = time.monotonic()
while not stop.is_set():
    for i, s in enumerate(udp):
        m = '%d:%d' % (i, seq)
        try:
            s.send(m.encode()); sent_udp.add(m)
        except OSError as e:
            errors.append('udp send: ' + repr(e))
    for i, s in enumerate(tcp):
        line = ('%d\n' % seq).encode()
        try:
            s.sendall(line); tcp_sent[i] += len(line)
        except OSError as e:
            errors.append('tcp send: ' + repr(e))
    seq += 1
    next_at += 0.02
    while time.monotonic() < next_at:
        receive(max(0, next_at - time.monotonic()))
deadline = time.monotonic() + 3
while time.monotonic() < deadline and (got_udp != sent_udp or tcp_got != tcp_sent):
    receive(0.1)
missing = sorted(sent_udp - got_udp)
print(json.dumps({'rounds': seq, 'udp_sent': len(sent_udp), 'udp_lost': len(missing), 'udp_lost_first': missing[:10],
                  'tcp_sent': tcp_sent, 'tcp_echoed': tcp_got, 'errors': errors[:10]}), flush=True)
`;

interface StreamResult {
  rounds: number;
  udp_sent: number;
  udp_lost: number;
  udp_lost_first: string[];
  tcp_sent: number[];
  tcp_echoed: number[];
  errors: string[];
}

/** BIRD's log of the site router (sessions to the edges: Cease, BFD), to explain a loss when there is one. */
const siteBirdLog = () => `${labPaths(name).birdDir}/chi-router.log`;
const logSize = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).length;

/** Each edge's data-plane drops by reason (its pinned ot_counters), to say where a lost datagram went. */
function edgeDrops(): Record<string, Record<string, number>> {
  return Object.fromEntries(
    EDGES.map((edge) => {
      const dp = openDataplane({ node: edge, base: labAgentPinBase(name) });
      try {
        return [edge, dropsByReason(dp.maps.counters)];
      } finally {
        dp.close();
      }
    }),
  );
}

async function startStream(): Promise<{ stop(): Promise<StreamResult> }> {
  const birdFrom = await logSize(siteBirdLog());
  const dropsFrom = edgeDrops();
  const clientNetns = state.plan.hosts.find((h) => h.name === 'client')!.netns;
  const child = spawn('ip', ['netns', 'exec', clientNetns, 'python3', '-u', '-c', STREAM_PY, ACME], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  await waitFor('the stream to start', async () => {
    if (child.exitCode !== null) assert.fail(`the stream exited: ${err}`);
    return out.includes('streaming');
  });
  return {
    async stop() {
      child.stdin.end();
      const code = await Promise.race([closed, sleep(20_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') child.kill('SIGKILL');
      assert.equal(code, 0, `the stream failed: ${err}`);
      const result = JSON.parse(out.trim().split('\n').at(-1)!) as StreamResult;
      if (result.udp_lost > 0) {
        // Most likely cause on a loaded machine: a BIRD starved past the lab's BFD time (150 ms) drops every edge.
        const bird = (await readFile(siteBirdLog(), 'utf8').catch(() => '')).slice(birdFrom).split('\n').filter((l) => /edge_|bfd|BFD/.test(l));
        result.errors.push(`chi-router BIRD meanwhile: ${bird.slice(0, 8).join(' | ') || '(nothing about the edges)'}`);
        // A drop the data plane counted names its edge and reason (none: the loss was elsewhere — a ring, a hop).
        const drops = Object.entries(edgeDrops()).flatMap(([edge, now]) =>
          Object.entries(now).filter(([k, n]) => n > (dropsFrom[edge]?.[k] ?? 0)).map(([k, n]) => `${edge} ${k} +${n - (dropsFrom[edge]?.[k] ?? 0)}`),
        );
        result.errors.push(`edge data-plane drops meanwhile: ${drops.join(', ') || 'none'}`);
      }
      return result;
    },
  };
}

function assertNoLoss(t: TestContext, r: StreamResult, what: string): void {
  t.diagnostic(`${what}: ${r.rounds} rounds, ${r.udp_sent} datagrams (${r.udp_lost} lost), TCP bytes sent ${r.tcp_sent.join('/')} echoed ${r.tcp_echoed.join('/')}`);
  assert.ok(r.rounds > 20 && r.udp_sent === 6 * r.rounds, `${what}: the stream ran (${JSON.stringify(r)})`);
  assert.deepEqual(
    { udp_lost: r.udp_lost, udp_lost_first: r.udp_lost_first, tcp_echoed: r.tcp_echoed, errors: r.errors },
    { udp_lost: 0, udp_lost_first: [], tcp_echoed: r.tcp_sent, errors: [] },
    `${what}: zero loss (${r.udp_sent} datagrams over ${r.rounds} rounds)`,
  );
}

const storeReachable = async (edge: string) => (await readAgentLocalStatus(labPaths(name), edge))?.store?.reachable;

const agentOf = async (edge: string) => (await readLabState(labPaths(name).stateFile))!.processes.find((p) => p.role === 'agent' && p.host === edge)!;

// --- the lab -----------------------------------------------------------------------------------------------------

before(async () => {
  ({ state } = await labUp(
    {
      name,
      store: 'etcd',
      anycast_endpoints: ['192.0.2.10'],
      sites: [{ name: 'chi', edges: 3 }],
      clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
      customers: [{ name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: ACME, listen: ['tcp/21', 'tcp/22', 'udp/7'] }] }],
    },
    { readyTimeoutS: 120 },
  ));
  status = await labStatus(name);
  const created = await api('POST', '/v1/accounts', { name: 'acme' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  acmeId = created.json.id;
  const first = { blocked: [23], priority: 100 };
  const { revision, ruleIds } = await applyAcme(first);
  await appliedEverywhere(revision, ruleIds, first, 60_000);
  // Every edge announces Acme: the site router spreads the stream's flows over all three.
  await waitFor('three nexthops for Acme at chi-router', async () => (await siteNexthops()).length === 3, 60_000);
  await waitFor('Acme reachable from the client', async () => {
    const r = await labExec(name, 'client', ['python3', '-c', `import socket\nprint(socket.create_connection(('${ACME}', 21), timeout=2).recv(100).decode().strip())`]);
    return r.stdout.trim() === 'acme-ftp 21';
  });
});

after(async () => {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
  }
  // As after a crash of whatever ran the lab: no state file, so down finds everything by name, marker and namespace.
  await rm(labPaths(name).stateFile, { force: true });
  await labDown(name);
  assert.deepEqual(await listNetns(`otl-${name}-`), []);
  assert.equal(existsSync(labPaths(name).runDir), false, 'the run directory (etcd data included) is gone');
  assert.deepEqual(await findLabPids(name, []), [], 'no process of the lab is left (etcd members included)');
});

test('lab status shows the etcd members and every agent reaching the store; lab store names an unknown member', async () => {
  const s = await labStatus(name);
  assert.equal(s.store.kind, 'etcd');
  assert.ok(s.store.kind === 'etcd');
  assert.deepEqual(s.store.members.map((m) => [m.name, typeof m.pid, m.health]), [
    ['etcd1', 'number', 'healthy'],
    ['etcd2', 'number', 'healthy'],
    ['etcd3', 'number', 'healthy'],
  ]);
  assert.match(s.store.spec, /^etcd:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
  await waitFor('every agent reports the store reachable', async () => {
    const edges = (await labStatus(name)).edges;
    return EDGES.every((e) => edges[e]!.store_reachable === true);
  });

  // The CLI: the JSON shape, and errors that name what is wrong.
  const cli = async (...args: string[]) => {
    const argv = [...nodeEntryArgv('main'), 'lab', ...args, '-n', name];
    return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.once('close', (code) => resolve({ code, out, err }));
    });
  };
  const json = JSON.parse((await cli('status', '-o', 'json')).out) as LabStatus;
  assert.ok(json.store.kind === 'etcd');
  assert.deepEqual(Object.keys(json.store.members[0]!).slice(0, 3), ['name', 'pid', 'client_url']);
  const unknown = await cli('store', 'stop', 'etcd9');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.err, /member.*"etcd9".*etcd1, etcd2, etcd3/);
  const badAction = await cli('store', 'pause');
  assert.notEqual(badAction.code, 0);
  assert.match(badAction.err, /stop and start/);
  await assert.rejects(labStoreStop(name, 'etcd4'), /no etcd member "etcd4"/);
});

test('every etcd member killed while traffic flows: zero loss, agents keep serving, report the store unreachable; an agent restarted meanwhile boots from its replica', async (t) => {
  const stream = await startStream();
  let result: StreamResult;
  try {
    const stopped = await labStoreStop(name);
    assert.deepEqual(stopped.changed.sort(), ['etcd1', 'etcd2', 'etcd3']);
    await waitFor('every agent reports the store unreachable', async () => {
      for (const e of EDGES) if ((await storeReachable(e)) !== false) return false;
      return true;
    });
    const s = await labStatus(name);
    assert.ok(s.store.kind === 'etcd');
    assert.deepEqual(s.store.members.map((m) => m.pid), [null, null, null]);
    assert.deepEqual(EDGES.map((e) => s.edges[e]!.store_reachable), [false, false, false]);

    // A restart while the store is down: SIGTERM withdraws its announcements; the new agent boots from its
    // replica, applies it, and announces Acme again — all without etcd.
    const restartedAt = Date.now();
    const agent = await labRestartAgent(name, 'chi-edge2');
    await waitFor('the restarted agent boots from its replica', async () => (await readFile(agent.log, 'utf8')).slice(-20_000).includes('booting from the local replica'));
    await waitFor(
      'the restarted agent applied Acme from its replica, store still unreachable',
      async () => {
        const local = (await readAgentLocalStatus(labPaths(name), 'chi-edge2')) as { updated_at?: string; store?: { reachable?: boolean }; accounts?: Record<string, { state?: string }> } | undefined;
        return local !== undefined && Date.parse(local.updated_at ?? '') >= restartedAt && local.store?.reachable === false && local.accounts?.[acmeId]?.state === 'ok';
      },
      60_000,
    );
    await waitFor('chi-edge2 announces Acme again', async () => (await siteNexthops()).length === 3, 60_000);
    assert.ok(await isRunning(agent), 'the restarted agent runs');
    await sleep(1000);
  } finally {
    result = await stream.stop();
  }
  assertNoLoss(t, result, 'etcd down, one agent restarted');
});

test('etcd back: a firewall rule and a route change made through the API apply on every agent', async () => {
  const started = await labStoreStart(name);
  assert.deepEqual(started.changed.sort(), ['etcd1', 'etcd2', 'etcd3']);
  assert.equal(started.quorum, true);
  await waitFor('every agent reaches the store again', async () => {
    for (const e of EDGES) if ((await storeReachable(e)) !== true) return false;
    return true;
  }, 60_000);
  await apiReadsAgain();
  const change = { blocked: [23, 22], priority: 200 };
  const { revision, ruleIds } = await applyAcme(change);
  await appliedEverywhere(revision, ruleIds, change);
  // And the rule does what it says, on whichever edge the connection takes.
  const r = await labExec(name, 'client', ['python3', '-c', `import socket\ntry:\n  socket.create_connection(('${ACME}', 22), timeout=2)\n  print('connected')\nexcept Exception as e:\n  print(type(e).__name__)`]);
  assert.equal(r.stdout.trim(), 'TimeoutError', ':22 is blocked now');
});

test('the leader killed (one member of three): writes and watches go on, traffic does not notice; it rejoins', async (t) => {
  const s = await labStatus(name);
  assert.ok(s.store.kind === 'etcd');
  const leader = s.store.members[await etcdLeaderIndex(s.store.members.map((m) => ({ clientUrl: m.client_url })))]!.name;
  const packetsBefore = await edgePackets();
  const stream = await startStream();
  let result: StreamResult;
  try {
    assert.deepEqual((await labStoreStop(name, leader)).changed, [leader]);
    // The two others elect a new leader (election timeout 500 ms). A write proposed during the election may fail
    // with an unknown outcome (the store then answers 503 rather than risk applying it twice): write after it.
    const survivors = s.store.members.filter((m) => m.name !== leader).map((m) => ({ clientUrl: m.client_url }));
    await waitFor('a new leader among the two others', () => etcdLeaderIndex(survivors).then(() => true));
    const change = { blocked: [22], priority: 150 };
    const { revision, ruleIds } = await applyAcme(change);
    await appliedEverywhere(revision, ruleIds, change);
    await sleep(1000); // traffic after the change too
  } finally {
    result = await stream.stop();
  }
  assertNoLoss(t, result, `etcd member ${leader} killed`);
  const carried = (await edgePackets()).map((n, i) => n - packetsBefore[i]!);
  t.diagnostic(`packets per edge: ${carried.join(' / ')}`);
  // 9 flows hashed over 3 edges: all on one edge has a chance of 3 in 3^9.
  assert.ok(carried.filter((n) => n > 0).length >= 2, `the stream went through several edges: ${carried.join(' / ')}`);
  const again = await labStoreStart(name, leader);
  assert.deepEqual(again.changed, [leader]);
  assert.equal(again.quorum, true);
  const after = await labStatus(name);
  assert.ok(after.store.kind === 'etcd');
  assert.deepEqual(after.store.members.map((m) => m.health), ['healthy', 'healthy', 'healthy'], 'the restarted member rejoined (it knows the leader)');
});

test('compaction while an agent is cut off: once back it re-lists and converges', async (t) => {
  const agent = await agentOf('chi-edge3');
  const logBefore = (await readFile(agent.log, 'utf8')).length;
  process.kill(agent.pid, 'SIGSTOP');
  frozen.add(agent.pid);
  let last: { revision: number; ruleIds: string[] };
  const change = { blocked: [21000, 22], priority: 120 };
  try {
    // Restarting etcd breaks the frozen agent's connections: when it wakes, it must resume its watch.
    await labStoreStop(name);
    await labStoreStart(name);
    await apiReadsAgain();
    await applyAcme({ blocked: [20000], priority: 110 });
    last = await applyAcme(change);
    const s = (await readLabState(labPaths(name).stateFile))!;
    const store = await openEtcdStore(s.etcd!.members.map((m) => m.clientUrl));
    try {
      await store.compact(await store.revision());
    } finally {
      await store.close();
    }
  } finally {
    process.kill(agent.pid, 'SIGCONT');
    frozen.delete(agent.pid);
  }
  await appliedEverywhere(last.revision, last.ruleIds, change, 60_000);
  const log = (await readFile(agent.log, 'utf8')).slice(logBefore);
  const relist = /.*(compacted|re-list).*/i.exec(log);
  assert.ok(relist, `chi-edge3's watch found its revision compacted and re-listed; its log since SIGSTOP:\n${log}`);
  t.diagnostic(`chi-edge3: ${relist[0]}`);
});
