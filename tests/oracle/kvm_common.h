/* KVM plumbing both raw-KVM oracles share: memory slots and the guest CPUID model. */
#ifndef VMEM_KVM_COMMON_H
#define VMEM_KVM_COMMON_H

#include <stdint.h>

/* KVM_SET_USER_MEMORY_REGION for slot `slot`: [gpa, gpa+size) backed by host. -1 on error. */
int kvm_common_add_slot(int vmfd, unsigned slot, uint64_t gpa, uint64_t size, void *host);
/* The oracles' CPU: KVM's supported CPUID without 1-GByte pages and PKU, vendor Intel. -1 on error. */
int kvm_common_set_cpuid(int kvmfd, int vcpufd);

/* The oracles' descriptor tables in harness memory h (offsets = guest-physical addresses):
 * GDT with 64-bit code/data for CPL 0 (0x08, 0x10) and CPL 3 (0x18, 0x20) and a busy
 * 64-bit TSS (0x28); IDT: vectors 0-31 -> 16-byte stubs at code, 64-bit interrupt gates
 * through selector 0x08, DPL 0 except #BP when bp_user (INT3 from CPL 3); TSS with RSP0
 * = kstack and no I/O bitmap. */
void kvm_common_tables(unsigned char *h, uint64_t gdt, uint64_t idt, uint64_t tss, uint64_t code,
		       uint64_t kstack, int bp_user);

#endif
