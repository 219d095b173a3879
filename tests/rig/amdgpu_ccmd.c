/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The AMD native-context ccmd layer shared by the vtest client and the VM
 * guest program (amdgpu_ccmd.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amdgpu_ccmd.h"
#include "rig_report.h"

int failures;

void
pass(const char *name)
{
	rig_pass("%s", name);
}

void
fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rig_vfail(name, fmt, ap);
	va_end(ap);
	failures++;
}

void
info(const char *fmt, ...)
{
	va_list ap;

	printf("INFO rig: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int
conn_error(struct conn *c, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return r;
}

int
conn_set_shmem(struct conn *c, void *shmem)
{
	c->shmem = shmem;
	if (c->shmem->rsp_mem_offset < sizeof(struct shmem) ||
	    c->shmem->rsp_mem_offset >= SHMEM_SIZE)
		return conn_error(c, -EPROTO, "rsp_mem_offset %u",
				  c->shmem->rsp_mem_offset);
	c->rsp_mem = (uint8_t *)c->shmem + c->shmem->rsp_mem_offset;
	c->rsp_size = SHMEM_SIZE - c->shmem->rsp_mem_offset;
	return 0;
}

bool
caps_has_userptr(const struct conn *c)
{
	uint32_t bits;

	memcpy(&bits, &c->caps[CAPS_AMDGPU_BITS], 4);
	return bits & (1u << AMDGPU_CAPSET_HAS_USERPTR_BIT);
}

/* Places a response slot: its len is what the guest can take, its ret a
 * sentinel that tells whether the host wrote it. */
void *
rsp_alloc(struct conn *c, struct ccmd_hdr *hdr, uint32_t size)
{
	struct ccmd_rsp *rsp;

	size = (size + 7) & ~7u;
	if (c->next_rsp_off + size > c->rsp_size)
		c->next_rsp_off = 0;
	hdr->rsp_off = c->next_rsp_off;
	c->next_rsp_off += size;
	rsp = (void *)&c->rsp_mem[hdr->rsp_off];
	memset(rsp, 0, size);
	rsp->len = size;
	rsp->ret = RSP_SENTINEL;
	return rsp;
}

int
ccmd_ring(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len,
	  uint32_t ring_idx)
{
	int r;

	hdr->cmd = cmd;
	hdr->len = len;
	hdr->seqno = ++c->seqno;
	r = c->t->send(c, hdr, len, ring_idx);
	if (r)
		return c->dead ? -EPIPE : r;
	if ((int32_t)(c->shmem->seqno - hdr->seqno) < 0)
		return -ENOMSG;
	return 0;
}

int
ccmd(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len)
{
	return ccmd_ring(c, hdr, cmd, len, 0);
}

static int
ccmd_ring_ret(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len,
	      uint32_t ring_idx, struct ccmd_rsp *rsp, int *terr)
{
	*terr = ccmd_ring(c, hdr, cmd, len, ring_idx);
	if (*terr)
		return *terr;
	if (rsp->ret == (int32_t)RSP_SENTINEL) {
		*terr = -ENODATA;
		return *terr;
	}
	return rsp->ret;
}

int
ccmd_ret(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len,
	 struct ccmd_rsp *rsp, int *terr)
{
	return ccmd_ring_ret(c, hdr, cmd, len, 0, rsp, terr);
}

const char *
terr_str(int terr)
{
	switch (terr) {
	case -EPIPE: return "the host dropped the connection";
	case -ENOMSG: return "the host never acknowledged the command (seqno not reached)";
	case -ENODATA: return "the host acknowledged but wrote no response";
	default: return strerror(-terr);
	}
}

int
query_info(struct conn *c, uint32_t query, uint32_t ip_type, void *out, uint32_t size)
{
	struct query_info_req req = { 0 };
	struct ccmd_rsp *rsp;
	int r, terr;

	req.info.query = query;
	req.info.return_size = size;
	req.info.query_hw_ip.type = ip_type;
	rsp = rsp_alloc(c, &req.hdr, sizeof(*rsp) + size);
	r = ccmd_ret(c, &req.hdr, CCMD_QUERY_INFO, sizeof(req), rsp, &terr);
	if (terr)
		return terr;
	if (r)
		return r;
	memcpy(out, rsp + 1, size);
	return 0;
}

int
create_ctx(struct conn *c, uint32_t *ctx_id)
{
	struct create_ctx_req req = { 0 };
	struct create_ctx_rsp *rsp = rsp_alloc(c, &req.hdr, sizeof(*rsp));
	int r, terr;

	r = ccmd_ret(c, &req.hdr, CCMD_CREATE_CTX, sizeof(req), &rsp->hdr, &terr);
	if (!r && !rsp->ctx_id)
		r = -ENOTSUP;
	*ctx_id = rsp->ctx_id;
	return r;
}

int
bo_va_op(struct conn *c, uint32_t res_id, uint32_t op, uint64_t va,
	 uint64_t size, uint64_t flags, int *terr)
{
	struct bo_va_op_req req = {
		.va = va, .vm_map_size = size, .flags = flags, .res_id = res_id,
		.op = op,
	};
	struct ccmd_rsp *rsp = rsp_alloc(c, &req.hdr, sizeof(*rsp));

	return ccmd_ret(c, &req.hdr, CCMD_BO_VA_OP, sizeof(req), rsp, terr);
}

int
userptr_import(struct conn *c, uint32_t res_id, uint32_t flags, uint64_t size,
	       int *terr)
{
	struct amdgpu_ccmd_userptr_import_req req = {
		.res_id = res_id, .flags = flags, .size = size,
	};
	struct ccmd_rsp *rsp = rsp_alloc(c, (struct ccmd_hdr *)&req.hdr, sizeof(*rsp));

	return ccmd_ret(c, (struct ccmd_hdr *)&req.hdr, AMDGPU_CCMD_USERPTR_IMPORT,
			sizeof(req), rsp, terr);
}

/* ---- SDMA ---- */

#define SDMA_OP_COPY 1
#define SDMA_OP_CONST_FILL 11

void
ib_copy(struct ib *ib, uint64_t dst, uint64_t src, uint32_t bytes)
{
	uint32_t p[7] = {
		SDMA_OP_COPY,			/* COPY, sub-op LINEAR */
		bytes - 1, 0,
		(uint32_t)src, (uint32_t)(src >> 32),
		(uint32_t)dst, (uint32_t)(dst >> 32),
	};

	memcpy(&ib->dw[ib->n], p, sizeof(p));
	ib->n += 7;
}

void
ib_fill(struct ib *ib, uint64_t dst, uint32_t value, uint32_t bytes)
{
	uint32_t p[5] = {
		SDMA_OP_CONST_FILL | (2u << 30),	/* fill dwords */
		(uint32_t)dst, (uint32_t)(dst >> 32),
		value, bytes - 1,
	};

	memcpy(&ib->dw[ib->n], p, sizeof(p));
	ib->n += 5;
}

unsigned
sdma_ring_idx(struct conn *c, int *err)
{
	unsigned idx = 1;

	*err = 0;
	for (unsigned t = 0; t < AMDGPU_HW_IP_NUM; t++) {
		struct drm_amdgpu_info_hw_ip ip = { 0 };
		int r = query_info(c, AMDGPU_INFO_HW_IP_INFO, t, &ip, sizeof(ip));

		if (r == -EPIPE || r == -ENOMSG || r == -ENODATA) {
			*err = r;
			return 0;
		}
		if (r)
			continue;
		if (t == AMDGPU_HW_IP_DMA)
			return ip.available_rings ? idx : 0;
		idx += __builtin_popcount(ip.available_rings);
	}
	return 0;
}

int
cs_submit(struct conn *c, struct gpu *g, const struct ib *ib,
	  const uint32_t *res_ids, unsigned nres, const char **stage)
{
	size_t len = sizeof(struct cs_submit_req) + 2 * sizeof(struct cs_desc) +
		     nres * sizeof(struct drm_amdgpu_bo_list_entry) +
		     sizeof(struct drm_amdgpu_cs_chunk_ib);
	uint8_t *buf;
	struct cs_submit_req *req;
	struct cs_desc *desc;
	struct drm_amdgpu_bo_list_entry *list;
	struct drm_amdgpu_cs_chunk_ib *chunk;
	struct ccmd_rsp *rsp;
	int r, terr;

	len = (len + 7) & ~(size_t)7;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	req = (void *)buf;
	desc = (void *)(req + 1);
	list = (void *)(desc + 2);
	chunk = (void *)(list + nres);

	req->ctx_id = g->ctx_id;
	req->num_chunks = 2;
	req->ring_idx = g->sdma_ring_idx;
	desc[0] = (struct cs_desc){ AMDGPU_CHUNK_ID_BO_HANDLES,
				    nres * sizeof(*list) / 4, 0 };
	desc[1] = (struct cs_desc){ AMDGPU_CHUNK_ID_IB, sizeof(*chunk) / 4,
				    nres * sizeof(*list) };
	for (unsigned i = 0; i < nres; i++)
		list[i] = (struct drm_amdgpu_bo_list_entry){ res_ids[i], 0 };
	chunk->ip_type = AMDGPU_HW_IP_DMA;
	chunk->va_start = ib->va;
	chunk->ib_bytes = ib->n * 4;

	rsp = rsp_alloc(c, &req->hdr, sizeof(*rsp));
	*stage = "CS_SUBMIT";
	r = ccmd_ring_ret(c, &req->hdr, CCMD_CS_SUBMIT, len, g->submit_ring, rsp, &terr);
	free(buf);
	if (r)
		return r;
	/* The sequence numbers of one context's ring start at 1 (as Mesa's
	 * ring_next_seqno); the host runs one context at a time here. */
	g->fence++;
	return 0;
}

int
submit_wait(struct conn *c, struct gpu *g, const struct ib *ib,
	    const uint32_t *res_ids, unsigned nres, const char **stage)
{
	int r, terr;

	r = cs_submit(c, g, ib, res_ids, nres, stage);
	if (r)
		return r;

	struct fence_status_req f = {
		.ctx_id = g->ctx_id, .ip_type = AMDGPU_HW_IP_DMA,
		.fence = g->fence, .timeout_ns = 5000000000ull,
	};
	struct fence_status_rsp *frsp = rsp_alloc(c, &f.hdr, sizeof(*frsp));

	*stage = "CS_QUERY_FENCE_STATUS";
	r = ccmd_ret(c, &f.hdr, CCMD_CS_QUERY_FENCE_STATUS, sizeof(f), &frsp->hdr, &terr);
	if (r)
		return r;
	if (!frsp->expired) {
		*stage = "fence";
		return -ETIMEDOUT;
	}
	return 0;
}

int
check_stats(const char *stats_path, const char *expect_path)
{
	FILE *sf = fopen(stats_path, "r"), *ef = fopen(expect_path, "r");
	char name[64], sname[64];
	unsigned long long want, got;
	int checked = 0;

	if (!sf || !ef) {
		fail("sim-counters", "cannot read %s", !sf ? stats_path : expect_path);
		if (sf)
			fclose(sf);
		if (ef)
			fclose(ef);
		return 1;
	}
	while (fscanf(ef, "%63s %llu", name, &want) == 2) {
		bool found = false;

		rewind(sf);
		while (fscanf(sf, "%63s %llu", sname, &got) == 2)
			if (!strcmp(sname, name)) {
				found = true;
				break;
			}
		if (!found)
			fail("sim-counters", "%s missing from %s", name, stats_path);
		else if (got != want)
			fail("sim-counters", "%s is %llu, the client's submissions "
			     "account for %llu", name, got, want);
		else
			printf("INFO rig: sim counter %s = %llu as expected\n", name, got);
		checked++;
	}
	if (!checked)
		fail("sim-counters", "%s lists no counters", expect_path);
	else if (!failures)
		pass("sim-counters (AMDGPU_SIM_STATS: bytes_moved, gpu_faults, submissions)");
	fclose(sf);
	fclose(ef);
	return failures ? 1 : 0;
}
