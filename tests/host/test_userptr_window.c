/* SPDX-License-Identifier: MIT */
/*
 * The host handler's window, validation and bookkeeping, with guest RAM as a
 * shared memfd mapping (as QEMU's memory-backend-memfd,share=on gives it)
 * and BO creation replaced by a recorder, so each check is about the
 * handler alone.  The GPU side runs against the simulated amdgpu in
 * test_userptr_gpu.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "amdgpu_userptr.h"
#include "test_check.h"

#define RAM_PAGES 1024

static long page;
static uint8_t *ram;

struct recorder {
   unsigned created, closed, next_handle;
   void *addr;
   uint64_t size;
   bool readonly;
   int fail_with;
};

static int
rec_create(void *data, void *addr, uint64_t size, bool readonly,
           uint32_t *handle)
{
   struct recorder *r = data;

   if (r->fail_with)
      return r->fail_with;
   r->created++;
   r->addr = addr;
   r->size = size;
   r->readonly = readonly;
   *handle = ++r->next_handle;
   return 0;
}

static void
rec_close(void *data, uint32_t handle)
{
   ((struct recorder *)data)->closed++;
}

static void
quiet(void *data, const char *fmt, ...)
{
   (*(unsigned *)data)++;
}

/* Protection of the mapping that holds addr, from /proc/self/maps. */
static bool
perms_of(const void *addr, char out[5])
{
   FILE *f = fopen("/proc/self/maps", "re");
   char line[512];
   bool found = false;

   while (f && fgets(line, sizeof(line), f)) {
      uintptr_t s, e;

      if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &s, &e, out) == 3 &&
          s <= (uintptr_t)addr && (uintptr_t)addr < e) {
         found = true;
         break;
      }
   }
   if (f)
      fclose(f);
   return found;
}

static struct iovec
pages(unsigned first, unsigned count)
{
   return (struct iovec){ ram + (size_t)first * page, (size_t)count * page };
}

static void
fill_ram(void)
{
   for (unsigned i = 0; i < RAM_PAGES; i++)
      memset(ram + (size_t)i * page, i & 0xff, page);
}

static struct amdgpu_userptr_table *
new_table(struct recorder *rec, unsigned *logs,
          const struct amdgpu_userptr_limits *limits)
{
   struct amdgpu_userptr_ops ops = { rec_create, rec_close, rec };
   struct amdgpu_userptr_table *t =
      amdgpu_userptr_table_create(&ops, limits, quiet, logs);

   amdgpu_userptr_table_add_guest_ram(t, ram, (uint64_t)RAM_PAGES * page);
   return t;
}

static void
test_scattered_import(void)
{
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_table *t = new_table(&rec, &logs, NULL);
   /* 7 entries, 4 runs: 10-12 are adjacent, 40-41 too. */
   struct iovec iov[] = { pages(10, 1), pages(11, 1), pages(12, 1),
                          pages(3, 1), pages(40, 1), pages(41, 1),
                          pages(100, 2) };
   struct amdgpu_userptr_stats st;
   struct amdgpu_userptr *up;
   const uint8_t expect[] = { 10, 11, 12, 3, 40, 41, 100, 101 };
   uint8_t *w;
   char perms[5];

   fill_ram();
   CHECK(amdgpu_userptr_import(t, 7, iov, 7, 8 * page, false, &up) == 0);
   w = amdgpu_userptr_window(up);
   CHECK(rec.created == 1 && rec.addr == w && rec.size == 8 * (uint64_t)page);
   CHECK(!rec.readonly);
   CHECK(((uintptr_t)w & ((2u << 20) - 1)) == 0);
   for (unsigned i = 0; i < 8; i++)
      CHECK(w[i * page] == expect[i] && w[i * page + page - 1] == expect[i]);
   amdgpu_userptr_table_stats(t, &st);
   CHECK(st.runs_aliased == 4);
   CHECK(st.count == 1 && st.total == 8 * (uint64_t)page);

   /* Zero-copy both ways. */
   w[3 * page + 5] = 0xab;
   CHECK(ram[3 * page + 5] == 0xab);
   ram[100 * page + 9] = 0xcd;
   CHECK(w[6 * page + 9] == 0xcd);

   /* Detach leaves the range reserved and empty. */
   CHECK(amdgpu_userptr_detach(up) == 0);
   CHECK(!amdgpu_userptr_is_attached(up));
   CHECK(perms_of(w, perms) && strcmp(perms, "---p") == 0);
   CHECK(ram[3 * page + 5] == 0xab);   /* guest RAM untouched */

   /* Revalidation with other pages, same window. */
   struct iovec iov2[] = { pages(500, 8) };
   CHECK(amdgpu_userptr_attach(up, iov2, 1) == 0);
   CHECK(amdgpu_userptr_window(up) == w);
   for (unsigned i = 0; i < 8; i++)
      CHECK(w[i * page] == (uint8_t)(500 + i));
   CHECK(amdgpu_userptr_attach(up, iov2, 1) == -EINVAL);   /* has backing */

   amdgpu_userptr_destroy(up);
   CHECK(rec.closed == 1);
   CHECK(!perms_of(w, perms) || strcmp(perms, "rw-s") != 0);
   amdgpu_userptr_table_stats(t, &st);
   CHECK(st.count == 0 && st.total == 0);
   amdgpu_userptr_table_destroy(t);
}

static void
test_readonly(void)
{
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_table *t = new_table(&rec, &logs, NULL);
   struct iovec iov = pages(20, 4);
   struct amdgpu_userptr *up;
   char perms[5];

   CHECK(amdgpu_userptr_import(t, 1, &iov, 1, 4 * page, true, &up) == 0);
   CHECK(rec.readonly && amdgpu_userptr_is_readonly(up));
   CHECK(perms_of(amdgpu_userptr_window(up), perms) && strcmp(perms, "r--s") == 0);
   CHECK(amdgpu_userptr_detach(up) == 0);
   CHECK(amdgpu_userptr_attach(up, &iov, 1) == 0);
   CHECK(perms_of(amdgpu_userptr_window(up), perms) && strcmp(perms, "r--s") == 0);
   amdgpu_userptr_table_destroy(t);
   CHECK(rec.closed == 1);
}

/* Every guest-controlled value, each with its errno and a log line, and
 * nothing left behind. */
static void
test_bad_inputs(void)
{
   struct amdgpu_userptr_limits lim = {
      .max_entries = 8, .max_size = 64 * page, .max_count = 2,
      .max_total = 96 * page,
   };
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_table *t = new_table(&rec, &logs, &lim);
   struct amdgpu_userptr *up, *a, *b;
   uint8_t *outside = mmap(NULL, page, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
   struct iovec one = pages(0, 1);
   struct iovec many[9];
   struct {
      const char *what;
      struct iovec iov;
      uint64_t size;
      int err;
   } cases[] = {
      { "unaligned base", { ram + 100, page }, page, -EINVAL },
      { "unaligned length", { ram, page + 1 }, page + 1, -EINVAL },
      { "unaligned length, aligned size", { ram, 100 }, page, -EINVAL },
      { "zero length", { ram, 0 }, page, -EINVAL },
      { "wraps around", { (void *)(UINTPTR_MAX & ~(uintptr_t)(page - 1)),
                          2 * page }, 2 * page, -EINVAL },
      { "outside guest RAM", { outside, page }, page, -EFAULT },
      { "straddles the end of guest RAM",
        { ram + (size_t)(RAM_PAGES - 1) * page, 2 * page }, 2 * page, -EFAULT },
      { "size bigger than entries", { ram, page }, 2 * page, -EINVAL },
      { "size smaller than entries", { ram, 2 * page }, page, -EINVAL },
      { "size not page multiple", { ram, page }, page - 8, -EINVAL },
      { "size zero", { ram, page }, 0, -EINVAL },
      { "size above limit", { ram, 65 * page }, 65 * page, -E2BIG },
   };

   for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
      unsigned before = logs;
      int ret = amdgpu_userptr_import(t, 100 + i, &cases[i].iov, 1,
                                      cases[i].size, false, &up);
      if (ret != cases[i].err)
         fprintf(stderr, "case '%s': got %d, want %d\n", cases[i].what, ret,
                 cases[i].err);
      CHECK(ret == cases[i].err);
      CHECK(logs == before + 1);
   }
   CHECK(amdgpu_userptr_import(t, 1, NULL, 0, page, false, &up) == -EINVAL);

   for (unsigned i = 0; i < 9; i++)
      many[i] = pages(2 * i, 1);
   CHECK(amdgpu_userptr_import(t, 1, many, 9, 9 * page, false, &up) == -E2BIG);

   /* Double registration, then the per-context quotas. */
   CHECK(amdgpu_userptr_import(t, 1, &one, 1, page, false, &a) == 0);
   CHECK(amdgpu_userptr_import(t, 1, &one, 1, page, false, &up) == -EEXIST);
   struct iovec big = pages(64, 64);
   CHECK(amdgpu_userptr_import(t, 2, &big, 1, 64 * page, false, &b) == 0);
   CHECK(amdgpu_userptr_import(t, 3, &one, 1, page, false, &up) == -ENOSPC);
   amdgpu_userptr_destroy(a);
   struct iovec big2 = pages(200, 40);
   CHECK(amdgpu_userptr_import(t, 3, &big2, 1, 40 * page, false, &up) == -ENOSPC);

   /* Bad revalidation keeps the userptr detached and usable. */
   CHECK(amdgpu_userptr_detach(b) == 0);
   struct iovec bad = { outside, 64 * page };
   CHECK(amdgpu_userptr_attach(b, &bad, 1) == -EFAULT);
   CHECK(!amdgpu_userptr_is_attached(b));
   CHECK(amdgpu_userptr_attach(b, &big, 1) == 0);

   /* The BO backend refusing leaves no window and no entry. */
   rec.fail_with = -EPERM;
   CHECK(amdgpu_userptr_import(t, 9, &one, 1, page, false, &up) == -EPERM);
   CHECK(amdgpu_userptr_lookup(t, 9) == NULL);
   rec.fail_with = 0;

   unsigned created = rec.created;
   amdgpu_userptr_table_destroy(t);
   CHECK(rec.closed == created);
   munmap(outside, page);
}

/* Private guest RAM cannot be aliased: a clear error, nothing created. */
static void
test_private_ram(void)
{
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_ops ops = { rec_create, rec_close, &rec };
   struct amdgpu_userptr_table *t =
      amdgpu_userptr_table_create(&ops, NULL, quiet, &logs);
   uint8_t *priv = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   struct iovec iov = { priv, 4 * page };
   struct amdgpu_userptr *up;

   amdgpu_userptr_table_add_guest_ram(t, priv, 4 * page);
   CHECK(amdgpu_userptr_import(t, 1, &iov, 1, 4 * page, false, &up) ==
         -EOPNOTSUPP);
   CHECK(rec.created == 0 && logs == 1);
   amdgpu_userptr_table_destroy(t);
   munmap(priv, 4 * page);
}

/* Without a registration, any MAP_SHARED mapping of the process counts as
 * guest RAM and private memory does not. */
static void
test_unregistered_ram(void)
{
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_ops ops = { rec_create, rec_close, &rec };
   struct amdgpu_userptr_table *t =
      amdgpu_userptr_table_create(&ops, NULL, quiet, &logs);
   uint8_t *priv = mmap(NULL, page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   struct iovec good = pages(5, 2), bad = { priv, page };
   struct amdgpu_userptr *up;

   CHECK(amdgpu_userptr_import(t, 1, &good, 1, 2 * page, false, &up) == 0);
   CHECK(amdgpu_userptr_import(t, 2, &bad, 1, page, false, &up) == -EFAULT);
   amdgpu_userptr_table_destroy(t);
   munmap(priv, page);
}

/* Register/unregister many times: LeakSanitizer checks at exit, and the
 * table's own accounting must return to zero. */
static void
test_cycles(unsigned cycles)
{
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_table *t = new_table(&rec, &logs, NULL);
   struct amdgpu_userptr_stats st;

   for (unsigned i = 0; i < cycles; i++) {
      struct iovec iov[2] = { pages(i % 500, 1), pages(600 + i % 300, 2) };
      struct amdgpu_userptr *up;

      if (amdgpu_userptr_import(t, i + 1, iov, 2, 3 * page, i & 1, &up)) {
         CHECK(!"import failed");
         break;
      }
      if (i % 3 == 0) {
         amdgpu_userptr_detach(up);
         amdgpu_userptr_attach(up, iov, 2);
      }
      amdgpu_userptr_destroy(up);
   }
   amdgpu_userptr_table_stats(t, &st);
   CHECK(st.imports == cycles && st.destroys == cycles && st.count == 0);
   CHECK(rec.created == cycles && rec.closed == cycles);
   CHECK(logs == 0);
   amdgpu_userptr_table_destroy(t);
}

int
main(int argc, char **argv)
{
   unsigned cycles = argc > 1 ? strtoul(argv[1], NULL, 0) : 100000;
   int fd;

   page = sysconf(_SC_PAGESIZE);
   fd = memfd_create("guest-ram", MFD_CLOEXEC);
   if (fd < 0 || ftruncate(fd, (off_t)RAM_PAGES * page)) {
      perror("guest RAM");
      return 1;
   }
   ram = mmap(NULL, (size_t)RAM_PAGES * page, PROT_READ | PROT_WRITE,
              MAP_SHARED, fd, 0);
   if (ram == MAP_FAILED) {
      perror("mmap");
      return 1;
   }

   test_scattered_import();
   test_readonly();
   test_bad_inputs();
   test_private_ram();
   test_unregistered_ram();
   test_cycles(cycles);

   munmap(ram, (size_t)RAM_PAGES * page);
   close(fd);
   if (test_failures) {
      fprintf(stderr, "%d checks failed\n", test_failures);
      return 1;
   }
   printf("host userptr window: all checks passed (%u cycles)\n", cycles);
   return 0;
}
