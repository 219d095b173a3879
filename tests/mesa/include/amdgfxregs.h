/* SPDX-License-Identifier: MIT */
/*
 * Stand-in for the header Mesa generates from its register database
 * (src/amd/registers).  sid.h includes it, and amdgpu_virtio_bo.c includes
 * sid.h without using any register: an empty header is enough, and any use
 * of a register in the code under test would fail to compile here.
 */
