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
 *
 * Prints PASS/FAIL/SKIP rig: lines, and "STATS name value" lines with the
 * simulator counters the host must see (accumulated over the runs of one
 * boot by run-vm).  Exit status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "amdgpu_ccmd.h"

#include <drm/virtgpu_drm.h>

#include "virtgpu_userptr_uapi.h"

/* drm_virtgpu_resource_create_blob with the series' trailing userptr (the
 * kernel zero-extends or truncates to its own size, docs/design.md). */
struct create_blob_u {
	struct drm_virtgpu_resource_create_blob b;
	__u64 userptr;
};
_Static_assert(sizeof(struct create_blob_u) == VIRTGPU_RESOURCE_CREATE_BLOB_USERPTR_SIZE,
	       "create_blob grows by __u64 userptr");
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
	pfd = (struct pollfd){ .fd = eb.fence_fd, .events = POLLIN };
	do
		r = poll(&pfd, 1, TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	close(eb.fence_fd);
	if (r == 0)
		return conn_error(c, -ETIMEDOUT, "the fence of ring %u did not signal "
				  "in %d ms", ring_idx, TIMEOUT_MS);
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
	printf("PASS rig: guest-capset-drm (capsets 0x%llx, DRM capset context_type "
	       "amdgpu, amdgpu bits 0x%x)\n", (unsigned long long)capsets,
	       *(uint32_t *)&c->caps[CAPS_AMDGPU_BITS]);

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
	printf("PASS rig: guest-context (device 0x%x, family %u, VA [0x%llx, 0x%llx), "
	       "GPU context %u, SDMA on virtio ring %u)\n", s->dev.device_id,
	       s->dev.family, (unsigned long long)s->dev.virtual_address_offset,
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
	 * A fill at a VA nothing is mapped at, then a fill of A[0, 4K): the
	 * fault must end the IB, so A keeps its bytes.  (The fence's -EFAULT
	 * is not checked here: the simulator numbers fences globally, and the
	 * host's own GL on the simulated device submits too, so the guest's
	 * per-ring sequence numbers do not name its jobs; docs/rig.md.)  The
	 * host counts the fault (STATS gpu_faults).
	 */
	ib.n = 0;
	ib_fill(&ib, s.va_next + (1ull << 30), 0xdeadbeef, 4096);
	ib_fill(&ib, a.va, 0xdeadbeef, 4096);
	r = submit_wait(&s.c, &s.g, &ib, bos, 3, &stage);
	st->submissions++;
	st->gpu_faults++;
	CHECK_DW(a.map, 0, 4096 / 4, seed1, bad, first);
	if (r && r != -EFAULT)
		fail("gpu-fault-unmapped-va", "%s: %d (%s)", stage, r, terr_str(r));
	else if (bad)
		fail("gpu-fault-unmapped-va", "the packet after the faulting one ran: "
		     "%u dwords of A changed, first at byte %u: 0x%08x", bad, first * 4,
		     a.map[first]);
	else
		pass("gpu-fault-unmapped-va (the IB stopped at the fault, A unchanged)");
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
	r = getparam(s.c.fd, VIRTGPU_PARAM_USERPTR, &modes);
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
	 * must map it read-only anyway; reads work, a write faults and ends
	 * the IB. */
	{
		uint32_t *rb = aligned_alloc(4096, 4096);
		struct bo ro;

		NEED(rb, "userptr-setup", "aligned_alloc: %s", strerror(errno));
		for (unsigned i = 0; i < 1024; i++)
			rb[i] = seed4(i);
		r = userptr_bo_ro(&s, rb, 4096, VIRTGPU_BLOB_FLAG_USE_USERPTR |
				  VIRTGPU_BLOB_FLAG_USERPTR_READONLY | mode,
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
		st->bytes_moved += 4096;
		st->gpu_faults++;
		CHECK_DW(rb, 0, 1024, seed4, bad, first);
		unsigned bad2 = 0;
		for (unsigned i = 0; i < 1024; i++)
			bad2 += a.map[off + i] != seed4(i);
		if (r && r != -EFAULT)
			fail("userptr-readonly", "%s: %d (%s)", stage, r, terr_str(r));
		else if (bad2)
			fail("userptr-readonly", "the GPU read of the read-only userptr is "
			     "wrong (%u dwords)", bad2);
		else if (bad)
			fail("userptr-readonly", "the GPU wrote into the read-only userptr "
			     "(%u dwords changed, first at byte %u: 0x%08x)", bad, first * 4,
			     rb[first]);
		else if (a.map[mark])
			fail("userptr-readonly", "the IB went on after the write fault");
		else
			pass("userptr-readonly (GPU read it; its write faulted, bytes unchanged, "
			     "IB stopped)");
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

int
main(int argc, char **argv)
{
	struct stats st = { 0 };
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: vm_amdgpu basic|userptr\n");
		return 2;
	}
	if (!strcmp(argv[1], "basic"))
		r = phase_basic(&st);
	else if (!strcmp(argv[1], "userptr"))
		r = phase_userptr(&st);
	else {
		fprintf(stderr, "unknown phase %s\n", argv[1]);
		return 2;
	}
	printf("STATS bytes_moved %llu\nSTATS gpu_faults %llu\nSTATS submissions %llu\n"
	       "STATS userptr_invalidations %llu\nSTATS userptr_revalidations %llu\n",
	       st.bytes_moved, st.gpu_faults, st.submissions, st.invalidations,
	       st.revalidations);
	return r;
}
