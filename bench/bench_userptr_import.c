/* SPDX-License-Identifier: MIT */
/*
 * The host handler's cost, against copying the same bytes, in one run:
 *   - registration of a 256 MiB guest userptr (alias the runs into the
 *     window + AMDGPU_GEM_USERPTR + GEM_VA map) at run lengths 2 MiB,
 *     64 KiB, 16 KiB and 4 KiB, and at the distributions measured in a
 *     guest after a fragmenting workload, against memcpy of 256 MiB, with
 *     the host memory each costs (mappings, page tables);
 *   - detach and attach of the same;
 *   - invalidate + revalidate of a 2 MiB userptr (detach, attach other
 *     pages, the revalidating submission), against memcpy of 2 MiB and a
 *     no-op submission round trip.
 * Prints a table; asserts nothing about time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "amdgpu_userptr.h"
#include "sim_util.h"

#define MiB (1ull << 20)
#define BUF (256 * MiB)
#define RAM (2 * BUF)

static double
now(void)
{
   struct timespec ts;

   clock_gettime(CLOCK_MONOTONIC, &ts);
   return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void
quiet(void *data, const char *fmt, ...)
{
}

static double
best_memcpy(void *dst, const void *src, size_t n, int reps)
{
   double best = 1e9;

   for (int i = 0; i < reps; i++) {
      double t = now();

      memcpy(dst, src, n);
      t = now() - t;
      best = t < best ? t : best;
   }
   return best;
}

/* A value of /proc/self/status, in kB. */
static long
status_kb(const char *key)
{
   char line[128];
   long v = -1;
   FILE *f = fopen("/proc/self/status", "re");

   while (f && fgets(line, sizeof(line), f)) {
      if (!strncmp(line, key, strlen(key)))
         v = strtol(line + strlen(key) + 1, NULL, 10);
   }
   if (f)
      fclose(f);
   return v;
}

/* Kernel memory of this machine's mappings (vm_area_struct slab), bytes. */
static long
vma_slab_bytes(void)
{
   char line[256];
   long active = 0, size = 0;
   FILE *f = fopen("/proc/slabinfo", "re");

   while (f && fgets(line, sizeof(line), f)) {
      if (sscanf(line, "vm_area_struct %ld %*d %ld", &active, &size) == 2)
         break;
   }
   if (f)
      fclose(f);
   return active * size;
}

/*
 * Runs covering BUF: every one @pages long, or (@pages 0) geometrically
 * distributed around @mean_kib, as a fragmented guest's are.  A free page
 * between runs keeps them from coalescing.  Returns the count.
 */
static unsigned
make_runs(struct iovec *iov, unsigned max, uint8_t *ram, unsigned pages,
          double mean_kib)
{
   uint64_t off = 0, left = BUF;
   uint32_t seed = 12345;
   unsigned n = 0;

   while (left && n < max) {
      uint64_t len = pages;

      if (!pages) {
         /* geometric in pages: P(stop) = 4 KiB / mean at each page */
         len = 1;
         for (;;) {
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 8) % 1000000 < 4.0 / mean_kib * 1e6)
               break;
            len++;
         }
      }
      len *= 4096;
      if (len > left)
         len = left;
      iov[n++] = (struct iovec){ ram + off, len };
      off += len + 4096;
      left -= len;
   }
   return left ? max + 1 : n;
}

static void
bench_import(struct amdgpu_userptr_table *t, struct amdgpu_userptr_vm *vm,
             struct sim_gpu *gpu, const char *name, struct iovec *iov,
             unsigned runs, double base)
{
   struct amdgpu_userptr_vm_stats st;
   double best = 1e9, detach = 1e9, attach = 1e9;
   long pte = 0, slab = 0;
   uint64_t mappings = 0;

   for (int rep = 0; rep < 3; rep++) {
      struct amdgpu_userptr *up;
      long pte0 = status_kb("VmPTE:");
      long slab0 = vma_slab_bytes();
      double t0 = now();
      int r = amdgpu_userptr_import(t, 1, iov, runs, BUF, false, &up);

      if (!r)
         r = amdgpu_userptr_va_op(gpu->fd, up, AMDGPU_VA_OP_MAP,
                                  0x400000000ull, 0, BUF,
                                  AMDGPU_VM_PAGE_READABLE |
                                  AMDGPU_VM_PAGE_WRITEABLE);
      double dt = now() - t0;

      if (r) {
         printf("%-44s refused: %s\n", name, strerror(-r));
         return;
      }
      best = dt < best ? dt : best;
      amdgpu_userptr_vm_stats(vm, &st);
      mappings = st.mappings;
      slab = vma_slab_bytes() - slab0;
      /* Host amdgpu faults every page in (VALIDATE); the simulator does
       * not, so touch them for the page tables real use costs. */
      for (uint64_t off = 0; off < BUF; off += 4096)
         (void)*(volatile uint8_t *)((uint8_t *)amdgpu_userptr_window(up) + off);
      pte = status_kb("VmPTE:") - pte0;
      t0 = now();
      amdgpu_userptr_detach(up);
      dt = now() - t0;
      detach = dt < detach ? dt : detach;
      t0 = now();
      r = amdgpu_userptr_attach(up, iov, runs);
      dt = now() - t0;
      attach = dt < attach ? dt : attach;
      amdgpu_userptr_destroy(up);
      if (r) {
         printf("%-44s attach refused: %s\n", name, strerror(-r));
         return;
      }
   }
   printf("%-44s %8.2f ms  %6.1fx memcpy speed  detach %.2f ms, attach "
          "%.2f ms; %" PRIu64 " host mappings (%ld kB of VMA slab), %ld kB "
          "page tables\n", name, best * 1e3, base / best, detach * 1e3,
          attach * 1e3, mappings, slab >> 10, pte);
}

int
main(void)
{
   static const struct {
      const char *name;
      unsigned pages;
      double mean_kib;
   } dists[] = {
      { "register 256 MiB, 2 MiB runs", 512, 0 },
      { "register 256 MiB, 64 KiB runs", 16, 0 },
      { "register 256 MiB, 16 KiB runs", 4, 0 },
      { "register 256 MiB, 4 KiB runs", 1, 0 },
      /* Means measured in the VM lane's guest after churn (docs/
       * host-handler.md; tests/vm/userptr_runs.c), drawn geometrically. */
      { "register 256 MiB, mean 1298 KiB (THP always)", 0, 1298 },
      { "register 256 MiB, mean 21.5 KiB (THP madvise)", 0, 21.5 },
      { "register 256 MiB, mean 71 KiB (issue 15's guest)", 0, 71 },
   };
   struct amdgpu_userptr_vm *vm = amdgpu_userptr_vm_create(NULL, quiet, NULL);
   struct amdgpu_userptr_ops ops;
   struct amdgpu_userptr_table *t;
   struct sim_gpu gpu;
   const unsigned max_iov = 65536;
   struct iovec *iov = calloc(max_iov + 1, sizeof(*iov));
   uint8_t *ram, *copy;
   int memfd;
   double base;

   memfd = memfd_create("guest-ram", MFD_CLOEXEC);
   if (memfd < 0 || ftruncate(memfd, RAM) || sim_gpu_open(&gpu) || !iov ||
       !vm) {
      printf("FAIL: setup\n");
      return 1;
   }
   ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
   copy = malloc(BUF);
   memset(ram, 0x42, RAM);
   memset(copy, 0, BUF);
   amdgpu_userptr_ops_amdgpu(&ops, gpu.fd);
   t = amdgpu_userptr_table_create(vm, &ops, NULL, quiet, NULL);

   base = best_memcpy(copy, ram, BUF, 3);
   printf("%-44s %8.2f ms (baseline)\n", "memcpy 256 MiB", base * 1e3);

   for (unsigned k = 0; k < sizeof(dists) / sizeof(dists[0]); k++) {
      unsigned runs = make_runs(iov, max_iov, ram, dists[k].pages,
                                dists[k].mean_kib);
      char name[96];

      snprintf(name, sizeof(name), "%s (%u)", dists[k].name, runs);
      bench_import(t, vm, &gpu, name, iov, runs, base);
   }

   /* Invalidate + revalidate of 2 MiB (16 runs), with the submission that
    * revalidates it. */
   {
      const uint64_t size = 2 * MiB, len = size / 16;
      struct amdgpu_userptr *up;
      struct sim_ib ib;
      double base2 = best_memcpy(copy, ram, size, 20), nop, cyc;
      int reps = 500;
      uint32_t h;

      for (unsigned i = 0; i < 16; i++)
         iov[i] = (struct iovec){ ram + 2 * i * len, len };
      if (amdgpu_userptr_import(t, 2, iov, 16, size, false, &up) ||
          amdgpu_userptr_va_op(gpu.fd, up, AMDGPU_VA_OP_MAP, 0x800000000ull,
                               0, size, AMDGPU_VM_PAGE_READABLE) ||
          sim_ib_init(&gpu, &ib)) {
         printf("FAIL: 2 MiB userptr\n");
         return 1;
      }
      h = amdgpu_userptr_handle(up);
      double t0 = now();
      for (int i = 0; i < reps; i++) {
         ib.dw[ib.n++] = 0;
         sim_submit(&gpu, &ib, &h, 1, true, NULL);
      }
      nop = (now() - t0) / reps;
      t0 = now();
      for (int i = 0; i < reps; i++) {
         unsigned shift = (i & 1) ? 1 : 0;

         for (unsigned j = 0; j < 16; j++)
            iov[j] = (struct iovec){ ram + (2 * j + shift) * len, len };
         if (amdgpu_userptr_detach(up) || amdgpu_userptr_attach(up, iov, 16)) {
            printf("FAIL: detach/attach\n");
            return 1;
         }
         ib.dw[ib.n++] = 0;
         if (sim_submit(&gpu, &ib, &h, 1, true, NULL)) {
            printf("FAIL: revalidating submission\n");
            return 1;
         }
      }
      cyc = (now() - t0) / reps;
      printf("%-40s %10.1f us (baseline)\n", "memcpy 2 MiB", base2 * 1e6);
      printf("%-40s %10.1f us (baseline)\n", "no-op submission round trip",
             nop * 1e6);
      printf("%-40s %10.1f us  %.2fx memcpy, %.1fx no-op round trip\n",
             "invalidate+revalidate 2 MiB (16 runs)", cyc * 1e6, cyc / base2,
             cyc / nop);
      sim_ib_fini(&ib);
      amdgpu_userptr_destroy(up);
   }
   amdgpu_userptr_table_destroy(t);
   amdgpu_userptr_vm_destroy(vm);
   sim_gpu_close(&gpu);
   munmap(ram, RAM);
   free(copy);
   free(iov);
   return 0;
}
