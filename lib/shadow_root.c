/* libvmem shadow paging: the engine, its registers and the bounded cache of roots keyed by guest CR3 and role. */
#include "shadow_int.h"

/* Everything in the registers that changes what a shadow entry may allow or
 * how the guest tables read: the mode, CR0.WP (W for supervisor pages),
 * CR4.PSE (4-MByte pages), SMEP/SMAP, EFER.NXE (XD reserved or not),
 * CR4.PKE (keys carried in leaves), 1-GByte pages and MAXPHYADDR (reserved
 * bits). CR4.PGE and PCIDE change only what a TLB may keep, not a
 * translation, and the shadows are never stale: not part of the role. */
static uint32_t role_of(const vmem_regs *r, vmem_mode m)
{
	uint32_t role = (uint32_t)m;
	if (r->cr0 & VMEM_CR0_WP)
		role |= 1u << 3;
	if (m == VMEM_MODE_32BIT && (r->cr4 & VMEM_CR4_PSE))
		role |= 1u << 4;
	if (m != VMEM_MODE_NONE) {
		role |= (r->cr4 & VMEM_CR4_SMEP) ? 1u << 5 : 0;
		role |= (r->cr4 & VMEM_CR4_SMAP) ? 1u << 6 : 0;
	}
	if (m >= VMEM_MODE_PAE && (r->efer & VMEM_EFER_NXE))
		role |= 1u << 7;
	if (m >= VMEM_MODE_4LEVEL && (r->cr4 & VMEM_CR4_PKE))
		role |= 1u << 8;
	if (m >= VMEM_MODE_4LEVEL && r->gbpages)
		role |= 1u << 9;
	return role | (uint32_t)r->maxphyaddr << 16;
}

/* The guest table address CR3 names (PCID, PWT/PCD and bit 63 are not part of it). */
static uint64_t key_of(const vmem_regs *r, vmem_mode m)
{
	switch (m) {
	case VMEM_MODE_32BIT:
		return r->cr3 & 0xfffff000ull;
	case VMEM_MODE_PAE:
		return r->cr3 & 0xffffffe0ull;
	case VMEM_MODE_4LEVEL:
	case VMEM_MODE_5LEVEL:
		return r->cr3 & VMI_BITS(r->maxphyaddr - 1, 12);
	default:
		return 0;
	}
}

/* Which guest level each host level's pages follow. 32-bit and PAE guests
 * reach their first guest table (the PD) at host level 2: the host levels
 * above are pseudo tables that only lead there (PAE: from the PDPTE
 * registers, which are part of the root's key). */
static void root_levels(struct sh_root *rt, vmem_mode m, unsigned H)
{
	vmi_memset(rt->glevel, 0, sizeof(rt->glevel));
	rt->gbits = 9;
	rt->esize = 8;
	switch (m) {
	case VMEM_MODE_32BIT:
		rt->gbits = 10; /* 1024 four-byte entries per table (SDM 4.3) */
		rt->esize = 4;
		/* fall through */
	case VMEM_MODE_PAE:
		rt->glevel[2] = 2;
		rt->glevel[1] = 1;
		break;
	case VMEM_MODE_4LEVEL:
	case VMEM_MODE_5LEVEL:
		for (unsigned L = 1; L <= (m == VMEM_MODE_5LEVEL ? 5u : 4u) && L <= H; L++)
			rt->glevel[L] = (uint8_t)L;
		break;
	default:
		break;
	}
}

static bool is_ram_frame(const vmem_shadow *sh, uint64_t gpa)
{
	vmem_region_info ri;
	return !vmem_gmem_lookup(sh->gm, gpa, &ri) && ri.kind == VMEM_REGION_RAM;
}

static struct sh_root *find_root(vmem_shadow *sh, uint32_t role, uint64_t key, const uint64_t *pdpte)
{
	for (unsigned i = 0; i < sh->max_roots; i++) {
		struct sh_root *rt = &sh->roots[i];
		if (rt->used && rt->role == role && rt->key == key &&
		    (!pdpte || (rt->pdpte[0] == pdpte[0] && rt->pdpte[1] == pdpte[1] &&
				rt->pdpte[2] == pdpte[2] && rt->pdpte[3] == pdpte[3])))
			return rt;
	}
	return NULL;
}

static bool same_regs(const vmem_regs *a, const vmem_regs *b)
{
	return a->cr0 == b->cr0 && a->cr3 == b->cr3 && a->cr4 == b->cr4 && a->efer == b->efer &&
	       a->pkru == b->pkru && a->maxphyaddr == b->maxphyaddr && a->gbpages == b->gbpages;
}

/* PAE: does this call load the PDPTEs (SDM 4.4.1)? MOV to CR3 does (a call
 * that changes CR3, or nothing: CR3 written again); MOV to CR0/CR4 only when
 * it enters PAE paging or changes CR0.CD/NW/PG or CR4.PAE/PGE/PSE/SMEP;
 * WRMSR EFER never. Otherwise the PDPTE registers keep their values. */
static bool pae_loads(const struct sh_root *cur, const vmem_regs *r)
{
	const vmem_regs *o = vmem_mmu_regs(cur->mmu);
	const uint64_t cr0_cd = 1ull << 30, cr0_nw = 1ull << 29;
	const uint64_t cr0 = VMEM_CR0_PG | cr0_cd | cr0_nw;
	const uint64_t cr4 = VMEM_CR4_PAE | VMEM_CR4_PGE | VMEM_CR4_PSE | VMEM_CR4_SMEP;
	bool same = o->cr0 == r->cr0 && o->cr4 == r->cr4 && o->efer == r->efer; /* PKRU: no key in PAE */
	return cur->mmu_mode != VMEM_MODE_PAE || o->cr3 != r->cr3 || same || ((o->cr0 ^ r->cr0) & cr0) ||
	       ((o->cr4 ^ r->cr4) & cr4);
}

static void switch_to(vmem_shadow *sh, struct sh_root *rt)
{
	/* The host TLB tags by VPID and PCID, not CR3: the old root's entries
	 * must go as the guest's MOV CR3 drops them (SDM 4.10.4.1). */
	sh->flush |= rt != sh->cur;
	sh->cur = rt;
	rt->stamp = ++sh->clock;
	sh->st.root_hits++;
}

vmem_err vmem_shadow_set_regs(vmem_shadow *sh, const vmem_regs *r)
{
	if (!sh || !r)
		return VMEM_E_INVAL;
	vmem_mode m = vmem_regs_mode(r);
	if (m == VMEM_MODE_5LEVEL && sh->hlevels < 5)
		return VMEM_E_UNSUPPORTED;
	uint32_t role = role_of(r, m);
	uint64_t key = key_of(r, m);
	if (m != VMEM_MODE_PAE) {
		/* Fast path: a cached root with this CR3 and role (the MOV CR3 of a context switch). */
		struct sh_root *rt = find_root(sh, role, key, NULL);
		if (rt) {
			if (!same_regs(vmem_mmu_regs(rt->mmu), r)) {
				vmem_err e = vmem_mmu_set_regs(rt->mmu, r); /* checks CR3's reserved bits */
				if (e)
					return e;
			}
			switch_to(sh, rt);
			return VMEM_OK;
		}
	}
	vmem_err e = vmem_mmu_set_regs(sh->scratch, r);
	if (e)
		return e;
	uint64_t pdpte[4] = { 0 };
	if (m == VMEM_MODE_PAE) {
		if (pae_loads(sh->cur, r)) {
			e = vmem_mmu_load_pdptes(sh->scratch, sh->gm);
			if (e)
				return e;
			vmem_mmu_get_pdptes(sh->scratch, pdpte);
		} else {
			vmem_mmu_get_pdptes(sh->cur->mmu, pdpte);
			vmem_mmu_set_pdptes(sh->scratch, pdpte);
		}
		struct sh_root *rt = find_root(sh, role, key, pdpte);
		if (rt) {
			vmem_mmu *t = rt->mmu;
			rt->mmu = sh->scratch;
			sh->scratch = t;
			switch_to(sh, rt);
			return VMEM_OK;
		}
	}
	e = vmi_shm_topup(sh, sh->pool_target);
	if (e)
		return e;
	struct sh_root *rt = NULL;
	for (unsigned i = 0; i < sh->max_roots && !rt; i++)
		if (!sh->roots[i].used)
			rt = &sh->roots[i];
	if (!rt) {
		rt = &sh->roots[0];
		for (unsigned i = 1; i < sh->max_roots; i++)
			if (sh->roots[i].stamp < rt->stamp)
				rt = &sh->roots[i];
		vmi_shm_free_root(sh, rt);
		sh->st.reclaimed++;
	}
	vmem_mmu *t = rt->mmu;
	rt->mmu = sh->scratch;
	sh->scratch = t;
	rt->used = true;
	rt->role = role;
	rt->key = key;
	vmi_memcpy(rt->pdpte, pdpte, sizeof(pdpte));
	rt->mmu_mode = (uint8_t)m;
	rt->wp = r->cr0 & VMEM_CR0_WP;
	rt->pke = m >= VMEM_MODE_4LEVEL && (r->cr4 & VMEM_CR4_PKE);
	root_levels(rt, m, sh->hlevels);
	/* The top page follows the guest's top table when the host level is the
	 * guest's (4-level on 4, 5-level on 5); a CR3 outside RAM leaves it
	 * following nothing, and every fill through it is refused. */
	uint64_t gfn = rt->glevel[sh->hlevels] && is_ram_frame(sh, key) ? key : SH_DIRECT;
	rt->top = vmi_shm_take(sh, rt, NULL, 0, sh->hlevels, gfn, 0, rt->glevel[sh->hlevels]);
	sh->flush = true; /* a new root: the old one's host TLB entries must go (SDM 4.10.4.1) */
	sh->cur = rt;
	rt->stamp = ++sh->clock;
	sh->st.root_misses++;
	return VMEM_OK;
}

void vmem_shadow_set_pkru(vmem_shadow *sh, uint32_t pkru)
{
	if (!sh)
		return;
	vmem_regs r = *vmem_mmu_regs(sh->cur->mmu);
	r.pkru = pkru;
	(void)vmem_mmu_set_regs(sh->cur->mmu, &r); /* the registers were accepted before */
}

const vmem_regs *vmem_shadow_regs(const vmem_shadow *sh)
{
	return sh ? vmem_mmu_regs(sh->cur->mmu) : NULL;
}

void vmem_shadow_host_regs(const vmem_shadow *sh, vmem_regs *out)
{
	if (!sh || !out)
		return;
	const vmem_regs *g = vmem_mmu_regs(sh->cur->mmu);
	vmem_mode m = (vmem_mode)sh->cur->mmu_mode;
	vmem_regs_init(out);
	out->cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	out->cr4 = VMEM_CR4_PAE | (sh->hlevels == 5 ? VMEM_CR4_LA57 : 0);
	out->efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	if (m != VMEM_MODE_NONE)
		out->cr4 |= g->cr4 & (VMEM_CR4_SMEP | VMEM_CR4_SMAP);
	if (sh->cur->pke) {
		out->cr4 |= VMEM_CR4_PKE;
		out->pkru = g->pkru;
	}
	out->cr3 = sh->cur->top->phys;
	out->maxphyaddr = 52;
	out->gbpages = true;
}

uint64_t vmem_shadow_root(const vmem_shadow *sh)
{
	return sh ? sh->cur->top->phys : 0;
}

bool vmem_shadow_take_flush(vmem_shadow *sh)
{
	if (!sh)
		return false;
	bool f = sh->flush;
	sh->flush = false;
	return f;
}

void vmem_shadow_get_stats(const vmem_shadow *sh, vmem_shadow_stats *st)
{
	if (!sh || !st)
		return;
	*st = sh->st;
	st->pages = sh->used + sh->npool;
	st->roots = 0;
	for (unsigned i = 0; i < sh->max_roots; i++)
		st->roots += sh->roots[i].used;
}

static int foreach_page(const struct sh_page *sp, int (*fn)(void *, void *, uint64_t), void *arg)
{
	int rc = fn(arg, sp->pt, sp->phys);
	for (unsigned i = 0; !rc && sp->level > 1 && i < SH_ENTRIES; i++)
		if (sp->pt[i] & VMEM_PTE_P)
			rc = foreach_page(sp->u.child[i], fn, arg);
	return rc;
}

int vmem_shadow_foreach_table(const vmem_shadow *sh, int (*fn)(void *arg, void *page, uint64_t phys),
			      void *arg)
{
	if (!sh || !fn)
		return 0;
	int rc = 0;
	for (unsigned i = 0; !rc && i < sh->max_roots; i++)
		if (sh->roots[i].used)
			rc = foreach_page(sh->roots[i].top, fn, arg);
	return rc;
}

static unsigned pow2_at_least(uint64_t n)
{
	unsigned p = 64;
	while (p < n && p < (1u << 22))
		p <<= 1;
	return p;
}

void vmem_shadow_free(vmem_shadow *sh)
{
	if (!sh)
		return;
	if (sh->roots) {
		for (unsigned i = 0; i < sh->max_roots; i++) {
			if (sh->roots[i].used)
				vmi_shm_free_root(sh, &sh->roots[i]);
			vmem_mmu_free(sh->roots[i].mmu);
		}
		vmi_free(sh->alloc, sh->roots, sh->max_roots * sizeof(*sh->roots));
	}
	vmi_shm_pool_release(sh);
	vmem_mmu_free(sh->scratch);
	vmi_free(sh->alloc, sh->thash, (sh->thash_mask + 1) * sizeof(*sh->thash));
	vmi_free(sh->alloc, sh->rhash, (sh->rhash_mask + 1) * sizeof(*sh->rhash));
	vmi_free(sh->alloc, sh, sizeof(*sh));
}

vmem_err vmem_shadow_new(const vmem_shadow_config *cfg, vmem_shadow **out)
{
	if (!cfg || !out || !cfg->gmem || (cfg->host_levels != 4 && cfg->host_levels != 5) ||
	    cfg->max_pages < VMEM_SHADOW_MIN_PAGES || !cfg->max_roots ||
	    cfg->max_roots > VMEM_SHADOW_MAX_ROOTS)
		return VMEM_E_INVAL;
	const vmem_allocator *a = vmi_alloc_resolve(cfg->alloc);
	if (!a)
		return VMEM_E_INVAL;
	vmem_shadow *sh = vmi_zalloc(a, sizeof(*sh));
	if (!sh)
		return VMEM_E_NOMEM;
	sh->alloc = a;
	sh->gm = cfg->gmem;
	sh->ept = cfg->ept;
	sh->host_phys = cfg->host_phys;
	sh->host_phys_ctx = cfg->host_phys_ctx;
	sh->hlevels = cfg->host_levels;
	sh->budget = cfg->max_pages;
	sh->max_roots = cfg->max_roots;
	sh->pool_target = cfg->host_levels - 1; /* the most one fill can create */
	sh->lru.lnext = sh->lru.lprev = &sh->lru;
	sh->thash_mask = pow2_at_least(cfg->max_pages) - 1;
	sh->rhash_mask = pow2_at_least((uint64_t)cfg->max_pages * 64) - 1;
	vmem_regs r;
	vmem_regs_init(&r);
	vmem_err e = VMEM_E_NOMEM;
	sh->thash = vmi_zalloc(a, (sh->thash_mask + 1) * sizeof(*sh->thash));
	sh->rhash = sh->thash ? vmi_zalloc(a, (sh->rhash_mask + 1) * sizeof(*sh->rhash)) : NULL;
	sh->roots = sh->rhash ? vmi_zalloc(a, sh->max_roots * sizeof(*sh->roots)) : NULL;
	if (!sh->roots)
		goto fail;
	for (unsigned i = 0; i < sh->max_roots; i++)
		if ((e = vmem_mmu_new(a, &r, &sh->roots[i].mmu)))
			goto fail;
	if ((e = vmem_mmu_new(a, &r, &sh->scratch)))
		goto fail;
	if ((e = vmem_shadow_set_regs(sh, &r)))
		goto fail;
	sh->st.root_misses = 0;
	*out = sh;
	return VMEM_OK;
fail:
	if (!sh->thash) /* vmem_shadow_free sizes the hashes from their masks */
		sh->thash_mask = 0;
	if (!sh->rhash)
		sh->rhash_mask = 0;
	vmem_shadow_free(sh);
	return e;
}
