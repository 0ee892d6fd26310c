/* Software TLB: which cached translations each invalidation ends, as the SDM's rules say (table worked by hand). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <libvmem/tlb.h>

#define EPT_A 0x111000ull
#define EPT_B 0x222000ull

static const struct ent {
	uint16_t vpid, pcid;
	uint64_t eptp, la, size;
	int global;
} E[] = {
	{ 1, 1, EPT_A, 0x1000, 1ull << 12, 0 },       /* E0 */
	{ 1, 1, EPT_A, 0x200000, 1ull << 21, 0 },     /* E1: 2M page 0x200000..0x3fffff */
	{ 1, 2, EPT_A, 0x5000, 1ull << 12, 0 },       /* E2 */
	{ 1, 1, EPT_A, 0x7000, 1ull << 12, 1 },       /* E3: global */
	{ 2, 1, EPT_A, 0x9000, 1ull << 12, 0 },       /* E4 */
	{ 1, 1, EPT_B, 0xb000, 1ull << 12, 0 },       /* E5 */
	{ 0, 0, EPT_A, 0xd000, 1ull << 12, 0 },       /* E6: VPID 0 (the host) */
	{ 1, 1, EPT_A, 0x40000000, 1ull << 30, 1 },   /* E7: global 1G page */
	{ 2, 3, EPT_B, 0xf000, 1ull << 12, 1 },       /* E8: global */
};
#define NE (sizeof(E) / sizeof(E[0]))

static vmem_tlb *fill(void)
{
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 10, &t), VMEM_OK);
	for (unsigned i = 0; i < NE; i++) {
		vmem_tlb_tag tag = { E[i].vpid, E[i].pcid, E[i].eptp };
		vmem_tlb_xlat x = { 0x80000000ull + i * (1ull << 30), E[i].size, 7, 1, (uint8_t)E[i].global, 0 };
		assert_int_equal(vmem_tlb_insert(t, &tag, E[i].la, &x), VMEM_OK);
	}
	return t;
}

/* Bit i set: E[i] still served. */
static unsigned survivors(const vmem_tlb *t)
{
	unsigned m = 0;
	for (unsigned i = 0; i < NE; i++) {
		vmem_tlb_tag tag = { E[i].vpid, E[i].pcid, E[i].eptp };
		vmem_tlb_xlat x;
		if (vmem_tlb_lookup(t, &tag, E[i].la + E[i].size - 1, &x)) {
			assert_int_equal(x.pa, 0x80000000ull + i * (1ull << 30) + E[i].size - 1);
			m |= 1u << i;
		}
	}
	return m;
}

#define ALL ((1u << NE) - 1)
#define B(i) (1u << (i))

static void test_lookup_tags(void **s)
{
	(void)s;
	vmem_tlb *t = fill();
	assert_int_equal(survivors(t), ALL);
	vmem_tlb_xlat x;
	vmem_tlb_tag t_p2 = { 1, 2, EPT_A }, t_v2 = { 2, 1, EPT_A }, t_b = { 1, 1, EPT_B };
	assert_true(vmem_tlb_lookup(t, &t_p2, 0x7abc, &x));       /* global: any PCID of VPID 1 */
	assert_int_equal(x.pa, 0x80000000ull + 3 * (1ull << 30) + 0xabc);
	assert_false(vmem_tlb_lookup(t, &t_p2, 0x1abc, &x));      /* non-global: its PCID only */
	assert_false(vmem_tlb_lookup(t, &t_v2, 0x7abc, &x));      /* never another VPID */
	assert_false(vmem_tlb_lookup(t, &t_b, 0x1abc, &x));       /* never another EP4TA */
	vmem_tlb_tag t_a = { 1, 1, EPT_A | 0x5e };                /* EPTP low bits are not the tag */
	assert_true(vmem_tlb_lookup(t, &t_a, 0x2abcde, &x));
	assert_int_equal(x.page_size, 1ull << 21);
	assert_int_equal(x.pa, 0x80000000ull + 1 * (1ull << 30) + 0xabcde);
	vmem_tlb_free(t);
}

struct op {
	const char *what;
	void (*fn)(vmem_tlb *t);
	unsigned expect; /* survivors, worked out from the SDM by hand */
};

static void op_invlpg_e0(vmem_tlb *t) { vmem_tlb_invlpg(t, 1, 1, 0x1234); }
static void op_invlpg_global_other_pcid(vmem_tlb *t) { vmem_tlb_invlpg(t, 1, 2, 0x7000); }
static void op_invlpg_wrong_pcid(vmem_tlb *t) { vmem_tlb_invlpg(t, 1, 2, 0x1000); }
static void op_invlpg_in_2m(vmem_tlb *t) { vmem_tlb_invlpg(t, 1, 1, 0x2abcde); }
static void op_invlpg_in_1g(vmem_tlb *t) { vmem_tlb_invlpg(t, 1, 5, 0x7fffffff); }
static void op_invpcid_addr_global(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, 0x7000); }
static void op_invpcid_addr(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, 0x1000); }
static void op_invpcid_single(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_SINGLE, 1, 0); }
static void op_invpcid_all_global(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ALL_GLOBAL, 0, 0); }
static void op_invpcid_all(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ALL, 0, 0); }
static void op_cr3_pcid1(vmem_tlb *t) { vmem_tlb_mov_cr3(t, 1, 0x5000 | 1, true); }
static void op_cr3_noflush(vmem_tlb *t) { vmem_tlb_mov_cr3(t, 1, (1ull << 63) | 0x5000 | 1, true); }
static void op_cr3_nopcid_vpid0(vmem_tlb *t) { vmem_tlb_mov_cr3(t, 0, 0x5000, false); }
static void op_cr3_nopcid_vpid1(vmem_tlb *t) { vmem_tlb_mov_cr3(t, 1, 0x5001, false); }
static void op_flush_vpid2(vmem_tlb *t) { vmem_tlb_flush_vpid(t, 2); }
static void op_invvpid_addr(vmem_tlb *t) { vmem_tlb_invvpid(t, VMEM_INVVPID_ADDR, 1, 0x7000); }
static void op_invvpid_addr_nonglobal(vmem_tlb *t) { vmem_tlb_invvpid(t, VMEM_INVVPID_ADDR, 1, 0x5000); }
static void op_invvpid_single(vmem_tlb *t) { vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE, 1, 0); }
static void op_invvpid_all(vmem_tlb *t) { vmem_tlb_invvpid(t, VMEM_INVVPID_ALL, 0, 0); }
static void op_invvpid_keep_global(vmem_tlb *t) { vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE_KEEP_GLOBAL, 1, 0); }
static void op_invept_b(vmem_tlb *t) { vmem_tlb_invept(t, VMEM_INVEPT_SINGLE, EPT_B | 0x5e); }
static void op_invept_all(vmem_tlb *t) { vmem_tlb_invept(t, VMEM_INVEPT_ALL, 0); }

static const struct op OPS[] = {
	/* SDM 4.10.4.1 INVLPG: current VPID+PCID's translations of the page, and its global ones; all EP4TAs. */
	{ "INVLPG E0's page", op_invlpg_e0, ALL & ~B(0) },
	{ "INVLPG a global page from another PCID", op_invlpg_global_other_pcid, ALL & ~B(3) },
	{ "INVLPG another PCID's non-global page", op_invlpg_wrong_pcid, ALL },
	{ "INVLPG inside a 2M page", op_invlpg_in_2m, ALL & ~B(1) },
	{ "INVLPG inside a global 1G page", op_invlpg_in_1g, ALL & ~B(7) },
	/* INVPCID (instruction reference): type 0 spares globals; 1 one PCID's non-globals; 2 all; 3 all non-globals. */
	{ "INVPCID 0 on a global page", op_invpcid_addr_global, ALL },
	{ "INVPCID 0", op_invpcid_addr, ALL & ~B(0) },
	{ "INVPCID 1 (PCID 1)", op_invpcid_single, ALL & ~(B(0) | B(1) | B(5)) },
	{ "INVPCID 2", op_invpcid_all_global, B(4) | B(6) | B(8) },
	{ "INVPCID 3", op_invpcid_all, ALL & ~(B(0) | B(1) | B(2) | B(5)) },
	/* MOV to CR3 (SDM 4.10.4.1). */
	{ "MOV CR3 PCID 1", op_cr3_pcid1, ALL & ~(B(0) | B(1) | B(5)) },
	{ "MOV CR3 with bit 63", op_cr3_noflush, ALL },
	{ "MOV CR3, PCIDE = 0, VPID 0", op_cr3_nopcid_vpid0, ALL & ~B(6) },
	{ "MOV CR3, PCIDE = 0, VPID 1: PCID is 0", op_cr3_nopcid_vpid1, ALL },
	{ "CR4.PGE toggle (VPID 2)", op_flush_vpid2, ALL & ~(B(4) | B(8)) },
	/* INVVPID (SDM vol. 3C 31.3). */
	{ "INVVPID 0 on a global page", op_invvpid_addr, ALL & ~B(3) },
	{ "INVVPID 0, any PCID", op_invvpid_addr_nonglobal, ALL & ~B(2) },
	{ "INVVPID 1", op_invvpid_single, B(4) | B(6) | B(8) },
	{ "INVVPID 2: all but VPID 0", op_invvpid_all, B(6) },
	{ "INVVPID 3", op_invvpid_keep_global, ALL & ~(B(0) | B(1) | B(2) | B(5)) },
	/* INVEPT (SDM vol. 3C 29.4.3.1): by EP4TA, across VPIDs and PCIDs. */
	{ "INVEPT single (EPT B)", op_invept_b, ALL & ~(B(5) | B(8)) },
	{ "INVEPT all", op_invept_all, 0 },
};

static void test_invalidation_table(void **s)
{
	(void)s;
	for (unsigned k = 0; k < sizeof(OPS) / sizeof(OPS[0]); k++) {
		vmem_tlb *t = fill();
		assert_int_equal(survivors(t), ALL); /* cached before the change */
		OPS[k].fn(t);
		unsigned got = survivors(t);
		if (got != OPS[k].expect)
			fail_msg("%s: survivors 0x%x, expected 0x%x", OPS[k].what, got, OPS[k].expect);
		vmem_tlb_free(t);
	}
}

static void test_bad_args(void **s)
{
	(void)s;
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 3, &t), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_new(NULL, 8, &t), VMEM_OK);
	vmem_tlb_tag tag = { 1, 1, 0 };
	vmem_tlb_xlat x = { 0, 8192, 0, 0, 0, 0 };
	assert_int_equal(vmem_tlb_insert(t, &tag, 0, &x), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invpcid(t, 1, 4, 0, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invpcid(t, 1, 0, 0x1000, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invvpid(t, 4, 1, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invept(t, 0, 0), VMEM_E_INVAL);
	vmem_tlb_free(t);
}


/* The inline 4K hit path answers as vmem_tlb_lookup does, for every entry and tag. */
static void test_inline_hit(void **s)
{
	(void)s;
	vmem_tlb *t = fill();
	for (unsigned i = 0; i < NE; i++)
		for (unsigned j = 0; j < NE; j++) {
			vmem_tlb_tag tag = { E[j].vpid, E[j].pcid, E[j].eptp };
			vmem_tlb_view v;
			vmem_tlb_bind(t, &tag, &v);
			vmem_tlb_xlat x;
			uint64_t pa;
			unsigned perms;
			uint64_t la = E[i].la + 0x123;
			bool slow = vmem_tlb_lookup(t, &tag, la, &x);
			bool fast = vmem_tlb_hit4k(&v, la, &pa, &perms);
			if (E[i].size == 4096) {
				assert_int_equal(fast, slow);
				if (fast) {
					assert_int_equal(pa, x.pa);
					assert_int_equal(perms, x.perms);
				}
			} else {
				assert_false(fast); /* large pages take the full lookup */
			}
		}
	/* After an invalidation the bound view misses too (no rebind needed). */
	vmem_tlb_tag tag = { 1, 1, EPT_A };
	vmem_tlb_view v;
	vmem_tlb_bind(t, &tag, &v);
	uint64_t pa;
	unsigned perms;
	assert_true(vmem_tlb_hit4k(&v, 0x1000, &pa, &perms));
	vmem_tlb_invlpg(t, 1, 1, 0x1000);
	assert_false(vmem_tlb_hit4k(&v, 0x1000, &pa, &perms));
	vmem_tlb_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_tags),
		cmocka_unit_test(test_invalidation_table),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_inline_hit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
