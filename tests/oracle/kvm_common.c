/* KVM plumbing both raw-KVM oracles share: memory slots, the guest CPUID model, descriptors, timeouts, teardown. */
#define _GNU_SOURCE /* sigaction, setitimer */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>
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

static void put64(unsigned char *h, uint64_t off, uint64_t v)
{
	memcpy(h + off, &v, 8);
}

void kvm_common_tables(unsigned char *h, uint64_t gdt, uint64_t idt, uint64_t tss, uint64_t code,
		       uint64_t kstack, int bp_user)
{
	/* SDM vol. 3A 3.4.5: L=1 code, flat data; 7.2.3: 64-bit TSS descriptor (type 0xb busy). */
	put64(h, gdt + 0x08, 0x00af9b000000ffffull);
	put64(h, gdt + 0x10, 0x00cf93000000ffffull);
	put64(h, gdt + 0x18, 0x00affb000000ffffull);
	put64(h, gdt + 0x20, 0x00cff3000000ffffull);
	put64(h, gdt + 0x28, 0x67ull | ((tss & 0xffffff) << 16) | (0x8bull << 40) | ((tss >> 24 & 0xff) << 56));
	put64(h, gdt + 0x30, tss >> 32);
	/* SDM 6.14.1: 64-bit interrupt gates. */
	for (uint64_t v = 0; v < 32; v++) {
		uint64_t off = code + 16 * v;
		uint64_t type = (v == 3 && bp_user) ? 0xeeull : 0x8eull;
		put64(h, idt + 16 * v, (off & 0xffff) | (0x08ull << 16) | (type << 40) | ((off >> 16 & 0xffff) << 48));
		put64(h, idt + 16 * v + 8, off >> 32);
	}
	/* TSS: RSP0 at offset 4; I/O bitmap base past the limit (no bitmap). */
	put64(h, tss + 4, kstack);
	uint16_t iomap = 0x68;
	memcpy(h + tss + 0x66, &iomap, 2);
}

void kvm_common_say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	if (!why || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
}

void kvm_common_put64(unsigned char *mem, uint64_t off, uint64_t v)
{
	memcpy(mem + off, &v, 8);
}

struct kvm_segment kvm_common_seg(uint16_t sel, uint8_t type, bool code)
{
	struct kvm_segment s = {
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = sel & 3, .db = code ? 0 : 1, .s = 1,
		.l = code ? 1 : 0, .g = 1,
	};
	return s;
}

static void on_alarm(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

void kvm_common_install_alarm(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGALRM, &sa, NULL);
}

void kvm_common_arm_timer(unsigned sec)
{
	struct itimerval it = { .it_value = { .tv_sec = sec } };
	setitimer(ITIMER_REAL, &it, NULL);
}

void kvm_common_close(int kvm, int vm, int vcpu, struct kvm_run *run, size_t run_size)
{
	if (run)
		munmap(run, run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (kvm >= 0)
		close(kvm);
}
