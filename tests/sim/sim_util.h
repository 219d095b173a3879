/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Helpers for programs that drive the simulated amdgpu through Debian's
 * libdrm_amdgpu: open the device, map BOs in the GPU VM, build SDMA
 * packets and submit them.
 */
#ifndef SIM_UTIL_H
#define SIM_UTIL_H

#include <amdgpu.h>
#include <amdgpu_drm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "amdgpu_sim_stats.h"

struct sim_gpu {
	int fd;
	amdgpu_device_handle dev;
	amdgpu_context_handle ctx;
	uint32_t drm_major, drm_minor;
	uint32_t last_ip;	/* IP and ring of the last submission */
	uint32_t last_ring;
};

struct sim_buf {
	amdgpu_bo_handle bo;	/* NULL for userptr: libdrm cannot import one */
	uint32_t handle;	/* GEM handle */
	int fd;
	amdgpu_va_handle va_handle;
	uint64_t va;
	uint64_t size;
	void *cpu;		/* NULL for userptr and unmapped BOs */
};

struct sim_ib {
	uint32_t ip_type;	/* AMDGPU_HW_IP_DMA unless set */
	uint32_t ring;		/* 0 unless set */
	struct sim_buf buf;
	uint32_t *dw;
	unsigned n;
};

int sim_gpu_open(struct sim_gpu *gpu);
void sim_gpu_close(struct sim_gpu *gpu);
int sim_buf_gtt(struct sim_gpu *gpu, uint64_t size, struct sim_buf *buf);
/* Raw GEM_USERPTR (flags as the caller wants), mapped at a fresh VA. */
int sim_buf_userptr(struct sim_gpu *gpu, void *ptr, uint64_t size,
		    uint32_t flags, struct sim_buf *buf);
void sim_buf_free(struct sim_buf *buf);
int sim_ib_init(struct sim_gpu *gpu, struct sim_ib *ib);
void sim_ib_fini(struct sim_ib *ib);
void sim_sdma_copy(struct sim_ib *ib, uint64_t dst, uint64_t src,
		   uint64_t bytes);
void sim_sdma_fill(struct sim_ib *ib, uint64_t dst, uint32_t value,
		   uint64_t bytes);
void sim_sdma_write(struct sim_ib *ib, uint64_t dst, const uint32_t *data,
		    unsigned count);
/* Submits the IB on SDMA with @bos in the BO list; waits when @wait.
 * Returns 0 or the submission's (negative) error, e.g. -EFAULT. */
int sim_submit(struct sim_gpu *gpu, struct sim_ib *ib,
	       const uint32_t *handles, unsigned num_handles, bool wait,
	       uint64_t *seq_out);
/* The same with more chunks after the IB (syncobjs, dependencies...). */
int sim_submit_chunks(struct sim_gpu *gpu, struct sim_ib *ib,
		      const uint32_t *handles, unsigned num_handles,
		      const struct drm_amdgpu_cs_chunk *extra, unsigned num_extra,
		      uint64_t *seq_out);
int sim_fence_wait(struct sim_gpu *gpu, uint64_t seq, uint64_t timeout_ns,
		   bool *signaled);

/* What @s says is still alive in the simulator, as "N BOs, N userptrs,
 * N files, N contexts" in @buf; true when nothing is (a leak check at the
 * end of a test). */
static inline bool
sim_nothing_alive(const struct amdgpu_sim_stats *s, char *buf, size_t len)
{
	snprintf(buf, len, "%llu BOs, %llu userptrs, %llu files, %llu contexts, %llu jobs",
		 (unsigned long long)s->live_bos, (unsigned long long)s->live_userptrs,
		 (unsigned long long)s->live_files, (unsigned long long)s->live_contexts,
		 (unsigned long long)s->live_jobs);
	return !s->live_bos && !s->live_userptrs && !s->live_files && !s->live_contexts &&
	       !s->live_bos_of_closed_files && !s->live_jobs;
}

/* Polls the simulator's counters into @s until @done(@s) holds (true) or
 * 2 s have passed (false). */
static inline bool
sim_wait_stats(void (*get)(struct amdgpu_sim_stats *), struct amdgpu_sim_stats *s,
	       bool (*done)(const struct amdgpu_sim_stats *))
{
	for (int i = 0; i < 2000; i++) {
		get(s);
		if (done(s))
			return true;
		usleep(1000);
	}
	return false;
}

static inline bool
sim_no_live_jobs(const struct amdgpu_sim_stats *s)
{
	return !s->live_jobs;
}

static inline bool
sim_all_gone(const struct amdgpu_sim_stats *s)
{
	char ignored[160];

	return sim_nothing_alive(s, ignored, sizeof(ignored));
}

/* The counters once every submitted job has been freed: the GPU thread
 * drops a job's BO references just after it signals the job's fence (as
 * drm_sched's free_job does), so a test that has waited for its last
 * fence may still see that job's BOs for a moment.  A baseline for BO
 * counts is taken with this.  False if a job is still alive after 2 s. */
static inline bool
sim_idle_stats(void (*get)(struct amdgpu_sim_stats *), struct amdgpu_sim_stats *s)
{
	return sim_wait_stats(get, s, sim_no_live_jobs);
}

/* The counters once nothing is alive, or after 2 s: the final leak check
 * of a test (the caller checks sim_nothing_alive on them). */
static inline void
sim_settled_stats(void (*get)(struct amdgpu_sim_stats *), struct amdgpu_sim_stats *s)
{
	sim_wait_stats(get, s, sim_all_gone);
}

#endif /* SIM_UTIL_H */
