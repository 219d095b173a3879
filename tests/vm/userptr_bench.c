// SPDX-License-Identifier: MIT
/*
 * Guest-side numbers for the blob userptr series, printed, not asserted
 * (tests/vm/init runs it last; lines start with "BENCH"):
 *
 *  - the invalidate round trip: munmap of a registered 2 MiB HMM range,
 *    which returns only after the host answered DETACH_BACKING, against a
 *    munmap of the same range unregistered and against a no-op round trip
 *    through the control queue (an empty EXECBUFFER and a wait on its BO);
 *  - one munmap over many small HMM userptrs, against as many invalidate
 *    round trips: the kernel sends their detaches together;
 *  - registering 256 MiB in pinned and in HMM mode, against memcpy of
 *    256 MiB.
 *
 * Under TCG every number is dominated by emulation; compare them with each
 * other, not with hardware.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <drm/virtgpu_drm.h>

static int fd;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int create(void *p, size_t size, uint32_t flags, uint32_t *handle)
{
	struct drm_virtgpu_resource_create_blob c = {
		.blob_mem = VIRTGPU_BLOB_MEM_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR | flags,
		.size = size,
		.userptr = (uintptr_t)p,
	};

	if (ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &c))
		return -errno;
	*handle = c.bo_handle;
	return 0;
}

static void gem_close(uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c);
}

static void *map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 1, size);
	return p;
}

#define REPS 20

/* an empty submission naming @h, then a wait for its fence */
static void noop_round_trip(uint32_t h)
{
	struct drm_virtgpu_execbuffer e = {
		.bo_handles = (uintptr_t)&h,
		.num_bo_handles = 1,
		.fence_fd = -1,
	};
	struct drm_virtgpu_3d_wait w = { .handle = h };

	ioctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &e);
	while (ioctl(fd, DRM_IOCTL_VIRTGPU_WAIT, &w) && errno == EBUSY)
		;
}

static double invalidate_us;	/* one invalidate round trip, from bench_invalidate() */

static void bench_invalidate(void)
{
	const size_t size = 2UL << 20;
	double t, reg = 0, unreg = 0, noop = 0;
	uint32_t h = 0, nh = 0;
	void *np = map(4096);

	for (int i = 0; i < REPS; i++) {
		void *p = map(size);

		if (!p || create(p, size, VIRTGPU_BLOB_FLAG_USERPTR_HMM, &h)) {
			printf("BENCH invalidate: could not register\n");
			return;
		}
		t = now_us();
		munmap(p, size);	/* waits for DETACH's answer */
		reg += now_us() - t;
		gem_close(h);

		p = map(size);
		t = now_us();
		munmap(p, size);
		unreg += now_us() - t;
	}
	/* no-op round trip: empty submission, then wait for its fence */
	if (np && !create(np, 4096, 0, &nh)) {
		for (int i = 0; i < REPS; i++) {
			t = now_us();
			noop_round_trip(nh);
			noop += now_us() - t;
		}
		gem_close(nh);
	}
	invalidate_us = reg / REPS;
	printf("BENCH invalidate: munmap of a registered 2 MiB HMM range %.0f us, unregistered %.0f us, no-op submit+wait round trip %.0f us (mean of %d); ratio %.2f x no-op round trip, %.2f x plain munmap\n",
	       reg / REPS, unreg / REPS, noop / REPS, REPS,
	       noop > 0 ? reg / noop : 0.0, unreg > 0 ? reg / unreg : 0.0);
}

/* A /proc/meminfo value, in kB, or -1. */
static long meminfo_kb(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	}
	if (f)
		fclose(f);
	return v;
}

static int create_many(char *p, uint32_t *h, int n)
{
	int i = 0;

	while (i < n && !create(p + (size_t)i * 4096, 4096,
				VIRTGPU_BLOB_FLAG_USERPTR_HMM, &h[i]))
		i++;
	return i;
}

/*
 * One munmap over N one-page HMM userptrs side by side; then closing N
 * attached ones, timed up to a no-op round trip queued behind their
 * detaches.
 */
static void bench_many(void)
{
	enum { N = 1000 };
	static uint32_t h[N];
	char *p = map((size_t)N * 4096);
	double t, all, calls, closing;
	long slab0;
	uint32_t nh;
	int n;

	if (!p) {
		printf("BENCH many: not enough guest memory\n");
		return;
	}
	slab0 = meminfo_kb("SUnreclaim:");
	n = create_many(p, h, N);
	if (n < N) {
		printf("BENCH many: registered only %d of %d\n", n, N);
		munmap(p, (size_t)N * 4096);
		goto out;
	}
	printf("BENCH many: unreclaimable slab per one-page HMM userptr: about %ld bytes (SUnreclaim over %d; per-CPU caches and deferred frees blur it)\n",
	       (meminfo_kb("SUnreclaim:") - slab0) * 1024 / N, N);
	t = now_us();
	munmap(p, (size_t)N * 4096);	/* waits for all N DETACH answers */
	all = now_us() - t;
	printf("BENCH many: one munmap over %d one-page HMM userptrs %.1f ms, %.0f us per userptr; ratio %.3f x %d invalidate round trips\n",
	       N, all / 1e3, all / N,
	       invalidate_us > 0 ? all / (N * invalidate_us) : 0.0, N);
out:
	while (n--)
		gem_close(h[n]);

	p = map((size_t)N * 4096);
	if (!p || create(p, 4096, 0, &nh)) {
		printf("BENCH many: closing: could not register\n");
		return;
	}
	n = create_many(p, h, N);
	t = now_us();
	while (n--)
		gem_close(h[n]);
	calls = now_us() - t;
	noop_round_trip(nh);
	closing = now_us() - t;
	printf("BENCH many: closing %d attached one-page HMM userptrs: the GEM_CLOSE calls %.1f ms, until a no-op round trip behind them %.1f ms (%.0f us per userptr); ratio %.3f x %d invalidate round trips\n",
	       N, calls / 1e3, closing / 1e3, closing / N,
	       invalidate_us > 0 ? closing / (N * invalidate_us) : 0.0, N);
	gem_close(nh);
	munmap(p, (size_t)N * 4096);
}

static void bench_register(void)
{
	const size_t size = 256UL << 20;
	char *src = map(size), *dst = map(size);
	double t, pin, hmm, cpy;
	uint32_t h = 0;
	int r;

	if (!src || !dst) {
		printf("BENCH register: not enough guest memory\n");
		return;
	}
	t = now_us();
	r = create(src, size, 0, &h);
	pin = now_us() - t;
	if (!r)
		gem_close(h);
	t = now_us();
	r |= create(src, size, VIRTGPU_BLOB_FLAG_USERPTR_HMM, &h);
	hmm = now_us() - t;
	if (!r)
		gem_close(h);
	t = now_us();
	memcpy(dst, src, size);
	cpy = now_us() - t;
	if (r)
		printf("BENCH register: failed (%d)\n", r);
	else
		printf("BENCH register 256 MiB: pinned %.1f ms, HMM %.1f ms; memcpy 256 MiB %.1f ms; ratio to memcpy: pinned %.2f, HMM %.2f\n",
		       pin / 1e3, hmm / 1e3, cpy / 1e3,
		       cpy > 0 ? pin / cpy : 0.0, cpy > 0 ? hmm / cpy : 0.0);
	munmap(src, size);
	munmap(dst, size);
}

int main(void)
{
	fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("BENCH: no render node\n");
		return 1;
	}
	bench_invalidate();
	bench_many();
	bench_register();
	close(fd);
	return 0;
}
