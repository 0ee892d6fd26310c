/* After a slot is removed or replaced, walks (single and batch, window and hint paths) never read the old host buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

#define PG 4096ull
#define SLOT (16 * PG)
#define TBL (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | (1ull << 5)) /* A set: no A/D update */
#define LEAF (TBL | (1ull << 6))                                      /* and D */
#define LA 0x5000ull

/* A slot buffer for gpa `base` whose 4-level tables (PML4 at base + 0x1000)
 * map LA to `frame`. */
static uint8_t *tables(uint64_t base, uint64_t frame)
{
	uint8_t *b = aligned_alloc(PG, SLOT);
	assert_non_null(b);
	memset(b, 0, SLOT);
	uint64_t e[4] = { (base + 0x2000) | TBL, (base + 0x3000) | TBL, (base + 0x4000) | TBL, frame | LEAF };
	for (unsigned i = 0; i < 3; i++)
		memcpy(b + 0x1000 * (i + 1), &e[i], 8);
	memcpy(b + 0x4000 + 8 * ((LA >> 12) & 511), &e[3], 8);
	return b;
}

/* Walk LA (single and batch): OK at `frame`, or BAD_GPA when frame is 0. */
static void expect(const vmem_mmu *m, vmem_gmem *gm, uint64_t frame)
{
	vmem_walk_result r[3];
	uint64_t la[3] = { LA, LA + 8, LA + 0xff8 };
	for (int round = 0; round < 2; round++) { /* the second one takes the hinted paths */
		assert_int_equal(vmem_walk(m, gm, LA, VMEM_ACC_READ, 0, &r[0]), VMEM_OK);
		if (frame) {
			assert_int_equal(r[0].status, VMEM_WALK_OK);
			assert_true(r[0].gpa == frame);
		} else {
			assert_int_equal(r[0].status, VMEM_WALK_BAD_GPA);
		}
		assert_int_equal(vmem_walk_batch(m, gm, la, 3, VMEM_ACC_READ, 0, r), VMEM_OK);
		for (int i = 0; i < 3; i++) {
			assert_int_equal(r[i].status, frame ? VMEM_WALK_OK : VMEM_WALK_BAD_GPA);
			if (frame)
				assert_true(r[i].gpa == frame + (la[i] & 0xfff));
		}
	}
}

static void swap_at(uint64_t base)
{
	vmem_regs rg;
	vmem_regs_init(&rg);
	rg.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	rg.cr4 = VMEM_CR4_PAE;
	rg.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	rg.cr3 = base + 0x1000;
	vmem_mmu *m;
	assert_int_equal(vmem_mmu_new(NULL, &rg, &m), VMEM_OK);
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	uint8_t *a = tables(base, 0x111000), *b = tables(base, 0x222000), *c = tables(0x40000, 0x333000);

	assert_int_equal(vmem_gmem_add_ram(gm, base, SLOT, a, 0), VMEM_OK);
	expect(m, gm, 0x111000);
	/* Gone: no walk may still find the tables in a. */
	assert_int_equal(vmem_gmem_remove(gm, base), VMEM_OK);
	expect(m, gm, 0);
	/* Back with other contents, behind a new slot that shifts its index. */
	assert_int_equal(vmem_gmem_add_ram(gm, base ? 0x40000 : 0x100000, SLOT, c, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, base, SLOT, b, 0), VMEM_OK);
	expect(m, gm, 0x222000);
	/* And a replaced the other way round. */
	assert_int_equal(vmem_gmem_remove(gm, base), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, base, SLOT, a, 0), VMEM_OK);
	expect(m, gm, 0x111000);

	vmem_gmem_free(gm);
	vmem_mmu_free(m);
	free(a);
	free(b);
	free(c);
}

/* Slot at gpa 0: the walker's window. */
static void test_window_slot_replaced(void **state)
{
	(void)state;
	swap_at(0);
}

/* Slot elsewhere: the region hint. */
static void test_hinted_slot_replaced(void **state)
{
	(void)state;
	swap_at(0x100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_slot_replaced),
		cmocka_unit_test(test_hinted_slot_replaced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
