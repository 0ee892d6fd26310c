/* Shadow paging, hand-worked: fill rights, A/D emulation, injected #PF, host limits, table writes, roots, INVLPG, CR0.WP = 0, 32-bit and PAE guests, budget, MMIO, EPT. */
#include "shadow_env.h"

/* Rights are guest ∩ host; guest A is set on every level by the fill. */
static void t_fill_rights(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 0, 0x10000 | P | US | XD);         /* user, read-only, no-exec */
	set_pte(&e, 1, 0x11000 | P | RW | D);          /* supervisor, writable, dirty */
	vmem_shadow_fault_result r = fault(&e, LA + 0x123, VMEM_ACC_USER);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(r.gpa, 0x10123);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | US | A | XD);
	/* A on every guest level, D untouched (a read). */
	assert_int_equal(*g64(&e, 0x1000), 0x2000 | P | RW | US | A);
	assert_int_equal(*g64(&e, 0x3000 + 16), 0x4000 | P | RW | US | A);
	assert_int_equal(*g64(&e, 0x4000), 0x10000 | P | US | XD | A);
	r = fault(&e, LA + 0x1000, VMEM_ACC_FETCH);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x1000, 4), hpa(&e, 0x11000) | P | RW | A | D);
	env_fini(&e);
}

/* D emulation (SDM 4.8): read-only until the first write sets the guest's D. */
static void t_dirty(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 3, 0x12000 | P | RW | US);
	assert_int_equal(fault(&e, LA + 0x3000, VMEM_ACC_USER).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x3000, 4), hpa(&e, 0x12000) | P | US | A);
	assert_int_equal(*g64(&e, 0x4000 + 24), 0x12000 | P | RW | US | A);
	assert_int_equal(fault(&e, LA + 0x3008, VMEM_ACC_USER | VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x3000, 4), hpa(&e, 0x12000) | P | RW | US | A | D);
	assert_int_equal(*g64(&e, 0x4000 + 24), 0x12000 | P | RW | US | A | D);
	/* The guest clears D through an emulated write: the leaf goes. */
	uint64_t v = 0x12000 | P | RW | US | A;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000 + 24, &v, 8), VMEM_OK);
	audit(&e);
	assert_int_equal(sleaf(&e, LA + 0x3000, 4), 0);
	env_fini(&e);
}

/* Faults the guest sees: exact error codes, CR2, no A written. */
static void t_inject(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, VMEM_CR4_SMEP);
	set_pte(&e, 4, 0x13000 | P | RW);                /* supervisor page */
	vmem_shadow_fault_result r = fault(&e, LA + 0x5000, VMEM_ACC_READ); /* PTE not present */
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.cr2, LA + 0x5000);
	r = fault(&e, LA + 0x4010, VMEM_ACC_USER | VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U);
	assert_int_equal(*g64(&e, 0x4000 + 32), 0x13000 | P | RW); /* no A on a failed walk */
	r = fault(&e, 0x0000800000000000ull, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_GP);
	*g64(&e, 0x3000 + 3 * 8) = 0x7f00000 | P;        /* PD entry -> a PT outside guest memory */
	r = fault(&e, 0x600000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_BAD_TABLE);
	assert_int_equal(r.gpa, 0x7f00000 + 8 * 0);
	assert_int_equal(sleaf(&e, LA + 0x4000, 4), 0);
	env_fini(&e);
}

/* Host limits: read-only slot -> no W, no-exec slot -> XD; going past them is the VMM's business. */
static void t_host_limits(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 5, RO_GPA | P | RW | D);
	set_pte(&e, 6, NX_GPA | P | RW | D);
	assert_int_equal(fault(&e, LA + 0x5000, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x5000, 4), hpa(&e, RO_GPA) | P | A);
	vmem_shadow_fault_result r = fault(&e, LA + 0x5000, VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_HOST_FAULT);
	assert_int_equal(r.gpa, RO_GPA);
	assert_int_equal(fault(&e, LA + 0x6000, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x6000, 4), hpa(&e, NX_GPA) | P | RW | A | D | XD);
	assert_int_equal(fault(&e, LA + 0x6000, VMEM_ACC_FETCH).outcome, VMEM_SHADOW_HOST_FAULT);
	set_pte(&e, 7, 0x80000000ull | P | RW);          /* a hole: MMIO to the VMM */
	r = fault(&e, LA + 0x7004, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(r.reason, VMEM_SHADOW_EMU_MMIO);
	assert_int_equal(r.gpa, 0x80000004ull);
	env_fini(&e);
}

/* Guest tables are write-protected; writes are emulated and drop what depended on them. */
static void t_table_writes(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 0, 0x10000 | P | RW | D);
	set_pte(&e, 8, 0x4000 | P | RW | D);             /* the PT mapped at LA + 8 pages */
	set_pte(&e, 9, 0x20000 | P | RW | D);            /* a data page, soon a table */
	assert_int_equal(fault(&e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	vmem_shadow_fault_result r = fault(&e, LA + 0x8000, VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(r.reason, VMEM_SHADOW_EMU_PT_WRITE);
	assert_int_equal(r.gpa, 0x4000);
	assert_int_equal(sleaf(&e, LA + 0x8000, 4), hpa(&e, 0x4000) | P | A); /* reads need no exit */
	uint64_t v = 0x10000 | P | D | A;                /* PT[0] loses R/W */
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000, &v, 8), VMEM_OK);
	audit(&e);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	assert_int_equal(sleaf(&e, LA + 0x8000, 4), hpa(&e, 0x4000) | P | A); /* other entries stay */
	/* Data page 0x20000 mapped writable, then becomes a PT (PD[3] -> 0x20000): write-protected. */
	assert_int_equal(fault(&e, LA + 0x9000, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x9000, 4) & RW, RW);
	*g64(&e, 0x20000) = 0x14000 | P | RW | D;
	v = 0x20000 | P | RW | US;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x3000 + 3 * 8, &v, 8), VMEM_OK);
	assert_int_equal(fault(&e, 0x600000, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA + 0x9000, 4), hpa(&e, 0x20000) | P | A | D);
	/* Only A/D set by the write: nothing dropped. */
	v = *g64(&e, 0x4000 + 9 * 8) | A | D;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000 + 9 * 8, &v, 8), VMEM_OK);
	assert_int_not_equal(sleaf(&e, LA + 0x9000, 4), 0);
	/* Notify (DMA) drops too. */
	vmem_shadow_notify_write(e.sh, 0x4000 + 9 * 8, 8);
	assert_int_equal(sleaf(&e, LA + 0x9000, 4), 0);
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0xffc, &v, 8), VMEM_E_INVAL); /* crosses a page */
	assert_int_not_equal(vmem_shadow_emulate_write(e.sh, RO_GPA, &v, 8), VMEM_OK); /* read-only slot */
	assert_int_equal(*g64(&e, RO_GPA), 0);
	env_fini(&e);
}

/* Roots: a CR3 seen recently comes back with its fills; PCID bits do not matter. */
static void t_roots(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 0, 0x10000 | P | RW | D);
	*g64(&e, 0x5000) = 0x2000 | P | RW | US;         /* second PML4, same lower tables */
	assert_int_equal(fault(&e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	uint64_t root_a = vmem_shadow_root(e.sh);
	vmem_regs b = e.regs;
	b.cr3 = 0x5000;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &b), VMEM_OK);
	assert_int_not_equal(vmem_shadow_root(e.sh), root_a);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	vmem_shadow_stats s0, s1;
	vmem_shadow_get_stats(e.sh, &s0);
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	vmem_shadow_get_stats(e.sh, &s1);
	assert_int_equal(vmem_shadow_root(e.sh), root_a);
	assert_int_equal(s1.root_hits, s0.root_hits + 1);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | A | D);
	/* A role change (CR0.WP) is another root. */
	vmem_regs c = e.regs;
	c.cr0 &= ~VMEM_CR0_WP;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &c), VMEM_OK);
	assert_int_not_equal(vmem_shadow_root(e.sh), root_a);
	/* Invalid registers change nothing. */
	vmem_regs bad = e.regs;
	bad.cr3 |= 1ull << 60;
	uint64_t before = vmem_shadow_root(e.sh);
	assert_int_equal(vmem_shadow_set_regs(e.sh, &bad), VMEM_E_INVAL);
	assert_int_equal(vmem_shadow_root(e.sh), before);
	vmem_regs five = e.regs;
	five.cr4 |= VMEM_CR4_LA57;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &five), VMEM_E_UNSUPPORTED);
	/* INVLPG drops the leaf. */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	vmem_shadow_invlpg(e.sh, LA + 0x10);
	assert_int_equal(sleaf(&e, LA, 4), 0);
	assert_true(vmem_shadow_take_flush(e.sh));
	assert_false(vmem_shadow_take_flush(e.sh));
	env_fini(&e);
}

/* CR0.WP = 0 (SDM 4.6.1): supervisor writes to read-only pages succeed. */
static void t_wp0(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_4level(&e, 0, 0);
	set_pte(&e, 0, 0x10000 | P | D);                 /* supervisor, read-only */
	set_pte(&e, 1, 0x11000 | P | US | D);            /* user, read-only */
	assert_int_equal(fault(&e, LA, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA, 4), hpa(&e, 0x10000) | P | RW | A | D);
	vmem_shadow_fault_result r = fault(&e, LA + 0x1000, VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(r.reason, VMEM_SHADOW_EMU_WP0);
	assert_int_equal(sleaf(&e, LA + 0x1000, 4), hpa(&e, 0x11000) | P | US | A);
	r = fault(&e, LA + 0x1000, VMEM_ACC_WRITE | VMEM_ACC_USER);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U);
	env_fini(&e);
}

/* 32-bit guest on a 5-level host: a 4-MiB page, 4-byte entries, a PDE write dropping both 2-MiB halves. */
static void t_32bit(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 5, 64);
	*g32(&e, 0x1000 + 4 * 3) = 0x00000000u | (uint32_t)(P | RW | US | PS | D); /* la 0xc00000 -> 4 MiB at 0 */
	*g32(&e, 0x1000 + 4 * 4) = 0x2000u | (uint32_t)(P | RW | US);
	*g32(&e, 0x2000 + 4 * 5) = 0x15000u | (uint32_t)(P | US);
	vmem_regs_init(&e.regs);
	e.regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	e.regs.cr4 = VMEM_CR4_PSE;
	e.regs.cr3 = 0x1000;
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	/* 0xc00000 + 0x201234 -> 0x201234 (in the second 2-MiB half). */
	vmem_shadow_fault_result r = fault(&e, 0xe01234, VMEM_ACC_USER | VMEM_ACC_WRITE);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(r.gpa, 0x201234);
	assert_int_equal(sleaf(&e, 0xe01000, 5), hpa(&e, 0x201000) | P | RW | US | A | D);
	assert_int_equal(fault(&e, 0xc00000, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(*g32(&e, 0x1000 + 12), 0x00000000u | (uint32_t)(P | RW | US | PS | D | A));
	r = fault(&e, 0x1005000, VMEM_ACC_READ);
	assert_int_equal(r.reason, 0);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x1005000, 5), hpa(&e, 0x15000) | P | US | A);
	uint32_t v = 0;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x1000 + 12, &v, 4), VMEM_OK);
	audit(&e);
	assert_int_equal(sleaf(&e, 0xe01000, 5), 0);
	assert_int_equal(sleaf(&e, 0xc00000, 5), 0);
	assert_int_not_equal(sleaf(&e, 0x1005000, 5), 0);
	env_fini(&e);
}

/* PAE guest: PDPT at 0x1020, PDPTE[1] -> PD 0x2000 -> PT 0x3000; la 0x40007000 -> 0x16000 (no-exec). */
static void guest_pae(struct env *e)
{
	*g64(e, 0x1020 + 8 * 1) = 0x2000 | P;
	*g64(e, 0x2000 + 8 * 0) = 0x3000 | P | RW;
	*g64(e, 0x3000 + 8 * 7) = 0x16000 | P | RW | XD;
	vmem_regs_init(&e->regs);
	e->regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	e->regs.cr4 = VMEM_CR4_PAE;
	e->regs.efer = VMEM_EFER_NXE;
	e->regs.cr3 = 0x1020;
	assert_int_equal(vmem_shadow_set_regs(e->sh, &e->regs), VMEM_OK);
}

/* PAE: PDPTEs are registers, loaded by MOV CR3 (SDM 4.4.1). */
static void t_pae(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_pae(&e);
	assert_int_equal(fault(&e, 0x40007000, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, 0x40007000, 4), hpa(&e, 0x16000) | P | RW | A | D | XD);
	assert_int_equal(*g64(&e, 0x1028), 0x2000 | P); /* a PDPTE takes no A */
	/* Writing the PDPT in memory changes nothing until the next MOV CR3. */
	*g64(&e, 0x1028) = 0;
	assert_int_equal(fault(&e, 0x40007000, VMEM_ACC_FETCH).outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(sleaf(&e, 0x40007000, 4) & P, P);
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	assert_int_equal(fault(&e, 0x40007000, VMEM_ACC_READ).outcome, VMEM_SHADOW_INJECT_PF);
	*g64(&e, 0x1028) = 0x2000 | P | RW;              /* R/W is reserved in a PDPTE: MOV CR3 #GP */
	uint64_t root = vmem_shadow_root(e.sh);
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_E_INVAL);
	assert_int_equal(vmem_shadow_root(e.sh), root);
	env_fini(&e);
}

/* PAE: MOV CR0/CR4 reload the PDPTEs only when they change CR0.CD/NW/PG or
 * CR4.PAE/PGE/PSE/SMEP (SDM 4.4.1); toggling CR0.WP or CR4.SMAP keeps them. */
static void t_pae_keep(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	guest_pae(&e);
	*g64(&e, 0x1028) = 0;                            /* the PDPT in memory, not the register */
	e.regs.cr0 &= ~VMEM_CR0_WP;                      /* MOV CR0: WP only, no load */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	vmem_shadow_fault_result r = fault(&e, 0x40007000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(r.gpa, 0x16000);
	e.regs.cr4 |= VMEM_CR4_SMAP;                     /* MOV CR4: SMAP only, no load */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	assert_int_equal(fault(&e, 0x40007000, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	e.regs.cr4 |= VMEM_CR4_SMEP;                     /* MOV CR4: SMEP is in the list: load */
	assert_int_equal(vmem_shadow_set_regs(e.sh, &e.regs), VMEM_OK);
	r = fault(&e, 0x40007000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_INJECT_PF);
	assert_int_equal(r.error_code, 0);               /* PDPTE[1] not present, supervisor read */
	env_fini(&e);
}

/* A budget of 8 pages: every fill still works, older tables go first. */
static void t_budget(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, VMEM_SHADOW_MIN_PAGES);
	guest_4level(&e, VMEM_CR0_WP, 0);
	for (unsigned i = 0; i < 32; i++) {          /* 32 PDEs -> 32 guest PTs, all sharing 0x4000 */
		*g64(&e, 0x3000 + 8 * (8 + i)) = 0x4000 | P | RW | US;
		set_pte(&e, i, (0x30000 + 0x1000ull * i) | P | RW | D);
	}
	for (unsigned i = 0; i < 32; i++) {
		uint64_t la = (8ull + i) << 21 | (uint64_t)i << 12;
		assert_int_equal(fault(&e, la, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_FIXED);
		assert_int_equal(sleaf(&e, la, 4), hpa(&e, 0x30000 + 0x1000ull * i) | P | RW | A | D);
		vmem_shadow_stats s;
		vmem_shadow_get_stats(e.sh, &s);
		assert_true(s.pages <= VMEM_SHADOW_MIN_PAGES);
	}
	vmem_shadow_stats s;
	vmem_shadow_get_stats(e.sh, &s);
	assert_true(s.reclaimed > 0);
	/* Writing the shared PT drops its entry in every shadow PT that follows it. */
	uint64_t z = 0;
	assert_int_equal(vmem_shadow_emulate_write(e.sh, 0x4000 + 31 * 8, &z, 8), VMEM_OK);
	assert_int_equal(sleaf(&e, (39ull << 21) | (31ull << 12), 4), 0);
	env_fini(&e);
}

static int mmio_fn(void *o, uint64_t gpa, unsigned size, bool w, uint64_t *val)
{
	(void)o; (void)gpa; (void)size;
	if (!w)
		*val = 0x3000 | P | RW; /* a "table" in MMIO */
	return 0;
}

/* Tables in MMIO cannot be write-protected: never shadowed. */
static void t_mmio_table(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	assert_int_equal(vmem_gmem_add_mmio(e.gm, 0x800000, 0x1000, mmio_fn, NULL), VMEM_OK);
	guest_4level(&e, VMEM_CR0_WP, 0);
	*g64(&e, 0x2000 + 8) = 0x800000 | P | RW;        /* PDPT[1] -> a PD in MMIO */
	*g64(&e, 0x3000) = 0x17000 | P | RW | D;         /* every MMIO PDE -> PT 0x3000; its [0] -> 0x17000 */
	vmem_shadow_fault_result r = fault(&e, 0x40000000, VMEM_ACC_READ);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(r.reason, VMEM_SHADOW_EMU_TABLE_MMIO);
	assert_int_equal(sleaf(&e, 0x40000000, 4), 0);
	env_fini(&e);
}

/* With an EPT, host frames and rights come from it. */
static void t_ept(void **st)
{
	(void)st;
	struct env e;
	env_init(&e, 4, 64);
	vmem_ept_config ec = { .levels = 4, .eptp_mt = VMEM_MT_WB };
	vmem_ept *ept;
	assert_int_equal(vmem_ept_new(NULL, &ec, &ept), VMEM_OK);
	uint64_t h = hpa(&e, 0);
	assert_int_equal(vmem_ept_grant(ept, h, RAM_SIZE), VMEM_OK);
	assert_int_equal(vmem_ept_map(ept, 0, h, RAM_SIZE, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X,
				      VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_protect(ept, 0x18000, 0x1000, VMEM_EPT_R, NULL), VMEM_OK);
	vmem_shadow_free(e.sh);
	vmem_shadow_config c = { .gmem = e.gm, .ept = ept, .host_levels = 4, .max_pages = 64, .max_roots = 2 };
	assert_int_equal(vmem_shadow_new(&c, &e.sh), VMEM_OK);
	guest_4level(&e, VMEM_CR0_WP, 0);
	set_pte(&e, 0, 0x18000 | P | RW | D);
	assert_int_equal(fault(&e, LA, VMEM_ACC_READ).outcome, VMEM_SHADOW_FIXED);
	assert_int_equal(sleaf(&e, LA, 4), (h + 0x18000) | P | A | XD);
	assert_int_equal(fault(&e, LA, VMEM_ACC_WRITE).outcome, VMEM_SHADOW_HOST_FAULT);
	env_fini(&e);
	vmem_ept_free(ept);
}

static void t_bad_config(void **st)
{
	(void)st;
	vmem_gmem *gm;
	vmem_shadow *sh;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	vmem_shadow_config c = { .gmem = gm, .host_levels = 3, .max_pages = 64, .max_roots = 1 };
	assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_E_INVAL);
	c.host_levels = 4;
	c.max_pages = VMEM_SHADOW_MIN_PAGES - 1;
	assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_E_INVAL);
	c.max_pages = 64;
	c.max_roots = 0;
	assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_E_INVAL);
	c.max_roots = 1;
	c.gmem = NULL;
	assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_E_INVAL);
	c.gmem = gm;
	assert_int_equal(vmem_shadow_new(&c, &sh), VMEM_OK);
	vmem_shadow_fault_result r;
	assert_int_equal(vmem_shadow_fault(sh, 0, VMEM_ACC_WRITE | VMEM_ACC_FETCH, &r), VMEM_E_INVAL);
	assert_int_equal(vmem_shadow_fault(sh, 0, 1u << 9, &r), VMEM_E_INVAL);
	/* Paging off: la = gpa; nothing there -> MMIO. */
	assert_int_equal(vmem_shadow_fault(sh, 0x1000, VMEM_ACC_READ, &r), VMEM_OK);
	assert_int_equal(r.outcome, VMEM_SHADOW_EMULATE);
	assert_int_equal(vmem_shadow_audit(sh, NULL, 0), VMEM_OK);
	vmem_shadow_free(sh);
	vmem_gmem_free(gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_fill_rights), cmocka_unit_test(t_dirty), cmocka_unit_test(t_inject),
		cmocka_unit_test(t_host_limits), cmocka_unit_test(t_table_writes), cmocka_unit_test(t_roots),
		cmocka_unit_test(t_wp0), cmocka_unit_test(t_32bit), cmocka_unit_test(t_pae), cmocka_unit_test(t_pae_keep),
		cmocka_unit_test(t_budget), cmocka_unit_test(t_mmio_table), cmocka_unit_test(t_ept),
		cmocka_unit_test(t_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
