/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* Every map of the ABI, defined in every object that includes this file. Maps are pinned by name
 * (LIBBPF_PIN_BY_NAME): the loader gives libbpf the node's pin directory, so xdp_edge.o and tc_gre.o share one
 * set of maps, and a reload reuses the live maps (their contents survive an upgrade of the programs). */
#ifndef OT_LIB_MAPS_H
#define OT_LIB_MAPS_H

#include "common.h"

#define OT_MAP(name_, type_, key_, value_, max_, flags_)                                                             \
	struct {                                                                                                       \
		__uint(type, type_);                                                                                   \
		__type(key, key_);                                                                                     \
		__type(value, value_);                                                                                 \
		__uint(max_entries, max_);                                                                             \
		__uint(map_flags, flags_);                                                                             \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                                                   \
	} name_ SEC(".maps");

#define OT_RINGBUF(name_, record_, bytes_)                                                                           \
	struct {                                                                                                       \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                                                                    \
		__uint(max_entries, bytes_);                                                                           \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                                                   \
	} name_ SEC(".maps");

#include "opentransit_abi.h"

#endif
