/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The customer router side of OpenTransit's anycast GRE, for the lab and end-to-end tests (these machines have no
 * ip_gre). A tunnel is a device in the router's netns (an ifb: ARP-less, so the kernel's neighbour for the tunnel
 * peer is the device's own MAC) holding the tunnel's interface address, e.g. 10.200.0.1/31:
 *
 *   ot_cpe_decap  tc ingress of the uplink: plain GRE (RFC 2784, no optional fields) from an anycast endpoint to
 *                 the router's public address, for a tunnel in ot_cpe_decaps, loses its outer IPv4 + GRE in place
 *                 (bpf_skb_adjust_room with the DECAP flags) and is redirected to the tunnel device's ingress:
 *                 the kernel then routes the inner packet as received on the tunnel (rp_filter, `ip rule iif`
 *                 and local delivery to the tunnel address all behave as with a real GRE device).
 *                 Everything else passes untouched.
 *   ot_cpe_encap  tc egress of a tunnel device: what the router's routes sent into the tunnel gets outer IPv4 +
 *                 GRE (source: the router's public address, destination: the anycast endpoint) and is redirected
 *                 to the uplink with bpf_redirect_neigh, i.e. the kernel's route and neighbour entry for the
 *                 anycast endpoint choose the next hop's MAC (ARP included). A tunnel device without a tunnel
 *                 drops (fail closed).
 * Both count under account 0 in ot_counters (see enum ot_reason); tunnels of every router sharing a pin directory
 * are told apart by the netns cookie of the device (ifindexes repeat across netns).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/counters.h"
#include "lib/csum.h"
#include "lib/gre.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_REDIRECT 7
#define GRE_HLEN 4

SEC("tc")
int ot_cpe_decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 len = skb->len;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) {
		ot_count(0, OT_REASON_PASS_NON_IP, len);
		return TC_ACT_OK;
	}
	struct iphdr *ip = (void *)(eth + 1);
	/* Truncated or not GRE: the kernel's own checks and handlers decide. */
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_GRE) {
		ot_count(0, OT_REASON_PASS, len);
		return TC_ACT_OK;
	}
	struct ot_cpe_decap_key key;
	key.netns_cookie = ot_dev_netns_cookie(skb);
	key.local = ip->daddr;
	key.remote = ip->saddr;
	struct ot_cpe_decap *t = bpf_map_lookup_elem(&ot_cpe_decaps, &key);
	if (!t) {
		/* Not one of our tunnels: the stack answers it (protocol unreachable: there is no GRE handler). */
		ot_count(0, OT_REASON_PASS, len);
		return TC_ACT_OK;
	}

	/* Ours from here on: anything we cannot decapsulate is dropped, never handed to the stack half-done. */
	__u16 tot = bpf_ntohs(ip->tot_len);
	if (ip->version != 4 || ip->ihl != 5 || tot < sizeof(*ip) + GRE_HLEN || tot > len - ETH_HLEN ||
	    ot_ipv4_csum(ip) != 0) {
		/* ihl != 5: our edges never send IPv4 options; a checksum over the whole header folds to 0 when good. */
		ot_count(0, ip->ihl != 5 && ip->version == 4 ? OT_REASON_DROP_GRE_UNSUPPORTED : OT_REASON_DROP_MALFORMED, len);
		return TC_ACT_SHOT;
	}
	if (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFSET)) {
		ot_count(0, OT_REASON_DROP_GRE_UNSUPPORTED, len);
		return TC_ACT_SHOT;
	}
	__be16 *gre = (void *)(ip + 1);
	__u8 *inner = (void *)(gre + 2);
	if ((void *)(inner + 1) > end) {
		ot_count(0, OT_REASON_DROP_MALFORMED, len);
		return TC_ACT_SHOT;
	}
	__be16 proto = gre[1];
	__u64 decap_flags;
	if (gre[0] != 0) {
		/* checksum, routing, key or sequence bits, or a version other than 0: not plain GRE */
		ot_count(0, OT_REASON_DROP_GRE_UNSUPPORTED, len);
		return TC_ACT_SHOT;
	}
	if (proto == bpf_htons(ETH_P_IP) && (inner[0] >> 4) == 4) {
		decap_flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
	} else if (proto == bpf_htons(ETH_P_IPV6) && (inner[0] >> 4) == 6) {
		decap_flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
	} else {
		ot_count(0, proto == bpf_htons(ETH_P_IP) || proto == bpf_htons(ETH_P_IPV6) ? OT_REASON_DROP_MALFORMED
											    : OT_REASON_DROP_GRE_UNSUPPORTED,
			 len);
		return TC_ACT_SHOT;
	}
	__u32 ifindex = t->ifindex;
	struct ethhdr neth;
	__builtin_memcpy(neth.h_dest, t->mac, ETH_ALEN);
	__builtin_memcpy(neth.h_source, eth->h_source, ETH_ALEN);
	neth.h_proto = proto;

	/* Remove outer IPv4 + GRE right after Ethernet; the DECAP flag sets skb->protocol for the inner version. A UDP
	 * GSO packet is only shrunk with FIXED_GSO (gso_size delimits its datagrams): retried so. This kernel (6.18)
	 * cannot clear the skb's tunnel offload state here (newer ones: BPF_F_ADJ_ROOM_DECAP_L4_GRE): a decapsulated
	 * super-packet still looks encapsulated, and a device without tunnel offloads (a bridge) segments it again. */
	const __s32 hlen = -(__s32)(sizeof(*ip) + GRE_HLEN);
	long err = bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, decap_flags);
	if (err == -OT_ENOTSUPP && skb->gso_size)
		err = bpf_skb_adjust_room(skb, hlen, BPF_ADJ_ROOM_MAC, decap_flags | BPF_F_ADJ_ROOM_FIXED_GSO);
	if (err || bpf_skb_store_bytes(skb, 0, &neth, sizeof(neth), 0)) {
		ot_count(0, OT_REASON_DROP_MALFORMED, len);
		return TC_ACT_SHOT;
	}
	ot_count(0, OT_REASON_REDIRECT_GRE, len);
	return bpf_redirect(ifindex, BPF_F_INGRESS);
}

SEC("tc")
int ot_cpe_encap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 len = skb->len;
	struct ethhdr *eth = data;

	struct ot_cpe_encap_key key;
	key.netns_cookie = ot_dev_netns_cookie(skb);
	key.ifindex = skb->ifindex;
	key._pad = 0;
	struct ot_cpe_encap *t = bpf_map_lookup_elem(&ot_cpe_encaps, &key);
	if (!t) {
		ot_count(0, OT_REASON_DROP_TUNNEL_MISS, len);
		return TC_ACT_SHOT;
	}
	if ((void *)(eth + 1) > end) {
		ot_count(0, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	__be16 inner = eth->h_proto;
	if (inner != bpf_htons(ETH_P_IP) && inner != bpf_htons(ETH_P_IPV6)) {
		ot_count(0, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	struct ot_gre_outer o;
	o.saddr = t->local;
	o.daddr = t->remote;
	o.ttl = t->ttl;
	o.flags = t->flags;
	/* Placeholders: bpf_redirect_neigh fills in both addresses from the next hop's neighbour entry. */
	__builtin_memset(o.dmac, 0, ETH_ALEN);
	__builtin_memcpy(o.smac, eth->h_source, ETH_ALEN);
	__u32 uplink = t->uplink_ifindex;
	if (ot_gre_push(skb, &o, inner)) {
		ot_count(0, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	ot_count(0, OT_REASON_ENCAP_GRE, len);
	/* The route lookup for the outer destination is restricted to the uplink (flowi oif), in the router's netns. */
	return bpf_redirect_neigh(uplink, NULL, 0, 0);
}
