// The pure parts of src/kernel (no root): argv builders, normalisation, netlink encoders/decoders, parsers of
// captured iproute2/nft output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { addressReplaceOp, decodeAddresses } from '../../src/kernel/addresses.js';
import { classifyKernelMessage, KernelInputError } from '../../src/kernel/exec.js';
import { parseBatchStderr } from '../../src/kernel/ip.js';
import { decodeLink, linkSetOp, macFromKey, ownerAlias, ownerOfAlias, vethOps } from '../../src/kernel/links.js';
import { ipBytes, ipText, parseAttrs } from '../../src/kernel/netlink/codec.js';
import { netnsAddOp } from '../../src/kernel/netns.js';
import { decodeNeighbours, neighbourReplaceOp } from '../../src/kernel/neighbours.js';
import { nftExpr as x, nftReplaceTableDocument, nftUpdateTableDocument, parseNftTable, type NftTableSpec, type NftTableState } from '../../src/kernel/nft.js';
import { decodeRoutes, encodeRoute, normalizeRoute, routeDeleteOp, routeKey, routeReplaceOp, RT_PROTO_OPENTRANSIT, sameRoute } from '../../src/kernel/routes.js';
import { decodeRules, encodeRule, normalizeRule, ruleAddOp, ruleDeleteOp, sameRule } from '../../src/kernel/rules.js';

/** An op without its netlink request: what the iproute2-twin assertions compare. */
const twin = (op: { args: readonly string[]; tolerate?: readonly string[]; family?: 6 }) => {
  const { args, tolerate, family } = op;
  return { args, ...(tolerate ? { tolerate } : {}), ...(family ? { family } : {}) };
};
/** A netlink request body as the op would send it, with ifindexes from `idx`. */
const body = (op: ReturnType<typeof routeReplaceOp>, idx: Record<string, number> = {}) =>
  op.nl!.build({ ifindex: (d) => idx[d]!, netnsFd: () => 99 });

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
  assert.deepEqual(twin(routeDeleteOp(routeKey(normalizeRoute({ dst: 'default', table: 100, type: 'unreachable' })))),
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

test('route netlink encoding decodes back to the same canonical route (multipath weights, onlink, mtu, big table, IPv6 link-local gateway)', () => {
  const names = new Map([[7, 'h0'], [9, 'c0']]);
  const idx = { h0: 7, c0: 9 };
  const specs: Parameters<typeof normalizeRoute>[0][] = [
    { dst: 'default', table: 100, type: 'unreachable' },
    { dst: 'default', family: 6, table: 70000, type: 'unreachable' },
    { dst: '203.0.113.0/24', table: 100, metric: 10, mtu: 1476, nexthops: [{ via: '10.250.0.3', dev: 'h0', onlink: true, weight: 1 }, { via: '10.250.0.1', dev: 'c0', onlink: true, weight: 3 }] },
    { dst: '198.51.100.0/24', metric: 5, nexthops: [{ via: '10.250.0.1', dev: 'h0', onlink: true }] },
    { dst: '10.250.0.0/31', scope: 'link', src: '10.250.0.0', nexthops: [{ dev: 'h0' }] },
    { dst: '2001:db8:1::/48', table: 300, nexthops: [{ via: 'fe80::1', dev: 'c0' }] },
    { dst: '2001:db8:2::/48', nexthops: [{ via: 'fe80::1', dev: 'c0', weight: 2 }, { via: 'fe80::2', dev: 'c0', weight: 5 }] },
  ];
  for (const spec of specs) {
    const wanted = normalizeRoute(spec);
    const decoded = decodeRoutes([body(routeReplaceOp(spec), idx)], names);
    assert.equal(decoded.length, 1);
    assert.ok(sameRoute(wanted, decoded[0]!), `${JSON.stringify(wanted)} vs ${JSON.stringify(decoded[0])}`);
  }
  // The wire format itself, for one multipath route: rtmsg, then RTA_TABLE, RTA_DST, RTA_PRIORITY, RTA_METRICS, RTA_MULTIPATH.
  const b = body(routeReplaceOp(specs[2]!), idx);
  assert.deepEqual([...b.subarray(0, 8)], [2, 24, 0, 0, 100, 247, 0, 1]);
  const a = parseAttrs(b, 12);
  assert.deepEqual([...a.keys()], [15, 1, 6, 8, 9]);
  const mp = a.get(9)!;
  // rtnexthop: len 16 (8 + an 8-byte RTA_GATEWAY), flags RTNH_F_ONLINK, hops = weight - 1, ifindex.
  assert.deepEqual([mp.readUInt16LE(0), mp[2], mp[3], mp.readInt32LE(4)], [16, 4, 2, 9]);
  assert.equal(ipText(parseAttrs(mp.subarray(0, 16), 8).get(5)), '10.250.0.1');
});

test('ipBytes / ipText agree with inet_pton / inet_ntop forms', () => {
  for (const [text, printed] of [['::', '::'], ['fe80::1', 'fe80::1'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], ['2001:db8::', '2001:db8::'], ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'], ['203.0.113.9', '203.0.113.9']])
    assert.equal(ipText(ipBytes(text!)), printed, text);
  assert.deepEqual([...ipBytes('2001:db8::1')], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
});

test('rules: args, IPv6 without addresses, parse of captured output', () => {
  assert.deepEqual(twin(ruleAddOp({ priority: 1000, fwmark: 0x10, fwmask: 0xff, table: 100 })),
    { args: ['rule', 'add', 'priority', '1000', 'fwmark', '0x10/0xff', 'lookup', '100', 'proto', '247'], tolerate: ['EEXIST'] });
  // `from ::/0` would be stored as an IPv4 "from all" rule: an IPv6 rule without addresses runs under `ip -6`.
  assert.deepEqual(twin(ruleDeleteOp({ priority: 1000, fwmark: 0x10, table: 100, family: 6 })), {
    args: ['rule', 'delete', 'priority', '1000', 'fwmark', '0x10/0xffffffff', 'lookup', '100', 'proto', '247'],
    tolerate: ['ENOENT'],
    family: 6,
  });
  // Netlink bodies decode back to the same rule, both families, big tables, actions.
  for (const spec of [
    { priority: 1000, fwmark: 0x10, fwmask: 0xff, table: 100 },
    { priority: 1000, fwmark: 0x10, table: 70000, family: 6 as const },
    { priority: 2000, from: '203.0.113.0/24', to: '198.51.100.0/24', iif: 'd0', table: 100 },
    { priority: 2001, fwmark: 0x20, action: 'unreachable' as const },
  ]) {
    const decoded = decodeRules([encodeRule(normalizeRule(spec))]);
    assert.ok(sameRule(normalizeRule(spec), decoded[0]!), `${JSON.stringify(spec)} vs ${JSON.stringify(decoded)}`);
  }
  assert.throws(() => normalizeRule({ priority: 1000 }), (e: unknown) => e instanceof KernelInputError && e.field === 'table');
  assert.throws(() => normalizeRule({ priority: 10, table: 1, from: '2001:db8::/32', to: '192.0.2.0/24' }), (e: unknown) => e instanceof KernelInputError && e.field === 'to');
});

test('links: veth ops, link set, MACs, owner alias', () => {
  const v = vethOps({ ns: 'host', name: 'h0', mac: '02:00:00:00:00:01', peerNs: 'cust', peerName: 'c0', peerMac: '02:00:00:00:00:02', mtu: 1500, alias: ownerAlias('acme') });
  assert.deepEqual(twin(v.host[0]!), {
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
  // The veth request: ifinfomsg up, name, MAC, MTU, then IFLA_LINKINFO {kind veth, data {peer: ifinfomsg + attrs incl. the netns fd}}.
  const req = v.host[0]!.nl!.build({ ifindex: () => 0, netnsFd: () => 42 });
  const top = parseAttrs(req, 16);
  assert.equal(req.readUInt32LE(8) & 1, 1);
  const info = parseAttrs(top.get(18)!);
  assert.equal(info.get(1)!.toString('utf8'), 'veth\0');
  const peer = parseAttrs(info.get(2)!).get(1)!;
  const peerAttrs = parseAttrs(peer, 16);
  assert.equal(peerAttrs.get(3)!.toString('utf8'), 'c0\0');
  assert.equal(peerAttrs.get(28)!.readInt32LE(0), 42);
  // A link-set request decodes (as a dump reply would) to the settings it carries.
  const set = v.peer[0]!.nl!.build({ ifindex: () => 0, netnsFd: () => 0 });
  const l = decodeLink(set);
  assert.deepEqual([l.name, l.mac, l.mtu, l.up, l.alias, l.owner], ['c0', '02:00:00:00:00:02', 1500, true, 'opentransit:acme', 'acme']);
});

test('addresses, neighbours, netns ops', () => {
  assert.deepEqual(addressReplaceOp({ dev: 'c0', cidr: '10.0.0.1/31' }).args, ['address', 'replace', '10.0.0.1/31', 'dev', 'c0']);
  const names = new Map([[3, 'c0'], [1, 'lo']]);
  const addrBody = (spec: Parameters<typeof addressReplaceOp>[0], idx: number) => addressReplaceOp(spec).nl!.build({ ifindex: () => idx, netnsFd: () => 0 });
  assert.deepEqual(decodeAddresses([addrBody({ dev: 'c0', cidr: '10.0.0.1/31' }, 3), addrBody({ dev: 'c0', cidr: '2001:db8::1/64' }, 3), addrBody({ dev: 'lo', cidr: '203.0.113.1/32', label: 'lo:ot' }, 1)], names), [
    { dev: 'c0', cidr: '10.0.0.1/31', family: 4, local: '10.0.0.1', prefixlen: 31, scope: 0 },
    { dev: 'c0', cidr: '2001:db8::1/64', family: 6, local: '2001:db8::1', prefixlen: 64, scope: 0 },
    { dev: 'lo', cidr: '203.0.113.1/32', family: 4, local: '203.0.113.1', prefixlen: 32, scope: 0, label: 'lo:ot' },
  ]);
  assert.deepEqual(neighbourReplaceOp({ dev: 'c0', address: '10.0.0.3', lladdr: '02:AA:00:00:00:01' }).args,
    ['neigh', 'replace', '10.0.0.3', 'lladdr', '02:aa:00:00:00:01', 'dev', 'c0', 'nud', 'permanent', 'proto', '247']);
  const neighBody = neighbourReplaceOp({ dev: 'c0', address: '10.0.0.3', lladdr: '02:AA:00:00:00:01' }).nl!.build({ ifindex: () => 3, netnsFd: () => 0 });
  assert.deepEqual(decodeNeighbours([neighBody], names), [
    { family: 4, dev: 'c0', address: '10.0.0.3', lladdr: '02:aa:00:00:00:01', state: ['PERMANENT'], permanent: true, protocol: RT_PROTO_OPENTRANSIT },
  ]);
  assert.deepEqual(netnsAddOp('ot-acme'), { args: ['netns', 'add', 'ot-acme'], tolerate: ['EEXIST'] });
  assert.throws(() => netnsAddOp('a b'), (e: unknown) => e instanceof KernelInputError && e.field === 'netns');
});

test('nftUpdateTableDocument: chains flushed and refilled, unchanged sets left alone, what went away deleted after every flush', () => {
  const spec: NftTableSpec = {
    family: 'inet', name: 't', version: 'v2',
    sets: [
      { name: 'same', type: 'ipv4_addr', flags: ['interval'], elements: [x.prefix('203.0.113.0', 24), '192.0.2.1'] },
      { name: 'other', type: 'ipv4_addr', elements: ['192.0.2.9'] },
      { name: 'new', type: 'ipv4_addr', elements: [] },
    ],
    chains: [
      { name: 'in', base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' }, rules: [{ expr: [x.match(x.payload('ip', 'saddr'), '==', x.setRef('same')), x.jump('web')] }] },
      { name: 'web', rules: [{ expr: [x.accept()] }] },
    ],
  };
  const current: NftTableState = {
    family: 'inet', name: 't', handle: 7, version: 'v1',
    // As nft lists them: other order, keys in another order.
    sets: [
      { name: 'same', type: 'ipv4_addr', flags: ['interval'], elements: ['192.0.2.1', { prefix: { len: 24, addr: '203.0.113.0' } }] },
      { name: 'other', type: 'ipv4_addr', flags: [], elements: ['192.0.2.8'] },
      { name: 'gone', type: 'ipv4_addr', flags: [], elements: [] },
    ],
    chains: [{ name: 'in', handle: 1, base: { type: 'filter', hook: 'input', prio: 0, policy: 'accept' } }, { name: 'old', handle: 2 }],
    rules: [],
  };
  const doc = nftUpdateTableDocument(spec, current)!;
  const shape = doc.nftables.map((c) => { const [verb, obj] = Object.entries(c)[0]!; const [kind, v] = Object.entries(obj as object)[0]!; return `${verb} ${kind} ${(v as { name?: string; chain?: string }).name ?? (v as { chain?: string }).chain ?? ''}`.trim(); });
  assert.deepEqual(shape, [
    'metainfo json_schema_version', 'add table t',
    'flush set other', 'add element other', 'add set new',
    'add chain in', 'flush chain in', 'add chain web', 'flush chain old', 'add chain ot_version', 'flush chain ot_version',
    'delete set gone', 'delete chain old',
    'add rule in', 'add rule web', 'add rule ot_version',
  ]);
  assert.deepEqual(doc.nftables[5], { add: { chain: { family: 'inet', table: 't', name: 'in', type: 'filter', hook: 'input', prio: 0, policy: 'drop' } } }, 'the policy is updated');
  // Without a version, the version chain is emptied and deleted.
  assert.ok(nftUpdateTableDocument({ ...spec, version: undefined }, current)!.nftables.some((c) => c.delete?.chain && (c.delete.chain as { name: string }).name === 'ot_version'));
  // What cannot change in place: null (the caller replaces the table whole).
  const base = spec.chains[0]!.base!;
  for (const changed of [
    { ...spec, sets: [{ ...spec.sets![0]!, type: 'ipv6_addr' }] },
    { ...spec, sets: [{ ...spec.sets![0]!, flags: [] }] },
    { ...spec, sets: [{ ...spec.sets![0]!, flags: ['interval', 'constant'] as const }] },
    { ...spec, chains: [{ ...spec.chains[0]!, base: { ...base, prio: 10 } }] },
    { ...spec, chains: [{ ...spec.chains[0]!, base: { ...base, hook: 'forward' as const } }] },
    { ...spec, chains: [{ ...spec.chains[0]!, base: undefined }] },
  ]) assert.equal(nftUpdateTableDocument(changed, current), null, JSON.stringify(changed.sets?.[0] ?? changed.chains[0]));
  // A constant set can stay when its elements do not change.
  const constant = { ...current, sets: [{ ...current.sets[0]!, flags: ['constant', 'interval'] }] };
  assert.ok(nftUpdateTableDocument({ ...spec, sets: [{ ...spec.sets![0]!, flags: ['interval', 'constant'] }] }, constant));
  assert.equal(nftUpdateTableDocument({ ...spec, sets: [{ ...spec.sets![0]!, flags: ['interval', 'constant'], elements: [] }] }, constant), null);
  assert.throws(() => nftUpdateTableDocument(spec, { ...current, name: 'u' }), /current is table inet u/);
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
