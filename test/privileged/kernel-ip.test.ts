// Links, addresses, routes, rules and neighbours on the real kernel, between two namespaces of this test only.
//
//   ns "host"  h0 10.250.0.0/31 ─── veth ─── c0 10.250.0.1/31  ns "cust" (203.0.113.1/32 on lo)
//   host: fwmark 0x10/0xff → table 100: 203.0.113.0/24 multipath onlink via .1 (w3) / .3 (w1), unreachable default
//         permanent neighbour 10.250.0.3 → c0's MAC (so both nexthops reach cust)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { addressDeleteOp, addressReplaceOp, listAddresses, replaceAddresses } from '../../src/kernel/addresses.js';
import { KernelError, KernelInputError, run } from '../../src/kernel/exec.js';
import { runIpOps } from '../../src/kernel/ip.js';
import { deleteLinkIfPresent, ensureVeth, getLink, linkSetOp, listLinks, macFromKey, ownerAlias, readLinkFeatures, setLinkFeatures, vethOps } from '../../src/kernel/links.js';
import { inNetns } from '../../src/kernel/netns.js';
import { deleteNeighboursIfPresent, listNeighbours, neighbourReplaceOp, replaceNeighbours } from '../../src/kernel/neighbours.js';
import {
  deleteRoutesIfPresent, listRoutes, normalizeRoute, replaceRoutes, routeDeleteOp, routeKey, routeReplaceOp, RT_PROTO_OPENTRANSIT, sameRoute,
  type RouteSpec,
} from '../../src/kernel/routes.js';
import { deleteRulesIfPresent, ensureRules, listRules, normalizeRule, sameRule, type RuleSpec } from '../../src/kernel/rules.js';
import { readIpState } from '../../src/kernel/state.js';
import { icmpEcho, netnsHarness } from '../support/netns.js';

const h = netnsHarness();
after(() => h.cleanup());

let host = '';
let cust = '';
const T = 100;
const OWNER = 'acct-test';
const hostMac = macFromKey(`${h.prefix}h0`);
const custMac = macFromKey(`${h.prefix}c0`);

const multipath: RouteSpec = {
  dst: '203.0.113.0/24',
  table: T,
  metric: 10,
  mtu: 1476,
  nexthops: [
    { via: '10.250.0.1', dev: 'h0', onlink: true, weight: 3 },
    { via: '10.250.0.3', dev: 'h0', onlink: true, weight: 1 },
  ],
};
const unreachable: RouteSpec = { dst: 'default', table: T, type: 'unreachable' };
const markRule: RuleSpec = { priority: 1000, fwmark: 0x10, fwmask: 0xff, table: T };
const tunnelNeigh = { dev: 'h0', address: '10.250.0.3', lladdr: custMac };

before(async () => {
  host = await h.create('host');
  cust = await h.create('cust');
});

test('ensureVeth creates a pair across namespaces with MACs, MTU, alias, up; again → existing, unchanged', async () => {
  const spec = { ns: host, name: 'h0', mac: hostMac, peerNs: cust, peerName: 'c0', peerMac: custMac, mtu: 1500, alias: ownerAlias(OWNER) };
  assert.equal(await ensureVeth(spec), 'created');
  assert.equal(await ensureVeth(spec), 'existing');
  const [a, b] = [await getLink(host, 'h0'), await getLink(cust, 'c0')];
  assert.ok(a && b);
  assert.equal(a.kind, 'veth');
  assert.equal(a.mac, hostMac);
  assert.equal(b.mac, custMac);
  assert.equal(a.owner, OWNER);
  assert.equal(b.owner, OWNER);
  assert.equal(a.up, true);
  assert.equal(b.up, true);
  assert.equal(a.peerIfindex, b.ifindex);
  assert.equal(b.peerIfindex, a.ifindex);
  assert.equal((await listLinks(host)).filter((l) => l.name === 'h0').length, 1);
});

test('ensureVeth refuses a same-named link that is not the expected pair', async () => {
  await assert.rejects(
    ensureVeth({ ns: host, name: 'h0', mac: hostMac, peerNs: cust, peerName: 'c9', peerMac: custMac }),
    (e: unknown) => e instanceof KernelError && e.code === 'EEXIST' && /not a veth paired with c9/.test(e.message),
  );
});

test('GRO on the customer end via ethtool, read back', async () => {
  await setLinkFeatures(cust, 'c0', { gro: true });
  await setLinkFeatures(cust, 'c0', { gro: true });
  assert.equal((await readLinkFeatures(cust, 'c0')).gro, true);
});

test('addresses: replace twice → one address; read back', async () => {
  await replaceAddresses(host, [{ dev: 'h0', cidr: '10.250.0.0/31' }]);
  await replaceAddresses(host, [{ dev: 'h0', cidr: '10.250.0.0/31' }]);
  await runIpOps(cust, [
    linkSetOp({ name: 'lo', up: true }),
    addressReplaceOp({ dev: 'c0', cidr: '10.250.0.1/31' }),
    addressReplaceOp({ dev: 'lo', cidr: '203.0.113.1/32' }),
  ]);
  const v4 = await listAddresses(host, { dev: 'h0', family: 4 });
  assert.deepEqual(v4.map((a) => a.cidr), ['10.250.0.0/31']);
  assert.deepEqual((await listAddresses(cust, { family: 4 })).map((a) => `${a.dev} ${a.cidr}`).sort(), ['c0 10.250.0.1/31', 'lo 127.0.0.1/8', 'lo 203.0.113.1/32']);
});

test('routes: onlink multipath with weights and mtu, unreachable default in a table; replace twice → no duplicates', async () => {
  await replaceRoutes(host, [multipath, unreachable]);
  await replaceRoutes(host, [multipath, unreachable]);
  const ours = await listRoutes(host, { table: T, protocol: RT_PROTO_OPENTRANSIT });
  assert.equal(ours.length, 2, JSON.stringify(ours));
  const mp = ours.find((r) => r.dst === '203.0.113.0/24');
  assert.ok(mp && sameRoute(normalizeRoute(multipath), mp), JSON.stringify(mp));
  assert.deepEqual(mp.nexthops, [
    { via: '10.250.0.1', dev: 'h0', weight: 3, onlink: true },
    { via: '10.250.0.3', dev: 'h0', weight: 1, onlink: true },
  ]);
  assert.equal(mp.mtu, 1476);
  assert.equal(mp.metric, 10);
  const un = ours.find((r) => r.dst === '0.0.0.0/0');
  assert.ok(un && sameRoute(normalizeRoute(unreachable), un), JSON.stringify(un));
  // Nothing of ours leaked into main.
  assert.deepEqual(await listRoutes(host, { table: 254, protocol: RT_PROTO_OPENTRANSIT }), []);
});

test('routes: replace changes nexthops in place (same key); a different metric is a different route', async () => {
  const changed = { ...multipath, nexthops: [{ via: '10.250.0.1', dev: 'h0', onlink: true, weight: 1 }, { via: '10.250.0.3', dev: 'h0', onlink: true, weight: 1 }] };
  await replaceRoutes(host, [changed]);
  let mp = (await listRoutes(host, { table: T, protocol: RT_PROTO_OPENTRANSIT })).filter((r) => r.dst === '203.0.113.0/24');
  assert.equal(mp.length, 1);
  assert.deepEqual(mp[0]!.nexthops.map((n) => n.weight), [1, 1]);
  await replaceRoutes(host, [{ ...multipath, metric: 20 }]);
  mp = (await listRoutes(host, { table: T, protocol: RT_PROTO_OPENTRANSIT })).filter((r) => r.dst === '203.0.113.0/24');
  assert.deepEqual(mp.map((r) => r.metric).sort(), [10, 20]);
  await deleteRoutesIfPresent(host, [routeKey(normalizeRoute({ ...multipath, metric: 20 }))]);
  await replaceRoutes(host, [multipath]);
  mp = (await listRoutes(host, { table: T, protocol: RT_PROTO_OPENTRANSIT })).filter((r) => r.dst === '203.0.113.0/24');
  assert.equal(mp.length, 1);
  assert.ok(sameRoute(normalizeRoute(multipath), mp[0]!));
});

test('rules: fwmark rule added twice → one rule; read back', async () => {
  await ensureRules(host, [markRule]);
  await ensureRules(host, [markRule]);
  const ours = await listRules(host, { protocol: RT_PROTO_OPENTRANSIT });
  assert.equal(ours.length, 1);
  assert.ok(sameRule(normalizeRule(markRule), ours[0]!), JSON.stringify(ours));
  assert.equal(ours[0]!.fwmark, 0x10);
  assert.equal(ours[0]!.fwmask, 0xff);
  assert.equal(ours[0]!.table, T);
});

test('neighbours: permanent entry replaced twice → one entry with our protocol', async () => {
  await replaceNeighbours(host, [tunnelNeigh]);
  await replaceNeighbours(host, [tunnelNeigh]);
  const ours = await listNeighbours(host, { protocol: RT_PROTO_OPENTRANSIT });
  assert.equal(ours.length, 1);
  assert.equal(ours[0]!.address, '10.250.0.3');
  assert.equal(ours[0]!.lladdr, custMac);
  assert.equal(ours[0]!.permanent, true);
});

test('ICMP echo across the veth follows the fwmark rule into table 100; unmarked and unrouted traffic is refused', async () => {
  await runIpOps(host, [linkSetOp({ name: 'lo', up: true })]);
  // Marked: rule → table 100 → multipath → cust (both nexthops end at c0: .3 via the permanent neighbour).
  assert.deepEqual(await icmpEcho(host, '203.0.113.1', { mark: 0x10, count: 5 }), { sent: 5, received: 5, error: '' });
  // Unmarked: main has no route to 203.0.113.0/24.
  const unmarked = await icmpEcho(host, '203.0.113.1');
  assert.equal(unmarked.received, 0);
  assert.match(unmarked.error, /unreachable/i);
  // Marked, but outside our prefix: the table's unreachable default answers (EHOSTUNREACH).
  const other = await icmpEcho(host, '198.51.100.9', { mark: 0x10 });
  assert.equal(other.received, 0);
  assert.match(other.error, /No route to host/);
});

test('readIpState returns links, addresses, routes, rules and neighbours in one read', async () => {
  const s = await readIpState(host);
  assert.ok(s.links.some((l) => l.name === 'h0' && l.owner === OWNER));
  assert.ok(s.addresses.some((a) => a.cidr === '10.250.0.0/31'));
  assert.equal(s.routes.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT).length, 2);
  assert.ok(s.routes.some((r) => r.table === 255 && r.type === 'local'));
  assert.equal(s.rules.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT).length, 1);
  assert.equal(s.neighbours.filter((n) => n.protocol === RT_PROTO_OPENTRANSIT).length, 1);
});

test('one batch of mixed ops is one spawn; failures name their line and the kernel message', async () => {
  await assert.rejects(
    runIpOps(host, [
      routeReplaceOp(multipath),
      routeReplaceOp({ dst: '198.51.100.0/24', table: T, nexthops: [{ via: '10.250.0.1', dev: 'nosuch0', onlink: true }] }),
      neighbourReplaceOp(tunnelNeigh),
    ]),
    (e: unknown) => {
      assert.ok(e instanceof KernelError);
      assert.equal(e.failures.length, 1);
      assert.equal(e.failures[0]!.line, 2);
      assert.match(e.failures[0]!.message, /Cannot find device "nosuch0"/);
      return true;
    },
  );
});

test('delete-if-present of missing objects succeeds (alone and batched)', async () => {
  const missingRoute = routeKey(normalizeRoute({ dst: '192.0.2.0/24', table: 4242, nexthops: [{ dev: 'h0' }] }));
  await deleteRoutesIfPresent(host, [missingRoute]);
  await deleteRulesIfPresent(host, [{ priority: 1234, fwmark: 0x77, table: 4242 }]);
  await deleteNeighboursIfPresent(host, [{ dev: 'h0', address: '10.250.0.99' }]);
  await deleteLinkIfPresent(host, 'nosuch0');
  // In one batch — `ip neigh del` of a missing entry aborts iproute2's batch; runIpOps falls back op by op.
  const outcomes = await runIpOps(host, [
    routeDeleteOp(missingRoute),
    addressDeleteOp({ dev: 'h0', cidr: '10.1.1.1/32' }),
    { args: ['neigh', 'delete', '10.250.0.99', 'dev', 'h0'], tolerate: ['ENOENT'] },
    linkSetOp({ name: 'h0', up: true }),
  ]);
  assert.deepEqual(outcomes, ['unchanged', 'unchanged', 'unchanged', 'done']);
});

test('a route of another protocol with the same key is not deleted by ours', async () => {
  await run(inNetns(host, ['ip', 'route', 'replace', '192.0.2.0/24', 'via', '10.250.0.1', 'dev', 'h0', 'onlink', 'table', String(T), 'proto', 'static']));
  await deleteRoutesIfPresent(host, [{ family: 4, dst: '192.0.2.0/24', table: T, metric: 0 }]);
  assert.equal((await listRoutes(host, { table: T })).filter((r) => r.dst === '192.0.2.0/24').length, 1);
  await deleteRoutesIfPresent(host, [{ family: 4, dst: '192.0.2.0/24', table: T, metric: 0, protocol: 4 }]);
  assert.equal((await listRoutes(host, { table: T })).filter((r) => r.dst === '192.0.2.0/24').length, 0);
});

test('deleting ours: rule, routes, neighbour, veth — then nothing of ours is listed', async () => {
  await deleteRulesIfPresent(host, [markRule]);
  await deleteRoutesIfPresent(host, [routeKey(normalizeRoute(multipath)), routeKey(normalizeRoute(unreachable))]);
  await deleteNeighboursIfPresent(host, [tunnelNeigh]);
  await deleteLinkIfPresent(host, 'h0');
  const s = await readIpState(host);
  assert.deepEqual(s.rules.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT), []);
  assert.deepEqual(s.routes.filter((r) => r.protocol === RT_PROTO_OPENTRANSIT), []);
  assert.deepEqual(s.neighbours, []);
  assert.equal(s.links.some((l) => l.name === 'h0'), false);
  assert.equal(await getLink(cust, 'c0'), undefined, 'deleting one end deletes the peer');
});

test('bad input names the field', async () => {
  assert.throws(() => routeReplaceOp({ dst: '203.0.113.1/24', nexthops: [{ dev: 'h0' }] }), (e: unknown) => e instanceof KernelInputError && e.field === 'dst');
  assert.throws(() => routeReplaceOp({ dst: '203.0.113.0/24', nexthops: [{ dev: 'h0 x' }] }), (e: unknown) => e instanceof KernelInputError && e.field === 'nexthops[0].dev');
  assert.throws(() => vethOps({ ns: null, name: 'this-name-is-too-long', mac: hostMac, peerNs: 'x', peerName: 'p', peerMac: custMac }), /name: must be 1–15/);
  assert.throws(() => linkSetOp({ name: 'h0', alias: 'has space' }), (e: unknown) => e instanceof KernelInputError && e.field === 'alias');
  await assert.rejects(ensureRules(null, [{ priority: 0, table: 1 }]), (e: unknown) => e instanceof KernelInputError && e.field === 'priority');
});
