/* Unit tests for swap entries: the bit layout of pte.h checked by hand, round trips, rejects, and the walker's report. */
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

/* Fields of the layout documented in pte.h, written out independently. */
#define F_OFFSET 0x000ffffffffff000ull /* bits 51:12 */
#define F_TYPE   0x07f0000000000000ull /* bits 58:52 */
#define F_LOW    0x00000000000001ffull /* bits 8:0: P and the bits a CPU may touch */

static void test_constants(void **state)
{
	(void)state;
	assert_int_equal(VMEM_SWAP_TYPE_MAX, 127);
	assert_true(VMEM_SWAP_OFFSET_MAX == 0xffffffffffull);
	assert_true(VMEM_SWAP_MARKER == 0x200);
}

/* Hand-worked encodings (the inverted offset is (2^40 - 1) - offset). */
static void test_encode_by_hand(void **state)
{
	(void)state;
	static const struct {
		unsigned type;
		uint64_t offset, pte;
	} cases[] = {
		/* offset 0 -> inverted 0xff_ffff_ffff -> bits 51:12 all ones */
		{ 0, 0, 0x000ffffffffff200ull },
		/* max offset -> inverted 0 -> only the marker */
		{ 0, 0xffffffffffull, 0x0000000000000200ull },
		/* type 127 at bits 58:52 = 0x07f0_0000_0000_0000 */
		{ 127, 0xffffffffffull, 0x07f0000000000200ull },
		{ 127, 0, 0x07fffffffffff200ull },
		/* type 1, offset 1: inverted 0xff_ffff_fffe -> 0xf_ffff_ffff_e000 */
		{ 1, 1, 0x001fffffffffe200ull },
		/* 0xff_ffff_ffff - 0x01_2345_6789 = 0xfe_dcba_9876 */
		{ 5, 0x123456789ull, 0x005fedcba9876200ull },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vmem_swap_loc loc = { cases[i].type, cases[i].offset };
		uint64_t pte = 0;
		assert_int_equal(vmem_swap_encode(loc, &pte), VMEM_OK);
		assert_true(pte == cases[i].pte);
		vmem_swap_loc back = { 999, 999 };
		assert_int_equal(vmem_swap_decode(cases[i].pte, &back), VMEM_OK);
		assert_int_equal(back.type, cases[i].type);
		assert_true(back.offset == cases[i].offset);
		assert_true(vmem_swap_is_entry(cases[i].pte));
	}
}

static void check_layout(uint64_t pte, vmem_swap_loc loc)
{
	assert_int_equal(pte & 1, 0);                       /* P = 0 */
	assert_true((pte & 0x1feull) == 0);                 /* bits 8:1 zero */
	assert_true(pte & (1ull << 9));                     /* marker */
	assert_true((pte & 0xc00ull) == 0);                 /* bits 11:10 zero */
	assert_true((pte >> 59) == 0);                      /* bits 63:59 zero */
	assert_true(((pte & F_TYPE) >> 52) == loc.type);
	assert_true(((pte & F_OFFSET) >> 12) == (0xffffffffffull ^ loc.offset));
}

static void test_round_trip_boundaries(void **state)
{
	(void)state;
	static const unsigned types[] = { 0, 1, 2, 63, 64, 126, 127 };
	static const uint64_t offsets[] = {
		0, 1, 2, 0xfff, 0x1000, 1ull << 20, (1ull << 38) - 1, 1ull << 38,
		1ull << 39, 0xfffffffffeull, 0xffffffffffull,
	};
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (size_t o = 0; o < sizeof(offsets) / sizeof(offsets[0]); o++) {
			vmem_swap_loc loc = { types[t], offsets[o] }, back = { 0, 0 };
			uint64_t pte = 0;
			assert_int_equal(vmem_swap_encode(loc, &pte), VMEM_OK);
			check_layout(pte, loc);
			assert_true(vmem_swap_is_entry(pte));
			assert_int_equal(vmem_swap_decode(pte, &back), VMEM_OK);
			assert_int_equal(back.type, loc.type);
			assert_true(back.offset == loc.offset);
		}
	}
	/* A pseudo-random sweep (xorshift64, fixed seed). */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		vmem_swap_loc loc = { (unsigned)(x >> 57), x & 0xffffffffffull }, back;
		uint64_t pte = 0;
		assert_int_equal(vmem_swap_encode(loc, &pte), VMEM_OK);
		check_layout(pte, loc);
		assert_int_equal(vmem_swap_decode(pte, &back), VMEM_OK);
		assert_int_equal(back.type, loc.type);
		assert_true(back.offset == loc.offset);
	}
}

static void test_encode_rejects(void **state)
{
	(void)state;
	uint64_t pte = 0x1234;
	vmem_swap_loc big_type = { 128, 0 }, huge_type = { ~0u, 0 };
	vmem_swap_loc big_off = { 0, 1ull << 40 }, huge_off = { 0, ~0ull };
	vmem_swap_loc ok = { 0, 0 };
	assert_int_equal(vmem_swap_encode(big_type, &pte), VMEM_E_INVAL);
	assert_int_equal(vmem_swap_encode(huge_type, &pte), VMEM_E_INVAL);
	assert_int_equal(vmem_swap_encode(big_off, &pte), VMEM_E_INVAL);
	assert_int_equal(vmem_swap_encode(huge_off, &pte), VMEM_E_INVAL);
	assert_true(pte == 0x1234); /* untouched on error */
	assert_int_equal(vmem_swap_encode(ok, NULL), VMEM_E_INVAL);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	vmem_swap_loc loc = { 3, 0x42 }, out;
	uint64_t good = 0;
	assert_int_equal(vmem_swap_encode(loc, &good), VMEM_OK);
	assert_int_equal(vmem_swap_decode(good, NULL), VMEM_E_INVAL);

	/* Present entries are never swap entries. */
	assert_false(vmem_swap_is_entry(good | 1));
	assert_int_equal(vmem_swap_decode(good | 1, &out), VMEM_E_INVAL);
	/* Any of bits 8:1 set (A/D errata, PS...): rejected. */
	for (int b = 1; b <= 8; b++) {
		assert_false(vmem_swap_is_entry(good | (1ull << b)));
		assert_int_equal(vmem_swap_decode(good | (1ull << b), &out), VMEM_E_INVAL);
	}
	/* Bits that must be zero elsewhere: 11:10 and 63:59. */
	static const int zero_bits[] = { 10, 11, 59, 60, 61, 62, 63 };
	for (size_t i = 0; i < sizeof(zero_bits) / sizeof(zero_bits[0]); i++) {
		uint64_t bad = good | (1ull << zero_bits[i]);
		assert_false(vmem_swap_is_entry(bad));
		assert_int_equal(vmem_swap_decode(bad, &out), VMEM_E_INVAL);
	}
	/* No marker: the all-zero "none" entry and a marker-less value. */
	assert_false(vmem_swap_is_entry(0));
	assert_int_equal(vmem_swap_decode(0, &out), VMEM_E_INVAL);
	assert_false(vmem_swap_is_entry(good & ~VMEM_SWAP_MARKER));
	assert_int_equal(vmem_swap_decode(good & ~VMEM_SWAP_MARKER, &out), VMEM_E_INVAL);
	/* Every type/offset bit pattern with the marker is a valid entry. */
	assert_true(vmem_swap_is_entry(0x200 | F_TYPE | F_OFFSET));
}

/* L1TF: a small offset stores its complement, so the frame bits 51:12 name an
 * address at or above 2^50, beyond what any populated MAXPHYADDR <= 50 reaches. */
static void test_small_offsets_point_high(void **state)
{
	(void)state;
	for (uint64_t off = 0; off < 4096; off++) {
		for (unsigned type = 0; type <= VMEM_SWAP_TYPE_MAX; type += 127) {
			vmem_swap_loc loc = { type, off };
			uint64_t pte = 0;
			assert_int_equal(vmem_swap_encode(loc, &pte), VMEM_OK);
			uint64_t addr = pte & F_OFFSET;
			assert_true(addr >= (1ull << 50));
			assert_true(addr >= 0x000fffffff000000ull); /* offset < 2^12: bits 51:24 all set */
		}
	}
	/* The last offset that still points at or above 2^50: inverted value 2^38. */
	vmem_swap_loc edge = { 0, 0xffffffffffull - (1ull << 38) };
	uint64_t pte = 0;
	assert_int_equal(vmem_swap_encode(edge, &pte), VMEM_OK);
	assert_true((pte & F_OFFSET) == (1ull << 50));
}

/* ---- walk level: a tiny hand-built 4-level table ---- */

#define PG 4096u
#define NPAGES 8
/* PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000, data page 0x5000. */
#define LA_TEST ((1ull << 39) | (2ull << 30) | (3ull << 21) | (4ull << 12) | 0x123)

struct walk_env {
	uint8_t *mem;
	vmem_gmem *gm;
	vmem_mmu *mmu;
};

static void put64(struct walk_env *e, uint64_t gpa, uint64_t v)
{
	memcpy(e->mem + gpa, &v, 8);
}

static uint64_t get64(struct walk_env *e, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, e->mem + gpa, 8);
	return v;
}

static int walk_setup(void **state)
{
	struct walk_env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	e->mem = aligned_alloc(PG, NPAGES * PG);
	assert_non_null(e->mem);
	memset(e->mem, 0, NPAGES * PG);
	assert_int_equal(vmem_gmem_new(NULL, &e->gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(e->gm, 0, NPAGES * PG, e->mem, 0), VMEM_OK);
	/* P | R/W | U/S = 7 at each level. */
	put64(e, 0x1000 + 8 * 1, 0x2000 | 7);
	put64(e, 0x2000 + 8 * 2, 0x3000 | 7);
	put64(e, 0x3000 + 8 * 3, 0x4000 | 7);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	r.cr4 = VMEM_CR4_PAE;
	r.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	r.cr3 = 0x1000;
	assert_int_equal(vmem_mmu_new(NULL, &r, &e->mmu), VMEM_OK);
	*state = e;
	return 0;
}

static int walk_teardown(void **state)
{
	struct walk_env *e = *state;
	vmem_mmu_free(e->mmu);
	vmem_gmem_free(e->gm);
	free(e->mem);
	free(e);
	return 0;
}

static void test_walk_present_baseline(void **state)
{
	struct walk_env *e = *state;
	put64(e, 0x4000 + 8 * 4, 0x5000 | 7);
	vmem_walk_result res;
	assert_int_equal(vmem_walk(e->mmu, e->gm, LA_TEST, VMEM_ACC_READ, VMEM_WALK_NO_AD, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_OK);
	assert_true(res.gpa == 0x5123);
	assert_int_equal(res.level, 1);
	assert_int_equal(res.info & VMEM_WINFO_SWAP, 0);
}

static void test_walk_reports_swap_pte(void **state)
{
	struct walk_env *e = *state;
	vmem_swap_loc loc = { 3, 0x42 }, back = { 0, 0 };
	uint64_t sw = 0;
	assert_int_equal(vmem_swap_encode(loc, &sw), VMEM_OK);
	put64(e, 0x4000 + 8 * 4, sw);

	vmem_walk_result res;
	vmem_walk_trace tr;
	assert_int_equal(vmem_walk_traced(e->mmu, e->gm, LA_TEST, VMEM_ACC_READ, 0, &res, &tr), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_PF);
	assert_int_equal(res.level, 1);
	assert_int_equal(res.error_code, 0); /* not present, read, supervisor */
	assert_true(res.info & VMEM_WINFO_SWAP);
	assert_true(res.entry == sw);
	assert_int_equal(vmem_swap_decode(res.entry, &back), VMEM_OK);
	assert_int_equal(back.type, 3);
	assert_true(back.offset == 0x42);
	assert_int_equal(tr.n, 4);
	assert_true(tr.e[3].gpa == 0x4020);
	assert_true(tr.e[3].value == sw);
	/* The swap entry itself is never modified by a walk. */
	assert_true(get64(e, 0x4020) == sw);

	/* User write: W and U in the error code, still a swap report. */
	assert_int_equal(vmem_walk(e->mmu, e->gm, LA_TEST, VMEM_ACC_WRITE | VMEM_ACC_USER, 0, &res),
			 VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_PF);
	assert_int_equal(res.error_code, VMEM_PFEC_W | VMEM_PFEC_U);
	assert_true(res.info & VMEM_WINFO_SWAP);
	assert_true(get64(e, 0x4020) == sw);
}

static void test_walk_swap_in_pde(void **state)
{
	struct walk_env *e = *state;
	vmem_swap_loc loc = { 127, 0xffffffffffull }, back;
	uint64_t sw = 0;
	assert_int_equal(vmem_swap_encode(loc, &sw), VMEM_OK);
	put64(e, 0x3000 + 8 * 3, sw);
	vmem_walk_result res;
	assert_int_equal(vmem_walk(e->mmu, e->gm, LA_TEST, VMEM_ACC_FETCH, 0, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_PF);
	assert_int_equal(res.level, 2);
	assert_true(res.info & VMEM_WINFO_SWAP);
	assert_int_equal(vmem_swap_decode(res.entry, &back), VMEM_OK);
	assert_int_equal(back.type, 127);
	assert_true(back.offset == 0xffffffffffull);
}

static void test_walk_not_swap(void **state)
{
	struct walk_env *e = *state;
	vmem_swap_loc loc = { 1, 7 };
	uint64_t sw = 0;
	assert_int_equal(vmem_swap_encode(loc, &sw), VMEM_OK);
	/* An all-zero entry, and swap entries damaged by an A or D bit: plain not-present. */
	const uint64_t vals[] = { 0, sw | VMEM_PTE_A, sw | VMEM_PTE_D, sw & ~VMEM_SWAP_MARKER };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		put64(e, 0x4000 + 8 * 4, vals[i]);
		vmem_walk_result res;
		assert_int_equal(vmem_walk(e->mmu, e->gm, LA_TEST, VMEM_ACC_READ, 0, &res), VMEM_OK);
		assert_int_equal(res.status, VMEM_WALK_PF);
		assert_int_equal(res.level, 1);
		assert_true(res.entry == vals[i]);
		assert_int_equal(res.info & VMEM_WINFO_SWAP, 0);
	}
}

/* PAE: a not-present PDPTE register holding a swap entry. */
static void test_walk_pae_pdpte_swap(void **state)
{
	(void)state;
	uint8_t *mem = aligned_alloc(PG, PG);
	assert_non_null(mem);
	memset(mem, 0, PG);
	vmem_gmem *gm;
	vmem_mmu *mmu;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0, PG, mem, 0), VMEM_OK);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	r.cr4 = VMEM_CR4_PAE;
	assert_int_equal(vmem_mmu_new(NULL, &r, &mmu), VMEM_OK);
	vmem_swap_loc loc = { 9, 0x1234 }, back;
	uint64_t sw = 0, pd[4] = { 0, 0, 0, 0 };
	assert_int_equal(vmem_swap_encode(loc, &sw), VMEM_OK);
	pd[2] = sw;
	vmem_mmu_set_pdptes(mmu, pd);
	vmem_walk_result res;
	assert_int_equal(vmem_walk(mmu, gm, 0x80001000ull, VMEM_ACC_READ, 0, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_PF);
	assert_int_equal(res.level, 3);
	assert_true(res.info & VMEM_WINFO_SWAP);
	assert_int_equal(vmem_swap_decode(res.entry, &back), VMEM_OK);
	assert_int_equal(back.type, 9);
	assert_true(back.offset == 0x1234);
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	free(mem);
}

/* 32-bit paging: entries are 4 bytes, and the swap layout (pte.h, README
 * "Swap entries") is defined for 64-bit entries only: the type (bits 58:52)
 * and the high offset bits (51:32) have no room. Worked by hand: encode(3,
 * 0x42) = 0x003ffffffffbd200 (inverted offset 0xff_ffff_ffbd at 51:12, type 3
 * at 52); its low half 0xfffbd200 would decode as type 0, offset
 * 0xf_ffff_0004_2, a location nobody encoded. A 4-byte not-present entry is
 * never a swap entry: its #PF carries no VMEM_WINFO_SWAP, at either level. */
static void test_walk_32bit_no_swap(void **state)
{
	(void)state;
	uint8_t *mem = aligned_alloc(PG, 2 * PG);
	assert_non_null(mem);
	memset(mem, 0, 2 * PG);
	vmem_gmem *gm;
	vmem_mmu *mmu;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0, 2 * PG, mem, 0), VMEM_OK);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	r.cr3 = 0; /* page directory at 0, page table at 0x1000 */
	assert_int_equal(vmem_mmu_new(NULL, &r, &mmu), VMEM_OK);
	vmem_swap_loc loc = { 3, 0x42 };
	uint64_t sw = 0;
	assert_int_equal(vmem_swap_encode(loc, &sw), VMEM_OK);
	assert_true(sw == 0x003ffffffffbd200ull);
	uint32_t pde = 0x1000 | 7, pte = (uint32_t)sw, bare = 0x200;
	memcpy(mem + 4 * 1, &pde, 4);     /* la 0x00400000: PDE 1 -> PT at 0x1000 */
	memcpy(mem + PG + 4 * 2, &pte, 4); /* la 0x00402000: PTE 2 */
	memcpy(mem + 4 * 3, &bare, 4);    /* la 0x00c00000: PDE 3 = bit 9 only */
	static const struct {
		uint64_t la;
		uint8_t level;
		uint32_t entry;
	} cases[] = { { 0x00402000, 1, 0xfffbd200u }, { 0x00c00000, 2, 0x200u } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vmem_walk_result res;
		assert_int_equal(vmem_walk(mmu, gm, cases[i].la, VMEM_ACC_READ, 0, &res), VMEM_OK);
		assert_int_equal(res.status, VMEM_WALK_PF);
		assert_int_equal(res.level, cases[i].level);
		assert_true(res.entry == cases[i].entry);
		assert_int_equal(res.info & VMEM_WINFO_SWAP, 0);
	}
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_encode_by_hand),
		cmocka_unit_test(test_round_trip_boundaries),
		cmocka_unit_test(test_encode_rejects),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_small_offsets_point_high),
		cmocka_unit_test_setup_teardown(test_walk_present_baseline, walk_setup, walk_teardown),
		cmocka_unit_test_setup_teardown(test_walk_reports_swap_pte, walk_setup, walk_teardown),
		cmocka_unit_test_setup_teardown(test_walk_swap_in_pde, walk_setup, walk_teardown),
		cmocka_unit_test_setup_teardown(test_walk_not_swap, walk_setup, walk_teardown),
		cmocka_unit_test(test_walk_pae_pdpte_swap),
		cmocka_unit_test(test_walk_32bit_no_swap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
