/* libvmem shadow paging: the audit, every shadow entry checked against a fresh guest walk and the host mapping. */
#include "shadow_int.h"

#define LEAF_OK_BITS (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | VMEM_PTE_A | VMEM_PTE_D | \
		      VMEM_PTE_XD | VMEM_PTE_PKEY_MASK | SH_FRAME)

struct audit {
	vmem_shadow *sh;
	char *why;
	size_t len, pos;
	bool bad;
	uint64_t leaves, tables, gtables;
};

static void put(struct audit *a, const char *s)
{
	for (; *s && a->why && a->pos + 1 < a->len; s++)
		a->why[a->pos++] = *s;
	if (a->why && a->len)
		a->why[a->pos] = 0;
}

static void put_hex(struct audit *a, uint64_t v)
{
	char b[19];
	int n = 0;
	b[n++] = '0';
	b[n++] = 'x';
	int sh = 60;
	while (sh > 0 && !((v >> sh) & 15))
		sh -= 4;
	for (; sh >= 0; sh -= 4)
		b[n++] = "0123456789abcdef"[(v >> sh) & 15];
	b[n] = 0;
	put(a, b);
}

/* Record the first violation only. */
static bool fail(struct audit *a, const char *what, uint64_t la, uint64_t v)
{
	if (!a->bad) {
		put(a, what);
		put(a, " at la ");
		put_hex(a, la);
		put(a, ": ");
		put_hex(a, v);
	}
	a->bad = true;
	return false;
}

static uint64_t sext(const vmem_shadow *sh, uint64_t la)
{
	unsigned s = 64 - (12 + 9 * sh->hlevels);
	return (uint64_t)((int64_t)(la << s) >> s);
}

static bool in_writable_ram(const vmem_shadow *sh, uint64_t gpa)
{
	vmem_region_info ri;
	return !vmem_gmem_lookup(sh->gm, gpa, &ri) && ri.kind == VMEM_REGION_RAM &&
	       !(ri.flags & VMEM_SLOT_READONLY);
}

static bool rmap_linked(const vmem_shadow *sh, const struct sh_page *sp, unsigned i, uint64_t gfn)
{
	const struct sh_rnode *want = &sp->u.rm[i];
	if (want->gfn != (gfn | i))
		return false;
	for (const struct sh_rnode *n = sh->rhash[sh_hash(gfn, sh->rhash_mask)]; n; n = n->next)
		if (n == want)
			return true;
	return false;
}

static bool in_thash(const vmem_shadow *sh, const struct sh_page *sp)
{
	for (const struct sh_page *p = sh->thash[sh_hash(sp->gfn, sh->thash_mask)]; p; p = p->hnext)
		if (p == sp)
			return true;
	return false;
}

/* One shadow leaf against the guest walk (no A/D writes) and the host map. */
static bool check_leaf(struct audit *a, const struct sh_root *rt, const struct sh_page *sp,
		       unsigned i, uint64_t la)
{
	vmem_shadow *sh = a->sh;
	uint64_t s = sp->pt[i];
	vmem_walk_result w;
	vmem_walk_trace tr;
	if (s & ~LEAF_OK_BITS)
		return fail(a, "shadow leaf with reserved or unexpected bits", la, s);
	if (rt->mmu_mode != VMEM_MODE_NONE && rt->mmu_mode < VMEM_MODE_4LEVEL && (la >> 32))
		return fail(a, "shadow leaf above 4 GiB for a 32-bit guest", la, s);
	if (vmem_walk_traced(sh->scratch, sh->gm, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &w, &tr) ||
	    w.status != VMEM_WALK_OK)
		return fail(a, "shadow leaf where the guest walk does not translate", la, s);
	bool paging = rt->mmu_mode != VMEM_MODE_NONE;
	uint64_t gfn = w.gpa & ~0xfffull;
	struct sh_host h;
	if (!vmi_sh_host_map(sh, w.gpa, &h))
		return fail(a, "shadow leaf for a frame outside guest RAM", la, w.gpa);
	if ((s & SH_FRAME) != h.hpa)
		return fail(a, "shadow leaf names another host frame", la, s);
	bool user = !paging || (w.perms & VMEM_PERM_U);
	if (!(s & VMEM_PTE_US) != !user)
		return fail(a, "shadow U/S differs from the guest's", la, s);
	if (s & VMEM_PTE_RW) {
		bool gw = !paging || (w.perms & VMEM_PERM_W) || (!rt->wp && !user);
		if (!gw || !h.w)
			return fail(a, "shadow leaf writable beyond guest and host rights", la, s);
		if (vmi_shr_is_table(sh, gfn))
			return fail(a, "shadow leaf writable on a guest page-table frame", la, gfn);
		uint64_t leaf_gpa = tr.n ? tr.e[tr.n - 1].gpa : 0;
		if (paging && !(w.entry & VMEM_PTE_D) && in_writable_ram(sh, leaf_gpa))
			return fail(a, "shadow leaf writable while the guest's D is clear", la, w.entry);
	}
	if (!(s & VMEM_PTE_XD) && (!h.x || (paging && !(w.perms & VMEM_PERM_X))))
		return fail(a, "shadow leaf executable beyond guest and host rights", la, s);
	uint64_t pk = rt->pke ? w.entry & VMEM_PTE_PKEY_MASK : 0;
	if ((s & VMEM_PTE_PKEY_MASK) != pk)
		return fail(a, "shadow protection key differs from the guest's", la, s);
	/* The guest's A flags were set when the entry was filled, and clearing
	 * one is a table write that drops the entry (SDM 4.8, 4.10.2.3). */
	for (unsigned k = 0; k < tr.n; k++) {
		if (rt->mmu_mode == VMEM_MODE_PAE && tr.e[k].level == 3)
			continue; /* a PDPTE register: no accessed flag */
		if (!(tr.e[k].value & VMEM_PTE_A) && in_writable_ram(sh, tr.e[k].gpa))
			return fail(a, "shadow leaf outlived a clear guest A flag", la, tr.e[k].gpa);
	}
	/* Every page on the path follows the guest table this walk used. */
	uint64_t gtab[6] = { 0 };
	for (unsigned k = 0; k < tr.n; k++)
		gtab[tr.e[k].level] = tr.e[k].gpa & ~0xfffull;
	for (const struct sh_page *p = sp; p; p = p->parent) {
		unsigned g = rt->glevel[p->level];
		uint64_t want = g && g >= w.level ? gtab[g] : SH_DIRECT;
		if (p->gfn != want && !(p == rt->top && p->gfn == SH_DIRECT))
			return fail(a, "shadow page follows another guest table", la, p->gfn);
	}
	if (!rmap_linked(sh, sp, i, gfn))
		return fail(a, "shadow leaf missing from the reverse map", la, gfn);
	a->leaves++;
	return true;
}

static bool check_page(struct audit *a, const struct sh_root *rt, const struct sh_page *sp)
{
	vmem_shadow *sh = a->sh;
	unsigned n = 0;
	a->tables++;
	a->gtables += sp->gfn != SH_DIRECT;
	if (sp->root != rt)
		return fail(a, "shadow page in the wrong root", sp->base, sp->phys);
	if (sp->gfn != SH_DIRECT && (sp->glevel != rt->glevel[sp->level] || !in_thash(sh, sp)))
		return fail(a, "shadow page missing from the table hash", sp->base, sp->gfn);
	for (unsigned i = 0; i < SH_ENTRIES; i++) {
		uint64_t s = sp->pt[i];
		uint64_t la = sext(sh, sp->base + ((uint64_t)i << sh_shift(sp->level)));
		if (!(s & VMEM_PTE_P)) {
			if (s)
				return fail(a, "non-present shadow entry not zero", la, s);
			continue;
		}
		n++;
		if (sp->level == 1) {
			if (!check_leaf(a, rt, sp, i, la))
				return false;
			continue;
		}
		const struct sh_page *c = sp->u.child[i];
		if (!c || (s & ~VMEM_PTE_D) != (c->phys | SH_NONLEAF) || c->parent != sp || c->pidx != i ||
		    c->level != sp->level - 1 || c->base != la)
			return fail(a, "shadow table link broken", la, s);
		if (!check_page(a, rt, c))
			return false;
	}
	if (n != sp->npresent)
		return fail(a, "shadow page present count wrong", sp->base, n);
	return true;
}

vmem_err vmem_shadow_audit(vmem_shadow *sh, char *why, size_t why_len)
{
	if (!sh)
		return VMEM_E_INVAL;
	struct audit a = { .sh = sh, .why = why, .len = why_len };
	put(&a, "");
	for (unsigned i = 0; i < sh->max_roots && !a.bad; i++) {
		struct sh_root *rt = &sh->roots[i];
		if (!rt->used)
			continue;
		/* Walk as a supervisor read that no right can refuse: SMAP off, PKRU 0. */
		vmem_regs r = *vmem_mmu_regs(rt->mmu);
		r.cr4 &= ~VMEM_CR4_SMAP;
		r.pkru = 0;
		if (vmem_mmu_set_regs(sh->scratch, &r)) {
			fail(&a, "root registers no longer valid", rt->key, r.cr4);
			break;
		}
		if (rt->mmu_mode == VMEM_MODE_PAE)
			vmem_mmu_set_pdptes(sh->scratch, rt->pdpte);
		if (!rt->top || rt->top->parent || rt->top->level != sh->hlevels) {
			fail(&a, "root page malformed", rt->key, 0);
			break;
		}
		check_page(&a, rt, rt->top);
	}
	if (!a.bad && (!sh->cur || !sh->cur->used))
		fail(&a, "no current root", 0, 0);
	if (!a.bad && a.tables != sh->used)
		fail(&a, "table pages in use miscounted", 0, a.tables);
	if (!a.bad && sh->used + sh->npool > sh->budget)
		fail(&a, "over the page budget", 0, sh->used + sh->npool);
	if (!a.bad) {
		uint64_t nodes = 0, pages = 0;
		for (unsigned b = 0; b <= sh->rhash_mask; b++)
			for (const struct sh_rnode *n = sh->rhash[b]; n; n = n->next)
				nodes++;
		for (unsigned b = 0; b <= sh->thash_mask; b++)
			for (const struct sh_page *p = sh->thash[b]; p; p = p->hnext)
				pages++;
		if (nodes != a.leaves)
			fail(&a, "reverse map holds stale leaves", 0, nodes);
		else if (pages != a.gtables)
			fail(&a, "table hash holds freed pages", 0, pages);
	}
	return a.bad ? VMEM_E_INVAL : VMEM_OK;
}
