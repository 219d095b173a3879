/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * Buffer objects: GEM_CREATE (VRAM and GTT are host memory in drm-shim's
 * memfd), GEM_MMAP, GEM_USERPTR with Linux 6.12's rules, metadata, GEM_OP,
 * GEM_CLOSE and PRIME export/import.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_sim.h"
#include "util/vma.h"

struct sim_export {
	int type;			/* SIM_EXPORT_* */
	void *object;
};

/*
 * Which file created a BO, so that BOs outliving their file can be counted
 * (live_bos_of_closed_files): a leak check that tells a guest context's
 * BOs from those of the VMM's own, still open, files.
 */
struct sim_bo_owner {
	unsigned alive;		/* BOs created by the file, not yet freed */
	bool closed;		/* the file is gone */
};

static pthread_mutex_t owner_lock = PTHREAD_MUTEX_INITIALIZER;

struct sim_bo_owner *
sim_bo_owner_new(void)
{
	return calloc(1, sizeof(struct sim_bo_owner));
}

void
sim_bo_owner_file_closed(struct sim_bo_owner *owner)
{
	pthread_mutex_lock(&owner_lock);
	owner->closed = true;
	SIM_STAT_ADD(live_bos_of_closed_files, owner->alive);
	if (!owner->alive)
		free(owner);
	pthread_mutex_unlock(&owner_lock);
}

static void
sim_bo_owner_set(struct sim_bo *bo, struct sim_bo_owner *owner)
{
	pthread_mutex_lock(&owner_lock);
	bo->owner = owner;
	owner->alive++;
	pthread_mutex_unlock(&owner_lock);
}

static void
sim_bo_owner_drop(struct sim_bo *bo)
{
	struct sim_bo_owner *owner = bo->owner;

	if (!owner)
		return;
	pthread_mutex_lock(&owner_lock);
	owner->alive--;
	if (owner->closed) {
		SIM_STAT_SUB(live_bos_of_closed_files, 1);
		if (!owner->alive)
			free(owner);
	}
	pthread_mutex_unlock(&owner_lock);
}

/*
 * Lifetime: drm-shim's own BO refcount cannot count more than one holder
 * (drm_shim_bo_put() frees unless the count drops to exactly zero), so the
 * simulator counts references itself: one per handle, VA mapping, queued
 * job, pending invalidation and exported dma-buf.  drm-shim only keeps
 * the handle table and the memfd space.
 */
void
sim_bo_ref(struct sim_bo *bo)
{
	atomic_fetch_add(&bo->refs, 1);
}

void
sim_bo_unref(struct sim_bo *bo)
{
	if (atomic_fetch_sub(&bo->refs, 1) != 1)
		return;
	if (bo->is_userptr)
		sim_userptr_unregister(bo);
	else	/* freed GEM memory reads back as zeroes when reused */
		fallocate(shim_device.mem_fd,
			  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  bo->base.mem_addr, bo->base.size);
	mtx_lock(&shim_device.mem_lock);
	_mesa_hash_table_u64_remove(shim_device.offset_map, bo->base.mem_addr);
	util_vma_heap_free(&shim_device.mem_heap, bo->base.mem_addr,
			   bo->base.size);
	mtx_unlock(&shim_device.mem_lock);
	sim_bo_owner_drop(bo);
	free(bo);
	SIM_STAT_SUB(live_bos, 1);
}

struct sim_bo *
sim_bo_lookup(struct sim_file *file, uint32_t handle)
{
	struct shim_fd *shim_fd = file->shim_fd;
	struct hash_entry *e;
	struct sim_bo *bo = NULL;

	if (!handle)
		return NULL;
	mtx_lock(&shim_fd->handle_lock);
	e = _mesa_hash_table_search(shim_fd->handles, (void *)(uintptr_t)handle);
	if (e) {
		bo = e->data;
		sim_bo_ref(bo);
	}
	mtx_unlock(&shim_fd->handle_lock);
	return bo;
}

/* A new handle in @shim_fd, holding its own reference. */
static uint32_t
sim_bo_add_handle(struct shim_fd *shim_fd, struct sim_bo *bo)
{
	sim_bo_ref(bo);
	return drm_shim_bo_get_handle(shim_fd, &bo->base);
}

/* Drops every handle of a DRM file that is being closed. */
void
sim_bo_drop_handles(struct shim_fd *shim_fd)
{
	mtx_lock(&shim_fd->handle_lock);
	hash_table_foreach(shim_fd->handles, e)
		sim_bo_unref(e->data);
	_mesa_hash_table_clear(shim_fd->handles, NULL);
	mtx_unlock(&shim_fd->handle_lock);
}

static void
sim_bo_put(struct sim_bo *bo)
{
	sim_bo_unref(bo);
}

static struct sim_bo *
sim_bo_alloc(uint64_t size)
{
	struct sim_bo *bo;

	/* drm-shim keeps BO sizes in 32 bits. */
	if (size == 0 || size > UINT32_MAX - SIM_PAGE_SIZE + 1)
		return NULL;
	bo = calloc(1, sizeof(*bo));
	if (!bo)
		return NULL;
	if (drm_shim_bo_init(&bo->base, size)) {
		free(bo);
		return NULL;
	}
	bo->size = size;
	bo->cpu = sim.gem_base + bo->base.mem_addr;
	atomic_init(&bo->refs, 1);
	SIM_STAT_ADD(live_bos, 1);
	return bo;
}

/* Hands the creator's reference over to a new handle. */
static uint32_t
sim_bo_publish(struct sim_file *file, struct sim_bo *bo)
{
	uint32_t handle;

	if (file->owner)
		sim_bo_owner_set(bo, file->owner);
	handle = sim_bo_add_handle(file->shim_fd, bo);

	sim_bo_put(bo);
	return handle;
}

/* amdgpu_gem_are_domains_valid(): one special domain, alone. */
static bool
sim_domains_valid(uint32_t domains)
{
	const uint32_t special = AMDGPU_GEM_DOMAIN_GDS | AMDGPU_GEM_DOMAIN_GWS |
				 AMDGPU_GEM_DOMAIN_OA | AMDGPU_GEM_DOMAIN_DOORBELL;

	return !(domains & special) || !(domains & (domains - 1));
}

int
sim_ioctl_gem_create(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_gem_create *args = arg;
	struct sim_file *file = sim_file_get(fd);
	uint64_t flags = args->in.domain_flags;
	uint64_t size = args->in.bo_size;
	struct sim_bo *bo;

	if (!file)
		return -EBADF;
	if (args->in.domains & AMDGPU_GEM_DOMAIN_DOORBELL)
		return -EINVAL;
	if (flags & ~(AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED |
		      AMDGPU_GEM_CREATE_NO_CPU_ACCESS |
		      AMDGPU_GEM_CREATE_CPU_GTT_USWC |
		      AMDGPU_GEM_CREATE_VRAM_CLEARED |
		      AMDGPU_GEM_CREATE_VM_ALWAYS_VALID |
		      AMDGPU_GEM_CREATE_EXPLICIT_SYNC |
		      AMDGPU_GEM_CREATE_ENCRYPTED |
		      AMDGPU_GEM_CREATE_GFX12_DCC |
		      AMDGPU_GEM_CREATE_DISCARDABLE))
		return -EINVAL;
	if (args->in.domains & ~AMDGPU_GEM_DOMAIN_MASK)
		return -EINVAL;
	if (!sim_domains_valid(args->in.domains))
		return -EINVAL;
	if (flags & AMDGPU_GEM_CREATE_ENCRYPTED)
		return -EINVAL;		/* no TMZ */
	/*
	 * GDS (bytes), GWS and OA (entries) are on-chip: a BO may not be
	 * per-VM, is never CPU-mapped, and cannot be bigger than the chip's
	 * (AMDGPU_INFO_GDS_CONFIG); the simulator keeps its contents as any
	 * BO's.  Placement across BOs is not modelled.
	 */
	if (args->in.domains & (AMDGPU_GEM_DOMAIN_GDS | AMDGPU_GEM_DOMAIN_GWS |
				AMDGPU_GEM_DOMAIN_OA)) {
		if (flags & AMDGPU_GEM_CREATE_VM_ALWAYS_VALID)
			return -EINVAL;
		if (size > sim_on_chip_size(args->in.domains))
			return -ENOMEM;
		flags |= AMDGPU_GEM_CREATE_NO_CPU_ACCESS;
	}

	size = (size + SIM_PAGE_SIZE - 1) & ~(SIM_PAGE_SIZE - 1);
	if (size == 0)
		return -EINVAL;
	bo = sim_bo_alloc(size);
	if (!bo)
		return -ENOMEM;
	bo->domains = args->in.domains;
	bo->flags = flags;

	memset(args, 0, sizeof(*args));
	args->out.handle = sim_bo_publish(file, bo);
	return 0;
}

/* The ioctl's file and the BO its handle names (a reference), or the
 * errno amdgpu gives: EBADF for a file it does not know, ENOENT for the
 * handle. */
static int
sim_bo_from_handle(int fd, uint32_t handle, struct sim_file **file,
		   struct sim_bo **bo)
{
	*file = sim_file_get(fd);
	if (!*file)
		return -EBADF;
	*bo = sim_bo_lookup(*file, handle);
	return *bo ? 0 : -ENOENT;
}

int
sim_ioctl_gem_mmap(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_gem_mmap *args = arg;
	struct sim_file *file;
	struct sim_bo *bo;
	int r = 0;

	if ((r = sim_bo_from_handle(fd, args->in.handle, &file, &bo)))
		return r;
	/* amdgpu_mode_dumb_mmap(): no CPU mapping of user memory. */
	if (bo->is_userptr || (bo->flags & AMDGPU_GEM_CREATE_NO_CPU_ACCESS))
		r = -EPERM;
	else
		args->out.addr_ptr =
			drm_shim_bo_get_mmap_offset(file->shim_fd, &bo->base);
	sim_bo_put(bo);
	return r;
}

int
sim_ioctl_gem_userptr(int fd, unsigned long request, void *arg)
{
	struct drm_amdgpu_gem_userptr *args = arg;
	struct sim_file *file = sim_file_get(fd);
	struct sim_bo *bo;
	int r;

	if (!file)
		return -EBADF;
	if ((args->addr | args->size) & (SIM_PAGE_SIZE - 1))
		return -EINVAL;
	if (args->flags & ~(AMDGPU_GEM_USERPTR_READONLY |
			    AMDGPU_GEM_USERPTR_ANONONLY |
			    AMDGPU_GEM_USERPTR_VALIDATE |
			    AMDGPU_GEM_USERPTR_REGISTER))
		return -EINVAL;
	/* To write it the GPU needs the notifier. */
	if (!(args->flags & AMDGPU_GEM_USERPTR_READONLY) &&
	    !(args->flags & AMDGPU_GEM_USERPTR_REGISTER))
		return -EACCES;
	if (args->addr + args->size < args->addr)
		return -EINVAL;

	bo = sim_bo_alloc(args->size);
	if (!bo)
		return args->size ? -ENOMEM : -EINVAL;
	bo->is_userptr = true;
	bo->domains = AMDGPU_GEM_DOMAIN_GTT;
	bo->userptr = args->addr;
	bo->userptr_flags = args->flags;
	bo->readonly = args->flags & AMDGPU_GEM_USERPTR_READONLY;
	bo->cpu = (uint8_t *)(uintptr_t)args->addr;
	atomic_store(&bo->state, SIM_USERPTR_INVALID);

	/* Linux 6.12 registers the notifier whatever the flags say. */
	r = sim_userptr_register(bo);
	if (!r && (args->flags & AMDGPU_GEM_USERPTR_VALIDATE))
		r = sim_userptr_validate(bo);
	if (r) {
		sim_bo_put(bo);
		return r;
	}
	args->handle = sim_bo_publish(file, bo);
	return 0;
}

int
sim_ioctl_gem_metadata(int fd, unsigned long request, void *arg)
{
	struct drm_amdgpu_gem_metadata *args = arg;
	struct sim_file *file;
	struct sim_bo *bo;
	int r = 0;

	if ((r = sim_bo_from_handle(fd, args->handle, &file, &bo)))
		return r;
	switch (args->op) {
	case AMDGPU_GEM_METADATA_OP_GET_METADATA:
		args->data.tiling_info = bo->tiling_info;
		args->data.data_size_bytes = bo->metadata_size;
		memcpy(args->data.data, bo->metadata, bo->metadata_size);
		break;
	case AMDGPU_GEM_METADATA_OP_SET_METADATA:
		if (args->data.data_size_bytes > sizeof(bo->metadata)) {
			r = -EINVAL;
			break;
		}
		bo->tiling_info = args->data.tiling_info;
		bo->metadata_size = args->data.data_size_bytes;
		memcpy(bo->metadata, args->data.data, bo->metadata_size);
		break;
	default:
		r = -EINVAL;
	}
	sim_bo_put(bo);
	return r;
}

int
sim_ioctl_gem_wait_idle(int fd, unsigned long request, void *arg)
{
	union drm_amdgpu_gem_wait_idle *args = arg;
	struct sim_file *file;
	uint64_t timeout = args->in.timeout;
	struct sim_bo *bo;
	bool idle;
	int r;

	if ((r = sim_bo_from_handle(fd, args->in.handle, &file, &bo)))
		return r;
	if (timeout != UINT64_MAX && timeout != 0 && timeout < sim_monotonic_ns())
		timeout = 0;
	idle = sim_wait_seq(atomic_load(&bo->last_seq), timeout);
	memset(args, 0, sizeof(*args));
	args->out.status = !idle;
	args->out.domain = bo->domains;
	sim_bo_put(bo);
	return 0;
}

int
sim_ioctl_gem_op(int fd, unsigned long request, void *arg)
{
	struct drm_amdgpu_gem_op *args = arg;
	struct sim_file *file;
	struct drm_amdgpu_gem_create_in info;
	struct sim_bo *bo;
	int r = 0;

	if ((r = sim_bo_from_handle(fd, args->handle, &file, &bo)))
		return r;
	switch (args->op) {
	case AMDGPU_GEM_OP_GET_GEM_CREATE_INFO:
		memset(&info, 0, sizeof(info));
		info.bo_size = bo->size;
		info.alignment = SIM_PAGE_SIZE;
		info.domains = bo->domains;
		info.domain_flags = bo->flags;
		memcpy((void *)(uintptr_t)args->value, &info, sizeof(info));
		break;
	case AMDGPU_GEM_OP_SET_PLACEMENT:
		if (bo->is_userptr) {
			r = -EPERM;
			break;
		}
		if (args->value & ~AMDGPU_GEM_DOMAIN_MASK || !args->value) {
			r = -EINVAL;
			break;
		}
		bo->domains = args->value;
		break;
	default:
		r = -EINVAL;
	}
	sim_bo_put(bo);
	return r;
}

/* Closing the handle drops the BO from this file's VM, as
 * amdgpu_gem_object_close() does, after the file's work that may use it. */
int
sim_ioctl_gem_close(int fd, void *arg)
{
	struct drm_gem_close *args = arg;
	struct sim_file *file = sim_file_get(fd);
	struct sim_bo *bo;

	if (!file)
		return -EBADF;
	bo = sim_bo_lookup(file, args->handle);
	if (!bo)
		return -EINVAL;
	sim_wait_seq(file->last_seq, UINT64_MAX);
	sim_vm_remove_bo(&file->vm, bo);
	mtx_lock(&file->shim_fd->handle_lock);
	struct hash_entry *e = _mesa_hash_table_search(file->shim_fd->handles,
				(void *)(uintptr_t)args->handle);
	if (e) {
		_mesa_hash_table_remove(file->shim_fd->handles, e);
		sim_bo_unref(bo);
	}
	mtx_unlock(&file->shim_fd->handle_lock);
	sim_bo_put(bo);
	return e ? 0 : -EINVAL;
}

/* Export fds stand for dma-bufs, syncobj files and sync files: a real fd,
 * so that close() and poll() behave, keyed in a table.  @efd becomes the
 * table's (closed on failure). */
int
sim_export_install(int type, void *object, int efd)
{
	struct sim_export *exp = calloc(1, sizeof(*exp));

	if (!exp) {
		drm_shim_libc_close(efd);
		return -ENOMEM;
	}
	exp->type = type;
	exp->object = object;
	pthread_mutex_lock(&sim.lock);
	_mesa_hash_table_insert(sim.export_fds, (void *)(uintptr_t)(efd + 1), exp);
	pthread_mutex_unlock(&sim.lock);
	return efd;
}

/* A dma-buf or syncobj file: a memfd, which poll() always finds ready. */
int
sim_export_fd(int type, void *object)
{
	int efd = memfd_create("amdgpu-sim-export", MFD_CLOEXEC);

	if (efd < 0)
		return -errno;
	return sim_export_install(type, object, efd);
}

void *
sim_export_lookup(int fd, int type)
{
	struct hash_entry *e;
	void *object = NULL;

	if (fd < 0)
		return NULL;
	pthread_mutex_lock(&sim.lock);
	e = _mesa_hash_table_search(sim.export_fds, (void *)(uintptr_t)(fd + 1));
	if (e && ((struct sim_export *)e->data)->type == type)
		object = ((struct sim_export *)e->data)->object;
	pthread_mutex_unlock(&sim.lock);
	return object;
}


void
sim_export_close(int fd)
{
	struct sim_export *exp = NULL;
	struct hash_entry *e;

	pthread_mutex_lock(&sim.lock);
	e = _mesa_hash_table_search(sim.export_fds, (void *)(uintptr_t)(fd + 1));
	if (e) {
		exp = e->data;
		_mesa_hash_table_remove(sim.export_fds, e);
	}
	pthread_mutex_unlock(&sim.lock);
	if (!exp)
		return;
	if (exp->type == SIM_EXPORT_DMABUF)
		sim_bo_put(exp->object);
	else if (exp->type == SIM_EXPORT_SYNCOBJ)
		sim_syncobj_unref(exp->object);
	else
		free(exp->object);
	free(exp);
}

void *
sim_export_mmap(int fd, void *addr, size_t length, int prot, int flags,
		off_t offset, bool *handled)
{
	struct sim_bo *bo = sim_export_lookup(fd, SIM_EXPORT_DMABUF);

	*handled = bo != NULL;
	if (!bo)
		return NULL;
	if (offset < 0 || (uint64_t)offset + length > bo->size) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	return sim_real_mmap(addr, length, prot, flags, shim_device.mem_fd,
			     bo->base.mem_addr + offset);
}

int
sim_ioctl_prime_handle_to_fd(int fd, void *arg)
{
	struct drm_prime_handle *args = arg;
	struct sim_file *file = sim_file_get(fd);
	struct sim_bo *bo;
	int efd;

	if (!file)
		return -EBADF;
	if (args->flags & ~(DRM_CLOEXEC | DRM_RDWR))
		return -EINVAL;
	bo = sim_bo_lookup(file, args->handle);
	if (!bo)
		return -ENOENT;
	/* amdgpu_gem_prime_export(): user memory and per-VM BOs stay private. */
	if (bo->is_userptr || (bo->flags & AMDGPU_GEM_CREATE_VM_ALWAYS_VALID)) {
		sim_bo_put(bo);
		return -EPERM;
	}
	efd = sim_export_fd(SIM_EXPORT_DMABUF, bo);	/* keeps the reference */
	if (efd < 0) {
		sim_bo_put(bo);
		return efd;
	}
	args->fd = efd;
	return 0;
}

int
sim_ioctl_prime_fd_to_handle(int fd, void *arg)
{
	struct drm_prime_handle *args = arg;
	struct sim_file *file = sim_file_get(fd);
	struct shim_fd *shim_fd;
	struct sim_bo *bo;

	if (!file)
		return -EBADF;
	bo = sim_export_lookup(args->fd, SIM_EXPORT_DMABUF);
	if (!bo)
		return fcntl(args->fd, F_GETFD) < 0 ? -EBADF : -EINVAL;

	/* One handle per BO and file, as drm_gem_prime_fd_to_handle(). */
	shim_fd = file->shim_fd;
	mtx_lock(&shim_fd->handle_lock);
	hash_table_foreach(shim_fd->handles, e) {
		if (e->data == &bo->base) {
			args->handle = (uint32_t)(uintptr_t)e->key;
			mtx_unlock(&shim_fd->handle_lock);
			return 0;
		}
	}
	mtx_unlock(&shim_fd->handle_lock);
	args->handle = sim_bo_add_handle(shim_fd, bo);
	return 0;
}
