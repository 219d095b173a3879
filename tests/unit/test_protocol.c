/* SPDX-License-Identifier: MIT */
/*
 * The protocol headers in include/ against the upstream headers they extend:
 * new flag bits must not collide with existing ones, the grown create_blob
 * struct must keep every old field at its offset, and the wire structs must
 * have the sizes both sides assume.
 */
#include <stddef.h>
#include <stdio.h>

#include <virtgpu_drm.h>

#include "amdgpu_userptr_proto.h"
#include "virtgpu_userptr_uapi.h"
#include "virtio_gpu_userptr.h"
#include "test_check.h"

/* The struct as the series defines it: Linux 6.12's plus one field. */
struct create_blob_userptr {
   struct drm_virtgpu_resource_create_blob base;
   __u32 blob_hints; /* Linux 7.2 */
   __u32 pad2;
   __u64 userptr;
};

int
main(void)
{
   const unsigned userptr_flags = VIRTGPU_BLOB_FLAG_USE_USERPTR |
                                  VIRTGPU_BLOB_FLAG_USERPTR_RDONLY |
                                  VIRTGPU_BLOB_FLAG_USERPTR_HMM;

   const unsigned existing_flags = VIRTGPU_BLOB_FLAG_USE_MAPPABLE |
                                   VIRTGPU_BLOB_FLAG_USE_SHAREABLE |
                                   VIRTGPU_BLOB_FLAG_USE_CROSS_DEVICE;

   /* New blob flags are fresh bits above the existing ones. */
   CHECK((userptr_flags & existing_flags) == 0);
   CHECK(userptr_flags > existing_flags);
   CHECK(__builtin_popcount(userptr_flags) == 3);

   /*
    * Growing at the end keeps the old layout; DRM zero-extends old callers.
    * userptr follows Linux 7.2's blob_hints and pad2.
    */
   CHECK(sizeof(struct drm_virtgpu_resource_create_blob) == 48);
   CHECK(offsetof(struct drm_virtgpu_resource_create_blob, blob_id) == 40);
   CHECK(offsetof(struct create_blob_userptr, blob_hints) == 48);
   CHECK(offsetof(struct create_blob_userptr, userptr) == 56);
   CHECK(sizeof(struct create_blob_userptr) ==
         VIRTGPU_RESOURCE_CREATE_BLOB_USERPTR_SIZE);

   /*
    * GETPARAM follows the last one in Linux 7.2: BLOB_ALIGNMENT, 9 (this
    * header is Linux 6.12's, which ends at EXPLICIT_DEBUG_NAME, 8).
    */
   CHECK(VIRTGPU_PARAM_RESOURCE_USERPTR == VIRTGPU_PARAM_EXPLICIT_DEBUG_NAME + 2);

   /* AMD's series' names and values for the flags both have. */
   CHECK(VIRTGPU_BLOB_FLAG_USE_USERPTR == 0x8);
   CHECK(VIRTGPU_BLOB_FLAG_USERPTR_RDONLY == 0x10);

   /*
    * virtio blob flags: USE_MAPPABLE 1, USE_SHAREABLE 2, CROSS_DEVICE 4;
    * 0x8 and 0x10 went to AMD's earlier wire proposals.
    */
   CHECK((VIRTIO_GPU_BLOB_FLAG_GUEST_READONLY & 0x1f) == 0);

   /* ccmd wire sizes: multiples of 8, header first. */
   CHECK(sizeof(struct amdgpu_ccmd_userptr_import_req) % 8 == 0);
   CHECK(offsetof(struct amdgpu_ccmd_userptr_import_req, res_id) == 16);
   CHECK(sizeof(struct amdgpu_ccmd_userptr_import_rsp) == 8);

   if (test_failures) {
      fprintf(stderr, "%d protocol checks failed\n", test_failures);
      return 1;
   }
   printf("protocol headers consistent\n");
   return 0;
}
