// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * xdp_flood [--rewrite] IFINDEX COUNT HEXFRAME — sends COUNT copies of one Ethernet frame out of device IFINDEX (of
 * the caller's network namespace: run it with nsenter) at the kernel's own speed, with no pktgen: BPF_PROG_RUN in
 * live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES, Linux ≥ 5.18) runs a small XDP program returning XDP_TX on each
 * copy, and the kernel transmits it. Prints {"sent":COUNT,"ns":ELAPSED,"cpu_ns":THREAD_CPU}: ELAPSED on the
 * monotonic clock; THREAD_CPU this thread's CPU time over the run, which (without CONFIG_IRQ_TIME_ACCOUNTING)
 * includes the softirq work the kernel ran in its context — the receivers' NAPI polls and every veth hop after.
 *
 * --batch N: frames per batch handed to the device (BPF_PROG_RUN's batch_size; default 64).
 *
 * --rewrite: the program writes the whole frame into the packet before every XDP_TX. Live-frames mode copies the
 * frame into each page of its page pool once, when the page is first used, and recycles pages as they come back;
 * a frame that is forwarded (rather than dropped by the receiver's XDP) comes back changed — the router's
 * neighbour output wrote its own Ethernet header over ours, TTL and IP checksum were decremented — and every
 * later copy from that page would carry the changes (seen: all but the first ~100 of a flood arrived with the
 * next hop's MAC and were dropped as PACKET_OTHERHOST). Costs a few stores per frame; without the flag the program
 * is a bare XDP_TX, as the receiver-drops-in-XDP cases need.
 */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
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

/* At most: 5 header instructions, 3 per 8 bytes of frame, 3 for the tail, 4 to return (XDP_TX or XDP_DROP). */
#define MAX_INSNS (5 + 3 * (1514 / 8) + 3 + 4)

static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	struct bpf_insn i;
	memset(&i, 0, sizeof(i));
	i.code = code;
	i.dst_reg = dst;
	i.src_reg = src;
	i.off = off;
	i.imm = imm;
	return i;
}

/*
 * The program. Plain:      r0 = XDP_TX; exit
 * --rewrite:               r2 = ctx->data; r3 = ctx->data_end; r4 = r2 + len; if r4 > r3 goto drop;
 *                          *(u64 *)(r2 + off) = <frame bytes> … (then u32/u16/u8 for the tail);
 *                          r0 = XDP_TX; exit; drop: r0 = XDP_DROP; exit
 */
static int build(struct bpf_insn *p, const unsigned char *frame, size_t len, int rewrite)
{
	int n = 0;
	if (rewrite) {
		p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, offsetof(struct xdp_md, data), 0);
		p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, offsetof(struct xdp_md, data_end), 0);
		p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
		p[n++] = insn(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_4, 0, 0, (__s32)len);
		int jump = n++; /* patched below: if r4 > r3 goto drop */
		size_t off = 0;
		for (; off + 8 <= len; off += 8) {
			uint64_t v;
			memcpy(&v, frame + off, 8); /* host byte order: the store writes the bytes back as they were */
			p[n++] = insn(BPF_LD | BPF_IMM | BPF_DW, BPF_REG_5, 0, 0, (__s32)(uint32_t)v);
			p[n++] = insn(0, 0, 0, 0, (__s32)(uint32_t)(v >> 32));
			p[n++] = insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_5, (__s16)off, 0);
		}
		if (off + 4 <= len) {
			uint32_t v;
			memcpy(&v, frame + off, 4);
			p[n++] = insn(BPF_ST | BPF_MEM | BPF_W, BPF_REG_2, 0, (__s16)off, (__s32)v);
			off += 4;
		}
		if (off + 2 <= len) {
			uint16_t v;
			memcpy(&v, frame + off, 2);
			p[n++] = insn(BPF_ST | BPF_MEM | BPF_H, BPF_REG_2, 0, (__s16)off, v);
			off += 2;
		}
		if (off < len) p[n++] = insn(BPF_ST | BPF_MEM | BPF_B, BPF_REG_2, 0, (__s16)off, frame[off]);
		p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_TX);
		p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		p[jump] = insn(BPF_JMP | BPF_JGT | BPF_X, BPF_REG_4, BPF_REG_3, (__s16)(n - jump - 1), 0);
		p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_DROP);
		p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		return n;
	}
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_TX);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return n;
}

int main(int argc, char **argv)
{
	int rewrite = 0;
	unsigned long batch = 0; /* 0: the kernel's default (64) */
	char *end;
	for (;;) {
		if (argc > 1 && strcmp(argv[1], "--rewrite") == 0) {
			rewrite = 1;
			argv++;
			argc--;
		} else if (argc > 2 && strcmp(argv[1], "--batch") == 0) {
			batch = strtoul(argv[2], &end, 10);
			if (*end || batch == 0 || batch > 256) { fprintf(stderr, "xdp_flood: --batch must be in 1..256\n"); return 2; }
			argv += 2;
			argc -= 2;
		} else {
			break;
		}
	}
	if (argc != 4) {
		fprintf(stderr, "usage: xdp_flood [--rewrite] [--batch N] IFINDEX COUNT HEXFRAME\n");
		return 2;
	}
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

	static struct bpf_insn insns[MAX_INSNS];
	int n = build(insns, frame, hexlen / 2, rewrite);
	char log[4096] = "";
	LIBBPF_OPTS(bpf_prog_load_opts, lopts, .log_buf = log, .log_size = sizeof(log), .log_level = 0);
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "ot_bench_flood", "GPL", insns, (size_t)n, &lopts);
	if (fd < 0) {
		int e = errno;
		/* Load again with the verifier's log on, to say why. */
		lopts.log_level = 1;
		bpf_prog_load(BPF_PROG_TYPE_XDP, "ot_bench_flood", "GPL", insns, (size_t)n, &lopts);
		fprintf(stderr, "xdp_flood: loading the program: %s\n%s", strerror(e), log);
		return 1;
	}

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
		.batch_size = (__u32)batch,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	struct timespec t0, t1, c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int err = bpf_prog_test_run_opts(fd, &opts);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	if (err) { fprintf(stderr, "xdp_flood: BPF_PROG_RUN (live frames): %s\n", strerror(errno)); return 1; }
	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	long long cpu = (long long)(c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
	printf("{\"sent\":%lu,\"ns\":%lld,\"cpu_ns\":%lld}\n", count, ns, cpu);
	return 0;
}
