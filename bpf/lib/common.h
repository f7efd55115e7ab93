/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* What every OpenTransit BPF program includes: kernel types (vmlinux.h, generated at build time from the running
 * kernel's BTF), libbpf's helpers, and the uapi #defines that BTF cannot carry. */
#ifndef OT_LIB_COMMON_H
#define OT_LIB_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#define ETH_HLEN 14
#define ETH_ALEN 6
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8

/* IPv6 next-header values (uapi #defines in <linux/in6.h>, so not in vmlinux.h); IPv4's are an enum there. */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60

#define IP_MF 0x2000
#define IP_DF 0x4000
#define IP_OFFSET 0x1FFF

#define TC_ACT_UNSPEC (-1) /* no verdict: the next filter decides, or the hook's default (pass) */
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

#define NSEC_PER_SEC 1000000000ULL

#endif
