import { test } from 'node:test';
import assert from 'node:assert/strict';
import { customerDesired } from '../../src/agent/desired/customer.js';
import { hostDesired, mssFor } from '../../src/agent/desired/host.js';
import {
  NODE_DEFAULTS,
  customerNetns,
  hostVethMac,
  hostVethName,
  tunnelLinkLocal,
  tunnelMac,
  tunnelNumbers,
  type NodeConfig,
} from '../../src/agent/desired/node.js';
import type { AccountDocument } from '../../src/model/schemas.js';

const node: NodeConfig = { ...NODE_DEFAULTS, nodeId: 'edge-1', hostNetns: 'host', uplink: 'eth0' };
const ID = '0123456789abcdef0123456789abcdef';

function tunnel(id: string, name: string, iface: string, mtu = 1476) {
  return {
    id,
    name,
    customer_gre_endpoint: '198.51.100.2',
    edge_gre_endpoint: '192.0.2.10',
    interface_address: iface,
    ttl: 64,
    mtu,
    health_check: { enabled: true, type: 'reply' as const, rate: 'mid' as const },
    description: '',
  };
}

function account(over: Partial<AccountDocument> = {}): AccountDocument {
  return {
    id: ID,
    name: 'acme',
    created_at: '2026-11-22T00:00:00Z',
    prefixes: [{ id: 'p'.repeat(32), cidr: '203.0.113.0/24', advertised: true, description: '' }],
    gre_tunnels: [tunnel('a'.repeat(32), 'acme-chi', '10.200.0.0/31'), tunnel('b'.repeat(32), 'acme-ams', '10.200.0.2/31', 1400)],
    routes: [],
    firewall: { default_action: 'block', rules: [] },
    ...over,
  };
}

const route = (prefix: string, nexthop: string, priority: number, weight = 1) => ({
  id: `${prefix}${nexthop}${priority}`.replace(/[^0-9a-f]/g, '').padEnd(32, '0').slice(0, 32),
  prefix,
  nexthop,
  priority,
  weight,
  description: '',
});

test('kernel names fit the kernel and are derived from ids only', () => {
  assert.equal(customerNetns(node, ID), 'ot-0123456789ab');
  assert.equal(hostVethName(ID), 'ot0123456789ab');
  assert.ok(hostVethName(ID).length <= 15);
  assert.equal(hostVethMac(node, ID), hostVethMac({ ...node }, ID), 'deterministic');
  assert.notEqual(hostVethMac(node, ID), hostVethMac({ ...node, nodeId: 'edge-2' }, ID), 'per node');
  assert.match(hostVethMac(node, ID), /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered unicast');
});

test('tunnel numbers are stable under reordering and distinct within an account', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => i.toString(16).padStart(32, '0'));
  const a = tunnelNumbers(ids);
  const b = tunnelNumbers([...ids].reverse());
  assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
  assert.equal(new Set(a.values()).size, ids.length);
  assert.match(tunnelMac(0x01020304), /^02:4f:01:02:03:04$/);
});

test('equal priorities make one multipath route with weights; lower priority is a separate metric', () => {
  const d = customerDesired(node, account({
    routes: [
      route('203.0.113.0/24', '10.200.0.1', 100, 3),
      route('203.0.113.0/24', '10.200.0.3', 100, 1),
      route('203.0.113.0/24', '10.200.0.3', 200),
    ],
  }));
  const customerRoutes = d.routes.filter((r) => r.dst === '203.0.113.0/24');
  assert.deepEqual(customerRoutes.map((r) => [r.metric, r.mtu, r.nexthops!.map((h) => [h.via, h.weight, h.onlink])]), [
    [100, 1400, [['10.200.0.1', 3, true], ['10.200.0.3', 1, true]]],
    [200, 1400, [['10.200.0.3', 1, true]]],
  ]);
  assert.deepEqual(d.problems, []);
  // One permanent neighbour per tunnel peer and family, whose MAC encodes the tunnel.
  assert.deepEqual(d.neighbours.filter((n) => !n.address.includes(':')).map((n) => n.address), ['10.200.0.1', '10.200.0.3']);
  assert.ok(d.neighbours.every((n) => n.lladdr.startsWith('02:4f:')));
  assert.deepEqual(d.addresses.map((a) => a.cidr), ['169.254.0.2/32', 'fe80::2/64', '10.200.0.0/31', '10.200.0.2/31']);
  assert.deepEqual(d.hostRoutes.map((r) => [r.dst, r.table, r.nexthops![0]!.dev]), [['203.0.113.0/24', 4242, 'ot0123456789ab']]);
});

test('the tunnel link-local address is the modified EUI-64 of the tunnel MAC', () => {
  assert.equal(tunnelLinkLocal('02:4f:a1:b2:c3:d4'), 'fe80::4f:a1ff:feb2:c3d4');
  assert.equal(tunnelLinkLocal(tunnelMac(0x01020304)), 'fe80::4f:1ff:fe02:304');
  assert.equal(tunnelLinkLocal(tunnelMac(0)), 'fe80::4f:ff:fe00:0');
  assert.throws(() => tunnelLinkLocal('02:4f:zz:00:00:00'), /not a MAC address/);
});

test('IPv6 routes go over the IPv4 tunnels via each tunnel\'s link-local next hop, with priorities, weights and MTU as IPv4', () => {
  const d = customerDesired(node, account({
    prefixes: [
      { id: 'p'.repeat(32), cidr: '203.0.113.0/24', advertised: true, description: '' },
      { id: 'q'.repeat(32), cidr: '2001:db8:100::/48', advertised: true, description: '' },
    ],
    routes: [
      route('2001:db8:100::/48', '10.200.0.1', 100, 3),
      route('2001:db8:100::/48', '10.200.0.3', 100, 1),
      route('2001:db8:100::/48', '10.200.0.3', 200),
      route('203.0.113.0/24', '10.200.0.1', 100),
    ],
  }));
  assert.deepEqual(d.problems, []);
  const [chi, ams] = d.tunnels;
  assert.equal(chi!.peer6, tunnelLinkLocal(chi!.mac));
  assert.notEqual(chi!.peer6, ams!.peer6);
  const v6 = d.routes.filter((r) => r.dst === '2001:db8:100::/48');
  assert.deepEqual(v6.map((r) => [r.metric, r.mtu, r.nexthops!.map((h) => [h.via, h.dev, h.weight, h.onlink ?? false])]), [
    [100, 1400, [[chi!.peer6, 'edge0', 3, false], [ams!.peer6, 'edge0', 1, false]]],
    [200, 1400, [[ams!.peer6, 'edge0', 1, false]]],
  ]);
  // IPv4 routes are unchanged by the IPv6 ones.
  assert.deepEqual(d.routes.filter((r) => r.dst === '203.0.113.0/24').map((r) => r.nexthops!.map((h) => h.via)), [['10.200.0.1']]);
  // Each tunnel's IPv4 peer and IPv6 link-local both resolve (permanently) to the tunnel MAC.
  assert.deepEqual(
    d.neighbours.map((n) => [n.dev, n.address, n.lladdr]),
    [
      ['edge0', '10.200.0.1', chi!.mac],
      ['edge0', chi!.peer6, chi!.mac],
      ['edge0', '10.200.0.3', ams!.mac],
      ['edge0', ams!.peer6, ams!.mac],
    ],
  );
  assert.equal(d.sysctls['net.ipv6.fib_multipath_hash_policy'], 1);
  assert.equal(d.sysctls['net.ipv6.conf.all.forwarding'], 1);
  // Host side: the IPv6 prefix goes into the veth via the customer side's fixed link-local address, with the
  // smallest tunnel MTU (so the host, not the customer netns, sends Packet Too Big from a global address).
  assert.deepEqual(
    d.hostRoutes.map((r) => [r.dst, r.table, r.nexthops![0]!.via, r.nexthops![0]!.dev, r.mtu]),
    [
      ['203.0.113.0/24', 4242, '169.254.0.2', 'ot0123456789ab', undefined],
      ['2001:db8:100::/48', 4242, 'fe80::2', 'ot0123456789ab', 1400],
    ],
  );
});

test('what the kernel cannot do is reported as a problem, not silently dropped', () => {
  const d = customerDesired(node, account({
    prefixes: [
      { id: 'p'.repeat(32), cidr: '203.0.113.0/24', advertised: true, description: '' },
      { id: 'q'.repeat(32), cidr: '2001:db8::/48', advertised: true, description: '' },
    ],
    routes: [route('2001:db8::/48', '10.200.0.1', 1), route('203.0.113.0/24', '10.9.9.9', 1)],
    firewall: {
      default_action: 'allow',
      rules: [{ id: 'r'.repeat(32), action: 'block', enabled: true, description: '', expression: Array.from({ length: 9 }, (_, i) => `(tcp.dstport == ${i} or udp.dstport == ${i})`).join(' and ') }],
    },
  }));
  assert.equal(d.problems.length, 2, d.problems.join('\n'));
  assert.match(d.problems.join('\n'), /no tunnel has that customer-side address/);
  assert.match(d.problems.join('\n'), /^firewall rule r+: expression expands/m);
});

test('the firewall: enabled rules in order, the default last, a version that follows the content', () => {
  const rules = [
    { id: '1'.repeat(32), action: 'allow' as const, enabled: true, description: '', expression: 'tcp.dstport == 21' },
    { id: '2'.repeat(32), action: 'block' as const, enabled: false, description: '', expression: 'udp.dstport == 53' },
  ];
  const d = customerDesired(node, account({ firewall: { default_action: 'block', rules } }));
  const chain = d.firewall.chains.find((c) => c.name === 'firewall')!;
  assert.deepEqual(chain.rules.map((r) => r.comment), [`rule:${'1'.repeat(32)}`, 'default']);
  assert.deepEqual(chain.rules.at(-1)!.expr, [{ counter: null }, { drop: null }]);
  const same = customerDesired(node, account({ firewall: { default_action: 'block', rules } }));
  assert.equal(same.firewall.version, d.firewall.version);
  const other = customerDesired(node, account({ firewall: { default_action: 'allow', rules } }));
  assert.notEqual(other.firewall.version, d.firewall.version);
});

test('host: prefixes of every account are marked; MSS clamps are grouped by value', () => {
  const a = account();
  const b = account({
    id: 'f'.repeat(32),
    prefixes: [{ id: 'x'.repeat(32), cidr: '198.18.0.0/24', advertised: true, description: '' }],
    gre_tunnels: [tunnel('c'.repeat(32), 'b-1', '10.201.0.0/31')],
  });
  const h = hostDesired(node, [a, b]);
  assert.deepEqual(h.nft.sets!.find((s) => s.name === 'customer4')!.elements, [
    { prefix: { addr: '198.18.0.0', len: 24 } },
    { prefix: { addr: '203.0.113.0', len: 24 } },
  ]);
  assert.equal(mssFor(1400, 4), 1360);
  assert.deepEqual(h.nft.sets!.filter((s) => s.name.startsWith('mss')).map((s) => s.name), ['mss4_1360', 'mss4_1436']);
  assert.deepEqual(h.rules.map((r) => [r.family, r.fwmark, r.table]), [[4, 0x4f54, 4242], [6, 0x4f54, 4242]]);
  assert.deepEqual(h.routes.map((r) => [r.family, r.type, r.table]), [[4, 'unreachable', 4242], [6, 'unreachable', 4242]]);
});
