/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The VM rig's guest program on the guest's own Mesa (tests/rig/run-vm,
 * docs/rig.md): Mesa 25.0.7 + patches/, built with -Damdgpu-virtio=true
 * and assertions on, linked statically (tests/rig/build-guest-mesa).  It
 * drives the AMD native context only through the ac_drm layer that
 * radeonsi's amdgpu winsys calls, in the winsys' order:
 *
 *   ac_drm_device_initialize(fd, is_virtio = true), ac_query_gpu_info()
 *   (info.has_userptr, as radeonsi decides whether to offer
 *   resource_from_user_memory), ac_drm_cs_ctx_create2, ac_drm_bo_alloc +
 *   ac_drm_bo_cpu_map (GTT), ac_drm_va_range_alloc + ac_drm_bo_export(kms) +
 *   ac_drm_bo_va_op_raw (amdgpu_bo_from_ptr's sequence), SDMA IBs submitted
 *   with ac_drm_cs_submit_raw2 (BO list, SYNCOBJ_OUT, IB chunks, as
 *   amdgpu_cs_submit_ib_kernelq), waited with ac_drm_cs_syncobj_wait and
 *   ac_drm_cs_query_fence_status.
 *
 *   vm_mesa userptr   the host has the series: a posix_memalign'd buffer
 *                     becomes a BO (ac_drm_create_bo_from_user_mem), the GPU
 *                     fills and copies it, munmap + new pages at the same
 *                     address are what the next submission sees, BO freed
 *   vm_mesa copy      plain upstream host: has_userptr false, the same call
 *                     returns -EOPNOTSUPP (no assert), the context still
 *                     works (GTT fill/copy: the copy path)
 *
 * Prints PASS/FAIL/SKIP rig: lines and "STATS name value" lines with what
 * the simulator must have counted (run-vm sums them over the boot).  Exit
 * status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <xf86drm.h>

#include "drm-uapi/virtgpu_drm.h"
#include "virtio/virtio-gpu/drm_hw.h"
#include "ac_gpu_info.h"
#include "ac_linux_drm.h"
#include "sid.h"

#include "rig_report.h"

#define KIB 1024u
#define BUF_SIZE (64 * KIB)
#define HALF (BUF_SIZE / 2)
#define FILL 0xc0ffee11u
#define FILL2 0x5eed0f11u
#define TIMEOUT_NS 10000000000ull

static struct {
	unsigned long long bytes_moved, submissions, invalidations, revalidations;
} st;



static uint32_t
seed(unsigned gen, unsigned i)
{
	return 0x9e3779b9u * (i + 1) ^ (gen * 0x01000193u) ^ 0xa5a5a5a5u;
}

static int64_t
abs_timeout(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec + (int64_t)TIMEOUT_NS;
}

/* A BO as the winsys holds one: the ac_drm handle, its kms handle (over
 * virtio the res_id, what BO lists carry), its VA range and CPU pointer. */
struct bo {
	ac_drm_bo bo;
	uint32_t kms;
	uint64_t va, size;
	amdgpu_va_handle vah;
	uint32_t *cpu;
};

struct gpu {
	ac_drm_device *dev;
	int fd;
	struct radeon_info info;
	uint32_t ctx;
	struct bo ib;
};

/* VA from the device's VA manager and a MAP, as amdgpu_bo_from_ptr does. */
static int
map_va(struct gpu *g, struct bo *b, const char **stage)
{
	int r;

	*stage = "ac_drm_va_range_alloc";
	r = ac_drm_va_range_alloc(g->dev, amdgpu_gpu_va_range_general, b->size,
				  g->info.gart_page_size > b->size ? g->info.gart_page_size : b->size,
				  0, &b->va, &b->vah, AMDGPU_VA_RANGE_HIGH);
	if (r)
		return r;
	*stage = "ac_drm_bo_export(kms)";
	r = ac_drm_bo_export(g->dev, b->bo, amdgpu_bo_handle_type_kms, &b->kms);
	if (r)
		goto free_va;
	*stage = "ac_drm_bo_va_op_raw(MAP)";
	r = ac_drm_bo_va_op_raw(g->dev, b->kms, 0, b->size, b->va,
				AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE |
				AMDGPU_VM_PAGE_EXECUTABLE, AMDGPU_VA_OP_MAP);
	if (r)
		goto free_va;
	return 0;
free_va:
	ac_drm_va_range_free(b->vah);
	b->vah = NULL;
	return r;
}

/* UNMAP, free the VA range, free the BO: the winsys' destroy. */
static int
destroy_bo(struct gpu *g, struct bo *b, const char **stage)
{
	int r;

	*stage = "ac_drm_bo_va_op_raw(UNMAP)";
	r = ac_drm_bo_va_op_raw(g->dev, b->kms, 0, b->size, b->va, 0, AMDGPU_VA_OP_UNMAP);
	if (r)
		return r;
	*stage = "ac_drm_va_range_free";
	r = ac_drm_va_range_free(b->vah);
	if (r)
		return r;
	*stage = "ac_drm_bo_free";
	return ac_drm_bo_free(g->dev, b->bo);
}

static int
gtt_bo(struct gpu *g, struct bo *b, uint64_t size, const char **stage)
{
	struct amdgpu_bo_alloc_request req = {
		.alloc_size = size,
		.phys_alignment = 4096,
		.preferred_heap = AMDGPU_GEM_DOMAIN_GTT,
		.flags = AMDGPU_GEM_CREATE_CPU_GTT_USWC,
	};
	void *cpu;
	int r;

	memset(b, 0, sizeof(*b));
	b->size = size;
	*stage = "ac_drm_bo_alloc";
	r = ac_drm_bo_alloc(g->dev, &req, &b->bo);
	if (r)
		return r;
	*stage = "ac_drm_bo_cpu_map";
	r = ac_drm_bo_cpu_map(g->dev, b->bo, &cpu);
	if (r)
		return r;
	b->cpu = cpu;
	return map_va(g, b, stage);
}

/* SDMA packets with Mesa's own encoding (sid.h; the SDMA 5 layout RADV's
 * radv_sdma.c emits).  n counts dwords. */
static void
emit_fill(uint32_t *ib, unsigned *n, uint64_t dst, uint32_t value, uint32_t bytes)
{
	ib[(*n)++] = SDMA_PACKET(SDMA_OPCODE_CONSTANT_FILL, 0, 0) | 2u << 30; /* dwords */
	ib[(*n)++] = (uint32_t)dst;
	ib[(*n)++] = (uint32_t)(dst >> 32);
	ib[(*n)++] = value;
	ib[(*n)++] = bytes - 1;
	st.bytes_moved += bytes;
}

static void
emit_copy(uint32_t *ib, unsigned *n, uint64_t dst, uint64_t src, uint32_t bytes)
{
	ib[(*n)++] = SDMA_PACKET(SDMA_OPCODE_COPY, SDMA_COPY_SUB_OPCODE_LINEAR, 0);
	ib[(*n)++] = bytes - 1;
	ib[(*n)++] = 0;
	ib[(*n)++] = (uint32_t)src;
	ib[(*n)++] = (uint32_t)(src >> 32);
	ib[(*n)++] = (uint32_t)dst;
	ib[(*n)++] = (uint32_t)(dst >> 32);
	st.bytes_moved += bytes;
}

/* The IB in g->ib (n dwords, padded with NOPs to 8 as the winsys pads SDMA
 * IBs) on SDMA ring 0 with the BO list, a syncobj to signal, as
 * amdgpu_cs_submit_ib_kernelq builds them; then the syncobj wait the winsys'
 * fence wait does, and the fence's status by sequence number. */
static int
submit(struct gpu *g, unsigned n, const struct bo *const *bos, unsigned nbos,
       uint64_t *seq, const char **stage)
{
	struct drm_amdgpu_bo_list_entry list[8];
	struct drm_amdgpu_bo_list_in list_in = {
		.operation = ~0u, .list_handle = ~0u, .bo_number = nbos + 1,
		.bo_info_size = sizeof(struct drm_amdgpu_bo_list_entry),
		.bo_info_ptr = (uintptr_t)list,
	};
	struct drm_amdgpu_cs_chunk_sem sem = { 0 };
	struct drm_amdgpu_cs_chunk_ib ib = {
		.ip_type = AMDGPU_HW_IP_DMA, .ip_instance = 0, .ring = 0,
	};
	struct drm_amdgpu_cs_chunk chunks[3];
	uint32_t expired = 0;
	int r;

	while (n & 7)
		g->ib.cpu[n++] = SDMA_NOP_PAD;
	ib.va_start = g->ib.va;
	ib.ib_bytes = n * 4;
	list[0] = (struct drm_amdgpu_bo_list_entry){ .bo_handle = g->ib.kms };
	for (unsigned i = 0; i < nbos; i++)
		list[i + 1] = (struct drm_amdgpu_bo_list_entry){ .bo_handle = bos[i]->kms };

	*stage = "ac_drm_cs_create_syncobj2";
	r = ac_drm_cs_create_syncobj2(g->fd, 0, &sem.handle);
	if (r)
		return r;
	chunks[0] = (struct drm_amdgpu_cs_chunk){ AMDGPU_CHUNK_ID_BO_HANDLES,
		sizeof(list_in) / 4, (uintptr_t)&list_in };
	chunks[1] = (struct drm_amdgpu_cs_chunk){ AMDGPU_CHUNK_ID_SYNCOBJ_OUT,
		sizeof(sem) / 4, (uintptr_t)&sem };
	chunks[2] = (struct drm_amdgpu_cs_chunk){ AMDGPU_CHUNK_ID_IB,
		sizeof(ib) / 4, (uintptr_t)&ib };
	*stage = "ac_drm_cs_submit_raw2";
	r = ac_drm_cs_submit_raw2(g->dev, g->ctx, 0, 3, chunks, seq);
	if (r)
		goto out;
	st.submissions++;
	*stage = "ac_drm_cs_syncobj_wait";
	r = ac_drm_cs_syncobj_wait(g->fd, &sem.handle, 1, abs_timeout(), 0, NULL);
	if (r)
		goto out;
	*stage = "ac_drm_cs_query_fence_status";
	r = ac_drm_cs_query_fence_status(g->dev, g->ctx, AMDGPU_HW_IP_DMA, 0, 0, *seq,
					 TIMEOUT_NS, 0, &expired);
	if (!r && !expired) {
		*stage = "ac_drm_cs_query_fence_status (not expired after the syncobj)";
		r = -ETIMEDOUT;
	}
out:
	ac_drm_cs_destroy_syncobj(g->fd, sem.handle);
	return r;
}

/* Device, gpu info, context, IB: what both phases need.  0 or -1. */
static int
setup(struct gpu *g, int want_userptr)
{
	uint32_t major = 0, minor = 0;
	const char *stage;
	drmVersionPtr v;
	int fd, r;

	fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rig_fail("ac-drm-init", "open /dev/dri/renderD128: %s", strerror(errno));
		return -1;
	}
	v = drmGetVersion(fd);
	if (!v || strcmp(v->name, "virtio_gpu")) {
		rig_fail("ac-drm-init", "the render node is %s, not virtio_gpu", v ? v->name : "?");
		return -1;
	}
	drmFreeVersion(v);
	r = ac_drm_device_initialize(fd, true, &major, &minor, &g->dev);
	if (r) {
		rig_fail("ac-drm-init", "ac_drm_device_initialize(virtio) = %d", r);
		return -1;
	}
	g->fd = ac_drm_device_get_fd(g->dev);
	rig_pass("ac-drm-init (ac_drm_device_initialize on the virtio-gpu fd: native context, "
	     "host DRM %u.%u)", major, minor);

	/* radeonsi's winsys: the DRM version and is_virtio set, then
	 * ac_query_gpu_info. */
	g->info.drm_major = major;
	g->info.drm_minor = minor;
	g->info.is_virtio = true;
	if (ac_query_gpu_info(fd, g->dev, &g->info, false) != AC_QUERY_GPU_INFO_SUCCESS) {
		rig_fail("gpu-info", "ac_query_gpu_info failed over virtio");
		return -1;
	}
	bool dev_userptr = ac_drm_device_has_userptr(g->dev);
	if (dev_userptr != !!want_userptr || g->info.has_userptr != !!want_userptr) {
		/* What the two ends say, asked here directly. */
		uint64_t modes = 0;
		struct drm_virtgpu_getparam gp = {
			.param = VIRTGPU_PARAM_RESOURCE_USERPTR, .value = (uintptr_t)&modes,
		};
		struct virgl_renderer_capset_drm caps = { 0 };
		struct drm_virtgpu_get_caps gc = {
			.cap_set_id = 6 /* DRM */, .addr = (uintptr_t)&caps, .size = sizeof(caps),
		};
		int rp = drmIoctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
		int rc = drmIoctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc);

		rig_fail("has-userptr", "ac_drm_device_has_userptr %d, radeon_info.has_userptr %d, "
		     "expected %d (%s); asked directly: kernel userptr modes %s0x%llx, "
		     "capset has_userptr %s%u", dev_userptr, g->info.has_userptr, want_userptr,
		     want_userptr ? "guest kernel and host with the series"
				  : "host without has_userptr in its capset",
		     rp ? "(GETPARAM failed) " : "", (unsigned long long)modes,
		     rc ? "(GET_CAPS failed) " : "", caps.u.amdgpu.has_userptr);
	} else
		rig_pass("has-userptr (%s: ac_drm_device_has_userptr and radeon_info.has_userptr "
		     "%s; %s, family %u, gart page %u)", want_userptr ? "true" : "false",
		     want_userptr ? "both true" : "both false: radeonsi offers no "
		     "resource_from_user_memory, frontends copy",
		     g->info.name, g->info.family, g->info.gart_page_size);

	r = ac_drm_cs_ctx_create2(g->dev, AMDGPU_CTX_PRIORITY_NORMAL, &g->ctx);
	if (r) {
		rig_fail("context", "ac_drm_cs_ctx_create2 = %d", r);
		return -1;
	}
	r = gtt_bo(g, &g->ib, 4 * KIB, &stage);
	if (r) {
		rig_fail("context", "IB BO: %s = %d", stage, r);
		return -1;
	}
	rig_pass("context (ac_drm_cs_ctx_create2: ctx %u; IB BO kms handle %u at 0x%llx)",
	     g->ctx, g->ib.kms, (unsigned long long)g->ib.va);
	return 0;
}

/* The GTT BO A: the GPU fills its upper half and copies the lower quarter
 * into the second quarter; checked through the CPU mapping. */
static int
gtt_fill_copy(struct gpu *g, struct bo *a)
{
	const struct bo *bos[] = { a };
	const char *stage;
	uint64_t seq = 0;
	unsigned n = 0;
	int r;

	r = gtt_bo(g, a, BUF_SIZE, &stage);
	if (r) {
		rig_fail("gtt-sdma", "GTT BO: %s = %d", stage, r);
		return -1;
	}
	for (unsigned i = 0; i < BUF_SIZE / 4; i++)
		a->cpu[i] = seed(1, i);
	emit_fill(g->ib.cpu, &n, a->va + HALF, FILL, HALF);
	emit_copy(g->ib.cpu, &n, a->va + HALF / 2, a->va, HALF / 2);
	r = submit(g, n, bos, 1, &seq, &stage);
	if (r) {
		rig_fail("gtt-sdma", "%s = %d", stage, r);
		return -1;
	}
	for (unsigned i = 0; i < BUF_SIZE / 4; i++) {
		uint32_t want = i >= HALF / 4 ? FILL : seed(1, i % (HALF / 8));

		if (a->cpu[i] != want) {
			rig_fail("gtt-sdma", "A byte %u: 0x%08x, want 0x%08x", i * 4, a->cpu[i], want);
			return -1;
		}
	}
	rig_pass("gtt-sdma (GTT BO at 0x%llx: SDMA fill 32 KiB + copy 16 KiB via "
	     "ac_drm_cs_submit_raw2, fence %llu waited, bytes checked)",
	     (unsigned long long)a->va, (unsigned long long)seq);
	return 0;
}

static int
phase_userptr(struct gpu *g)
{
	struct bo a, u = { 0 };
	const struct bo *bos[2] = { &u, &a };
	const char *stage;
	uint32_t *buf;
	uint64_t seq = 0;
	unsigned n = 0;
	int r;

	if (gtt_fill_copy(g, &a))
		return -1;

	/* The application's buffer. */
	r = posix_memalign((void **)&buf, BUF_SIZE, BUF_SIZE);
	if (r) {
		rig_fail("userptr-bo", "posix_memalign: %s", strerror(r));
		return -1;
	}
	for (unsigned i = 0; i < BUF_SIZE / 4; i++)
		buf[i] = seed(2, i);
	u.size = BUF_SIZE;
	r = ac_drm_create_bo_from_user_mem(g->dev, buf, BUF_SIZE, &u.bo);
	if (r) {
		rig_fail("userptr-bo", "ac_drm_create_bo_from_user_mem(%p, 64 KiB) = %d (%s)",
		     (void *)buf, r, strerror(-r));
		return -1;
	}
	r = map_va(g, &u, &stage);
	if (r) {
		rig_fail("userptr-bo", "%s = %d", stage, r);
		return -1;
	}
	rig_pass("userptr-bo (posix_memalign'd 64 KiB at %p: ac_drm_create_bo_from_user_mem, "
	     "kms handle (res_id) %u, VA 0x%llx from the device's VA manager)",
	     (void *)buf, u.kms, (unsigned long long)u.va);

	/* Fill the upper half of the user's buffer, copy its lower half to A. */
	emit_fill(g->ib.cpu, &n, u.va + HALF, FILL2, HALF);
	emit_copy(g->ib.cpu, &n, a.va, u.va, HALF);
	r = submit(g, n, bos, 2, &seq, &stage);
	if (r) {
		rig_fail("userptr-sdma", "%s = %d", stage, r);
		return -1;
	}
	for (unsigned i = 0; i < BUF_SIZE / 4; i++) {
		uint32_t want = i >= HALF / 4 ? FILL2 : seed(2, i);

		if (buf[i] != want) {
			rig_fail("userptr-sdma", "malloc'd buffer byte %u: 0x%08x, want 0x%08x",
			     i * 4, buf[i], want);
			return -1;
		}
		if (i < HALF / 4 && a.cpu[i] != want) {
			rig_fail("userptr-sdma", "A (copy of the buffer) byte %u: 0x%08x, want 0x%08x",
			     i * 4, a.cpu[i], want);
			return -1;
		}
	}
	rig_pass("userptr-sdma (fence %llu: the GPU's fill is in the malloc'd buffer itself, its "
	     "copy of the buffer's lower half in A; every dword checked)",
	     (unsigned long long)seq);

	/* munmap + a new anonymous mapping at the same address: the BO keeps
	 * its VA, the next submission must reach the new pages (HMM mode). */
	if (munmap(buf, BUF_SIZE)) {
		rig_fail("userptr-new-pages", "munmap: %s", strerror(errno));
		return -1;
	}
	void *p = mmap(buf, BUF_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != buf) {
		rig_fail("userptr-new-pages", "mmap at %p: %s", (void *)buf,
		     p == MAP_FAILED ? strerror(errno) : "another address");
		return -1;
	}
	st.invalidations++; /* the munmap */
	for (unsigned i = 0; i < BUF_SIZE / 4; i++)
		buf[i] = seed(3, i);
	n = 0;
	emit_fill(g->ib.cpu, &n, u.va, FILL, 4 * KIB);
	emit_copy(g->ib.cpu, &n, a.va, u.va + 4 * KIB, 4 * KIB);
	r = submit(g, n, bos, 2, &seq, &stage);
	if (r) {
		rig_fail("userptr-new-pages", "%s = %d", stage, r);
		return -1;
	}
	st.revalidations++; /* that submission */
	int bad = 0;
	for (unsigned i = 0; i < 1024 && !bad; i++) {
		if (buf[i] != FILL) {
			rig_fail("userptr-new-pages", "the fill is not in the new pages: byte %u is "
			     "0x%08x", i * 4, buf[i]);
			bad = 1;
		} else if (a.cpu[i] != seed(3, 1024 + i)) {
			rig_fail("userptr-new-pages", "the GPU read other than the new pages at byte %u: "
			     "0x%08x (old pages 0x%08x, new 0x%08x)", i * 4, a.cpu[i],
			     seed(2, 1024 + i), seed(3, 1024 + i));
			bad = 1;
		}
	}
	if (bad)
		return -1;
	rig_pass("userptr-new-pages (munmap + new pages at %p: fence %llu wrote and read the new "
	     "pages)", (void *)buf, (unsigned long long)seq);

	r = destroy_bo(g, &u, &stage);
	if (r) {
		rig_fail("userptr-destroy", "%s = %d", stage, r);
		return -1;
	}
	st.invalidations++; /* the host's window goes at teardown */
	/* The memory is the application's again: the allocator takes it back. */
	buf[0] = 1;
	free(buf);
	r = destroy_bo(g, &a, &stage);
	if (r) {
		rig_fail("userptr-destroy", "A: %s = %d", stage, r);
		return -1;
	}
	rig_pass("userptr-destroy (UNMAP, ac_drm_va_range_free, ac_drm_bo_free; the buffer "
	     "freed by the application)");
	return 0;
}

static int
phase_copy(struct gpu *g)
{
	struct bo a;
	const struct bo *bos[] = { &a };
	const char *stage;
	ac_drm_bo ubo;
	uint32_t *buf;
	uint64_t seq;
	unsigned n = 0;
	int r;

	r = posix_memalign((void **)&buf, BUF_SIZE, BUF_SIZE);
	if (r) {
		rig_fail("userptr-unsupported", "posix_memalign: %s", strerror(r));
		return -1;
	}
	memset(&ubo, 0x5a, sizeof(ubo));
	r = ac_drm_create_bo_from_user_mem(g->dev, buf, BUF_SIZE, &ubo);
	if (r != -EOPNOTSUPP) {
		rig_fail("userptr-unsupported", "ac_drm_create_bo_from_user_mem = %d, want -EOPNOTSUPP", r);
		if (!r)
			ac_drm_bo_free(g->dev, ubo);
		return -1;
	}
	rig_pass("userptr-unsupported (ac_drm_create_bo_from_user_mem = -EOPNOTSUPP, no assert "
	     "(assertions are on), the program goes on)");

	/* The rest of the context works; the frontends' copy path. */
	if (gtt_fill_copy(g, &a))
		return -1;
	for (unsigned i = 0; i < BUF_SIZE / 4; i++)
		buf[i] = seed(4, i);
	memcpy(a.cpu, buf, HALF);	/* upload the user's data */
	emit_copy(g->ib.cpu, &n, a.va + HALF, a.va, HALF);
	r = submit(g, n, bos, 1, &seq, &stage);
	if (r) {
		rig_fail("copy-path", "%s = %d", stage, r);
		return -1;
	}
	memcpy(buf + HALF / 4, (char *)a.cpu + HALF, HALF);	/* read back */
	for (unsigned i = 0; i < BUF_SIZE / 4; i++)
		if (buf[i] != seed(4, i % (HALF / 4))) {
			rig_fail("copy-path", "byte %u: 0x%08x, want 0x%08x", i * 4, buf[i],
			     seed(4, i % (HALF / 4)));
			return -1;
		}
	rig_pass("copy-path (the user's data through a GTT BO: upload, GPU copy, read back, "
	     "checked)");
	free(buf);
	r = destroy_bo(g, &a, &stage);
	if (r) {
		rig_fail("copy-path", "A: %s = %d", stage, r);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct gpu g = { 0 };
	const char *stage;
	uint64_t flags = 0;
	int r, want;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || (strcmp(argv[1], "userptr") && strcmp(argv[1], "copy"))) {
		fprintf(stderr, "usage: vm_mesa userptr|copy\n");
		return 2;
	}
	want = !strcmp(argv[1], "userptr");
	if (setup(&g, want) == 0) {
		r = want ? phase_userptr(&g) : phase_copy(&g);
		if (!r && ac_drm_cs_query_reset_state2(g.dev, g.ctx, &flags) == 0 && flags)
			rig_fail("context-healthy", "ac_drm_cs_query_reset_state2 flags 0x%llx "
			     "(the host raised async_error)", (unsigned long long)flags);
		else if (!r)
			rig_pass("context-healthy (no reset, no host async_error)");
		if (destroy_bo(&g, &g.ib, &stage))
			rig_fail("teardown", "IB: %s", stage);
		ac_drm_cs_ctx_free(g.dev, g.ctx);
		ac_drm_device_deinitialize(g.dev);
	}
	printf("STATS bytes_moved %llu\nSTATS submissions %llu\n"
	       "STATS userptr_invalidations %llu\nSTATS userptr_revalidations %llu\n",
	       st.bytes_moved, st.submissions, st.invalidations, st.revalidations);
	return *rig_failures ? 1 : 0;
}
