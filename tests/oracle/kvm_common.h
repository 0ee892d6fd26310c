/* KVM plumbing both raw-KVM oracles share: memory slots and the guest CPUID model. */
#ifndef VMEM_KVM_COMMON_H
#define VMEM_KVM_COMMON_H

#include <stdint.h>

/* KVM_SET_USER_MEMORY_REGION for slot `slot`: [gpa, gpa+size) backed by host. -1 on error. */
int kvm_common_add_slot(int vmfd, unsigned slot, uint64_t gpa, uint64_t size, void *host);
/* The oracles' CPU: KVM's supported CPUID without 1-GByte pages and PKU, vendor Intel. -1 on error. */
int kvm_common_set_cpuid(int kvmfd, int vcpufd);

#endif
