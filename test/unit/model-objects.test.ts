/** Validation of each object on its own: every field rule, defaults and normalisation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkShape,
  parseFirewallInput,
  parseGreTunnelInput,
  parsePrefixInput,
  parsePrefixPatch,
  parseRouteInput,
  parseSettingsInput,
  decodeSettings,
  pointerToField,
  tunnelAddresses,
  ValidationError,
  AccountCreate,
} from '../../src/model/index.js';

/** Asserts fn throws a ValidationError on `field` whose message matches `reason`. */
function invalid(fn: () => unknown, field: string | undefined, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.message, reason);
    if (field) assert.ok(err.message.startsWith(`${field}: `), `message names the field: ${err.message}`);
    return true;
  });
}

const tunnel = {
  name: 'acme-chi',
  customer_gre_endpoint: '198.51.100.2',
  edge_gre_endpoint: '192.0.2.10',
  interface_address: '10.200.0.0/31',
};

test('field paths: JSON pointers become dotted paths with indexes', () => {
  assert.equal(pointerToField('/gre_tunnels/0/mtu'), 'gre_tunnels[0].mtu');
  assert.equal(pointerToField('/firewall/rules/12/expression'), 'firewall.rules[12].expression');
  assert.equal(pointerToField('/a~1b/c~0d'), 'a/b.c~d');
  assert.equal(pointerToField('', 'base'), 'base');
  assert.equal(pointerToField('/x', 'routes[1]'), 'routes[1].x');
});

test('account names are slugs', () => {
  for (const ok of ['acme', 'a', 'acme-2', '0day', 'a'.repeat(63)]) assert.deepEqual(checkShape(AccountCreate, { name: ok }), { name: ok });
  for (const bad of ['Acme', '-acme', 'acme-', 'ac me', 'acme_co', '', 'a'.repeat(64), 'é']) {
    invalid(() => checkShape(AccountCreate, { name: bad }), 'name', /slug|at most 63/);
  }
  invalid(() => checkShape(AccountCreate, { name: 5 }), 'name', /must be a string, not an integer/);
  invalid(() => checkShape(AccountCreate, {}), 'name', /is required/);
  invalid(() => checkShape(AccountCreate, { name: 'a', extra: 1 }), 'extra', /is not a known field/);
  invalid(() => checkShape(AccountCreate, []), undefined, /the input must be an object, not a list/);
  invalid(() => checkShape(AccountCreate, null), undefined, /the input must be an object, not null/);
});

test('prefix: lengths per family, host bits, unroutable ranges, normalised, defaults', () => {
  assert.deepEqual(parsePrefixInput({ cidr: '203.0.113.0/24' }), { cidr: '203.0.113.0/24', advertised: false, description: '' });
  assert.equal(parsePrefixInput({ cidr: '2001:DB8::/32', advertised: true }).cidr, '2001:db8::/32');
  assert.equal(parsePrefixInput({ cidr: '198.51.100.7/32' }).cidr, '198.51.100.7/32');
  assert.equal(parsePrefixInput({ cidr: '10.0.0.0/8' }).cidr, '10.0.0.0/8');
  assert.equal(parsePrefixInput({ cidr: '2001:db8::1/128' }).cidr, '2001:db8::1/128');
  invalid(() => parsePrefixInput({ cidr: '12.0.0.0/7' }), 'cidr', /\/7 is outside the allowed IPv4 prefix lengths \/8–\/32/);
  invalid(() => parsePrefixInput({ cidr: '2000::/15' }), 'cidr', /\/15 is outside the allowed IPv6 prefix lengths \/16–\/128/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.1/24' }), 'cidr', /host bits set \(did you mean 203\.0\.113\.0\/24\?\)/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.0' }), 'cidr', /missing a prefix length/);
  invalid(() => parsePrefixInput({ cidr: 'acme' }), 'cidr', /not in CIDR notation/);
  invalid(() => parsePrefixInput({ cidr: '127.0.0.0/8' }), 'cidr', /loopback/);
  invalid(() => parsePrefixInput({ cidr: '224.0.0.0/8' }), 'cidr', /multicast/);
  invalid(() => parsePrefixInput({ cidr: '169.254.0.0/16' }), 'cidr', /link-local/);
  invalid(() => parsePrefixInput({ cidr: '240.0.0.0/8' }), 'cidr', /reserved/);
  invalid(() => parsePrefixInput({ cidr: 'fe80::/16' }), 'cidr', /link-local/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.0/24', advertised: 'yes' }), 'advertised', /must be a boolean/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.0/24', description: 'a\nb' }), 'description', /control characters/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.0/24', description: 'x'.repeat(501) }), 'description', /at most 500/);
  invalid(() => parsePrefixInput({ cidr: '203.0.113.0/24', id: 'nope' }), 'id', /32 lowercase hex/);
  invalid(() => parsePrefixInput({ cidr: 24 }, 'prefixes[3]'), 'prefixes[3].cidr', /must be a string/);
});

test('prefix patch: advertised and description only, at least one', () => {
  assert.deepEqual(parsePrefixPatch({ advertised: true }), { advertised: true });
  invalid(() => parsePrefixPatch({}), undefined, /at least one field/);
  invalid(() => parsePrefixPatch({ cidr: '203.0.113.0/24' }), 'cidr', /is not a known field/);
});

test('GRE tunnel: defaults filled in', () => {
  assert.deepEqual(parseGreTunnelInput(tunnel), {
    ...tunnel,
    ttl: 64,
    mtu: 1476,
    health_check: { enabled: true, type: 'reply', rate: 'mid' },
    description: '',
  });
  assert.deepEqual(parseGreTunnelInput({ ...tunnel, health_check: { rate: 'high' } }).health_check, {
    enabled: true,
    type: 'reply',
    rate: 'high',
  });
});

test('GRE tunnel name: ≤ 15 characters of a-z, 0-9 and "-"', () => {
  for (const ok of ['a', 'acme-chi', '0', 'a23456789012345']) assert.equal(parseGreTunnelInput({ ...tunnel, name: ok }).name, ok);
  for (const bad of ['a234567890123456', 'Acme', '-acme', 'acme_chi', 'acme.chi', 'acme/chi', '', 'ac me']) {
    invalid(() => parseGreTunnelInput({ ...tunnel, name: bad }), 'name', /1–15 characters|at most 15/);
  }
});

test('GRE tunnel customer endpoint: public unicast IPv4, documentation and benchmarking ranges accepted', () => {
  // 198.18.0.0/15 (RFC 2544, benchmarking): never routed on the internet, like documentation; a benchmark's
  // thousand customers need a router address each. Its neighbours on both sides are ordinary public addresses.
  for (const ok of ['198.51.100.2', '203.0.113.9', '192.0.2.77', '8.8.8.8', '198.18.0.1', '198.19.255.254', '198.17.255.255', '198.20.0.0']) {
    assert.equal(parseGreTunnelInput({ ...tunnel, customer_gre_endpoint: ok }).customer_gre_endpoint, ok);
  }
  const refused: Array<[string, RegExp]> = [
    ['10.0.0.1', /private-use/],
    ['192.168.1.1', /private-use/],
    ['172.20.0.1', /private-use/],
    ['127.0.0.1', /loopback/],
    ['224.0.0.1', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /broadcast/],
    ['0.0.0.0', /this network/],
    ['100.64.0.1', /shared/],
    ['169.254.0.1', /link-local/],
    ['2001:db8::1', /not an IPv4 address/],
    ['198.51.100.02', /not an IPv4 address/],
  ];
  for (const [bad, why] of refused) invalid(() => parseGreTunnelInput({ ...tunnel, customer_gre_endpoint: bad }), 'customer_gre_endpoint', why);
});

test('GRE tunnel edge endpoint must be IPv4 (pool membership is a cross-object rule)', () => {
  invalid(() => parseGreTunnelInput({ ...tunnel, edge_gre_endpoint: 'anycast' }), 'edge_gre_endpoint', /not an IPv4 address/);
});

test('GRE tunnel interface address: RFC 1918 /31 or /30, written address is the edge side', () => {
  assert.deepEqual(tunnelAddresses('10.200.0.0/31'), { subnet: '10.200.0.0/31', length: 31, edge: '10.200.0.0', customer: '10.200.0.1' });
  assert.deepEqual(tunnelAddresses('10.200.0.1/31'), { subnet: '10.200.0.0/31', length: 31, edge: '10.200.0.1', customer: '10.200.0.0' });
  assert.deepEqual(tunnelAddresses('10.200.0.1/30'), { subnet: '10.200.0.0/30', length: 30, edge: '10.200.0.1', customer: '10.200.0.2' });
  assert.deepEqual(tunnelAddresses('192.168.7.6/30'), { subnet: '192.168.7.4/30', length: 30, edge: '192.168.7.6', customer: '192.168.7.5' });
  assert.equal(parseGreTunnelInput({ ...tunnel, interface_address: '172.16.0.9/30' }).interface_address, '172.16.0.9/30');
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '10.200.0.0/30' }), 'interface_address', /network address of its \/30: write the edge side, e\.g\. 10\.200\.0\.1\/30/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '10.200.0.3/30' }), 'interface_address', /broadcast address/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '10.200.0.0/29' }), 'interface_address', /must be a \/31 or a \/30/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '10.200.0.0/32' }), 'interface_address', /must be a \/31 or a \/30/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '100.64.0.0/31' }), 'interface_address', /RFC 1918/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '198.51.100.0/31' }), 'interface_address', /RFC 1918/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: 'fd00::/127' }), 'interface_address', /must be IPv4/);
  invalid(() => parseGreTunnelInput({ ...tunnel, interface_address: '10.200.0.0' }), 'interface_address', /missing a prefix length/);
});

test('GRE tunnel ttl 1–255, mtu 576–1476, health check enums', () => {
  assert.equal(parseGreTunnelInput({ ...tunnel, ttl: 1 }).ttl, 1);
  assert.equal(parseGreTunnelInput({ ...tunnel, ttl: 255 }).ttl, 255);
  invalid(() => parseGreTunnelInput({ ...tunnel, ttl: 0 }), 'ttl', /at least 1/);
  invalid(() => parseGreTunnelInput({ ...tunnel, ttl: 256 }), 'ttl', /at most 255/);
  assert.equal(parseGreTunnelInput({ ...tunnel, mtu: 576 }).mtu, 576);
  invalid(() => parseGreTunnelInput({ ...tunnel, mtu: 575 }), 'mtu', /at least 576/);
  invalid(() => parseGreTunnelInput({ ...tunnel, mtu: 1477 }), 'mtu', /at most 1476/);
  invalid(() => parseGreTunnelInput({ ...tunnel, mtu: 1400.5 }), 'mtu', /must be an integer, not the number 1400\.5/);
  invalid(() => parseGreTunnelInput({ ...tunnel, mtu: '1400' }), 'mtu', /must be an integer, not a string/);
  invalid(() => parseGreTunnelInput({ ...tunnel, health_check: { type: 'ping' } }), 'health_check.type', /one of: request, reply/);
  invalid(() => parseGreTunnelInput({ ...tunnel, health_check: { rate: 'fast' } }), 'health_check.rate', /one of: low, mid, high/);
  invalid(() => parseGreTunnelInput({ ...tunnel, health_check: { enabled: 1 } }), 'health_check.enabled', /boolean/);
  invalid(() => parseGreTunnelInput({ ...tunnel, health_check: { direction: 'x' } }), 'health_check.direction', /not a known field/);
  invalid(() => parseGreTunnelInput({ ...tunnel, name: undefined }), 'name', /required|is missing/);
});

test('route: normalised prefix and nexthop; priority 0–2^31; weight 1–256 default 1', () => {
  assert.deepEqual(parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 100 }), {
    prefix: '203.0.113.0/24',
    nexthop: '10.200.0.1',
    priority: 100,
    weight: 1,
    description: '',
  });
  assert.equal(parseRouteInput({ prefix: '2001:DB8::/48', nexthop: '10.200.0.1', priority: 0 }).prefix, '2001:db8::/48');
  assert.equal(parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 2 ** 31 }).priority, 2 ** 31);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 2 ** 31 + 1 }), 'priority', /at most 2147483648/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: -1 }), 'priority', /at least 0/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1' }), 'priority', /required/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 1, weight: 0 }), 'weight', /at least 1/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: '10.200.0.1', priority: 1, weight: 257 }), 'weight', /at most 256/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.5/24', nexthop: '10.200.0.1', priority: 1 }), 'prefix', /host bits/);
  invalid(() => parseRouteInput({ prefix: '203.0.113.0/24', nexthop: 'fd00::1', priority: 1 }), 'nexthop', /not an IPv4 address/);
});

test('firewall: actions, defaults, expression errors carry the position and what was expected', () => {
  assert.deepEqual(
    parseFirewallInput({ default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 22' }] }),
    { default_action: 'block', rules: [{ action: 'allow', expression: 'tcp.dstport == 22', description: '', enabled: true }] },
  );
  assert.deepEqual(parseFirewallInput({ default_action: 'allow' }), { default_action: 'allow', rules: [] });
  invalid(() => parseFirewallInput({ default_action: 'drop' }), 'default_action', /one of: allow, block/);
  invalid(() => parseFirewallInput({ rules: [] }), 'default_action', /required/);
  invalid(() => parseFirewallInput({ default_action: 'allow', rules: [{ action: 'reject', expression: 'ip.src == 1.2.3.4' }] }), 'rules[0].action', /one of: allow, block/);
  invalid(() => parseFirewallInput({ default_action: 'allow', rules: [{ action: 'allow', expression: '' }] }), 'rules[0].expression', /must not be empty/);
  invalid(
    () => parseFirewallInput({ default_action: 'allow', rules: [{ action: 'allow', expression: 'tcp.dstport == 22' }, { action: 'block', expression: 'ip.dst == ' }] }, 'firewall'),
    'firewall.rules[1].expression',
    /invalid expression at 9: expected .*, found end of input/,
  );
  invalid(
    () => parseFirewallInput({ default_action: 'allow', rules: [{ action: 'allow', expression: 'ip.dts == 1.2.3.4' }] }),
    'rules[0].expression',
    /invalid expression at 0: expected/,
  );
});

test('settings: public IPv4 endpoints without duplicates, BGP (default AS 64512, no peers), blocklist', () => {
  assert.deepEqual(parseSettingsInput({ anycast_endpoints: ['192.0.2.10'] }), { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 64512, peers: [] }, blocklist: [] });
  assert.deepEqual(parseSettingsInput({ anycast_endpoints: [], blocklist: [{ cidr: '2001:DB8:1::/48' }] }).blocklist, [
    { cidr: '2001:db8:1::/48', description: '' },
  ]);
  invalid(() => parseSettingsInput({ anycast_endpoints: ['10.0.0.1'] }), 'anycast_endpoints[0]', /private-use/);
  // The benchmarking range is for customer routers only: an anycast endpoint is announced to the internet.
  invalid(() => parseSettingsInput({ anycast_endpoints: ['198.18.0.1'] }), 'anycast_endpoints[0]', /198\.18\.0\.0\/15, benchmarking \(RFC 2544\)/);
  invalid(() => parseSettingsInput({ anycast_endpoints: ['192.0.2.10', '192.0.2.10'] }), 'anycast_endpoints[1]', /listed twice/);
  invalid(() => parseSettingsInput({ anycast_endpoints: ['2001:db8::1'] }), 'anycast_endpoints[0]', /not an IPv4/);
  // The old field (never configurable) is accepted empty, for documents stored before `bgp`; anything else moved.
  assert.deepEqual(parseSettingsInput({ anycast_endpoints: [], bgp_peers: [] }).bgp, { asn: 64512, peers: [] });
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp_peers: [{ address: '192.0.2.1' }] }), 'bgp_peers', /moved to bgp\.peers/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { asn: 0 } }), 'bgp.asn', /at least 1/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { peers: [{ address: '127.0.0.1', asn: 1 }] } }), 'bgp.peers[0].address', /loopback/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { peers: {} } }), 'bgp.peers', /list/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], bgp: { routers: [] } }), 'bgp.routers', /not a known field/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], blocklist: [{ cidr: '0.0.0.0/0' }] }), 'blocklist[0].cidr', /every source/);
  invalid(() => parseSettingsInput({ anycast_endpoints: [], blocklist: [{ cidr: '198.51.100.1/24' }] }), 'blocklist[0].cidr', /host bits/);
  invalid(
    () => parseSettingsInput({ anycast_endpoints: [], blocklist: [{ cidr: '198.51.100.0/24' }, { cidr: '198.51.100.0/24' }] }),
    'blocklist[1].cidr',
    /listed twice/,
  );
  invalid(() => parseSettingsInput({}), 'anycast_endpoints', /required/);
});

test('stored settings decode; an absent key means the defaults (the lab\'s anycast endpoint)', () => {
  assert.deepEqual(decodeSettings(undefined), { anycast_endpoints: ['192.0.2.10'], bgp: { asn: 64512, peers: [] }, blocklist: [] });
  assert.deepEqual(decodeSettings(JSON.stringify({ anycast_endpoints: ['192.0.2.20'], bgp_peers: [], blocklist: [] })).anycast_endpoints, ['192.0.2.20']);
  invalid(() => decodeSettings('{'), undefined, /stored settings are not JSON/);
  invalid(() => decodeSettings('{"anycast_endpoints": "x"}'), 'anycast_endpoints', /must be a list/);
});
