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

/* Lookups for one import: /proc/self/maps parsed at most once (kernels
 * without PROCMAP_QUERY), the last mapping remembered. */
struct amdgpu_userptr_ram_cursor {
   struct amdgpu_userptr_vma last;
   bool have_last;
   struct amdgpu_userptr_vma *maps;
   unsigned nmaps;
};

/*
 * Checks that an entry is guest RAM the window can alias: inside the VMM's
 * ranges if it added any, inside one shared mapping of normal pages (or
 * adjacent ones of the same file at adjacent offsets), never a host-visible
 * mapping.  *span names the file span, so that adjacent entries of one
 * span can be aliased as one run.  Returns 0 or a negative errno after
 * logging why through log.
 */
int
amdgpu_userptr_vm_check_entry(struct amdgpu_userptr_vm *vm,
                              struct amdgpu_userptr_ram_cursor *cur,
                              amdgpu_userptr_log_fn log, void *log_data,
                              uint32_t res_id, unsigned index, uintptr_t base,
                              uint64_t len, uint64_t *span);

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

void
amdgpu_userptr_vm_table_ref(struct amdgpu_userptr_vm *vm, int delta);

#endif /* AMDGPU_USERPTR_VM_H */
