/* SPDX-License-Identifier: MIT */
/*
 * virtio-gpu wire additions for blob userptr resources (docs/design.md,
 * "Wire protocol").  Everything else uses commands QEMU already forwards:
 * RESOURCE_CREATE_BLOB (blob_mem GUEST, entries = the user pages),
 * RESOURCE_DETACH_BACKING (invalidation), RESOURCE_ATTACH_BACKING
 * (revalidation), RESOURCE_UNREF (destruction).
 */
#ifndef VIRTIO_GPU_USERPTR_H
#define VIRTIO_GPU_USERPTR_H

/*
 * virtio_gpu_resource_create_blob.blob_flags: set by the guest kernel (never
 * by guest user space) when it holds the pages without write access; the
 * device must not write them.  0x0008 and 0x0010 are left to the wire flags
 * AMD's earlier userptr series proposed.
 */
#define VIRTIO_GPU_BLOB_FLAG_GUEST_READONLY 0x0020

/*
 * Largest nr_entries QEMU accepts in one RESOURCE_CREATE_BLOB or
 * RESOURCE_ATTACH_BACKING (hw/display/virtio-gpu.c); the guest coalesces
 * physically contiguous pages and refuses a range that needs more runs.
 */
#define VIRTIO_GPU_USERPTR_MAX_ENTRIES 16384

#endif /* VIRTIO_GPU_USERPTR_H */
