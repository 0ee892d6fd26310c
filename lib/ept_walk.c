/* libvmem EPT walk (SDM vol. 3C 29.3): guest-physical -> host-physical with exact violations and misconfigurations. */
#include <libvmem/ept.h>
#include "ept_int.h"
#include "ept_fast.h"
#include "gmem_int.h"

/* A racing writer that changes an entry before our A/D compare-and-swap
 * restarts the walk; give up after this many. */
#define EPT_MAX_RETRIES 16

void vmem_ept_caps_init(vmem_ept_caps *c)
{
	if (!c)
		return;
	vmi_memset(c, 0, sizeof(*c));
	c->maxphyaddr = 48;
	c->exec_only = true;
	c->pml5 = true;
	c->gbpages = true;
	c->ad = true;
}

/* VM-entry checks on the EPTP (SDM vol. 3C 27.2.1.1). */
static vmem_err eptp_check(const vmem_ept_caps *c, uint64_t eptp)
{
	unsigned mt = (unsigned)(eptp & VMEM_EPTP_MT_MASK);
	unsigned pwl = (unsigned)((eptp & VMEM_EPTP_PWL_MASK) >> VMEM_EPTP_PWL_SHIFT);
	if (mt != 0 && mt != 6)
		return VMEM_E_INVAL;
	if (pwl != 3 && !(pwl == 4 && c->pml5))
		return VMEM_E_INVAL;
	if ((eptp & VMEM_EPTP_AD) && !c->ad)
		return VMEM_E_INVAL;
	if (eptp & (VMI_BITS(11, 7) | VMI_BITS(63, c->maxphyaddr)))
		return VMEM_E_INVAL;
	return VMEM_OK;
}

static void ept_build(struct vmem_ept_mmu *e, uint64_t eptp)
{
	const vmem_ept_caps *c = &e->caps;
	unsigned M = c->maxphyaddr;
	uint64_t pa_hi = VMI_BITS(51, M);
	uint64_t frame4k = VMI_BITS(M - 1, 12);
	bool mbec = c->mbec, ad = eptp & VMEM_EPTP_AD;

	e->eptp = eptp;
	e->top = (uint8_t)(((eptp & VMEM_EPTP_PWL_MASK) >> VMEM_EPTP_PWL_SHIFT) + 1);
	e->ad = ad;
	e->adv = c->advanced_info;
	e->permmask = mbec ? 0xf : 0x7;
	e->root = eptp & frame4k;
	e->gpa_rsvd = e->top == 5 ? VMI_BITS(63, 57) : VMI_BITS(63, 48);
	/* EPTP bits 63:M are 0 (eptp_check); the caps fit in 12 bits. */
	e->xtag = eptp | (uint64_t)(M | (c->gbpages << 6) | (c->exec_only << 7) | (c->mbec << 8)) << 52;
	vmi_memset(e->rsvd, 0, sizeof(e->rsvd));
	vmi_memset(e->frame, 0, sizeof(e->frame));
	vmi_memset(e->large_ok, 0, sizeof(e->large_ok));

	/* SDM 29.3.3.1: reserved bits per level. Bits 51:M everywhere; PML5E and
	 * PML4E reserve 7:3 (PS included); a non-leaf PDPTE/PDE reserves 6:3; a
	 * 1-GByte leaf 29:12, a 2-MByte leaf 20:12. A PTE's bit 7 is ignored. */
	for (int l = 1; l <= 5; l++) {
		e->rsvd[l][0] = e->rsvd[l][1] = pa_hi;
		e->frame[l][0] = e->frame[l][1] = frame4k;
	}
	e->rsvd[5][0] |= VMI_BITS(7, 3);
	e->rsvd[5][1] |= VMI_BITS(7, 3);
	e->rsvd[4][0] |= VMI_BITS(7, 3);
	e->rsvd[4][1] |= VMI_BITS(7, 3);
	e->rsvd[3][0] |= VMI_BITS(6, 3);
	if (c->gbpages) {
		e->large_ok[3] = 1;
		e->rsvd[3][1] |= VMI_BITS(29, 12);
		e->frame[3][1] = VMI_BITS(M - 1, 30);
	} else {
		e->rsvd[3][1] |= VMEM_EPT_PS; /* no 1-GByte pages: PS reserved in a PDPTE */
	}
	e->rsvd[2][0] |= VMI_BITS(6, 3);
	e->large_ok[2] = 1;
	e->rsvd[2][1] |= VMI_BITS(20, 12);
	e->frame[2][1] = VMI_BITS(M - 1, 21);

	/* Presence and misconfiguration by permission index (SDM 29.3.2, 29.3.3.1):
	 * present if any of R/W/X (or XU with MBEC) is set; misconfigured if
	 * writable but not readable, or not readable but executable when
	 * execute-only translations are not supported. */
	e->absent = e->badrwx = 0;
	for (unsigned p = 0; p < 16; p++) {
		bool r = p & 1, w = p & 2, x = p & 4, xu = mbec && (p & 8);
		if (!(r || w || x || xu))
			e->absent |= (uint16_t)(1u << p);
		else if ((w && !r) || (!r && (x || xu) && !c->exec_only))
			e->badrwx |= (uint16_t)(1u << p);
	}
	/* Access rights (SDM 29.3.3.2), over the AND of the entries' permissions.
	 * Guest paging-structure accesses are writes when EPT A/D is on. */
	static const uint8_t need[EPT_AIDX_N] = {
		[VMEM_EPT_READ] = VMEM_EPT_RIGHT_R,
		[VMEM_EPT_WRITE] = VMEM_EPT_RIGHT_W,
		[VMEM_EPT_FETCH] = VMEM_EPT_RIGHT_X,
		[VMEM_EPT_PAGING] = VMEM_EPT_RIGHT_R,
		[VMEM_EPT_PAGING_AD] = VMEM_EPT_RIGHT_W,
		[EPT_AIDX_FETCH_USER] = VMEM_EPT_RIGHT_XU,
	};
	for (unsigned a = 0; a < EPT_AIDX_N; a++) {
		unsigned n = need[a];
		if (a == VMEM_EPT_PAGING && ad)
			n = VMEM_EPT_RIGHT_R | VMEM_EPT_RIGHT_W;
		if (a == EPT_AIDX_FETCH_USER && !mbec)
			n = VMEM_EPT_RIGHT_X; /* without MBEC, bit 2 governs every fetch */
		uint16_t f = 0;
		for (unsigned p = 0; p < 16; p++)
			if ((p & n) != n)
				f |= (uint16_t)(1u << p);
		e->fault[a] = f;
		/* The fast path's tests (struct ept_fcls). An entry with R set is
		 * present and its R/W/X combination legal; the rights on entry bits
		 * (n never holds XU without MBEC); PML5Es and PML4Es reserve PS, and
		 * rsvd[3][1] holds it without 1-GByte pages. */
		uint64_t nbits = VMEM_EPT_R | (n & 7) | ((uint64_t)(n & 8) << 7);
		bool write = a == VMEM_EPT_WRITE || a == VMEM_EPT_PAGING || a == VMEM_EPT_PAGING_AD;
		for (unsigned wad = 0; wad < 2; wad++) {
			struct ept_fcls *fc = &e->fcls[a][wad];
			uint64_t nl = nbits | (wad ? VMEM_EPT_A : 0);
			uint64_t lf = nl | (wad && write ? VMEM_EPT_D : 0) | EPT_MT_WANT_WB;
			fc->want = nl;
			fc->lwant = lf;
			fc->mask[0] = 0;
			for (int l = 1; l <= 5; l++)
				fc->mask[l] = e->rsvd[l][0] | (l >= 4 ? VMEM_EPT_PS : 0) | (l == 1 ? lf | EPT_MT_BITS : nl);
			fc->lmask[0] = fc->lmask[1] = 0;
			for (int l = 2; l <= 3; l++)
				fc->lmask[l] = e->rsvd[l][1] | lf | EPT_MT_BITS;
		}
	}
	/* Qualification bits 2:0 (SDM 28.2.1): a paging-structure access under
	 * EPT A/D is both a read and a write. */
	e->qacc[VMEM_EPT_READ] = (uint8_t)VMEM_EPTQ_READ;
	e->qacc[VMEM_EPT_WRITE] = (uint8_t)VMEM_EPTQ_WRITE;
	e->qacc[VMEM_EPT_FETCH] = (uint8_t)VMEM_EPTQ_FETCH;
	e->qacc[VMEM_EPT_PAGING] = (uint8_t)(ad ? VMEM_EPTQ_READ | VMEM_EPTQ_WRITE : VMEM_EPTQ_READ);
	e->qacc[VMEM_EPT_PAGING_AD] = (uint8_t)VMEM_EPTQ_WRITE;
}

vmem_err vmem_ept_mmu_new(const vmem_allocator *alloc, uint64_t eptp, const vmem_ept_caps *caps,
		      vmem_ept_mmu **out)
{
	vmem_ept_caps c;
	if (!out)
		return VMEM_E_INVAL;
	if (caps)
		c = *caps;
	else
		vmem_ept_caps_init(&c);
	if (c.maxphyaddr < 32 || c.maxphyaddr > 52)
		return VMEM_E_INVAL;
	vmem_err err = eptp_check(&c, eptp);
	if (err)
		return err;
	struct vmem_ept_mmu *e = vmi_handle_new(&alloc, sizeof(*e), &err);
	if (!e)
		return err;
	e->alloc = alloc;
	e->caps = c;
	ept_build(e, eptp);
	*out = e;
	return VMEM_OK;
}

void vmem_ept_mmu_free(vmem_ept_mmu *e)
{
	if (e)
		vmi_free(e->alloc, e, sizeof(*e));
}

vmem_err vmem_ept_mmu_set_eptp(vmem_ept_mmu *e, uint64_t eptp)
{
	if (!e)
		return VMEM_E_INVAL;
	vmem_err err = eptp_check(&e->caps, eptp);
	if (err)
		return err;
	ept_build(e, eptp);
	return VMEM_OK;
}

uint64_t vmem_ept_mmu_eptp(const vmem_ept_mmu *e)
{
	return e ? e->eptp : 0;
}

unsigned vmem_ept_mmu_levels(const vmem_ept_mmu *e)
{
	return e ? e->top : 0;
}

/* The qualification of a violation with permissions perms (SDM 28.2.1, Table 28-7). */
static uint64_t ept_qual(const struct vmem_ept_mmu *e, const vmem_ept_access *acc, unsigned perms)
{
	uint64_t q = e->qacc[acc->type] | ((uint64_t)perms << 3);
	if (acc->flags & VMEM_EPT_LINEAR) {
		q |= VMEM_EPTQ_GLA_VALID;
		if (acc->type <= VMEM_EPT_FETCH) {
			q |= VMEM_EPTQ_FINAL;
			/* Bits 9-11 only for the final access, and only when reported. */
			if (e->adv)
				q |= ((acc->guest_perms & VMEM_EPT_GUEST_U) ? VMEM_EPTQ_USER : 0) |
				     ((acc->guest_perms & VMEM_EPT_GUEST_W) ? VMEM_EPTQ_RW : 0) |
				     ((acc->guest_perms & VMEM_EPT_GUEST_X) ? 0 : VMEM_EPTQ_NX);
		}
	}
	return q;
}

static void ept_violation(const struct vmem_ept_mmu *e, const vmem_ept_access *acc, uint64_t gpa,
			  unsigned perms, vmem_ept_result *res)
{
	res->status = VMEM_EPT_VIOLATION;
	res->perms = (uint8_t)perms;
	res->exit_qual = ept_qual(e, acc, perms);
	res->linear = (acc->flags & VMEM_EPT_LINEAR) ? acc->linear : 0;
	res->gpa = gpa;
}

/* The common case (ept_fast.h): every EPT table in one RAM region of host
 * memory, present entries without reserved bits or bad memory types, the
 * access allowed, no A/D flag or PML entry left to write, no trace. Anything
 * else returns false and the full walk decides. */
static inline __attribute__((always_inline)) bool
ept_walk_fast(const struct vmem_ept_mmu *e, vmem_gmem *host, uint64_t gpa, const vmem_ept_access *acc,
	      unsigned flags, vmem_ept_result *res, const int top)
{
	struct ept_fview v;
	if (vmi_unlikely(!ept_fast_view(e, host, &v)))
		return false;
	unsigned aidx = acc->type;
	if (aidx == VMEM_EPT_FETCH && (acc->guest_perms & VMEM_EPT_GUEST_U))
		aidx = EPT_AIDX_FETCH_USER;
	const struct ept_fcls *c = &e->fcls[aidx][e->ad && !(flags & VMEM_EPT_NO_AD)];
	uint64_t pte, hpa, all, size;
	int level;
	if (!ept_fast_xlate(e, &v, c, gpa, top, NULL, NULL, false, &pte, &level, &hpa, &all, &size))
		return false;
	unsigned perms = EPT_PIDX(all) & e->permmask;
	res->gpa = gpa;
	res->hpa = hpa;
	res->page_size = size;
	res->exit_qual = 0;
	res->linear = 0;
	res->entry = pte;
	res->status = VMEM_EPT_OK;
	res->level = (uint8_t)level;
	res->perms = (uint8_t)perms;
	res->memtype = (uint8_t)((pte >> 3) & 7);
	res->ipat = (uint8_t)((pte >> 6) & 1);
	res->info = 0;
	return true;
}

/* One attempt. Returns true when *res is final, false when an A/D
 * compare-and-swap lost a race (retry). */
static bool ept_walk_once(const struct vmem_ept_mmu *e, vmem_gmem *host, uint64_t gpa,
			  const vmem_ept_access *acc, unsigned flags, vmem_ept_result *res,
			  vmem_ept_trace *tr)
{
	uint64_t *ep[5], ev[5];
	uint64_t table = e->root, and_bits = ~0ull, pte = 0;
	/* Start from the region the last walk found its tables in. */
	unsigned level = e->top, n = 0, hint = __atomic_load_n(&host->hint, __ATOMIC_RELAXED), ps = 0;

	vmi_memset(res, 0, sizeof(*res));
	res->gpa = gpa;
	if (tr)
		tr->n = 0;
	for (;;) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t ea = table + ((gpa >> shift) & 511) * 8, mval = 0;
		bool wr = false;
		vmem_err err = VMEM_OK;
		const uint64_t *p = gm_entry(host, ea, 8, &hint, &wr, &mval, &err);
		if (vmi_unlikely(err)) {
			res->status = VMEM_EPT_BAD_HPA;
			res->hpa = ea;
			res->level = (uint8_t)level;
			return true;
		}
		pte = p ? __atomic_load_n(p, __ATOMIC_RELAXED) : mval;
		if (tr) {
			tr->e[tr->n].hpa = ea;
			tr->e[tr->n].value = pte;
			tr->e[tr->n].level = level;
			tr->n++;
		}
		ep[n] = wr ? (uint64_t *)(uintptr_t)p : NULL;
		ev[n] = pte;
		n++;
		and_bits &= pte;
		res->entry = pte;
		res->level = (uint8_t)level;
		unsigned pidx = EPT_PIDX(pte);
		if (vmi_unlikely((e->absent >> pidx) & 1)) {
			/* Not present: the AND includes this entry, so bits 3-6 are 0. */
			ept_violation(e, acc, gpa, EPT_PIDX(and_bits) & e->permmask, res);
			return true;
		}
		ps = (pte >> 7) & 1;
		bool leaf = level == 1 || (ps & e->large_ok[level]);
		if (vmi_unlikely((pte & e->rsvd[level][ps]) || ((e->badrwx >> pidx) & 1) ||
				 (leaf && ((EPT_BAD_MEMTYPES >> ((pte >> 3) & 7)) & 1)))) {
			res->status = VMEM_EPT_MISCONFIG;
			return true;
		}
		if (leaf)
			break;
		table = pte & e->frame[level][0];
		level--;
	}

	unsigned perms = EPT_PIDX(and_bits) & e->permmask;
	unsigned aidx = acc->type;
	if (aidx == VMEM_EPT_FETCH && (acc->guest_perms & VMEM_EPT_GUEST_U))
		aidx = EPT_AIDX_FETCH_USER;
	res->perms = (uint8_t)perms;
	if (vmi_unlikely((e->fault[aidx] >> perms) & 1)) {
		ept_violation(e, acc, gpa, perms, res);
		return true;
	}
	uint64_t size = 1ull << (12 + 9 * (level - 1));
	res->status = VMEM_EPT_OK;
	res->hpa = (pte & e->frame[level][level > 1 ? ps : 0]) | (gpa & (size - 1));
	res->page_size = size;
	res->memtype = (uint8_t)((pte >> 3) & 7);
	res->ipat = (uint8_t)((pte >> 6) & 1);
	if (e->ad && !(flags & VMEM_EPT_NO_AD)) {
		/* SDM 29.3.5: A on every entry used, D on the leaf for a write (guest
		 * paging-structure accesses count as writes); only now that the
		 * translation completed, each by compare-and-swap. */
		bool write = acc->type == VMEM_EPT_WRITE || acc->type == VMEM_EPT_PAGING ||
			     acc->type == VMEM_EPT_PAGING_AD;
		if (e->pml && e->pml->index > 511) {
			/* SDM 29.3.6: any accessed or dirty flag about to be set first finds
			 * the index outside 0..511, the log full: exit, no flag, no access. */
			uint64_t flags_clear = write ? ~ev[n - 1] & VMEM_EPT_D : 0;
			for (unsigned i = 0; i < n; i++)
				flags_clear |= ~ev[i] & VMEM_EPT_A;
			if (flags_clear) {
				res->status = VMEM_EPT_PML_FULL;
				res->gpa = gpa;
				return true;
			}
		}
		for (unsigned i = 0; i < n; i++) {
			uint64_t want = ev[i] | VMEM_EPT_A;
			if (i == n - 1 && write)
				want |= VMEM_EPT_D;
			if (want == ev[i] || !ep[i])
				continue;
			uint64_t expect = ev[i];
			if (!__atomic_compare_exchange_n(ep[i], &expect, want, false, __ATOMIC_SEQ_CST,
							 __ATOMIC_RELAXED))
				return false;
			res->info |= VMEM_EPT_INFO_AD_SET;
			if (i == n - 1 && e->pml && (want & ~ev[i] & VMEM_EPT_D))
				vmem_pml_log(e->pml, gpa);
			if (i == n - 1)
				pte = want;
		}
	}
	res->entry = pte;
	return true;
}

vmem_err vmem_ept_walk(const vmem_ept_mmu *e, vmem_gmem *host, uint64_t gpa,
		       const vmem_ept_access *acc, unsigned flags, vmem_ept_result *res,
		       vmem_ept_trace *tr)
{
	if (!e || !host || !acc || !res || acc->type > VMEM_EPT_PAGING_AD ||
	    (acc->flags & ~VMEM_EPT_LINEAR) || (gpa & e->gpa_rsvd))
		return VMEM_E_INVAL;
	if (vmi_likely(!tr) && (e->top == 4 ? ept_walk_fast(e, host, gpa, acc, flags, res, 4)
					    : ept_walk_fast(e, host, gpa, acc, flags, res, 5)))
		return VMEM_OK;
	for (unsigned attempt = 0; attempt < EPT_MAX_RETRIES; attempt++)
		if (ept_walk_once(e, host, gpa, acc, flags, res, tr))
			return VMEM_OK;
	return VMEM_E_RETRY;
}

void vmem_ept_mmu_set_pml(vmem_ept_mmu *e, vmem_pml *pml)
{
	if (e)
		e->pml = pml;
}
