/**
 * The IPv4 index of the blocklist (ot_bl4_l1, ot_bl4_l2), derived from ot_blocklist's entries: xdp_edge.c looks up
 * IPv4 sources here instead of in the trie (one inlined array load, at most one hash lookup, instead of a ~140 ns
 * walk of a 10k-entry trie; the comment above ot_blocklisted4 there says why and how).
 *
 *   level 1: 2 bits (Bl4) per /16: NONE, COVERED (an entry of length ≤ 16 covers it), HOSTS (level 2 decides),
 *            TRIE (level 2 would be too big: the trie decides)
 *   level 2: /24 → 32-byte bitmap of its blocked addresses (entries /17–/32 of HOSTS /16s)
 *
 * The index is a pure function of the trie's keys (blocklistV4Index), so whoever writes ot_blocklist calls
 * syncBlocklistV4Index() afterwards and both say the same thing.
 */
import { Bl4, OT_BL4_L1_WORDS, OT_BL4_L2_MAX, OT_LPM_V4_OFFSET, type Bl4Hosts, type LpmKey } from './abi.generated.js';
import type { TypedMap } from './index.js';

export interface BlocklistV4Index {
  /** OT_BL4_L1_WORDS words; /16 n is bits 2(n % 32)..2(n % 32)+1 of word n >> 5. */
  l1: bigint[];
  /** /24 (address >>> 8) → 32-byte bitmap. */
  l2: Map<number, Buffer>;
}

const V4_MAPPED = Buffer.from('00000000000000000000ffff', 'hex');

/** The IPv4 prefix a trie key stands for, as [network, length], or undefined when it covers no IPv4 address. */
function v4Prefix(k: LpmKey): [number, number] | undefined {
  const addr = Buffer.from(k.addr);
  if (k.prefixlen >= OT_LPM_V4_OFFSET) {
    if (!addr.subarray(0, 12).equals(V4_MAPPED)) return undefined;
    const len = Math.min(32, k.prefixlen - OT_LPM_V4_OFFSET);
    const net = len === 0 ? 0 : (addr.readUInt32BE(12) & (0xffffffff << (32 - len))) >>> 0;
    return [net, len];
  }
  // An IPv6 entry shorter than /96 (::/0, ::/80…) covers every IPv4-mapped address if its bits match ::ffff:0:0/96.
  const full = k.prefixlen >> 3;
  if (!addr.subarray(0, full).equals(V4_MAPPED.subarray(0, full))) return undefined;
  const rest = k.prefixlen & 7;
  if (rest && ((addr[full]! ^ V4_MAPPED[full]!) & (0xff << (8 - rest)) & 0xff) !== 0) return undefined;
  return [0, 0];
}

function setBits(bitmap: Buffer, from: number, count: number): void {
  for (let h = from; h < from + count; h++) bitmap[h >> 3]! |= 1 << (h & 7);
}

/**
 * The index for a blocklist (its trie keys; IPv6 keys are ignored unless they cover IPv4-mapped space). /16s whose
 * level-2 bitmaps do not fit in `l2Max` go to the trie, the biggest first (ties: the lowest /16), so the result is
 * deterministic.
 */
export function blocklistV4Index(keys: Iterable<LpmKey>, l2Max: number = OT_BL4_L2_MAX): BlocklistV4Index {
  const covered = new Uint8Array(65536);
  const perSlash16 = new Map<number, Map<number, Buffer>>();
  for (const k of keys) {
    const p = v4Prefix(k);
    if (!p) continue;
    const [net, len] = p;
    if (len <= 16) {
      const first = net >>> 16;
      covered.fill(1, first, first + 2 ** (16 - len));
      continue;
    }
    const s16 = net >>> 16;
    let nets = perSlash16.get(s16);
    if (!nets) perSlash16.set(s16, (nets = new Map()));
    const first24 = net >>> 8;
    const n24 = len <= 24 ? 2 ** (24 - len) : 1;
    for (let s24 = first24; s24 < first24 + n24; s24++) {
      let bitmap = nets.get(s24);
      if (!bitmap) nets.set(s24, (bitmap = Buffer.alloc(32)));
      if (len <= 24) bitmap.fill(0xff);
      else setBits(bitmap, net & 0xff, 2 ** (32 - len));
    }
  }
  const hosts = [...perSlash16].filter(([s16]) => !covered[s16]);
  // Keep the /16s needing the fewest bitmaps within the budget; the rest fall back to the trie.
  hosts.sort((a, b) => a[1].size - b[1].size || a[0] - b[0]);
  const state = new Uint8Array(65536);
  for (let s16 = 0; s16 < 65536; s16++) if (covered[s16]) state[s16] = Bl4.COVERED;
  const l2 = new Map<number, Buffer>();
  for (const [s16, nets] of hosts) {
    if (l2.size + nets.size > l2Max) {
      state[s16] = Bl4.TRIE;
      continue;
    }
    state[s16] = Bl4.HOSTS;
    for (const [s24, bitmap] of nets) l2.set(s24, bitmap);
  }
  const l1: bigint[] = new Array<bigint>(OT_BL4_L1_WORDS).fill(0n);
  for (let s16 = 0; s16 < 65536; s16++) if (state[s16]) l1[s16 >> 5] = l1[s16 >> 5]! | (BigInt(state[s16]!) << BigInt(2 * (s16 & 31)));
  return { l1, l2 };
}

/** What an index says about one IPv4 address (a number, 192.0.2.1 → 0xc0000201); 'trie' when the trie decides. */
export function blocklistV4Lookup(index: BlocklistV4Index, addr: number): boolean | 'trie' {
  const s16 = addr >>> 16;
  const state = Number((index.l1[s16 >> 5]! >> BigInt(2 * (s16 & 31))) & 3n);
  if (state === Bl4.NONE) return false;
  if (state === Bl4.COVERED) return true;
  if (state === Bl4.TRIE) return 'trie';
  const bitmap = index.l2.get(addr >>> 8);
  return bitmap !== undefined && (bitmap[(addr >>> 3) & 31]! & (1 << (addr & 7))) !== 0;
}

export interface BlocklistV4Maps {
  blocklist: TypedMap<LpmKey, number>;
  bl4L1: TypedMap<number, bigint>;
  bl4L2: TypedMap<number, Bl4Hosts>;
}

/**
 * Makes ot_bl4_l1 and ot_bl4_l2 equal to the index of what ot_blocklist holds now (one dump of each map; only
 * what differs is written). Order matters, so no packet sees a level-1 state without its level 2: bitmaps are
 * written first, then level 1, then the bitmaps no /16 points to any more are deleted. Appends one line per write
 * to `changes`.
 */
export function syncBlocklistV4Index(maps: BlocklistV4Maps, changes: string[] = [], l2Max?: number): void {
  const want = blocklistV4Index(maps.blocklist.entries().map(([k]) => k), l2Max);
  const haveL2 = new Map<number, Buffer>();
  for (const [k, v] of maps.bl4L2.entries()) haveL2.set(k, Buffer.from(v.bits));
  const writes: [number, Bl4Hosts][] = [];
  for (const [s24, bitmap] of want.l2) {
    const have = haveL2.get(s24);
    if (!have || !have.equals(bitmap)) writes.push([s24, { bits: bitmap }]);
  }
  if (writes.length) {
    maps.bl4L2.setMany(writes);
    changes.push(`bpf: write ${writes.length} ${maps.bl4L2.spec.name} bitmaps`);
  }
  let words = 0;
  const haveL1 = new Map(maps.bl4L1.entries());
  for (let i = 0; i < OT_BL4_L1_WORDS; i++) {
    if (haveL1.get(i) === want.l1[i]) continue;
    maps.bl4L1.set(i, want.l1[i]!);
    words++;
  }
  if (words) changes.push(`bpf: write ${words} ${maps.bl4L1.spec.name} words`);
  let deleted = 0;
  for (const s24 of haveL2.keys()) {
    if (want.l2.has(s24)) continue;
    maps.bl4L2.delete(s24);
    deleted++;
  }
  if (deleted) changes.push(`bpf: delete ${deleted} ${maps.bl4L2.spec.name} bitmaps`);
}
