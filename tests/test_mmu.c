/* Unit tests for MMU register handling: the paging mode (SDM Table 4-1), refused register states, PAE PDPTE loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

#define PG 4096u

static vmem_regs regs_for(bool pg, bool pae, bool lma, bool la57)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | (pg ? VMEM_CR0_PG : 0);
	r.cr4 = (pae ? VMEM_CR4_PAE : 0) | (la57 ? VMEM_CR4_LA57 : 0);
	r.efer = lma ? (VMEM_EFER_LME | VMEM_EFER_LMA) : 0;
	return r;
}

static vmem_regs long_regs(void)
{
	return regs_for(true, true, true, false);
}

static void test_regs_init(void **state)
{
	(void)state;
	vmem_regs r;
	memset(&r, 0xff, sizeof(r));
	vmem_regs_init(&r);
	assert_int_equal(r.cr0 & VMEM_CR0_PG, 0);
	assert_int_equal(r.maxphyaddr, 48);
	assert_true(r.gbpages);
	assert_true(r.cr3 == 0 && r.cr4 == 0 && r.efer == 0);
	assert_int_equal(vmem_regs_mode(&r), VMEM_MODE_NONE);
	vmem_regs_init(NULL);
	assert_string_equal(vmem_mode_name(VMEM_MODE_4LEVEL), "4-level");
	assert_non_null(vmem_mode_name((vmem_mode)99));
}

/* SDM vol. 3A Table 4-1, written out: which of the 16 combinations of
 * CR0.PG, CR4.PAE, EFER.LMA, CR4.LA57 is which mode, and which cannot exist
 * (LMA = LME & PG, and PG with LME needs PAE). */
static void test_mode_table(void **state)
{
	(void)state;
	static const struct {
		bool pg, pae, lma, la57;
		bool valid;
		int mode; /* -1: not defined for an impossible state */
	} t[] = {
		{ 0, 0, 0, 0, 1, VMEM_MODE_NONE },
		{ 0, 0, 0, 1, 1, VMEM_MODE_NONE },
		{ 0, 1, 0, 0, 1, VMEM_MODE_NONE },
		{ 0, 1, 0, 1, 1, VMEM_MODE_NONE },
		{ 0, 0, 1, 0, 0, VMEM_MODE_NONE }, /* LMA without PG: impossible, paging is off */
		{ 0, 0, 1, 1, 0, VMEM_MODE_NONE },
		{ 0, 1, 1, 0, 0, VMEM_MODE_NONE },
		{ 0, 1, 1, 1, 0, VMEM_MODE_NONE },
		{ 1, 0, 0, 0, 1, VMEM_MODE_32BIT },
		{ 1, 0, 0, 1, 1, VMEM_MODE_32BIT }, /* LA57 matters only with LMA */
		{ 1, 1, 0, 0, 1, VMEM_MODE_PAE },
		{ 1, 1, 0, 1, 1, VMEM_MODE_PAE },
		{ 1, 0, 1, 0, 0, -1 },              /* LMA without PAE: impossible */
		{ 1, 0, 1, 1, 0, -1 },
		{ 1, 1, 1, 0, 1, VMEM_MODE_4LEVEL },
		{ 1, 1, 1, 1, 1, VMEM_MODE_5LEVEL },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		vmem_regs r = regs_for(t[i].pg, t[i].pae, t[i].lma, t[i].la57);
		if (t[i].mode >= 0)
			assert_int_equal(vmem_regs_mode(&r), t[i].mode);
		vmem_mmu *m = (vmem_mmu *)(uintptr_t)0x1234;
		vmem_err e = vmem_mmu_new(NULL, &r, &m);
		if (t[i].valid) {
			assert_int_equal(e, VMEM_OK);
			assert_int_equal(vmem_mmu_mode(m), t[i].mode);
			assert_memory_equal(vmem_mmu_regs(m), &r, sizeof(r));
			vmem_mmu_free(m);
		} else {
			assert_int_equal(e, VMEM_E_INVAL);
			assert_ptr_equal(m, (vmem_mmu *)(uintptr_t)0x1234); /* *out untouched */
		}
	}
}

static void expect_new(const vmem_regs *r, vmem_err want)
{
	vmem_mmu *m = NULL;
	vmem_err e = vmem_mmu_new(NULL, r, &m);
	assert_int_equal(e, want);
	if (e == VMEM_OK) {
		assert_non_null(m);
		vmem_mmu_free(m);
	} else {
		assert_null(m);
	}
}

static void test_refused_states(void **state)
{
	(void)state;
	vmem_regs r;

	/* CR0.PG without CR0.PE (MOV CR0 #GP). */
	r = regs_for(true, false, false, false);
	r.cr0 &= ~VMEM_CR0_PE;
	expect_new(&r, VMEM_E_INVAL);
	r = long_regs();
	r.cr0 &= ~VMEM_CR0_PE;
	expect_new(&r, VMEM_E_INVAL);
	/* PE without PG is fine (protected mode, no paging). */
	r = regs_for(false, false, false, false);
	expect_new(&r, VMEM_OK);

	/* LMA without LME, without PAE, without PG. */
	r = long_regs();
	r.efer &= ~VMEM_EFER_LME;
	expect_new(&r, VMEM_E_INVAL);
	r = long_regs();
	r.cr4 &= ~VMEM_CR4_PAE;
	expect_new(&r, VMEM_E_INVAL);
	r = long_regs();
	r.cr0 &= ~VMEM_CR0_PG;
	expect_new(&r, VMEM_E_INVAL);
	/* LME alone with paging off is an ordinary state (before setting PG). */
	r = regs_for(false, true, false, false);
	r.efer = VMEM_EFER_LME;
	expect_new(&r, VMEM_OK);

	/* CR4.PCIDE outside IA-32e mode; fine inside it. */
	static const bool modes[][4] = {
		{ 0, 0, 0, 0 }, { 1, 0, 0, 0 }, { 1, 1, 0, 0 }, { 1, 1, 1, 0 }, { 1, 1, 1, 1 },
	};
	for (int i = 0; i < 5; i++) {
		r = regs_for(modes[i][0], modes[i][1], modes[i][2], modes[i][3]);
		r.cr4 |= VMEM_CR4_PCIDE;
		expect_new(&r, modes[i][2] ? VMEM_OK : VMEM_E_INVAL);
	}

	/* MAXPHYADDR outside 32..52. */
	static const struct {
		unsigned m;
		bool ok;
	} mp[] = { { 0, 0 }, { 31, 0 }, { 32, 1 }, { 36, 1 }, { 46, 1 }, { 52, 1 }, { 53, 0 }, { 64, 0 },
		   { 1000, 0 } };
	for (size_t i = 0; i < sizeof(mp) / sizeof(mp[0]); i++) {
		r = regs_for(false, false, false, false);
		r.maxphyaddr = mp[i].m;
		expect_new(&r, mp[i].ok ? VMEM_OK : VMEM_E_INVAL);
		r = long_regs();
		r.maxphyaddr = mp[i].m;
		expect_new(&r, mp[i].ok ? VMEM_OK : VMEM_E_INVAL);
	}

	/* CR3 bits MAXPHYADDR..62 are reserved in IA-32e mode (MOV CR3 #GP). */
	static const struct {
		unsigned m, bit;
		bool ok;
	} cr3[] = {
		{ 48, 12, 1 }, { 48, 47, 1 }, { 48, 48, 0 }, { 48, 51, 0 }, { 48, 52, 0 }, { 48, 62, 0 },
		{ 52, 51, 1 }, { 52, 52, 0 }, { 32, 31, 1 }, { 32, 32, 0 }, { 36, 35, 1 }, { 36, 36, 0 },
	};
	for (size_t i = 0; i < sizeof(cr3) / sizeof(cr3[0]); i++) {
		for (int la57 = 0; la57 < 2; la57++) {
			r = regs_for(true, true, true, la57);
			r.maxphyaddr = cr3[i].m;
			r.cr3 = 0x1000 | (1ull << cr3[i].bit);
			expect_new(&r, cr3[i].ok ? VMEM_OK : VMEM_E_INVAL);
		}
	}
	/* With PCIDE, CR3[11:0] is the PCID: not reserved. */
	r = long_regs();
	r.cr4 |= VMEM_CR4_PCIDE;
	r.cr3 = 0x1000 | 0xfff;
	expect_new(&r, VMEM_OK);

	/* CR4.PKS: valid, not modelled. */
	r = long_regs();
	r.cr4 |= VMEM_CR4_PKS;
	expect_new(&r, VMEM_E_UNSUPPORTED);
	/* PKE (user keys) is modelled. */
	r = long_regs();
	r.cr4 |= VMEM_CR4_PKE;
	expect_new(&r, VMEM_OK);

	/* NULL arguments. */
	vmem_mmu *m = NULL;
	r = long_regs();
	assert_int_equal(vmem_mmu_new(NULL, NULL, &m), VMEM_E_INVAL);
	assert_int_equal(vmem_mmu_new(NULL, &r, NULL), VMEM_E_INVAL);
	vmem_mmu_free(NULL);
	assert_null(vmem_mmu_regs(NULL));
	assert_int_equal(vmem_mmu_mode(NULL), VMEM_MODE_NONE);
}

/* EFER.LME = 1 with CR0.PG = 1 means LMA = 1 (SDM 2.2.1, 9.8.5); VM entry
 * refuses LME != LMA when PG = 1 (SDM vol. 3C 27.3.1.1). A register state with
 * LME and PG but not LMA therefore cannot exist. */
static void test_lme_pg_without_lma(void **state)
{
	(void)state;
	vmem_regs r = regs_for(true, true, false, false);
	r.efer = VMEM_EFER_LME;
	expect_new(&r, VMEM_E_INVAL);
	r = regs_for(true, false, false, false);
	r.efer = VMEM_EFER_LME;
	expect_new(&r, VMEM_E_INVAL);
}

/* ---- set_regs keeps the previous state on error ---- */

/* A 4-level table: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000 -> page 0x6000.
 * la 0x201abc: PML4 index 0, PDPT index 0, PD index 1, PT index 1, offset 0xabc. */
#define LA_4L 0x201abcull

struct env {
	uint8_t *mem;
	vmem_gmem *gm;
};

static void env_new(struct env *e)
{
	e->mem = aligned_alloc(PG, 8 * PG);
	assert_non_null(e->mem);
	memset(e->mem, 0, 8 * PG);
	assert_int_equal(vmem_gmem_new(NULL, &e->gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(e->gm, 0, 8 * PG, e->mem, 0), VMEM_OK);
}

static void env_free(struct env *e)
{
	vmem_gmem_free(e->gm);
	free(e->mem);
}

static void put64(struct env *e, uint64_t gpa, uint64_t v)
{
	memcpy(e->mem + gpa, &v, 8);
}

static void check_translation(vmem_mmu *m, struct env *e, uint64_t want_gpa)
{
	vmem_walk_result res;
	assert_int_equal(vmem_walk(m, e->gm, LA_4L, VMEM_ACC_READ, VMEM_WALK_NO_AD, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_OK);
	assert_true(res.gpa == want_gpa);
}

static void test_set_regs_keeps_state(void **state)
{
	(void)state;
	struct env e;
	env_new(&e);
	put64(&e, 0x1000, 0x2000 | 3);
	put64(&e, 0x2000, 0x3000 | 3);
	put64(&e, 0x3000 + 8, 0x4000 | 3);
	put64(&e, 0x4000 + 8, 0x6000 | 3);
	vmem_regs good = long_regs();
	good.cr3 = 0x1000;
	good.efer |= VMEM_EFER_NXE;
	good.cr0 |= VMEM_CR0_WP;
	vmem_mmu *m;
	assert_int_equal(vmem_mmu_new(NULL, &good, &m), VMEM_OK);
	check_translation(m, &e, 0x6abc);

	vmem_regs bad[8];
	for (int i = 0; i < 8; i++)
		bad[i] = good;
	bad[0].cr0 &= ~VMEM_CR0_PE;
	bad[1].efer &= ~VMEM_EFER_LME;
	bad[2].cr4 &= ~VMEM_CR4_PAE;
	bad[3].maxphyaddr = 53;
	bad[4].cr3 |= 1ull << 50;
	bad[5].cr4 |= VMEM_CR4_PKS;
	bad[6].maxphyaddr = 31;
	bad[7] = regs_for(true, true, false, false);
	bad[7].cr4 |= VMEM_CR4_PCIDE;
	for (int i = 0; i < 8; i++) {
		assert_true(vmem_mmu_set_regs(m, &bad[i]) < 0);
		assert_memory_equal(vmem_mmu_regs(m), &good, sizeof(good));
		assert_int_equal(vmem_mmu_mode(m), VMEM_MODE_4LEVEL);
		check_translation(m, &e, 0x6abc);
	}
	assert_int_equal(vmem_mmu_set_regs(m, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_mmu_set_regs(NULL, &good), VMEM_E_INVAL);
	check_translation(m, &e, 0x6abc);

	/* A valid change takes effect: CR3 pointing at a second PML4 (0x5000) whose
	 * chain ends at page 0x7000. */
	put64(&e, 0x5000, 0x2000 | 3);
	vmem_regs moved = good;
	moved.cr3 = 0x5000;
	put64(&e, 0x4000 + 8, 0x7000 | 3);
	assert_int_equal(vmem_mmu_set_regs(m, &moved), VMEM_OK);
	assert_true(vmem_mmu_regs(m)->cr3 == 0x5000);
	check_translation(m, &e, 0x7abc);

	/* Into PAE mode: PDPTE registers are kept across set_regs. */
	const uint64_t pd[4] = { 0x3001, 0, 0x12345000, 0xfffffffffffffffeull };
	uint64_t got[4];
	vmem_mmu_set_pdptes(m, pd);
	vmem_regs pae = regs_for(true, true, false, false);
	pae.cr3 = 0x5000;
	assert_int_equal(vmem_mmu_set_regs(m, &pae), VMEM_OK);
	assert_int_equal(vmem_mmu_mode(m), VMEM_MODE_PAE);
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, pd, sizeof(pd));
	/* A failing set_regs from PAE leaves PAE (and the PDPTEs). */
	assert_int_equal(vmem_mmu_set_regs(m, &bad[0]), VMEM_E_INVAL);
	assert_int_equal(vmem_mmu_mode(m), VMEM_MODE_PAE);
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, pd, sizeof(pd));
	vmem_mmu_free(m);
	env_free(&e);
}

/* ---- PAE: loading the PDPTE registers (SDM 4.4.1, Table 4-8) ---- */

static struct mmio_state {
	unsigned calls;
} mmio_st;

/* MMIO that reads as a fixed valid PDPTE (0x2001) at every 8-byte slot. */
static int pdpt_mmio(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	struct mmio_state *s = opaque;
	s->calls++;
	if (is_write)
		return VMEM_E_RANGE;
	(void)gpa;
	*val = size == 8 ? 0x2001 : 0;
	return 0;
}

static void test_load_pdptes(void **state)
{
	(void)state;
	struct env e;
	env_new(&e);
	vmem_regs r = regs_for(true, true, false, false);
	r.maxphyaddr = 36;
	r.cr3 = 0x3038; /* bits 4:3 are PWT/PCD; the PDPT is at CR3[31:5] = 0x3020 */
	vmem_mmu *m;
	assert_int_equal(vmem_mmu_new(NULL, &r, &m), VMEM_OK);

	/* Valid: P; P+PWT+PCD+ignored 11:9; not present (0); highest address bit 35. */
	const uint64_t ok[4] = { 0x1001, 0x2e19, 0, 0xffffff001ull };
	for (int i = 0; i < 4; i++)
		put64(&e, 0x3020 + 8 * (uint64_t)i, ok[i]);
	put64(&e, 0x3000, 0x5001); /* bytes below the PDPT: not part of it */
	put64(&e, 0x3040, 0x5001);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_OK);
	uint64_t got[4];
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, ok, sizeof(ok));

	/* Reserved bits in a present PDPTE: 2:1, 8:5, 63:MAXPHYADDR. */
	static const int rsvd[] = { 1, 2, 5, 6, 7, 8, 36, 40, 51, 52, 62, 63 };
	for (size_t b = 0; b < sizeof(rsvd) / sizeof(rsvd[0]); b++) {
		for (int i = 0; i < 4; i++) {
			uint64_t v = 0x4001 | (1ull << rsvd[b]);
			put64(&e, 0x3020 + 8 * (uint64_t)i, v);
			assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_E_INVAL);
			vmem_mmu_get_pdptes(m, got);
			assert_memory_equal(got, ok, sizeof(ok));
			assert_memory_equal(vmem_mmu_regs(m), &r, sizeof(r));
			put64(&e, 0x3020 + 8 * (uint64_t)i, ok[i]);
		}
	}
	/* The same bits in a not-present PDPTE: ignored, loaded as they are. */
	const uint64_t np[4] = { 0xfffffffffffffffeull, 0x1001, 0x1fe, 0x8000000000000000ull };
	for (int i = 0; i < 4; i++)
		put64(&e, 0x3020 + 8 * (uint64_t)i, np[i]);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_OK);
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, np, sizeof(np));

	/* With MAXPHYADDR 52, bit 51 is an address bit; 52 still reserved. */
	vmem_regs r52 = r;
	r52.maxphyaddr = 52;
	assert_int_equal(vmem_mmu_set_regs(m, &r52), VMEM_OK);
	put64(&e, 0x3020, 0x0008000000001001ull);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_OK);
	put64(&e, 0x3020, 0x0010000000001001ull);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_E_INVAL);
	vmem_mmu_get_pdptes(m, got);
	assert_true(got[0] == 0x0008000000001001ull);
	put64(&e, 0x3020, 0x1001);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_OK);
	vmem_mmu_get_pdptes(m, got);
	const uint64_t before[4] = { got[0], got[1], got[2], got[3] };

	/* PDPT outside guest memory: RANGE, registers unchanged. */
	vmem_regs far = r52;
	far.cr3 = 0x10000;
	assert_int_equal(vmem_mmu_set_regs(m, &far), VMEM_OK);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_E_RANGE);
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, before, sizeof(before));

	/* Half in an MMIO hole, half unbacked: RANGE, unchanged. */
	assert_int_equal(vmem_gmem_add_mmio(e.gm, 0x10000, 0x10, pdpt_mmio, &mmio_st), VMEM_OK);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_E_RANGE);
	vmem_mmu_get_pdptes(m, got);
	assert_memory_equal(got, before, sizeof(before));
	/* Wholly in MMIO: read through the device. */
	assert_int_equal(vmem_gmem_remove(e.gm, 0x10000), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(e.gm, 0x10000, 0x20, pdpt_mmio, &mmio_st), VMEM_OK);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_OK);
	vmem_mmu_get_pdptes(m, got);
	for (int i = 0; i < 4; i++)
		assert_true(got[i] == 0x2001);

	/* Not PAE mode, or no memory: INVAL. */
	assert_int_equal(vmem_mmu_load_pdptes(m, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_mmu_load_pdptes(NULL, e.gm), VMEM_E_INVAL);
	vmem_regs lr = long_regs();
	assert_int_equal(vmem_mmu_set_regs(m, &lr), VMEM_OK);
	assert_int_equal(vmem_mmu_load_pdptes(m, e.gm), VMEM_E_INVAL);
	vmem_mmu_free(m);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regs_init),
		cmocka_unit_test(test_mode_table),
		cmocka_unit_test(test_refused_states),
		cmocka_unit_test(test_lme_pg_without_lma),
		cmocka_unit_test(test_set_regs_keeps_state),
		cmocka_unit_test(test_load_pdptes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
