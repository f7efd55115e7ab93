/**
 * The edge agent against the real kernel: an API on a real LMDB store, an agent on a host netns, a client netns
 * on the host's uplink. Configuration goes in through the API; what the kernel holds is read back with ip/nft;
 * packets are sent from the client and followed with counters (rule counters in the customer's firewall, and a
 * test-owned netdev counter on the host side of the customer veth that sees the GRE the data plane's tc program
 * makes of what the customer netns routes into a tunnel).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { CUSTOMER_VETH, customerNetns, hostVethName, tunnelMac, tunnelNumbers, NODE_DEFAULTS, type NodeConfig } from '../../src/agent/desired/node.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { ensureVeth, getLink, readLinkFeatures } from '../../src/kernel/links.js';
import { inNetns, netnsExists } from '../../src/kernel/netns.js';
import { applyNftDocument, readNftTable, readRuleCounters } from '../../src/kernel/nft.js';
import { listNeighbours } from '../../src/kernel/neighbours.js';
import { listRoutes } from '../../src/kernel/routes.js';
import { listRules } from '../../src/kernel/rules.js';
import { run } from '../../src/kernel/exec.js';
import { openApi, type ApiFixture } from '../support/api-fixture.js';
import { netnsHarness } from '../support/netns.js';
import { acmeConfig, teardownAgentTest, testPinBase } from '../support/agent-fixture.js';
import { waitConverged, waitFor } from '../support/agent-wait.js';

const harness = netnsHarness();
let api: ApiFixture;
let agent: Agent;
let node: NodeConfig;
let client: string;
let dataDir: string;
const logs: string[] = [];

// The data plane's pins live under a bpffs directory of this run only (removed at the end).
const pinBase = testPinBase('agent');

function startAgent(): Agent {
  // Kernel notifications on (the default); every account is also checked every 400 ms, so the slow tier (sysctls
  // the kernel does not notify) comes back within its 2.4 s. agent-drift-watch.test.ts repairs by notifications alone.
  const a = new Agent({ node, store: api.store, dataDir, resyncMs: 400, accountResyncMs: 400, log: (m) => logs.push(m), bpf: { pinBase } });
  return a;
}

before(async () => {
  api = await openApi();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ot-agent-test-'));
  const host = await harness.create('host');
  client = await harness.create('client');
  await ensureVeth({ ns: host, name: 'up0', mac: '02:00:00:00:00:01', peerNs: client, peerName: 'eth0', peerMac: '02:00:00:00:00:02' });
  await runIpOps(host, [{ args: ['link', 'set', 'lo', 'up'] }, { args: ['address', 'replace', '100.64.0.0/31', 'dev', 'up0'] }]);
  await runIpOps(client, [
    { args: ['link', 'set', 'lo', 'up'] },
    { args: ['address', 'replace', '100.64.0.1/31', 'dev', 'eth0'] },
    { args: ['route', 'replace', 'default', 'via', '100.64.0.0'] },
  ]);
  node = { ...NODE_DEFAULTS, nodeId: 'edge-test', hostNetns: host, uplink: 'up0', netnsPrefix: `${harness.prefix}c-` };
  agent = startAgent();
  await agent.start();
});

after(() => teardownAgentTest({ agent, api, dataDir, harness, pinBase }));

const ACME = acmeConfig();

async function putConfig(accountId: string, config: unknown): Promise<number> {
  const res = await api.call('PUT', `/v1/accounts/${accountId}/config`, { body: config });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { revision: number }).revision;
}

const converged = (revision: number, timeoutMs?: number) => waitConverged(agent, revision, { timeoutMs });
const eventually = (what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number) => waitFor(what, check, { timeoutMs, context: () => logs.slice(-5).join('\n') });

/** One TCP connection attempt from the client (a few SYNs; no answer is expected: there is no customer here). */
async function syn(dst: string, port: number, from = client): Promise<void> {
  const py = `import socket\ns=socket.socket()\ns.settimeout(0.3)\ntry:\n  s.connect((${JSON.stringify(dst)}, ${port}))\nexcept Exception:\n  pass`;
  await run(inNetns(from, ['python3', '-c', py]));
}

async function ruleCounters(netns: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of await readRuleCounters(netns, 'inet', 'opentransit')) {
    if (c.comment) out.set(c.comment, (out.get(c.comment) ?? 0) + c.packets);
  }
  return out;
}

/**
 * A test-owned netdev counter of GRE packets to `remote` (a tunnel's customer endpoint) arriving on the host side of
 * a customer veth: what tc_gre made of the frames the customer netns routed towards that tunnel's MAC.
 */
async function watchTunnelFrames(accountId: string, remote: string): Promise<() => Promise<number>> {
  const dev = hostVethName(accountId);
  const table = { family: 'netdev', name: 'ottcap' };
  await applyNftDocument(node.hostNetns, {
    nftables: [
      { add: { table } },
      { delete: { table } },
      { add: { table } },
      { add: { chain: { family: 'netdev', table: 'ottcap', name: 'in', type: 'filter', hook: 'ingress', dev, prio: 0, policy: 'accept' } } },
      {
        add: {
          rule: {
            family: 'netdev',
            table: 'ottcap',
            chain: 'in',
            expr: [
              { match: { op: '==', left: { payload: { protocol: 'ip', field: 'protocol' } }, right: 47 } },
              { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: remote } },
              { counter: null },
            ],
          },
        },
      },
    ],
  });
  return async () => {
    const t = await readNftTable(node.hostNetns, 'netdev', 'ottcap');
    return (t?.rules ?? []).reduce((n, r) => n + (r.counter?.packets ?? 0), 0);
  };
}

let acmeId = '';

test('applying Acme creates its namespace, veth, marking, policy routing, routes, neighbours and firewall', async () => {
  const acme = await api.createAccount('acme');
  acmeId = acme.id;
  await converged(await putConfig(acme.id, ACME));
  const ns = customerNetns(node, acme.id);
  assert.ok(await netnsExists(ns));
  const veth = await getLink(node.hostNetns, hostVethName(acme.id));
  assert.equal(veth?.kind, 'veth');
  assert.equal(veth?.alias, `opentransit:${acme.id}`);

  const hostTable = await readNftTable(node.hostNetns, 'inet', 'opentransit');
  assert.deepEqual(hostTable?.sets.find((s) => s.name === 'customer4')?.elements, [{ prefix: { addr: '203.0.113.0', len: 24 } }]);
  const rules = await listRules(node.hostNetns, { family: 4 });
  assert.ok(rules.some((r) => r.fwmark === NODE_DEFAULTS.fwmark && r.table === NODE_DEFAULTS.table), JSON.stringify(rules));
  const table = await listRoutes(node.hostNetns, { table: NODE_DEFAULTS.table });
  assert.ok(table.some((r) => r.dst === '203.0.113.0/24' && r.nexthops[0]?.dev === hostVethName(acme.id)));
  assert.ok(table.some((r) => r.dst === '0.0.0.0/0' && r.type === 'unreachable'));
  const main = await listRoutes(node.hostNetns, { table: 254 });
  assert.ok(!main.some((r) => r.dst === '203.0.113.0/24'), 'the main table never holds customer prefixes');

  const routes = await listRoutes(ns, { table: 254 });
  const r = routes.find((x) => x.dst === '203.0.113.0/24');
  assert.equal(r?.metric, 100);
  assert.equal(r?.mtu, 1476);
  assert.deepEqual(r?.nexthops.map((h) => [h.via, h.onlink]), [['10.200.0.1', true]]);
  const doc = (await api.call('GET', `/v1/accounts/${acme.id}/gre_tunnels`)).json() as { items: { id: string }[] };
  const mac = tunnelMac(tunnelNumbers([doc.items[0]!.id]).get(doc.items[0]!.id)!);
  const neigh = await listNeighbours(ns, {});
  assert.ok(neigh.some((n) => n.address === '10.200.0.1' && n.lladdr === mac && n.permanent), JSON.stringify(neigh));
  assert.ok((await readNftTable(ns, 'inet', 'opentransit'))?.rules.some((x) => x.comment?.startsWith('rule:')));
});

test('a SYN to :21 passes the firewall and leaves into the tunnel (GRE); one to :22 is dropped and counted', async () => {
  const ns = customerNetns(node, acmeId);
  const towardsTunnel = await watchTunnelFrames(acmeId, ACME.gre_tunnels[0]!.customer_gre_endpoint);
  const before = await ruleCounters(ns);
  await syn('203.0.113.100', 21);
  const afterAllowed = await ruleCounters(ns);
  const ruleKey = [...afterAllowed.keys()].find((k) => k.startsWith('rule:'))!;
  assert.ok((afterAllowed.get(ruleKey) ?? 0) > (before.get(ruleKey) ?? 0), 'the allow rule counted the SYN');
  const framesAfterAllowed = await towardsTunnel();
  assert.ok(framesAfterAllowed > 0, 'the SYN left encapsulated towards the customer router');

  await syn('203.0.113.100', 22);
  const afterBlocked = await ruleCounters(ns);
  assert.ok((afterBlocked.get('default') ?? 0) > (afterAllowed.get('default') ?? 0), 'the default block counted the SYN');
  assert.equal(await towardsTunnel(), framesAfterAllowed, 'nothing more reached the tunnel');
});

test('a firewall change, a new priority and a second tunnel (ECMP) are followed by the kernel', async () => {
  const ns = customerNetns(node, acmeId);
  const changed = {
    ...ACME,
    gre_tunnels: [...ACME.gre_tunnels, { name: 'acme-ams', customer_gre_endpoint: '198.51.100.3', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.2/31' }],
    routes: [
      { prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 50, weight: 3 },
      { prefix: '203.0.113.0/24', nexthop: '10.200.0.3', priority: 50, weight: 1 },
    ],
    firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport in {21 22}' }] },
  };
  const table = (await readNftTable(ns, 'inet', 'opentransit'))!;
  await converged(await putConfig(acmeId, changed));
  // The firewall is updated in place (kernel/nft.ts nftUpdateTableDocument): same table, its prefix set untouched.
  const updated = (await readNftTable(ns, 'inet', 'opentransit'))!;
  assert.notEqual(updated.version, table.version);
  assert.equal(updated.handle, table.handle, 'the customer table was replaced whole rather than updated in place');
  assert.deepEqual(updated.sets, table.sets);
  const routes = (await listRoutes(ns, { table: 254 })).filter((r) => r.dst === '203.0.113.0/24');
  assert.equal(routes.length, 1, `the metric-100 route is gone: ${JSON.stringify(routes)}`);
  assert.equal(routes[0]!.metric, 50);
  assert.deepEqual(routes[0]!.nexthops.map((h) => [h.via, h.weight]), [['10.200.0.1', 3], ['10.200.0.3', 1]]);

  const before = await ruleCounters(ns);
  await syn('203.0.113.100', 22);
  const afterSyn = await ruleCounters(ns);
  assert.equal(afterSyn.get('default'), before.get('default'), ':22 is allowed now');
  await converged(await putConfig(acmeId, ACME));
});

test('drift: a route, the firewall table, GRO on edge0 and the veth changed by hand come back within a resync', async () => {
  const ns = customerNetns(node, acmeId);
  await runIpOps(ns, [{ args: ['route', 'delete', '203.0.113.0/24', 'metric', '100'] }]);
  await run(inNetns(ns, ['nft', 'delete', 'table', 'inet', 'opentransit']));
  await eventually('route and firewall restored', async () => {
    const r = (await listRoutes(ns, { table: 254 })).some((x) => x.dst === '203.0.113.0/24');
    return r && (await readNftTable(ns, 'inet', 'opentransit')) !== null;
  });
  // GRO off on the customer end of the veth: XDP-redirected frames would vanish (DESIGN §2). The agent turns it on.
  // (No read of the off state here: a resync may already have restored it; the log line below proves the repair.)
  await run(inNetns(ns, ['ethtool', '-K', CUSTOMER_VETH, 'gro', 'off']));
  // The agent logs a pass's changes when the pass ends, after its writes: GRO can read back on before the line is
  // there (seen in CI on a slow machine, 2 runs of 5), so wait for both rather than assert the log the moment GRO is on.
  const groLogged = () => logs.some((l) => l.includes(`${ns}: set gro on ${CUSTOMER_VETH}`));
  await eventually('gro on edge0 restored and the repair logged', async () => (await readLinkFeatures(ns, CUSTOMER_VETH)).gro && groLogged());
  await runIpOps(node.hostNetns, [{ args: ['link', 'delete', hostVethName(acmeId)] }]);
  await eventually('veth and host route restored', async () =>
    (await listRoutes(node.hostNetns, { table: NODE_DEFAULTS.table })).some((x) => x.dst === '203.0.113.0/24'),
  );
});

test('drift in the slow tier: sysctls changed by hand in the customer netns and on the host veth come back within slowCheckMs', async () => {
  const ns = customerNetns(node, acmeId);
  const veth = hostVethName(acmeId);
  // This agent: resync every 400 ms, sysctls and GRO every 2.4 s (six periods, the default ratio).
  await run(inNetns(ns, ['sysctl', '-q', '-w', 'net.ipv4.conf.all.send_redirects=1', 'net.ipv4.fib_multipath_hash_policy=0', `net.ipv4.conf.${CUSTOMER_VETH}.rp_filter=1`]));
  await run(inNetns(node.hostNetns, ['sysctl', '-q', '-w', `net.ipv4.conf.${veth}.accept_local=0`]));
  const read = async (where: string, keys: string[]) => (await run(inNetns(where, ['sysctl', '-n', ...keys]))).stdout.trim().split('\n');
  // Values and the log line both: a pass logs its changes when it ends, after its writes (the GRO drift test says so).
  await eventually(
    'sysctls restored and the repair logged',
    async () =>
      (await read(ns, ['net.ipv4.conf.all.send_redirects', 'net.ipv4.fib_multipath_hash_policy', `net.ipv4.conf.${CUSTOMER_VETH}.rp_filter`])).join() === '0,1,0' &&
      (await read(node.hostNetns, [`net.ipv4.conf.${veth}.accept_local`])).join() === '1' &&
      logs.some((l) => l.includes(`${ns}: sysctl`) && l.includes('send_redirects=0')),
    10_000,
  );
});

test('a restarted agent rewrites nothing that is already right', async () => {
  await agent.stop();
  logs.length = 0;
  agent = startAgent();
  await agent.start();
  await agent.firstSync;
  await new Promise((r) => setTimeout(r, 300));
  await agent.idle();
  assert.deepEqual(logs.filter((l) => !/cannot watch/.test(l) && !/booting from the local replica/.test(l)), []);
  assert.equal(agent.snapshotStatus().accounts[acmeId]?.state, 'ok');
});

test("two tenants: another tenant's traffic meets Acme's firewall and never enters its own namespace", async () => {
  const beta = await api.createAccount('beta');
  const rev = await putConfig(beta.id, {
    account: 'beta',
    prefixes: [{ cidr: '198.18.0.0/24', advertised: true }],
    gre_tunnels: [{ name: 'beta-1', customer_gre_endpoint: '198.51.100.20', edge_gre_endpoint: '192.0.2.10', interface_address: '10.201.0.0/31' }],
    routes: [{ prefix: '198.18.0.0/24', nexthop: '10.201.0.1', priority: 10 }],
    firewall: { default_action: 'allow', rules: [] },
  });
  await converged(rev);
  const acmeNs = customerNetns(node, acmeId);
  const betaNs = customerNetns(node, beta.id);
  const acmeBefore = await ruleCounters(acmeNs);
  const betaBefore = await ruleCounters(betaNs);
  // From inside beta's namespace towards Acme: out through the host, into Acme's firewall (:22 is blocked).
  await syn('203.0.113.100', 22, betaNs);
  const acmeAfter = await ruleCounters(acmeNs);
  assert.ok((acmeAfter.get('default') ?? 0) > (acmeBefore.get('default') ?? 0), "Acme's default block saw beta's SYN");
  // From the client towards Acme: beta's namespace sees nothing of it.
  await syn('203.0.113.100', 21);
  assert.deepEqual(await ruleCounters(betaNs), betaBefore);
});

test("a configuration the kernel cannot take marks only that account as failing", async () => {
  const gamma = await api.createAccount('gamma');
  // 2^9 alternatives: valid syntax, but more nftables rules than the agent deploys for one firewall rule.
  const huge = Array.from({ length: 9 }, (_, i) => `(tcp.dstport == ${i + 1} or udp.dstport == ${i + 1})`).join(' and ');
  const res = await api.call('PUT', `/v1/accounts/${gamma.id}/config`, {
    body: { account: 'gamma', prefixes: [{ cidr: '198.18.1.0/24', advertised: true }], firewall: { default_action: 'block', rules: [{ action: 'allow', expression: huge }] } },
  });
  assert.equal(res.statusCode, 200, res.body);
  await eventually('gamma reports an error', async () => agent.snapshotStatus().accounts[gamma.id]?.state === 'error');
  assert.match(agent.snapshotStatus().accounts[gamma.id]!.error!, /expands to \d+ nftables rules/);
  assert.equal(agent.snapshotStatus().accounts[acmeId]?.state, 'ok');
  await api.call('DELETE', `/v1/accounts/${gamma.id}`);
});

test('deleting an account removes everything it had, and nothing else', async () => {
  const ns = customerNetns(node, acmeId);
  const res = await api.call('DELETE', `/v1/accounts/${acmeId}`);
  assert.equal(res.statusCode, 204);
  await eventually('acme removed', async () => !(await netnsExists(ns)) && !(await getLink(node.hostNetns, hostVethName(acmeId))));
  await eventually('acme prefix unmarked', async () => {
    const t = await readNftTable(node.hostNetns, 'inet', 'opentransit');
    return JSON.stringify(t?.sets.find((s) => s.name === 'customer4')?.elements) === JSON.stringify([{ prefix: { addr: '198.18.0.0', len: 24 } }]);
  });
  const table = await listRoutes(node.hostNetns, { table: NODE_DEFAULTS.table });
  assert.ok(!table.some((r) => r.dst === '203.0.113.0/24'));
  assert.ok(table.some((r) => r.dst === '198.18.0.0/24'), "beta's route stays");
});
