// SPDX-License-Identifier: MIT
/*
 * Guest-side VM test of the drm/virtio blob userptr series (linux-patch/).
 * Built static in the trixie root against the patched UAPI header, run as
 * /init's child in the guest.  Prints
 *
 *   PASS vm: <name> / FAIL vm: <name>: <why> / SKIP vm: <name>: <reason>
 *
 * and, for the host-side comparison in tests/vm/run, one line per
 * virtio-gpu command the host must see, in the order it must see them:
 *
 *   EXPECT create <res> | attach <res> | detach <res> | unref <res> | submit
 *
 * Every userptr ioctl the test makes is synchronous with respect to these
 * commands (creation waits for the host's answer, an invalidation waits for
 * the DETACH answer, EXECBUFFER queues ATTACH before SUBMIT, the last close
 * queues UNREF), so the host's trace must match this list exactly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <drm/virtgpu_drm.h>

_Static_assert(sizeof(struct drm_virtgpu_resource_create_blob) == 64 &&
	       offsetof(struct drm_virtgpu_resource_create_blob, userptr) == 56,
	       "create_blob grows by __u64 userptr after blob_hints and pad2");

#define PAGE 4096UL
#define MAX_ENTRIES 16384
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE (1 << 1)
#endif

static int fd = -1;
static int failures;
static unsigned int modes;

static char last_failed[128];

/* a test that reported a failure does not also pass */
static void pass(const char *name)
{
	if (strcmp(last_failed, name))
		printf("PASS vm: %s\n", name);
	fflush(stdout);
}

static void skip(const char *name, const char *why) { printf("SKIP vm: %s: %s\n", name, why); fflush(stdout); }
static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	snprintf(last_failed, sizeof(last_failed), "%s", name);
	printf("FAIL vm: %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures++;
}

static void expect(const char *what, uint32_t res)
{
	if (res)
		printf("EXPECT %s %u\n", what, res);
	else
		printf("EXPECT %s\n", what);
	fflush(stdout);
}

/* the host must see event A before event B (tests/vm/run checks it) */
static void order(const char *a, uint32_t ra, const char *b, uint32_t rb)
{
	printf("ORDER %s %u %s %u\n", a, ra, b, rb);
	fflush(stdout);
}

static long vmstat(const char *key)
{
	char k[64];
	long v;
	FILE *f = fopen("/proc/vmstat", "r");

	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", k, &v) == 2) {
		if (!strcmp(k, key)) {
			fclose(f);
			return v;
		}
	}
	fclose(f);
	return -1;
}

static long pins_held(void)
{
	/* fold the per-CPU vmstat deltas so the counters are exact */
	int f = open("/proc/sys/vm/stat_refresh", O_WRONLY);

	if (f >= 0) {
		if (write(f, "1", 1) != 1)
			perror("stat_refresh");
		close(f);
	}
	return vmstat("nr_foll_pin_acquired") - vmstat("nr_foll_pin_released");
}

/* pinned pages are released from a work item after the host's answer */
static long pins_settle(long want)
{
	long v = pins_held();

	for (int i = 0; i < 200 && v != want; i++) {
		usleep(10000);
		v = pins_held();
	}
	return v;
}

static int create(uint64_t ptr, uint64_t size, uint32_t flags,
		  struct drm_virtgpu_resource_create_blob *out)
{
	struct drm_virtgpu_resource_create_blob c = {
		.blob_mem = VIRTGPU_BLOB_MEM_GUEST,
		.blob_flags = flags,
		.size = size,
		.userptr = ptr,
	};
	int r = ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &c);

	if (r)
		return -errno;
	/* the host must see RESOURCE_CREATE_BLOB of this id and size */
	printf("EXPECT create:%llu %u\n", (unsigned long long)size, c.res_handle);
	fflush(stdout);
	if (out)
		*out = c;
	return 0;
}

static int create_raw(struct drm_virtgpu_resource_create_blob *c)
{
	if (ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, c))
		return -errno;
	printf("EXPECT create:%llu %u\n", (unsigned long long)c->size, c->res_handle);
	fflush(stdout);
	return 0;
}

static void gem_close(uint32_t handle)
{
	struct drm_gem_close c = { .handle = handle };

	ioctl(fd, DRM_IOCTL_GEM_CLOSE, &c);
}

/*
 * A submission naming the resource, which revalidates it first.  It carries
 * @res virgl NOPs (zero dwords) so that the host trace, which shows only the
 * size, tells which resource it was for.
 */
static int submit(uint32_t handle, uint32_t res)
{
	static const uint32_t nops[4096];	/* res NOPs, res < 4096 */
	struct drm_virtgpu_execbuffer e = {
		.size = 4 * res,
		.command = (uintptr_t)nops,
		.bo_handles = (uintptr_t)&handle,
		.num_bo_handles = 1,
		.fence_fd = -1,
	};

	return ioctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &e) ? -errno : 0;
}

static void *map_anon(size_t size, int prot)
{
	void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void fill(void *p, size_t size, unsigned char v) { memset(p, v, size); }

static int check_fill(const void *p, size_t size, unsigned char v)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < size; i++)
		if (c[i] != v)
			return 0;
	return 1;
}

/* physically contiguous runs of [p, p + size), from /proc/self/pagemap */
static long phys_runs(const void *p, size_t size)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	uint64_t prev = 0, e;
	long runs = 0;

	if (pm < 0)
		return -1;
	for (size_t off = 0; off < size; off += PAGE) {
		if (pread(pm, &e, 8, ((uintptr_t)p + off) / PAGE * 8) != 8 ||
		    !(e & (1ULL << 63))) {
			close(pm);
			return -1;
		}
		e &= (1ULL << 55) - 1;
		if (!off || e != prev + 1)
			runs++;
		prev = e;
	}
	close(pm);
	return runs;
}

/* page frame of @p, or 0 when not present (root sees the frame) */
static uint64_t pfn_of(const void *p)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;

	if (pm < 0)
		return 0;
	if (pread(pm, &e, 8, (uintptr_t)p / PAGE * 8) != 8 || !(e & (1ULL << 63)))
		e = 0;
	close(pm);
	return e & ((1ULL << 55) - 1);
}

static const char *ename(int e)
{
	static char buf[32];

	switch (e) {
	case 0: return "success";
	case -EINVAL: return "EINVAL";
	case -E2BIG: return "E2BIG";
	case -EFAULT: return "EFAULT";
	case -EPERM: return "EPERM";
	case -ENOMEM: return "ENOMEM";
	case -EOPNOTSUPP: return "EOPNOTSUPP";
	case -ENODEV: return "ENODEV";
	case -EIO: return "EIO";
	}
	snprintf(buf, sizeof(buf), "errno %d", -e);
	return buf;
}

/* ---------------------------------------------------------------- */

static void t_probe(void)
{
	int blob = 0, v = -1, d3 = 0;
	struct drm_virtgpu_getparam gp = { VIRTGPU_PARAM_RESOURCE_BLOB, (uintptr_t)&blob };

	ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
	gp = (struct drm_virtgpu_getparam){ VIRTGPU_PARAM_3D_FEATURES, (uintptr_t)&d3 };
	ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp);
	gp = (struct drm_virtgpu_getparam){ VIRTGPU_PARAM_RESOURCE_USERPTR, (uintptr_t)&v };
	if (ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp)) {
		fail("probe", "GETPARAM(USERPTR) failed: %s", strerror(errno));
		return;
	}
	modes = v;
	if (!blob) {
		if (v != 0)
			fail("probe", "device without blob but USERPTR=%d", v);
		else
			skip("probe", "device has no blob resources");
		return;
	}
	if (v != (VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM))
		fail("probe", "USERPTR modes %#x, expected PINNED|HMM", v);
	else if (!d3)
		fail("probe", "no 3D: EXECBUFFER (revalidation) unavailable");
	else
		pass("probe");
}

static void t_pinned_use_free(void)
{
	const char *n = "pinned create/use/free";
	size_t size = 16 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	long held = pins_held();
	void *p;
	int r;

	if (posix_memalign(&p, PAGE, size))
		return fail(n, "posix_memalign");
	fill(p, size, 0x5a);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR, &c);
	if (r) {
		free(p);
		return fail(n, "create: %s", ename(r));
	}
	if (pins_held() != held + 16)
		fail(n, "%ld pins held, expected %ld", pins_held() - held, 16L);
	r = submit(c.bo_handle, c.res_handle);
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		expect("submit", c.res_handle);
	/* pinned: free() and a new mapping change nothing on the host */
	gem_close(c.bo_handle);
	expect("unref", c.res_handle);
	if (pins_settle(held) != held)
		fail(n, "pins not released after close (%ld held)", pins_held() - held);
	else if (!check_fill(p, size, 0x5a))
		fail(n, "data changed");
	else
		pass(n);
	free(p);
}

/*
 * Pinned read-only over memory the process has not written yet: the pins
 * must be the pages the process's writes then go to, not the shared zero
 * page (each write would then move the process to a new page while the
 * host keeps zeros).  GUP unshares for FOLL_LONGTERM since Linux 6.2; this
 * guards the "register, then fill" order of CL_MEM_USE_HOST_PTR.
 */
static void t_pinned_rdonly_untouched(void)
{
	const char *n = "pinned read-only over untouched memory pins the pages written next";
	size_t size = 4 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	long held = pins_held();
	uint64_t before[4];
	int r, bad = 0;

	if (!p)
		return fail(n, "mmap");
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, &c);
	if (r) {
		munmap(p, size);
		return fail(n, "create: %s", ename(r));
	}
	for (int i = 0; i < 4; i++)
		before[i] = pfn_of(p + i * PAGE);
	fill(p, size, 0x33);
	for (int i = 0; i < 4; i++) {
		if (!before[i] || before[i] != pfn_of(p + i * PAGE) ||
		    (i && before[i] == before[0]))
			bad++;
	}
	gem_close(c.bo_handle);
	expect("unref", c.res_handle);
	if (bad)
		fail(n, "%d of 4 pages moved on the first write (frames %#llx %#llx ...)",
		     bad, (unsigned long long)before[0], (unsigned long long)before[1]);
	else if (pins_settle(held) != held)
		fail(n, "pins not released after close (%ld held)", pins_held() - held);
	else
		pass(n);
	munmap(p, size);
}

static void t_pinned_survives_munmap(void)
{
	const char *n = "pinned keeps pages after munmap";
	size_t size = 8 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	long held = pins_held();
	void *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r;

	fill(p, size, 1);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	munmap(p, size);	/* no notifier: nothing on the wire */
	if (pins_held() != held + 8)
		fail(n, "pins dropped by munmap (%ld held)", pins_held() - held);
	r = submit(c.bo_handle, c.res_handle);
	if (!r)
		expect("submit", c.res_handle);
	gem_close(c.bo_handle);
	expect("unref", c.res_handle);
	if (pins_settle(held) != held)
		fail(n, "pins not released after close");
	else if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		pass(n);
}

static void t_hmm_use_free(void)
{
	const char *n = "hmm create/use/free";
	size_t size = 16 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	long held = pins_held();
	void *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r;

	fill(p, size, 2);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	if (pins_held() != held)
		fail(n, "HMM mode holds %ld pins", pins_held() - held);
	r = submit(c.bo_handle, c.res_handle);	/* valid: no attach */
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		expect("submit", c.res_handle);
	gem_close(c.bo_handle);	/* detach (waited for), then unref */
	expect("detach", c.res_handle);
	expect("unref", c.res_handle);
	/* the range is ours again: unmapping it must not reach the host */
	munmap(p, size);
	if (!r)
		pass(n);
}

/*
 * HMM: do something to the registered range, check the host was told to
 * drop the pages (DETACH) before the call returned, then submit and check
 * whether it re-attached.
 */
enum act { MUNMAP, FREE_REUSE, MREMAP, DONTNEED, THP_SPLIT };

/*
 * A submission naming an HMM userptr whose range is gone fails with EFAULT
 * and queues nothing.  Returns 0 when it did, else an error (reported).
 */
static int gone_submit(const char *n, const struct drm_virtgpu_resource_create_blob *c)
{
	int r = submit(c->bo_handle, c->res_handle);

	if (r == -EFAULT)
		return 0;
	if (!r)
		expect("submit", c->res_handle);
	fail(n, "EXECBUFFER naming the gone range: %s, expected EFAULT",
	     r ? ename(r) : "success");
	return r ? r : -EEXIST;
}

static void t_hmm_invalidate(const char *n, enum act a)
{
	size_t size = a == THP_SPLIT ? (2UL << 20) : 16 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	char *p, *raw = NULL, *q;
	int r;

	if (a == THP_SPLIT) {
		raw = map_anon(2 * size, PROT_READ | PROT_WRITE);
		p = (char *)(((uintptr_t)raw + size - 1) & ~(size - 1));
		madvise(p, size, MADV_HUGEPAGE);
	} else if (a == FREE_REUSE) {
		/* above glibc's mmap threshold: free() unmaps it */
		if (posix_memalign((void **)&p, PAGE, 64 * PAGE))
			return fail(n, "posix_memalign");
		size = 64 * PAGE;
	} else {
		p = map_anon(size, PROT_READ | PROT_WRITE);
	}
	fill(p, size, 3);
	if (a == THP_SPLIT && phys_runs(p, size) != 1) {
		munmap(raw, 2 * size);
		return skip(n, "no transparent huge page for the range");
	}
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));

	switch (a) {
	case MUNMAP:
		munmap(p, size);
		expect("detach", c.res_handle);
		/* gone, and named by the submission: EFAULT, nothing queued */
		r = gone_submit(n, &c);
		gem_close(c.bo_handle);
		expect("unref", c.res_handle);
		break;
	case FREE_REUSE: {
		/* the address is reused on purpose, as an allocator would */
		volatile uintptr_t was = (uintptr_t)p;

		free(p);
		p = (char *)was;
		expect("detach", c.res_handle);
		q = mmap(p, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (q != p)
			return fail(n, "could not map the range again");
		fill(p, size, 4);
		r = submit(c.bo_handle, c.res_handle);	/* new pages: attach */
		if (!r) {
			expect("attach", c.res_handle);
			expect("submit", c.res_handle);
		}
		gem_close(c.bo_handle);
		expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		munmap(p, size);
		break;
	}
	case MREMAP:
		q = map_anon(size, PROT_NONE);	/* a place to move it to */
		if (mremap(p, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, q) != q)
			return fail(n, "mremap: %s", strerror(errno));
		expect("detach", c.res_handle);
		r = gone_submit(n, &c);	/* nothing at the old address */
		if (mremap(q, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, p) != p)
			return fail(n, "mremap back: %s", strerror(errno));
		if (!r)
			r = submit(c.bo_handle, c.res_handle);	/* back: attach */
		if (!r) {
			expect("attach", c.res_handle);
			expect("submit", c.res_handle);
		}
		if (!check_fill(p, size, 3))
			fail(n, "data lost across mremap");
		gem_close(c.bo_handle);
		expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		munmap(p, size);
		break;
	case DONTNEED:
	case THP_SPLIT:
		if (a == DONTNEED ? madvise(p, size, MADV_DONTNEED) :
		    madvise(p + 5 * PAGE, PAGE, MADV_DONTNEED)) /* splits */
			return fail(n, "madvise: %s", strerror(errno));
		expect("detach", c.res_handle);
		r = submit(c.bo_handle, c.res_handle);
		if (!r) {
			expect("attach", c.res_handle);
			expect("submit", c.res_handle);
		}
		if (a == DONTNEED && !check_fill(p, size, 0))
			fail(n, "DONTNEED range not zero");
		if (a == THP_SPLIT && phys_runs(p, size) < 2)
			fail(n, "huge page not split");
		gem_close(c.bo_handle);
		expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		munmap(raw ? raw : p, raw ? 2 * size : size);
		break;
	}
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		pass(n);
}

static void t_hmm_fork_cow(void)
{
	const char *n = "hmm fork+COW";
	size_t size = 16 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r, st;
	pid_t pid;

	fill(p, size, 6);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	pid = fork();
	if (!pid) {
		fill(p, size, 7);	/* the child's own copies */
		_exit(0);
	}
	/* fork write-protected the parent's pages for COW */
	expect("detach", c.res_handle);
	waitpid(pid, &st, 0);
	fill(p, size, 8);	/* parent's write: its current pages */
	r = submit(c.bo_handle, c.res_handle);
	if (!r) {
		expect("attach", c.res_handle);
		expect("submit", c.res_handle);
	}
	gem_close(c.bo_handle);
	expect("detach", c.res_handle);
	expect("unref", c.res_handle);
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else if (!check_fill(p, size, 8))
		fail(n, "parent data wrong after COW");
	else
		pass(n);
	munmap(p, size);
}

/*
 * Revalidation does not need the submission to name the resource: the
 * creator's next EXECBUFFER re-attaches every invalidated userptr it made.
 */
/* a submission with no BO list: @res virgl NOPs, as submit() */
static int submit_unlisted(uint32_t res)
{
	static const uint32_t nops[4096];
	struct drm_virtgpu_execbuffer e = {
		.size = 4 * res,
		.command = (uintptr_t)nops,
		.fence_fd = -1,
	};

	return ioctl(fd, DRM_IOCTL_VIRTGPU_EXECBUFFER, &e) ? -errno : 0;
}

/*
 * A submission that names BOs revalidates only the HMM userptrs it names;
 * one that names none may use any of its file's, so it revalidates them
 * all.  The host trace shows no ATTACH of a after the submission naming b
 * (tests/vm/run compares each resource's commands exactly).
 */
static void t_hmm_reval_by_list(void)
{
	const char *n = "hmm revalidated by the BO list, or all without one";
	size_t size = 8 * PAGE;
	struct drm_virtgpu_resource_create_blob a, b;
	char *pa = map_anon(size, PROT_READ | PROT_WRITE);
	char *pb = map_anon(size, PROT_READ | PROT_WRITE);
	const uint32_t H = VIRTGPU_BLOB_FLAG_USE_USERPTR |
			   VIRTGPU_BLOB_FLAG_USERPTR_HMM;
	int r;

	fill(pa, size, 1);
	fill(pb, size, 2);
	if ((r = create((uintptr_t)pa, size, H, &a)))
		return fail(n, "create: %s", ename(r));
	if ((r = create((uintptr_t)pb, size, H, &b)))
		return fail(n, "create: %s", ename(r));
	if (madvise(pa, size, MADV_DONTNEED))
		return fail(n, "madvise: %s", strerror(errno));
	expect("detach", a.res_handle);
	r = submit(b.bo_handle, b.res_handle);	/* names b only: a stays */
	if (!r) {
		expect("submit", b.res_handle);
		/* no list: a is attached again before it */
		r = submit_unlisted(a.res_handle);
		if (!r) {
			expect("attach", a.res_handle);
			expect("submit", a.res_handle);
			order("submit", b.res_handle, "attach", a.res_handle);
		}
	}
	gem_close(a.bo_handle);
	if (!r)
		expect("detach", a.res_handle);
	expect("unref", a.res_handle);
	gem_close(b.bo_handle);
	expect("detach", b.res_handle);
	expect("unref", b.res_handle);
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		pass(n);
	munmap(pa, size);
	munmap(pb, size);
}

/*
 * A userptr's pages belong to its creator's process: another file must not
 * get a handle to it, here through a flink name on the primary node.
 */
static void t_open_other_file(void)
{
	const char *n = "another file cannot open a userptr";
	size_t size = 4 * PAGE;
	int card = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
	int other = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);
	struct drm_virtgpu_resource_create_blob c = {
		.blob_mem = VIRTGPU_BLOB_MEM_GUEST,
		.blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR,
		.size = size,
	};
	struct drm_gem_flink fl = { 0 };
	struct drm_gem_open op = { 0 };
	struct drm_auth auth = { 0 };
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r = 0;

	if (card < 0 || other < 0 || !p) {
		fail(n, "open card0: %s", strerror(errno));
		goto out;
	}
	fill(p, size, 7);
	c.userptr = (uintptr_t)p;
	if (ioctl(card, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &c)) {
		fail(n, "create on card0: %s", strerror(errno));
		goto out;
	}
	printf("EXPECT create:%llu %u\n", (unsigned long long)size, c.res_handle);
	fl.handle = c.bo_handle;
	/* card is the master; it authenticates the other file */
	if (ioctl(card, DRM_IOCTL_GEM_FLINK, &fl) ||
	    ioctl(other, DRM_IOCTL_GET_MAGIC, &auth) ||
	    ioctl(card, DRM_IOCTL_AUTH_MAGIC, &auth)) {
		fail(n, "flink/auth: %s", strerror(errno));
	} else {
		op.name = fl.name;
		r = ioctl(other, DRM_IOCTL_GEM_OPEN, &op) ? -errno : 0;
		if (r == -EPERM)
			pass(n);
		else
			fail(n, "GEM_OPEN from another file: %s, expected EPERM",
			     ename(r));
	}
	if (!r && op.handle) {
		struct drm_gem_close cl = { .handle = op.handle };

		ioctl(other, DRM_IOCTL_GEM_CLOSE, &cl);
	}
	{
		struct drm_gem_close cl = { .handle = c.bo_handle };

		ioctl(card, DRM_IOCTL_GEM_CLOSE, &cl);
	}
	expect("unref", c.res_handle);
out:
	if (card >= 0)
		close(card);
	if (other >= 0)
		close(other);
	if (p)
		munmap(p, size);
}

/*
 * Pinned over a shared memfd mapping, truncated and grown again: the
 * process then sees new zero pages, while the pins, and so the host, keep
 * the old ones until the handle is closed (the pinned contract,
 * docs/design.md section 2).  No DETACH: pinned mode has no notifier.
 */
static void t_pinned_memfd_truncate(void)
{
	const char *n = "pinned shared memfd truncate keeps the old pages";
	size_t size = 8 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	int mfd = memfd_create("userptr", MFD_CLOEXEC), r, moved = 0;
	long held = pins_held();
	uint64_t before[8];
	char *p;

	if (mfd < 0 || ftruncate(mfd, size))
		return fail(n, "memfd: %s", strerror(errno));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		return fail(n, "mmap: %s", strerror(errno));
	fill(p, size, 0x22);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	for (int i = 0; i < 8; i++)
		before[i] = pfn_of(p + i * PAGE);
	if (ftruncate(mfd, 0) || ftruncate(mfd, size))
		fail(n, "ftruncate: %s", strerror(errno));
	else if (!check_fill(p, size, 0))
		fail(n, "the process does not see new zero pages");
	for (int i = 0; i < 8; i++)
		moved += pfn_of(p + i * PAGE) != before[i];
	if (pins_held() != held + 8)
		fail(n, "%ld pins held after truncate, expected 8", pins_held() - held);
	else if (moved != 8)
		fail(n, "%d of 8 pages replaced, expected all", moved);
	if ((r = submit(c.bo_handle, c.res_handle)))
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		expect("submit", c.res_handle);
	gem_close(c.bo_handle);
	expect("unref", c.res_handle);
	if (pins_settle(held) != held)
		fail(n, "pins not released after close (%ld held)", pins_held() - held);
	pass(n);
	munmap(p, size);
	close(mfd);
}

/* file-backed memory: a shared memfd mapping, truncated and grown again */
static void t_hmm_memfd_truncate(void)
{
	const char *n = "hmm shared memfd truncate";
	size_t size = 8 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	int mfd = memfd_create("userptr", MFD_CLOEXEC), r;
	char *p;

	if (mfd < 0 || ftruncate(mfd, size))
		return fail(n, "memfd: %s", strerror(errno));
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (p == MAP_FAILED)
		return fail(n, "mmap: %s", strerror(errno));
	fill(p, size, 0x11);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	if (ftruncate(mfd, 0))	/* the pages leave the page cache */
		return fail(n, "ftruncate: %s", strerror(errno));
	expect("detach", c.res_handle);
	r = gone_submit(n, &c);	/* beyond EOF: EFAULT, stays detached */
	if (!r && ftruncate(mfd, size) == 0) {
		r = submit(c.bo_handle, c.res_handle);	/* new, zeroed pages */
		if (!r) {
			expect("attach", c.res_handle);
			expect("submit", c.res_handle);
		}
		if (!check_fill(p, size, 0))
			fail(n, "pages after truncate are not zero");
	}
	gem_close(c.bo_handle);
	if (!r)
		expect("detach", c.res_handle);
	expect("unref", c.res_handle);
	if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else
		pass(n);
	munmap(p, size);
	close(mfd);
}

static void t_hmm_move_pages(void)
{
	const char *n = "hmm move_pages migration";
	enum { NP = 8 };
	size_t size = NP * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	void *pages[NP];
	int nodes[NP], status[NP], r, from, to;
	long ret;

	fill(p, size, 9);
	for (int i = 0; i < NP; i++)
		pages[i] = p + i * PAGE;
	ret = syscall(SYS_move_pages, 0, NP, pages, NULL, status, 0);
	if (ret) {
		munmap(p, size);
		return skip(n, "move_pages query failed (no NUMA?)");
	}
	from = status[0];
	to = !from;
	if (access(to ? "/sys/devices/system/node/node1" :
		   "/sys/devices/system/node/node0", F_OK)) {
		munmap(p, size);
		return skip(n, "guest has one NUMA node");
	}
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	for (int i = 0; i < NP; i++)
		nodes[i] = to;
	ret = syscall(SYS_move_pages, 0, NP, pages, nodes, status, MPOL_MF_MOVE);
	expect("detach", c.res_handle);
	r = submit(c.bo_handle, c.res_handle);
	if (!r) {
		expect("attach", c.res_handle);
		expect("submit", c.res_handle);
	}
	gem_close(c.bo_handle);
	expect("detach", c.res_handle);
	expect("unref", c.res_handle);
	if (ret || status[0] != to)
		fail(n, "pages not migrated (ret %ld, node %d)", ret, status[0]);
	else if (r)
		fail(n, "EXECBUFFER: %s", ename(r));
	else if (!check_fill(p, size, 9))
		fail(n, "data changed by migration");
	else
		pass(n);
	munmap(p, size);
}

/* a filled anonymous buffer made a userptr; NULL, reported, on failure */
static char *filled_userptr(const char *n, size_t size, unsigned char v,
			    uint32_t flags, struct drm_virtgpu_resource_create_blob *c)
{
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r;

	if (!p) {
		fail(n, "mmap: %s", strerror(errno));
		return NULL;
	}
	fill(p, size, v);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR | flags, c);
	if (r) {
		munmap(p, size);
		fail(n, "create: %s", ename(r));
		return NULL;
	}
	return p;
}

/*
 * Prime export of a userptr resource is refused (EPERM, as amdgpu does for
 * its userptr BOs) in both modes, and leaves the resource as it was.
 */
static void t_prime_export(void)
{
	static const struct { const char *n; uint32_t flags; } m[2] = {
		{ "prime export refused (pinned)", 0 },
		{ "prime export refused (hmm)", VIRTGPU_BLOB_FLAG_USERPTR_HMM },
	};
	size_t size = 4 * PAGE;

	for (int i = 0; i < 2; i++) {
		struct drm_virtgpu_resource_create_blob c;
		struct drm_prime_handle ph = { .flags = DRM_CLOEXEC | DRM_RDWR };
		long held = pins_held();
		const char *n = m[i].n;
		char *p = filled_userptr(n, size, 7, m[i].flags, &c);
		int r, e;

		if (!p)
			continue;
		ph.handle = c.bo_handle;
		e = ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &ph) ? -errno : 0;
		if (!e)
			close(ph.fd);
		r = submit(c.bo_handle, c.res_handle);	/* still usable */
		if (!r)
			expect("submit", c.res_handle);
		gem_close(c.bo_handle);
		if (m[i].flags)
			expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		if (e != -EPERM)
			fail(n, "PRIME_HANDLE_TO_FD: %s, expected EPERM", ename(e));
		else if (r)
			fail(n, "EXECBUFFER after the export: %s", ename(r));
		else if (pins_settle(held) != held)
			fail(n, "pins not released after close");
		else
			pass(n);
		munmap(p, size);
	}
}

/*
 * A userptr resource cannot back a framebuffer (ADDFB2: EINVAL) in either
 * mode.  ADDFB2 needs the primary node; RESOURCE_INFO on the same handle
 * shows the EINVAL is not an unknown handle.
 */
static void t_no_scanout(void)
{
	static const struct { const char *n; uint32_t flags; } m[2] = {
		{ "no framebuffer from a userptr (pinned)", 0 },
		{ "no framebuffer from a userptr (hmm)", VIRTGPU_BLOB_FLAG_USERPTR_HMM },
	};
	size_t size = 64 * PAGE;	/* 64x64 XRGB8888 pixels, 4 pages */
	int render_fd = fd, card = open("/dev/dri/card0", O_RDWR | O_CLOEXEC);

	if (card < 0) {
		fail(m[0].n, "open /dev/dri/card0: %s", strerror(errno));
		return;
	}
	fd = card;
	for (int i = 0; i < 2; i++) {
		struct drm_virtgpu_resource_create_blob c;
		struct drm_virtgpu_resource_info info = { 0 };
		struct drm_mode_fb_cmd2 fb = {
			.width = 64, .height = 64,
			.pixel_format = 0x34325258,	/* XR24, DRM_FORMAT_XRGB8888 */
			.pitches = { 64 * 4 },
		};
		const char *n = m[i].n;
		char *p = filled_userptr(n, size, 9, m[i].flags, &c);
		int r, e;

		if (!p)
			continue;
		fb.handles[0] = c.bo_handle;
		e = ioctl(fd, DRM_IOCTL_MODE_ADDFB2, &fb) ? -errno : 0;
		if (!e)
			ioctl(fd, DRM_IOCTL_MODE_RMFB, &fb.fb_id);
		info.bo_handle = c.bo_handle;
		r = ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_INFO, &info) ? -errno : 0;
		gem_close(c.bo_handle);
		if (m[i].flags)
			expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		if (e != -EINVAL)
			fail(n, "ADDFB2: %s, expected EINVAL", e ? ename(e) : "success");
		else if (r || info.res_handle != c.res_handle)
			fail(n, "RESOURCE_INFO on the handle: %s", ename(r));
		else
			pass(n);
		munmap(p, size);
	}
	fd = render_fd;
	close(card);
}

/*
 * Invalidations racing with submissions: a second thread keeps dropping the
 * pages (madvise(DONTNEED): DETACH, waited for) while this one submits.  The
 * ATTACH and the SUBMIT_3D are queued under the notifier lock after the
 * sequence check, so the host must see every submission of the resource
 * while it has pages (tests/vm/run checks "RACE <res> <submits>": no
 * SUBMIT_3D of res between a DETACH and the next ATTACH, and the count).
 */
struct race {
	char *p;
	size_t size;
	volatile int stop;
	long invalidations;
	int ok, failed, first;
};

static void *race_invalidate(void *arg)
{
	struct race *ra = arg;

	while (!ra->stop) {
		ra->p[0] = 1;	/* fault a page back in: the next one detaches */
		if (madvise(ra->p, ra->size, MADV_DONTNEED))
			break;
		ra->invalidations++;
		sched_yield();
	}
	return NULL;
}

/*
 * Submits @c 300 times while race_invalidate() keeps dropping ra->p's
 * pages; counts the outcomes in @ra.  Returns 0, or pthread_create's
 * error as a negative errno.
 */
static int race_submit(struct race *ra,
		       const struct drm_virtgpu_resource_create_blob *c)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, race_invalidate, ra);

	if (r)
		return -r;
	for (int i = 0; i < 300; i++) {
		r = submit(c->bo_handle, c->res_handle);
		/* no EBUSY either: a lookup waits out the invalidations */
		if (!r)
			ra->ok++;
		else if (!ra->failed++)
			ra->first = r;
	}
	ra->stop = 1;
	pthread_join(t, NULL);
	return 0;
}

/* Test @n's verdict on what race_submit() counted. */
static void race_report(const char *n, const struct race *ra,
			long min_invalidations)
{
	printf("%s: %d submissions, %ld invalidations\n", n, ra->ok,
	       ra->invalidations);
	fflush(stdout);
	if (ra->failed)
		fail(n, "%d submissions failed, the first with %s", ra->failed,
		     ename(ra->first));
	else if (ra->ok < 100 || ra->invalidations < min_invalidations)
		fail(n, "too little overlap: %d submissions, %ld invalidations",
		     ra->ok, ra->invalidations);
	else
		pass(n);
}

static int write_param(const char *path, const char *v);

static void t_hmm_submit_race(void)
{
	/*
	 * The window a broken kernel would leave between dropping the lock and
	 * queueing is widened on purpose: every submission sleeps 1 ms there
	 * (CONFIG_DRM_VIRTIO_GPU_USERPTR_DEBUG), with the lock held.
	 */
	static const char knob[] = "/sys/module/virtio_gpu/parameters/userptr_submit_delay_us";
	const char *n = "hmm submissions racing invalidations";
	struct race ra = { .size = 16 * PAGE };
	struct drm_virtgpu_resource_create_blob c;
	int r;

	if (write_param(knob, "1000"))
		return fail(n, "not covered: %s: %s (CONFIG_DRM_VIRTIO_GPU_USERPTR_DEBUG)",
			    knob, strerror(errno));

	ra.p = map_anon(ra.size, PROT_READ | PROT_WRITE);
	fill(ra.p, ra.size, 4);
	r = create((uintptr_t)ra.p, ra.size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r) {
		fail(n, "create: %s", ename(r));
	} else {
		r = race_submit(&ra, &c);
		gem_close(c.bo_handle);
		if (r) {
			fail(n, "pthread_create: %s", ename(r));
		} else {
			printf("RACE %u %d\n", c.res_handle, ra.ok);
			race_report(n, &ra, 100);
		}
	}
	write_param(knob, "0");
	munmap(ra.p, ra.size);
}

/*
 * One invalidation over two adjacent HMM userptrs: the lower one's notifier
 * runs first and also hands out the upper one's detach, then (widened on
 * purpose: userptr_invalidate_delay_us) queues it after dropping the lock.
 * Submissions naming only the upper one race with that step; they must not
 * attach its old pages before that detach is queued (the host would then
 * drop the new attach, and the upper one's own notifier would detach a
 * resource the host no longer has: tests/vm/run's state check).
 */
static void t_hmm_batch_race(void)
{
	static const char knob[] = "/sys/module/virtio_gpu/parameters/userptr_invalidate_delay_us";
	const char *n = "hmm submissions racing a batched invalidation";
	const uint32_t H = VIRTGPU_BLOB_FLAG_USE_USERPTR |
			   VIRTGPU_BLOB_FLAG_USERPTR_HMM;
	struct race ra = { .size = 8 * PAGE };
	struct drm_virtgpu_resource_create_blob lo, hi;
	int r;

	if (write_param(knob, "2000"))
		return fail(n, "not covered: %s: %s (CONFIG_DRM_VIRTIO_GPU_USERPTR_DEBUG)",
			    knob, strerror(errno));
	ra.p = map_anon(ra.size, PROT_READ | PROT_WRITE);
	fill(ra.p, ra.size, 6);
	r = create((uintptr_t)ra.p, 4 * PAGE, H, &lo);
	if (r) {
		fail(n, "create: %s", ename(r));
	} else if ((r = create((uintptr_t)ra.p + 4 * PAGE, 4 * PAGE, H, &hi))) {
		fail(n, "create: %s", ename(r));
		gem_close(lo.bo_handle);
	} else {
		r = race_submit(&ra, &hi);
		gem_close(lo.bo_handle);
		gem_close(hi.bo_handle);
		if (r) {
			fail(n, "pthread_create: %s", ename(r));
		} else {
			printf("RACE %u 0\n", lo.res_handle);
			printf("RACE %u %d\n", hi.res_handle, ra.ok);
			race_report(n, &ra, 50);
		}
	}
	write_param(knob, "0");
	munmap(ra.p, ra.size);
}

/*
 * A forked child shares the file and its handles, not the mm: it must not
 * make the kernel fault its own pages in for the parent's HMM userptr.
 */
static void t_hmm_other_mm(void)
{
	const char *n = "hmm userptr of another mm refused";
	size_t size = 4 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	int r, status;
	pid_t pid;

	fill(p, size, 8);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r)
		return fail(n, "create: %s", ename(r));
	pid = fork();
	if (pid == 0)
		_exit(-submit(c.bo_handle, c.res_handle) & 0xff);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		fail(n, "fork/wait");
	else if (WEXITSTATUS(status) != EPERM)
		fail(n, "child's EXECBUFFER naming it: %s, expected EPERM",
		     ename(-WEXITSTATUS(status)));
	/* the parent still can; its pages may have been COW-broken by fork */
	r = submit(c.bo_handle, c.res_handle);
	if (r) {
		fail(n, "parent's EXECBUFFER: %s", ename(r));
	} else {
		printf("RACE %u 1\n", c.res_handle);
		pass(n);
	}
	gem_close(c.bo_handle);
	if (r)
		printf("RACE %u 0\n", c.res_handle);
	munmap(p, size);
}

/* ---------------------------------------------------------------- */

struct bad {
	const char *name;
	int want;
	struct drm_virtgpu_resource_create_blob c;
};

static void t_errno(void)
{
	size_t size = 4 * PAGE;
	char *ok = map_anon(size, PROT_READ | PROT_WRITE);
	char *hole = map_anon(size, PROT_READ | PROT_WRITE);
	char *ro = map_anon(size, PROT_READ | PROT_WRITE);
	char *part = map_anon(2 * size, PROT_READ | PROT_WRITE);
	char *wo = map_anon(size, PROT_READ | PROT_WRITE);
	long held = pins_held();
	const uint32_t U = VIRTGPU_BLOB_FLAG_USE_USERPTR;
	const uint32_t H = VIRTGPU_BLOB_FLAG_USERPTR_HMM;
	const uint32_t RO = VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;
	const uint64_t G = VIRTGPU_BLOB_MEM_GUEST;
	uintptr_t a = (uintptr_t)ok;

	fill(ok, size, 1);
	fill(ro, size, 1);
	mprotect(ro, size, PROT_READ);
	fill(wo, size, 1);
	mprotect(wo, size, PROT_WRITE);	/* populated, but not readable */
	munmap(hole, size);
	fill(part, size, 1);
	munmap(part + size, size);	/* [part, part + size) mapped, then a hole */

#define B(n, w, ...) { n, w, { .blob_mem = G, .size = size, .userptr = a, __VA_ARGS__ } }
	struct bad bad[] = {
		B("unknown blob flag", -EINVAL, .blob_flags = U | 0x40),
		B("READONLY without USE_USERPTR", -EINVAL, .blob_flags = RO),
		B("HMM without USE_USERPTR", -EINVAL, .blob_flags = H),
		B("userptr without USE_USERPTR", -EINVAL, .blob_flags = 0),
		B("USE_USERPTR with HOST3D", -EINVAL, .blob_flags = U,
		  .blob_mem = VIRTGPU_BLOB_MEM_HOST3D),
		B("USE_USERPTR with MAPPABLE", -EINVAL,
		  .blob_flags = U | VIRTGPU_BLOB_FLAG_USE_MAPPABLE),
		B("USE_USERPTR with SHAREABLE", -EINVAL,
		  .blob_flags = U | VIRTGPU_BLOB_FLAG_USE_SHAREABLE),
		B("USE_USERPTR with CROSS_DEVICE", -EINVAL,
		  .blob_flags = U | VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE),
		B("USE_USERPTR with blob_id", -EINVAL, .blob_flags = U, .blob_id = 1),
		B("USE_USERPTR with cmd_size", -EINVAL, .blob_flags = U, .cmd_size = 4,
		  .cmd = a),
		/* reserved for userptr blobs, as blob_hints means nothing to one */
		B("USE_USERPTR with pad", -EINVAL, .blob_flags = U, .pad = 1),
		B("USE_USERPTR with blob_hints", -EINVAL, .blob_flags = U,
		  .blob_hints = DRM_VIRTGPU_BLOB_FLAG_HINT_DEFER_MAPPING),
		B("USE_USERPTR with pad2", -EINVAL, .blob_flags = U, .pad2 = 1),
		B("userptr 0", -EINVAL, .blob_flags = U, .userptr = 0),
		B("userptr unaligned", -EINVAL, .blob_flags = U, .userptr = a + 8),
		B("size unaligned", -EINVAL, .blob_flags = U, .size = size - 8),
		B("size 0", -EINVAL, .blob_flags = U, .size = 0),
		B("range wraps", -EINVAL, .blob_flags = U,
		  .userptr = 0xfffffffffffff000ULL, .size = 0x2000),
		/* past the limit with 4- and with 5-level page tables */
		B("range past the user limit", -EINVAL, .blob_flags = U,
		  .userptr = 0x00fffffffffff000ULL, .size = 0x2000),
		B("size above userptr_max_size (pinned)", -E2BIG, .blob_flags = U,
		  .size = (4ULL << 30) + PAGE),
		B("size above userptr_max_size (hmm)", -E2BIG, .blob_flags = U | H,
		  .size = (4ULL << 30) + PAGE),
		B("range not mapped (pinned)", -EFAULT, .blob_flags = U,
		  .userptr = (uintptr_t)hole),
		B("range not mapped (hmm)", -EFAULT, .blob_flags = U | H,
		  .userptr = (uintptr_t)hole),
		B("range partly mapped (pinned)", -EFAULT, .blob_flags = U,
		  .userptr = (uintptr_t)part, .size = 2 * size),
		B("range partly mapped (hmm)", -EFAULT, .blob_flags = U | H,
		  .userptr = (uintptr_t)part, .size = 2 * size),
		/* both modes answer as hmm_range_fault() does */
		B("write to read-only mapping (pinned)", -EPERM, .blob_flags = U,
		  .userptr = (uintptr_t)ro),
		B("write to read-only mapping (hmm)", -EPERM, .blob_flags = U | H,
		  .userptr = (uintptr_t)ro),
		B("PROT_WRITE-only mapping (pinned)", -EFAULT, .blob_flags = U,
		  .userptr = (uintptr_t)wo),
		B("PROT_WRITE-only mapping (hmm)", -EFAULT, .blob_flags = U | H,
		  .userptr = (uintptr_t)wo),
		B("PROT_WRITE-only mapping, RDONLY (pinned)", -EFAULT,
		  .blob_flags = U | RO, .userptr = (uintptr_t)wo),
	};
#undef B
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];
		int r;

		snprintf(name, sizeof(name), "errno: %s", bad[i].name);
		r = create_raw(&bad[i].c);
		if (r != bad[i].want)
			fail(name, "got %s, expected %s", ename(r), ename(bad[i].want));
		else if (pins_held() != held)
			fail(name, "left %ld pages pinned", pins_held() - held);
		else
			pass(name);
		if (!r) {
			gem_close(bad[i].c.bo_handle);
			expect("unref", bad[i].c.res_handle);
			pins_settle(held);
		}
	}
	/* the module parameter bounds the size */
	{
		const char *n = "errno: size above a lowered userptr_max_size";
		const char *pp = "/sys/module/virtio_gpu/parameters/userptr_max_size";
		FILE *f = fopen(pp, "w");
		int r;

		if (!f) {
			skip(n, "no userptr_max_size parameter in sysfs");
		} else {
			fprintf(f, "%lu\n", 2 * PAGE);
			fclose(f);
			r = create(a, size, U, NULL);
			f = fopen(pp, "w");
			fprintf(f, "%llu\n", 4ULL << 30);
			fclose(f);
			if (r != -E2BIG)
				fail(n, "got %s", ename(r));
			else
				pass(n);
		}
	}
	munmap(ok, size);
	munmap(ro, size);
	munmap(wo, size);
	munmap(part, size);
}

/* read-only userptr: pinned and HMM take pages without write access */
static void t_readonly(void)
{
	size_t size = 4 * PAGE;
	char *ro = map_anon(size, PROT_READ | PROT_WRITE);
	const uint32_t flags[2] = {
		VIRTGPU_BLOB_FLAG_USE_USERPTR | VIRTGPU_BLOB_FLAG_USERPTR_RDONLY,
		VIRTGPU_BLOB_FLAG_USE_USERPTR | VIRTGPU_BLOB_FLAG_USERPTR_RDONLY |
		VIRTGPU_BLOB_FLAG_USERPTR_HMM,
	};
	long held = pins_held();

	fill(ro, size, 1);
	mprotect(ro, size, PROT_READ);
	for (int i = 0; i < 2; i++) {
		const char *n = i ? "hmm read-only mapping" : "pinned read-only mapping";
		struct drm_virtgpu_resource_create_blob c;
		int r = create((uintptr_t)ro, size, flags[i], &c);

		if (r) {
			fail(n, "create: %s", ename(r));
			continue;
		}
		gem_close(c.bo_handle);
		if (i)
			expect("detach", c.res_handle);
		expect("unref", c.res_handle);
		if (pins_settle(held) != held)
			fail(n, "pins left");
		else
			pass(n);
	}
	munmap(ro, size);
}

static int write_param(const char *path, const char *v)
{
	int f = open(path, O_WRONLY | O_CLOEXEC);
	int ok = f >= 0 && write(f, v, strlen(v)) == (ssize_t)strlen(v);

	if (f >= 0)
		close(f);
	return ok ? 0 : -1;
}

static unsigned int userptr_modes(void)
{
	int v = -1;
	struct drm_virtgpu_getparam gp = { VIRTGPU_PARAM_RESOURCE_USERPTR, (uintptr_t)&v };

	return ioctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &gp) ? 0 : v;
}

/*
 * HMM and read-only userptrs need the device's promise (DRM capset version
 * 1).  This host (forky's virglrenderer, no DRM capset) does not make it;
 * the lane boots with virtio_gpu.userptr_unpromised=1, which must taint the
 * kernel.  Without the parameter only pinned read-write userptrs remain.
 */
static void t_promise(void)
{
	static const char param[] = "/sys/module/virtio_gpu/parameters/userptr_unpromised";
	const char *n = "HMM and read-only only with the device's promise";
	size_t size = 4 * PAGE;
	char *p = map_anon(size, PROT_READ | PROT_WRITE);
	unsigned int m_off, m_on;
	long tainted = -1;
	int r_hmm, r_ro;
	FILE *t;

	fill(p, size, 1);
	if (write_param(param, "N")) {
		fail(n, "cannot write %s: %s", param, strerror(errno));
		munmap(p, size);
		return;
	}
	m_off = userptr_modes();
	r_hmm = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		       VIRTGPU_BLOB_FLAG_USERPTR_HMM, NULL);
	r_ro = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		      VIRTGPU_BLOB_FLAG_USERPTR_RDONLY, NULL);
	write_param(param, "Y");
	m_on = userptr_modes();
	t = fopen("/proc/sys/kernel/tainted", "r");
	if (t) {
		if (fscanf(t, "%ld", &tainted) != 1)
			tainted = -1;
		fclose(t);
	}
	munmap(p, size);

	if (m_off != VIRTGPU_USERPTR_MODE_PINNED)
		fail(n, "modes without the promise %#x, expected PINNED", m_off);
	else if (r_hmm != -EOPNOTSUPP || r_ro != -EOPNOTSUPP)
		fail(n, "without the promise: HMM %s, read-only %s, expected EOPNOTSUPP",
		     ename(r_hmm), ename(r_ro));
	else if (m_on != (VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM))
		fail(n, "modes with userptr_unpromised %#x", m_on);
	else if (tainted < 0 || !(tainted & (1 << 6)))
		fail(n, "userptr_unpromised did not taint the kernel (%ld)", tainted);
	else
		pass(n);
}

/* occurrences of @what in the kernel log */
static int klog_count(const char *what)
{
	int len = klogctl(10, NULL, 0);	/* SYSLOG_ACTION_SIZE_BUFFER */
	char *buf = len > 0 ? malloc(len + 1) : NULL;
	int n = 0;

	if (!buf)
		return -1;
	len = klogctl(3, buf, len);	/* SYSLOG_ACTION_READ_ALL */
	if (len < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	for (char *q = buf; (q = strstr(q, what)); q += strlen(what))
		n++;
	free(buf);
	return n;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * The DETACH_BACKING of an invalidation must reach the host even when the
 * virtqueue cannot allocate its indirect descriptor table (GFP_ATOMIC):
 * failslab fails every atomic slab allocation of one task while it
 * munmaps its HMM userptr.  A lost detach leaves the munmap waiting
 * forever for an answer, so the task runs in a child that is given 20 s.
 */
static void t_detach_failslab(void)
{
	static const char fs[] = "/sys/kernel/debug/failslab";
	const char *n = "hmm detach survives failed atomic allocations";
	static const struct { const char *file, *value; } cfg[] = {
		{ "task-filter", "Y" }, { "ignore-gfp-wait", "Y" },
		{ "probability", "100" }, { "interval", "1" }, { "space", "0" },
		{ "verbose", "2" }, { "times", "1000" },
	};
	char path[128];
	int before, after, status = 0;
	long times;
	pid_t pid;

	for (size_t i = 0; i < sizeof(cfg) / sizeof(cfg[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", fs, cfg[i].file);
		if (write_param(path, cfg[i].value)) {
			fail(n, "cannot write %s: %s", path, strerror(errno));
			return;
		}
	}
	before = klog_count("virtqueue_add_sgs");

	pid = fork();
	if (pid == 0) {
		size_t size = 16 * PAGE;
		void *p = map_anon(size, PROT_READ | PROT_WRITE);
		struct drm_virtgpu_resource_create_blob c;

		fill(p, size, 3);
		if (create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
			   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c))
			_exit(2);
		if (write_param("/proc/self/make-it-fail", "1"))
			_exit(3);
		munmap(p, size);	/* the invalidation queues DETACH */
		write_param("/proc/self/make-it-fail", "0");
		expect("detach", c.res_handle);
		gem_close(c.bo_handle);
		expect("unref", c.res_handle);
		_exit(0);
	}
	for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	snprintf(path, sizeof(path), "%s/times", fs);
	times = read_long(path);
	write_param(path, "0");
	after = klog_count("virtqueue_add_sgs");

	if (waitpid(pid, &status, WNOHANG) == 0)
		fail(n, "munmap still waiting after 20 s: the DETACH was lost");
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail(n, "child failed (status %#x)", status);
	else if (times >= 1000 || after <= before)
		fail(n, "not covered: no failure injected in virtqueue_add_sgs (%ld left, %d -> %d)",
		     times, before, after);
	else
		pass(n);
}

/* more physical runs than one command may carry */
static void t_too_many_runs(void)
{
	const size_t np = MAX_ENTRIES + 16;
	char *p = map_anon(np * PAGE, PROT_READ | PROT_WRITE);
	char *gap = map_anon(np * PAGE, PROT_READ | PROT_WRITE);
	long held = pins_held(), runs;

	if (!p || !gap)
		return skip("errno: more than 16384 runs", "not enough guest memory");
	/* small pages, allocated alternately from the two ranges */
	if (madvise(p, np * PAGE, MADV_NOHUGEPAGE) ||
	    madvise(gap, np * PAGE, MADV_NOHUGEPAGE))
		return fail("errno: more than 16384 runs", "madvise: %s", strerror(errno));
	/* interleave allocations so neighbouring pages are not contiguous */
	for (size_t i = 0; i < np; i++) {
		p[i * PAGE] = 1;
		gap[i * PAGE] = 1;
	}
	runs = phys_runs(p, np * PAGE);
	for (int hmm = 0; hmm < 2; hmm++) {
		const char *n = hmm ? "errno: more than 16384 runs (hmm)" :
				      "errno: more than 16384 runs (pinned)";
		int want = runs > MAX_ENTRIES ? -E2BIG : 0;
		struct drm_virtgpu_resource_create_blob c;
		int r;

		if (runs < 0) {
			skip(n, "pagemap unreadable");
			continue;
		}
		r = create((uintptr_t)p, np * PAGE, VIRTGPU_BLOB_FLAG_USE_USERPTR |
			   (hmm ? VIRTGPU_BLOB_FLAG_USERPTR_HMM : 0), &c);
		if (!r) {
			gem_close(c.bo_handle);
			if (hmm)
				expect("detach", c.res_handle);
			expect("unref", c.res_handle);
			pins_settle(held);
		}
		if (want == 0)
			skip(n, "the pages happened to form <= 16384 runs");
		else if (r != want)
			fail(n, "%ld runs: got %s, expected E2BIG", runs, ename(r));
		else if (pins_held() != held)
			fail(n, "left %ld pages pinned", pins_held() - held);
		else
			pass(n);
	}
	munmap(p, np * PAGE);
	munmap(gap, np * PAGE);
}

/* RLIMIT_MEMLOCK bounds pinned mode, not HMM mode */
static void t_memlock(void)
{
	const char *n = "errno: pinned beyond RLIMIT_MEMLOCK";
	int st;
	pid_t pid = fork();

	if (!pid) {
		struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
		struct { uint32_t eff, perm, inh; } data[2];
		struct rlimit rl = { 16 * PAGE, 16 * PAGE };
		size_t size = 32 * PAGE;
		char *p = map_anon(size, PROT_READ | PROT_WRITE);
		struct drm_virtgpu_resource_create_blob c;
		int r1, r2, r3;

		syscall(SYS_capget, &hdr, data);
		data[0].eff &= ~(1u << 14);	/* CAP_IPC_LOCK */
		if (syscall(SYS_capset, &hdr, data) || setrlimit(RLIMIT_MEMLOCK, &rl))
			_exit(100);
		fill(p, size, 1);
		r1 = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR, NULL);
		r2 = create((uintptr_t)p, 8 * PAGE, VIRTGPU_BLOB_FLAG_USE_USERPTR, &c);
		if (!r2) {
			gem_close(c.bo_handle);
			expect("unref", c.res_handle);
		}
		r3 = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
			    VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
		if (!r3) {
			gem_close(c.bo_handle);
			expect("detach", c.res_handle);
			expect("unref", c.res_handle);
		}
		if (r1 != -ENOMEM)
			printf("memlock: 32 pages pinned under a 16-page limit: %s\n", ename(r1));
		if (r2)
			printf("memlock: 8 pages under a 16-page limit: %s\n", ename(r2));
		if (r3)
			printf("memlock: HMM mode: %s\n", ename(r3));
		fflush(stdout);
		_exit(r1 == -ENOMEM && !r2 && !r3 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 100)
		skip(n, "could not drop CAP_IPC_LOCK");
	else if (WEXITSTATUS(st))
		fail(n, "see the memlock lines above");
	else
		pass(n);
}

/*
 * Every fault-injection point the userptr paths reach, failed in turn with
 * fail-nth (slab and page allocations, sleeping ones included): an
 * EXECBUFFER that revalidates an HMM userptr, and an munmap that
 * invalidates one.  Each call must succeed or fail with ENOMEM or EFAULT
 * (ENOENT where upstream reports a failed allocation of the BO list so) and
 * lose nothing: the next clean submission works, the host sees every
 * submission while it had the pages (RACE) and every munmap's DETACH before
 * munmap returned (EXPECT), no munmap hangs, and kmemleak (at the end)
 * finds nothing.
 */
static int fail_nth(int f, long n)
{
	char b[24];
	int l = snprintf(b, sizeof(b), "%ld", n);

	return pwrite(f, b, l, 0) == l ? 0 : -1;
}

static long fail_nth_left(int f)
{
	char b[24] = { 0 };

	return pread(f, b, sizeof(b) - 1, 0) > 0 ? atol(b) : -1;
}

static int fail_nth_setup(const char *v)
{
	static const char *const knobs[] = {
		"/sys/kernel/debug/failslab/ignore-gfp-wait",
		"/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait",
		"/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem",
	};
	int r = 0;

	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		r |= write_param(knobs[i], v);
	if (!strcmp(v, "N")) {
		r |= write_param("/sys/kernel/debug/fail_page_alloc/min-order", "0");
		r |= write_param("/sys/kernel/debug/failslab/verbose", "0");
		r |= write_param("/sys/kernel/debug/fail_page_alloc/verbose", "0");
	}
	return r;
}

static void t_fail_nth(void)
{
	const char *ns = "every allocation of a revalidating EXECBUFFER failed in turn";
	const char *nm = "every allocation of an invalidating munmap failed in turn";
	size_t size = 16 * PAGE;
	struct drm_virtgpu_resource_create_blob c;
	int f, r, bad = 0, first = 0, injected = 0, clean_bad = 0, ok = 0;
	long nth, left = 0;
	char path[64], *p;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth",
		 (long)syscall(SYS_gettid));
	f = open(path, O_RDWR);
	if (f < 0 || fail_nth_setup("N")) {
		fail(ns, "not covered: %s or the fail_page_alloc knobs missing", path);
		return;
	}

	p = map_anon(size, PROT_READ | PROT_WRITE);
	fill(p, size, 6);
	r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
		   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
	if (r) {
		fail(ns, "create: %s", ename(r));
		goto out;
	}
	for (nth = 1; nth <= 4000; nth++) {
		madvise(p, size, MADV_DONTNEED);	/* detached again */
		fail_nth(f, nth);
		r = submit(c.bo_handle, c.res_handle);
		left = fail_nth_left(f);
		fail_nth(f, 0);
		if (!r) {
			ok++;
		} else if (r == -ENOMEM || r == -EFAULT || r == -ENOENT) {
			/* ENOENT: virtio_gpu_array_from_handles() failing */
			injected++;
		} else if (!bad++) {
			first = r;
		}
		r = submit(c.bo_handle, c.res_handle);	/* nothing lost */
		if (r)
			clean_bad++;
		else
			ok++;
		if (left)
			break;	/* the whole call ran without reaching point nth */
	}
	gem_close(c.bo_handle);
	printf("RACE %u %d\n", c.res_handle, ok);
	printf("fail-nth EXECBUFFER: %ld points, %d failed calls\n", nth - 1, injected);
	if (!left)
		fail(ns, "more than 4000 fault-injection points");
	else if (bad)
		fail(ns, "%d calls failed with another errno, the first %s", bad, ename(first));
	else if (clean_bad)
		fail(ns, "%d clean submissions after an injected failure failed", clean_bad);
	else if (!injected)
		fail(ns, "not covered: no injected failure reached the caller");
	else
		pass(ns);

	/* the invalidation: the notifier allocates nothing; munmap may */
	bad = injected = 0;
	for (nth = 1; nth <= 400; nth++) {
		p = map_anon(size, PROT_READ | PROT_WRITE);
		fill(p, size, 8);
		r = create((uintptr_t)p, size, VIRTGPU_BLOB_FLAG_USE_USERPTR |
			   VIRTGPU_BLOB_FLAG_USERPTR_HMM, &c);
		if (r) {
			fail(nm, "create: %s", ename(r));
			goto out;
		}
		fail_nth(f, nth);
		r = munmap(p, size) ? -errno : 0;
		left = fail_nth_left(f);
		fail_nth(f, 0);
		if (r == -ENOMEM) {
			injected++;
			r = munmap(p, size) ? -errno : 0;
		}
		if (r && !bad++)
			first = r;
		expect("detach", c.res_handle);
		gem_close(c.bo_handle);
		expect("unref", c.res_handle);
		if (left)
			break;
	}
	printf("fail-nth munmap: %ld points, %d failed calls\n", nth - 1, injected);
	if (!left)
		fail(nm, "more than 400 fault-injection points");
	else if (bad)
		fail(nm, "munmap failed: %s", ename(first));
	else
		pass(nm);
out:
	fail_nth_setup("Y");
	close(f);
}

int main(void)
{
	long start_held;

	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fail("open render node", "%s", strerror(errno));
		return 1;
	}
	start_held = pins_held();
	t_probe();
	if (!(modes & VIRTGPU_USERPTR_MODE_PINNED))
		return 1;
	t_pinned_use_free();
	t_pinned_survives_munmap();
	t_pinned_rdonly_untouched();
	t_hmm_use_free();
	t_hmm_invalidate("hmm munmap", MUNMAP);
	t_hmm_invalidate("hmm free and reuse", FREE_REUSE);
	t_hmm_invalidate("hmm mremap away and back", MREMAP);
	t_hmm_invalidate("hmm madvise(DONTNEED)", DONTNEED);
	t_hmm_invalidate("hmm THP split", THP_SPLIT);
	t_hmm_fork_cow();
	t_hmm_reval_by_list();
	t_open_other_file();
	t_hmm_memfd_truncate();
	t_pinned_memfd_truncate();
	t_hmm_move_pages();
	t_hmm_submit_race();
	t_hmm_batch_race();
	t_hmm_other_mm();
	t_prime_export();
	t_no_scanout();
	t_readonly();
	t_promise();
	t_detach_failslab();
	t_errno();
	t_too_many_runs();
	t_memlock();
	t_fail_nth();
	close(fd);
	if (pins_settle(start_held) != start_held)
		fail("pinned pages released", "%ld pins still held",
		     pins_held() - start_held);
	else
		pass("pinned pages released");
	printf("nr_foll_pin_acquired %ld nr_foll_pin_released %ld\n",
	       vmstat("nr_foll_pin_acquired"), vmstat("nr_foll_pin_released"));
	return failures ? 1 : 0;
}
