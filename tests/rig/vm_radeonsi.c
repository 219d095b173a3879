/* Phase radeonsi of the VM rig (docs/rig.md): radeonsi itself in the guest,
 * over the AMD native context.  Mesa 25.0.7 + patches/ as `tools/mesa build`
 * builds it (pipe_radeonsi.so, -Damdgpu-virtio=true); this program loads the
 * driver's descriptor from pipe_radeonsi.so (what the dynamic pipe loader
 * dlsyms; the loader itself refuses virtio_gpu in 25.0.7, the driver does
 * not), creates the screen on the virtio-gpu render node, checks that
 * resource_from_user_memory follows has_userptr (the series' patch 7) and
 * moves bytes with radeonsi's own pipe_context:
 *
 *   vm_radeonsi userptr   host with the series: the hook and the cap are
 *                         there; posix_memalign'd buffers become radeonsi
 *                         buffers, resource_copy_region and clear_buffer
 *                         write the application's memory directly
 *   vm_radeonsi copy      plain upstream host: no hook, no cap
 *   vm_radeonsi native    no VM: the simulated amdgpu preloaded, radeonsi
 *                         on its amdgpu path (tests/mesa/run-radeonsi-native,
 *                         CI): the series keeps bare-metal userptr working
 *
 * In both modes the copy path a frontend takes without the hook (upload
 * with buffer_subdata, GPU copy, map back) is checked byte by byte.
 *
 * run-vm boots this phase on a GFX9 ASIC (vega10): there radeonsi copies
 * and clears GTT buffers with CP DMA (PKT3_DMA_DATA), which the simulated
 * amdgpu executes; on GFX10.3 it would use a compute shader, and the
 * simulator has no shader cores.
 *
 * Prints "PASS/FAIL rig: CHECK" lines (vm-init prefixes the phase), STATS
 * lines (counters the simulator must show exactly) and STATS_MIN lines
 * (at least: radeonsi's context submits work of its own, e.g. its
 * preamble); exit status 1 on a FAIL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xf86drm.h>

#include "rig_report.h"

#include "pipe/p_context.h"
#include "pipe/p_defines.h"
#include "pipe/p_screen.h"
#include "pipe/p_state.h"
#include "frontend/drm_driver.h"
#include "frontend/winsys_handle.h"
#include "util/os_time.h"
#include "util/xmlconfig.h"

#ifndef RSI_DRIVER
#define RSI_DRIVER "/rsi/lib/pipe_radeonsi.so"
#endif

#define BUF_SIZE (64 * 1024)
#define FILL 0xddu		/* bytes no command may touch */

static int native;		/* on amdgpu itself, not over virtio */
static unsigned long long user_buffers, bytes_expected;


static uint8_t
pattern(unsigned seed, unsigned i)
{
	return (uint8_t)((i * 2654435761u + seed * 40503u) >> 13);
}

static void
fill_pattern(uint8_t *p, unsigned size, unsigned seed)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = pattern(seed, i);
}

static struct pipe_resource
buffer_template(unsigned size)
{
	struct pipe_resource templ;

	memset(&templ, 0, sizeof(templ));
	templ.target = PIPE_BUFFER;
	templ.format = PIPE_FORMAT_R8_UNORM;
	templ.width0 = size;
	templ.height0 = templ.depth0 = templ.array_size = 1;
	/* GTT: radeonsi copies and clears GTT buffers with CP DMA on GFX9 */
	templ.usage = PIPE_USAGE_STAGING;
	templ.bind = PIPE_BIND_SHADER_BUFFER | PIPE_BIND_GLOBAL;
	return templ;
}

/* The application's memory as a radeonsi buffer (GL_AMD_pinned_memory,
 * CL_MEM_USE_HOST_PTR): the host imports it as a userptr BO. */
static struct pipe_resource *
user_buffer(struct pipe_screen *screen, void *mem, unsigned size)
{
	struct pipe_resource templ = buffer_template(size);
	struct pipe_resource *res = screen->resource_from_user_memory(screen, &templ, mem);

	if (res)
		user_buffers++;
	return res;
}

static void
copy_buffer(struct pipe_context *ctx, struct pipe_resource *dst, unsigned dst_off,
	    struct pipe_resource *src, unsigned src_off, unsigned size)
{
	struct pipe_box box = { .x = src_off, .width = size, .height = 1, .depth = 1 };

	ctx->resource_copy_region(ctx, dst, 0, dst_off, 0, 0, src, 0, &box);
	bytes_expected += size;
}

static void
clear_buffer(struct pipe_context *ctx, struct pipe_resource *dst, unsigned off,
	     unsigned size, uint32_t value)
{
	ctx->clear_buffer(ctx, dst, off, size, &value, sizeof(value));
	bytes_expected += size;
}

/* Submit what the context recorded and wait for the GPU to finish it. */
static int
flush_and_wait(struct pipe_screen *screen, struct pipe_context *ctx)
{
	struct pipe_fence_handle *fence = NULL;
	bool done;

	ctx->flush(ctx, &fence, 0);
	if (!fence)
		return -1;
	done = screen->fence_finish(screen, NULL, fence, OS_TIMEOUT_INFINITE);
	screen->fence_reference(screen, &fence, NULL);
	return done ? 0 : -1;
}

/* First byte of p[0..size) that differs from what the checks expect:
 * want(i) for i in [lo, hi), else the untouched FILL. */
struct expect {
	unsigned lo, hi;
	const uint8_t *src;	/* NULL: a 32-bit clear value */
	uint32_t clear;
};

static uint8_t
expected_byte(const struct expect *e, unsigned n, unsigned i)
{
	uint8_t want = FILL;

	for (unsigned k = 0; k < n; k++) {
		if (i < e[k].lo || i >= e[k].hi)
			continue;
		want = e[k].src ? e[k].src[i - e[k].lo]
				: (uint8_t)(e[k].clear >> (8 * ((i - e[k].lo) % 4)));
	}
	return want;
}

/* Compare the BUF_SIZE bytes at p (where: whose memory) with e[0..n) and
 * report CHECK. */
static void
check_bytes(const char *check, const uint8_t *p, const char *where,
	    const struct expect *e, unsigned n, const char *details)
{
	for (unsigned i = 0; i < BUF_SIZE; i++) {
		uint8_t want = expected_byte(e, n, i);

		if (p[i] != want) {
			rig_fail(check, "byte %u of %s is 0x%02x, not 0x%02x", i, where, p[i], want);
			return;
		}
	}
	rig_pass("%s (%s)", check, details);
}

static void
check_hook(struct pipe_screen *screen, int want_userptr)
{
	int hook = screen->resource_from_user_memory != NULL;
	int cap = screen->caps.resource_from_user_memory;

	if (hook == want_userptr && cap == want_userptr)
		rig_pass("hook-follows-userptr (resource_from_user_memory hook %s, caps.resource_from_user_memory %d: %s)",
		     hook ? "installed" : "absent", cap,
		     !want_userptr ? "no host userptr (plain upstream): frontends take the copy path"
		     : native ? "amdgpu's own userptr, zero-copy offered as before the series"
			      : "the host has userptr (series), zero-copy offered");
	else
		rig_fail("hook-follows-userptr", "hook %s, cap %d, expected %s (host %s)",
		     hook ? "installed" : "absent", cap, want_userptr ? "both" : "neither",
		     want_userptr ? "with the series" : "without userptr");
}

static void
test_user_buffer_handle(struct pipe_screen *screen)
{
	uint8_t *mem = NULL;
	struct pipe_resource *res;
	struct winsys_handle wh;

	if (posix_memalign((void **)&mem, 4096, BUF_SIZE) || !mem) {
		rig_fail("user-buffer", "posix_memalign");
		return;
	}
	fill_pattern(mem, BUF_SIZE, 1);
	res = user_buffer(screen, mem, BUF_SIZE);
	memset(&wh, 0, sizeof(wh));
	wh.type = WINSYS_HANDLE_TYPE_KMS;
	if (!res)
		rig_fail("user-buffer", "resource_from_user_memory(%p, 64 KiB) returned NULL", (void *)mem);
	else if (res->width0 != BUF_SIZE || res->target != PIPE_BUFFER)
		rig_fail("user-buffer", "resource width0 %u target %d", res->width0, res->target);
	else if (!screen->resource_get_handle(screen, NULL, res, &wh, 0) || !wh.handle)
		rig_fail("user-buffer", "resource_get_handle(KMS) of the user-memory buffer failed");
	else
		rig_pass("user-buffer (posix_memalign'd 64 KiB at %p: resource_from_user_memory -> radeonsi buffer, "
		     "KMS handle %u: %s)", (void *)mem, wh.handle,
		     native ? "an amdgpu userptr BO" : "the guest's res_id, the host imported it as a userptr");
	if (res)
		screen->resource_destroy(screen, res);
	for (unsigned i = 0; i < BUF_SIZE; i++) {
		if (mem[i] != pattern(1, i)) {
			rig_fail("user-buffer-destroy", "the application's memory changed at byte %u", i);
			free(mem);
			return;
		}
	}
	rig_pass("user-buffer-destroy (resource_destroy; the application's memory unchanged, freed by it)");
	free(mem);
}

/* Zero-copy: radeonsi's GPU commands read and write the application's
 * malloc'd memory itself; the CPU sees the result with no map, no copy. */
static void
test_zero_copy(struct pipe_screen *screen, struct pipe_context *ctx)
{
	uint8_t *src = NULL, *dst = NULL, *before = malloc(BUF_SIZE);
	struct pipe_resource *rsrc = NULL, *rdst = NULL;

	if (!before || posix_memalign((void **)&src, 4096, BUF_SIZE) ||
	    posix_memalign((void **)&dst, 4096, BUF_SIZE)) {
		rig_fail("zero-copy", "posix_memalign");
		goto out;
	}
	fill_pattern(src, BUF_SIZE, 2);
	memset(dst, FILL, BUF_SIZE);
	rsrc = user_buffer(screen, src, BUF_SIZE);
	rdst = user_buffer(screen, dst, BUF_SIZE);
	if (!rsrc || !rdst) {
		rig_fail("zero-copy", "resource_from_user_memory returned NULL");
		goto out;
	}

	/* a copy at other offsets in each buffer, and a clear (1 KiB: CP DMA
	 * on GFX9, as radeonsi picks for small GTT clears) */
	copy_buffer(ctx, rdst, 4096, rsrc, 256, 32768);
	clear_buffer(ctx, rdst, 40960, 1024, 0xc1ea5a11u);
	if (flush_and_wait(screen, ctx)) {
		rig_fail("zero-copy", "flush + fence_finish failed");
		goto out;
	}
	struct expect e1[] = {
		{ 4096, 4096 + 32768, src + 256, 0 },
		{ 40960, 40960 + 1024, NULL, 0xc1ea5a11u },
	};
	check_bytes("zero-copy", dst, "the destination's malloc'd memory", e1, 2,
		    "resource_copy_region 32 KiB user->user and clear_buffer 1 KiB, fence finished: "
		    "the application's own memory holds every byte, nothing mapped or copied back");

	/* The CPU changes the source in place: the next GPU copy reads the new
	 * bytes (the same pages, no re-import, no upload). */
	memcpy(before, src, BUF_SIZE);
	fill_pattern(src, BUF_SIZE, 3);
	copy_buffer(ctx, rdst, 0, rsrc, 0, 4096);
	if (flush_and_wait(screen, ctx)) {
		rig_fail("zero-copy-cpu-write", "flush + fence_finish failed");
		goto out;
	}
	struct expect e2[] = {
		{ 0, 4096, src, 0 },
		{ 4096, 4096 + 32768, before + 256, 0 },
		{ 40960, 40960 + 1024, NULL, 0xc1ea5a11u },
	};
	check_bytes("zero-copy-cpu-write", dst,
		    "the destination after the CPU rewrote the source and the GPU copied 4 KiB again",
		    e2, 3, "the CPU rewrote the source in place; the next GPU copy read the new bytes: "
		    "same pages, no upload");
out:
	if (rsrc)
		screen->resource_destroy(screen, rsrc);
	if (rdst)
		screen->resource_destroy(screen, rdst);
	free(src);
	free(dst);
	free(before);
}

/* The copy path: what a frontend does when resource_from_user_memory is
 * missing (clover and rusticl shadow CL_MEM_USE_HOST_PTR; GL gets no
 * GL_AMD_pinned_memory): upload the application's bytes into a driver
 * buffer, let the GPU work on that, map the result back. */
static void
test_copy_path(struct pipe_screen *screen, struct pipe_context *ctx)
{
	struct pipe_resource templ = buffer_template(BUF_SIZE);
	struct pipe_resource *a = screen->resource_create(screen, &templ);
	struct pipe_resource *b = screen->resource_create(screen, &templ);
	uint8_t *app = malloc(BUF_SIZE), *fill = malloc(BUF_SIZE);
	struct pipe_transfer *t = NULL;
	struct pipe_box box = { .width = BUF_SIZE, .height = 1, .depth = 1 };
	const uint8_t *p;

	if (!a || !b || !app || !fill) {
		rig_fail("copy-path", "resource_create or malloc failed");
		goto out;
	}
	fill_pattern(app, BUF_SIZE, 4);
	memset(fill, FILL, BUF_SIZE);
	ctx->buffer_subdata(ctx, a, PIPE_MAP_WRITE, 0, BUF_SIZE, app);
	ctx->buffer_subdata(ctx, b, PIPE_MAP_WRITE, 0, BUF_SIZE, fill);
	copy_buffer(ctx, b, 8192, a, 512, 16384);
	clear_buffer(ctx, b, 32768, 1024, 0x0defaced);
	if (flush_and_wait(screen, ctx)) {
		rig_fail("copy-path", "flush + fence_finish failed");
		goto out;
	}
	p = ctx->buffer_map(ctx, b, 0, PIPE_MAP_READ, &box, &t);
	if (!p) {
		rig_fail("copy-path", "buffer_map of the result failed");
		goto out;
	}
	struct expect e[] = {
		{ 8192, 8192 + 16384, app + 512, 0 },
		{ 32768, 32768 + 1024, NULL, 0x0defaced },
	};
	check_bytes("copy-path", p, "the mapped result", e, 2,
		    "buffer_subdata of malloc'd bytes into a GTT buffer, resource_copy_region "
		    "16 KiB + clear_buffer 1 KiB on the GPU, buffer_map back: every byte right");
	ctx->buffer_unmap(ctx, t);
out:
	if (a)
		screen->resource_destroy(screen, a);
	if (b)
		screen->resource_destroy(screen, b);
	free(app);
	free(fill);
}

/* ---- the guest-side benchmark (userptr mode) ---------------------------- */

#define PROBE 4096

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Each use copies the last PROBE bytes of the buffer into @probe on the
 * GPU; the probe is refilled with FILL before it (outside the timing) and
 * compared with the memory after it, so every use, zero-copy or not, is
 * checked on its own. */
static void
probe_reset(struct pipe_context *ctx, struct pipe_resource *probe)
{
	static uint8_t fill[PROBE];

	memset(fill, FILL, sizeof(fill));
	ctx->buffer_subdata(ctx, probe, PIPE_MAP_WRITE, 0, PROBE, fill);
}

static bool
probe_check(struct pipe_context *ctx, struct pipe_resource *probe, const uint8_t *want,
	    const char *what, unsigned mib)
{
	struct pipe_box box = { .width = PROBE, .height = 1, .depth = 1 };
	struct pipe_transfer *t = NULL;
	const uint8_t *p = ctx->buffer_map(ctx, probe, 0, PIPE_MAP_READ, &box, &t);
	bool ok = p && !memcmp(p, want, PROBE);

	if (p)
		ctx->buffer_unmap(ctx, t);
	if (!ok)
		rig_fail("bench-bytes", "%u MiB, %s: the GPU's copy out of the buffer is not "
			 "the memory's current bytes", mib, what);
	return ok;
}

/* The GPU's copy out of the end of @res into @probe, and the fence. */
static bool
use_once(struct pipe_screen *screen, struct pipe_context *ctx, struct pipe_resource *res,
	 unsigned size, struct pipe_resource *probe)
{
	copy_buffer(ctx, probe, 0, res, size - PROBE, PROBE);
	if (flush_and_wait(screen, ctx)) {
		rig_fail("bench", "flush + fence_finish failed");
		return false;
	}
	return true;
}

/* A first use of @size bytes of application memory, the way a frontend
 * does it: zero-copy (resource_from_user_memory) or the copy path
 * (resource_create + buffer_subdata), one use, the buffer released.
 * Returns the time in ms, or -1 after a FAIL. */
static double
bench_first(struct pipe_screen *screen, struct pipe_context *ctx, bool zero_copy,
	    uint8_t *mem, unsigned size, struct pipe_resource *probe)
{
	struct pipe_resource templ = buffer_template(size), *res;
	double t0, t;
	bool ok;

	probe_reset(ctx, probe);
	t0 = now_ms();
	if (zero_copy) {
		res = user_buffer(screen, mem, size);
	} else {
		res = screen->resource_create(screen, &templ);
		if (res)
			ctx->buffer_subdata(ctx, res, PIPE_MAP_WRITE, 0, size, mem);
	}
	if (!res) {
		rig_fail("bench", "%s buffer of %u MiB: none", zero_copy ? "user" : "driver",
			 size >> 20);
		return -1;
	}
	ok = use_once(screen, ctx, res, size, probe);
	screen->resource_destroy(screen, res);
	t = now_ms() - t0;
	ok = ok && probe_check(ctx, probe, mem + size - PROBE,
			       zero_copy ? "zero-copy first use" : "copy path first use", size >> 20);
	return ok ? t : -1;
}

/* Each use after the first, the CPU having changed the memory in between
 * (outside the timing): zero-copy only submits, the copy path uploads
 * again.  Best of 3 of each, in ms; false after a FAIL. */
static bool
bench_reuse(struct pipe_screen *screen, struct pipe_context *ctx, uint8_t *mem,
	    unsigned size, struct pipe_resource *probe, unsigned seed,
	    double *zero_ms, double *copy_ms)
{
	struct pipe_resource templ = buffer_template(size);
	struct pipe_resource *z = user_buffer(screen, mem, size);
	struct pipe_resource *c = screen->resource_create(screen, &templ);
	bool ok = z && c;

	if (!ok)
		rig_fail("bench", "%u MiB: buffers for the reuse run", size >> 20);
	for (int rep = 0; ok && rep < 3; rep++) {
		double t0, dt;

		fill_pattern(mem, size, seed + rep);
		probe_reset(ctx, probe);
		t0 = now_ms();
		ok = use_once(screen, ctx, z, size, probe);
		dt = now_ms() - t0;
		*zero_ms = MIN2(*zero_ms, dt);
		ok = ok && probe_check(ctx, probe, mem + size - PROBE, "zero-copy reuse", size >> 20);

		probe_reset(ctx, probe);
		t0 = now_ms();
		if (ok) {
			ctx->buffer_subdata(ctx, c, PIPE_MAP_WRITE, 0, size, mem);
			ok = use_once(screen, ctx, c, size, probe);
		}
		dt = now_ms() - t0;
		*copy_ms = MIN2(*copy_ms, dt);
		ok = ok && probe_check(ctx, probe, mem + size - PROBE, "copy path reuse", size >> 20);
	}
	if (z)
		screen->resource_destroy(screen, z);
	if (c)
		screen->resource_destroy(screen, c);
	return ok;
}

/* Application memory handed to the GPU: zero-copy against the copy path a
 * frontend takes without userptr, as ratios to a guest memcpy of the same
 * size measured in the same run (best of 3; under TCG the absolute times
 * say little, the ratios compare the paths): the first use (buffer made,
 * used once, released) and each use after it.  Every use's bytes are
 * checked (bench-bytes); the figures are printed, never asserted. */
static void
bench_userptr(struct pipe_screen *screen, struct pipe_context *ctx)
{
	static const unsigned mib[] = { 1, 16, 64 };
	struct pipe_resource templ = buffer_template(PROBE);
	struct pipe_resource *probe = screen->resource_create(screen, &templ);
	bool ok = probe != NULL;

	if (!probe)
		rig_fail("bench", "resource_create of the 4 KiB probe");
	for (unsigned k = 0; ok && k < sizeof(mib) / sizeof(mib[0]); k++) {
		unsigned size = mib[k] << 20;
		uint8_t *mem = NULL, *dst = malloc(size);
		double cpy = 1e30, first_z = 1e30, first_c = 1e30, reuse_z = 1e30, reuse_c = 1e30;

		if (!dst || posix_memalign((void **)&mem, 4096, size)) {
			rig_fail("bench", "%u MiB: allocation", mib[k]);
			free(dst);
			ok = false;
			break;
		}
		fill_pattern(mem, size, 5 + k);
		memset(dst, 0, size);
		for (int rep = 0; ok && rep < 3; rep++) {
			double t0 = now_ms(), dt, z, c;

			memcpy(dst, mem, size);
			dt = now_ms() - t0;
			cpy = MIN2(cpy, dt);
			z = bench_first(screen, ctx, true, mem, size, probe);
			c = bench_first(screen, ctx, false, mem, size, probe);
			ok = z >= 0 && c >= 0;
			first_z = MIN2(first_z, z);
			first_c = MIN2(first_c, c);
		}
		if (ok && memcmp(dst, mem, size)) {
			rig_fail("bench", "%u MiB: the baseline memcpy did not copy", mib[k]);
			ok = false;
		}
		ok = ok && bench_reuse(screen, ctx, mem, size, probe, 50 + 3 * k, &reuse_z, &reuse_c);
		if (ok) {
			printf("INFO rig: bench %2u MiB first use: memcpy %.2f ms; zero-copy (import, "
			       "GPU copy, release) %.2fx memcpy; copy path (create, upload, GPU copy, "
			       "release) %.2fx memcpy; copy path / zero-copy = %.2f\n", mib[k], cpy,
			       first_z / cpy, first_c / cpy, first_c / first_z);
			printf("INFO rig: bench %2u MiB each use after: zero-copy (GPU copy) %.2fx "
			       "memcpy; copy path (upload again, GPU copy) %.2fx memcpy; copy path / "
			       "zero-copy = %.2f\n", mib[k], reuse_z / cpy, reuse_c / cpy,
			       reuse_c / reuse_z);
		}
		free(mem);
		free(dst);
	}
	if (ok)
		rig_pass("bench-bytes (1, 16, 64 MiB, zero-copy and through the copy path, first "
			 "use and reuse with the CPU changing the memory in between: every GPU "
			 "copy out of the buffer had the memory's current bytes)");
	if (probe)
		screen->resource_destroy(screen, probe);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *kernel_driver = "virtio_gpu";
	int want_userptr;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "userptr")) {
		want_userptr = 1;
	} else if (!strcmp(mode, "copy")) {
		want_userptr = 0;
	} else if (!strcmp(mode, "native")) {
		want_userptr = 1;
		native = 1;
		kernel_driver = "amdgpu";
	} else {
		rig_fail("usage", "vm_radeonsi userptr|copy|native (got \"%s\")", mode);
		return 1;
	}

	int fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rig_fail("screen", "open /dev/dri/renderD128: %s", strerror(errno));
		return 1;
	}
	drmVersionPtr ver = drmGetVersion(fd);
	if (!ver || strcmp(ver->name, kernel_driver)) {
		rig_fail("screen", "/dev/dri/renderD128 is not %s (%s)", kernel_driver,
			 ver ? ver->name : "DRM_IOCTL_VERSION failed");
		return 1;
	}
	drmFreeVersion(ver);

	void *so = dlopen(RSI_DRIVER, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		rig_fail("screen", "dlopen %s: %s", RSI_DRIVER, dlerror());
		return 1;
	}
	const struct drm_driver_descriptor *desc = dlsym(so, "driver_descriptor");
	if (!desc || !desc->create_screen || strcmp(desc->driver_name, "radeonsi")) {
		rig_fail("screen", "%s has no radeonsi driver_descriptor", RSI_DRIVER);
		return 1;
	}

	/* What the pipe loader does before create_screen: the driver's driconf
	 * options; radeonsi_screen_create parses the config files into them. */
	driOptionCache info, options;
	memset(&options, 0, sizeof(options));
	driParseOptionInfo(&info, desc->driconf, desc->driconf_count);
	struct pipe_screen_config config = { .options = &options, .options_info = &info };

	struct pipe_screen *screen = desc->create_screen(fd, &config);
	if (!screen) {
		rig_fail("screen", "radeonsi's create_screen on the %s fd returned NULL", kernel_driver);
		return 1;
	}
	rig_pass("screen (%s driver_descriptor->create_screen on the %s fd: \"%s\", vendor \"%s\")",
	     RSI_DRIVER, kernel_driver, screen->get_name(screen), screen->get_vendor(screen));

	check_hook(screen, want_userptr);
	if (want_userptr && screen->resource_from_user_memory)
		test_user_buffer_handle(screen);

	struct pipe_context *ctx = screen->context_create(screen, NULL, 0);
	if (!ctx) {
		rig_fail("context", "radeonsi's context_create returned NULL");
	} else {
		rig_pass("context (radeonsi pipe_context on %s)",
		     native ? "amdgpu" : "the AMD native context");
		if (want_userptr && screen->resource_from_user_memory)
			test_zero_copy(screen, ctx);
		test_copy_path(screen, ctx);
		if (want_userptr && screen->resource_from_user_memory)
			bench_userptr(screen, ctx);
		ctx->destroy(ctx);
	}
	screen->destroy(screen);
	driDestroyOptionCache(&options);
	driDestroyOptionInfo(&info);
	close(fd);

	/* Each user buffer's host window went with its BO: one invalidation;
	 * nothing here may fault; the bytes above were moved at least. */
	printf("STATS userptr_invalidations %llu\n", user_buffers);
	printf("STATS gpu_faults 0\n");
	printf("STATS_MIN bytes_moved %llu\n", bytes_expected);
	return *rig_failures != 0;
}
