/* SPDX-License-Identifier: MIT */
/*
 * A hostile guest against the VMM's own limits.  With the default budgets
 * and guest RAM found from the iovecs (the integrated build), the guest
 * imports, over four contexts, userptrs of 16384 one-page entries that all
 * name the same guest page, so that no two entries coalesce and each costs
 * the VMM one mapping; then it retries with fewer entries until nothing
 * more is accepted.  Afterwards the process must still do what QEMU needs
 * to live: start threads, allocate coroutine-sized stacks (a mapping and a
 * guard page each) and map memory.  Without the mapping budget the imports
 * run the process into vm.max_map_count and these fail.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_userptr.h"
#include "test_check.h"

#define CONTEXTS 4
#define ENTRIES 16384
#define RAM_SIZE (256ull << 20)
#define STACKS 256
#define STACK_SIZE (1u << 20)   /* QEMU's coroutine stacks */
#define THREADS 8
#define MAPPINGS 4096

static long page;

struct log_count {
   unsigned lines, budget_lines;
};

static void
count_log(void *data, const char *fmt, ...)
{
   struct log_count *c = data;

   c->lines++;
   if (strstr(fmt, "max_map_count"))
      c->budget_lines++;
}

static void *
thread_main(void *arg)
{
   return arg;
}

/* What the VMM does after the guest's attempt: all must succeed. */
static void
vmm_still_lives(void)
{
   static uint8_t *stacks[STACKS], *maps[MAPPINGS];
   pthread_t threads[THREADS];
   unsigned started = 0, stacked = 0, mapped = 0;

   for (; started < THREADS; started++) {
      if (pthread_create(&threads[started], NULL, thread_main, NULL))
         break;
   }
   for (unsigned i = 0; i < started; i++)
      pthread_join(threads[i], NULL);
   for (; stacked < STACKS; stacked++) {
      uint8_t *s = mmap(NULL, STACK_SIZE + page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

      if (s == MAP_FAILED)
         break;
      stacks[stacked] = s;
      if (mprotect(s, page, PROT_NONE)) {   /* the guard page */
         stacked++;
         break;
      }
   }
   for (; mapped < MAPPINGS; mapped++) {
      /* Alternate protections so that neighbours never merge. */
      uint8_t *m = mmap(NULL, page, (mapped & 1) ? PROT_READ : PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

      if (m == MAP_FAILED)
         break;
      maps[mapped] = m;
   }
   printf("after the attempt: %u/%u threads, %u/%u coroutine stacks, "
          "%u/%u mappings\n", started, THREADS, stacked, STACKS, mapped,
          MAPPINGS);
   CHECK(started == THREADS);
   CHECK(stacked == STACKS && mprotect(stacks[0], page, PROT_NONE) == 0);
   CHECK(mapped == MAPPINGS);
   for (unsigned i = 0; i < stacked; i++)
      munmap(stacks[i], STACK_SIZE + page);
   for (unsigned i = 0; i < mapped; i++)
      munmap(maps[i], page);
}

static int
noop_create(void *data, void *addr, uint64_t size, bool readonly,
            uint32_t *handle)
{
   *handle = ++*(uint32_t *)data;
   return 0;
}

static void
noop_close(void *data, uint32_t handle)
{
}

int
main(void)
{
   uint32_t handles = 0;
   struct amdgpu_userptr_ops ops = {
      .create_bo = noop_create, .close_bo = noop_close, .data = &handles,
   };
   struct amdgpu_userptr_table *tables[CONTEXTS];
   struct amdgpu_userptr_vm_stats st;
   struct amdgpu_userptr_vm *vm;
   struct log_count logs = { 0 };
   struct iovec *iov;
   unsigned accepted = 0, refused = 0, res_id = 1;
   uint64_t entries_accepted = 0;
   uint8_t *ram;
   int fd, first_refusal = 0;

   page = sysconf(_SC_PAGESIZE);
   fd = memfd_create("guest-ram", MFD_CLOEXEC);
   if (fd < 0 || ftruncate(fd, RAM_SIZE)) {
      perror("guest RAM");
      return 1;
   }
   ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
   iov = calloc(ENTRIES, sizeof(*iov));
   vm = amdgpu_userptr_vm_create(NULL, count_log, &logs);
   if (ram == MAP_FAILED || !iov || !vm) {
      perror("setup");
      return 1;
   }
   for (unsigned i = 0; i < ENTRIES; i++)
      iov[i] = (struct iovec){ ram, page };
   for (unsigned c = 0; c < CONTEXTS; c++)
      tables[c] = amdgpu_userptr_table_create(vm, &ops, NULL, count_log, &logs);

   /* Every context, as many entries as accepted, then fewer. */
   for (unsigned c = 0; c < CONTEXTS; c++) {
      for (unsigned n = ENTRIES; n >= 1;) {
         struct amdgpu_userptr *up;
         int r = amdgpu_userptr_import(tables[c], res_id++, iov, n,
                                       (uint64_t)n * page, false, &up);

         if (!r) {
            accepted++;
            entries_accepted += n;
            continue;
         }
         if (!first_refusal)
            first_refusal = r;
         refused++;
         n /= 2;
      }
   }
   amdgpu_userptr_vm_stats(vm, &st);
   printf("guest: %u userptrs (%" PRIu64 " entries) accepted, %u refused "
          "(first: %s); host mappings %" PRIu64 " of the budget's %" PRIu64
          ", %u log lines on it\n", accepted, entries_accepted, refused,
          strerror(-first_refusal), st.mappings, st.max_mappings,
          logs.budget_lines);
   CHECK(first_refusal == -ENOSPC);
   CHECK(st.mappings <= st.max_mappings);
   CHECK(st.max_mappings - st.mappings < 2);   /* the guest used it all */
   CHECK(logs.budget_lines > 0);

   vmm_still_lives();

   for (unsigned c = 0; c < CONTEXTS; c++)
      amdgpu_userptr_table_destroy(tables[c]);
   amdgpu_userptr_vm_stats(vm, &st);
   CHECK(st.mappings == 0 && st.total == 0);
   amdgpu_userptr_vm_destroy(vm);
   munmap(ram, RAM_SIZE);
   close(fd);
   free(iov);
   if (test_failures) {
      fprintf(stderr, "%d checks failed\n", test_failures);
      return 1;
   }
   printf("host userptr exhaustion: the VMM keeps working\n");
   return 0;
}
