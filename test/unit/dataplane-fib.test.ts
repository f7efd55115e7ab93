/**
 * Which shortcuts of the fast path the host's rules and routes allow (src/agent/reconcile/dataplane-fib.ts): the
 * kernel's rules and ours allow all four; a foreign rule turns off the ones whose lookups it might match, and only
 * those; a local route over a key, an odd route type, a missing kernel rule each turn off what depends on them.
 * (test/privileged/fast-path-shortcuts.test.ts checks the same against a real host netns and real packets.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fibDirectVerdict, keyIndex, ruleExcludes, type FibDirectInput } from '../../src/agent/reconcile/dataplane-fib.js';
import { cidrOf, cidrsOverlap, formatIp, parseCidr } from '../../src/model/ip.js';
import type { Route } from '../../src/kernel/routes.js';
import type { RuleDetail } from '../../src/kernel/rules.js';

const F = 0x4f54;
const T = 4242;

function rule(r: Partial<RuleDetail> & { priority: number }): RuleDetail {
  return { family: 4, action: 'lookup', protocol: 0, tos: 0, flags: 0, suppressPrefixlen: 0xffffffff, otherAttributes: [], ...r };
}

const standard = (): RuleDetail[] => [
  rule({ priority: 0, table: 255, protocol: 2 }),
  rule({ priority: 1000, table: T, fwmark: F, fwmask: 0xffffffff, protocol: 247 }),
  rule({ priority: 32766, table: 254, protocol: 2 }),
  rule({ priority: 32767, table: 253, protocol: 2 }),
  rule({ family: 6, priority: 0, table: 255, protocol: 2 }),
  rule({ family: 6, priority: 1000, table: T, fwmark: F, fwmask: 0xffffffff, protocol: 247 }),
  rule({ family: 6, priority: 32766, table: 254, protocol: 2 }),
];

function route(dst: string, table: number, type: Route['type'] = 'unicast'): Route {
  return { family: dst.includes(':') ? 6 : 4, dst, table, type, metric: 0, protocol: 2, scope: 0, nexthops: [] };
}

const routes = (): Route[] => [
  route('100.64.0.0/31', 254),
  route('0.0.0.0/0', 254),
  route('203.0.113.0/24', T),
  route('127.0.0.0/8', 255, 'local'),
  route('100.64.0.0/32', 255, 'local'),
  route('192.0.2.10/32', 255, 'local'),
  route('169.254.0.1/32', 255, 'local'),
  route('::1/128', 255, 'local'),
  route('ff00::/8', 255, 'multicast'),
];

function input(o: Partial<FibDirectInput> = {}): FibDirectInput {
  return {
    fwmark: F,
    table: T,
    rulePriority: 1000,
    uplink: 'up0',
    isCustomerVeth: (d) => /^ot[0-9a-f]{12}$/.test(d),
    rules: standard(),
    routes: routes(),
    prefixes: ['203.0.113.0/24', '2001:db8:100::/64', '10.200.0.0/31'],
    peers: ['198.51.100.2/32'],
    ...o,
  };
}

const on = (o: Partial<FibDirectInput> = {}) => {
  const v = fibDirectVerdict(input(o));
  return ['in', 'gre', 'all', 'src'].filter((n) => v.off[n] === undefined);
};

test('the kernel\'s rules and ours, plain routes: every shortcut, and ot_host_local is the local table', () => {
  const v = fibDirectVerdict(input());
  assert.deepEqual(v.off, {});
  assert.equal(v.flags, 2 | 4 | 8 | 16);
  assert.deepEqual([...v.local.keys()], ['127.0.0.0/8', '100.64.0.0/32', '192.0.2.10/32', '169.254.0.1/32', '::1/128', 'ff00::/8']);
  assert.equal(v.local.get('169.254.0.1/32'), 2, 'RTN_LOCAL');
});

test('a foreign rule turns off the shortcuts whose lookups it may match, and only those', () => {
  const plus = (r: RuleDetail) => ({ rules: [...standard(), r] });
  // The full-path bench's no-GRE rule: from one customer veth, to one customer address → main.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 254, iif: 'otb86a74ad0ad0', to: '203.0.113.101/32' }))), ['in', 'gre', 'src']);
  // No selector that excludes anything: only the source shortcut (rule-independent) stays.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, from: '198.51.100.0/24' }))), ['src']);
  // `not`: the same selectors match everything else.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, iif: 'eth9', flags: 2 }))), ['src']);
  // iif of the uplink: customer traffic from it may match.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, iif: 'up0' }))), ['gre', 'src']);
  // Another mark: neither our mark (in) nor none (gre) matches it.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, fwmark: 1, fwmask: 0xffffffff }))), ['in', 'gre', 'src']);
  // oif: never matches an input lookup.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, oif: 'up0' }))), ['in', 'gre', 'src']);
  // A `to` over a customer router: gre off; over nothing of ours (IPv6 elsewhere): in stays.
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, to: '198.51.100.0/24' }))), ['in', 'src']);
  assert.deepEqual(on(plus(rule({ family: 6, priority: 50, table: 100, to: '2001:db8:200::/48' }))), ['in', 'gre', 'src']);
  // A `to` with host bits (the kernel keeps them; fib_rule_match masks them).
  assert.deepEqual(on(plus(rule({ priority: 50, table: 100, to: '203.0.113.7/16', iif: 'up0' }))), ['gre', 'src']);
});

test('our rule or a kernel rule changed by hand: no rule shortcut', () => {
  const rules = standard();
  // `ip rule del pref 0; ip rule add pref 100 lookup local` (a common trick): the local rule is not at 0.
  rules[0] = rule({ priority: 100, table: 255 });
  assert.deepEqual(on({ rules }), ['src']);
  // Our rule with an attribute the decoder does not know (say, ip_proto): it is not ours.
  const odd = standard();
  odd[1] = { ...odd[1]!, otherAttributes: [22] };
  assert.deepEqual(on({ rules: odd }), ['src']);
  // suppress_prefixlen on main (`ip rule add … suppress_prefixlength 0`): not the plain rule.
  const suppressed = standard();
  suppressed[2] = { ...suppressed[2]!, suppressPrefixlen: 0 };
  assert.deepEqual(on({ rules: suppressed }), ['src']);
  assert.match(fibDirectVerdict(input({ rules: rules })).off['in']!, /lacks the plain rule local/);
});

test('the local table over a key: the lookups to it walk the rules', () => {
  // An address of a customer prefix on the host: the stack delivers it locally.
  assert.deepEqual(on({ routes: [...routes(), route('203.0.113.100/32', 255, 'local')] }), ['gre', 'src']);
  // A customer router's address on the host.
  assert.deepEqual(on({ routes: [...routes(), route('198.51.100.2/32', 255, 'local')] }), ['in', 'src']);
});

test('a route type other than unicast or an error outside the local table: the reverse lookup stays', () => {
  assert.deepEqual(on({ routes: [...routes(), route('198.18.0.255/32', 254, 'broadcast')] }), ['in', 'gre', 'all']);
  assert.deepEqual(on({ routes: [...routes(), route('198.18.0.0/24', 100, 'local')] }), ['in', 'gre', 'all']);
  for (const type of ['blackhole', 'unreachable', 'prohibit', 'throw'] as const) assert.deepEqual(on({ routes: [...routes(), route('198.18.0.0/24', 254, type)] }), ['in', 'gre', 'all', 'src']);
  // IPv6 has no source check: its odd routes do not matter.
  assert.deepEqual(on({ routes: [...routes(), route('2001:db8:9::/64', 254, 'anycast')] }), ['in', 'gre', 'all', 'src']);
});

test('fwmark 0 disables the rule shortcuts; a rule excludes a class only by a selector it really has', () => {
  assert.deepEqual(on({ fwmark: 0 }), ['src']);
  const c = { iif: (d: string) => d === 'up0', dsts: () => false, mark: F };
  assert.equal(ruleExcludes(rule({ priority: 5, table: 1 }), c), false);
  assert.equal(ruleExcludes(rule({ priority: 5, table: 1, fwmark: F, fwmask: 0xff00 }), c), false, 'F & 0xff00 matches');
  assert.equal(ruleExcludes(rule({ priority: 5, table: 1, fwmark: 0x1000, fwmask: 0xff00 }), c), true);
});

test('the key index finds an overlapping key exactly when a plain scan does', () => {
  // Random IPv4 prefixes in a small space (so that they overlap often), both ways round.
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const prefix = () => {
    const len = 8 + rnd(25);
    const value = BigInt((10 << 24) | (rnd(4) << 16) | (rnd(256) << 8) | rnd(256));
    const c = cidrOf({ family: 4, value }, len);
    return `${formatIp({ family: 4, value: c.network })}/${len}`;
  };
  for (let round = 0; round < 50; round++) {
    const keys = Array.from({ length: 1 + rnd(40) }, prefix);
    const index = keyIndex(keys);
    for (let q = 0; q < 40; q++) {
      const probe = prefix();
      const scan = keys.filter((k) => cidrsOverlap(parseCidr(k), parseCidr(probe)));
      const hit = index.overlapping(parseCidr(probe));
      if (scan.length === 0) assert.equal(hit, undefined, `${probe} in ${keys.join(' ')}`);
      else assert.ok(hit !== undefined && scan.includes(hit), `${probe}: ${hit} not among ${scan.join(' ')}`);
    }
  }
});
