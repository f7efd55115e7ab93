/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * ot_tc_host_fwd — the fast path out of a customer netns, on the tc ingress of the customer's host-side veth
 * (lib/fastpath.h says what "fast path" promises). What leaves a customer netns towards the host is either GRE
 * that tc_gre encapsulated towards a customer router, or plain traffic the customer netns routed back (replies
 * that came in through a tunnel, traffic between customers). The host's stack would: mark it when the destination
 * is a customer's (nft chain `mark`), route it (ip rule fwmark → table, or the main table), clamp SYNs (nft chain
 * `mss`), decrement the TTL and send it out. This program does the same with bpf_fib_lookup and bpf_redirect for
 * every packet it can prove the stack would forward unchanged but for the TTL, and leaves the rest (SYNs, ICMP,
 * fragments, IP options, TTL <= 1, no neighbour yet, too big, unreachable, local destinations…) to the stack.
 * One program for every customer veth; counted per packet under FORWARD_HOST or PASS_HOST.
 *
 * ot_tc_uplink_in — the same fast path into a customer netns, on the tc ingress of the uplink, for what xdp_edge
 * passed to the stack towards a customer prefix: TCP (xdp_edge leaves it to the stack, lib/fastpath.h's callers
 * say why) and whatever else it could not take. It runs after GRO, so a TCP stream is routed once per super-packet
 * (up to 64 KB) instead of once per segment (xdp_edge), and skips the host netns's IP stack (ip_rcv, the nft `mark`
 * chain, the policy rule walk, ip_forward) and, with bpf_redirect_peer, the veth's transmit, ring and the peer's
 * NAPI poll: measured in the full-path bench (TCP, client and server pinned, 16 interleaved rounds, twice): +7 % and
 * +5 % throughput (median of per-round ratios), full ÷ plain routing 0.851 → 0.915 and 0.813 → 0.900; a plain
 * bpf_redirect (veth and NAPI kept) gained nothing measurable. Only destinations in ot_prefixes: anything else on
 * the uplink (the node's own traffic, BGP, transit) is not its business and is neither touched nor counted
 * (xdp_edge counted it).
 * Counted under FORWARD_UPLINK or PASS_UPLINK (per skb: a super-packet counts once; xdp_edge counted its segments).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/parse.h"
#include "lib/fastpath.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_REDIRECT 7
#define OT_GRE_HLEN 4
/* Headers the program reads: Ethernet + outer IPv4 + GRE + inner IPv6 + TCP up to its flags and data offset. */
#define OT_FWD_PULL (ETH_HLEN + 20 + OT_GRE_HLEN + 40 + 20)

/* The length of one segment of a GSO packet at the IP layer (what skb_gso_validate_network_len checks against
 * the MTU): headers up to and including the (inner) transport header, plus gso_size. Counts the inner UDP header
 * of encapsulated UDP too, which the kernel's own count leaves out: one more reason to refuse, never one less.
 * 0 when the packet is not one we can size (the stack takes it). */
static __always_inline __u32 ot_gso_seglen(void *data, void *end, __u32 l3_len, __u8 proto, __u32 gso_size)
{
	__u32 off = ETH_HLEN + l3_len;
	if (proto == IPPROTO_GRE) {
		__be16 *gre = data + off;
		if ((void *)(gre + 2) > end || gre[0] != 0)
			return 0; /* only our plain GRE (tc_gre.c): no optional fields */
		off += OT_GRE_HLEN;
		if (gre[1] == bpf_htons(ETH_P_IP)) {
			struct iphdr *in = data + off;
			if ((void *)(in + 1) > end)
				return 0;
			proto = in->protocol;
			off += in->ihl * 4;
		} else if (gre[1] == bpf_htons(ETH_P_IPV6)) {
			struct ipv6hdr *in6 = data + off;
			if ((void *)(in6 + 1) > end)
				return 0;
			proto = in6->nexthdr;
			off += sizeof(*in6);
		} else {
			return 0;
		}
	}
	if (off > OT_FWD_PULL)
		return 0;
	if (proto == IPPROTO_UDP)
		return off - ETH_HLEN + sizeof(struct udphdr) + gso_size;
	if (proto != IPPROTO_TCP)
		return 0;
	struct tcphdr *th = data + off;
	if ((void *)(th + 1) > end)
		return 0;
	return off - ETH_HLEN + th->doff * 4 + gso_size;
}

/* ip_forward's skb->priority = rt_tos2priority(tos) (net.ipv4.ip_forward_update_priority, on by default):
 * ip_tos2prio[] is 0, 2, 6, 4 (best effort, bulk, interactive, interactive bulk) for each quarter of its 16 slots. */
static __always_inline __u32 ot_tos2priority(__u8 tos)
{
	__u32 quarter = ((tos & 0x1e) >> 1) >> 2;
	return quarter == 0 ? 0 : quarter == 1 ? 2 : quarter == 2 ? 6 : 4;
}

/* GRE to a customer router (ot_gre_peers): what tc_gre made of the customer's traffic. NULL for anything else. */
static __always_inline struct ot_gre_peer *ot_gre_to_peer(__u8 family, __u8 proto, __be32 daddr)
{
	if (family != 4 || proto != IPPROTO_GRE)
		return NULL;
	return bpf_map_lookup_elem(&ot_gre_peers, &daddr);
}

/* Returns the output ifindex with the packet rewritten, or 0 (untouched: the stack takes it). Sets *account.
 * from_uplink (a constant per program): the packet came in from the internet (ot_tc_uplink_in): only a customer's
 * destination is taken (*account stays 0 for anything else), routed like xdp_edge's fast path routes it. */
static __always_inline __u32 ot_host_fwd(struct __sk_buff *skb, __u32 *account, const int from_uplink)
{
	__u32 zero = 0;
	struct ot_config *cfg = bpf_map_lookup_elem(&ot_config, &zero);
	if (!cfg || !(cfg->flags & OT_CONFIG_F_FAST_PATH) || cfg->fwmark == 0)
		return 0;
	if (skb->pkt_type != OT_PACKET_HOST)
		return 0; /* ip_forward drops what was not addressed to us */
	if (skb->vlan_present)
		return 0; /* a tag the device accelerated away: the frame belongs to a VLAN device */
	__u32 len = skb->len;
	__u32 skb_mark = skb->mark; /* read here: clang would otherwise select between two ctx offsets, which the
				       verifier refuses */
	asm volatile("" : "+r"(skb_mark));
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (data + OT_FWD_PULL > end && data + len > end) {
		/* headers outside the linear part: bring them in (no byte changes; the stack would pull them too) */
		if (bpf_skb_pull_data(skb, len < OT_FWD_PULL ? len : OT_FWD_PULL))
			return 0;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;

	struct ot_fwd_in in;
	in.ifindex = skb->ifindex;
	in._pad = 0;
	struct ot_lpm_key k;
	k.prefixlen = 128;
	__u32 l3_len, ip_len;
	__u8 proto, family, tos = 0;
	__be32 daddr4 = 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl != 5)
			return 0;
		ip_len = bpf_ntohs(ip->tot_len);
		if (ip_len < sizeof(*ip) || ip_len > len - ETH_HLEN)
			return 0;
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
			return 0;
		family = 4;
		proto = ip->protocol;
		tos = ip->tos;
		daddr4 = ip->daddr;
		l3_len = sizeof(*ip);
		ot_v4_mapped(k.addr, ip->daddr);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end || ip6->version != 6)
			return 0;
		ip_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
		if (ip_len > len - ETH_HLEN)
			return 0; /* also a jumbogram's payload length 0 with a hop-by-hop option: refused below anyway */
		family = 6;
		proto = ip6->nexthdr; /* an extension header is no protocol we take: refused below */
		l3_len = sizeof(*ip6);
		__builtin_memcpy(k.addr, &ip6->daddr, 16);
	} else {
		return 0;
	}

	/* the host's nft `mark` chain: daddr in a customer prefix → meta mark set fwmark */
	__u32 *owner = bpf_map_lookup_elem(&ot_prefixes, &k);
	if (from_uplink && !owner)
		return 0;
	/* counted under the destination's owner, or for GRE the customer router's account */
	struct ot_gre_peer *peer = owner || from_uplink ? NULL : ot_gre_to_peer(family, proto, daddr4);
	*account = owner ? *owner : peer ? peer->account : 0;
	in.mark = owner ? cfg->fwmark : skb_mark;
	in.flags = cfg->flags;
	in.fwmark = cfg->fwmark;
	in.fib_table = cfg->fib_table;
	/* A table straight away when a flag vouches for the rules (lib/fastpath.h, ot_direct_table): keys of
	 * ot_prefixes and ot_gre_peers are never under a local route while a flag is on; any other destination is
	 * looked up in ot_host_local. From the uplink to a key of ot_prefixes with our mark is the very class
	 * OT_CONFIG_F_FIB_DIRECT_IN vouches for (xdp_edge's): the customer table. */
	in.table = 0;
	if (from_uplink) {
		if (cfg->flags & (OT_CONFIG_F_FIB_DIRECT_IN | OT_CONFIG_F_FIB_DIRECT))
			in.table = cfg->fib_table;
	} else if (peer && skb_mark == 0 && (cfg->flags & (OT_CONFIG_F_FIB_DIRECT_GRE | OT_CONFIG_F_FIB_DIRECT))) {
		in.table = OT_RT_TABLE_MAIN;
	} else if ((cfg->flags & OT_CONFIG_F_FIB_DIRECT) && (owner || peer || !ot_is_host_local(k.addr))) {
		in.table = ot_direct_table(&in, in.mark);
	}

	__u8 tcp_flags = 0;
	in.sport = 0;
	in.dport = 0;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		struct udphdr *uh = data + ETH_HLEN + l3_len; /* the ports sit alike in both */
		if ((void *)(uh + 1) > end)
			return 0;
		in.sport = uh->source;
		in.dport = uh->dest;
		if (proto == IPPROTO_TCP) {
			struct tcphdr *th = (void *)uh;
			if ((void *)(th + 1) > end)
				return 0;
			tcp_flags = ((__u8 *)th)[13];
		}
	}
	if (!ot_fwd_proto_ok(proto, tcp_flags))
		return 0;
	in.proto = proto;
	in.mtu_len = ip_len;
	if (skb->gso_size) {
		__u32 seg = ot_gso_seglen(data, end, l3_len, proto, skb->gso_size);
		if (seg == 0 || seg > 0xffff)
			return 0;
		in.mtu_len = seg;
	}

	struct ot_fwd_out o;
	if (family == 4) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return 0;
		struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
		struct net_device *dev = kskb->dev; /* a plain load (lib/fastpath.h, ot_v4_devconf) */
		struct ot_v4_devconf conf;
		if (!dev || ot_fwd_v4(skb, ip, dev, &in, &conf, &o))
			return 0;
		ot_fwd_commit_v4(eth, ip, &o);
		if (conf.fwd_update_priority)
			skb->priority = ot_tos2priority(tos);
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return 0;
		if (owner && !ot_fits_account_mtu6(*owner, in.mtu_len))
			return 0; /* too big for that customer's IPv6 route: the stack sends Packet Too Big */
		if (ot_fwd_v6(skb, ip6, &in, &o))
			return 0;
		ot_fwd_commit_v6(eth, ip6, &o);
	}
	/* what the forwarded skb would carry: the mark (qdisc classifiers read it), no receive timestamp
	 * (ip_forward_finish clears it; fq would take it for a departure time) */
	skb->mark = in.mark;
	skb->tstamp = 0;
	return o.ifindex;
}

SEC("tc")
int ot_tc_host_fwd(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 account = 0;
	__u32 out = ot_host_fwd(skb, &account, 0);
	if (out) {
		ot_count(account, OT_REASON_FORWARD_HOST, len);
		return bpf_redirect(out, 0);
	}
	ot_count(account, OT_REASON_PASS_HOST, len);
	return TC_ACT_OK;
}

SEC("tc")
int ot_tc_uplink_in(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 account = 0;
	__u32 out = ot_host_fwd(skb, &account, 1);
	if (out) {
		ot_count(account, OT_REASON_FORWARD_UPLINK, len);
		/* The account's own host-side veth (its delivery device): straight into the peer inside the customer netns
		 * (bpf_redirect_peer: the veth's transmit, its ring and the peer's NAPI poll are skipped; the packet is
		 * received by edge0 as if it had come over the pair). Any other device the FIB names: transmitted. */
		struct ot_delivery *dl = bpf_map_lookup_elem(&ot_delivery, &account);
		if (dl && dl->ifindex == out) {
			/* what crossing the pair into another netns leaves (skb_scrub_packet with xnet): no mark, no
			 * timestamp; the peer redirect scrubs as within one netns and would keep our fwmark */
			skb->mark = 0;
			return bpf_redirect_peer(out, 0);
		}
		return bpf_redirect(out, 0);
	}
	if (account)
		ot_count(account, OT_REASON_PASS_UPLINK, len);
	/* not TC_ACT_OK: that would end the classification, and filters after ours on the uplink would not run */
	return TC_ACT_UNSPEC;
}
