/* Phase radeonsi of the VM rig (docs/rig.md): radeonsi itself in the guest,
 * over the AMD native context.  Mesa 25.0.7 + patches/ as `tools/mesa build`
 * builds it (pipe_radeonsi.so, -Damdgpu-virtio=true); this program loads the
 * driver's descriptor from pipe_radeonsi.so (what the dynamic pipe loader
 * dlsyms; the loader itself refuses virtio_gpu in 25.0.7, the driver does
 * not), creates the screen on the virtio-gpu render node and checks that
 * resource_from_user_memory follows has_userptr (the series' patch 7):
 *
 *   vm_radeonsi userptr   host with the series: the hook and the cap are
 *                         there, and a posix_memalign'd buffer becomes a
 *                         radeonsi buffer resource (the host imports it)
 *   vm_radeonsi copy      plain upstream host: no hook, no cap (frontends copy)
 *
 * No pipe_context is created: a context submits work of its own (preamble,
 * flushes), which the rig's counters (sim-counters) could not account for.
 * Prints "PASS/FAIL rig: CHECK" lines (vm-init prefixes the phase) and
 * STATS lines for the simulator's counters; exit status 1 on a FAIL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xf86drm.h>

#include "pipe/p_defines.h"
#include "pipe/p_screen.h"
#include "pipe/p_state.h"
#include "frontend/drm_driver.h"
#include "frontend/winsys_handle.h"
#include "util/xmlconfig.h"

#ifndef RSI_DRIVER
#define RSI_DRIVER "/rsi/lib/pipe_radeonsi.so"
#endif

static int failed;

#define PASS(...) do { printf("PASS rig: " __VA_ARGS__); printf("\n"); } while (0)
#define FAIL(...) do { printf("FAIL rig: " __VA_ARGS__); printf("\n"); failed = 1; } while (0)

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int want_userptr;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "userptr"))
		want_userptr = 1;
	else if (!strcmp(mode, "copy"))
		want_userptr = 0;
	else {
		FAIL("usage: vm_radeonsi userptr|copy (got \"%s\")", mode);
		return 1;
	}

	int fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	drmVersionPtr ver = fd >= 0 ? drmGetVersion(fd) : NULL;
	if (!ver || strcmp(ver->name, "virtio_gpu")) {
		FAIL("screen: /dev/dri/renderD128 is not virtio_gpu (%s)", ver ? ver->name : strerror(errno));
		return 1;
	}
	drmFreeVersion(ver);

	void *so = dlopen(RSI_DRIVER, RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		FAIL("screen: dlopen %s: %s", RSI_DRIVER, dlerror());
		return 1;
	}
	const struct drm_driver_descriptor *desc = dlsym(so, "driver_descriptor");
	if (!desc || !desc->create_screen || strcmp(desc->driver_name, "radeonsi")) {
		FAIL("screen: %s has no radeonsi driver_descriptor", RSI_DRIVER);
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
		FAIL("screen: radeonsi's create_screen on the virtio-gpu fd returned NULL");
		return 1;
	}
	PASS("screen (%s driver_descriptor->create_screen on the virtio-gpu fd: \"%s\", vendor \"%s\")",
	     RSI_DRIVER, screen->get_name(screen), screen->get_vendor(screen));

	int hook = screen->resource_from_user_memory != NULL;
	int cap = screen->caps.resource_from_user_memory;
	if (hook == want_userptr && cap == want_userptr)
		PASS("hook-follows-userptr (resource_from_user_memory hook %s, caps.resource_from_user_memory %d: %s)",
		     hook ? "installed" : "absent", cap,
		     want_userptr ? "the host has userptr (series), zero-copy offered"
				  : "no host userptr (plain upstream): frontends take the copy path");
	else
		FAIL("hook-follows-userptr: hook %s, cap %d, expected %s (host %s)",
		     hook ? "installed" : "absent", cap, want_userptr ? "both" : "neither",
		     want_userptr ? "with the series" : "without userptr");

	if (want_userptr && hook) {
		const unsigned size = 64 * 1024;
		uint32_t *mem = NULL;
		if (posix_memalign((void **)&mem, 4096, size) || !mem) {
			FAIL("user-buffer: posix_memalign");
			return 1;
		}
		for (unsigned i = 0; i < size / 4; i++)
			mem[i] = 0x52510000u ^ (i * 2654435761u);
		struct pipe_resource templ;
		memset(&templ, 0, sizeof(templ));
		templ.target = PIPE_BUFFER;
		templ.format = PIPE_FORMAT_R8_UNORM;
		templ.width0 = size;
		templ.height0 = templ.depth0 = templ.array_size = 1;
		templ.usage = PIPE_USAGE_STAGING;
		templ.bind = PIPE_BIND_SHADER_BUFFER | PIPE_BIND_GLOBAL;
		struct pipe_resource *res = screen->resource_from_user_memory(screen, &templ, mem);
		struct winsys_handle wh;
		memset(&wh, 0, sizeof(wh));
		wh.type = WINSYS_HANDLE_TYPE_KMS;
		if (!res) {
			FAIL("user-buffer: resource_from_user_memory(%p, 64 KiB) returned NULL", (void *)mem);
		} else if (res->width0 != size || res->target != PIPE_BUFFER) {
			FAIL("user-buffer: resource width0 %u target %d", res->width0, res->target);
		} else if (!screen->resource_get_handle(screen, NULL, res, &wh, 0) || !wh.handle) {
			FAIL("user-buffer: resource_get_handle(KMS) of the user-memory buffer failed");
		} else {
			PASS("user-buffer (posix_memalign'd 64 KiB at %p: resource_from_user_memory -> radeonsi buffer, "
			     "KMS handle (res_id) %u: the host imported it as a userptr)", (void *)mem, wh.handle);
		}
		if (res) {
			screen->resource_destroy(screen, res);
			/* the host's userptr window goes with the BO: one invalidation */
			printf("STATS userptr_invalidations 1\n");
		}
		int intact = 1;
		for (unsigned i = 0; i < size / 4; i++)
			intact &= mem[i] == (0x52510000u ^ (i * 2654435761u));
		if (intact)
			PASS("user-buffer-destroy (resource_destroy; the application's memory unchanged, freed by it)");
		else
			FAIL("user-buffer-destroy: the application's memory changed");
		free(mem);
	}

	screen->destroy(screen);
	driDestroyOptionCache(&options);
	driDestroyOptionInfo(&info);
	close(fd);
	return failed;
}
