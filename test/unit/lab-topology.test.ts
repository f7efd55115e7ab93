import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { defaultTopologyFile } from '../../src/lab/paths.js';
import { edgeNodeConfig } from '../../src/lab/agents.js';
import { parseTopology, planLab, validateTopology, type LabPlan } from '../../src/lab/topology.js';
import { ValidationError } from '../../src/model/errors.js';
import { cidrsOverlap, parseCidr } from '../../src/model/ip.js';

const exampleText = readFileSync(defaultTopologyFile(), 'utf8');

const minimal = () => ({
  name: 't1',
  anycast_endpoints: ['192.0.2.10'],
  sites: [{ name: 'chi', edges: 2 }],
  clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
  customers: [{ name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: '203.0.113.100', listen: ['tcp/21', 'udp/53'] }] }],
});

function rejects(input: unknown, field: string, reason: RegExp): void {
  assert.throws(
    () => validateTopology(input),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError, `expected ValidationError, got ${String(e)}`);
      assert.equal(e.field, field, e.message);
      assert.match(e.reason, reason);
      return true;
    },
  );
}

test('the example topology parses with defaults', () => {
  const t = parseTopology(exampleText, 'examples/lab.yaml');
  assert.equal(t.name, 'demo');
  assert.equal(t.store, 'embedded');
  assert.equal(t.apiPort, 0);
  assert.deepEqual(t.sites, [{ name: 'chi', edges: 2 }, { name: 'ams', edges: 2 }]);
  assert.equal(t.customers[0]!.return, 'tunnel');
  assert.equal(t.customers[0]!.prefix, '203.0.113.0/24');
  assert.deepEqual(t.customers[0]!.hosts[0]!.listen, [{ proto: 'tcp', port: 21 }, { proto: 'tcp', port: 22 }]);
});

test('YAML syntax errors name the source, line and column', () => {
  assert.throws(() => parseTopology('name: x\nsites: [\n', 'lab.yaml'), /lab\.yaml:\d+:\d+/);
});

test('validation errors name the field and the reason', () => {
  rejects({ ...minimal(), name: 'Demo' }, 'name', /\[a-z0-9\]/);
  rejects({ ...minimal(), name: 'a-b' }, 'name', /\[a-z0-9\]/);
  rejects({ ...minimal(), nmae: 'x' }, 'nmae', /unknown field/);
  rejects({ ...minimal(), store: 'redis' }, 'store', /embedded/);
  rejects({ ...minimal(), anycast_endpoints: [] }, 'anycast_endpoints', /at least one/);
  rejects({ ...minimal(), anycast_endpoints: ['8.8.8.8'] }, 'anycast_endpoints[0]', /documentation or benchmarking/);
  rejects({ ...minimal(), anycast_endpoints: ['100.64.0.1'] }, 'anycast_endpoints[0]', /documentation or benchmarking/);
  rejects({ ...minimal(), sites: [] }, 'sites', /at least one/);
  rejects({ ...minimal(), sites: [{ name: 'chi', edges: 0 }] }, 'sites[0].edges', /1\.\.64/);
  rejects({ ...minimal(), sites: [{ name: 'chi-1' }] }, 'sites[0].name', /no '-'/);
  rejects({ ...minimal(), sites: [{ name: 'internet' }] }, 'sites[0].name', /reserved/);
  rejects({ ...minimal(), sites: [{ name: 'edge3' }] }, 'sites[0].name', /reserved/);
  const m = minimal();
  rejects({ ...m, clients: [{ ...m.clients[0]!, site: 'ams' }] }, 'clients[0].site', /one of the sites \(chi\)/);
  rejects({ ...m, clients: [{ ...m.clients[0]!, name: 'chi' }] }, 'clients[0].name', /already the name of sites\[0\]\.name/);
  rejects({ ...m, clients: [{ ...m.clients[0]!, address: '198.51.100.2' }] }, 'customers[0].router', /already used by clients\[0\]\.address/);
  rejects({ ...m, clients: [{ ...m.clients[0]!, address: '203.0.113.7' }] }, 'clients[0].address', /inside 203\.0\.113\.0\/24/);
  const cust = m.customers[0]!;
  const withHost = (h: Record<string, unknown>) => ({ ...m, customers: [{ ...cust, hosts: [{ ...cust.hosts[0]!, ...h }] }] });
  rejects(withHost({ address: '203.0.113.1' }), 'customers[0].hosts[0].address', /LAN address/);
  rejects(withHost({ listen: ['tcp/21', 'tcp/21'] }), 'customers[0].hosts[0].listen[1]', /twice/);
  rejects(withHost({ listen: ['sctp/1'] }), 'customers[0].hosts[0].listen[0]', /tcp\/PORT/);
  rejects(withHost({ listen: ['tcp/0'] }), 'customers[0].hosts[0].listen[0]', /1\.\.65535/);
  rejects(withHost({ name: 'router' }), 'customers[0].hosts[0].name', /reserved/);
  rejects({ ...m, customers: [{ ...cust, prefix: '203.0.113.128/25' }] }, 'customers[0].hosts[0].address', /outside/);
  rejects({ ...m, customers: [{ ...cust, return: 'dsr' }] }, 'customers[0].return', /tunnel.*direct/);
  rejects({ ...m, customers: [{ ...cust, hosts: [] }] }, 'customers[0].prefix', /required/);
  rejects(
    { ...m, customers: [cust, { ...cust, name: 'beta', router: '198.51.100.3', hosts: [{ name: 'www', address: '203.0.113.50' }] }] },
    'customers[1].prefix',
    /overlaps 203\.0\.113\.0\/24 of customers\[0\]/,
  );
});

function planOf(input: unknown): LabPlan {
  return planLab(validateTopology(input));
}

test('plan: namespaces carry the otl-<name>- prefix and fit iproute2 limits', () => {
  const plan = planOf(minimal());
  assert.equal(plan.netnsPrefix, 'otl-t1-');
  assert.deepEqual(
    plan.hosts.map((h) => h.name),
    ['internet', 'chi-router', 'chi-edge1', 'chi-edge2', 'client', 'acme-router', 'acme-ftp'],
  );
  for (const h of plan.hosts) {
    assert.equal(h.netns, `otl-t1-${h.name}`);
    assert.ok(h.netns.length <= 64);
    for (const i of h.interfaces) assert.match(i.name, /^[a-z0-9-]{1,15}$/);
  }
});

test('plan: /31 lab links from 100.64.0.0/10, upstream end even', () => {
  const plan = planOf(minimal());
  const byHost = new Map(plan.hosts.map((h) => [h.name, h]));
  const ifs = (h: string) => Object.fromEntries(byHost.get(h)!.interfaces.map((i) => [i.name, i.address]));
  assert.deepEqual(ifs('internet'), { chi: '100.64.0.0/31', acme: '100.64.1.0/31' });
  assert.deepEqual(ifs('chi-router'), { uplink: '100.64.0.1/31', edge1: '100.65.0.0/31', edge2: '100.65.0.2/31', client: '100.65.0.128/31' });
  assert.deepEqual(ifs('chi-edge2'), { uplink: '100.65.0.3/31' });
  assert.deepEqual(ifs('client'), { uplink: '100.65.0.129/31' });
  assert.deepEqual(ifs('acme-router'), { uplink: '100.64.1.1/31', ftp: '' });
  assert.deepEqual(ifs('acme-ftp'), { uplink: '203.0.113.100/24' });
  // Every routed link is a /31 inside 100.64.0.0/10 and no two links overlap.
  const cgn = parseCidr('100.64.0.0/10');
  const routed = plan.links.filter((l) => l.a.address !== '');
  for (const l of routed) assert.ok(cidrsOverlap(cgn, parseCidr(l.subnet)) && l.subnet.endsWith('/31'), l.subnet);
  for (const [i, l] of routed.entries())
    for (const o of routed.slice(i + 1)) assert.ok(!cidrsOverlap(parseCidr(l.subnet), parseCidr(o.subnet)), `${l.subnet} vs ${o.subnet}`);
});

test('plan: public addresses on lo, host default routes, customer LAN', () => {
  const plan = planOf(minimal());
  const h = (n: string) => plan.hosts.find((x) => x.name === n)!;
  assert.deepEqual(h('client').loopback, ['198.51.100.100/32']);
  assert.deepEqual(h('client').routes, [{ dst: 'default', via: '100.65.0.128', dev: 'uplink', src: '198.51.100.100' }]);
  assert.deepEqual(h('chi-edge1').routes, [{ dst: 'default', via: '100.65.0.0', dev: 'uplink' }]);
  assert.deepEqual(h('acme-router').loopback, ['198.51.100.2/32']);
  assert.deepEqual(h('acme-router').bridge, { name: 'lan', address: '203.0.113.1/24', members: ['ftp'] });
  assert.deepEqual(h('acme-ftp').routes, [{ dst: 'default', via: '203.0.113.1', dev: 'uplink' }]);
  // The customer prefix is NOT routed to the customer router: only anycast (the edges, by BGP) reaches it.
  for (const x of plan.hosts) {
    for (const r of [...x.routes.map((r) => r.dst), ...x.announce]) assert.ok(!r.startsWith('203.0.113.'), `${x.name} routes ${r}`);
  }
  assert.equal(h('acme-router').sysctls['net.ipv4.ip_forward'], 1);
  assert.equal(h('chi-router').sysctls['net.ipv4.fib_multipath_hash_policy'], 1);
  assert.equal(h('chi-router').sysctls['net.ipv4.conf.all.rp_filter'], 0);
  assert.equal(h('chi-edge1').sysctls['net.ipv4.ip_forward'], undefined, 'the edge agent owns forwarding on its host');
});

test('plan: BGP core ↔ site routers (eBGP), site routers wait for their edges', () => {
  const plan = planOf({ ...minimal(), sites: [{ name: 'chi', edges: 2 }, { name: 'ams', edges: 1 }] });
  const h = (n: string) => plan.hosts.find((x) => x.name === n)!;
  assert.deepEqual(
    h('internet').bgpPeers.map((p) => [p.protocol, p.neighbor, p.peerAsn, p.export]),
    [['site_chi', '100.64.0.1', 65001, 'all'], ['site_ams', '100.64.0.3', 65002, 'all']],
  );
  const ams = h('ams-router');
  assert.equal(ams.asn, 65002);
  assert.deepEqual(ams.bgpPeers.map((p) => [p.protocol, p.neighbor, p.localAddress, p.peerAsn, p.passive]), [
    ['core', '100.64.0.2', '100.64.0.3', 65000, false],
    ['edge_1', '100.65.1.1', '100.65.1.0', 64512, true],
  ]);
  // Clients are originated by their site router; customer routers by the core.
  assert.deepEqual(h('chi-router').announce, ['198.51.100.100/32']);
  assert.deepEqual(h('chi-router').routes, [{ dst: '198.51.100.100/32', via: '100.65.0.129', dev: 'client' }]);
  assert.deepEqual(h('internet').announce, ['198.51.100.2/32']);
  assert.deepEqual(h('internet').routes, [{ dst: '198.51.100.2/32', via: '100.64.1.1', dev: 'acme' }]);
});

test('plan: edge hooks for the agents', () => {
  const plan = planOf(minimal());
  assert.deepEqual(plan.edges[1], {
    name: 'chi-edge2',
    nodeId: 'chi-edge2',
    site: 'chi',
    index: 2,
    netns: 'otl-t1-chi-edge2',
    uplink: { dev: 'uplink', address: '100.65.0.3/31', gateway: '100.65.0.2' },
    asn: 64512,
    router: { host: 'chi-router', address: '100.65.0.2', asn: 65001 },
  });
  assert.deepEqual(plan.customers[0]!.tunnel, { interfaceAddress: '10.200.0.0/31', edgeSide: '10.200.0.0', customerSide: '10.200.0.1' });
});

test('plan: clients without a site hang off the core; the plan is deterministic', () => {
  const input = { ...minimal(), clients: [{ name: 'far', address: '198.51.100.200' }] };
  const plan = planOf(input);
  const far = plan.hosts.find((x) => x.name === 'far')!;
  assert.deepEqual(far.interfaces.map((i) => i.address), ['100.64.2.1/31']);
  const core = plan.hosts.find((x) => x.name === 'internet')!;
  assert.deepEqual(core.routes[0], { dst: '198.51.100.200/32', via: '100.64.2.1', dev: 'far' });
  assert.deepEqual(core.announce, ['198.51.100.200/32', '198.51.100.2/32']);
  assert.deepEqual(planOf(input), plan);
});

// --- IPv6 (IPv6 inside the IPv4 GRE tunnels) ---------------------------------------------------------------------

const withIpv6 = () => {
  const t = minimal();
  return {
    ...t,
    clients: [{ ...t.clients[0]!, address6: '2001:db8:ffff::100' }],
    customers: [{ ...t.customers[0]!, hosts: [{ ...t.customers[0]!.hosts[0]!, address6: '2001:db8:100::100' }] }],
  };
};

test('IPv6 is off unless a client or customer host has an address6: IPv4 topologies plan exactly as before', () => {
  const plan = planLab(parseTopology(exampleText, 'examples/lab.yaml'));
  assert.equal(plan.ipv6, false);
  const text = JSON.stringify(plan);
  assert.doesNotMatch(text, /address6|fd6c|2001:db8|accept_dad|ipv6\.conf|"family":6/);
  assert.ok(plan.hosts.every((h) => h.bgpPeers.every((p) => !p.neighbor.includes(':'))));
});

test('examples/lab-ipv6.yaml: the demo lab with IPv6 addresses for the client and Acme\'s host', () => {
  const t = parseTopology(readFileSync(defaultTopologyFile().replace(/lab\.yaml$/, 'lab-ipv6.yaml'), 'utf8'), 'examples/lab-ipv6.yaml');
  assert.equal(t.clients[0]!.address6, '2001:db8:ffff::100');
  assert.equal(t.customers[0]!.prefix6, '2001:db8:100::/64');
  assert.equal(planLab(t).ipv6, true);
});

test('IPv6 validation: documentation addresses, inside the customer prefix6, unique, outside other prefixes', () => {
  const t = withIpv6();
  const v = validateTopology(t);
  assert.equal(v.clients[0]!.address6, '2001:db8:ffff::100');
  assert.equal(v.customers[0]!.prefix6, '2001:db8:100::/64', 'default: the /64 of the first host with an address6');
  assert.equal(v.customers[0]!.hosts[0]!.address6, '2001:db8:100::100');
  assert.equal(validateTopology({ ...t, customers: [{ ...t.customers[0]!, prefix6: '2001:db8:100::/48' }] }).customers[0]!.prefix6, '2001:db8:100::/48');
  rejects({ ...t, clients: [{ ...t.clients[0]!, address6: 'fd00::1' }] }, 'clients[0].address6', /2001:db8::\/32/);
  rejects({ ...t, clients: [{ ...t.clients[0]!, address6: '198.51.100.9' }] }, 'clients[0].address6', /must be an IPv6 address/);
  rejects({ ...t, clients: [{ ...t.clients[0]!, address6: '2001:db8:100::7' }] }, 'clients[0].address6', /lies inside 2001:db8:100::\/64/);
  rejects({ ...t, customers: [{ ...t.customers[0]!, prefix6: '2001:db8:200::/64' }] }, 'customers[0].hosts[0].address6', /outside the customer's IPv6 prefix/);
  rejects({ ...t, customers: [{ ...t.customers[0]!, prefix6: '2001:db8:100::1/64' }] }, 'customers[0].prefix6', /host bits zero/);
  rejects({ ...t, customers: [{ ...t.customers[0]!, prefix6: '2001:db9::/64' }] }, 'customers[0].prefix6', /2001:db8::\/32/);
  const host = t.customers[0]!.hosts[0]!;
  rejects({ ...t, customers: [{ ...t.customers[0]!, hosts: [{ ...host, address6: '2001:db8:100::1' }] }] }, 'customers[0].hosts[0].address6', /router's LAN address/);
  rejects(
    { ...t, customers: [{ ...t.customers[0]!, hosts: [host, { ...host, name: 'web', address: '203.0.113.101' }] }] },
    'customers[0].hosts[1].address6',
    /already used by customers\[0\]\.hosts\[0\]\.address6/,
  );
  rejects({ ...t, customers: [t.customers[0]!, { name: 'beta', router: '198.51.100.3', prefix: '198.18.0.0/24', prefix6: '2001:db8:100::/56' }] }, 'customers[1].prefix6', /overlaps/);
});

test('IPv6 plan: every routed link gets fd6c::<IPv4>/127, a twin BGP session, IPv6 defaults; customers a LAN prefix6', () => {
  const plan = planOf(withIpv6());
  assert.equal(plan.ipv6, true);
  const byName = new Map(plan.hosts.map((h) => [h.name, h]));
  const router = byName.get('chi-router')!;
  assert.deepEqual(router.interfaces.map((i) => [i.name, i.address, i.address6]), [
    ['uplink', '100.64.0.1/31', 'fd6c::6440:1/127'],
    ['edge1', '100.65.0.0/31', 'fd6c::6441:0/127'],
    ['edge2', '100.65.0.2/31', 'fd6c::6441:2/127'],
    ['client', '100.65.0.128/31', 'fd6c::6441:80/127'],
  ]);
  // Each IPv4 session has an IPv6 twin over the same link (BIRD carries one family per session here).
  assert.deepEqual(router.bgpPeers.map((p) => [p.protocol, p.neighbor, p.localAddress, p.passive]), [
    ['core', '100.64.0.0', '100.64.0.1', false],
    ['core6', 'fd6c::6440:0', 'fd6c::6440:1', false],
    ['edge_1', '100.65.0.1', '100.65.0.0', true],
    ['edge6_1', 'fd6c::6441:1', 'fd6c::6441:0', true],
    ['edge_2', '100.65.0.3', '100.65.0.2', true],
    ['edge6_2', 'fd6c::6441:3', 'fd6c::6441:2', true],
  ]);
  assert.deepEqual(byName.get('internet')!.bgpPeers.map((p) => p.protocol), ['site_chi', 'site6_chi']);
  // The client's /128 on lo, its IPv6 default route with that source; its router routes and announces it.
  const client = byName.get('client')!;
  assert.deepEqual(client.loopback, ['198.51.100.100/32', '2001:db8:ffff::100/128']);
  assert.deepEqual(client.routes.at(-1), { dst: 'default', family: 6, via: 'fd6c::6441:80', dev: 'uplink', src: '2001:db8:ffff::100' });
  assert.deepEqual(router.routes.at(-1), { dst: '2001:db8:ffff::100/128', via: 'fd6c::6441:81', dev: 'client' });
  assert.deepEqual(router.announce, ['198.51.100.100/32', '2001:db8:ffff::100/128']);
  assert.equal(router.sysctls['net.ipv6.conf.all.forwarding'], 1);
  assert.equal(client.sysctls['net.ipv6.conf.default.accept_dad'], 0);
  // Edges: an IPv6 uplink and default route, and the IPv6 session's ends for the agent's node config.
  assert.deepEqual([plan.edges[0]!.uplink6, plan.edges[0]!.router.address6], [{ address: 'fd6c::6441:1/127', gateway: 'fd6c::6441:0' }, 'fd6c::6441:0']);
  assert.deepEqual(byName.get('chi-edge1')!.routes.at(-1), { dst: 'default', family: 6, via: 'fd6c::6441:0', dev: 'uplink' });
  // The edge's node config: the IPv4 session, and an IPv6 one to the same router (it carries the IPv6 prefixes).
  assert.deepEqual(edgeNodeConfig(plan.edges[0]!).bgp.peers.map((p: any) => [p.address, p.local_address, p.asn, p.bfd]), [
    ['100.65.0.0', '100.65.0.1', 65001, true],
    ['fd6c::6441:0', 'fd6c::6441:1', 65001, true],
  ]);
  assert.equal(edgeNodeConfig(planOf(minimal()).edges[0]!).bgp.peers.length, 1, 'IPv4 labs: one session per edge');
  // The customer: LAN ::1 on the bridge, the host's address6 on its uplink with a default via ::1.
  const c = plan.customers[0]!;
  assert.deepEqual([c.prefix6, c.lanAddress6, c.hosts[0]!.address6], ['2001:db8:100::/64', '2001:db8:100::1', '2001:db8:100::100']);
  assert.equal(byName.get('acme-router')!.bridge!.address6, '2001:db8:100::1/64');
  const ftp = byName.get('acme-ftp')!;
  assert.deepEqual(ftp.interfaces.map((i) => i.address6), ['2001:db8:100::100/64']);
  assert.deepEqual(ftp.routes.at(-1), { dst: 'default', family: 6, via: '2001:db8:100::1', dev: 'uplink' });
  // No two IPv6 link subnets overlap.
  const subnets = plan.links.filter((l) => l.a.address6).map((l) => parseCidr(l.a.address6!.replace(/::([0-9a-f]+):([0-9a-f]+)\/127$/, (_m, hi, lo) => `::${hi}:${(parseInt(lo, 16) & ~1).toString(16)}/127`)));
  for (let i = 0; i < subnets.length; i++) for (let j = 0; j < i; j++) assert.ok(!cidrsOverlap(subnets[i]!, subnets[j]!));
});

test('examples/lab-etcd.yaml: store etcd, one site with 3 edges, the client and Acme', () => {
  const t = parseTopology(readFileSync(defaultTopologyFile().replace(/lab\.yaml$/, 'lab-etcd.yaml'), 'utf8'), 'examples/lab-etcd.yaml');
  assert.equal(t.name, 'fleet');
  assert.equal(t.store, 'etcd');
  assert.deepEqual(t.sites, [{ name: 'chi', edges: 3 }]);
  assert.deepEqual(planLab(t).edges.map((e) => e.name), ['chi-edge1', 'chi-edge2', 'chi-edge3']);
  assert.deepEqual(t.customers.map((c) => c.name), ['acme']);
  assert.deepEqual(t.clients.map((c) => c.name), ['client']);
});
