/**
 * The IPv4 index of the blocklist (src/kernel/bpf/blocklist4.ts) says exactly what the trie says: for random
 * blocklists and addresses, "blocked" iff some entry covers the address (the trie's answer for presence), except
 * in /16s the index hands back to the trie ('trie'), which only happens past the level-2 budget.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bl4, OT_BL4_L1_WORDS } from '../../src/kernel/bpf/abi.generated.js';
import { blocklistV4Index, blocklistV4Lookup } from '../../src/kernel/bpf/blocklist4.js';
import { lpmKey } from '../../src/kernel/bpf/dataplane.js';

const ip4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const covers = (net: number, len: number, addr: number) => len === 0 || (addr ^ net) >>> (32 - len) === 0;

function stateOf(index: ReturnType<typeof blocklistV4Index>, s16: number): number {
  return Number((index.l1[s16 >> 5]! >> BigInt(2 * (s16 & 31))) & 3n);
}

test('the index answers like a trie of the same prefixes (random lists clustered in a few /16s)', () => {
  // Prefixes and probes are drawn from a few /16s so that hits, partial /24s and covered /16s all occur.
  const addr = fc.tuple(fc.constantFrom(0x0a000000, 0x0a010000, 0xc6120000, 0xcb007100), fc.integer({ min: 0, max: 0xffff })).map(([hi, lo]) => (hi | lo) >>> 0);
  const prefix = fc.tuple(addr, fc.integer({ min: 8, max: 32 })).map(([a, len]) => [len === 0 ? 0 : (a & (0xffffffff << (32 - len))) >>> 0, len] as const);
  fc.assert(
    fc.property(fc.array(prefix, { maxLength: 40 }), fc.array(addr, { minLength: 50, maxLength: 50 }), (list, probes) => {
      const index = blocklistV4Index(list.map(([n, l]) => lpmKey(`${ip4(n)}/${l}`)));
      assert.equal(index.l1.length, OT_BL4_L1_WORDS);
      for (const a of [...probes, ...list.map(([n]) => n)]) {
        const expected = list.some(([n, l]) => covers(n, l, a));
        assert.equal(blocklistV4Lookup(index, a), expected, `${ip4(a)} with ${list.map(([n, l]) => `${ip4(n)}/${l}`).join(' ')}`);
      }
    }),
    { numRuns: 300 },
  );
});

test('levels: a short prefix covers its /16s; longer ones make /24 bitmaps; nothing else is set', () => {
  const index = blocklistV4Index([lpmKey('10.0.0.0/15'), lpmKey('198.51.100.66/32'), lpmKey('198.51.100.128/25'), lpmKey('203.0.112.0/23')]);
  assert.equal(stateOf(index, 0x0a00), Bl4.COVERED);
  assert.equal(stateOf(index, 0x0a01), Bl4.COVERED);
  assert.equal(stateOf(index, 0x0a02), Bl4.NONE);
  assert.equal(stateOf(index, 0xc633), Bl4.HOSTS);
  assert.equal(stateOf(index, 0xcb00), Bl4.HOSTS);
  assert.deepEqual([...index.l2.keys()].sort((a, b) => a - b), [0xc63364, 0xcb0070, 0xcb0071]);
  const b = index.l2.get(0xc63364)!;
  assert.equal(b[66 >> 3]! & (1 << (66 & 7)), 1 << (66 & 7));
  assert.equal(b.subarray(16).every((x) => x === 0xff), true, '.128/25 sets the upper half');
  assert.equal(b.subarray(0, 16).filter((x) => x !== 0).length, 1, 'and .66 one bit of the lower half');
  assert.equal(index.l2.get(0xcb0070)!.every((x) => x === 0xff), true);
  // Host bits in a key are ignored, as the trie ignores them.
  assert.equal(blocklistV4Lookup(blocklistV4Index([{ prefixlen: 96 + 24, addr: lpmKey('192.0.2.77/32').addr }]), 0xc0000201), true);
});

test('IPv6 keys: ignored, unless they cover IPv4-mapped space (::/0, ::/80 — then every IPv4 source is blocked)', () => {
  const none = blocklistV4Index([lpmKey('2001:db8::/32'), lpmKey('::ffff:0:0/128')]);
  // ::ffff:0:0/128 is the IPv4-mapped 0.0.0.0/32
  assert.equal(blocklistV4Lookup(none, 0), true);
  assert.equal(blocklistV4Lookup(none, 0xc0000201), false);
  for (const cidr of ['::/0', '::/80', '::ffff:0:0/96']) {
    const all = blocklistV4Index([lpmKey(cidr)]);
    assert.equal(all.l1.every((w) => w === 0x5555555555555555n), true, `${cidr} covers every /16`);
  }
  for (const cidr of ['::/96', '::1:0:0/96', '8000::/1']) {
    assert.equal(blocklistV4Index([lpmKey(cidr)]).l1.every((w) => w === 0n), true, `${cidr} covers no IPv4 address`);
  }
});

test('past the level-2 budget the biggest /16s go to the trie; the rest stay exact', () => {
  const list = [lpmKey('10.1.0.0/17'), lpmKey('10.2.3.4/32'), lpmKey('10.3.3.0/24'), lpmKey('10.3.4.0/24')];
  const index = blocklistV4Index(list, 3);
  assert.equal(stateOf(index, 0x0a01), Bl4.TRIE, '128 bitmaps do not fit in 3');
  assert.equal(stateOf(index, 0x0a02), Bl4.HOSTS);
  assert.equal(stateOf(index, 0x0a03), Bl4.HOSTS);
  assert.equal(index.l2.size, 3);
  assert.equal(blocklistV4Lookup(index, 0x0a010001), 'trie');
  assert.equal(blocklistV4Lookup(index, 0x0a020304), true);
  assert.equal(blocklistV4Lookup(index, 0x0a020305), false);
  assert.equal(blocklistV4Lookup(index, 0x0a030401), true);
});
