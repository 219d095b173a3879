/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Linked only against libdrm/libdrm_amdgpu and run with the simulator in
 * LD_PRELOAD, as QEMU or any host process will be: libdrm's own device
 * discovery finds the render node, and an SDMA fill lands in a user buffer.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xf86drm.h>

#include "amdgpu_sim_stats.h"
#include "sim_util.h"

int
main(void)
{
	amdgpu_sim_get_stats_t get_stats =
		(amdgpu_sim_get_stats_t)dlsym(RTLD_DEFAULT, "amdgpu_sim_get_stats");
	struct amdgpu_sim_stats st;
	struct sim_gpu gpu;
	struct sim_buf up;
	struct sim_ib ib;
	drmDevicePtr devs[8];
	int n, fd, bad = 0;
	uint8_t *mem;

	if (!get_stats) {
		printf("FAIL: the simulator is not preloaded\n");
		return 1;
	}
	/* What virglrenderer does to find its render node. */
	fd = drmOpenWithType("amdgpu", NULL, DRM_NODE_RENDER);
	n = drmGetDevices2(0, devs, 8);
	if (fd < 0 || n < 1 || devs[0]->bustype != DRM_BUS_PCI ||
	    devs[0]->deviceinfo.pci->vendor_id != 0x1002) {
		printf("FAIL: libdrm device discovery (fd %d, %d devices)\n", fd, n);
		return 1;
	}
	drmFreeDevices(devs, n);
	drmClose(fd);

	if (sim_gpu_open(&gpu) || sim_ib_init(&gpu, &ib) ||
	    posix_memalign((void **)&mem, 4096, 65536)) {
		printf("FAIL: device init\n");
		return 1;
	}
	memset(mem, 0, 65536);
	if (sim_buf_userptr(&gpu, mem, 65536, AMDGPU_GEM_USERPTR_REGISTER |
			    AMDGPU_GEM_USERPTR_VALIDATE, &up)) {
		printf("FAIL: userptr\n");
		return 1;
	}
	sim_sdma_fill(&ib, up.va, 0x61616161, 65536);
	bad |= sim_submit(&gpu, &ib, &up.handle, 1, true, NULL) != 0;
	for (int i = 0; i < 65536; i++)
		bad |= mem[i] != 0x61;
	get_stats(&st);
	bad |= st.bytes_moved != 65536;
	sim_buf_free(&up);
	sim_ib_fini(&ib);
	sim_gpu_close(&gpu);
	free(mem);
	printf("%s: preloaded simulator, %llu bytes moved into a user buffer\n",
	       bad ? "FAIL" : "PASS", (unsigned long long)st.bytes_moved);
	return bad;
}
