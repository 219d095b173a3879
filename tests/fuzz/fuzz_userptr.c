/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the host handler's guest-facing entry points:
 * import (the guest's entries as iovecs, size, read-only), attach, detach
 * and destroy, in any order, on a table with small limits.  Entries may
 * point anywhere relative to guest RAM (a hostile guest controls them
 * through its physical addresses); BO creation is recorded, not done, so
 * each iteration is fast and self-contained.  The handler must never
 * crash, leak or accept an iovec outside guest RAM.
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

static uint8_t *ram;

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
   uint32_t next_handle = 0;
   struct amdgpu_userptr_ops ops = { create_bo, close_bo, &next_handle };
   struct reader r = { data, size };
   struct amdgpu_userptr_table *t;
   struct iovec iov[20];

   if (!ram) {
      int fd = memfd_create("guest-ram", MFD_CLOEXEC);

      if (fd < 0 || ftruncate(fd, RAM_PAGES * PAGE))
         abort();
      ram = mmap(NULL, RAM_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd, 0);
      if (ram == MAP_FAILED)
         abort();
   }
   t = amdgpu_userptr_table_create(&ops, &limits, quiet, NULL);
   if (!t)
      return 0;
   amdgpu_userptr_table_add_guest_ram(t, ram, RAM_PAGES * PAGE);

   while (r.n) {
      uint32_t op = take(&r, 1), res_id = take(&r, 1) % 6;
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
            /* Accepted: the window really is the guest's pages. */
            uint8_t *w = amdgpu_userptr_window(out);

            if (niov && iov[0].iov_len && w[0] != ((uint8_t *)iov[0].iov_base)[0])
               abort();
         }
         break;
      }
      case 1:
         niov = take(&r, 1) % 20;
         for (unsigned i = 0; i < niov; i++)
            iov[i] = take_iov(&r);
         if (up)
            amdgpu_userptr_attach(up, iov, niov);
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
   amdgpu_userptr_table_destroy(t);
   return 0;
}
