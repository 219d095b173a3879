/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * The per-file GPU VM: GEM_VA with Linux 6.12's checks, and the GPU's
 * memory accesses through it.  An access to an unmapped VA, a write without
 * WRITEABLE or to a read-only userptr, or a touch of a userptr whose pages
 * are being released is a GPU fault: the access fails, nothing is read or
 * written, and the submission's fence gets the error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amdgpu_sim.h"

void
sim_vm_init(struct sim_vm *vm)
{
	pthread_rwlock_init(&vm->lock, NULL);
}

void
sim_vm_fini(struct sim_vm *vm)
{
	for (unsigned i = 0; i < vm->count; i++)
		if (vm->maps[i].bo)
			sim_bo_unref(vm->maps[i].bo);
	free(vm->maps);
	pthread_rwlock_destroy(&vm->lock);
}

/* First mapping whose end is above @va. */
static unsigned
sim_vm_search(const struct sim_vm *vm, uint64_t va)
{
	unsigned lo = 0, hi = vm->count;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (vm->maps[mid].end <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int
sim_vm_insert_at(struct sim_vm *vm, unsigned i, const struct sim_mapping *m)
{
	if (vm->count == vm->capacity) {
		unsigned cap = vm->capacity ? vm->capacity * 2 : 16;
		struct sim_mapping *maps = realloc(vm->maps, cap * sizeof(*maps));

		if (!maps)
			return -ENOMEM;
		vm->maps = maps;
		vm->capacity = cap;
	}
	memmove(&vm->maps[i + 1], &vm->maps[i],
		(vm->count - i) * sizeof(*vm->maps));
	vm->maps[i] = *m;
	vm->count++;
	return 0;
}

static void
sim_vm_remove_at(struct sim_vm *vm, unsigned i)
{
	if (vm->maps[i].bo)
		sim_bo_unref(vm->maps[i].bo);
	memmove(&vm->maps[i], &vm->maps[i + 1],
		(vm->count - i - 1) * sizeof(*vm->maps));
	vm->count--;
}

/* amdgpu_vm_bo_clear_mappings(): whatever lies in [start, end) goes,
 * mappings that straddle the edges are cut. */
static int
sim_vm_clear_range(struct sim_vm *vm, uint64_t start, uint64_t end)
{
	unsigned i = sim_vm_search(vm, start);

	while (i < vm->count && vm->maps[i].start < end) {
		struct sim_mapping *m = &vm->maps[i];

		if (m->start < start && m->end > end) {
			struct sim_mapping tail = *m;

			tail.offset += end - m->start;
			tail.start = end;
			if (tail.bo)
				sim_bo_ref(tail.bo);
			m->end = start;
			return sim_vm_insert_at(vm, i + 1, &tail);
		}
		if (m->start < start) {
			m->end = start;
			i++;
		} else if (m->end > end) {
			m->offset += end - m->start;
			m->start = end;
			i++;
		} else {
			sim_vm_remove_at(vm, i);
		}
	}
	return 0;
}

void
sim_vm_remove_bo(struct sim_vm *vm, struct sim_bo *bo)
{
	pthread_rwlock_wrlock(&vm->lock);
	for (unsigned i = 0; i < vm->count;) {
		if (vm->maps[i].bo == bo)
			sim_vm_remove_at(vm, i);
		else
			i++;
	}
	pthread_rwlock_unlock(&vm->lock);
}

int
sim_ioctl_gem_va(int fd, unsigned long request, void *arg)
{
	const uint32_t valid_flags = AMDGPU_VM_DELAY_UPDATE |
		AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE |
		AMDGPU_VM_PAGE_EXECUTABLE | AMDGPU_VM_MTYPE_MASK |
		AMDGPU_VM_PAGE_NOALLOC;
	const uint32_t prt_flags = AMDGPU_VM_DELAY_UPDATE | AMDGPU_VM_PAGE_PRT;
	struct drm_amdgpu_gem_va *args = arg;
	struct sim_file *file = sim_file_get(fd);
	uint64_t vm_size = SIM_VM_SIZE - SIM_VA_RESERVED_TOP;
	uint64_t va = args->va_address, size = args->map_size;
	uint64_t offset = args->offset_in_bo, end;
	struct sim_bo *bo = NULL;
	struct sim_vm *vm;
	int r = 0;

	if (!file)
		return -EBADF;
	vm = &file->vm;
	if (va < SIM_VA_RESERVED_BOTTOM)
		return -EINVAL;
	if (va >= SIM_GMC_HOLE_START && va < SIM_GMC_HOLE_END)
		return -EINVAL;
	va &= SIM_GMC_HOLE_MASK;
	if (va + size > vm_size)
		return -EINVAL;
	if ((args->flags & ~valid_flags) && (args->flags & ~prt_flags))
		return -EINVAL;
	if (args->operation < AMDGPU_VA_OP_MAP ||
	    args->operation > AMDGPU_VA_OP_REPLACE)
		return -EINVAL;
	if (args->operation != AMDGPU_VA_OP_CLEAR &&
	    !(args->flags & AMDGPU_VM_PAGE_PRT)) {
		bo = sim_bo_lookup(file, args->handle);
		if (!bo)
			return -ENOENT;
	}

	if (args->operation != AMDGPU_VA_OP_UNMAP) {
		/* amdgpu_vm_verify_parameters() */
		if ((va | offset | size) & (SIM_PAGE_SIZE - 1) || size == 0 ||
		    va + size < va || offset + size < offset ||
		    (bo && offset + size > bo->size) ||
		    ((va + size - 1) >> 12) >= (SIM_VM_SIZE >> 12)) {
			r = -EINVAL;
			goto out;
		}
	}
	end = va + size;

	/* An unmap takes effect after the work already submitted. */
	if (args->operation != AMDGPU_VA_OP_MAP)
		sim_wait_seq(file->last_seq, UINT64_MAX);

	pthread_rwlock_wrlock(&vm->lock);
	switch (args->operation) {
	case AMDGPU_VA_OP_UNMAP: {
		unsigned i = sim_vm_search(vm, va);

		if (i < vm->count && vm->maps[i].start == va &&
		    vm->maps[i].bo == bo)
			sim_vm_remove_at(vm, i);
		else
			r = -ENOENT;
		break;
	}
	case AMDGPU_VA_OP_CLEAR:
		r = sim_vm_clear_range(vm, va, end);
		break;
	case AMDGPU_VA_OP_MAP:
	case AMDGPU_VA_OP_REPLACE: {
		struct sim_mapping m = {
			.start = va, .end = end, .offset = offset,
			.flags = args->flags, .bo = bo,
		};
		unsigned i;

		if (args->operation == AMDGPU_VA_OP_REPLACE) {
			r = sim_vm_clear_range(vm, va, end);
			if (r)
				break;
		}
		i = sim_vm_search(vm, va);
		if (i < vm->count && vm->maps[i].start < end) {
			r = -EINVAL;	/* overlaps an existing mapping */
			break;
		}
		if (bo)
			sim_bo_ref(bo);
		r = sim_vm_insert_at(vm, i, &m);
		if (r && bo)
			sim_bo_unref(bo);
		break;
	}
	}
	pthread_rwlock_unlock(&vm->lock);
out:
	if (bo)
		sim_bo_unref(bo);
	return r;
}

/* The submission the GPU is executing (set by the worker thread). */
_Thread_local uint64_t sim_exec_seq;

/*
 * A GPU VM fault, as Linux 6.12 handles one without retry faults: the
 * access goes to the dummy page (reads give zeroes, writes are dropped),
 * the fault is logged (AMDGPU_INFO_GPUVM_FAULT) and the job goes on; its
 * fence signals without an error.  Counted once per faulting access.
 */
static void
sim_fault(uint64_t va)
{
	SIM_STAT_ADD(gpu_faults, 1);
	atomic_store((_Atomic uint64_t *)&sim.stats.last_fault_va,
		     va ? va : 1);
}

/* CPU pointer for GPU VA @va and the bytes available there (*avail), or
 * NULL for a fault (then *avail is how far the fault reaches).  *zero is
 * set for a PRT mapping (reads 0, writes dropped). */
static uint8_t *
sim_translate(struct sim_vm *vm, uint64_t va, bool write, uint64_t *avail,
	      bool *zero)
{
	unsigned i = sim_vm_search(vm, va);
	const struct sim_mapping *m;
	struct sim_bo *bo;

	*zero = false;
	if (i >= vm->count || vm->maps[i].start > va) {
		*avail = i < vm->count ? vm->maps[i].start - va : UINT64_MAX;
		return NULL;
	}
	m = &vm->maps[i];
	*avail = m->end - va;
	if (!m->bo) {
		*zero = true;
		return (uint8_t *)1;
	}
	if (!(m->flags & AMDGPU_VM_PAGE_READABLE) && !write)
		return NULL;
	if (write && (!(m->flags & AMDGPU_VM_PAGE_WRITEABLE) ||
		      m->bo->readonly))
		return NULL;
	bo = m->bo;
	if (bo->is_userptr && !sim_userptr_usable(bo))
		return NULL;
	return bo->cpu + m->offset + (va - m->start);
}

/* Reads @len bytes at @va; faulting bytes read as zeroes. */
static bool
sim_read_span(struct sim_vm *vm, uint64_t va, uint8_t *out, uint64_t len,
	      bool *faulted)
{
	while (len) {
		uint64_t avail = 0, n;
		bool zero;
		uint8_t *p = sim_translate(vm, va, false, &avail, &zero);

		n = MIN2(avail, len);
		if (!p && !*faulted) {
			sim_fault(va);
			*faulted = true;
		}
		if (!p || zero)
			memset(out, 0, n);
		else
			memcpy(out, p, n);
		out += n;
		va += n;
		len -= n;
	}
	return !*faulted;
}

int
sim_gpu_read(struct sim_vm *vm, uint64_t va, void *dst, uint64_t len)
{
	bool faulted = false;

	sim_read_span(vm, va & SIM_GMC_HOLE_MASK, dst, len, &faulted);
	return 0;
}

int
sim_gpu_fetch(struct sim_vm *vm, uint64_t va, void *dst, uint64_t len)
{
	bool faulted = false;

	return sim_read_span(vm, va & SIM_GMC_HOLE_MASK, dst, len, &faulted) ?
	       0 : -EFAULT;
}

int
sim_gpu_write(struct sim_vm *vm, uint64_t va, const void *src, uint64_t len)
{
	const uint8_t *in = src;
	bool faulted = false;

	va &= SIM_GMC_HOLE_MASK;
	SIM_STAT_ADD(bytes_moved, len);
	while (len) {
		uint64_t avail = 0;
		bool zero;
		uint8_t *p = sim_translate(vm, va, true, &avail, &zero);
		uint64_t n = MIN2(avail, len);

		if (!p && !faulted) {
			sim_fault(va);
			faulted = true;
		}
		if (p && !zero)
			memcpy(p, in, n);
		in += n;
		va += n;
		len -= n;
	}
	return 0;
}

int
sim_gpu_copy(struct sim_vm *vm, uint64_t dst, uint64_t src, uint64_t len)
{
	bool sfault = false, dfault = false;

	dst &= SIM_GMC_HOLE_MASK;
	src &= SIM_GMC_HOLE_MASK;
	SIM_STAT_ADD(bytes_moved, len);
	while (len) {
		uint64_t savail = 0, davail = 0, n;
		bool szero, dzero;
		uint8_t *s = sim_translate(vm, src, false, &savail, &szero);
		uint8_t *d = sim_translate(vm, dst, true, &davail, &dzero);

		if (!s && !sfault) {
			sim_fault(src);
			sfault = true;
		}
		if (!d && !dfault) {
			sim_fault(dst);
			dfault = true;
		}
		n = MIN3(savail, davail, len);
		if (d && !dzero) {
			if (!s || szero)
				memset(d, 0, n);
			else
				memmove(d, s, n);
		}
		src += n;
		dst += n;
		len -= n;
	}
	return 0;
}

int
sim_gpu_fill(struct sim_vm *vm, uint64_t va, uint32_t value, uint64_t len)
{
	bool faulted = false;

	va &= SIM_GMC_HOLE_MASK;
	SIM_STAT_ADD(bytes_moved, len);
	while (len) {
		uint64_t avail = 0, n;
		bool zero;
		uint8_t *p = sim_translate(vm, va, true, &avail, &zero);

		n = MIN2(avail, len);
		if (!p && !faulted) {
			sim_fault(va);
			faulted = true;
		}
		if (p && !zero) {
			if (value == 0 || value == UINT32_MAX ||
			    ((value & 0xff) * 0x01010101u) == value) {
				memset(p, value & 0xff, n);
			} else {
				/* fill dwords, then the tail bytes of one */
				uint64_t k = 0;

				for (; k + 4 <= n; k += 4)
					memcpy(p + k, &value, 4);
				memcpy(p + k, &value, n - k);
			}
		}
		va += n;
		len -= n;
	}
	return 0;
}
