/* Nested walk at the edges of host memory: EPT and guest tables in heap blocks of exactly their region's size, hostile entries just past them, cases worked by hand (SDM vol. 3A 4.5, 4.7; vol. 3C 28.2.1, 29.3) and checked against the traced (C) walk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include "support/nested_same.h"
#include "support/testmmu.h"

/* Host memory: four RAM regions, each its own heap block of exactly its
 * size, so that a read one byte outside a region is caught by Valgrind in
 * the memcheck twin (and by ASan in the sanitizer build):
 *   E  [0x1000, 0x6000)   EPT tables: PDPT 0x1000, PD 0x2000, PT 0x3000,
 *                          a spare PD 0x4000, the PML4 at 0x5000 (last page);
 *   G  [0x203000, 0x206000) guest tables, 12 KiB at a base not 2M aligned;
 *   H  [0x206000, 0x207000) right after G (adjacent, another block);
 *   T  [2^40 - 4K, 2^40)  the last page EPT can address (MAXPHYADDR 40).
 * Nothing is at 0x6000 (past E) nor at 0x207000 (past H).
 * EPT (4 levels, WB, no A/D; MAXPHYADDR 40): PML4[0] -> PDPT, PDPT[0] ->
 * PD, PD[0] -> PT, which maps guest-physical pages 0..2M one by one.
 * Guest (4-level paging, MAXPHYADDR 48): CR3 0x5000 -> HPA 0x205000 (G's
 * last page); LA = 0xffffff8000001abc: PML4E 511 (G's last 8 bytes) ->
 * PDPT 0x3000 (HPA 0x203000, G's first byte), PDPTE 0 -> PD 0x4000
 * (0x204000), PDE 0 -> PT 0x5000 (the PML4's page again), PTE 1 -> page
 * 0x7000 -> HPA 0x207000 (the final access is translated, not read). */
#define E_HPA 0x1000ull
#define E_SIZE 0x5000ull
#define EPT_PDPT 0x1000ull
#define EPT_PD 0x2000ull
#define EPT_PT 0x3000ull
#define EPT_PD1 0x4000ull
#define EPT_PML4 0x5000ull
#define G_HPA 0x203000ull
#define G_SIZE 0x3000ull
#define H_HPA 0x206000ull
#define T_HPA 0xfffffff000ull
#define PAST_E 0x6000ull
#define PAST_H 0x207000ull
#define LA 0xffffff8000001abcull
#define NTBL 0x67       /* guest entry: P, R/W, U/S, A, D */
#define ERWX 0x7        /* EPT non-leaf: R, W, X */
#define ELEAF (0x30 | 7) /* EPT leaf: WB, R, W, X */

struct region {
	uint64_t hpa, size;
	uint8_t *buf;
};

struct fx {
	struct region r[4];
	vmem_gmem *host;
	vmem_ept_mmu *ept;
	vmem_mmu *mmu;
};

static void hput(struct fx *f, uint64_t hpa, uint64_t v)
{
	for (unsigned i = 0; i < 4; i++)
		if (hpa - f->r[i].hpa < f->r[i].size) {
			assert_true(hpa + 8 - f->r[i].hpa <= f->r[i].size);
			memcpy(f->r[i].buf + (hpa - f->r[i].hpa), &v, 8);
			return;
		}
	fail_msg("no region at %#llx", (unsigned long long)hpa);
}

/* EPT PT entry for the guest-physical page gpa (below 2M). */
static void ept4k(struct fx *f, uint64_t gpa, uint64_t hpa)
{
	hput(f, EPT_PT + ((gpa >> 12) & 511) * 8, hpa | ELEAF);
}

static void set_cr3(struct fx *f, uint64_t cr3)
{
	vmem_mmu_free(f->mmu);
	f->mmu = testmmu_4level(cr3, 48);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const uint64_t base[4] = { E_HPA, G_HPA, H_HPA, T_HPA }, size[4] = { E_SIZE, G_SIZE, 0x1000, 0x1000 };
	assert_int_equal(vmem_gmem_new(NULL, &f->host), VMEM_OK);
	for (unsigned i = 0; i < 4; i++) {
		f->r[i] = (struct region){ base[i], size[i], aligned_alloc(4096, size[i]) };
		assert_non_null(f->r[i].buf);
		memset(f->r[i].buf, 0, size[i]);
		assert_int_equal(vmem_gmem_add_ram(f->host, base[i], size[i], f->r[i].buf, 0), VMEM_OK);
	}
	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	caps.maxphyaddr = 40;
	assert_int_equal(vmem_ept_mmu_new(NULL, EPT_PML4 | 0x1e, &caps, &f->ept), VMEM_OK);
	hput(f, EPT_PML4, EPT_PDPT | ERWX);
	hput(f, EPT_PDPT, EPT_PD | ERWX);
	hput(f, EPT_PD, EPT_PT | ERWX);
	ept4k(f, 0x3000, 0x203000);
	ept4k(f, 0x4000, 0x204000);
	ept4k(f, 0x5000, 0x205000);
	ept4k(f, 0x7000, PAST_H);
	hput(f, 0x205ff8, 0x3000 | NTBL);
	hput(f, 0x203000, 0x4000 | NTBL);
	hput(f, 0x204000, 0x5000 | NTBL);
	hput(f, 0x205008, 0x7000 | NTBL);
	set_cr3(f, 0x5000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmem_mmu_free(f->mmu);
	vmem_ept_mmu_free(f->ept);
	vmem_gmem_free(f->host);
	for (unsigned i = 0; i < 4; i++)
		free(f->r[i].buf);
	free(f);
	return 0;
}

/* The walk without a trace (the assembly where it applies) before and
 * after the traced walk (the C full walk) has moved the hints, each
 * answering exactly as the traced one, which is returned. */
static vmem_nested_result walk(struct fx *f, uint64_t la, unsigned acc)
{
	vmem_nested_result fast1, ref, fast2;
	vmem_nested_trace tr;
	memset(&fast1, 0xa5, sizeof(fast1));
	memset(&fast2, 0x5a, sizeof(fast2));
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->host, la, acc, 0, &fast1, NULL), VMEM_OK);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->host, la, acc, 0, &ref, &tr), VMEM_OK);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->host, la, acc, 0, &fast2, NULL), VMEM_OK);
	assert_true(nested_same(&fast1, &ref));
	assert_true(nested_same(&fast2, &ref));
	return ref;
}

/* Every table at a region's edge (G's last 8 bytes and first byte), the
 * EPT's PML4 in E's last page: a 4K page at gpa 0x7abc, HPA 0x207abc. */
static void inside_at_edges(void **state)
{
	struct fx *f = *state;
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.gpa, 0x7abc);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(r.guest.entry, 0x7000 | NTBL);
	assert_int_equal(r.ept.entry, PAST_H | ELEAF);
	assert_int_equal(r.ept.level, 1);
	/* A user write: R/W, U/S and D set everywhere (SDM 4.6, 4.8), EPT W. */
	r = walk(f, LA, VMEM_ACC_USER | VMEM_ACC_WRITE);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
}

/* The guest's PDPT through EPT at H (the first byte after G, another
 * region): the same answer from H's copy of the PDPTE; one page further
 * (past H, no memory): the PDPTE's host-physical address is outside host
 * memory. */
static void guest_table_past_region(void **state)
{
	struct fx *f = *state;
	ept4k(f, 0x3000, H_HPA);
	hput(f, H_HPA, 0x4000 | NTBL);
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
	ept4k(f, 0x3000, PAST_H);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_BAD_HPA);
	assert_int_equal(r.hpa, PAST_H);
}

/* Bits above MAXPHYADDR. Guest: bit 50 of the PML4E is reserved (M = 48):
 * #PF, error code P | RSVD (0x9) for a supervisor read (SDM 4.7). EPT: bit
 * 40 of the PTE that maps the PDPT is reserved (M = 40): an EPT
 * misconfiguration at the PDPTE's guest-physical address 0x3000 (SDM
 * 29.3.3.1), not on the final access. */
static void bits_above_maxphyaddr(void **state)
{
	struct fx *f = *state;
	hput(f, 0x205ff8, (1ull << 50) | 0x3000 | NTBL);
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_PF);
	assert_int_equal(r.error_code, 0x9);
	hput(f, 0x205ff8, 0x3000 | NTBL);
	ept4k(f, 0x3000, (1ull << 40) | 0x203000);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_EPT_MISCONFIG);
	assert_int_equal(r.gpa, 0x3000);
	assert_int_equal(r.final, 0);
}

/* An EPT PD entry whose page table is the first page past E: the first
 * translation (the PML4E at gpa 0x5ff8, PT index 5) finds its EPT PTE at
 * 0x6028, outside host memory. */
static void ept_table_past_region(void **state)
{
	struct fx *f = *state;
	hput(f, EPT_PD, PAST_E | ERWX);
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_BAD_HPA);
	assert_int_equal(r.hpa, PAST_E + 5 * 8);
	assert_int_equal(r.final, 0);
}

/* A 2-MByte EPT leaf (PD index 1: gpa 0x200000 up -> HPA 0x200000) over G,
 * H and beyond: the guest's tables at gpa 0x203000-0x205000 as before; a
 * page table at gpa 0x206000 is read from H, at 0x207000 (inside the leaf,
 * past H) it is outside host memory, its PTE 1 at HPA 0x207008. */
static void ept_2m_leaf_straddles(void **state)
{
	struct fx *f = *state;
	hput(f, EPT_PD + 8, 0x200000 | 0x80 | ELEAF);
	set_cr3(f, 0x205000);
	hput(f, 0x205ff8, 0x203000 | NTBL);
	hput(f, 0x203000, 0x204000 | NTBL);
	hput(f, 0x204000, 0x205000 | NTBL);
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
	hput(f, 0x204000, 0x206000 | NTBL);
	hput(f, H_HPA + 8, 0x7000 | NTBL);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
	hput(f, 0x204000, 0x207000 | NTBL);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_BAD_HPA);
	assert_int_equal(r.hpa, PAST_H + 8);
}

/* The guest's page table at gpa 0x8000 -> T, the last page EPT can address
 * with MAXPHYADDR 40; LA's PT index 511 reads T's last 8 bytes. One page
 * higher (2^40) bit 40 is reserved: an EPT misconfiguration at the PTE's
 * guest-physical address 0x8ff8. */
static void top_of_ept_space(void **state)
{
	struct fx *f = *state;
	const uint64_t la = 0xffffff80001ffabcull;
	ept4k(f, 0x8000, T_HPA);
	hput(f, 0x204000, 0x8000 | NTBL);
	hput(f, T_HPA + 0xff8, 0x7000 | NTBL);
	vmem_nested_result r = walk(f, la, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, PAST_H + 0xabc);
	ept4k(f, 0x8000, T_HPA + 0x1000);
	r = walk(f, la, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_EPT_MISCONFIG);
	assert_int_equal(r.gpa, 0x8ff8);
}

/* The final access's EPT walk at the edges. Its page at gpa 1 GiB:
 * PDPTE 1 -> a PD past E: outside host memory (final = 1, hpa the PDE's
 * address 0x6000). PDPTE 1 -> the spare PD, whose entry 0 is a 2M leaf at
 * HPA 0x200000 (straddling G, H and nothing): HPA 0x200abc, page size the
 * guest's 4K, EPT's 2M. Its page at gpa 0xff8000000000: the EPT PML4's
 * entry 511 (E's last 8 bytes) is 0: a violation on the final access,
 * qualification read (bit 0), linear address valid (7), final (8): 0x181. */
static void final_access_edges(void **state)
{
	struct fx *f = *state;
	hput(f, 0x205008, 0x40000000 | NTBL);
	hput(f, EPT_PDPT + 8, PAST_E | ERWX);
	vmem_nested_result r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_BAD_HPA);
	assert_int_equal(r.hpa, PAST_E);
	assert_int_equal(r.final, 1);
	hput(f, EPT_PDPT + 8, EPT_PD1 | ERWX);
	hput(f, EPT_PD1, 0x200000 | 0x80 | ELEAF);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, 0x200abc);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(r.ept.page_size, 0x200000);
	assert_int_equal(r.ept.level, 2);
	hput(f, 0x205008, 0xff8000000000ull | NTBL);
	r = walk(f, LA, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.final, 1);
	assert_int_equal(r.gpa, 0xff8000000abcull);
	assert_int_equal(r.exit_qual, 0x181);
	assert_int_equal(r.linear, LA);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(inside_at_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(guest_table_past_region, setup, teardown),
		cmocka_unit_test_setup_teardown(bits_above_maxphyaddr, setup, teardown),
		cmocka_unit_test_setup_teardown(ept_table_past_region, setup, teardown),
		cmocka_unit_test_setup_teardown(ept_2m_leaf_straddles, setup, teardown),
		cmocka_unit_test_setup_teardown(top_of_ept_space, setup, teardown),
		cmocka_unit_test_setup_teardown(final_access_edges, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
