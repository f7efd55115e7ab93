import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderBirdConfig } from '../../src/kernel/bird-config.js';
import { bgpRouters, birdSpecFor } from '../../src/lab/routing.js';
import { planLab, validateTopology } from '../../src/lab/topology.js';

const plan = planLab(
  validateTopology({
    name: 'r1',
    anycast_endpoints: ['192.0.2.10'],
    sites: [{ name: 'chi', edges: 2 }, { name: 'ams', edges: 1 }],
    clients: [{ name: 'client', site: 'chi', address: '198.51.100.100' }],
    customers: [{ name: 'acme', router: '198.51.100.2', hosts: [{ name: 'ftp', address: '203.0.113.100' }] }],
  }),
);
const host = (n: string) => plan.hosts.find((h) => h.name === n)!;

test('BIRD runs on the core and the site routers only', () => {
  assert.deepEqual(bgpRouters(plan).map((h) => h.name), ['internet', 'chi-router', 'ams-router']);
  assert.throws(() => birdSpecFor(host('chi-edge1')), /not a BGP router/);
});

test('core: eBGP to every site, announces the customer routers, one best path', () => {
  const spec = birdSpecFor(host('internet'));
  assert.equal(spec.asn, 65000);
  assert.equal(spec.kernel.mergePaths, false);
  assert.deepEqual(spec.staticRoutes, [{ prefix: '198.51.100.2/32' }]);
  assert.deepEqual(spec.bgpPeers.map((p) => [p.name, p.neighbor, p.remoteAs, p.passive, p.bfd, p.export]), [
    ['site_chi', '100.64.0.1', 65001, false, false, 'all'],
    ['site_ams', '100.64.0.3', 65002, false, false, 'all'],
  ]);
  const text = renderBirdConfig(spec);
  assert.match(text, /protocol bgp site_chi \{/);
  assert.doesNotMatch(text, /merge paths/);
});

test('site router: ECMP over its edges, passive BFD sessions waiting for the edge agents', () => {
  const spec = birdSpecFor(host('chi-router'));
  assert.equal(spec.asn, 65001);
  assert.equal(spec.routerId, '100.64.0.1');
  assert.deepEqual(spec.kernel, { export: 'all', mergePaths: true });
  assert.deepEqual(spec.staticRoutes, [{ prefix: '198.51.100.100/32' }]);
  const edges = spec.bgpPeers.filter((p) => p.name.startsWith('edge_'));
  assert.deepEqual(edges.map((p) => [p.name, p.neighbor, p.localAddress, p.remoteAs, p.passive, p.bfd, p.import, p.export]), [
    ['edge_1', '100.65.0.1', '100.65.0.0', 64512, true, true, 'all', 'none'],
    ['edge_2', '100.65.0.3', '100.65.0.2', 64512, true, true, 'all', 'none'],
  ]);
  const text = renderBirdConfig(spec);
  assert.match(text, /merge paths on/);
  assert.match(text, /protocol bgp edge_1 \{[^}]*passive on/);
  assert.match(text, /protocol bfd bfd1/);
  // Tolerant of a CPU-starved BIRD on the shared lab machine (see SITE_ROUTER_BFD), still fast on a dead edge.
  assert.deepEqual(spec.bfd, { intervalMs: 100, multiplier: 5 });
  assert.match(text, /min rx interval 100 ms; min tx interval 100 ms; multiplier 5;/);
});
