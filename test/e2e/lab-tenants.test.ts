/**
 * Two tenants in the lab, end to end: each customer's host is reached from the internet through its own tunnel,
 * each firewall applies to everyone (the other tenant included), and one tenant's traffic never enters the other's
 * namespace. Needs `make build` (it runs the lab's processes from dist/).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { customerNetns } from '../../src/agent/desired/node.js';
import { readRuleCounters } from '../../src/kernel/nft.js';
import { listNetns } from '../../src/kernel/netns.js';
import { edgeNetnsPrefix } from '../../src/lab/agents.js';
import { labDown, labExec, labStatus, labUp, type LabStatus } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import { labRequest, type LabApi } from '../support/lab-api.js';

const name = `ten${process.pid % 100000}`;
let state: LabState;
let status: LabStatus;
const ids: Record<string, string> = {};

const api: LabApi = (method, url, body) => labRequest(status, method, url, body);

/** One TCP connection from a lab host: the first line the server sends, or the error. */
async function connect(from: string, addr: string, port: number): Promise<string> {
  const py = `import socket\ntry:\n  s = socket.create_connection((${JSON.stringify(addr)}, ${port}), timeout=2)\n  print(s.recv(100).decode().strip())\nexcept Exception as e:\n  print(type(e).__name__)`;
  return (await labExec(name, from, ['python3', '-c', py], { timeoutMs: 15_000 })).stdout.trim();
}

async function counters(account: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const edge of Object.keys(status.edges)) {
    for (const c of await readRuleCounters(customerNetns({ netnsPrefix: edgeNetnsPrefix(state, edge) }, ids[account]!), 'inet', 'opentransit')) {
      if (c.comment) out.set(c.comment, (out.get(c.comment) ?? 0) + c.packets);
    }
  }
  return out;
}

before(async () => {
  ({ state } = await labUp({
    name,
    store: 'embedded',
    anycast_endpoints: ['192.0.2.10'],
    sites: [{ name: 'chi', edges: 2 }],
    clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
    customers: [
      { name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: '203.0.113.100', listen: ['tcp/21', 'tcp/22'] }] },
      { name: 'globex', router: '198.51.100.3', hosts: [{ name: 'web', address: '198.18.0.10', listen: ['tcp/80'] }] },
    ],
  }));
  status = await labStatus(name);
  const configs = {
    acme: {
      account: 'acme',
      prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
      gre_tunnels: [{ name: 'acme-1', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' }],
      routes: [{ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }],
      firewall: { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 21' }] },
    },
    globex: {
      account: 'globex',
      prefixes: [{ cidr: '198.18.0.0/24', advertised: true }],
      gre_tunnels: [{ name: 'globex-1', customer_gre_endpoint: '198.51.100.3', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.1.0/31' }],
      routes: [{ prefix: '198.18.0.0/24', nexthop: '10.200.1.1', priority: 100 }],
      firewall: { default_action: 'allow', rules: [] },
    },
  };
  for (const [account, config] of Object.entries(configs)) {
    const created = await api('POST', '/v1/accounts', { name: account });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    ids[account] = created.json.id;
    const put = await api('PUT', `/v1/accounts/${created.json.id}/config`, config);
    assert.equal(put.status, 200, JSON.stringify(put.json));
  }
  // Both reachable through their tunnels once every edge announces both prefixes.
  const deadline = Date.now() + 60_000;
  while ((await connect('client', '203.0.113.100', 21)) !== 'acme-ftp 21' || (await connect('client', '198.18.0.10', 80)) !== 'globex-web 80') {
    assert.ok(Date.now() < deadline, 'the two customers did not become reachable');
  }
});

after(async () => {
  await labDown(name);
  assert.deepEqual(await listNetns(`otl-${name}-`), []);
});

test("each customer is reached through its own tunnel; each firewall is its own", async () => {
  assert.equal(await connect('client', '203.0.113.100', 21), 'acme-ftp 21');
  assert.equal(await connect('client', '198.18.0.10', 80), 'globex-web 80');
  assert.equal(await connect('client', '203.0.113.100', 22), 'TimeoutError', "Acme's firewall blocks :22");
});

test("one tenant's host meets the other's firewall, and never enters the other's namespace", async () => {
  const acmeBefore = await counters('acme');
  const globexBefore = await counters('globex');
  // Globex's web host towards Acme's :22: out through Globex's tunnel, back in through the edges, into Acme's firewall.
  assert.equal(await connect('globex-web', '203.0.113.100', 22), 'TimeoutError');
  const acmeAfter = await counters('acme');
  assert.ok((acmeAfter.get('default') ?? 0) > (acmeBefore.get('default') ?? 0), "Acme's default block counted Globex's SYNs");
  // The client towards Acme: Globex's namespaces see none of it.
  assert.equal(await connect('client', '203.0.113.100', 21), 'acme-ftp 21');
  const globexAfter = await counters('globex');
  assert.equal(globexAfter.get('anti-spoofing') ?? 0, globexBefore.get('anti-spoofing') ?? 0);
  assert.equal(globexAfter.get('default') ?? 0, globexBefore.get('default') ?? 0, 'only traffic to Globex reaches its firewall');
});
