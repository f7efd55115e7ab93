/**
 * The IPv4 index of the blocklist (src/kernel/bpf/blocklist4.ts) says exactly what the trie says: for random
 * blocklists, budgets and addresses, "blocked" iff some entry covers the address (the trie's answer for presence),
 * except in /16s the index hands back to the trie ('trie'), which only happens past both budgets. Pages stay with
 * their /16 across derivations, and a page still in use is never given to another /16.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bl4, BL4_NAMES, OT_BL4_SLASH16S } from '../../src/kernel/bpf/abi.generated.js';
import { blocklistV4Index, blocklistV4Lookup, type BlocklistV4Index } from '../../src/kernel/bpf/blocklist4.js';
import { lpmKey } from '../../src/kernel/bpf/dataplane.js';

const ip4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
const covers = (net: number, len: number, addr: number) => len === 0 || (addr ^ net) >>> (32 - len) === 0;
const state = (index: BlocklistV4Index, s16: number) => BL4_NAMES[(index.slash16[s16]! & 0xff) as Bl4];
const page = (index: BlocklistV4Index, s16: number) => index.slash16[s16]! >>> 8;

test('the index answers like a trie of the same prefixes (random lists clustered in a few /16s, random budgets)', () => {
  // Prefixes and probes are drawn from a few /16s so that hits, partial /24s and covered /16s all occur.
  const addr = fc.tuple(fc.constantFrom(0x0a000000, 0x0a010000, 0xc6120000, 0xcb007100), fc.integer({ min: 0, max: 0xffff })).map(([hi, lo]) => (hi | lo) >>> 0);
  const prefix = fc.tuple(addr, fc.integer({ min: 8, max: 32 })).map(([a, len]) => [(a & (0xffffffff << (32 - len))) >>> 0, len] as const);
  fc.assert(
    fc.property(
      fc.array(prefix, { maxLength: 40 }),
      fc.array(addr, { minLength: 50, maxLength: 50 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 20 }),
      (list, probes, pages, l2Max) => {
        const index = blocklistV4Index(list.map(([n, l]) => lpmKey(`${ip4(n)}/${l}`)), { pages, l2Max });
        assert.equal(index.slash16.length, OT_BL4_SLASH16S);
        assert.ok(index.pages.size <= pages && index.l2.size <= l2Max, 'within the budgets');
        for (const a of [...probes, ...list.map(([n]) => n)]) {
          const got = blocklistV4Lookup(index, a);
          if (got === 'trie') continue;
          assert.equal(got, list.some(([n, l]) => covers(n, l, a)), `${ip4(a)} with ${list.map(([n, l]) => `${ip4(n)}/${l}`).join(' ')}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('states: a short prefix covers its /16s; longer ones get a page, else /24 bitmaps; nothing else is set', () => {
  const index = blocklistV4Index([lpmKey('10.0.0.0/15'), lpmKey('198.51.100.66/32'), lpmKey('198.51.100.128/25'), lpmKey('203.0.112.0/23')]);
  assert.deepEqual([0x0a00, 0x0a01, 0x0a02, 0xc633, 0xcb00].map((s16) => state(index, s16)), ['COVERED', 'COVERED', 'NONE', 'PAGE', 'PAGE']);
  assert.equal(index.slash16.filter((v) => v !== 0).length, 4);
  // Pages go to the /16 with the most /24s first: 203.0 (2) gets page 0, 198.51 (1) page 1.
  assert.deepEqual([page(index, 0xcb00), page(index, 0xc633)], [0, 1]);
  const p = index.pages.get(1)!;
  const bit = (low16: number) => (p[low16 >> 3]! >> (low16 & 7)) & 1;
  assert.equal(bit((100 << 8) | 66), 1);
  assert.equal(bit((100 << 8) | 65), 0);
  for (const h of [128, 200, 255]) assert.equal(bit((100 << 8) | h), 1, `.100.${h} in the /25`);
  assert.equal(p.filter((x) => x !== 0).length, 1 + 16, 'one bit for .66, 16 bytes for the /25, nothing else');
  assert.equal(index.l2.size, 0);
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
    assert.equal(all.slash16.every((v) => v === Bl4.COVERED), true, `${cidr} covers every /16`);
  }
  for (const cidr of ['::/96', '::1:0:0/96', '8000::/1']) {
    assert.equal(blocklistV4Index([lpmKey(cidr)]).slash16.every((v) => v === 0), true, `${cidr} covers no IPv4 address`);
  }
});

test('budgets: pages to the densest /16s, then level 2 for the smallest, the rest to the trie', () => {
  const list = [lpmKey('10.1.0.0/17'), lpmKey('10.2.3.4/32'), lpmKey('10.3.3.0/24'), lpmKey('10.3.4.0/24'), lpmKey('10.4.0.0/23')];
  const index = blocklistV4Index(list, { pages: 1, l2Max: 3 });
  assert.deepEqual([0x0a01, 0x0a02, 0x0a03, 0x0a04].map((s16) => state(index, s16)), ['PAGE', 'HOSTS', 'HOSTS', 'TRIE']);
  assert.equal(index.l2.size, 3);
  assert.equal(blocklistV4Lookup(index, 0x0a010001), true);
  assert.equal(blocklistV4Lookup(index, 0x0a018001), false);
  assert.equal(blocklistV4Lookup(index, 0x0a020304), true);
  assert.equal(blocklistV4Lookup(index, 0x0a020305), false);
  assert.equal(blocklistV4Lookup(index, 0x0a030401), true);
  assert.equal(blocklistV4Lookup(index, 0x0a040001), 'trie');
});

test('pages stay with their /16; a page in use now is not given to another /16 (it would be rewritten under it)', () => {
  const first = blocklistV4Index([lpmKey('10.1.0.0/24'), lpmKey('10.2.0.0/23')], { pages: 2 });
  assert.deepEqual([page(first, 0x0a02), page(first, 0x0a01)], [0, 1], 'the denser /16 first');
  // 10.1 leaves, 10.3 (denser than 10.2) arrives: 10.2 keeps page 0; page 1 is still 10.1's in the kernel until
  // the new states are written, so 10.3 gets no page now (level 2 instead), and page 1 again on the next sync.
  const next = blocklistV4Index([lpmKey('10.2.0.0/23'), lpmKey('10.3.0.0/22')], { pages: 2, current: first.slash16 });
  assert.deepEqual([state(next, 0x0a01), state(next, 0x0a02), page(next, 0x0a02), state(next, 0x0a03)], ['NONE', 'PAGE', 0, 'HOSTS']);
  const after = blocklistV4Index([lpmKey('10.2.0.0/23'), lpmKey('10.3.0.0/22')], { pages: 2, current: next.slash16 });
  assert.deepEqual([page(after, 0x0a02), state(after, 0x0a03), page(after, 0x0a03)], [0, 'PAGE', 1]);
  assert.equal(after.l2.size, 0);
});
