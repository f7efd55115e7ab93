/**
 * One customer with two tunnels (one per anycast endpoint), end to end in the lab: route priorities move all traffic
 * from one tunnel to the other, equal priorities share it by weight (ECMP over flows) — seen by tshark at the
 * customer router as the outer source of the GRE it receives; and GRE from the customer router with an inner source
 * outside the customer's prefixes is dropped and counted at the edges. Needs `make build`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { listNetns } from '../../src/kernel/netns.js';
import { openDataplane, readCounters } from '../../src/kernel/bpf/dataplane.js';
import { Reason } from '../../src/kernel/bpf/abi.generated.js';
import { labAgentPinBase } from '../../src/lab/agents.js';
import { labDown, labExec, labStatus, labUp, type LabStatus } from '../../src/lab/lab.js';
import type { LabState } from '../../src/lab/state.js';
import { tsharkCapture } from '../../src/lab/tshark.js';
import { labRequest, type LabApi, waitAppliedOnEveryEdge } from '../support/lab-api.js';

const name = `tun${process.pid % 100000}`;
let state: LabState;
let status: LabStatus;
let acmeId = '';

const api: LabApi = (method, url, body) => labRequest(status, method, url, body);

const config = (routes: Array<{ nexthop: string; priority: number; weight?: number }>) => ({
  account: 'acme',
  prefixes: [{ cidr: '203.0.113.0/24', advertised: true }],
  gre_tunnels: [
    { name: 'acme-a', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.10', interface_address: '10.200.0.0/31' },
    { name: 'acme-b', customer_gre_endpoint: '198.51.100.2', edge_gre_endpoint: '192.0.2.11', interface_address: '10.200.0.2/31' },
  ],
  routes: routes.map((r) => ({ prefix: '203.0.113.0/24', ...r })),
  firewall: { default_action: 'allow', rules: [] },
});

/** Applies routes and waits until every edge applied them. */
async function applyRoutes(routes: Array<{ nexthop: string; priority: number; weight?: number }>): Promise<void> {
  const put = await api('PUT', `/v1/accounts/${acmeId}/config`, config(routes));
  assert.equal(put.status, 200, JSON.stringify(put.json));
  await waitAppliedOnEveryEdge(api, acmeId, put.json.revision as number, Object.keys(status.edges).length);
}

/** `flows` short TCP connections from the client; per outer source address, how many GRE packets the router got. */
async function outerSources(flows: number): Promise<Map<string, number>> {
  const router = state.plan.customers[0]!;
  const cap = await tsharkCapture({ netns: router.routerNetns, dev: 'uplink', filter: 'ip proto 47 and dst host 198.51.100.2', count: flows, timeoutS: 20, fields: ['ip.src'] });
  const py = `import socket\nfor i in range(${flows}):\n  s = socket.create_connection(('203.0.113.100', 21), timeout=3)\n  s.recv(100)\n  s.close()`;
  const r = await labExec(name, 'client', ['python3', '-c', py], { timeoutMs: 60_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  const rows = await cap.done;
  const out = new Map<string, number>();
  for (const [src] of rows) {
    const outer = src!.split(',')[0]!;
    out.set(outer, (out.get(outer) ?? 0) + 1);
  }
  return out;
}

before(async () => {
  ({ state } = await labUp({
    name,
    store: 'embedded',
    anycast_endpoints: ['192.0.2.10', '192.0.2.11'],
    sites: [{ name: 'chi', edges: 2 }],
    clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
    customers: [{ name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: '203.0.113.100', listen: ['tcp/21'] }] }],
  }));
  status = await labStatus(name);
  const created = await api('POST', '/v1/accounts', { name: 'acme' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  acmeId = created.json.id;
  await applyRoutes([{ nexthop: '10.200.0.1', priority: 100 }, { nexthop: '10.200.0.3', priority: 200 }]);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await labExec(name, 'client', ['python3', '-c', "import socket\ntry:\n  print(socket.create_connection(('203.0.113.100', 21), timeout=2).recv(100).decode().strip())\nexcept Exception as e:\n  print(e)"]);
    if (r.stdout.trim() === 'acme-ftp 21') break;
    assert.ok(Date.now() < deadline, `acme not reachable: ${r.stdout}`);
  }
});

after(async () => {
  await labDown(name);
  assert.deepEqual(await listNetns(`otl-${name}-`), []);
});

test('priorities choose the tunnel; a priority change moves all traffic to the other tunnel', async () => {
  const first = await outerSources(12);
  assert.deepEqual([...first.keys()], ['192.0.2.10'], `tunnel a (priority 100) carries everything: ${JSON.stringify([...first])}`);
  await applyRoutes([{ nexthop: '10.200.0.1', priority: 300 }, { nexthop: '10.200.0.3', priority: 200 }]);
  const moved = await outerSources(12);
  assert.deepEqual([...moved.keys()], ['192.0.2.11'], `tunnel b carries everything now: ${JSON.stringify([...moved])}`);
});

test('equal priorities share the flows over both tunnels (ECMP by weight)', async () => {
  await applyRoutes([{ nexthop: '10.200.0.1', priority: 100, weight: 1 }, { nexthop: '10.200.0.3', priority: 100, weight: 1 }]);
  const shared = await outerSources(40);
  assert.ok((shared.get('192.0.2.10') ?? 0) > 0 && (shared.get('192.0.2.11') ?? 0) > 0, `both tunnels carry flows: ${JSON.stringify([...shared])}`);
});

test('GRE from the customer router with a spoofed inner source is dropped and counted at the edges', async () => {
  const spoofed = () => {
    let n = 0;
    for (const edge of Object.keys(status.edges)) {
      const dp = openDataplane({ node: edge, base: labAgentPinBase(name) });
      try {
        n += readCounters(dp.maps.counters).filter((c) => c.reason === Reason.DROP_GRE_SPOOFED).reduce((a, c) => a + Number(c.packets), 0);
      } finally {
        dp.close();
      }
    }
    return n;
  };
  const before = spoofed();
  // Plain GRE to the anycast endpoint carrying a UDP datagram from 198.18.0.66 (not Acme's): the router's kernel adds
  // the outer header (raw socket, protocol 47).
  const py = [
    'import socket, struct',
    'def csum(b):',
    '  s = sum(struct.unpack("!%dH" % (len(b) // 2), b))',
    '  s = (s >> 16) + (s & 0xffff); s += s >> 16',
    '  return ~s & 0xffff',
    'udp = struct.pack("!HHHH", 4000, 9, 8 + 4, 0) + b"spof"',
    'ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton("198.18.0.66"), socket.inet_aton("198.51.100.100"))',
    'ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]',
    'gre = struct.pack("!HH", 0, 0x0800) + ip + udp',
    's = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)',
    's.bind(("198.51.100.2", 0))',
    'for i in range(20): s.sendto(gre, ("192.0.2.10", 0))',
  ].join('\n');
  const r = await labExec(name, 'acme-router', ['python3', '-c', py]);
  assert.equal(r.exitCode, 0, r.stderr);
  const deadline = Date.now() + 5000;
  while (spoofed() - before < 20) {
    assert.ok(Date.now() < deadline, `only ${spoofed() - before} of 20 spoofed packets counted`);
    await new Promise((res) => setTimeout(res, 100));
  }
});
