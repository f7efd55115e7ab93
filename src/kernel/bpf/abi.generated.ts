// GENERATED from bpf/opentransit_abi.h by src/kernel/bpf/abigen.ts — do not edit. Run `make generate`.
/* eslint-disable */
import {
  type StructCodec,
  type Codec,
  U8, U16, U32, U64, Be16, Be32,
  checkArray, checkObject, rBytes, wBytes, wU8, wU16, wU32, wU64, wBe16, wBe32,
} from './abi-runtime.js';

// Unused-import guard: every codec and writer is referenced whatever the header declares.
void [U8, U16, U32, U64, Be16, Be32, checkArray, checkObject, rBytes, wBytes, wU8, wU16, wU32, wU64, wBe16, wBe32];

// --- constants ---
/** Bumped on any incompatible change of a map's key or value (pinned maps of another version must be recreated). 2: 32 reason slots, ot_config.fwmark, the fast path; 3: ot_config.fib_table, ot_host_local */
export const OT_ABI_VERSION = 3;
/** the uplink XDP program (bpf/xdp_edge.c) */
export const OT_PROG_XDP_EDGE = 'ot_xdp_edge';
/** the GRE encap on the customer veth's tc egress (bpf/tc_gre.c) */
export const OT_PROG_TC_GRE = 'ot_tc_gre';
/** The fast path out of a customer netns: tc ingress of the host-side veth (bpf/tc_host_fwd.c) */
export const OT_PROG_TC_HOST_FWD = 'ot_tc_host_fwd';
/** The fast path into a customer netns after GRO: tc ingress of the uplink (bpf/tc_host_fwd.c, same object) */
export const OT_PROG_TC_UPLINK_IN = 'ot_tc_uplink_in';
/** The customer router side of a tunnel (the lab's and tests' customer routers, bpf/cpe_gre.c): GRE decap on the router uplink's tc ingress */
export const OT_PROG_CPE_DECAP = 'ot_cpe_decap';
/** GRE encap on a tunnel device's tc egress */
export const OT_PROG_CPE_ENCAP = 'ot_cpe_encap';
/** Accounts are 0..OT_MAX_ACCOUNTS-1; 0 means "no account". */
export const OT_MAX_ACCOUNTS = 1024;
/** Room for reasons in the counters (each account has this many slots; enum ot_reason must fit). */
export const OT_REASON_SLOTS = 32;
export const OT_COUNTER_SLOTS = 32768;
/** IPv4 a.b.c.d/n is stored in LPM keys as ::ffff:a.b.c.d/(OT_LPM_V4_OFFSET + n). */
export const OT_LPM_V4_OFFSET = 96;
export const OT_BLOCKLIST_MAX = 262144;
/** The IPv4 index of the blocklist (ot_bl4_slash16, ot_bl4_pages, ot_bl4_l2: see the maps below and xdp_edge.c). */
export const OT_BL4_SLASH16S = 65536;
/** /16s with a whole bitmap of their own (8 KiB each, preallocated: 4 MiB) */
export const OT_BL4_PAGES = 512;
/** /24 bitmaps of the /16s without a page; /16s that would need more: the trie */
export const OT_BL4_L2_MAX = 262144;
export const OT_PREFIXES_MAX = 65536;
export const OT_MITIGATION_PREFIXES_MAX = 4096;
/** Rules evaluated per destination prefix, in order, first match wins. */
export const OT_RULES_PER_PREFIX = 8;
/** Slots of the per-CPU destination cache (ot_dst_cache): a power of two. */
export const OT_DST_CACHE_SLOTS = 256;
/** Rule slots: index of a rule's token bucket and statistics. */
export const OT_RULE_SLOTS = 4096;
export const OT_ANYCAST_MAX = 256;
export const OT_GRE_PEERS_MAX = 16384;
export const OT_TUNNELS_MAX = 65536;
/** Tunnels of every customer router sharing one pin directory (ot_cpe_decaps, ot_cpe_encaps). */
export const OT_CPE_TUNNELS_MAX = 4096;
/** Bytes of a packet copied into a sample record (from the start of the Ethernet header). */
export const OT_SAMPLE_BYTES = 128;
/** Ring buffer size: a power of two, a multiple of the page size. */
export const OT_SAMPLES_RING_BYTES = 1048576;
/** A tunnel's MAC (the neighbour entry of a tunnel peer in a customer netns) starts with these two octets; the other four identify the tunnel. A frame to such a MAC that has no tunnel is dropped and counted. */
export const OT_TUNNEL_MAC_0 = 2;
export const OT_TUNNEL_MAC_1 = 79;
/** tunnel flag: set Don't Fragment on the outer IPv4 header */
export const OT_TUNNEL_F_DF = 1;
/** ot_config.flags: route customer traffic with bpf_fib_lookup instead of a pass through the host stack (the fast path, bpf/lib/fastpath.h); off: xdp_edge and tc_host_fwd hand every packet to the host stack as before. */
export const OT_CONFIG_F_FAST_PATH = 1;
/** ot_config.flags set by the agent while the host netns's rules and routes make a shortcut the stack's own decision (it checks them every resync and clears a flag when its premises no longer hold; src/agent/reconcile/ dataplane-fib.ts says which premises, bpf/lib/fastpath.h why they suffice). Each lets the fast path look a table up directly (BPF_FIB_LOOKUP_DIRECT | TBID) instead of walking the policy rules, or skip a lookup: xdp_edge: customer destinations from the uplink → fib_table */
export const OT_CONFIG_F_FIB_DIRECT_IN = 2;
/** tc_host_fwd: GRE to a customer router (ot_gre_peers), no mark → main */
export const OT_CONFIG_F_FIB_DIRECT_GRE = 4;
/** every other lookup (the host's rules are the kernel's and ours, nothing else) */
export const OT_CONFIG_F_FIB_DIRECT = 8;
/** rp_filter 0: no reverse lookup for a source outside ot_host_local */
export const OT_CONFIG_F_SRC_UNICAST = 16;
/** Prefixes of the host netns's local table the agent copies into ot_host_local (more: the flags that read it off). */
export const OT_HOST_LOCAL_MAX = 4096;

// --- enums ---
/** What happened to a packet. Every reason belongs to one verdict: its name starts with the verdict's name. */
export const Verdict = {
  /** handed to the kernel unchanged (XDP_PASS, TC_ACT_OK) */
  PASS: 0,
  /** dropped (XDP_DROP, TC_ACT_SHOT) */
  DROP: 1,
  /** GRE decapsulated and redirected to a customer's veth (XDP_REDIRECT) */
  REDIRECT: 2,
  /** GRE encapsulated towards a customer router (TC_ACT_OK) */
  ENCAP: 3,
  /** routed by the fast path: bpf_fib_lookup, TTL - 1, redirected (no host stack pass) */
  FORWARD: 4,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];
/** The C name (without OT_VERDICT_) of each Verdict value. */
export const VERDICT_NAMES: Readonly<Record<Verdict, string>> = {
  0: 'PASS',
  1: 'DROP',
  2: 'REDIRECT',
  3: 'ENCAP',
  4: 'FORWARD',
};

/** Why: the second index of the counters. Each packet is counted under exactly one reason, once per program that sees it; the reasons marked (tc) are tc_gre's, (fwd) tc_host_fwd's, (up) tc_uplink_in's (which counts only what goes to a customer prefix), the others xdp_edge's. The customer router programs (cpe_gre.c) count under account 0 with the same reasons: PASS (not GRE to one of its tunnels), DROP_MALFORMED, DROP_GRE_UNSUPPORTED, REDIRECT_GRE (decapsulated onto the tunnel device), ENCAP_GRE, DROP_TUNNEL_MISS (a packet on a tunnel device without a tunnel), DROP_ENCAP_FAILED. */
export const Reason = {
  /** IP traffic that passed every check */
  PASS: 0,
  /** not IPv4/IPv6 (ARP, LLDP…): not ours to judge */
  PASS_NON_IP: 1,
  /** truncated or inconsistent headers */
  DROP_MALFORMED: 2,
  /** stacked VLAN tags, more IPv6 extension headers than we walk */
  DROP_UNSUPPORTED: 3,
  /** source in the global blocklist */
  DROP_BLOCKLIST: 4,
  /** a mitigation rule with action drop */
  DROP_RULE: 5,
  /** over a mitigation rule's rate */
  DROP_RATELIMIT: 6,
  /** GRE from a customer endpoint, decapsulated, redirected */
  REDIRECT_GRE: 7,
  /** GRE to an anycast endpoint from an unknown source */
  DROP_GRE_UNKNOWN: 8,
  /** GRE with key/checksum/sequence/routing bits, version != 0, a fragment, or a payload other than IPv4/IPv6 */
  DROP_GRE_UNSUPPORTED: 9,
  /** inner source outside the peer's account's prefixes */
  DROP_GRE_SPOOFED: 10,
  /** the peer's account has no delivery interface */
  DROP_GRE_NO_DELIVERY: 11,
  /** encapsulated into a tunnel (tc) */
  ENCAP_GRE: 12,
  /** a frame to a tunnel MAC that has no tunnel (tc) */
  DROP_TUNNEL_MISS: 13,
  /** a non-IP frame to a tunnel, or the kernel refused to grow the packet (tc) */
  DROP_ENCAP_FAILED: 14,
  /** a frame leaving a customer netns not towards a tunnel MAC (tc) */
  PASS_NOT_TUNNEL: 15,
  /** to a customer prefix: routed by the kernel's FIB with the node's fwmark and redirected to the customer's veth, skipping the host stack */
  FORWARD_XDP: 16,
  /** from a customer netns: routed by the kernel's FIB and redirected out (fwd) */
  FORWARD_HOST: 17,
  /** from a customer netns: left to the host stack (not eligible, or the FIB said so: SYN, TTL, fragment, no neighbour, MTU, unreachable…) (fwd) */
  PASS_HOST: 18,
  /** to a customer prefix, on the uplink after GRO (a TCP super-packet counts once): routed like FORWARD_XDP and redirected to the customer's veth (up) */
  FORWARD_UPLINK: 19,
  /** to a customer prefix, on the uplink after GRO: left to the host stack, as PASS_HOST (up) */
  PASS_UPLINK: 20,
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
/** The C name (without OT_REASON_) of each Reason value. */
export const REASON_NAMES: Readonly<Record<Reason, string>> = {
  0: 'PASS',
  1: 'PASS_NON_IP',
  2: 'DROP_MALFORMED',
  3: 'DROP_UNSUPPORTED',
  4: 'DROP_BLOCKLIST',
  5: 'DROP_RULE',
  6: 'DROP_RATELIMIT',
  7: 'REDIRECT_GRE',
  8: 'DROP_GRE_UNKNOWN',
  9: 'DROP_GRE_UNSUPPORTED',
  10: 'DROP_GRE_SPOOFED',
  11: 'DROP_GRE_NO_DELIVERY',
  12: 'ENCAP_GRE',
  13: 'DROP_TUNNEL_MISS',
  14: 'DROP_ENCAP_FAILED',
  15: 'PASS_NOT_TUNNEL',
  16: 'FORWARD_XDP',
  17: 'FORWARD_HOST',
  18: 'PASS_HOST',
  19: 'FORWARD_UPLINK',
  20: 'PASS_UPLINK',
};

/** Mitigation rule actions; 0 marks an unused rule. */
export const Action = {
  DROP: 1,
  /** token bucket: pass while tokens last, drop the rest */
  RATELIMIT: 2,
  /** stop evaluating: lets traffic skip later rules */
  PASS: 3,
} as const;
export type Action = (typeof Action)[keyof typeof Action];
/** The C name (without OT_ACTION_) of each Action value. */
export const ACTION_NAMES: Readonly<Record<Action, string>> = {
  1: 'DROP',
  2: 'RATELIMIT',
  3: 'PASS',
};

/** What the IPv4 blocklist index says about a /16: the low 8 bits of its ot_bl4_slash16 value (the page number, for OT_BL4_PAGE, in the upper 24). */
export const Bl4 = {
  /** no blocklist entry overlaps the /16: not blocked */
  NONE: 0,
  /** an entry of length <= 16 covers the whole /16: blocked */
  COVERED: 1,
  /** only longer entries: bit (address & 0xffff) of its page in ot_bl4_pages decides */
  PAGE: 2,
  /** only longer entries, no page left: the /24's bitmap in ot_bl4_l2 decides (none: not blocked) */
  HOSTS: 3,
  /** neither a page nor room in ot_bl4_l2: ot_blocklist (the trie) decides */
  TRIE: 4,
} as const;
export type Bl4 = (typeof Bl4)[keyof typeof Bl4];
/** The C name (without OT_BL4_) of each Bl4 value. */
export const BL4_NAMES: Readonly<Record<Bl4, string>> = {
  0: 'NONE',
  1: 'COVERED',
  2: 'PAGE',
  3: 'HOSTS',
  4: 'TRIE',
};

/** Which program wrote a sample record. */
export const Hook = {
  XDP_EDGE: 1,
  TC_GRE: 2,
} as const;
export type Hook = (typeof Hook)[keyof typeof Hook];
/** The C name (without OT_HOOK_) of each Hook value. */
export const HOOK_NAMES: Readonly<Record<Hook, string>> = {
  1: 'XDP_EDGE',
  2: 'TC_GRE',
};

/** The verdict of each reason (its name starts with the verdict's). */
export const REASON_VERDICT: Readonly<Record<Reason, Verdict>> = {
  0: Verdict.PASS,
  1: Verdict.PASS,
  2: Verdict.DROP,
  3: Verdict.DROP,
  4: Verdict.DROP,
  5: Verdict.DROP,
  6: Verdict.DROP,
  7: Verdict.REDIRECT,
  8: Verdict.DROP,
  9: Verdict.DROP,
  10: Verdict.DROP,
  11: Verdict.DROP,
  12: Verdict.ENCAP,
  13: Verdict.DROP,
  14: Verdict.DROP,
  15: Verdict.PASS,
  16: Verdict.FORWARD,
  17: Verdict.FORWARD,
  18: Verdict.PASS,
  19: Verdict.FORWARD,
  20: Verdict.PASS,
};

// --- structs ---
/** Key of every LPM trie: the kernel's struct bpf_lpm_trie_key with 16 bytes of data. */
export interface LpmKey {
  /** bits of addr that count: IPv4 96 + n, IPv6 n */
  prefixlen: number;
  /** network order; IPv4 as ::ffff:a.b.c.d */
  addr: Buffer;
}
export const LpmKey: StructCodec<LpmKey> = {
  cType: 'struct ot_lpm_key',
  size: 20,
  align: 4,
  fields: [
    { name: 'prefixlen', offset: 0, size: 4, type: 'u32' },
    { name: 'addr', offset: 4, size: 16, type: 'u8', count: 16 },
  ],
  encode(v: LpmKey, buf: Buffer = Buffer.alloc(20), off = 0, path = 'ot_lpm_key'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.prefixlen, path, 'prefixlen');
    wBytes(buf, off + 4, o.addr, 16, path, 'addr');
    return buf;
  },
  decode(buf: Buffer, off = 0): LpmKey {
    return {
      prefixlen: buf.readUInt32LE(off + 0),
      addr: rBytes(buf, off + 4, 16),
    };
  },
};

/** Global settings: the single entry (key 0) of ot_config. */
export interface Config {
  /** copy one packet in N to ot_samples (random); 0 = off */
  sample_every: number;
  /** OT_CONFIG_F_* */
  flags: number;
  /** the node's packet mark for customer traffic (the host nft chain `mark`, ip rule fwmark → table) */
  fwmark: number;
  /** the customer routing table, the one our fwmark rule looks up (OT_CONFIG_F_FIB_DIRECT*) */
  fib_table: number;
}
export const Config: StructCodec<Config> = {
  cType: 'struct ot_config',
  size: 16,
  align: 4,
  fields: [
    { name: 'sample_every', offset: 0, size: 4, type: 'u32' },
    { name: 'flags', offset: 4, size: 4, type: 'u32' },
    { name: 'fwmark', offset: 8, size: 4, type: 'u32' },
    { name: 'fib_table', offset: 12, size: 4, type: 'u32' },
  ],
  encode(v: Config, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_config'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.sample_every, path, 'sample_every');
    wU32(buf, off + 4, o.flags, path, 'flags');
    wU32(buf, off + 8, o.fwmark, path, 'fwmark');
    wU32(buf, off + 12, o.fib_table, path, 'fib_table');
    return buf;
  },
  decode(buf: Buffer, off = 0): Config {
    return {
      sample_every: buf.readUInt32LE(off + 0),
      flags: buf.readUInt32LE(off + 4),
      fwmark: buf.readUInt32LE(off + 8),
      fib_table: buf.readUInt32LE(off + 12),
    };
  },
};

/** One counter slot (per CPU): index = account * OT_REASON_SLOTS + reason. */
export interface Counter {
  packets: bigint;
  /** frame length as received (before decap or encap) */
  bytes: bigint;
}
export const Counter: StructCodec<Counter> = {
  cType: 'struct ot_counter',
  size: 16,
  align: 8,
  fields: [
    { name: 'packets', offset: 0, size: 8, type: 'u64' },
    { name: 'bytes', offset: 8, size: 8, type: 'u64' },
  ],
  encode(v: Counter, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_counter'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.packets, path, 'packets');
    wU64(buf, off + 8, o.bytes, path, 'bytes');
    return buf;
  },
  decode(buf: Buffer, off = 0): Counter {
    return {
      packets: buf.readBigUInt64LE(off + 0),
      bytes: buf.readBigUInt64LE(off + 8),
    };
  },
};

/** One mitigation rule. Ranges are inclusive; a full range (0..max) matches anything. */
export interface Rule {
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC) after which the rule is ignored; 0 = never */
  expires_ns: bigint;
  /** index into ot_rl_state and ot_rule_stats, < OT_RULE_SLOTS */
  slot: number;
  /** OT_ACTION_RATELIMIT: tokens per second PER CPU (see xdp_edge.c for why per CPU) */
  rate_pps: number;
  /** OT_ACTION_RATELIMIT: bucket depth PER CPU, packets */
  burst: number;
  /** TCP/UDP ports; a narrower range never matches packets without ports (ICMP, fragments) */
  sport_min: number;
  sport_max: number;
  dport_min: number;
  dport_max: number;
  /** IP length: IPv4 total length, IPv6 40 + payload length */
  len_min: number;
  len_max: number;
  /** IP protocol (IPv6: the upper-layer header); 0 = any */
  proto: number;
  /** matches when (flags & mask) == value; a TCP-flags rule never matches non-TCP */
  tcp_flags_mask: number;
  tcp_flags_value: number;
  /** IPv4 TTL / IPv6 hop limit */
  ttl_min: number;
  ttl_max: number;
  /** enum ot_action; 0 = unused rule */
  action: number;
}
export const Rule: StructCodec<Rule> = {
  cType: 'struct ot_rule',
  size: 40,
  align: 8,
  fields: [
    { name: 'expires_ns', offset: 0, size: 8, type: 'u64' },
    { name: 'slot', offset: 8, size: 4, type: 'u32' },
    { name: 'rate_pps', offset: 12, size: 4, type: 'u32' },
    { name: 'burst', offset: 16, size: 4, type: 'u32' },
    { name: 'sport_min', offset: 20, size: 2, type: 'u16' },
    { name: 'sport_max', offset: 22, size: 2, type: 'u16' },
    { name: 'dport_min', offset: 24, size: 2, type: 'u16' },
    { name: 'dport_max', offset: 26, size: 2, type: 'u16' },
    { name: 'len_min', offset: 28, size: 2, type: 'u16' },
    { name: 'len_max', offset: 30, size: 2, type: 'u16' },
    { name: 'proto', offset: 32, size: 1, type: 'u8' },
    { name: 'tcp_flags_mask', offset: 33, size: 1, type: 'u8' },
    { name: 'tcp_flags_value', offset: 34, size: 1, type: 'u8' },
    { name: 'ttl_min', offset: 35, size: 1, type: 'u8' },
    { name: 'ttl_max', offset: 36, size: 1, type: 'u8' },
    { name: 'action', offset: 37, size: 1, type: 'u8' },
    { name: '_pad', offset: 38, size: 2, type: 'u8', count: 2 },
  ],
  encode(v: Rule, buf: Buffer = Buffer.alloc(40), off = 0, path = 'ot_rule'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.expires_ns, path, 'expires_ns');
    wU32(buf, off + 8, o.slot, path, 'slot');
    wU32(buf, off + 12, o.rate_pps, path, 'rate_pps');
    wU32(buf, off + 16, o.burst, path, 'burst');
    wU16(buf, off + 20, o.sport_min, path, 'sport_min');
    wU16(buf, off + 22, o.sport_max, path, 'sport_max');
    wU16(buf, off + 24, o.dport_min, path, 'dport_min');
    wU16(buf, off + 26, o.dport_max, path, 'dport_max');
    wU16(buf, off + 28, o.len_min, path, 'len_min');
    wU16(buf, off + 30, o.len_max, path, 'len_max');
    wU8(buf, off + 32, o.proto, path, 'proto');
    wU8(buf, off + 33, o.tcp_flags_mask, path, 'tcp_flags_mask');
    wU8(buf, off + 34, o.tcp_flags_value, path, 'tcp_flags_value');
    wU8(buf, off + 35, o.ttl_min, path, 'ttl_min');
    wU8(buf, off + 36, o.ttl_max, path, 'ttl_max');
    wU8(buf, off + 37, o.action, path, 'action');
    buf.fill(0, off + 38, off + 38 + 2);
    return buf;
  },
  decode(buf: Buffer, off = 0): Rule {
    return {
      expires_ns: buf.readBigUInt64LE(off + 0),
      slot: buf.readUInt32LE(off + 8),
      rate_pps: buf.readUInt32LE(off + 12),
      burst: buf.readUInt32LE(off + 16),
      sport_min: buf.readUInt16LE(off + 20),
      sport_max: buf.readUInt16LE(off + 22),
      dport_min: buf.readUInt16LE(off + 24),
      dport_max: buf.readUInt16LE(off + 26),
      len_min: buf.readUInt16LE(off + 28),
      len_max: buf.readUInt16LE(off + 30),
      proto: buf.readUInt8(off + 32),
      tcp_flags_mask: buf.readUInt8(off + 33),
      tcp_flags_value: buf.readUInt8(off + 34),
      ttl_min: buf.readUInt8(off + 35),
      ttl_max: buf.readUInt8(off + 36),
      action: buf.readUInt8(off + 37),
    };
  },
};

/** The value of ot_mitigation: the rules of one destination prefix. The longest matching prefix alone applies, so the agent copies the rules of covering prefixes into each more specific prefix's set. */
export interface RuleSet {
  /** rules in use, <= OT_RULES_PER_PREFIX */
  count: number;
  rules: Rule[];
}
export const RuleSet: StructCodec<RuleSet> = {
  cType: 'struct ot_rule_set',
  size: 328,
  align: 8,
  fields: [
    { name: 'count', offset: 0, size: 4, type: 'u32' },
    { name: '_pad', offset: 4, size: 4, type: 'u32' },
    { name: 'rules', offset: 8, size: 320, type: 'ot_rule', count: 8 },
  ],
  encode(v: RuleSet, buf: Buffer = Buffer.alloc(328), off = 0, path = 'ot_rule_set'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.count, path, 'count');
    buf.fill(0, off + 4, off + 4 + 4);
    {
      const a = checkArray(o.rules, 8, path, 'rules');
      for (let i = 0; i < a.length; i++) Rule.encode(a[i] as Rule, buf, off + 8 + i * 40, `${path}.rules[${i}]`);
      buf.fill(0, off + 8 + a.length * 40, off + 8 + 320);
    }
    return buf;
  },
  decode(buf: Buffer, off = 0): RuleSet {
    return {
      count: buf.readUInt32LE(off + 0),
      rules: Array.from({ length: 8 }, (_, i) => Rule.decode(buf, off + 8 + i * 40)),
    };
  },
};

/** Value of ot_bl4_pages: the blocked addresses of one /16. */
export interface Bl4Page {
  /** address .x.y blocked when bits[(x << 5) | (y >> 3)] & (1 << (y & 7)) */
  bits: Buffer;
}
export const Bl4Page: StructCodec<Bl4Page> = {
  cType: 'struct ot_bl4_page',
  size: 8192,
  align: 1,
  fields: [
    { name: 'bits', offset: 0, size: 8192, type: 'u8', count: 8192 },
  ],
  encode(v: Bl4Page, buf: Buffer = Buffer.alloc(8192), off = 0, path = 'ot_bl4_page'): Buffer {
    const o = checkObject(v, path);
    wBytes(buf, off + 0, o.bits, 8192, path, 'bits');
    return buf;
  },
  decode(buf: Buffer, off = 0): Bl4Page {
    return {
      bits: rBytes(buf, off + 0, 8192),
    };
  },
};

/** Value of ot_bl4_l2 (key: the /24, i.e. the IPv4 address in host order >> 8): the blocked addresses of a /24. */
export interface Bl4Hosts {
  /** address .h blocked when bits[h >> 3] & (1 << (h & 7)) */
  bits: Buffer;
}
export const Bl4Hosts: StructCodec<Bl4Hosts> = {
  cType: 'struct ot_bl4_hosts',
  size: 32,
  align: 1,
  fields: [
    { name: 'bits', offset: 0, size: 32, type: 'u8', count: 32 },
  ],
  encode(v: Bl4Hosts, buf: Buffer = Buffer.alloc(32), off = 0, path = 'ot_bl4_hosts'): Buffer {
    const o = checkObject(v, path);
    wBytes(buf, off + 0, o.bits, 32, path, 'bits');
    return buf;
  },
  decode(buf: Buffer, off = 0): Bl4Hosts {
    return {
      bits: rBytes(buf, off + 0, 32),
    };
  },
};

/** One slot of ot_dst_cache (per CPU): what ot_prefixes and ot_mitigation said about one destination, valid while ot_generation still holds `generation` (see xdp_edge.c). */
export interface DstCache {
  /** ot_generation when filled */
  generation: bigint;
  /** the destination, in the LPM key form */
  dst: Buffer;
  /** ot_prefixes' answer (0: none) */
  account: number;
  /** 0 = never filled */
  valid: number;
  /** ot_mitigation had a rule set: a copy is in rules */
  has_rules: number;
  rules: RuleSet;
}
export const DstCache: StructCodec<DstCache> = {
  cType: 'struct ot_dst_cache',
  size: 360,
  align: 8,
  fields: [
    { name: 'generation', offset: 0, size: 8, type: 'u64' },
    { name: 'dst', offset: 8, size: 16, type: 'u8', count: 16 },
    { name: 'account', offset: 24, size: 4, type: 'u32' },
    { name: 'valid', offset: 28, size: 1, type: 'u8' },
    { name: 'has_rules', offset: 29, size: 1, type: 'u8' },
    { name: '_pad', offset: 30, size: 2, type: 'u8', count: 2 },
    { name: 'rules', offset: 32, size: 328, type: 'ot_rule_set' },
  ],
  encode(v: DstCache, buf: Buffer = Buffer.alloc(360), off = 0, path = 'ot_dst_cache'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.generation, path, 'generation');
    wBytes(buf, off + 8, o.dst, 16, path, 'dst');
    wU32(buf, off + 24, o.account, path, 'account');
    wU8(buf, off + 28, o.valid, path, 'valid');
    wU8(buf, off + 29, o.has_rules, path, 'has_rules');
    buf.fill(0, off + 30, off + 30 + 2);
    RuleSet.encode(o.rules as RuleSet, buf, off + 32, `${path}.rules`);
    return buf;
  },
  decode(buf: Buffer, off = 0): DstCache {
    return {
      generation: buf.readBigUInt64LE(off + 0),
      dst: rBytes(buf, off + 8, 16),
      account: buf.readUInt32LE(off + 24),
      valid: buf.readUInt8(off + 28),
      has_rules: buf.readUInt8(off + 29),
      rules: RuleSet.decode(buf, off + 32),
    };
  },
};

/** Token bucket state of one rule slot (per CPU). The agent zeroes a slot when it assigns it to a rule. */
export interface RlBucket {
  /** nano-tokens: one packet costs 1e9 */
  tokens: bigint;
  /** 0 = never used (the bucket starts full) */
  last_ns: bigint;
}
export const RlBucket: StructCodec<RlBucket> = {
  cType: 'struct ot_rl_bucket',
  size: 16,
  align: 8,
  fields: [
    { name: 'tokens', offset: 0, size: 8, type: 'u64' },
    { name: 'last_ns', offset: 8, size: 8, type: 'u64' },
  ],
  encode(v: RlBucket, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_rl_bucket'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.tokens, path, 'tokens');
    wU64(buf, off + 8, o.last_ns, path, 'last_ns');
    return buf;
  },
  decode(buf: Buffer, off = 0): RlBucket {
    return {
      tokens: buf.readBigUInt64LE(off + 0),
      last_ns: buf.readBigUInt64LE(off + 8),
    };
  },
};

/** Statistics of one rule slot (per CPU). */
export interface RuleStats {
  /** matched */
  packets: bigint;
  bytes: bigint;
  dropped_packets: bigint;
  dropped_bytes: bigint;
}
export const RuleStats: StructCodec<RuleStats> = {
  cType: 'struct ot_rule_stats',
  size: 32,
  align: 8,
  fields: [
    { name: 'packets', offset: 0, size: 8, type: 'u64' },
    { name: 'bytes', offset: 8, size: 8, type: 'u64' },
    { name: 'dropped_packets', offset: 16, size: 8, type: 'u64' },
    { name: 'dropped_bytes', offset: 24, size: 8, type: 'u64' },
  ],
  encode(v: RuleStats, buf: Buffer = Buffer.alloc(32), off = 0, path = 'ot_rule_stats'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.packets, path, 'packets');
    wU64(buf, off + 8, o.bytes, path, 'bytes');
    wU64(buf, off + 16, o.dropped_packets, path, 'dropped_packets');
    wU64(buf, off + 24, o.dropped_bytes, path, 'dropped_bytes');
    return buf;
  },
  decode(buf: Buffer, off = 0): RuleStats {
    return {
      packets: buf.readBigUInt64LE(off + 0),
      bytes: buf.readBigUInt64LE(off + 8),
      dropped_packets: buf.readBigUInt64LE(off + 16),
      dropped_bytes: buf.readBigUInt64LE(off + 24),
    };
  },
};

/** The value of ot_gre_peers (key: the customer endpoint, __be32). */
export interface GrePeer {
  account: number;
  /** reserved, 0 */
  flags: number;
}
export const GrePeer: StructCodec<GrePeer> = {
  cType: 'struct ot_gre_peer',
  size: 8,
  align: 4,
  fields: [
    { name: 'account', offset: 0, size: 4, type: 'u32' },
    { name: 'flags', offset: 4, size: 4, type: 'u32' },
  ],
  encode(v: GrePeer, buf: Buffer = Buffer.alloc(8), off = 0, path = 'ot_gre_peer'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.account, path, 'account');
    wU32(buf, off + 4, o.flags, path, 'flags');
    return buf;
  },
  decode(buf: Buffer, off = 0): GrePeer {
    return {
      account: buf.readUInt32LE(off + 0),
      flags: buf.readUInt32LE(off + 4),
    };
  },
};

/** The value of ot_delivery (key: account): where decapsulated packets of an account go. */
export interface Delivery {
  /** host-side veth of the account's netns, in the uplink's netns; 0 = none */
  ifindex: number;
  /** the customer-side veth's MAC */
  dmac: Buffer;
  /** the host-side veth's MAC */
  smac: Buffer;
  /** the `mtu` of the account's IPv6 routes in the customer table (0: none). The stack forwards by it; bpf_fib_lookup honours only a locked route MTU, so the fast path leaves bigger IPv6 packets to the stack (which answers Packet Too Big) */
  mtu6: number;
}
export const Delivery: StructCodec<Delivery> = {
  cType: 'struct ot_delivery',
  size: 20,
  align: 4,
  fields: [
    { name: 'ifindex', offset: 0, size: 4, type: 'u32' },
    { name: 'dmac', offset: 4, size: 6, type: 'u8', count: 6 },
    { name: 'smac', offset: 10, size: 6, type: 'u8', count: 6 },
    { name: 'mtu6', offset: 16, size: 4, type: 'u32' },
  ],
  encode(v: Delivery, buf: Buffer = Buffer.alloc(20), off = 0, path = 'ot_delivery'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.ifindex, path, 'ifindex');
    wBytes(buf, off + 4, o.dmac, 6, path, 'dmac');
    wBytes(buf, off + 10, o.smac, 6, path, 'smac');
    wU32(buf, off + 16, o.mtu6, path, 'mtu6');
    return buf;
  },
  decode(buf: Buffer, off = 0): Delivery {
    return {
      ifindex: buf.readUInt32LE(off + 0),
      dmac: rBytes(buf, off + 4, 6),
      smac: rBytes(buf, off + 10, 6),
      mtu6: buf.readUInt32LE(off + 16),
    };
  },
};

/** Key of ot_tunnels: the device's netns (cookie) and the destination MAC the kernel's route chose. */
export interface TunnelKey {
  /** SO_NETNS_COOKIE of the customer netns */
  netns_cookie: bigint;
  /** tunnel MAC: OT_TUNNEL_MAC_0, OT_TUNNEL_MAC_1, 4 octets of tunnel id */
  mac: Buffer;
}
export const TunnelKey: StructCodec<TunnelKey> = {
  cType: 'struct ot_tunnel_key',
  size: 16,
  align: 8,
  fields: [
    { name: 'netns_cookie', offset: 0, size: 8, type: 'u64' },
    { name: 'mac', offset: 8, size: 6, type: 'u8', count: 6 },
    { name: '_pad', offset: 14, size: 2, type: 'u8', count: 2 },
  ],
  encode(v: TunnelKey, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_tunnel_key'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.netns_cookie, path, 'netns_cookie');
    wBytes(buf, off + 8, o.mac, 6, path, 'mac');
    buf.fill(0, off + 14, off + 14 + 2);
    return buf;
  },
  decode(buf: Buffer, off = 0): TunnelKey {
    return {
      netns_cookie: buf.readBigUInt64LE(off + 0),
      mac: rBytes(buf, off + 8, 6),
    };
  },
};

/** Value of ot_tunnels: the outer header of a tunnel. */
export interface Tunnel {
  /** outer source: the anycast endpoint */
  local: number;
  /** outer destination: the customer router */
  remote: number;
  account: number;
  /** outer TTL, 1..255 */
  ttl: number;
  /** OT_TUNNEL_F_* */
  flags: number;
  /** Ethernet destination after encap: the host-side veth */
  host_mac: Buffer;
}
export const Tunnel: StructCodec<Tunnel> = {
  cType: 'struct ot_tunnel',
  size: 20,
  align: 4,
  fields: [
    { name: 'local', offset: 0, size: 4, type: 'be32' },
    { name: 'remote', offset: 4, size: 4, type: 'be32' },
    { name: 'account', offset: 8, size: 4, type: 'u32' },
    { name: 'ttl', offset: 12, size: 1, type: 'u8' },
    { name: 'flags', offset: 13, size: 1, type: 'u8' },
    { name: 'host_mac', offset: 14, size: 6, type: 'u8', count: 6 },
  ],
  encode(v: Tunnel, buf: Buffer = Buffer.alloc(20), off = 0, path = 'ot_tunnel'): Buffer {
    const o = checkObject(v, path);
    wBe32(buf, off + 0, o.local, path, 'local');
    wBe32(buf, off + 4, o.remote, path, 'remote');
    wU32(buf, off + 8, o.account, path, 'account');
    wU8(buf, off + 12, o.ttl, path, 'ttl');
    wU8(buf, off + 13, o.flags, path, 'flags');
    wBytes(buf, off + 14, o.host_mac, 6, path, 'host_mac');
    return buf;
  },
  decode(buf: Buffer, off = 0): Tunnel {
    return {
      local: buf.readUInt32BE(off + 0),
      remote: buf.readUInt32BE(off + 4),
      account: buf.readUInt32LE(off + 8),
      ttl: buf.readUInt8(off + 12),
      flags: buf.readUInt8(off + 13),
      host_mac: rBytes(buf, off + 14, 6),
    };
  },
};

/** Key of ot_cpe_decaps: GRE as it arrives at a customer router. */
export interface CpeDecapKey {
  /** SO_NETNS_COOKIE of the router's netns */
  netns_cookie: bigint;
  /** outer destination: the router's public address */
  local: number;
  /** outer source: the anycast endpoint */
  remote: number;
}
export const CpeDecapKey: StructCodec<CpeDecapKey> = {
  cType: 'struct ot_cpe_decap_key',
  size: 16,
  align: 8,
  fields: [
    { name: 'netns_cookie', offset: 0, size: 8, type: 'u64' },
    { name: 'local', offset: 8, size: 4, type: 'be32' },
    { name: 'remote', offset: 12, size: 4, type: 'be32' },
  ],
  encode(v: CpeDecapKey, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_cpe_decap_key'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.netns_cookie, path, 'netns_cookie');
    wBe32(buf, off + 8, o.local, path, 'local');
    wBe32(buf, off + 12, o.remote, path, 'remote');
    return buf;
  },
  decode(buf: Buffer, off = 0): CpeDecapKey {
    return {
      netns_cookie: buf.readBigUInt64LE(off + 0),
      local: buf.readUInt32BE(off + 8),
      remote: buf.readUInt32BE(off + 12),
    };
  },
};

/** Value of ot_cpe_decaps: the tunnel device the inner packet is handed to (as if received there). */
export interface CpeDecap {
  /** the tunnel device, in the router's netns */
  ifindex: number;
  /** its MAC: the inner frame's Ethernet destination, so the stack takes it as addressed to us */
  mac: Buffer;
}
export const CpeDecap: StructCodec<CpeDecap> = {
  cType: 'struct ot_cpe_decap',
  size: 12,
  align: 4,
  fields: [
    { name: 'ifindex', offset: 0, size: 4, type: 'u32' },
    { name: 'mac', offset: 4, size: 6, type: 'u8', count: 6 },
    { name: '_pad', offset: 10, size: 2, type: 'u8', count: 2 },
  ],
  encode(v: CpeDecap, buf: Buffer = Buffer.alloc(12), off = 0, path = 'ot_cpe_decap'): Buffer {
    const o = checkObject(v, path);
    wU32(buf, off + 0, o.ifindex, path, 'ifindex');
    wBytes(buf, off + 4, o.mac, 6, path, 'mac');
    buf.fill(0, off + 10, off + 10 + 2);
    return buf;
  },
  decode(buf: Buffer, off = 0): CpeDecap {
    return {
      ifindex: buf.readUInt32LE(off + 0),
      mac: rBytes(buf, off + 4, 6),
    };
  },
};

/** Key of ot_cpe_encaps: a tunnel device of a customer router. */
export interface CpeEncapKey {
  /** SO_NETNS_COOKIE of the router's netns */
  netns_cookie: bigint;
  /** the tunnel device */
  ifindex: number;
}
export const CpeEncapKey: StructCodec<CpeEncapKey> = {
  cType: 'struct ot_cpe_encap_key',
  size: 16,
  align: 8,
  fields: [
    { name: 'netns_cookie', offset: 0, size: 8, type: 'u64' },
    { name: 'ifindex', offset: 8, size: 4, type: 'u32' },
    { name: '_pad', offset: 12, size: 4, type: 'u32' },
  ],
  encode(v: CpeEncapKey, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_cpe_encap_key'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.netns_cookie, path, 'netns_cookie');
    wU32(buf, off + 8, o.ifindex, path, 'ifindex');
    buf.fill(0, off + 12, off + 12 + 4);
    return buf;
  },
  decode(buf: Buffer, off = 0): CpeEncapKey {
    return {
      netns_cookie: buf.readBigUInt64LE(off + 0),
      ifindex: buf.readUInt32LE(off + 8),
    };
  },
};

/** Value of ot_cpe_encaps: the outer header of a customer router's tunnel, and where it leaves. */
export interface CpeEncap {
  /** outer source: the router's public address */
  local: number;
  /** outer destination: the anycast endpoint */
  remote: number;
  /** the device the encapsulated packet leaves by (next hop from the router's routes) */
  uplink_ifindex: number;
  /** outer TTL, 1..255 */
  ttl: number;
  /** OT_TUNNEL_F_* */
  flags: number;
}
export const CpeEncap: StructCodec<CpeEncap> = {
  cType: 'struct ot_cpe_encap',
  size: 16,
  align: 4,
  fields: [
    { name: 'local', offset: 0, size: 4, type: 'be32' },
    { name: 'remote', offset: 4, size: 4, type: 'be32' },
    { name: 'uplink_ifindex', offset: 8, size: 4, type: 'u32' },
    { name: 'ttl', offset: 12, size: 1, type: 'u8' },
    { name: 'flags', offset: 13, size: 1, type: 'u8' },
    { name: '_pad', offset: 14, size: 2, type: 'u8', count: 2 },
  ],
  encode(v: CpeEncap, buf: Buffer = Buffer.alloc(16), off = 0, path = 'ot_cpe_encap'): Buffer {
    const o = checkObject(v, path);
    wBe32(buf, off + 0, o.local, path, 'local');
    wBe32(buf, off + 4, o.remote, path, 'remote');
    wU32(buf, off + 8, o.uplink_ifindex, path, 'uplink_ifindex');
    wU8(buf, off + 12, o.ttl, path, 'ttl');
    wU8(buf, off + 13, o.flags, path, 'flags');
    buf.fill(0, off + 14, off + 14 + 2);
    return buf;
  },
  decode(buf: Buffer, off = 0): CpeEncap {
    return {
      local: buf.readUInt32BE(off + 0),
      remote: buf.readUInt32BE(off + 4),
      uplink_ifindex: buf.readUInt32LE(off + 8),
      ttl: buf.readUInt8(off + 12),
      flags: buf.readUInt8(off + 13),
    };
  },
};

/** A sampled packet, as written to ot_samples. */
export interface Sample {
  /** bpf_ktime_get_ns() */
  ts_ns: bigint;
  /** receiving device */
  ifindex: number;
  account: number;
  /** frame length */
  pkt_len: number;
  /** bytes of data that hold the packet, <= OT_SAMPLE_BYTES */
  cap_len: number;
  /** enum ot_reason */
  reason: number;
  /** enum ot_hook */
  hook: number;
  data: Buffer;
}
export const Sample: StructCodec<Sample> = {
  cType: 'struct ot_sample',
  size: 152,
  align: 8,
  fields: [
    { name: 'ts_ns', offset: 0, size: 8, type: 'u64' },
    { name: 'ifindex', offset: 8, size: 4, type: 'u32' },
    { name: 'account', offset: 12, size: 4, type: 'u32' },
    { name: 'pkt_len', offset: 16, size: 4, type: 'u32' },
    { name: 'cap_len', offset: 20, size: 2, type: 'u16' },
    { name: 'reason', offset: 22, size: 1, type: 'u8' },
    { name: 'hook', offset: 23, size: 1, type: 'u8' },
    { name: 'data', offset: 24, size: 128, type: 'u8', count: 128 },
  ],
  encode(v: Sample, buf: Buffer = Buffer.alloc(152), off = 0, path = 'ot_sample'): Buffer {
    const o = checkObject(v, path);
    wU64(buf, off + 0, o.ts_ns, path, 'ts_ns');
    wU32(buf, off + 8, o.ifindex, path, 'ifindex');
    wU32(buf, off + 12, o.account, path, 'account');
    wU32(buf, off + 16, o.pkt_len, path, 'pkt_len');
    wU16(buf, off + 20, o.cap_len, path, 'cap_len');
    wU8(buf, off + 22, o.reason, path, 'reason');
    wU8(buf, off + 23, o.hook, path, 'hook');
    wBytes(buf, off + 24, o.data, 128, path, 'data');
    return buf;
  },
  decode(buf: Buffer, off = 0): Sample {
    return {
      ts_ns: buf.readBigUInt64LE(off + 0),
      ifindex: buf.readUInt32LE(off + 8),
      account: buf.readUInt32LE(off + 12),
      pkt_len: buf.readUInt32LE(off + 16),
      cap_len: buf.readUInt16LE(off + 20),
      reason: buf.readUInt8(off + 22),
      hook: buf.readUInt8(off + 23),
      data: rBytes(buf, off + 24, 128),
    };
  },
};

// --- maps ---
export interface MapSpec<K, V> {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly key: Codec<K>;
  readonly value: Codec<V>;
  readonly maxEntries: number;
  readonly flags: number;
}
export interface RingbufSpec<R> {
  readonly name: string;
  readonly type: number;
  readonly record: Codec<R>;
  readonly bytes: number;
}
export const MAPS = {
  ot_config: { name: 'ot_config', type: 2, typeName: 'BPF_MAP_TYPE_ARRAY', key: U32, value: Config, maxEntries: 1, flags: 0 } as MapSpec<number, Config>,
  /** Per-CPU counters: account * OT_REASON_SLOTS + reason. */
  ot_counters: { name: 'ot_counters', type: 6, typeName: 'BPF_MAP_TYPE_PERCPU_ARRAY', key: U32, value: Counter, maxEntries: 32768, flags: 0 } as MapSpec<number, Counter>,
  /** Global blocklist of sources; value: an operator-chosen list id (informational). The source of truth: IPv6 packets (and IPv4 in OT_BL4_TRIE /16s) look it up; ot_bl4_l1/ot_bl4_l2 are derived from its IPv4 entries. */
  ot_blocklist: { name: 'ot_blocklist', type: 11, typeName: 'BPF_MAP_TYPE_LPM_TRIE', key: LpmKey, value: U32, maxEntries: 262144, flags: 1 } as MapSpec<LpmKey, number>,
  /** IPv4 blocklist index, level 1: per /16 of the source (address >> 16), enum ot_bl4 | page << 8. */
  ot_bl4_slash16: { name: 'ot_bl4_slash16', type: 2, typeName: 'BPF_MAP_TYPE_ARRAY', key: U32, value: U32, maxEntries: 65536, flags: 0 } as MapSpec<number, number>,
  /** IPv4 blocklist index, level 2 for /16s in state OT_BL4_PAGE: page → bitmap of the /16. */
  ot_bl4_pages: { name: 'ot_bl4_pages', type: 2, typeName: 'BPF_MAP_TYPE_ARRAY', key: U32, value: Bl4Page, maxEntries: 512, flags: 0 } as MapSpec<number, Bl4Page>,
  /** IPv4 blocklist index, level 2 for /16s in state OT_BL4_HOSTS: /24 → its blocked addresses. */
  ot_bl4_l2: { name: 'ot_bl4_l2', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: U32, value: Bl4Hosts, maxEntries: 262144, flags: 1 } as MapSpec<number, Bl4Hosts>,
  /** Customer prefixes → account: attributes traffic by destination, and checks decapsulated sources. */
  ot_prefixes: { name: 'ot_prefixes', type: 11, typeName: 'BPF_MAP_TYPE_LPM_TRIE', key: LpmKey, value: U32, maxEntries: 65536, flags: 1 } as MapSpec<LpmKey, number>,
  /** Destination prefix → mitigation rules. */
  ot_mitigation: { name: 'ot_mitigation', type: 11, typeName: 'BPF_MAP_TYPE_LPM_TRIE', key: LpmKey, value: RuleSet, maxEntries: 4096, flags: 1 } as MapSpec<LpmKey, RuleSet>,
  /** Bumped by every writer of ot_prefixes or ot_mitigation after it writes (DataplaneMaps does it): it invalidates every slot of ot_dst_cache. Whoever edits those maps by hand (bpftool) must bump it too. */
  ot_generation: { name: 'ot_generation', type: 2, typeName: 'BPF_MAP_TYPE_ARRAY', key: U32, value: U64, maxEntries: 1, flags: 0 } as MapSpec<number, bigint>,
  /** Per-CPU cache of destination lookups, indexed by a hash of the destination. */
  ot_dst_cache: { name: 'ot_dst_cache', type: 6, typeName: 'BPF_MAP_TYPE_PERCPU_ARRAY', key: U32, value: DstCache, maxEntries: 256, flags: 0 } as MapSpec<number, DstCache>,
  ot_rl_state: { name: 'ot_rl_state', type: 6, typeName: 'BPF_MAP_TYPE_PERCPU_ARRAY', key: U32, value: RlBucket, maxEntries: 4096, flags: 0 } as MapSpec<number, RlBucket>,
  ot_rule_stats: { name: 'ot_rule_stats', type: 6, typeName: 'BPF_MAP_TYPE_PERCPU_ARRAY', key: U32, value: RuleStats, maxEntries: 4096, flags: 0 } as MapSpec<number, RuleStats>,
  /** Anycast GRE endpoints (IPv4) → flags (reserved, 0). */
  ot_anycast: { name: 'ot_anycast', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: Be32, value: U32, maxEntries: 256, flags: 0 } as MapSpec<number, number>,
  /** Customer GRE endpoint (IPv4) → account. */
  ot_gre_peers: { name: 'ot_gre_peers', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: Be32, value: GrePeer, maxEntries: 16384, flags: 0 } as MapSpec<number, GrePeer>,
  /** Account → delivery interface (a hash, not an array: updates replace the value atomically). */
  ot_delivery: { name: 'ot_delivery', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: U32, value: Delivery, maxEntries: 1024, flags: 0 } as MapSpec<number, Delivery>,
  /** (customer netns, tunnel MAC) → tunnel. */
  ot_tunnels: { name: 'ot_tunnels', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: TunnelKey, value: Tunnel, maxEntries: 65536, flags: 0 } as MapSpec<TunnelKey, Tunnel>,
  /** Customer routers: (router netns, outer destination, outer source) → tunnel device. */
  ot_cpe_decaps: { name: 'ot_cpe_decaps', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: CpeDecapKey, value: CpeDecap, maxEntries: 4096, flags: 1 } as MapSpec<CpeDecapKey, CpeDecap>,
  /** Customer routers: (router netns, tunnel device) → outer header. */
  ot_cpe_encaps: { name: 'ot_cpe_encaps', type: 1, typeName: 'BPF_MAP_TYPE_HASH', key: CpeEncapKey, value: CpeEncap, maxEntries: 4096, flags: 1 } as MapSpec<CpeEncapKey, CpeEncap>,
  /** The host netns's local table (both families; value: the route type, RTN_*, informational), kept by the agent: the fast path asks it whether an address is the host's (OT_CONFIG_F_FIB_DIRECT, OT_CONFIG_F_SRC_UNICAST). */
  ot_host_local: { name: 'ot_host_local', type: 11, typeName: 'BPF_MAP_TYPE_LPM_TRIE', key: LpmKey, value: U32, maxEntries: 4096, flags: 1 } as MapSpec<LpmKey, number>,
} as const;
export const RINGBUFS = {
  /** Sampled packets (struct ot_sample records). */
  ot_samples: { name: 'ot_samples', type: 27, record: Sample, bytes: 1048576 } as RingbufSpec<Sample>,
} as const;
