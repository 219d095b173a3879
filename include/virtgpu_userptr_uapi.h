/* SPDX-License-Identifier: MIT */
/*
 * Guest UAPI additions for blob userptr resources (docs/design.md, "Guest
 * UAPI").  The kernel series adds exactly these to
 * include/uapi/drm/virtgpu_drm.h and the Mesa series to its copy in
 * include/drm-uapi/virtgpu_drm.h; tests/unit/test_protocol.c checks that the
 * three stay identical.
 */
#ifndef VIRTGPU_USERPTR_UAPI_H
#define VIRTGPU_USERPTR_UAPI_H

#include <linux/types.h>

/*
 * GETPARAM: bitmask of the userptr modes this kernel supports, 0 or -EINVAL
 * (older kernels) when none.  The name is that of AMD's userptr series
 * (ROCm's libhsakmt uses it), whose boolean is bit 0 here; the number is
 * the next free one after Linux 7.2's VIRTGPU_PARAM_BLOB_ALIGNMENT (9).
 */
#define VIRTGPU_PARAM_RESOURCE_USERPTR 10
#define VIRTGPU_USERPTR_MODE_PINNED (1 << 0)	/* FOLL_LONGTERM pins */
#define VIRTGPU_USERPTR_MODE_HMM    (1 << 1)	/* hmm_range_fault + notifier */

/*
 * drm_virtgpu_resource_create_blob.blob_flags additions.  USE_USERPTR is
 * only valid with VIRTGPU_BLOB_MEM_GUEST; the resource's backing is then the
 * caller's pages at [userptr, userptr + size) instead of new shmem.
 * USE_USERPTR and USERPTR_RDONLY have the names and values of AMD's series;
 * USERPTR_HMM is ours.
 */
#define VIRTGPU_BLOB_FLAG_USE_USERPTR      0x0008
#define VIRTGPU_BLOB_FLAG_USERPTR_RDONLY   0x0010	/* device never writes */
#define VIRTGPU_BLOB_FLAG_USERPTR_HMM      0x0020	/* HMM mode, else pinned */

/*
 * Only the creating drm_file may use a userptr resource (GEM_OPEN of its
 * flink name from another file: EPERM).  HMM mode pins nothing: the pages
 * follow the process's mm, and the file's EXECBUFFERs give the device the
 * current ones.  An EXECBUFFER that lists BOs must list every HMM userptr
 * it uses; one that lists none may use all of its file's.
 */

/*
 * struct drm_virtgpu_resource_create_blob grows by one trailing field
 * after Linux 7.2's blob_hints and pad2 (56 -> 64 bytes; the 6.12 backport
 * takes 7.2's layout first); DRM zero-extends older callers' structs, so
 * they keep working and read userptr as 0:
 *
 *	__u64 blob_id;
 *	__u32 blob_hints;
 *	__u32 pad2;
 *	__u64 userptr;	// page-aligned user address, with USE_USERPTR
 */
#define VIRTGPU_RESOURCE_CREATE_BLOB_USERPTR_SIZE 64

#endif /* VIRTGPU_USERPTR_UAPI_H */
