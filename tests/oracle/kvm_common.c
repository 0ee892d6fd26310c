/* KVM plumbing both raw-KVM oracles share: memory slots and the guest CPUID model. */
#include <stdlib.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "kvm_common.h"

int kvm_common_add_slot(int vmfd, unsigned slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};
	return ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -1 : 0;
}

int kvm_common_set_cpuid(int kvmfd, int vcpufd)
{
	int rc = -1;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(struct kvm_cpuid_entry2));
	if (!c)
		return -1;
	c->nent = 256;
	if (ioctl(kvmfd, KVM_GET_SUPPORTED_CPUID, c) < 0)
		goto out;
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function == 0x80000001)
			e->edx &= ~(1u << 26); /* no 1-GByte pages */
		if (e->function == 7 && e->index == 0)
			e->ecx &= ~(1u << 3); /* no PKU */
		/* Vendor Intel: libvmem models the Intel SDM, and KVM applies
		 * AMD-only rules (PML4E bit 8 reserved) to an AMD guest. */
		if (e->function == 0 || e->function == 0x80000000) {
			e->ebx = 0x756e6547; /* "Genu" */
			e->edx = 0x49656e69; /* "ineI" */
			e->ecx = 0x6c65746e; /* "ntel" */
		}
	}
	rc = ioctl(vcpufd, KVM_SET_CPUID2, c) < 0 ? -1 : 0;
out:
	free(c);
	return rc;
}
