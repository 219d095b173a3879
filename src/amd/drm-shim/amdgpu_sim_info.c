/*
 * Copyright 2026 The virtgpu-userptr authors
 * SPDX-License-Identifier: MIT
 *
 * AMDGPU_INFO: what Linux 6.12's amdgpu_info_ioctl reports, for a real ASIC
 * taken from Mesa's device tables (AMDGPU_GPU_ID=name, default navi21).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amdgpu_devices.h"
#include "amdgpu_sim.h"

void
sim_select_asic(void)
{
	const char *name = getenv("AMDGPU_GPU_ID");

	if (!name || !*name)
		name = "navi21";
	for (size_t i = 0; i < num_amdgpu_devices; i++) {
		if (!strcasecmp(amdgpu_devices[i].name, name)) {
			sim.asic = &amdgpu_devices[i];
			return;
		}
	}
	fprintf(stderr, "amdgpu-sim: unknown AMDGPU_GPU_ID \"%s\"; known:", name);
	for (size_t i = 0; i < num_amdgpu_devices; i++)
		fprintf(stderr, " %s", amdgpu_devices[i].name);
	fprintf(stderr, "\n");
	abort();
}

static bool
sim_has_ip(uint32_t type)
{
	return type == AMDGPU_HW_IP_GFX || type == AMDGPU_HW_IP_COMPUTE ||
	       type == AMDGPU_HW_IP_DMA;
}

static void
sim_hw_ip_info(uint32_t type, struct drm_amdgpu_info_hw_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	switch (type) {
	case AMDGPU_HW_IP_GFX:
		*ip = sim.asic->hw_ip_gfx;
		break;
	case AMDGPU_HW_IP_COMPUTE:
		*ip = sim.asic->hw_ip_compute;
		break;
	case AMDGPU_HW_IP_DMA:
		/* SDMA follows the graphics generation on every table ASIC. */
		ip->hw_ip_version_major = sim.asic->hw_ip_gfx.hw_ip_version_major;
		ip->hw_ip_version_minor = sim.asic->hw_ip_gfx.hw_ip_version_minor;
		ip->ib_start_alignment = 256;
		ip->ib_size_alignment = 4;
		ip->available_rings = 0x3;
		break;
	default:
		break;
	}
}

uint64_t
sim_on_chip_size(uint32_t domain)
{
	switch (domain) {
	case AMDGPU_GEM_DOMAIN_GDS:
		return SIM_GDS_SIZE;
	case AMDGPU_GEM_DOMAIN_GWS:
		return SIM_GWS_SIZE;
	case AMDGPU_GEM_DOMAIN_OA:
		return SIM_OA_SIZE;
	default:
		return 0;
	}
}

uint32_t
sim_ip_available_rings(uint32_t type)
{
	struct drm_amdgpu_info_hw_ip ip;

	sim_hw_ip_info(type, &ip);
	return ip.available_rings;
}

static void
sim_dev_info(struct drm_amdgpu_info_device *dev)
{
	uint64_t vm_size = SIM_VM_SIZE - SIM_VA_RESERVED_TOP;

	*dev = sim.asic->dev;
	/* amdgpu_kms.c, AMDGPU_INFO_DEV_INFO, for a 48-bit GPU VM */
	dev->virtual_address_offset = SIM_VA_RESERVED_BOTTOM;
	dev->virtual_address_max = MIN2(vm_size, SIM_GMC_HOLE_START);
	if (vm_size > SIM_GMC_HOLE_START) {
		dev->high_va_offset = SIM_GMC_HOLE_END;
		dev->high_va_max = SIM_GMC_HOLE_END | vm_size;
	}
	dev->virtual_address_alignment = SIM_PAGE_SIZE;
	dev->gart_page_size = SIM_PAGE_SIZE;
}

static int
sim_read_mmr(const struct drm_amdgpu_info *info, uint32_t *out)
{
	uint32_t count = info->read_mmr_reg.count;

	if (count > 128)
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t reg = info->read_mmr_reg.dword_offset + i;
		bool found = false;

		for (uint32_t j = 0; j < sim.asic->mmr_reg_count; j++) {
			const uint32_t *r = &sim.asic->mmr_regs[j * 3];

			if (r[0] == reg && r[1] == info->read_mmr_reg.instance) {
				out[i] = r[2];
				found = true;
				break;
			}
		}
		/* amdgpu only reads registers on its allowed list. */
		if (!found)
			return -EINVAL;
	}
	return 0;
}

int
sim_ioctl_info(int fd, unsigned long request, void *arg)
{
	struct drm_amdgpu_info *info = arg;
	void *out = (void *)(uintptr_t)info->return_pointer;
	uint32_t size = info->return_size;
	union {
		uint32_t u32;
		uint64_t u64;
		uint32_t regs[128];
		uint32_t max_ibs[AMDGPU_HW_IP_NUM];
		struct drm_amdgpu_info_hw_ip ip;
		struct drm_amdgpu_info_firmware fw;
		struct drm_amdgpu_info_device dev;
		struct drm_amdgpu_memory_info mem;
		struct drm_amdgpu_info_vram_gtt vram_gtt;
		struct drm_amdgpu_info_gds gds;
		struct drm_amdgpu_info_video_caps caps;
		struct drm_amdgpu_info_gpuvm_fault fault;
	} v;
	size_t len;
	int r;

	if (!out || !size)
		return -EINVAL;
	memset(&v, 0, sizeof(v));

	switch (info->query) {
	case AMDGPU_INFO_ACCEL_WORKING:
		v.u32 = 1;
		len = sizeof(v.u32);
		break;
	case AMDGPU_INFO_HW_IP_INFO:
		if (info->query_hw_ip.type >= AMDGPU_HW_IP_NUM)
			return -EINVAL;
		if (info->query_hw_ip.ip_instance > 0)
			return -EINVAL;
		sim_hw_ip_info(info->query_hw_ip.type, &v.ip);
		len = sizeof(v.ip);
		break;
	case AMDGPU_INFO_HW_IP_COUNT:
		if (info->query_hw_ip.type >= AMDGPU_HW_IP_NUM)
			return -EINVAL;
		v.u32 = sim_has_ip(info->query_hw_ip.type);
		len = sizeof(v.u32);
		break;
	case AMDGPU_INFO_TIMESTAMP:
		v.u64 = sim_monotonic_ns() / 10;	/* a 100 MHz counter */
		len = sizeof(v.u64);
		break;
	case AMDGPU_INFO_FW_VERSION:
		if (info->query_fw.fw_type == AMDGPU_INFO_FW_GFX_ME)
			v.fw = sim.asic->fw_gfx_me;
		else if (info->query_fw.fw_type == AMDGPU_INFO_FW_GFX_PFP)
			v.fw = sim.asic->fw_gfx_pfp;
		else if (info->query_fw.fw_type == AMDGPU_INFO_FW_GFX_MEC)
			v.fw = sim.asic->fw_gfx_mec;
		else if (info->query_fw.fw_type > AMDGPU_INFO_FW_VPE)
			return -EINVAL;
		len = sizeof(v.fw);
		break;
	case AMDGPU_INFO_NUM_BYTES_MOVED:
	case AMDGPU_INFO_VRAM_USAGE:
	case AMDGPU_INFO_GTT_USAGE:
	case AMDGPU_INFO_VIS_VRAM_USAGE:
	case AMDGPU_INFO_NUM_EVICTIONS:
	case AMDGPU_INFO_NUM_VRAM_CPU_PAGE_FAULTS:
		v.u64 = 0;
		len = sizeof(v.u64);
		break;
	case AMDGPU_INFO_VRAM_LOST_COUNTER:
		v.u32 = 0;
		len = sizeof(v.u32);
		break;
	case AMDGPU_INFO_GDS_CONFIG:
		v.gds.compute_partition_size = SIM_GDS_SIZE;
		v.gds.gds_total_size = SIM_GDS_SIZE;
		v.gds.gws_per_compute_partition = SIM_GWS_SIZE;
		v.gds.oa_per_compute_partition = SIM_OA_SIZE;
		len = sizeof(v.gds);
		break;
	case AMDGPU_INFO_VRAM_GTT:
		v.vram_gtt.vram_size = sim.asic->mem.vram.total_heap_size;
		v.vram_gtt.vram_cpu_accessible_size =
			sim.asic->mem.cpu_accessible_vram.total_heap_size;
		v.vram_gtt.gtt_size = sim.asic->mem.gtt.total_heap_size;
		len = sizeof(v.vram_gtt);
		break;
	case AMDGPU_INFO_READ_MMR_REG:
		r = sim_read_mmr(info, v.regs);
		if (r)
			return r;
		len = info->read_mmr_reg.count * sizeof(uint32_t);
		break;
	case AMDGPU_INFO_DEV_INFO:
		sim_dev_info(&v.dev);
		len = sizeof(v.dev);
		break;
	case AMDGPU_INFO_MEMORY:
		v.mem = sim.asic->mem;
		v.mem.vram.usable_heap_size = v.mem.vram.total_heap_size;
		v.mem.vram.max_allocation = v.mem.vram.total_heap_size * 3 / 4;
		v.mem.vram.heap_usage = 0;
		v.mem.cpu_accessible_vram.usable_heap_size =
			v.mem.cpu_accessible_vram.total_heap_size;
		v.mem.cpu_accessible_vram.max_allocation =
			v.mem.cpu_accessible_vram.total_heap_size * 3 / 4;
		v.mem.cpu_accessible_vram.heap_usage = 0;
		v.mem.gtt.usable_heap_size = v.mem.gtt.total_heap_size;
		v.mem.gtt.max_allocation = v.mem.gtt.total_heap_size * 3 / 4;
		v.mem.gtt.heap_usage = 0;
		len = sizeof(v.mem);
		break;
	case AMDGPU_INFO_VIDEO_CAPS:
		len = sizeof(v.caps);	/* no video engines */
		break;
	case AMDGPU_INFO_MAX_IBS:
		v.max_ibs[AMDGPU_HW_IP_GFX] = 8;
		v.max_ibs[AMDGPU_HW_IP_COMPUTE] = 8;
		v.max_ibs[AMDGPU_HW_IP_DMA] = 8;
		len = sizeof(v.max_ibs);
		break;
	case AMDGPU_INFO_GPUVM_FAULT:
		v.fault.addr = atomic_load((_Atomic uint64_t *)&sim.stats.last_fault_va);
		v.fault.status = v.fault.addr ? 1 : 0;
		len = sizeof(v.fault);
		break;
	default:
		/* CRTC_FROM_ID, VBIOS, SENSOR, ...: no display, no power
		 * management, no video engines on this device. */
		return -EINVAL;
	}
	memcpy(out, &v, MIN2(size, len));
	return 0;
}
