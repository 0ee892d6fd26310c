/* Shadow paging under allocation failure: every allocation of a scenario fails in turn; each call fails cleanly, changes nothing, leaks nothing. */
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
#include "support/failalloc.h"

#define P VMEM_PTE_P
#define RW VMEM_PTE_RW
#define US VMEM_PTE_US
#define PS VMEM_PTE_PS
#define RAM 0x100000ull

static failalloc fa;
static uint8_t *ram;

static uint64_t *g64(uint64_t gpa) { return (uint64_t *)(void *)(ram + gpa); }

/* Two 4-level address spaces sharing a PT, a PAE one, a 32-bit one. */
static void build_guest(void)
{
	memset(ram, 0, RAM);
	*g64(0x1000) = 0x2000 | P | RW | US;
	*g64(0x5000) = 0x2000 | P | RW | US;
	*g64(0x5000 + 8 * 300) = 0x2000 | P | RW | US;
	*g64(0x2000) = 0x3000 | P | RW | US;
	for (unsigned i = 0; i < 8; i++)
		*g64(0x3000 + 8 * i) = 0x4000 | P | RW | US;
	*g64(0x3000 + 8 * 9) = P | RW | PS;           /* 2 MiB at 0 */
	for (unsigned i = 0; i < 16; i++)
		*g64(0x4000 + 8 * i) = (0x10000 + 0x1000ull * i) | P | RW | US;
	*g64(0x6000 + 8 * 2) = 0x3000 | P;            /* PAE PDPT at 0x6000 */
	*(uint32_t *)(void *)(ram + 0x7000 + 4 * 1) = 0x8000 | (uint32_t)(P | RW | US); /* 32-bit PD */
	*(uint32_t *)(void *)(ram + 0x8000) = 0x11000 | (uint32_t)(P | RW | US);
}

static vmem_regs regs_of(int kind)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	if (kind <= 1) {
		r.cr4 = VMEM_CR4_PAE;
		r.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
		r.cr3 = kind ? 0x5000 : 0x1000;
	} else if (kind == 2) {
		r.cr4 = VMEM_CR4_PAE;
		r.cr3 = 0x6000;
	} else {
		r.cr3 = 0x7000;
	}
	return r;
}

struct step { int kind; int regs; uint64_t addr; unsigned acc; };
static const struct step steps[] = {
	{ 0, 0, 0, 0 }, { 1, 0, 0x0, VMEM_ACC_READ }, { 1, 0, 0x7000, VMEM_ACC_WRITE },
	{ 1, 0, 0x1200000, VMEM_ACC_WRITE }, { 1, 0, 0x601000, VMEM_ACC_READ }, { 0, 1, 0, 0 },
	{ 1, 0, 0x3000, VMEM_ACC_READ }, { 1, 0, (300ull << 39) | 0x5000, VMEM_ACC_READ },
	{ 2, 0, 0x4008, 0 }, { 0, 2, 0, 0 }, { 1, 0, 0x80002000, VMEM_ACC_WRITE },
	{ 0, 3, 0, 0 }, { 1, 0, 0x400000, VMEM_ACC_READ }, { 0, 0, 0, 0 }, { 1, 0, 0x2000, VMEM_ACC_READ },
	{ 2, 0, 0x1000, 0 }, { 1, 0, 0x4000, VMEM_ACC_WRITE },
};

static vmem_err do_step(vmem_shadow *sh, const struct step *s)
{
	if (s->kind == 0) {
		vmem_regs r = regs_of(s->regs);
		return vmem_shadow_set_regs(sh, &r);
	}
	if (s->kind == 1) {
		vmem_shadow_fault_result res;
		return vmem_shadow_fault(sh, s->addr, s->acc, &res);
	}
	uint64_t v = 0;
	return vmem_shadow_emulate_write(sh, s->addr, &v, 8);
}

static int sum_pages(void *arg, void *page, uint64_t phys)
{
	(void)page;
	*(uint64_t *)arg += phys * 31 + 7;
	return 0;
}

/* What a failed call must leave as it was. */
struct picture { uint64_t root, tables, fills; uint8_t mem[0x10000]; };
static void take(vmem_shadow *sh, struct picture *p)
{
	vmem_shadow_stats st;
	vmem_shadow_get_stats(sh, &st);
	p->root = vmem_shadow_root(sh);
	p->tables = 0;
	vmem_shadow_foreach_table(sh, sum_pages, &p->tables);
	p->fills = st.fills;
	memcpy(p->mem, ram, sizeof(p->mem));
}

static void t_every_allocation(void **st)
{
	(void)st;
	static struct picture before, after;
	ram = aligned_alloc(4096, RAM);
	assert_non_null(ram);
	unsigned runs = 0;
	for (long k = 0;; k++) {
		build_guest();
		failalloc_init(&fa);
		vmem_gmem *gm;
		assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
		assert_int_equal(vmem_gmem_add_ram(gm, 0, RAM, ram, 0), VMEM_OK);
		vmem_shadow_config c = { .alloc = &fa.a, .gmem = gm, .host_levels = 4,
					 .max_pages = (k & 1) ? 8 : 64, .max_roots = 2 };
		vmem_shadow *sh = NULL;
		failalloc_fail_in(&fa, k);
		vmem_err e = vmem_shadow_new(&c, &sh);
		bool hit = false;
		if (e) {
			assert_int_equal(e, VMEM_E_NOMEM);
			assert_int_equal(fa.live, 0);
			failalloc_never(&fa);
			hit = true;
			assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_OK);
		}
		for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			take(sh, &before);
			e = do_step(sh, &steps[i]);
			if (e == VMEM_E_NOMEM) {
				hit = true;
				char why[256];
				if (vmem_shadow_audit(sh, why, sizeof(why)))
					fail_msg("k=%ld step %u: audit after NOMEM: %s", k, i, why);
				take(sh, &after);
				assert_int_equal(after.root, before.root);
				assert_int_equal(after.fills, before.fills);
				assert_memory_equal(after.mem, before.mem, sizeof(after.mem)); /* no A/D written */
				failalloc_never(&fa);
				e = do_step(sh, &steps[i]);
			}
			assert_int_equal(e, VMEM_OK);
			char why[256];
			if (vmem_shadow_audit(sh, why, sizeof(why)))
				fail_msg("k=%ld step %u: audit: %s", k, i, why);
		}
		vmem_shadow_free(sh);
		vmem_gmem_free(gm);
		assert_int_equal(fa.live, 0);
		assert_int_equal(fa.bad_frees, 0);
		runs++;
		if (!hit && fa.failed == 0)
			break; /* k is past the last allocation of the scenario */
	}
	assert_true(runs > 10);
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(t_every_allocation) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
