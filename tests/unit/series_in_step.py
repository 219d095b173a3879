#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The protocol is written once, in include/; the three series carry copies.

Checks that every value the kernel series (linux-patch/), the Mesa series
(patches/) and the virglrenderer series (virglrenderer-patch/patches/)
add for the protocol equals include/'s, and that the few layout facts a
#define cannot carry (where the new create_blob field goes, the ccmd's
number and fields, the capset bit) hold in the patches' text.
Usage: series_in_step.py TOP"""
import glob
import re
import sys

top = sys.argv[1]
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def defines(text, prefix=""):
    """name -> value of every #define (comments dropped, spaces squeezed)."""
    out = {}
    for line in text.splitlines():
        if prefix and not line.startswith(prefix):
            continue
        line = line[len(prefix):]
        m = re.match(r"\s*#define\s+(\w+)\s+(.*)", line)
        if not m:
            continue
        value = re.sub(r"/\*.*?\*/", "", m.group(2))
        out[m.group(1)] = " ".join(value.split())
    return out


def read(pattern):
    files = sorted(glob.glob(f"{top}/{pattern}"))
    if not files:
        fail(f"no file matches {pattern}")
        return ""
    return "".join(open(f).read() for f in files)


uapi = defines(open(f"{top}/include/virtgpu_userptr_uapi.h").read())
wire = defines(open(f"{top}/include/virtio_gpu_userptr.h").read())
proto = defines(open(f"{top}/include/amdgpu_userptr_proto.h").read())
guest_names = [n for n in uapi if n.startswith("VIRTGPU_") and not n.endswith("_SIZE")]


def same(where, added, names, ref):
    for n in names:
        if n not in added:
            fail(f"{where}: {n} is not defined by the series")
        elif added[n] != ref[n]:
            fail(f"{where}: {n} is {added[n]}, include/ says {ref[n]}")
        else:
            print(f"ok {where}: {n} {ref[n]}")


# The Linux 7.2 series and its 6.12 backport add the same UAPI; the struct
# grows by one trailing __u64 right after 7.2's blob_hints and pad2 (the
# backport adds those two first).
for where in ("linux-patch", "linux-patch/6.12"):
    kernel = read(f"{where}/0*.patch")
    same(where, defines(kernel, "+"), guest_names, uapi)
    same(where, defines(kernel, "+"), ["VIRTIO_GPU_BLOB_FLAG_GUEST_READONLY"], wire)
    if not re.search(r"\n[ +]\t__u32 pad2;\n(\+\t/\*.*\*/\n)?\+\t__u64 userptr;", kernel):
        fail(f"{where}: __u64 userptr is not added right after __u32 pad2")
    else:
        print(f"ok {where}: userptr follows pad2")

mesa = read("patches/0*.patch")
same("patches/", defines(mesa, "+"), guest_names, uapi)
if not re.search(r"\n\+\t__u32 pad2;\n(\+\t/\*.*\*/\n)?\+\t__u64 userptr;", mesa):
    fail("patches/: __u64 userptr is not added right after __u32 pad2")
else:
    print("ok patches/: userptr follows pad2")

virgl = read("virglrenderer-patch/patches/0*.patch")
vdefs = defines(virgl, "+")
if vdefs.get("VIRGL_RENDERER_BLOB_FLAG_GUEST_READONLY") != wire["VIRTIO_GPU_BLOB_FLAG_GUEST_READONLY"]:
    fail("virglrenderer-patch: VIRGL_RENDERER_BLOB_FLAG_GUEST_READONLY is "
         f"{vdefs.get('VIRGL_RENDERER_BLOB_FLAG_GUEST_READONLY')}, the wire flag is "
         f"{wire['VIRTIO_GPU_BLOB_FLAG_GUEST_READONLY']}")
else:
    print("ok virglrenderer-patch: guest read-only blob flag")
same("virglrenderer-patch", vdefs, ["AMDGPU_CCMD_USERPTR_READONLY"], proto)
# Number 11: the enum entry right after CS_QUERY_FENCE_STATUS (10 in 1.3.0).
if proto["AMDGPU_CCMD_USERPTR_IMPORT"] != "11" or not re.search(
        r"\n[ ]\s*AMDGPU_CCMD_CS_QUERY_FENCE_STATUS,\n\+\s*AMDGPU_CCMD_USERPTR_IMPORT,", virgl):
    fail("virglrenderer-patch: AMDGPU_CCMD_USERPTR_IMPORT is not the entry after "
         "CS_QUERY_FENCE_STATUS (11)")
else:
    print("ok virglrenderer-patch: AMDGPU_CCMD_USERPTR_IMPORT = 11")
m = re.search(r"\+struct amdgpu_ccmd_userptr_import_req \{\n((?:\+.*\n)+?)\+\};", virgl)
fields = re.findall(r"(\w+)\s*;", m.group(1)) if m else []
if fields != ["hdr", "res_id", "flags", "size"]:
    fail(f"virglrenderer-patch: import request fields {fields}")
else:
    print("ok virglrenderer-patch: import request fields hdr, res_id, flags, size")
if not re.search(r"has_vm_always_valid\s*:\s*1;\n(-.*\n)*\+\s*uint32_t has_userptr\s*:\s*1;", virgl) \
        or proto["AMDGPU_CAPSET_HAS_USERPTR_BIT"] != "1":
    fail("virglrenderer-patch: has_userptr is not the capset bit after has_vm_always_valid")
else:
    print("ok virglrenderer-patch: has_userptr after has_vm_always_valid (bit 1)")

print(f"{'FAIL' if failures else 'PASS'}: {failures} failure(s)")
sys.exit(1 if failures else 0)
