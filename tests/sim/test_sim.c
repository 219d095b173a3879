/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The simulated amdgpu through Debian's libdrm_amdgpu: every case checks
 * bytes or the errno Linux 6.12's amdgpu gives.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xf86drm.h>

#include "amdgpu_sim_stats.h"
#include "sim_util.h"
#include "test_check.h"

static struct amdgpu_sim_stats
stats(void)
{
	struct amdgpu_sim_stats s;

	amdgpu_sim_get_stats(&s);
	return s;
}

static bool
all_bytes(const void *p, uint8_t v, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return false;
	return true;
}

static bool
all_dwords(const void *p, uint32_t v, size_t bytes)
{
	const uint32_t *d = p;

	for (size_t i = 0; i < bytes / 4; i++)
		if (d[i] != v)
			return false;
	return true;
}

static void
test_device(struct sim_gpu *gpu)
{
	struct amdgpu_gpu_info info;
	drmVersionPtr ver = drmGetVersion(gpu->fd);

	CHECK(ver && !strcmp(ver->name, "amdgpu"), "driver %s", ver ? ver->name : "?");
	CHECK(ver && ver->version_major == 3 && ver->version_minor == 61,
	      "DRM %d.%d, want Linux 6.12's 3.61", ver ? ver->version_major : -1,
	      ver ? ver->version_minor : -1);
	drmFreeVersion(ver);
	CHECK(gpu->drm_major == 3 && gpu->drm_minor == 61, "libdrm saw %u.%u",
	      gpu->drm_major, gpu->drm_minor);
	CHECK(!amdgpu_query_gpu_info(gpu->dev, &info), "gpu info");
	CHECK(info.asic_id == 0x73bf, "navi21 device id 0x73bf, got 0x%x",
	      info.asic_id);
}

static void
test_fill_gtt(struct sim_gpu *gpu)
{
	struct sim_buf b;
	struct sim_ib ib;
	uint64_t before = stats().bytes_moved;

	CHECK(!sim_buf_gtt(gpu, 1 << 20, &b), "alloc");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	memset(b.cpu, 0x11, b.size);
	sim_sdma_fill(&ib, b.va + 4096, 0xdeadbeef, b.size - 8192);
	CHECK(!sim_submit(gpu, &ib, &b.handle, 1, true, NULL), "submit");
	CHECK(all_bytes(b.cpu, 0x11, 4096), "head untouched");
	CHECK(all_dwords((uint8_t *)b.cpu + 4096, 0xdeadbeef, b.size - 8192),
	      "filled");
	CHECK(all_bytes((uint8_t *)b.cpu + b.size - 4096, 0x11, 4096),
	      "tail untouched");
	CHECK(stats().bytes_moved - before == b.size - 8192, "bytes counted");
	sim_ib_fini(&ib);
	sim_buf_free(&b);
}

static const uint32_t UP_FLAGS = AMDGPU_GEM_USERPTR_REGISTER |
				 AMDGPU_GEM_USERPTR_VALIDATE;

static void
test_userptr_both_ways(struct sim_gpu *gpu)
{
	size_t size = 256 * 1024;
	struct sim_buf up, gtt;
	struct sim_ib ib;
	uint8_t *mem = NULL;
	uint32_t words[4] = { 1, 2, 3, 4 };

	CHECK(!posix_memalign((void **)&mem, 4096, size), "memalign");
	memset(mem, 0xaa, size);
	CHECK(!sim_buf_userptr(gpu, mem, size, UP_FLAGS, &up), "userptr");
	CHECK(!sim_buf_gtt(gpu, size, &gtt), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");

	/* GPU writes user memory, CPU reads it: zero copy. */
	sim_sdma_fill(&ib, up.va, 0x5a5a5a5a, size / 2);
	sim_sdma_write(&ib, up.va + size - 16, words, 4);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle }, 1, true,
			  NULL), "submit");
	CHECK(all_bytes(mem, 0x5a, size / 2), "GPU fill seen by the CPU");
	CHECK(all_bytes(mem + size / 2, 0xaa, size / 2 - 16), "rest untouched");
	CHECK(!memcmp(mem + size - 16, words, 16), "GPU write seen by the CPU");

	/* CPU writes user memory, GPU copies it out. */
	for (size_t i = 0; i < size; i++)
		mem[i] = (uint8_t)(i * 7);
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit");
	CHECK(!memcmp(gtt.cpu, mem, size), "GPU read the CPU's bytes");

	/* GTT to userptr. */
	memset(gtt.cpu, 0x3c, size);
	sim_sdma_copy(&ib, up.va, gtt.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit");
	CHECK(all_bytes(mem, 0x3c, size), "copy GTT to userptr");

	sim_ib_fini(&ib);
	sim_buf_free(&gtt);
	sim_buf_free(&up);
	free(mem);
}

/* munmap, then a new mapping at the same address: the next submission
 * uses the new pages. */
static void
test_userptr_remap(struct sim_gpu *gpu)
{
	size_t size = 64 * 1024;
	struct amdgpu_sim_stats s0 = stats(), s1;
	struct sim_buf up, gtt;
	struct sim_ib ib;
	uint8_t *mem, *again;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap");
	memset(mem, 0x01, size);
	CHECK(!sim_buf_userptr(gpu, mem, size, UP_FLAGS, &up), "userptr");
	CHECK(!sim_buf_gtt(gpu, size, &gtt), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");

	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit");
	CHECK(all_bytes(gtt.cpu, 0x01, size), "old pages before munmap");

	CHECK(!munmap(mem, size), "munmap");
	/* With the range gone the submission cannot run. */
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			 true, NULL) == -EFAULT, "CS on an unmapped userptr");

	again = mmap(mem, size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(again == mem, "same address again");
	memset(again, 0x02, size);
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit after remap");
	CHECK(all_bytes(gtt.cpu, 0x02, size), "the new pages, not the old");

	/* madvise(DONTNEED) drops private pages: the GPU sees zeroes. */
	CHECK(!madvise(again, size, MADV_DONTNEED), "madvise");
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit after DONTNEED");
	CHECK(all_bytes(gtt.cpu, 0x00, size), "zero pages after DONTNEED");

	s1 = stats();
	CHECK(s1.userptr_invalidations - s0.userptr_invalidations == 2,
	      "invalidations %llu", (unsigned long long)(s1.userptr_invalidations -
							 s0.userptr_invalidations));
	CHECK(s1.userptr_revalidations - s0.userptr_revalidations == 2,
	      "revalidations %llu", (unsigned long long)(s1.userptr_revalidations -
							 s0.userptr_revalidations));
	sim_ib_fini(&ib);
	sim_buf_free(&gtt);
	sim_buf_free(&up);
	munmap(again, size);
}

/* munmap while the GPU still copies from the range: it returns only once
 * the job is done (no stale-data window), and the copy got the old bytes. */
static void
test_userptr_invalidate_waits(struct sim_gpu *gpu)
{
	size_t size = 64u << 20;
	struct amdgpu_sim_stats s0 = stats();
	struct sim_buf up, dst;
	struct sim_ib ib;
	uint64_t seq;
	bool signaled = false;
	uint8_t *mem = NULL;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED, "mmap");
	memset(mem, 0x77, size);
	CHECK(!sim_buf_userptr(gpu, mem, size, UP_FLAGS, &up), "userptr");
	CHECK(!sim_buf_gtt(gpu, size, &dst), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	for (int i = 0; i < 8; i++)	/* ~0.5 GiB of copying */
		sim_sdma_copy(&ib, dst.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, dst.handle }, 2,
			  false, &seq), "submit");
	CHECK(!munmap(mem, size), "munmap");
	CHECK(!sim_fence_wait(gpu, seq, 0, &signaled), "poll");
	CHECK(signaled, "munmap returned before the GPU was done with the pages");
	CHECK(stats().invalidation_waits - s0.invalidation_waits == 1,
	      "the invalidation waited");
	CHECK(all_bytes(dst.cpu, 0x77, size), "the job read the pages intact");
	sim_ib_fini(&ib);
	sim_buf_free(&dst);
	sim_buf_free(&up);
}

/* The address AMDGPU_INFO_GPUVM_FAULT reports. */
static uint64_t
sim_gpuvm_fault_addr(struct sim_gpu *gpu)
{
	struct drm_amdgpu_info_gpuvm_fault f = { 0 };

	if (amdgpu_query_info(gpu->dev, AMDGPU_INFO_GPUVM_FAULT, sizeof(f), &f))
		return 0;
	return f.addr;
}

static void
test_readonly_and_faults(struct sim_gpu *gpu)
{
	size_t size = 16 * 4096;
	struct amdgpu_sim_stats s0 = stats();
	struct sim_buf ro, gtt;
	struct sim_ib ib;
	uint8_t *mem = NULL;

	CHECK(!posix_memalign((void **)&mem, 4096, size), "memalign");
	memset(mem, 0x42, size);
	CHECK(!sim_buf_userptr(gpu, mem, size, AMDGPU_GEM_USERPTR_READONLY |
			       AMDGPU_GEM_USERPTR_VALIDATE, &ro), "read-only userptr");
	CHECK(!sim_buf_gtt(gpu, size, &gtt), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");

	sim_sdma_copy(&ib, gtt.va, ro.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ ro.handle, gtt.handle }, 2,
			  true, NULL), "GPU may read it");
	CHECK(all_bytes(gtt.cpu, 0x42, size), "read");

	/*
	 * As Linux 6.12 without retry faults: a faulting access goes to the
	 * dummy page, the fault is counted and logged (GPUVM_FAULT), and the
	 * job goes on to a fence without error.
	 */
	sim_sdma_fill(&ib, ro.va, 0, size);
	sim_sdma_fill(&ib, gtt.va, 0x05050505, 4096);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ ro.handle, gtt.handle }, 2,
			  true, NULL), "GPU write to read-only user memory: no fence error");
	CHECK(all_bytes(mem, 0x42, size), "and nothing was written");
	CHECK(all_bytes(gtt.cpu, 0x05, 4096), "the packet after the fault ran");
	CHECK(stats().gpu_faults - s0.gpu_faults == 1, "the fault counted");

	/* An address nothing is mapped at. */
	sim_sdma_fill(&ib, 0x7f0000000000ull, 0, 4096);
	CHECK(!sim_submit(gpu, &ib, NULL, 0, true, NULL),
	      "unmapped VA: no fence error");
	CHECK(stats().gpu_faults - s0.gpu_faults == 2, "two faults counted");
	CHECK(sim_gpuvm_fault_addr(gpu) == 0x7f0000000000ull,
	      "GPUVM_FAULT names the address: 0x%llx",
	      (unsigned long long)sim_gpuvm_fault_addr(gpu));

	/* The next job on the same context runs normally. */
	sim_sdma_fill(&ib, gtt.va, 0x01010101, size);
	CHECK(!sim_submit(gpu, &ib, &gtt.handle, 1, true, NULL), "after faults");
	CHECK(all_bytes(gtt.cpu, 0x01, size), "fill after faults");
	sim_ib_fini(&ib);
	sim_buf_free(&gtt);
	sim_buf_free(&ro);
	free(mem);
}

static int
raw_userptr(struct sim_gpu *gpu, uint64_t addr, uint64_t size, uint32_t flags)
{
	struct drm_amdgpu_gem_userptr a = { .addr = addr, .size = size,
					    .flags = flags };

	if (drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_USERPTR, &a))
		return -errno;
	drmCloseBufferHandle(gpu->fd, a.handle);
	return 0;
}

static void
test_bad_input(struct sim_gpu *gpu)
{
	size_t size = 8 * 4096;
	uint8_t *mem = NULL, *ro_map;
	struct sim_buf b;
	int memfd;

	CHECK(!posix_memalign((void **)&mem, 4096, size), "memalign");
	memset(mem, 0, size);
	CHECK(raw_userptr(gpu, (uintptr_t)mem + 8, size, UP_FLAGS) == -EINVAL,
	      "unaligned pointer");
	CHECK(raw_userptr(gpu, (uintptr_t)mem, size - 100, UP_FLAGS) == -EINVAL,
	      "unaligned size");
	CHECK(raw_userptr(gpu, (uintptr_t)mem, size, UP_FLAGS | 0x100) == -EINVAL,
	      "unknown flag");
	CHECK(raw_userptr(gpu, (uintptr_t)mem, size,
			  AMDGPU_GEM_USERPTR_VALIDATE) == -EACCES,
	      "writable without REGISTER");
	CHECK(raw_userptr(gpu, 0x1000, size, UP_FLAGS) == -EFAULT,
	      "range not mapped");
	CHECK(raw_userptr(gpu, (uintptr_t)mem, size, UP_FLAGS |
			  AMDGPU_GEM_USERPTR_ANONONLY) == 0,
	      "ANONONLY on anonymous memory");

	memfd = memfd_create("shared", MFD_CLOEXEC);
	CHECK(memfd >= 0 && !ftruncate(memfd, size), "memfd");
	uint8_t *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			       memfd, 0);
	CHECK(shared != MAP_FAILED, "mmap memfd");
	CHECK(raw_userptr(gpu, (uintptr_t)shared, size, UP_FLAGS |
			  AMDGPU_GEM_USERPTR_ANONONLY) == -EPERM,
	      "ANONONLY on a shared file mapping");
	CHECK(raw_userptr(gpu, (uintptr_t)shared, size, UP_FLAGS) == 0,
	      "file-backed without ANONONLY");
	munmap(shared, size);
	close(memfd);

	ro_map = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(raw_userptr(gpu, (uintptr_t)ro_map, size, UP_FLAGS) == -EPERM,
	      "writable userptr on a read-only mapping");
	CHECK(raw_userptr(gpu, (uintptr_t)ro_map, size,
			  AMDGPU_GEM_USERPTR_READONLY |
			  AMDGPU_GEM_USERPTR_VALIDATE) == 0,
	      "read-only userptr on a read-only mapping");
	munmap(ro_map, size);

	/* Unknown handles. */
	struct drm_amdgpu_gem_va va = {
		.handle = 4242, .operation = AMDGPU_VA_OP_MAP,
		.flags = AMDGPU_VM_PAGE_READABLE, .va_address = 1ull << 32,
		.map_size = 4096,
	};
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == ENOENT,
	      "VA map of an unknown handle: %s", strerror(errno));
	union drm_amdgpu_gem_mmap mm = { .in.handle = 4242 };
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &mm) && errno == ENOENT,
	      "mmap of an unknown handle");
	struct drm_gem_close gc = { .handle = 4242 };
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_GEM_CLOSE, &gc) && errno == EINVAL,
	      "close of an unknown handle");

	/* VA overlap, alignment, reserved range. */
	CHECK(!sim_buf_gtt(gpu, 2 * 4096, &b), "gtt");
	va.handle = b.handle;
	va.va_address = b.va + 4096;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == EINVAL,
	      "overlapping VA");
	va.va_address = (1ull << 33) + 100;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == EINVAL,
	      "unaligned VA");
	va.va_address = 4096;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == EINVAL,
	      "VA below AMDGPU_VA_RESERVED_BOTTOM");
	va.va_address = 1ull << 34;
	va.map_size = 3 * 4096;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == EINVAL,
	      "mapping larger than the BO");
	va.operation = AMDGPU_VA_OP_UNMAP;
	va.map_size = 4096;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) && errno == ENOENT,
	      "unmap of a VA that is not mapped");

	/* GEM_CREATE with flags 6.12 does not know. */
	union drm_amdgpu_gem_create gcr = {
		.in.bo_size = 4096, .in.domains = AMDGPU_GEM_DOMAIN_GTT,
		.in.domain_flags = 1ull << 40,
	};
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_CREATE, &gcr) &&
	      errno == EINVAL, "unknown GEM_CREATE flag");
	sim_buf_free(&b);

	/* No CPU mapping or export of a userptr BO. */
	struct sim_buf up;
	CHECK(!sim_buf_userptr(gpu, mem, size, UP_FLAGS, &up), "userptr");
	mm.in.handle = up.handle;
	CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &mm) && errno == EPERM,
	      "GEM_MMAP of a userptr");
	int dmabuf = -1;
	CHECK(drmPrimeHandleToFD(gpu->fd, mm.in.handle, DRM_CLOEXEC, &dmabuf) &&
	      errno == EPERM, "export of a userptr");
	sim_buf_free(&up);
	free(mem);
}

/* Two opens of the device share a GTT BO by dma-buf; a syncobj carries
 * the fence of a submission. */
#define PKT3(op, count) ((3u << 30) | (((count) & 0x3fff) << 16) | ((op) << 8))

/* PM4 on the compute and GFX rings: WRITE_DATA, DMA_DATA fill and copy,
 * RELEASE_MEM, and an INDIRECT_BUFFER into a second IB. */
static void
test_pm4(struct sim_gpu *gpu)
{
	static const uint32_t rings[] = { AMDGPU_HW_IP_COMPUTE, AMDGPU_HW_IP_GFX };
	struct sim_buf b;
	struct sim_ib ib, ib2;

	CHECK(!sim_buf_gtt(gpu, 65536, &b), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	CHECK(!sim_ib_init(gpu, &ib2), "ib2");
	for (unsigned k = 0; k < 2; k++) {
		uint32_t *d = b.cpu;

		memset(b.cpu, 0, b.size);
		ib.ip_type = rings[k];
		/* WRITE_DATA, dst_sel 5 (memory): 3 dwords at b.va */
		ib.dw[ib.n++] = PKT3(0x37, 4 + 3 - 2);
		ib.dw[ib.n++] = 5 << 8;
		ib.dw[ib.n++] = (uint32_t)b.va;
		ib.dw[ib.n++] = b.va >> 32;
		ib.dw[ib.n++] = 0x11111111;
		ib.dw[ib.n++] = 0x22222222;
		ib.dw[ib.n++] = 0x33333333;
		/* DMA_DATA fill (src_sel DATA): 4 KiB of 0xcafef00d at +4K */
		ib.dw[ib.n++] = PKT3(0x50, 5);
		ib.dw[ib.n++] = 2u << 29;
		ib.dw[ib.n++] = 0xcafef00d;
		ib.dw[ib.n++] = 0;
		ib.dw[ib.n++] = (uint32_t)(b.va + 4096);
		ib.dw[ib.n++] = (b.va + 4096) >> 32;
		ib.dw[ib.n++] = 4096;
		/* IB2: DMA_DATA copy of that 4 KiB to +8K */
		ib2.dw[ib2.n++] = PKT3(0x50, 5);
		ib2.dw[ib2.n++] = 0;
		ib2.dw[ib2.n++] = (uint32_t)(b.va + 4096);
		ib2.dw[ib2.n++] = (b.va + 4096) >> 32;
		ib2.dw[ib2.n++] = (uint32_t)(b.va + 8192);
		ib2.dw[ib2.n++] = (b.va + 8192) >> 32;
		ib2.dw[ib2.n++] = 4096;
		ib.dw[ib.n++] = PKT3(0x3f, 2);
		ib.dw[ib.n++] = (uint32_t)ib2.buf.va;
		ib.dw[ib.n++] = ib2.buf.va >> 32;
		ib.dw[ib.n++] = ib2.n;
		/* a register write and a dispatch: parsed, no effect */
		ib.dw[ib.n++] = PKT3(0x76, 1);	/* SET_SH_REG */
		ib.dw[ib.n++] = 0x20c;
		ib.dw[ib.n++] = 0x1;
		ib.dw[ib.n++] = PKT3(0x15, 3);	/* DISPATCH_DIRECT */
		ib.dw[ib.n++] = 1;
		ib.dw[ib.n++] = 1;
		ib.dw[ib.n++] = 1;
		ib.dw[ib.n++] = 1;
		/* RELEASE_MEM, 64-bit data at +12K */
		ib.dw[ib.n++] = PKT3(0x49, 6);
		ib.dw[ib.n++] = 0;
		ib.dw[ib.n++] = 2u << 29;
		ib.dw[ib.n++] = (uint32_t)(b.va + 12288);
		ib.dw[ib.n++] = (b.va + 12288) >> 32;
		ib.dw[ib.n++] = 0x89abcdef;
		ib.dw[ib.n++] = 0x01234567;
		ib.dw[ib.n++] = 0;
		CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ b.handle, ib2.buf.handle },
				  2, true, NULL), "PM4 submit on ring %u", rings[k]);
		ib2.n = 0;
		CHECK(d[0] == 0x11111111 && d[1] == 0x22222222 && d[2] == 0x33333333,
		      "WRITE_DATA on ring %u", rings[k]);
		CHECK(all_dwords((uint8_t *)b.cpu + 4096, 0xcafef00d, 4096),
		      "DMA_DATA fill on ring %u", rings[k]);
		CHECK(all_dwords((uint8_t *)b.cpu + 8192, 0xcafef00d, 4096),
		      "DMA_DATA copy in IB2 on ring %u", rings[k]);
		CHECK(*(uint64_t *)((uint8_t *)b.cpu + 12288) == 0x0123456789abcdefull,
		      "RELEASE_MEM on ring %u", rings[k]);
	}
	sim_ib_fini(&ib2);
	sim_ib_fini(&ib);
	sim_buf_free(&b);
}

/* mmap(MAP_FIXED) over the range and mremap() moving it away are notifier
 * events too. */
static void
test_userptr_fixed_and_mremap(struct sim_gpu *gpu)
{
	size_t size = 64 * 1024;
	struct amdgpu_sim_stats s0 = stats();
	struct sim_buf up, gtt;
	struct sim_ib ib;
	uint8_t *mem, *moved;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0x0a, size);
	CHECK(!sim_buf_userptr(gpu, mem, size, UP_FLAGS, &up), "userptr");
	CHECK(!sim_buf_gtt(gpu, size, &gtt), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");

	CHECK(mmap(mem, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == mem,
	      "MAP_FIXED over the range");
	memset(mem, 0x0b, size);
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL), "submit");
	CHECK(all_bytes(gtt.cpu, 0x0b, size), "pages of the MAP_FIXED mapping");

	moved = mremap(mem, size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
		       mem + (64u << 20));
	CHECK(moved != MAP_FAILED, "mremap away");
	sim_sdma_copy(&ib, gtt.va, up.va, size);
	CHECK(sim_submit(gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			 true, NULL) == -EFAULT, "range moved away: CS refused");
	CHECK(stats().userptr_invalidations - s0.userptr_invalidations == 2,
	      "two invalidations");
	sim_ib_fini(&ib);
	sim_buf_free(&gtt);
	sim_buf_free(&up);
	munmap(moved, size);
}

static void
test_prime_and_syncobj(struct sim_gpu *gpu)
{
	struct sim_gpu other;
	struct sim_buf b;
	struct sim_ib ib;
	uint32_t handle, syncobj, imported;
	int dmabuf;
	uint8_t *view;

	CHECK(!sim_gpu_open(&other), "second open");
	CHECK(!sim_buf_gtt(gpu, 8192, &b), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	handle = b.handle;
	CHECK(!drmPrimeHandleToFD(gpu->fd, handle, DRM_CLOEXEC | DRM_RDWR,
				  &dmabuf), "export");
	CHECK(!drmPrimeFDToHandle(other.fd, dmabuf, &imported), "import");
	view = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	CHECK(view != MAP_FAILED, "mmap dma-buf");

	CHECK(!drmSyncobjCreate(gpu->fd, 0, &syncobj), "syncobj");
	sim_sdma_fill(&ib, b.va, 0x99999999, 8192);
	uint64_t seq;
	CHECK(!sim_submit(gpu, &ib, &b.handle, 1, false, &seq), "submit");
	struct amdgpu_cs_fence fence = { .context = gpu->ctx,
					 .ip_type = AMDGPU_HW_IP_DMA,
					 .fence = seq };
	uint32_t fence_syncobj;
	CHECK(!amdgpu_cs_fence_to_handle(gpu->dev, &fence,
					 AMDGPU_FENCE_TO_HANDLE_GET_SYNCOBJ,
					 &fence_syncobj), "fence to syncobj");
	CHECK(!drmSyncobjWait(gpu->fd, &fence_syncobj, 1, INT64_MAX, 0, NULL),
	      "syncobj wait");
	CHECK(all_bytes(view, 0x99, 8192), "the other file sees the bytes");
	CHECK(drmSyncobjWait(gpu->fd, &syncobj, 1, 0, 0, NULL) && errno == EINVAL,
	      "wait on a syncobj with no fence");
	drmSyncobjDestroy(gpu->fd, syncobj);
	drmSyncobjDestroy(gpu->fd, fence_syncobj);
	munmap(view, 8192);
	close(dmabuf);
	drmCloseBufferHandle(other.fd, imported);
	sim_ib_fini(&ib);
	sim_buf_free(&b);
	sim_gpu_close(&other);
}

/* A BO that outlives the DRM file that created it (held here by a
 * dma-buf) is counted in live_bos_of_closed_files until it is freed: the
 * rig's host leak check tells a guest context's BOs by it. */
static void
test_bo_outlives_its_file(struct sim_gpu *gpu)
{
	struct amdgpu_sim_stats s0;
	int fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC), dmabuf = -1;
	union drm_amdgpu_gem_create create = {
		.in = { .bo_size = 8192, .alignment = 4096,
			.domains = AMDGPU_GEM_DOMAIN_GTT },
	};

	/* the earlier tests' jobs may still hold their BOs */
	CHECK(sim_idle_stats(amdgpu_sim_get_stats, &s0), "earlier jobs freed within 2 s");
	CHECK(fd >= 0, "a second open of the render node");
	CHECK(!drmCommandWriteRead(fd, DRM_AMDGPU_GEM_CREATE, &create, sizeof(create)),
	      "GEM_CREATE");
	CHECK(!drmPrimeHandleToFD(fd, create.out.handle, DRM_CLOEXEC, &dmabuf), "export");
	CHECK(stats().live_bos_of_closed_files == s0.live_bos_of_closed_files,
	      "its file is open: not counted");
	close(fd);
	CHECK(stats().live_bos_of_closed_files - s0.live_bos_of_closed_files == 1,
	      "the file closed, the dma-buf keeps the BO: counted");
	close(dmabuf);
	CHECK(stats().live_bos_of_closed_files == s0.live_bos_of_closed_files &&
	      stats().live_bos == s0.live_bos, "the dma-buf closed: the BO is gone");
}

/* A sync file exported from a job's out syncobj is what virglrenderer's
 * fence thread polls (a dup of it) before it signals the guest's fence:
 * poll() must find it readable only once the job has completed. */
static void
test_sync_file_poll(struct sim_gpu *gpu)
{
	size_t size = 64u << 20;
	struct sim_buf src, dst;
	struct sim_ib ib;
	uint32_t out_obj;
	int fd, dup_fd, ready;
	bool signaled = false;

	CHECK(!sim_buf_gtt(gpu, size, &src), "gtt src");
	CHECK(!sim_buf_gtt(gpu, size, &dst), "gtt dst");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	memset(src.cpu, 0x5a, size);
	for (int i = 0; i < 8; i++)	/* ~0.5 GiB of copying */
		sim_sdma_copy(&ib, dst.va, src.va, size);
	CHECK(!drmSyncobjCreate(gpu->fd, 0, &out_obj), "syncobj");
	struct drm_amdgpu_cs_chunk_sem out = { .handle = out_obj };
	struct drm_amdgpu_cs_chunk chunk = {
		AMDGPU_CHUNK_ID_SYNCOBJ_OUT, sizeof(out) / 4, (uintptr_t)&out,
	};
	uint64_t seq;
	CHECK(!sim_submit_chunks(gpu, &ib, (uint32_t[]){ src.handle, dst.handle },
				 2, &chunk, 1, &seq), "submit");
	CHECK(!drmSyncobjExportSyncFile(gpu->fd, out_obj, &fd), "export sync file");
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	CHECK(dup_fd >= 0, "dup");
	/* Readable means done: the fence is queried after the poll. */
	ready = poll(&(struct pollfd){ dup_fd, POLLIN, 0 }, 1, 0);
	CHECK(!sim_fence_wait(gpu, seq, 0, &signaled), "fence status");
	CHECK(ready == 0 || signaled,
	      "the sync file polled ready while its job was still running");
	CHECK(poll(&(struct pollfd){ dup_fd, POLLIN, 0 }, 1, 30000) == 1,
	      "the sync file signals when the job completes");
	CHECK(!sim_fence_wait(gpu, seq, 0, &signaled) && signaled,
	      "and the job had completed");
	CHECK(all_bytes(dst.cpu, 0x5a, size), "with its bytes");
	CHECK(poll(&(struct pollfd){ fd, POLLIN, 0 }, 1, 0) == 1,
	      "the exported fd itself is readable too");
	close(dup_fd);
	close(fd);
	/* A sync file closed before its job completes: signalling it later
	 * must leave the process alone (virglrenderer drops a ring's last
	 * fence fd when the next submission replaces it). */
	for (int i = 0; i < 8; i++)
		sim_sdma_copy(&ib, dst.va, src.va, size);
	CHECK(!sim_submit_chunks(gpu, &ib, (uint32_t[]){ src.handle, dst.handle },
				 2, &chunk, 1, &seq), "submit again");
	CHECK(!drmSyncobjExportSyncFile(gpu->fd, out_obj, &fd), "export, then close");
	close(fd);
	CHECK(!sim_fence_wait(gpu, seq, AMDGPU_TIMEOUT_INFINITE, &signaled) && signaled,
	      "the job of a closed sync file completes");
	/* A fence that has already signalled exports a ready sync file. */
	CHECK(!drmSyncobjExportSyncFile(gpu->fd, out_obj, &fd), "export again");
	CHECK(poll(&(struct pollfd){ fd, POLLIN, 0 }, 1, 0) == 1,
	      "a signalled fence's sync file is ready at once");
	close(fd);
	drmSyncobjDestroy(gpu->fd, out_obj);
	sim_ib_fini(&ib);
	sim_buf_free(&src);
	sim_buf_free(&dst);
}

/* Fence numbers are per context and ring, from 1, as amdgpu gives them
 * (Mesa and virglrenderer rely on that); a number not handed out yet is
 * refused. */
static void
test_fence_numbers(struct sim_gpu *gpu)
{
	amdgpu_context_handle first = gpu->ctx, second;
	struct sim_ib ib;
	uint64_t a = 0, b = 0, c = 0;
	bool signaled;

	CHECK(!amdgpu_cs_ctx_create(gpu->dev, &second), "second context");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	gpu->ctx = second;
	ib.dw[ib.n++] = 0;
	CHECK(!sim_submit(gpu, &ib, NULL, 0, true, &a) && a == 1,
	      "first fence of a new context is 1, got %llu", (unsigned long long)a);
	ib.dw[ib.n++] = 0;
	CHECK(!sim_submit(gpu, &ib, NULL, 0, true, &b) && b == 2, "then 2");
	ib.ip_type = AMDGPU_HW_IP_COMPUTE;
	ib.dw[ib.n++] = 0xffff1000;	/* PM4 NOP */
	CHECK(!sim_submit(gpu, &ib, NULL, 0, true, &c) && c == 1,
	      "another ring of the context counts on its own");
	CHECK(sim_fence_wait(gpu, 3, 0, &signaled) == -EINVAL,
	      "a fence number not handed out is refused");
	gpu->ctx = first;
	sim_ib_fini(&ib);
	amdgpu_cs_ctx_free(second);
}

static int
va_op(struct sim_gpu *gpu, uint32_t handle, uint32_t op, uint64_t va,
      uint64_t offset, uint64_t size)
{
	struct drm_amdgpu_gem_va a = {
		.handle = handle, .operation = op,
		.flags = AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE,
		.va_address = va, .offset_in_bo = offset, .map_size = size,
	};

	return drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_VA, &a) ? -errno : 0;
}

/* REPLACE puts another BO under part of a mapping, CLEAR cuts a hole: the
 * GPU's view follows, page by page. */
static void
test_va_replace_clear(struct sim_gpu *gpu)
{
	const uint64_t va = 1ull << 36;
	struct sim_buf a, b;
	struct sim_ib ib;
	uint8_t *pa, *pb;

	CHECK(!sim_buf_gtt(gpu, 4 * 4096, &a), "a");
	CHECK(!sim_buf_gtt(gpu, 4 * 4096, &b), "b");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	pa = a.cpu;
	pb = b.cpu;
	memset(pa, 0, 4 * 4096);
	memset(pb, 0, 4 * 4096);
	CHECK(!va_op(gpu, a.handle, AMDGPU_VA_OP_MAP, va, 0, 4 * 4096), "map a");
	/* pages 1-2 of the range now show b's pages 2-3 */
	CHECK(!va_op(gpu, b.handle, AMDGPU_VA_OP_REPLACE, va + 4096, 2 * 4096,
		     2 * 4096), "replace");
	sim_sdma_fill(&ib, va, 0x77777777, 4 * 4096);
	CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ a.handle, b.handle }, 2, true,
			  NULL), "fill through the replaced range");
	CHECK(all_bytes(pa, 0x77, 4096) && all_bytes(pa + 3 * 4096, 0x77, 4096),
	      "a's pages 0 and 3 still mapped");
	CHECK(all_bytes(pa + 4096, 0, 2 * 4096), "a's pages 1-2 no longer mapped");
	CHECK(all_bytes(pb + 2 * 4096, 0x77, 2 * 4096) && all_bytes(pb, 0, 2 * 4096),
	      "b's pages 2-3 took the fill, its pages 0-1 did not");

	CHECK(!va_op(gpu, 0, AMDGPU_VA_OP_CLEAR, va + 2 * 4096, 0, 4096), "clear");
	{
		uint64_t faults = stats().gpu_faults;

		sim_sdma_fill(&ib, va + 2 * 4096, 0, 4096);
		CHECK(!sim_submit(gpu, &ib, (uint32_t[]){ a.handle, b.handle }, 2,
				  true, NULL) && stats().gpu_faults == faults + 1,
		      "the cleared page faults, the job ends well");
	}
	CHECK(va_op(gpu, a.handle, AMDGPU_VA_OP_UNMAP, va, 0, 4096) == 0,
	      "unmap the remaining head of a's mapping");
	CHECK(va_op(gpu, a.handle, AMDGPU_VA_OP_UNMAP, va + 3 * 4096, 0, 4096) == 0,
	      "and its tail");
	CHECK(va_op(gpu, b.handle, AMDGPU_VA_OP_UNMAP, va + 4096, 0, 4096) == 0,
	      "and b's first page left by the clear");
	sim_ib_fini(&ib);
	/* sim_buf_free unmaps at their own VAs; nothing else is mapped. */
	sim_buf_free(&a);
	sim_buf_free(&b);
}

/* Syncobjs carried by the submission itself: binary out, timeline signal,
 * a wait on a point nobody submitted. */
static void
test_cs_syncobj_chunks(struct sim_gpu *gpu)
{
	struct sim_buf b;
	struct sim_ib ib;
	uint32_t bin, tl;
	uint64_t point = 0, seq;

	CHECK(!sim_buf_gtt(gpu, 4096, &b), "gtt");
	CHECK(!sim_ib_init(gpu, &ib), "ib");
	CHECK(!drmSyncobjCreate(gpu->fd, 0, &bin), "binary syncobj");
	CHECK(!drmSyncobjCreate(gpu->fd, 0, &tl), "timeline syncobj");

	struct drm_amdgpu_cs_chunk_sem out = { .handle = bin };
	struct drm_amdgpu_cs_chunk_syncobj sig = { .handle = tl, .point = 5 };
	struct drm_amdgpu_cs_chunk chunks[2] = {
		{ AMDGPU_CHUNK_ID_SYNCOBJ_OUT, sizeof(out) / 4, (uintptr_t)&out },
		{ AMDGPU_CHUNK_ID_SYNCOBJ_TIMELINE_SIGNAL, sizeof(sig) / 4,
		  (uintptr_t)&sig },
	};
	sim_sdma_fill(&ib, b.va, 0x24242424, 4096);
	CHECK(!sim_submit_chunks(gpu, &ib, &b.handle, 1, chunks, 2, &seq),
	      "submit with out syncobjs");
	CHECK(!drmSyncobjWait(gpu->fd, &bin, 1, INT64_MAX, 0, NULL),
	      "binary out syncobj signals");
	CHECK(all_bytes(b.cpu, 0x24, 4096), "and the job had run");
	CHECK(!drmSyncobjTimelineWait(gpu->fd, &tl, (uint64_t[]){ 5 }, 1,
				      INT64_MAX, 0, NULL), "timeline point 5");
	CHECK(!drmSyncobjQuery(gpu->fd, &tl, &point, 1) && point == 5,
	      "timeline payload %llu", (unsigned long long)point);

	/* Waiting for point 9, which nothing will signal, is refused. */
	struct drm_amdgpu_cs_chunk_syncobj wait9 = { .handle = tl, .point = 9 };
	struct drm_amdgpu_cs_chunk wchunk = {
		AMDGPU_CHUNK_ID_SYNCOBJ_TIMELINE_WAIT, sizeof(wait9) / 4,
		(uintptr_t)&wait9,
	};
	sim_sdma_fill(&ib, b.va, 0, 4096);
	CHECK(sim_submit_chunks(gpu, &ib, &b.handle, 1, &wchunk, 1, NULL) == -EINVAL,
	      "wait on an unsubmitted point");
	CHECK(all_bytes(b.cpu, 0x24, 4096), "the refused job did not run");
	drmSyncobjDestroy(gpu->fd, bin);
	drmSyncobjDestroy(gpu->fd, tl);
	sim_ib_fini(&ib);
	sim_buf_free(&b);
}

static int
ctx_op(struct sim_gpu *gpu, uint32_t op, uint32_t ctx_id, uint32_t flags,
       union drm_amdgpu_ctx *out)
{
	union drm_amdgpu_ctx args = {
		.in = { .op = op, .ctx_id = ctx_id, .flags = flags },
	};
	int r = drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_CTX, &args) ? -errno : 0;

	if (out)
		*out = args;
	return r;
}

static int
gem_create(struct sim_gpu *gpu, uint64_t size, uint32_t domain,
	   uint64_t flags, uint32_t *handle)
{
	union drm_amdgpu_gem_create args = {
		.in = { .bo_size = size, .domains = domain, .domain_flags = flags },
	};

	if (drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_CREATE, &args))
		return -errno;
	*handle = args.out.handle;
	return 0;
}

/*
 * What Linux 6.12's amdgpu answers, where the simulator once differed:
 * four compute rings, the stable pstate kept and checked, flags refused
 * where the context ioctl takes none, GDS/GWS/OA BOs.
 */
static void
test_uapi_6_12(struct sim_gpu *gpu)
{
	struct drm_amdgpu_info_hw_ip ip;
	struct drm_amdgpu_info_gds gds;
	union drm_amdgpu_ctx out;
	uint32_t other, h;
	struct sim_buf b;
	struct sim_ib ib;

	/* every compute ring AMDGPU_INFO_HW_IP_INFO reports takes work */
	CHECK(!amdgpu_query_hw_ip_info(gpu->dev, AMDGPU_HW_IP_COMPUTE, 0, &ip),
	      "hw ip info");
	CHECK(ip.available_rings == 0xf, "compute rings 0x%x", ip.available_rings);
	CHECK(!sim_buf_gtt(gpu, 4096, &b) && !sim_ib_init(gpu, &ib), "buffers");
	ib.ip_type = AMDGPU_HW_IP_COMPUTE;
	for (uint32_t ring = 0; ring < 5; ring++) {
		int r;

		memset(b.cpu, 0, 4);
		ib.ring = ring;
		/* WRITE_DATA, dst_sel 5 (memory): the ring number + 1 */
		ib.dw[ib.n++] = PKT3(0x37, 4 + 1 - 2);
		ib.dw[ib.n++] = 5 << 8;
		ib.dw[ib.n++] = (uint32_t)b.va;
		ib.dw[ib.n++] = b.va >> 32;
		ib.dw[ib.n++] = ring + 1;
		r = sim_submit(gpu, &ib, &b.handle, 1, true, NULL);
		if (ring < 4)
			CHECK(!r && *(uint32_t *)b.cpu == ring + 1,
			      "compute ring %u: %d, wrote %u", ring, r,
			      *(uint32_t *)b.cpu);
		else
			CHECK(r == -EINVAL, "compute ring 4: %d", r);
	}
	ib.ring = 0;
	sim_ib_fini(&ib);
	sim_buf_free(&b);

	/* the stable pstate: kept, checked, one context at a time */
	CHECK(!ctx_op(gpu, AMDGPU_CTX_OP_ALLOC_CTX, 0, 0, &out), "alloc");
	other = out.out.alloc.ctx_id;
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_ALLOC_CTX, 0, 1, NULL) == -EINVAL,
	      "alloc with flags");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_QUERY_STATE2, other, 1, NULL) == -EINVAL,
	      "query with flags");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_GET_STABLE_PSTATE, other, 0, &out) == 0 &&
	      out.out.pstate.flags == AMDGPU_CTX_STABLE_PSTATE_NONE, "pstate NONE");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_SET_STABLE_PSTATE, other,
		     AMDGPU_CTX_STABLE_PSTATE_PEAK + 1, NULL) == -EINVAL,
	      "pstate past PEAK");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_SET_STABLE_PSTATE, other,
		     AMDGPU_CTX_STABLE_PSTATE_PEAK, NULL) == 0, "set PEAK");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_GET_STABLE_PSTATE, other, 0, &out) == 0 &&
	      out.out.pstate.flags == AMDGPU_CTX_STABLE_PSTATE_PEAK,
	      "PEAK reads back: %u", out.out.pstate.flags);
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_GET_STABLE_PSTATE, other, 1, NULL) ==
	      -EINVAL, "get with flags");
	CHECK(amdgpu_cs_ctx_stable_pstate(gpu->ctx, AMDGPU_CTX_OP_SET_STABLE_PSTATE,
					  AMDGPU_CTX_STABLE_PSTATE_STANDARD,
					  NULL) == -EBUSY,
	      "a second context forcing the level");
	CHECK(ctx_op(gpu, AMDGPU_CTX_OP_FREE_CTX, other, 0, NULL) == 0, "free");
	{
		uint32_t level = ~0u;

		CHECK(!amdgpu_cs_ctx_stable_pstate(gpu->ctx,
						   AMDGPU_CTX_OP_GET_STABLE_PSTATE,
						   0, &level) &&
		      level == AMDGPU_CTX_STABLE_PSTATE_NONE,
		      "the level came back with its context: %u", level);
	}

	/* GDS, GWS and OA, within what AMDGPU_INFO_GDS_CONFIG says */
	CHECK(!amdgpu_query_info(gpu->dev, AMDGPU_INFO_GDS_CONFIG, sizeof(gds),
				 &gds) &&
	      gds.gds_total_size == 64 * 1024 &&
	      gds.gws_per_compute_partition == 64 &&
	      gds.oa_per_compute_partition == 16, "gds config");
	CHECK(!gem_create(gpu, 256, AMDGPU_GEM_DOMAIN_GDS, 0, &h), "GDS BO");
	{
		union drm_amdgpu_gem_mmap m = { .in.handle = h };

		CHECK(drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_MMAP, &m) && errno == EPERM,
		      "no CPU mapping of GDS");
		drmCloseBufferHandle(gpu->fd, h);
	}
	CHECK(!gem_create(gpu, 1, AMDGPU_GEM_DOMAIN_GWS, 0, &h), "GWS BO");
	drmCloseBufferHandle(gpu->fd, h);
	CHECK(!gem_create(gpu, 1, AMDGPU_GEM_DOMAIN_OA, 0, &h), "OA BO");
	drmCloseBufferHandle(gpu->fd, h);
	CHECK(gem_create(gpu, 64 * 1024 + 1, AMDGPU_GEM_DOMAIN_GDS, 0, &h) ==
	      -ENOMEM, "GDS bigger than the chip's");
	CHECK(gem_create(gpu, 17, AMDGPU_GEM_DOMAIN_OA, 0, &h) == -ENOMEM,
	      "OA bigger than the chip's");
	CHECK(gem_create(gpu, 256, AMDGPU_GEM_DOMAIN_GDS,
			 AMDGPU_GEM_CREATE_VM_ALWAYS_VALID, &h) == -EINVAL,
	      "per-VM GDS");
}

/* A forked child's exit must not write the simulator's counters. */
static void
test_stats_not_from_children(void)
{
	char path[] = "/tmp/sim-stats-XXXXXX";
	int fd = mkstemp(path), status;
	pid_t pid;
	struct stat st;

	CHECK(fd >= 0, "mkstemp");
	close(fd);
	unlink(path);
	setenv("AMDGPU_SIM_STATS", path, 1);
	pid = fork();
	if (pid == 0)
		exit(0);	/* runs the atexit handlers */
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid, "fork");
	CHECK(stat(path, &st) != 0, "a child wrote %s", path);
	unlink(path);
	unsetenv("AMDGPU_SIM_STATS");
}

int
main(void)
{
	struct sim_gpu gpu;
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = sim_gpu_open(&gpu);

	if (r) {
		printf("FAIL: cannot open the simulated amdgpu: %s\n", strerror(-r));
		return 1;
	}
	test_device(&gpu);
	test_fill_gtt(&gpu);
	test_userptr_both_ways(&gpu);
	test_userptr_remap(&gpu);
	test_userptr_invalidate_waits(&gpu);
	test_readonly_and_faults(&gpu);
	test_pm4(&gpu);
	test_userptr_fixed_and_mremap(&gpu);
	test_bad_input(&gpu);
	test_prime_and_syncobj(&gpu);
	test_cs_syncobj_chunks(&gpu);
	test_sync_file_poll(&gpu);
	test_bo_outlives_its_file(&gpu);
	test_va_replace_clear(&gpu);
	test_fence_numbers(&gpu);
	test_uapi_6_12(&gpu);
	test_stats_not_from_children();
	sim_gpu_close(&gpu);

	/* Everything closed: nothing of any test is left in the simulator. */
	struct amdgpu_sim_stats end;
	char left[128];

	sim_settled_stats(amdgpu_sim_get_stats, &end);
	CHECK(sim_nothing_alive(&end, left, sizeof(left)), "left behind: %s", left);
	printf("%s: %d failure(s)\n", test_failures ? "FAIL" : "PASS", test_failures);
	return test_failures ? 1 : 0;
}
