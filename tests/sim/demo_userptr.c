/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The end-to-end demo as far as the chain exists: a process hands its own
 * malloc'd buffer to the (simulated) AMD GPU as a userptr BO, the GPU fills
 * part of it and copies a GTT buffer into the rest, the CPU reads the
 * result in place; then the process frees the range and maps new memory at
 * the same address, and the GPU sees the new pages, never the old ones.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "amdgpu_sim_stats.h"
#include "sim_util.h"

#define SIZE (1u << 20)

static int
expect(const char *what, const uint8_t *p, uint8_t v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != v) {
			printf("  %-52s FAILED at byte %zu: 0x%02x, want 0x%02x\n",
			       what, i, p[i], v);
			return 1;
		}
	}
	printf("  %-52s ok (%zu bytes of 0x%02x)\n", what, n, v);
	return 0;
}

int
main(void)
{
	struct amdgpu_sim_stats s;
	struct sim_gpu gpu;
	struct sim_buf up, gtt;
	struct sim_ib ib;
	int bad = 0;
	uint8_t *mem;

	if (sim_gpu_open(&gpu)) {
		printf("cannot open the simulated amdgpu\n");
		return 1;
	}
	printf("GPU: simulated amdgpu, DRM %u.%u (Linux 6.12)\n", gpu.drm_major,
	       gpu.drm_minor);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(mem, 0xee, SIZE);
	if (sim_buf_userptr(&gpu, mem, SIZE, AMDGPU_GEM_USERPTR_REGISTER |
			    AMDGPU_GEM_USERPTR_VALIDATE, &up) ||
	    sim_buf_gtt(&gpu, SIZE, &gtt) || sim_ib_init(&gpu, &ib)) {
		printf("setup failed\n");
		return 1;
	}
	printf("user buffer %p (%u KiB) is GPU VA 0x%llx, zero-copy\n",
	       (void *)mem, SIZE >> 10, (unsigned long long)up.va);

	memset(gtt.cpu, 0x5c, SIZE);
	sim_sdma_fill(&ib, up.va, 0xabababab, SIZE / 2);
	sim_sdma_copy(&ib, up.va + SIZE / 2, gtt.va, SIZE / 2);
	bad |= sim_submit(&gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL) != 0;
	printf("SDMA fill + copy into the user buffer:\n");
	bad |= expect("first half: filled by the GPU", mem, 0xab, SIZE / 2);
	bad |= expect("second half: copied from a GTT BO", mem + SIZE / 2, 0x5c,
		      SIZE / 2);

	munmap(mem, SIZE);
	uint8_t *again = mmap(mem, SIZE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			      -1, 0);
	memset(again, 0x17, SIZE);
	sim_sdma_copy(&ib, gtt.va, up.va, SIZE);
	bad |= sim_submit(&gpu, &ib, (uint32_t[]){ up.handle, gtt.handle }, 2,
			  true, NULL) != 0;
	printf("munmap + new pages at the same address, GPU copies them out:\n");
	bad |= expect("GPU read the new pages", gtt.cpu, 0x17, SIZE);

	amdgpu_sim_get_stats(&s);
	printf("GPU counters: %llu jobs, %llu bytes moved, %llu invalidations, "
	       "%llu revalidations, %llu faults\n",
	       (unsigned long long)s.jobs_completed,
	       (unsigned long long)s.bytes_moved,
	       (unsigned long long)s.userptr_invalidations,
	       (unsigned long long)s.userptr_revalidations,
	       (unsigned long long)s.gpu_faults);
	sim_ib_fini(&ib);
	sim_buf_free(&gtt);
	sim_buf_free(&up);
	sim_gpu_close(&gpu);
	munmap(again, SIZE);
	printf("%s\n", bad ? "DEMO FAILED" : "demo ok");
	return bad;
}
