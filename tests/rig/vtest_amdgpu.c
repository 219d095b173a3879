/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * A vtest client that plays the guest Mesa's part of the AMD native context
 * against a real virglrenderer vtest server (virgl_test_server --drm) with
 * the simulated amdgpu preloaded into it (tests/rig/run-vtest, docs/vtest.md).
 *
 *   vtest_amdgpu [--socket PATH] capset WANT        has_userptr must be WANT (0/1)
 *   vtest_amdgpu [--socket PATH] va-op-unknown MODE BO_VA_OP on a res_id nobody
 *                                                   created; MODE patched|upstream
 *   vtest_amdgpu [--socket PATH] alive              handshake + one ccmd round trip
 *   vtest_amdgpu [--socket PATH] userptr EXPECT     the userptr scenario; writes the
 *                                                   simulator counters it expects
 *   vtest_amdgpu check-stats STATS EXPECT           compares AMDGPU_SIM_STATS output
 *
 * Every check prints "PASS rig: NAME", "FAIL rig: NAME: why" or
 * "SKIP rig: NAME: reason".  The exit status is 1 if anything failed, 2 if
 * the connection could not be set up at all.
 *
 * The AMD ccmd layer (wire structs, ccmds, SDMA packets) is in
 * amdgpu_ccmd.[ch], shared with the VM guest program (vm_amdgpu.c); this
 * file is the vtest transport and the vtest scenarios.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libdrm/amdgpu_drm.h>

#include "amdgpu_ccmd.h"

/* ---- vtest protocol (virglrenderer vtest/vtest_protocol.h, version 4) ---- */

#define VCMD_CREATE_RENDERER 8
#define VCMD_PING_PROTOCOL_VERSION 10
#define VCMD_PROTOCOL_VERSION 11
#define VCMD_GET_CAPSET 16
#define VCMD_CONTEXT_INIT 17
#define VCMD_RESOURCE_CREATE_BLOB 18
#define VCMD_RESOURCE_UNREF 3
#define VCMD_SUBMIT_CMD2 24

#define VCMD_BLOB_TYPE_GUEST 1
#define VCMD_BLOB_TYPE_HOST3D 2
#define VCMD_BLOB_FLAG_MAPPABLE (1 << 0)
#define VCMD_BLOB_FLAG_SHAREABLE (1 << 1)

/* ---- the vtest transport ---- */

static int
write_all(struct conn *c, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			c->dead = errno == EPIPE || errno == ECONNRESET;
			return conn_error(c, -errno, "send: %s", strerror(errno));
		}
		p += r;
		n -= r;
	}
	return 0;
}

static int
wait_readable(struct conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return conn_error(c, -ETIMEDOUT, "no answer from the server in %d ms",
				  TIMEOUT_MS);
	return r < 0 ? -errno : 0;
}

static int
read_all(struct conn *c, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		int w = wait_readable(c);
		ssize_t r;

		if (w)
			return w;
		r = recv(c->fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			c->dead = true;
			return conn_error(c, -EPIPE, "the server closed the connection");
		}
		if (r < 0) {
			c->dead = errno == ECONNRESET;
			return conn_error(c, -errno, "recv: %s", strerror(errno));
		}
		p += r;
		n -= r;
	}
	return 0;
}

/* An fd comes as SCM_RIGHTS on one data byte (vtest_send_fd). */
static int
recv_fd(struct conn *c)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl, .msg_controllen = sizeof(ctl),
	};
	struct cmsghdr *cm;
	ssize_t r;
	int fd;

	if ((r = wait_readable(c)))
		return r;
	r = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
	if (r == 0) {
		c->dead = true;
		return conn_error(c, -EPIPE, "the server closed the connection");
	}
	if (r < 0)
		return conn_error(c, -errno, "recvmsg: %s", strerror(errno));
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return conn_error(c, -EPROTO, "expected an fd from the server");
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

static int
vtest_send(struct conn *c, uint32_t cmd, uint32_t len_field, const void *payload,
	   size_t bytes)
{
	uint32_t hdr[2] = { len_field, cmd };
	int r = write_all(c, hdr, sizeof(hdr));

	return r ? r : bytes ? write_all(c, payload, bytes) : 0;
}

static int
vtest_cmd(struct conn *c, uint32_t cmd, const uint32_t *dw, uint32_t ndw)
{
	return vtest_send(c, cmd, ndw, dw, ndw * 4);
}

/* Reads a response header for cmd; returns its length in dwords. */
static int
vtest_reply(struct conn *c, uint32_t cmd)
{
	uint32_t hdr[2];
	int r = read_all(c, hdr, sizeof(hdr));

	if (r)
		return r;
	if (hdr[1] != cmd)
		return conn_error(c, -EPROTO, "answer to command %u, expected %u",
				  hdr[1], cmd);
	return (int)hdr[0];
}

/* A round trip: every command sent before has been handled once it returns. */
static int
vtest_ping(struct conn *c)
{
	int r = vtest_cmd(c, VCMD_PING_PROTOCOL_VERSION, NULL, 0);

	if (!r)
		r = vtest_reply(c, VCMD_PING_PROTOCOL_VERSION);
	return r < 0 ? r : 0;
}

/* RESOURCE_CREATE_BLOB: returns the res_id, *fd gets the fd the server sent. */
static int
vtest_blob(struct conn *c, uint32_t type, uint32_t flags, uint64_t size,
	   uint64_t blob_id, int *fd)
{
	uint32_t dw[6] = { type, flags, (uint32_t)size, size >> 32,
			   (uint32_t)blob_id, blob_id >> 32 };
	uint32_t res_id;
	int r;

	if ((r = vtest_cmd(c, VCMD_RESOURCE_CREATE_BLOB, dw, 6)))
		return r;
	r = vtest_reply(c, VCMD_RESOURCE_CREATE_BLOB);
	if (r < 0)
		return r;
	if (r != 1)
		return conn_error(c, -EPROTO, "RESOURCE_CREATE_BLOB answer of %d dwords", r);
	if ((r = read_all(c, &res_id, 4)))
		return r;
	r = recv_fd(c);
	if (r < 0)
		return r;
	*fd = r;
	return (int)res_id;
}

static int
vtest_unref(struct conn *c, uint32_t res_id)
{
	return vtest_cmd(c, VCMD_RESOURCE_UNREF, &res_id, 1);
}

/*
 * Sends one ccmd in a SUBMIT_CMD2 batch (ring 0, no fences), then a ping:
 * when the ping is answered the host has handled the ccmd.  vtest has no
 * per-ring fences: ring_idx is not used.
 */
static int
vtest_send_ccmd(struct conn *c, const void *req, uint32_t len, uint32_t ring_idx)
{
	uint32_t ndw = len / 4, total = 9 + ndw;
	uint32_t *buf = calloc(total, 4);
	int r;

	(void)ring_idx;
	if (!buf)
		return -ENOMEM;
	buf[0] = 1;		/* batch count */
	buf[1] = 0;		/* flags */
	buf[2] = 9;		/* cmd_offset (dwords) */
	buf[3] = ndw;		/* cmd_size (dwords) */
	/* sync_offset, sync_count, ring_idx, in/out syncobjs: 0 */
	memcpy(&buf[9], req, len);
	r = vtest_cmd(c, VCMD_SUBMIT_CMD2, buf, total);
	free(buf);
	if (!r)
		r = vtest_ping(c);
	return r;
}

static const struct transport vtest_transport = { .send = vtest_send_ccmd };

/* Opens a connection up to a usable AMD context with its response memory. */
static int
conn_open(struct conn *c, const char *path, const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	uint32_t dw[2];
	int r, fd;

	memset(c, 0, sizeof(*c));
	c->t = &vtest_transport;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return conn_error(c, -errno, "socket: %s", strerror(errno));
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)))
		return conn_error(c, -errno, "connect %s: %s", path, strerror(errno));

	/* CREATE_RENDERER: length in bytes, then the debug name. */
	if ((r = vtest_send(c, VCMD_CREATE_RENDERER, strlen(name) + 1, name,
			    strlen(name) + 1)))
		return r;

	dw[0] = 4;
	if ((r = vtest_cmd(c, VCMD_PROTOCOL_VERSION, dw, 1)))
		return r;
	if ((r = vtest_reply(c, VCMD_PROTOCOL_VERSION)) < 0)
		return r;
	if ((r = read_all(c, dw, 4)))
		return r;
	if (dw[0] < 3)
		return conn_error(c, -EPROTO, "vtest protocol version %u < 3", dw[0]);

	dw[0] = CAPSET_DRM;
	dw[1] = 0;
	if ((r = vtest_cmd(c, VCMD_GET_CAPSET, dw, 2)))
		return r;
	r = vtest_reply(c, VCMD_GET_CAPSET);
	if (r < 1)
		return r < 0 ? r : conn_error(c, -EPROTO, "empty GET_CAPSET answer");
	if ((uint32_t)(r - 1) * 4 > sizeof(c->caps))
		return conn_error(c, -EPROTO, "capset of %d bytes", (r - 1) * 4);
	c->caps_size = (r - 1) * 4;
	if ((r = read_all(c, dw, 4)))
		return r;
	if (!dw[0])
		return conn_error(c, -ENODEV, "the server has no DRM capset (id %d): "
				  "not built with -Ddrm-renderers=amdgpu-experimental, "
				  "or no amdgpu render node", CAPSET_DRM);
	if ((r = read_all(c, c->caps, c->caps_size)))
		return r;
	if (c->caps_size < 32 ||
	    *(uint32_t *)&c->caps[CAPS_CONTEXT_TYPE] != DRM_CONTEXT_AMDGPU)
		return conn_error(c, -ENODEV, "the DRM capset is not the AMD context");

	dw[0] = CAPSET_DRM;
	if ((r = vtest_cmd(c, VCMD_CONTEXT_INIT, dw, 1)))
		return r;

	/* blob_id 0 is the context's shared memory: seqno and responses. */
	r = vtest_blob(c, VCMD_BLOB_TYPE_HOST3D, VCMD_BLOB_FLAG_MAPPABLE,
		       SHMEM_SIZE, 0, &fd);
	if (r < 0)
		return r;
	c->shmem_res = r;
	void *m = mmap(NULL, SHMEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return conn_error(c, -errno, "mmap shmem: %s", strerror(errno));
	return conn_set_shmem(c, m);
}

static void
conn_close(struct conn *c)
{
	if (c->shmem && c->shmem != MAP_FAILED)
		munmap((void *)c->shmem, SHMEM_SIZE);
	if (c->fd > 0)
		close(c->fd);
	c->fd = -1;
	c->shmem = NULL;
}

/* ---- ccmds that need the transport ---- */

static int
gem_new(struct conn *c, uint64_t blob_id, uint64_t size, uint32_t heap)
{
	struct gem_new_req req = {
		.blob_id = blob_id, .alloc_size = size, .phys_alignment = 4096,
		.preferred_heap = heap,
	};
	uint32_t async = c->shmem->async_error;
	int r, fd;

	if ((r = ccmd(c, &req.hdr, CCMD_GEM_NEW, sizeof(req))))
		return r;
	if (c->shmem->async_error != async)
		return conn_error(c, -EIO, "GEM_NEW raised async_error");
	r = vtest_blob(c, VCMD_BLOB_TYPE_HOST3D, VCMD_BLOB_FLAG_SHAREABLE, size,
		       blob_id, &fd);
	if (r >= 0)
		close(fd);
	return r;
}

/* ---- phases ---- */

static int
phase_capset(const char *sock, int want)
{
	struct conn c;
	int r = conn_open(&c, sock, "vtest_amdgpu-capset");

	if (r) {
		fail("capset", "cannot set up the AMD context: %s", c.err);
		conn_close(&c);
		return 2;
	}
	if (caps_has_userptr(&c) == (want != 0))
		printf("PASS rig: capset-has-userptr-%s (capset %u bytes, bits 0x%x)\n",
		       want ? "set" : "clear", c.caps_size,
		       *(uint32_t *)&c.caps[CAPS_AMDGPU_BITS]);
	else
		fail(want ? "capset-has-userptr-set" : "capset-has-userptr-clear",
		     "has_userptr is %d (amdgpu bits 0x%x)", caps_has_userptr(&c),
		     *(uint32_t *)&c.caps[CAPS_AMDGPU_BITS]);
	conn_close(&c);
	return failures ? 1 : 0;
}

/*
 * BO_VA_OP naming a res_id that was never created.  The server process
 * surviving is judged by run-vtest; here: what the guest gets back.
 */
static int
phase_va_op_unknown(const char *sock, bool patched)
{
	struct conn c;
	uint64_t va;
	struct drm_amdgpu_info_device dev;
	int r, terr;

	r = conn_open(&c, sock, "vtest_amdgpu-va-op-unknown");
	if (!r)
		r = query_info(&c, AMDGPU_INFO_DEV_INFO, 0, &dev, sizeof(dev));
	if (r) {
		fail("va-op-unknown-res-id", "cannot set up the AMD context: %s",
		     c.err[0] ? c.err : strerror(-r));
		conn_close(&c);
		return 2;
	}
	va = (dev.virtual_address_offset + (1ull << 30)) & ~((1ull << 21) - 1);
	info("BO_VA_OP MAP res_id 0xbad0 (never created) at va 0x%llx",
	     (unsigned long long)va);
	r = bo_va_op(&c, 0xbad0, AMDGPU_VA_OP_MAP, va, 4096,
		     AMDGPU_VM_PAGE_READABLE, &terr);
	if (!patched) {
		info("upstream: %s", terr ? terr_str(terr) : "the host answered");
		conn_close(&c);
		return 0;
	}
	if (!terr && r == -EINVAL)
		pass("va-op-unknown-res-id-error-response (-EINVAL)");
	else if (!terr)
		fail("va-op-unknown-res-id-error-response", "ret %d, expected -EINVAL", r);
	else
		fail("va-op-unknown-res-id-error-response",
		     "no response: %s (shmem seqno %u, request seqno %u)",
		     terr_str(terr),
		     c.shmem->seqno, c.seqno);
	conn_close(&c);
	return failures ? 1 : 0;
}

static int
phase_alive(const char *sock)
{
	struct conn c;
	struct drm_amdgpu_info_device dev;
	int r = conn_open(&c, sock, "vtest_amdgpu-alive");

	if (!r)
		r = query_info(&c, AMDGPU_INFO_DEV_INFO, 0, &dev, sizeof(dev));
	if (r)
		printf("INFO rig: alive: %s\n", c.err[0] ? c.err : terr_str(r));
	else
		printf("INFO rig: alive: new connection, DEV_INFO device_id 0x%x\n",
		       dev.device_id);
	conn_close(&c);
	return r ? 1 : 0;
}

struct guest_blob {
	uint32_t res_id;
	uint8_t *map;
	uint64_t size;
};

static int
guest_blob(struct conn *c, uint64_t size, struct guest_blob *b)
{
	int fd, r = vtest_blob(c, VCMD_BLOB_TYPE_GUEST, 0, size, 0, &fd);

	if (r < 0)
		return r;
	b->res_id = r;
	b->size = size;
	b->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (b->map == MAP_FAILED)
		return conn_error(c, -errno, "mmap guest blob: %s", strerror(errno));
	return 0;
}

/* Checks one import's answer against the errno the design's table gives. */
static void
expect_import(struct conn *c, const char *name, uint32_t res_id, uint32_t flags,
	      uint64_t size, int want)
{
	int terr, r = userptr_import(c, res_id, flags, size, &terr);

	if (terr)
		fail(name, "%s", terr_str(terr));
	else if (r != want)
		fail(name, "import(res_id %u, flags 0x%x, size %llu) = %d (%s), "
		     "docs/design.md says %d (%s)", res_id, flags,
		     (unsigned long long)size, r, strerror(-r), want, strerror(-want));
	else
		printf("PASS rig: %s (%s)\n", name, strerror(-want));
}

/* Imports n more small userptrs (the context's count limit is 4096), then
 * expects the next one to be refused with ENOSPC. */
static void
quota_check(struct conn *c, unsigned n)
{
	unsigned i;
	int r = 0, terr, fd = -1;

	for (i = 0; i <= n; i++) {
		r = vtest_blob(c, VCMD_BLOB_TYPE_GUEST, 0, 4096, 0, &fd);
		if (r < 0) {
			fail("import-count-quota", "GUEST blob %u: %s", i, c->err);
			return;
		}
		close(fd);
		if (i == n)
			break;
		int ir = userptr_import(c, r, 0, 4096, &terr);
		if (terr || ir) {
			fail("import-count-quota", "import %u of %u: %d (%s)", i + 1, n,
			     ir, terr ? terr_str(terr) : strerror(-ir));
			return;
		}
	}
	expect_import(c, "import-count-quota", r, 0, 4096, -ENOSPC);
}

#define U_SIZE (64 * 1024)
#define HALF (U_SIZE / 2)
#define FILL_VALUE 0xc0ffee11u

static uint32_t
pattern(unsigned i)
{
	return 0x9e3779b9u * (i + 1) ^ (i << 7);
}

static int
phase_userptr(const char *sock, const char *expect_path)
{
	struct conn c;
	struct drm_amdgpu_info_device dev;
	struct guest_blob u, ibm, v;
	struct gpu g = { 0 };
	struct ib ib;
	uint64_t va_u, va_g, va_ib, bytes_moved = 0, faults = 0, submissions = 0;
	uint32_t gtt;
	const char *stage;
	int r, terr;
	FILE *ef;

	r = conn_open(&c, sock, "vtest_amdgpu-userptr");
	if (r) {
		fail("userptr-setup", "cannot set up the AMD context: %s", c.err);
		return 2;
	}

	/* b. the capset bit, as include/amdgpu_userptr_proto.h places it */
	if (caps_has_userptr(&c))
		pass("capset-has-userptr-set");
	else
		fail("capset-has-userptr-set", "has_userptr is 0 (amdgpu bits 0x%x): "
		     "this server does not advertise AMDGPU_CCMD_USERPTR_IMPORT",
		     *(uint32_t *)&c.caps[CAPS_AMDGPU_BITS]);

#define SETUP(cond, ...) do { if (!(cond)) { \
		fail("userptr-setup", __VA_ARGS__); goto out; } } while (0)

	r = query_info(&c, AMDGPU_INFO_DEV_INFO, 0, &dev, sizeof(dev));
	SETUP(!r, "QUERY_INFO DEV_INFO: %s", terr_str(r));
	r = create_ctx(&c, &g.ctx_id);
	SETUP(!r, "CREATE_CTX: %d (%s)", r, terr_str(r));
	g.sdma_ring_idx = sdma_ring_idx(&c, &r);
	SETUP(g.sdma_ring_idx, "no SDMA ring in HW_IP_INFO (%s)", r ? terr_str(r) : "");
	info("device 0x%x, VA [0x%llx, 0x%llx), GPU context %u, SDMA on virtio ring %u",
	     dev.device_id, (unsigned long long)dev.virtual_address_offset,
	     (unsigned long long)dev.virtual_address_max, g.ctx_id, g.sdma_ring_idx);

	/* GPU VAs of the guest's choosing, away from the reserved bottom. */
	va_u = (dev.virtual_address_offset + (1ull << 30)) & ~((1ull << 21) - 1);
	va_g = va_u + (1ull << 21);
	va_ib = va_g + (1ull << 21);

	/* c. guest memory the client shares with the server (a memfd) */
	r = guest_blob(&c, U_SIZE, &u);
	SETUP(!r, "GUEST blob: %s", c.err);
	r = guest_blob(&c, 4096, &ibm);
	SETUP(!r, "GUEST blob for the IB: %s", c.err);
	r = guest_blob(&c, 8192, &v);
	SETUP(!r, "GUEST blob for the error paths: %s", c.err);
	for (unsigned i = 0; i < U_SIZE / 4; i++)
		((uint32_t *)u.map)[i] = pattern(i);
	info("guest blobs: data res_id %u (%u bytes), IB res_id %u, spare res_id %u",
	     u.res_id, U_SIZE, ibm.res_id, v.res_id);

	r = userptr_import(&c, u.res_id, 0, U_SIZE, &terr);
	SETUP(!terr && !r, "USERPTR_IMPORT data: %d (%s)", r,
	      terr ? terr_str(terr) : strerror(-r));
	pass("userptr-import");
	r = userptr_import(&c, ibm.res_id, AMDGPU_CCMD_USERPTR_READONLY, 4096, &terr);
	SETUP(!terr && !r, "USERPTR_IMPORT IB (read-only): %d (%s)", r,
	      terr ? terr_str(terr) : strerror(-r));

	r = bo_va_op(&c, u.res_id, AMDGPU_VA_OP_MAP, va_u, U_SIZE,
		     AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE, &terr);
	SETUP(!terr && !r, "BO_VA_OP map userptr: %d (%s)", r,
	      terr ? terr_str(terr) : strerror(-r));
	/* The guest asks for a writable mapping of the read-only one: the host
	 * must map it read-only anyway (design.md section 7). */
	r = bo_va_op(&c, ibm.res_id, AMDGPU_VA_OP_MAP, va_ib, 4096,
		     AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE |
		     AMDGPU_VM_PAGE_EXECUTABLE, &terr);
	SETUP(!terr && !r, "BO_VA_OP map IB userptr: %d (%s)", r,
	      terr ? terr_str(terr) : strerror(-r));
	pass("userptr-bo-va-op-map");

	r = gem_new(&c, 1, U_SIZE, AMDGPU_GEM_DOMAIN_GTT);
	SETUP(r > 0, "GEM_NEW GTT + HOST3D blob: %s", c.err[0] ? c.err : terr_str(r));
	gtt = r;
	r = bo_va_op(&c, gtt, AMDGPU_VA_OP_MAP, va_g, U_SIZE,
		     AMDGPU_VM_PAGE_READABLE | AMDGPU_VM_PAGE_WRITEABLE, &terr);
	SETUP(!terr && !r, "BO_VA_OP map GTT: %d (%s)", r,
	      terr ? terr_str(terr) : strerror(-r));
	info("userptr at GPU va 0x%llx, GTT BO res_id %u at 0x%llx, IB at 0x%llx",
	     (unsigned long long)va_u, gtt, (unsigned long long)va_g,
	     (unsigned long long)va_ib);

	/* The IB lives in guest memory too: the guest writes it, the GPU
	 * fetches it through the read-only userptr. */
	ib = (struct ib){ (uint32_t *)ibm.map, 0, 4096 / 4, va_ib };
	uint32_t bos[3] = { u.res_id, gtt, ibm.res_id };

	/* Submission 1: copy userptr[0, 32K) -> GTT, fill userptr[32K, 64K). */
	ib_copy(&ib, va_g, va_u, HALF);
	ib_fill(&ib, va_u + HALF, FILL_VALUE, HALF);
	r = submit_wait(&c, &g, &ib, bos, 3, &stage);
	submissions++;
	if (r) {
		fail("userptr-sdma-fill", "%s: %d (%s)", stage, r, terr_str(r));
		goto errors;
	}
	bytes_moved += 2 * HALF;
	{
		unsigned bad = 0, first = 0;

		for (unsigned i = HALF / 4; i < U_SIZE / 4; i++)
			if (((uint32_t *)u.map)[i] != FILL_VALUE && !bad++)
				first = i;
		if (bad)
			fail("userptr-sdma-fill", "%u of %u dwords wrong in the "
			     "client's mapping, first at byte %u: 0x%08x", bad,
			     HALF / 4, first * 4, ((uint32_t *)u.map)[first]);
		else
			pass("userptr-sdma-fill (GPU fill seen in the client's memfd mapping)");
		for (unsigned i = 0; i < HALF / 4; i++)
			if (((uint32_t *)u.map)[i] != pattern(i)) {
				fail("userptr-sdma-fill", "the fill touched the "
				     "copy source at byte %u", i * 4);
				break;
			}
	}

	/* Submission 2: the client wipes the source, the GPU copies the GTT
	 * copy back: the pattern can only come from the GTT BO. */
	memset(u.map, 0, HALF);
	ib.n = 0;
	ib_copy(&ib, va_u, va_g, HALF);
	r = submit_wait(&c, &g, &ib, bos, 3, &stage);
	submissions++;
	if (r) {
		fail("userptr-sdma-copy", "%s: %d (%s)", stage, r, terr_str(r));
		goto errors;
	}
	bytes_moved += HALF;
	{
		unsigned bad = 0, first = 0;

		for (unsigned i = 0; i < HALF / 4; i++)
			if (((uint32_t *)u.map)[i] != pattern(i) && !bad++)
				first = i;
		if (bad)
			fail("userptr-sdma-copy", "%u of %u dwords differ after "
			     "userptr->GTT->userptr, first at byte %u: 0x%08x, "
			     "want 0x%08x", bad, HALF / 4, first * 4,
			     ((uint32_t *)u.map)[first], pattern(first));
		else
			pass("userptr-sdma-copy (userptr -> GTT -> userptr, bytes checked)");
	}

	/* Submission 3: a GPU write into the read-only userptr must fault and
	 * leave the bytes alone, although the guest asked for WRITEABLE; as
	 * host amdgpu without retry faults, the job still ends without a
	 * fence error (the fault is counted). */
	{
		uint32_t before[16];

		memcpy(before, ibm.map + 2048, sizeof(before));
		ib.n = 0;
		ib_fill(&ib, va_ib + 2048, 0xdeadbeef, sizeof(before));
		r = submit_wait(&c, &g, &ib, bos, 3, &stage);
		submissions++;
		faults++;
		bytes_moved += sizeof(before);	/* the engine processed the fill */
		if (!r && !memcmp(before, ibm.map + 2048, sizeof(before)))
			pass("userptr-readonly-gpu-write-faults (no fence error, bytes "
			     "unchanged; the fault is counted)");
		else
			fail("userptr-readonly-gpu-write-faults", "%s: %d (%s), bytes %s",
			     stage, r, r ? terr_str(r) : "no fault",
			     memcmp(before, ibm.map + 2048, sizeof(before)) ?
			     "CHANGED" : "unchanged");
	}

errors:
	/* d. the host errno table, every row vtest can reach */
	if (c.dead) {
		fail("userptr-errors", "the server dropped the connection");
		goto out;
	}
	expect_import(&c, "import-unknown-res-id", 0xbad1, 0, 4096, -ENOENT);
	expect_import(&c, "import-unknown-flags", v.res_id, 0x2, v.size, -EINVAL);
	expect_import(&c, "import-size-mismatch", v.res_id, 0, 4096, -EINVAL);
	expect_import(&c, "import-size-zero", v.res_id, 0, 0, -EINVAL);
	expect_import(&c, "import-size-not-page-multiple", v.res_id, 0, 8192 - 512,
		      -EINVAL);
	expect_import(&c, "import-size-above-resource", v.res_id, 0, 3 * 4096, -EINVAL);
	/* Nothing is half-done on error: the same resource imports now. */
	expect_import(&c, "import-after-failed-imports", v.res_id, 0, v.size, 0);
	expect_import(&c, "import-twice", u.res_id, 0, U_SIZE, -EEXIST);
	/* Resources with host storage: a GEM BO exported as a dma-buf blob,
	 * and the context's shared memory blob. */
	expect_import(&c, "import-host-bo-blob", gtt, 0, U_SIZE, -EINVAL);
	expect_import(&c, "import-shmem-blob", c.shmem_res, 0, SHMEM_SIZE, -EINVAL);

	/* Limits, checked before anything is allocated: one userptr above
	 * 4 GiB (a sparse memfd, never touched), and the 4097th userptr of
	 * a context. */
	{
		int fd;

		r = vtest_blob(&c, VCMD_BLOB_TYPE_GUEST, 0, (4ull << 30) + 4096, 0, &fd);
		if (r < 0) {
			fail("import-size-above-limit", "GUEST blob of 4 GiB + 4 KiB: %s", c.err);
		} else {
			close(fd);
			expect_import(&c, "import-size-above-limit", r, 0,
				      (4ull << 30) + 4096, -E2BIG);
		}
	}
	quota_check(&c, 4096 - 3);	/* u, ibm and v are live */

	/* Destroy: unref of the imported resource frees the BO; the res_id is
	 * then unknown to the context. */
	if (!vtest_unref(&c, v.res_id) && !vtest_ping(&c))
		expect_import(&c, "import-after-unref", v.res_id, 0, v.size, -ENOENT);
	else
		fail("import-after-unref", "RESOURCE_UNREF: %s", c.err);

	ef = fopen(expect_path, "w");
	if (!ef) {
		fail("userptr-stats", "cannot write %s: %s", expect_path, strerror(errno));
	} else {
		fprintf(ef, "bytes_moved %llu\ngpu_faults %llu\nsubmissions %llu\n",
			(unsigned long long)bytes_moved, (unsigned long long)faults,
			(unsigned long long)submissions);
		fclose(ef);
	}

	/* Last, since a failing ccmd ends the vtest connection: design.md says
	 * SET_METADATA on a userptr BO answers -EINVAL (no tiling on user
	 * memory).  Mesa sends it synchronously and waits for the seqno. */
	{
		struct set_metadata_req req = { .res_id = u.res_id, .tiling_info = 1 };
		struct ccmd_rsp *rsp = rsp_alloc(&c, &req.hdr, sizeof(*rsp));

		r = ccmd_ret(&c, &req.hdr, CCMD_SET_METADATA, sizeof(req), rsp, &terr);
		if (terr)
			fail("set-metadata-userptr", "no response: %s (shmem seqno "
			     "%u, request seqno %u)", terr_str(terr), c.shmem->seqno,
			     c.seqno);
		else if (r != -EINVAL)
			fail("set-metadata-userptr", "ret %d, docs/design.md says -EINVAL", r);
		else
			pass("set-metadata-userptr (-EINVAL)");
	}
out:
	conn_close(&c);
	return failures ? 1 : 0;
}

static int
usage(void)
{
	fprintf(stderr,
		"usage: vtest_amdgpu [--socket PATH] capset 0|1\n"
		"       vtest_amdgpu [--socket PATH] va-op-unknown patched|upstream\n"
		"       vtest_amdgpu [--socket PATH] alive\n"
		"       vtest_amdgpu [--socket PATH] userptr EXPECT_FILE\n"
		"       vtest_amdgpu check-stats STATS_FILE EXPECT_FILE\n");
	return 2;
}

int
main(int argc, char **argv)
{
	const char *sock = "/tmp/.virgl_test";
	int i = 1;

	if (argc > 2 && !strcmp(argv[1], "--socket")) {
		sock = argv[2];
		i = 3;
	}
	if (i >= argc)
		return usage();
	if (!strcmp(argv[i], "capset") && i + 1 < argc)
		return phase_capset(sock, atoi(argv[i + 1]));
	if (!strcmp(argv[i], "va-op-unknown") && i + 1 < argc)
		return phase_va_op_unknown(sock, !strcmp(argv[i + 1], "patched"));
	if (!strcmp(argv[i], "alive"))
		return phase_alive(sock);
	if (!strcmp(argv[i], "userptr") && i + 1 < argc)
		return phase_userptr(sock, argv[i + 1]);
	if (!strcmp(argv[i], "check-stats") && i + 2 < argc)
		return check_stats(argv[i + 1], argv[i + 2]);
	return usage();
}
