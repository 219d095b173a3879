/* Phase opencl of the VM rig (docs/rig.md): an OpenCL application in the
 * guest, through the ICD loader (ocl-icd) and rusticl from `tools/mesa build
 * rusticl` (Mesa 25.0.7 + patches/, radeonsi over the AMD native context):
 * buffers created with CL_MEM_USE_HOST_PTR over the application's
 * posix_memalign'd memory, a clEnqueueCopyBuffer between them, and a
 * clEnqueueFillBuffer.
 *
 *   vm_opencl userptr   host with the series: rusticl takes radeonsi's
 *                       resource_from_user_memory, so the GPU writes the
 *                       application's memory itself (checked before any
 *                       map), and a map returns the host pointer
 *   vm_opencl copy      plain upstream host: no hook, rusticl shadows the
 *                       host memory in a driver buffer; the results reach
 *                       the application's memory only at the map (the
 *                       fallback: both checked)
 *
 * run-vm boots this phase with phase radeonsi, on vega10: radeonsi copies
 * and clears GTT buffers with CP DMA there (docs/rig.md).  The shadow
 * buffers of copy mode are in VRAM, where radeonsi clears and reads back
 * large ranges with compute shaders, which the simulator cannot run: copy
 * mode keeps to a 1 KiB copy and map, and has no fill.
 *
 * Prints "PASS/FAIL rig: CHECK" lines, STATS / STATS_MIN lines as
 * vm_radeonsi does; exit status 1 on a FAIL.
 */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rig_report.h"

#define BUF_SIZE (64 * 1024)
#define FILL 0xddu
#define FILL_VALUE 0x5eedf00du



static uint8_t
pattern(unsigned i)
{
	return (uint8_t)((i * 2654435761u + 77u) >> 11);
}

/* First byte of dst[lo, hi) that is not what the commands left there:
 * src[i - dst_off + src_off] in the copied range, the fill value's bytes
 * in the filled one, the untouched FILL elsewhere. */
struct layout {
	unsigned copy_dst, copy_src, copy_len;
	unsigned fill_off, fill_len;
};

static uint8_t
expected(const struct layout *l, const uint8_t *src, unsigned i)
{
	if (i >= l->copy_dst && i < l->copy_dst + l->copy_len)
		return src[i - l->copy_dst + l->copy_src];
	if (i >= l->fill_off && i < l->fill_off + l->fill_len)
		return (uint8_t)(FILL_VALUE >> (8 * ((i - l->fill_off) % 4)));
	return FILL;
}

static long
first_mismatch(const struct layout *l, const uint8_t *src, const uint8_t *p,
	       unsigned lo, unsigned hi)
{
	for (unsigned i = lo; i < hi; i++)
		if (p[i - lo] != expected(l, src, i))
			return i;
	return -1;
}

static cl_device_id
rusticl_device(cl_platform_id *out_platform)
{
	cl_platform_id platforms[8];
	cl_uint n = 0;
	char name[256];

	if (clGetPlatformIDs(8, platforms, &n) != CL_SUCCESS || !n) {
		rig_fail("platform", "clGetPlatformIDs found no platform (ICD %s)",
		     getenv("OCL_ICD_VENDORS") ? getenv("OCL_ICD_VENDORS") : "default");
		return NULL;
	}
	for (cl_uint i = 0; i < n && i < 8; i++) {
		cl_device_id dev;
		cl_uint nd = 0;

		if (clGetPlatformInfo(platforms[i], CL_PLATFORM_NAME, sizeof(name), name, NULL) ||
		    strcmp(name, "rusticl"))
			continue;
		if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_GPU, 1, &dev, &nd) || !nd) {
			rig_fail("platform", "rusticl has no GPU device (RUSTICL_ENABLE=%s)",
			     getenv("RUSTICL_ENABLE") ? getenv("RUSTICL_ENABLE") : "unset");
			return NULL;
		}
		*out_platform = platforms[i];
		return dev;
	}
	rig_fail("platform", "no rusticl platform among %u", n);
	return NULL;
}

/* rusticl compiles OpenCL C with clang, which needs its OpenCL headers
 * (opencl-c-base.h, opencl-c.h) at run time: a program with a vector add
 * and a reduction in local memory must build.  The simulator runs no
 * shaders, so it is built, not run. */
static const char kernels[] =
	"kernel void vadd(global const uint *a, global const uint *b, global uint *c)\n"
	"{ size_t i = get_global_id(0); c[i] = a[i] + b[i]; }\n"
	"kernel void sum(global const uint *in, global uint *out, local uint *tmp)\n"
	"{\n"
	"	size_t l = get_local_id(0);\n"
	"	tmp[l] = in[get_global_id(0)];\n"
	"	barrier(CLK_LOCAL_MEM_FENCE);\n"
	"	for (size_t s = get_local_size(0) / 2; s > 0; s /= 2) {\n"
	"		if (l < s)\n"
	"			tmp[l] += tmp[l + s];\n"
	"		barrier(CLK_LOCAL_MEM_FENCE);\n"
	"	}\n"
	"	if (l == 0)\n"
	"		atomic_add(out, tmp[0]);\n"
	"}\n";

static void
check_program_builds(cl_context ctx, cl_device_id dev)
{
	const char *text = kernels;
	cl_int err;
	cl_program prog = clCreateProgramWithSource(ctx, 1, &text, NULL, &err);

	if (!prog) {
		rig_fail("program-builds", "clCreateProgramWithSource: %d", err);
		return;
	}
	err = clBuildProgram(prog, 1, &dev, NULL, NULL, NULL);
	if (err == CL_SUCCESS) {
		rig_pass("program-builds (OpenCL C: vector add, local-memory reduction with atomics)");
	} else {
		size_t len = 0;
		char *log = NULL;

		/* the whole log: a buffer too small for it gets nothing */
		if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL,
					  &len) == CL_SUCCESS && len)
			log = calloc(1, len + 1);
		if (log && clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, len,
						 log, NULL) != CL_SUCCESS)
			log[0] = 0;
		for (char *c = log; c && *c; c++)
			if (*c == '\n')
				*c = ' ';
		rig_fail("program-builds", "clBuildProgram: %d: %.300s", err,
			 log ? log : "(no build log)");
		free(log);
	}
	clReleaseProgram(prog);
}

/*
 * A blocking clEnqueueWriteBuffer then a blocking clEnqueueReadBuffer of a
 * plain buffer, each round with new bytes: the read must return the last
 * write.  Piglit's OpenCL tests saw the bytes of an earlier write here
 * (512 bytes, 4 of 6 VM runs) while the host signalled fences before the
 * GPU had run the job (docs/rig.md, "Stale bytes in the VM").  Larger
 * buffers take a path the simulator does not execute yet (issue 16).
 */
static void
check_write_read(cl_context ctx, cl_command_queue q, size_t size, unsigned rounds)
{
	uint8_t *in = malloc(size), *out = malloc(size);
	cl_mem b = NULL;
	cl_int err = CL_OUT_OF_HOST_MEMORY;
	unsigned r;

	if (in && out)
		b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, size, NULL, &err);
	if (!b) {
		rig_fail("write-read", "clCreateBuffer(CL_MEM_READ_WRITE, %zu): %d", size, err);
		goto out;
	}
	for (r = 0; r < rounds; r++) {
		for (size_t i = 0; i < size; i++)
			in[i] = (uint8_t)(i * 7 + r * 13 + 1);
		memset(out, 0, size);
		err = clEnqueueWriteBuffer(q, b, CL_TRUE, 0, size, in, 0, NULL, NULL);
		if (!err)
			err = clEnqueueReadBuffer(q, b, CL_TRUE, 0, size, out, 0, NULL, NULL);
		if (err) {
			rig_fail("write-read", "%zu bytes, round %u: clEnqueueWriteBuffer/ReadBuffer: "
				 "%d", size, r + 1, err);
			goto out;
		}
		for (size_t i = 0; i < size; i++) {
			if (out[i] == in[i])
				continue;
			rig_fail("write-read", "%zu bytes, round %u of %u: byte %zu read back 0x%02x, "
				 "the blocking write before it wrote 0x%02x%s", size, r + 1, rounds,
				 i, out[i], in[i], r && out[i] == (uint8_t)(i * 7 + (r - 1) * 13 + 1) ?
				 " (the previous round's byte: stale)" : "");
			goto out;
		}
	}
	rig_pass("write-read (%u rounds of a blocking clEnqueueWriteBuffer then a blocking "
		 "clEnqueueReadBuffer of a plain %zu-byte CL_MEM_READ_WRITE buffer, new bytes "
		 "each round: every read returned the last write)", rounds, size);
out:
	if (b)
		clReleaseMemObject(b);
	free(in);
	free(out);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	unsigned long long invalidations = 0, bytes = 0;
	int userptr;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "userptr"))
		userptr = 1;
	else if (!strcmp(mode, "copy"))
		userptr = 0;
	else {
		rig_fail("usage", "vm_opencl userptr|copy (got \"%s\")", mode);
		return 1;
	}

	cl_platform_id platform;
	cl_device_id dev = rusticl_device(&platform);
	if (!dev)
		return 1;
	char dname[256] = "", version[128] = "";
	clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof(dname), dname, NULL);
	clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof(version), version, NULL);
	rig_pass("platform (rusticl through the ICD loader, device \"%s\", %s)", dname, version);

	cl_int err;
	cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	cl_command_queue q = ctx ? clCreateCommandQueueWithProperties(ctx, dev, NULL, &err) : NULL;
	if (!q) {
		rig_fail("queue", "clCreateContext/clCreateCommandQueueWithProperties: %d", err);
		return 1;
	}
	check_program_builds(ctx, dev);
	check_write_read(ctx, q, 512, 200);

	uint8_t *src = NULL, *dst = NULL;
	if (posix_memalign((void **)&src, 4096, BUF_SIZE) ||
	    posix_memalign((void **)&dst, 4096, BUF_SIZE)) {
		rig_fail("use-host-ptr", "posix_memalign");
		return 1;
	}
	for (unsigned i = 0; i < BUF_SIZE; i++)
		src[i] = pattern(i);
	memset(dst, FILL, BUF_SIZE);

	cl_mem bsrc = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, BUF_SIZE, src, &err);
	cl_mem bdst = bsrc ? clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, BUF_SIZE, dst, &err) : NULL;
	if (!bdst) {
		rig_fail("use-host-ptr", "clCreateBuffer(CL_MEM_USE_HOST_PTR, 64 KiB): %d", err);
		return 1;
	}
	rig_pass("use-host-ptr (two clCreateBuffer(CL_MEM_USE_HOST_PTR) over posix_memalign'd 64 KiB)");

	/* userptr: 32 KiB copy GTT->GTT and a 1 KiB fill (CP DMA on GFX9);
	 * copy: a 1 KiB copy between the VRAM shadows (CP DMA below 4 KiB) */
	struct layout l = userptr ? (struct layout){ 4096, 256, 32768, 40960, 1024 }
				  : (struct layout){ 4096, 256, 1024, 0, 0 };
	uint32_t value = FILL_VALUE;
	err = clEnqueueCopyBuffer(q, bsrc, bdst, l.copy_src, l.copy_dst, l.copy_len, 0, NULL, NULL);
	bytes += l.copy_len;
	if (!err && l.fill_len) {
		err = clEnqueueFillBuffer(q, bdst, &value, sizeof(value), l.fill_off, l.fill_len,
					  0, NULL, NULL);
		bytes += l.fill_len;
	}
	if (!err)
		err = clFinish(q);
	if (err) {
		rig_fail("enqueue", "clEnqueueCopyBuffer/clEnqueueFillBuffer/clFinish: %d", err);
		return 1;
	}

	long bad;
	int untouched = 1;
	for (unsigned i = 0; i < BUF_SIZE; i++)
		untouched &= dst[i] == FILL;
	if (userptr) {
		/* Zero-copy: the GPU wrote the application's pages; no map yet. */
		bad = first_mismatch(&l, src, dst, 0, BUF_SIZE);
		if (bad >= 0)
			rig_fail("zero-copy", "after clFinish, byte %ld of the application's destination "
			     "memory is 0x%02x (no map done yet)", bad, dst[bad]);
		else
			rig_pass("zero-copy (clEnqueueCopyBuffer 32 KiB + clEnqueueFillBuffer 1 KiB, clFinish: "
			     "every byte already in the application's own memory, before any map)");
	}

	/* What the specification promises for CL_MEM_USE_HOST_PTR: the map
	 * returns the host pointer, and holds the result. */
	unsigned lo = l.copy_dst, hi = l.fill_len ? l.fill_off + l.fill_len : l.copy_dst + l.copy_len;
	uint8_t *p = clEnqueueMapBuffer(q, bdst, CL_TRUE, CL_MAP_READ, lo, hi - lo, 0, NULL, NULL, &err);
	if (!p) {
		rig_fail("map", "clEnqueueMapBuffer: %d", err);
	} else {
		if (!userptr && untouched)
			rig_pass("shadow (no userptr on the host: after clFinish the application's memory is "
			     "still untouched, the copy went to rusticl's shadow buffer)");
		else if (!userptr)
			rig_fail("shadow", "the application's memory changed before the map, with no userptr on the host");
		bad = first_mismatch(&l, src, p, lo, hi);
		if (p != dst + lo)
			rig_fail("map", "clEnqueueMapBuffer returned %p, not the host pointer %p", (void *)p,
			     (void *)(dst + lo));
		else if (bad >= 0)
			rig_fail("map", "byte %ld of the mapped destination is 0x%02x", bad, p[bad - lo]);
		else
			rig_pass("map (clEnqueueMapBuffer(CL_MAP_READ) of bytes %u..%u returned the host pointer "
			     "and holds the %s)", lo, hi, userptr ? "copy and the fill"
							      : "copy: the fallback synced the shadow back");
		clEnqueueUnmapMemObject(q, bdst, p, 0, NULL, NULL);
		clFinish(q);
	}

	clReleaseMemObject(bsrc);
	clReleaseMemObject(bdst);
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	if (userptr)
		invalidations = 2;	/* each buffer's host userptr window */
	free(src);
	free(dst);

	printf("STATS userptr_invalidations %llu\n", invalidations);
	printf("STATS gpu_faults 0\n");
	printf("STATS_MIN bytes_moved %llu\n", bytes);
	return *rig_failures != 0;
}
