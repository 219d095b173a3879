/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The simulated amdgpu must never be the bottleneck.  Measured in one run:
 *   - SDMA copy GTT -> userptr bandwidth, as a ratio of plain memcpy;
 *   - a no-op submission round trip (submit + wait), the baseline of
 *   - a userptr invalidation (munmap + new mapping) plus the revalidating
 *     submission, as a ratio of that round trip.
 * Prints numbers and ratios; asserts nothing about time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sim_util.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
main(void)
{
	const size_t size = 64u << 20;
	const int reps = 8;
	struct sim_gpu gpu;
	struct sim_buf gtt, up;
	struct sim_ib ib;
	double t, memcpy_s = 1e9, gpu_s = 1e9, nop_s, inval_s;
	uint8_t *mem, *src;

	if (sim_gpu_open(&gpu) || sim_buf_gtt(&gpu, size, &gtt) ||
	    sim_ib_init(&gpu, &ib)) {
		printf("FAIL: cannot set up the simulated amdgpu\n");
		return 1;
	}
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src = malloc(size);
	memset(mem, 1, size);
	memset(src, 2, size);
	memset(gtt.cpu, 3, size);
	if (sim_buf_userptr(&gpu, mem, size, AMDGPU_GEM_USERPTR_REGISTER |
			    AMDGPU_GEM_USERPTR_VALIDATE, &up)) {
		printf("FAIL: userptr\n");
		return 1;
	}

	for (int i = 0; i < reps; i++) {
		t = now();
		memcpy(mem, src, size);
		t = now() - t;
		memcpy_s = t < memcpy_s ? t : memcpy_s;

		sim_sdma_copy(&ib, up.va, gtt.va, size);
		t = now();
		if (sim_submit(&gpu, &ib, (uint32_t[]){ up.handle, gtt.handle },
			       2, true, NULL)) {
			printf("FAIL: copy\n");
			return 1;
		}
		t = now() - t;
		gpu_s = t < gpu_s ? t : gpu_s;
	}
	if (mem[size - 1] != 3) {
		printf("FAIL: the copy did not land\n");
		return 1;
	}

	/* No-op round trip: one SDMA NOP, submit and wait. */
	const int rounds = 2000;
	t = now();
	for (int i = 0; i < rounds; i++) {
		ib.dw[ib.n++] = 0;	/* SDMA NOP */
		sim_submit(&gpu, &ib, NULL, 0, true, NULL);
	}
	nop_s = (now() - t) / rounds;

	/* Invalidate (munmap + remap at the same address) + revalidate. */
	const int inval_rounds = 200;
	t = now();
	for (int i = 0; i < inval_rounds; i++) {
		munmap(mem, size);
		mmap(mem, size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		ib.dw[ib.n++] = 0;
		if (sim_submit(&gpu, &ib, &up.handle, 1, true, NULL)) {
			printf("FAIL: revalidating submission\n");
			return 1;
		}
	}
	inval_s = (now() - t) / inval_rounds;

	printf("memcpy                %8.2f GB/s (baseline)\n",
	       size / memcpy_s / 1e9);
	printf("SDMA copy to userptr  %8.2f GB/s  ratio %.2f of memcpy\n",
	       size / gpu_s / 1e9, memcpy_s / gpu_s);
	printf("no-op CS round trip   %8.1f us (baseline)\n", nop_s * 1e6);
	printf("invalidate+revalidate %8.1f us  ratio %.1f x no-op round trip\n",
	       inval_s * 1e6, inval_s / nop_s);

	sim_buf_free(&up);
	sim_buf_free(&gtt);
	sim_ib_fini(&ib);
	sim_gpu_close(&gpu);
	munmap(mem, size);
	free(src);
	return 0;
}
