/* libvmem nested walk (SDM vol. 3C 29.3.3): the guest walker with EPT hooks, then the final access through EPT. */
#include <libvmem/nested.h>
#include <libvmem/pte.h>
#include <libvmem/tlb.h>
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

/* The EPT translation of a guest paging-structure access (the paging class,
 * filling the walk's cache): the common case first (the 2-MByte region of
 * the previous translation: a PTE of the cached page table, or the cached
 * large leaf), else ept_fast_xlate. */
static inline __attribute__((always_inline)) bool
nx_xlate_paging(const struct vmem_ept_mmu *e, const struct ept_fview *v, const struct ept_fcls *c,
		struct ept_pwc *pwc, struct vmem_ept_pwc *xc, uint64_t gpa, const int top, uint64_t *hpa)
{
	if (vmi_likely(pwc->k1 == gpa >> 21)) {
		const uint64_t *pt = pwc->pt;
		if (!pt) {
			*hpa = pwc->hb1 | (gpa & 0x1fffff);
			return true;
		}
		uint64_t pte = *(const volatile uint64_t *)&pt[(gpa >> 12) & 511];
		if (vmi_unlikely(!ept_leaf_ok(pte, c->mask[1], c->lwant)))
			return false;
		*hpa = (pte & EPT_ADDR) | (gpa & 0xfff);
		return true;
	}
	uint64_t leaf;
	int level;
	return ept_fast_xlate(e, v, c, gpa, top, pwc, xc, true, &leaf, &level, hpa, NULL, NULL);
}

/* The status bytes of the results, stored as one word each (x86-64 is
 * little-endian): vmem_walk_result from error_code (error_code, status,
 * level, perms, info), vmem_ept_result from status (status, level, perms,
 * memtype, ipat, info, padding), vmem_nested_result from error_code
 * (error_code, status, final, padding). */
_Static_assert(offsetof(vmem_walk_result, error_code) == 24 && offsetof(vmem_walk_result, level) == 29 &&
		       offsetof(vmem_walk_result, perms) == 30 && sizeof(vmem_walk_result) == 32,
	       "vmem_walk_result layout");
_Static_assert(offsetof(vmem_ept_result, status) == 48 && offsetof(vmem_ept_result, memtype) == 51 &&
		       offsetof(vmem_ept_result, ipat) == 52 && sizeof(vmem_ept_result) == 56,
	       "vmem_ept_result layout");
_Static_assert(offsetof(vmem_nested_result, error_code) == 40 && offsetof(vmem_nested_result, final) == 45 &&
		       offsetof(vmem_nested_result, guest) == 48,
	       "vmem_nested_result layout");

static inline void put_word(void *p, uint64_t w)
{
	__builtin_memcpy(p, &w, 8);
}

/* The final access's fast-path class (access index: a fetch from a user-mode
 * address is EPT_AIDX_FETCH_USER, SDM 29.3.3.2 with MBEC), by VMEM_ACC_WRITE,
 * VMEM_ACC_FETCH and the guest's U permission (bit 2). Guest permissions:
 * VMEM_PERM_* and VMEM_EPT_GUEST_* are the same bits. The assembly
 * (nested_x86_64.c) reads it too. */
const uint8_t vmi_nx_final_aidx[8] = {
	VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH, VMEM_EPT_READ,
	VMEM_EPT_READ, VMEM_EPT_WRITE, EPT_AIDX_FETCH_USER, VMEM_EPT_READ,
};

/* The end of nested_fast once the guest walk reached its leaf pte at
 * `level` (all: the AND of its entries, XD inverted; gpa: the access's
 * guest-physical address, in a page of gsize bytes): the guest's rights,
 * the final access through EPT, and the result. */
static inline __attribute__((always_inline)) bool
nested_final(const struct vmem_mmu *m, const struct vmem_ept_mmu *e, const struct ept_fview *v,
	     struct ept_pwc *pwc, struct vmem_ept_pwc *xc, unsigned acc, unsigned flags, unsigned ead,
	     uint64_t pte, uint64_t all,
	     uint64_t gpa, uint64_t gsize, int level, vmem_nested_result *res, const int etop)
{
	/* The leaf: rights, protection keys, guest A/D (as vmem_walk's fast path). */
	unsigned pa;
	if (!mmu_fast_leaf_ok(m, pte, all, acc, flags, &pa))
		return false;
	/* The final access (qualification bit 8 = 1), guest permissions as its MBEC input. */
	const struct ept_fcls *c = &e->fcls[vmi_nx_final_aidx[(acc & 3) | ((pa & VMEM_EPT_GUEST_U) << 1)]][ead];
	EPT_OPAQUE(c);
	uint64_t eleaf, hpa, eall, esize;
	int elevel;
	if (!ept_fast_xlate(e, v, c, gpa, etop, pwc, xc, false, &eleaf, &elevel, &hpa, &eall, &esize))
		return false;
	unsigned eperms = EPT_PIDX(eall) & e->permmask;

	res->guest.gpa = gpa;
	res->guest.page_size = gsize;
	res->guest.entry = pte;
	put_word(&res->guest.error_code, (uint64_t)VMEM_WALK_OK << 32 | (uint64_t)level << 40 | (uint64_t)pa << 48);
	res->ept.gpa = gpa;
	res->ept.hpa = hpa;
	res->ept.page_size = esize;
	res->ept.exit_qual = 0;
	res->ept.linear = 0;
	res->ept.entry = eleaf;
	put_word(&res->ept.status, VMEM_EPT_OK | (uint64_t)elevel << 8 | (uint64_t)eperms << 16 |
					   (eleaf & 0x38) << 21 | (eleaf & 0x40) << 26);
	res->hpa = hpa;
	res->gpa = gpa;
	res->page_size = esize < gsize ? esize : gsize;
	res->exit_qual = 0;
	res->linear = 0;
	put_word(&res->error_code, (uint64_t)VMEM_NESTED_OK << 32);
	return true;
}

/* The common case of a nested walk, unrolled for gtop guest and etop EPT
 * levels: IA-32e guest paging, every EPT translation (of each guest entry and
 * of the final access) on ept_fast_xlate's conditions, every guest table in
 * RAM, no guest fault and no guest A/D flag to write (or VMEM_WALK_NO_AD), no
 * trace. It reads what the full walk reads and writes nothing, so on false
 * the full walk starts over and decides. res is filled exactly as the full
 * walk fills it on success. */
static inline __attribute__((always_inline)) bool
nested_fast(const struct vmem_mmu *m, const struct vmem_ept_mmu *e, vmem_gmem *host, struct vmem_ept_pwc *xc,
	    uint64_t la, unsigned acc, unsigned flags, vmem_nested_result *res, const int gtop, const int etop)
{
	struct ept_fview v;
	if (vmi_unlikely(!ept_fast_view(e, host, &v)))
		return false;
	/* Guest paging-structure accesses are writes for EPT A/D (SDM 29.3.3.2). */
	unsigned ead = e->ad && !(flags & VMEM_WALK_NO_AD);
	const struct ept_fcls *cp = &e->fcls[VMEM_EPT_PAGING][ead];
	EPT_OPAQUE(cp);
	/* The RAM region the guest's tables were last found in (ghint). */
	struct vmem_ept_mmu *ew = (struct vmem_ept_mmu *)(uintptr_t)e;
	unsigned gh = __atomic_load_n(&ew->ghint, __ATOMIC_RELAXED);
	const struct gm_region *gr = gh < host->n && host->r[gh].host ? &host->r[gh] : v.region;
	/* EPT entries read by this walk's earlier translations (ept_fast.h). */
	struct ept_pwc pwc;
	ept_pwc_init(&pwc);
	uint64_t table = m->root, all = ~0ull, pte = 0, gpa = 0, gsize = 0;
	int level;
#pragma GCC unroll 5
	for (level = gtop; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		uint64_t egpa = table + (((la >> shift) & 511) << 3);
		uint64_t hpa;
		if (!nx_xlate_paging(e, &v, cp, &pwc, xc, egpa, etop, &hpa))
			return false;
		if (vmi_unlikely(hpa - gr->gpa >= gr->size)) {
			int i = gm_find(host, hpa);
			if (i < 0 || !host->r[i].host)
				return false;
			gr = &host->r[i];
			__atomic_store_n(&ew->ghint, (unsigned)i, __ATOMIC_RELAXED);
		}
		pte = *(const volatile uint64_t *)(gr->host + (hpa - gr->gpa));
		all &= pte ^ VMEM_PTE_XD;
		int k = mmu_fast_entry(m, pte, level);
		if (vmi_unlikely(k < 0))
			return false; /* the full walk reports the fault */
		if (k == 0) {
			gsize = 1ull << shift;
			gpa = (pte & m->frame[level][level > 1]) | (la & (gsize - 1));
			break;
		}
		table = pte & m->frame[level][0];
	}
	return nested_final(m, e, &v, &pwc, xc, acc, flags, ead, pte, all, gpa, gsize, level, res, etop);
}

/* vmem_nested_walk, and with xc vmem_nested_walk_pwc (whose fast path
 * starts from and fills the cache xc; the full walk reads memory). */
static inline __attribute__((always_inline)) vmem_err
nested_walk(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host, struct vmem_ept_pwc *xc,
	    uint64_t la, unsigned acc, unsigned flags, vmem_nested_result *res, vmem_nested_trace *tr)
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
				ok = ept->top == 4 ? nested_fast(mmu, ept, host, xc, la, acc, flags, res, 4, 4)
						   : nested_fast(mmu, ept, host, xc, la, acc, flags, res, 4, 5);
			else
				ok = ept->top == 4 ? nested_fast(mmu, ept, host, xc, la, acc, flags, res, 5, 4)
						   : nested_fast(mmu, ept, host, xc, la, acc, flags, res, 5, 5);
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

#if NESTED_ASM
#define vmem_nested_walk vmi_nested_walk_c /* the assembly's fallback (nested_x86_64.c) */
#endif
vmem_err vmem_nested_walk(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			  uint64_t la, unsigned acc, unsigned flags,
			  vmem_nested_result *res, vmem_nested_trace *tr)
{
	return nested_walk(mmu, ept, host, NULL, la, acc, flags, res, tr);
}
#undef vmem_nested_walk

vmem_err vmem_nested_walk_pwc(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			      vmem_ept_pwc *pwc, uint64_t la, unsigned acc, unsigned flags,
			      vmem_nested_result *res)
{
	if (!pwc)
		return VMEM_E_INVAL;
	return nested_walk(mmu, ept, host, pwc, la, acc, flags, res, NULL);
}

vmem_err vmem_ept_pwc_new(const vmem_allocator *alloc, vmem_ept_pwc **out)
{
	if (!out)
		return VMEM_E_INVAL;
	vmem_err err;
	struct vmem_ept_pwc *c = vmi_handle_new(&alloc, sizeof(*c), &err);
	if (!c)
		return err;
	c->alloc = alloc;
	*out = c;
	return VMEM_OK;
}

void vmem_ept_pwc_free(vmem_ept_pwc *c)
{
	if (c)
		vmi_free(c->alloc, c, sizeof(*c));
}

/* INVEPT (SDM vol. 3C 29.4.3.1): single-context drops what was cached under
 * eptp's EP4TA (any EPTP with that root: entries are tagged by the whole
 * EPTP), all-context everything. */
vmem_err vmem_ept_pwc_invept(vmem_ept_pwc *c, unsigned type, uint64_t eptp)
{
	if (!c || (type != VMEM_INVEPT_SINGLE && type != VMEM_INVEPT_ALL) ||
	    (type == VMEM_INVEPT_SINGLE && vmi_eptp_refused(eptp))) /* INVEPT's VMfailValid: nothing invalidated */
		return VMEM_E_INVAL;
	struct ept_xent *x[2] = { c->pt, c->pd };
	unsigned n[2] = { EPT_XPT_N, EPT_XPD_N };
	for (unsigned k = 0; k < 2; k++)
		for (unsigned i = 0; i < n[k]; i++)
			if (type == VMEM_INVEPT_ALL || !((x[k][i].tag ^ eptp) & EPT_ADDR))
				x[k][i].tag = 0;
	return VMEM_OK;
}
