/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The simulated amdgpu device: driver registration with drm-shim, the ioctl
 * table, and the libc entry points the simulator needs on top of
 * drm-shim's (the archive's ioctl/mmap/close are renamed to drm_shim_libc_*
 * at build time so that these wrap them).
 */

/* The entry points below are both mmap and mmap64: no header redirection. */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "amdgpu_devices.h"
#include "amdgpu_sim.h"

#define SIM_PUBLIC __attribute__((visibility("default")))

struct sim_device sim;
bool drm_shim_driver_prefers_first_render_node = true;

int drm_shim_libc_ioctl(int fd, unsigned long request, ...);
void *drm_shim_libc_mmap(void *addr, size_t len, int prot, int flags, int fd,
			 off_t offset);
void *drm_shim_libc_mmap64(void *addr, size_t len, int prot, int flags,
			   int fd, off64_t offset);

int (*sim_real_munmap)(void *, size_t);
void *(*sim_real_mmap)(void *, size_t, int, int, int, off_t);
void *(*sim_real_mremap)(void *, size_t, size_t, int, ...);
int (*sim_real_madvise)(void *, size_t, int);
int (*sim_real_mprotect)(void *, size_t, int);

static void
sim_resolve_libc(void)
{
	if (sim_real_munmap)
		return;
	sim_real_mmap = dlsym(RTLD_NEXT, "mmap");
	sim_real_mremap = dlsym(RTLD_NEXT, "mremap");
	sim_real_madvise = dlsym(RTLD_NEXT, "madvise");
	sim_real_mprotect = dlsym(RTLD_NEXT, "mprotect");
	sim_real_munmap = dlsym(RTLD_NEXT, "munmap");
	if (!sim_real_mmap || !sim_real_mremap || !sim_real_madvise ||
	    !sim_real_mprotect || !sim_real_munmap) {
		fprintf(stderr, "amdgpu-sim: cannot resolve libc memory calls\n");
		abort();
	}
}

uint64_t
sim_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Waits until the GPU completed @seq or the absolute CLOCK_MONOTONIC time
 * @abs_timeout_ns passed; returns whether it completed. */
bool
sim_wait_seq(uint64_t seq, uint64_t abs_timeout_ns)
{
	bool done;

	pthread_mutex_lock(&sim.lock);
	while (sim.completed_seq < seq) {
		if (abs_timeout_ns == UINT64_MAX) {
			pthread_cond_wait(&sim.completed, &sim.lock);
			continue;
		}
		if (sim_monotonic_ns() >= abs_timeout_ns)
			break;
		struct timespec ts = {
			.tv_sec = abs_timeout_ns / 1000000000ull,
			.tv_nsec = abs_timeout_ns % 1000000000ull,
		};
		pthread_cond_timedwait(&sim.completed, &sim.lock, &ts);
	}
	done = sim.completed_seq >= seq;
	pthread_mutex_unlock(&sim.lock);
	return done;
}

int
sim_fence_error(uint64_t seq)
{
	pthread_mutex_lock(&sim.lock);
	int err = (int)(intptr_t)_mesa_hash_table_u64_search(sim.fence_errors,
							     seq);
	pthread_mutex_unlock(&sim.lock);
	return err;
}

SIM_PUBLIC void
amdgpu_sim_get_stats(struct amdgpu_sim_stats *out)
{
	uint64_t *dst = (uint64_t *)out;
	_Atomic uint64_t *src = (_Atomic uint64_t *)&sim.stats;

	for (unsigned i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = atomic_load(&src[i]);
	/* the notifier count the HMM interposers keep anyway */
	out->live_userptrs = atomic_load(&sim.num_userptrs);
}

static pid_t sim_stats_pid;

static void
sim_write_stats_file(void)
{
	const char *path = getenv("AMDGPU_SIM_STATS");
	struct amdgpu_sim_stats s;
	FILE *f;

	/* A forked child runs atexit handlers too, with a copy of the
	 * counters: only the process that loaded the device writes them. */
	if (!path || !*path || getpid() != sim_stats_pid)
		return;
	f = fopen(path, "w");
	if (!f)
		return;
	/* The GPU thread frees a job, and drops its BO references, just after
	 * signalling it: give the last jobs up to a second, so the gauges are
	 * what is left behind, not what is about to go. */
	for (int i = 0; i < 1000; i++) {
		amdgpu_sim_get_stats(&s);
		if (!s.live_jobs)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	fprintf(f, "submissions %llu\njobs_completed %llu\npackets %llu\n"
		"bytes_moved %llu\ngpu_faults %llu\nbad_packets %llu\n"
		"userptr_invalidations %llu\nuserptr_revalidations %llu\n"
		"invalidation_waits %llu\nlive_bos %llu\nlive_userptrs %llu\n"
		"live_files %llu\nlive_contexts %llu\n"
		"live_bos_of_closed_files %llu\nlive_jobs %llu\n",
		(unsigned long long)s.submissions,
		(unsigned long long)s.jobs_completed,
		(unsigned long long)s.packets,
		(unsigned long long)s.bytes_moved,
		(unsigned long long)s.gpu_faults,
		(unsigned long long)s.bad_packets,
		(unsigned long long)s.userptr_invalidations,
		(unsigned long long)s.userptr_revalidations,
		(unsigned long long)s.invalidation_waits,
		(unsigned long long)s.live_bos,
		(unsigned long long)s.live_userptrs,
		(unsigned long long)s.live_files,
		(unsigned long long)s.live_contexts,
		(unsigned long long)s.live_bos_of_closed_files,
		(unsigned long long)s.live_jobs);
	fclose(f);
}

/* The per-file state, created at the first ioctl of an opened render node. */
struct sim_file *
sim_file_get(int fd)
{
	struct shim_fd *shim_fd = drm_shim_fd_lookup(fd);
	struct sim_file *file;
	struct hash_entry *e;

	if (!shim_fd)
		return NULL;
	pthread_mutex_lock(&sim.lock);
	e = _mesa_hash_table_search(sim.files, shim_fd);
	if (e) {
		pthread_mutex_unlock(&sim.lock);
		return e->data;
	}
	file = calloc(1, sizeof(*file));
	/* no owner would leave the file's BOs out of the leak gauges */
	if (file)
		file->owner = sim_bo_owner_new();
	if (!file || !file->owner) {
		pthread_mutex_unlock(&sim.lock);
		free(file);
		return NULL;
	}
	file->shim_fd = shim_fd;
	sim_vm_init(&file->vm);
	pthread_mutex_init(&file->lock, NULL);
	file->contexts = _mesa_pointer_hash_table_create(NULL);
	file->bo_lists = _mesa_pointer_hash_table_create(NULL);
	file->syncobjs = _mesa_pointer_hash_table_create(NULL);
	file->next_ctx = file->next_list = file->next_syncobj = 1;
	_mesa_hash_table_insert(sim.files, shim_fd, file);
	pthread_mutex_unlock(&sim.lock);
	SIM_STAT_ADD(live_files, 1);
	return file;
}

/* Last close of a DRM file: like amdgpu_driver_postclose_kms, wait for the
 * file's submissions, then drop its VM, contexts, lists and syncobjs. */
static void
sim_file_release(struct shim_fd *shim_fd)
{
	struct sim_file *file = NULL;
	struct hash_entry *e;

	pthread_mutex_lock(&sim.lock);
	e = _mesa_hash_table_search(sim.files, shim_fd);
	if (e) {
		file = e->data;
		_mesa_hash_table_remove(sim.files, e);
	}
	pthread_mutex_unlock(&sim.lock);
	if (!file)
		return;

	sim_wait_seq(file->last_seq, UINT64_MAX);
	sim_file_destroy_tables(file);
	sim_vm_fini(&file->vm);
	if (file->owner)
		sim_bo_owner_file_closed(file->owner);
	pthread_mutex_destroy(&file->lock);
	free(file);
	SIM_STAT_SUB(live_files, 1);
}

typedef int (*sim_ioctl_fn)(int fd, unsigned long request, void *arg);

struct sim_ioctl_desc {
	unsigned long request;		/* full code: its size is the kernel's */
	sim_ioctl_fn fn;
};

static int
sim_ioctl_vm(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_vm *vm = arg;

	switch (vm->in.op) {
	case AMDGPU_VM_OP_RESERVE_VMID:
	case AMDGPU_VM_OP_UNRESERVE_VMID:
		return 0;
	default:
		return -EINVAL;
	}
}

static int
sim_ioctl_sched(int fd, unsigned long request, void *arg)
{
	/* Needs DRM master or CAP_SYS_NICE: a render node client has neither. */
	return -EPERM;
}

#define SIM_IOCTL(name, fn) \
	[DRM_AMDGPU_##name] = { DRM_IOCTL_AMDGPU_##name, fn }

/* Linux 6.12's amdgpu ioctls; later ones (user queues) are unknown. */
static const struct sim_ioctl_desc sim_ioctls[] = {
	SIM_IOCTL(GEM_CREATE, sim_ioctl_gem_create),
	SIM_IOCTL(GEM_MMAP, sim_ioctl_gem_mmap),
	SIM_IOCTL(CTX, sim_ioctl_ctx),
	SIM_IOCTL(BO_LIST, sim_ioctl_bo_list),
	SIM_IOCTL(CS, sim_ioctl_cs),
	SIM_IOCTL(INFO, sim_ioctl_info),
	SIM_IOCTL(GEM_METADATA, sim_ioctl_gem_metadata),
	SIM_IOCTL(GEM_WAIT_IDLE, sim_ioctl_gem_wait_idle),
	SIM_IOCTL(GEM_VA, sim_ioctl_gem_va),
	SIM_IOCTL(WAIT_CS, sim_ioctl_wait_cs),
	SIM_IOCTL(GEM_OP, sim_ioctl_gem_op),
	SIM_IOCTL(GEM_USERPTR, sim_ioctl_gem_userptr),
	SIM_IOCTL(WAIT_FENCES, sim_ioctl_wait_fences),
	SIM_IOCTL(VM, sim_ioctl_vm),
	SIM_IOCTL(FENCE_TO_HANDLE, sim_ioctl_fence_to_handle),
	SIM_IOCTL(SCHED, sim_ioctl_sched),
};

/* Like drm_ioctl(): the handler works on a kernel-sized copy of the
 * argument, zero-extended from what the caller passed. */
static int
sim_driver_ioctl(int fd, unsigned long request, void *uarg)
{
	unsigned nr = _IOC_NR(request) - DRM_COMMAND_BASE;
	const struct sim_ioctl_desc *desc;
	size_t usize = _IOC_SIZE(request), ksize;
	uint8_t kbuf[512];
	int r;

	if (nr >= ARRAY_SIZE(sim_ioctls) || !sim_ioctls[nr].fn)
		return -EINVAL;
	desc = &sim_ioctls[nr];
	ksize = _IOC_SIZE(desc->request);
	if (ksize > sizeof(kbuf))
		return -EINVAL;
	memset(kbuf, 0, ksize);
	if (_IOC_DIR(request) & _IOC_WRITE)
		memcpy(kbuf, uarg, MIN2(usize, ksize));
	r = desc->fn(fd, desc->request, kbuf);
	if (_IOC_DIR(request) & _IOC_READ)
		memcpy(uarg, kbuf, MIN2(usize, ksize));
	return r;
}

static int
sim_get_cap(struct drm_get_cap *cap)
{
	switch (cap->capability) {
	case DRM_CAP_PRIME:
		cap->value = DRM_PRIME_CAP_IMPORT | DRM_PRIME_CAP_EXPORT;
		return 0;
	case DRM_CAP_SYNCOBJ:
	case DRM_CAP_SYNCOBJ_TIMELINE:
	case DRM_CAP_TIMESTAMP_MONOTONIC:
		cap->value = 1;
		return 0;
	default:
		return -EINVAL;
	}
}

static int
sim_dispatch(int fd, unsigned long request, void *arg)
{
	unsigned nr = _IOC_NR(request);
	bool handled = false;
	int r;

	if (_IOC_TYPE(request) != DRM_IOCTL_BASE)
		return -ENOTTY;
	if (nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END)
		return sim_driver_ioctl(fd, request, arg);

	switch (nr) {
	case _IOC_NR(DRM_IOCTL_GET_CAP):
		return sim_get_cap(arg);
	case _IOC_NR(DRM_IOCTL_GEM_CLOSE):
		return sim_ioctl_gem_close(fd, arg);
	case _IOC_NR(DRM_IOCTL_PRIME_HANDLE_TO_FD):
		return sim_ioctl_prime_handle_to_fd(fd, arg);
	case _IOC_NR(DRM_IOCTL_PRIME_FD_TO_HANDLE):
		return sim_ioctl_prime_fd_to_handle(fd, arg);
	case _IOC_NR(DRM_IOCTL_GEM_FLINK):
	case _IOC_NR(DRM_IOCTL_GEM_OPEN):
		return -EPERM;	/* not on render nodes */
	default:
		break;
	}
	r = sim_ioctl_syncobj(fd, request, arg, &handled);
	if (handled)
		return r;
	return drm_shim_ioctl(fd, request, arg);
}

SIM_PUBLIC int
ioctl(int fd, unsigned long request, ...)
{
	struct shim_fd *shim_fd = NULL;
	va_list ap;
	void *arg;
	int r;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);

	if (shim_device.fd_map)
		shim_fd = drm_shim_fd_lookup(fd);
	if (!shim_fd)
		return drm_shim_libc_ioctl(fd, request, arg);

	r = sim_dispatch(fd, request, arg);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return r;
}

SIM_PUBLIC int
close(int fd)
{
	if (shim_device.fd_map && fd >= 0) {
		struct shim_fd *shim_fd = drm_shim_fd_lookup(fd);

		if (shim_fd && __atomic_load_n(&shim_fd->refcount, __ATOMIC_ACQUIRE) == 1) {
			sim_file_release(shim_fd);
			sim_bo_drop_handles(shim_fd);
		}
		else if (!shim_fd)
			sim_export_close(fd);
	}
	return drm_shim_libc_close(fd);
}

static void
sim_invalidate_end_keep_errno(struct sim_invalidation *inv)
{
	int saved = errno;

	sim_invalidate_end(inv);
	errno = saved;
}

static void *
sim_mmap_common(void *addr, size_t len, int prot, int flags, int fd,
		off_t offset, bool is64)
{
	struct sim_invalidation *inv = NULL;
	bool handled = false;
	void *p;

	sim_resolve_libc();
	if (fd >= 0 && shim_device.fd_map) {
		p = sim_export_mmap(fd, addr, len, prot, flags, offset, &handled);
		if (handled)
			return p;
	}
	/* MAP_FIXED replaces whatever was mapped there: a notifier event. */
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE))
		inv = sim_invalidate_begin((uintptr_t)addr, len);
	if (is64)
		p = drm_shim_libc_mmap64(addr, len, prot, flags, fd, offset);
	else
		p = drm_shim_libc_mmap(addr, len, prot, flags, fd, offset);
	sim_invalidate_end_keep_errno(inv);
	return p;
}

SIM_PUBLIC void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset)
{
	return sim_mmap_common(addr, len, prot, flags, fd, offset, false);
}

SIM_PUBLIC void *
mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t offset)
{
	return sim_mmap_common(addr, len, prot, flags, fd, offset, true);
}

SIM_PUBLIC int
munmap(void *addr, size_t len)
{
	struct sim_invalidation *inv;
	int r;

	sim_resolve_libc();
	inv = sim_invalidate_begin((uintptr_t)addr, len);
	r = sim_real_munmap(addr, len);
	sim_invalidate_end_keep_errno(inv);
	return r;
}

SIM_PUBLIC void *
mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
	struct sim_invalidation *inv_new = NULL, *inv_old = NULL;
	void *new_addr = NULL, *p;
	va_list ap;

	sim_resolve_libc();
	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
		inv_new = sim_invalidate_begin((uintptr_t)new_addr, new_size);
	}
	/* old_size 0 duplicates a shared mapping and leaves the old one. */
	if (old_size && (new_size < old_size || (flags & MREMAP_MAYMOVE)))
		inv_old = sim_invalidate_begin((uintptr_t)old, old_size);
	if (flags & MREMAP_FIXED)
		p = sim_real_mremap(old, old_size, new_size, flags, new_addr);
	else
		p = sim_real_mremap(old, old_size, new_size, flags);
	sim_invalidate_end_keep_errno(inv_old);
	sim_invalidate_end_keep_errno(inv_new);
	return p;
}

SIM_PUBLIC int
madvise(void *addr, size_t len, int advice)
{
	struct sim_invalidation *inv = NULL;
	int r;

	sim_resolve_libc();
	switch (advice) {
	case MADV_DONTNEED:
	case MADV_FREE:
	case MADV_REMOVE:
	case MADV_PAGEOUT:
#ifdef MADV_DONTNEED_LOCKED
	case MADV_DONTNEED_LOCKED:
#endif
		inv = sim_invalidate_begin((uintptr_t)addr, len);
		break;
	default:
		break;
	}
	r = sim_real_madvise(addr, len, advice);
	sim_invalidate_end_keep_errno(inv);
	return r;
}

SIM_PUBLIC int
mprotect(void *addr, size_t len, int prot)
{
	struct sim_invalidation *inv;
	int r;

	sim_resolve_libc();
	inv = sim_invalidate_begin((uintptr_t)addr, len);
	r = sim_real_mprotect(addr, len, prot);
	sim_invalidate_end_keep_errno(inv);
	return r;
}

static void
sim_override_sysfs(void)
{
	char uevent[512];
	char id[16];
	uint32_t device_id = sim.asic->dev.device_id;

	snprintf(uevent, sizeof(uevent),
		 "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:%04X\n"
		 "PCI_SUBSYS_ID=1002:%04X\nPCI_SLOT_NAME=0000:03:00.0\n"
		 "MODALIAS=pci:v00001002d0000%04Xsv00001002sd0000%04Xbc03sc00i00\n",
		 device_id, device_id, device_id, device_id);
	drm_shim_override_file(uevent, "/sys/dev/char/%d:%d/device/uevent",
			       DRM_MAJOR, render_node_minor);
	snprintf(id, sizeof(id), "0x%04x\n", device_id);
	drm_shim_override_file(id, "/sys/dev/char/%d:%d/device/device",
			       DRM_MAJOR, render_node_minor);
	drm_shim_override_file(id, "/sys/dev/char/%d:%d/device/subsystem_device",
			       DRM_MAJOR, render_node_minor);
	drm_shim_override_file("0x1002\n", "/sys/dev/char/%d:%d/device/vendor",
			       DRM_MAJOR, render_node_minor);
	drm_shim_override_file("0x1002\n",
			       "/sys/dev/char/%d:%d/device/subsystem_vendor",
			       DRM_MAJOR, render_node_minor);
	snprintf(id, sizeof(id), "0x%02x\n", sim.asic->dev.pci_rev);
	drm_shim_override_file(id, "/sys/dev/char/%d:%d/device/revision",
			       DRM_MAJOR, render_node_minor);
}

/* Called by drm-shim once, at its first use. */
void
drm_shim_driver_init(void)
{
	static int (*const no_ioctls[1])(int, unsigned long, void *);
	pthread_condattr_t attr;

	sim_resolve_libc();
	sim_select_asic();

	pthread_mutex_init(&sim.lock, NULL);
	pthread_mutex_init(&sim.notifier_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&sim.queued, &attr);
	pthread_cond_init(&sim.completed, &attr);
	pthread_cond_init(&sim.notifier_idle, NULL);
	pthread_condattr_destroy(&attr);
	list_inithead(&sim.userptrs);
	sim.fence_errors = _mesa_hash_table_u64_create(NULL);
	sim.files = _mesa_pointer_hash_table_create(NULL);
	sim.export_fds = _mesa_pointer_hash_table_create(NULL);

	/* The GPU's view of every GEM BO: drm-shim keeps them in one memfd. */
	sim.gem_base = sim_real_mmap(NULL, 4ull << 30, PROT_READ | PROT_WRITE,
				     MAP_SHARED, shim_device.mem_fd, 0);
	if (sim.gem_base == MAP_FAILED) {
		fprintf(stderr, "amdgpu-sim: cannot map BO memory: %s\n",
			strerror(errno));
		abort();
	}

	shim_device.bus_type = DRM_BUS_PCI;
	shim_device.driver_name = "amdgpu";
	/* Driver ioctls are dispatched by sim_dispatch(), not by drm-shim. */
	shim_device.driver_ioctls = (void *)no_ioctls;
	shim_device.driver_ioctl_count = 0;
	shim_device.version_major = 3;	/* Linux 6.12: KMS_DRIVER 3.61.0 */
	shim_device.version_minor = 61;
	shim_device.version_patchlevel = 0;
	sim_override_sysfs();
	sim_stats_pid = getpid();
	atexit(sim_write_stats_file);
}
