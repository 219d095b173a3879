/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Issue 8's first milestone in the VM rig (tests/rig/run-vm, docs/rig.md,
 * phase mesa-upstream): the guest's Mesa is upstream Mesa 25.0.7 with no
 * series patch, built with -Damdgpu-virtio=true and assertions on
 * (GUEST_MESA_SRC=upstream tests/rig/build-guest-mesa), linked statically.
 * Only API that 25.0.7 has, in the order radeonsi's amdgpu winsys calls it:
 *
 *   ac_drm_device_initialize(virtio-gpu fd, is_virtio = true)   ac-drm-init
 *   what libvdrm and libamd_common each think struct vdrm_device is
 *                                                               vdrm-layout
 *   ac_query_gpu_info                                           gpu-info
 *   ac_drm_cs_ctx_create2, a 4 KiB GTT IB BO                    context
 *   ac_drm_bo_alloc (64 KiB GTT) + ac_drm_bo_cpu_map, VA from the device's
 *   VA manager, ac_drm_bo_export(kms), ac_drm_bo_va_op_raw(MAP) gtt-bo
 *   one SDMA IB (fill + copy) via ac_drm_cs_submit_raw2, syncobj wait,
 *   fence status, every dword checked through the CPU mapping    sdma
 *   UNMAP, ac_drm_va_range_free, ac_drm_bo_free                 bo-free
 *   ac_drm_cs_query_reset_state2                                context-healthy
 *   ac_drm_cs_ctx_free, ac_drm_device_deinitialize              teardown
 *
 * Mesa 25.0.7 compiles libvdrm without -DENABLE_DRM_AMDGPU and the AMD
 * native context (libamd_common) with it, and drm_hw.h sizes the DRM capset
 * by that define: check vdrm-layout reads struct vdrm_device both ways
 * (this file is compiled with the define, as libamd_common; the layout
 * without it is declared below) and says which one libvdrm wrote.  The
 * Mesa calls run in a child process, so that a crash or an assert inside
 * Mesa is reported as a FAIL of the check that was running, with the
 * layout verdict, instead of ending the program.
 *
 * Prints PASS/FAIL rig: lines and "STATS name value" lines (what the
 * simulator must have counted; run-vm sums them over the boot).  Exit
 * status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xf86drm.h>

#include "drm-uapi/virtgpu_drm.h"
#include "ac_gpu_info.h"
#include "ac_linux_drm.h"
#include "sid.h"
#include "virtio/amdgpu_virtio_private.h"

#include "rig_report.h"

#define KIB 1024u
#define SIZE (64 * KIB)
#define FILL 0xfeedc0deu
#define TIMEOUT_NS 10000000000ull

/* The head of struct vdrm_device as a file compiled without
 * ENABLE_DRM_AMDGPU sees it: drm_hw.h then leaves alignments and gpu_info
 * out of the amdgpu capset. */
struct capset_drm_no_amdgpu {
	uint32_t wire_format_version, version_major, version_minor,
		 version_patchlevel, context_type, pad;
	union {
		uint64_t msm[7];
		struct {
			uint32_t address32_hi, __pad;
			char marketing_name[128];
		} amdgpu;
	} u;
};
struct vdrm_device_head_no_amdgpu {
	const void *funcs;
	struct capset_drm_no_amdgpu caps;
	bool supports_cross_device;
	struct vdrm_shmem *shmem;
	uint8_t *rsp_mem;
};
_Static_assert(sizeof(struct capset_drm_no_amdgpu) == 160, "drm_hw.h's capset without the define");

/* Shared with the child: what it is doing, what it found, what the
 * simulator must have counted. */
static struct shared {
	char check[32], call[64];
	int layout;		/* 0 not probed, 1 one layout, 2 split, 3 neither */
	void *amd_shmem;	/* vdrm_device.shmem as libamd_common reads it */
	char why[160];
	unsigned long long bytes_moved, submissions;
	int failures;
} *sh;

/* Mesa 25.0.7 as Mesa builds it has the vdrm layout split (fixed by
 * patches/0001): the program built for phase mesa-upstream expects to
 * find it, and the crash it causes; the _workaround build expects neither. */
static bool expect_split;



/* A PASS line in rig_fail()'s shape: "name (details)". */
static void
pass_named(const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("PASS rig: %s (", name);
	vprintf(fmt, ap);
	printf(")\n");
	va_end(ap);
}

/* s for a log line: non-printable bytes as '?' (at most 32). */
static const char *
printable(const char *s)
{
	static char out[33];
	unsigned i;

	if (!s)
		return "(none)";
	for (i = 0; i < 32 && s[i]; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = 0;
	return out;
}

/* The check and the Mesa call about to run (for the parent, if we die). */
static void
at(const char *check, const char *call)
{
	snprintf(sh->check, sizeof(sh->check), "%s", check);
	snprintf(sh->call, sizeof(sh->call), "%s", call);
}

static uint32_t
pattern(unsigned i)
{
	return 0x2545f491u * (i + 7) ^ 0x51ed27a3u;
}

struct bo {
	ac_drm_bo bo;
	uint32_t kms, *cpu;
	uint64_t va, size;
	amdgpu_va_handle vah;
};

/* GTT BO, CPU mapping, VA, MAP: amdgpu_bo_create + amdgpu_bo_from_ptr's
 * VA steps in the winsys.  Returns 0 or the failing call's result. */
static int
gtt_bo(ac_drm_device *dev, const char *check, struct bo *b, uint64_t size)
{
	struct amdgpu_bo_alloc_request req = {
		.alloc_size = size, .phys_alignment = 4096,
		.preferred_heap = AMDGPU_GEM_DOMAIN_GTT,
		.flags = AMDGPU_GEM_CREATE_CPU_GTT_USWC,
	};
	void *cpu = NULL;
	int r;

	memset(b, 0, sizeof(*b));
	b->size = size;
	at(check, "ac_drm_bo_alloc");
	if ((r = ac_drm_bo_alloc(dev, &req, &b->bo)))
		return r;
	at(check, "ac_drm_bo_cpu_map");
	if ((r = ac_drm_bo_cpu_map(dev, b->bo, &cpu)))
		return r;
	b->cpu = cpu;
	at(check, "ac_drm_va_range_alloc");
	if ((r = ac_drm_va_range_alloc(dev, amdgpu_gpu_va_range_general, size, 4096, 0,
				       &b->va, &b->vah, AMDGPU_VA_RANGE_HIGH)))
		return r;
	at(check, "ac_drm_bo_export(kms)");
	if ((r = ac_drm_bo_export(dev, b->bo, amdgpu_bo_handle_type_kms, &b->kms)))
		return r;
	at(check, "ac_drm_bo_va_op_raw(MAP)");
	return ac_drm_bo_va_op_raw(dev, b->kms, 0, size, b->va,
				   AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE |
				   AMDGPU_VM_PAGE_EXECUTABLE, AMDGPU_VA_OP_MAP);
}

static int
free_bo(ac_drm_device *dev, const char *check, struct bo *b)
{
	int r;

	at(check, "ac_drm_bo_va_op_raw(UNMAP)");
	if ((r = ac_drm_bo_va_op_raw(dev, b->kms, 0, b->size, b->va, 0, AMDGPU_VA_OP_UNMAP)))
		return r;
	at(check, "ac_drm_va_range_free");
	if ((r = ac_drm_va_range_free(b->vah)))
		return r;
	at(check, "ac_drm_bo_free");
	return ac_drm_bo_free(dev, b->bo);
}

/* Check vdrm-layout: libvdrm wrote struct vdrm_device; read it as
 * libamd_common does (with ENABLE_DRM_AMDGPU, as this file) and as libvdrm
 * itself does (without), and compare with the capset asked directly. */
static void
probe_layout(ac_drm_device *dev, int fd)
{
	struct amdvgpu_device *adev = (struct amdvgpu_device *)ac_drm_device_get_cookie(dev);
	struct vdrm_device *amd = adev->vdev;	/* libamd_common's view */
	const struct vdrm_device_head_no_amdgpu *plain = (const void *)amd;	/* libvdrm's, unpatched */
	struct virgl_renderer_capset_drm caps = { 0 };
	struct drm_virtgpu_get_caps gc = {
		.cap_set_id = 6 /* DRM */, .addr = (uintptr_t)&caps, .size = sizeof(caps),
	};

	at("vdrm-layout", "DRM_IOCTL_VIRTGPU_GET_CAPS");
	if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_GET_CAPS, &gc)) {
		rig_fail("vdrm-layout", "GET_CAPS capset 6: %s", strerror(errno));
		return;
	}
	/* A layout holds when its capset is the host's and its rsp_mem is
	 * where vdrm_device_connect put it (shmem + the host's rsp_mem_offset).
	 * libvdrm asks GET_CAPS for sizeof(its capset) bytes: with the split
	 * that is the host's first 160 bytes, and the AMD context's view of the
	 * rest is libvdrm's fields after the capset.  A layout's pointers are
	 * followed only once its capset matched. */
	bool amd_caps = !memcmp(&amd->caps, &caps, sizeof(caps));
	bool amd_ok = amd_caps && amd->shmem &&
		      amd->rsp_mem == (uint8_t *)amd->shmem + amd->shmem->rsp_mem_offset;
	bool plain_caps = !amd_caps && !memcmp(&plain->caps, &caps, sizeof(plain->caps));
	bool plain_ok = plain_caps && plain->shmem &&
			plain->rsp_mem == (uint8_t *)plain->shmem + plain->shmem->rsp_mem_offset;
	sh->amd_shmem = amd->shmem;
	if (amd_ok && expect_split) {
		sh->layout = 1;
		rig_fail("vdrm-layout", "upstream Mesa 25.0.7 as Mesa builds it should show the "
		     "vdrm layout split, but libvdrm and libamd_common agree (built with the fix?)");
	} else if (amd_ok) {
		sh->layout = 1;
		rig_pass("vdrm-layout (libvdrm and libamd_common agree on struct vdrm_device: the "
		     "%zu-byte DRM capset as the host sent it (\"%s\"), shmem at offset %zu)",
		     sizeof(caps), caps.u.amdgpu.marketing_name, offsetof(struct vdrm_device, shmem));
	} else if (plain_ok) {
		sh->layout = 2;
		(expect_split ? pass_named : rig_fail)("vdrm-layout", "Mesa 25.0.7's layout split%s: libvdrm (built without "
		     "-DENABLE_DRM_AMDGPU) got a %zu-byte DRM capset (the host's first %zu bytes) "
		     "and keeps its shmem pointer at offset %zu (%p); libamd_common (built with "
		     "it) reads a %zu-byte capset from the same struct, whose bytes %zu-%zu are "
		     "libvdrm's fields and request buffer (marketing name \"%.16s\", the host's is "
		     "\"%s\"), and shmem at offset %zu: %p",
		     expect_split ? " reproduced, as expected of upstream (patches/0001 "
				    "fixes it: phase mesa-upstream-workaround)" : "",
		     sizeof(plain->caps), sizeof(plain->caps),
		     offsetof(struct vdrm_device_head_no_amdgpu, shmem), (void *)plain->shmem,
		     sizeof(caps), sizeof(plain->caps), sizeof(caps) - 1,
		     printable(amd->caps.u.amdgpu.marketing_name), caps.u.amdgpu.marketing_name,
		     offsetof(struct vdrm_device, shmem), (void *)amd->shmem);
	} else {
		sh->layout = 3;
		rig_fail("vdrm-layout", "struct vdrm_device matches neither layout: the capset %s "
		     "the host's in the AMD layout%s, shmem %p", amd_caps ? "equals" : "differs from",
		     plain_caps ? ", its first 160 bytes match" : "", (void *)amd->shmem);
	}
}

/* What the parent adds to a FAIL: the layout verdict. */
static const char *
cause(void)
{
	switch (sh->layout) {
	case 1: return "not the vdrm layout split (check vdrm-layout passed)";
	case 2:
		snprintf(sh->why, sizeof(sh->why), "caused by the vdrm layout split (check "
			 "vdrm-layout): the AMD native context's vdrm_device.shmem is %p",
			 sh->amd_shmem);
		return sh->why;
	case 3: return "vdrm-layout failed, but not as the known split";
	default: return "vdrm layout not probed";
	}
}

static int64_t
deadline(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec + (int64_t)TIMEOUT_NS;
}

static void
run(void)
{
	struct radeon_info info = { 0 };
	uint32_t major = 0, minor = 0, ctx = 0, syncobj = 0, expired = 0;
	ac_drm_device *dev = NULL;
	struct bo ib, a;
	uint64_t seq = 0, flags = 0;
	drmVersionPtr v;
	unsigned n = 0;
	int fd, r;

	at("ac-drm-init", "open /dev/dri/renderD128");
	fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	v = fd < 0 ? NULL : drmGetVersion(fd);
	if (!v || strcmp(v->name, "virtio_gpu")) {
		rig_fail("ac-drm-init", "/dev/dri/renderD128: %s", fd < 0 ? strerror(errno) :
		     v ? "not virtio_gpu" : "no DRM version");
		return;
	}
	drmFreeVersion(v);
	at("ac-drm-init", "ac_drm_device_initialize");
	if ((r = ac_drm_device_initialize(fd, true, &major, &minor, &dev))) {
		rig_fail("ac-drm-init", "ac_drm_device_initialize(virtio) = %d", r);
		return;
	}
	rig_pass("ac-drm-init (ac_drm_device_initialize on the virtio-gpu fd: AMD native context, "
	     "host DRM %u.%u)", major, minor);

	probe_layout(dev, fd);

	/* radeonsi's do_winsys_init: DRM version and is_virtio, then the query. */
	info.drm_major = major;
	info.drm_minor = minor;
	info.is_virtio = true;
	at("gpu-info", "ac_query_gpu_info");
	if (ac_query_gpu_info(fd, dev, &info, false) != AC_QUERY_GPU_INFO_SUCCESS) {
		rig_fail("gpu-info", "ac_query_gpu_info failed over virtio (%s)", cause());
		return;
	}
	rig_pass("gpu-info (ac_query_gpu_info: %s \"%s\", family %u, %u CUs, %u-bit memory bus, "
	     "gart page %u, has_userptr %d as 25.0.7 sets it for virtio)", info.name,
	     printable(info.marketing_name), info.family, info.num_cu, info.memory_bus_width,
	     info.gart_page_size, info.has_userptr);

	at("context", "ac_drm_cs_ctx_create2");
	if ((r = ac_drm_cs_ctx_create2(dev, AMDGPU_CTX_PRIORITY_NORMAL, &ctx))) {
		rig_fail("context", "ac_drm_cs_ctx_create2 = %d (%s)", r, cause());
		return;
	}
	if ((r = gtt_bo(dev, "context", &ib, 4 * KIB))) {
		rig_fail("context", "IB BO: %s = %d (%s)", sh->call, r, cause());
		return;
	}
	rig_pass("context (ac_drm_cs_ctx_create2: ctx %u; 4 KiB GTT IB BO, kms handle %u at 0x%llx)",
	     ctx, ib.kms, (unsigned long long)ib.va);

	if ((r = gtt_bo(dev, "gtt-bo", &a, SIZE))) {
		rig_fail("gtt-bo", "%s = %d (%s)", sh->call, r, cause());
		return;
	}
	for (unsigned i = 0; i < SIZE / 4; i++)
		a.cpu[i] = pattern(i);
	rig_pass("gtt-bo (ac_drm_bo_alloc: 64 KiB GTT, kms handle %u, CPU mapping, VA 0x%llx from "
	     "the device's VA manager, BO_VA_OP MAP)", a.kms, (unsigned long long)a.va);

	/* One SDMA IB in Mesa's encoding (sid.h): fill A's upper half, copy its
	 * first quarter to its second; NOPs to 8 dwords. */
	ib.cpu[n++] = SDMA_PACKET(SDMA_OPCODE_CONSTANT_FILL, 0, 0) | 2u << 30;
	ib.cpu[n++] = (uint32_t)(a.va + SIZE / 2);
	ib.cpu[n++] = (uint32_t)((a.va + SIZE / 2) >> 32);
	ib.cpu[n++] = FILL;
	ib.cpu[n++] = SIZE / 2 - 1;
	ib.cpu[n++] = SDMA_PACKET(SDMA_OPCODE_COPY, SDMA_COPY_SUB_OPCODE_LINEAR, 0);
	ib.cpu[n++] = SIZE / 4 - 1;
	ib.cpu[n++] = 0;
	ib.cpu[n++] = (uint32_t)a.va;
	ib.cpu[n++] = (uint32_t)(a.va >> 32);
	ib.cpu[n++] = (uint32_t)(a.va + SIZE / 4);
	ib.cpu[n++] = (uint32_t)((a.va + SIZE / 4) >> 32);
	while (n & 7)
		ib.cpu[n++] = SDMA_NOP_PAD;

	struct drm_amdgpu_bo_list_entry list[2] = { { .bo_handle = ib.kms }, { .bo_handle = a.kms } };
	struct drm_amdgpu_bo_list_in list_in = {
		.operation = ~0u, .list_handle = ~0u, .bo_number = 2,
		.bo_info_size = sizeof(list[0]), .bo_info_ptr = (uintptr_t)list,
	};
	struct drm_amdgpu_cs_chunk_sem sem = { 0 };
	struct drm_amdgpu_cs_chunk_ib ibc = {
		.ip_type = AMDGPU_HW_IP_DMA, .va_start = ib.va, .ib_bytes = n * 4,
	};
	at("sdma", "ac_drm_cs_create_syncobj2");
	if ((r = ac_drm_cs_create_syncobj2(fd, 0, &syncobj))) {
		rig_fail("sdma", "ac_drm_cs_create_syncobj2 = %d (%s)", r, cause());
		return;
	}
	sem.handle = syncobj;
	struct drm_amdgpu_cs_chunk chunks[3] = {
		{ AMDGPU_CHUNK_ID_BO_HANDLES, sizeof(list_in) / 4, (uintptr_t)&list_in },
		{ AMDGPU_CHUNK_ID_SYNCOBJ_OUT, sizeof(sem) / 4, (uintptr_t)&sem },
		{ AMDGPU_CHUNK_ID_IB, sizeof(ibc) / 4, (uintptr_t)&ibc },
	};
	at("sdma", "ac_drm_cs_submit_raw2");
	if ((r = ac_drm_cs_submit_raw2(dev, ctx, 0, 3, chunks, &seq))) {
		rig_fail("sdma", "ac_drm_cs_submit_raw2 = %d (%s)", r, cause());
		return;
	}
	sh->submissions++;
	sh->bytes_moved += SIZE / 2 + SIZE / 4;
	at("sdma", "ac_drm_cs_syncobj_wait");
	if ((r = ac_drm_cs_syncobj_wait(fd, &syncobj, 1, deadline(), 0, NULL))) {
		rig_fail("sdma", "ac_drm_cs_syncobj_wait = %d (%s)", r, cause());
		return;
	}
	at("sdma", "ac_drm_cs_query_fence_status");
	r = ac_drm_cs_query_fence_status(dev, ctx, AMDGPU_HW_IP_DMA, 0, 0, seq, TIMEOUT_NS, 0,
					 &expired);
	if (r || !expired) {
		rig_fail("sdma", "ac_drm_cs_query_fence_status(seq %llu) = %d, expired %u (%s)",
		     (unsigned long long)seq, r, expired, cause());
		return;
	}
	ac_drm_cs_destroy_syncobj(fd, syncobj);
	for (unsigned i = 0; i < SIZE / 4; i++) {
		uint32_t want = i >= SIZE / 8 ? FILL : pattern(i % (SIZE / 16));

		if (a.cpu[i] != want) {
			rig_fail("sdma", "GTT BO byte %u read through its CPU mapping: 0x%08x, want 0x%08x",
			     i * 4, a.cpu[i], want);
			return;
		}
	}
	rig_pass("sdma (one IB on the SDMA ring via ac_drm_cs_submit_raw2: fill 32 KiB + copy "
	     "16 KiB; fence %llu waited (syncobj, then fence status expired); every dword "
	     "checked through the BO's CPU mapping)", (unsigned long long)seq);

	if ((r = free_bo(dev, "bo-free", &a)) || (r = free_bo(dev, "bo-free", &ib))) {
		rig_fail("bo-free", "%s = %d (%s)", sh->call, r, cause());
		return;
	}
	rig_pass("bo-free (UNMAP, ac_drm_va_range_free, ac_drm_bo_free of the GTT BO and the IB)");

	/* What the winsys asks before it trusts a context again. */
	at("context-healthy", "ac_drm_cs_query_reset_state2");
	if ((r = ac_drm_cs_query_reset_state2(dev, ctx, &flags)) || flags)
		rig_fail("context-healthy", "ac_drm_cs_query_reset_state2 = %d, flags 0x%llx (%s)", r,
		     (unsigned long long)flags, cause());
	else
		rig_pass("context-healthy (ac_drm_cs_query_reset_state2: no reset, the host's "
		     "async_error did not move)");

	at("teardown", "ac_drm_cs_ctx_free");
	if ((r = ac_drm_cs_ctx_free(dev, ctx))) {
		rig_fail("teardown", "ac_drm_cs_ctx_free = %d (%s)", r, cause());
		return;
	}
	at("teardown", "ac_drm_device_deinitialize");
	ac_drm_device_deinitialize(dev);
	close(fd);
	rig_pass("teardown (ac_drm_cs_ctx_free, ac_drm_device_deinitialize)");
	at("", "");
}

int
main(int argc, char **argv)
{
	int errp[2], status;
	char err[4096];
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	(void)argc;
	expect_split = !strstr(argv[0], "workaround");
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || pipe(errp)) {
		printf("FAIL rig: setup: %s\n", strerror(errno));
		return 1;
	}
	rig_failures = &sh->failures;	/* the checks run in a child */
	memset(sh, 0, sizeof(*sh));
	pid = fork();
	if (pid == 0) {
		/* Mesa's stderr (an assert's message) goes to the parent. */
		dup2(errp[1], 2);
		close(errp[0]);
		run();
		fflush(stdout);
		_exit(0);
	}
	close(errp[1]);
	while ((got = read(errp[0], err + len, sizeof(err) - 1 - len)) > 0)
		len += got;
	err[len] = 0;
	if (len)
		fputs(err, stderr);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		/* The last line Mesa printed, if any (an assert's message). */
		char *last = err, *nl;

		while (len && err[len - 1] == '\n')
			err[--len] = 0;
		if ((nl = strrchr(err, '\n')))
			last = nl + 1;
		char how[64];

		if (WIFSIGNALED(status))
			snprintf(how, sizeof(how), "%s", strsignal(WTERMSIG(status)));
		else
			snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
		if (expect_split && sh->layout == 2 && WIFSIGNALED(status) &&
		    !strcmp(sh->check, "context-healthy")) {
			/* The milestone's work was done and checked before this. */
			printf("PASS rig: context-healthy (upstream 25.0.7 died as expected in %s: "
			       "%s, %s; the first shmem read after the SDMA work)\n",
			       sh->call, how, cause());
		} else {
			printf("FAIL rig: %s: the process died in %s: %s%s%s; %s\n",
			       sh->check[0] ? sh->check : "exit", sh->call, how,
			       *last ? ", Mesa said: " : "", last, cause());
			(*rig_failures)++;
		}
	}
	printf("STATS bytes_moved %llu\nSTATS submissions %llu\n", sh->bytes_moved,
	       sh->submissions);
	return *rig_failures ? 1 : 0;
}
