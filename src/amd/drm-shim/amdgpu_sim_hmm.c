/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Userptr coherence, the way Linux 6.12's amdgpu_hmm.c does it: every
 * userptr BO is an interval notifier over its user range.  The process's
 * munmap, mremap, madvise(DONTNEED/FREE/REMOVE/PAGEOUT), mprotect and
 * mmap(MAP_FIXED) over the range are the notifier events: each bumps the
 * sequence, waits for the GPU work that may still use the pages (like
 * amdgpu_hmm_invalidate_gfx() waiting on the BO's fences) and only then
 * lets the call change the mapping.  A submission revalidates its invalid
 * userptr BOs as amdgpu_cs_parser_bos() does, so it sees the pages that
 * are mapped now, never the old ones.
 *
 * Not seen: changes libc makes with its internal syscalls (free() of an
 * mmap'd chunk, heap trimming).  A submission still notices that such a
 * range is gone (msync() fails) and faults instead of running; a page
 * released while a job runs on it is outside what the simulator can catch.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_sim.h"

extern _Thread_local uint64_t sim_exec_seq;

int
sim_userptr_register(struct sim_bo *bo)
{
	pthread_mutex_lock(&sim.notifier_lock);
	list_addtail(&bo->userptr_link, &sim.userptrs);
	atomic_fetch_add(&sim.num_userptrs, 1);
	pthread_mutex_unlock(&sim.notifier_lock);
	return 0;
}

void
sim_userptr_unregister(struct sim_bo *bo)
{
	pthread_mutex_lock(&sim.notifier_lock);
	if (bo->userptr_link.next) {
		list_del(&bo->userptr_link);
		atomic_fetch_sub(&sim.num_userptrs, 1);
	}
	pthread_mutex_unlock(&sim.notifier_lock);
}

/* May the GPU touch the pages?  Yes while valid, and during an
 * invalidation for the jobs the invalidation is waiting for. */
bool
sim_userptr_usable(const struct sim_bo *bo)
{
	int state = atomic_load(&bo->state);

	return state == SIM_USERPTR_VALID ||
	       (state == SIM_USERPTR_INVALIDATING &&
		sim_exec_seq <= bo->drain_seq);
}

static char *
sim_read_maps(void)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap);
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger) {
				free(buf);
				close(fd);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* What hmm_range_fault() would say about [start, start + size): -EFAULT
 * for a hole or an unreadable mapping, -EPERM for a write to a read-only
 * one; ANONONLY refuses a file-backed first VMA or one that does not cover
 * the range, as amdgpu_ttm_tt_get_user_pages() does. */
static int
sim_check_user_range(uintptr_t start, uint64_t size, bool write,
		     bool anononly)
{
	uint64_t cursor = start, end = start + size;
	char *maps = sim_read_maps(), *line, *save = NULL;
	bool first = true;
	int r = -EFAULT;

	if (!maps)
		return -ENOMEM;
	for (line = strtok_r(maps, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long lo, hi, inode;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %*s %*s %llu", &lo, &hi, perms,
			   &inode) != 4)
			continue;
		if (hi <= cursor)
			continue;
		if (lo > cursor)
			break;			/* a hole */
		if (first && anononly && (inode != 0 || hi < end)) {
			r = -EPERM;
			break;
		}
		first = false;
		if (perms[0] != 'r')
			break;
		if (write && perms[1] != 'w') {
			r = -EPERM;
			break;
		}
		cursor = hi;
		if (cursor >= end) {
			r = 0;
			break;
		}
	}
	free(maps);
	return r;
}

/* With notifier_lock held: make @bo's pages current for a submission. */
int
sim_userptr_validate_locked(struct sim_bo *bo)
{
	int r;

	if (atomic_load(&bo->state) == SIM_USERPTR_VALID) {
		/* Catch an unmap done behind our back (libc internals). */
		if (!msync((void *)bo->userptr, bo->size, MS_ASYNC))
			return 0;
		atomic_store(&bo->state, SIM_USERPTR_INVALID);
	}
	r = sim_check_user_range(bo->userptr, bo->size, !bo->readonly,
				 bo->userptr_flags & AMDGPU_GEM_USERPTR_ANONONLY);
	if (r)
		return r;
	atomic_store(&bo->state, SIM_USERPTR_VALID);
	return 0;
}

int
sim_userptr_validate(struct sim_bo *bo)
{
	int r;

	pthread_mutex_lock(&sim.notifier_lock);
	sim_wait_invalidations_locked();
	r = sim_userptr_validate_locked(bo);
	pthread_mutex_unlock(&sim.notifier_lock);
	return r;
}

/*
 * The notifier's invalidate_range_start: bump the sequence of every userptr
 * over [start, start + len), let the GPU finish the jobs that may use the
 * pages (they keep running on them meanwhile), then mark them invalid.
 * Until sim_invalidate_end(), after the mapping really changed, no
 * submission may revalidate (mmu_interval_read_begin() waits the same way).
 */
struct sim_invalidation *
sim_invalidate_begin(uintptr_t start, size_t len)
{
	uintptr_t end = start + len < start ? UINTPTR_MAX : start + len;
	struct sim_invalidation *inv;
	uint64_t drain = 0;
	unsigned n = 0;

	if (!len || !atomic_load(&sim.num_userptrs))
		return NULL;

	pthread_mutex_lock(&sim.notifier_lock);
	list_for_each_entry(struct sim_bo, bo, &sim.userptrs, userptr_link)
		if (bo->userptr < end && bo->userptr + bo->size > start)
			n++;
	if (!n) {
		pthread_mutex_unlock(&sim.notifier_lock);
		return NULL;
	}
	inv = calloc(1, sizeof(*inv) + n * sizeof(inv->bos[0]));
	if (!inv) {
		/* No memory to track it: wait for the whole GPU instead. */
		pthread_mutex_unlock(&sim.notifier_lock);
		pthread_mutex_lock(&sim.lock);
		drain = sim.submitted_seq;
		pthread_mutex_unlock(&sim.lock);
		sim_wait_seq(drain, UINT64_MAX);
		return NULL;
	}
	sim.invalidations_active++;
	list_for_each_entry(struct sim_bo, bo, &sim.userptrs, userptr_link) {
		if (bo->userptr >= end || bo->userptr + bo->size <= start)
			continue;
		sim_bo_ref(bo);
		inv->bos[inv->count++] = bo;
		atomic_fetch_add(&bo->notifier_seq, 1);
		if (atomic_load(&bo->state) != SIM_USERPTR_VALID)
			continue;
		pthread_mutex_lock(&sim.lock);
		bo->drain_seq = sim.submitted_seq;
		atomic_store(&bo->state, SIM_USERPTR_INVALIDATING);
		pthread_mutex_unlock(&sim.lock);
		drain = MAX2(drain, bo->drain_seq);
		SIM_STAT_ADD(userptr_invalidations, 1);
	}
	pthread_mutex_unlock(&sim.notifier_lock);

	pthread_mutex_lock(&sim.lock);
	bool busy = sim.completed_seq < drain;
	pthread_mutex_unlock(&sim.lock);
	if (busy) {
		SIM_STAT_ADD(invalidation_waits, 1);
		sim_wait_seq(drain, UINT64_MAX);
	}

	pthread_mutex_lock(&sim.notifier_lock);
	for (unsigned i = 0; i < inv->count; i++)
		atomic_store(&inv->bos[i]->state, SIM_USERPTR_INVALID);
	pthread_mutex_unlock(&sim.notifier_lock);
	return inv;
}

void
sim_invalidate_end(struct sim_invalidation *inv)
{
	if (!inv)
		return;
	pthread_mutex_lock(&sim.notifier_lock);
	sim.invalidations_active--;
	pthread_cond_broadcast(&sim.notifier_idle);
	pthread_mutex_unlock(&sim.notifier_lock);
	for (unsigned i = 0; i < inv->count; i++)
		sim_bo_unref(inv->bos[i]);
	free(inv);
}

/* With notifier_lock held: wait until no mapping change is under way. */
void
sim_wait_invalidations_locked(void)
{
	while (sim.invalidations_active)
		pthread_cond_wait(&sim.notifier_idle, &sim.notifier_lock);
}
