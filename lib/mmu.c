/* libvmem MMU: derive the paging mode from control registers and precompute its masks and permission tables. */
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "mmu_int.h"

void vmem_regs_init(vmem_regs *r)
{
	if (!r)
		return;
	vmi_memset(r, 0, sizeof(*r));
	r->cr0 = 0x60000010; /* reset value: CD, NW, ET */
	r->maxphyaddr = 48;
	r->gbpages = true;
}

vmem_mode vmem_regs_mode(const vmem_regs *r)
{
	/* SDM 4.1.1, Table 4-1. */
	if (!(r->cr0 & VMEM_CR0_PG))
		return VMEM_MODE_NONE;
	if (!(r->cr4 & VMEM_CR4_PAE))
		return VMEM_MODE_32BIT;
	if (!(r->efer & VMEM_EFER_LMA))
		return VMEM_MODE_PAE;
	return (r->cr4 & VMEM_CR4_LA57) ? VMEM_MODE_5LEVEL : VMEM_MODE_4LEVEL;
}

const char *vmem_mode_name(vmem_mode m)
{
	static const char *const names[] = { "none", "32-bit", "PAE", "4-level", "5-level" };
	return (unsigned)m < 5 ? names[m] : "invalid";
}

/* The SDM 4.6 access-rights rules, evaluated once per (access, pte_access) pair. */
static bool rights_fault(const vmem_regs *r, unsigned acc, unsigned pa)
{
	bool write = acc & VMEM_ACC_WRITE, fetch = acc & VMEM_ACC_FETCH;
	bool user = (acc & VMEM_ACC_USER) && !(acc & VMEM_ACC_IMPLICIT);
	bool implicit = acc & VMEM_ACC_IMPLICIT;
	bool ac = acc & VMEM_ACC_AC;
	bool wp = r->cr0 & VMEM_CR0_WP, smep = r->cr4 & VMEM_CR4_SMEP, smap = r->cr4 & VMEM_CR4_SMAP;
	bool w = pa & PA_W, u = pa & PA_U, x = pa & PA_X;

	if (user) {                           /* SDM 4.6.1, user-mode accesses */
		if (!u)
			return true;
		if (write)
			return !w;
		if (fetch)
			return !x;
		return false;
	}
	if (fetch)                            /* supervisor fetch: SMEP forbids user pages */
		return (u && smep) || !x;
	/* Supervisor data access to a user page under SMAP: only explicit with AC=1. */
	if (u && smap && (implicit || !ac))
		return true;
	if (write)                            /* CR0.WP=0 lets supervisor writes ignore R/W */
		return wp && !w;
	return false;
}

/* The IA-32e fast path's descriptor (mmu_int.h): derived from the tables above. */
static void fast_build(struct vmem_mmu *m, const vmem_regs *r, vmem_mode mode,
		       uint64_t rsvd_all, uint64_t frame4k)
{
	bool long_mode = mode >= VMEM_MODE_4LEVEL;
	unsigned M = r->maxphyaddr;
	m->fast_ok = long_mode ? m->acc_ok : 0;
	m->ftop = long_mode ? m->top : 0;
	m->canon_add = 1ull << (m->va_bits - 1);
	m->canon_lim = 1ull << m->va_bits;
	m->froot = m->root;
	m->fframe = frame4k;
	m->flarge3 = r->gbpages ? VMI_BITS(29, 13) : VMEM_PTE_PS;
	m->flarge2 = VMI_BITS(20, 13);
	m->fframe3 = VMI_BITS(M - 1, 30);
	for (unsigned k = 0; k < 2 * MMU_ACC_INDEXES; k++) {
		unsigned acc = k % MMU_ACC_INDEXES;
		bool noad = k >= MMU_ACC_INDEXES, write = acc & VMEM_ACC_WRITE;
		struct mmu_facc *f = &m->facc[k];
		f->mask = f->want = VMEM_PTE_P;
		if (!noad) {
			f->mask |= VMEM_PTE_A | (write ? VMEM_PTE_D : 0);
			f->want |= VMEM_PTE_A | (write ? VMEM_PTE_D : 0);
		}
		f->bad = rsvd_all;
		/* The pte_access values that do not fault: a cube over (W, U, X)? */
		unsigned okset = (~(unsigned)m->perm[acc]) & 0xff, cube = 0xff;
		unsigned fixed = 0, val = 0;
		for (unsigned b = 0; b < 3; b++) {
			unsigned with = 0, without = 0;
			for (unsigned pa = 0; pa < 8; pa++)
				if ((okset >> pa) & 1)
					*((pa >> b) & 1 ? &with : &without) = 1;
			if (with && !without) {
				fixed |= 1u << b, val |= 1u << b;
			} else if (!with && without) {
				fixed |= 1u << b;
			}
		}
		for (unsigned pa = 0; pa < 8; pa++)
			if ((pa & fixed) != val)
				cube &= ~(1u << pa);
		bool gen = !okset || cube != okset || ((fixed & PA_X) && !(val & PA_X)) ||
			   (m->pkmask[acc] && !((fixed & PA_U) && !(val & PA_U)));
		if (fixed & PA_W) {
			f->mask |= VMEM_PTE_RW;
			f->want |= (val & PA_W) ? VMEM_PTE_RW : 0;
		}
		if (fixed & PA_U) {
			f->mask |= VMEM_PTE_US;
			f->want |= (val & PA_U) ? VMEM_PTE_US : 0;
		}
		if ((fixed & PA_X) && (val & PA_X))
			f->bad |= VMEM_PTE_XD;
		if (gen)
			f->want |= FACC_GEN;
	}
	/* The window path's masks, the same rules with the flipped bits (mmu_int.h). */
	m->wpfn = m->root >> 12;
	m->wroot = m->root;
	m->wframe = frame4k;
	for (unsigned i = 0; i < 16; i++) /* W from R/W, U from U/S, X from XD (walk.c: win_result) */
		m->wperm[i] = (uint64_t)((i >> 2) & 1) << 48 | (uint64_t)((i >> 3) & 1) << 49 | (uint64_t)(i & 1) << 50;
	for (unsigned k = 0; k < WIN_KEYS; k++) {
		const struct mmu_facc *f = &m->facc[(k >> 1) | (k & 1) << 5];
		bool ok = long_mode && ((m->acc_ok >> (k >> 1)) & 1) && !(f->want & FACC_GEN);
		m->wtop[k] = ok ? m->top : 0;
		m->wasm[k] = ok && m->top == 4 && m->bmi2 ? 4 : 0;
		m->wclim[k] = m->wasm[k] ? m->canon_lim : 0;
		m->wtest[k] = f->mask | f->bad;
		m->wwant[k] = f->mask & ~f->want;
		m->wtail[k] = ((7ull << 48) ^ ((m->wwant[k] & (VMEM_PTE_RW | VMEM_PTE_US)) << 47)) | (1ull << 40);
	}
}

static void mmu_build(struct vmem_mmu *m, const vmem_regs *r, vmem_mode mode)
{
	unsigned M = r->maxphyaddr;
	bool nxe = r->efer & VMEM_EFER_NXE;
	uint64_t xd = nxe ? 0 : VMEM_PTE_XD; /* XD reserved when EFER.NXE = 0 (SDM 4.4, 4.5) */
	uint64_t pa_hi = VMI_BITS(51, M);    /* bits 51:MAXPHYADDR reserved */
	uint64_t frame4k = VMI_BITS(M - 1, 12);

	vmi_memset(m->rsvd, 0, sizeof(m->rsvd));
	vmi_memset(m->frame, 0, sizeof(m->frame));
	vmi_memset(m->large_ok, 0, sizeof(m->large_ok));
	m->mode = (uint8_t)mode;
	m->pdpte_rsvd = 0;

	switch (mode) {
	case VMEM_MODE_NONE:
		m->top = 0;
		m->va_bits = 32;
		break;
	case VMEM_MODE_32BIT: {
		/* SDM 4.3: 4-byte entries; no reserved bits except in a 4-MByte PDE. */
		unsigned m40 = M < 40 ? M : 40;
		m->top = 2;
		m->va_bits = 32;
		m->root = r->cr3 & 0xfffff000ull;
		m->frame[1][0] = 0xfffff000ull;
		m->frame[2][0] = 0xfffff000ull;
		if (r->cr4 & VMEM_CR4_PSE) {
			m->large_ok[2] = 1;
			/* PSE-36: PDE bits (M-20):13 hold PA (M-1):32, bits 21:(M-19) reserved (Table 4-4). */
			m->rsvd[2][1] = VMI_BITS(21, m40 - 32 + 13);
			m->frame[2][1] = 0xffc00000ull | VMI_BITS(m40 - 32 + 12, 13);
		}
		break;
	}
	case VMEM_MODE_PAE:
		/* SDM 4.4: PDPTE registers; PD and PT entries reserve 62:M. */
		m->top = 2;
		m->va_bits = 32;
		m->pdpte_rsvd = VMI_BITS(63, M) | VMI_BITS(8, 5) | VMI_BITS(2, 1);
		for (int l = 1; l <= 3; l++)
			m->rsvd[l][0] = m->rsvd[l][1] = VMI_BITS(62, M) | xd;
		m->rsvd[2][1] |= VMI_BITS(20, 13);
		m->large_ok[2] = 1;
		m->frame[1][0] = m->frame[2][0] = m->frame[3][0] = frame4k;
		m->frame[2][1] = VMI_BITS(M - 1, 21);
		break;
	case VMEM_MODE_4LEVEL:
	case VMEM_MODE_5LEVEL:
		/* SDM 4.5: 8-byte entries, bits 51:M reserved, bits 62:52 ignored (PK in leaves). */
		m->top = mode == VMEM_MODE_5LEVEL ? 5 : 4;
		m->va_bits = mode == VMEM_MODE_5LEVEL ? 57 : 48;
		m->root = r->cr3 & frame4k;
		for (int l = 1; l <= 5; l++) {
			m->rsvd[l][0] = m->rsvd[l][1] = pa_hi | xd;
			m->frame[l][0] = frame4k;
		}
		m->rsvd[5][1] |= VMEM_PTE_PS;  /* PS is reserved in a PML5E and a PML4E */
		m->rsvd[4][1] |= VMEM_PTE_PS;
		if (r->gbpages) {
			m->large_ok[3] = 1;
			m->rsvd[3][1] |= VMI_BITS(29, 13);  /* 1-GByte page: address bits 29:13 reserved */
			m->frame[3][1] = VMI_BITS(M - 1, 30);
		} else {
			m->rsvd[3][1] |= VMEM_PTE_PS;       /* no 1-GByte pages: PS reserved in a PDPTE */
		}
		m->large_ok[2] = 1;
		m->rsvd[2][1] |= VMI_BITS(20, 13);
		m->frame[2][1] = VMI_BITS(M - 1, 21);
		break;
	}
	/* Level 1 has no PS bit (bit 7 is PAT): both columns describe a PTE. */
	m->rsvd[1][1] = m->rsvd[1][0];
	m->frame[1][1] = m->frame[1][0];

	bool long_mode = mode >= VMEM_MODE_4LEVEL;
	bool pke = long_mode && (r->cr4 & VMEM_CR4_PKE); /* keys exist only in IA-32e paging (SDM 4.6.2) */
	/* I/D is reported for fetches only with SMEP or with NXE under PAE/IA-32e paging (SDM 4.7). */
	bool id = (r->cr4 & VMEM_CR4_SMEP) || (nxe && mode >= VMEM_MODE_PAE);
	for (unsigned acc = 0; acc < MMU_ACC_INDEXES; acc++) {
		bool write = acc & VMEM_ACC_WRITE, fetch = acc & VMEM_ACC_FETCH;
		bool user = (acc & VMEM_ACC_USER) && !(acc & VMEM_ACC_IMPLICIT);
		uint8_t mask = 0;
		for (unsigned pa = 0; pa < 8; pa++)
			if (rights_fault(r, acc, pa))
				mask |= (uint8_t)(1u << pa);
		m->perm[acc] = mask;
		m->pfec[acc] = (uint16_t)((write ? VMEM_PFEC_W : 0) | (user ? VMEM_PFEC_U : 0) |
					  (fetch && id ? VMEM_PFEC_I : 0));
		/* PKRU: data accesses to user pages; WD for writes by user or with CR0.WP. */
		m->pkmask[acc] = (uint8_t)(pke && !fetch ?
			1u | (write && (user || (r->cr0 & VMEM_CR0_WP)) ? 2u : 0u) : 0u);
	}
	for (int l = 1; l <= 5; l++) {
		bool ps_rsvd = l > 1 && (m->rsvd[l][1] & VMEM_PTE_PS);
		m->fchk[l] = m->rsvd[l][0] | (ps_rsvd ? VMEM_PTE_PS : 0) | VMEM_PTE_P;
		m->flarge[l] = m->rsvd[l][1] & ~VMEM_PTE_PS;
	}
	m->acc_ok = 0;
	for (unsigned acc = 0; acc < MMU_ACC_INDEXES; acc++)
		if ((acc & (VMEM_ACC_WRITE | VMEM_ACC_FETCH)) != (VMEM_ACC_WRITE | VMEM_ACC_FETCH))
			m->acc_ok |= 1u << acc;
	m->pkru = r->pkru;
	m->regs = *r;
	fast_build(m, r, mode, pa_hi | xd, frame4k);
}

static vmem_err regs_check(const vmem_regs *r)
{
	if (!r || r->maxphyaddr < 32 || r->maxphyaddr > 52)
		return VMEM_E_INVAL;
	if ((r->cr0 & VMEM_CR0_PG) && !(r->cr0 & VMEM_CR0_PE))
		return VMEM_E_INVAL;                       /* MOV CR0 #GP (SDM 2.5) */
	bool lma = r->efer & VMEM_EFER_LMA;
	if (lma && (!(r->efer & VMEM_EFER_LME) || !(r->cr4 & VMEM_CR4_PAE) || !(r->cr0 & VMEM_CR0_PG)))
		return VMEM_E_INVAL;                       /* LMA = LME & PG, which needs PAE */
	if (!lma && (r->efer & VMEM_EFER_LME) && (r->cr0 & VMEM_CR0_PG))
		return VMEM_E_INVAL;                       /* LME & PG without LMA cannot exist */
	if ((r->cr4 & VMEM_CR4_PCIDE) && !lma)
		return VMEM_E_INVAL;                       /* PCIDE only in IA-32e mode */
	if (lma && (r->cr3 & VMI_BITS(62, r->maxphyaddr)))
		return VMEM_E_INVAL;                       /* MOV CR3 #GP: reserved bits (SDM 2.5) */
	if (r->cr4 & VMEM_CR4_PKS)
		return VMEM_E_UNSUPPORTED;
	return VMEM_OK;
}

vmem_err vmem_mmu_new(const vmem_allocator *alloc, const vmem_regs *r, vmem_mmu **out)
{
	if (!out)
		return VMEM_E_INVAL;
	vmem_err e = regs_check(r);
	if (e)
		return e;
	struct vmem_mmu *m = vmi_handle_new(&alloc, sizeof(*m), &e);
	if (!m)
		return e;
	m->alloc = alloc;
	m->bmi2 = vmi_cpu_bmi2();
	mmu_build(m, r, vmem_regs_mode(r));
	*out = m;
	return VMEM_OK;
}

void vmem_mmu_free(vmem_mmu *m)
{
	if (m)
		vmi_free(m->alloc, m, sizeof(*m));
}

vmem_err vmem_mmu_set_regs(vmem_mmu *m, const vmem_regs *r)
{
	if (!m)
		return VMEM_E_INVAL;
	vmem_err e = regs_check(r);
	if (e)
		return e;
	mmu_build(m, r, vmem_regs_mode(r));
	return VMEM_OK;
}

const vmem_regs *vmem_mmu_regs(const vmem_mmu *m)
{
	return m ? &m->regs : NULL;
}

vmem_mode vmem_mmu_mode(const vmem_mmu *m)
{
	return m ? (vmem_mode)m->mode : VMEM_MODE_NONE;
}

vmem_err vmem_mmu_load_pdptes(vmem_mmu *m, const vmem_gmem *gm)
{
	if (!m || !gm || m->mode != VMEM_MODE_PAE)
		return VMEM_E_INVAL;
	uint64_t base = m->regs.cr3 & 0xffffffe0ull, p[4];
	for (int i = 0; i < 4; i++) {
		vmem_err e = vmem_gmem_read64(gm, base + 8 * (uint64_t)i, &p[i]);
		if (e)
			return VMEM_E_RANGE;
		if ((p[i] & VMEM_PTE_P) && (p[i] & m->pdpte_rsvd))
			return VMEM_E_INVAL; /* MOV to CR3 would #GP (SDM 4.4.1) */
	}
	vmi_memcpy(m->pdpte, p, sizeof(p));
	return VMEM_OK;
}

void vmem_mmu_set_pdptes(vmem_mmu *m, const uint64_t pdpte[4])
{
	if (m && pdpte)
		vmi_memcpy(m->pdpte, pdpte, sizeof(m->pdpte));
}

void vmem_mmu_get_pdptes(const vmem_mmu *m, uint64_t pdpte[4])
{
	if (m && pdpte)
		vmi_memcpy(pdpte, m->pdpte, sizeof(m->pdpte));
}
