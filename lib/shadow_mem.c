/* libvmem shadow paging: table pages, the page reserve, the budget and least-recently-used reclaim. */
#include <stddef.h>
#include "shadow_int.h"

static uint64_t page_phys(const vmem_shadow *sh, const void *page)
{
	return sh->alloc->page_phys ? sh->alloc->page_phys(sh->alloc->ctx, page) : (uint64_t)(uintptr_t)page;
}

static void page_release(vmem_shadow *sh, struct sh_page *sp)
{
	sh->alloc->free_page(sh->alloc->ctx, sp->pt);
	vmi_free(sh->alloc, sp, sizeof(*sp));
}

static void lru_unlink(struct sh_page *sp)
{
	if (sp->lnext) {
		sp->lnext->lprev = sp->lprev;
		sp->lprev->lnext = sp->lnext;
		sp->lnext = sp->lprev = NULL;
	}
}

static void lru_push(vmem_shadow *sh, struct sh_page *sp)
{
	sp->lnext = sh->lru.lnext;
	sp->lprev = &sh->lru;
	sh->lru.lnext->lprev = sp;
	sh->lru.lnext = sp;
}

/* Free a table and everything under it; the caller clears the entry that pointed at it. */
static void free_tree(vmem_shadow *sh, struct sh_page *sp)
{
	for (unsigned i = 0; sp->npresent && i < SH_ENTRIES; i++) {
		if (!(sp->pt[i] & VMEM_PTE_P))
			continue;
		if (sp->level == 1)
			vmi_shr_leaf_del(sp, i);
		else
			free_tree(sh, sp->u.child[i]);
		sp->npresent--;
	}
	if (sp->gfn != SH_DIRECT)
		vmi_shr_table_del(sh, sp);
	lru_unlink(sp);
	sh->used--;
	page_release(sh, sp);
}

void vmi_shm_zap_entry(vmem_shadow *sh, struct sh_page *sp, unsigned idx)
{
	if (!(sp->pt[idx] & VMEM_PTE_P))
		return;
	if (sp->level == 1) {
		vmi_shr_leaf_del(sp, idx);
	} else {
		free_tree(sh, sp->u.child[idx]);
		sp->u.child[idx] = NULL;
	}
	sp->pt[idx] = 0;
	sp->npresent--;
	sh->flush = true;
	sh->st.zapped++;
}

void vmi_shm_free_root(vmem_shadow *sh, struct sh_root *r)
{
	if (r->top)
		free_tree(sh, r->top);
	r->top = NULL;
	r->used = false;
	sh->flush = true;
}

void vmi_shm_touch(vmem_shadow *sh, struct sh_page *sp)
{
	sp->stamp = ++sh->clock;
	if (sp->parent && sh->lru.lnext != sp) {
		lru_unlink(sp);
		lru_push(sh, sp);
	}
}

/* Free the least recently used table (with its subtree) or cached root,
 * never the current root. false: nothing left to free. */
static bool reclaim_one(vmem_shadow *sh)
{
	struct sh_page *old = sh->lru.lprev != &sh->lru ? sh->lru.lprev : NULL;
	struct sh_root *oldr = NULL;
	for (unsigned i = 0; i < sh->max_roots; i++) {
		struct sh_root *r = &sh->roots[i];
		if (r->used && r != sh->cur && (!oldr || r->stamp < oldr->stamp))
			oldr = r;
	}
	if (oldr && (!old || oldr->stamp <= old->stamp))
		vmi_shm_free_root(sh, oldr);
	else if (old)
		vmi_shm_zap_entry(sh, old->parent, old->pidx);
	else
		return false;
	sh->st.reclaimed++;
	return true;
}

vmem_err vmi_shm_topup(vmem_shadow *sh, unsigned need)
{
	while (sh->npool < need) {
		/* The budget counts the reserve too: make room first (never fails
		 * for need <= budget - 1, since all but the current root page can go). */
		while (sh->used + sh->npool >= sh->budget && reclaim_one(sh))
			;
		if (sh->used + sh->npool >= sh->budget)
			return VMEM_E_NOMEM;
		/* The per-slot arrays are written before they are read (a child
		 * pointer with its entry, a reverse-map node when linked): only
		 * the header needs zeroing. */
		struct sh_page *sp = vmi_alloc(sh->alloc, sizeof(*sp));
		if (!sp)
			return VMEM_E_NOMEM;
		vmi_memset(sp, 0, offsetof(struct sh_page, u));
		sp->pt = sh->alloc->alloc_page(sh->alloc->ctx);
		if (!sp->pt) {
			vmi_free(sh->alloc, sp, sizeof(*sp));
			return VMEM_E_NOMEM;
		}
		sp->phys = page_phys(sh, sp->pt);
		sp->lnext = sh->pool;
		sh->pool = sp;
		sh->npool++;
	}
	return VMEM_OK;
}

void vmi_shm_pool_release(vmem_shadow *sh)
{
	while (sh->pool) {
		struct sh_page *sp = sh->pool;
		sh->pool = sp->lnext;
		page_release(sh, sp);
	}
	sh->npool = 0;
}

struct sh_page *vmi_shm_take(vmem_shadow *sh, struct sh_root *root, struct sh_page *parent,
			 unsigned pidx, unsigned level, uint64_t gfn, uint64_t base, unsigned glevel)
{
	struct sh_page *sp = sh->pool;
	VMI_ASSERT(sp);
	sh->pool = sp->lnext;
	sh->npool--;
	sp->lnext = NULL;
	sp->gfn = gfn;
	sp->base = base;
	sp->root = root;
	sp->parent = parent;
	sp->pidx = (uint16_t)pidx;
	sp->level = (uint8_t)level;
	sp->glevel = (uint8_t)glevel;
	sp->npresent = 0;
	sp->stamp = ++sh->clock;
	sh->used++;
	if (parent) {
		parent->pt[pidx] = sp->phys | SH_NONLEAF;
		parent->u.child[pidx] = sp;
		parent->npresent++;
		lru_push(sh, sp);
	}
	if (gfn != SH_DIRECT)
		vmi_shr_table_add(sh, sp);
	return sp;
}
