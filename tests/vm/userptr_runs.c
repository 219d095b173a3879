// SPDX-License-Identifier: MIT
/*
 * How scattered a malloc'd buffer's pages are in this guest after a
 * fragmenting workload: the physically contiguous runs a userptr of it
 * hands the host, each of which costs the host handler one mapping
 * (docs/host-handler.md).  For THP "madvise" and "always" (Debian's
 * default), a churn phase allocates and frees about 2 GB with a live set
 * of about 200 MB; then 64 MiB and 256 MiB buffers are malloc'd and
 * touched, and their runs are counted from /proc/self/pagemap, before and
 * after MADV_COLLAPSE (whose cost is printed against a memcpy of the
 * buffer).  Prints "BENCH runs ..." lines, asserts nothing.  Run by
 * tests/vm/init when the kernel command line has userptr_runs=1
 * (USERPTR_VM_RUNS=1 tests/vm/run 7.2).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define MiB (1ul << 20)
#define PAGE 4096ul

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int set_thp(const char *mode)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "w");

	if (!f)
		return -1;
	fputs(mode, f);
	return fclose(f);
}

/* Allocate and free about 2 GB, sizes 4 KiB to 1 MiB, live set ~200 MB. */
static void churn(void)
{
	enum { SLOTS = 4096 };
	static char *slot[SLOTS];
	static size_t slot_size[SLOTS];
	size_t live = 0, total = 0;

	srand(1);
	while (total < 2048 * MiB) {
		unsigned i = rand() % SLOTS;
		size_t size = PAGE << (rand() % 9);	/* 4 KiB .. 1 MiB */

		if (slot[i]) {
			free(slot[i]);
			live -= slot_size[i];
			slot[i] = NULL;
		}
		if (live + size > 200 * MiB)
			continue;
		slot[i] = malloc(size);
		if (!slot[i])
			continue;
		memset(slot[i], i, size);
		slot_size[i] = size;
		live += size;
		total += size;
	}
	/* Keep the live set: it is what fragments the free memory. */
}

struct runs {
	unsigned long runs, pages, big;	/* big: pages in runs >= 2 MiB */
};

static int count_runs(const char *p, size_t size, struct runs *r)
{
	size_t n = size / PAGE;
	uint64_t *pm = malloc(n * sizeof(*pm));
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t prev = 0, start = 0;

	memset(r, 0, sizeof(*r));
	if (!pm || fd < 0 ||
	    pread(fd, pm, n * sizeof(*pm), (uintptr_t)p / PAGE * sizeof(*pm)) !=
		    (ssize_t)(n * sizeof(*pm))) {
		free(pm);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (size_t i = 0; i <= n; i++) {
		uint64_t pfn = i < n ? pm[i] & ((1ull << 55) - 1) : 0;

		if (i < n && !(pm[i] >> 63)) {
			free(pm);
			return -1;	/* not present */
		}
		if (i == n || !i || pfn != prev + 1) {
			if (i) {
				r->runs++;
				if ((i - start) * PAGE >= 2 * MiB)
					r->big += i - start;
			}
			start = i;
		}
		prev = pfn;
	}
	r->pages = n;
	free(pm);
	return 0;
}

static void report(const char *thp, size_t size, const char *when,
		   const struct runs *r)
{
	printf("BENCH runs thp=%s %zu MiB %s: %lu runs, mean %.1f KiB, %.0f%% "
	       "of pages in runs >= 2 MiB\n", thp, size / MiB, when, r->runs,
	       r->runs ? r->pages * 4.0 / r->runs : 0.0,
	       r->pages ? 100.0 * r->big / r->pages : 0.0);
}

static void measure(const char *thp, size_t size)
{
	/* the memcpy goes through a 64 MiB buffer, to spare guest memory */
	char *buf = malloc(size), *copy = malloc(64 * MiB);
	struct runs r;
	double t, copy_ms, collapse_ms;

	if (!buf || !copy) {
		printf("BENCH runs thp=%s %zu MiB: no memory\n", thp, size / MiB);
		goto out;
	}
	memset(buf, 1, size);
	memset(copy, 2, 64 * MiB);
	if (count_runs(buf, size, &r)) {
		printf("BENCH runs thp=%s: pagemap gives no frame numbers\n", thp);
		goto out;
	}
	report(thp, size, "after churn", &r);
	t = now_ms();
	for (size_t off = 0; off < size; off += 64 * MiB)
		memcpy(copy, buf + off, 64 * MiB);
	copy_ms = now_ms() - t;
	t = now_ms();
	/* glibc's header page leaves the buffer unaligned: collapse its
	 * 2 MiB-aligned interior, as a caller would. */
	{
		uintptr_t a = ((uintptr_t)buf + 2 * MiB - 1) & ~(2 * MiB - 1);
		uintptr_t e = ((uintptr_t)buf + size) & ~(2 * MiB - 1);

		if (e > a && madvise((void *)a, e - a, MADV_COLLAPSE))
			perror("MADV_COLLAPSE");
	}
	collapse_ms = now_ms() - t;
	if (!count_runs(buf, size, &r))
		report(thp, size, "after MADV_COLLAPSE", &r);
	printf("BENCH runs thp=%s %zu MiB: MADV_COLLAPSE %.1f ms, %.2fx a "
	       "memcpy of the buffer (%.1f ms)\n", thp, size / MiB, collapse_ms,
	       collapse_ms / copy_ms, copy_ms);
out:
	free(buf);
	free(copy);
}

int main(void)
{
	static const char *const modes[] = { "madvise", "always" };

	for (unsigned m = 0; m < 2; m++) {
		if (set_thp(modes[m])) {
			printf("BENCH runs: cannot set THP %s\n", modes[m]);
			continue;
		}
		churn();
		measure(modes[m], 64 * MiB);
		measure(modes[m], 256 * MiB);
	}
	set_thp("madvise");
	return 0;
}
