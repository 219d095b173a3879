/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

/*
 * Guest RAM and the VMM's budgets, shared by every context of the process.
 *
 * The VMM builds iovecs only from guest-physical addresses, so they point
 * into what it maps for the guest: guest RAM and, among the rest, the
 * host-visible blob mappings the renderer made.  Unless the VMM names its
 * guest RAM, an entry is accepted when it lies in a shared mapping of
 * normal pages that is not a host-visible mapping.  Each mapping is looked
 * up with PROCMAP_QUERY (Linux 6.11), one ioctl per mapping an import
 * touches; older kernels parse /proc/self/maps once per import.
 *
 * Each attached run is a mapping of the VMM process (the window's alias),
 * and vm.max_map_count bounds them all: when the VMM reaches it, creating
 * a thread or a coroutine stack fails and QEMU aborts.  Windows therefore
 * draw from a budget of mappings that leaves the VMM half of what it had.
 */

#include "amdgpu_userptr_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/fs.h>

#ifndef PROCMAP_QUERY
/* Linux 6.11's UAPI, for older headers: the struct is size-versioned and
 * older kernels answer ENOTTY. */
#define PROCMAP_QUERY_VMA_READABLE 0x01
#define PROCMAP_QUERY_VMA_WRITABLE 0x02
#define PROCMAP_QUERY_VMA_SHARED 0x08
struct procmap_query {
   uint64_t size, query_flags, query_addr;
   uint64_t vma_start, vma_end, vma_flags, vma_page_size, vma_offset;
   uint64_t inode;
   uint32_t dev_major, dev_minor;
   uint32_t vma_name_size, build_id_size;
   uint64_t vma_name_addr, build_id_addr;
};
#define PROCMAP_QUERY _IOWR(0x66, 17, struct procmap_query)
#endif

struct amdgpu_userptr_vm {
   pthread_mutex_t lock;
   amdgpu_userptr_log_fn log;
   void *log_data;
   long page_size;

   /* Guest RAM the VMM added; when empty, what the iovecs showed. */
   struct amdgpu_userptr_range *added;
   unsigned added_count;
   struct amdgpu_userptr_range *found;   /* sorted, disjoint */
   unsigned found_count;

   int maps_fd;               /* /proc/self/maps, for PROCMAP_QUERY */
   pid_t maps_pid;
   bool no_query;

   amdgpu_userptr_host_mapping_fn host_mapping;
   void *host_mapping_data;

   uint64_t max_mappings, mappings;
   uint64_t max_total, total;  /* max_total 0: twice the guest RAM */
};

/* vm.max_map_count and how many mappings the process has now. */
static uint64_t
default_max_mappings(void)
{
   uint64_t limit = 65530, used = 0;
   FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
   int c;

   if (f) {
      if (fscanf(f, "%" SCNu64, &limit) != 1)
         limit = 65530;
      fclose(f);
   }
   f = fopen("/proc/self/maps", "re");
   if (f) {
      while ((c = getc(f)) != EOF)
         used += c == '\n';
      fclose(f);
   }
   return used < limit ? (limit - used) / 2 : 0;
}

void
amdgpu_userptr_log_stderr(void *data, const char *fmt, ...)
{
   va_list ap;

   (void)data;
   va_start(ap, fmt);
   fputs("amdgpu_userptr: ", stderr);
   vfprintf(stderr, fmt, ap);
   fputc('\n', stderr);
   va_end(ap);
}

struct amdgpu_userptr_vm *
amdgpu_userptr_vm_create(const struct amdgpu_userptr_vm_limits *limits,
                         amdgpu_userptr_log_fn log, void *log_data)
{
   struct amdgpu_userptr_vm *vm = calloc(1, sizeof(*vm));

   if (!vm)
      return NULL;
   pthread_mutex_init(&vm->lock, NULL);
   vm->log = log ? log : amdgpu_userptr_log_stderr;
   vm->log_data = log_data;
   vm->page_size = sysconf(_SC_PAGESIZE);
   vm->maps_fd = -1;
   vm->max_mappings = limits && limits->max_mappings ? limits->max_mappings
                                                     : default_max_mappings();
   vm->max_total = limits ? limits->max_total : 0;
   return vm;
}

void
amdgpu_userptr_vm_destroy(struct amdgpu_userptr_vm *vm)
{
   if (!vm)
      return;
   if (vm->mappings || vm->total)
      vm->log(vm->log_data, "destroyed with %" PRIu64 " mappings and %" PRIu64
              " bytes still charged", vm->mappings, vm->total);
   if (vm->maps_fd >= 0)
      close(vm->maps_fd);
   pthread_mutex_destroy(&vm->lock);
   free(vm->added);
   free(vm->found);
   free(vm);
}

int
amdgpu_userptr_vm_add_guest_ram(struct amdgpu_userptr_vm *vm, void *base,
                                uint64_t size)
{
   uintptr_t start = (uintptr_t)base;
   struct amdgpu_userptr_range *added;
   int ret = 0;

   if (!size || start + size < start || size > UINTPTR_MAX - start)
      return -EINVAL;
   pthread_mutex_lock(&vm->lock);
   added = realloc(vm->added, (vm->added_count + 1) * sizeof(*added));
   if (added) {
      added[vm->added_count++] = (struct amdgpu_userptr_range){ start, start + size };
      vm->added = added;
   } else {
      ret = -ENOMEM;
   }
   pthread_mutex_unlock(&vm->lock);
   return ret;
}

void
amdgpu_userptr_vm_set_host_mapping_check(struct amdgpu_userptr_vm *vm,
                                         amdgpu_userptr_host_mapping_fn fn,
                                         void *data)
{
   pthread_mutex_lock(&vm->lock);
   vm->host_mapping = fn;
   vm->host_mapping_data = data;
   pthread_mutex_unlock(&vm->lock);
}

static uint64_t
ranges_size(const struct amdgpu_userptr_range *r, unsigned count)
{
   uint64_t size = 0;

   for (unsigned i = 0; i < count; i++)
      size += r[i].end - r[i].start;
   return size;
}

static uint64_t
guest_ram_locked(struct amdgpu_userptr_vm *vm)
{
   if (vm->added_count)
      return ranges_size(vm->added, vm->added_count);
   return ranges_size(vm->found, vm->found_count);
}

uint64_t
amdgpu_userptr_vm_guest_ram(struct amdgpu_userptr_vm *vm)
{
   uint64_t size;

   pthread_mutex_lock(&vm->lock);
   size = guest_ram_locked(vm);
   pthread_mutex_unlock(&vm->lock);
   return size;
}

static uint64_t
max_total_locked(struct amdgpu_userptr_vm *vm)
{
   return vm->max_total ? vm->max_total : 2 * guest_ram_locked(vm);
}

void
amdgpu_userptr_vm_stats(struct amdgpu_userptr_vm *vm,
                        struct amdgpu_userptr_vm_stats *stats)
{
   pthread_mutex_lock(&vm->lock);
   stats->guest_ram = guest_ram_locked(vm);
   stats->mappings = vm->mappings;
   stats->max_mappings = vm->max_mappings;
   stats->total = vm->total;
   stats->max_total = max_total_locked(vm);
   pthread_mutex_unlock(&vm->lock);
}

/* Adds [start, end) to the sorted, disjoint ranges found so far. */
static void
note_found(struct amdgpu_userptr_vm *vm, uintptr_t start, uintptr_t end)
{
   struct amdgpu_userptr_range *r = vm->found, *grown;
   unsigned n = vm->found_count, i = 0, j;

   while (i < n && r[i].end < start)
      i++;
   j = i;
   while (j < n && r[j].start <= end) {
      start = start < r[j].start ? start : r[j].start;
      end = end > r[j].end ? end : r[j].end;
      j++;
   }
   if (j == i) {
      /* Nothing merged: insert.  On ENOMEM the size is only underrated. */
      grown = realloc(r, (n + 1) * sizeof(*r));
      if (!grown)
         return;
      memmove(&grown[i + 1], &grown[i], (n - i) * sizeof(*r));
      grown[i] = (struct amdgpu_userptr_range){ start, end };
      vm->found = grown;
      vm->found_count = n + 1;
      return;
   }
   r[i] = (struct amdgpu_userptr_range){ start, end };
   memmove(&r[i + 1], &r[j], (n - j) * sizeof(*r));
   vm->found_count = n - (j - i - 1);
}

static bool
in_added(const struct amdgpu_userptr_vm *vm, uintptr_t start, uintptr_t end)
{
   for (unsigned i = 0; i < vm->added_count; i++) {
      if (vm->added[i].start <= start && end <= vm->added[i].end)
         return true;
   }
   return false;
}

/* 0, -ENOENT when nothing is mapped at addr, -ENOTTY without the ioctl. */
static int
query_vma(struct amdgpu_userptr_vm *vm, uintptr_t addr,
          struct amdgpu_userptr_vma *out)
{
   struct procmap_query q = {
      .size = sizeof(q),
      .query_addr = addr,
   };

   if (vm->maps_fd < 0 || vm->maps_pid != getpid()) {
      /* The file is bound to the process that opened it (vtest forks). */
      if (vm->maps_fd >= 0)
         close(vm->maps_fd);
      vm->maps_fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
      vm->maps_pid = getpid();
      if (vm->maps_fd < 0)
         return -errno;
   }
   if (ioctl(vm->maps_fd, PROCMAP_QUERY, &q))
      return errno == EINVAL ? -ENOTTY : -errno;
   *out = (struct amdgpu_userptr_vma){
      .start = q.vma_start,
      .end = q.vma_end,
      .file_delta = q.vma_offset - q.vma_start,
      .inode = q.inode,
      .dev_major = q.dev_major,
      .dev_minor = q.dev_minor,
      .page_size = q.vma_page_size,
      .shared = q.vma_flags & PROCMAP_QUERY_VMA_SHARED,
      .readable = q.vma_flags & PROCMAP_QUERY_VMA_READABLE,
      .writable = q.vma_flags & PROCMAP_QUERY_VMA_WRITABLE,
   };
   return 0;
}

/* Kernels before 6.11: every mapping, from one read of /proc/self/maps. */
static int
read_maps(struct amdgpu_userptr_vm *vm, struct amdgpu_userptr_ram_cursor *cur)
{
   FILE *f = fopen("/proc/self/maps", "re");
   char *line = NULL;
   size_t cap = 0;
   unsigned n = 0, room = 0;

   if (!f)
      return -errno;
   while (getline(&line, &cap, f) > 0) {
      uintptr_t start, end;
      uint64_t offset, inode;
      unsigned major, minor;
      char perms[5];

      if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s %" SCNx64 " %x:%x %" SCNu64,
                 &start, &end, perms, &offset, &major, &minor, &inode) != 7)
         continue;
      if (n == room) {
         struct amdgpu_userptr_vma *grown;

         room = room ? 2 * room : 64;
         grown = realloc(cur->maps, room * sizeof(*grown));
         if (!grown) {
            free(line);
            fclose(f);
            return -ENOMEM;
         }
         cur->maps = grown;
      }
      cur->maps[n++] = (struct amdgpu_userptr_vma){
         .start = start,
         .end = end,
         .file_delta = offset - start,
         .inode = inode,
         .dev_major = major,
         .dev_minor = minor,
         .page_size = vm->page_size,   /* not shown: mremap tells later */
         .shared = perms[3] == 's',
         .readable = perms[0] == 'r',
         .writable = perms[1] == 'w',
      };
   }
   free(line);
   fclose(f);
   cur->nmaps = n;
   return 0;
}

static int
find_vma(struct amdgpu_userptr_vm *vm, struct amdgpu_userptr_ram_cursor *cur,
         uintptr_t addr, struct amdgpu_userptr_vma *out)
{
   unsigned lo = 0, hi;
   int ret;

   if (cur->have_last && cur->last.start <= addr && addr < cur->last.end) {
      *out = cur->last;
      return 0;
   }
   if (!vm->no_query) {
      ret = query_vma(vm, addr, out);
      if (ret != -ENOTTY)
         goto found;
      vm->no_query = true;
      vm->log(vm->log_data, "no PROCMAP_QUERY (Linux < 6.11): each import "
              "reads /proc/self/maps");
   }
   if (!cur->maps && (ret = read_maps(vm, cur)))
      return ret;
   hi = cur->nmaps;
   while (lo < hi) {
      unsigned mid = (lo + hi) / 2;

      if (cur->maps[mid].end <= addr)
         lo = mid + 1;
      else
         hi = mid;
   }
   if (lo == cur->nmaps || cur->maps[lo].start > addr)
      return -ENOENT;
   *out = cur->maps[lo];
   ret = 0;
found:
   if (!ret) {
      out->host_mapping = !vm->added_count && vm->host_mapping &&
                          vm->host_mapping(vm->host_mapping_data, out->start,
                                           out->end);
      cur->last = *out;
      cur->have_last = true;
   }
   return ret;
}

/* Keeps a mapping an entry lay in, for amdgpu_userptr_vm_note_found(). */
static bool
remember_found(struct amdgpu_userptr_ram_cursor *cur,
               const struct amdgpu_userptr_vma *v)
{
   struct amdgpu_userptr_range *grown;

   if (cur->nfound && cur->found[cur->nfound - 1].start == v->start)
      return true;
   if (cur->nfound == cur->found_room) {
      cur->found_room = cur->found_room ? 2 * cur->found_room : 4;
      grown = realloc(cur->found, cur->found_room * sizeof(*grown));
      if (!grown)
         return false;
      cur->found = grown;
   }
   cur->found[cur->nfound++] = (struct amdgpu_userptr_range){ v->start, v->end };
   return true;
}

int
amdgpu_userptr_vm_check_entry(struct amdgpu_userptr_vm *vm,
                              struct amdgpu_userptr_ram_cursor *cur,
                              amdgpu_userptr_log_fn log, void *log_data,
                              uint32_t res_id, unsigned index, uintptr_t base,
                              uint64_t len, struct amdgpu_userptr_span *span)
{
   const uintptr_t end = base + len;
   struct amdgpu_userptr_vma first = { 0 }, v;
   const char *why = NULL;
   int ret = 0;

   pthread_mutex_lock(&vm->lock);
   if (vm->added_count && !in_added(vm, base, end)) {
      why = "is outside guest RAM";
      ret = -EFAULT;
      goto out;
   }
   for (uintptr_t addr = base; addr < end; addr = v.end) {
      ret = find_vma(vm, cur, addr, &v);
      if (ret == -ENOENT) {
         why = "is outside guest RAM (nothing mapped)";
         ret = -EFAULT;
      } else if (ret) {
         why = "could not be looked up";
      } else if (v.host_mapping) {
         why = "is in a host-visible mapping, not guest RAM";
         ret = -EFAULT;
      } else if (!v.shared) {
         log(log_data, "res_id %u: guest RAM is not shared with the host, so "
             "its pages cannot be aliased: start QEMU with -object "
             "memory-backend-memfd,id=mem,size=...,share=on -machine "
             "memory-backend=mem", res_id);
         ret = -EOPNOTSUPP;
      } else if (v.page_size != (uint64_t)vm->page_size) {
         log(log_data, "res_id %u: guest RAM is backed by %" PRIu64 " KiB "
             "huge pages (hugetlbfs), which cannot be aliased page by page: "
             "use memory-backend-memfd,share=on without hugetlb (transparent "
             "huge pages still apply)", res_id, v.page_size >> 10);
         ret = -EOPNOTSUPP;
      } else if (!v.readable || !v.writable) {
         why = "is in a mapping that is not readable and writable";
         ret = -EFAULT;
      } else if (addr == base) {
         first = v;
      } else if (v.inode != first.inode || v.dev_major != first.dev_major ||
                 v.dev_minor != first.dev_minor ||
                 v.file_delta != first.file_delta) {
         /* A split inside one file mapping is fine; two files are not. */
         why = "spans two mappings";
         ret = -EFAULT;
      }
      if (ret)
         goto out;
      if (!vm->added_count && !remember_found(cur, &v)) {
         why = "could not be recorded";
         ret = -ENOMEM;
         goto out;
      }
   }
   *span = (struct amdgpu_userptr_span){
      .inode = first.inode,
      .file_delta = first.file_delta,
      .dev_major = first.dev_major,
      .dev_minor = first.dev_minor,
   };
out:
   pthread_mutex_unlock(&vm->lock);
   if (why)
      log(log_data, "res_id %u: entry %u (0x%" PRIxPTR " + 0x%" PRIx64 ") %s%s%s",
          res_id, index, base, len, why, ret == -EFAULT ? "" : ": ",
          ret == -EFAULT ? "" : strerror(-ret));
   return ret;
}

void
amdgpu_userptr_vm_note_found(struct amdgpu_userptr_vm *vm,
                             const struct amdgpu_userptr_ram_cursor *cur)
{
   pthread_mutex_lock(&vm->lock);
   for (unsigned i = 0; !vm->added_count && i < cur->nfound; i++)
      note_found(vm, cur->found[i].start, cur->found[i].end);
   pthread_mutex_unlock(&vm->lock);
}

void
amdgpu_userptr_ram_cursor_fini(struct amdgpu_userptr_ram_cursor *cur)
{
   free(cur->maps);
   free(cur->found);
   *cur = (struct amdgpu_userptr_ram_cursor){ 0 };
}

int
amdgpu_userptr_vm_charge(struct amdgpu_userptr_vm *vm,
                         amdgpu_userptr_log_fn log, void *log_data,
                         uint32_t res_id, uint64_t mappings, uint64_t bytes)
{
   uint64_t max_total;
   int ret = 0;

   pthread_mutex_lock(&vm->lock);
   max_total = max_total_locked(vm);
   if (mappings > vm->max_mappings - vm->mappings) {
      log(log_data, "res_id %u: needs %" PRIu64 " host mappings, the VM's "
          "budget has %" PRIu64 " of %" PRIu64 " left (vm.max_map_count)",
          res_id, mappings, vm->max_mappings - vm->mappings, vm->max_mappings);
      ret = -ENOSPC;
   } else if (bytes > max_total - vm->total || vm->total > max_total) {
      log(log_data, "res_id %u: 0x%" PRIx64 " bytes would pass the VM's "
          "userptr quota (0x%" PRIx64 " of 0x%" PRIx64 " used)", res_id,
          bytes, vm->total, max_total);
      ret = -ENOSPC;
   } else {
      vm->mappings += mappings;
      vm->total += bytes;
   }
   pthread_mutex_unlock(&vm->lock);
   return ret;
}

void
amdgpu_userptr_vm_uncharge(struct amdgpu_userptr_vm *vm, uint64_t mappings,
                           uint64_t bytes)
{
   pthread_mutex_lock(&vm->lock);
   vm->mappings -= mappings;
   vm->total -= bytes;
   pthread_mutex_unlock(&vm->lock);
}
