/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ABI between the eBPF data plane and the TypeScript control plane: every map, key, value, enum and constant
 * both sides use. src/kernel/bpf/abi.generated.ts is generated from this file (`make generate`); a unit test fails
 * when the generated file is stale, and another compiles this header with clang and checks every offset and size
 * the generator computed.
 *
 * The generator parses a deliberately small grammar, so keep to it:
 *  - `#define NAME <integer expression>` (numbers, earlier names, + - * << | and parentheses) or `#define NAME "text"`;
 *  - `enum ot_x { OT_X_A = <expr>, ... };` with an explicit value on every enumerator;
 *  - `struct ot_x { <type> name; <type> name[<expr>]; ... };` with types __u8 __u16 __u32 __u64 __be16 __be32 or
 *    `struct ot_y` declared above. Every struct is padded EXPLICITLY (fields named `_pad…`): the generator refuses
 *    implicit padding, so the layout is the same for every compiler and map keys never hold uninitialised bytes
 *    (the kernel compares hash and LPM keys byte by byte);
 *  - `OT_MAP(name, BPF_MAP_TYPE_x, key type, value type, max entries, flags)` and `OT_RINGBUF(name, record type, bytes)`: the
 *    includer defines both macros (bpf/lib/maps.h turns them into map definitions; the layout check defines them
 *    empty). Names of maps and programs are at most 15 characters (BPF_OBJ_NAME_LEN) and contain no '.' (bpffs).
 *  - comments anywhere; a comment right before a declaration, or after it on the same line, becomes its TS doc.
 * Nothing is included: BPF code gets __u8… from vmlinux.h, the layout check from <linux/types.h>.
 *
 * Conventions:
 *  - Multi-byte fields are host order (little-endian on every platform we build for) unless typed __be16/__be32.
 *  - Addresses in LPM keys are 16 bytes: IPv6 as is, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d) with prefix length
 *    96 + n. One key shape for both families means one map and one lookup per check instead of two of each.
 *  - Account 0 is "no account" (traffic not addressed to any customer prefix); accounts are small integers the
 *    agent assigns, below OT_MAX_ACCOUNTS.
 */
#ifndef OPENTRANSIT_ABI_H
#define OPENTRANSIT_ABI_H

/* Bumped on any incompatible change of a map's key or value (pinned maps of another version must be recreated). */
#define OT_ABI_VERSION 3 /* 2: 32 reason slots, ot_config.fwmark, the fast path; 3: ot_config.fib_table, ot_host_local */

#define OT_PROG_XDP_EDGE "ot_xdp_edge" /* the uplink XDP program (bpf/xdp_edge.c) */
#define OT_PROG_TC_GRE "ot_tc_gre" /* the GRE encap on the customer veth's tc egress (bpf/tc_gre.c) */
/* The fast path out of a customer netns: tc ingress of the host-side veth (bpf/tc_host_fwd.c) */
#define OT_PROG_TC_HOST_FWD "ot_tc_host_fwd"
/* The fast path into a customer netns after GRO: tc ingress of the uplink (bpf/tc_host_fwd.c, same object) */
#define OT_PROG_TC_UPLINK_IN "ot_tc_uplink_in"
/* The customer router side of a tunnel (the lab's and tests' customer routers, bpf/cpe_gre.c): */
#define OT_PROG_CPE_DECAP "ot_cpe_decap" /* GRE decap on the router uplink's tc ingress */
#define OT_PROG_CPE_ENCAP "ot_cpe_encap" /* GRE encap on a tunnel device's tc egress */

/* Accounts are 0..OT_MAX_ACCOUNTS-1; 0 means "no account". */
#define OT_MAX_ACCOUNTS 1024
/* Room for reasons in the counters (each account has this many slots; enum ot_reason must fit). */
#define OT_REASON_SLOTS 32
#define OT_COUNTER_SLOTS (OT_MAX_ACCOUNTS * OT_REASON_SLOTS)
/* IPv4 a.b.c.d/n is stored in LPM keys as ::ffff:a.b.c.d/(OT_LPM_V4_OFFSET + n). */
#define OT_LPM_V4_OFFSET 96
#define OT_BLOCKLIST_MAX 262144
/* The IPv4 index of the blocklist (ot_bl4_slash16, ot_bl4_pages, ot_bl4_l2: see the maps below and xdp_edge.c). */
#define OT_BL4_SLASH16S 65536
#define OT_BL4_PAGES 512 /* /16s with a whole bitmap of their own (8 KiB each, preallocated: 4 MiB) */
#define OT_BL4_L2_MAX 262144 /* /24 bitmaps of the /16s without a page; /16s that would need more: the trie */
#define OT_PREFIXES_MAX 65536
#define OT_MITIGATION_PREFIXES_MAX 4096
/* Rules evaluated per destination prefix, in order, first match wins. */
#define OT_RULES_PER_PREFIX 8
/* Slots of the per-CPU destination cache (ot_dst_cache): a power of two. */
#define OT_DST_CACHE_SLOTS 256
/* Rule slots: index of a rule's token bucket and statistics. */
#define OT_RULE_SLOTS 4096
#define OT_ANYCAST_MAX 256
#define OT_GRE_PEERS_MAX 16384
#define OT_TUNNELS_MAX 65536
/* Tunnels of every customer router sharing one pin directory (ot_cpe_decaps, ot_cpe_encaps). */
#define OT_CPE_TUNNELS_MAX 4096
/* Bytes of a packet copied into a sample record (from the start of the Ethernet header). */
#define OT_SAMPLE_BYTES 128
/* Ring buffer size: a power of two, a multiple of the page size. */
#define OT_SAMPLES_RING_BYTES (1 << 20)

/* A tunnel's MAC (the neighbour entry of a tunnel peer in a customer netns) starts with these two octets;
 * the other four identify the tunnel. A frame to such a MAC that has no tunnel is dropped and counted. */
#define OT_TUNNEL_MAC_0 0x02
#define OT_TUNNEL_MAC_1 0x4f
#define OT_TUNNEL_F_DF 1 /* tunnel flag: set Don't Fragment on the outer IPv4 header */
/* ot_config.flags: route customer traffic with bpf_fib_lookup instead of a pass through the host stack (the fast
 * path, bpf/lib/fastpath.h); off: xdp_edge and tc_host_fwd hand every packet to the host stack as before. */
#define OT_CONFIG_F_FAST_PATH 1
/* ot_config.flags set by the agent while the host netns's rules and routes make a shortcut the stack's own decision
 * (it checks them every resync and clears a flag when its premises no longer hold; src/agent/reconcile/
 * dataplane-fib.ts says which premises, bpf/lib/fastpath.h why they suffice). Each lets the fast path look a table up
 * directly (BPF_FIB_LOOKUP_DIRECT | TBID) instead of walking the policy rules, or skip a lookup: */
#define OT_CONFIG_F_FIB_DIRECT_IN 2 /* xdp_edge: customer destinations from the uplink → fib_table */
#define OT_CONFIG_F_FIB_DIRECT_GRE 4 /* tc_host_fwd: GRE to a customer router (ot_gre_peers), no mark → main */
#define OT_CONFIG_F_FIB_DIRECT 8 /* every other lookup (the host's rules are the kernel's and ours, nothing else) */
#define OT_CONFIG_F_SRC_UNICAST 16 /* rp_filter 0: no reverse lookup for a source outside ot_host_local */
/* Prefixes of the host netns's local table the agent copies into ot_host_local (more: the flags that read it off). */
#define OT_HOST_LOCAL_MAX 4096

/* What happened to a packet. Every reason belongs to one verdict: its name starts with the verdict's name. */
enum ot_verdict {
	OT_VERDICT_PASS = 0, /* handed to the kernel unchanged (XDP_PASS, TC_ACT_OK) */
	OT_VERDICT_DROP = 1, /* dropped (XDP_DROP, TC_ACT_SHOT) */
	OT_VERDICT_REDIRECT = 2, /* GRE decapsulated and redirected to a customer's veth (XDP_REDIRECT) */
	OT_VERDICT_ENCAP = 3, /* GRE encapsulated towards a customer router (TC_ACT_OK) */
	OT_VERDICT_FORWARD = 4, /* routed by the fast path: bpf_fib_lookup, TTL - 1, redirected (no host stack pass) */
};

/* Why: the second index of the counters. Each packet is counted under exactly one reason, once per program that
 * sees it; the reasons marked (tc) are tc_gre's, (fwd) tc_host_fwd's, (up) tc_uplink_in's (which counts only what goes to a
 * customer prefix), the others xdp_edge's. The customer router programs (cpe_gre.c)
 * count under account 0 with the same reasons: PASS (not GRE to one of its tunnels), DROP_MALFORMED,
 * DROP_GRE_UNSUPPORTED, REDIRECT_GRE (decapsulated onto the tunnel device), ENCAP_GRE, DROP_TUNNEL_MISS (a packet
 * on a tunnel device without a tunnel), DROP_ENCAP_FAILED. */
enum ot_reason {
	OT_REASON_PASS = 0, /* IP traffic that passed every check */
	OT_REASON_PASS_NON_IP = 1, /* not IPv4/IPv6 (ARP, LLDP…): not ours to judge */
	OT_REASON_DROP_MALFORMED = 2, /* truncated or inconsistent headers */
	OT_REASON_DROP_UNSUPPORTED = 3, /* stacked VLAN tags, more IPv6 extension headers than we walk */
	OT_REASON_DROP_BLOCKLIST = 4, /* source in the global blocklist */
	OT_REASON_DROP_RULE = 5, /* a mitigation rule with action drop */
	OT_REASON_DROP_RATELIMIT = 6, /* over a mitigation rule's rate */
	OT_REASON_REDIRECT_GRE = 7, /* GRE from a customer endpoint, decapsulated, redirected */
	OT_REASON_DROP_GRE_UNKNOWN = 8, /* GRE to an anycast endpoint from an unknown source */
	OT_REASON_DROP_GRE_UNSUPPORTED = 9, /* GRE with key/checksum/sequence/routing bits, version != 0, a fragment,
					       or a payload other than IPv4/IPv6 */
	OT_REASON_DROP_GRE_SPOOFED = 10, /* inner source outside the peer's account's prefixes */
	OT_REASON_DROP_GRE_NO_DELIVERY = 11, /* the peer's account has no delivery interface */
	OT_REASON_ENCAP_GRE = 12, /* encapsulated into a tunnel (tc) */
	OT_REASON_DROP_TUNNEL_MISS = 13, /* a frame to a tunnel MAC that has no tunnel (tc) */
	OT_REASON_DROP_ENCAP_FAILED = 14, /* a non-IP frame to a tunnel, or the kernel refused to grow the packet (tc) */
	OT_REASON_PASS_NOT_TUNNEL = 15, /* a frame leaving a customer netns not towards a tunnel MAC (tc) */
	OT_REASON_FORWARD_XDP = 16, /* to a customer prefix: routed by the kernel's FIB with the node's fwmark and
				       redirected to the customer's veth, skipping the host stack */
	OT_REASON_FORWARD_HOST = 17, /* from a customer netns: routed by the kernel's FIB and redirected out (fwd) */
	OT_REASON_PASS_HOST = 18, /* from a customer netns: left to the host stack (not eligible, or the FIB said
				     so: SYN, TTL, fragment, no neighbour, MTU, unreachable…) (fwd) */
	OT_REASON_FORWARD_UPLINK = 19, /* to a customer prefix, on the uplink after GRO (a TCP super-packet counts
					  once): routed like FORWARD_XDP and redirected to the customer's veth (up) */
	OT_REASON_PASS_UPLINK = 20, /* to a customer prefix, on the uplink after GRO: left to the host stack, as
				       PASS_HOST (up) */
};

/* Mitigation rule actions; 0 marks an unused rule. */
enum ot_action {
	OT_ACTION_DROP = 1,
	OT_ACTION_RATELIMIT = 2, /* token bucket: pass while tokens last, drop the rest */
	OT_ACTION_PASS = 3, /* stop evaluating: lets traffic skip later rules */
};

/* What the IPv4 blocklist index says about a /16: the low 8 bits of its ot_bl4_slash16 value (the page number,
 * for OT_BL4_PAGE, in the upper 24). */
enum ot_bl4 {
	OT_BL4_NONE = 0, /* no blocklist entry overlaps the /16: not blocked */
	OT_BL4_COVERED = 1, /* an entry of length <= 16 covers the whole /16: blocked */
	OT_BL4_PAGE = 2, /* only longer entries: bit (address & 0xffff) of its page in ot_bl4_pages decides */
	OT_BL4_HOSTS = 3, /* only longer entries, no page left: the /24's bitmap in ot_bl4_l2 decides (none: not blocked) */
	OT_BL4_TRIE = 4, /* neither a page nor room in ot_bl4_l2: ot_blocklist (the trie) decides */
};

/* Which program wrote a sample record. */
enum ot_hook {
	OT_HOOK_XDP_EDGE = 1,
	OT_HOOK_TC_GRE = 2,
};

/* Key of every LPM trie: the kernel's struct bpf_lpm_trie_key with 16 bytes of data. */
struct ot_lpm_key {
	__u32 prefixlen; /* bits of addr that count: IPv4 96 + n, IPv6 n */
	__u8 addr[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
};

/* Global settings: the single entry (key 0) of ot_config. */
struct ot_config {
	__u32 sample_every; /* copy one packet in N to ot_samples (random); 0 = off */
	__u32 flags; /* OT_CONFIG_F_* */
	__u32 fwmark; /* the node's packet mark for customer traffic (the host nft chain `mark`, ip rule fwmark → table) */
	__u32 fib_table; /* the customer routing table, the one our fwmark rule looks up (OT_CONFIG_F_FIB_DIRECT*) */
};

/* One counter slot (per CPU): index = account * OT_REASON_SLOTS + reason. */
struct ot_counter {
	__u64 packets;
	__u64 bytes; /* frame length as received (before decap or encap) */
};

/* One mitigation rule. Ranges are inclusive; a full range (0..max) matches anything. */
struct ot_rule {
	__u64 expires_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) after which the rule is ignored; 0 = never */
	__u32 slot; /* index into ot_rl_state and ot_rule_stats, < OT_RULE_SLOTS */
	__u32 rate_pps; /* OT_ACTION_RATELIMIT: tokens per second PER CPU (see xdp_edge.c for why per CPU) */
	__u32 burst; /* OT_ACTION_RATELIMIT: bucket depth PER CPU, packets */
	__u16 sport_min; /* TCP/UDP ports; a narrower range never matches packets without ports (ICMP, fragments) */
	__u16 sport_max;
	__u16 dport_min;
	__u16 dport_max;
	__u16 len_min; /* IP length: IPv4 total length, IPv6 40 + payload length */
	__u16 len_max;
	__u8 proto; /* IP protocol (IPv6: the upper-layer header); 0 = any */
	__u8 tcp_flags_mask; /* matches when (flags & mask) == value; a TCP-flags rule never matches non-TCP */
	__u8 tcp_flags_value;
	__u8 ttl_min; /* IPv4 TTL / IPv6 hop limit */
	__u8 ttl_max;
	__u8 action; /* enum ot_action; 0 = unused rule */
	__u8 _pad[2];
};

/* The value of ot_mitigation: the rules of one destination prefix. The longest matching prefix alone applies, so
 * the agent copies the rules of covering prefixes into each more specific prefix's set. */
struct ot_rule_set {
	__u32 count; /* rules in use, <= OT_RULES_PER_PREFIX */
	__u32 _pad;
	struct ot_rule rules[OT_RULES_PER_PREFIX];
};

/* Value of ot_bl4_pages: the blocked addresses of one /16. */
struct ot_bl4_page {
	__u8 bits[8192]; /* address .x.y blocked when bits[(x << 5) | (y >> 3)] & (1 << (y & 7)) */
};

/* Value of ot_bl4_l2 (key: the /24, i.e. the IPv4 address in host order >> 8): the blocked addresses of a /24. */
struct ot_bl4_hosts {
	__u8 bits[32]; /* address .h blocked when bits[h >> 3] & (1 << (h & 7)) */
};

/* One slot of ot_dst_cache (per CPU): what ot_prefixes and ot_mitigation said about one destination, valid while
 * ot_generation still holds `generation` (see xdp_edge.c). */
struct ot_dst_cache {
	__u64 generation; /* ot_generation when filled */
	__u8 dst[16]; /* the destination, in the LPM key form */
	__u32 account; /* ot_prefixes' answer (0: none) */
	__u8 valid; /* 0 = never filled */
	__u8 has_rules; /* ot_mitigation had a rule set: a copy is in rules */
	__u8 _pad[2];
	struct ot_rule_set rules;
};

/* Token bucket state of one rule slot (per CPU). The agent zeroes a slot when it assigns it to a rule. */
struct ot_rl_bucket {
	__u64 tokens; /* nano-tokens: one packet costs 1e9 */
	__u64 last_ns; /* 0 = never used (the bucket starts full) */
};

/* Statistics of one rule slot (per CPU). */
struct ot_rule_stats {
	__u64 packets; /* matched */
	__u64 bytes;
	__u64 dropped_packets;
	__u64 dropped_bytes;
};

/* The value of ot_gre_peers (key: the customer endpoint, __be32). */
struct ot_gre_peer {
	__u32 account;
	__u32 flags; /* reserved, 0 */
};

/* The value of ot_delivery (key: account): where decapsulated packets of an account go. */
struct ot_delivery {
	__u32 ifindex; /* host-side veth of the account's netns, in the uplink's netns; 0 = none */
	__u8 dmac[6]; /* the customer-side veth's MAC */
	__u8 smac[6]; /* the host-side veth's MAC */
	__u32 mtu6; /* the `mtu` of the account's IPv6 routes in the customer table (0: none). The stack forwards by it;
		       bpf_fib_lookup honours only a locked route MTU, so the fast path leaves bigger IPv6 packets to
		       the stack (which answers Packet Too Big) */
};

/* Key of ot_tunnels: the device's netns (cookie) and the destination MAC the kernel's route chose. */
struct ot_tunnel_key {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the customer netns */
	__u8 mac[6]; /* tunnel MAC: OT_TUNNEL_MAC_0, OT_TUNNEL_MAC_1, 4 octets of tunnel id */
	__u8 _pad[2];
};

/* Value of ot_tunnels: the outer header of a tunnel. */
struct ot_tunnel {
	__be32 local; /* outer source: the anycast endpoint */
	__be32 remote; /* outer destination: the customer router */
	__u32 account;
	__u8 ttl; /* outer TTL, 1..255 */
	__u8 flags; /* OT_TUNNEL_F_* */
	__u8 host_mac[6]; /* Ethernet destination after encap: the host-side veth */
};

/* Key of ot_cpe_decaps: GRE as it arrives at a customer router. */
struct ot_cpe_decap_key {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the router's netns */
	__be32 local; /* outer destination: the router's public address */
	__be32 remote; /* outer source: the anycast endpoint */
};

/* Value of ot_cpe_decaps: the tunnel device the inner packet is handed to (as if received there). */
struct ot_cpe_decap {
	__u32 ifindex; /* the tunnel device, in the router's netns */
	__u8 mac[6]; /* its MAC: the inner frame's Ethernet destination, so the stack takes it as addressed to us */
	__u8 _pad[2];
};

/* Key of ot_cpe_encaps: a tunnel device of a customer router. */
struct ot_cpe_encap_key {
	__u64 netns_cookie; /* SO_NETNS_COOKIE of the router's netns */
	__u32 ifindex; /* the tunnel device */
	__u32 _pad;
};

/* Value of ot_cpe_encaps: the outer header of a customer router's tunnel, and where it leaves. */
struct ot_cpe_encap {
	__be32 local; /* outer source: the router's public address */
	__be32 remote; /* outer destination: the anycast endpoint */
	__u32 uplink_ifindex; /* the device the encapsulated packet leaves by (next hop from the router's routes) */
	__u8 ttl; /* outer TTL, 1..255 */
	__u8 flags; /* OT_TUNNEL_F_* */
	__u8 _pad[2];
};

/* A sampled packet, as written to ot_samples. */
struct ot_sample {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u32 ifindex; /* receiving device */
	__u32 account;
	__u32 pkt_len; /* frame length */
	__u16 cap_len; /* bytes of data that hold the packet, <= OT_SAMPLE_BYTES */
	__u8 reason; /* enum ot_reason */
	__u8 hook; /* enum ot_hook */
	__u8 data[OT_SAMPLE_BYTES];
};

OT_MAP(ot_config, BPF_MAP_TYPE_ARRAY, __u32, struct ot_config, 1, 0)
/* Per-CPU counters: account * OT_REASON_SLOTS + reason. */
OT_MAP(ot_counters, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct ot_counter, OT_COUNTER_SLOTS, 0)
/* Global blocklist of sources; value: an operator-chosen list id (informational). The source of truth: IPv6
 * packets (and IPv4 in OT_BL4_TRIE /16s) look it up; ot_bl4_l1/ot_bl4_l2 are derived from its IPv4 entries. */
OT_MAP(ot_blocklist, BPF_MAP_TYPE_LPM_TRIE, struct ot_lpm_key, __u32, OT_BLOCKLIST_MAX, BPF_F_NO_PREALLOC)
/* IPv4 blocklist index, level 1: per /16 of the source (address >> 16), enum ot_bl4 | page << 8. */
OT_MAP(ot_bl4_slash16, BPF_MAP_TYPE_ARRAY, __u32, __u32, OT_BL4_SLASH16S, 0)
/* IPv4 blocklist index, level 2 for /16s in state OT_BL4_PAGE: page → bitmap of the /16. */
OT_MAP(ot_bl4_pages, BPF_MAP_TYPE_ARRAY, __u32, struct ot_bl4_page, OT_BL4_PAGES, 0)
/* IPv4 blocklist index, level 2 for /16s in state OT_BL4_HOSTS: /24 → its blocked addresses. */
OT_MAP(ot_bl4_l2, BPF_MAP_TYPE_HASH, __u32, struct ot_bl4_hosts, OT_BL4_L2_MAX, BPF_F_NO_PREALLOC)
/* Customer prefixes → account: attributes traffic by destination, and checks decapsulated sources. */
OT_MAP(ot_prefixes, BPF_MAP_TYPE_LPM_TRIE, struct ot_lpm_key, __u32, OT_PREFIXES_MAX, BPF_F_NO_PREALLOC)
/* Destination prefix → mitigation rules. */
OT_MAP(ot_mitigation, BPF_MAP_TYPE_LPM_TRIE, struct ot_lpm_key, struct ot_rule_set, OT_MITIGATION_PREFIXES_MAX,
       BPF_F_NO_PREALLOC)
/* Bumped by every writer of ot_prefixes or ot_mitigation after it writes (DataplaneMaps does it): it invalidates
 * every slot of ot_dst_cache. Whoever edits those maps by hand (bpftool) must bump it too. */
OT_MAP(ot_generation, BPF_MAP_TYPE_ARRAY, __u32, __u64, 1, 0)
/* Per-CPU cache of destination lookups, indexed by a hash of the destination. */
OT_MAP(ot_dst_cache, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct ot_dst_cache, OT_DST_CACHE_SLOTS, 0)
OT_MAP(ot_rl_state, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct ot_rl_bucket, OT_RULE_SLOTS, 0)
OT_MAP(ot_rule_stats, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, struct ot_rule_stats, OT_RULE_SLOTS, 0)
/* Anycast GRE endpoints (IPv4) → flags (reserved, 0). */
OT_MAP(ot_anycast, BPF_MAP_TYPE_HASH, __be32, __u32, OT_ANYCAST_MAX, 0)
/* Customer GRE endpoint (IPv4) → account. */
OT_MAP(ot_gre_peers, BPF_MAP_TYPE_HASH, __be32, struct ot_gre_peer, OT_GRE_PEERS_MAX, 0)
/* Account → delivery interface (a hash, not an array: updates replace the value atomically). */
OT_MAP(ot_delivery, BPF_MAP_TYPE_HASH, __u32, struct ot_delivery, OT_MAX_ACCOUNTS, 0)
/* (customer netns, tunnel MAC) → tunnel. */
OT_MAP(ot_tunnels, BPF_MAP_TYPE_HASH, struct ot_tunnel_key, struct ot_tunnel, OT_TUNNELS_MAX, 0)
/* Customer routers: (router netns, outer destination, outer source) → tunnel device. */
OT_MAP(ot_cpe_decaps, BPF_MAP_TYPE_HASH, struct ot_cpe_decap_key, struct ot_cpe_decap, OT_CPE_TUNNELS_MAX, BPF_F_NO_PREALLOC)
/* Customer routers: (router netns, tunnel device) → outer header. */
OT_MAP(ot_cpe_encaps, BPF_MAP_TYPE_HASH, struct ot_cpe_encap_key, struct ot_cpe_encap, OT_CPE_TUNNELS_MAX, BPF_F_NO_PREALLOC)
/* The host netns's local table (both families; value: the route type, RTN_*, informational), kept by the agent: the
 * fast path asks it whether an address is the host's (OT_CONFIG_F_FIB_DIRECT, OT_CONFIG_F_SRC_UNICAST). */
OT_MAP(ot_host_local, BPF_MAP_TYPE_LPM_TRIE, struct ot_lpm_key, __u32, OT_HOST_LOCAL_MAX, BPF_F_NO_PREALLOC)
/* Sampled packets (struct ot_sample records). */
OT_RINGBUF(ot_samples, struct ot_sample, OT_SAMPLES_RING_BYTES)

#endif /* OPENTRANSIT_ABI_H */
