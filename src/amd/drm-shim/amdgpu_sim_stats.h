/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Counters of the simulated amdgpu, for tests and benchmarks.  A process
 * that has the simulator preloaded finds amdgpu_sim_get_stats() with
 * dlsym(RTLD_DEFAULT, ...); with AMDGPU_SIM_STATS=path set, the counters
 * are also written to that file, one "name value" per line, at exit.
 */
#ifndef AMDGPU_SIM_STATS_H
#define AMDGPU_SIM_STATS_H

#include <stdint.h>

struct amdgpu_sim_stats {
	uint64_t submissions;		/* accepted CS ioctls */
	uint64_t jobs_completed;
	uint64_t packets;		/* executed SDMA and PM4 packets */
	uint64_t bytes_moved;		/* written by copy, fill and write */
	uint64_t gpu_faults;		/* accesses to unmapped/forbidden VA */
	uint64_t bad_packets;		/* unknown or malformed packets */
	uint64_t userptr_invalidations;	/* notifier callbacks that hit a BO */
	uint64_t userptr_revalidations;	/* invalid userptrs made valid by CS */
	uint64_t invalidation_waits;	/* invalidations that waited for jobs */
	uint64_t last_fault_va;
	/* gauges: what is alive now (leak checks) */
	uint64_t live_bos;		/* GEM and userptr BOs */
	uint64_t live_userptrs;		/* registered interval notifiers */
	uint64_t live_files;		/* open DRM files with simulator state */
	uint64_t live_contexts;		/* amdgpu contexts */
	uint64_t live_bos_of_closed_files;	/* BOs that outlive the file
						 * that created them */
	uint64_t live_jobs;		/* submitted jobs not yet freed: each
					 * holds its BOs until then */
};

typedef void (*amdgpu_sim_get_stats_t)(struct amdgpu_sim_stats *out);

void amdgpu_sim_get_stats(struct amdgpu_sim_stats *out);

#endif /* AMDGPU_SIM_STATS_H */
