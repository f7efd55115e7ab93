// The pure parts of src/kernel (no root): argv builders, normalisation, parsers of captured iproute2/nft output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { addressReplaceOp, parseAddresses } from '../../src/kernel/addresses.js';
import { classifyKernelMessage, KernelInputError, parseJsonSequence } from '../../src/kernel/exec.js';
import { parseBatchStderr } from '../../src/kernel/ip.js';
import { linkSetOp, macFromKey, ownerAlias, ownerOfAlias, parseLinks, vethOps } from '../../src/kernel/links.js';
import { netnsAddOp } from '../../src/kernel/netns.js';
import { neighbourReplaceOp, parseNeighbours } from '../../src/kernel/neighbours.js';
import { nftExpr as x, nftReplaceTableDocument, parseNftTable } from '../../src/kernel/nft.js';
import { normalizeRoute, parseRoutes, routeDeleteOp, routeKey, routeReplaceOp, RT_PROTO_OPENTRANSIT, sameRoute } from '../../src/kernel/routes.js';
import { normalizeRule, parseRules, ruleAddOp, ruleDeleteOp, sameRule } from '../../src/kernel/rules.js';

test('parseJsonSequence splits concatenated documents, brackets inside strings included', () => {
  assert.deepEqual(parseJsonSequence('[{"a":"]["}]\n[]\n[1,{"b":"\\"]"}]\n'), [[{ a: '][' }], [], [1, { b: '"]' }]]);
  assert.throws(() => parseJsonSequence('[1,2'), /truncated/);
  fc.assert(
    fc.property(fc.array(fc.array(fc.jsonValue())), (docs) => {
      assert.deepEqual(parseJsonSequence(docs.map((d) => JSON.stringify(d)).join('\n')), JSON.parse(JSON.stringify(docs)));
    }),
  );
});

test('parseBatchStderr maps each message to its line; a trailing message without a line is unattributed', () => {
  const r = parseBatchStderr('RTNETLINK answers: No such process\nCommand failed -:1\nCannot find device "x"\nCommand failed -:4\nRTNETLINK answers: File exists\n');
  assert.deepEqual([...r.byLine], [[1, 'RTNETLINK answers: No such process'], [4, 'Cannot find device "x"']]);
  assert.deepEqual(r.unattributed, ['RTNETLINK answers: File exists']);
});

test('classifyKernelMessage recognises the messages idempotency depends on', () => {
  assert.equal(classifyKernelMessage('RTNETLINK answers: File exists'), 'EEXIST');
  assert.equal(classifyKernelMessage('Cannot create namespace file "/run/netns/x": File exists'), 'EEXIST');
  for (const m of ['RTNETLINK answers: No such process', 'Error: ipv4: Address not found.', 'Cannot find device "x"', 'Error: FIB table does not exist.',
    'Cannot remove namespace file "/run/netns/x": No such file or directory', 'Error: No such file or directory'])
    assert.equal(classifyKernelMessage(m), 'ENOENT', m);
  assert.equal(classifyKernelMessage('Error: mtu greater than device maximum.'), 'OTHER');
});

test('routeReplaceOp: multipath onlink with weights, single path, unreachable, IPv6 default', () => {
  assert.deepEqual(
    routeReplaceOp({ dst: '203.0.113.0/24', table: 100, metric: 10, mtu: 1476, nexthops: [{ via: '10.0.0.3', dev: 'v0', onlink: true, weight: 1 }, { via: '10.0.0.1', dev: 'v0', onlink: true, weight: 3 }] }).args,
    ['route', 'replace', '203.0.113.0/24', 'table', '100', 'metric', '10', 'proto', '247', 'mtu', '1476',
      'nexthop', 'via', '10.0.0.1', 'dev', 'v0', 'onlink', 'weight', '3', 'nexthop', 'via', '10.0.0.3', 'dev', 'v0', 'onlink', 'weight', '1'],
  );
  assert.deepEqual(routeReplaceOp({ dst: '198.51.100.0/24', nexthops: [{ via: '10.0.0.1', dev: 'v0', onlink: true, weight: 9 }] }).args,
    ['route', 'replace', '198.51.100.0/24', 'table', '254', 'metric', '0', 'proto', '247', 'via', '10.0.0.1', 'dev', 'v0', 'onlink']);
  assert.deepEqual(routeReplaceOp({ dst: 'default', table: 100, type: 'unreachable' }).args,
    ['route', 'replace', 'unreachable', '0.0.0.0/0', 'table', '100', 'metric', '0', 'proto', '247']);
  assert.deepEqual(routeReplaceOp({ dst: 'default', family: 6, table: 100, type: 'unreachable' }).args,
    ['route', 'replace', 'unreachable', '::/0', 'table', '100', 'metric', '1024', 'proto', '247']);
  assert.deepEqual(routeDeleteOp(routeKey(normalizeRoute({ dst: 'default', table: 100, type: 'unreachable' }))),
    { args: ['route', 'delete', 'unreachable', '0.0.0.0/0', 'table', '100', 'metric', '0', 'proto', '247'], tolerate: ['ENOENT'] });
});

test('normalizeRoute refuses inconsistent specs, naming the field', () => {
  const bad: [Parameters<typeof normalizeRoute>[0], string][] = [
    [{ dst: '203.0.113.1/24', nexthops: [{ dev: 'v0' }] }, 'dst'],
    [{ dst: '203.0.113.0/24' }, 'nexthops'],
    [{ dst: 'default', type: 'unreachable', nexthops: [{ dev: 'v0' }] }, 'nexthops'],
    [{ dst: '203.0.113.0/24', nexthops: [{ via: '2001:db8::1', dev: 'v0' }] }, 'nexthops[0].via'],
    [{ dst: '203.0.113.0/24', nexthops: [{ dev: 'v0', onlink: true }] }, 'nexthops[0].onlink'],
    [{ dst: '203.0.113.0/24', nexthops: [{ via: '10.0.0.1', dev: 'v0', weight: 0 }, { via: '10.0.0.2', dev: 'v0' }] }, 'nexthops[0].weight'],
    [{ dst: '203.0.113.0/24', type: 'local' as never, nexthops: [] }, 'type'],
  ];
  for (const [spec, field] of bad) assert.throws(() => normalizeRoute(spec), (e: unknown) => e instanceof KernelInputError && e.field === field, field);
});

test('parseRoutes of captured `ip -N -j route show table all root 0.0.0.0/0` equals the normalised specs', () => {
  const raw = [
    { type: '7', dst: 'default', table: '100', protocol: '247', flags: [] },
    { dst: '203.0.113.0/24', table: '100', protocol: '247', metric: 10, flags: [], metrics: [{ mtu: 1476 }],
      nexthops: [{ gateway: '10.250.0.1', dev: 'h0', weight: 3, flags: ['onlink'] }, { gateway: '10.250.0.3', dev: 'h0', weight: 1, flags: ['onlink'] }] },
    { dst: '10.250.0.0/31', dev: 'h0', protocol: '2', scope: '253', prefsrc: '10.250.0.0', flags: [] },
    { type: '2', dst: '10.250.0.0', dev: 'h0', table: '255', protocol: '2', scope: '254', prefsrc: '10.250.0.0', flags: [] },
  ];
  const routes = parseRoutes(raw, 4);
  assert.ok(sameRoute(normalizeRoute({ dst: 'default', table: 100, type: 'unreachable' }), routes[0]!));
  assert.ok(sameRoute(normalizeRoute({ dst: '203.0.113.0/24', table: 100, metric: 10, mtu: 1476,
    nexthops: [{ via: '10.250.0.3', dev: 'h0', onlink: true, weight: 1 }, { via: '10.250.0.1', dev: 'h0', onlink: true, weight: 3 }] }), routes[1]!));
  assert.ok(!sameRoute(normalizeRoute({ dst: '203.0.113.0/24', table: 100, metric: 10, mtu: 1476,
    nexthops: [{ via: '10.250.0.3', dev: 'h0', onlink: true, weight: 2 }, { via: '10.250.0.1', dev: 'h0', onlink: true, weight: 3 }] }), routes[1]!));
  assert.deepEqual([routes[2]!.table, routes[2]!.protocol, routes[2]!.scope, routes[2]!.src], [254, 2, 253, '10.250.0.0']);
  assert.deepEqual([routes[3]!.type, routes[3]!.dst, routes[3]!.table], ['local', '10.250.0.0/32', 255]);
});

test('rules: args, IPv6 without addresses, parse of captured output', () => {
  assert.deepEqual(ruleAddOp({ priority: 1000, fwmark: 0x10, fwmask: 0xff, table: 100 }),
    { args: ['rule', 'add', 'priority', '1000', 'fwmark', '0x10/0xff', 'lookup', '100', 'proto', '247'], tolerate: ['EEXIST'] });
  // `from ::/0` would be stored as an IPv4 "from all" rule: an IPv6 rule without addresses runs under `ip -6`.
  assert.deepEqual(ruleDeleteOp({ priority: 1000, fwmark: 0x10, table: 100, family: 6 }), {
    args: ['rule', 'delete', 'priority', '1000', 'fwmark', '0x10/0xffffffff', 'lookup', '100', 'proto', '247'],
    tolerate: ['ENOENT'],
    family: 6,
  });
  const parsed = parseRules([
    { priority: 0, src: 'all', table: '255' },
    { priority: 1000, src: 'all', fwmark: '0x10', fwmask: '0xff', table: '100', protocol: '247' },
    { priority: 2000, src: '203.0.113.0', srclen: 24, dst: '198.51.100.0', dstlen: 24, iif: 'd0', table: '100', protocol: '247' },
    { priority: 2001, src: 'all', fwmark: '0x20', action: '7', protocol: '247' },
  ], 4);
  assert.ok(sameRule(normalizeRule({ priority: 1000, fwmark: 0x10, fwmask: 0xff, table: 100 }), parsed[1]!));
  assert.ok(sameRule(normalizeRule({ priority: 2000, from: '203.0.113.0/24', to: '198.51.100.0/24', iif: 'd0', table: 100 }), parsed[2]!));
  assert.ok(sameRule(normalizeRule({ priority: 2001, fwmark: 0x20, action: 'unreachable' }), parsed[3]!));
  assert.throws(() => normalizeRule({ priority: 1000 }), (e: unknown) => e instanceof KernelInputError && e.field === 'table');
  assert.throws(() => normalizeRule({ priority: 10, table: 1, from: '2001:db8::/32', to: '192.0.2.0/24' }), (e: unknown) => e instanceof KernelInputError && e.field === 'to');
});

test('links: veth ops, link set, MACs, owner alias', () => {
  const v = vethOps({ ns: 'host', name: 'h0', mac: '02:00:00:00:00:01', peerNs: 'cust', peerName: 'c0', peerMac: '02:00:00:00:00:02', mtu: 1500, alias: ownerAlias('acme') });
  assert.deepEqual(v.host[0], {
    args: ['link', 'add', 'h0', 'address', '02:00:00:00:00:01', 'mtu', '1500', 'up', 'type', 'veth', 'peer', 'name', 'c0', 'address', '02:00:00:00:00:02', 'mtu', '1500', 'netns', 'cust'],
    tolerate: ['EEXIST'],
  });
  assert.deepEqual(v.peer[0]!.args, ['link', 'set', 'dev', 'c0', 'address', '02:00:00:00:00:02', 'mtu', '1500', 'alias', 'opentransit:acme', 'up']);
  assert.throws(() => vethOps({ ns: 'x', name: 'a', mac: '02:00:00:00:00:01', peerNs: 'x', peerName: 'b', peerMac: '02:00:00:00:00:02' }), /peerNs/);
  assert.throws(() => linkSetOp({ name: 'h0', mac: '01:00:00:00:00:01' }), /unicast/);
  assert.throws(() => linkSetOp({ name: 'h0' }), /nothing to set/);
  assert.equal(ownerOfAlias('opentransit:acme'), 'acme');
  assert.equal(ownerOfAlias('something else'), undefined);
  assert.equal(ownerOfAlias(undefined), undefined);
  assert.equal(macFromKey('a'), macFromKey('a'));
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      const m = macFromKey(a);
      assert.match(m, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      assert.equal(parseInt(m.slice(0, 2), 16) & 0x03, 0x02); // locally administered, unicast
      if (a !== b) assert.notEqual(m, macFromKey(b)); // 48-bit collisions: not in a test's lifetime
    }),
  );
  const [l] = parseLinks([{ ifindex: 2, link_index: 2, ifname: 'h0', flags: ['BROADCAST', 'UP'], mtu: 1500, operstate: 'UP', address: '02:00:00:00:00:01', link_netnsid: 0, ifalias: 'opentransit:acme', linkinfo: { info_kind: 'veth' } }]);
  assert.deepEqual(l, { ifindex: 2, name: 'h0', kind: 'veth', mac: '02:00:00:00:00:01', mtu: 1500, up: true, operstate: 'UP', alias: 'opentransit:acme', owner: 'acme', peerIfindex: 2, linkNetnsId: 0 });
});

test('addresses, neighbours, netns ops', () => {
  assert.deepEqual(addressReplaceOp({ dev: 'c0', cidr: '10.0.0.1/31' }).args, ['address', 'replace', '10.0.0.1/31', 'dev', 'c0']);
  assert.deepEqual(parseAddresses([{ ifname: 'c0', addr_info: [{ family: 'inet', local: '10.0.0.1', prefixlen: 31, scope: 'global' }, { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' }] }]), [
    { dev: 'c0', cidr: '10.0.0.1/31', family: 4, local: '10.0.0.1', prefixlen: 31, scope: 0 },
    { dev: 'c0', cidr: 'fe80::1/64', family: 6, local: 'fe80::1', prefixlen: 64, scope: 253 },
  ]);
  assert.deepEqual(neighbourReplaceOp({ dev: 'c0', address: '10.0.0.3', lladdr: '02:AA:00:00:00:01' }).args,
    ['neigh', 'replace', '10.0.0.3', 'lladdr', '02:aa:00:00:00:01', 'dev', 'c0', 'nud', 'permanent', 'proto', '247']);
  assert.deepEqual(parseNeighbours([{ dst: '10.0.0.3', dev: 'c0', lladdr: '02:aa:00:00:00:01', state: ['PERMANENT'], protocol: '247' }]), [
    { family: 4, dev: 'c0', address: '10.0.0.3', lladdr: '02:aa:00:00:00:01', state: ['PERMANENT'], permanent: true, protocol: RT_PROTO_OPENTRANSIT },
  ]);
  assert.deepEqual(netnsAddOp('ot-acme'), { args: ['netns', 'add', 'ot-acme'], tolerate: ['EEXIST'] });
  assert.throws(() => netnsAddOp('a b'), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
});

test('nftReplaceTableDocument: one transaction in the right order; set references checked', () => {
  const doc = nftReplaceTableDocument({
    family: 'inet', name: 'ot_fw', version: 'abc',
    sets: [{ name: 'allowed', type: 'ipv4_addr', flags: ['interval'], elements: [x.prefix('203.0.113.0', 25)] }],
    chains: [
      { name: 'input', base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' }, rules: [{ comment: 'r1', expr: [x.match(x.payload('ip', 'saddr'), '==', x.setRef('allowed')), x.counter(), x.jump('web')] }] },
      { name: 'web', rules: [{ expr: [x.accept()] }] },
    ],
  });
  const shape = doc.nftables.map((c) => { const [verb, obj] = Object.entries(c)[0]!; return `${verb} ${Object.keys(obj as object)[0]}`; });
  assert.deepEqual(shape, ['metainfo json_schema_version', 'add table', 'delete table', 'add table', 'add set', 'add chain', 'add chain', 'add rule', 'add rule', 'add chain', 'add rule']);
  assert.deepEqual(doc.nftables[5], { add: { chain: { family: 'inet', table: 'ot_fw', name: 'input', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } } });
  assert.deepEqual(doc.nftables[10], { add: { rule: { family: 'inet', table: 'ot_fw', chain: 'ot_version', comment: 'version:abc', expr: [{ return: null }] } } });
  assert.throws(() => nftReplaceTableDocument({ family: 'inet', name: 't', chains: [{ name: 'c', rules: [{ expr: [x.match(x.payload('ip', 'saddr'), '==', '@other'), x.accept()] }] }] }), /references set other/);
  assert.throws(() => nftReplaceTableDocument({ family: 'inet', name: 't', chains: [{ name: 'c', rules: [{ expr: [{ accept: null, drop: null }] }] }] }), /exactly one statement/);
  assert.throws(() => nftReplaceTableDocument({ family: 'bogus' as never, name: 't', chains: [] }), (e: unknown) => e instanceof KernelInputError && e.field === 'family');
});

test('parseNftTable reads sets, chains, rules with counters and the version', () => {
  const t = parseNftTable({ nftables: [
    { metainfo: { version: '1.0.6' } },
    { table: { family: 'inet', name: 'ot_fw', handle: 3 } },
    { set: { family: 'inet', name: 'allowed', table: 'ot_fw', type: 'ipv4_addr', handle: 2, flags: ['interval'], elem: ['198.51.100.7'] } },
    { chain: { family: 'inet', table: 'ot_fw', name: 'input', handle: 1, type: 'filter', hook: 'input', prio: 0, policy: 'drop' } },
    { chain: { family: 'inet', table: 'ot_fw', name: 'ot_version', handle: 4 } },
    { rule: { family: 'inet', table: 'ot_fw', chain: 'input', handle: 5, comment: 'r1', expr: [{ counter: { packets: 7, bytes: 588 } }, { accept: null }] } },
    { rule: { family: 'inet', table: 'ot_fw', chain: 'ot_version', handle: 6, comment: 'version:abc', expr: [{ return: null }] } },
  ] });
  assert.ok(t);
  assert.equal(t.version, 'abc');
  assert.deepEqual(t.sets, [{ name: 'allowed', type: 'ipv4_addr', flags: ['interval'], elements: ['198.51.100.7'] }]);
  assert.deepEqual(t.chains, [{ name: 'input', handle: 1, base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' } }]);
  assert.deepEqual(t.rules.map((r) => [r.chain, r.handle, r.comment, r.counter]), [['input', 5, 'r1', { packets: 7, bytes: 588 }]]);
});
