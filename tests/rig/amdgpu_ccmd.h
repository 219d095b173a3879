/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The guest side of the AMD native-context protocol (what Mesa's
 * src/amd/common/virtio/ and src/virtio/vdrm/ do), independent of how the
 * requests reach the host: tests/rig/vtest_amdgpu.c sends them over a vtest
 * socket, tests/rig/vm_amdgpu.c over a virtio-gpu device in a VM.
 *
 * The ccmd wire structs are written here from virglrenderer 1.3.0's
 * src/drm/amdgpu/amdgpu_virtio_proto.h and src/drm_hw.h (sizes asserted);
 * USERPTR_IMPORT comes from the project's include/amdgpu_userptr_proto.h.
 */
#ifndef RIG_AMDGPU_CCMD_H
#define RIG_AMDGPU_CCMD_H

#include <stdbool.h>
#include <stdint.h>

#include <libdrm/amdgpu_drm.h>

#include "amdgpu_userptr_proto.h"

#define CAPSET_DRM 6
#define DRM_CONTEXT_AMDGPU 2

enum {
	CCMD_QUERY_INFO = 1,
	CCMD_GEM_NEW,
	CCMD_BO_VA_OP,
	CCMD_CS_SUBMIT,
	CCMD_SET_METADATA,
	CCMD_BO_QUERY_INFO,
	CCMD_CREATE_CTX,
	CCMD_RESERVE_VMID,
	CCMD_SET_PSTATE,
	CCMD_CS_QUERY_FENCE_STATUS,
};
_Static_assert(CCMD_CS_QUERY_FENCE_STATUS + 1 == AMDGPU_CCMD_USERPTR_IMPORT,
	       "USERPTR_IMPORT follows CS_QUERY_FENCE_STATUS");

struct ccmd_hdr {		/* struct vdrm_ccmd_req */
	uint32_t cmd, len, seqno, rsp_off;
};
struct ccmd_rsp {		/* struct amdgpu_ccmd_rsp */
	uint32_t len;
	int32_t ret;
};

struct shmem {			/* struct amdvgpu_shmem, first fields */
	uint32_t seqno;
	uint32_t rsp_mem_offset;
	uint32_t async_error;
	uint32_t pad;
};

struct query_info_req {
	struct ccmd_hdr hdr;
	struct drm_amdgpu_info info;
};
_Static_assert(sizeof(struct query_info_req) == 48, "wire size");

struct gem_new_req {
	struct ccmd_hdr hdr;
	uint64_t blob_id;
	uint64_t alloc_size, phys_alignment;
	uint32_t preferred_heap, pad;
	uint64_t flags;
};
_Static_assert(sizeof(struct gem_new_req) == 56, "wire size");

struct bo_va_op_req {
	struct ccmd_hdr hdr;
	uint64_t va, vm_map_size, flags, flags2, offset;
	uint32_t res_id, op;
};
_Static_assert(sizeof(struct bo_va_op_req) == 64, "wire size");

struct set_metadata_req {
	struct ccmd_hdr hdr;
	uint64_t flags, tiling_info;
	uint32_t res_id, size_metadata;
};
_Static_assert(sizeof(struct set_metadata_req) == 40, "wire size");

struct create_ctx_req {
	struct ccmd_hdr hdr;
	int32_t priority;
	uint32_t flags;
};
struct create_ctx_rsp {
	struct ccmd_rsp hdr;
	uint32_t ctx_id, pad;
};
_Static_assert(sizeof(struct create_ctx_req) == 24, "wire size");

struct cs_submit_req {
	struct ccmd_hdr hdr;
	uint32_t ctx_id, num_chunks, pad, ring_idx;
	/* then (chunk_id:16, length_dw:16, offset:32) descriptors, then data */
};
struct cs_desc {
	uint16_t chunk_id, length_dw;
	uint32_t offset;
};
_Static_assert(sizeof(struct cs_submit_req) == 32, "wire size");

struct fence_status_req {
	struct ccmd_hdr hdr;
	uint32_t ctx_id, ip_type, ip_instance, ring;
	uint64_t fence, timeout_ns, flags;
};
struct fence_status_rsp {
	struct ccmd_rsp hdr;
	uint32_t expired, pad;
};
_Static_assert(sizeof(struct fence_status_req) == 56, "wire size");

/* struct virgl_renderer_capset_drm: 6 dwords, then u.amdgpu. */
#define CAPS_CONTEXT_TYPE 16
#define CAPS_AMDGPU_BITS 28	/* has_vm_always_valid:1, has_userptr:1 */

#define SHMEM_SIZE 0x4000
#define RSP_SENTINEL 0x7eadbeef
#define TIMEOUT_MS 10000

/* ---- output: "PASS rig: NAME", "FAIL rig: NAME: why", "INFO rig: ..." ---- */

extern int failures;
void pass(const char *name);
void __attribute__((format(printf, 2, 3))) fail(const char *name, const char *fmt, ...);
void __attribute__((format(printf, 1, 2))) info(const char *fmt, ...);

/* ---- a connection to the host's AMD context ---- */

struct conn;

struct transport {
	/*
	 * Sends one ccmd (hdr and seqno already filled) towards virtio ring
	 * ring_idx (0: the host CPU) and returns once the host has handled
	 * it, or a negative errno (set c->dead when the host went away).  A
	 * transport that has per-ring fences also waits for ring_idx's fence.
	 */
	int (*send)(struct conn *c, const void *req, uint32_t len, uint32_t ring_idx);
};

struct conn {
	const struct transport *t;
	int fd;			/* vtest socket or virtio-gpu DRM fd */
	bool dead;		/* the host closed the connection */
	uint8_t caps[1024];
	uint32_t caps_size;
	volatile struct shmem *shmem;
	uint8_t *rsp_mem;
	uint32_t rsp_size, next_rsp_off;
	uint32_t seqno;
	uint32_t shmem_res;
	/* when set, the next send hands its out fence (a sync_file fd) over
	 * here instead of waiting for it (virtio-gpu transport) */
	int *fence_out;
	char err[256];
};

int conn_error(struct conn *c, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Takes the context's shared memory once it is mapped at shmem. */
int conn_set_shmem(struct conn *c, void *shmem);
bool caps_has_userptr(const struct conn *c);

/* ---- ccmds ---- */

void *rsp_alloc(struct conn *c, struct ccmd_hdr *hdr, uint32_t size);
/* 0 when the host has processed it (shmem seqno reached), -EPIPE when the
 * host dropped the connection, -ENOMSG when it never acknowledged it. */
int ccmd(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len);
int ccmd_ring(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len,
	      uint32_t ring_idx);
/* ccmd whose answer is an amdgpu_ccmd_rsp: the host's ret, or the transport
 * error (also in *terr). */
int ccmd_ret(struct conn *c, struct ccmd_hdr *hdr, uint32_t cmd, uint32_t len,
	     struct ccmd_rsp *rsp, int *terr);
const char *terr_str(int terr);

int query_info(struct conn *c, uint32_t query, uint32_t ip_type, void *out, uint32_t size);
int create_ctx(struct conn *c, uint32_t *ctx_id);
int bo_va_op(struct conn *c, uint32_t res_id, uint32_t op, uint64_t va,
	     uint64_t size, uint64_t flags, int *terr);
int userptr_import(struct conn *c, uint32_t res_id, uint32_t flags, uint64_t size,
		   int *terr);

/* ---- the GPU side: SDMA packets (SDMA 5 encoding) ---- */

struct ib {
	uint32_t *dw;
	unsigned n, max;
	uint64_t va;
};

void ib_copy(struct ib *ib, uint64_t dst, uint64_t src, uint32_t bytes);
void ib_fill(struct ib *ib, uint64_t dst, uint32_t value, uint32_t bytes);

struct gpu {
	uint32_t ctx_id;
	uint32_t sdma_ring_idx;	/* virtio ring of SDMA ring 0, as Mesa maps it */
	uint32_t submit_ring;	/* the ring CS_SUBMIT goes to (0 or sdma_ring_idx) */
	uint64_t fence;		/* the last submission's sequence number */
};

/* The virtio ring of SDMA, as Mesa numbers them (1 + rings of the IP types
 * before it); 0 when there is none, with a transport error in *err. */
unsigned sdma_ring_idx(struct conn *c, int *err);

/* CS_SUBMIT of ib on SDMA with the BO list (res_ids), without waiting for
 * the job: 0 once the host accepted it. */
int cs_submit(struct conn *c, struct gpu *g, const struct ib *ib,
	      const uint32_t *res_ids, unsigned nres, const char **stage);

/* CS_SUBMIT of ib on SDMA with the BO list (res_ids); then waits with
 * CS_QUERY_FENCE_STATUS.  Returns the submission's result, the wait's
 * (the fence carries a GPU fault as -EFAULT), or a transport error. */
int submit_wait(struct conn *c, struct gpu *g, const struct ib *ib,
		const uint32_t *res_ids, unsigned nres, const char **stage);

/* Compares "name value" lines of the simulator's AMDGPU_SIM_STATS file with
 * the ones the client expects. */
int check_stats(const char *stats_path, const char *expect_path);

#endif
