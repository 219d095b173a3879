/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The guest program of the VM rig (tests/rig/run-vm, docs/rig.md): plays the
 * guest Mesa's part of the AMD native context over a real virtio-gpu device
 * (the ccmd layer is amdgpu_ccmd.c, shared with the vtest client), the way
 * Mesa 25.0.7's src/virtio/vdrm/vdrm_virtgpu.c drives the kernel:
 *
 *   GETPARAM, GET_CAPS (capset 6, DRM), CONTEXT_INIT (capset 6, 64 rings),
 *   RESOURCE_CREATE_BLOB HOST3D MAPPABLE blob_id 0 (the shared memory with
 *   the seqno and the responses), MAP + mmap of it, ccmds in EXECBUFFERs
 *   (ring 0 with an out fence for synchronous ones, the SDMA ring for
 *   CS_SUBMIT), GEM_NEW inside RESOURCE_CREATE_BLOB (cmd + blob_id).
 *
 *   vm_amdgpu basic       milestone 1: GEM BOs, SDMA fill/copy, read back
 *                         through host-visible mappings, a GPU fault
 *   vm_amdgpu userptr     milestone 2: a guest userptr blob imported with
 *                         AMDGPU_CCMD_USERPTR_IMPORT, SDMA into the guest's
 *                         own pages, then munmap + new pages at the address
 *   vm_amdgpu hmm         HMM userptrs under move_pages, free + reuse,
 *                         fork + COW, THP split; released frames poisoned
 *   vm_amdgpu fault       a process killed mid-submit, munmap during a
 *                         running job, swap-out and back (docs/rig.md)
 *
 * Prints PASS/FAIL/SKIP rig: lines, and "STATS name value" lines with the
 * simulator counters the host must see (accumulated over the runs of one
 * boot by run-vm).  Exit status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "amdgpu_ccmd.h"

#include <drm/virtgpu_drm.h>

#include "virtgpu_userptr_uapi.h"

/* drm_virtgpu_resource_create_blob with Linux 7.2's blob_hints and pad2 and
 * the series' trailing userptr (the kernel zero-extends or truncates to its
 * own size, docs/design.md). */
struct create_blob_u {
	struct drm_virtgpu_resource_create_blob b;
	__u32 blob_hints;
	__u32 pad2;
	__u64 userptr;
};
_Static_assert(sizeof(struct create_blob_u) == VIRTGPU_RESOURCE_CREATE_BLOB_USERPTR_SIZE,
	       "create_blob grows by __u64 userptr after blob_hints and pad2");
#define IOCTL_CREATE_BLOB_U \
	DRM_IOWR(DRM_COMMAND_BASE + DRM_VIRTGPU_RESOURCE_CREATE_BLOB, struct create_blob_u)

#define NUM_RINGS 64

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the virtio-gpu transport ---- */

/*
 * One ccmd in one EXECBUFFER on ring_idx with an out fence; the fence of
 * ring 0 signals once the host handled the command (virglrenderer retires
 * it at once), that of a GPU ring once the job is done.  Then, as Mesa's
 * vdrm_host_sync, waits for the shared memory's seqno.
 */
static int
vg_send(struct conn *c, const void *req, uint32_t len, uint32_t ring_idx)
{
	const struct ccmd_hdr *hdr = req;
	struct drm_virtgpu_execbuffer eb = {
		.flags = VIRTGPU_EXECBUF_FENCE_FD_OUT | VIRTGPU_EXECBUF_RING_IDX,
		.size = len,
		.command = (uintptr_t)req,
		.fence_fd = -1,
		.ring_idx = ring_idx,
	};
	struct pollfd pfd;
	double t0;
	int r;

	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &eb))
		return conn_error(c, -errno, "EXECBUFFER (ring %u): %s", ring_idx,
				  strerror(errno));
	if (c->fence_out) {
		/* the caller waits for the job itself (phase fault) */
		*c->fence_out = eb.fence_fd;
		c->fence_out = NULL;
		goto seqno;
	}
	pfd = (struct pollfd){ .fd = eb.fence_fd, .events = POLLIN };
	do
		r = poll(&pfd, 1, TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	close(eb.fence_fd);
	if (r == 0)
		return conn_error(c, -ETIMEDOUT, "the fence of ring %u did not signal "
				  "in %d ms", ring_idx, TIMEOUT_MS);
seqno:
	t0 = now();
	while ((int32_t)(c->shmem->seqno - hdr->seqno) < 0) {
		if (now() - t0 > TIMEOUT_MS / 1000.0)
			return -ENOMSG;
		sched_yield();
	}
	return 0;
}

static const struct transport vg_transport = { .send = vg_send };

static int
getparam(int fd, uint64_t param, uint64_t *val)
{
	struct drm_virtgpu_getparam gp = { .param = param, .value = (uintptr_t)val };

	*val = 0;	/* the kernel writes an int */
	return ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp) ? -errno : 0;
}

/* MAP + mmap of a MAPPABLE blob (host-visible memory, QEMU's hostmem). */
static void *
map_blob(struct conn *c, uint32_t handle, size_t size)
{
	struct drm_virtgpu_map m = { .handle = handle };
	void *p;

	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_MAP, &m)) {
		conn_error(c, -errno, "VIRTGPU_MAP: %s", strerror(errno));
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, m.offset);
	if (p == MAP_FAILED) {
		conn_error(c, -errno, "mmap of the blob: %s", strerror(errno));
		return NULL;
	}
	return p;
}

/* Set in a forked child (phase fault): setup() prints no PASS lines. */
static bool quiet;

/* Device, capset and context, up to the shared memory; prints the checks. */
static int
vg_open(struct conn *c)
{
	static const struct {
		uint64_t param;
		const char *name;
	} need[] = {
		{ VIRTGPU_PARAM_3D_FEATURES, "3D_FEATURES" },
		{ VIRTGPU_PARAM_RESOURCE_BLOB, "RESOURCE_BLOB" },
		{ VIRTGPU_PARAM_HOST_VISIBLE, "HOST_VISIBLE" },
		{ VIRTGPU_PARAM_CONTEXT_INIT, "CONTEXT_INIT" },
	};
	uint64_t v, capsets;
	int r;

	memset(c, 0, sizeof(*c));
	c->t = &vg_transport;
	c->fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (c->fd < 0) {
		fail("guest-device", "open /dev/dri/renderD128: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		r = getparam(c->fd, need[i].param, &v);
		if (r || !v) {
			fail("guest-device", "GETPARAM %s: %s", need[i].name,
			     r ? strerror(-r) : "0");
			return -1;
		}
	}
	r = getparam(c->fd, VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs, &capsets);
	if (r || !(capsets & (1ull << CAPSET_DRM))) {
		fail("guest-capset-drm", "SUPPORTED_CAPSET_IDs %s 0x%llx: no DRM capset (%d)",
		     r ? strerror(-r) : "=", (unsigned long long)capsets, CAPSET_DRM);
		return -1;
	}
	if (!quiet)
		pass("guest-device (3D, blob, host-visible, context-init)");

	struct drm_virtgpu_get_caps gc = {
		.cap_set_id = CAPSET_DRM, .cap_set_ver = 0,
		.addr = (uintptr_t)c->caps, .size = 592,
	};
	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc)) {
		fail("guest-capset-drm", "GET_CAPS %d: %s", CAPSET_DRM, strerror(errno));
		return -1;
	}
	c->caps_size = 592;
	if (*(uint32_t *)&c->caps[CAPS_CONTEXT_TYPE] != DRM_CONTEXT_AMDGPU) {
		fail("guest-capset-drm", "context_type %u, not AMDGPU (%d)",
		     *(uint32_t *)&c->caps[CAPS_CONTEXT_TYPE], DRM_CONTEXT_AMDGPU);
		return -1;
	}
	if (!quiet)
		printf("PASS rig: guest-capset-drm (capsets 0x%llx, DRM capset "
		       "context_type amdgpu, amdgpu bits 0x%x)\n",
		       (unsigned long long)capsets,
		       *(uint32_t *)&c->caps[CAPS_AMDGPU_BITS]);

	/*
	 * The series' host reports DRM capset version 1, the promise that a
	 * detach's answer ends every host use of the pages; plain 1.3.0
	 * reports 0, and the guest kernel then offers pinned userptrs only.
	 */
	uint64_t modes = 0, want = caps_has_userptr(c) ?
		VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM :
		VIRTGPU_USERPTR_MODE_PINNED;
	r = getparam(c->fd, VIRTGPU_PARAM_RESOURCE_USERPTR, &modes);
	if (r || modes != want) {
		fail("guest-promise", "GETPARAM USERPTR %s 0x%llx, expected 0x%llx "
		     "(host %s the detach promise)", r ? strerror(-r) : "=",
		     (unsigned long long)modes, (unsigned long long)want,
		     caps_has_userptr(c) ? "with" : "without");
		return -1;
	}
	if (!quiet)
		printf("PASS rig: guest-promise (guest modes 0x%llx: %s)\n",
		       (unsigned long long)modes, caps_has_userptr(c) ?
		       "HMM offered, the host promised (DRM capset version 1)" :
		       "pinned only, the host made no promise (DRM capset version 0)");

	struct drm_virtgpu_context_set_param params[] = {
		{ VIRTGPU_CONTEXT_PARAM_CAPSET_ID, CAPSET_DRM },
		{ VIRTGPU_CONTEXT_PARAM_NUM_RINGS, NUM_RINGS },
	};
	struct drm_virtgpu_context_init ci = {
		.num_params = 2, .ctx_set_params = (uintptr_t)params,
	};
	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_CONTEXT_INIT, &ci)) {
		fail("guest-context", "CONTEXT_INIT (DRM capset): %s", strerror(errno));
		return -1;
	}

	/* blob_id 0 is the context's shared memory: seqno and responses. */
	struct drm_virtgpu_resource_create_blob sb = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE,
		.size = SHMEM_SIZE, .blob_id = 0,
	};
	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &sb)) {
		fail("guest-context", "shared memory blob: %s", strerror(errno));
		return -1;
	}
	c->shmem_res = sb.res_handle;
	void *m = map_blob(c, sb.bo_handle, SHMEM_SIZE);
	if (!m || conn_set_shmem(c, m)) {
		fail("guest-context", "shared memory: %s", c->err);
		return -1;
	}
	return 0;
}

/* A host BO: GEM_NEW carried by RESOURCE_CREATE_BLOB(HOST3D, blob_id), as
 * Mesa's vdrm_bo_create; mapped in the guest when map is set. */
struct bo {
	uint32_t handle, res_id;
	uint64_t size, va;
	uint32_t *map;
};

static int
gem_new(struct conn *c, struct bo *bo, uint64_t blob_id, uint64_t size,
	uint32_t heap, uint64_t flags, bool map)
{
	struct gem_new_req req = {
		.blob_id = blob_id, .alloc_size = size, .phys_alignment = 4096,
		.preferred_heap = heap, .flags = flags,
	};
	struct drm_virtgpu_resource_create_blob b = {
		.blob_mem = VIRTGPU_BLOB_MEM_HOST3D,
		.blob_flags = map ? VIRTGPU_BLOB_FLAG_USE_MAPPABLE : 0,
		.size = size, .cmd_size = sizeof(req), .cmd = (uintptr_t)&req,
		.blob_id = blob_id,
	};
	uint32_t async = c->shmem->async_error;
	double t0;

	req.hdr.cmd = CCMD_GEM_NEW;
	req.hdr.len = sizeof(req);
	req.hdr.seqno = ++c->seqno;
	if (ioctl(c->fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &b))
		return conn_error(c, -errno, "RESOURCE_CREATE_BLOB with GEM_NEW: %s",
				  strerror(errno));
	*bo = (struct bo){ .handle = b.bo_handle, .res_id = b.res_handle, .size = size };
	if (map && !(bo->map = map_blob(c, bo->handle, size)))
		return -EIO;
	t0 = now();
	while ((int32_t)(c->shmem->seqno - req.hdr.seqno) < 0)
		if (now() - t0 > TIMEOUT_MS / 1000.0)
			return conn_error(c, -ENOMSG, "GEM_NEW never acknowledged");
	if (c->shmem->async_error != async)
		return conn_error(c, -EIO, "GEM_NEW raised async_error");
	return 0;
}

static uint32_t
pattern(unsigned i, uint32_t seed)
{
	return (0x9e3779b9u * (i + 1) ^ (i << 7)) + seed;
}

/* Counts dwords of p[from, to) that differ from want(i). */
#define CHECK_DW(p, from, to, want, bad, first) do {			\
		bad = 0;						\
		for (unsigned i_ = (from); i_ < (to); i_++)		\
			if ((p)[i_] != (want(i_)) && !bad++)		\
				first = i_;				\
	} while (0)

#define SZ (64 * 1024)
#define HALF (SZ / 2)
#define FILL1 0xc0ffee11u
#define FILL2 0x5eed0002u
#define FILL3 0xfa117003u

struct stats {
	unsigned long long bytes_moved, gpu_faults, submissions;
	/* host userptr windows unmapped (a guest invalidation, or the
	 * resource's destruction) and revalidated at a CS */
	unsigned long long invalidations, revalidations;
	/* invalidations the host had to hold until a running job finished */
	unsigned long long invalidation_waits;
};

struct setup {
	struct conn c;
	struct drm_amdgpu_info_device dev;
	struct gpu g;
	uint64_t va_next;
};

static int
setup(struct setup *s)
{
	int r;

	if (vg_open(&s->c))
		return -1;
	r = query_info(&s->c, AMDGPU_INFO_DEV_INFO, 0, &s->dev, sizeof(s->dev));
	if (r) {
		fail("guest-context", "QUERY_INFO DEV_INFO: %s", terr_str(r));
		return -1;
	}
	r = create_ctx(&s->c, &s->g.ctx_id);
	if (r) {
		fail("guest-context", "CREATE_CTX: %d (%s)", r, terr_str(r));
		return -1;
	}
	s->g.sdma_ring_idx = sdma_ring_idx(&s->c, &r);
	if (!s->g.sdma_ring_idx) {
		fail("guest-context", "no SDMA ring in HW_IP_INFO (%s)",
		     r ? terr_str(r) : "");
		return -1;
	}
	/* CS_SUBMIT goes to the SDMA ring, as Mesa sends it: its out fence is
	 * the host's GPU fence. */
	s->g.submit_ring = s->g.sdma_ring_idx;
	if (!quiet)
		printf("PASS rig: guest-context (device 0x%x, family %u, VA [0x%llx, "
		       "0x%llx), GPU context %u, SDMA on virtio ring %u)\n",
		       s->dev.device_id, s->dev.family,
		       (unsigned long long)s->dev.virtual_address_offset,
		       (unsigned long long)s->dev.virtual_address_max, s->g.ctx_id,
		       s->g.sdma_ring_idx);
	s->va_next = (s->dev.virtual_address_offset + (1ull << 30)) & ~((1ull << 21) - 1);
	return 0;
}

static int
map_va(struct setup *s, uint32_t res_id, uint64_t size, uint64_t flags, uint64_t *va)
{
	int terr, r;

	*va = s->va_next;
	s->va_next += (size + (1ull << 21) - 1) & ~((1ull << 21) - 1);
	r = bo_va_op(&s->c, res_id, AMDGPU_VA_OP_MAP, *va, size, flags, &terr);
	return terr ? terr : r;
}

#define RW (AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE)

static uint32_t seed1(unsigned i) { return pattern(i, 1); }
static uint32_t fill1(unsigned i) { (void)i; return FILL1; }

/*
 * Milestone 1: A (GTT, mapped in the guest), B (VRAM, no CPU access), IB
 * (GTT, mapped).  1: copy A[0,32K) -> B, fill A[32K,64K); 2: the guest
 * wipes A[0,32K), copy B -> A[0,32K): the pattern can only come back from
 * B through the GPU; 3: a fill at an unmapped VA faults.
 */
static int
phase_basic(struct stats *st)
{
	struct setup s = { 0 };
	struct bo a, b, ibo;
	struct ib ib;
	const char *stage;
	unsigned bad, first = 0;
	int r;

	if (setup(&s))
		return 1;
#define NEED(cond, name, ...) do { if (!(cond)) { \
		fail(name, __VA_ARGS__); return 1; } } while (0)
	r = gem_new(&s.c, &a, 1, SZ, AMDGPU_GEM_DOMAIN_GTT,
		    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	NEED(!r, "gem-new", "BO A (GTT, mappable): %s", s.c.err);
	r = gem_new(&s.c, &b, 2, SZ, AMDGPU_GEM_DOMAIN_VRAM,
		    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, false);
	NEED(!r, "gem-new", "BO B (VRAM): %s", s.c.err);
	r = gem_new(&s.c, &ibo, 3, 4096, AMDGPU_GEM_DOMAIN_GTT,
		    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	NEED(!r, "gem-new", "IB BO (GTT, mappable): %s", s.c.err);
	printf("PASS rig: gem-new (GTT res_id %u and IB res_id %u mapped in the guest, "
	       "VRAM res_id %u)\n", a.res_id, ibo.res_id, b.res_id);

	r = map_va(&s, a.res_id, SZ, RW, &a.va);
	NEED(!r, "bo-va-op-map", "A: %d (%s)", r, terr_str(r));
	r = map_va(&s, b.res_id, SZ, RW, &b.va);
	NEED(!r, "bo-va-op-map", "B: %d (%s)", r, terr_str(r));
	r = map_va(&s, ibo.res_id, 4096, AMDGPU_VM_PAGE_READABLE |
		   AMDGPU_VM_PAGE_EXECUTABLE, &ibo.va);
	NEED(!r, "bo-va-op-map", "IB: %d (%s)", r, terr_str(r));
	printf("PASS rig: bo-va-op-map (A at 0x%llx, B at 0x%llx, IB at 0x%llx)\n",
	       (unsigned long long)a.va, (unsigned long long)b.va,
	       (unsigned long long)ibo.va);

	/* The guest writes through host-visible memory: the host BO. */
	for (unsigned i = 0; i < SZ / 4; i++)
		a.map[i] = seed1(i);
	uint32_t bos[3] = { a.res_id, b.res_id, ibo.res_id };

	ib = (struct ib){ ibo.map, 0, 4096 / 4, ibo.va };
	ib_copy(&ib, b.va, a.va, HALF);
	ib_fill(&ib, a.va + HALF, FILL1, HALF);
	r = submit_wait(&s.c, &s.g, &ib, bos, 3, &stage);
	st->submissions++;
	NEED(!r, "sdma-fill", "%s: %d (%s)", stage, r, terr_str(r));
	st->bytes_moved += 2 * HALF;
	CHECK_DW(a.map, HALF / 4, SZ / 4, fill1, bad, first);
	if (bad)
		fail("sdma-fill", "%u of %u dwords wrong in the guest's mapping of A, "
		     "first at byte %u: 0x%08x", bad, HALF / 4, first * 4, a.map[first]);
	else
		pass("sdma-fill (GPU fill of A read back through the guest's blob mapping)");
	CHECK_DW(a.map, 0, HALF / 4, seed1, bad, first);
	if (bad)
		fail("sdma-fill", "the fill touched the copy source at byte %u", first * 4);

	memset(a.map, 0, HALF);
	ib.n = 0;
	ib_copy(&ib, a.va, b.va, HALF);
	r = submit_wait(&s.c, &s.g, &ib, bos, 3, &stage);
	st->submissions++;
	NEED(!r, "sdma-copy", "%s: %d (%s)", stage, r, terr_str(r));
	st->bytes_moved += HALF;
	CHECK_DW(a.map, 0, HALF / 4, seed1, bad, first);
	if (bad)
		fail("sdma-copy", "%u of %u dwords differ after A -> B -> A, first at "
		     "byte %u: 0x%08x, want 0x%08x", bad, HALF / 4, first * 4,
		     a.map[first], seed1(first));
	else
		pass("sdma-copy (A -> VRAM B -> A, 32 KiB, bytes checked in the guest)");

	/*
	 * A fill at a VA nothing is mapped at, then a fill of A[0, 4K): as
	 * host amdgpu without retry faults, the faulting write goes to the
	 * dummy page and the job goes on, so A takes the second fill and the
	 * fence has no error.  The host counts the fault (STATS gpu_faults).
	 */
	ib.n = 0;
	ib_fill(&ib, s.va_next + (1ull << 30), 0xdeadbeef, 4096);
	ib_fill(&ib, a.va, 0x600df111, 4096);
	r = submit_wait(&s.c, &s.g, &ib, bos, 3, &stage);
	st->submissions++;
	st->gpu_faults++;
	st->bytes_moved += 8192;
	bad = 0;
	for (unsigned i = 0; i < 4096 / 4; i++)
		bad += a.map[i] != 0x600df111;
	if (r)
		fail("gpu-fault-unmapped-va", "%s: %d (%s)", stage, r, terr_str(r));
	else if (bad)
		fail("gpu-fault-unmapped-va", "the packet after the faulting one did "
		     "not run: %u dwords of A differ", bad);
	else
		pass("gpu-fault-unmapped-va (the faulting write went nowhere, the IB "
		     "went on and A took the next fill, no fence error)");
	if (s.c.shmem->async_error)
		fail("async-error", "the host raised async_error %u", s.c.shmem->async_error);
	close(s.c.fd);
	return failures ? 1 : 0;
}

static uint32_t seed2(unsigned i) { return pattern(i, 2); }
static uint32_t seed3(unsigned i) { return pattern(i, 3); }
static uint32_t seed4(unsigned i) { return pattern(i, 4); }
static uint32_t fill2(unsigned i) { (void)i; return FILL2; }
static uint32_t fill3(unsigned i) { (void)i; return FILL3; }
static uint32_t fill3b(unsigned i) { (void)i; return ~FILL3; }

/* A guest userptr blob (VIRTGPU_BLOB_FLAG_USE_USERPTR) over [p, p + size),
 * imported into the AMD context and mapped at a GPU VA. */
static int
userptr_bo_ro(struct setup *s, void *p, uint64_t size, uint32_t flags,
	      uint32_t import_flags, struct bo *bo, const char **stage);

static int
userptr_bo(struct setup *s, void *p, uint64_t size, uint32_t flags, struct bo *bo,
	   const char **stage)
{
	return userptr_bo_ro(s, p, size, flags, 0, bo, stage);
}

static int
userptr_bo_ro(struct setup *s, void *p, uint64_t size, uint32_t flags,
	      uint32_t import_flags, struct bo *bo, const char **stage)
{
	struct create_blob_u cb = {
		.b = { .blob_mem = VIRTGPU_BLOB_MEM_GUEST, .blob_flags = flags,
		       .size = size },
		.userptr = (uintptr_t)p,
	};
	int r, terr;

	*stage = "RESOURCE_CREATE_BLOB(USE_USERPTR)";
	if (ioctl(s->c.fd, IOCTL_CREATE_BLOB_U, &cb))
		return -errno;
	*bo = (struct bo){ .handle = cb.b.bo_handle, .res_id = cb.b.res_handle,
			   .size = size, .map = p };
	*stage = "USERPTR_IMPORT";
	r = userptr_import(&s->c, bo->res_id, import_flags, size, &terr);
	if (terr || r)
		return terr ? terr : r;
	*stage = "BO_VA_OP";
	return map_va(s, bo->res_id, size, RW, &bo->va);
}

/*
 * Milestone 2 (needs the guest kernel series and the virglrenderer series):
 * the GPU writes into and reads from the guest process's own memory.
 *   1. a malloc'd buffer: fill its upper half, copy its lower half into the
 *      host BO A (read back through A's guest mapping);
 *   2. an mmap'd region (HMM mode): fill + copy; then munmap it and map new
 *      pages at the same address: the next submission must write and read
 *      the new pages.
 */
static int
phase_userptr(struct stats *st)
{
	struct setup s = { 0 };
	struct bo a, ibo, u, m;
	struct ib ib;
	const char *stage;
	unsigned bad, first = 0;
	uint64_t modes;
	uint32_t mode;
	int r;

	if (setup(&s))
		return 1;
	r = getparam(s.c.fd, VIRTGPU_PARAM_RESOURCE_USERPTR, &modes);
	if (r || !modes) {
		printf("SKIP rig: userptr: the guest kernel has no blob userptr "
		       "(GETPARAM USERPTR: %s)\n", r ? strerror(-r) : "0");
		close(s.c.fd);
		return 0;
	}
	if (!caps_has_userptr(&s.c)) {
		printf("SKIP rig: userptr: the host's AMD context does not offer "
		       "USERPTR_IMPORT (capset has_userptr 0: virglrenderer without "
		       "the series)\n");
		close(s.c.fd);
		return 0;
	}
	mode = modes & VIRTGPU_USERPTR_MODE_HMM ? VIRTGPU_BLOB_FLAG_USERPTR_HMM : 0;
	printf("PASS rig: userptr-probe (guest modes 0x%llx, capset has_userptr; using %s)\n",
	       (unsigned long long)modes, mode ? "HMM" : "pinned");

	r = gem_new(&s.c, &a, 1, SZ, AMDGPU_GEM_DOMAIN_GTT,
		    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	NEED(!r, "userptr-setup", "BO A (GTT, mappable): %s", s.c.err);
	r = gem_new(&s.c, &ibo, 2, 4096, AMDGPU_GEM_DOMAIN_GTT,
		    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	NEED(!r, "userptr-setup", "IB BO: %s", s.c.err);
	r = map_va(&s, a.res_id, SZ, RW, &a.va);
	NEED(!r, "userptr-setup", "BO_VA_OP A: %d (%s)", r, terr_str(r));
	r = map_va(&s, ibo.res_id, 4096, AMDGPU_VM_PAGE_READABLE |
		   AMDGPU_VM_PAGE_EXECUTABLE, &ibo.va);
	NEED(!r, "userptr-setup", "BO_VA_OP IB: %d (%s)", r, terr_str(r));
	memset(a.map, 0, SZ);

	/* 1. malloc'd memory */
	uint32_t *buf = aligned_alloc(4096, SZ);
	NEED(buf, "userptr-setup", "aligned_alloc: %s", strerror(errno));
	for (unsigned i = 0; i < SZ / 4; i++)
		buf[i] = seed2(i);
	r = userptr_bo(&s, buf, SZ, VIRTGPU_BLOB_FLAG_USE_USERPTR | mode, &u, &stage);
	NEED(!r, "userptr-import", "malloc'd buffer: %s: %d (%s)", stage, r, terr_str(r));
	st->invalidations++;	/* its window goes when the process exits */
	printf("PASS rig: userptr-import (malloc'd %u KiB at %p: res_id %u, "
	       "USERPTR_IMPORT, GPU va 0x%llx)\n", SZ / 1024, (void *)buf, u.res_id,
	       (unsigned long long)u.va);

	uint32_t bos[3] = { a.res_id, ibo.res_id, u.res_id };
	ib = (struct ib){ ibo.map, 0, 4096 / 4, ibo.va };
	ib_copy(&ib, a.va, u.va, HALF);
	ib_fill(&ib, u.va + HALF, FILL2, HALF);
	r = submit_wait(&s.c, &s.g, &ib, bos, 3, &stage);
	st->submissions++;
	NEED(!r, "userptr-sdma-fill", "%s: %d (%s)", stage, r, terr_str(r));
	st->bytes_moved += SZ;
	CHECK_DW(buf, HALF / 4, SZ / 4, fill2, bad, first);
	if (bad)
		fail("userptr-sdma-fill", "%u of %u dwords of the malloc'd buffer wrong, "
		     "first at byte %u: 0x%08x", bad, HALF / 4, first * 4, buf[first]);
	else
		pass("userptr-sdma-fill (GPU fill seen in the guest's malloc'd buffer)");
	CHECK_DW(a.map, 0, HALF / 4, seed2, bad, first);
	if (bad)
		fail("userptr-sdma-read", "%u of %u dwords of A differ from the malloc'd "
		     "buffer, first at byte %u: 0x%08x", bad, HALF / 4, first * 4,
		     a.map[first]);
	else
		pass("userptr-sdma-read (GPU copy of the malloc'd buffer into A, checked)");
	CHECK_DW(buf, 0, HALF / 4, seed2, bad, first);
	if (bad)
		fail("userptr-sdma-fill", "the fill touched the copy source at byte %u",
		     first * 4);

	/* 1b. pinned mode (FOLL_LONGTERM pins), the other mode the kernel offers */
	if (modes & VIRTGPU_USERPTR_MODE_PINNED) {
		uint32_t *pb = aligned_alloc(4096, 8192);
		struct bo pu;

		NEED(pb, "userptr-setup", "aligned_alloc: %s", strerror(errno));
		for (unsigned i = 0; i < 2048; i++)
			pb[i] = seed3(i);
		r = userptr_bo(&s, pb, 8192, VIRTGPU_BLOB_FLAG_USE_USERPTR, &pu, &stage);
		NEED(!r, "userptr-pinned", "%s: %d (%s)", stage, r, terr_str(r));
		st->invalidations++;	/* its window goes at exit */
		uint32_t bosp[3] = { a.res_id, ibo.res_id, pu.res_id };
		ib.n = 0;
		ib_fill(&ib, pu.va, FILL3, 4096);
		ib_copy(&ib, a.va + HALF + 16384, pu.va + 4096, 4096);
		r = submit_wait(&s.c, &s.g, &ib, bosp, 3, &stage);
		st->submissions++;
		NEED(!r, "userptr-pinned", "%s: %d (%s)", stage, r, terr_str(r));
		st->bytes_moved += 8192;
		CHECK_DW(pb, 0, 1024, fill3, bad, first);
		unsigned bad2 = 0;
		for (unsigned i = 0; i < 1024; i++)
			bad2 += a.map[(HALF + 16384) / 4 + i] != seed3(1024 + i);
		if (bad || bad2)
			fail("userptr-pinned", "%u dwords of the fill and %u of the copy wrong",
			     bad, bad2);
		else
			pass("userptr-pinned (pinned-mode userptr: GPU fill and read checked)");
	}

	/* 1c. read-only: the guest asks for a writable GPU mapping, the host
	 * must map it read-only anyway; reads work, a write faults (goes to
	 * the dummy page) and the IB goes on. */
	{
		uint32_t *rb = aligned_alloc(4096, 4096);
		struct bo ro;

		NEED(rb, "userptr-setup", "aligned_alloc: %s", strerror(errno));
		for (unsigned i = 0; i < 1024; i++)
			rb[i] = seed4(i);
		r = userptr_bo_ro(&s, rb, 4096, VIRTGPU_BLOB_FLAG_USE_USERPTR |
				  VIRTGPU_BLOB_FLAG_USERPTR_RDONLY | mode,
				  AMDGPU_CCMD_USERPTR_READONLY, &ro, &stage);
		NEED(!r, "userptr-readonly", "%s: %d (%s)", stage, r, terr_str(r));
		st->invalidations++;	/* its window goes at exit */
		uint32_t bosr[3] = { a.res_id, ibo.res_id, ro.res_id };
		const unsigned off = (HALF + 20480) / 4, mark = (HALF + 24576) / 4;

		a.map[mark] = 0;
		ib.n = 0;
		ib_copy(&ib, a.va + off * 4, ro.va, 4096);
		ib_fill(&ib, ro.va, 0xdeadbeef, 4096);
		ib_fill(&ib, a.va + mark * 4, 0x1badf00d, 4);
		r = submit_wait(&s.c, &s.g, &ib, bosr, 3, &stage);
		st->submissions++;
		/* the engine processes the faulting fill too */
		st->bytes_moved += 4096 + 4096 + 4;
		st->gpu_faults++;
		CHECK_DW(rb, 0, 1024, seed4, bad, first);
		unsigned bad2 = 0;
		for (unsigned i = 0; i < 1024; i++)
			bad2 += a.map[off + i] != seed4(i);
		if (r)
			fail("userptr-readonly", "%s: %d (%s)", stage, r, terr_str(r));
		else if (bad2)
			fail("userptr-readonly", "the GPU read of the read-only userptr is "
			     "wrong (%u dwords)", bad2);
		else if (bad)
			fail("userptr-readonly", "the GPU wrote into the read-only userptr "
			     "(%u dwords changed, first at byte %u: 0x%08x)", bad, first * 4,
			     rb[first]);
		else if (a.map[mark] != 0x1badf00d)
			fail("userptr-readonly", "the IB stopped at the write fault");
		else
			pass("userptr-readonly (GPU read it; its write faulted, bytes unchanged, "
			     "the IB went on)");
	}

	/* 2. new pages at the same address */
	if (!mode) {
		printf("SKIP rig: userptr-new-pages: the guest kernel offers only pinned "
		       "userptrs (pages stay pinned after munmap)\n");
		goto out;
	}
	uint32_t *reg = mmap(NULL, SZ, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	NEED(reg != MAP_FAILED, "userptr-setup", "mmap: %s", strerror(errno));
	for (unsigned i = 0; i < SZ / 4; i++)
		reg[i] = seed3(i);
	r = userptr_bo(&s, reg, SZ, VIRTGPU_BLOB_FLAG_USE_USERPTR | mode, &m, &stage);
	NEED(!r, "userptr-new-pages", "mmap'd region: %s: %d (%s)", stage, r,
	     terr_str(r));
	st->invalidations++;	/* likewise */
	uint32_t bos2[3] = { a.res_id, ibo.res_id, m.res_id };
	ib.n = 0;
	ib_fill(&ib, m.va, FILL3, 4096);
	ib_copy(&ib, a.va + HALF, m.va + 4096, 4096);
	r = submit_wait(&s.c, &s.g, &ib, bos2, 3, &stage);
	st->submissions++;
	NEED(!r, "userptr-new-pages", "before munmap: %s: %d (%s)", stage, r, terr_str(r));
	st->bytes_moved += 8192;
	CHECK_DW(reg, 0, 1024, fill3, bad, first);
	NEED(!bad, "userptr-new-pages", "before munmap: the fill is not in the region "
	     "(%u dwords wrong)", bad);
	for (unsigned i = 0; i < 1024; i++)
		if (a.map[HALF / 4 + i] != seed3(1024 + i)) {
			fail("userptr-new-pages", "before munmap: the copy from the region "
			     "is wrong at byte %u", i * 4);
			return 1;
		}

	/* munmap: the kernel's notifier detaches the old pages (HMM); then new
	 * anonymous pages at the same address, with other contents. */
	NEED(!munmap(reg, SZ), "userptr-new-pages", "munmap: %s", strerror(errno));
	uint32_t *again = mmap(reg, SZ, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	NEED(again == reg, "userptr-new-pages", "mmap at %p again: %s", (void *)reg,
	     again == MAP_FAILED ? strerror(errno) : "other address");
	for (unsigned i = 0; i < SZ / 4; i++)
		reg[i] = seed4(i);
	ib.n = 0;
	ib_fill(&ib, m.va, ~FILL3, 4096);
	ib_copy(&ib, a.va + HALF + 4096, m.va + 4096, 4096);
	r = submit_wait(&s.c, &s.g, &ib, bos2, 3, &stage);
	st->submissions++;
	NEED(!r, "userptr-new-pages", "after munmap + mmap: %s: %d (%s)", stage, r,
	     terr_str(r));
	st->bytes_moved += 8192;
	/* the munmap unmapped the host window once, this CS revalidated it */
	st->invalidations++;
	st->revalidations++;
	CHECK_DW(reg, 0, 1024, fill3b, bad, first);
	if (bad)
		fail("userptr-new-pages", "the GPU fill after munmap + mmap is not in the "
		     "new pages (%u dwords wrong, first at byte %u: 0x%08x)", bad,
		     first * 4, reg[first]);
	CHECK_DW(reg, 1024, SZ / 4, seed4, bad, first);
	if (bad)
		fail("userptr-new-pages", "the new pages changed outside the fill "
		     "(byte %u: 0x%08x)", first * 4, reg[first]);
	for (unsigned i = 0; i < 1024 && !bad; i++)
		if (a.map[HALF / 4 + 1024 + i] != seed4(1024 + i)) {
			fail("userptr-new-pages", "the GPU read other than the new pages at "
			     "byte %u: 0x%08x (old pages had 0x%08x, new 0x%08x)", i * 4,
			     a.map[HALF / 4 + 1024 + i], seed3(1024 + i), seed4(1024 + i));
			bad = 1;
		}
	if (!bad)
		pass("userptr-new-pages (munmap + new pages at the same address: the next "
		     "submission wrote and read the new pages)");
out:
	if (s.c.shmem->async_error)
		fail("async-error", "the host raised async_error %u", s.c.shmem->async_error);
	close(s.c.fd);
	return failures ? 1 : 0;
}


/* ---- phases hmm and fault: the guest's mm changes pages under the GPU ---- */

/*
 * rig_break=WHAT on the kernel command line (run-vm: RIG_BREAK=WHAT) breaks
 * the test on purpose, to see its checks fail: "pinned" registers the
 * userptrs of phase hmm and of detach-during-submit and swap-pageout in
 * pinned mode (the GPU keeps the old pages), "detach-other" munmaps
 * another buffer than the job's, "kill-stop" stops the process of
 * kill-mid-submit instead of killing it (it keeps its resources),
 * "kill-stop-leave" also leaves it stopped through power-off (its context
 * stays open on the host: run-vm's host-nothing-leaked check fails).
 */
static bool
broken(const char *what)
{
	static char cmdline[1024];
	char *p;
	FILE *f;

	if (!cmdline[0] && (f = fopen("/proc/cmdline", "re"))) {
		if (!fgets(cmdline, sizeof(cmdline), f))
			cmdline[0] = ' ';
		fclose(f);
	}
	p = strstr(cmdline, "rig_break=");
	return p && !strncmp(p + 10, what, strlen(what));
}

static uint32_t hmm_flag = VIRTGPU_BLOB_FLAG_USERPTR_HMM;

#define PG 4096u
#define POISON 0x0badc0deu
#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)
#define PM_PFN(e) ((e) & ((1ull << 55) - 1))

/* The page frames behind [p, p + n pages) (0: not present; root sees them),
 * and how many of the pages are swap entries. */
static int
pfns_of(const void *p, unsigned n, uint64_t *pfn, unsigned *swapped)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e;

	if (swapped)
		*swapped = 0;
	if (fd < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		if (pread(fd, &e, 8, ((uintptr_t)p / PG + i) * 8) != 8) {
			close(fd);
			return -EIO;
		}
		pfn[i] = e & PM_PRESENT ? PM_PFN(e) : 0;
		if (swapped && (e & PM_SWAP))
			(*swapped)++;
	}
	close(fd);
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Poison released pages: after the guest released the frames old[0..n)
 * (migration, free, swap-out), map and fill fresh anonymous memory with
 * POISON until those frames come back to us (the page allocator hands out
 * the frames it got last first) or POISON_MAX MiB.  A GPU that still read
 * the released frames would then read POISON, and one that still wrote
 * them would change the poison: poison_damaged() counts that.
 */
#define POISON_MAX 96
struct poison {
	uint32_t *chunk[640];
	unsigned n, found, wanted;
};

static void
poison_released_max(struct poison *pz, const uint64_t *old, unsigned n, unsigned max_mib)
{
	uint64_t *sorted = malloc(n * sizeof(*sorted)), pf[256];
	bool *hit = calloc(n, 1);
	unsigned m = 0;

	memset(pz, 0, sizeof(*pz));
	if (!sorted || !hit)
		goto out;
	for (unsigned i = 0; i < n; i++)
		if (old[i])
			sorted[m++] = old[i];
	qsort(sorted, m, sizeof(*sorted), cmp_u64);
	pz->wanted = m;
	while (pz->found < m && pz->n < max_mib && pz->n < 640) {
		uint32_t *c = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (c == MAP_FAILED)
			break;
		madvise(c, 1 << 20, MADV_NOHUGEPAGE);
		for (unsigned i = 0; i < (1 << 20) / 4; i++)
			c[i] = POISON;
		pz->chunk[pz->n++] = c;
		if (pfns_of(c, 256, pf, NULL))
			break;
		for (unsigned i = 0; i < 256; i++) {
			uint64_t *f = bsearch(&pf[i], sorted, m, sizeof(*sorted), cmp_u64);

			if (f && !hit[f - sorted]) {
				hit[f - sorted] = true;
				pz->found++;
			}
		}
	}
out:
	free(sorted);
	free(hit);
}

static void
poison_released(struct poison *pz, const uint64_t *old, unsigned n)
{
	poison_released_max(pz, old, n, POISON_MAX);
}

static unsigned
poison_damaged(const struct poison *pz)
{
	unsigned bad = 0;

	for (unsigned c = 0; c < pz->n; c++)
		for (unsigned i = 0; i < (1 << 20) / 4; i++)
			bad += pz->chunk[c][i] != POISON;
	return bad;
}

static void
poison_free(struct poison *pz)
{
	for (unsigned c = 0; c < pz->n; c++)
		munmap(pz->chunk[c], 1 << 20);
	pz->n = 0;
}

/* After the round trip over the new pages (r: its result): the GPU wrote
 * no released frame (the poison is intact), and at least one released
 * frame came back as poison (else a stale read could not show).  Frees
 * the poison; false after a FAIL or a failed round trip. */
static bool
poison_verdict(struct poison *pz, int r, const char *name)
{
	unsigned dmg = poison_damaged(pz);

	poison_free(pz);
	if (r)
		return false;
	if (dmg) {
		fail(name, "the GPU wrote into released pages (%u poison dwords changed)", dmg);
		return false;
	}
	if (!pz->found) {
		fail(name, "no released frame came back as poison: a stale read would not "
		     "show");
		return false;
	}
	return true;
}

/* The host BOs a phase checks the GPU's work through. */
struct rig {
	struct setup s;
	struct bo a, ibo;	/* A: GTT, mapped in the guest; IB */
	uint64_t modes;
};

static int
rig_open(struct rig *g, uint64_t a_size, uint64_t ib_size, const char *phase)
{
	int r;

	if (setup(&g->s))
		return 1;
	r = getparam(g->s.c.fd, VIRTGPU_PARAM_RESOURCE_USERPTR, &g->modes);
	if (r || !(g->modes & VIRTGPU_USERPTR_MODE_HMM) || !caps_has_userptr(&g->s.c)) {
		printf("SKIP rig: %s: needs HMM userptrs from the guest kernel (modes "
		       "0x%llx) and USERPTR_IMPORT from the host (capset has_userptr %d)\n",
		       phase, (unsigned long long)g->modes, caps_has_userptr(&g->s.c));
		close(g->s.c.fd);
		return -1;
	}
	r = gem_new(&g->s.c, &g->a, 1, a_size, AMDGPU_GEM_DOMAIN_GTT,
		    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	if (!r)
		r = gem_new(&g->s.c, &g->ibo, 2, ib_size, AMDGPU_GEM_DOMAIN_GTT,
			    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	if (r) {
		fail("setup", "GEM_NEW: %s", g->s.c.err);
		return 1;
	}
	r = map_va(&g->s, g->a.res_id, a_size, RW, &g->a.va);
	if (!r)
		r = map_va(&g->s, g->ibo.res_id, ib_size, AMDGPU_VM_PAGE_READABLE |
			   AMDGPU_VM_PAGE_EXECUTABLE, &g->ibo.va);
	if (r) {
		fail("setup", "BO_VA_OP: %d (%s)", r, terr_str(r));
		return 1;
	}
	return 0;
}

/*
 * One submission over the userptr u, whose CPU view is buf (size bytes):
 * the GPU copies [0, size - 4K) into A and fills the last page with fillv.
 * What the copy must give is what the CPU sees at the address right before
 * the submission (the current pages); the fill must be in the current last
 * page; A must hold no POISON.  0 or -1 with a FAIL line.
 */
static int
roundtrip(struct rig *g, struct bo *u, uint32_t *buf, size_t size, uint32_t fillv,
	  struct stats *st, const char *name, const char *when)
{
	const unsigned nd = (size - PG) / 4;
	uint32_t *snap = malloc(size - PG), bos[3] = { g->a.res_id, g->ibo.res_id, u->res_id };
	struct ib ib = { g->ibo.map, 0, g->ibo.size / 4, g->ibo.va };
	const char *stage;
	unsigned bad = 0, first = 0, poisoned = 0, badfill = 0;
	int r;

	if (!snap || size - PG > g->a.size) {
		fail(name, "%s: %zu bytes do not fit in A", when, size - PG);
		free(snap);
		return -1;
	}
	memcpy(snap, buf, size - PG);
	memset(g->a.map, 0, size - PG);
	ib_copy(&ib, g->a.va, u->va, size - PG);
	ib_fill(&ib, u->va + size - PG, fillv, PG);
	r = submit_wait(&g->s.c, &g->s.g, &ib, bos, 3, &stage);
	st->submissions++;
	if (r) {
		fail(name, "%s: %s: %d (%s)", when, stage, r, terr_str(r));
		free(snap);
		return -1;
	}
	st->bytes_moved += size;
	for (unsigned i = 0; i < nd; i++) {
		if (g->a.map[i] != snap[i] && !bad++)
			first = i;
		poisoned += g->a.map[i] == POISON;
	}
	for (unsigned i = nd; i < size / 4; i++)
		badfill += buf[i] != fillv;
	if (bad)
		fail(name, "%s: the GPU read other than the current pages: %u of %u dwords "
		     "differ, first at byte %u: 0x%08x, the CPU sees 0x%08x%s", when, bad,
		     nd, first * 4, g->a.map[first], snap[first],
		     poisoned ? " (the GPU read poisoned, released pages)" : "");
	else if (badfill)
		fail(name, "%s: the GPU fill is not in the current last page (%u dwords "
		     "wrong)", when, badfill);
	free(snap);
	return bad || badfill ? -1 : 0;
}

static uint32_t *
map_anon(size_t size, int advice)
{
	uint32_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (advice >= 0)
		madvise(p, size, advice);
	return p;
}

static void
fill_seed(uint32_t *p, size_t size, uint32_t seed)
{
	for (unsigned i = 0; i < size / 4; i++)
		p[i] = pattern(i, seed);
}

/* The start of the hmm phase's checks: @buf as an HMM userptr @u of the
 * context whose first GPU round trip passed; false (FAIL printed) if not. */
static bool
hmm_userptr_start(struct rig *g, struct bo *u, uint32_t *buf, size_t size,
		  struct stats *st, const char *name, const char *when)
{
	const char *stage;
	int r = userptr_bo(&g->s, buf, size, VIRTGPU_BLOB_FLAG_USE_USERPTR | hmm_flag,
			   u, &stage);

	if (r) {
		fail(name, "%s: %d (%s)", stage, r, terr_str(r));
		return false;
	}
	st->invalidations++;	/* its window goes when the process exits */
	return !roundtrip(g, u, buf, size, FILL1, st, name, when);
}

/* the other NUMA node's number, or -1 */
static int
other_node(int node)
{
	char path[64];

	for (int n = 0; n < 8; n++) {
		if (n == node)
			continue;
		snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", n);
		if (!access(path, F_OK))
			return n;
	}
	return -1;
}

#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

static long
move_pages_(unsigned n, void **pages, const int *nodes, int *status)
{
	return syscall(SYS_move_pages, 0, (unsigned long)n, pages, nodes, status,
		       nodes ? MPOL_MF_MOVE : 0);
}

/* 1. move_pages(2) of the userptr's pages to the other NUMA node */
static void
hmm_migrate(struct rig *g, struct stats *st)
{
	const char *name = "hmm-migrate";
	enum { N = 16 };
	uint64_t old[N], cur[N];
	void *pages[N];
	int nodes[N], status[N], from, to;
	struct poison pz;
	struct bo u;
	unsigned moved = 0, same = 0;
	uint32_t *buf = map_anon(N * PG, MADV_NOHUGEPAGE);
	int r;

	if (!buf) {
		fail(name, "mmap: %s", strerror(errno));
		return;
	}
	fill_seed(buf, N * PG, 11);
	if (!hmm_userptr_start(g, &u, buf, N * PG, st, name, "before"))
		return;
	for (unsigned i = 0; i < N; i++)
		pages[i] = (char *)buf + i * PG;
	if (move_pages_(N, pages, NULL, status) || status[0] < 0) {
		fail(name, "move_pages (query): %s, status %d", strerror(errno), status[0]);
		return;
	}
	from = status[0];
	to = other_node(from);
	if (to < 0) {
		printf("SKIP rig: %s: the guest has one NUMA node\n", name);
		return;
	}
	pfns_of(buf, N, old, NULL);
	for (unsigned i = 0; i < N; i++)
		nodes[i] = to;
	if (move_pages_(N, pages, nodes, status) < 0) {
		fail(name, "move_pages to node %d: %s", to, strerror(errno));
		return;
	}
	pfns_of(buf, N, cur, NULL);
	for (unsigned i = 0; i < N; i++) {
		moved += status[i] == to;
		same += cur[i] == old[i];
	}
	if (moved != N || same) {
		fail(name, "move_pages: %u of %u pages on node %d, %u kept their frame",
		     moved, N, to, same);
		return;
	}
	/* the migration invalidated the range: DETACH, and the next CS
	 * revalidates the host window */
	st->invalidations++;
	st->revalidations++;
	poison_released(&pz, old, N);
	r = roundtrip(g, &u, buf, N * PG, FILL2, st, name, "after move_pages");
	if (!poison_verdict(&pz, r, name))
		return;
	printf("PASS rig: %s (%u pages moved node %d -> %d under the registered range; "
	       "next submission read and wrote the new frames; %u of %u released "
	       "frames poisoned, no poison read, poison intact)\n", name, N, from, to,
	       pz.found, pz.wanted);
}

/* 2. free() of the buffer, the address reused by the next allocation */
static void
hmm_free_reuse(struct rig *g, struct stats *st)
{
	const char *name = "hmm-free-reuse";
	enum { N = 64, SIZE = N * PG };
	uint64_t old[N];
	struct poison pz;
	struct bo u;
	void *p = NULL, *q = NULL;
	int r;

	/* glibc serves this size with mmap and free() unmaps it; the fixed
	 * threshold keeps it that way after the first free */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (posix_memalign(&p, PG, SIZE)) {
		fail(name, "posix_memalign");
		return;
	}
	fill_seed(p, SIZE, 12);
	if (!hmm_userptr_start(g, &u, p, SIZE, st, name, "before free"))
		return;
	pfns_of(p, N, old, NULL);
	uintptr_t was = (uintptr_t)p;

	free(p);
	st->invalidations++;	/* the free unmapped the range */
	if (posix_memalign(&q, PG, SIZE) || (uintptr_t)q != was) {
		fail(name, "the next posix_memalign(%u) returned %p, not the freed 0x%lx",
		     SIZE, q, (unsigned long)was);
		return;
	}
	/* q's pages do not exist yet: the released frames go to the poison */
	poison_released(&pz, old, N);
	fill_seed(q, SIZE, 13);
	st->revalidations++;
	r = roundtrip(g, &u, q, SIZE, FILL2, st, name, "after free + malloc");
	if (!poison_verdict(&pz, r, name))
		return;
	printf("PASS rig: %s (free() + posix_memalign at the same address %p: the "
	       "next submission read and wrote the new pages; %u of %u released "
	       "frames poisoned, no poison read, poison intact)\n", name, q,
	       pz.found, pz.wanted);
}

/* 3. fork: the parent writes first (COW gives it new pages, the pre-fork
 * pages stay with the child), the child poisons its copy */
static void
hmm_fork_cow(struct rig *g, struct stats *st)
{
	const char *name = "hmm-fork-cow";
	enum { N = 16, SIZE = N * PG };
	uint64_t before[N], after[N];
	int p2c[2], c2p[2], wst;
	struct bo u;
	char ch = 0;
	unsigned same = 0;
	uint32_t *buf = map_anon(SIZE, MADV_NOHUGEPAGE);
	pid_t pid;
	int r;

	if (!buf || pipe(p2c) || pipe(c2p)) {
		fail(name, "mmap/pipe: %s", strerror(errno));
		return;
	}
	fill_seed(buf, SIZE, 14);
	if (!hmm_userptr_start(g, &u, buf, SIZE, st, name, "before fork"))
		return;
	pfns_of(buf, N, before, NULL);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fail(name, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		char ok = 'y';

		if (read(p2c[0], &ch, 1) != 1)
			_exit(1);
		/* the pre-fork pages, now the child's alone */
		for (unsigned i = 0; i < SIZE / 4; i++)
			buf[i] = POISON;
		if (write(c2p[1], "1", 1) != 1 || read(p2c[0], &ch, 1) != 1)
			_exit(1);
		for (unsigned i = 0; i < SIZE / 4; i++)
			if (buf[i] != POISON)
				ok = 'n';
		_exit(write(c2p[1], &ok, 1) == 1 ? 0 : 1);
	}
	/* fork write-protected the range: DETACH; the next CS revalidates */
	st->invalidations++;
	st->revalidations++;
	fill_seed(buf, SIZE, 15);	/* COW: the parent's new pages */
	pfns_of(buf, N, after, NULL);
	for (unsigned i = 0; i < N; i++)
		same += after[i] == before[i];
	if (write(p2c[1], "1", 1) != 1 || read(c2p[0], &ch, 1) != 1) {
		fail(name, "the child went away");
		return;
	}
	r = roundtrip(g, &u, buf, SIZE, FILL2, st, name, "after fork + COW");
	if (write(p2c[1], "2", 1) != 1 || read(c2p[0], &ch, 1) != 1)
		ch = '?';
	waitpid(pid, &wst, 0);
	close(p2c[0]); close(p2c[1]); close(c2p[0]); close(c2p[1]);
	if (r)
		return;
	if (same) {
		fail(name, "%u of %u pages kept their frame across the parent's COW write",
		     same, N);
		return;
	}
	if (ch != 'y' || !WIFEXITED(wst) || WEXITSTATUS(wst)) {
		fail(name, "the GPU wrote into the child's (pre-fork) pages (child says %c, "
		     "status 0x%x)", ch, wst);
		return;
	}
	printf("PASS rig: %s (fork, the parent's COW write: the next submission read "
	       "and wrote the parent's new pages; the child's copy, poisoned, neither "
	       "read nor written)\n", name);
}

/* AnonHugePages of the mapping that contains p, in kB (-1: not found) */
static long
anon_huge_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[256];
	bool in = false;
	long kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* 4. a 2 MiB THP under the userptr; madvise(DONTNEED) of one 4 KiB page
 * splits it; the page comes back new */
static void
hmm_thp_split(struct rig *g, struct stats *st)
{
	const char *name = "hmm-thp-split";
	const size_t H = 2u << 20;
	const unsigned hole = 256;	/* the page at 1 MiB */
	struct bo u;
	uint32_t *raw = map_anon(2 * H, -1), *buf;
	long kb0, kb1;
	int r;

	if (!raw) {
		fail(name, "mmap: %s", strerror(errno));
		return;
	}
	buf = (uint32_t *)(((uintptr_t)raw + H - 1) & ~(uintptr_t)(H - 1));
	madvise(buf, H, MADV_HUGEPAGE);
	fill_seed(buf, H, 16);
	kb0 = anon_huge_kb(buf);
	if (kb0 < 2048) {
		printf("SKIP rig: %s: no THP under the buffer (AnonHugePages %ld kB; "
		       "/sys/kernel/mm/transparent_hugepage/enabled?)\n", name, kb0);
		return;
	}
	if (!hmm_userptr_start(g, &u, buf, H, st, name, "on the THP"))
		return;
	if (madvise((char *)buf + hole * PG, PG, MADV_DONTNEED)) {
		fail(name, "madvise(DONTNEED): %s", strerror(errno));
		return;
	}
	st->invalidations++;
	st->revalidations++;
	kb1 = anon_huge_kb(buf);
	/* a new page at the hole, other bytes: the old subpage keeps the old
	 * ones until the THP is split for good, so a stale read shows */
	for (unsigned i = 0; i < PG / 4; i++)
		buf[hole * PG / 4 + i] = pattern(i, 17);
	r = roundtrip(g, &u, buf, H, FILL2, st, name, "after the split");
	if (r)
		return;
	if (kb1 != 0) {
		fail(name, "the PMD mapping was not split (AnonHugePages %ld kB after "
		     "DONTNEED of one page)", kb1);
		return;
	}
	printf("PASS rig: %s (2 MiB THP registered, DONTNEED of the 4 KiB page at "
	       "1 MiB split it (AnonHugePages %ld -> %ld kB): the next submission read "
	       "the new page and the old rest, wrote the current last page)\n", name,
	       kb0, kb1);
}

/*
 * Task 1 of issue 8's tests: while the GPU works on a guest userptr (HMM
 * mode), the guest moves its pages, frees and reuses the address, forks
 * and writes, splits a THP; after each the next submission must see the
 * current pages (bytes checked here), and the host must have dropped the
 * old ones (released frames poisoned: the GPU must neither read nor write
 * them).  The counters each step costs the host are in st.
 */
static int
phase_hmm(struct stats *st)
{
	struct rig g = { 0 };
	int r = rig_open(&g, 2u << 20, PG, "hmm");

	if (r)
		return r < 0 ? 0 : 1;
	hmm_migrate(&g, st);
	hmm_free_reuse(&g, st);
	hmm_fork_cow(&g, st);
	hmm_thp_split(&g, st);
	if (g.s.c.shmem->async_error)
		fail("async-error", "the host raised async_error %u", g.s.c.shmem->async_error);
	close(g.s.c.fd);
	return failures ? 1 : 0;
}

/* ---- phase fault ---- */

static long long
vmstat(const char *name)
{
	FILE *f;
	char n[64];
	long long v, r = -1;
	int fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);

	/* fold the per-CPU deltas first */
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0) { /* not fatal */ }
		close(fd);
	}
	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", n, &v) == 2)
		if (!strcmp(n, name)) {
			r = v;
			break;
		}
	fclose(f);
	return r;
}

static long long
meminfo_kb(const char *name)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	size_t n = strlen(name);
	long long v = -1;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = atoll(line + n + 1);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

static long long
pins_held(void)
{
	return vmstat("nr_foll_pin_acquired") - vmstat("nr_foll_pin_released");
}

#define BIG (8u << 20)		/* the long job's source: an 8 MiB userptr */
#define FENCE_MARK 0xd0e5d0e5u

/*
 * A long SDMA job: k copies of the userptr u (BIG bytes) into the VRAM BO
 * b, then (when a is set) its first 32 KiB into A and a marker after them:
 * the marker is the job's last write.  Returns the bytes it moves.
 */
static uint64_t
long_ib(struct ib *ib, unsigned k, uint64_t u_va, uint64_t b_va, uint64_t a_va)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < k; i++, bytes += BIG)
		ib_copy(ib, b_va, u_va, BIG);
	if (a_va) {
		ib_copy(ib, a_va, u_va, 32768);
		ib_fill(ib, a_va + 32768, FENCE_MARK, 4);
		bytes += 32768 + 4;
	}
	return bytes;
}

static int
fence_signalled(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

/* What the child of kill-mid-submit sends before it is killed. */
struct child_report {
	int ok;
	uint32_t res[5];	/* shared memory, VRAM, IB, HMM userptr, pinned userptr */
	long long pins;		/* pins held once its pinned userptr exists */
	uint64_t bytes;
	char err[300];
};

static void
kill_child(int wfd, unsigned k)
{
	struct child_report rep = { 0 };
	struct setup cs = { 0 };
	struct bo b, ibo, u, p;
	struct ib ib;
	const char *stage;
	int r, fence = -1;
	uint32_t *ubuf = map_anon(BIG, MADV_NOHUGEPAGE), *pbuf = NULL;

	quiet = true;
	if (setup(&cs) || !ubuf || posix_memalign((void **)&pbuf, PG, 65536)) {
		snprintf(rep.err, sizeof(rep.err), "setup: %s", cs.c.err);
		goto out;
	}
	fill_seed(ubuf, BIG, 21);
	fill_seed(pbuf, 65536, 22);
	r = gem_new(&cs.c, &b, 1, BIG, AMDGPU_GEM_DOMAIN_VRAM,
		    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, false);
	if (!r)
		r = gem_new(&cs.c, &ibo, 2, 32768, AMDGPU_GEM_DOMAIN_GTT,
			    AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED, true);
	if (r) {
		snprintf(rep.err, sizeof(rep.err), "GEM_NEW: %s", cs.c.err);
		goto out;
	}
	if ((r = map_va(&cs, b.res_id, BIG, RW, &b.va)) ||
	    (r = map_va(&cs, ibo.res_id, 32768, AMDGPU_VM_PAGE_READABLE |
			AMDGPU_VM_PAGE_EXECUTABLE, &ibo.va))) {
		snprintf(rep.err, sizeof(rep.err), "BO_VA_OP: %d", r);
		goto out;
	}
	r = userptr_bo(&cs, ubuf, BIG, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		       VIRTGPU_BLOB_FLAG_USERPTR_HMM, &u, &stage);
	if (!r)
		r = userptr_bo(&cs, pbuf, 65536, VIRTGPU_BLOB_FLAG_USE_USERPTR, &p, &stage);
	if (r) {
		snprintf(rep.err, sizeof(rep.err), "%s: %d (%s)", stage, r, terr_str(r));
		goto out;
	}
	rep.pins = pins_held();
	/* k copies of the HMM userptr, a fill of it (the GPU writes into the
	 * pages the dying process is about to free), a copy of the pinned one */
	ib = (struct ib){ ibo.map, 0, 32768 / 4, ibo.va };
	rep.bytes = long_ib(&ib, k, u.va, b.va, 0);
	ib_fill(&ib, u.va, FILL3, BIG);
	ib_copy(&ib, b.va, p.va, 65536);
	rep.bytes += BIG + 65536;
	/* the pinned userptr last in the BO list: its UNREF is queued after
	 * the others' when the job's references go (the parent relies on it) */
	uint32_t bos[4] = { b.res_id, ibo.res_id, u.res_id, p.res_id };

	cs.c.fence_out = &fence;
	r = cs_submit(&cs.c, &cs.g, &ib, bos, 4, &stage);
	if (r) {
		snprintf(rep.err, sizeof(rep.err), "%s: %d (%s)", stage, r, terr_str(r));
		goto out;
	}
	rep.ok = 1;
	uint32_t res[5] = { cs.c.shmem_res, b.res_id, ibo.res_id, u.res_id, p.res_id };

	memcpy(rep.res, res, sizeof(res));
out:
	if (write(wfd, &rep, sizeof(rep)) != sizeof(rep))
		_exit(3);
	for (;;)
		pause();	/* until SIGKILL */
}

/* 2a: a process killed right after its long job was accepted */
static void
fault_kill(unsigned k, struct stats *st)
{
	const char *name = "kill-mid-submit";
	struct child_report rep;
	long long pins0 = pins_held(), pins1 = 0;
	int pfd[2], wst = 0;
	double t0, t1, t2 = 0;
	pid_t pid;

	if (pipe(pfd)) {
		fail(name, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fail(name, "fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(pfd[0]);
		kill_child(pfd[1], k);
	}
	close(pfd[1]);
	if (read(pfd[0], &rep, sizeof(rep)) != sizeof(rep))
		rep.ok = -1;
	kill(pid, broken("kill-stop") ? SIGSTOP : SIGKILL);
	t0 = now();
	waitpid(pid, &wst, WUNTRACED);
	t1 = now();
	if (WIFSTOPPED(wst))
		wst = SIGKILL;	/* the mutant: go on as if it were dead */
	close(pfd[0]);
	if (rep.ok != 1) {
		fail(name, "the child did not get its job accepted: %s",
		     rep.ok < 0 ? "no report" : rep.err);
		return;
	}
	if (!WIFSIGNALED(wst) || WTERMSIG(wst) != SIGKILL) {
		fail(name, "the child was not killed by SIGKILL (status 0x%x)", wst);
		return;
	}
	/* the host: the job was accepted, so it must run to its end (the exit's
	 * DETACH of the HMM userptr waits for it, pages freed only then): all
	 * its bytes, no fault; the HMM userptr's window invalidated at the exit
	 * (waiting for the job), the pinned one's when it is destroyed */
	st->submissions++;
	st->bytes_moved += rep.bytes;
	st->invalidations += 2;
	st->invalidation_waits++;
	printf("PASS rig: %s (child: own context, 8 MiB HMM + 64 KiB pinned userptr, "
	       "a %u x 8 MiB SDMA job accepted, SIGKILL right after; exit took %.0f ms)\n",
	       name, k, (t1 - t0) * 1e3);

	/* the guest kernel: pins released (the pinned userptr's are dropped
	 * once the host answered its UNREF, asynchronously) */
	for (int i = 0; i < 500; i++) {
		pins1 = pins_held();
		if (pins1 == pins0)
			break;
		usleep(10000);
	}
	t2 = now();
	if (rep.pins - pins0 != 16)
		fail("kill-released", "the child's pinned userptr held %lld pins, not 16",
		     rep.pins - pins0);
	else if (pins1 != pins0)
		fail("kill-released", "pins held: %lld before the child, %lld 5 s after its "
		     "death", pins0, pins1);
	{
		/* the pinned userptr's UNREF was the last one queued: every resource
		 * id of the child is free now, and a new context takes them back */
		struct rig n = { 0 };
		uint32_t got[5], want[5];
		struct bo u, p;
		const char *stage;
		uint32_t *ubuf = map_anon(65536, MADV_NOHUGEPAGE), *pbuf = NULL;
		int r;

		quiet = true;
		r = rig_open(&n, 65536, PG, "fault");
		quiet = false;
		if (r || !ubuf || posix_memalign((void **)&pbuf, PG, 65536)) {
			fail("kill-new-context", "a new context after the kill: %s", n.s.c.err);
			return;
		}
		fill_seed(ubuf, 65536, 23);
		fill_seed(pbuf, 65536, 24);
		r = userptr_bo(&n.s, ubuf, 65536, VIRTGPU_BLOB_FLAG_USE_USERPTR |
			       VIRTGPU_BLOB_FLAG_USERPTR_HMM, &u, &stage);
		if (!r)
			r = userptr_bo(&n.s, pbuf, 65536, VIRTGPU_BLOB_FLAG_USE_USERPTR,
				       &p, &stage);
		if (r) {
			fail("kill-new-context", "%s: %d (%s)", stage, r, terr_str(r));
			return;
		}
		uint32_t g5[5] = { n.s.c.shmem_res, n.a.res_id, n.ibo.res_id, u.res_id,
				   p.res_id };

		memcpy(got, g5, sizeof(got));
		memcpy(want, rep.res, sizeof(want));
		qsort(got, 5, 4, cmp_u32);
		qsort(want, 5, 4, cmp_u32);
		if (memcmp(got, want, sizeof(got)))
			fail("kill-released", "the child's resource ids %u %u %u %u %u are not "
			     "all free again: a new context got %u %u %u %u %u", want[0],
			     want[1], want[2], want[3], want[4], got[0], got[1], got[2],
			     got[3], got[4]);
		else if (pins1 == pins0)
			printf("PASS rig: kill-released (guest kernel: pins back to %lld %.0f ms "
			       "after the death, the child's 5 resource ids %u-%u free and "
			       "taken by a new context)\n", pins0, (t2 - t1) * 1e3, want[0],
			       want[4]);
		st->invalidations += 2;	/* u and p go when n closes */
		if (!roundtrip(&n, &u, ubuf, 65536, FILL1, st, "kill-new-context", "HMM") &&
		    !roundtrip(&n, &p, pbuf, 65536, FILL2, st, "kill-new-context", "pinned"))
			pass("kill-new-context (a new context after the kill: HMM and pinned "
			     "userptrs filled and read, bytes checked)");
		if (n.s.c.shmem->async_error)
			fail("kill-new-context", "async_error %u", n.s.c.shmem->async_error);
		close(n.s.c.fd);
		/* "kill-stop-leave": the stopped process keeps its context
		 * open through power-off (shows the host leak check fail). */
		if (broken("kill-stop") && !broken("kill-stop-leave")) {
			kill(pid, SIGKILL);
			waitpid(pid, &wst, 0);
		}
	}
}

/* 2b: munmap of a userptr while a long job that uses it runs */
static void
fault_detach(struct rig *g, struct bo *b, unsigned k, struct stats *st)
{
	const char *name = "detach-during-submit";
	uint32_t *ubuf = map_anon(BIG, MADV_NOHUGEPAGE), *snap = malloc(32768);
	struct bo u;
	struct ib ib;
	const char *stage;
	int r, fence = -1, at_return, mark;
	unsigned bad = 0;
	double t0, t1, t2, t3;

	if (!ubuf || !snap) {
		fail(name, "mmap: %s", strerror(errno));
		return;
	}
	fill_seed(ubuf, BIG, 25);
	memcpy(snap, ubuf, 32768);
	r = userptr_bo(&g->s, ubuf, BIG, VIRTGPU_BLOB_FLAG_USE_USERPTR | hmm_flag,
		       &u, &stage);
	if (r) {
		fail(name, "%s: %d (%s)", stage, r, terr_str(r));
		return;
	}
	memset(g->a.map, 0, 32768 + 4);
	ib = (struct ib){ g->ibo.map, 0, g->ibo.size / 4, g->ibo.va };
	uint64_t bytes = long_ib(&ib, k, u.va, b->va, g->a.va);
	uint32_t bos[4] = { g->a.res_id, g->ibo.res_id, b->res_id, u.res_id };

	g->s.c.fence_out = &fence;
	t0 = now();
	r = cs_submit(&g->s.c, &g->s.g, &ib, bos, 4, &stage);
	st->submissions++;
	if (r || fence < 0) {
		fail(name, "%s: %d (%s)", stage, r, terr_str(r));
		return;
	}
	st->bytes_moved += bytes;
	t1 = now();
	/* the invalidation: DETACH_BACKING, answered once the job is done
	 * (rig_break=detach-other: a buffer nobody registered instead, to
	 * see the check fail) */
	if (broken("detach-other"))
		ubuf = map_anon(BIG, -1);
	if (munmap(ubuf, BIG)) {
		fail(name, "munmap: %s", strerror(errno));
		return;
	}
	t2 = now();
	at_return = fence_signalled(fence, 0);
	mark = g->a.map[32768 / 4] == FENCE_MARK;
	for (unsigned i = 0; i < 32768 / 4; i++)
		bad += g->a.map[i] != snap[i];
	if (!at_return)
		fence_signalled(fence, TIMEOUT_MS);
	t3 = now();
	close(fence);
	st->invalidations++;		/* the munmap, while the job ran: */
	st->invalidation_waits++;	/* the host's detach waited for it */
	if (!mark || bad)
		fail(name, "when munmap returned the job had not finished: its last "
		     "write %s, %u of 8192 dwords of its copy wrong", mark ? "done" :
		     "missing", bad);
	else if (!at_return)
		fail(name, "the job's results were complete when munmap returned, but its "
		     "fence signalled %.1f ms later (munmap %.1f ms, submit to munmap %.1f ms)",
		     (t3 - t2) * 1e3, (t2 - t1) * 1e3, (t1 - t0) * 1e3);
	else
		printf("PASS rig: %s (a %u x 8 MiB job using the userptr, munmap %.1f ms "
		       "after the submission took %.0f ms and returned with the fence "
		       "signalled and the job's last write and copy in A)\n", name, k,
		       (t1 - t0) * 1e3, (t2 - t1) * 1e3);
	free(snap);
}

/* 2c: the userptr's pages paged out to the swap disk and back (HMM) */
static void
fault_swap(struct rig *g, struct stats *st)
{
	const char *name = "swap-pageout";
	enum { N = 256, SIZE = N * PG };
	uint64_t old[N], cur[N];
	unsigned swapped = 0, moved = 0;
	long long sw0, sw1, free_mib;
	struct poison pz = { 0 };
	struct bo u;
	uint32_t *buf;
	FILE *f = fopen("/proc/swaps", "re");
	char line[256];
	int r, n = 0;

	while (f && fgets(line, sizeof(line), f))
		n++;
	if (f)
		fclose(f);
	if (n < 2) {
		printf("SKIP rig: %s: no swap device in the guest (%s; the guest kernel "
		       "needs CONFIG_SWAP and a disk: linux-patch/guest.config)\n", name,
		       f ? "/proc/swaps is empty" : "no /proc/swaps");
		return;
	}
	buf = map_anon(SIZE, MADV_NOHUGEPAGE);
	if (!buf) {
		fail(name, "mmap: %s", strerror(errno));
		return;
	}
	fill_seed(buf, SIZE, 26);
	if (!hmm_userptr_start(g, &u, buf, SIZE, st, name, "before"))
		return;
	pfns_of(buf, N, old, NULL);
	sw0 = meminfo_kb("SwapFree");
	if (madvise(buf, SIZE, MADV_PAGEOUT)) {
		fail(name, "madvise(PAGEOUT): %s", strerror(errno));
		return;
	}
	st->invalidations++;
	st->revalidations++;
	pfns_of(buf, N, cur, &swapped);
	/* the write to the disk finishes asynchronously */
	for (int i = 0; i < 500 && meminfo_kb("Writeback") > 0; i++)
		usleep(10000);
	sw1 = meminfo_kb("SwapFree");
	if (swapped != N || sw0 - sw1 < SIZE / 1024) {
		fail(name, "after MADV_PAGEOUT %u of %u pages are swap entries, SwapFree "
		     "%lld -> %lld kB", swapped, N, sw0, sw1);
		return;
	}
	/* Memory pressure, and it is POISON: the pages paged out stay in the
	 * swap cache (same frames) until reclaim needs them; filling the free
	 * memory makes reclaim drop them, so the next fault reads them back
	 * from the disk into other frames, and the old frames hold POISON. */
	free_mib = meminfo_kb("MemFree") / 1024;
	poison_released_max(&pz, old, N, free_mib + 48);
	if (pz.found != pz.wanted) {
		fail(name, "memory pressure (%u MiB) released only %u of the %u swapped-out "
		     "frames", pz.n, pz.found, pz.wanted);
		poison_free(&pz);
		return;
	}
	r = roundtrip(g, &u, buf, SIZE, FILL2, st, name, "after swap-out");
	unsigned mib = pz.n;
	bool ok = poison_verdict(&pz, r, name);

	pfns_of(buf, N, cur, NULL);
	for (unsigned i = 0; i < N; i++)
		moved += cur[i] != old[i];
	if (!ok)
		return;
	printf("PASS rig: %s (1 MiB HMM userptr, MADV_PAGEOUT: %u pages swapped out "
	       "(SwapFree -%lld kB); %u MiB of poison pressure released all %u old "
	       "frames; the next submission faulted the pages back from the disk (%u "
	       "in other frames) and read and wrote the right bytes)\n", name, swapped,
	       sw0 - sw1, mib, pz.found, moved);
}

/*
 * 2d: a lookup that keeps being invalidated for longer than
 * HMM_RANGE_DEFAULT_TIMEOUT (1 s).  After MADV_DONTNEED and a CPU read,
 * every page of the range maps the shared zero page.  The submission's
 * lookup asks for writable pages, and each write fault that replaces a zero
 * page invalidates the range: hmm_range_fault() returns -EBUSY after each
 * page table it faulted in (2 MiB), and the lookup starts again, 32 times
 * over 64 MiB, for longer than a second under TCG.
 */
static void
fault_lookup_retries(struct rig *g, struct stats *st)
{
	const char *name = "lookup-retries";
	enum { N = 16384, SIZE = N * PG, COPY = 1 << 20 };
	struct ib ib = { g->ibo.map, 0, g->ibo.size / 4, g->ibo.va };
	uint32_t bos[3] = { g->a.res_id, g->ibo.res_id, 0 };
	volatile uint32_t sum = 0;
	unsigned bad = 0;
	const char *stage;
	uint32_t *buf;
	struct bo u;
	double t0, t1;
	int r;

	if (COPY > g->a.size) {
		fail(name, "its %u-byte copy does not fit in A", COPY);
		return;
	}
	buf = map_anon(SIZE, MADV_NOHUGEPAGE);
	if (!buf) {
		fail(name, "mmap: %s", strerror(errno));
		return;
	}
	fill_seed(buf, SIZE, 27);
	r = userptr_bo(&g->s, buf, SIZE, VIRTGPU_BLOB_FLAG_USE_USERPTR | hmm_flag,
		       &u, &stage);
	if (r) {
		fail(name, "%s: %d (%s)", stage, r, terr_str(r));
		return;
	}
	bos[2] = u.res_id;
	st->invalidations++;	/* its window goes when the process exits */
	if (madvise(buf, SIZE, MADV_DONTNEED)) {
		fail(name, "madvise(DONTNEED): %s", strerror(errno));
		return;
	}
	st->invalidations++;
	for (unsigned i = 0; i < SIZE / 4; i += PG / 4)
		sum += buf[i];
	memset(g->a.map, 0x5a, COPY);
	ib_copy(&ib, g->a.va, u.va, COPY);
	t0 = now();
	r = submit_wait(&g->s.c, &g->s.g, &ib, bos, 3, &stage);
	t1 = now();
	st->submissions++;
	if (r) {
		fail(name, "%s: %d (%s) after %.0f ms: its lookup of %u zero-page-mapped "
		     "pages is invalidated by each write fault it takes", stage, r,
		     terr_str(r), (t1 - t0) * 1e3, N);
		return;
	}
	st->revalidations++;
	st->bytes_moved += COPY;
	for (unsigned i = 0; i < COPY / 4; i++)
		bad += g->a.map[i] != buf[i] || buf[i];
	if (bad) {
		fail(name, "the GPU read other than the memory's bytes (zeros): %u of %u "
		     "dwords", bad, COPY / 4);
		return;
	}
	if (t1 - t0 < 1.0)
		printf("INFO rig: %s: not covered this time: the lookup took only %.0f ms, "
		       "less than the 1 s an older series gave up after\n", name,
		       (t1 - t0) * 1e3);
	printf("PASS rig: %s (64 MiB HMM userptr over zero pages, after MADV_DONTNEED "
	       "and a CPU read: the submission's lookup, invalidated by its own %u "
	       "write faults and started again after each 2 MiB, took %.0f ms and "
	       "went through; the GPU read the zeros)\n", name, N, (t1 - t0) * 1e3);
}

/*
 * Fault injection (issue 8): a process killed mid-submit, a detach racing
 * a running job, swap in HMM mode.  Nothing lost: every accepted job runs
 * to its end (the counters); nothing leaked: pins, resource ids, and the
 * kmemleak scan /init runs after this phase.
 */
static int
phase_fault(struct stats *st)
{
	struct rig g = { 0 };
	struct bo b, c;
	struct ib ib;
	const char *stage;
	unsigned k;
	double t0, t;
	int r = rig_open(&g, 1u << 20, 32768, "fault");

	if (r)
		return r < 0 ? 0 : 1;
	r = gem_new(&g.s.c, &b, 3, BIG, AMDGPU_GEM_DOMAIN_VRAM,
		    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, false);
	if (!r)
		r = gem_new(&g.s.c, &c, 4, BIG, AMDGPU_GEM_DOMAIN_VRAM,
			    AMDGPU_GEM_CREATE_NO_CPU_ACCESS, false);
	if (r) {
		fail("setup", "GEM_NEW VRAM: %s", g.s.c.err);
		return 1;
	}
	if ((r = map_va(&g.s, b.res_id, BIG, RW, &b.va)) ||
	    (r = map_va(&g.s, c.res_id, BIG, RW, &c.va))) {
		fail("setup", "BO_VA_OP: %d (%s)", r, terr_str(r));
		return 1;
	}
	/* how long an 8 MiB copy takes on this host (after a first job that
	 * touches B and C): the long jobs are made to last about a second, or
	 * as long as 1000 copies take, far longer than the guest needs to
	 * react to the submission */
	uint32_t bos[4] = { g.ibo.res_id, b.res_id, c.res_id };

	for (int pass = 0; pass < 2; pass++) {
		ib = (struct ib){ g.ibo.map, 0, g.ibo.size / 4, g.ibo.va };
		if (!pass)
			ib_fill(&ib, c.va, FILL1, BIG);
		long_ib(&ib, pass ? 16 : 1, c.va, b.va, 0);
		t0 = now();
		r = submit_wait(&g.s.c, &g.s.g, &ib, bos, 3, &stage);
		t = now() - t0;
		st->submissions++;
		if (r) {
			fail("setup", "calibration job: %s: %d (%s)", stage, r, terr_str(r));
			return 1;
		}
		st->bytes_moved += (pass ? 16ull : 2ull) * BIG;
	}
	k = t > 0 ? (unsigned)(1.0 / (t / 16)) : 1000;
	k = k < 64 ? 64 : k > 1000 ? 1000 : k;
	info("an 8 MiB GPU copy takes %.2f ms here: long jobs are %u copies", t / 16 * 1e3, k);

	fault_kill(k, st);
	fault_detach(&g, &b, k, st);
	fault_swap(&g, st);
	fault_lookup_retries(&g, st);
	if (g.s.c.shmem->async_error)
		fail("async-error", "the host raised async_error %u", g.s.c.shmem->async_error);
	close(g.s.c.fd);
	return failures ? 1 : 0;
}

int
main(int argc, char **argv)
{
	struct stats st = { 0 };
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (broken("pinned"))
		hmm_flag = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: vm_amdgpu basic|userptr|hmm|fault\n");
		return 2;
	}
	if (!strcmp(argv[1], "basic"))
		r = phase_basic(&st);
	else if (!strcmp(argv[1], "userptr"))
		r = phase_userptr(&st);
	else if (!strcmp(argv[1], "hmm"))
		r = phase_hmm(&st);
	else if (!strcmp(argv[1], "fault"))
		r = phase_fault(&st);
	else {
		fprintf(stderr, "unknown phase %s\n", argv[1]);
		return 2;
	}
	printf("STATS bytes_moved %llu\nSTATS gpu_faults %llu\nSTATS submissions %llu\n"
	       "STATS userptr_invalidations %llu\nSTATS userptr_revalidations %llu\n"
	       "STATS invalidation_waits %llu\n",
	       st.bytes_moved, st.gpu_faults, st.submissions, st.invalidations,
	       st.revalidations, st.invalidation_waits);
	return r;
}
