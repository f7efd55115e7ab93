import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addressAt,
  cidrContains,
  cidrContainsIp,
  cidrsOverlap,
  compareCidr,
  formatCidr,
  formatIp,
  IpFormatError,
  isPublicUnicast,
  isRfc1918,
  normaliseCidr,
  normaliseIp,
  parseAddressWithLength,
  parseCidr,
  parseIp,
  parseIpv4,
  specialRangeOf,
  tryParseIp,
  unroutableRangeOverlapping,
  whyNotPublicUnicast,
} from '../../src/model/ip.js';

test('IPv4 parses strictly and formats canonically', () => {
  assert.deepEqual(parseIp('192.0.2.10'), { family: 4, value: 0xc000020an });
  assert.equal(formatIp(parseIp('0.0.0.0')), '0.0.0.0');
  assert.equal(formatIp(parseIp('255.255.255.255')), '255.255.255.255');
  for (const bad of ['010.0.0.1', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-1', '', 'a.b.c.d', '1..2.3']) {
    assert.equal(tryParseIp(bad), undefined, bad);
    assert.throws(() => parseIp(bad), IpFormatError, bad);
  }
});

test('IPv6 parses every spelling and formats per RFC 5952', () => {
  const cases: Array<[string, string]> = [
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'], // the longest zero run wins
    ['1:0:0:1:0:0:1:1', '1::1:0:0:1:1'], // first run on a tie
    ['1:0:1:1:1:1:1:1', '1:0:1:1:1:1:1:1'], // a single zero group stays
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:201', '::ffff:192.0.2.1'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
  ];
  for (const [input, canonical] of cases) assert.equal(normaliseIp(input), canonical, input);
  for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', 'fe80::1%eth0', '12345::', ':::', 'g::1', '::1.2.3']) {
    assert.equal(tryParseIp(bad), undefined, bad);
  }
});

test('format(parse(x)) round-trips for every address (property)', () => {
  fc.assert(
    fc.property(fc.ipV4(), (text) => {
      assert.equal(normaliseIp(text), text);
    }),
  );
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      const a = parseIp(text);
      assert.deepEqual(parseIp(formatIp(a)), a);
    }),
  );
});

test('parseIpv4 refuses IPv6', () => {
  assert.throws(() => parseIpv4('2001:db8::1'), /not an IPv4 address/);
});

test('CIDR: lengths, host bits, normalisation', () => {
  assert.equal(normaliseCidr('203.0.113.0/24'), '203.0.113.0/24');
  assert.equal(normaliseCidr('2001:DB8:0::/32'), '2001:db8::/32');
  assert.throws(() => parseCidr('203.0.113.1/24'), /host bits set \(did you mean 203\.0\.113\.0\/24\?\)/);
  assert.throws(() => parseCidr('2001:db8::1/32'), /did you mean 2001:db8::\/32/);
  assert.throws(() => parseCidr('203.0.113.0'), /missing a prefix length/);
  assert.throws(() => parseCidr('203.0.113.0/33'), /at most 32/);
  assert.throws(() => parseCidr('2001:db8::/129'), /at most 128/);
  assert.throws(() => parseCidr('203.0.113.0/024'), /bad prefix length/);
  assert.throws(() => parseCidr('203.0.113.0/-1'), /bad prefix length/);
  assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, network: 0n, length: 0 });
  assert.deepEqual(parseAddressWithLength('10.200.0.1/30'), { address: parseIp('10.200.0.1'), length: 30 });
});

test('contains and overlaps', () => {
  const c24 = parseCidr('203.0.113.0/24');
  const c25 = parseCidr('203.0.113.128/25');
  const other = parseCidr('198.51.100.0/24');
  assert.ok(cidrContains(c24, c25));
  assert.ok(!cidrContains(c25, c24));
  assert.ok(cidrContains(c24, c24));
  assert.ok(cidrsOverlap(c24, c25) && cidrsOverlap(c25, c24));
  assert.ok(!cidrsOverlap(c24, other));
  assert.ok(!cidrsOverlap(parseCidr('0.0.0.0/0'), parseCidr('::/0')), 'families never overlap');
  assert.ok(cidrContainsIp(c24, parseIp('203.0.113.255')));
  assert.ok(!cidrContainsIp(c24, parseIp('203.0.114.0')));
  assert.equal(formatIp(addressAt(c25, 1)), '203.0.113.129');
  assert.ok(compareCidr(c24, c25) < 0 && compareCidr(parseCidr('::/0'), c24) > 0);
});

test('overlap is symmetric and matches containment (property)', () => {
  const cidr = fc
    .tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }))
    .map(([v, len]) => formatCidr({ family: 4, network: BigInt(v) & (((1n << 32n) - 1n) ^ ((1n << BigInt(32 - len)) - 1n)), length: len }));
  fc.assert(
    fc.property(cidr, cidr, (a, b) => {
      const ca = parseCidr(a);
      const cb = parseCidr(b);
      assert.equal(cidrsOverlap(ca, cb), cidrsOverlap(cb, ca));
      // Overlap ⇔ some address lies in both: check the network addresses of each.
      const shared =
        cidrContainsIp(ca, { family: 4, value: cb.network }) || cidrContainsIp(cb, { family: 4, value: ca.network });
      assert.equal(cidrsOverlap(ca, cb), shared);
    }),
  );
});

test('public unicast: private, loopback, multicast, reserved… refused; documentation only on request', () => {
  const notPublic = [
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '127.0.0.1',
    '0.1.2.3',
    '100.64.0.1',
    '169.254.1.1',
    '224.0.0.5',
    '239.1.1.1',
    '240.0.0.1',
    '255.255.255.255',
    '198.18.0.1',
    '192.0.0.8',
    '192.88.99.1',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'ff02::1',
    '::ffff:8.8.8.8',
    '2002::1',
    '4000::1',
  ];
  for (const text of notPublic) assert.ok(!isPublicUnicast(parseIp(text), { allowDocumentation: true }), text);
  for (const text of ['8.8.8.8', '1.1.1.1', '2606:4700::1111']) assert.ok(isPublicUnicast(parseIp(text)), text);
  for (const text of ['192.0.2.10', '198.51.100.2', '203.0.113.7', '2001:db8::1']) {
    assert.ok(!isPublicUnicast(parseIp(text)), `${text} is documentation`);
    assert.ok(isPublicUnicast(parseIp(text), { allowDocumentation: true }), `${text} allowed as documentation`);
  }
  assert.match(whyNotPublicUnicast(parseIp('10.1.2.3'))!, /10\.0\.0\.0\/8, private-use \(RFC 1918\)/);
  // Benchmarking (198.18.0.0/15) only when asked for, and independently of documentation.
  assert.match(whyNotPublicUnicast(parseIp('198.19.0.1'), { allowDocumentation: true })!, /198\.18\.0\.0\/15, benchmarking \(RFC 2544\)/);
  assert.ok(isPublicUnicast(parseIp('198.19.0.1'), { allowBenchmarking: true }));
  assert.ok(!isPublicUnicast(parseIp('198.51.100.2'), { allowBenchmarking: true }), 'documentation still needs allowDocumentation');
  assert.ok(!isPublicUnicast(parseIp('10.1.2.3'), { allowBenchmarking: true, allowDocumentation: true }));
  assert.equal(specialRangeOf(parseIp('255.255.255.255'))?.kind, 'broadcast', 'the most specific range wins');
});

test('unroutable ranges and RFC 1918', () => {
  assert.equal(unroutableRangeOverlapping(parseCidr('127.0.0.0/8'))?.kind, 'loopback');
  assert.equal(unroutableRangeOverlapping(parseCidr('224.0.0.0/8'))?.kind, 'multicast');
  assert.equal(unroutableRangeOverlapping(parseCidr('ff00::/16'))?.kind, 'multicast');
  assert.equal(unroutableRangeOverlapping(parseCidr('203.0.113.0/24')), undefined);
  assert.equal(unroutableRangeOverlapping(parseCidr('10.0.0.0/8')), undefined);
  assert.ok(isRfc1918(parseCidr('10.200.0.0/31')));
  assert.ok(isRfc1918(parseCidr('172.31.255.252/30')));
  assert.ok(!isRfc1918(parseCidr('172.32.0.0/30')));
  assert.ok(!isRfc1918(parseCidr('100.64.0.0/30')));
});
