/* SPDX-License-Identifier: MIT */
/*
 * The host handler's window, validation and bookkeeping, with guest RAM as a
 * shared memfd mapping (as QEMU's memory-backend-memfd,share=on gives it)
 * and BO creation replaced by a recorder, so each check is about the
 * handler alone.  The GPU side runs against the simulated amdgpu in
 * test_userptr_gpu.c.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdarg.h>
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
/* A VMM that names its guest RAM: ram. */
static struct amdgpu_userptr_vm *vm;

struct recorder {
   unsigned created, closed, waited, next_handle;
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
   if (data)
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
   struct amdgpu_userptr_ops ops = {
      .create_bo = rec_create, .close_bo = rec_close, .data = rec,
   };

   return amdgpu_userptr_table_create(vm, &ops, limits, quiet, logs);
}

/* A VM of its own with one context, for the tests of guest RAM. */
struct own_vm {
   struct recorder rec;
   unsigned logs;
   char last_log[512];
   struct amdgpu_userptr_vm *vm;
   struct amdgpu_userptr_table *t;
};

/* Counts the log lines and keeps the last one. */
static void
own_vm_log(void *data, const char *fmt, ...)
{
   struct own_vm *o = data;
   va_list ap;

   o->logs++;
   va_start(ap, fmt);
   vsnprintf(o->last_log, sizeof(o->last_log), fmt, ap);
   va_end(ap);
}

static void
own_vm_init(struct own_vm *o)
{
   struct amdgpu_userptr_ops ops = {
      .create_bo = rec_create, .close_bo = rec_close, .data = &o->rec,
   };

   *o = (struct own_vm){ 0 };
   o->vm = amdgpu_userptr_vm_create(NULL, own_vm_log, o);
   o->t = amdgpu_userptr_table_create(o->vm, &ops, NULL, own_vm_log, o);
}

static void
own_vm_fini(struct own_vm *o)
{
   amdgpu_userptr_table_destroy(o->t);
   amdgpu_userptr_vm_destroy(o->vm);
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
   struct own_vm o;
   uint8_t *priv = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   struct iovec iov = { priv, 4 * page };
   struct amdgpu_userptr *up;

   own_vm_init(&o);
   amdgpu_userptr_vm_add_guest_ram(o.vm, priv, 4 * page);
   CHECK(amdgpu_userptr_import(o.t, 1, &iov, 1, 4 * page, false, &up) ==
         -EOPNOTSUPP);
   CHECK(o.rec.created == 0 && o.logs == 1);
   CHECK(strstr(o.last_log, "not shared with the host") &&
         strstr(o.last_log, "share=on"));
   own_vm_fini(&o);
   munmap(priv, 4 * page);
}

/* Blob mappings the renderer reports as host-visible, for test_found_ram. */
static uintptr_t blob_start, blob_end;

static bool
is_blob(void *data, uintptr_t start, uintptr_t end)
{
   (*(unsigned *)data)++;
   return start < blob_end && blob_start < end;
}

/*
 * The integrated build: guest RAM is found from the iovecs.  Layout, in
 * pages: 0-7 guest RAM (a memfd, split in three mappings by madvise),
 * 8 another shared file (mapped at file offset 8: same offset-to-address
 * distance as the first, so only the file tells them apart), 9-10 a
 * host-visible blob, 11 private memory, 12 a read-only shared file,
 * 13 nothing.
 */
static void
test_found_ram(void)
{
   struct own_vm o;
   unsigned asked = 0;
   struct amdgpu_userptr_vm_stats vst;
   struct amdgpu_userptr_stats st;
   struct amdgpu_userptr *up;
   int fds[4];
   uint8_t *l = mmap(NULL, 14 * page, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   const struct {
      unsigned first, count, fd, offset;
      int prot, flags;
   } layout[] = {
      { 0, 8, 0, 0, PROT_READ | PROT_WRITE, MAP_SHARED },
      { 8, 1, 1, 8, PROT_READ | PROT_WRITE, MAP_SHARED },
      { 9, 2, 2, 0, PROT_READ | PROT_WRITE, MAP_SHARED },
      { 11, 1, ~0u, 0, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS },
      { 12, 1, 3, 0, PROT_READ, MAP_SHARED },
   };
   struct iovec two_files[] = { { l + 7 * page, page }, { l + 8 * page, page } };
   struct iovec rest[] = { { l + 3 * page, 5 * page }, { l + 8 * page, page } };
   struct iovec split[] = { { l + page, page }, { l + 2 * page, 3 * page } };
   struct {
      const char *what;
      struct iovec iov;
      int err;
   } cases[] = {
      { "across two files", { l + 7 * page, 2 * page }, -EFAULT },
      { "host-visible blob", { l + 9 * page, page }, -EFAULT },
      { "private memory", { l + 11 * page, page }, -EOPNOTSUPP },
      { "read-only mapping", { l + 12 * page, page }, -EFAULT },
      { "nothing mapped", { l + 13 * page, page }, -EFAULT },
   };

   own_vm_init(&o);
   amdgpu_userptr_vm_set_host_mapping_check(o.vm, is_blob, &asked);
   for (unsigned i = 0; i < 4; i++) {
      fds[i] = memfd_create("found", MFD_CLOEXEC);
      CHECK(fds[i] >= 0 && ftruncate(fds[i], 16 * page) == 0);
   }
   for (unsigned i = 0; i < sizeof(layout) / sizeof(layout[0]); i++) {
      int fd = layout[i].fd == ~0u ? -1 : fds[layout[i].fd];

      CHECK(mmap(l + layout[i].first * page, layout[i].count * page,
                 layout[i].prot, layout[i].flags | MAP_FIXED, fd,
                 (off_t)layout[i].offset * page) == l + layout[i].first * page);
   }
   munmap(l + 13 * page, page);
   blob_start = (uintptr_t)l + 9 * page;
   blob_end = blob_start + 2 * page;
   /* Split guest RAM into three mappings of one file. */
   CHECK(madvise(l + 2 * page, 2 * page, MADV_DONTDUMP) == 0);
   memset(l, 0x5a, 8 * page);
   memset(l + 8 * page, 0xd8, page);

   for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
      unsigned before = o.logs;
      int ret = amdgpu_userptr_import(o.t, 10 + i, &cases[i].iov, 1, page *
                                      (cases[i].iov.iov_len / page), false, &up);

      if (ret != cases[i].err)
         fprintf(stderr, "case '%s': got %d, want %d\n", cases[i].what, ret,
                 cases[i].err);
      CHECK(ret == cases[i].err);
      CHECK(o.logs == before + 1);
   }
   CHECK(o.rec.created == 0);
   CHECK(asked > 0);

   /* A failed import found nothing: guest RAM is still unknown. */
   amdgpu_userptr_vm_stats(o.vm, &vst);
   CHECK(vst.guest_ram == 0);

   /* Adjacent pages of two files, same distance: two runs, each its own. */
   CHECK(amdgpu_userptr_import(o.t, 1, two_files, 2, 2 * page, false, &up) == 0);
   amdgpu_userptr_table_stats(o.t, &st);
   CHECK(st.runs_aliased == 2);
   CHECK(((uint8_t *)amdgpu_userptr_window(up))[0] == 0x5a);
   CHECK(((uint8_t *)amdgpu_userptr_window(up))[page] == 0xd8);
   amdgpu_userptr_destroy(up);

   /* Across the split: accepted, and one run. */
   CHECK(amdgpu_userptr_import(o.t, 1, split, 2, 4 * page, false, &up) == 0);
   amdgpu_userptr_table_stats(o.t, &st);
   CHECK(st.runs_aliased == 3);
   CHECK(((uint8_t *)amdgpu_userptr_window(up))[3 * page] == 0x5a);

   /* Guest RAM is what was found: the first file's three mappings and the
    * second file's one.  The context's quota follows it, the VM's is
    * twice that. */
   amdgpu_userptr_vm_stats(o.vm, &vst);
   CHECK(vst.guest_ram == 9 * (uint64_t)page);
   CHECK(vst.max_total == 18 * (uint64_t)page);
   CHECK(vst.mappings == 2 && vst.total == 4 * (uint64_t)page);
   unsigned before = o.logs;
   CHECK(amdgpu_userptr_import(o.t, 2, rest, 2, 6 * page, false, &up) == -ENOSPC);
   CHECK(o.logs == before + 1);
   CHECK(amdgpu_userptr_import(o.t, 2, rest, 1, 5 * page, false, &up) == 0);

   amdgpu_userptr_table_destroy(o.t);
   o.t = NULL;
   amdgpu_userptr_vm_stats(o.vm, &vst);
   CHECK(vst.mappings == 0 && vst.total == 0);
   own_vm_fini(&o);
   munmap(l, 14 * page);
   for (unsigned i = 0; i < 4; i++)
      close(fds[i]);
}

/*
 * Guest RAM of 2 MiB hugetlbfs pages cannot be aliased page by page: a
 * clear EOPNOTSUPP with the hint, nothing created.  Needs one huge page;
 * the test reserves it for its run.
 */
static void
test_hugetlb_ram(void)
{
   const size_t huge = 2u << 20;
   struct own_vm o;
   struct amdgpu_userptr *up;
   FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r+e");
   unsigned long had = 0;
   uint8_t *p = MAP_FAILED;
   int fd = memfd_create("huge", MFD_CLOEXEC | MFD_HUGETLB);

   own_vm_init(&o);
   if (f && fscanf(f, "%lu", &had) == 1) {
      rewind(f);
      fprintf(f, "%lu\n", had + 1);
      fflush(f);
   }
   if (fd >= 0 && ftruncate(fd, huge) == 0)
      p = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
               fd, 0);
   if (p == MAP_FAILED) {
      fprintf(stderr, "hugetlb guest RAM: cannot have a 2 MiB page: %s\n",
              strerror(errno));
      CHECK(!"a hugetlbfs page for the test");
   } else {
      struct iovec iov = { p + 3 * page, 2 * page };

      CHECK(amdgpu_userptr_import(o.t, 1, &iov, 1, 2 * page, false, &up) ==
            -EOPNOTSUPP);
      CHECK(o.rec.created == 0 && o.logs == 1);
      /* the hint names the cause, not just "shared normal pages" */
      CHECK(strstr(o.last_log, "2048 KiB huge pages (hugetlbfs)"));
      munmap(p, huge);
   }
   if (fd >= 0)
      close(fd);
   if (f) {
      rewind(f);
      fprintf(f, "%lu\n", had);
      fclose(f);
   }
   own_vm_fini(&o);
}

/*
 * The VM's budgets: host mappings (a window costs its runs, plus one for
 * itself) and bytes, shared by every context, checked before anything is
 * made and given back by detach and destroy.
 */
static void
test_vm_budgets(void)
{
   const struct amdgpu_userptr_vm_limits vlim = {
      .max_mappings = 10, .max_total = 12 * (uint64_t)page,
   };
   struct recorder rec = { 0 };
   unsigned logs = 0;
   struct amdgpu_userptr_ops ops = {
      .create_bo = rec_create, .close_bo = rec_close, .data = &rec,
   };
   struct amdgpu_userptr_vm *bvm = amdgpu_userptr_vm_create(&vlim, quiet, &logs);
   struct amdgpu_userptr_table *t1, *t2;
   struct amdgpu_userptr_vm_stats vst;
   struct amdgpu_userptr *a, *b, *c, *up;
   struct iovec four[] = { pages(0, 1), pages(2, 1), pages(4, 1), pages(6, 1) };
   struct iovec four2[] = { pages(10, 1), pages(12, 1), pages(14, 1),
                            pages(16, 1) };
   struct iovec one = pages(20, 1), two = pages(30, 2), eight = pages(40, 8);
   unsigned before;

   amdgpu_userptr_vm_add_guest_ram(bvm, ram, (uint64_t)RAM_PAGES * page);
   t1 = amdgpu_userptr_table_create(bvm, &ops, NULL, quiet, &logs);
   t2 = amdgpu_userptr_table_create(bvm, &ops, NULL, quiet, &logs);

   CHECK(amdgpu_userptr_import(t1, 1, four, 4, 4 * page, false, &a) == 0);
   CHECK(amdgpu_userptr_import(t2, 1, four2, 4, 4 * page, false, &b) == 0);
   amdgpu_userptr_vm_stats(bvm, &vst);
   CHECK(vst.mappings == 10 && vst.max_mappings == 10);
   before = logs;
   CHECK(amdgpu_userptr_import(t1, 2, &one, 1, page, false, &up) == -ENOSPC);
   CHECK(logs == before + 1 && rec.created == 2);

   /* Detached, a window costs one mapping. */
   CHECK(amdgpu_userptr_detach(a) == 0);
   CHECK(amdgpu_userptr_import(t1, 2, &one, 1, page, false, &c) == 0);
   amdgpu_userptr_vm_stats(bvm, &vst);
   CHECK(vst.mappings == 8);
   before = logs;
   CHECK(amdgpu_userptr_attach(a, four, 4) == -ENOSPC);
   CHECK(logs == before + 1 && !amdgpu_userptr_is_attached(a));
   CHECK(amdgpu_userptr_attach(a, &two, 1) == -EINVAL);   /* size */
   struct iovec whole = pages(50, 4);
   CHECK(amdgpu_userptr_attach(a, &whole, 1) == 0);
   amdgpu_userptr_vm_stats(bvm, &vst);
   CHECK(vst.mappings == 9 && vst.total == 9 * (uint64_t)page);

   /* Bytes: 9 of 12 pages are used, across both contexts. */
   amdgpu_userptr_destroy(c);
   before = logs;
   CHECK(amdgpu_userptr_import(t2, 3, &eight, 1, 8 * page, false, &up) == -ENOSPC);
   CHECK(logs == before + 1);
   CHECK(amdgpu_userptr_import(t2, 3, &two, 1, 2 * page, false, &up) == 0);

   amdgpu_userptr_table_destroy(t1);
   amdgpu_userptr_table_destroy(t2);
   amdgpu_userptr_vm_stats(bvm, &vst);
   CHECK(vst.mappings == 0 && vst.total == 0);
   CHECK(rec.created == rec.closed);
   amdgpu_userptr_vm_destroy(bvm);
}

static void
rec_wait_idle(void *data, uint32_t handle)
{
   ((struct recorder *)data)->waited++;
}

/* Makes every mmap(PROT_NONE, MAP_FIXED) of this process fail: what the
 * window's emptying does, refused as the kernel refuses it at
 * vm.max_map_count or without memory. */
static bool
refuse_fixed_prot_none_mmap(void)
{
   struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 0, 5),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
               offsetof(struct seccomp_data, args[2])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_NONE, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
               offsetof(struct seccomp_data, args[3])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOMEM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
   };
   struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

   return !prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) &&
          !prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * A window that cannot be emptied: the detach fails after the BO was
 * waited idle, and the userptr is dead (detached for good, attach EIO),
 * yet destroyed cleanly.  In a child, since the filter stays.
 */
static void
test_dead_userptr(void)
{
   pid_t pid = fork();
   int status;

   if (pid == 0) {
      struct recorder rec = { 0 };
      unsigned logs = 0;
      struct amdgpu_userptr_ops ops = {
         .create_bo = rec_create, .close_bo = rec_close,
         .wait_idle = rec_wait_idle, .data = &rec,
      };
      struct amdgpu_userptr_table *t =
         amdgpu_userptr_table_create(vm, &ops, NULL, quiet, &logs);
      struct iovec iov = pages(40, 4);
      struct amdgpu_userptr *up;

      CHECK(amdgpu_userptr_import(t, 1, &iov, 1, 4 * page, false, &up) == 0);
      CHECK(refuse_fixed_prot_none_mmap());
      CHECK(amdgpu_userptr_detach(up) == -ENOMEM);
      CHECK(rec.waited == 1 && logs == 1);
      CHECK(!amdgpu_userptr_is_attached(up));
      CHECK(amdgpu_userptr_attach(up, &iov, 1) == -EIO);
      amdgpu_userptr_destroy(up);
      CHECK(rec.closed == 1);
      amdgpu_userptr_table_destroy(t);
      _exit(test_failures ? 1 : 0);
   }
   CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
   CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "the child's checks (status 0x%x)", status);
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
   vm = amdgpu_userptr_vm_create(NULL, quiet, NULL);
   fd = memfd_create("guest-ram", MFD_CLOEXEC);
   if (fd < 0 || ftruncate(fd, (off_t)RAM_PAGES * page)) {
      perror("guest RAM");
      return 1;
   }
   ram = mmap(NULL, (size_t)RAM_PAGES * page, PROT_READ | PROT_WRITE,
              MAP_SHARED, fd, 0);
   if (ram == MAP_FAILED || !vm) {
      perror("mmap");
      return 1;
   }
   amdgpu_userptr_vm_add_guest_ram(vm, ram, (uint64_t)RAM_PAGES * page);

   test_scattered_import();
   test_readonly();
   test_bad_inputs();
   test_private_ram();
   test_found_ram();
   test_hugetlb_ram();
   test_vm_budgets();
   test_dead_userptr();
   test_cycles(cycles);
   amdgpu_userptr_vm_destroy(vm);

   munmap(ram, (size_t)RAM_PAGES * page);
   close(fd);
   if (test_failures) {
      fprintf(stderr, "%d checks failed\n", test_failures);
      return 1;
   }
   printf("host userptr window: all checks passed (%u cycles)\n", cycles);
   return 0;
}
