/* kvm_vm.c: a minimal raw-KVM x86-64 guest (one vCPU in long mode) that performs one memory access. */
#define _GNU_SOURCE
#include "kvm_common.h"
#include "kvm_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

/* Guest code (kvm_guest.S), copied to KVM_CODE. */
extern const unsigned char kvm_guest_start[], kvm_guest_end[];
extern const unsigned char kvm_guest_do_read[], kvm_guest_read_done[];
extern const unsigned char kvm_guest_do_write[], kvm_guest_write_done[];
extern const unsigned char kvm_guest_do_fetch[];

/* Harness region layout (guest-physical = linear). */
#define KVM_PD      0x3000ull
#define KVM_PT      0x4000ull
#define KVM_GDT     0x5000ull
#define KVM_IDT     0x6000ull
#define KVM_TSS     0x7000ull
#define KVM_CODE    0x8000ull
#define KVM_KSTACK  0xf000ull  /* top of the CPL 0 stack (TSS.RSP0) */
#define KVM_USTACK  0x11000ull /* top of the CPL 3 stack */

/* GDT selectors. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS   0x28

#define MAX_SLOTS 64

struct kvm_vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	unsigned char *harness;
	unsigned nslots;
};

static uint64_t code_addr(const unsigned char *sym)
{
	return KVM_CODE + (uint64_t)(sym - kvm_guest_start);
}

/* Paging structures, GDT, IDT, TSS and code of the harness region. */
static void harness_init(unsigned char *h)
{
	memset(h, 0, KVM_HARNESS_SIZE);
	kvm_common_put64(h, KVM_HARNESS_PDPT, KVM_PD | 0x27);
	kvm_common_put64(h, KVM_PD, KVM_PT | 0x27);
	for (uint64_t pa = 0x1000; pa < KVM_HARNESS_SIZE; pa += 0x1000)
		kvm_common_put64(h, KVM_PT + (pa >> 12) * 8, pa | 0x67); /* P|RW|US|A|D */

	kvm_common_tables(h, KVM_GDT, KVM_IDT, KVM_TSS, KVM_CODE, KVM_KSTACK, 0);

	memcpy(h + KVM_CODE, kvm_guest_start, (size_t)(kvm_guest_end - kvm_guest_start));
}

static int set_slot(kvm_vm *vm, uint64_t gpa, uint64_t size, void *host)
{
	if (vm->nslots >= MAX_SLOTS || kvm_common_add_slot(vm->vm, vm->nslots, gpa, size, host) < 0)
		return -1;
	vm->nslots++;
	return 0;
}


void kvm_vm_free(kvm_vm *vm)
{
	if (!vm)
		return;
	kvm_common_close(vm->kvm, vm->vm, vm->vcpu, vm->run, vm->run_size);
	if (vm->harness)
		munmap(vm->harness, KVM_HARNESS_SIZE);
	free(vm);
}

kvm_vm *kvm_vm_new(char *why, size_t n)
{
	kvm_vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		kvm_common_say(why, n, "out of memory");
		return NULL;
	}
	vm->kvm = vm->vm = vm->vcpu = -1;
	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm < 0) {
		kvm_common_say(why, n, "open /dev/kvm: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		kvm_common_say(why, n, "unexpected KVM API version");
		goto fail;
	}
	vm->vm = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	if (vm->vm < 0) {
		kvm_common_say(why, n, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	vm->harness = mmap(NULL, KVM_HARNESS_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm->harness == MAP_FAILED) {
		vm->harness = NULL;
		kvm_common_say(why, n, "mmap: %s", strerror(errno));
		goto fail;
	}
	harness_init(vm->harness);
	if (set_slot(vm, 0, KVM_HARNESS_SIZE, vm->harness) < 0) {
		kvm_common_say(why, n, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		goto fail;
	}
	vm->vcpu = ioctl(vm->vm, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0) {
		kvm_common_say(why, n, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto fail;
	}
	int sz = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0) {
		kvm_common_say(why, n, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		goto fail;
	}
	vm->run_size = (size_t)sz;
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		kvm_common_say(why, n, "mmap kvm_run: %s", strerror(errno));
		goto fail;
	}
	if (kvm_common_set_cpuid(vm->kvm, vm->vcpu) < 0) {
		kvm_common_say(why, n, "KVM_SET_CPUID2: %s", strerror(errno));
		goto fail;
	}
	return vm;
fail:
	kvm_vm_free(vm);
	return NULL;
}

int kvm_vm_add_page(kvm_vm *vm, uint64_t gpa, void *host)
{
	if (gpa < KVM_HARNESS_SIZE || (gpa & 0xfff) || ((uintptr_t)host & 0xfff))
		return -1;
	return set_slot(vm, gpa, 0x1000, host);
}

static int set_state(kvm_vm *vm, const kvm_access *acc, char *why, size_t n)
{
	struct kvm_sregs sr;
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sr) < 0) {
		kvm_common_say(why, n, "KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	bool user = acc->cpl == 3;
	sr.cs = kvm_common_seg(user ? SEL_UCODE : SEL_KCODE, 11, true);
	sr.ds = sr.es = sr.fs = sr.gs = kvm_common_seg(user ? SEL_UDATA : SEL_KDATA, 3, false);
	sr.ss = kvm_common_seg(user ? SEL_UDATA : SEL_KDATA, 3, false);
	sr.tr = (struct kvm_segment){ .base = KVM_TSS, .limit = 0x67, .selector = SEL_TSS,
				      .type = 11, .present = 1 };
	sr.ldt = (struct kvm_segment){ .unusable = 1 };
	sr.gdt.base = KVM_GDT;
	sr.gdt.limit = 0x37;
	sr.idt.base = KVM_IDT;
	sr.idt.limit = 32 * 16 - 1;
	sr.cr0 = acc->cr0;
	sr.cr3 = acc->cr3;
	sr.cr4 = acc->cr4;
	sr.efer = acc->efer;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sr) < 0) {
		kvm_common_say(why, n, "KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}

	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rbx = acc->la;
	r.rcx = acc->wbyte;
	r.r15 = ~0ull;
	r.rsp = user ? KVM_USTACK : KVM_KSTACK;
	r.rip = code_addr(acc->type == KVM_ACC_READ ? kvm_guest_do_read :
			  acc->type == KVM_ACC_WRITE ? kvm_guest_do_write : kvm_guest_do_fetch);
	if (ioctl(vm->vcpu, KVM_SET_REGS, &r) < 0) {
		kvm_common_say(why, n, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int kvm_vm_run(kvm_vm *vm, const kvm_access *acc, kvm_outcome *out, char *why, size_t n)
{
	kvm_common_install_alarm();

	memset(out, 0, sizeof(*out));
	if (set_state(vm, acc, why, n) < 0)
		return -1;
	kvm_common_arm_timer(5);
	int rc = ioctl(vm->vcpu, KVM_RUN, 0);
	int err = errno;
	kvm_common_arm_timer(0);
	if (rc < 0) {
		kvm_common_say(why, n, "KVM_RUN: %s%s", strerror(err), err == EINTR ? " (guest timed out)" : "");
		return -1;
	}
	if (vm->run->exit_reason != KVM_EXIT_HLT) {
		struct kvm_regs r;
		ioctl(vm->vcpu, KVM_GET_REGS, &r);
		kvm_common_say(why, n, "unexpected exit reason %u (rip 0x%llx%s)", vm->run->exit_reason,
		    (unsigned long long)r.rip,
		    vm->run->exit_reason == KVM_EXIT_MMIO ? ", MMIO" :
		    vm->run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? ", internal error" :
		    vm->run->exit_reason == KVM_EXIT_SHUTDOWN ? ", shutdown (triple fault)" : "");
		return -1;
	}
	struct kvm_regs r;
	if (ioctl(vm->vcpu, KVM_GET_REGS, &r) < 0) {
		kvm_common_say(why, n, "KVM_GET_REGS: %s", strerror(errno));
		return -1;
	}
	out->rbyte = (uint8_t)r.rax;
	if (r.r15 == ~0ull) {
		out->fault = false;
		out->rip = r.rip;
		uint64_t want = acc->type == KVM_ACC_READ ? code_addr(kvm_guest_read_done) + 1 :
				acc->type == KVM_ACC_WRITE ? code_addr(kvm_guest_write_done) + 1 :
				acc->la + 1;
		out->completed = acc->cpl == 0 && r.rip == want;
		return 0;
	}
	out->fault = true;
	out->vector = (unsigned)r.r15;
	out->error_code = r.r14;
	out->cr2 = r.r13;
	out->rip = r.r12;
	if (acc->cpl == 3 && out->vector == 13 && out->error_code == 0) {
		uint64_t want = acc->type == KVM_ACC_READ ? code_addr(kvm_guest_read_done) :
				acc->type == KVM_ACC_WRITE ? code_addr(kvm_guest_write_done) :
				acc->la;
		out->completed = out->rip == want;
	}
	return 0;
}

bool kvm_vm_usable(char *why, size_t n)
{
	kvm_vm *vm = kvm_vm_new(why, n);
	if (!vm)
		return false;
	/* A smoke run: a CPL 0 read of the harness's own code page must complete. */
	static unsigned char pml4[4096] __attribute__((aligned(4096)));
	memset(pml4, 0, sizeof(pml4));
	memcpy(pml4 + 8 * KVM_HARNESS_SLOT, &(uint64_t){KVM_HARNESS_PML4E}, 8);
	uint64_t cr3 = 0x100000000ull;
	kvm_outcome o;
	kvm_access a = {
		.cr0 = 0x80000033, .cr3 = cr3, .cr4 = 0x20, .efer = 0x500,
		.la = KVM_CODE + (KVM_HARNESS_SLOT ? 0 : 0), .type = KVM_ACC_READ, .cpl = 0,
	};
	bool ok = false;
	if (kvm_vm_add_page(vm, cr3, pml4) < 0)
		kvm_common_say(why, n, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	else if (kvm_vm_run(vm, &a, &o, why, n) == 0) {
		if (o.completed && o.rbyte == kvm_guest_start[0])
			ok = true;
		else
			kvm_common_say(why, n, "smoke guest did not complete its read (fault %d vector %u ec 0x%llx rip 0x%llx)",
			    o.fault, o.vector, (unsigned long long)o.error_code, (unsigned long long)o.rip);
	}
	kvm_vm_free(vm);
	return ok;
}
