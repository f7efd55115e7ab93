/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Internet checksum (RFC 1071) helpers. */
#ifndef OT_LIB_CSUM_H
#define OT_LIB_CSUM_H

#include "common.h"

/* Folds a 32-bit one's complement sum into the 16-bit checksum field value. */
static __always_inline __u16 ot_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The header checksum of a 20-byte IPv4 header (check field zero on entry). Summing the 16-bit words in memory
 * order and storing the result in memory order is byte-order independent, so no swaps are needed. */
static __always_inline __u16 ot_ipv4_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return ot_csum_fold(sum);
}

#endif
