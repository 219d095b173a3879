/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * A simulated amdgpu kernel driver on Mesa's drm-shim: the host GPU of every
 * test.  It answers the amdgpu UAPI of Linux 6.12 (DRM 3.61) and executes
 * the SDMA and PM4 packets it is sent on host memory, so tests check bytes.
 *
 * Layout: amdgpu_sim.c (device, ioctl table, libc entry points),
 * amdgpu_sim_info.c (AMDGPU_INFO), amdgpu_sim_bo.c (GEM, userptr, prime),
 * amdgpu_sim_vm.c (per-file GPU VM), amdgpu_sim_hmm.c (userptr
 * invalidation), amdgpu_sim_cs.c (contexts, submissions, fences,
 * syncobjs), amdgpu_sim_exec.c (packet execution).
 */
#ifndef AMDGPU_SIM_H
#define AMDGPU_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "drm-uapi/amdgpu_drm.h"
#include "drm_shim.h"
#include "util/hash_table.h"
#include "util/list.h"

#include "amdgpu_sim_stats.h"

#define SIM_PAGE_SIZE 4096ull

/* Linux 6.12: drivers/gpu/drm/amd/amdgpu/amdgpu_vm.h and amdgpu_gmc.h. */
#define SIM_VA_RESERVED_BOTTOM (1ull << 16)
#define SIM_VA_RESERVED_TOP ((1ull << 16) + (2ull << 20) + (2ull << 20))
#define SIM_GMC_HOLE_START 0x0000800000000000ull
#define SIM_GMC_HOLE_END 0xffff800000000000ull
#define SIM_GMC_HOLE_MASK 0x0000ffffffffffffull
#define SIM_VM_SIZE (1ull << 48)	/* max_pfn * 4 KiB on GFX9+ */

enum sim_userptr_state {
	SIM_USERPTR_VALID,		/* pages current, GPU may use them */
	SIM_USERPTR_INVALIDATING,	/* invalidation waits for the GPU */
	SIM_USERPTR_INVALID,		/* pages gone: revalidate at next CS */
};

struct sim_bo {
	struct shim_bo base;		/* first: drm-shim's handle table */
	_Atomic int refs;
	uint64_t size;
	uint32_t domains;
	uint64_t flags;			/* AMDGPU_GEM_CREATE_* */
	uint8_t *cpu;			/* where the GPU reads and writes */
	_Atomic uint64_t last_seq;	/* last submission listing this BO */
	struct sim_bo_owner *owner;	/* the file that created it */

	/* metadata (AMDGPU_GEM_METADATA) */
	uint64_t tiling_info;
	uint32_t metadata_size;
	uint32_t metadata[64];

	/* userptr: like an mmu_interval_notifier over [userptr, +size) */
	bool is_userptr;
	bool readonly;
	uint32_t userptr_flags;
	uintptr_t userptr;
	_Atomic int state;		/* enum sim_userptr_state */
	_Atomic uint64_t notifier_seq;
	uint64_t drain_seq;		/* jobs up to this one may finish */
	struct list_head userptr_link;	/* sim.userptrs, under notifier_lock */
};

struct sim_mapping {
	uint64_t start, end;		/* GPU VA [start, end) */
	uint64_t offset;		/* in the BO */
	uint32_t flags;			/* AMDGPU_VM_PAGE_* */
	struct sim_bo *bo;		/* holds a reference */
};

struct sim_vm {
	pthread_rwlock_t lock;		/* writers: GEM_VA; readers: the GPU */
	struct sim_mapping *maps;	/* sorted by start, no overlap */
	unsigned count, capacity;
};

struct sim_syncobj_point {
	uint64_t point;
	uint64_t seq;			/* GPU sequence number; 0: signalled stub */
};

struct sim_syncobj {
	int refcount;
	unsigned count, capacity;	/* 0: no fence attached */
	struct sim_syncobj_point *points;
};

/* Per DRM file (one per open() of the render node, shared by dup()). */
struct sim_file {
	struct shim_fd *shim_fd;
	struct sim_vm vm;
	pthread_mutex_t lock;		/* the tables below */
	struct hash_table *contexts;	/* id -> struct sim_ctx * */
	struct hash_table *bo_lists;	/* id -> struct sim_bo_list * */
	struct hash_table *syncobjs;	/* handle -> struct sim_syncobj * */
	uint32_t next_ctx, next_list, next_syncobj;
	uint64_t last_seq;		/* last submission of this file */
	struct sim_bo_owner *owner;	/* of the BOs this file created */
};

/* A context's ring (amdgpu's ctx entity): its fences are numbered from 1
 * in submission order, as amdgpu does, and map to GPU sequence numbers. */
#define SIM_ENTITY_SLOTS 256
struct sim_entity {
	uint64_t next;				/* next fence number */
	uint64_t gseq[SIM_ENTITY_SLOTS];	/* of the recent ones */
};

/* Rings per IP: Linux 6.12 takes 4 compute rings (AMDGPU_MAX_COMPUTE_RINGS
 * per context entity), 2 SDMA and 1 GFX on the simulated ASICs. */
#define SIM_MAX_RINGS 4

struct sim_ctx {
	uint32_t id;
	uint32_t priority;
	uint32_t stable_pstate;		/* the device's when it took it over */
	struct sim_entity *entities[AMDGPU_HW_IP_NUM][SIM_MAX_RINGS];
};

struct sim_bo_list {
	unsigned count;
	uint32_t *handles;
};

struct sim_ib {
	uint64_t va;
	uint32_t bytes;
	uint32_t ip_type;
	uint32_t ring;
};

struct sim_job {
	struct sim_job *next;
	struct sim_file *file;
	uint64_t seq;			/* GPU order */
	uint64_t fence_value;		/* the context ring's fence number */
	unsigned num_ibs;
	struct sim_ib ibs[8];
	struct sim_bo *fence_bo;	/* CHUNK_ID_FENCE: seq written here */
	uint64_t fence_offset;
	unsigned num_bos;
	struct sim_bo **bos;		/* references held until completion */
};

struct sim_device {
	const struct amdgpu_device *asic;
	uint8_t *gem_base;		/* the whole drm-shim memfd, mapped */

	pthread_mutex_t lock;		/* queue, sequence numbers, files */
	pthread_cond_t queued;		/* a job was queued */
	pthread_cond_t completed;	/* a job completed */
	struct sim_job *head, *tail;
	uint64_t submitted_seq, completed_seq;
	struct hash_table_u64 *fence_errors;	/* seq -> -errno */
	struct hash_table *files;		/* shim_fd -> struct sim_file */
	struct hash_table *export_fds;		/* fd + 1 -> struct sim_export */
	struct sim_sync_signal *sync_pending;	/* sync files not yet signalled */
	bool worker_running;
	pthread_t worker;

	/* HMM: held across an invalidation, like adev->notifier_lock */
	pthread_mutex_t notifier_lock;
	pthread_cond_t notifier_idle;	/* invalidations_active dropped */
	unsigned invalidations_active;
	struct list_head userptrs;
	_Atomic unsigned num_userptrs;

	struct amdgpu_sim_stats stats;	/* updated with atomics */

	/* AMDGPU_CTX_OP_*_STABLE_PSTATE: the device's level (a
	 * AMDGPU_CTX_STABLE_PSTATE_* value) and the context that set it,
	 * under lock, as adev->pm.stable_pstate_ctx */
	uint32_t stable_pstate;
	struct sim_ctx *stable_pstate_ctx;
};

extern struct sim_device sim;

#define SIM_STAT_SUB(field, v) SIM_STAT_ADD(field, -(uint64_t)(v))
#define SIM_STAT_ADD(field, v) \
	atomic_fetch_add_explicit((_Atomic uint64_t *)&sim.stats.field, (v), \
				  memory_order_relaxed)

/* amdgpu_sim.c */
struct sim_file *sim_file_get(int fd);
uint64_t sim_monotonic_ns(void);
bool sim_wait_seq(uint64_t seq, uint64_t abs_timeout_ns);
int sim_fence_error(uint64_t seq);

/* libc's close(), under drm-shim's wrapper and ours */
int drm_shim_libc_close(int fd);
extern int (*sim_real_munmap)(void *, size_t);
extern void *(*sim_real_mmap)(void *, size_t, int, int, int, off_t);
extern void *(*sim_real_mremap)(void *, size_t, size_t, int, ...);
extern int (*sim_real_madvise)(void *, size_t, int);
extern int (*sim_real_mprotect)(void *, size_t, int);

/* amdgpu_sim_info.c */
int sim_ioctl_info(int fd, unsigned long request, void *arg);
void sim_select_asic(void);
/* AMDGPU_INFO_HW_IP_INFO's available_rings of an IP type */
uint32_t sim_ip_available_rings(uint32_t type);
/* On-chip memory, as Linux 6.12 sets it up for GFX9 and GFX10 (gds_size
 * 64 KiB, gws_size 64, oa_size 16): its size in a GEM domain's units. */
#define SIM_GDS_SIZE (64u * 1024)
#define SIM_GWS_SIZE 64u
#define SIM_OA_SIZE 16u
uint64_t sim_on_chip_size(uint32_t domain);

/* amdgpu_sim_bo.c */
int sim_ioctl_gem_create(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_mmap(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_userptr(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_metadata(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_wait_idle(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_op(int fd, unsigned long request, void *arg);
int sim_ioctl_gem_close(int fd, void *arg);
int sim_ioctl_prime_handle_to_fd(int fd, void *arg);
int sim_ioctl_prime_fd_to_handle(int fd, void *arg);
void sim_bo_ref(struct sim_bo *bo);
void sim_bo_unref(struct sim_bo *bo);
void sim_bo_drop_handles(struct shim_fd *shim_fd);
struct sim_bo *sim_bo_lookup(struct sim_file *file, uint32_t handle);
void *sim_export_mmap(int fd, void *addr, size_t length, int prot,
		      int flags, off_t offset, bool *handled);
void sim_export_close(int fd);
int sim_export_fd(int type, void *object);
int sim_export_install(int type, void *object, int efd);
struct sim_bo_owner *sim_bo_owner_new(void);
void sim_bo_owner_file_closed(struct sim_bo_owner *owner);
void *sim_export_lookup(int fd, int type);

enum { SIM_EXPORT_DMABUF = 1, SIM_EXPORT_SYNCOBJ, SIM_EXPORT_SYNC_FILE };

/* amdgpu_sim_vm.c */
void sim_vm_init(struct sim_vm *vm);
void sim_vm_fini(struct sim_vm *vm);
void sim_vm_remove_bo(struct sim_vm *vm, struct sim_bo *bo);
int sim_ioctl_gem_va(int fd, unsigned long request, void *arg);
/* GPU accesses, with vm->lock held for reading.  A VM fault is counted
 * and the access goes on (reads give zeroes, writes are dropped), as Linux
 * 6.12 without retry faults: they return 0.  sim_gpu_fetch() is the CP's
 * IB fetch: -EFAULT when any of it faulted. */
int sim_gpu_read(struct sim_vm *vm, uint64_t va, void *dst, uint64_t len);
int sim_gpu_fetch(struct sim_vm *vm, uint64_t va, void *dst, uint64_t len);
int sim_gpu_write(struct sim_vm *vm, uint64_t va, const void *src,
		  uint64_t len);
int sim_gpu_copy(struct sim_vm *vm, uint64_t dst, uint64_t src, uint64_t len);
int sim_gpu_fill(struct sim_vm *vm, uint64_t va, uint32_t value,
		 uint64_t len);

/* amdgpu_sim_hmm.c */
int sim_userptr_register(struct sim_bo *bo);
void sim_userptr_unregister(struct sim_bo *bo);
int sim_userptr_validate(struct sim_bo *bo);
int sim_userptr_validate_locked(struct sim_bo *bo);
struct sim_invalidation {
	unsigned count;
	struct sim_bo *bos[];		/* references held */
};
struct sim_invalidation *sim_invalidate_begin(uintptr_t start, size_t len);
void sim_invalidate_end(struct sim_invalidation *inv);
void sim_wait_invalidations_locked(void);
bool sim_userptr_usable(const struct sim_bo *bo);

/* amdgpu_sim_cs.c */
int sim_ioctl_ctx(int fd, unsigned long request, void *arg);
int sim_ioctl_bo_list(int fd, unsigned long request, void *arg);
int sim_ioctl_cs(int fd, unsigned long request, void *arg);
int sim_ioctl_wait_cs(int fd, unsigned long request, void *arg);
int sim_ioctl_wait_fences(int fd, unsigned long request, void *arg);
int sim_ioctl_fence_to_handle(int fd, unsigned long request, void *arg);
int sim_ioctl_syncobj(int fd, unsigned long request, void *arg, bool *handled);
void sim_file_destroy_tables(struct sim_file *file);
void sim_syncobj_unref(struct sim_syncobj *obj);

/* amdgpu_sim_exec.c */
int sim_execute_ib(struct sim_vm *vm, const struct sim_ib *ib);

#endif /* AMDGPU_SIM_H */
