/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * ot_xdp_edge — the uplink's XDP program (DESIGN.md §1):
 *   parse → blocklist (source LPM) → mitigation rules (destination LPM) → GRE from a customer endpoint to an
 *   anycast endpoint: strip the outer headers, check the inner source, redirect to the customer's netns →
 *   to a customer prefix: the fast path (route by the kernel's FIB with the node's fwmark, redirect to the
 *   customer's veth; lib/fastpath.h) → pass.
 * Every packet is counted exactly once, under (account, reason), by ot_finish(); 1 in N is copied to ot_samples.
 * A NIC with rx VLAN offload strips the tag before XDP runs: the program then sees (and parses) an untagged frame.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/parse.h"
#include "lib/fastpath.h"

char LICENSE[] SEC("license") = "GPL";

/* A host key: every field written explicitly (an initialiser would become a .rodata template map). */
static __always_inline void ot_lpm_host(struct ot_lpm_key *k, const __u8 *addr)
{
	k->prefixlen = 128;
	__builtin_memcpy(k->addr, addr, 16);
}

/* The account a destination belongs to (0 when none). */
static __always_inline __u32 ot_owner(const __u8 *addr)
{
	struct ot_lpm_key k;
	ot_lpm_host(&k, addr);
	__u32 *account = bpf_map_lookup_elem(&ot_prefixes, &k);
	return account ? *account : 0;
}

static __always_inline int ot_blocklisted_trie(const __u8 *addr)
{
	struct ot_lpm_key k;
	ot_lpm_host(&k, addr);
	return bpf_map_lookup_elem(&ot_blocklist, &k) != NULL;
}

/*
 * Is the source covered by any blocklist entry? (Presence only: the entry's value is informational.)
 *
 * Why an index for IPv4: a lookup in the kernel's LPM trie walks one node per branching bit and compares 16-byte
 * keys at each; with 10k entries that was ~140 ns per packet of a flood from a blocklisted source (the bench),
 * more than everything else xdp_edge does. A flood is what the blocklist is for, its sources are spoofed at
 * random (no cache helps), and IPv4 is what floods are made of, so IPv4 sources use an exact index the agent
 * derives from the trie's IPv4 entries (src/kernel/bpf/blocklist4.ts):
 *   ot_bl4_slash16, an array with one value per /16 (the JIT inlines the lookup: a bounds check and a load):
 *     NONE — no entry overlaps the /16: not blocked (most clean and rule-matched traffic stops here);
 *     COVERED — an entry of length <= 16 covers the /16: blocked;
 *     PAGE — a 64k-bit bitmap of the /16 in ot_bl4_pages (an array too: one more load and a bit test); the
 *       agent gives the 512 pages to the /16s with the most blocked /24s;
 *     HOSTS — the other /16s with longer entries: a hash /24 → 256-bit bitmap in ot_bl4_l2 (~25 ns more);
 *     TRIE — past ot_bl4_l2's size (a huge list of /17–/23s): the trie decides, as before.
 * All together say exactly what the trie says (a covering entry of length <= 16 covers the /16; one of 17–32 sets
 * the address's bit). The agent writes a page or bitmap before a /16 points to it and deletes bitmaps only after
 * no /16 does; a page changed in place is read either before or after, byte by byte, which is exact per address.
 * IPv6 keeps the trie: a v6 flood's sources are rarely in a list, and a lookup that leaves the trie at its root
 * (the usual miss) is cheap.
 */
static __always_inline int ot_blocklisted4(__be32 saddr, const __u8 *addr)
{
	__u32 a = bpf_ntohl(saddr);
	__u32 s16 = a >> 16;
	__u32 *e = bpf_map_lookup_elem(&ot_bl4_slash16, &s16);
	if (!e)
		return 0; /* cannot happen: the array has every /16 */
	__u32 v = *e;
	switch (v & 0xff) {
	case OT_BL4_NONE:
		return 0;
	case OT_BL4_COVERED:
		return 1;
	case OT_BL4_PAGE: {
		__u32 page = v >> 8;
		struct ot_bl4_page *pg = bpf_map_lookup_elem(&ot_bl4_pages, &page);
		return pg && (pg->bits[(a & 0xffff) >> 3] >> (a & 7)) & 1;
	}
	case OT_BL4_HOSTS: {
		__u32 net = a >> 8;
		struct ot_bl4_hosts *h = bpf_map_lookup_elem(&ot_bl4_l2, &net);
		return h && (h->bits[(a >> 3) & 31] >> (a & 7)) & 1;
	}
	default:
		return ot_blocklisted_trie(addr);
	}
}

static __always_inline int ot_blocklisted(const struct ot_pkt *p)
{
	if (p->family == 4)
		return ot_blocklisted4(p->src4, p->src);
	return ot_blocklisted_trie(p->src);
}

/* Copies the start of the packet to the ring buffer (the caller chose the packet). Not inlined: every exit of
 * ot_xdp_edge samples, and a dozen inlined copies of this body made the program 4k instructions, mostly cold. */
static __noinline int ot_sample_copy(struct xdp_md *ctx, __u32 account, __u32 reason, __u32 len)
{
	struct ot_sample *s = bpf_ringbuf_reserve(&ot_samples, sizeof(*s), 0);
	if (!s)
		return 0; /* ring full: the consumer is behind; sampling is best effort */
	/* 64 bits and an opaque barrier: the compiler must test the very register it passes to the helper, so the
	 * verifier sees cap in 1..128 (a __u32 is compared zero-extended but passed as the unextended register). */
	__u64 cap = len;
	if (cap > OT_SAMPLE_BYTES)
		cap = OT_SAMPLE_BYTES;
	asm volatile("" : "+r"(cap));
	__builtin_memset(s->data, 0, sizeof(s->data));
	if (cap < 1 || cap > OT_SAMPLE_BYTES || bpf_xdp_load_bytes(ctx, 0, s->data, cap)) {
		bpf_ringbuf_discard(s, 0);
		return 0;
	}
	s->ts_ns = bpf_ktime_get_ns();
	s->ifindex = ctx->ingress_ifindex;
	s->account = account;
	s->pkt_len = len;
	s->cap_len = cap;
	s->reason = reason;
	s->hook = OT_HOOK_XDP_EDGE;
	bpf_ringbuf_submit(s, 0);
	return 0;
}

/* Samples one packet in config.sample_every (random choice). */
static __always_inline void ot_sample(struct xdp_md *ctx, __u32 account, __u32 reason, __u32 len)
{
	__u32 zero = 0;
	struct ot_config *cfg = bpf_map_lookup_elem(&ot_config, &zero);
	if (!cfg || cfg->sample_every == 0 || len == 0)
		return;
	if (cfg->sample_every > 1 && bpf_get_prandom_u32() % cfg->sample_every != 0)
		return;
	ot_sample_copy(ctx, account, reason, len);
}

/* The one exit of every packet (but a redirect, which samples before it rewrites the packet). */
static __always_inline int ot_finish(struct xdp_md *ctx, __u32 account, __u32 reason, __u32 len, int action)
{
	ot_count(account, reason, len);
	ot_sample(ctx, account, reason, len);
	return action;
}

/*
 * Token bucket of a rate-limit rule, one per CPU (ot_rl_state is a per-CPU array), with rate and burst per CPU.
 * Why per CPU: a rule that rate-limits is under attack by definition, often at millions of packets per second
 * spread over every RX queue; one shared bucket would bounce its cache line between all CPUs (or serialise them
 * on a spin lock) exactly then. The cost is precision: the total admitted is rate × (CPUs that see the traffic),
 * at most the configured total when the agent divides it by the CPU count, and less when RSS puts a flow on one
 * queue — it errs on the side of dropping more. Tokens are nano-packets so rates need no division per packet.
 */
static __always_inline int ot_bucket_take(const struct ot_rule *r, __u64 now)
{
	__u32 slot = r->slot;
	struct ot_rl_bucket *b = bpf_map_lookup_elem(&ot_rl_state, &slot);
	if (!b || r->rate_pps == 0)
		return 0; /* no state (slot out of range) or a zero rate: fail closed */
	__u64 cap = (__u64)r->burst * NSEC_PER_SEC;
	if (b->last_ns == 0) {
		b->tokens = cap; /* a new bucket starts full */
	} else if (now > b->last_ns) {
		__u64 elapsed = now - b->last_ns;
		__u64 room = cap > b->tokens ? cap - b->tokens : 0;
		/* elapsed * rate overflows 64 bits only after 2^32 ns (4.3 s) at rate 2^32; past that, compare times. */
		if (elapsed < (1ULL << 32)) {
			__u64 add = elapsed * r->rate_pps;
			b->tokens = add >= room ? cap : b->tokens + add;
		} else {
			b->tokens = elapsed >= cap / r->rate_pps ? cap : b->tokens + elapsed * r->rate_pps;
		}
	}
	b->last_ns = now;
	if (b->tokens >= NSEC_PER_SEC) {
		b->tokens -= NSEC_PER_SEC;
		return 1;
	}
	return 0;
}

static __always_inline int ot_rule_matches(const struct ot_rule *r, const struct ot_pkt *p)
{
	if (r->proto && r->proto != p->proto)
		return 0;
	if (p->ip_len < r->len_min || p->ip_len > r->len_max)
		return 0;
	if (p->ttl < r->ttl_min || p->ttl > r->ttl_max)
		return 0;
	int any_sport = r->sport_min == 0 && r->sport_max == 0xffff;
	int any_dport = r->dport_min == 0 && r->dport_max == 0xffff;
	if (!any_sport || !any_dport) {
		if (!p->has_ports)
			return 0;
		if (p->sport < r->sport_min || p->sport > r->sport_max)
			return 0;
		if (p->dport < r->dport_min || p->dport > r->dport_max)
			return 0;
	}
	if (r->tcp_flags_mask) {
		if (p->proto != IPPROTO_TCP || !p->has_ports)
			return 0;
		if ((p->tcp_flags & r->tcp_flags_mask) != r->tcp_flags_value)
			return 0;
	}
	return 1;
}

static __always_inline void ot_rule_stat(__u32 slot, __u32 len, int dropped)
{
	struct ot_rule_stats *st = bpf_map_lookup_elem(&ot_rule_stats, &slot);
	if (!st)
		return;
	st->packets += 1;
	st->bytes += len;
	if (dropped) {
		st->dropped_packets += 1;
		st->dropped_bytes += len;
	}
}

/*
 * What the destination's tables say: its account (ot_prefixes) and its rule set (ot_mitigation), or NULL.
 *
 * Why a per-CPU cache: the two LPM lookups cost ~10 ns per trie level (~70 ns with the bench's 13 mitigation
 * prefixes), on every packet. A flood, which is when the cost matters, aims at one or a few destinations, so a
 * small direct-mapped cache per CPU (a slot per hash of the destination, 256 slots) answers almost every packet
 * of it with one inlined array lookup and a 16-byte compare. A slot is valid only for the ot_generation it was
 * filled under: every writer of either map bumps it afterwards (the generation is read BEFORE the lookups, so a
 * slot filled while a write was going on holds the old generation and is refilled). The rule set is copied into
 * the slot (rules are read from the copy; expiry is still evaluated per packet; token buckets and statistics are
 * per slot number, outside). Per CPU: no locks, no shared cache line; a miss costs the two lookups plus the copy.
 */
static __always_inline const struct ot_rule_set *ot_dst_tables(const struct ot_pkt *p, __u32 *account)
{
	__u32 zero = 0;
	__u64 *genp = bpf_map_lookup_elem(&ot_generation, &zero);
	__u64 gen = genp ? *genp : 0;
	__u32 fold;
	if (p->family == 4) {
		fold = p->dst4;
	} else {
		__u32 w[4];
		__builtin_memcpy(w, p->dst, 16);
		fold = w[0] ^ w[1] ^ w[2] ^ w[3];
	}
	__u32 idx = (fold * 2654435761u) >> 24; /* Fibonacci hashing: the top 8 bits, OT_DST_CACHE_SLOTS == 256 */
	struct ot_dst_cache *c = bpf_map_lookup_elem(&ot_dst_cache, &idx);
	if (c && c->valid && c->generation == gen) {
		__u64 a[2], b[2];
		__builtin_memcpy(a, c->dst, 16);
		__builtin_memcpy(b, p->dst, 16);
		if (a[0] == b[0] && a[1] == b[1]) {
			*account = c->account;
			return c->has_rules ? &c->rules : NULL;
		}
	}
	*account = ot_owner(p->dst);
	struct ot_lpm_key k;
	ot_lpm_host(&k, p->dst);
	struct ot_rule_set *set = bpf_map_lookup_elem(&ot_mitigation, &k);
	if (!c)
		return set; /* cannot happen: idx < OT_DST_CACHE_SLOTS */
	c->valid = 1;
	c->generation = gen;
	__builtin_memcpy(c->dst, p->dst, 16);
	c->account = *account;
	c->has_rules = set != NULL;
	if (!set)
		return NULL;
	__builtin_memcpy(&c->rules, set, sizeof(c->rules));
	return &c->rules;
}

_Static_assert(OT_DST_CACHE_SLOTS == 256, "ot_dst_tables takes the top 8 bits of the hash");

/* The mitigation rules of the longest destination prefix (`set`, may be NULL), first match wins. Returns a drop
 * reason or 0. */
static __always_inline __u32 ot_mitigate(const struct ot_rule_set *set, const struct ot_pkt *p, __u32 len)
{
	if (!set)
		return 0;
	__u32 count = set->count;
	__u64 now = 0;
	for (int i = 0; i < OT_RULES_PER_PREFIX; i++) {
		if (i >= count)
			break;
		const struct ot_rule *r = &set->rules[i];
		if (r->action == 0)
			continue;
		if (r->expires_ns) {
			if (!now)
				now = bpf_ktime_get_ns();
			if (now >= r->expires_ns)
				continue;
		}
		if (!ot_rule_matches(r, p))
			continue;
		__u32 reason = 0;
		if (r->action == OT_ACTION_DROP) {
			reason = OT_REASON_DROP_RULE;
		} else if (r->action == OT_ACTION_RATELIMIT) {
			if (!now)
				now = bpf_ktime_get_ns();
			if (!ot_bucket_take(r, now))
				reason = OT_REASON_DROP_RATELIMIT;
		} else if (r->action != OT_ACTION_PASS) {
			continue; /* unknown action: as if the rule were absent */
		}
		ot_rule_stat(r->slot, len, reason != 0);
		return reason;
	}
	return 0;
}

/*
 * GRE to an anycast endpoint: only plain GRE (RFC 2784 without checksum, RFC 2890 key and sequence number: every
 * flag and version bit zero) from a known customer endpoint, carrying IPv4 or IPv6 whose source lies in that
 * customer's prefixes (anti-spoofing), is decapsulated and redirected to the customer's host-side veth.
 * The redirect target is an ifindex (bpf_redirect), resolved in the uplink's netns, where the host-side veths live;
 * DESIGN.md §2: the veth peer inside the customer netns needs GRO on, or redirected frames vanish.
 */
static __always_inline int ot_gre(struct xdp_md *ctx, struct ot_pkt *p, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	struct ot_gre_peer *peer = bpf_map_lookup_elem(&ot_gre_peers, &p->src4);
	if (!peer)
		return ot_finish(ctx, 0, OT_REASON_DROP_GRE_UNKNOWN, len, XDP_DROP);
	__u32 account = peer->account;
	if (p->fragment)
		return ot_finish(ctx, account, OT_REASON_DROP_GRE_UNSUPPORTED, len, XDP_DROP);

	__u16 off = p->l4_off;
	if (!OT_BOUND(off))
		return ot_finish(ctx, account, OT_REASON_DROP_UNSUPPORTED, len, XDP_DROP);
	__be16 *gre = data + off;
	if ((void *)(gre + 2) > end || off + 4 > p->l3_end)
		return ot_finish(ctx, account, OT_REASON_DROP_MALFORMED, len, XDP_DROP);
	__be16 inner_proto = gre[1];
	if (gre[0] != 0 || (inner_proto != bpf_htons(ETH_P_IP) && inner_proto != bpf_htons(ETH_P_IPV6)))
		return ot_finish(ctx, account, OT_REASON_DROP_GRE_UNSUPPORTED, len, XDP_DROP);

	/* The inner header: enough of it to know its source, consistent with the outer datagram. */
	__u16 ioff = off + 4;
	__u16 iroom = p->l3_end - ioff;
	struct ot_lpm_key k;
	k.prefixlen = 128;
	if (inner_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ioff;
		if ((void *)(ip + 1) > end || iroom < sizeof(*ip) || ip->version != 4 || ip->ihl < 5 ||
		    bpf_ntohs(ip->tot_len) > iroom || bpf_ntohs(ip->tot_len) < ip->ihl * 4)
			return ot_finish(ctx, account, OT_REASON_DROP_MALFORMED, len, XDP_DROP);
		ot_v4_mapped(k.addr, ip->saddr);
	} else {
		struct ipv6hdr *ip6 = data + ioff;
		if ((void *)(ip6 + 1) > end || iroom < sizeof(*ip6) || ip6->version != 6 ||
		    (__u32)bpf_ntohs(ip6->payload_len) + sizeof(*ip6) > iroom)
			return ot_finish(ctx, account, OT_REASON_DROP_MALFORMED, len, XDP_DROP);
		__builtin_memcpy(k.addr, &ip6->saddr, 16);
	}
	__u32 *owner = bpf_map_lookup_elem(&ot_prefixes, &k);
	if (!owner || *owner != account)
		return ot_finish(ctx, account, OT_REASON_DROP_GRE_SPOOFED, len, XDP_DROP);

	struct ot_delivery *dl = bpf_map_lookup_elem(&ot_delivery, &account);
	if (!dl || dl->ifindex == 0)
		return ot_finish(ctx, account, OT_REASON_DROP_GRE_NO_DELIVERY, len, XDP_DROP);
	__u32 ifindex = dl->ifindex;
	__u8 dmac[ETH_ALEN], smac[ETH_ALEN];
	__builtin_memcpy(dmac, dl->dmac, ETH_ALEN);
	__builtin_memcpy(smac, dl->smac, ETH_ALEN);

	/* Sample the packet as it arrived, before the outer headers go. */
	ot_sample(ctx, account, OT_REASON_REDIRECT_GRE, len);
	/* Keep room for a new Ethernet header in front of the inner packet (the VLAN tag goes too). */
	if (bpf_xdp_adjust_head(ctx, (int)ioff - ETH_HLEN)) {
		ot_count(account, OT_REASON_DROP_MALFORMED, len);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end) {
		ot_count(account, OT_REASON_DROP_MALFORMED, len);
		return XDP_DROP;
	}
	__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, smac, ETH_ALEN);
	eth->h_proto = inner_proto;
	ot_count(account, OT_REASON_REDIRECT_GRE, len);
	return bpf_redirect(ifindex, 0);
}

/*
 * The fast path into a customer netns (lib/fastpath.h): a UDP or GRE packet to a customer prefix that passed mitigation is
 * routed by bpf_fib_lookup with the node's fwmark — the host's own `ip rule fwmark → table` and the customer's
 * route in that table decide — and redirected to the host-side veth the route names. The veth's peer has GRO on
 * (the agent sets it when it creates the pair): without it (or an XDP program there) redirected frames vanish
 * (DESIGN §2). Returns the output ifindex with the packet rewritten (TTL - 1, MACs), after sampling it as it
 * arrived; 0: the host stack takes it, untouched.
 */
static __always_inline __u32 ot_fast_in(struct xdp_md *ctx, const struct ot_pkt *p, __u32 account, __u32 len)
{
	__u32 zero = 0;
	struct ot_config *cfg = bpf_map_lookup_elem(&ot_config, &zero);
	if (!cfg || !(cfg->flags & OT_CONFIG_F_FAST_PATH) || cfg->fwmark == 0)
		return 0;
	/* untagged (a tagged frame belongs to a VLAN device), not a fragment, a protocol we route (not SYN) */
	if (p->l3_off != ETH_HLEN || p->fragment || !ot_fwd_proto_ok(p->proto, p->tcp_flags))
		return 0;
	if ((p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) && !p->has_ports)
		return 0;
	/*
	 * TCP stays on the host stack inbound. A redirected frame reaches the customer netns as a fresh skb built from
	 * the xdp_frame (no checksum state, no GSO), while the stack's GRO on the uplink merges a stream into super-
	 * packets that every later hop (customer netns, encap, tc_host_fwd) handles once per 64 KB. Measured in the
	 * full-path bench on one machine state: TCP through the customer netns without GRE 1.7 Gbit/s redirected here vs
	 * 2.65 on the stack (plain routing 2.9). After GRO, tc_uplink_in (tc_host_fwd.c) takes the super-packets into the
	 * customer netns; outbound, tc_host_fwd keeps the skb and still takes TCP.
	 */
	if (p->proto == IPPROTO_TCP)
		return 0;
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	/* eth_type_trans: a frame not to the device's own MAC is not PACKET_HOST, and ip_forward drops it */
	struct xdp_buff *xb = bpf_cast_to_kern_ctx(ctx);
	struct net_device *dev = xb->rxq->dev; /* plain loads, not BPF_CORE_READ (lib/fastpath.h, ot_v4_devconf) */
	if (!dev)
		return 0;
	const unsigned char *dev_addr = dev->dev_addr; /* a byte pointer: the verifier lets only a helper read it */
	__u8 mac[ETH_ALEN];
	if (!dev_addr || bpf_probe_read_kernel(mac, ETH_ALEN, dev_addr))
		return 0;
	for (int i = 0; i < ETH_ALEN; i++)
		if (mac[i] != eth->h_dest[i])
			return 0;

	struct ot_fwd_in in;
	in.ifindex = ctx->ingress_ifindex;
	in.mark = cfg->fwmark; /* a customer's destination: the host's nft `mark` chain would set it */
	in.flags = cfg->flags;
	in.fwmark = cfg->fwmark;
	in.fib_table = cfg->fib_table;
	/* a key of ot_prefixes, from the uplink, with our mark: the agent sets the flag only while no local route
	 * covers such a key and no rule but the kernel's and ours can match such a lookup */
	in.table = (cfg->flags & (OT_CONFIG_F_FIB_DIRECT_IN | OT_CONFIG_F_FIB_DIRECT)) ? cfg->fib_table : 0;
	in.mtu_len = p->ip_len;
	in.proto = p->proto;
	in._pad = 0;
	in.sport = bpf_htons(p->sport);
	in.dport = bpf_htons(p->dport);
	struct ot_fwd_out o;
	if (p->family == 4) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > end)
			return 0;
		struct ot_v4_devconf conf;
		if (ot_fwd_v4(ctx, ip, dev, &in, &conf, &o))
			return 0;
		ot_sample(ctx, account, OT_REASON_FORWARD_XDP, len);
		ot_fwd_commit_v4(eth, ip, &o);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > end)
			return 0;
		if (p->l4_off != ETH_HLEN + sizeof(*ip6))
			return 0; /* extension headers: hop-by-hop options (router alert) and the like are the stack's */
		if (!ot_fits_account_mtu6(account, p->ip_len))
			return 0; /* too big for the customer's IPv6 route: the stack sends Packet Too Big */
		if (ot_fwd_v6(ctx, ip6, &in, &o))
			return 0;
		ot_sample(ctx, account, OT_REASON_FORWARD_XDP, len);
		ot_fwd_commit_v6(eth, ip6, &o);
	}
	return o.ifindex;
}

SEC("xdp")
int ot_xdp_edge(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len = end - data;
	struct ot_pkt p = {};

	int verdict = ot_parse(data, end, &p);
	if (verdict != OT_PARSED) {
		/* Attribute to the destination's account when the IP header got that far. */
		__u32 account = p.family ? ot_owner(p.dst) : 0;
		int action = verdict == OT_REASON_PASS_NON_IP ? XDP_PASS : XDP_DROP;
		return ot_finish(ctx, account, verdict, len, action);
	}
	__u32 account;
	const struct ot_rule_set *set = ot_dst_tables(&p, &account);
	if (ot_blocklisted(&p))
		return ot_finish(ctx, account, OT_REASON_DROP_BLOCKLIST, len, XDP_DROP);
	__u32 dropped = ot_mitigate(set, &p, len);
	if (dropped)
		return ot_finish(ctx, account, dropped, len, XDP_DROP);
	if (p.family == 4 && p.proto == IPPROTO_GRE && bpf_map_lookup_elem(&ot_anycast, &p.dst4))
		return ot_gre(ctx, &p, len);
	if (account) {
		__u32 out = ot_fast_in(ctx, &p, account, len);
		if (out) {
			ot_count(account, OT_REASON_FORWARD_XDP, len);
			return bpf_redirect(out, 0);
		}
	}
	return ot_finish(ctx, account, OT_REASON_PASS, len, XDP_PASS);
}
