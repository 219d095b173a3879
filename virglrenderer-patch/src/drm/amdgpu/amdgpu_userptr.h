/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

/*
 * Guest userptr resources for the AMD native context.
 *
 * A guest hands over a list of its RAM pages (as the VMM's iovecs into guest
 * RAM).  This file makes them one contiguous host range without copying (a
 * reserved VA window into which each run of guest RAM is aliased), imports
 * that range into amdgpu as a userptr BO, and keeps it coherent: detach
 * replaces the window with PROT_NONE, which makes host amdgpu's HMM notifier
 * wait until the GPU is done with the old pages; attach aliases the new
 * pages into the same range and amdgpu revalidates the BO at its next CS.
 *
 * Nothing here knows virglrenderer's types: the glue passes iovecs and
 * res_ids and keeps the returned GEM handle in its BO table.
 */

#ifndef AMDGPU_USERPTR_H
#define AMDGPU_USERPTR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct amdgpu_userptr;
struct amdgpu_userptr_table;
struct amdgpu_userptr_vm;

typedef void (*amdgpu_userptr_log_fn)(void *data, const char *fmt, ...)
   __attribute__((format(printf, 2, 3)));

/*
 * What all contexts of one VMM process share: its guest RAM and the budgets
 * that protect the VMM itself.  Zero means the default.
 */
struct amdgpu_userptr_vm_limits {
   /* Host mappings (VMAs) all windows may hold; by default half of what
    * vm.max_map_count leaves the process when the VM is created, so the
    * VMM keeps the other half for its threads, stacks and mappings. */
   uint64_t max_mappings;
   /* Bytes of all userptrs of the VM; by default twice the guest RAM. */
   uint64_t max_total;
};

struct amdgpu_userptr_vm *
amdgpu_userptr_vm_create(const struct amdgpu_userptr_vm_limits *limits,
                         amdgpu_userptr_log_fn log, void *log_data);

/* Every table of the VM must be destroyed first. */
void
amdgpu_userptr_vm_destroy(struct amdgpu_userptr_vm *vm);

/*
 * Guest RAM as the VMM knows it.  Once a range is added, every iovec must
 * lie inside the added ranges.  Without any, guest RAM is found from the
 * iovecs: each must lie in shared file mappings of this process (what
 * guest RAM shared with the host is), and none in a host-visible mapping
 * (below).
 */
int
amdgpu_userptr_vm_add_guest_ram(struct amdgpu_userptr_vm *vm, void *base,
                                uint64_t size);

/*
 * Host memory mapped for the guest that is not guest RAM, such as the
 * host-visible blob mappings the renderer made: an iovec inside one is
 * refused.  The callback is asked once per mapping an import touches.
 */
typedef bool (*amdgpu_userptr_host_mapping_fn)(void *data, uintptr_t start,
                                               uintptr_t end);

void
amdgpu_userptr_vm_set_host_mapping_check(struct amdgpu_userptr_vm *vm,
                                         amdgpu_userptr_host_mapping_fn fn,
                                         void *data);

struct amdgpu_userptr_vm_stats {
   uint64_t guest_ram;        /* bytes known to be guest RAM */
   uint64_t mappings, max_mappings;
   uint64_t total, max_total;
};

void
amdgpu_userptr_vm_stats(struct amdgpu_userptr_vm *vm,
                        struct amdgpu_userptr_vm_stats *stats);

/* Per context.  Zero means the default. */
struct amdgpu_userptr_limits {
   uint32_t max_entries;      /* iovecs per userptr; default 16384 */
   uint64_t max_size;         /* bytes per userptr; default 4 GiB */
   uint32_t max_count;        /* userptrs per context; default 4096 */
   uint64_t max_total;        /* bytes of all of them; default guest RAM */
};

/* How a userptr BO is made and released; amdgpu_userptr_ops_amdgpu() uses
 * the amdgpu ioctls on drm_fd, tests may substitute their own. */
struct amdgpu_userptr_ops {
   int (*create_bo)(void *data, void *addr, uint64_t size, bool readonly,
                    uint32_t *handle);
   void (*close_bo)(void *data, uint32_t handle);
   /* Waits until the GPU no longer uses the BO; optional. */
   void (*wait_idle)(void *data, uint32_t handle);
   void *data;
};

void
amdgpu_userptr_ops_amdgpu(struct amdgpu_userptr_ops *ops, int drm_fd);

struct amdgpu_userptr_table *
amdgpu_userptr_table_create(struct amdgpu_userptr_vm *vm,
                            const struct amdgpu_userptr_ops *ops,
                            const struct amdgpu_userptr_limits *limits,
                            amdgpu_userptr_log_fn log, void *log_data);

/* Destroys every userptr of the table (context teardown). */
void
amdgpu_userptr_table_destroy(struct amdgpu_userptr_table *table);

/*
 * Validates the guest's iovecs, builds the window and creates the BO.
 * Returns 0 or a negative errno (docs/design.md, host errno table).
 */
int
amdgpu_userptr_import(struct amdgpu_userptr_table *table, uint32_t res_id,
                      const struct iovec *iov, unsigned niov, uint64_t size,
                      bool readonly, struct amdgpu_userptr **out);

struct amdgpu_userptr *
amdgpu_userptr_lookup(struct amdgpu_userptr_table *table, uint32_t res_id);

uint32_t
amdgpu_userptr_handle(const struct amdgpu_userptr *up);

bool
amdgpu_userptr_is_readonly(const struct amdgpu_userptr *up);

bool
amdgpu_userptr_is_attached(const struct amdgpu_userptr *up);

/* The host view of the pages, for tests; NULL-free, always valid. */
void *
amdgpu_userptr_window(const struct amdgpu_userptr *up);

/*
 * Invalidation: on return no guest page is mapped in the window any more
 * and, since host amdgpu's notifier waited for the BO's fences during the
 * unmap, the GPU can no longer reach the old pages.  Should the window
 * not be emptied (no memory for the mapping), the userptr waits for its
 * BO to be idle, becomes dead (detached for good: attach fails, and the
 * caller must refuse submissions of a detached userptr) and the error is
 * returned.
 */
int
amdgpu_userptr_detach(struct amdgpu_userptr *up);

/* Revalidation: aliases the new pages into the same window range. */
int
amdgpu_userptr_attach(struct amdgpu_userptr *up, const struct iovec *iov,
                      unsigned niov);

void
amdgpu_userptr_destroy(struct amdgpu_userptr *up);

/*
 * AMDGPU_GEM_VA on the userptr BO of drm_fd: the guest's BO_VA_OP for a
 * userptr.  A read-only userptr is never mapped writable, whatever the
 * guest asked.
 */
int
amdgpu_userptr_va_op(int drm_fd, const struct amdgpu_userptr *up,
                     uint32_t op, uint64_t va, uint64_t offset, uint64_t size,
                     uint64_t flags);

struct amdgpu_userptr_stats {
   uint64_t imports, detaches, attaches, destroys;
   uint64_t runs_aliased;     /* mremap calls: grows with runs, not pages */
   uint32_t count;            /* live userptrs */
   uint64_t total;            /* live bytes */
};

void
amdgpu_userptr_table_stats(const struct amdgpu_userptr_table *table,
                           struct amdgpu_userptr_stats *stats);

#endif /* AMDGPU_USERPTR_H */
