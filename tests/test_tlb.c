/* Software TLB: which cached translations each invalidation ends, as the SDM's rules say (table worked by hand). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <libvmem/tlb.h>
#include <libvmem/walk.h>

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
static void op_invpcid_addr_global(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, 0x7000, true); }
static void op_invpcid_addr(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, 0x1000, true); }
static void op_invpcid_single(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_SINGLE, 1, 0, true); }
static void op_invpcid_all_global(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ALL_GLOBAL, 0, 0, true); }
static void op_invpcid_all(vmem_tlb *t) { vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ALL, 0, 0, true); }
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
/* INVVPID types 0, 1 and 3 with VPID 0 fail (VMfailValid): nothing invalidated. */
static void op_invvpid_vpid0(vmem_tlb *t)
{
	assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_ADDR, 0, 0xd000), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE, 0, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE_KEEP_GLOBAL, 0, 0), VMEM_E_INVAL);
}
/* INVEPT single-context "IF VM entry with the 'enable EPT' VM execution
 * control set to 1 would fail due to the EPTP value THEN VMfail(Invalid
 * operand to INVEPT/INVVPID)" (INVEPT, vol. 3C ch. 31): nothing invalidated.
 * EPTPs every processor's VM entry refuses (vol. 3C 27.2.1.1): memory type
 * (bits 2:0) other than UC 0 or WB 6 (the only ones IA32_VMX_EPT_VPID_CAP can
 * report, App. A.10), page-walk length - 1 (bits 5:3) other than 3 or 4,
 * reserved bits 11:8, bits 63:52 (above any MAXPHYADDR, SDM 4.1.4). */
static void op_invept_bad_eptp(vmem_tlb *t)
{
	static const uint64_t bad[] = {
		EPT_B | 0x1b,             /* memory type 3, 4-level */
		EPT_B | 0x06,             /* WB, page-walk length 1 */
		EPT_B | 0x2e,             /* WB, page-walk length 6 */
		EPT_B | 0x11e,            /* bit 8 */
		EPT_B | 0x1e | 1ull << 63 /* bit 63 */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vmem_tlb_invept(t, VMEM_INVEPT_SINGLE, bad[i]), VMEM_E_INVAL);
}
/* Individual-address INVVPID / INVPCID of a linear address that no processor
 * calls canonical (bits 63:56 not all equal to bit 56: 5-level paging's 57 bits,
 * SDM 4.5; 48-bit processors refuse these too): INVVPID "IF (GL_ADDR is not in
 * a canonical form) THEN VMfail(Invalid operand to INVEPT/INVVPID)"; INVPCID
 * "#GP(0) If INVPCID_TYPE is 0 and the linear address in INVPCID_DESC[127:64]
 * is not canonical". Nothing invalidated. */
static const uint64_t noncanon[] = { 0x8000000000007000ull, 0x0100000000007000ull };
static void op_invvpid_noncanonical(vmem_tlb *t)
{
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_ADDR, 1, noncanon[i]), VMEM_E_INVAL);
}
static void op_invpcid_noncanonical(vmem_tlb *t)
{
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, noncanon[i], true), VMEM_E_INVAL);
}
/* INVPCID with CR4.PCIDE = 0: "executions with INVPCID types 0 and 1 are
 * allowed only if the PCID specified in the INVPCID descriptor is 000H" (#GP
 * otherwise; kvm-unit-tests x86/pcid.c checks type 1, PCID 1 faults); types 2
 * and 3 run (the descriptor's PCID is not used). */
static void op_invpcid_pcide0(vmem_tlb *t)
{
	assert_int_equal(vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, 0x1000, false), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invpcid(t, 1, VMEM_INVPCID_SINGLE, 1, 0, false), VMEM_E_INVAL);
}
static void op_invpcid_pcide0_all(vmem_tlb *t)
{
	assert_int_equal(vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ALL, 1, 0, false), VMEM_OK);
}
/* MOV to CR3 that faults: "#GP(0) If an attempt is made to write a 1 to any
 * reserved bit in CR3" (MOV CR, 64-bit mode). With CR4.PCIDE = 0 bit 63 is
 * reserved (SDM 4.5 Table 4-12, "63:M Reserved (must be 0)"; only with PCIDE =
 * 1 is it the no-flush flag, Table 4-13, 4.10.4.1); bits 60:52 are reserved
 * either way (M <= 52; 61 and 62 are LAM's). Outside 64-bit mode the operand
 * has 32 bits. The MOV does not happen: nothing invalidated. */
static void op_cr3_reserved(vmem_tlb *t)
{
	assert_int_equal(vmem_tlb_mov_cr3(t, 0, 1ull << 63 | 0x5000, false), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_mov_cr3(t, 1, 1ull << 63 | 0x5001, false), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_mov_cr3(t, 1, 1ull << 52 | 0x5001, true), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_mov_cr3(t, 0, 1ull << 60 | 0x5000, false), VMEM_E_INVAL);
}
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
	{ "INVVPID 0, 1, 3 of VPID 0: VMfail", op_invvpid_vpid0, ALL },
	/* INVEPT (SDM vol. 3C 29.4.3.1): by EP4TA, across VPIDs and PCIDs. */
	{ "INVEPT single (EPT B)", op_invept_b, ALL & ~(B(5) | B(8)) },
	{ "INVEPT all", op_invept_all, 0 },
	/* Refused: the instruction faults or VMfails, nothing is invalidated. */
	{ "INVEPT single, EPTP VM entry refuses: VMfail", op_invept_bad_eptp, ALL },
	{ "INVVPID 0, non-canonical: VMfail", op_invvpid_noncanonical, ALL },
	{ "INVPCID 0, non-canonical: #GP", op_invpcid_noncanonical, ALL },
	{ "INVPCID 0, 1 of PCID 1 with PCIDE = 0: #GP", op_invpcid_pcide0, ALL },
	{ "INVPCID 3 with PCIDE = 0", op_invpcid_pcide0_all, ALL & ~(B(0) | B(1) | B(2) | B(5)) },
	{ "MOV CR3, reserved bits: #GP", op_cr3_reserved, ALL },
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
	assert_int_equal(vmem_tlb_invpcid(t, 1, 4, 0, 0, true), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_invpcid(t, 1, 0, 0x1000, 0, true), VMEM_E_INVAL);
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

/* Tags the slot word packs: VPIDs above 0xfff stay apart from their low
 * 12 bits, and a PCID above 0xfff or an EP4TA at or above 2^48 is never
 * cached (its lookups miss; an INVEPT of it drops nothing else). */
static void test_wide_tags(void **s)
{
	(void)s;
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 8, &t), VMEM_OK);
	vmem_tlb_tag lo = { 0x0001, 1, EPT_A }, hi = { 0x1001, 1, EPT_A }, top = { 0xffff, 0xfff, EPT_A };
	vmem_tlb_tag wide_pcid = { 1, 0x1000, EPT_A }, high_ept = { 1, 1, EPT_A | 1ull << 48 };
	vmem_tlb_xlat x = { 0x5000, 4096, 7, 1, 0, 0 }, y;
	assert_int_equal(vmem_tlb_insert(t, &lo, 0x1000, &x), VMEM_OK);
	assert_false(vmem_tlb_lookup(t, &hi, 0x1000, &y));
	assert_false(vmem_tlb_lookup(t, &high_ept, 0x1000, &y));
	assert_false(vmem_tlb_lookup(t, &wide_pcid, 0x1000, &y));
	x.pa = 0x6000;
	assert_int_equal(vmem_tlb_insert(t, &top, 0x2000, &x), VMEM_OK);
	assert_true(vmem_tlb_lookup(t, &top, 0x2fff, &y));
	assert_int_equal(y.pa, 0x6fff);
	/* Never cached: inserts succeed, lookups and the inline hit miss. */
	assert_int_equal(vmem_tlb_insert(t, &high_ept, 0x3000, &x), VMEM_OK);
	assert_int_equal(vmem_tlb_insert(t, &wide_pcid, 0x4000, &x), VMEM_OK);
	assert_false(vmem_tlb_lookup(t, &high_ept, 0x3000, &y));
	assert_false(vmem_tlb_lookup(t, &wide_pcid, 0x4000, &y));
	vmem_tlb_view v;
	uint64_t pa;
	unsigned perms;
	vmem_tlb_bind(t, &high_ept, &v);
	assert_false(vmem_tlb_hit4k(&v, 0x1000, &pa, &perms));
	assert_false(vmem_tlb_hit4k(&v, 0x3000, &pa, &perms));
	vmem_tlb_bind(t, &wide_pcid, &v);
	assert_false(vmem_tlb_hit4k(&v, 0x4000, &pa, &perms));
	vmem_tlb_bind(t, &lo, &v);
	assert_true(vmem_tlb_hit4k(&v, 0x1abc, &pa, &perms));
	assert_int_equal(pa, 0x5abc);
	/* INVEPT of the EP4TA with bit 48 set leaves EPT_A's translations. */
	assert_int_equal(vmem_tlb_invept(t, VMEM_INVEPT_SINGLE, EPT_A | 1ull << 48 | 0x1e), VMEM_OK);
	assert_true(vmem_tlb_lookup(t, &lo, 0x1000, &y));
	assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE, 0x1001, 0), VMEM_OK);
	assert_true(vmem_tlb_lookup(t, &lo, 0x1000, &y));
	assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE, 0xffff, 0), VMEM_OK);
	assert_false(vmem_tlb_lookup(t, &top, 0x2000, &y));
	vmem_tlb_free(t);
}

/* Linear mappings (EPT off: EPTP 0) and combined mappings (EPT on) are apart
 * even when the EPT PML4 table is at physical address 0: "No linear mappings
 * are used while EPT is in use", "No guest-physical or combined mappings are
 * used while EPT is not in use" (SDM vol. 3C 29.4.2). EPTP 0x1e is WB, 4-level
 * EPT (bits 5:3 = 3) at EP4TA 0: a valid EPTP, never 0 (bits 5:3 are 3 or 4). */
static void test_ept_off_on(void **s)
{
	(void)s;
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 8, &t), VMEM_OK);
	vmem_tlb_tag off = { 1, 1, 0 }, on0 = { 1, 1, 0x1e };
	vmem_tlb_xlat x = { 0x5000, 4096, 7, 1, 0, 0 }, y;
	vmem_tlb_view v;
	uint64_t pa;
	unsigned perms;
	assert_int_equal(vmem_tlb_insert(t, &off, 0x1000, &x), VMEM_OK);
	assert_true(vmem_tlb_lookup(t, &off, 0x1000, &y)); /* the linear mapping serves EPT off */
	assert_false(vmem_tlb_lookup(t, &on0, 0x1000, &y));
	vmem_tlb_bind(t, &on0, &v);
	assert_false(vmem_tlb_hit4k(&v, 0x1000, &pa, &perms));
	x.pa = 0x9000;
	assert_int_equal(vmem_tlb_insert(t, &on0, 0x2000, &x), VMEM_OK);
	assert_false(vmem_tlb_lookup(t, &off, 0x2000, &y));
	vmem_tlb_bind(t, &off, &v);
	assert_false(vmem_tlb_hit4k(&v, 0x2000, &pa, &perms));
	vmem_tlb_free(t);
}

/* "Whenever there is a write to a linear address, the processor sets the
 * dirty flag (if it is not already set)" (SDM 4.8), and a TLB entry holds the
 * leaf's dirty flag (4.10.2.2). So a write through a writable translation
 * cached with D = 0 is not served from the cache: the inline hit, which
 * reports no D, withholds W from it (the caller walks, which sets D); reads
 * and fetches are served. The full lookup reports the rights and D. */
static void test_clean_write(void **s)
{
	(void)s;
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 8, &t), VMEM_OK);
	vmem_tlb_tag tag = { 1, 1, EPT_A };
	const unsigned wux = VMEM_PERM_W | VMEM_PERM_U | VMEM_PERM_X, ux = VMEM_PERM_U | VMEM_PERM_X;
	vmem_tlb_xlat clean = { 0x5000, 4096, (uint8_t)wux, 0, 0, 0 }, dirty = { 0x6000, 4096, (uint8_t)wux, 1, 0, 0 };
	vmem_tlb_xlat ro = { 0x7000, 4096, (uint8_t)ux, 0, 0, 0 }, y;
	assert_int_equal(vmem_tlb_insert(t, &tag, 0x1000, &clean), VMEM_OK);
	assert_int_equal(vmem_tlb_insert(t, &tag, 0x2000, &dirty), VMEM_OK);
	assert_int_equal(vmem_tlb_insert(t, &tag, 0x3000, &ro), VMEM_OK);
	vmem_tlb_view v;
	vmem_tlb_bind(t, &tag, &v);
	uint64_t pa;
	unsigned perms;
	assert_true(vmem_tlb_hit4k(&v, 0x1234, &pa, &perms));
	assert_int_equal(pa, 0x5234);
	assert_int_equal(perms, ux); /* clean: no write from the cache */
	assert_true(vmem_tlb_lookup(t, &tag, 0x1234, &y));
	assert_int_equal(y.perms, wux);
	assert_int_equal(y.dirty, 0);
	assert_true(vmem_tlb_hit4k(&v, 0x2234, &pa, &perms));
	assert_int_equal(perms, wux); /* dirty: writes served */
	assert_true(vmem_tlb_hit4k(&v, 0x3234, &pa, &perms));
	assert_int_equal(perms, ux);
	assert_true(vmem_tlb_lookup(t, &tag, 0x3234, &y));
	assert_int_equal(y.perms, ux);
	vmem_tlb_free(t);
}

/* A page the guest's paging structures map larger than the cached pieces
 * (EPT maps a guest 2M page with 4K pages: the combined translations are 4K,
 * SDM vol. 3C 29.4.1): the TLB holds several entries for one page (SDM
 * 4.10.2.3), and INVLPG "If the paging structures map the linear address
 * using a page larger than 4 KBytes and there are multiple TLB entries for
 * that page ... invalidates all of them" (INVLPG footnote; INVPCID's the
 * same). An INVLPG of any address of the large page ends every piece; other
 * pages stay. */
static void test_splinters(void **s)
{
	(void)s;
	static const struct {
		uint64_t la, size, lsize;
	} P[] = {
		{ 0x200000, 1ull << 12, 1ull << 21 },   /* three 4K pieces of the guest 2M page 0x200000 */
		{ 0x201000, 1ull << 12, 1ull << 21 },
		{ 0x3ff000, 1ull << 12, 1ull << 21 },
		{ 0x800000, 1ull << 21, 1ull << 22 },   /* two 2M pieces of a 32-bit paging 4M page */
		{ 0xa00000, 1ull << 21, 1ull << 22 },
		{ 0x40000000, 1ull << 21, 1ull << 30 }, /* 2M and 4K pieces of a 1G page */
		{ 0x7fffe000, 1ull << 12, 1ull << 30 }, /* (slots apart: no eviction) */
		{ 0x400000, 1ull << 12, 0 },            /* plain 4K pages next to them */
		{ 0x1ff000, 1ull << 12, 1ull << 12 },
	};
	static const struct {
		uint64_t la;    /* INVLPG / INVPCID 0 of this address */
		unsigned ends;  /* bit i: P[i] no longer served */
	} C[] = { { 0x2abcde, 0x07 }, { 0xb00000, 0x18 }, { 0x60000000, 0x60 }, { 0x400000, 0x80 }, { 0x1ff000, 0x100 } };
	vmem_tlb_tag tag = { 1, 1, EPT_A };
	for (unsigned k = 0; k < 2 * sizeof(C) / sizeof(C[0]); k++) {
		vmem_tlb *t;
		assert_int_equal(vmem_tlb_new(NULL, 10, &t), VMEM_OK);
		for (unsigned i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
			vmem_tlb_xlat x = { 0x100000000ull + i * (1ull << 22), P[i].size, 7, 1, 0, 0 };
			assert_int_equal(vmem_tlb_insert_piece(t, &tag, P[i].la, &x, P[i].lsize), VMEM_OK);
		}
		uint64_t la = C[k / 2].la;
		if (k & 1)
			assert_int_equal(vmem_tlb_invpcid(t, 1, VMEM_INVPCID_ADDR, 1, la, true), VMEM_OK);
		else
			vmem_tlb_invlpg(t, 1, 1, la);
		for (unsigned i = 0; i < sizeof(P) / sizeof(P[0]); i++) {
			vmem_tlb_xlat y;
			bool hit = vmem_tlb_lookup(t, &tag, P[i].la, &y);
			if (hit != !((C[k / 2].ends >> i) & 1))
				fail_msg("%s 0x%llx: piece %u %s", k & 1 ? "INVPCID 0" : "INVLPG", (unsigned long long)la, i,
					 hit ? "still served" : "gone");
		}
		vmem_tlb_free(t);
	}
	/* A linear page smaller than the cached one, or no page size: refused. */
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 8, &t), VMEM_OK);
	vmem_tlb_xlat bad = { 0, 1ull << 21, 7, 1, 0, 0 };
	assert_int_equal(vmem_tlb_insert_piece(t, &tag, 0, &bad, 1ull << 12), VMEM_E_INVAL);
	assert_int_equal(vmem_tlb_insert_piece(t, &tag, 0, &bad, 8192), VMEM_E_INVAL);
	vmem_tlb_xlat y;
	assert_false(vmem_tlb_lookup(t, &tag, 0, &y));
	vmem_tlb_free(t);
}

/* A reference model: every translation inserted and not yet invalidated,
 * with the SDM's rules written out plainly. The TLB may miss anything (it
 * may drop any entry, SDM 4.10.2) but every hit must be one of these. */
struct ref {
	uint16_t vpid, pcid;
	uint64_t ep4ta, base, size, pa;
	uint8_t perms, global, dirty, live;
	uint8_t ept_on; /* a combined mapping (EPTP != 0), else a linear one (SDM vol. 3C 29.4.1) */
	uint64_t lsize; /* the guest's page, of which this is a piece (test_splinters) */
};
#define NREF 4096
static struct ref R[NREF];
static unsigned nref;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

#define EP4TA(e) ((e) & 0x000ffffffffff000ull)
static bool in_page(const struct ref *r, uint64_t la) { return (la & ~(r->size - 1)) == r->base; }
/* la is in the guest's page r is a piece of: INVLPG, INVPCID 0 and INVVPID 0 of la end r. */
static bool in_lpage(const struct ref *r, uint64_t la) { return !((la ^ r->base) & ~(r->lsize - 1)); }

/* Canonical in 57 bits (bits 63:56 equal): what no processor refuses. */
static bool canonical57(uint64_t la) { return (la >> 56) == 0 || (la >> 56) == 0xff; }
/* An EPTP some processor's VM entry accepts (SDM vol. 3C 27.2.1.1): UC or WB,
 * page-walk length 4 or 5, bits 11:8 and 63:52 clear. */
static bool eptp_ok(uint64_t e)
{
	unsigned mt = (unsigned)(e & 7), pwl = (unsigned)((e >> 3) & 7);
	return (mt == 0 || mt == 6) && (pwl == 3 || pwl == 4) && !(e & 0xfff0000000000f00ull);
}

/* Whether the model's op (numbered as below) faults or VMfails, invalidating nothing. */
static bool model_refused(unsigned op, const vmem_tlb_tag *tg, uint64_t la, uint64_t cr3, bool pcide)
{
	if (op >= 1 && op <= 4) /* INVPCID: descriptor bits 63:12, PCID with PCIDE = 0, canonical */
		return tg->pcid > 0xfff || (op <= 2 && !pcide && tg->pcid) || (op == 1 && !canonical57(la));
	if (op == 5) /* MOV CR3: bit 63 reserved with PCIDE = 0 */
		return !pcide && (cr3 >> 63);
	if (op == 7 || op == 8 || op == 10) /* INVVPID 0, 1, 3: VPID 0; type 0 canonical */
		return tg->vpid == 0 || (op == 7 && !canonical57(la));
	if (op == 11) /* INVEPT single: an EPTP VM entry refuses */
		return !eptp_ok(tg->eptp);
	return false;
}

/* One invalidation, done on the TLB and on the model. */
static void model_invalidate(vmem_tlb *t, uint64_t *s, const vmem_tlb_tag *tg, uint64_t la)
{
	unsigned op = (unsigned)(rnd(s) % 16);
	uint16_t vpid = tg->vpid, pcid = tg->pcid;
	uint64_t cr3 = (rnd(s) & 0x8000000000000fffull) | 0x5000;
	bool pcide = rnd(s) & 1;
	bool refused = model_refused(op, tg, la, cr3, pcide);
	vmem_err want = refused ? VMEM_E_INVAL : VMEM_OK;
	for (unsigned i = 0; i < nref; i++) {
		struct ref *r = &R[i];
		bool v = r->vpid == vpid, drop = false;
		switch (op) {
		case 0: drop = v && in_lpage(r, la) && (r->pcid == pcid || r->global); break;          /* INVLPG */
		case 1: drop = v && in_lpage(r, la) && r->pcid == pcid && !r->global; break;           /* INVPCID 0 */
		case 2: drop = v && r->pcid == pcid && !r->global; break;                              /* INVPCID 1 */
		case 3: drop = v; break;                                                               /* INVPCID 2 */
		case 4: drop = v && !r->global; break;                                                 /* INVPCID 3 */
		case 5: drop = !(pcide && cr3 >> 63) && v && !r->global &&
			       r->pcid == (pcide ? (cr3 & 0xfff) : 0); break;                          /* MOV CR3 */
		case 6: drop = v; break;                                                               /* CR4 change */
		case 7: drop = v && in_lpage(r, la); break;                                            /* INVVPID 0 */
		case 8: drop = v; break;                                                               /* INVVPID 1 */
		case 9: drop = r->vpid != 0; break;                                                    /* INVVPID 2 */
		case 10: drop = v && !r->global; break;                                                /* INVVPID 3 */
		case 11: drop = r->ep4ta == EP4TA(tg->eptp); break;                                    /* INVEPT 1 */
		case 12: drop = true; break;                                                           /* INVEPT 2 */
		default: break;                                                                        /* none */
		}
		if (drop && !refused)
			r->live = 0;
	}
	switch (op) {
	case 0: vmem_tlb_invlpg(t, vpid, pcid, la); break;
	case 1: assert_int_equal(vmem_tlb_invpcid(t, vpid, VMEM_INVPCID_ADDR, pcid, la, pcide), want); break;
	case 2: assert_int_equal(vmem_tlb_invpcid(t, vpid, VMEM_INVPCID_SINGLE, pcid, la, pcide), want); break;
	case 3: assert_int_equal(vmem_tlb_invpcid(t, vpid, VMEM_INVPCID_ALL_GLOBAL, pcid, la, pcide), want); break;
	case 4: assert_int_equal(vmem_tlb_invpcid(t, vpid, VMEM_INVPCID_ALL, pcid, la, pcide), want); break;
	case 5: assert_int_equal(vmem_tlb_mov_cr3(t, vpid, cr3, pcide), want); break;
	case 6: vmem_tlb_flush_vpid(t, vpid); break;
	case 7: assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_ADDR, vpid, la), want); break;
	case 8: assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE, vpid, la), want); break;
	case 9: assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_ALL, vpid, la), want); break;
	case 10: assert_int_equal(vmem_tlb_invvpid(t, VMEM_INVVPID_SINGLE_KEEP_GLOBAL, vpid, la), want); break;
	case 11: assert_int_equal(vmem_tlb_invept(t, VMEM_INVEPT_SINGLE, tg->eptp), want); break;
	case 12: assert_int_equal(vmem_tlb_invept(t, VMEM_INVEPT_ALL, 0), want); break;
	default: break;
	}
}

/* A lookup under tg: a hit is a live model entry; the inline hit agrees. */
static void model_check(const vmem_tlb *t, const vmem_tlb_tag *tg, uint64_t la)
{
	vmem_tlb_xlat x;
	bool hit = vmem_tlb_lookup(t, tg, la, &x);
	vmem_tlb_view v;
	vmem_tlb_bind(t, tg, &v);
	uint64_t pa;
	unsigned perms;
	bool fast = vmem_tlb_hit4k(&v, la, &pa, &perms);
	assert_int_equal(fast, hit && x.page_size == 4096);
	if (fast) {
		assert_int_equal(pa, x.pa);
		assert_int_equal(perms, x.dirty ? x.perms : x.perms & ~VMEM_PERM_W); /* test_clean_write */
	}
	if (!hit)
		return;
	for (unsigned i = 0; i < nref; i++) {
		const struct ref *r = &R[i];
		/* SDM vol. 3C 29.4.2: no linear mapping is used while EPT is in use, no combined one while it is not. */
		if (r->live && r->vpid == tg->vpid && r->ep4ta == EP4TA(tg->eptp) && r->ept_on == (tg->eptp != 0) &&
		    in_page(r, la) &&
		    (r->pcid == tg->pcid || r->global) && r->size == x.page_size &&
		    r->pa + (la & (r->size - 1)) == x.pa && r->perms == x.perms && r->global == x.global &&
		    r->dirty == x.dirty)
			return;
	}
	fail_msg("vpid %u pcid %u eptp 0x%llx la 0x%llx: hit 0x%llx is no live translation", tg->vpid, tg->pcid,
		 (unsigned long long)tg->eptp, (unsigned long long)la, (unsigned long long)x.pa);
}

static void test_model(void **s)
{
	(void)s;
	static const uint16_t vpids[] = { 0, 1, 2, 0x1001, 0xffff };
	static const uint16_t pcids[] = { 0, 1, 2, 0xfff, 0x1000 };
	/* EPTPs VM entry takes (WB or UC, 4 or 5 levels) and some INVEPT refuses; 0 is EPT off, 0x1e EPT on at EP4TA 0. */
	static const uint64_t epts[] = { 0, EPT_A, EPT_A | 0x5e, EPT_B | 0x18, EPT_A | 1ull << 48 | 0x1e,
					 0xfffffffff000ull | 0x26, 0x1e, EPT_B | 0x1b };
#define NEPTS (sizeof(epts) / sizeof(epts[0]))
	static const uint64_t sizes[] = { 1ull << 12, 1ull << 12, 1ull << 12, 1ull << 21, 1ull << 22, 1ull << 30 };
	/* Pages that share slots (a 16-slot TLB) and addresses with high bits set. */
	static const uint64_t las[] = { 0, 0x10000, 0x20000, 0x201000, 0x7fffffffe000ull, 0xffff800000000000ull,
					0x8000000000010000ull, 0x40000000, 0x40010000, 0xfffffffffffff000ull };
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	vmem_tlb *t;
	assert_int_equal(vmem_tlb_new(NULL, 4, &t), VMEM_OK);
	nref = 0;
	for (unsigned step = 0; step < 200000; step++) {
		vmem_tlb_tag tg = { vpids[rnd(&seed) % 5], pcids[rnd(&seed) % 5], epts[rnd(&seed) % NEPTS] };
		uint64_t la = las[rnd(&seed) % 10] + (rnd(&seed) % 3) * 0x1000 + (rnd(&seed) & 0xfff);
		unsigned what = (unsigned)(rnd(&seed) % 8);
		if (what < 3 && nref < NREF) {
			uint64_t size = sizes[rnd(&seed) % 6], lsize = sizes[rnd(&seed) % 6];
			lsize = lsize < size ? size : lsize; /* a piece of a larger guest page, or the page */
			vmem_tlb_xlat x = { (rnd(&seed) & 0xffffff000ull) | (la & (size - 1)), size,
					    (uint8_t)(rnd(&seed) & 7), (uint8_t)(rnd(&seed) & 1), (uint8_t)(rnd(&seed) & 1), 0 };
			assert_int_equal(vmem_tlb_insert_piece(t, &tg, la, &x, lsize), VMEM_OK);
			struct ref r = { tg.vpid, tg.pcid, EP4TA(tg.eptp), la & ~(size - 1), size,
					 x.pa & ~(size - 1), x.perms, x.global, x.dirty, 1, tg.eptp != 0, lsize };
			for (unsigned i = 0; i < nref; i++) /* the same translation, replaced */
				if (R[i].live && R[i].vpid == r.vpid && R[i].pcid == r.pcid && R[i].ep4ta == r.ep4ta &&
				    R[i].ept_on == r.ept_on && R[i].base == r.base && R[i].size == r.size)
					R[i].live = 0;
			R[nref++] = r;
			/* Just inserted: found, unless the tag is one never cached. */
			vmem_tlb_xlat y;
			bool cached = tg.pcid <= 0xfff && !(tg.eptp & 0x000f000000000000ull) &&
				      !(tg.eptp && !EP4TA(tg.eptp)); /* EPT on at EP4TA 0: never cached */
			assert_int_equal(vmem_tlb_lookup(t, &tg, la, &y), cached);
			model_check(t, &tg, la);
		} else if (what < 4) {
			model_invalidate(t, &seed, &tg, la);
		} else {
			model_check(t, &tg, la);
		}
		if (nref == NREF) { /* compact the model */
			unsigned k = 0;
			for (unsigned i = 0; i < nref; i++)
				if (R[i].live)
					R[k++] = R[i];
			nref = k;
		}
	}
	vmem_tlb_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_tags),
		cmocka_unit_test(test_invalidation_table),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_inline_hit),
		cmocka_unit_test(test_wide_tags),
		cmocka_unit_test(test_ept_off_on),
		cmocka_unit_test(test_clean_write),
		cmocka_unit_test(test_splinters),
		cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
