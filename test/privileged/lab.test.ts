/**
 * The lab end to end: build a small internet (1 site, 2 edges, 1 client, 1 customer with a host), check its
 * namespaces, BGP, reachability, the CLI (`status -o json`, `exec`), then that `down` leaves nothing — also
 * after a simulated crash. Each edge agent runs its own BIRD (node configs written by the lab name its site
 * router): the site router's passive sessions come up and the anycast endpoint is ECMP at the site and BGP at the
 * core, announced by the agents themselves.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { listLinks } from '../../src/kernel/links.js';
import { listNetns } from '../../src/kernel/netns.js';
import { listRoutes } from '../../src/kernel/routes.js';
import { labAgentPinBase } from '../../src/lab/agents.js';
import { labDown, labExec, labStatus, labUp, type LabStatus } from '../../src/lab/lab.js';
import { labPaths, nodeEntryArgv, packageRoot } from '../../src/lab/paths.js';
import { findLabPids, isRunning, type LabProcess } from '../../src/lab/processes.js';
import { icmpEcho } from '../support/netns.js';

const NAME = `lt${process.pid % 1_000_000}`;
const PREFIX = `otl-${NAME}-`;

const topology = {
  name: NAME,
  anycast_endpoints: ['192.0.2.10'],
  sites: [{ name: 'chi', edges: 2 }],
  clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
  customers: [{ name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: '203.0.113.100', listen: ['tcp/21', 'udp/53'] }] }],
};
const HOSTS = ['internet', 'chi-router', 'chi-edge1', 'chi-edge2', 'client', 'acme-router', 'acme-ftp'];

after(async () => {
  await labDown(NAME);
  await assertNothingLeft();
});

async function assertNothingLeft(recorded: readonly LabProcess[] = []): Promise<void> {
  assert.deepEqual(await listNetns(PREFIX), [], 'namespaces left');
  assert.deepEqual(await findLabPids(NAME, []), [], 'processes marked with the lab left');
  for (const p of recorded) assert.equal(await isRunning(p), false, `${p.role} ${p.host ?? ''} (pid ${p.pid}) still runs`);
  assert.equal(existsSync(labPaths(NAME).runDir), false, 'run directory left');
  assert.equal(existsSync(labAgentPinBase(NAME)), false, "the agents' BPF pins left");
}

/** Runs `opentransit ARGS…` (compiled or from source, like the lab's own processes). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = [...nodeEntryArgv('main'), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A one-shot TCP client run inside a lab host: sends `send`, prints everything it got back within 1 s. */
const TCP_CLIENT = `
const s = require('net').connect(Number(process.argv[2]), process.argv[1]);
let got = '';
s.on('data', (d) => (got += d));
s.on('error', (e) => { console.log('ERROR ' + e.message); process.exit(0); });
s.on('connect', () => s.write(process.argv[3]));
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 1000);
`;

async function tcpFrom(host: string, addr: string, port: number, send: string): Promise<string> {
  const r = await labExec(NAME, host, ['node', '-e', TCP_CLIENT, addr, String(port), send], { timeoutMs: 10_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  const line = r.stdout.trim();
  assert.ok(!line.startsWith('ERROR'), `${host} → ${addr}:${port}: ${line}`);
  return JSON.parse(line) as string;
}

async function waitUntil(what: string, fn: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('lab up builds the internet; status, exec, BGP, reachability; down leaves nothing', async () => {
  const initLinksBefore = (await listLinks(null)).map((l) => l.name).sort();
  const { alreadyUp, state } = await labUp(topology);
  assert.equal(alreadyUp, false);

  // Namespaces: one per host, all with the lab's prefix; nothing new in the machine's own namespace.
  assert.deepEqual(await listNetns(PREFIX), HOSTS.map((h) => PREFIX + h).sort());
  assert.deepEqual((await listLinks(null)).map((l) => l.name).sort(), initLinksBefore, 'a lab link reached the init namespace');

  // A second `up` of the same lab says so and changes nothing.
  const again = await labUp(topology);
  assert.equal(again.alreadyUp, true);
  assert.equal(again.state.createdAt, state.createdAt);

  // Status through the CLI, as JSON.
  const st = await cli(['lab', 'status', '-n', NAME, '-o', 'json']);
  assert.equal(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout) as LabStatus;
  assert.equal(status.name, NAME);
  assert.match(status.api_url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(status.operator_token, /^ot_/);
  assert.deepEqual(Object.keys(status.hosts).sort(), [...HOSTS].sort());
  assert.equal(status.hosts['client']!.netns, `${PREFIX}client`);
  assert.deepEqual(status.hosts['client']!.addresses, ['100.65.0.129/31', '198.51.100.100/32']);
  assert.deepEqual(Object.keys(status.edges), ['chi-edge1', 'chi-edge2']);
  assert.deepEqual(status.edges['chi-edge1']!.node_id, 'chi-edge1');
  assert.equal(status.edges['chi-edge1']!.up, true, 'an edge agent runs for every edge');
  assert.equal(status.healthy, true);

  // The API answers with the lab's operator token; every edge agent has reported its status.
  const res = await fetch(`${status.api_url}/v1/accounts`, { headers: { authorization: `Bearer ${status.operator_token}` } });
  assert.equal(res.status, 200, await res.text());
  const nodes = (await (await fetch(`${status.api_url}/v1/nodes`, { headers: { authorization: `Bearer ${status.operator_token}` } })).json()) as { items: { id: string; host: { state: string } }[] };
  assert.deepEqual(nodes.items.map((n) => [n.id, n.host.state]).sort(), [['chi-edge1', 'ok'], ['chi-edge2', 'ok']]);

  // BGP core ↔ site router is Established on both sides.
  const core = status.bgp.filter((b) => !b.peerHost.includes('-edge'));
  assert.deepEqual(core.map((b) => [b.host, b.peerHost, b.state]), [
    ['internet', 'chi-router', 'Established'],
    ['chi-router', 'internet', 'Established'],
  ]);

  // The client reaches the customer router's public address over the lab internet (routes learned by BGP).
  const echo = await icmpEcho(`${PREFIX}client`, '198.51.100.2', { count: 3, timeoutS: 2 });
  assert.equal(echo.received, 3, JSON.stringify(echo));
  const routes = await listRoutes(`${PREFIX}chi-router`);
  assert.ok(routes.some((r) => r.dst === '198.51.100.2/32' && r.protocol === 12), 'the site router learned the customer router by BGP (proto bird)');
  // TCP too, to a server started on the customer router (it runs inside a lab namespace: `down` sweeps it).
  const server = spawn('ip', ['netns', 'exec', `${PREFIX}acme-router`, 'node', '-e',
    "require('net').createServer((s) => s.end('router-here\\n')).listen(7777, '198.51.100.2', () => console.log('ok'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => server.stdout.once('data', () => resolve()));
  assert.equal(await tcpFrom('client', '198.51.100.2', 7777, ''), 'router-here\n');

  // The customer host's server: inside the customer site (anycast delivery to it is the edges' job).
  assert.equal(await tcpFrom('acme-router', '203.0.113.100', 21, 'hello\n'), 'acme-ftp 21\nhello\n');

  // exec through the CLI: output and exit status pass through.
  const ex = await cli(['lab', 'exec', '-n', NAME, 'client', '--', 'ip', '-br', 'address', 'show', 'dev', 'uplink']);
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /uplink\S*\s+UP\s+100\.65\.0\.129\/31/);
  assert.equal((await cli(['lab', 'exec', '-n', NAME, 'client', '--', 'sh', '-c', 'exit 3'])).code, 3);
  const bad = await cli(['lab', 'exec', '-n', NAME, 'nosuch', '--', 'true']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no host "nosuch".*hosts: internet, chi-router/);

  // BGP from the edges: every agent's BIRD peers with its site router (node configs the lab wrote) and announces
  // the anycast endpoint as soon as its data plane is ready (no account needed).
  const nodeConfig = (await (await fetch(`${status.api_url}/v1/nodes/chi-edge1/config`, { headers: { authorization: `Bearer ${status.operator_token}` } })).json()) as { bgp: { router_id: string; peers: { address: string; asn: number; bfd: boolean }[] } };
  assert.equal(nodeConfig.bgp.router_id, '100.65.0.1');
  assert.deepEqual(nodeConfig.bgp.peers.map((p) => [p.address, p.asn, p.bfd]), [['100.65.0.0', 65001, true]]);
  await waitUntil('edge sessions Established', async () => Object.values((await labStatus(NAME)).edges).every((e) => e.bgp === 'Established'));
  await waitUntil('anycast ECMP at the site router and a BGP route at the core', async () => {
    const site = (await listRoutes(`${PREFIX}chi-router`)).find((r) => r.dst === '192.0.2.10/32');
    const atCore = (await listRoutes(`${PREFIX}internet`)).find((r) => r.dst === '192.0.2.10/32');
    return site?.nexthops.length === 2 && atCore?.protocol === 12;
  });
  // Each agent reports what it announces and its session (`opentransit status`).
  await waitUntil('the agents report their BGP', async () => {
    const reported = (await (await fetch(`${status.api_url}/v1/nodes`, { headers: { authorization: `Bearer ${status.operator_token}` } })).json()) as { items: { id: string; bgp?: { announced: string[]; sessions: { bgp_state?: string }[] } }[] };
    return reported.items.length === 2 && reported.items.every((n) => JSON.stringify(n.bgp?.announced) === '["192.0.2.10/32"]' && n.bgp?.sessions[0]?.bgp_state === 'Established');
  });

  // Down: every namespace, process (recorded, swept in namespaces) and file goes.
  const recorded = state.processes;
  assert.ok(recorded.some((p) => p.role === 'api') && recorded.some((p) => p.role === 'bird') && recorded.some((p) => p.role === 'server'));
  const down = await labDown(NAME);
  assert.equal(down.namespaces.length, HOSTS.length);
  await assertNothingLeft(recorded);
  // Idempotent.
  const twice = await labDown(NAME);
  assert.deepEqual(twice, { name: NAME, namespaces: [], processes: 0, runDir: false });
});

test('lab down cleans up after a crash: processes killed, namespaces left, state lost', async () => {
  // 1: every lab process killed, namespaces and state file left (the machine lost power mid-run, say).
  let { state } = await labUp(topology);
  for (const p of state.processes) process.kill(p.pid, 'SIGKILL');
  await waitUntil('the killed processes to be gone', async () => (await Promise.all(state.processes.map(isRunning))).every((r) => !r));
  assert.equal((await listNetns(PREFIX)).length, HOSTS.length);
  // `up` on the remains rebuilds (removing the remains first) instead of claiming the lab is up.
  const rebuilt = await labUp(topology);
  assert.equal(rebuilt.alreadyUp, false);
  state = rebuilt.state;
  assert.deepEqual((await labStatus(NAME)).healthy, true);

  // 2: the state file is lost too while everything runs: down finds the lab by its names alone.
  await rm(labPaths(NAME).stateFile);
  const result = await labDown(NAME);
  assert.equal(result.namespaces.length, HOSTS.length);
  assert.ok(result.processes >= state.processes.length, `stopped ${result.processes} of ${state.processes.length}`);
  await assertNothingLeft(state.processes);
});
