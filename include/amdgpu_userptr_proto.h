/* SPDX-License-Identifier: MIT */
/*
 * AMD native-context protocol additions for userptr (docs/design.md, "AMD
 * native-context protocol").  Written against virglrenderer 1.3.0's
 * src/drm/amdgpu/amdgpu_virtio_proto.h and Mesa 25.0.7's
 * src/amd/common/virtio/amdgpu_virtio_proto.h, which carry the same
 * definitions once the series are applied.
 */
#ifndef AMDGPU_USERPTR_PROTO_H
#define AMDGPU_USERPTR_PROTO_H

#include <stdint.h>

/* enum amdgpu_ccmd: the next value after AMDGPU_CCMD_CS_QUERY_FENCE_STATUS. */
#define AMDGPU_CCMD_USERPTR_IMPORT 11

/*
 * Capset bit: virgl_renderer_capset_drm.u.amdgpu takes one bit of its
 * __pad bitfield, right after has_vm_always_valid:
 *
 *	uint32_t has_vm_always_valid : 1;
 *	uint32_t has_userptr : 1;
 *	uint32_t __pad : 30;
 */
#define AMDGPU_CAPSET_HAS_USERPTR_BIT 1

/*
 * AMDGPU_CCMD_USERPTR_IMPORT
 *
 * Makes the guest-memory resource res_id (a VIRTGPU_BLOB_MEM_GUEST blob
 * attached to this context) a host userptr BO in this context's BO table,
 * under the same res_id, so BO_VA_OP, CS BO lists and BO_QUERY_INFO take it
 * like any other BO.  Its GPU VA is chosen by the guest's VA manager and
 * mapped with AMDGPU_CCMD_BO_VA_OP.  The response carries the result
 * (0 or a negative errno, see docs/design.md's errno table).
 */
struct amdgpu_ccmd_userptr_import_req {
	struct {
		uint32_t cmd;
		uint32_t len;
		uint32_t seqno;
		uint32_t rsp_off;
	} hdr;			/* struct vdrm_ccmd_req */
	uint32_t res_id;
	uint32_t flags;		/* AMDGPU_CCMD_USERPTR_* */
	uint64_t size;		/* must equal the resource's size */
};
#define AMDGPU_CCMD_USERPTR_READONLY (1 << 0)	/* GPU must not write */
#define AMDGPU_CCMD_USERPTR_FLAGS AMDGPU_CCMD_USERPTR_READONLY

struct amdgpu_ccmd_userptr_import_rsp {
	struct {
		uint32_t len;
		int32_t ret;
	} hdr;			/* struct amdgpu_ccmd_rsp */
};

_Static_assert(sizeof(struct amdgpu_ccmd_userptr_import_req) == 32, "wire size");
_Static_assert(sizeof(struct amdgpu_ccmd_userptr_import_rsp) == 8, "wire size");

#endif /* AMDGPU_USERPTR_PROTO_H */
