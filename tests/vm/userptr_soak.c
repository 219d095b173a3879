// SPDX-License-Identifier: MIT
/*
 * Pressure soak of HMM userptrs (issue 14): the buffers stay in use by
 * submissions while every source of invalidation the core mm has moves
 * their pages, all at once:
 *
 *  - reclaim to swap: /init puts this process in a memory cgroup whose
 *    limit is below what it touches (the buffers plus a ballast), with a
 *    virtio-blk swap disk, so direct reclaim pages userptr pages out;
 *  - NUMA balancing across the VM's two nodes: the buffers are filled on
 *    node 0 while the soak runs on node 1's CPU, so hinting faults unmap
 *    the pages and NUMA balancing migrates them over;
 *  - KSM: half of the buffers are mergeable, identical and registered
 *    read-only, so ksmd merges their pages under the registration;
 *  - THP "always" with khugepaged scanning fast, proactive compaction and
 *    a full compaction every 2 s (vm.compact_memory).
 *
 * A submitter thread submits each buffer in turn (each carries res virgl
 * NOPs, so QEMU's trace tells which resource it was for) while the main
 * thread writes and checks the contents of the writable buffers and checks
 * the mergeable ones.  At the end it prints, per buffer, "RACE <res>
 * <submissions>": tests/vm/run requires every SUBMIT_3D of the resource to
 * reach the host while it had pages, as many as counted here.  What each
 * source did is read from /proc/vmstat and /sys/kernel/mm/ksm and printed; a
 * source that did nothing fails the run ("not covered"), since a soak that
 * did not move the pages proves nothing.
 *
 *   userptr_soak [seconds]          (default 30)
 *   userptr_soak seconds SOURCE     the cost of one source: /init turns on
 *                                   only SOURCE (quiet, swap, numa, ksm, thp,
 *                                   compact); prints the submission rate as
 *                                   "BENCH soak-rate SOURCE ..." and fails
 *                                   on data or submissions only
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <drm/virtgpu_drm.h>

#define PAGE 4096UL
#define BUF_SIZE (2UL << 20)	/* one THP each */
#define NBUF 6			/* the odd ones mergeable and read-only */
#define BALLAST (16UL << 20)	/* with the buffers, above memory.max */

struct buf {
	char *p;
	uint32_t handle, res;
	int mergeable;
	long submits;
};

static int fd;
static struct buf bufs[NBUF];
static volatile int stop;
static long submit_failures, first_failure;
static uint32_t *nops;
static int failures;
static const char *tag = "soak";

static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL vm: %s: %s: ", tag, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures++;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long vmstat(const char *key)
{
	char k[64];
	long v, r = 0;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return 0;
	while (fscanf(f, "%63s %ld", k, &v) == 2)
		if (!strcmp(k, key))
			r = v;
	fclose(f);
	return r;
}

static long sysfs_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = 0;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* a 2 MiB-aligned anonymous buffer, so THP can back it */
static char *map_aligned(size_t size)
{
	char *p = mmap(NULL, 2 * size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + size - 1) & ~(size - 1);
	if (a != (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((char *)a + size, (uintptr_t)p + size - a);
	return (char *)a;
}

/* new pages of [p, p + len) on @node, or anywhere (MPOL_DEFAULT) for -1 */
static int bind_node(void *p, size_t len, int node)
{
	unsigned long mask = node < 0 ? 0 : 1UL << node;

	return syscall(SYS_mbind, p, len, node < 0 ? 0 : 2 /* MPOL_BIND */,
		       node < 0 ? NULL : &mask, node < 0 ? 0 : 8 * sizeof(mask), 0);
}

static void compact_memory(void)
{
	FILE *f = fopen("/proc/sys/vm/compact_memory", "w");

	if (f) {
		fputs("1", f);
		fclose(f);
	}
}

static int create(struct buf *b)
{
	struct drm_virtgpu_resource_create_blob c = {
		.blob_mem = VIRTGPU_BLOB_MEM_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR |
			      VIRTGPU_BLOB_FLAG_USERPTR_HMM |
			      (b->mergeable ? VIRTGPU_BLOB_FLAG_USERPTR_RDONLY : 0),
		.size = BUF_SIZE,
		.userptr = (uintptr_t)b->p,
	};

	if (ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &c))
		return -errno;
	b->handle = c.bo_handle;
	b->res = c.res_handle;
	return 0;
}

static int submit(struct buf *b)
{
	struct drm_virtgpu_execbuffer e = {
		.size = 4 * b->res,
		.command = (uintptr_t)nops,
		.bo_handles = (uintptr_t)&b->handle,
		.num_bo_handles = 1,
		.fence_fd = -1,
	};

	return ioctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &e) ? -errno : 0;
}

static void *submitter(void *arg)
{
	(void)arg;
	for (unsigned int i = 0; !stop; i = (i + 1) % NBUF) {
		int r = submit(&bufs[i]);

		if (!r)
			bufs[i].submits++;
		else if (r != -EINTR && !submit_failures++)
			first_failure = r;
	}
	return NULL;
}

/* the mergeable buffers: every page the same, so ksmd merges them all */
static void fill_mergeable(char *p)
{
	for (size_t o = 0; o < BUF_SIZE; o += PAGE)
		memset(p + o, 0x5a, PAGE);
}

static int check_mergeable(const char *p)
{
	for (size_t o = 0; o < BUF_SIZE; o += 64)
		if (p[o] != 0x5a)
			return 0;
	return 1;
}

/* a writable buffer: each page holds its index and the round it was written */
static int write_check(char *p, long round)
{
	int bad = 0;

	for (size_t o = 0; o < BUF_SIZE; o += PAGE) {
		long *w = (long *)(p + o);

		if (round && (w[0] != (long)o || w[1] != round - 1 || w[511] != round - 1))
			bad++;
		w[0] = o;
		w[1] = round;
		w[511] = round;
	}
	return bad;
}

static const struct source {
	const char *name, *key;
	int ksm;
} sources[] = {
	{ "reclaim to swap (pswpout)", "pswpout", 0 },
	{ "swap-in (pswpin)", "pswpin", 0 },
	{ "NUMA hinting faults (numa_hint_faults)", "numa_hint_faults", 0 },
	{ "NUMA migrations (numa_pages_migrated)", "numa_pages_migrated", 0 },
	{ "THP collapse (thp_collapse_alloc)", "thp_collapse_alloc", 0 },
	{ "compaction (compact_migrate_scanned)", "compact_migrate_scanned", 0 },
	{ "page migrations (pgmigrate_success)", "pgmigrate_success", 0 },
	{ "KSM merges (full_scans with pages_sharing)", "/sys/kernel/mm/ksm/full_scans", 1 },
};

static long source_value(const struct source *s)
{
	return s->ksm ? sysfs_long(s->key) : vmstat(s->key);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 30, t0, elapsed;
	const char *only = argc > 2 ? argv[2] : NULL;
	int compact = !only || !strcmp(only, "compact");
	long submits = 0;
	char tagbuf[32];
	long before[sizeof(sources) / sizeof(sources[0])];
	long rounds = 0, bad = 0, bad_merge = 0, sharing_max = 0;
	char *ballast;
	pthread_t t;
	uint32_t maxres = 0;

	cpu_set_t cpus;
	double last_compact;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (only) {
		snprintf(tagbuf, sizeof(tagbuf), "soak %s", only);
		tag = tagbuf;
	}
	/* run on node 1 (the VM's CPU 1) while the buffers start on node 0 */
	CPU_ZERO(&cpus);
	CPU_SET(1, &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus)) {
		fail("setup", "run on CPU 1: %s", strerror(errno));
		return 1;
	}
	fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fail("open", "/dev/dri/renderD128: %s", strerror(errno));
		return 1;
	}
	for (int i = 0; i < NBUF; i++) {
		struct buf *b = &bufs[i];

		b->mergeable = i & 1;
		b->p = map_aligned(BUF_SIZE);
		if (!b->p || bind_node(b->p, BUF_SIZE, 0)) {
			fail("setup", "mmap on node 0: %s", strerror(errno));
			return 1;
		}
		if (b->mergeable) {
			fill_mergeable(b->p);
			madvise(b->p, BUF_SIZE, MADV_MERGEABLE);
		} else {
			write_check(b->p, rounds);
		}
		if (create(b)) {
			fail("setup", "create HMM userptr %d: %s", i, strerror(errno));
			return 1;
		}
		/* from now on NUMA balancing may move the pages to node 1 */
		bind_node(b->p, BUF_SIZE, -1);
		if (b->res > maxres)
			maxres = b->res;
	}
	rounds = 1;
	nops = calloc(maxres, 4);
	ballast = malloc(BALLAST);
	if (!nops || !ballast) {
		fail("setup", "out of memory");
		return 1;
	}
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		before[i] = source_value(&sources[i]);

	if (pthread_create(&t, NULL, submitter, NULL)) {
		fail("setup", "pthread_create");
		return 1;
	}
	t0 = last_compact = now();
	while (now() - t0 < seconds) {
		if (compact && now() - last_compact >= 2) {
			compact_memory();
			last_compact = now();
		}
		for (int i = 0; i < NBUF; i++) {
			if (bufs[i].mergeable)
				bad_merge += !check_mergeable(bufs[i].p);
			else
				bad += write_check(bufs[i].p, rounds);
		}
		/* push the buffers out: the cgroup must reclaim to take this */
		for (size_t o = 0; o < BALLAST; o += PAGE)
			ballast[o] = (char)rounds;
		if (sysfs_long("/sys/kernel/mm/ksm/pages_sharing") > sharing_max)
			sharing_max = sysfs_long("/sys/kernel/mm/ksm/pages_sharing");
		rounds++;
	}
	stop = 1;
	pthread_join(t, NULL);
	elapsed = now() - t0;

	for (int i = 0; i < NBUF; i++) {
		struct drm_gem_close c = { .handle = bufs[i].handle };

		ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c);
		printf("RACE %u %ld\n", bufs[i].res, bufs[i].submits);
	}

	printf("soak%s%s: %.0f s, %ld rounds", only ? " " : "", only ? only : "",
	       elapsed, rounds - 1);
	for (int i = 0; i < NBUF; i++) {
		printf(", res %u %ld submissions", bufs[i].res, bufs[i].submits);
		submits += bufs[i].submits;
	}
	printf("\n");
	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
		long d = source_value(&sources[i]) - before[i];

		printf("BENCH soak%s%s source %s: %ld in %.0f s\n", only ? " " : "",
		       only ? only : "", sources[i].name, d, elapsed);
		if (!only && (d <= 0 || (sources[i].ksm && !sharing_max)))
			fail("sources", "%s: not covered (no activity during the soak)",
			     sources[i].name);
	}
	if (only)
		printf("BENCH soak-rate %s %.1f submissions/s %.2f rounds/s\n", only,
		       submits / elapsed, (rounds - 1) / elapsed);
	if (submit_failures)
		fail("submissions", "%ld failed, the first with %s", submit_failures,
		     strerror(-first_failure));
	if (bad || bad_merge)
		fail("data", "%ld pages of writable buffers and %ld checks of "
		     "mergeable ones read back wrong", bad, bad_merge);
	for (int i = 0; i < NBUF; i++)
		if (bufs[i].submits < 10)
			fail("submissions", "res %u: only %ld submissions", bufs[i].res,
			     bufs[i].submits);
	if (!failures && only)
		printf("PASS vm: soak %s: %d HMM userptrs submitted, data checked\n",
		       only, NBUF);
	else if (!failures)
		printf("PASS vm: soak: %d HMM userptrs submitted under reclaim, swap, "
		       "NUMA balancing, KSM, THP and compaction (%ld rounds, data checked)\n",
		       NBUF, rounds - 1);
	close(fd);
	return failures != 0;
}
