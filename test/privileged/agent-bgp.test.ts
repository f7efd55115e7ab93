// The edge agents' BGP with real BIRD 2 daemons and the real agent: a router namespace (BIRD, merge paths on,
// passive sessions with BFD) over veths to three edge host namespaces, each run by an Agent that manages its own
// BIRD from the store (node configs name each edge's router), and a client namespace behind the router that probes
// the anycast endpoint 192.0.2.10 over many UDP flows (a responder in each edge host netns answers with its name:
// the GRE path itself is other work). What the router's kernel holds is read with `ip -j route`.
//
// Times are measured and printed, never asserted; what is asserted is functional: one multipath route per
// announced prefix, which nexthops it has, that a drain loses no probe packet, that traffic stops being lost once
// BFD removed a silent edge, that SIGTERM withdraws while the session is still up.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../../src/agent/agent.js';
import { customerNetns, NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { listAddresses, replaceAddresses } from '../../src/kernel/addresses.js';
import { startBird, type BirdConfigSpec, type BirdInstance } from '../../src/kernel/bird.js';
import { run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth } from '../../src/kernel/links.js';
import { listNetns, setSysctls } from '../../src/kernel/netns.js';
import { deleteNftTableIfPresent, replaceNftTable } from '../../src/kernel/nft.js';
import { listRoutes, type Route } from '../../src/kernel/routes.js';
import { BPFFS, unpin } from '../../src/kernel/bpf/index.js';
import { nodeEntryArgv, packageRoot } from '../../src/lab/paths.js';
import { keys } from '../../src/model/keys.js';
import type { NodeStatus } from '../../src/model/node-status.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';

const h = netnsHarness();
const EDGES = [1, 2, 3] as const;
type Edge = (typeof EDGES)[number];
const routerAddr = (i: Edge) => `100.64.0.${4 * i - 3}`;
const edgeAddr = (i: Edge) => `100.64.0.${4 * i - 2}`;
const nodeId = (i: Edge) => `bgpt-${process.pid}-e${i}`;
const ACME = '203.0.113.0/24';
const BETA = '198.18.0.0/24';
const ENDPOINT = '192.0.2.10/32';
const PROBE_PORT = 9999;
const RTPROT_BIRD = 12;

let api: ApiFixture;
let tmp: string;
let routerNs: string;
let clientNs: string;
let router: BirdInstance;
const edgeNs = new Map<Edge, string>();
const nodes = new Map<Edge, NodeConfig>();
const agents = new Map<Edge, Agent>();
const logs = new Map<Edge, string[]>();
const responders: ChildProcess[] = [];
let agentProcess: ChildProcess | undefined;
let acmeId = '';
let betaId = '';
let betaPrefixId = '';
let brokenFile: string | undefined;
const pinBase = `${BPFFS}/ot-test-agentbgp-${process.pid}`;

function newAgent(i: Edge): Agent {
  const log = logs.get(i) ?? [];
  logs.set(i, log);
  return new Agent({
    node: nodes.get(i)!,
    store: api.store,
    dataDir: path.join(tmp, `e${i}`),
    resyncMs: 1000,
    log: (m) => log.push(`${new Date().toISOString()} ${m}`),
    bpf: { pinBase },
    bgp: { supervision: { checkIntervalMs: 300, healthTimeoutMs: 300, failuresBeforeRestart: 2, backoff: { initialMs: 200, maxMs: 2_000 } }, sessionPollMs: 300 },
  });
}

const routerSpec: BirdConfigSpec = {
  routerId: '100.64.0.1',
  asn: 65000,
  kernel: { export: 'all', mergePaths: true },
  staticRoutes: [],
  bgpPeers: EDGES.map((i) => ({
    name: `edge${i}`,
    neighbor: edgeAddr(i),
    remoteAs: 64512,
    bfd: true,
    // 9 s: a BFD detection (150 ms) and a hold-timer expiry are told apart by BIRD's last error, not by timing.
    holdTime: 9,
    keepaliveTime: 3,
    passive: true,
    import: 'all' as const,
    export: 'none' as const,
    connectDelayTime: 1,
    connectRetryTime: 1,
    errorWaitTime: { min: 1, max: 2 },
  })),
};

/** A name under /run/netns that no namespace is mounted on (a mounted one lives on nsfs, another device). */
function isPlainFile(p: string): boolean {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  return st !== undefined && st.isFile() && st.dev === fs.statSync(path.dirname(p)).dev;
}

async function birdsUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [comm, cmdline] = await Promise.all([readFile(`/proc/${entry}/comm`, 'utf8'), readFile(`/proc/${entry}/cmdline`, 'utf8')]);
      if (comm.trim() === 'bird' && cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** The router's kernel routes for `dst` (ip -j route). */
async function routerRoute(dst: string): Promise<Route[]> {
  return (await listRoutes(routerNs, { table: 254, family: 4 })).filter((r) => r.dst === dst);
}

/** The edges that are nexthops of `dst` at the router (one multipath route per prefix is asserted). */
async function nexthopEdges(dst: string): Promise<Edge[]> {
  const r = await routerRoute(dst);
  if (r.length === 0) return [];
  assert.equal(r.length, 1, `one kernel route for ${dst}, got ${JSON.stringify(r)}`);
  assert.equal(r[0]!.protocol, RTPROT_BIRD);
  return EDGES.filter((i) => r[0]!.nexthops.some((n) => n.via === edgeAddr(i) && n.dev === `r-e${i}`));
}

/** Polls until each prefix has exactly its wanted nexthops; returns the elapsed ms. */
async function waitNexthops(want: Record<string, readonly Edge[]>, what: string, timeoutMs = 30_000): Promise<number> {
  const t0 = performance.now();
  let last: Record<string, Edge[]> = {};
  while (performance.now() - t0 < timeoutMs) {
    last = {};
    for (const dst of Object.keys(want)) last[dst] = await nexthopEdges(dst);
    if (Object.entries(want).every(([dst, w]) => JSON.stringify(last[dst]) === JSON.stringify([...w]))) return performance.now() - t0;
    await sleep(2);
  }
  throw new Error(`${what}: the router never reached ${JSON.stringify(want)}; last ${JSON.stringify(last)}\n${agentLogs()}`);
}

function agentLogs(): string {
  return [...logs.entries()].map(([i, l]) => `--- agent e${i} (last lines)\n${l.slice(-25).join('\n')}`).join('\n');
}

const ALL = { [ACME]: EDGES, [BETA]: EDGES, [ENDPOINT]: EDGES };

async function routerSession(i: Edge): Promise<{ state?: string; since?: string; lastError?: string }> {
  const p = (await router.showProtocols({ all: true, name: `edge${i}` }))[0];
  return { ...(p?.bgpState ? { state: p.bgpState } : {}), ...(p?.since ? { since: p.since } : {}), ...(p?.lastError ? { lastError: p.lastError } : {}) };
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${agentLogs()}`);
    await sleep(50);
  }
}

/** A UDP echo on the anycast endpoint in an edge's host netns, answering "<seq> e<i>". */
const RESPONDER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print('ready', flush=True)
label = sys.argv[3].encode()
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(data + b' ' + label, addr)
`;

/** Sends `rate` packets/s for `seconds` over `flows` source ports; prints {start} then the result as JSON. */
const PROBE = `
import json, select, socket, sys, time
dst, port, rate, seconds, flows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
socks = []
for i in range(flows):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', 0))
    s.setblocking(False)
    socks.append(s)
ep = select.epoll()
byfd = {}
for s in socks:
    ep.register(s.fileno(), select.EPOLLIN)
    byfd[s.fileno()] = s
got = {}
sent_at = []
def drain(timeout):
    for fd, _ in ep.poll(timeout):
        s = byfd[fd]
        while True:
            try:
                data = s.recv(2048)
            except BlockingIOError:
                break
            n, _, edge = data.decode().partition(' ')
            got[int(n)] = edge
start = time.time()
print(json.dumps({'start': start}), flush=True)
end = start + seconds
seq = 0
while True:
    now = time.time()
    if now >= end:
        break
    due = start + seq / rate
    if now >= due:
        socks[seq % flows].sendto(str(seq).encode(), (dst, port))
        sent_at.append(now)
        seq += 1
        continue
    drain(due - now)
tail = time.time() + 0.5
while time.time() < tail:
    drain(0.05)
lost = [n for n in range(seq) if n not in got]
by_edge = {}
for e in got.values():
    by_edge[e] = by_edge.get(e, 0) + 1
print(json.dumps({'sent': seq, 'received': len(got), 'lost_at': [sent_at[n] for n in lost], 'by_edge': by_edge}), flush=True)
`;

interface ProbeResult {
  start: number;
  sent: number;
  received: number;
  /** Send times (epoch seconds) of the packets never answered. */
  lost_at: number[];
  by_edge: Record<string, number>;
}

/** Starts the probe; resolves `started` once it sends, `done` with its result. */
function probe(seconds: number, rate = 1000, flows = 64): { started: Promise<number>; done: Promise<ProbeResult> } {
  const child = spawn('ip', ['netns', 'exec', clientNs, 'python3', '-c', PROBE, '192.0.2.10', String(PROBE_PORT), String(rate), String(seconds), String(flows)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onStart: (t: number) => void;
  const started = new Promise<number>((r) => (onStart = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const first = out.split('\n')[0];
    if (first && out.includes('\n')) onStart(JSON.parse(first).start as number);
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<ProbeResult>((resolve, reject) => {
    child.once('close', (code) => {
      const lines = out.trim().split('\n');
      if (code !== 0 || lines.length < 2) return reject(new Error(`probe failed (${code}): ${err}`));
      resolve({ ...(JSON.parse(lines[0]!) as { start: number }), ...(JSON.parse(lines[1]!) as Omit<ProbeResult, 'start'>) });
    });
  });
  return { started, done };
}

async function status(i: Edge): Promise<NodeStatus> {
  return agents.get(i)!.snapshotStatus();
}

async function storedStatus(i: Edge): Promise<NodeStatus | undefined> {
  const kv = await api.store.get(keys.nodeStatus(nodeId(i)));
  return kv ? (JSON.parse(kv.value) as NodeStatus) : undefined;
}

before(async () => {
  api = await openApi();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-agentbgp-'));
  routerNs = await h.create('router');
  clientNs = await h.create('client');
  await runIpOps(routerNs, [{ args: ['link', 'set', 'lo', 'up'] }]);
  await setSysctls(routerNs, { 'net.ipv4.ip_forward': 1, 'net.ipv4.fib_multipath_hash_policy': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
  await ensureVeth({ ns: routerNs, name: 'r-c', mac: '02:00:5e:20:00:01', peerNs: clientNs, peerName: 'c0', peerMac: '02:00:5e:20:00:02' });
  await replaceAddresses(routerNs, [{ dev: 'r-c', cidr: '100.64.1.1/30' }]);
  await runIpOps(clientNs, [{ args: ['link', 'set', 'lo', 'up'] }, { args: ['address', 'replace', '100.64.1.2/30', 'dev', 'c0'] }, { args: ['route', 'replace', 'default', 'via', '100.64.1.1'] }]);
  for (const i of EDGES) {
    const ns = await h.create(`e${i}`);
    edgeNs.set(i, ns);
    await ensureVeth({ ns: routerNs, name: `r-e${i}`, mac: `02:00:5e:10:0${i}:01`, peerNs: ns, peerName: 'up0', peerMac: `02:00:5e:10:0${i}:02` });
    await replaceAddresses(routerNs, [{ dev: `r-e${i}`, cidr: `${routerAddr(i)}/30` }]);
    await runIpOps(ns, [{ args: ['link', 'set', 'lo', 'up'] }, { args: ['address', 'replace', `${edgeAddr(i)}/30`, 'dev', 'up0'] }, { args: ['route', 'replace', 'default', 'via', routerAddr(i)] }]);
    nodes.set(i, { ...NODE_DEFAULTS, nodeId: nodeId(i), hostNetns: ns, uplink: 'up0', netnsPrefix: `${h.prefix}e${i}-` });
  }
  router = await startBird({ name: 'router', netns: routerNs, runDir: path.join(tmp, 'router'), spec: routerSpec });
});

after(async () => {
  // Every step runs whatever failed before it: the namespaces and pins must go even after a broken test.
  const problems: unknown[] = [];
  const step = async (fn: () => unknown) => {
    try {
      await fn();
    } catch (e) {
      problems.push(e);
    }
  };
  await step(() => agentProcess?.kill('SIGKILL'));
  for (const a of agents.values()) await step(() => a.stop());
  await step(() => responders.forEach((r) => r.kill('SIGKILL')));
  await step(() => router?.stop({ withdrawFirst: false }));
  await step(async () => {
    for (const pid of await birdsUnder(tmp)) process.kill(pid, 'SIGKILL');
    await sleep(100);
  });
  const left = await birdsUnder(tmp);
  await step(() => api?.close());
  await step(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // The broken-account test removes its stand-in file itself; this is the safety net (a plain file only: once the
  // agent recreated the namespace there, the harness deletes it like any other).
  await step(() => brokenFile && isPlainFile(brokenFile) && fs.rmSync(brokenFile));
  await step(() => h.cleanup());
  await step(() => unpin(pinBase));
  assert.deepEqual(problems, [], 'cleanup');
  assert.deepEqual(left, [], 'no BIRD may outlive the test');
  assert.equal(fs.existsSync(pinBase), false, 'no pins left');
});

test('three agents announce from the store: the router holds one multipath route per prefix, one nexthop per edge', async () => {
  const settings = await api.call('PUT', '/v1/settings', { body: { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 64512, peers: [] } } });
  assert.equal(settings.statusCode, 200, settings.body);
  for (const i of EDGES) {
    // Edge 3 has no router id: its agent takes its uplink address.
    const body = { bgp: { ...(i !== 3 ? { router_id: edgeAddr(i) } : {}), peers: [{ address: routerAddr(i), asn: 65000, bfd: true, hold_time: 9, keepalive: 3 }] } };
    const res = await api.call('PUT', `/v1/nodes/${nodeId(i)}/config`, { body });
    assert.equal(res.statusCode, 200, res.body);
  }
  const acme = await api.createAccount('acme');
  acmeId = acme.id;
  const put = (id: string, body: unknown) => api.call('PUT', `/v1/accounts/${id}/config`, { body });
  let res = await put(acme.id, {
    account: 'acme',
    prefixes: [{ cidr: ACME, advertised: true }],
    gre_tunnels: [{ name: 'acme-1', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
    routes: [{ prefix: ACME, nexthop: '10.200.0.1', priority: 100 }],
  });
  assert.equal(res.statusCode, 200, res.body);
  const beta = await api.createAccount('beta');
  betaId = beta.id;
  res = await put(beta.id, {
    account: 'beta',
    prefixes: [{ cidr: BETA, advertised: true }],
    gre_tunnels: [{ name: 'beta-1', customer_gre_endpoint: '198.51.100.3', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.1.0/31' }],
    routes: [{ prefix: BETA, nexthop: '10.200.1.1', priority: 100 }],
  });
  assert.equal(res.statusCode, 200, res.body);
  betaPrefixId = ((await api.call('GET', `/v1/accounts/${beta.id}/prefixes`)).json() as { items: { id: string }[] }).items[0]!.id;

  const t0 = performance.now();
  for (const i of EDGES) {
    const a = newAgent(i);
    agents.set(i, a);
    await a.start();
  }
  const ms = await waitNexthops(ALL, 'initial convergence');
  console.log(`# agents started → router ECMP over 3 edges for 3 prefixes: ${(performance.now() - t0).toFixed(0)} ms (BIRD connect delay 1 s)`);
  for (const dst of [ACME, BETA, ENDPOINT]) {
    const r = await routerRoute(dst);
    assert.equal(r.length, 1, `one route for ${dst}`);
    assert.equal(r[0]!.nexthops.length, 3);
  }
  void ms;

  for (const i of EDGES) {
    const s = await eventually(`edge ${i} reports its BGP`, async () => {
      const st = await storedStatus(i);
      return st?.bgp?.state === 'ok' && st.bgp.sessions[0]?.bgp_state === 'Established' ? st : undefined;
    });
    assert.deepEqual(s.bgp!.announced, [BETA, ACME, ENDPOINT]);
    assert.equal(s.bgp!.drained, false);
    assert.equal(s.bgp!.router_id, edgeAddr(i), 'the node config, or the uplink address for edge 3');
    assert.equal(s.bgp!.sessions[0]!.peer, routerAddr(i));
    // The endpoint is a local address of the edge (labelled ours), so GRE and probes to it are addressed here.
    const lo = await listAddresses(edgeNs.get(i)!, { dev: 'lo', family: 4 });
    assert.ok(lo.some((a) => a.cidr === ENDPOINT && a.label === 'lo:ot'), JSON.stringify(lo));
    // The edge announces but installs nothing for its customers' prefixes in its main table.
    assert.deepEqual((await listRoutes(edgeNs.get(i)!, { table: 254, family: 4 })).filter((r) => [ACME, BETA, ENDPOINT].includes(r.dst)), []);
  }

  // The responders (the GRE path is other work: this probes the anycast endpoint itself).
  for (const i of EDGES) {
    const child = spawn('ip', ['netns', 'exec', edgeNs.get(i)!, 'python3', '-c', RESPONDER, '192.0.2.10', String(PROBE_PORT), `e${i}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    responders.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`responder e${i} exited ${code}`)));
    });
  }
  const p = probe(1, 1000, 64);
  const r = await p.done;
  assert.equal(r.received, r.sent, `probe lost ${r.sent - r.received} of ${r.sent}`);
  assert.deepEqual(Object.keys(r.by_edge).sort(), ['e1', 'e2', 'e3'], `flows spread over every edge: ${JSON.stringify(r.by_edge)}`);
  console.log(`# probe 1 s × 1000 pps over 64 flows: ${r.received}/${r.sent} answered, per edge ${JSON.stringify(r.by_edge)}`);
});

test('advertised=false on a prefix withdraws it from every edge; true brings it back', async () => {
  const url = `/v1/accounts/${betaId}/prefixes/${betaPrefixId}`;
  let t0 = performance.now();
  assert.equal((await api.call('PATCH', url, { body: { advertised: false } })).statusCode, 200);
  await waitNexthops({ [BETA]: [], [ACME]: EDGES, [ENDPOINT]: EDGES }, 'beta withdrawn');
  console.log(`# PATCH advertised=false → gone from the router: ${(performance.now() - t0).toFixed(0)} ms`);
  t0 = performance.now();
  assert.equal((await api.call('PATCH', url, { body: { advertised: true } })).statusCode, 200);
  await waitNexthops(ALL, 'beta announced again');
  console.log(`# PATCH advertised=true → 3 nexthops again: ${(performance.now() - t0).toFixed(0)} ms`);
});

test('drain of one edge removes only its nexthop while a 1000 pps probe over 64 flows loses nothing; undrain restores it', async () => {
  const p = probe(3.5, 1000, 64);
  await p.started;
  await sleep(1000);
  const t0 = performance.now();
  const res = await api.call('POST', `/v1/nodes/${nodeId(1)}/drain`, { body: { reason: 'test' } });
  assert.equal(res.statusCode, 200, res.body);
  const drainMs = await waitNexthops({ [ACME]: [2, 3], [BETA]: [2, 3], [ENDPOINT]: [2, 3] }, 'edge 1 drained');
  assert.equal((await routerSession(1)).state, 'Established', 'withdrawn by UPDATE: the session stays up');
  const r = await p.done;
  console.log(`# drain (API write → nexthop gone at the router): ${drainMs.toFixed(0)} ms; probe ${r.received}/${r.sent}, per edge ${JSON.stringify(r.by_edge)}`);
  assert.equal(r.sent - r.received, 0, `a drain must lose nothing; lost ${r.sent - r.received}`);
  const st = await eventually('edge 1 reports drained', async () => {
    const s = await status(1);
    return s.bgp?.drained && s.bgp.withheld === 'drained' ? s : undefined;
  });
  assert.deepEqual(st.bgp!.announced, []);
  assert.equal(st.bgp!.sessions[0]!.bgp_state, 'Established');

  const t1 = performance.now();
  assert.equal((await api.call('POST', `/v1/nodes/${nodeId(1)}/undrain`)).statusCode, 200);
  await waitNexthops(ALL, 'edge 1 undrained');
  console.log(`# undrain → 3 nexthops again: ${(performance.now() - t1).toFixed(0)} ms`);
  void t0;
});

test('a silent failure of an edge (every packet dropped, link up): BFD removes it and traffic moves (measured)', async () => {
  const ns = edgeNs.get(3)!;
  const table = { family: 'inet' as const, name: 'ott_blackout' };
  const p = probe(4, 1000, 64);
  const start = await p.started;
  await sleep(1000);
  const cut = Date.now();
  await replaceNftTable(ns, {
    ...table,
    chains: [
      { name: 'in', base: { type: 'filter', hook: 'input', prio: -500, policy: 'drop' }, rules: [] },
      { name: 'out', base: { type: 'filter', hook: 'output', prio: -500, policy: 'drop' }, rules: [] },
      { name: 'fwd', base: { type: 'filter', hook: 'forward', prio: -500, policy: 'drop' }, rules: [] },
    ],
  });
  let removedAt = 0;
  try {
    const ms = await waitNexthops({ [ACME]: [1, 2], [BETA]: [1, 2], [ENDPOINT]: [1, 2] }, 'edge 3 blacked out');
    removedAt = Date.now();
    const s = await routerSession(3);
    console.log(`# silent failure of edge 3: router dropped its nexthop ${ms.toFixed(0)} ms after the cut (BIRD: ${s.lastError ?? s.state})`);
    assert.match(s.lastError ?? '', /BFD/i, 'BFD (not the 9 s hold timer) brought the session down');
    const r = await p.done;
    const lost = r.lost_at.map((t) => (t - start) * 1000);
    const window = lost.length ? Math.max(...lost) - Math.min(...lost) : 0;
    console.log(
      `# probe during the failure: lost ${lost.length} of ${r.sent} (flows on edge 3 between the cut and the route change); ` +
        `traffic moved ${lost.length ? (Math.max(...r.lost_at) * 1000 - cut).toFixed(0) : 0} ms after the cut (loss window ${window.toFixed(0)} ms)`,
    );
    // Nothing sent after the router changed its route was lost (50 ms for packets already on the wire).
    const late = r.lost_at.filter((t) => t * 1000 > removedAt + 50);
    assert.deepEqual(late, [], 'packets sent after the route moved were answered');
  } finally {
    await deleteNftTableIfPresent(ns, table.family, table.name);
  }
  const back = await waitNexthops(ALL, 'edge 3 back');
  console.log(`# edge 3 reachable again: back in the route after ${back.toFixed(0)} ms (error wait 2 s)`);
});

test("one account broken on one edge is withdrawn from that edge alone; repaired, it comes back", async () => {
  const node2 = nodes.get(2)!;
  const ns = customerNetns(node2, betaId);
  // Beta's name on edge 2 is made to point at a namespace that is not a network namespace (another namespace file
  // bind-mounted over it): the agent sees a namespace there, so it does not recreate it, and every reconcile of Beta
  // there fails (entering it as a netns: EINVAL). No race with the agent's resync (a delete-then-create would be;
  // a bare file would be, too: the agent treats it as absent and creates the namespace again).
  brokenFile = `/run/netns/${ns}`;
  await run(['umount', brokenFile]);
  assert.ok(isPlainFile(brokenFile), 'the name is a plain file now');
  await run(['mount', '--bind', '/proc/self/ns/uts', brokenFile]);
  try {
    const ms = await waitNexthops({ [ACME]: EDGES, [BETA]: [1, 3], [ENDPOINT]: EDGES }, 'beta broken on edge 2');
    const st = await eventually('edge 2 reports beta not ready', async () => {
      const s = await status(2);
      return s.accounts[betaId]?.state === 'error' && s.bgp?.not_ready?.[betaId] ? s : undefined;
    });
    assert.deepEqual(st.bgp!.not_ready, { [betaId]: [BETA] });
    assert.deepEqual(st.bgp!.announced, [ACME, ENDPOINT]);
    console.log(`# beta broken on edge 2: withdrawn there after ${ms.toFixed(0)} ms (resync 1 s); error: ${st.accounts[betaId]!.error?.slice(0, 100)}`);
  } finally {
    await run(['umount', brokenFile]);
    fs.rmSync(brokenFile, { force: true });
    brokenFile = undefined;
  }
  await waitNexthops(ALL, 'beta repaired on edge 2');
  assert.equal((await status(2)).accounts[betaId]?.state, 'ok');
  void acmeId;
});

test('an agent that stops without withdrawing leaves BIRD announcing; the next agent adopts it without a flap', async () => {
  const before = await routerSession(1);
  assert.equal(before.state, 'Established');
  await agents.get(1)!.stop({ bgp: 'leave' });
  agents.delete(1);
  await sleep(1500);
  assert.deepEqual(await nexthopEdges(ENDPOINT), EDGES, 'still announced while no agent runs');
  const a = newAgent(1);
  agents.set(1, a);
  await a.start();
  const st = await eventually('the new agent adopted BIRD', async () => {
    const s = await status(1);
    return s.bgp?.state === 'ok' && s.bgp.bird?.adopted ? s : undefined;
  });
  assert.equal(st.bgp!.bird!.adopted, true);
  assert.deepEqual(await nexthopEdges(ENDPOINT), EDGES);
  assert.deepEqual(await routerSession(1), before, 'the session never flapped (same state, same since)');
});

test("BIRD's crash and hang are detected and BIRD restarted; the routes come back", async () => {
  const pid = (await eventually('a BIRD pid', async () => (await status(1)).bgp?.bird?.pid)) as number;
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  await waitNexthops({ [ENDPOINT]: [2, 3] }, 'edge 1 BIRD killed');
  await waitNexthops(ALL, 'edge 1 BIRD restarted');
  const st = await eventually('restart counted', async () => {
    const s = await status(1);
    return (s.bgp?.bird?.restarts ?? 0) >= 1 && s.bgp?.bird?.pid !== pid ? s : undefined;
  });
  console.log(`# BIRD killed: restarted (pid ${pid} → ${st.bgp!.bird!.pid}), 3 nexthops again after ${(performance.now() - t0).toFixed(0)} ms`);

  const hung = st.bgp!.bird!.pid!;
  const t1 = performance.now();
  process.kill(hung, 'SIGSTOP');
  // A hung BIRD stops its BFD too: the router notices first, then the supervisor kills and restarts it.
  await waitNexthops({ [ENDPOINT]: [2, 3] }, 'edge 1 BIRD hung');
  const back = await eventually('the hung BIRD replaced', async () => {
    const s = await status(1);
    return s.bgp?.bird?.pid !== undefined && s.bgp.bird.pid !== hung ? s : undefined;
  });
  await waitNexthops(ALL, 'edge 1 after the hang');
  console.log(`# BIRD hung (SIGSTOP): killed and restarted as pid ${back.bgp!.bird!.pid}; 3 nexthops again after ${(performance.now() - t1).toFixed(0)} ms`);
  assert.equal(fs.existsSync(`/proc/${hung}`), false, 'the hung BIRD is gone');
});

test('agent SIGTERM: every announcement is withdrawn while the session is still up, then it exits (kernel left as it is)', async () => {
  // Edge 3's agent becomes a real `opentransit agent` process (it adopts the BIRD the in-process agent leaves).
  await agents.get(3)!.stop({ bgp: 'leave' });
  agents.delete(3);
  const n = nodes.get(3)!;
  const argv = [
    ...nodeEntryArgv('main'), 'agent',
    '--node-id', n.nodeId, '--host-netns', n.hostNetns, '--uplink', n.uplink, '--store', `lmdb:${api.dir}`,
    '--data-dir', path.join(tmp, 'e3'), '--netns-prefix', n.netnsPrefix, '--bpf-pin-base', pinBase, '--resync-ms', '1000',
  ];
  let out = '';
  agentProcess = spawn(argv[0]!, argv.slice(1), { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
  agentProcess.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  agentProcess.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => agentProcess!.once('exit', (code) => r(code)));
  const since = (await routerSession(3)).since;
  await eventually('the agent process adopted BIRD', async () => {
    const s = await storedStatus(3);
    return s?.bgp?.state === 'ok' && s.bgp.bird?.adopted && new Date(s.updated_at).getTime() > Date.now() - 5_000 ? true : undefined;
  }, 60_000).catch((e: Error) => {
    throw new Error(`${e.message}\n--- agent process output\n${out}`);
  });
  assert.equal((await routerSession(3)).since, since, 'adopted without a flap');
  const birdPid = (await storedStatus(3))!.bgp!.bird!.pid!;

  // The router's BIRD logs what edge 3's session does (routes and states, in the order they happen): the order of
  // "removed" and the session closing is read from there, not raced with polls.
  const routerLog = path.join(tmp, 'router', 'router.log');
  const logFrom = fs.statSync(routerLog).size;
  await router.command('debug edge3 all');
  const sigtermAt = Date.now();
  agentProcess.kill('SIGTERM');
  const code = await exited;
  const exitMs = Date.now() - sigtermAt;
  agentProcess = undefined;
  await router.command('debug edge3 off');
  const lines = fs.readFileSync(routerLog, 'utf8').slice(logFrom).split('\n');
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  const stamp = (i: number) => Date.parse(lines[i]!.slice(0, 23).replace(' ', 'T'));
  const removed = [ACME, BETA, ENDPOINT].map((dst) => at(new RegExp(`edge3\\.ipv4 > removed .*${dst.replace(/[./]/g, (c) => `\\${c}`)}`)));
  const closed = at(/edge3: (Received: Administrative shutdown|BGP session closed)/);
  const birdLog = await readFile(path.join(tmp, 'e3', 'bird', 'edge.log'), 'utf8').catch(() => '');
  const context = `\n--- router log (edge3)\n${lines.filter((l) => l.includes('edge3')).join('\n')}\n--- agent\n${out}\n--- edge BIRD log\n${birdLog.slice(-1500)}`;
  assert.ok(removed.every((i) => i >= 0), `every prefix withdrawn by UPDATE${context}`);
  assert.ok(closed > Math.max(...removed), `withdrawn before the session closed${context}`);
  const withdrawnMs = Math.max(...removed.map(stamp)) - sigtermAt;
  const closedMs = stamp(closed) - sigtermAt;
  console.log(`# SIGTERM: every prefix withdrawn at the router ${withdrawnMs} ms after the signal, session closed at ${closedMs} ms; agent exited after ${exitMs} ms`);
  assert.equal(code, 0, out);
  await waitNexthops({ [ACME]: [1, 2], [BETA]: [1, 2], [ENDPOINT]: [1, 2] }, 'edge 3 gone');
  assert.notEqual((await routerSession(3)).state, 'Established', 'then BIRD closed the session');
  assert.equal(fs.existsSync(`/proc/${birdPid}`), false, "the agent's BIRD stopped with it");
  // The kernel is left as it is: the endpoint address and the customers' namespaces stay.
  assert.ok((await listAddresses(n.hostNetns, { dev: 'lo', family: 4 })).some((a) => a.cidr === ENDPOINT));
  assert.ok((await listNetns(n.netnsPrefix)).length >= 2);
  assert.match(out, /SIGTERM, withdrawing BGP announcements/);
});
