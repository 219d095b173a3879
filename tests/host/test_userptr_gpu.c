/* SPDX-License-Identifier: MIT */
/*
 * The host handler on the simulated amdgpu, with this process playing
 * QEMU's part: guest RAM is a shared memfd mapping, a "guest user buffer"
 * is a set of scattered guest pages, and the guest's entries become one
 * iovec each, as QEMU's virtio_gpu_create_mapping_iov() makes them.  Every
 * check is on bytes in guest RAM or in a GTT BO written by the GPU.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_sim_stats.h"
#include "amdgpu_userptr.h"
#include "sim_util.h"
#include "test_check.h"

#define PAGE 4096u
#define POISON_EARLY 0xdc
#define RAM_PAGES 8192u            /* 32 MiB of guest RAM */
#define GUEST_VA 0x400000000ull    /* where the guest maps its userptrs */

static uint8_t *ram;
static struct sim_gpu gpu;

static void
log_quiet(void *data, const char *fmt, ...)
{
   if (data)
      (*(unsigned *)data)++;
}

static uint8_t *
gpage(unsigned pfn)
{
   return ram + (size_t)pfn * PAGE;
}

/* The guest's entries for a list of page frames, adjacent frames merged
 * (the guest kernel coalesces), one iovec per entry (as QEMU maps them). */
static unsigned
make_iov(const unsigned *pfns, unsigned n, struct iovec *iov)
{
   unsigned niov = 0;

   for (unsigned i = 0; i < n; i++) {
      if (niov && (uint8_t *)iov[niov - 1].iov_base + iov[niov - 1].iov_len ==
                     gpage(pfns[i])) {
         iov[niov - 1].iov_len += PAGE;
         continue;
      }
      iov[niov].iov_base = gpage(pfns[i]);
      iov[niov++].iov_len = PAGE;
   }
   return niov;
}

/* @n scattered frames from @first, stepping by a stride coprime with the
 * range so that no two are adjacent. */
static void
scatter(unsigned *pfns, unsigned n, unsigned first, unsigned span)
{
   for (unsigned i = 0; i < n; i++)
      pfns[i] = first + (i * 37u) % span;
}

/* Guest RAM as the integrated build finds it: from the iovecs. */
static struct amdgpu_userptr_vm *vm;

static struct amdgpu_userptr_table *
new_table(unsigned *logs)
{
   struct amdgpu_userptr_ops ops;

   amdgpu_userptr_ops_amdgpu(&ops, gpu.fd);
   return amdgpu_userptr_table_create(vm, &ops, NULL, log_quiet, logs);
}

static bool
page_is(const uint8_t *p, uint8_t v)
{
   for (unsigned i = 0; i < PAGE; i++)
      if (p[i] != v)
         return false;
   return true;
}

static struct amdgpu_userptr *
import_mapped(struct amdgpu_userptr_table *t, uint32_t res_id,
              const unsigned *pfns, unsigned n, bool readonly, uint64_t va)
{
   struct iovec iov[256];
   unsigned niov = make_iov(pfns, n, iov);
   struct amdgpu_userptr *up = NULL;
   int r = amdgpu_userptr_import(t, res_id, iov, niov, (uint64_t)n * PAGE,
                                 readonly, &up);

   CHECK(r == 0, "import: %s", strerror(-r));
   if (r)
      return NULL;
   r = amdgpu_userptr_va_op(gpu.fd, up, AMDGPU_VA_OP_MAP, va, 0,
                            (uint64_t)n * PAGE,
                            AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE);
   CHECK(r == 0, "VA map: %s", strerror(-r));
   return up;
}

/* The GPU fills, writes and copies through the userptr BO; the bytes land
 * in the scattered guest pages, in the guest's order. */
static void
test_gpu_scattered(void)
{
   enum { N = 64 };
   unsigned pfns[N], logs = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct amdgpu_userptr *up;
   struct sim_buf gtt;
   struct sim_ib ib;
   uint32_t h;

   scatter(pfns, N, 100, 1000);
   for (unsigned i = 0; i < 1200; i++)
      memset(gpage(i), 0xee, PAGE);
   up = import_mapped(t, 1, pfns, N, false, GUEST_VA);
   CHECK(!sim_buf_gtt(&gpu, N * PAGE, &gtt), "gtt");
   CHECK(!sim_ib_init(&gpu, &ib), "ib");
   if (!up)
      return;
   h = amdgpu_userptr_handle(up);

   sim_sdma_fill(&ib, GUEST_VA, 0xc3c3c3c3, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, &h, 1, true, NULL), "fill");
   bool ok = true;
   for (unsigned i = 0; i < N; i++)
      ok &= page_is(gpage(pfns[i]), 0xc3);
   CHECK(ok, "GPU fill reached every guest page");
   CHECK(page_is(gpage(99), 0xee) && page_is(gpage(1100), 0xee),
         "pages outside the buffer untouched");

   /* Page i of the GTT BO holds i: after the copy guest page pfns[i]
    * must hold i, i.e. the window follows the guest's order. */
   for (unsigned i = 0; i < N; i++)
      memset((uint8_t *)gtt.cpu + (size_t)i * PAGE, i, PAGE);
   sim_sdma_copy(&ib, GUEST_VA, gtt.va, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, true, NULL),
         "copy in");
   ok = true;
   for (unsigned i = 0; i < N; i++)
      ok &= page_is(gpage(pfns[i]), (uint8_t)i);
   CHECK(ok, "GTT -> userptr copy in the guest's page order");

   /* And back: the guest writes, the GPU reads. */
   for (unsigned i = 0; i < N; i++)
      memset(gpage(pfns[i]), 0x80 | i, PAGE);
   uint32_t words[3] = { 0xa1a1a1a1, 0xb2b2b2b2, 0xc3c3c3c3 };
   sim_sdma_write(&ib, GUEST_VA + 5 * PAGE + 8, words, 3);
   sim_sdma_copy(&ib, gtt.va, GUEST_VA, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, true, NULL),
         "copy out");
   ok = true;
   for (unsigned i = 0; i < N; i++)
      if (i != 5)
         ok &= page_is((uint8_t *)gtt.cpu + (size_t)i * PAGE, 0x80 | i);
   CHECK(ok, "userptr -> GTT copy sees the guest's bytes");
   CHECK(!memcmp(gpage(pfns[5]) + 8, words, 12) &&
         !memcmp((uint8_t *)gtt.cpu + 5 * PAGE + 8, words, 12),
         "SDMA write landed in guest page %u", pfns[5]);

   sim_ib_fini(&ib);
   sim_buf_free(&gtt);
   amdgpu_userptr_table_destroy(t);
}

/* Detach: the GPU cannot reach the pages; attach with other pages: the GPU
 * sees only those, at the same GPU VA. */
static void
test_gpu_detach_attach(void)
{
   enum { N = 32 };
   unsigned a[N], b[N], logs = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct amdgpu_userptr *up;
   struct iovec iov[N];
   struct sim_buf gtt;
   struct sim_ib ib;
   uint32_t h;

   scatter(a, N, 2000, 500);
   scatter(b, N, 3000, 500);
   for (unsigned i = 0; i < N; i++) {
      memset(gpage(a[i]), 0xaa, PAGE);
      memset(gpage(b[i]), 0xbb, PAGE);
   }
   up = import_mapped(t, 7, a, N, false, GUEST_VA);
   CHECK(!sim_buf_gtt(&gpu, N * PAGE, &gtt), "gtt");
   CHECK(!sim_ib_init(&gpu, &ib), "ib");
   if (!up)
      return;
   h = amdgpu_userptr_handle(up);

   CHECK(amdgpu_userptr_detach(up) == 0, "detach");
   sim_sdma_copy(&ib, gtt.va, GUEST_VA, N * PAGE);
   CHECK(sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, true,
                    NULL) == -EFAULT, "a submission on a detached userptr faults");
   sim_sdma_fill(&ib, GUEST_VA, 0, N * PAGE);
   CHECK(sim_submit(&gpu, &ib, &h, 1, true, NULL) == -EFAULT,
         "and cannot write either");

   CHECK(amdgpu_userptr_attach(up, iov, make_iov(b, N, iov)) == 0, "attach");
   sim_sdma_copy(&ib, gtt.va, GUEST_VA, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, true, NULL),
         "copy after attach");
   CHECK(page_is(gtt.cpu, 0xbb) &&
         page_is((uint8_t *)gtt.cpu + (N - 1) * PAGE, 0xbb),
         "the GPU reads the new pages at the same VA");
   sim_sdma_fill(&ib, GUEST_VA, 0x11111111, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, &h, 1, true, NULL), "fill after attach");
   bool ok = true;
   for (unsigned i = 0; i < N; i++)
      ok &= page_is(gpage(b[i]), 0x11) && page_is(gpage(a[i]), 0xaa);
   CHECK(ok, "writes go to the new pages, the released ones stay untouched");

   sim_ib_fini(&ib);
   sim_buf_free(&gtt);
   amdgpu_userptr_table_destroy(t);
}

static void
test_gpu_readonly(void)
{
   enum { N = 8 };
   unsigned pfns[N], logs = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct amdgpu_userptr *up;
   struct sim_buf gtt;
   struct sim_ib ib;
   uint32_t h;

   scatter(pfns, N, 4000, 64);
   for (unsigned i = 0; i < N; i++)
      memset(gpage(pfns[i]), 0x3e, PAGE);
   /* The guest asks for a writable mapping; the handler drops it. */
   up = import_mapped(t, 9, pfns, N, true, GUEST_VA);
   CHECK(!sim_buf_gtt(&gpu, N * PAGE, &gtt), "gtt");
   CHECK(!sim_ib_init(&gpu, &ib), "ib");
   if (!up)
      return;
   h = amdgpu_userptr_handle(up);
   sim_sdma_copy(&ib, gtt.va, GUEST_VA, N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, true, NULL),
         "read");
   CHECK(page_is(gtt.cpu, 0x3e), "the GPU reads read-only guest pages");
   struct amdgpu_sim_stats s0, s1;

   amdgpu_sim_get_stats(&s0);
   sim_sdma_fill(&ib, GUEST_VA, 0, N * PAGE);
   /* amdgpu logs the fault and the job ends well (no retry faults) */
   CHECK(!sim_submit(&gpu, &ib, &h, 1, true, NULL),
         "a GPU write to a read-only userptr: no fence error");
   amdgpu_sim_get_stats(&s1);
   CHECK(s1.gpu_faults == s0.gpu_faults + 1, "the write faulted");
   bool ok = true;
   for (unsigned i = 0; i < N; i++)
      ok &= page_is(gpage(pfns[i]), 0x3e);
   CHECK(ok, "guest pages unchanged");
   sim_ib_fini(&ib);
   sim_buf_free(&gtt);
   amdgpu_userptr_table_destroy(t);
}

/* DETACH_BACKING of a BO an unfinished submission uses is not an error: it
 * returns once the GPU is done, and the job saw the pages intact. */
static void
test_gpu_detach_busy(void)
{
   enum { N = 1024 };   /* 4 MiB, copied 64 times: a long job */
   unsigned pfns[N], logs = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct amdgpu_userptr *up;
   struct sim_buf gtt;
   struct sim_ib ib;
   uint64_t seq;
   bool signaled = false;
   uint32_t h;

   for (unsigned i = 0; i < N; i++)
      pfns[i] = 6100 + i;
   memset(gpage(6100), 0x4d, (size_t)N * PAGE);
   up = import_mapped(t, 13, pfns, N, false, GUEST_VA);
   CHECK(!sim_buf_gtt(&gpu, (uint64_t)N * PAGE, &gtt), "gtt");
   CHECK(!sim_ib_init(&gpu, &ib), "ib");
   if (!up)
      return;
   h = amdgpu_userptr_handle(up);
   for (int i = 0; i < 64; i++)
      sim_sdma_copy(&ib, gtt.va, GUEST_VA, (uint64_t)N * PAGE);
   CHECK(!sim_submit(&gpu, &ib, (uint32_t[]){ h, gtt.handle }, 2, false, &seq),
         "submit");
   CHECK(amdgpu_userptr_detach(up) == 0, "detach of a busy userptr succeeds");
   CHECK(!sim_fence_wait(&gpu, seq, 0, &signaled) && signaled,
         "detach returned before the GPU was done with the pages");
   memset(gpage(6100), POISON_EARLY, (size_t)N * PAGE);
   CHECK(page_is(gtt.cpu, 0x4d) &&
         page_is((uint8_t *)gtt.cpu + (size_t)(N - 1) * PAGE, 0x4d),
         "the job read the pages before they were released");
   sim_ib_fini(&ib);
   sim_buf_free(&gtt);
   amdgpu_userptr_table_destroy(t);
}

/*
 * The race: one thread streams GPU copies out of and fills into the
 * userptr while another invalidates and revalidates it between two page
 * sets.  After each detach the released pages are poisoned (the guest
 * reuses them); before a set is attached again its poison is checked.  A
 * GPU read of a released page shows up as poison in a copy; a GPU write to
 * one as damaged poison.
 */
#define RACE_N 16
#define POISON 0xdd
#define GOOD 0x5a
#define FILLED 0x6b

struct race {
   struct amdgpu_userptr *up;
   struct sim_buf gtt;
   unsigned sets[2][RACE_N];
   atomic_bool stop;
   atomic_uint copies, fills, refused, poison_reads, bad_status;
};

static void *
race_gpu(void *arg)
{
   struct race *rc = arg;
   uint32_t h = amdgpu_userptr_handle(rc->up);
   struct sim_ib ib;

   if (sim_ib_init(&gpu, &ib))
      return NULL;
   for (unsigned k = 0; !atomic_load(&rc->stop); k++) {
      int r;

      if (k % 4 == 3) {
         sim_sdma_fill(&ib, GUEST_VA, FILLED * 0x01010101u, RACE_N * PAGE);
         r = sim_submit(&gpu, &ib, &h, 1, true, NULL);
         if (!r)
            atomic_fetch_add(&rc->fills, 1);
      } else {
         memset(rc->gtt.cpu, 0, RACE_N * PAGE);
         sim_sdma_copy(&ib, rc->gtt.va, GUEST_VA, RACE_N * PAGE);
         r = sim_submit(&gpu, &ib, (uint32_t[]){ h, rc->gtt.handle }, 2,
                        true, NULL);
         if (!r) {
            const uint8_t *p = rc->gtt.cpu;

            atomic_fetch_add(&rc->copies, 1);
            for (unsigned i = 0; i < RACE_N * PAGE; i++) {
               if (p[i] == POISON) {
                  atomic_fetch_add(&rc->poison_reads, 1);
                  break;
               }
            }
         }
      }
      if (r == -EFAULT) {
         atomic_fetch_add(&rc->refused, 1);
         usleep(20);   /* detached: the guest would not resubmit at once */
      }
      else if (r)
         atomic_fetch_add(&rc->bad_status, 1);
   }
   sim_ib_fini(&ib);
   return NULL;
}

static void
test_gpu_race(void)
{
   const char *env = getenv("USERPTR_RACE_CYCLES");
   unsigned cycles = env ? (unsigned)atoi(env) : 3000, logs = 0, damaged = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct race rc = { 0 };
   struct iovec iov[RACE_N];
   pthread_t thread;

   scatter(rc.sets[0], RACE_N, 5000, 200);
   scatter(rc.sets[1], RACE_N, 5300, 200);
   for (unsigned s = 0; s < 2; s++)
      for (unsigned i = 0; i < RACE_N; i++)
         memset(gpage(rc.sets[s][i]), s ? POISON : GOOD, PAGE);
   rc.up = import_mapped(t, 11, rc.sets[0], RACE_N, false, GUEST_VA);
   CHECK(!sim_buf_gtt(&gpu, RACE_N * PAGE, &rc.gtt), "gtt");
   if (!rc.up)
      return;
   pthread_create(&thread, NULL, race_gpu, &rc);

   for (unsigned c = 0; c < cycles; c++) {
      unsigned *old = rc.sets[c & 1], *next = rc.sets[!(c & 1)];

      CHECK(amdgpu_userptr_detach(rc.up) == 0, "detach %u", c);
      /* Released: the guest reuses the pages. */
      for (unsigned i = 0; i < RACE_N; i++)
         memset(gpage(old[i]), POISON, PAGE);
      /* The next set was released one cycle ago: no GPU write since. */
      for (unsigned i = 0; i < RACE_N; i++)
         damaged += !page_is(gpage(next[i]), POISON);
      for (unsigned i = 0; i < RACE_N; i++)
         memset(gpage(next[i]), GOOD, PAGE);
      CHECK(amdgpu_userptr_attach(rc.up, iov, make_iov(next, RACE_N, iov)) == 0,
            "attach %u", c);
      /* Let some GPU work run on this set. */
      for (int spin = 0; spin < 200 && atomic_load(&rc.copies) + atomic_load(&rc.fills) <
                                           (c + 1) / 2; spin++)
         usleep(50);
   }
   atomic_store(&rc.stop, true);
   pthread_join(thread, NULL);

   printf("race: %u cycles, %u copies, %u fills, %u refused while detached, "
          "%u released-page reads, %u released-page writes\n",
          cycles, atomic_load(&rc.copies), atomic_load(&rc.fills),
          atomic_load(&rc.refused), atomic_load(&rc.poison_reads), damaged);
   CHECK(atomic_load(&rc.poison_reads) == 0, "GPU read released pages");
   CHECK(damaged == 0, "GPU wrote released pages");
   CHECK(atomic_load(&rc.bad_status) == 0, "submissions failed otherwise");
   CHECK(atomic_load(&rc.copies) >= cycles / 4 && atomic_load(&rc.fills) > 0,
         "too little GPU work overlapped the cycles to mean anything");
   sim_buf_free(&rc.gtt);
   amdgpu_userptr_table_destroy(t);
}

/* Register/map/unregister cycles with the real BO path; LeakSanitizer
 * checks the handler and the simulator at exit. */
static void
test_gpu_cycles(void)
{
   const char *env = getenv("USERPTR_GPU_CYCLES");
   unsigned cycles = env ? (unsigned)atoi(env) : 10000, logs = 0;
   struct amdgpu_userptr_table *t = new_table(&logs);
   struct amdgpu_userptr_stats st;
   struct amdgpu_sim_stats s0, s1;
   unsigned pfns[4] = { 6000, 6002, 6004, 6006 };
   bool ok = true;

   amdgpu_sim_get_stats(&s0);
   for (unsigned c = 0; c < cycles && ok; c++) {
      struct amdgpu_userptr *up =
         import_mapped(t, 100 + (c % 7), pfns, 4, c & 1, GUEST_VA + (c % 3) * 0x100000);

      ok = up != NULL;
      if (up)
         amdgpu_userptr_destroy(up);
   }
   amdgpu_userptr_table_stats(t, &st);
   amdgpu_sim_get_stats(&s1);
   CHECK(ok && st.count == 0 && st.total == 0 && st.imports == cycles &&
         st.destroys == cycles, "%u cycles: %u live, %llu imports",
         cycles, st.count, (unsigned long long)st.imports);
   /* Teardown with live, mapped userptrs releases them too. */
   import_mapped(t, 1, pfns, 4, false, GUEST_VA);
   import_mapped(t, 2, pfns, 4, true, GUEST_VA + 0x100000);
   amdgpu_userptr_table_destroy(t);
   CHECK(s1.gpu_faults == s0.gpu_faults, "no faults");
}

int
main(void)
{
   int memfd;
   int r;

   setvbuf(stdout, NULL, _IOLBF, 0);
   memfd = memfd_create("guest-ram", MFD_CLOEXEC);
   if (memfd < 0 || ftruncate(memfd, (off_t)RAM_PAGES * PAGE)) {
      printf("FAIL: guest RAM\n");
      return 1;
   }
   ram = mmap(NULL, (size_t)RAM_PAGES * PAGE, PROT_READ | PROT_WRITE,
              MAP_SHARED, memfd, 0);
   r = sim_gpu_open(&gpu);
   vm = amdgpu_userptr_vm_create(NULL, log_quiet, NULL);
   if (ram == MAP_FAILED || r || !vm) {
      printf("FAIL: setup: %s\n", strerror(-r));
      return 1;
   }
   test_gpu_scattered();
   test_gpu_detach_attach();
   test_gpu_readonly();
   test_gpu_detach_busy();
   test_gpu_race();
   test_gpu_cycles();
   amdgpu_userptr_vm_destroy(vm);
   sim_gpu_close(&gpu);
   {
      /* The handler left nothing in host amdgpu: every BO, userptr
       * notifier, context and file is gone. */
      struct amdgpu_sim_stats end;
      char left[128];

      sim_settled_stats(amdgpu_sim_get_stats, &end);
      CHECK(sim_nothing_alive(&end, left, sizeof(left)),
            "left in the simulated amdgpu: %s", left);
   }
   munmap(ram, (size_t)RAM_PAGES * PAGE);
   close(memfd);
   printf("%s: %d failure(s)\n", test_failures ? "FAIL" : "PASS", test_failures);
   return test_failures ? 1 : 0;
}
