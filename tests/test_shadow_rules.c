/* Shadow paging, hand-worked SDM rules: P 0->1 without INVLPG, RSVD, a 2-MiB page in 4-KiB leaves, protection keys, host registers, I/D, PCID roots, host flush on a root switch, A after aging. */
#include "shadow_env.h"

/* SDM 4.10.4.3: nothing caches a P = 0 entry, so a guest store making a PTE or
 * PDE present is seen by the next access, with no INVLPG. */
static void t_np_to_p(void **st)
{
	(void)st;
	struct env e;
	env_filled(&e, 0); /* PT 0x4000 shadowed */
	vmem_shadow_fault_result r = fault(&e, LA + 0x5000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, 0);
	uint64_t v = 0x15000 | P | RW | D;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000 + 5 * 8, &v, 8), VMEM_OK);
	r = fault(&e, LA + 0x5000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(r.gpa, 0x15000);
	assert_int_equal(sleaf(&e, LA + 0x5000, 4), hpa(&e, 0x15000) | P | RW | A | D);
	/* A PDE (PD 0x3000 is shadowed too): PD[5] -> the same PT, la 0xa00000 + 5 pages. */
	assert_int_equal(fault(&e, 0xa05000, VMEM_ACC_READ).outcome, VMEM_SHADOW_INJECT_PF);
	v = 0x4000 | P | RW | US;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x3000 + 5 * 8, &v, 8), VMEM_OK);
	r = fault(&e, 0xa05000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(r.gpa, 0x15000);
	assert_int_equal(*g64(&e, 0x3000 + 5 * 8), 0x4000 | P | RW | US | A);
	env_fini(&e);
}

/* SDM 4.7: a reserved bit (51:48 with MAXPHYADDR 48) gives #PF with P and RSVD,
 * W for a write; the leaf filled before the guest set it is gone. */
static void t_rsvd(void **st)
{
	(void)st;
	struct env e;
	env_filled(&e, 0);
	uint64_t v = 0x10000 | P | RW | A | D | 1ull << 50;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000, &v, 8), VMEM_OK);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	vmem_shadow_fault_result r = fault(&e, LA + 8, VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_RSVD);
	assert_int_equal(r.cr2, LA + 8);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	env_fini(&e);
}

/* A 2-MiB guest page in 4-KiB shadow leaves: D lives in the PDE (SDM 4.8), so
 * leaves filled after the first write are writable at once, those before are
 * not; U/S is the AND of every level (SDM 4.6.1). */
static void t_large_split(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	*g64(&e, 0x3000 + 4 * 8) = 0x200000 | P | RW | US | PS; /* la 0x800000 -> 2 MiB at 0x200000 */
	assert_int_equal(fault(&e, 0x805000, VMEM_ACC_USER).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x805000, 4), hpa(&e, 0x205000) | P | US | A);
	assert_int_equal(*g64(&e, 0x3000 + 32), 0x200000 | P | RW | US | PS | A);
	assert_int_equal(fault(&e, 0x807008, VMEM_ACC_USER | VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x807000, 4), hpa(&e, 0x207000) | P | RW | US | A | D);
	assert_int_equal(*g64(&e, 0x3000 + 32), 0x200000 | P | RW | US | PS | A | D);
	assert_int_equal(fault(&e, 0x809000, VMEM_ACC_USER).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x809000, 4), hpa(&e, 0x209000) | P | RW | US | A | D);
	assert_int_equal(sleaf(&e, 0x805000, 4), hpa(&e, 0x205000) | P | US | A);
	/* The PDPTE turns supervisor: every leaf below goes; user reads fault, supervisor reads fill. */
	uint64_t v = 0x3000 | P | RW;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x2000, &v, 8), VMEM_OK);
	assert_int_equal(sleaf(&e, 0x809000, 4), 0);
	vmem_shadow_fault_result r = fault(&e, 0x809000, VMEM_ACC_USER);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_U);
	assert_int_equal(fault(&e, 0x809000, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x809000, 4), hpa(&e, 0x209000) | P | RW | A | D);
	env_fini(&e);
}

/* Protection keys (SDM 4.6.2): the leaf carries the key, the host runs with
 * the guest's PKRU; WD stops user writes always, supervisor writes only with
 * CR0.WP = 1 (so with WP = 0 they are emulated). */
static void t_pke(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, VMEM_CR4_PKE);
	const uint64_t key5 = 5ull << VMEM_PTE_PKEY_SHIFT;
	set_pte(&e, 0, 0x10000 | P | RW | US | D | key5);
	vmem_shadow_set_pkru(e.sh, 1u << (2 * 5 + 1)); /* WD for key 5 */
	assert_int_equal(fault(&e, LA, VMEM_ACC_USER).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | US | A | D | key5);
	vmem_regs h;
	vmem_shadow_host_regs(e.sh, &h);
	assert_int_equal(h.cr4 & VMEM_CR4_PKE, VMEM_CR4_PKE);
	assert_int_equal(h.pkru, 1u << 11);
	vmem_shadow_fault_result r = fault(&e, LA, VMEM_ACC_USER | VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U | VMEM_PFEC_PK);
	e.regs.cr0 &= ~VMEM_CR0_WP;
	e.regs.pkru = 1u << 11;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	r = fault(&e, LA, VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(r.reason, VMEM_SHADOW_EMU_WP0);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | US | A | D | key5);
	r = fault(&e, LA, VMEM_ACC_USER | VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U | VMEM_PFEC_PK);
	env_fini(&e);
}

/* The host registers: WP and NXE always, the guest's SMEP/SMAP only with guest
 * paging on, PKE only for IA-32e paging (keys do not exist elsewhere, SDM 4.6.2). */
static void t_host_regs(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	vmem_regs_init(&e.regs);
	e.regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;         /* 32-bit paging, WP = 0 */
	e.regs.cr4 = VMEM_CR4_SMEP | VMEM_CR4_SMAP | VMEM_CR4_PKE;
	e.regs.cr3 = 0x1000;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	vmem_regs h;
	vmem_shadow_host_regs(e.sh, &h);
	assert_int_equal(h.cr0, VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP);
	assert_int_equal(h.cr4, VMEM_CR4_PAE | VMEM_CR4_SMEP | VMEM_CR4_SMAP);
	assert_int_equal(h.efer, VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE);
	assert_int_equal(h.cr3, vmem_shadow_root(e.sh));
	e.regs.cr0 = VMEM_CR0_PE;                       /* paging off: SMEP/SMAP do not apply */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	vmem_shadow_host_regs(e.sh, &h);
	assert_int_equal(h.cr4, VMEM_CR4_PAE);
	env_fini(&e);
}

/* SDM 4.7: a fetch from an XD page with NXE = 1 reports P and I/D; the leaf a read fills has XD. */
static void t_fetch_xd(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 0, 0x10000 | P | RW | D | XD);
	vmem_shadow_fault_result r = fault(&e, LA + 0x10, VMEM_ACC_FETCH);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_I);
	assert_int_equal(r.cr2, LA + 0x10);
	assert_int_equal(fault(&e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | A | D | XD);
	env_fini(&e);
}

/* MOV CR3 with a PCID and bit 63 (no flush) names the same tables: the same
 * root, fills kept (the shadow is never stale, SDM 4.10.4.1 lets it keep them). */
static void t_pcid_root(void **st)
{
	(void)st;
	struct env e;
	env_filled(&e, VMEM_CR4_PCIDE);
	*g64(&e, 0x5000) = 0x2000 | P | RW | US;           /* a second PML4, same tables below */
	uint64_t root = vmem_shadow_root(e.sh);
	vmem_regs o = e.regs;
	o.cr3 = 0x5000 | 7;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &o), VMEM_OK);
	assert_int_not_equal(vmem_shadow_root(e.sh), root);
	o.cr3 = 1ull << 63 | 0x1000 | 5;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &o), VMEM_OK);
	assert_int_equal(vmem_shadow_root(e.sh), root);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | A | D);
	env_fini(&e);
}

/* A guest MOV CR3 drops its non-global TLB entries (SDM 4.10.4.1), but the
 * host TLB tags entries by VPID and PCID (0: the host runs without PCIDE),
 * not by CR3: a switch to another root must ask for the flush (INVVPID, as
 * SDM Vol. 3C "Guidelines for Use of the INVVPID Instruction" says for an
 * emulated MOV CR3), or the old root's entries (here the WP = 0 root's
 * writable supervisor leaf) would serve the new root. */
static void t_switch_flush(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, 0, 0);
	set_pte(&e, 0, 0x10000 | P | D);                 /* supervisor, read-only */
	assert_int_equal(fault(&e, LA, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA, 4) & RW, RW);     /* CR0.WP = 0: writable */
	(void)vmem_shadow_take_flush(e.sh);
	e.regs.cr0 |= VMEM_CR0_WP;                       /* another role, another root */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	assert_true(vmem_shadow_take_flush(e.sh));
	assert_int_equal(fault(&e, LA, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_INJECT_PF);
	*g64(&e, 0x5000) = 0x2000 | P | RW | US;         /* another CR3 */
	e.regs.cr3 = 0x5000;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	assert_true(vmem_shadow_take_flush(e.sh));
	e.regs.cr3 = 0x1000;                             /* back to a cached root */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	assert_true(vmem_shadow_take_flush(e.sh));
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK); /* same root: its entries are current */
	assert_false(vmem_shadow_take_flush(e.sh));
	env_fini(&e);
}

/* Page aging (SDM 4.8, 4.10.4.1): the guest clears A and does INVLPG; the next
 * access walks again and sets A. */
static void t_aging(void **st)
{
	(void)st;
	struct env e;
	env_filled(&e, 0);
	assert_int_equal(*g64(&e, 0x4000), 0x10000 | P | RW | A | D);
	uint64_t v = 0x10000 | P | RW | D;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000, &v, 8), VMEM_OK);
	vmem_shadow_invlpg(e.sh, LA);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	assert_int_equal(fault(&e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(*g64(&e, 0x4000), 0x10000 | P | RW | A | D);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_np_to_p),   cmocka_unit_test(t_rsvd),     cmocka_unit_test(t_large_split),
		cmocka_unit_test(t_pke),       cmocka_unit_test(t_host_regs), cmocka_unit_test(t_fetch_xd),
		cmocka_unit_test(t_pcid_root), cmocka_unit_test(t_switch_flush), cmocka_unit_test(t_aging),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
