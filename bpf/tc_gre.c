/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * ot_tc_gre — GRE encapsulation on the tc egress of a customer netns's veth (DESIGN.md §2).
 *
 * The tunnel is chosen by the kernel, not here: the customer netns routes a prefix via a tunnel peer address,
 * whose permanent neighbour entry holds a MAC that encodes the tunnel (OT_TUNNEL_MAC_0/1 + 4 octets). This program
 * maps (the device's netns, that destination MAC) to the tunnel, prepends outer IPv4 + GRE, and rewrites the
 * Ethernet destination to the host-side veth, which routes the packet out of the uplink. One program serves every
 * customer netns: the netns cookie of the device tells them apart (ifindexes repeat across netns).
 * A frame to a tunnel MAC without a tunnel is dropped and counted (fail closed); other frames pass untouched.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/csum.h"

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

/* The netns of the device the packet is on (bpf_get_netns_cookie would give the socket's, i.e. init_net for
 * forwarded packets). CO-RE: the field offsets come from the running kernel's BTF. */
static __always_inline __u64 ot_dev_netns_cookie(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
	return BPF_CORE_READ(kskb, dev, nd_net.net, net_cookie);
}

/* Outer Ethernet + IPv4 + GRE, written in one store. */
struct ot_encap_hdr {
	struct ethhdr eth;
	struct iphdr ip;
	__be16 gre_flags;
	__be16 gre_proto;
} __attribute__((packed));

_Static_assert(sizeof(struct ot_encap_hdr) == ETH_HLEN + 24, "GRE encap is 24 bytes after Ethernet");

SEC("tc")
int ot_tc_gre(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 len = skb->len;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || eth->h_dest[0] != OT_TUNNEL_MAC_0 || eth->h_dest[1] != OT_TUNNEL_MAC_1) {
		ot_count(0, OT_REASON_PASS_NOT_TUNNEL, len);
		return TC_ACT_OK;
	}

	struct ot_tunnel_key key;
	key.netns_cookie = ot_dev_netns_cookie(skb);
	__builtin_memcpy(key.mac, eth->h_dest, ETH_ALEN);
	key._pad[0] = 0;
	key._pad[1] = 0;
	struct ot_tunnel *t = bpf_map_lookup_elem(&ot_tunnels, &key);
	if (!t) {
		ot_count(0, OT_REASON_DROP_TUNNEL_MISS, len);
		return TC_ACT_SHOT;
	}
	__u32 account = t->account;
	__be16 inner = eth->h_proto;
	if (inner != bpf_htons(ETH_P_IP) && inner != bpf_htons(ETH_P_IPV6)) {
		ot_count(account, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}

	struct ot_encap_hdr h;
	struct iphdr ip; /* built apart: the packed header's member is not aligned for the checksum loop */
	__builtin_memcpy(h.eth.h_dest, t->host_mac, ETH_ALEN);
	__builtin_memcpy(h.eth.h_source, eth->h_source, ETH_ALEN);
	h.eth.h_proto = bpf_htons(ETH_P_IP);
	ip.ihl = 5;
	ip.version = 4;
	ip.tos = 0;
	ip.ttl = t->ttl;
	ip.protocol = IPPROTO_GRE;
	ip.saddr = t->local;
	ip.daddr = t->remote;
	ip.check = 0;
	if (t->flags & OT_TUNNEL_F_DF) {
		ip.frag_off = bpf_htons(IP_DF);
		ip.id = 0; /* an atomic datagram's ID means nothing (RFC 6864) */
	} else {
		ip.frag_off = 0;
		ip.id = (__be16)bpf_get_prandom_u32();
	}
	h.gre_flags = 0;
	h.gre_proto = inner;

	/* Room after the MAC header for IPv4 + GRE; the ENCAP flags keep GSO packets segmentable (gso_size shrinks). */
	if (bpf_skb_adjust_room(skb, 24, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE)) {
		ot_count(account, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	ip.tot_len = bpf_htons(skb->len - ETH_HLEN);
	ip.check = ot_ipv4_csum(&ip);
	__builtin_memcpy(&h.ip, &ip, sizeof(ip));
	if (bpf_skb_store_bytes(skb, 0, &h, sizeof(h), 0)) {
		ot_count(account, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	ot_count(account, OT_REASON_ENCAP_GRE, len);
	return TC_ACT_OK;
}
