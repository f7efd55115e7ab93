/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The fast path: route a packet of customer traffic the way the host's stack would (the kernel's own FIB, policy
 * rules, the node's fwmark), and hand it straight to the output device — without the pass through the host
 * netns's IP stack (ip_rcv, netfilter, ip_forward, ip_output). Shared by xdp_edge (uplink → customer veth),
 * tc_host_fwd (customer veth → out) and tc_uplink_in (uplink after GRO → customer veth, tc_host_fwd.c).
 *
 * The rule: take a packet only when the stack would surely forward it, to the very device and neighbour
 * bpf_fib_lookup names, with no other effect than TTL - 1; hand everything else to the stack untouched (the slow
 * path is the reference, and refusing is always correct). What the stack does and where it is covered:
 *   ip_rcv:      bad version/IHL/length (parser), bad header checksum (checked here), frames not to our MAC
 *                (pkt_type: the caller), martian sources/destinations (ot_v4_martian / ot_v6_special);
 *   prerouting:  our nft `mark` chain: mark = fwmark when the destination is a customer's (the caller, from
 *                ot_prefixes; its extra keys, tunnel subnets, are not routed in the customer table, so the
 *                lookup answers "unreachable" for them and they take the slow path);
 *   routing:     bpf_fib_lookup with BPF_FIB_LOOKUP_MARK: the same rules, tables, multipath hash (L4 ports given),
 *                forwarding enabled on the input device, route and device MTU (FRAG_NEEDED: the stack fragments or
 *                sends the ICMP), neighbour (NO_NEIGH: the stack resolves it) — or, while the agent vouches for
 *                the host's rules and local table (OT_CONFIG_F_FIB_DIRECT*), straight into the table those rules
 *                would pick (ot_direct_table says why that is the same decision); then the source check of
 *                fib_validate_source (rp_filter, accept_local, src_valid_mark: ot_v4_source_ok);
 *   ip_forward:  TTL <= 1 (refused: the stack sends Time Exceeded), IP options and IPv6 extension headers
 *                (refused), ICMP redirects (only when out == in: refused), priority from TOS (tc: set);
 *   forward:     our nft `mss` chain only touches SYNs: refused, the callers leave every SYN to the stack;
 *   output:      GSO segments checked against the MTU (tc: one segment's length is what the lookup checks).
 * Not reproduced, by design (docs/ARCHITECTURE.md "Fast path"): netfilter rules other than ours in the host
 * netns, XFRM policies, proxy NDP; an operator who has them runs the agent with --fast-path off.
 * ICMP is refused too (rare, and the stack's multipath hash looks into ICMP errors' inner headers).
 */
#ifndef OT_LIB_FASTPATH_H
#define OT_LIB_FASTPATH_H

#include "common.h"
#include "csum.h"

#define OT_AF_INET 2
#define OT_AF_INET6 10
#define OT_PACKET_HOST 0
#define OT_TCP_SYN 0x02
#define OT_RT_TABLE_MAIN 254

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

/* Where the caller found the packet's IP header, and what the lookup needs besides it. */
struct ot_fwd_in {
	__u32 ifindex; /* the receiving device */
	__u32 mark; /* what the host's nft `mark` chain would have set (0: none) */
	__u32 table; /* the forward lookup: this table alone when non-zero (the caller's choice, ot_direct_table), else
			the policy rules with `mark` */
	__u32 flags; /* ot_config: flags, fwmark (the mark our policy rule sends to fib_table), fib_table */
	__u32 fwmark;
	__u32 fib_table;
	__u16 mtu_len; /* the length an MTU must carry: the IP length, or one GSO segment's */
	__u8 proto; /* L4 protocol */
	__u8 _pad;
	__be16 sport; /* network order, 0 without ports */
	__be16 dport;
};

/* What the lookup chose. */
struct ot_fwd_out {
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
};

/* ip_route_input_slow's martians (and ip_route_input_mc's multicast): 0/8, 127/8 (route_localnet is not looked
 * at: refused either way), 224/4, 255.255.255.255 as source or destination. */
static __always_inline int ot_v4_martian(__be32 saddr, __be32 daddr)
{
	__u32 s = bpf_ntohl(saddr), d = bpf_ntohl(daddr);
	__u8 s0 = s >> 24, d0 = d >> 24;
	return s0 == 0 || s0 == 127 || (s0 & 0xf0) == 0xe0 || s == 0xffffffff || d0 == 0 || d0 == 127 ||
	       (d0 & 0xf0) == 0xe0 || d == 0xffffffff;
}

/* ip6_rcv_core's and ip6_forward's special addresses, and link-local (rt6_need_strict): multicast ff00::/8,
 * link-local fe80::/10, and everything under ::/80 (unspecified, loopback, IPv4-mapped and -compatible). */
static __always_inline int ot_v6_special(const struct in6_addr *a)
{
	const __u8 *b = a->in6_u.u6_addr8;
	if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
		return 1;
	__u32 w0 = a->in6_u.u6_addr32[0], w1 = a->in6_u.u6_addr32[1];
	return w0 == 0 && w1 == 0 && b[8] == 0 && b[9] == 0;
}

/* The IPv4 settings fib_validate_source reads for the receiving device (IN_DEV_RPFILTER is the larger of "all"
 * and the device's; ACCEPT_LOCAL and SRC_VMARK are either's), read live from the kernel (CO-RE), so a sysctl
 * change applies from the next packet. */
struct ot_v4_devconf {
	__u32 rp_filter;
	__u32 accept_local;
	__u32 src_vmark;
	__u32 fwd_update_priority; /* net.ipv4.ip_forward_update_priority */
};

/*
 * `dev` comes from bpf_cast_to_kern_ctx (a BTF pointer): the fields are read with plain loads, which the verifier
 * turns into fault-tolerant ones (a NULL or bad pointer reads as 0), not with BPF_CORE_READ's
 * bpf_probe_read_kernel — one helper call per pointer hop, ~20 ns each: the ~30 of them a packet met on the full
 * path (xdp_edge, tc_gre, tc_host_fwd, the lab's cpe_decap) cost ~0.6 µs per packet (perf during the full-path
 * bench's flood), a third of what that path cost over plain routing.
 */
static __always_inline int ot_v4_devconf(struct net_device *dev, struct ot_v4_devconf *c)
{
	struct in_device *idev = dev->ip_ptr;
	struct net *net = dev->nd_net.net;
	if (!idev || !net)
		return -1;
	struct ipv4_devconf *all = net->ipv4.devconf_all;
	if (!all)
		return -1;
	int d_rp = idev->cnf.data[IPV4_DEVCONF_RP_FILTER - 1];
	int a_rp = all->data[IPV4_DEVCONF_RP_FILTER - 1];
	int d_al = idev->cnf.data[IPV4_DEVCONF_ACCEPT_LOCAL - 1];
	int a_al = all->data[IPV4_DEVCONF_ACCEPT_LOCAL - 1];
	int d_vm = idev->cnf.data[IPV4_DEVCONF_SRC_VMARK - 1];
	int a_vm = all->data[IPV4_DEVCONF_SRC_VMARK - 1];
	c->rp_filter = d_rp > a_rp ? d_rp : a_rp;
	c->accept_local = d_al || a_al;
	c->src_vmark = d_vm || a_vm;
	c->fwd_update_priority = net->ipv4.sysctl_ip_fwd_update_priority;
	return 0;
}

/* Is `addr` (LPM-key form) covered by a route of the host's local table? (ot_host_local: the agent's copy.) */
static __always_inline int ot_is_host_local(const __u8 *addr)
{
	struct ot_lpm_key k;
	k.prefixlen = 128;
	__builtin_memcpy(k.addr, addr, 16);
	return bpf_map_lookup_elem(&ot_host_local, &k) != NULL;
}

/*
 * The table the host's policy rules pick for a packet with `mark` whose destination no local-table route covers,
 * provided no rule but the kernel's and ours can match it; 0: walk the rules. The caller knows that proviso from
 * a flag of ot_config (OT_CONFIG_F_FIB_DIRECT*: the agent checks the rules every resync, and which rules cannot
 * match which lookups, in src/agent/reconcile/dataplane-fib.ts) and the destination from ot_host_local or a
 * premise of that flag (no local route covers a key of ot_prefixes or ot_gre_peers).
 *
 * Why that is the stack's own decision (net/core/fib_rules.c fib_rules_lookup, fib4_rule_action,
 * fib6_rule_action): the rules that can match are "0: lookup local", "P: fwmark F/0xffffffff lookup fib_table",
 * "32766: lookup main" and, IPv4 only, "32767: lookup default", each without any other selector. The walk: the
 * local table misses (no route covers the destination), a miss being -EAGAIN ("try the next rule"); rule P
 * matches iff mark == F, and then its table decides; otherwise main, then default. A lookup straight into
 * fib_table (mark F) or main (mark 0) gives the same answer whenever that table has a route for the destination:
 * its unicast route, or the error of an unreachable/blackhole/prohibit route, which ends the walk there too. When
 * that table has no route (or a `throw` one) the walk would go on to the next tables, while the direct lookup
 * answers NOT_FWDED: refused, the stack decides — slower, never different. Any other mark (F is never 0, and only
 * F matches rule P): walk the rules. The multipath hash, the MTU check, forwarding on the input device and the
 * neighbour are the helper's in both cases (bpf_ipv4_fib_lookup / bpf_ipv6_fib_lookup differ only in how they
 * find the table). What it saves: fib_rules_lookup's walk with its indirect calls, and the local table's miss.
 */
static __always_inline __u32 ot_direct_table(const struct ot_fwd_in *in, __u32 mark)
{
	if (mark == in->fwmark)
		return in->fib_table;
	return mark == 0 ? OT_RT_TABLE_MAIN : 0;
}

/* Look up `table` alone (DIRECT | TBID) when it is non-zero; else the rules, with `mark` when it is non-zero. */
static __always_inline __u32 ot_fib_flags(struct bpf_fib_lookup *f, __u32 table, __u32 mark)
{
	if (table) {
		f->tbid = table;
		return BPF_FIB_LOOKUP_DIRECT | BPF_FIB_LOOKUP_TBID;
	}
	if (mark) {
		f->mark = mark;
		return BPF_FIB_LOOKUP_MARK;
	}
	return 0;
}

/*
 * fib_validate_source for a packet the FIB sends from `in` out of `out` (!= in): would the stack accept its
 * source? Refuses whatever is not certain (the stack then decides):
 *   rp_filter 0 and accept_local: no check at all (the host side of every customer veth: DESIGN §2);
 *   rp_filter 0, OT_CONFIG_F_SRC_UNICAST and a source outside the local table (ot_host_local): the agent vouches
 *     that every IPv4 route outside the local table is unicast or an error route (unreachable, blackhole,
 *     prohibit, throw), so the reverse lookup — whatever rules it walks — can only find a unicast route or fail,
 *     and __fib_validate_source with rp_filter 0 accepts both (a failure is "last_resort", accepted without
 *     rp_filter; a unicast route is accepted whatever its device): no lookup at all;
 *   OT_CONFIG_F_FIB_DIRECT and a source outside the local table: the lookup below goes straight into the table
 *     the rules would pick (ot_direct_table);
 *   otherwise the reverse lookup (to the source, input device = `out`, mark only with src_valid_mark):
 *     rp_filter 0: the stack drops only a successful lookup of another type than unicast (a local or broadcast
 *       source): take unicast and the failed lookups (blackhole/unreachable/prohibit), refuse NOT_FWDED (it
 *       also means "no route at all", which the stack would accept — refusing is merely slower);
 *     rp_filter 2 (loose): unicast only;  rp_filter 1 (strict): unicast back through `in` only (the stack
 *       accepts any of a multipath route's devices; we know the one chosen: refusing the rest is safe).
 * `f` is scratch space.
 */
static __always_inline int ot_v4_source_ok(void *ctx, struct bpf_fib_lookup *f, const struct ot_v4_devconf *c,
					   __be32 saddr, __be32 daddr, __u8 tos, const struct ot_fwd_in *fin, __u32 out)
{
	if (c->rp_filter == 0 && c->accept_local)
		return 1;
	__u32 in = fin->ifindex;
	__u32 mark = c->src_vmark ? fin->mark : 0; /* the reverse lookup's flowi4_mark */
	__u32 table = 0;
	int skip = c->rp_filter == 0 && (fin->flags & OT_CONFIG_F_SRC_UNICAST);
	if (skip || (fin->flags & OT_CONFIG_F_FIB_DIRECT)) {
		__u8 key[16];
		ot_v4_mapped(key, saddr);
		if (!ot_is_host_local(key)) {
			if (skip)
				return 1;
			table = ot_direct_table(fin, mark);
		}
	}
	__builtin_memset(f, 0, sizeof(*f));
	f->family = OT_AF_INET;
	f->tot_len = 1; /* checked, and always fits (0 would make tc check the whole skb against `out`'s MTU) */
	f->ifindex = out;
	f->tos = tos;
	f->ipv4_src = daddr;
	f->ipv4_dst = saddr;
	__u32 flags = BPF_FIB_LOOKUP_SKIP_NEIGH | ot_fib_flags(f, table, mark);
	long rc = bpf_fib_lookup(ctx, f, sizeof(*f), flags);
	if (c->rp_filter == 0)
		return rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_BLACKHOLE ||
		       rc == BPF_FIB_LKUP_RET_UNREACHABLE || rc == BPF_FIB_LKUP_RET_PROHIBIT;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	return c->rp_filter != 1 || f->ifindex == in;
}

/* The forward lookup: the kernel's routing decision for this packet with the mark. 0 and `o` filled when it is
 * "forward to o->ifindex via o->dmac", else -1 (the stack decides). */
static __always_inline int ot_fib_forward(void *ctx, struct bpf_fib_lookup *f, const struct ot_fwd_in *in,
					  struct ot_fwd_out *o)
{
	f->l4_protocol = in->proto;
	f->sport = in->sport;
	f->dport = in->dport;
	f->tot_len = in->mtu_len;
	f->ifindex = in->ifindex;
	__u32 flags = ot_fib_flags(f, in->table, in->mark);
	long rc = bpf_fib_lookup(ctx, f, sizeof(*f), flags);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS || f->ifindex == in->ifindex || f->ifindex == 0)
		return -1;
	o->ifindex = f->ifindex;
	__builtin_memcpy(o->dmac, f->dmac, ETH_ALEN);
	__builtin_memcpy(o->smac, f->smac, ETH_ALEN);
	return 0;
}

/*
 * IPv4: everything but the L4 checks (the caller refused fragments, SYNs, ICMP). `ip` is a checked pointer to a
 * 20-byte header (IHL 5: options are refused). Returns 0 with `o` filled when the packet goes the fast path, -1
 * when the stack must decide. Nothing is written to the packet here (the caller may sample it as it arrived):
 * ot_fwd_commit_v4 does that.
 */
static __always_inline int ot_fwd_v4(void *ctx, struct iphdr *ip, struct net_device *dev, const struct ot_fwd_in *in,
				     struct ot_v4_devconf *conf, struct ot_fwd_out *o)
{
	if (ip->ihl != 5 || ip->ttl <= 1 || ot_ipv4_csum(ip) != 0 || ot_v4_martian(ip->saddr, ip->daddr))
		return -1;
	struct bpf_fib_lookup f;
	__builtin_memset(&f, 0, sizeof(f));
	f.family = OT_AF_INET;
	f.tos = ip->tos;
	f.ipv4_src = ip->saddr;
	f.ipv4_dst = ip->daddr;
	if (ot_fib_forward(ctx, &f, in, o))
		return -1;
	if (ot_v4_devconf(dev, conf))
		return -1;
	if (!ot_v4_source_ok(ctx, &f, conf, ip->saddr, ip->daddr, ip->tos, in, o->ifindex))
		return -1;
	return 0;
}

/* TTL - 1 with the checksum updated as ip_decrease_ttl does, and the lookup's Ethernet addresses. */
static __always_inline void ot_fwd_commit_v4(struct ethhdr *eth, struct iphdr *ip, const struct ot_fwd_out *o)
{
	__u32 check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
	__builtin_memcpy(eth->h_dest, o->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, o->smac, ETH_ALEN);
}

/* IPv6, likewise (no extension headers: the caller refused them; no source check: IPv6 routing has none). */
static __always_inline int ot_fwd_v6(void *ctx, struct ipv6hdr *ip6, const struct ot_fwd_in *in, struct ot_fwd_out *o)
{
	if (ip6->hop_limit <= 1 || ot_v6_special(&ip6->saddr) || ot_v6_special(&ip6->daddr))
		return -1;
	struct bpf_fib_lookup f;
	__builtin_memset(&f, 0, sizeof(f));
	f.family = OT_AF_INET6;
	/* ip6_route_input's flow label (the multipath hash of policy 0 uses it) */
	f.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	__builtin_memcpy(f.ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(f.ipv6_dst, &ip6->daddr, 16);
	return ot_fib_forward(ctx, &f, in, o);
}

static __always_inline void ot_fwd_commit_v6(struct ethhdr *eth, struct ipv6hdr *ip6, const struct ot_fwd_out *o)
{
	ip6->hop_limit--;
	__builtin_memcpy(eth->h_dest, o->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, o->smac, ETH_ALEN);
}

/* The L4 protocols the fast path takes, and where its ports come from: TCP but SYNs (our nft `mss` chain must see
 * every SYN and SYN-ACK), UDP, GRE (the encapsulated traffic; the stack's multipath hash finds no ports in it
 * either). Others (ICMP, SCTP, ESP…) go the slow path: the stack's flow dissector would hash ports or inner headers
 * the lookup is not given. */
static __always_inline int ot_fwd_proto_ok(__u8 proto, __u8 tcp_flags)
{
	if (proto == IPPROTO_TCP)
		return !(tcp_flags & OT_TCP_SYN);
	return proto == IPPROTO_UDP || proto == IPPROTO_GRE;
}

/* The route MTU of an account's IPv6 routes in the customer table (ot_delivery.mtu6): bpf_fib_lookup checks the
 * device's MTU and only a locked route MTU, ip6_forward the route's. 1 when `len` fits (or there is none). */
static __always_inline int ot_fits_account_mtu6(__u32 account, __u32 len)
{
	struct ot_delivery *dl = bpf_map_lookup_elem(&ot_delivery, &account);
	return !dl || dl->mtu6 == 0 || len <= dl->mtu6;
}

#endif
