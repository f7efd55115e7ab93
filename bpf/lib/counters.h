/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Counting: one call per packet per program, under exactly one (account, reason). */
#ifndef OT_LIB_COUNTERS_H
#define OT_LIB_COUNTERS_H

#include "maps.h"

_Static_assert((OT_REASON_SLOTS & (OT_REASON_SLOTS - 1)) == 0, "OT_REASON_SLOTS must be a power of two");

/* Per-CPU slots need no atomics: a program runs to completion on one CPU (XDP and tc run with preemption or
 * migration disabled), and the agent sums the CPUs when it reads. */
static __always_inline void ot_count(__u32 account, __u32 reason, __u32 bytes)
{
	if (account >= OT_MAX_ACCOUNTS)
		account = 0; /* never lose a packet to a bad account number */
	__u32 slot = account * OT_REASON_SLOTS + (reason & (OT_REASON_SLOTS - 1));
	struct ot_counter *c = bpf_map_lookup_elem(&ot_counters, &slot);
	if (c) {
		c->packets += 1;
		c->bytes += bytes;
	}
}

#endif
