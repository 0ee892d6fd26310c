/* The walker's window at its edges: small and odd-sized slots at gpa 0, hostile entries, cases worked by hand (SDM 4.5, 4.7). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "support/testram.h"
#include "support/testmmu.h"
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

/* Guest RAM (testram) is a heap block of exactly the slot's size, so that a
 * read past it (the window must never allow one, whatever the entries say)
 * is caught by Valgrind in the memcheck twin and by ASan in the sanitizer
 * build. */
struct fx {
	uint8_t *ram;
	size_t size;
	vmem_gmem *gm;
	vmem_mmu *mmu;
};

#define TBL (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | VMEM_PTE_A) /* 0x27 */
#define LEAF (TBL | VMEM_PTE_D)                                   /* 0x67 */
#define UR (VMEM_ACC_USER | VMEM_ACC_READ)
#define UW (VMEM_ACC_USER | VMEM_ACC_WRITE)

static struct fx *fx_new(size_t size, uint64_t cr3)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->size = size;
	f->ram = testram_new(size, &f->gm);
	f->mmu = testmmu_4level(cr3, 48);
	return f;
}

static void fx_free(struct fx *f)
{
	vmem_mmu_free(f->mmu);
	testram_free(f->ram, f->gm);
	free(f);
}

static void put64(struct fx *f, uint64_t gpa, uint64_t v)
{
	assert_true(gpa + 8 <= f->size);
	testram_put64(f->ram, gpa, v);
}

static vmem_walk_result walk(struct fx *f, uint64_t la, unsigned acc)
{
	vmem_walk_result res;
	memset(&res, 0xa5, sizeof(res));
	assert_int_equal(vmem_walk(f->mmu, f->gm, la, acc, 0, &res), VMEM_OK);
	return res;
}

/* A 4 KiB slot (the smallest window): one table at gpa 0 serves as PML4,
 * PDPT, PD and PT for indexes 0; entry 0 maps page 0. */
static void four_kib_self_map(void **state)
{
	(void)state;
	struct fx *f = fx_new(4096, 0);
	put64(f, 0, 0 | LEAF);
	vmem_walk_result r = walk(f, 0x123, UR);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x123);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(r.entry, LEAF);
	/* PT index 1: entry 1 of the same table is 0: not present, user read: U/S only. */
	r = walk(f, 0x1000 | 0x45, UR);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x4);
	/* PML4 index 511 (the canonical upper half) reads the table's last
	 * entry (offset 0xff8): still in the slot. */
	put64(f, 0xff8, 0 | TBL);
	r = walk(f, 0xffffff8000000000ull | 0x10, UR);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x10);
	fx_free(f);
}

/* Entries that point outside the 4 KiB slot: the walk reports where the
 * next entry would have been and reads nothing past the slot. */
static void four_kib_hostile(void **state)
{
	(void)state;
	struct fx *f = fx_new(4096, 0);
	put64(f, 0, 0x7000 | TBL); /* PDPT at gpa 0x7000: no memory there */
	vmem_walk_result r = walk(f, 0x18ull << 30, UR); /* PDPT index 0x18 */
	assert_int_equal(r.status, VMEM_WALK_BAD_GPA);
	assert_int_equal(r.gpa, 0x7000 + 0x18 * 8);
	/* Bit 47 of the frame: legal with MAXPHYADDR 48, outside memory. */
	put64(f, 0, (1ull << 47) | TBL);
	r = walk(f, 0, UR);
	assert_int_equal(r.status, VMEM_WALK_BAD_GPA);
	assert_int_equal(r.gpa, 1ull << 47);
	/* Bit 51: reserved with MAXPHYADDR 48 (SDM 4.5): #PF with P, U/S, RSVD. */
	put64(f, 0, (1ull << 51) | TBL);
	r = walk(f, 0, UR);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x1 | 0x4 | 0x8);
	fx_free(f);
}

/* A 12 KiB slot: the window is its first 8 KiB, the root lies in the
 * third page, outside the window but inside the slot. Root 0x2000 entry 0
 * -> PDPT 0x1000, entry 0 -> PD 0x0, entry 0 -> PT 0x2000 (the root again),
 * whose entry 0 (0x1000 | TBL) is then the PTE: page 0x1000. */
static void odd_slot_root_past_window(void **state)
{
	(void)state;
	struct fx *f = fx_new(3 * 4096, 0x2000);
	put64(f, 0x2000, 0x1000 | TBL);
	put64(f, 0x1000, 0x0000 | TBL);
	put64(f, 0x0000, 0x2000 | TBL);
	vmem_walk_result r = walk(f, 0x2a, UR);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x102a);
	assert_int_equal(r.page_size, 4096);
	/* PT index 5: entry 5 of the root page is 0. */
	r = walk(f, 0x5000, UR);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x4);
	/* A user write sets D in the leaf (SDM 4.8): the same entry, also the PML4E. */
	r = walk(f, 0x2a, UW);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x102a);
	assert_int_equal(testram_get64(f->ram, 0x2000), 0x1000 | LEAF);
	fx_free(f);
}

/* A table in the window pointing just past the slot's end (64 KiB). */
static void past_slot_end(void **state)
{
	(void)state;
	struct fx *f = fx_new(16 * 4096, 0);
	put64(f, 0, 0x1000 | TBL);
	put64(f, 0x1000, 0x2000 | TBL);
	put64(f, 0x2000, 0x10000 | TBL); /* PT at 64 KiB: the first byte past the slot */
	vmem_walk_result r = walk(f, 0x3000, UR); /* PT index 3 */
	assert_int_equal(r.status, VMEM_WALK_BAD_GPA);
	assert_int_equal(r.gpa, 0x10000 + 3 * 8);
	/* One page lower it is a table: its entry 3 is 0: not present. */
	put64(f, 0x2000, 0xf000 | TBL);
	r = walk(f, 0x3000, UR);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x4);
	put64(f, 0xf000 + 3 * 8, 0xe000 | LEAF);
	r = walk(f, 0x3abc, UR);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0xeabc);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(four_kib_self_map),
		cmocka_unit_test(four_kib_hostile),
		cmocka_unit_test(odd_slot_root_past_window),
		cmocka_unit_test(past_slot_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
