/* Shadow-paging test environment: guest RAM with read-only and no-exec slots, a 4-level guest, the processor's view of a shadow leaf. */
#ifndef VMEM_TESTS_SHADOW_ENV_H
#define VMEM_TESTS_SHADOW_ENV_H
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/pte.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>

/* Guest memory: 4 MiB of RAM at 0, 4 read-only pages at 4 MiB, 4 no-exec pages after them. */
#define RAM_SIZE 0x400000ull
#define RO_GPA 0x400000ull
#define NX_GPA 0x404000ull
#define P VMEM_PTE_P
#define RW VMEM_PTE_RW
#define US VMEM_PTE_US
#define A VMEM_PTE_A
#define D VMEM_PTE_D
#define PS VMEM_PTE_PS
#define XD VMEM_PTE_XD

struct env {
	uint8_t *ram, *ro, *nx;
	vmem_gmem *gm;
	vmem_shadow *sh;
	vmem_regs regs;
};

static inline uint64_t hpa(struct env *e, uint64_t gpa)
{
	if (gpa >= NX_GPA)
		return (uint64_t)(uintptr_t)(e->nx + (gpa - NX_GPA));
	if (gpa >= RO_GPA)
		return (uint64_t)(uintptr_t)(e->ro + (gpa - RO_GPA));
	return (uint64_t)(uintptr_t)(e->ram + gpa);
}

static inline uint64_t *g64(struct env *e, uint64_t gpa) { return (uint64_t *)(uintptr_t)hpa(e, gpa); }
static inline uint32_t *g32(struct env *e, uint64_t gpa) { return (uint32_t *)(uintptr_t)hpa(e, gpa); }

static inline void audit(struct env *e)
{
	char why[256];
	vmem_err rc = vmem_shadow_audit(e->sh, why, sizeof(why));
	if (rc)
		fail_msg("audit: %s", why);
}

static inline void env_init(struct env *e, unsigned host_levels, unsigned pages)
{
	memset(e, 0, sizeof(*e));
	e->ram = aligned_alloc(4096, RAM_SIZE);
	e->ro = aligned_alloc(4096, 0x4000);
	e->nx = aligned_alloc(4096, 0x4000);
	assert_non_null(e->ram);
	memset(e->ram, 0, RAM_SIZE);
	memset(e->ro, 0, 0x4000);
	memset(e->nx, 0, 0x4000);
	assert_int_equal(vmem_gmem_new(NULL, &e->gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(e->gm, 0, RAM_SIZE, e->ram, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(e->gm, RO_GPA, 0x4000, e->ro, VMEM_SLOT_READONLY), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(e->gm, NX_GPA, 0x4000, e->nx, VMEM_SLOT_NOEXEC), VMEM_OK);
	vmem_shadow_config c = { .gmem = e->gm, .host_levels = host_levels, .max_pages = pages, .max_roots = 4 };
	assert_int_equal(vmem_shadow_new(&c, &e->sh), VMEM_OK);
	audit(e);
}

static inline void env_fini(struct env *e)
{
	audit(e);
	vmem_shadow_free(e->sh);
	vmem_gmem_free(e->gm);
	free(e->ram);
	free(e->ro);
	free(e->nx);
}

/* 4-level guest: PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000; la 0x400000 + i*4K -> PT[i]. */
#define LA 0x400000ull
static inline void guest_4level(struct env *e, uint64_t cr0_extra, uint64_t cr4_extra)
{
	*g64(e, 0x1000) = 0x2000 | P | RW | US;
	*g64(e, 0x2000) = 0x3000 | P | RW | US;
	*g64(e, 0x3000 + 2 * 8) = 0x4000 | P | RW | US;
	vmem_regs_init(&e->regs);
	e->regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | cr0_extra;
	e->regs.cr4 = VMEM_CR4_PAE | cr4_extra;
	e->regs.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	e->regs.cr3 = 0x1000;
	assert_int_equal(vmem_shadow_set_regs(e->sh, &e->regs), VMEM_OK);
}

static inline void set_pte(struct env *e, unsigned i, uint64_t v) { *g64(e, 0x4000 + 8 * i) = v; }

/* The processor's view: read the shadow tables (pages are identity-physical here). */
static inline uint64_t sleaf(struct env *e, uint64_t la, unsigned levels)
{
	uint64_t t = vmem_shadow_root(e->sh);
	for (unsigned L = levels; L >= 1; L--) {
		uint64_t v = ((uint64_t *)(uintptr_t)t)[(la >> (12 + 9 * (L - 1))) & 511];
		if (L == 1 || !(v & P))
			return L == 1 ? v : 0;
		t = v & 0x000ffffffffff000ull;
	}
	return 0;
}

static inline vmem_shadow_fault_result fault(struct env *e, uint64_t la, unsigned acc)
{
	vmem_shadow_fault_result r;
	assert_int_equal(vmem_shadow_fault(e->sh, la, acc, &r), VMEM_OK);
	audit(e);
	return r;
}

/* The usual start: a 4-level guest (CR0.WP = 1), PT[0] -> 0x10000 writable and dirty, filled by a read at LA. */
static inline void env_filled(struct env *e, uint64_t cr4_extra)
{
	env_init(e, 4, 64);
	guest_4level(e, VMEM_CR0_WP, cr4_extra);
	set_pte(e, 0, 0x10000 | P | RW | D);
	assert_int_equal(fault(e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
}

#endif
