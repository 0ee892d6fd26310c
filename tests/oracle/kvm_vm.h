/* kvm_vm.h: a minimal raw-KVM x86-64 guest that performs one memory access and reports its outcome. */
#ifndef KVM_VM_H
#define KVM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed harness region: guest-physical [0, KVM_HARNESS_SIZE), identity-mapped
 * through PML4 slot KVM_HARNESS_SLOT (user-accessible, writable, 4 KiB pages).
 * It holds the harness's own paging structures, GDT, IDT, TSS, code and
 * stacks. Random cases put KVM_HARNESS_PML4E in their PML4 at that slot and
 * never use it otherwise. */
#define KVM_HARNESS_SIZE 0x20000ull
#define KVM_HARNESS_SLOT 0u
#define KVM_HARNESS_PDPT 0x2000ull
#define KVM_HARNESS_PML4E (KVM_HARNESS_PDPT | 0x27ull) /* P|RW|US|A */

/* Access types the guest can perform. */
enum kvm_acc { KVM_ACC_READ = 0, KVM_ACC_WRITE = 1, KVM_ACC_FETCH = 2 };

/* One access to run. */
typedef struct kvm_access {
	uint64_t cr0, cr3, cr4, efer; /* CR0 must have PE|PG, CR4.PAE, EFER.LME|LMA */
	uint64_t la;                  /* linear address accessed (one byte) */
	enum kvm_acc type;
	unsigned cpl;                 /* 0 or 3 */
	uint8_t wbyte;                /* byte written by a write */
} kvm_access;

/* What the guest reported. */
typedef struct kvm_outcome {
	bool fault;         /* an exception was delivered */
	unsigned vector;    /* fault: vector */
	uint64_t error_code;/* fault: error code (0 if none) */
	uint64_t cr2;       /* fault: CR2 in the handler */
	uint64_t rip;       /* fault: RIP pushed; else RIP after the HLT */
	uint8_t rbyte;      /* read: byte read (AL) */
	bool completed;     /* the access completed: no fault at CPL 0, or
			     * at CPL 3 the #GP of the HLT that follows it */
} kvm_outcome;

typedef struct kvm_vm kvm_vm;

/* Check that /dev/kvm can run a guest. Returns false and a reason otherwise. */
bool kvm_vm_usable(char *why, size_t n);

/* A new VM with the harness region and one vCPU. NULL (reason in why) on failure. */
kvm_vm *kvm_vm_new(char *why, size_t n);
void kvm_vm_free(kvm_vm *vm);

/* Back one 4 KiB guest-physical page with host (4 KiB-aligned) memory the
 * caller owns and keeps until kvm_vm_free. gpa must lie above the harness. */
int kvm_vm_add_page(kvm_vm *vm, uint64_t gpa, void *host);

/* Run the access. Returns 0 with *out filled, or -1 with a reason in why
 * (unexpected exit, emulation failure, timeout). */
int kvm_vm_run(kvm_vm *vm, const kvm_access *acc, kvm_outcome *out,
	       char *why, size_t n);

#endif
