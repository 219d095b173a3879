/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

/*
 * What amdgpu_userptr.c asks of the VM-wide state: where guest RAM is, and
 * the budgets every context of the VMM process draws from.
 */

#ifndef AMDGPU_USERPTR_VM_H
#define AMDGPU_USERPTR_VM_H

#include "amdgpu_userptr.h"

/* The mapping the previous entry of one import was found in. */
struct amdgpu_userptr_vma {
   uintptr_t start, end;
   uint64_t file_delta;       /* file offset minus start */
   uint64_t inode;
   uint32_t dev_major, dev_minor;
   uint64_t page_size;
   bool shared, readable, writable, host_mapping;
};

/* The log when the caller gives none. */
void
amdgpu_userptr_log_stderr(void *data, const char *fmt, ...)
   __attribute__((format(printf, 2, 3)));

/* A file span: mappings of one file at one offset-to-address distance,
 * whose adjacent pages are adjacent in the file too. */
struct amdgpu_userptr_span {
   uint64_t inode, file_delta;
   uint32_t dev_major, dev_minor;
};

static inline bool
amdgpu_userptr_span_equal(const struct amdgpu_userptr_span *a,
                          const struct amdgpu_userptr_span *b)
{
   return a->inode == b->inode && a->file_delta == b->file_delta &&
          a->dev_major == b->dev_major && a->dev_minor == b->dev_minor;
}

struct amdgpu_userptr_range {
   uintptr_t start, end;
};

/* Lookups for one import: /proc/self/maps parsed at most once (kernels
 * without PROCMAP_QUERY), the last mapping remembered, and the mappings
 * found to be guest RAM, recorded only once the whole import is valid. */
struct amdgpu_userptr_ram_cursor {
   struct amdgpu_userptr_vma last;
   bool have_last;
   struct amdgpu_userptr_vma *maps;
   unsigned nmaps;
   struct amdgpu_userptr_range *found;
   unsigned nfound, found_room;
};

/*
 * Checks that an entry is guest RAM the window can alias: inside the VMM's
 * ranges if it added any, inside one shared mapping of normal pages (or
 * adjacent ones of the same file at adjacent offsets), never a host-visible
 * mapping.  *span is the entry's file span: adjacent entries of one span
 * can be aliased as one run.  Returns 0 or a negative errno after
 * logging why through log.
 */
int
amdgpu_userptr_vm_check_entry(struct amdgpu_userptr_vm *vm,
                              struct amdgpu_userptr_ram_cursor *cur,
                              amdgpu_userptr_log_fn log, void *log_data,
                              uint32_t res_id, unsigned index, uintptr_t base,
                              uint64_t len, struct amdgpu_userptr_span *span);

/* After every entry passed: the mappings they lay in are guest RAM. */
void
amdgpu_userptr_vm_note_found(struct amdgpu_userptr_vm *vm,
                             const struct amdgpu_userptr_ram_cursor *cur);

void
amdgpu_userptr_ram_cursor_fini(struct amdgpu_userptr_ram_cursor *cur);

/* Bytes of guest RAM known so far. */
uint64_t
amdgpu_userptr_vm_guest_ram(struct amdgpu_userptr_vm *vm);

/*
 * Takes host mappings and bytes from the VM's budgets, or returns -ENOSPC
 * after logging which one is used up.  Taken before anything is created.
 */
int
amdgpu_userptr_vm_charge(struct amdgpu_userptr_vm *vm,
                         amdgpu_userptr_log_fn log, void *log_data,
                         uint32_t res_id, uint64_t mappings, uint64_t bytes);

void
amdgpu_userptr_vm_uncharge(struct amdgpu_userptr_vm *vm, uint64_t mappings,
                           uint64_t bytes);

#endif /* AMDGPU_USERPTR_VM_H */
