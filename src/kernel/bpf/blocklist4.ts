/**
 * The IPv4 index of the blocklist (ot_bl4_slash16, ot_bl4_pages, ot_bl4_l2), derived from ot_blocklist's entries:
 * xdp_edge.c looks up IPv4 sources here instead of in the trie (an inlined array load or two, instead of a ~140 ns
 * walk of a 10k-entry trie; the comment above ot_blocklisted4 there says why and how).
 *
 *   ot_bl4_slash16  per /16: Bl4 state | page << 8 — NONE, COVERED (an entry of length ≤ 16 covers it), PAGE (its
 *                   64k-bit bitmap in ot_bl4_pages), HOSTS (its /24 bitmaps in ot_bl4_l2), TRIE (the trie decides)
 *   ot_bl4_pages    page → 8 KiB bitmap of one /16; the /16s with the most bitmaps get the pages
 *   ot_bl4_l2       /24 → 32-byte bitmap, for the /16s without a page, within OT_BL4_L2_MAX
 *
 * The index is a function of the trie's keys and of which /16 holds which page now (pages stay where they are, so
 * a page is never rewritten while another /16 still points to it). Whoever writes ot_blocklist calls
 * syncBlocklistV4Index() afterwards, and the index says what the trie says.
 */
import { Bl4, OT_BL4_L2_MAX, OT_BL4_PAGES, OT_BL4_SLASH16S, OT_LPM_V4_OFFSET, type Bl4Hosts, type Bl4Page, type LpmKey } from './abi.generated.js';
import { TypedMap } from './index.js';
import { native } from './native.js';

export interface BlocklistV4Index {
  /** Per /16 (address >>> 16): Bl4 state | page << 8. */
  slash16: Uint32Array;
  /** Page → 8192-byte bitmap of its /16 (bit address & 0xffff). */
  pages: Map<number, Buffer>;
  /** /24 (address >>> 8) → 32-byte bitmap. */
  l2: Map<number, Buffer>;
}

export interface BlocklistV4Options {
  /** Pages there are (default OT_BL4_PAGES). */
  pages?: number;
  /** Bitmaps ot_bl4_l2 may hold (default OT_BL4_L2_MAX). */
  l2Max?: number;
  /** ot_bl4_slash16 as it is now: /16s keep their pages, and pages in use now are not handed to another /16. */
  current?: ArrayLike<number>;
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

const stateOf = (v: number) => v & 0xff;
const pageOf = (v: number) => v >>> 8;

/**
 * The index for a blocklist (its trie keys; IPv6 keys are ignored unless they cover IPv4-mapped space). Pages: a
 * /16 keeps the page it has; free pages (not in use in `current`) go to the /16s with the most /24 bitmaps first.
 * The remaining /16s' bitmaps go to level 2, the smallest first, within `l2Max`; the rest to the trie. Ties go to
 * the lowest /16, so the result is deterministic.
 */
export function blocklistV4Index(keys: Iterable<LpmKey>, o: BlocklistV4Options = {}): BlocklistV4Index {
  const pageCount = o.pages ?? OT_BL4_PAGES;
  const l2Max = o.l2Max ?? OT_BL4_L2_MAX;
  const covered = new Uint8Array(OT_BL4_SLASH16S);
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
  const slash16 = new Uint32Array(OT_BL4_SLASH16S);
  for (let s16 = 0; s16 < OT_BL4_SLASH16S; s16++) if (covered[s16]) slash16[s16] = Bl4.COVERED;
  const candidates = [...perSlash16].filter(([s16]) => !covered[s16]);

  const pages = new Map<number, Buffer>();
  const givePage = (s16: number, page: number, nets: Map<number, Buffer>) => {
    const bitmap = Buffer.alloc(8192);
    for (const [s24, b] of nets) b.copy(bitmap, (s24 & 0xff) << 5);
    pages.set(page, bitmap);
    slash16[s16] = Bl4.PAGE | (page << 8);
  };
  const inUse = new Set<number>();
  const current = o.current;
  if (current) for (let s16 = 0; s16 < current.length; s16++) if (stateOf(current[s16]!) === Bl4.PAGE) inUse.add(pageOf(current[s16]!));
  const rest: [number, Map<number, Buffer>][] = [];
  for (const [s16, nets] of candidates) {
    const now = current?.[s16];
    if (now !== undefined && stateOf(now) === Bl4.PAGE && pageOf(now) < pageCount) givePage(s16, pageOf(now), nets);
    else rest.push([s16, nets]);
  }
  const free: number[] = [];
  for (let page = 0; page < pageCount; page++) if (!inUse.has(page)) free.push(page);
  rest.sort((a, b) => b[1].size - a[1].size || a[0] - b[0]);
  const hosts: [number, Map<number, Buffer>][] = [];
  for (const [s16, nets] of rest) {
    const page = free.shift();
    if (page !== undefined) givePage(s16, page, nets);
    else hosts.push([s16, nets]);
  }
  // Level 2: the /16s needing the fewest bitmaps first; the rest fall back to the trie.
  hosts.sort((a, b) => a[1].size - b[1].size || a[0] - b[0]);
  const l2 = new Map<number, Buffer>();
  for (const [s16, nets] of hosts) {
    if (l2.size + nets.size > l2Max) {
      slash16[s16] = Bl4.TRIE;
      continue;
    }
    slash16[s16] = Bl4.HOSTS;
    for (const [s24, bitmap] of nets) l2.set(s24, bitmap);
  }
  return { slash16, pages, l2 };
}

/** What an index says about one IPv4 address (a number, 192.0.2.1 → 0xc0000201); 'trie' when the trie decides. */
export function blocklistV4Lookup(index: BlocklistV4Index, addr: number): boolean | 'trie' {
  const v = index.slash16[addr >>> 16]!;
  switch (stateOf(v)) {
    case Bl4.NONE:
      return false;
    case Bl4.COVERED:
      return true;
    case Bl4.PAGE: {
      const page = index.pages.get(pageOf(v));
      if (!page) throw new Error(`index: /16 ${addr >>> 16} points to page ${pageOf(v)}, which it lacks`);
      return (page[(addr & 0xffff) >>> 3]! & (1 << (addr & 7))) !== 0;
    }
    case Bl4.HOSTS: {
      const bitmap = index.l2.get(addr >>> 8);
      return bitmap !== undefined && (bitmap[(addr >>> 3) & 31]! & (1 << (addr & 7))) !== 0;
    }
    default:
      return 'trie';
  }
}

/**
 * ot_bl4_slash16 as an array, from one batch read decoded in place: 65536 entries through TypedMap.entries()
 * (an object and two Buffers each) took ~0.3 s, on every sync.
 */
function readSlash16(map: BlocklistV4Map<number, number>): Uint32Array {
  if (!(map instanceof TypedMap)) {
    // A stand-in for the map (the agent's dry run reads the pinned map through an overlay): decode its entries.
    const out = new Uint32Array(OT_BL4_SLASH16S);
    for (const [k, v] of map.entries()) out[k] = v;
    return out;
  }
  const m = map.map;
  const r = native().mapDump(m.fd, m.keySize, m.valueBytes, m.maxEntries);
  const out = new Uint32Array(OT_BL4_SLASH16S);
  for (let i = 0; i < r.count; i++) out[r.keys.readUInt32LE(i * m.keySize)] = r.values.readUInt32LE(i * m.valueBytes);
  return out;
}

/**
 * What the sync uses of a map: a TypedMap, or anything that reads and writes like one (the agent's dry run passes
 * overlays that record the writes instead of making them).
 */
export type BlocklistV4Map<K, V> = Pick<TypedMap<K, V>, 'spec' | 'get' | 'set' | 'setMany' | 'delete' | 'entries'>;

export interface BlocklistV4Maps {
  blocklist: BlocklistV4Map<LpmKey, number>;
  bl4Slash16: BlocklistV4Map<number, number>;
  bl4Pages: BlocklistV4Map<number, Bl4Page>;
  bl4L2: BlocklistV4Map<number, Bl4Hosts>;
}

/**
 * Makes the IPv4 index equal to the index of what ot_blocklist holds now (one dump of each map, and a read of each
 * page that stays with its /16; only what differs is written). Order matters, so no packet sees a /16 state without
 * what it points to: pages and level-2 bitmaps first (a page given to a /16 now was in use by no /16), then the
 * /16 states, then the bitmaps no /16 points to any more are deleted. Appends one line per kind of write to
 * `changes`. `o.pages` and `o.l2Max` shrink the budgets (tests reach every state with them).
 *
 * Returns ot_bl4_slash16 as it is now. Give it back as `o.known` to the next sync to skip reading the map (a
 * 65536-entry batch read: ~0.1 s on a loaded 2-core machine), when nothing else writes it; without `known` the
 * map is read, which also repairs any drift.
 */
export function syncBlocklistV4Index(
  maps: BlocklistV4Maps,
  changes: string[] = [],
  o: Omit<BlocklistV4Options, 'current'> & { known?: Uint32Array } = {},
): Uint32Array {
  const current = o.known ? Uint32Array.from(o.known) : readSlash16(maps.bl4Slash16);
  const want = blocklistV4Index(maps.blocklist.entries().map(([k]) => k), { ...o, current });

  let pagesWritten = 0;
  for (const [page, bitmap] of want.pages) {
    const have = maps.bl4Pages.get(page);
    if (have && Buffer.from(have.bits).equals(bitmap)) continue;
    maps.bl4Pages.set(page, { bits: bitmap });
    pagesWritten++;
  }
  if (pagesWritten) changes.push(`bpf: write ${pagesWritten} ${maps.bl4Pages.spec.name} pages`);

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

  const states: [number, number][] = [];
  for (let s16 = 0; s16 < OT_BL4_SLASH16S; s16++) if (current[s16] !== want.slash16[s16]) states.push([s16, want.slash16[s16]!]);
  if (states.length) {
    maps.bl4Slash16.setMany(states);
    changes.push(`bpf: write ${states.length} ${maps.bl4Slash16.spec.name} entries`);
  }

  let deleted = 0;
  for (const s24 of haveL2.keys()) {
    if (want.l2.has(s24)) continue;
    maps.bl4L2.delete(s24);
    deleted++;
  }
  if (deleted) changes.push(`bpf: delete ${deleted} ${maps.bl4L2.spec.name} bitmaps`);
  return want.slash16;
}
