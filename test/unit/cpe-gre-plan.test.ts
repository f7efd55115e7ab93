/**
 * planCustomerRouterGre (src/kernel/bpf/cpe.ts) without root: defaults, peers of /31 and /30, the return path's
 * rules and routes (priorities, ECMP groups), and every refusal naming its field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CPE_PIN_BASE, planCustomerRouterGre, type CustomerRouterGreSpec } from '../../src/kernel/bpf/cpe.js';
import { KernelInputError } from '../../src/kernel/exec.js';

const spec = (over: Partial<CustomerRouterGreSpec> = {}): CustomerRouterGreSpec => ({
  netns: 'otl-demo-acme-router',
  node: 'cpe',
  uplink: 'uplink',
  tunnels: [{ name: 'gre0', local: '198.51.100.2', remote: '192.0.2.10', interfaceAddress: '10.200.0.1/31' }],
  prefixes: ['203.0.113.0/24'],
  ...over,
});

test('defaults: return through the tunnel, the /31 peer, TTL 64, DF, MTU 1476, table 200, rules 1000/1001', () => {
  const p = planCustomerRouterGre(spec());
  assert.equal(p.base, CPE_PIN_BASE);
  assert.equal(p.returnPath, 'tunnel');
  assert.deepEqual(p.tunnels, [
    { name: 'gre0', local: '198.51.100.2', remote: '192.0.2.10', interfaceAddress: '10.200.0.1/31', peer: '10.200.0.0', ttl: 64, df: true, mtu: 1476, priority: 100, weight: 1 },
  ]);
  assert.deepEqual(p.rules, [
    { priority: 1000, to: '203.0.113.0/24', table: 254 },
    { priority: 1001, from: '203.0.113.0/24', table: 200 },
  ]);
  assert.deepEqual(p.routes, [{ dst: 'default', table: 200, metric: 100, nexthops: [{ via: '10.200.0.0', dev: 'gre0', onlink: true, weight: 1 }] }]);
});

test('peers: /31 either way, /30 the other host, longer subnets need one given', () => {
  const peerOf = (interfaceAddress: string, peer?: string) =>
    planCustomerRouterGre(spec({ tunnels: [{ name: 'gre0', local: '198.51.100.2', remote: '192.0.2.10', interfaceAddress, ...(peer ? { peer } : {}) }] })).tunnels[0]!.peer;
  assert.equal(peerOf('10.200.0.0/31'), '10.200.0.1');
  assert.equal(peerOf('10.200.0.1/30'), '10.200.0.2');
  assert.equal(peerOf('10.200.0.2/30'), '10.200.0.1');
  assert.equal(peerOf('10.200.0.9/29', '10.200.0.14'), '10.200.0.14');
  assert.throws(() => peerOf('10.200.0.9/29'), (e: unknown) => e instanceof KernelInputError && e.field === 'tunnels[0].peer');
});

test('return routes: equal priorities share one multipath route, others get their own metric; DSR has none', () => {
  const t = (name: string, remote: string, i: number, priority?: number) => ({ name, local: '198.51.100.2', remote, interfaceAddress: `10.200.${i}.1/31`, ...(priority ? { priority } : {}) });
  const p = planCustomerRouterGre(spec({ tunnels: [t('gre0', '192.0.2.10', 0), t('gre1', '192.0.2.11', 1), t('gre2', '192.0.2.12', 2, 50)], prefixes: ['203.0.113.0/24', '198.18.0.0/15'] }));
  assert.deepEqual(p.routes.map((r) => [r.metric, r.nexthops!.map((n) => n.dev)]), [[50, ['gre2']], [100, ['gre0', 'gre1']]]);
  assert.deepEqual(p.rules.map((r) => `${r.priority} ${r.to ?? ''}${r.from ?? ''} ${r.table}`), [
    '1000 203.0.113.0/24 254', '1000 198.18.0.0/15 254', '1001 203.0.113.0/24 200', '1001 198.18.0.0/15 200',
  ]);
  const dsr = planCustomerRouterGre(spec({ returnPath: 'direct', prefixes: [] }));
  assert.deepEqual([dsr.routes, dsr.rules], [[], []]);
});

test('IPv6 prefixes return through the IPv4 tunnels: the same rules, and IPv6 default routes via a link-local gateway per priority', () => {
  const t = (name: string, remote: string, i: number, priority?: number) => ({ name, local: '198.51.100.2', remote, interfaceAddress: `10.200.${i}.1/31`, ...(priority ? { priority } : {}) });
  const p = planCustomerRouterGre(spec({ tunnels: [t('gre0', '192.0.2.10', 0), t('gre1', '192.0.2.11', 1), t('gre2', '192.0.2.12', 2, 50)], prefixes: ['203.0.113.0/24', '2001:db8:100::/48'] }));
  assert.deepEqual(p.routes.map((r) => [r.family ?? 4, r.metric, r.nexthops!.map((n) => `${n.via} ${n.dev} ${n.weight}`)]), [
    [4, 50, ['10.200.2.0 gre2 1']],
    [4, 100, ['10.200.0.0 gre0 1', '10.200.1.0 gre1 1']],
    [6, 50, ['fe80::1 gre2 1']],
    [6, 100, ['fe80::1 gre0 1', 'fe80::1 gre1 1']],
  ]);
  assert.deepEqual(p.rules.map((r) => `${r.priority} ${r.to ?? ''}${r.from ?? ''} ${r.table}`), [
    '1000 203.0.113.0/24 254', '1000 2001:db8:100::/48 254', '1001 203.0.113.0/24 200', '1001 2001:db8:100::/48 200',
  ]);
  // Without IPv6 prefixes there are no IPv6 routes (the plan is what it was before IPv6).
  assert.ok(planCustomerRouterGre(spec()).routes.every((r) => r.family === undefined));
});

test('refusals name the field and the reason', () => {
  const tun = { name: 'gre0', local: '198.51.100.2', remote: '192.0.2.10', interfaceAddress: '10.200.0.1/31' };
  const cases: [Partial<CustomerRouterGreSpec>, string, RegExp][] = [
    [{ netns: 'bad name' }, 'netns', /\[A-Za-z0-9_.-\]/],
    [{ node: 'a.b' }, 'node', /bpffs/],
    [{ uplink: 'way-too-long-interface' }, 'uplink', /1–15/],
    [{ tunnels: [] }, 'tunnels', /at least one/],
    [{ tunnels: [{ ...tun, local: '2001:db8::1' }] }, 'tunnels[0].local', /not an IPv4 address/],
    [{ tunnels: [{ ...tun, remote: '198.51.100.2' }] }, 'tunnels[0].remote', /must differ from local/],
    [{ tunnels: [{ ...tun, interfaceAddress: '10.200.0.1' }] }, 'tunnels[0].interfaceAddress', /missing a prefix length/],
    [{ tunnels: [{ ...tun, interfaceAddress: '10.200.0.1/32' }] }, 'tunnels[0].interfaceAddress', /1\.\.31/],
    [{ tunnels: [{ ...tun, interfaceAddress: '10.200.0.0/30' }] }, 'tunnels[0].interfaceAddress', /network or broadcast/],
    [{ tunnels: [{ ...tun, peer: '10.200.9.9' }] }, 'tunnels[0].peer', /not in the interface subnet/],
    [{ tunnels: [{ ...tun, ttl: 0 }] }, 'tunnels[0].ttl', /1\.\.255/],
    [{ tunnels: [{ ...tun, mtu: 9000000 }] }, 'tunnels[0].mtu', /576\.\.65511/],
    [{ tunnels: [{ ...tun, weight: 0 }] }, 'tunnels[0].weight', /1\.\.256/],
    [{ tunnels: [{ ...tun, key: 5 } as never] }, 'tunnels[0].key', /unknown field/],
    [{ tunnels: [{ ...tun, name: 'uplink' }] }, 'tunnels[0].name', /must differ from the uplink/],
    [{ tunnels: [tun, { ...tun, interfaceAddress: '10.200.1.1/31' }] }, 'tunnels[1].name', /repeats tunnels\[0\]\.name/],
    [{ tunnels: [tun, { ...tun, name: 'gre1', interfaceAddress: '10.200.1.1/31' }] }, 'tunnels[1].remote', /could not be told apart/],
    [{ tunnels: [tun, { ...tun, name: 'gre1', remote: '192.0.2.11', interfaceAddress: '10.200.0.0/31' }] }, 'tunnels[1].interfaceAddress', /overlaps/],
    [{ returnPath: 'both' as never }, 'returnPath', /'tunnel' or 'direct'/],
    [{ prefixes: [] }, 'prefixes', /when returnPath is 'tunnel'/],
    [{ prefixes: ['203.0.113.1/24'] }, 'prefixes[0]', /host bits set/],
    [{ prefixes: ['2001:db8::1/64'] }, 'prefixes[0]', /host bits set/],
    [{ table: 254 }, 'table', /kernel's own/],
    [{ rulePriority: 32765 }, 'rulePriority', /1\.\.32764/],
  ];
  for (const [over, field, reason] of cases) {
    assert.throws(
      () => planCustomerRouterGre(spec(over)),
      (e: unknown) => e instanceof KernelInputError && e.field === field && reason.test(e.reason),
      `${JSON.stringify(over)} → ${field}`,
    );
  }
});
