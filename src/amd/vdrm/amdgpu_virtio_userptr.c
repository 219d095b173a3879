/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 */

/* Buffers from user memory over the AMD native context.
 *
 * The guest kernel turns the pages into a guest blob resource
 * (VIRTGPU_BLOB_FLAG_USE_USERPTR), attached to our context like any other
 * resource; AMDGPU_CCMD_USERPTR_IMPORT then makes the host create a userptr
 * BO of this context under the same res_id.  From there on it is an ordinary
 * BO: the caller maps it at a VA of its choice with amdvgpu_bo_va_op_raw(),
 * puts it in CS BO lists by res_id, and amdvgpu_bo_free() unrefs the
 * resource, which destroys the host BO.
 */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <xf86drm.h>

#include "amdgpu_virtio_private.h"

#include "util/log.h"

/**
 * Userptr needs both ends: the guest kernel must offer a userptr mode
 * (VIRTGPU_PARAM_RESOURCE_USERPTR) and the host must handle USERPTR_IMPORT
 * (has_userptr in the capset).  Either one alone is useless.
 */
bool
amdvgpu_device_has_userptr(amdvgpu_device_handle dev)
{
   return dev->vdev->caps.u.amdgpu.has_userptr && vdrm_has_userptr(dev->vdev);
}

static int
userptr_import(amdvgpu_device_handle dev, uint32_t res_id, uint64_t size,
               uint32_t flags)
{
   struct amdgpu_ccmd_userptr_import_req req = {
      .hdr = AMDGPU_CCMD(USERPTR_IMPORT, sizeof(req)),
      .res_id = res_id,
      .flags = flags,
      .size = size,
   };
   struct amdgpu_ccmd_rsp *rsp =
      vdrm_alloc_rsp(dev->vdev, &req.hdr, sizeof(*rsp));

   /* Synchronous: the caller maps the BO next and must know it exists.
    * A transport failure is -EIO; otherwise the host's 0 or -errno.
    */
   if (vdrm_send_req(dev->vdev, &req.hdr, true))
      return -EIO;

   return rsp->ret;
}

/**
 * Create a BO backed by [cpu, cpu + size), without copying.  cpu and size
 * must be page-aligned.  The BO has no GPU VA yet.
 *
 * Returns 0, -EOPNOTSUPP when the guest kernel or the host cannot do it (the
 * caller then copies), or the negative errno of the step that failed
 * (docs: the kernel's and the host's errno tables).  Nothing is left behind
 * on failure.
 */
int
amdvgpu_bo_from_user_mem(amdvgpu_device_handle dev, void *cpu, uint64_t size,
                         uint32_t flags, amdvgpu_bo_handle *bo)
{
   uint32_t vdrm_flags = 0, import_flags = 0;
   uint32_t kms_handle, res_id;
   int r;

   if (!amdvgpu_device_has_userptr(dev))
      return -EOPNOTSUPP;

   if (flags & ~AMDVGPU_USERPTR_READONLY)
      return -EINVAL;

   if (size != (size_t)size)
      return -E2BIG;

   if (flags & AMDVGPU_USERPTR_READONLY) {
      vdrm_flags |= VDRM_USERPTR_READONLY;
      import_flags |= AMDGPU_CCMD_USERPTR_READONLY;
   }

   r = vdrm_bo_create_userptr(dev->vdev, cpu, size, vdrm_flags, &kms_handle);
   if (r)
      return r;

   res_id = vdrm_handle_to_res_id(dev->vdev, kms_handle);
   if (!res_id) {
      r = -EIO;
      goto fail_close;
   }

   r = userptr_import(dev, res_id, size, import_flags);
   if (r) {
      mesa_loge("USERPTR_IMPORT of res_id %u (%" PRIu64 " bytes) failed: %s",
                res_id, size, strerror(-r));
      /* The host answers 0 or a negative errno; anything else is a bug. */
      if (r > 0)
         r = -EIO;
      goto fail_close;
   }

   r = amdvgpu_bo_from_userptr_handle(dev, kms_handle, res_id, cpu, size, bo);
   if (r)
      goto fail_close;

   return 0;

fail_close:
   /* Unref the resource: the host drops whatever it had imported. */
   vdrm_bo_close(dev->vdev, kms_handle);
   return r;
}
