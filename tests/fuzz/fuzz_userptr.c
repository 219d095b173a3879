/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the host handler's guest-facing entry points:
 * import (the guest's entries as iovecs, size, read-only), attach, detach
 * and destroy, in any order, on two contexts of one VM with small limits.
 * Guest RAM is either found from the iovecs, as in the integrated build,
 * or added by the "VMM"; right after it lies a shared mapping the renderer
 * reports as host-visible.  Entries may point anywhere relative to guest
 * RAM (a hostile guest controls them through its physical addresses); BO
 * creation is recorded, not done, so each iteration is fast and
 * self-contained.  The handler must never crash, leak, keep budget after
 * teardown or accept an iovec outside guest RAM.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_userptr.h"

#define PAGE 4096u
#define RAM_PAGES 64u
#define BLOB_PAGES 16u

static uint8_t *ram, *blob;

struct reader {
   const uint8_t *p;
   size_t n;
};

static uint32_t
take(struct reader *r, unsigned bytes)
{
   uint32_t v = 0;

   for (unsigned i = 0; i < bytes && r->n; i++, r->n--)
      v |= (uint32_t)*r->p++ << (8 * i);
   return v;
}

static int
create_bo(void *data, void *addr, uint64_t size, bool readonly, uint32_t *h)
{
   /* The window the handler built must be readable over its whole size. */
   volatile const uint8_t *p = addr;
   uint8_t sum = 0;

   for (uint64_t off = 0; off < size; off += PAGE)
      sum += p[off];
   (void)sum;
   *h = ++*(uint32_t *)data;
   return 0;
}

static void
close_bo(void *data, uint32_t h)
{
}

static void
quiet(void *data, const char *fmt, ...)
{
}

static bool
is_blob(void *data, uintptr_t start, uintptr_t end)
{
   return start < (uintptr_t)blob + BLOB_PAGES * PAGE &&
          (uintptr_t)blob < end;
}

static bool
in_ram(const struct iovec *iov, unsigned niov)
{
   for (unsigned i = 0; i < niov; i++) {
      if ((uint8_t *)iov[i].iov_base < ram ||
          (uint8_t *)iov[i].iov_base + iov[i].iov_len > ram + RAM_PAGES * PAGE)
         return false;
   }
   return true;
}

/* The window is the entries' pages, in order: same address, page by page
 * (each page of guest RAM holds its own index, map_once). */
static bool
window_is(const uint8_t *w, const struct iovec *iov, unsigned niov)
{
   for (unsigned i = 0; i < niov; i++) {
      for (size_t off = 0; off < iov[i].iov_len; off += PAGE, w += PAGE) {
         if (*(const uint32_t *)w !=
             *(const uint32_t *)((uint8_t *)iov[i].iov_base + off))
            return false;
      }
   }
   return true;
}

/* Guest RAM, and a host-visible blob mapping right after it. */
static void
map_once(void)
{
   int fd = memfd_create("guest-ram", MFD_CLOEXEC);
   int bfd = memfd_create("blob", MFD_CLOEXEC);
   uint8_t *p;

   if (fd < 0 || bfd < 0 || ftruncate(fd, RAM_PAGES * PAGE) ||
       ftruncate(bfd, BLOB_PAGES * PAGE))
      abort();
   p = mmap(NULL, (RAM_PAGES + BLOB_PAGES) * PAGE, PROT_NONE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   if (p == MAP_FAILED ||
       mmap(p, RAM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
            fd, 0) == MAP_FAILED ||
       mmap(p + RAM_PAGES * PAGE, BLOB_PAGES * PAGE, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_FIXED, bfd, 0) == MAP_FAILED)
      abort();
   ram = p;
   blob = p + RAM_PAGES * PAGE;
   for (unsigned i = 0; i < RAM_PAGES; i++)
      *(uint32_t *)(ram + i * PAGE) = i + 1;
   close(fd);
   close(bfd);
}

/* An iovec from 6 bytes: a page offset relative to guest RAM (may fall
 * outside it), a sub-page skew and a length in pages. */
static struct iovec
take_iov(struct reader *r)
{
   int32_t page_off = (int16_t)take(r, 2);
   uint32_t skew = take(r, 1) & 0x3;
   uint32_t pages = take(r, 2) % (RAM_PAGES + 4);
   uint32_t len_skew = take(r, 1) & 0x1;

   return (struct iovec){
      ram + (intptr_t)page_off * PAGE + (skew == 3 ? 8 : 0),
      (size_t)pages * PAGE + (len_skew ? 100 : 0),
   };
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
   struct amdgpu_userptr_limits limits = {
      .max_entries = 16, .max_size = 32 * PAGE, .max_count = 4,
      .max_total = 48 * PAGE,
   };
   struct amdgpu_userptr_vm_limits vm_limits = { .max_mappings = 40 };
   uint32_t next_handle = 0;
   struct amdgpu_userptr_ops ops = {
      .create_bo = create_bo, .close_bo = close_bo, .data = &next_handle,
   };
   struct reader r = { data, size };
   struct amdgpu_userptr_table *tables[2];
   struct amdgpu_userptr_vm_stats st;
   struct amdgpu_userptr_vm *vm;
   struct iovec iov[20];
   bool added;

   if (!ram)
      map_once();
   added = take(&r, 1) & 1;
   vm = amdgpu_userptr_vm_create(&vm_limits, quiet, NULL);
   if (!vm)
      abort();
   amdgpu_userptr_vm_set_host_mapping_check(vm, is_blob, NULL);
   if (added)
      amdgpu_userptr_vm_add_guest_ram(vm, ram, RAM_PAGES * PAGE);
   for (unsigned i = 0; i < 2; i++) {
      tables[i] = amdgpu_userptr_table_create(vm, &ops, &limits, quiet, NULL);
      if (!tables[i])
         abort();
   }

   while (r.n) {
      uint32_t op = take(&r, 1), res_id = take(&r, 1) % 6;
      struct amdgpu_userptr_table *t = tables[(op >> 2) & 1];
      struct amdgpu_userptr *up = amdgpu_userptr_lookup(t, res_id);
      unsigned niov;

      switch (op % 4) {
      case 0: {
         niov = take(&r, 1) % 20;
         for (unsigned i = 0; i < niov; i++)
            iov[i] = take_iov(&r);
         uint64_t bytes = (uint64_t)take(&r, 2) * PAGE + (take(&r, 1) & 1);
         bool ro = take(&r, 1) & 1;
         struct amdgpu_userptr *out = NULL;

         if (!amdgpu_userptr_import(t, res_id, iov, niov, bytes, ro, &out)) {
            /* Accepted: guest RAM only, and the window really is it. */
            uint8_t *w = amdgpu_userptr_window(out);

            if (!in_ram(iov, niov) || !window_is(w, iov, niov))
               abort();
         }
         break;
      }
      case 1:
         niov = take(&r, 1) % 20;
         for (unsigned i = 0; i < niov; i++)
            iov[i] = take_iov(&r);
         if (up && !amdgpu_userptr_attach(up, iov, niov) &&
             (!in_ram(iov, niov) ||
              !window_is(amdgpu_userptr_window(up), iov, niov)))
            abort();
         break;
      case 2:
         if (up)
            amdgpu_userptr_detach(up);
         break;
      case 3:
         if (up)
            amdgpu_userptr_destroy(up);
         break;
      }
   }
   amdgpu_userptr_table_destroy(tables[0]);
   amdgpu_userptr_table_destroy(tables[1]);
   /* Teardown gives every host mapping and byte back to the VM. */
   amdgpu_userptr_vm_stats(vm, &st);
   if (st.mappings || st.total)
      abort();
   amdgpu_userptr_vm_destroy(vm);
   return 0;
}
