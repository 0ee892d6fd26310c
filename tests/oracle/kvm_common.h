/* KVM plumbing both raw-KVM oracles share: memory slots, the guest CPUID model, descriptors, timeouts, teardown. */
#ifndef VMEM_KVM_COMMON_H
#define VMEM_KVM_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

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

/* printf into why[0..n) (nothing when why is NULL or n is 0). */
void kvm_common_say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Store v at mem + off (unaligned, host byte order = the guest's). */
void kvm_common_put64(unsigned char *mem, uint64_t off, uint64_t v);
/* A flat segment for selector sel: 64-bit code (L = 1) or data, DPL = the selector's RPL. */
struct kvm_segment kvm_common_seg(uint16_t sel, uint8_t type, bool code);
/* SIGALRM without SA_RESTART, so that a guest that never exits makes KVM_RUN
 * return EINTR; then a one-shot alarm in sec seconds. */
void kvm_common_install_alarm(void);
void kvm_common_arm_timer(unsigned sec);
/* Close what is open (fds >= 0, run != NULL). */
void kvm_common_close(int kvm, int vm, int vcpu, struct kvm_run *run, size_t run_size);

#endif
