/* libvmem nested walk (SDM vol. 3C 29.3.3): the guest walker with EPT hooks, then the final access through EPT. */
#include <libvmem/nested.h>
#include <libvmem/pte.h>
#include "ept_fast.h"
#include "ept_int.h"
#include "mmu_int.h"

/* An access of the nested walk: every one has the guest-linear address. Fields
 * one by one: an aggregate initializer may become a memset call, which the
 * freestanding core lacks. */
static inline void nx_access(vmem_ept_access *a, unsigned type, const struct nx_walk *nx,
			     unsigned guest_perms)
{
	a->type = (uint8_t)type;
	a->flags = VMEM_EPT_LINEAR;
	a->guest_perms = (uint8_t)guest_perms;
	a->linear = nx->la;
}

/* One EPT translation on behalf of the nested walk, traced. */
static bool nx_translate(struct nx_walk *nx, uint64_t gpa, const vmem_ept_access *a,
			 vmem_ept_result *r)
{
	vmem_ept_trace *t = NULL;
	vmem_nested_trace *nt = nx->trace;
	if (nt && nt->n < sizeof(nt->ept) / sizeof(nt->ept[0])) {
		nt->ept[nt->n].gpa = gpa;
		t = &nt->ept[nt->n++].t;
	}
	vmem_err e = vmem_ept_walk(nx->ept, nx->host, gpa, a, nx->ept_flags, r, t);
	if (vmi_unlikely(e)) {
		nx->err = e;
		r->status = VMEM_EPT_BAD_HPA;
		return false;
	}
	if (r->status != VMEM_EPT_OK) {
		vmi_memcpy(&nx->exit, r, sizeof(*r));
		return false;
	}
	return true;
}

bool vmi_nx_entry(struct nx_walk *nx, uint64_t egpa, uint64_t *hpa, uint8_t *perms)
{
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, VMEM_EPT_PAGING, nx, 0);
	if (!nx_translate(nx, egpa, &a, &r))
		return false;
	*hpa = r.hpa;
	*perms = r.perms;
	return true;
}

bool vmi_nx_ad_write(struct nx_walk *nx, uint64_t egpa, uint8_t perms)
{
	/* Under EPT A/D the read was already a write (SDM 29.3.3.2); else the
	 * flag update is a data write of its own, refused without W. */
	if (nx->ept->ad || (perms & VMEM_EPT_RIGHT_W))
		return true;
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, VMEM_EPT_PAGING_AD, nx, 0);
	return nx_translate(nx, egpa, &a, &r);
}

/* An EPT outcome other than OK as the nested result. */
static void from_ept(vmem_nested_result *res, const vmem_ept_result *r, bool final)
{
	vmi_memcpy(&res->ept, r, sizeof(*r));
	res->final = final;
	switch (r->status) {
	case VMEM_EPT_VIOLATION:
		res->status = VMEM_NESTED_EPT_VIOLATION;
		res->exit_qual = r->exit_qual;
		res->gpa = r->gpa;
		res->linear = r->linear;
		break;
	case VMEM_EPT_MISCONFIG:
		res->status = VMEM_NESTED_EPT_MISCONFIG;
		res->gpa = r->gpa;
		break;
	case VMEM_EPT_PML_FULL:
		res->status = VMEM_NESTED_PML_FULL;
		res->gpa = r->gpa;
		break;
	default:
		res->status = VMEM_NESTED_BAD_HPA;
		res->hpa = r->hpa;
		break;
	}
}

/* The common case of a nested walk, unrolled for gtop guest and etop EPT
 * levels: IA-32e guest paging, every EPT translation (of each guest entry and
 * of the final access) on ept_fast_core's conditions, every guest table in
 * RAM, no guest fault and no guest A/D flag to write (or VMEM_WALK_NO_AD), no
 * trace. It reads what the full walk reads and writes nothing, so on false
 * the full walk starts over and decides. res is filled exactly as the full
 * walk fills it on success. */
static inline __attribute__((always_inline)) bool
nested_fast(const struct vmem_mmu *m, const struct vmem_ept_mmu *e, vmem_gmem *host, uint64_t la,
	    unsigned acc, unsigned flags, vmem_nested_result *res, const int gtop, const int etop)
{
	const struct gm_region *er = ept_fast_region(e, host);
	if (vmi_unlikely(!er))
		return false;
	/* Guest paging-structure accesses are writes for EPT A/D (SDM 29.3.3.2). */
	bool ead = e->ad && !(flags & VMEM_WALK_NO_AD);
	/* The region the guest's tables were last found in. */
	struct vmem_ept_mmu *ew = (struct vmem_ept_mmu *)(uintptr_t)e;
	unsigned gh = __atomic_load_n(&ew->ghint, __ATOMIC_RELAXED);
	const struct gm_region *gr = gh < host->n ? &host->r[gh] : er;
	/* EPT entries read by this walk's earlier translations (ept_fast.h). */
	struct ept_pwc pwc;
	ept_pwc_init(&pwc);
	uint64_t table = m->root, all = ~0ull, pte = 0;
	int level;
#pragma GCC unroll 5
	for (level = gtop; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		uint64_t egpa = table + (((la >> shift) & 511) << 3);
		uint64_t eleaf, hpa;
		int elevel;
		unsigned eperms;
		if (vmi_unlikely(egpa & e->gpa_rsvd) ||
		    !ept_fast_core(e, er, egpa, VMEM_EPT_PAGING, true, ead, etop, &eleaf, &elevel, &eperms,
				  &hpa, &pwc))
			return false;
		if (vmi_unlikely(hpa - gr->gpa >= gr->size)) {
			int i = gm_find(host, hpa);
			if (i < 0)
				return false;
			gr = &host->r[i];
			__atomic_store_n(&ew->ghint, (unsigned)i, __ATOMIC_RELAXED);
		}
		if (vmi_unlikely(!gr->host))
			return false;
		pte = *(const volatile uint64_t *)(gr->host + (hpa - gr->gpa));
		all &= pte ^ VMEM_PTE_XD;
		int k = mmu_fast_entry(m, pte, level);
		if (vmi_unlikely(k < 0))
			return false; /* the full walk reports the fault */
		if (k == 0)
			break;
		table = pte & m->frame[level][0];
	}
	/* The leaf: rights, protection keys, guest A/D (as vmem_walk's fast path). */
	unsigned pa;
	if (!mmu_fast_leaf_ok(m, pte, all, acc, flags, &pa))
		return false;
	unsigned shift = 12 + 9 * (unsigned)(level - 1);
	uint64_t gsize = 1ull << shift;
	uint64_t gpa = (pte & m->frame[level][level > 1]) | (la & (gsize - 1));
	/* The final access (qualification bit 8 = 1), guest permissions as its MBEC input. */
	unsigned aidx = (acc & VMEM_ACC_WRITE) ? VMEM_EPT_WRITE : (acc & VMEM_ACC_FETCH) ? VMEM_EPT_FETCH
											   : VMEM_EPT_READ;
	if (aidx == VMEM_EPT_FETCH && (pa & VMEM_EPT_GUEST_U))
		aidx = EPT_AIDX_FETCH_USER;
	uint64_t eleaf, hpa;
	int elevel;
	unsigned eperms;
	if (vmi_unlikely(gpa & e->gpa_rsvd) ||
	    !ept_fast_core(e, er, gpa, aidx, (acc & VMEM_ACC_WRITE) != 0, ead, etop, &eleaf, &elevel, &eperms,
			  &hpa, &pwc))
		return false;
	uint64_t esize = 1ull << (12 + 9 * (elevel - 1));

	res->guest.gpa = gpa;
	res->guest.page_size = gsize;
	res->guest.entry = pte;
	res->guest.error_code = 0;
	res->guest.status = VMEM_WALK_OK;
	res->guest.level = (uint8_t)level;
	res->guest.perms = (uint8_t)pa;
	res->guest.info = 0;
	res->ept.gpa = gpa;
	res->ept.hpa = hpa;
	res->ept.page_size = esize;
	res->ept.exit_qual = 0;
	res->ept.linear = 0;
	res->ept.entry = eleaf;
	res->ept.status = VMEM_EPT_OK;
	res->ept.level = (uint8_t)elevel;
	res->ept.perms = (uint8_t)eperms;
	res->ept.memtype = (uint8_t)((eleaf >> 3) & 7);
	res->ept.ipat = (uint8_t)((eleaf >> 6) & 1);
	res->ept.info = 0;
	res->hpa = hpa;
	res->gpa = gpa;
	res->page_size = esize < gsize ? esize : gsize;
	res->exit_qual = 0;
	res->linear = 0;
	res->error_code = 0;
	res->status = VMEM_NESTED_OK;
	res->final = 0;
	return true;
}

vmem_err vmem_nested_walk(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			  uint64_t la, unsigned acc, unsigned flags,
			  vmem_nested_result *res, vmem_nested_trace *tr)
{
	if (!mmu || !ept || !host || !res || (flags & ~VMEM_WALK_NO_AD))
		return VMEM_E_INVAL;
	if (vmi_likely(!tr && mmu->mode >= VMEM_MODE_4LEVEL && acc < MMU_ACC_INDEXES &&
		       ((mmu->acc_ok >> acc) & 1))) {
		/* Canonical (SDM 3.3.7.1): otherwise #GP, which the full walk reports. */
		unsigned sh = 64u - mmu->va_bits;
		if ((uint64_t)((int64_t)(la << sh) >> sh) == la) {
			bool ok;
			if (mmu->top == 4)
				ok = ept->top == 4 ? nested_fast(mmu, ept, host, la, acc, flags, res, 4, 4)
						   : nested_fast(mmu, ept, host, la, acc, flags, res, 4, 5);
			else
				ok = ept->top == 4 ? nested_fast(mmu, ept, host, la, acc, flags, res, 5, 4)
						   : nested_fast(mmu, ept, host, la, acc, flags, res, 5, 5);
			if (ok)
				return VMEM_OK;
		}
	}
	vmi_memset(res, 0, sizeof(*res));
	struct nx_walk nx;
	vmi_memset(&nx, 0, sizeof(nx));
	nx.ept = ept;
	nx.host = host;
	nx.la = la;
	nx.ept_flags = (flags & VMEM_WALK_NO_AD) ? VMEM_EPT_NO_AD : 0;
	nx.trace = tr;
	if (tr)
		tr->n = 0;
	vmem_err e = vmi_walk_nested(mmu, &nx, la, acc, flags, &res->guest,
				     tr ? &tr->guest : NULL);
	if (nx.err)
		return nx.err;
	if (e)
		return e;
	switch (res->guest.status) {
	case VMEM_WALK_OK:
		break;
	case VMEM_WALK_PF:
		res->status = VMEM_NESTED_PF;
		res->error_code = res->guest.error_code;
		return VMEM_OK;
	case VMEM_WALK_GP:
		res->status = VMEM_NESTED_GP;
		return VMEM_OK;
	case WALK_ST_EPT:
		from_ept(res, &nx.exit, false);
		return VMEM_OK;
	default: /* a guest entry's host-physical address is outside host memory */
		res->status = VMEM_NESTED_BAD_HPA;
		res->hpa = res->guest.gpa;
		return VMEM_OK;
	}
	/* The final access (qualification bit 8 = 1). Guest permissions: VMEM_PERM_*
	 * and VMEM_EPT_GUEST_* are the same bits. */
	static const uint8_t atype[4] = { VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH, VMEM_EPT_READ };
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, atype[acc & (VMEM_ACC_WRITE | VMEM_ACC_FETCH)], &nx, res->guest.perms);
	if (!nx_translate(&nx, res->guest.gpa, &a, &r)) {
		if (nx.err)
			return nx.err;
		from_ept(res, &r, true);
		return VMEM_OK;
	}
	vmi_memcpy(&res->ept, &r, sizeof(r));
	res->status = VMEM_NESTED_OK;
	res->hpa = r.hpa;
	res->gpa = res->guest.gpa;
	res->page_size = r.page_size < res->guest.page_size ? r.page_size : res->guest.page_size;
	return VMEM_OK;
}
