/**
 * The conversions the agent uses to fill the data plane's maps (no kernel needed): CIDR ↔ LPM key, IPv4 → __be32,
 * MAC → bytes, tunnel MACs, per-CPU rate limits, pin layout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrOfLpmKey, ipv4Be32, lpmKey, macBytes, perCpuRateLimit, pinLayout, tunnelMac } from '../../src/kernel/bpf/dataplane.js';
import { KernelInputError } from '../../src/kernel/exec.js';
import { LpmKey, OT_TUNNEL_MAC_0, OT_TUNNEL_MAC_1 } from '../../src/kernel/bpf/abi.generated.js';

const fails = (fn: () => unknown, field: string) =>
  assert.throws(fn, (e: unknown) => e instanceof KernelInputError && e.field === field, field);

test('IPv4 prefixes become IPv4-mapped LPM keys with 96 + n bits; IPv6 stays as is', () => {
  const k = lpmKey('203.0.113.0/24');
  assert.equal(k.prefixlen, 120);
  assert.equal(k.addr.toString('hex'), '00000000000000000000ffffcb007100');
  assert.equal(LpmKey.encode(k).toString('hex'), '78000000' + '00000000000000000000ffffcb007100');
  const k6 = lpmKey('2001:db8:100::/48');
  assert.equal(k6.prefixlen, 48);
  assert.equal(k6.addr.toString('hex'), '20010db8010000000000000000000000');
  assert.deepEqual(lpmKey('198.51.100.7'), lpmKey('198.51.100.7/32'), 'an address is a host prefix');
  assert.equal(lpmKey('2001:db8::1').prefixlen, 128);
  assert.equal(lpmKey('0.0.0.0/0').prefixlen, 96, 'IPv4 default route covers only IPv4');
});

test('host bits are cleared, and keys read back as the prefix', () => {
  assert.deepEqual(lpmKey('203.0.113.77/24'), lpmKey('203.0.113.0/24'));
  for (const c of ['203.0.113.0/24', '198.51.100.7/32', '0.0.0.0/0', '2001:db8:100::/48', '::/0', '2001:db8::1/128'])
    assert.equal(cidrOfLpmKey(lpmKey(c)), c);
});

test('bad input names the field', () => {
  fails(() => lpmKey('203.0.113.0/33', 'blocklist[3]'), 'blocklist[3]');
  fails(() => lpmKey('nonsense'), 'prefix');
  fails(() => ipv4Be32('2001:db8::1', 'customer_gre_endpoint'), 'customer_gre_endpoint');
  fails(() => macBytes('02:00:00:00:00'), 'mac');
  fails(() => tunnelMac(-1), 'tunnel id');
  fails(() => perCpuRateLimit(0, 10, 4), 'rate');
  fails(() => pinLayout('a.b'), 'node');
  fails(() => pinLayout(''), 'node');
});

test('IPv4 addresses as __be32 numbers, MACs as bytes, tunnel MACs', () => {
  assert.equal(ipv4Be32('192.0.2.1'), 0xc0000201);
  assert.equal(macBytes('02:AA:bb:cc:dd:ee').toString('hex'), '02aabbccddee');
  const m = tunnelMac(0x01020304);
  assert.equal(m, '02:4f:01:02:03:04');
  assert.deepEqual([...macBytes(m).subarray(0, 2)], [OT_TUNNEL_MAC_0, OT_TUNNEL_MAC_1]);
});

test('per-CPU rate limits divide the total, rounding up, never to zero', () => {
  assert.deepEqual(perCpuRateLimit(1000, 100, 4), { rate_pps: 250, burst: 25 });
  assert.deepEqual(perCpuRateLimit(10, 3, 4), { rate_pps: 3, burst: 1 });
});

test('pin layout: one directory per node, maps and progs under it', () => {
  assert.deepEqual(pinLayout('edge-1'), {
    root: '/sys/fs/bpf/opentransit/edge-1',
    maps: '/sys/fs/bpf/opentransit/edge-1/maps',
    progs: '/sys/fs/bpf/opentransit/edge-1/progs',
  });
});
