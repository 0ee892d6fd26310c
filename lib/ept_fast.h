/* libvmem EPT fast path: the unrolled common-case EPT walk, inline for vmem_ept_walk and the nested walk. */
#ifndef VMEM_EPT_FAST_H
#define VMEM_EPT_FAST_H

#include "ept_int.h"
#include "gmem_int.h"

/* One walk's view of the host region holding the EPT tables: every table
 * the fast path reads lies in it (host memory also holds a nested guest's
 * tables, whose lookups keep their own hint). */
struct ept_fview {
	const struct gm_region *region; /* a RAM region */
	const uint8_t *host;    /* host address of base */
	uint64_t base, size;    /* the region's host-physical range (4 KiB aligned) */
	const uint64_t *root;   /* the EPT PML4 / PML5 table, in the region */
};

/* The address bits of an EPT entry that passed its mask test (bits 51:M
 * are reserved in every entry, and 20:12 / 29:12 in a 2-MByte / 1-GByte
 * leaf, SDM 29.3.3.1): the next table, or the page with the offset's bits clear. */
#define EPT_ADDR VMI_BITS(51, 12)

/* The view of the region holding the EPT root (e->hint, a relaxed guess kept
 * in the EPT context). false: no RAM region holds the root. */
static inline __attribute__((always_inline)) bool
ept_fast_view(const struct vmem_ept_mmu *e, const vmem_gmem *host, struct ept_fview *v)
{
	unsigned h = __atomic_load_n(&((struct vmem_ept_mmu *)(uintptr_t)e)->hint, __ATOMIC_RELAXED);
	if (vmi_unlikely(h >= host->n || e->root - host->r[h].gpa >= host->r[h].size)) {
		int i = gm_find(host, e->root);
		if (i < 0)
			return false;
		h = (unsigned)i;
		__atomic_store_n(&((struct vmem_ept_mmu *)(uintptr_t)e)->hint, h, __ATOMIC_RELAXED);
	}
	const struct gm_region *r = &host->r[h];
	if (vmi_unlikely(!r->host))
		return false;
	v->region = r;
	v->host = r->host;
	v->base = r->gpa;
	v->size = r->size;
	/* The root is 4 KiB aligned and regions are 4 KiB granular: the whole table is in r. */
	v->root = (const uint64_t *)(const void *)(r->host + (e->root - r->gpa));
	return true;
}

/* A per-walk paging-structure cache (SDM vol. 3C 29.4.2 lets a processor
 * cache EPT paging-structure entries and translations): for the 2-MByte
 * region the last translation was in, its page table (host address, known
 * to be inside the view) or the large leaf that maps it; for its 1-GByte
 * region, the page directory; each with the AND of the entries above (and
 * of the leaf). The next translation of the same nested walk in the same
 * region reads only the entries below. It lives on the stack of one walk:
 * nothing survives the walk, so no invalidation rule is needed. Only
 * translations of one class (ept_fcls) fill it: a hit skips the tests of
 * those entries for that class, and a translation of another class (the
 * final access, fill = false) repeats them on the AND. key ~0: empty. */
struct ept_pwc {
	uint64_t k1;              /* gpa >> 21 */
	const uint64_t *pt;       /* its page table, or NULL: a 2-MByte or 1-GByte leaf maps it */
	uint64_t all1;            /* AND of the entries above pt / down to the leaf */
	uint64_t hb1;             /* NULL pt: host-physical address of the 2-MByte region */
	uint64_t leaf1;           /* NULL pt: the leaf, at level lvl1 */
	int lvl1;
	uint64_t k2;              /* gpa >> 30 */
	const uint64_t *pd;       /* its page directory */
	uint64_t all2;            /* AND of the entries above pd */
};

static inline void ept_pwc_init(struct ept_pwc *c)
{
	c->k1 = c->k2 = ~0ull;
	c->pt = c->pd = 0;
	c->all1 = c->all2 = c->hb1 = c->leaf1 = 0;
	c->lvl1 = 0;
}

/* The opt-in EPT paging-structure cache that survives walks (vmem_ept_pwc,
 * nested.h; SDM vol. 3C 29.4.2): direct-mapped PDEs that reference a page
 * table (key gpa >> 21) and PDPTEs that reference a page directory (key
 * gpa >> 30), each with the host-physical address of that table and the AND
 * of the entries down to it. Tagged by ept->xtag; tag 0: empty. A table's
 * address is tested against the walk's view at every use (host memory may
 * have changed) and the AND against the access's class. Leaves are never
 * cached: every walk reads them. */
#define EPT_XPT_N 64
#define EPT_XPD_N 16
struct ept_xent {
	uint64_t tag, key, table, all;
};
struct vmem_ept_pwc {
	const vmem_allocator *alloc;
	struct ept_xent pt[EPT_XPT_N];
	struct ept_xent pd[EPT_XPD_N];
};

/* Keep a per-walk pointer (a class of e->fcls) in a register or its stack
 * slot: the compiler would otherwise recompute it from its index at every use. */
#define EPT_OPAQUE(p) __asm__("" : "+r"(p))

/* Remember table t (host address, in the view) for gpa: the page table
 * (level 1) or the page directory (level 2), with the AND of the entries above. */
static inline __attribute__((always_inline)) void
ept_pwc_set(struct ept_pwc *c, int level, uint64_t gpa, const uint64_t *t, uint64_t all)
{
	if (level == 1) {
		c->k1 = gpa >> 21;
		c->pt = t;
		c->all1 = all;
	} else {
		c->k2 = gpa >> 30;
		c->pd = t;
		c->all2 = all;
	}
}

/* The memory type of a leaf, bits 5:3, is reserved (SDM 29.3.3.1): the
 * EPT_BAD_MEMTYPES byte repeated, indexed by entry bits 8:3. */
#define EPT_BAD_MT64 (0x0101010101010101ull * EPT_BAD_MEMTYPES)

/* A leaf passes the class's test (mask, want of ept_fcls), which asks for
 * memory type WB (6), the common case; another type passes when it is not
 * reserved. */
static inline __attribute__((always_inline)) bool ept_leaf_ok(uint64_t pte, uint64_t mask, uint64_t want)
{
	if (vmi_likely((pte & mask) == want))
		return true;
	return (pte & mask & ~EPT_MT_BITS) == (want & ~EPT_MT_BITS) && !((EPT_BAD_MT64 >> ((pte >> 3) & 63)) & 1);
}

/* The common case of an EPT translation, unrolled for `top` levels: every
 * table in the view, every entry passes the class's mask test (ept_fcls:
 * present with legal R/W/X, no reserved bit, the access's rights and, when
 * A/D flags would be written, no accessed flag nor, for a write, dirty flag
 * to set; a leaf memory type that is not reserved, ept_leaf_ok). Returns false for
 * anything else (the full walk decides); true with the leaf in *leaf, its
 * level in *level_out, the host-physical address in *hpa_out and, when
 * not NULL, the AND of every entry used in *all_out and the page size in
 * *size_out. No side effects.
 * pwc: NULL (then the caller has refused GPA bits above the page-walk
 * length), or the walk's cache to start from and (fill) to fill. xc: NULL,
 * or the cache across walks to start from (on a pwc miss) and to fill. */
/* The page table (start 1) or page directory (start 2) for gpa in the
 * cache xc, when its address is in the view and its AND passes the class;
 * else top (a miss). */
static inline __attribute__((always_inline)) int
ept_xc_probe(const struct vmem_ept_mmu *e, const struct ept_fview *v, const struct ept_fcls *c,
	     const struct vmem_ept_pwc *xc, uint64_t gpa, const int top, const uint64_t **t, uint64_t *all)
{
	const struct ept_xent *x = &xc->pt[(gpa >> 21) % EPT_XPT_N];
	int start = 1;
	if (x->tag != e->xtag || x->key != gpa >> 21) {
		x = &xc->pd[(gpa >> 30) % EPT_XPD_N];
		start = 2;
		if (x->tag != e->xtag || x->key != gpa >> 30)
			return top;
	}
	uint64_t off = x->table - v->base;
	if (off >= v->size || (x->all & c->want) != c->want)
		return top;
	*t = (const uint64_t *)(const void *)(v->host + off);
	*all = x->all;
	return start;
}

static inline void ept_xc_fill(struct ept_xent *x, uint64_t tag, uint64_t key, uint64_t table, uint64_t all)
{
	x->tag = tag;
	x->key = key;
	x->table = table;
	x->all = all;
}

static inline __attribute__((always_inline)) bool
ept_fast_xlate(const struct vmem_ept_mmu *e, const struct ept_fview *v, const struct ept_fcls *c,
	       uint64_t gpa, const int top, struct ept_pwc *pwc, struct vmem_ept_pwc *xc, const bool fill, uint64_t *leaf,
	       int *level_out, uint64_t *hpa_out, uint64_t *all_out, uint64_t *size_out)
{
	const uint64_t *t = v->root;
	uint64_t all = ~0ull, pte = 0, hpa = 0, size = 0;
	int level, start = top;
	if (pwc && pwc->k1 == gpa >> 21 && !pwc->pt) {
		/* A large leaf (its memory type tested when it was filled). */
		pte = pwc->leaf1;
		all = pwc->all1;
		level = pwc->lvl1;
		if (!fill && vmi_unlikely((all & c->want) != c->want || !ept_leaf_ok(pte, c->lmask[level], c->lwant)))
			return false;
		*leaf = pte;
		*level_out = level;
		*hpa_out = pwc->hb1 | (gpa & 0x1fffff);
		if (all_out)
			*all_out = all;
		if (size_out)
			*size_out = 1ull << (12 + 9 * (level - 1));
		return true;
	}
	if (pwc && pwc->k1 == gpa >> 21) {
		start = 1;
		t = pwc->pt;
		all = pwc->all1;
	} else if (pwc && pwc->k2 == gpa >> 30) {
		start = 2;
		t = pwc->pd;
		all = pwc->all2;
	} else {
		/* (a hit's key holds these bits of a GPA that passed) */
		if (pwc && vmi_unlikely(gpa & e->gpa_rsvd))
			return false;
		if (xc)
			start = ept_xc_probe(e, v, c, xc, gpa, top, &t, &all);
		if (pwc && fill && start < top)
			ept_pwc_set(pwc, start, gpa, t, all);
	}
	/* Entries above a hit were tested with the filling class's masks (xc's
	 * with this class's in ept_xc_probe). */
	if (pwc && !fill && start < top && vmi_unlikely((all & c->want) != c->want))
		return false;
#pragma GCC unroll 5
	for (level = top; level >= 1; level--) {
		if (level > start)
			continue;
		pte = *(const volatile uint64_t *)&t[(gpa >> (12 + 9 * (level - 1))) & 511];
		if (all_out || xc || (pwc && fill && level >= 2))
			all &= pte;
		if (level == 1) {
			if (vmi_unlikely(!ept_leaf_ok(pte, c->mask[1], c->lwant)))
				return false;
			hpa = (pte & EPT_ADDR) | (gpa & 0xfff);
			size = 1ull << 12;
			break;
		}
		if (level <= 3 && (pte & VMEM_EPT_PS)) {
			/* A 1-GByte (PS is in lmask[3] without 1-GByte pages) or 2-MByte leaf. */
			if (vmi_unlikely(!ept_leaf_ok(pte, c->lmask[level], c->lwant)))
				return false;
			size = 1ull << (12 + 9 * (level - 1));
			hpa = (pte & EPT_ADDR) | (gpa & (size - 1));
			break;
		}
		if (vmi_unlikely((pte & c->mask[level]) != c->want))
			return false;
		/* Tables are 4 KiB aligned, regions 4 KiB granular: one test covers the table. */
		uint64_t off = (pte & EPT_ADDR) - v->base;
		if (vmi_unlikely(off >= v->size))
			return false;
		t = (const uint64_t *)(const void *)(v->host + off);
		if (xc && level == 2)
			ept_xc_fill(&xc->pt[(gpa >> 21) % EPT_XPT_N], e->xtag, gpa >> 21, pte & EPT_ADDR, all);
		else if (xc && level == 3)
			ept_xc_fill(&xc->pd[(gpa >> 30) % EPT_XPD_N], e->xtag, gpa >> 30, pte & EPT_ADDR, all);
		if (pwc && fill && (level == 2 || level == 3))
			ept_pwc_set(pwc, level - 1, gpa, t, all);
	}
	if (pwc && fill && level >= 2) {
		pwc->k1 = gpa >> 21;
		pwc->pt = NULL;
		pwc->all1 = all;
		pwc->hb1 = hpa & ~0x1fffffull;
		pwc->leaf1 = pte;
		pwc->lvl1 = level;
	}
	*leaf = pte;
	*level_out = level;
	*hpa_out = hpa;
	if (all_out)
		*all_out = all;
	if (size_out)
		*size_out = size;
	return true;
}

#endif
