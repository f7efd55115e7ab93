/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Header parsing for XDP: Ethernet, one VLAN tag, IPv4 (with options), IPv6 (with extension headers), TCP, UDP,
 * ICMP. Every read is bounds-checked against the frame end AND the IP length (bytes after the IP datagram are
 * Ethernet padding, not headers). Offsets are __u16 so the verifier always knows they are below 64 KiB. */
#ifndef OT_LIB_PARSE_H
#define OT_LIB_PARSE_H

#include "common.h"

/* IPv6 extension headers walked before giving up (DROP_UNSUPPORTED): more than any sane packet carries. */
#define OT_IPV6_MAX_EXT 6
/* Headers (L4, GRE, inner IP) start within this many bytes of the frame, or the packet is DROP_UNSUPPORTED.
 * Also what lets the verifier accept variable offsets: it only trusts a bounds check on a packet pointer whose
 * variable offset stays well below 64 KiB, so every offset read back from struct ot_pkt is re-checked against
 * this constant where it is used (OT_BOUND). */
#define OT_MAX_HDR_OFF 1024
#define OT_BOUND(off) ((off) <= OT_MAX_HDR_OFF)

#define OT_FRAG_FIRST 1 /* first fragment: L4 header present */
#define OT_FRAG_LATER 2 /* non-first fragment: no L4 header */

/* What the parser learnt about a packet. */
struct ot_pkt {
	__u8 src[16]; /* IPv6, or IPv4-mapped (::ffff:a.b.c.d): the LPM key form */
	__u8 dst[16];
	__be32 src4; /* IPv4 only */
	__be32 dst4;
	__u16 l3_off; /* offset of the IP header */
	__u16 l4_off; /* offset of the L4 header (unless fragment == OT_FRAG_LATER) */
	__u16 l3_end; /* offset of the end of the IP datagram */
	__u16 ip_len; /* IPv4 total length / IPv6 40 + payload length */
	__u16 sport; /* host order, if has_ports */
	__u16 dport;
	__u8 family; /* 4 or 6 once the IP header is valid, else 0 */
	__u8 proto; /* IPv4 protocol / IPv6 upper-layer header */
	__u8 ttl;
	__u8 tcp_flags;
	__u8 has_ports; /* TCP or UDP header present */
	__u8 fragment; /* 0, OT_FRAG_FIRST or OT_FRAG_LATER */
};

/* Parse result: a reason (enum ot_reason) when the packet is judged already, else OT_PARSED. */
#define OT_PARSED 0xff

static __always_inline void ot_v4_mapped(__u8 *out, __be32 a)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &a, 4);
}

static __always_inline int ot_parse_l4(void *data, void *end, struct ot_pkt *p)
{
	if (p->fragment == OT_FRAG_LATER)
		return OT_PARSED;
	__u16 off = p->l4_off;
	if (!OT_BOUND(off))
		return OT_REASON_DROP_UNSUPPORTED;
	void *l4 = data + off;
	__u16 room = p->l3_end - off; /* l4_off <= l3_end is checked by the IP parsers */

	switch (p->proto) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > end || room < sizeof(*th))
			return OT_REASON_DROP_MALFORMED;
		__u16 doff = th->doff * 4;
		if (doff < sizeof(*th) || doff > room)
			return OT_REASON_DROP_MALFORMED;
		p->sport = bpf_ntohs(th->source);
		p->dport = bpf_ntohs(th->dest);
		p->tcp_flags = ((__u8 *)th)[13];
		p->has_ports = 1;
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > end || room < sizeof(*uh))
			return OT_REASON_DROP_MALFORMED;
		p->sport = bpf_ntohs(uh->source);
		p->dport = bpf_ntohs(uh->dest);
		p->has_ports = 1;
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		/* type, code, checksum and 4 bytes of rest-of-header: every ICMP message has them */
		if (l4 + 8 > end || room < 8)
			return OT_REASON_DROP_MALFORMED;
		break;
	default:
		break; /* other protocols (GRE, ESP…) are not looked into here */
	}
	return OT_PARSED;
}

static __always_inline int ot_parse_ipv4(void *data, void *end, struct ot_pkt *p)
{
	__u16 off = p->l3_off;
	struct iphdr *ip = data + off;
	if ((void *)(ip + 1) > end || ip->version != 4)
		return OT_REASON_DROP_MALFORMED;
	__u16 ihl = ip->ihl * 4;
	__u16 tot = bpf_ntohs(ip->tot_len);
	__u32 avail = end - (void *)ip;
	if (ihl < sizeof(*ip) || tot < ihl || tot > avail)
		return OT_REASON_DROP_MALFORMED;
	__u16 frag = bpf_ntohs(ip->frag_off);
	if (frag & IP_OFFSET)
		p->fragment = OT_FRAG_LATER;
	else if (frag & IP_MF)
		p->fragment = OT_FRAG_FIRST;
	p->src4 = ip->saddr;
	p->dst4 = ip->daddr;
	ot_v4_mapped(p->src, ip->saddr);
	ot_v4_mapped(p->dst, ip->daddr);
	p->proto = ip->protocol;
	p->ttl = ip->ttl;
	p->ip_len = tot;
	p->l4_off = off + ihl;
	p->l3_end = off + tot;
	p->family = 4;
	return ot_parse_l4(data, end, p);
}

static __always_inline int ot_parse_ipv6(void *data, void *end, struct ot_pkt *p)
{
	__u16 off = p->l3_off;
	struct ipv6hdr *ip6 = data + off;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return OT_REASON_DROP_MALFORMED;
	__u32 tot = (__u32)bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	__u32 avail = end - (void *)ip6;
	if (tot > avail)
		return OT_REASON_DROP_MALFORMED;
	__builtin_memcpy(p->src, &ip6->saddr, 16);
	__builtin_memcpy(p->dst, &ip6->daddr, 16);
	p->ttl = ip6->hop_limit;
	p->ip_len = tot;
	p->l3_end = off + tot;
	p->family = 6;

	__u8 nh = ip6->nexthdr;
	__u16 pos = off + sizeof(*ip6);
#pragma unroll
	for (int i = 0; i < OT_IPV6_MAX_EXT; i++) {
		if (!OT_BOUND(pos))
			return OT_REASON_DROP_UNSUPPORTED;
		__u8 *h = data + pos;
		__u16 len;
		switch (nh) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(h + 2) > end || pos + 2 > p->l3_end)
				return OT_REASON_DROP_MALFORMED;
			len = ((__u16)h[1] + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(h + 2) > end || pos + 2 > p->l3_end)
				return OT_REASON_DROP_MALFORMED;
			len = ((__u16)h[1] + 2) * 4;
			break;
		case IPPROTO_FRAGMENT: {
			if ((void *)(h + 8) > end || pos + 8 > p->l3_end)
				return OT_REASON_DROP_MALFORMED;
			__u16 fo = ((__u16)h[2] << 8) | h[3];
			if (fo & 0xfff8)
				p->fragment = OT_FRAG_LATER;
			else if (fo & 1)
				p->fragment = OT_FRAG_FIRST;
			len = 8;
			break;
		}
		default:
			p->proto = nh;
			p->l4_off = pos;
			return ot_parse_l4(data, end, p);
		}
		nh = h[0];
		if (pos + len > p->l3_end)
			return OT_REASON_DROP_MALFORMED;
		pos += len;
		if (p->fragment == OT_FRAG_LATER) {
			/* the rest is payload: the upper-layer protocol is named, its header is elsewhere */
			p->proto = nh;
			p->l4_off = pos;
			return OT_PARSED;
		}
	}
	return OT_REASON_DROP_UNSUPPORTED;
}

/* Parses from the Ethernet header on. Returns OT_PARSED or the reason that already decides the packet. */
static __always_inline int ot_parse(void *data, void *end, struct ot_pkt *p)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return OT_REASON_DROP_MALFORMED;
	__be16 proto = eth->h_proto;
	p->l3_off = ETH_HLEN;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		__be16 *inner = data + ETH_HLEN + 2; /* TCI, then the encapsulated EtherType */
		if ((void *)(inner + 1) > end)
			return OT_REASON_DROP_MALFORMED;
		proto = *inner;
		p->l3_off = ETH_HLEN + 4;
		if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
			return OT_REASON_DROP_UNSUPPORTED;
	}
	if (proto == bpf_htons(ETH_P_IP))
		return ot_parse_ipv4(data, end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return ot_parse_ipv6(data, end, p);
	return OT_REASON_PASS_NON_IP;
}

#endif
