/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

#include <errno.h>
#include <string.h>
#include <xf86drm.h>

#include "drm-uapi/virtgpu_drm.h"
#include "util/log.h"
#include "util/os_misc.h"
#include "util/perf/cpu_trace.h"

#include "vdrm.h"
#include "vdrm_virtgpu_userptr.h"

#define VIRTGPU_USERPTR_MODES \
   (VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM)

/**
 * The userptr modes the kernel offers (VIRTGPU_PARAM_RESOURCE_USERPTR), 0 when it
 * offers none or does not know the param (kernels without blob userptr
 * return -EINVAL).
 *
 * MESA_VIRTGPU_USERPTR=pinned|hmm restricts the modes to one, for testing
 * both kernel paths; a mode the kernel does not offer leaves none.
 */
uint32_t
vdrm_virtgpu_userptr_modes(int fd)
{
   /* value must be zeroed because the kernel only writes the low 32 bits */
   uint64_t value = 0;
   struct drm_virtgpu_getparam args = {
      .param = VIRTGPU_PARAM_RESOURCE_USERPTR,
      .value = (uintptr_t)&value,
   };
   uint32_t modes;

   if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_GETPARAM, &args))
      return 0;

   modes = value & VIRTGPU_USERPTR_MODES;

   const char *override = os_get_option("MESA_VIRTGPU_USERPTR");
   if (override) {
      uint32_t want = 0;

      if (!strcmp(override, "pinned"))
         want = VIRTGPU_USERPTR_MODE_PINNED;
      else if (!strcmp(override, "hmm"))
         want = VIRTGPU_USERPTR_MODE_HMM;
      else
         mesa_logw("MESA_VIRTGPU_USERPTR=%s: expected pinned or hmm", override);

      if (want && !(modes & want))
         mesa_logi("MESA_VIRTGPU_USERPTR=%s: the kernel does not offer it",
                   override);
      modes &= want;
   }

   return modes;
}

/**
 * Create a guest blob resource backed by the pages at [ptr, ptr + size).
 * HMM mode is used when the kernel offers it (it follows the process's
 * mappings and is not bound by RLIMIT_MEMLOCK), pinned mode otherwise.
 *
 * Returns 0 and the GEM handle, or the kernel's negative errno.
 */
int
vdrm_virtgpu_bo_create_userptr(int fd, uint32_t modes, void *ptr, size_t size,
                               uint32_t flags, uint32_t *handle)
{
   struct drm_virtgpu_resource_create_blob args = {
      .blob_mem   = VIRTGPU_BLOB_MEM_GUEST,
      .blob_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR,
      .size       = size,
      .userptr    = (uintptr_t)ptr,
   };

   MESA_TRACE_FUNC();

   if (modes & VIRTGPU_USERPTR_MODE_HMM)
      args.blob_flags |= VIRTGPU_BLOB_FLAG_USERPTR_HMM;
   else if (!(modes & VIRTGPU_USERPTR_MODE_PINNED))
      return -EOPNOTSUPP;

   if (flags & VDRM_USERPTR_READONLY)
      args.blob_flags |= VIRTGPU_BLOB_FLAG_USERPTR_RDONLY;

   if (drmIoctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB, &args)) {
      int err = errno;
      mesa_loge("userptr blob of %zu bytes failed: %s", size, strerror(err));
      return -err;
   }

   *handle = args.bo_handle;
   return 0;
}
