/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* GRE in tc programs (struct __sk_buff): the device's netns, and pushing plain outer IPv4 + GRE (RFC 2784, no
 * optional fields). Shared by the edge's encap (tc_gre.c) and the customer router's (cpe_gre.c). */
#ifndef OT_LIB_GRE_H
#define OT_LIB_GRE_H

#include "common.h"
#include "csum.h"
#include "maps.h" /* OT_TUNNEL_F_DF */

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

/* The kernel's internal ENOTSUPP (524): bpf_skb_adjust_room's answer to a GSO packet it cannot resize as asked. */
#define OT_ENOTSUPP 524

/* The netns of the device the packet is on (bpf_get_netns_cookie would give the socket's, i.e. init_net for
 * forwarded packets). CO-RE: the field offsets come from the running kernel's BTF. Plain loads through the BTF
 * pointer (fault-tolerant, a NULL reads as 0), not BPF_CORE_READ: a bpf_probe_read_kernel call per hop costs
 * ~20 ns (lib/fastpath.h, ot_v4_devconf). */
static __always_inline __u64 ot_dev_netns_cookie(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	return kskb->dev->nd_net.net->net_cookie;
}

/* Outer Ethernet + IPv4 + GRE, written in one store. */
struct ot_encap_hdr {
	struct ethhdr eth;
	struct iphdr ip;
	__be16 gre_flags;
	__be16 gre_proto;
} __attribute__((packed));

_Static_assert(sizeof(struct ot_encap_hdr) == ETH_HLEN + 24, "GRE encap is 24 bytes after Ethernet");

/* The outer header of a tunnel and the Ethernet addresses of the encapsulated frame. */
struct ot_gre_outer {
	__be32 saddr;
	__be32 daddr;
	__u8 ttl;
	__u8 flags; /* OT_TUNNEL_F_* */
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

/* The largest tunnel MTU (inner packet) the model accepts (gre_tunnels.mtu <= 1476): 1500 - 24, so that the
 * outer packets of a tunnel fit a 1500-byte path. */
#define OT_GRE_MAX_INNER_MTU 1476

/*
 * One segment of a TCP GSO packet as the tunnel will carry it: the inner IP header (IPv4 without options, or IPv6
 * without extension headers) + the TCP header + gso_size; 0 when it is not such a packet or its headers are not in
 * the linear part (the caller then takes the general form).
 */
static __always_inline __u32 ot_tcp_gso_seglen(struct __sk_buff *skb, __be16 inner)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 l3;
	if (inner == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > end || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
			return 0;
		l3 = sizeof(*ip);
	} else {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		l3 = sizeof(*ip6);
	}
	struct tcphdr *th = data + ETH_HLEN + l3;
	if ((void *)(th + 1) > end)
		return 0;
	return l3 + th->doff * 4 + skb->gso_size;
}

/*
 * Puts outer IPv4 + GRE between the Ethernet header and the packet's IP header (EtherType `inner`, IPv4 or IPv6),
 * with a computed header checksum (the kernel does not fill it in on this path), and rewrites Ethernet.
 * Room comes from bpf_skb_adjust_room with the ENCAP flags, which keep GSO packets segmentable and set
 * skb->protocol to IPv4. GSO: see below. Returns 0, or -1 when the kernel refused to grow or write the packet.
 */
static __always_inline int ot_gre_push(struct __sk_buff *skb, const struct ot_gre_outer *o, __be16 inner)
{
	struct ot_encap_hdr h;
	struct iphdr ip; /* built apart: the packed header's member is not aligned for the checksum loop */
	__builtin_memcpy(h.eth.h_dest, o->dmac, ETH_ALEN);
	__builtin_memcpy(h.eth.h_source, o->smac, ETH_ALEN);
	h.eth.h_proto = bpf_htons(ETH_P_IP);
	ip.ihl = 5;
	ip.version = 4;
	ip.tos = 0;
	ip.ttl = o->ttl;
	ip.protocol = IPPROTO_GRE;
	ip.saddr = o->saddr;
	ip.daddr = o->daddr;
	ip.check = 0;
	if (o->flags & OT_TUNNEL_F_DF) {
		ip.frag_off = bpf_htons(IP_DF);
		ip.id = 0; /* an atomic datagram's ID means nothing (RFC 6864) */
	} else {
		ip.frag_off = 0;
		ip.id = (__be16)bpf_get_prandom_u32();
	}
	h.gre_flags = 0;
	h.gre_proto = inner;

	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
	/*
	 * TCP GSO whose segments fit the tunnel as they are (inner segment <= 1476, so every outer one <= 1500, the
	 * bound a full-size non-GSO packet meets): gso_size stays (FIXED_GSO). Without it the kernel shrinks gso_size
	 * by 24, and this kernel (6.18) then linearizes a GRO super-packet that has a frag_list — every one of more than
	 * 17 segments, i.e. most of a TCP stream: a ~44 KB copy into a fresh allocation per super-packet. perf during
	 * the full-path bench's TCP run: bpf_skb_adjust_room → __pskb_pull_tail (pskb_expand_head, skb_copy_bits)
	 * ~500 samples/GB of the ~12,000 the sender's CPU spent, none with FIXED_GSO; and the tunnel carried 1412-byte
	 * segments where the clamped MSS is 1436. The customer netns's route MTU (<= 1476) was checked on output, so
	 * the bound holds; the check here keeps it true for anything else (the general form below is always correct).
	 */
	if (skb->gso_size) {
		__u32 seg = ot_tcp_gso_seglen(skb, inner);
		if (seg && seg <= OT_GRE_MAX_INNER_MTU)
			flags |= BPF_F_ADJ_ROOM_FIXED_GSO;
	}
	long err = bpf_skb_adjust_room(skb, 24, BPF_ADJ_ROOM_MAC, flags);
	/* A UDP GSO packet (UDP GRO forwarding on a NIC, a UDP_SEGMENT sender) is refused unless gso_size stays fixed
	 * (it delimits the datagrams): retried with FIXED_GSO. Its datagrams already fit the tunnel: the route MTU
	 * (1476) was checked on output. */
	if (err == -OT_ENOTSUPP && skb->gso_size && !(flags & BPF_F_ADJ_ROOM_FIXED_GSO))
		err = bpf_skb_adjust_room(skb, 24, BPF_ADJ_ROOM_MAC, flags | BPF_F_ADJ_ROOM_FIXED_GSO);
	if (err)
		return -1;
	ip.tot_len = bpf_htons(skb->len - ETH_HLEN);
	ip.check = ot_ipv4_csum(&ip);
	__builtin_memcpy(&h.ip, &ip, sizeof(ip));
	if (bpf_skb_store_bytes(skb, 0, &h, sizeof(h), 0))
		return -1;
	return 0;
}

#endif
