/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xf86drm.h>

#include "sim_util.h"

#define SDMA_PKT(op, sub, extra) \
	(((uint32_t)(extra) << 16) | ((uint32_t)(sub) << 8) | (op))

int
sim_gpu_open(struct sim_gpu *gpu)
{
	int r;

	memset(gpu, 0, sizeof(*gpu));
	gpu->fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
	if (gpu->fd < 0)
		return -errno;
	r = amdgpu_device_initialize(gpu->fd, &gpu->drm_major, &gpu->drm_minor,
				     &gpu->dev);
	if (r) {
		close(gpu->fd);
		return r;
	}
	r = amdgpu_cs_ctx_create(gpu->dev, &gpu->ctx);
	if (r) {
		amdgpu_device_deinitialize(gpu->dev);
		close(gpu->fd);
	}
	return r;
}

void
sim_gpu_close(struct sim_gpu *gpu)
{
	amdgpu_cs_ctx_free(gpu->ctx);
	amdgpu_device_deinitialize(gpu->dev);
	close(gpu->fd);
}

static int
sim_va_op(struct sim_buf *buf, uint32_t op, uint32_t flags)
{
	struct drm_amdgpu_gem_va va = {
		.handle = buf->handle,
		.operation = op,
		.flags = flags,
		.va_address = buf->va,
		.map_size = buf->size,
	};

	return drmIoctl(buf->fd, DRM_IOCTL_AMDGPU_GEM_VA, &va) ? -errno : 0;
}

static int
sim_buf_map_va(struct sim_gpu *gpu, struct sim_buf *buf, uint32_t flags)
{
	int r = amdgpu_va_range_alloc(gpu->dev, amdgpu_gpu_va_range_general,
				      buf->size, 4096, 0, &buf->va,
				      &buf->va_handle, 0);

	if (r)
		return r;
	buf->fd = gpu->fd;
	r = sim_va_op(buf, AMDGPU_VA_OP_MAP, flags);
	if (r)
		amdgpu_va_range_free(buf->va_handle);
	return r;
}

int
sim_buf_gtt(struct sim_gpu *gpu, uint64_t size, struct sim_buf *buf)
{
	struct amdgpu_bo_alloc_request req = {
		.alloc_size = size,
		.phys_alignment = 4096,
		.preferred_heap = AMDGPU_GEM_DOMAIN_GTT,
	};
	int r;

	memset(buf, 0, sizeof(*buf));
	buf->size = size;
	r = amdgpu_bo_alloc(gpu->dev, &req, &buf->bo);
	if (r)
		return r;
	r = amdgpu_bo_export(buf->bo, amdgpu_bo_handle_type_kms, &buf->handle);
	if (!r)
		r = amdgpu_bo_cpu_map(buf->bo, &buf->cpu);
	if (!r)
		r = sim_buf_map_va(gpu, buf, AMDGPU_VM_PAGE_READABLE |
					     AMDGPU_VM_PAGE_WRITEABLE);
	if (r)
		amdgpu_bo_free(buf->bo);
	return r;
}

int
sim_buf_userptr(struct sim_gpu *gpu, void *ptr, uint64_t size,
		uint32_t flags, struct sim_buf *buf)
{
	struct drm_amdgpu_gem_userptr args = {
		.addr = (uintptr_t)ptr,
		.size = size,
		.flags = flags,
	};
	int r;

	memset(buf, 0, sizeof(*buf));
	buf->size = size;
	if (drmIoctl(gpu->fd, DRM_IOCTL_AMDGPU_GEM_USERPTR, &args))
		return -errno;
	buf->handle = args.handle;
	r = sim_buf_map_va(gpu, buf, AMDGPU_VM_PAGE_READABLE |
				     AMDGPU_VM_PAGE_WRITEABLE);
	if (r) {
		fprintf(stderr, "GPU VA map of a userptr: %s\n", strerror(-r));
		drmCloseBufferHandle(gpu->fd, buf->handle);
	}
	return r;
}

void
sim_buf_free(struct sim_buf *buf)
{
	if (!buf->handle)
		return;
	sim_va_op(buf, AMDGPU_VA_OP_UNMAP, 0);
	amdgpu_va_range_free(buf->va_handle);
	if (buf->cpu)
		amdgpu_bo_cpu_unmap(buf->bo);
	if (buf->bo)
		amdgpu_bo_free(buf->bo);
	else
		drmCloseBufferHandle(buf->fd, buf->handle);
	memset(buf, 0, sizeof(*buf));
}

int
sim_ib_init(struct sim_gpu *gpu, struct sim_ib *ib)
{
	int r = sim_buf_gtt(gpu, 64 * 1024, &ib->buf);

	ib->dw = ib->buf.cpu;
	ib->n = 0;
	ib->ip_type = AMDGPU_HW_IP_DMA;
	return r;
}

void
sim_ib_fini(struct sim_ib *ib)
{
	sim_buf_free(&ib->buf);
}

void
sim_sdma_copy(struct sim_ib *ib, uint64_t dst, uint64_t src, uint64_t bytes)
{
	/* COPY_LINEAR moves at most 2^22 bytes per packet on SDMA 5. */
	while (bytes) {
		uint64_t n = bytes > (1u << 22) ? (1u << 22) : bytes;

		ib->dw[ib->n++] = SDMA_PKT(1, 0, 0);
		ib->dw[ib->n++] = n - 1;
		ib->dw[ib->n++] = 0;
		ib->dw[ib->n++] = (uint32_t)src;
		ib->dw[ib->n++] = src >> 32;
		ib->dw[ib->n++] = (uint32_t)dst;
		ib->dw[ib->n++] = dst >> 32;
		src += n;
		dst += n;
		bytes -= n;
	}
}

void
sim_sdma_fill(struct sim_ib *ib, uint64_t dst, uint32_t value, uint64_t bytes)
{
	while (bytes) {
		uint64_t n = bytes > (1u << 22) ? (1u << 22) : bytes;

		ib->dw[ib->n++] = SDMA_PKT(0xb, 0, 0x8000);	/* dword fill */
		ib->dw[ib->n++] = (uint32_t)dst;
		ib->dw[ib->n++] = dst >> 32;
		ib->dw[ib->n++] = value;
		ib->dw[ib->n++] = n - 1;
		dst += n;
		bytes -= n;
	}
}

void
sim_sdma_write(struct sim_ib *ib, uint64_t dst, const uint32_t *data,
	       unsigned count)
{
	ib->dw[ib->n++] = SDMA_PKT(2, 0, 0);
	ib->dw[ib->n++] = (uint32_t)dst;
	ib->dw[ib->n++] = dst >> 32;
	ib->dw[ib->n++] = count - 1;
	memcpy(&ib->dw[ib->n], data, count * 4);
	ib->n += count;
}

int
sim_fence_wait(struct sim_gpu *gpu, uint64_t seq, uint64_t timeout_ns,
	       bool *signaled)
{
	struct amdgpu_cs_fence fence = {
		.context = gpu->ctx,
		.ip_type = gpu->last_ip,
		.ring = gpu->last_ring,
		.fence = seq,
	};
	uint32_t expired = 0;
	int r = amdgpu_cs_query_fence_status(&fence, timeout_ns, 0, &expired);

	if (signaled)
		*signaled = expired;
	return r;
}

int
sim_submit_chunks(struct sim_gpu *gpu, struct sim_ib *ib,
		  const uint32_t *handles, unsigned num_handles,
		  const struct drm_amdgpu_cs_chunk *extra, unsigned num_extra,
		  uint64_t *seq_out)
{
	struct drm_amdgpu_bo_list_entry entries[64];
	struct drm_amdgpu_cs_chunk_ib ib_chunk = {
		.ip_type = ib->ip_type,
		.ring = ib->ring,
		.va_start = ib->buf.va,
		.ib_bytes = ib->n * 4,
	};
	struct drm_amdgpu_cs_chunk chunks[8] = {
		{
			.chunk_id = AMDGPU_CHUNK_ID_IB,
			.length_dw = sizeof(ib_chunk) / 4,
			.chunk_data = (uintptr_t)&ib_chunk,
		},
	};
	uint32_t list;
	uint64_t seq = 0;
	int r;

	if (num_handles + 1 > 64 || num_extra + 1 > 8)
		return -EINVAL;
	if (num_extra)
		memcpy(&chunks[1], extra, num_extra * sizeof(*extra));
	entries[0] = (struct drm_amdgpu_bo_list_entry){ ib->buf.handle, 0 };
	for (unsigned i = 0; i < num_handles; i++)
		entries[i + 1] = (struct drm_amdgpu_bo_list_entry){ handles[i], 0 };
	r = amdgpu_bo_list_create_raw(gpu->dev, num_handles + 1, entries, &list);
	if (r)
		return r;
	gpu->last_ip = ib->ip_type;
	gpu->last_ring = ib->ring;
	r = amdgpu_cs_submit_raw2(gpu->dev, gpu->ctx, list, num_extra + 1, chunks,
				  &seq);
	amdgpu_bo_list_destroy_raw(gpu->dev, list);
	ib->n = 0;
	if (!r && seq_out)
		*seq_out = seq;
	return r;
}

int
sim_submit(struct sim_gpu *gpu, struct sim_ib *ib, const uint32_t *handles,
	   unsigned num_handles, bool wait, uint64_t *seq_out)
{
	uint64_t seq = 0;
	int r = sim_submit_chunks(gpu, ib, handles, num_handles, NULL, 0, &seq);

	if (r)
		return r;
	if (seq_out)
		*seq_out = seq;
	if (!wait)
		return 0;
	return sim_fence_wait(gpu, seq, AMDGPU_TIMEOUT_INFINITE, NULL);
}
