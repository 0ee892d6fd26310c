/* libvmem shadow paging: the shadow page-fault handler (guest walk, host map, lazy fill with guest ∩ host rights). */
#include "gmem_int.h"
#include "shadow_int.h"

#define ACC_VALID (VMEM_ACC_WRITE | VMEM_ACC_FETCH | VMEM_ACC_USER | VMEM_ACC_IMPLICIT | VMEM_ACC_AC)

bool vmi_sh_host_map(const vmem_shadow *sh, uint64_t gpa, struct sh_host *h)
{
	h->ram = h->w = h->x = false;
	h->hpa = 0;
	if (sh->ept) {
		uint64_t leaf;
		unsigned level;
		if (vmem_ept_lookup(sh->ept, gpa, &leaf, &level) || !(leaf & VMEM_EPT_R))
			return false;
		uint64_t size = 1ull << sh_shift(level);
		h->hpa = (leaf & SH_FRAME & ~(size - 1)) | (gpa & (size - 1) & ~0xfffull);
		h->w = leaf & VMEM_EPT_W;
		h->x = leaf & VMEM_EPT_X;
		h->ram = true;
		return true;
	}
	int i = gm_find(sh->gm, gpa);
	if (i < 0 || sh->gm->r[i].kind != VMEM_REGION_RAM)
		return false;
	const struct gm_region *r = &sh->gm->r[i];
	const uint8_t *hva = r->host + ((gpa & ~0xfffull) - r->gpa);
	h->hpa = sh->host_phys ? sh->host_phys(sh->host_phys_ctx, hva) : (uint64_t)(uintptr_t)hva;
	h->w = !(r->flags & VMEM_SLOT_READONLY);
	h->x = !(r->flags & VMEM_SLOT_NOEXEC);
	h->ram = true;
	return true;
}

/* Guest table frame the shadow page at host level `level` must follow for
 * this walk: the table the walk read at the guest level that host level
 * stands for, or none (above the guest's top level, or below a guest large
 * page: those pages follow their parent entry alone). */
static uint64_t want_gfn(const struct sh_root *r, unsigned level, const vmem_walk_result *w,
			 const uint64_t gtab[6])
{
	unsigned g = r->glevel[level];
	return g && g >= w->level ? gtab[g] : SH_DIRECT;
}

static bool is_ram(const vmem_shadow *sh, uint64_t gpa)
{
	int i = gm_find(sh->gm, gpa);
	return i >= 0 && sh->gm->r[i].kind == VMEM_REGION_RAM;
}

/* Walk the shadow down to the level-1 table for la, creating what is
 * missing from the reserve (topped up beforehand, so this cannot fail).
 * NULL: a guest table the walk used is not RAM. */
static struct sh_page *descend(vmem_shadow *sh, struct sh_root *r, uint64_t la,
			       const vmem_walk_result *w, const uint64_t gtab[6])
{
	struct sh_page *sp = r->top;
	if (r->glevel[sh->hlevels] && sp->gfn == SH_DIRECT)
		return NULL;
	vmi_shm_touch(sh, sp);
	for (unsigned L = sh->hlevels; L > 1; L--) {
		unsigned idx = (unsigned)(la >> sh_shift(L)) & 511;
		uint64_t gfn = want_gfn(r, L - 1, w, gtab);
		struct sh_page *c = (sp->pt[idx] & VMEM_PTE_P) ? sp->u.child[idx] : NULL;
		if (c && c->gfn != gfn) {
			/* Only if guest memory changed behind our back (no notify):
			 * follow what the guest holds now. */
			vmi_shm_zap_entry(sh, sp, idx);
			c = NULL;
		}
		if (!c) {
			if (gfn != SH_DIRECT && !is_ram(sh, gfn))
				return NULL;
			uint64_t span = 1ull << sh_shift(L);
			c = vmi_shm_take(sh, r, sp, idx, L - 1, gfn, la & ~(span - 1), r->glevel[L - 1]);
		}
		vmi_shm_touch(sh, c);
		sp = c;
	}
	return sp;
}

/* The level-1 shadow table for la, if the whole path exists. */
static struct sh_page *existing_pt(const vmem_shadow *sh, const struct sh_root *r, uint64_t la)
{
	struct sh_page *sp = r->top;
	for (unsigned L = sh->hlevels; L > 1; L--) {
		unsigned idx = (unsigned)(la >> sh_shift(L)) & 511;
		if (!(sp->pt[idx] & VMEM_PTE_P))
			return NULL;
		sp = sp->u.child[idx];
	}
	return sp;
}

static void set_result(vmem_shadow_fault_result *res, unsigned outcome, unsigned reason, uint64_t gpa)
{
	res->outcome = (uint8_t)outcome;
	res->reason = (uint8_t)reason;
	res->gpa = gpa;
}

vmem_err vmem_shadow_fault(vmem_shadow *sh, uint64_t la, unsigned acc, vmem_shadow_fault_result *res)
{
	if (!sh || !res || (acc & ~ACC_VALID))
		return VMEM_E_INVAL;
	res->outcome = res->reason = 0;
	res->error_code = 0;
	res->cr2 = res->gpa = 0;
	/* Every allocation first: after the guest walk has set A/D nothing may fail. */
	vmem_err e = vmi_shm_topup(sh, sh->pool_target);
	if (e)
		return e;
	struct sh_root *r = sh->cur;
	vmem_walk_result w;
	vmem_walk_trace tr;
	/* The common fill lands in an existing shadow PT: those pages already
	 * follow the right guest tables (kept so by write protection), so the
	 * walk needs no trace; a trace only to create pages. */
	struct sh_page *pt = existing_pt(sh, r, la);
	e = vmem_walk_traced(r->mmu, sh->gm, la, acc, 0, &w, pt ? NULL : &tr);
	if (e)
		return e;
	sh->st.faults++;
	switch (w.status) {
	case VMEM_WALK_PF:
		res->outcome = VMEM_SHADOW_INJECT_PF;
		res->error_code = w.error_code;
		res->cr2 = la;
		return VMEM_OK;
	case VMEM_WALK_GP:
		res->outcome = VMEM_SHADOW_INJECT_GP;
		return VMEM_OK;
	case VMEM_WALK_BAD_GPA:
		set_result(res, VMEM_SHADOW_BAD_TABLE, 0, w.gpa);
		return VMEM_OK;
	default:
		break;
	}
	struct sh_host h;
	bool write = acc & VMEM_ACC_WRITE;
	if (!vmi_sh_host_map(sh, w.gpa, &h)) {
		set_result(res, VMEM_SHADOW_EMULATE, VMEM_SHADOW_EMU_MMIO, w.gpa);
		return VMEM_OK;
	}
	if ((write && !h.w) || ((acc & VMEM_ACC_FETCH) && !h.x)) {
		set_result(res, VMEM_SHADOW_HOST_FAULT, 0, w.gpa);
		return VMEM_OK;
	}
	if (pt) {
		for (struct sh_page *p = pt; p; p = p->parent)
			vmi_shm_touch(sh, p);
	} else {
		uint64_t gtab[6] = { 0 };
		for (unsigned i = 0; i < tr.n; i++)
			gtab[tr.e[i].level] = tr.e[i].gpa & ~0xfffull;
		pt = descend(sh, r, la, &w, gtab);
	}
	if (!pt) {
		set_result(res, VMEM_SHADOW_EMULATE, VMEM_SHADOW_EMU_TABLE_MMIO, w.gpa);
		return VMEM_OK;
	}
	/* Decided after the descent: it may have just made this very frame a table. */
	uint64_t gfn = w.gpa & ~0xfffull;
	bool table = vmi_shr_is_table(sh, gfn);
	bool paging = r->mmu_mode != VMEM_MODE_NONE;
	bool user_page = !paging || (w.perms & VMEM_PERM_U);
	bool wp = r->wp;
	bool user_acc = (acc & VMEM_ACC_USER) && !(acc & VMEM_ACC_IMPLICIT);
	/* Guest write right: R/W at every level, or CR0.WP = 0 for a supervisor
	 * page (only supervisor accesses reach it; SDM 4.6.1). A user page with
	 * WP = 0 keeps W = 0 so that user writes fault; the supervisor writes the
	 * guest allows there are emulated (making it a supervisor page, KVM's
	 * way, would lose SMEP/SMAP faults). */
	bool gw = !paging || (w.perms & VMEM_PERM_W) || (!wp && !user_page);
	/* D emulation (SDM 4.8): writable only once the guest's D is set, or for
	 * this write (whose walk set D, or could not: tables in a read-only slot). */
	bool dirty = !paging || (w.entry & VMEM_PTE_D) || write;
	uint64_t leaf = h.hpa | VMEM_PTE_P | VMEM_PTE_A;
	if (user_page)
		leaf |= VMEM_PTE_US;
	if (gw && h.w && dirty && !table)
		leaf |= VMEM_PTE_RW | VMEM_PTE_D;
	if (!(h.x && (!paging || (w.perms & VMEM_PERM_X))))
		leaf |= VMEM_PTE_XD;
	if (r->pke)
		leaf |= w.entry & VMEM_PTE_PKEY_MASK;
	unsigned idx = (unsigned)(la >> 12) & 511;
	if (pt->pt[idx] & VMEM_PTE_P)
		vmi_shr_leaf_del(pt, idx);
	else
		pt->npresent++;
	pt->pt[idx] = leaf;
	vmi_shr_leaf_add(sh, pt, idx, gfn);
	sh->st.fills++;
	if (write && table) {
		set_result(res, VMEM_SHADOW_EMULATE, VMEM_SHADOW_EMU_PT_WRITE, w.gpa);
		return VMEM_OK;
	}
	/* With CR0.WP = 0 a supervisor write ignores R/W and PKRU.WD (SDM 4.6.1,
	 * 4.6.2), but the processor runs the shadow with WP = 1: such writes to
	 * a user page the shadow cannot allow are emulated. */
	unsigned key = (unsigned)((w.entry & VMEM_PTE_PKEY_MASK) >> VMEM_PTE_PKEY_SHIFT);
	bool wd = r->pke && ((vmem_mmu_regs(r->mmu)->pkru >> (2 * key + 1)) & 1);
	if (write && !user_acc && !wp && user_page && (!(w.perms & VMEM_PERM_W) || wd)) {
		set_result(res, VMEM_SHADOW_EMULATE, VMEM_SHADOW_EMU_WP0, w.gpa);
		return VMEM_OK;
	}
	set_result(res, VMEM_SHADOW_FIXED, 0, w.gpa);
	return VMEM_OK;
}
