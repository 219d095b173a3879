/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

/* Blob userptr resources on the virtgpu guest kernel driver: the probe
 * and the RESOURCE_CREATE_BLOB call behind the vdrm bo_create_userptr op.
 */

#ifndef __VDRM_VIRTGPU_USERPTR_H__
#define __VDRM_VIRTGPU_USERPTR_H__

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t vdrm_virtgpu_userptr_modes(int fd);

int vdrm_virtgpu_bo_create_userptr(int fd, uint32_t modes, void *ptr,
                                   size_t size, uint32_t flags,
                                   uint32_t *handle);

#ifdef __cplusplus
} /* end of extern "C" */
#endif

#endif /* __VDRM_VIRTGPU_USERPTR_H__ */
