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
#include "lib/gre.h"

char LICENSE[] SEC("license") = "GPL";

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

	struct ot_gre_outer o;
	o.saddr = t->local;
	o.daddr = t->remote;
	o.ttl = t->ttl;
	o.flags = t->flags;
	__builtin_memcpy(o.dmac, t->host_mac, ETH_ALEN);
	__builtin_memcpy(o.smac, eth->h_source, ETH_ALEN);
	if (ot_gre_push(skb, &o, inner)) {
		ot_count(account, OT_REASON_DROP_ENCAP_FAILED, len);
		return TC_ACT_SHOT;
	}
	ot_count(account, OT_REASON_ENCAP_GRE, len);
	return TC_ACT_OK;
}
