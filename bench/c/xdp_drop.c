/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* The bench's baseline: the cheapest XDP program there is. xdp_edge's per-packet cost is read against it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int ot_bench_xdp_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}
