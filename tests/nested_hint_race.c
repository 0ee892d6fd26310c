/* Nested walk vs a concurrent walker of the same EPT context over another host memory map: the hint it stores between two instructions must not make the walk read outside its own regions (x86-64 Linux: single-stepped). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <cmocka.h>
#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include "support/nested_same.h"
#include "support/testmmu.h"

/* One backing buffer of 1 MiB, two maps of it (vmem_gmem), one EPT context.
 *   A: [0, 4K) MMIO, [4K, 1M) RAM, [1M, 1M + 4K) MMIO (no host buffer);
 *   B: [0, 4K), [4K, 8K), [8K, 1M) RAM: the EPT root (HPA 0x2000) is in
 *      region 1 of A, in region 2 of B.
 * A walker of B therefore stores 2 in the context's root-region hint
 * (ept_fast_view), which for A names the MMIO region at 1 MiB. The hint is
 * a guess any thread may rewrite at any time (relaxed, the API takes the
 * context const); a walk may only ever use a value it has checked.
 * EPT (4 levels, WB, no A/D): PML4 0x2000 -> PDPT 0x3000 -> PD 0x4000 ->
 * PT 0x5000, whose entry 0x10 maps GPA 0x10000 (the guest's PML4) to HPA
 * 0x100000: MMIO in A. Guest: 4-level paging, CR3 0x10000. */
#define RAM (1u << 20)
#define EPTP (0x2000 | 0x1e)
#define MMIO_HPA 0x100000ull

static uint8_t *ram;
static vmem_gmem *gma, *gmb;
static vmem_ept_mmu *ept;
static vmem_mmu *mmu;

static int mmio_zero(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	(void)opaque, (void)gpa, (void)size;
	if (!is_write)
		*val = 0;
	return 0;
}

static void put(uint64_t a, uint64_t v) { memcpy(ram + a, &v, 8); }

/* The other walker: an EPT translation over B (it stores B's root region
 * index, 2, in the hint), or over A (1: the hint as the walk found it). */
static void ept_walk_over(vmem_gmem *gm)
{
	vmem_ept_access acc = { .type = VMEM_EPT_READ };
	vmem_ept_result r;
	assert_int_equal(vmem_ept_walk(ept, gm, 0x10000, &acc, VMEM_EPT_NO_AD, &r, NULL), VMEM_OK);
}

/* Single-stepping (EFLAGS.TF): the handler counts instructions and, at
 * instruction inject_at, runs the other walker, then stops stepping. The
 * kernel clears TF while the handler runs and restores the context's on
 * return. */
static volatile long steps, inject_at;

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)si;
	ucontext_t *uc = ctx;
	if (++steps == inject_at) {
		ept_walk_over(gmb);
		uc->uc_mcontext.gregs[REG_EFL] &= ~0x100ll;
	}
}

static __attribute__((noinline)) vmem_err stepped_walk(long at, vmem_nested_result *res)
{
	steps = 0;
	inject_at = at;
	/* (built with -mno-red-zone: the pushes below rsp touch nothing live) */
	__asm__ volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq" ::: "memory", "cc");
	vmem_err e = vmem_nested_walk(mmu, ept, gma, 0x1000, VMEM_ACC_READ, 0, res, NULL);
	__asm__ volatile("pushfq\n\tandq $-0x101, (%%rsp)\n\tpopfq" ::: "memory", "cc");
	return e;
}

static int setup(void **state)
{
	(void)state;
	ram = aligned_alloc(4096, RAM);
	assert_non_null(ram);
	memset(ram, 0, RAM);
	assert_int_equal(vmem_gmem_new(NULL, &gma), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gma, 0, 0x1000, mmio_zero, NULL), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gma, 0x1000, RAM - 0x1000, ram + 0x1000, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gma, MMIO_HPA, 0x1000, mmio_zero, NULL), VMEM_OK);
	assert_int_equal(vmem_gmem_new(NULL, &gmb), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gmb, 0, 0x1000, ram, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gmb, 0x1000, 0x1000, ram + 0x1000, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gmb, 0x2000, RAM - 0x2000, ram + 0x2000, 0), VMEM_OK);
	put(0x2000, 0x3000 | 7);
	put(0x3000, 0x4000 | 7);
	put(0x4000, 0x5000 | 7);
	put(0x5000 + 0x10 * 8, MMIO_HPA | 0x30 | 7);
	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	assert_int_equal(vmem_ept_mmu_new(NULL, EPTP, &caps, &ept), VMEM_OK);
	mmu = testmmu_4level(0x10000, 48);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGTRAP, &sa, NULL), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	signal(SIGTRAP, SIG_DFL);
	vmem_mmu_free(mmu);
	vmem_ept_mmu_free(ept);
	vmem_gmem_free(gma);
	vmem_gmem_free(gmb);
	free(ram);
	return 0;
}

/* Worked by hand (SDM vol. 3C 29.3.3, vol. 3A 4.5, 4.7): the guest's PML4E
 * (GPA 0x10000) translates through EPT to HPA 0x100000, MMIO in A, which
 * reads 0: not present, so a supervisor read faults with error code 0. The
 * traced walk (the C full walk) says the same; whatever the other walker
 * stores in the hint, at whichever instruction, the answer stays that. */
static void hint_rewritten_mid_walk(void **state)
{
	(void)state;
	vmem_nested_result ref, res;
	vmem_nested_trace tr;
	ept_walk_over(gma);
	assert_int_equal(vmem_nested_walk(mmu, ept, gma, 0x1000, VMEM_ACC_READ, 0, &ref, &tr), VMEM_OK);
	assert_int_equal(ref.status, VMEM_NESTED_PF);
	assert_int_equal(ref.error_code, 0);
	/* A first run without the other walker counts the instructions. */
	ept_walk_over(gma);
	assert_int_equal(stepped_walk(0, &res), VMEM_OK);
	assert_true(nested_same(&res, &ref));
	long total = steps;
	if (total == 0) /* no single-step traps (an emulator, Valgrind): nothing was tested */
		fail_msg("EFLAGS.TF raised no SIGTRAP: the test cannot run here");
	/* The assembly runs under 300 instructions before it returns or hands
	 * over to the C (which reads the hint once): every point of it. */
	long last = total < 400 ? total : 400;
	for (long at = 1; at <= last; at++) {
		ept_walk_over(gma);
		memset(&res, 0x5a, sizeof(res));
		assert_int_equal(stepped_walk(at, &res), VMEM_OK);
		if (!nested_same(&res, &ref))
			fail_msg("other walker at instruction %ld: status %u, ref %u", at, res.status, ref.status);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hint_rewritten_mid_walk),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
