/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

#include "amdgpu_userptr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
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
   bool readonly;
   bool attached;
};

struct guest_ram {
   uintptr_t start, end;
};

struct amdgpu_userptr_table {
   struct amdgpu_userptr_ops ops;
   struct amdgpu_userptr_limits limits;
   amdgpu_userptr_log_fn log;
   void *log_data;
   struct amdgpu_userptr *buckets[USERPTR_BUCKETS];
   struct guest_ram *ram;
   unsigned ram_count;
   struct amdgpu_userptr_stats stats;
   long page_size;
};

/* A run of guest RAM to alias: contiguous and inside one mapping. */
struct run {
   uintptr_t src;
   uint64_t len;
};

static void
log_stderr(void *data, const char *fmt, ...)
{
   va_list ap;

   (void)data;
   va_start(ap, fmt);
   fputs("amdgpu_userptr: ", stderr);
   vfprintf(stderr, fmt, ap);
   fputc('\n', stderr);
   va_end(ap);
}

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

void
amdgpu_userptr_ops_amdgpu(struct amdgpu_userptr_ops *ops, int drm_fd)
{
   ops->create_bo = amdgpu_create_userptr_bo;
   ops->close_bo = amdgpu_close_bo;
   ops->data = (void *)(intptr_t)drm_fd;
}

struct amdgpu_userptr_table *
amdgpu_userptr_table_create(const struct amdgpu_userptr_ops *ops,
                            const struct amdgpu_userptr_limits *limits,
                            amdgpu_userptr_log_fn log, void *log_data)
{
   struct amdgpu_userptr_table *table = calloc(1, sizeof(*table));

   if (!table)
      return NULL;
   table->ops = *ops;
   table->limits = limits ? *limits : AMDGPU_USERPTR_DEFAULT_LIMITS;
   table->log = log ? log : log_stderr;
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
   free(table->ram);
   free(table);
}

int
amdgpu_userptr_table_add_guest_ram(struct amdgpu_userptr_table *table,
                                   void *base, uint64_t size)
{
   uintptr_t start = (uintptr_t)base;
   struct guest_ram *ram;

   if (!size || start + size < start)
      return -EINVAL;
   ram = realloc(table->ram, (table->ram_count + 1) * sizeof(*ram));
   if (!ram)
      return -ENOMEM;
   ram[table->ram_count++] = (struct guest_ram){ start, start + size };
   table->ram = ram;
   return 0;
}

void
amdgpu_userptr_table_stats(const struct amdgpu_userptr_table *table,
                           struct amdgpu_userptr_stats *stats)
{
   *stats = table->stats;
}

/* Without a registration: this process's MAP_SHARED mappings. */
static struct guest_ram *
read_shared_mappings(unsigned *count)
{
   struct guest_ram *maps = NULL;
   unsigned n = 0, cap = 0;
   char line[512];
   FILE *f = fopen("/proc/self/maps", "re");

   if (!f)
      return NULL;
   while (fgets(line, sizeof(line), f)) {
      uintptr_t start, end;
      char perms[5];

      if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &start, &end, perms) != 3)
         continue;
      if (perms[3] != 's')
         continue;
      if (n == cap) {
         struct guest_ram *grown;

         cap = cap ? cap * 2 : 16;
         grown = realloc(maps, cap * sizeof(*maps));
         if (!grown) {
            free(maps);
            fclose(f);
            return NULL;
         }
         maps = grown;
      }
      maps[n++] = (struct guest_ram){ start, end };
   }
   fclose(f);
   *count = n;
   return maps;
}

static int
find_ram(const struct guest_ram *ram, unsigned count, uintptr_t start,
         uintptr_t end)
{
   unsigned lo = 0, hi = count;

   /* Registered regions are few and /proc/self/maps is sorted: a binary
    * search works on both when the registration is sorted too, and a
    * linear fallback keeps an unsorted registration correct. */
   while (lo < hi) {
      unsigned mid = (lo + hi) / 2;

      if (ram[mid].end <= start)
         lo = mid + 1;
      else
         hi = mid;
   }
   if (lo < count && ram[lo].start <= start && end <= ram[lo].end)
      return lo;
   for (unsigned i = 0; i < count; i++) {
      if (ram[i].start <= start && end <= ram[i].end)
         return i;
   }
   return -1;
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
   struct guest_ram *maps = NULL, *ram = table->ram;
   unsigned ram_count = table->ram_count;
   struct run *runs;
   unsigned nruns = 0;
   int last_region = -1;
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
   if (!ram_count) {
      maps = read_shared_mappings(&ram_count);
      if (!maps)
         return -ENOMEM;
      ram = maps;
   }
   runs = malloc(niov * sizeof(*runs));
   if (!runs) {
      free(maps);
      return -ENOMEM;
   }

   for (unsigned i = 0; i < niov; i++) {
      uintptr_t base = (uintptr_t)iov[i].iov_base;
      uint64_t len = iov[i].iov_len;
      int region;

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
      region = find_ram(ram, ram_count, base, base + len);
      if (region < 0) {
         table->log(table->log_data,
                    "res_id %u: entry %u (0x%" PRIxPTR " + 0x%" PRIx64
                    ") is outside guest RAM", res_id, i, base, len);
         ret = -EFAULT;
         break;
      }
      total += len;
      if (nruns && region == last_region &&
          runs[nruns - 1].src + runs[nruns - 1].len == base)
         runs[nruns - 1].len += len;
      else
         runs[nruns++] = (struct run){ base, len };
      last_region = region;
   }
   free(maps);

   if (!ret && total != size) {
      table->log(table->log_data,
                 "res_id %u: entries cover 0x%" PRIx64 " bytes, size is 0x%"
                 PRIx64, res_id, total, size);
      ret = -EINVAL;
   }
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

         if (err == EINVAL)
            table->log(table->log_data,
                       "res_id %u: guest RAM is not MAP_SHARED, so its pages "
                       "cannot be aliased: start QEMU with -object "
                       "memory-backend-memfd,id=mem,size=...,share=on "
                       "-machine memory-backend=mem", up->res_id);
         else
            table->log(table->log_data, "res_id %u: aliasing run %u failed: %s",
                       up->res_id, i, strerror(err));
         window_clear(up->window, up->size);
         return err == EINVAL ? -EOPNOTSUPP : -err;
      }
      off += runs[i].len;
      table->stats.runs_aliased++;
   }
   if (up->readonly && mprotect(up->window, up->size, PROT_READ)) {
      int err = errno;

      window_clear(up->window, up->size);
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
   if (table->stats.count >= lim->max_count ||
       table->stats.total + size > lim->max_total) {
      table->log(table->log_data,
                 "res_id %u: context quota reached (%u userptrs, 0x%" PRIx64
                 " bytes)", res_id, table->stats.count, table->stats.total);
      return -ENOSPC;
   }

   ret = build_runs(table, res_id, iov, niov, size, &runs, &nruns);
   if (ret)
      return ret;

   up = calloc(1, sizeof(*up));
   if (!up) {
      free(runs);
      return -ENOMEM;
   }
   up->table = table;
   up->res_id = res_id;
   up->size = size;
   up->readonly = readonly;
   up->window = window_reserve(size);
   if (!up->window) {
      free(runs);
      free(up);
      return -ENOMEM;
   }

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
      up->table->log(up->table->log_data, "res_id %u: detach failed: %s",
                     up->res_id, strerror(-ret));
      return ret;
   }
   up->attached = false;
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
   ret = build_runs(up->table, up->res_id, iov, niov, up->size, &runs, &nruns);
   if (ret)
      return ret;
   ret = window_alias(up, runs, nruns);
   free(runs);
   if (ret)
      return ret;
   up->attached = true;
   up->table->stats.attaches++;
   return 0;
}

void
amdgpu_userptr_destroy(struct amdgpu_userptr *up)
{
   struct amdgpu_userptr_table *table = up->table;
   struct amdgpu_userptr **link = &table->buckets[bucket_of(up->res_id)];

   /* Unmap first: host amdgpu waits for the GPU before the pages go. */
   munmap(up->window, up->size);
   table->ops.close_bo(table->ops.data, up->handle);

   while (*link != up)
      link = &(*link)->next;
   *link = up->next;
   table->stats.destroys++;
   table->stats.count--;
   table->stats.total -= up->size;
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
