/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

#include "amdgpu_userptr.h"
#include "amdgpu_userptr_vm.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xf86drm.h>
#include <amdgpu_drm.h>

#define USERPTR_BUCKETS 256
/* Windows are aligned so that huge pages of guest RAM can stay huge. */
#define WINDOW_ALIGN (2ull << 20)

struct amdgpu_userptr {
   struct amdgpu_userptr_table *table;
   struct amdgpu_userptr *next;    /* hash chain */
   uint32_t res_id;
   uint32_t handle;
   uint8_t *window;
   uint64_t size;
   uint64_t mappings;         /* charged to the VM: runs + the window */
   bool readonly;
   bool attached;
   bool dead;                 /* the window could not be emptied */
};

struct amdgpu_userptr_table {
   struct amdgpu_userptr_vm *vm;
   struct amdgpu_userptr_ops ops;
   struct amdgpu_userptr_limits limits;
   amdgpu_userptr_log_fn log;
   void *log_data;
   struct amdgpu_userptr *buckets[USERPTR_BUCKETS];
   struct amdgpu_userptr_stats stats;
   long page_size;
};

/* A run of guest RAM to alias: contiguous and inside one mapping. */
struct run {
   uintptr_t src;
   uint64_t len;
};

static int
amdgpu_create_userptr_bo(void *data, void *addr, uint64_t size, bool readonly,
                         uint32_t *handle)
{
   /* Not libdrm's amdgpu_create_bo_from_user_mem(): it always passes
    * ANONONLY, and Linux refuses that on the file-backed (memfd) mapping
    * that shared guest RAM is.  REGISTER gives the BO an HMM notifier; it
    * is required for a writable userptr anyway.
    */
   struct drm_amdgpu_gem_userptr args = {
      .addr = (uintptr_t)addr,
      .size = size,
      .flags = AMDGPU_GEM_USERPTR_REGISTER | AMDGPU_GEM_USERPTR_VALIDATE |
               (readonly ? AMDGPU_GEM_USERPTR_READONLY : 0),
   };
   int fd = (int)(intptr_t)data;

   if (drmIoctl(fd, DRM_IOCTL_AMDGPU_GEM_USERPTR, &args))
      return -errno;
   *handle = args.handle;
   return 0;
}

static void
amdgpu_close_bo(void *data, uint32_t handle)
{
   struct drm_gem_close args = { .handle = handle };

   drmIoctl((int)(intptr_t)data, DRM_IOCTL_GEM_CLOSE, &args);
}

static void
amdgpu_wait_idle(void *data, uint32_t handle)
{
   union drm_amdgpu_gem_wait_idle args = {
      .in.handle = handle,
      .in.timeout = UINT64_MAX,   /* negative as an s64: no timeout */
   };

   drmIoctl((int)(intptr_t)data, DRM_IOCTL_AMDGPU_GEM_WAIT_IDLE, &args);
}

void
amdgpu_userptr_ops_amdgpu(struct amdgpu_userptr_ops *ops, int drm_fd)
{
   ops->create_bo = amdgpu_create_userptr_bo;
   ops->close_bo = amdgpu_close_bo;
   ops->wait_idle = amdgpu_wait_idle;
   ops->data = (void *)(intptr_t)drm_fd;
}

struct amdgpu_userptr_table *
amdgpu_userptr_table_create(struct amdgpu_userptr_vm *vm,
                            const struct amdgpu_userptr_ops *ops,
                            const struct amdgpu_userptr_limits *limits,
                            amdgpu_userptr_log_fn log, void *log_data)
{
   struct amdgpu_userptr_table *table = calloc(1, sizeof(*table));

   if (!table)
      return NULL;
   table->vm = vm;
   table->ops = *ops;
   if (limits)
      table->limits = *limits;
   if (!table->limits.max_entries)
      table->limits.max_entries = 16384;
   if (!table->limits.max_size)
      table->limits.max_size = 4ull << 30;
   if (!table->limits.max_count)
      table->limits.max_count = 4096;
   table->log = log ? log : amdgpu_userptr_log_stderr;
   table->log_data = log_data;
   table->page_size = sysconf(_SC_PAGESIZE);
   return table;
}

void
amdgpu_userptr_table_destroy(struct amdgpu_userptr_table *table)
{
   if (!table)
      return;
   for (unsigned i = 0; i < USERPTR_BUCKETS; i++) {
      while (table->buckets[i])
         amdgpu_userptr_destroy(table->buckets[i]);
   }
   free(table);
}

void
amdgpu_userptr_table_stats(const struct amdgpu_userptr_table *table,
                           struct amdgpu_userptr_stats *stats)
{
   *stats = table->stats;
}

/*
 * Checks every guest-controlled value of an iovec list and turns it into
 * runs: adjacent entries of the same mapping become one run, so the cost of
 * aliasing grows with runs, not pages.
 */
static int
build_runs(struct amdgpu_userptr_table *table, uint32_t res_id,
           const struct iovec *iov, unsigned niov, uint64_t size,
           struct run **out_runs, unsigned *out_nruns)
{
   const uint64_t mask = table->page_size - 1;
   struct amdgpu_userptr_ram_cursor cursor = { 0 };
   struct run *runs;
   unsigned nruns = 0;
   struct amdgpu_userptr_span last_span = { 0 };
   uint64_t total = 0;
   int ret = 0;

   if (!niov || !iov) {
      table->log(table->log_data, "res_id %u: no backing entries", res_id);
      return -EINVAL;
   }
   if (niov > table->limits.max_entries) {
      table->log(table->log_data, "res_id %u: %u entries, limit %u", res_id,
                 niov, table->limits.max_entries);
      return -E2BIG;
   }
   runs = malloc(niov * sizeof(*runs));
   if (!runs)
      return -ENOMEM;

   for (unsigned i = 0; i < niov; i++) {
      uintptr_t base = (uintptr_t)iov[i].iov_base;
      uint64_t len = iov[i].iov_len;
      struct amdgpu_userptr_span span;

      if (!len || (base & mask) || (len & mask)) {
         table->log(table->log_data,
                    "res_id %u: entry %u not page-aligned (0x%" PRIxPTR
                    " + 0x%" PRIx64 ")", res_id, i, base, len);
         ret = -EINVAL;
         break;
      }
      if (base + len < base || total + len < total) {
         table->log(table->log_data, "res_id %u: entry %u wraps around",
                    res_id, i);
         ret = -EINVAL;
         break;
      }
      ret = amdgpu_userptr_vm_check_entry(table->vm, &cursor, table->log,
                                          table->log_data, res_id, i, base,
                                          len, &span);
      if (ret)
         break;
      total += len;
      if (nruns && amdgpu_userptr_span_equal(&span, &last_span) &&
          runs[nruns - 1].src + runs[nruns - 1].len == base)
         runs[nruns - 1].len += len;
      else
         runs[nruns++] = (struct run){ base, len };
      last_span = span;
   }
   if (!ret && total != size) {
      table->log(table->log_data,
                 "res_id %u: entries cover 0x%" PRIx64 " bytes, size is 0x%"
                 PRIx64, res_id, total, size);
      ret = -EINVAL;
   }
   if (!ret)
      amdgpu_userptr_vm_note_found(table->vm, &cursor);
   amdgpu_userptr_ram_cursor_fini(&cursor);
   if (ret) {
      free(runs);
      return ret;
   }
   *out_runs = runs;
   *out_nruns = nruns;
   return 0;
}

/* Replaces the window's pages with nothing; keeps the range reserved. */
static int
window_clear(uint8_t *window, uint64_t size)
{
   if (mmap(window, size, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
            0) == MAP_FAILED)
      return -errno;
   return 0;
}

static uint8_t *
window_reserve(uint64_t size)
{
   uint64_t span = size + WINDOW_ALIGN;
   uint8_t *p, *aligned;

   if (size > SIZE_MAX - WINDOW_ALIGN)
      return NULL;   /* a 32-bit host */
   p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
            -1, 0);
   if (p == MAP_FAILED)
      return NULL;
   aligned = (uint8_t *)(((uintptr_t)p + WINDOW_ALIGN - 1) & ~(WINDOW_ALIGN - 1));
   if (aligned > p)
      munmap(p, aligned - p);
   if (aligned + size < p + span)
      munmap(aligned + size, p + span - (aligned + size));
   return aligned;
}

/*
 * The window could not be emptied, so old pages may stay mapped in it:
 * make sure the GPU is done with them, and never use the userptr again.
 */
static void
userptr_kill(struct amdgpu_userptr *up)
{
   struct amdgpu_userptr_table *table = up->table;

   table->log(table->log_data, "res_id %u: the window cannot be emptied: %s; "
              "the userptr is dead", up->res_id, strerror(errno));
   if (up->handle && table->ops.wait_idle)
      table->ops.wait_idle(table->ops.data, up->handle);
   up->dead = true;
   up->attached = false;
}

static int
window_alias(struct amdgpu_userptr *up, const struct run *runs, unsigned nruns)
{
   struct amdgpu_userptr_table *table = up->table;
   uint64_t off = 0;

   for (unsigned i = 0; i < nruns; i++) {
      /* old_size 0 on a shared mapping makes a second mapping of the same
       * pages: the zero-copy alias.  Private memory cannot be aliased. */
      void *dst = mremap((void *)runs[i].src, 0, runs[i].len,
                         MREMAP_MAYMOVE | MREMAP_FIXED, up->window + off);
      if (dst == MAP_FAILED) {
         int err = errno;

         /* EINVAL: a kind of mapping the lookup could not tell (no
          * PROCMAP_QUERY: hugetlbfs) */
         if (err == EINVAL)
            table->log(table->log_data,
                       "res_id %u: guest RAM cannot be aliased: it must be a "
                       "shared mapping of normal pages (QEMU: -object "
                       "memory-backend-memfd,id=mem,size=...,share=on "
                       "-machine memory-backend=mem, without hugetlb)",
                       up->res_id);
         else
            table->log(table->log_data, "res_id %u: aliasing run %u failed: %s",
                       up->res_id, i, strerror(err));
         if (window_clear(up->window, up->size))
            userptr_kill(up);
         return err == EINVAL ? -EOPNOTSUPP : -err;
      }
      off += runs[i].len;
      table->stats.runs_aliased++;
   }
   if (up->readonly && mprotect(up->window, up->size, PROT_READ)) {
      int err = errno;

      if (window_clear(up->window, up->size))
         userptr_kill(up);
      return -err;
   }
   return 0;
}

static unsigned
bucket_of(uint32_t res_id)
{
   return (res_id * 2654435761u) >> 24;
}

struct amdgpu_userptr *
amdgpu_userptr_lookup(struct amdgpu_userptr_table *table, uint32_t res_id)
{
   struct amdgpu_userptr *up = table->buckets[bucket_of(res_id)];

   while (up && up->res_id != res_id)
      up = up->next;
   return up;
}

int
amdgpu_userptr_import(struct amdgpu_userptr_table *table, uint32_t res_id,
                      const struct iovec *iov, unsigned niov, uint64_t size,
                      bool readonly, struct amdgpu_userptr **out)
{
   const struct amdgpu_userptr_limits *lim = &table->limits;
   struct amdgpu_userptr *up;
   struct run *runs;
   unsigned nruns;
   uint64_t max_total;
   int ret;

   if (amdgpu_userptr_lookup(table, res_id)) {
      table->log(table->log_data, "res_id %u: already imported", res_id);
      return -EEXIST;
   }
   if (!size || (size & (table->page_size - 1))) {
      table->log(table->log_data, "res_id %u: bad size 0x%" PRIx64, res_id,
                 size);
      return -EINVAL;
   }
   if (size > lim->max_size) {
      table->log(table->log_data, "res_id %u: size 0x%" PRIx64 " above 0x%"
                 PRIx64, res_id, size, lim->max_size);
      return -E2BIG;
   }
   if (table->stats.count >= lim->max_count) {
      table->log(table->log_data, "res_id %u: context has %u userptrs, the "
                 "limit", res_id, table->stats.count);
      return -ENOSPC;
   }

   ret = build_runs(table, res_id, iov, niov, size, &runs, &nruns);
   if (ret)
      return ret;

   /* The quotas follow guest RAM, which build_runs may just have found. */
   max_total = lim->max_total ? lim->max_total
                              : amdgpu_userptr_vm_guest_ram(table->vm);
   if (table->stats.total > max_total || size > max_total - table->stats.total) {
      table->log(table->log_data, "res_id %u: 0x%" PRIx64 " bytes would pass "
                 "the context's userptr quota (0x%" PRIx64 " of 0x%" PRIx64
                 " used)", res_id, size, table->stats.total, max_total);
      free(runs);
      return -ENOSPC;
   }
   /* The window's aliases, and the window itself while detached. */
   ret = amdgpu_userptr_vm_charge(table->vm, table->log, table->log_data,
                                  res_id, nruns + 1, size);
   if (ret) {
      free(runs);
      return ret;
   }

   up = calloc(1, sizeof(*up));
   if (up)
      up->window = window_reserve(size);
   if (!up || !up->window) {
      table->log(table->log_data, "res_id %u: no memory for a 0x%" PRIx64
                 " byte window", res_id, size);
      amdgpu_userptr_vm_uncharge(table->vm, nruns + 1, size);
      free(runs);
      free(up);
      return -ENOMEM;
   }
   up->table = table;
   up->res_id = res_id;
   up->size = size;
   up->mappings = nruns + 1;
   up->readonly = readonly;

   ret = window_alias(up, runs, nruns);
   free(runs);
   if (!ret) {
      ret = table->ops.create_bo(table->ops.data, up->window, size, readonly,
                                 &up->handle);
      if (ret)
         table->log(table->log_data, "res_id %u: userptr BO creation failed: %s",
                    res_id, strerror(-ret));
   }
   if (ret) {
      munmap(up->window, size);
      amdgpu_userptr_vm_uncharge(table->vm, up->mappings, size);
      free(up);
      return ret;
   }

   up->attached = true;
   up->next = table->buckets[bucket_of(res_id)];
   table->buckets[bucket_of(res_id)] = up;
   table->stats.imports++;
   table->stats.count++;
   table->stats.total += size;
   *out = up;
   return 0;
}

uint32_t
amdgpu_userptr_handle(const struct amdgpu_userptr *up)
{
   return up->handle;
}

bool
amdgpu_userptr_is_readonly(const struct amdgpu_userptr *up)
{
   return up->readonly;
}

bool
amdgpu_userptr_is_attached(const struct amdgpu_userptr *up)
{
   return up->attached;
}

void *
amdgpu_userptr_window(const struct amdgpu_userptr *up)
{
   return up->window;
}

int
amdgpu_userptr_detach(struct amdgpu_userptr *up)
{
   int ret;

   if (!up->attached)
      return 0;
   /* The unmap half of this mmap is what host amdgpu's notifier sees: it
    * returns only after the BO's fences signalled. */
   ret = window_clear(up->window, up->size);
   if (ret) {
      userptr_kill(up);
      return ret;
   }
   up->attached = false;
   amdgpu_userptr_vm_uncharge(up->table->vm, up->mappings - 1, 0);
   up->mappings = 1;
   up->table->stats.detaches++;
   return 0;
}

int
amdgpu_userptr_attach(struct amdgpu_userptr *up, const struct iovec *iov,
                      unsigned niov)
{
   struct run *runs;
   unsigned nruns;
   int ret;

   if (up->attached) {
      up->table->log(up->table->log_data, "res_id %u: already has backing",
                     up->res_id);
      return -EINVAL;
   }
   if (up->dead) {
      up->table->log(up->table->log_data, "res_id %u: dead (its window could "
                     "not be emptied)", up->res_id);
      return -EIO;
   }
   ret = build_runs(up->table, up->res_id, iov, niov, up->size, &runs, &nruns);
   if (ret)
      return ret;
   ret = amdgpu_userptr_vm_charge(up->table->vm, up->table->log,
                                  up->table->log_data, up->res_id, nruns, 0);
   if (!ret) {
      ret = window_alias(up, runs, nruns);
      if (ret)
         amdgpu_userptr_vm_uncharge(up->table->vm, nruns, 0);
   }
   free(runs);
   if (ret)
      return ret;
   up->mappings = nruns + 1;
   up->attached = true;
   up->table->stats.attaches++;
   return 0;
}

void
amdgpu_userptr_destroy(struct amdgpu_userptr *up)
{
   struct amdgpu_userptr_table *table = up->table;
   struct amdgpu_userptr **link = &table->buckets[bucket_of(up->res_id)];

   /* Empty first: host amdgpu waits for the GPU before the pages go; the
    * range stays reserved until the BO registered on it is closed. */
   if (up->attached && window_clear(up->window, up->size) && up->handle &&
       table->ops.wait_idle)
      table->ops.wait_idle(table->ops.data, up->handle);
   table->ops.close_bo(table->ops.data, up->handle);
   munmap(up->window, up->size);

   while (*link != up)
      link = &(*link)->next;
   *link = up->next;
   table->stats.destroys++;
   table->stats.count--;
   table->stats.total -= up->size;
   amdgpu_userptr_vm_uncharge(table->vm, up->mappings, up->size);
   free(up);
}

int
amdgpu_userptr_va_op(int drm_fd, const struct amdgpu_userptr *up,
                     uint32_t op, uint64_t va, uint64_t offset, uint64_t size,
                     uint64_t flags)
{
   struct drm_amdgpu_gem_va args = {
      .handle = up->handle,
      .operation = op,
      .flags = flags,
      .va_address = va,
      .offset_in_bo = offset,
      .map_size = size,
   };

   if (up->readonly)
      args.flags &= ~(uint64_t)AMDGPU_VM_PAGE_WRITEABLE;
   if (drmIoctl(drm_fd, DRM_IOCTL_AMDGPU_GEM_VA, &args))
      return -errno;
   return 0;
}
