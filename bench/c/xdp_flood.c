// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * xdp_flood IFINDEX COUNT HEXFRAME — sends COUNT copies of one Ethernet frame out of device IFINDEX (of the
 * caller's network namespace: run it with nsenter) at the kernel's own speed, with no pktgen: BPF_PROG_RUN in
 * live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux ≥ 5.18) runs a two-instruction XDP program returning
 * XDP_TX on each copy, and the kernel transmits it. Prints {"sent":COUNT,"ns":ELAPSED} (monotonic clock).
 */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: xdp_flood IFINDEX COUNT HEXFRAME\n");
		return 2;
	}
	char *end;
	unsigned long ifindex = strtoul(argv[1], &end, 10);
	if (*end || ifindex == 0 || ifindex > 0x7fffffff) { fprintf(stderr, "xdp_flood: IFINDEX must be a positive integer\n"); return 2; }
	unsigned long count = strtoul(argv[2], &end, 10);
	if (*end || count == 0 || count > 0xffffffffUL) { fprintf(stderr, "xdp_flood: COUNT must be in 1..2^32-1\n"); return 2; }
	size_t hexlen = strlen(argv[3]);
	if (hexlen % 2 || hexlen < 28 || hexlen > 2 * 1514) { fprintf(stderr, "xdp_flood: HEXFRAME must be 14..1514 bytes of hex\n"); return 2; }
	unsigned char frame[1514];
	for (size_t i = 0; i < hexlen / 2; i++) {
		int hi = hexval(argv[3][2 * i]), lo = hexval(argv[3][2 * i + 1]);
		if (hi < 0 || lo < 0) { fprintf(stderr, "xdp_flood: HEXFRAME is not hex\n"); return 2; }
		frame[i] = (unsigned char)(hi << 4 | lo);
	}

	/* r0 = XDP_TX; exit */
	struct bpf_insn insns[2];
	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
	insns[0].dst_reg = BPF_REG_0;
	insns[0].imm = XDP_TX;
	insns[1].code = BPF_JMP | BPF_EXIT;
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "ot_bench_flood", "GPL", insns, 2, NULL);
	if (fd < 0) { fprintf(stderr, "xdp_flood: loading the program: %s\n", strerror(errno)); return 1; }

	struct xdp_md ctx;
	memset(&ctx, 0, sizeof(ctx));
	ctx.ingress_ifindex = (__u32)ifindex;
	ctx.data_end = (__u32)(hexlen / 2); /* the kernel wants the context to describe the frame exactly */
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = (__u32)(hexlen / 2),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = (__u32)count,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int err = bpf_prog_test_run_opts(fd, &opts);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (err) { fprintf(stderr, "xdp_flood: BPF_PROG_RUN (live frames): %s\n", strerror(errno)); return 1; }
	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("{\"sent\":%lu,\"ns\":%lld}\n", count, ns);
	return 0;
}
