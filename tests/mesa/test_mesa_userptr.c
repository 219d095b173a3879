/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the Mesa series (patches/): the vdrm userptr op, the
 * AMD native-context userptr BO and the ac_linux_drm glue, compiled from the
 * patched Mesa 25.0.7 tree and run against a simulated guest kernel and host.
 *
 * The simulation replaces libdrm's drmIoctl() (the executable's definition
 * wins over the shared library's): it answers the virtgpu ioctls as the
 * guest kernel would, and the ccmds inside EXECBUFFER as virglrenderer's AMD
 * context would, writing responses into the shared memory page (a memfd that
 * stands in for the device fd, so Mesa's mmap() of it works) and recording
 * everything Mesa sent.
 *
 *   test_mesa_userptr CASE      runs one case; prints "PASS CASE" or fails
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "drm-uapi/virtgpu_drm.h"
#include "amdgpu_virtio_private.h"
#include "ac_linux_drm.h"
#include "test_check.h"

/* The project's protocol headers (include/), next to the series' copies:
 * the UAPI macros are redefined identically or the build fails; the ccmd
 * struct is compared field by field below under another name.
 */
#include "virtgpu_userptr_uapi.h"

static const uint32_t mesa_ccmd_userptr_import = AMDGPU_CCMD_USERPTR_IMPORT;
#define amdgpu_ccmd_userptr_import_req proto_userptr_import_req
#define amdgpu_ccmd_userptr_import_rsp proto_userptr_import_rsp
#include "amdgpu_userptr_proto.h"
#undef amdgpu_ccmd_userptr_import_req
#undef amdgpu_ccmd_userptr_import_rsp

#define SHMEM_SIZE 0x4000
#define RES_ID_BIAS 1000

/* The fake device's VA layout (what AMDGPU_INFO_DEV_INFO reports). */
#define VA_LOW_START  0x200000ull
#define VA_LOW_END    0x800000000000ull
#define VA_HIGH_START 0xffff800000000000ull
#define VA_HIGH_END   0xffffffffffe00000ull

/* ------------------------------------------------------------------------ */
/* The simulated guest kernel + host                                         */

static struct {
   /* configuration */
   bool userptr_param_einval;  /* kernel without the series */
   uint32_t userptr_modes;     /* VIRTGPU_PARAM_RESOURCE_USERPTR answer */
   bool capset_has_userptr;    /* host advertises USERPTR_IMPORT */
   int userptr_blob_errno;     /* CREATE_BLOB(USE_USERPTR) fails */
   int resource_info_errno;    /* RESOURCE_INFO fails */
   int32_t import_ret;         /* host's answer to USERPTR_IMPORT */
   int execbuf_errno;          /* EXECBUFFER fails */

   /* state */
   uint8_t *shmem;             /* host view of the shared page */
   uint32_t next_handle;

   /* what Mesa sent, in order */
   char events[64];            /* B blob, R res info, I import, V va op, C close */
   unsigned n_events;
   struct drm_virtgpu_resource_create_blob blob;  /* last userptr blob */
   struct amdgpu_ccmd_userptr_import_req import;  /* last import */
   uint32_t import_rsp_off;
   struct amdgpu_ccmd_bo_va_op_req va_op;         /* last BO_VA_OP */
   unsigned n_va_ops;
   uint32_t closed[16];
   unsigned n_closed;
   unsigned n_fenced_execbufs;
   unsigned n_userptr_blobs, n_imports;
} k;

static void
event(char c)
{
   if (k.n_events < sizeof(k.events) - 1)
      k.events[k.n_events++] = c;
}

static int
fail(int err)
{
   errno = err;
   return -1;
}

static void
host_ccmd(struct vdrm_ccmd_req *hdr)
{
   struct amdvgpu_shmem *shmem = (struct amdvgpu_shmem *)k.shmem;
   uint8_t *rsp_mem = k.shmem + shmem->base.rsp_mem_offset;
   struct amdgpu_ccmd_rsp *rsp = (struct amdgpu_ccmd_rsp *)(rsp_mem + hdr->rsp_off);

   switch (hdr->cmd) {
   case AMDGPU_CCMD_QUERY_INFO: {
      struct amdgpu_ccmd_query_info_req *req = (void *)hdr;
      struct amdgpu_ccmd_query_info_rsp *qrsp = (void *)rsp;
      memset(qrsp->payload, 0, req->info.return_size);
      if (req->info.query == AMDGPU_INFO_DEV_INFO) {
         struct drm_amdgpu_info_device *info = (void *)qrsp->payload;
         info->family = AMDGPU_FAMILY_NV;
         info->virtual_address_offset = VA_LOW_START;
         info->virtual_address_max = VA_LOW_END;
         info->virtual_address_alignment = 4096;
         info->high_va_offset = VA_HIGH_START;
         info->high_va_max = VA_HIGH_END;
      } else if (req->info.query == AMDGPU_INFO_HW_IP_INFO &&
                 req->info.query_hw_ip.type == AMDGPU_HW_IP_GFX) {
         struct drm_amdgpu_info_hw_ip *ip = (void *)qrsp->payload;
         ip->available_rings = 1;
      }
      rsp->ret = 0;
      break;
   }
   case AMDGPU_CCMD_USERPTR_IMPORT:
      event('I');
      k.n_imports++;
      memcpy(&k.import, hdr, sizeof(k.import));
      k.import_rsp_off = hdr->rsp_off;
      rsp->ret = k.import_ret;
      break;
   case AMDGPU_CCMD_BO_VA_OP:
      event('V');
      k.n_va_ops++;
      memcpy(&k.va_op, hdr, sizeof(k.va_op));
      rsp->ret = 0;
      break;
   default:
      rsp->ret = -EINVAL;
      break;
   }
   shmem->base.seqno = hdr->seqno;
}

int drmIoctl(int fd, unsigned long request, void *arg);

int
drmIoctl(int fd, unsigned long request, void *arg)
{
   (void)fd;

   switch (request) {
   case DRM_IOCTL_VIRTGPU_GETPARAM: {
      struct drm_virtgpu_getparam *p = arg;
      if (p->param != VIRTGPU_PARAM_RESOURCE_USERPTR || k.userptr_param_einval)
         return fail(EINVAL);
      /* The kernel writes an int: only the low 32 bits. */
      *(uint32_t *)(uintptr_t)p->value = k.userptr_modes;
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_GET_CAPS: {
      struct drm_virtgpu_get_caps *c = arg;
      struct virgl_renderer_capset_drm *caps = (void *)(uintptr_t)c->addr;
      if (c->cap_set_id != VIRGL_RENDERER_CAPSET_DRM || c->size < sizeof(*caps))
         return fail(EINVAL);
      memset(caps, 0, sizeof(*caps));
      caps->wire_format_version = 1;
      caps->version_major = 3;
      caps->version_minor = 61;
      caps->context_type = VIRTGPU_DRM_CONTEXT_AMDGPU;
      caps->u.amdgpu.has_vm_always_valid = 1;
      caps->u.amdgpu.has_userptr = k.capset_has_userptr;
      strcpy(caps->u.amdgpu.marketing_name, "simulated");
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_CONTEXT_INIT:
      return 0;
   case DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB: {
      struct drm_virtgpu_resource_create_blob *b = arg;
      if (b->blob_flags & VIRTGPU_BLOB_FLAG_USE_USERPTR) {
         event('B');
         k.n_userptr_blobs++;
         k.blob = *b;
         if (k.userptr_blob_errno)
            return fail(k.userptr_blob_errno);
      }
      b->bo_handle = ++k.next_handle;
      b->res_handle = b->bo_handle + RES_ID_BIAS;
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_MAP: {
      struct drm_virtgpu_map *m = arg;
      m->offset = 0; /* the only mappable blob here is the shmem page */
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_RESOURCE_INFO: {
      struct drm_virtgpu_resource_info *ri = arg;
      event('R');
      if (k.resource_info_errno)
         return fail(k.resource_info_errno);
      ri->res_handle = ri->bo_handle + RES_ID_BIAS;
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_EXECBUFFER: {
      struct drm_virtgpu_execbuffer *eb = arg;
      if (k.execbuf_errno)
         return fail(k.execbuf_errno);
      /* Like the host, work on a copy: the guest's request buffer is only
       * 4-byte aligned.
       */
      static uint64_t req[0x4000 / 8];
      const uint8_t *p = (const uint8_t *)(uintptr_t)eb->command;
      const uint8_t *end = p + eb->size;
      while (p < end) {
         struct vdrm_ccmd_req hdr;
         if ((size_t)(end - p) < sizeof(hdr))
            return fail(EINVAL);
         memcpy(&hdr, p, sizeof(hdr));
         if (hdr.len < sizeof(hdr) || hdr.len > (size_t)(end - p) ||
             hdr.len > sizeof(req))
            return fail(EINVAL);
         memcpy(req, p, hdr.len);
         host_ccmd((struct vdrm_ccmd_req *)req);
         p += hdr.len;
      }
      if (eb->flags & VIRTGPU_EXECBUF_FENCE_FD_OUT) {
         /* Already signalled: the host above ran synchronously. */
         eb->fence_fd = eventfd(1, EFD_CLOEXEC);
         k.n_fenced_execbufs++;
      }
      return 0;
   }
   case DRM_IOCTL_VIRTGPU_WAIT:
      return 0;
   case DRM_IOCTL_GEM_CLOSE: {
      struct drm_gem_close *c = arg;
      event('C');
      if (k.n_closed < 16)
         k.closed[k.n_closed++] = c->handle;
      return 0;
   }
   default:
      fprintf(stderr, "unexpected ioctl 0x%lx\n", request);
      return fail(ENOTTY);
   }
}

/* ------------------------------------------------------------------------ */

static size_t page;

static void
reset_log(void)
{
   memset(k.events, 0, sizeof(k.events));
   k.n_events = 0;
   k.n_closed = 0;
   k.n_va_ops = 0;
   k.n_userptr_blobs = 0;
   k.n_imports = 0;
   k.n_fenced_execbufs = 0;
}

static bool
was_closed(uint32_t handle)
{
   for (unsigned i = 0; i < k.n_closed; i++)
      if (k.closed[i] == handle)
         return true;
   return false;
}

static int
open_fake_fd(void)
{
   int fd = memfd_create("simulated-virtgpu", MFD_CLOEXEC);
   if (fd < 0 || ftruncate(fd, SHMEM_SIZE)) {
      perror("memfd");
      exit(2);
   }
   k.shmem = mmap(NULL, SHMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
   if (k.shmem == MAP_FAILED) {
      perror("mmap");
      exit(2);
   }
   ((struct amdvgpu_shmem *)k.shmem)->base.rsp_mem_offset = sizeof(struct amdvgpu_shmem);
   return fd;
}

static amdvgpu_device_handle
open_device(void)
{
   amdvgpu_device_handle dev = NULL;
   uint32_t major, minor;
   int fd = open_fake_fd();

   int r = amdvgpu_device_initialize(fd, &major, &minor, &dev);
   close(fd); /* the device keeps its own dup */
   if (r || !dev) {
      fprintf(stderr, "amdvgpu_device_initialize: %d\n", r);
      exit(2);
   }
   CHECK(major == 3 && minor == 61);
   reset_log();
   return dev;
}

static void *
user_memory(size_t size)
{
   void *p = aligned_alloc(page, size);
   if (!p)
      exit(2);
   memset(p, 0x5a, size);
   return p;
}

/* ------------------------------------------------------------------------ */
/* The series' headers against the project's contract (include/)           */

#define SAME_FIELD(a, b, f)                                                   \
   (offsetof(struct a, f) == offsetof(struct b, f) &&                         \
    sizeof(((struct a *)0)->f) == sizeof(((struct b *)0)->f))

static void
case_proto_in_step(void)
{
   CHECK(mesa_ccmd_userptr_import == AMDGPU_CCMD_USERPTR_IMPORT);
   CHECK(sizeof(struct amdgpu_ccmd_userptr_import_req) ==
         sizeof(struct proto_userptr_import_req));
   CHECK(SAME_FIELD(amdgpu_ccmd_userptr_import_req, proto_userptr_import_req, hdr));
   CHECK(SAME_FIELD(amdgpu_ccmd_userptr_import_req, proto_userptr_import_req, res_id));
   CHECK(SAME_FIELD(amdgpu_ccmd_userptr_import_req, proto_userptr_import_req, flags));
   CHECK(SAME_FIELD(amdgpu_ccmd_userptr_import_req, proto_userptr_import_req, size));
   CHECK(sizeof(struct amdgpu_ccmd_rsp) == sizeof(struct proto_userptr_import_rsp));

   /* The grown create_blob struct. */
   CHECK(sizeof(struct drm_virtgpu_resource_create_blob) ==
         VIRTGPU_RESOURCE_CREATE_BLOB_USERPTR_SIZE);
   CHECK(offsetof(struct drm_virtgpu_resource_create_blob, userptr) == 56);

   /* The capset bit sits where the host puts it: bit 1 of the word after
    * address32_hi, bit 0 being has_vm_always_valid.
    */
   struct virgl_renderer_capset_drm caps;
   memset(&caps, 0, sizeof(caps));
   caps.u.amdgpu.has_userptr = 1;
   uint32_t word;
   memcpy(&word, (uint8_t *)&caps.u.amdgpu.address32_hi + 4, 4);
   CHECK(word == 1u << AMDGPU_CAPSET_HAS_USERPTR_BIT);
   memset(&caps, 0, sizeof(caps));
   caps.u.amdgpu.has_vm_always_valid = 1;
   memcpy(&word, (uint8_t *)&caps.u.amdgpu.address32_hi + 4, 4);
   CHECK(word == 1);
}

/* ------------------------------------------------------------------------ */
/* Capability: kernel mode AND host capset bit                              */

static void
expect_unsupported(amdvgpu_device_handle dev)
{
   void *mem = user_memory(4 * page);
   amdvgpu_bo_handle bo = NULL;

   CHECK(!amdvgpu_device_has_userptr(dev));
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, 4 * page, 0, &bo) == -EOPNOTSUPP);
   CHECK(bo == NULL);
   /* Nothing reached the kernel or the host. */
   CHECK(k.n_userptr_blobs == 0 && k.n_imports == 0 && k.n_events == 0);
   free(mem);
}

static void
case_caps_both(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   CHECK(dev->vdev->userptr_modes == (VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM));
   CHECK(vdrm_has_userptr(dev->vdev));
   CHECK(amdvgpu_device_has_userptr(dev));
   amdvgpu_device_deinitialize(dev);
}

static void
case_caps_old_kernel(void)
{
   k.userptr_param_einval = true;   /* GETPARAM 10 unknown */
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   CHECK(dev->vdev->userptr_modes == 0);
   CHECK(!vdrm_has_userptr(dev->vdev));
   expect_unsupported(dev);
   amdvgpu_device_deinitialize(dev);
}

static void
case_caps_kernel_no_mode(void)
{
   k.userptr_modes = 0;             /* e.g. no blob resources */
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   expect_unsupported(dev);
   amdvgpu_device_deinitialize(dev);
}

static void
case_caps_old_host(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = false;
   amdvgpu_device_handle dev = open_device();
   CHECK(vdrm_has_userptr(dev->vdev));  /* the kernel alone is not enough */
   expect_unsupported(dev);
   amdvgpu_device_deinitialize(dev);
}

static void
case_caps_unknown_mode_bits(void)
{
   /* Bits a future kernel may add are not modes this Mesa knows. */
   k.userptr_modes = 0x4;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   CHECK(dev->vdev->userptr_modes == 0);
   expect_unsupported(dev);
   amdvgpu_device_deinitialize(dev);
}

/* A vdrm backend without the op (vtest/vpipe): unsupported, no assert. */
static void
case_backend_without_op(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   const struct vdrm_device_funcs *orig = dev->vdev->funcs;
   struct vdrm_device_funcs no_userptr = *orig;
   no_userptr.bo_create_userptr = NULL;
   dev->vdev->funcs = &no_userptr;

   void *mem = user_memory(page);
   uint32_t handle = 0;
   CHECK(vdrm_bo_create_userptr(dev->vdev, mem, page, 0, &handle) == -EOPNOTSUPP);
   expect_unsupported(dev);

   dev->vdev->funcs = orig;
   free(mem);
   amdvgpu_device_deinitialize(dev);
}

/* ------------------------------------------------------------------------ */
/* MESA_VIRTGPU_USERPTR                                                     */

static uint32_t
modes_with_override(uint32_t kernel_modes, const char *value)
{
   k.userptr_modes = kernel_modes;
   k.capset_has_userptr = true;
   setenv("MESA_VIRTGPU_USERPTR", value, 1);
   amdvgpu_device_handle dev = open_device();
   uint32_t modes = dev->vdev->userptr_modes;
   amdvgpu_device_deinitialize(dev);
   unsetenv("MESA_VIRTGPU_USERPTR");
   return modes;
}

static void
case_env_override(void)
{
   const uint32_t both = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   CHECK(modes_with_override(both, "pinned") == VIRTGPU_USERPTR_MODE_PINNED);
   CHECK(modes_with_override(both, "hmm") == VIRTGPU_USERPTR_MODE_HMM);
   CHECK(modes_with_override(VIRTGPU_USERPTR_MODE_PINNED, "hmm") == 0);
   CHECK(modes_with_override(both, "bogus") == 0);
}

/* ------------------------------------------------------------------------ */
/* Wire encoding                                                            */

static void
case_wire_hmm(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   const size_t size = 16 * page;
   void *mem = user_memory(size);
   amdvgpu_bo_handle bo = NULL;

   CHECK(amdvgpu_bo_from_user_mem(dev, mem, size, 0, &bo) == 0);
   CHECK(bo != NULL);

   /* The blob: guest memory, the caller's pages, HMM preferred. */
   CHECK(k.n_userptr_blobs == 1);
   CHECK(k.blob.blob_mem == VIRTGPU_BLOB_MEM_GUEST);
   CHECK(k.blob.blob_flags == (VIRTGPU_BLOB_FLAG_USE_USERPTR |
                               VIRTGPU_BLOB_FLAG_USERPTR_HMM));
   CHECK(k.blob.userptr == (uintptr_t)mem);
   CHECK(k.blob.size == size);
   CHECK(k.blob.cmd_size == 0 && k.blob.cmd == 0 && k.blob.blob_id == 0);

   /* The ccmd, byte for byte what include/amdgpu_userptr_proto.h says. */
   const uint32_t handle = k.next_handle;
   CHECK(k.n_imports == 1);
   CHECK(k.import.hdr.cmd == AMDGPU_CCMD_USERPTR_IMPORT);
   CHECK(AMDGPU_CCMD_USERPTR_IMPORT == 11);
   CHECK(k.import.hdr.len == sizeof(struct amdgpu_ccmd_userptr_import_req));
   CHECK(k.import.hdr.len == 32);
   CHECK(k.import.res_id == handle + RES_ID_BIAS);
   CHECK(k.import.flags == 0);
   CHECK(k.import.size == size);
   CHECK(k.import.hdr.rsp_off % 8 == 0);
   CHECK(k.import.hdr.rsp_off + sizeof(struct amdgpu_ccmd_rsp) <=
         SHMEM_SIZE - sizeof(struct amdvgpu_shmem));
   /* Synchronous: it waited for the host's answer. */
   CHECK(k.n_fenced_execbufs == 1);

   /* Order: blob (attached by the kernel), res_id, then the import. */
   CHECK(strcmp(k.events, "BRI") == 0);

   CHECK(amdvgpu_get_resource_id(bo) == handle + RES_ID_BIAS);
   CHECK(bo->size == size);

   /* Destroy: the GEM handle is closed, which unrefs the host resource. */
   reset_log();
   CHECK(amdvgpu_bo_free(dev, bo) == 0);
   CHECK(was_closed(handle));
   CHECK(strcmp(k.events, "C") == 0);

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

static void
case_wire_pinned_readonly(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   void *mem = user_memory(page);
   amdvgpu_bo_handle bo = NULL;

   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, AMDVGPU_USERPTR_READONLY, &bo) == 0);
   CHECK(k.blob.blob_flags == (VIRTGPU_BLOB_FLAG_USE_USERPTR |
                               VIRTGPU_BLOB_FLAG_USERPTR_RDONLY));
   CHECK(k.import.flags == AMDGPU_CCMD_USERPTR_READONLY);
   CHECK(amdvgpu_bo_free(dev, bo) == 0);

   /* Through the override, pinned mode on an HMM kernel. */
   free(mem);
   amdvgpu_device_deinitialize(dev);

   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   setenv("MESA_VIRTGPU_USERPTR", "pinned", 1);
   dev = open_device();
   mem = user_memory(page);
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, 0, &bo) == 0);
   CHECK(k.blob.blob_flags == VIRTGPU_BLOB_FLAG_USE_USERPTR);
   CHECK(amdvgpu_bo_free(dev, bo) == 0);
   unsetenv("MESA_VIRTGPU_USERPTR");
   free(mem);
   amdvgpu_device_deinitialize(dev);
}

/* ------------------------------------------------------------------------ */
/* VA: the BO is mapped with BO_VA_OP where the guest's VA manager says     */

static void
case_va_map(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = true;
   amdvgpu_device_handle dev = open_device();
   const size_t size = 8 * page;
   void *mem = user_memory(size);
   amdvgpu_bo_handle bo = NULL;

   CHECK(amdvgpu_bo_from_user_mem(dev, mem, size, 0, &bo) == 0);
   const uint32_t handle = k.next_handle;

   /* What amdgpu_bo_from_ptr() in the winsys does next. */
   uint64_t va = 0;
   amdgpu_va_handle va_handle = NULL;
   CHECK(amdvgpu_va_range_alloc(dev, amdgpu_gpu_va_range_general, size, page,
                                0, &va, &va_handle, AMDGPU_VA_RANGE_HIGH) == 0);
   CHECK(va >= VA_HIGH_START && va + size <= VA_HIGH_END);
   CHECK(va % page == 0);

   uint32_t kms = 0;
   CHECK(amdvgpu_bo_export(dev, bo, amdgpu_bo_handle_type_kms, &kms) == 0);
   CHECK(kms == handle + RES_ID_BIAS);  /* the res_id names it on the host */

   reset_log();
   const uint64_t flags = AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE |
                          AMDGPU_VM_PAGE_EXECUTABLE;
   CHECK(amdvgpu_bo_va_op_raw(dev, kms, 0, size, va, flags, AMDGPU_VA_OP_MAP) == 0);
   CHECK(vdrm_flush(dev->vdev) == 0);   /* BO_VA_OP is buffered */
   CHECK(k.n_va_ops == 1);
   CHECK(k.va_op.hdr.cmd == AMDGPU_CCMD_BO_VA_OP);
   CHECK(k.va_op.va == va);
   CHECK(k.va_op.res_id == kms);
   CHECK(k.va_op.vm_map_size == size);
   CHECK(k.va_op.offset == 0);
   CHECK(k.va_op.flags == flags);
   CHECK(k.va_op.op == AMDGPU_VA_OP_MAP);
   CHECK(k.va_op.flags2 == 0);          /* not a sparse BO */

   /* The CPU mapping of a userptr BO is the user memory itself. */
   void *cpu = NULL;
   CHECK(amdvgpu_bo_cpu_map(dev, bo, &cpu) == 0);
   CHECK(cpu == mem);
   CHECK(amdvgpu_bo_cpu_unmap(dev, bo) == 0);
   ((volatile uint8_t *)mem)[size - 1] = 1;  /* still the caller's, mapped */

   /* Teardown in the winsys' order: unmap, free the VA, free the BO. */
   CHECK(amdvgpu_bo_va_op_raw(dev, kms, 0, size, va, flags, AMDGPU_VA_OP_UNMAP) == 0);
   CHECK(amdgpu_va_range_free(va_handle) == 0);
   CHECK(amdvgpu_bo_free(dev, bo) == 0);
   CHECK(k.va_op.op == AMDGPU_VA_OP_UNMAP && k.va_op.va == va);
   CHECK(strcmp(k.events, "VVC") == 0);   /* unmap reached the host first */
   CHECK(was_closed(handle));

   /* The VA is free again for the next BO. */
   uint64_t va2 = 0;
   CHECK(amdvgpu_va_range_alloc(dev, amdgpu_gpu_va_range_general, size, page,
                                0, &va2, &va_handle, AMDGPU_VA_RANGE_HIGH) == 0);
   CHECK(va2 == va);
   amdgpu_va_range_free(va_handle);

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

/* ------------------------------------------------------------------------ */
/* Error paths: returned, never asserted, nothing left behind               */

static amdvgpu_device_handle
supported_device(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_PINNED | VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = true;
   return open_device();
}

static void
case_err_arguments(void)
{
   amdvgpu_device_handle dev = supported_device();
   uint8_t *mem = user_memory(4 * page);
   amdvgpu_bo_handle bo = NULL;
   uint32_t handle;

   CHECK(amdvgpu_bo_from_user_mem(dev, mem + 64, page, 0, &bo) == -EINVAL);
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page + 1, 0, &bo) == -EINVAL);
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, 0, 0, &bo) == -EINVAL);
   CHECK(amdvgpu_bo_from_user_mem(dev, NULL, page, 0, &bo) == -EINVAL);
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, 0x2, &bo) == -EINVAL);
   CHECK(vdrm_bo_create_userptr(dev->vdev, mem, page, 0x2, &handle) == -EINVAL);
   CHECK(bo == NULL);
   /* Refused before any ioctl. */
   CHECK(k.n_events == 0);

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

static void
case_err_kernel(void)
{
   static const int errs[] = { EFAULT, EPERM, E2BIG, ENOMEM, EINVAL, EIO, ENODEV };
   amdvgpu_device_handle dev = supported_device();
   void *mem = user_memory(page);

   for (unsigned i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
      amdvgpu_bo_handle bo = NULL;
      reset_log();
      k.userptr_blob_errno = errs[i];
      CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, 0, &bo) == -errs[i]);
      CHECK(bo == NULL);
      /* The kernel refused: nothing was sent to the host, nothing to close. */
      CHECK(strcmp(k.events, "B") == 0);
   }
   k.userptr_blob_errno = 0;

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

static void
case_err_resource_info(void)
{
   amdvgpu_device_handle dev = supported_device();
   void *mem = user_memory(page);
   amdvgpu_bo_handle bo = NULL;

   k.resource_info_errno = EINVAL;
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, 0, &bo) == -EIO);
   CHECK(bo == NULL);
   CHECK(strcmp(k.events, "BRC") == 0);     /* no import; the blob closed */
   CHECK(was_closed(k.next_handle));
   k.resource_info_errno = 0;

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

static void
case_err_host(void)
{
   /* The host's errno table (docs/design.md section 4). */
   static const int errs[] = { EINVAL, ENOENT, EEXIST, EFAULT, E2BIG, ENOSPC,
                               EOPNOTSUPP, EPERM, ENOMEM };
   amdvgpu_device_handle dev = supported_device();
   void *mem = user_memory(2 * page);

   for (unsigned i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
      amdvgpu_bo_handle bo = NULL;
      reset_log();
      k.import_ret = -errs[i];
      CHECK(amdvgpu_bo_from_user_mem(dev, mem, 2 * page, 0, &bo) == -errs[i]);
      CHECK(bo == NULL);
      /* Refused by the host: the resource is unref'd, no BO is tracked. */
      CHECK(strcmp(k.events, "BRIC") == 0);
      CHECK(was_closed(k.next_handle));
      simple_mtx_lock(&dev->handle_to_vbo_mutex);
      CHECK(_mesa_hash_table_num_entries(dev->handle_to_vbo) == 0);
      simple_mtx_unlock(&dev->handle_to_vbo_mutex);
   }

   /* A host that answers garbage (a positive value) is not success. */
   amdvgpu_bo_handle bo = NULL;
   reset_log();
   k.import_ret = 7;
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, 2 * page, 0, &bo) == -EIO);
   CHECK(bo == NULL && was_closed(k.next_handle));
   k.import_ret = 0;

   /* And the device still works afterwards. */
   reset_log();
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, 2 * page, 0, &bo) == 0);
   CHECK(strcmp(k.events, "BRI") == 0);
   CHECK(amdvgpu_bo_free(dev, bo) == 0);

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

static void
case_err_transport(void)
{
   amdvgpu_device_handle dev = supported_device();
   void *mem = user_memory(page);
   amdvgpu_bo_handle bo = NULL;

   k.execbuf_errno = ENOMEM;
   CHECK(amdvgpu_bo_from_user_mem(dev, mem, page, 0, &bo) == -EIO);
   CHECK(bo == NULL);
   CHECK(strcmp(k.events, "BRC") == 0);     /* import never reached the host */
   CHECK(was_closed(k.next_handle));
   k.execbuf_errno = 0;

   free(mem);
   amdvgpu_device_deinitialize(dev);
}

/* ------------------------------------------------------------------------ */
/* ac_linux_drm: what radeonsi/RADV see                                     */

static ac_drm_device *
open_ac_device(void)
{
   ac_drm_device *dev = NULL;
   uint32_t major, minor;
   int fd = open_fake_fd();
   int r = ac_drm_device_initialize(fd, true, &major, &minor, &dev);
   close(fd);
   if (r || !dev) {
      fprintf(stderr, "ac_drm_device_initialize: %d\n", r);
      exit(2);
   }
   reset_log();
   return dev;
}

static void
case_ac_drm_unsupported(void)
{
   /* Mesa 25.0.7 asserted here; this test is built with assertions on. */
   k.userptr_modes = VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = false;
   ac_drm_device *dev = open_ac_device();
   void *mem = user_memory(page);
   ac_drm_bo bo = {0};

   CHECK(!ac_drm_device_has_userptr(dev));  /* -> has_userptr false */
   CHECK(ac_drm_create_bo_from_user_mem(dev, mem, page, &bo) == -EOPNOTSUPP);
   CHECK(k.n_events == 0);

   free(mem);
   ac_drm_device_deinitialize(dev);
}

static void
case_ac_drm_supported(void)
{
   k.userptr_modes = VIRTGPU_USERPTR_MODE_HMM;
   k.capset_has_userptr = true;
   ac_drm_device *dev = open_ac_device();
   void *mem = user_memory(4 * page);
   ac_drm_bo bo = {0};

   CHECK(ac_drm_device_has_userptr(dev));   /* -> has_userptr true */
   CHECK(ac_drm_create_bo_from_user_mem(dev, mem, 4 * page, &bo) == 0);
   CHECK(bo.vbo != NULL);
   CHECK(k.n_imports == 1 && k.import.size == 4 * page);

   uint32_t kms = 0;
   CHECK(ac_drm_bo_export(dev, bo, amdgpu_bo_handle_type_kms, &kms) == 0);
   CHECK(kms == k.import.res_id);
   CHECK(ac_drm_bo_va_op_raw(dev, kms, 0, 4 * page, VA_HIGH_START, 0,
                             AMDGPU_VA_OP_MAP) == 0);
   void *cpu = NULL;
   CHECK(ac_drm_bo_cpu_map(dev, bo, &cpu) == 0 && cpu == mem);
   CHECK(ac_drm_bo_free(dev, bo) == 0);
   CHECK(strcmp(k.events, "BRIVC") == 0);

   free(mem);
   ac_drm_device_deinitialize(dev);
}

/* ------------------------------------------------------------------------ */

static const struct {
   const char *name;
   void (*run)(void);
} cases[] = {
   { "proto-in-step", case_proto_in_step },
   { "caps-both", case_caps_both },
   { "caps-old-kernel", case_caps_old_kernel },
   { "caps-kernel-no-mode", case_caps_kernel_no_mode },
   { "caps-old-host", case_caps_old_host },
   { "caps-unknown-mode-bits", case_caps_unknown_mode_bits },
   { "backend-without-op", case_backend_without_op },
   { "env-override", case_env_override },
   { "wire-hmm", case_wire_hmm },
   { "wire-pinned-readonly", case_wire_pinned_readonly },
   { "va-map", case_va_map },
   { "err-arguments", case_err_arguments },
   { "err-kernel", case_err_kernel },
   { "err-resource-info", case_err_resource_info },
   { "err-host", case_err_host },
   { "err-transport", case_err_transport },
   { "ac-drm-unsupported", case_ac_drm_unsupported },
   { "ac-drm-supported", case_ac_drm_supported },
};

int
main(int argc, char **argv)
{
   page = sysconf(_SC_PAGESIZE);
   unsetenv("MESA_VIRTGPU_USERPTR");

   if (argc == 2 && !strcmp(argv[1], "--list")) {
      for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
         printf("%s\n", cases[i].name);
      return 0;
   }
   for (unsigned i = 0; argc == 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
      if (strcmp(argv[1], cases[i].name))
         continue;
      cases[i].run();
      if (test_failures) {
         fprintf(stderr, "FAIL %s: %d checks failed\n", cases[i].name, test_failures);
         return 1;
      }
      printf("PASS %s\n", cases[i].name);
      return 0;
   }
   fprintf(stderr, "usage: %s CASE|--list\n", argv[0]);
   return 2;
}
