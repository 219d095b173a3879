/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Executes IBs: SDMA (NOP, COPY_LINEAR, WRITE_LINEAR, CONSTANT_FILL, FENCE,
 * TRAP, TIMESTAMP, SRBM_WRITE, POLL_REGMEM once, INDIRECT_BUFFER) and PM4
 * (NOP, WRITE_DATA, DMA_DATA, RELEASE_MEM, EVENT_WRITE_EOP,
 * INDIRECT_BUFFER[_CONST]; register and draw/dispatch packets are parsed
 * and have no effect: there are no shader cores).  Packet formats are those
 * of the GFX9+ generations (counts are "minus one"); older ASICs use the
 * GFX6-8 encodings where they differ.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "amdgpu_devices.h"
#include "amdgpu_sim.h"

#define SDMA_OP_NOP		0x0
#define SDMA_OP_COPY		0x1
#define SDMA_OP_WRITE		0x2
#define SDMA_OP_INDIRECT	0x4
#define SDMA_OP_FENCE		0x5
#define SDMA_OP_TRAP		0x6
#define SDMA_OP_POLL_REGMEM	0x8
#define SDMA_OP_CONSTANT_FILL	0xb
#define SDMA_OP_TIMESTAMP	0xd
#define SDMA_OP_SRBM_WRITE	0xe
#define SDMA_SUBOP_LINEAR	0x0

#define PKT3_NOP		0x10
#define PKT3_INDIRECT_BUFFER_CONST 0x33
#define PKT3_WRITE_DATA		0x37
#define PKT3_INDIRECT_BUFFER	0x3f
#define PKT3_EVENT_WRITE_EOP	0x47
#define PKT3_RELEASE_MEM	0x49
#define PKT3_DMA_DATA		0x50

#define SIM_MAX_IB_DEPTH	4
#define SIM_MAX_IB_BYTES	(64u << 20)

static bool
sim_gfx9_plus(void)
{
	return sim.asic->hw_ip_gfx.hw_ip_version_major >= 9;
}

static uint64_t
sim_addr(uint32_t lo, uint32_t hi)
{
	return ((uint64_t)hi << 32) | lo;
}

static int
sim_bad_packet(void)
{
	SIM_STAT_ADD(bad_packets, 1);
	return -EINVAL;
}

static int sim_run_ib(struct sim_vm *vm, uint64_t va, uint64_t bytes,
		      uint32_t ip_type, unsigned depth);

/* Writes the 32- or 64-bit payload of a fence/EOP packet. */
static int
sim_write_payload(struct sim_vm *vm, uint64_t va, unsigned data_sel,
		  uint32_t lo, uint32_t hi)
{
	uint64_t v64;

	switch (data_sel) {
	case 0:			/* discard */
		return 0;
	case 1:			/* 32 bits */
		return sim_gpu_write(vm, va, &lo, 4);
	case 2:			/* 64 bits */
		v64 = sim_addr(lo, hi);
		return sim_gpu_write(vm, va, &v64, 8);
	case 3:			/* GPU clock */
		v64 = sim_monotonic_ns() / 10;
		return sim_gpu_write(vm, va, &v64, 8);
	default:
		return 0;	/* GDS and counters: nothing to write here */
	}
}

/* One SDMA packet at ib[0..n); returns its length in dwords or -errno. */
static int
sim_sdma_packet(struct sim_vm *vm, const uint32_t *ib, uint32_t n,
		unsigned depth)
{
	uint32_t op = ib[0] & 0xff, sub = (ib[0] >> 8) & 0xff;
	uint64_t count;
	int r;

	switch (op) {
	case SDMA_OP_NOP:
		count = (ib[0] >> 16) & 0x3fff;
		return count + 1 <= n ? (int)count + 1 : sim_bad_packet();
	case SDMA_OP_COPY:
		if (sub != SDMA_SUBOP_LINEAR || n < 7)
			return sim_bad_packet();
		count = sim_gfx9_plus() ? (ib[1] & 0x3fffffff) + 1
					: ib[1] & 0x3fffff;
		r = sim_gpu_copy(vm, sim_addr(ib[5], ib[6]),
				 sim_addr(ib[3], ib[4]), count);
		return r ? r : 7;
	case SDMA_OP_WRITE:
		if (sub != SDMA_SUBOP_LINEAR || n < 4)
			return sim_bad_packet();
		count = sim_gfx9_plus() ? (uint64_t)ib[3] + 1 : ib[3];
		if (count > n - 4)
			return sim_bad_packet();
		r = sim_gpu_write(vm, sim_addr(ib[1], ib[2]), &ib[4], count * 4);
		return r ? r : (int)(4 + count);
	case SDMA_OP_FENCE:
		if (n < 4)
			return sim_bad_packet();
		r = sim_gpu_write(vm, sim_addr(ib[1], ib[2]), &ib[3], 4);
		return r ? r : 4;
	case SDMA_OP_TRAP:
		return n >= 2 ? 2 : sim_bad_packet();
	case SDMA_OP_SRBM_WRITE:
		return n >= 3 ? 3 : sim_bad_packet();
	case SDMA_OP_TIMESTAMP:
		if (n < 3)
			return sim_bad_packet();
		if (sub == 1 || sub == 2) {	/* GET_LOCAL / GET_GLOBAL */
			uint64_t ts = sim_monotonic_ns() / 10;

			r = sim_gpu_write(vm, sim_addr(ib[1], ib[2]), &ts, 8);
			if (r)
				return r;
		}
		return 3;
	case SDMA_OP_CONSTANT_FILL: {
		uint32_t value = ib[3];

		if (n < 5)
			return sim_bad_packet();
		count = sim_gfx9_plus() ? (ib[4] & 0x3fffffff) + 1
					: ib[4] & 0x3fffff;
		if (((ib[0] >> 30) & 3) == 0)	/* byte fill */
			value = (value & 0xff) * 0x01010101u;
		r = sim_gpu_fill(vm, sim_addr(ib[1], ib[2]), value, count);
		return r ? r : 5;
	}
	case SDMA_OP_POLL_REGMEM: {
		/* Executed once: a poll that would not succeed now never
		 * will, since this GPU runs one job at a time. */
		uint32_t func = (ib[0] >> 28) & 7, mem = (ib[0] >> 31) & 1;
		uint32_t val, ref, mask;
		bool ok;

		if (n < 6)
			return sim_bad_packet();
		if (!mem)
			return 6;
		r = sim_gpu_read(vm, sim_addr(ib[1], ib[2]), &val, 4);
		if (r)
			return r;
		ref = ib[3];
		mask = ib[4];
		val &= mask;
		switch (func) {
		case 0: ok = true; break;
		case 1: ok = val < ref; break;
		case 2: ok = val <= ref; break;
		case 3: ok = val == ref; break;
		case 4: ok = val != ref; break;
		case 5: ok = val >= ref; break;
		case 6: ok = val > ref; break;
		default: ok = false;
		}
		return ok ? 6 : -ETIME;
	}
	case SDMA_OP_INDIRECT:
		if (n < 6)
			return sim_bad_packet();
		r = sim_run_ib(vm, sim_addr(ib[1], ib[2]), (uint64_t)ib[3] * 4,
			       AMDGPU_HW_IP_DMA, depth + 1);
		return r ? r : 6;
	default:
		return sim_bad_packet();
	}
}

/* One PM4 packet; returns its length in dwords, or -errno.  *chained is
 * set when an INDIRECT_BUFFER with CHAIN replaced the rest of this IB. */
static int
sim_pm4_packet(struct sim_vm *vm, const uint32_t *ib, uint32_t n,
	       unsigned depth, bool *chained)
{
	uint32_t h = ib[0], type = h >> 30, op, body;
	int r;

	if (type == 2)
		return 1;
	if (type == 0)
		return ((h >> 16) & 0x3fff) + 2 <= n ? (int)((h >> 16) & 0x3fff) + 2
						      : sim_bad_packet();
	if (type != 3)
		return sim_bad_packet();
	op = (h >> 8) & 0xff;
	body = ((h >> 16) & 0x3fff) + 1;
	if (op == PKT3_NOP && body == 0x4000)
		return 1;		/* header-only NOP */
	if (body + 1 > n)
		return sim_bad_packet();

	switch (op) {
	case PKT3_WRITE_DATA: {
		uint32_t dst_sel = (ib[1] >> 8) & 0xf;
		bool one_addr = (ib[1] >> 16) & 1;
		uint64_t va = sim_addr(ib[2], ib[3]);

		if (body < 3)
			return sim_bad_packet();
		if (dst_sel != 2 && dst_sel != 5)
			break;		/* registers, GDS: no effect here */
		if (one_addr) {
			for (uint32_t i = 3; i < body; i++)
				if ((r = sim_gpu_write(vm, va, &ib[1 + i], 4)))
					return r;
		} else if ((r = sim_gpu_write(vm, va, &ib[4], (body - 3) * 4))) {
			return r;
		}
		break;
	}
	case PKT3_DMA_DATA: {
		uint32_t src_sel = (ib[1] >> 29) & 3, dst_sel = (ib[1] >> 20) & 3;
		uint32_t bytes = ib[6] & (sim_gfx9_plus() ? 0x3ffffff : 0x1fffff);
		uint64_t dst = sim_addr(ib[4], ib[5]);

		if (body < 6)
			return sim_bad_packet();
		if ((dst_sel != 0 && dst_sel != 3) || !bytes)
			break;		/* GDS destinations: no effect here */
		if (src_sel == 2)
			r = sim_gpu_fill(vm, dst, ib[2], bytes);
		else if (src_sel == 0 || src_sel == 3)
			r = sim_gpu_copy(vm, dst, sim_addr(ib[2], ib[3]), bytes);
		else
			r = 0;
		if (r)
			return r;
		break;
	}
	case PKT3_RELEASE_MEM:
		if (body < 6)
			return sim_bad_packet();
		r = sim_write_payload(vm, sim_addr(ib[3], ib[4]),
				      (ib[2] >> 29) & 7, ib[5], ib[6]);
		if (r)
			return r;
		break;
	case PKT3_EVENT_WRITE_EOP:
		if (body < 5)
			return sim_bad_packet();
		r = sim_write_payload(vm, sim_addr(ib[2], ib[3] & 0xffff),
				      (ib[3] >> 29) & 7, ib[4], ib[5]);
		if (r)
			return r;
		break;
	case PKT3_INDIRECT_BUFFER:
	case PKT3_INDIRECT_BUFFER_CONST:
		if (body < 3)
			return sim_bad_packet();
		r = sim_run_ib(vm, sim_addr(ib[1] & ~3u, ib[2] & 0xffff),
			       (uint64_t)(ib[3] & 0xfffff) * 4, AMDGPU_HW_IP_GFX,
			       depth + 1);
		if (r)
			return r;
		if (sim_gfx9_plus() && (ib[3] & (1u << 20)))
			*chained = true;
		break;
	default:
		break;		/* state, draws, dispatches: no shader cores */
	}
	return body + 1;
}

static int
sim_run_ib(struct sim_vm *vm, uint64_t va, uint64_t bytes, uint32_t ip_type,
	   unsigned depth)
{
	uint32_t *ib, n, pos = 0;
	int r;

	if (depth > SIM_MAX_IB_DEPTH || bytes == 0 || bytes > SIM_MAX_IB_BYTES ||
	    bytes % 4)
		return sim_bad_packet();
	ib = malloc(bytes);
	if (!ib)
		return -ENOMEM;
	/* An IB the CP cannot fetch hangs it: the job times out (-ETIME),
	 * as amdgpu_job_timedout() ends it. */
	r = sim_gpu_fetch(vm, va, ib, bytes) ? -ETIME : 0;
	n = bytes / 4;
	while (!r && pos < n) {
		bool chained = false;
		int len;

		if (ip_type == AMDGPU_HW_IP_DMA)
			len = sim_sdma_packet(vm, ib + pos, n - pos, depth);
		else
			len = sim_pm4_packet(vm, ib + pos, n - pos, depth,
					     &chained);
		if (len < 0) {
			r = len;
			break;
		}
		SIM_STAT_ADD(packets, 1);
		if (chained)
			break;
		pos += len;
	}
	free(ib);
	return r;
}

int
sim_execute_ib(struct sim_vm *vm, const struct sim_ib *ib)
{
	return sim_run_ib(vm, ib->va, ib->bytes, ib->ip_type, 0);
}
