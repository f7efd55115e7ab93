/**
 * Drift repair by kernel notifications alone: the agent's periodic passes are an hour apart here, so everything
 * that comes back within seconds was brought back because the kernel said it changed (agent/drift-watch.ts,
 * kernel/netlink/watch.ts). Every change by hand is made by another process (ip, nft, tc, sysctl): changes made by
 * this process's own sockets count as the agent's own writes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { CUSTOMER_VETH, customerNetns, hostVethName, NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth, getLink } from '../../src/kernel/links.js';
import { inNetns, netnsExists } from '../../src/kernel/netns.js';
import { readNftTable } from '../../src/kernel/nft.js';
import { listNeighbours } from '../../src/kernel/neighbours.js';
import { listRoutes } from '../../src/kernel/routes.js';
import { listRules } from '../../src/kernel/rules.js';
import { listAddresses } from '../../src/kernel/addresses.js';
import { run } from '../../src/kernel/exec.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { acmeConfig, teardownAgentTest, testPinBase } from '../support/agent-fixture.js';
import { waitConverged, waitFor } from '../support/agent-wait.js';

const harness = netnsHarness();
let api: ApiFixture;
let agent: Agent;
let node: NodeConfig;
let dataDir: string;
const logs: string[] = [];
const pinBase = testPinBase('drift-watch');
const HOUR = 3_600_000;

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-drift-watch-'));
  const host = await harness.create('host');
  const client = await harness.create('client');
  await ensureVeth({ ns: host, name: 'up0', mac: '02:00:00:00:00:01', peerNs: client, peerName: 'eth0', peerMac: '02:00:00:00:00:02' });
  await runIpOps(host, [{ args: ['link', 'set', 'lo', 'up'] }, { args: ['address', 'replace', '100.64.0.0/31', 'dev', 'up0'] }]);
  await runIpOps(client, [{ args: ['address', 'replace', '100.64.0.1/31', 'dev', 'eth0'] }]);
  node = { ...NODE_DEFAULTS, nodeId: 'edge-watch', hostNetns: host, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  // No periodic pass within the test's lifetime: only notifications can trigger a repair.
  agent = new Agent({ node, store: api.store, dataDir, resyncMs: HOUR, accountResyncMs: HOUR, log: (m) => logs.push(m), bpf: { pinBase } });
  await agent.start();
  // The watch opens once the first complete state is applied (here: an empty one).
  await agent.kernelWatchReady();
});

after(() => teardownAgentTest({ agent, api, dataDir, harness, pinBase }));

const ACME = acmeConfig({ firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 21' }] } });

let acmeId = '';
const sh = (argv: string[]) => run(argv);
const context = () => logs.slice(-8).join('\n');
const eventually = (what: string, check: () => Promise<boolean> | boolean) => waitFor(what, check, { timeoutMs: 10_000, context });
const driftLines = () => logs.filter((l) => l.startsWith('kernel changed under us'));

async function putConfig(config: unknown): Promise<void> {
  const res = await api.call('PUT', `/v1/accounts/${acmeId}/config`, { body: config });
  assert.equal(res.statusCode, 200, res.body);
  await waitConverged(agent, (res.json() as { revision: number }).revision, { context });
}

/** Makes `drift` by hand and waits until `restored` holds again; the agent must say the kernel told it. */
async function repaired(what: string, drift: () => Promise<unknown>, restored: () => Promise<boolean>, expect = 'acme'): Promise<void> {
  assert.ok(await restored(), `${what}: in place before the drift`);
  const seen = driftLines().length;
  await drift();
  await eventually(`${what} restored`, async () => driftLines().length > seen && (await restored()));
  assert.ok(driftLines().slice(seen).some((l) => l.includes(expect)), `${what}: ${driftLines().slice(seen).join(' | ')}`);
}

test('the agent listens to the kernel, and its own writes are not drift', async () => {
  const acme = await api.createAccount('acme');
  acmeId = acme.id;
  await putConfig(ACME);
  await putConfig({ ...ACME, routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 50 }] });
  // Notifications of the writes above (and the kernel's own follow-ups: carrier, IPv6 autoconf) have arrived by now.
  await new Promise((r) => setTimeout(r, 500));
  await agent.idle();
  assert.deepEqual(driftLines(), [], 'no pass was triggered by our own changes');
  assert.ok(!logs.some((l) => l.startsWith('kernel notifications unavailable')), logs.join('\n'));
});

test('drift inside the customer namespace comes back by notification: route, firewall, address, neighbour, tc, link state', async () => {
  const ns = customerNetns(node, acmeId);
  const hasRoute = async () => (await listRoutes(ns, { table: 254 })).some((r) => r.dst === '203.0.113.0/24' && r.metric === 50);
  await repaired('customer route', () => sh(['ip', '-n', ns, 'route', 'del', '203.0.113.0/24', 'metric', '50']), hasRoute);
  const hasTable = async () => (await readNftTable(ns, 'inet', 'opentransit')) !== null;
  await repaired('firewall table', () => sh(inNetns(ns, ['nft', 'delete', 'table', 'inet', 'opentransit'])), hasTable);
  const linkAddress = async () => (await listAddresses(ns)).find((a) => a.dev === CUSTOMER_VETH && a.family === 4);
  const cidr = (await linkAddress())?.cidr;
  assert.ok(cidr, 'edge0 has an IPv4 address');
  await repaired('edge0 address', () => sh(['ip', '-n', ns, 'address', 'del', cidr, 'dev', CUSTOMER_VETH]), async () => (await listAddresses(ns)).some((a) => a.dev === CUSTOMER_VETH && a.cidr === cidr));
  const hasNeighbour = async () => (await listNeighbours(ns, {})).some((n) => n.address === '10.200.0.1' && n.permanent);
  await repaired('tunnel neighbour', () => sh(['ip', '-n', ns, 'neigh', 'del', '10.200.0.1', 'dev', CUSTOMER_VETH]), hasNeighbour);
  const hasTc = async () => (await sh(['tc', '-n', ns, 'filter', 'show', 'dev', CUSTOMER_VETH, 'egress'])).stdout.includes('bpf');
  await repaired('tc on edge0', () => sh(['tc', '-n', ns, 'qdisc', 'del', 'dev', CUSTOMER_VETH, 'clsact']), hasTc);
  const edge0Up = async () => (await getLink(ns, CUSTOMER_VETH))?.up === true;
  await repaired('edge0 set down', () => sh(['ip', '-n', ns, 'link', 'set', CUSTOMER_VETH, 'down']), edge0Up);
});

test('drift in the host namespace comes back by notification: customer-table route, rule, host table, veth', async () => {
  const veth = hostVethName(acmeId);
  const hostRoute = async () => (await listRoutes(node.hostNetns, { table: node.table })).some((r) => r.dst === '203.0.113.0/24');
  await repaired('customer-table route', () => sh(['ip', '-n', node.hostNetns, 'route', 'del', '203.0.113.0/24', 'table', String(node.table)]), hostRoute);
  const hasRule = async () => (await listRules(node.hostNetns, { family: 4 })).some((r) => r.fwmark === node.fwmark && r.table === node.table);
  await repaired('fwmark rule', () => sh(['ip', '-n', node.hostNetns, 'rule', 'del', 'fwmark', String(node.fwmark), 'table', String(node.table)]), hasRule, 'host');
  const hostTable = async () => (await readNftTable(node.hostNetns, 'inet', 'opentransit')) !== null;
  await repaired('host nft table', () => sh(inNetns(node.hostNetns, ['nft', 'delete', 'table', 'inet', 'opentransit'])), hostTable, 'host');
  const vethAndRoute = async () => (await getLink(node.hostNetns, veth)) !== undefined && (await hostRoute());
  await repaired('host veth', () => sh(['ip', '-n', node.hostNetns, 'link', 'del', veth]), vethAndRoute);
});

test('a customer namespace deleted by name is made again, with everything in it', async () => {
  const ns = customerNetns(node, acmeId);
  const whole = async () =>
    (await netnsExists(ns)) &&
    (await listRoutes(ns, { table: 254 })).some((r) => r.dst === '203.0.113.0/24') &&
    (await readNftTable(ns, 'inet', 'opentransit')) !== null;
  await repaired('customer namespace', () => sh(['ip', 'netns', 'del', ns]), whole);
});

test('changes to nothing of ours are ignored: a route in the host main table, a neighbour the host resolves', async () => {
  const seen = driftLines().length;
  await sh(['ip', '-n', node.hostNetns, 'route', 'add', '198.18.0.0/24', 'dev', 'up0']);
  await sh(['ip', '-n', node.hostNetns, 'route', 'del', '198.18.0.0/24', 'dev', 'up0']);
  // A datagram to the client: the host resolves its address (ARP), a neighbour entry of the kernel's own.
  await sh(inNetns(node.hostNetns, ['python3', '-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("100.64.0.1", 9))']));
  await eventually('the client resolved', async () => (await listNeighbours(node.hostNetns, {})).some((n) => n.address === '100.64.0.1' && n.lladdr !== undefined));
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(driftLines().slice(seen), []);
});
