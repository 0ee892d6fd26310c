/* libvmem EPT fast path: the unrolled common-case EPT walk, inline for vmem_ept_walk and the nested walk. */
#ifndef VMEM_EPT_FAST_H
#define VMEM_EPT_FAST_H

#include "ept_int.h"
#include "gmem_int.h"

/* The host region holding the EPT tables (e->hint, a relaxed guess kept in
 * the EPT context: host memory also holds a nested guest's tables, whose
 * walks move host->hint elsewhere). NULL: no RAM region holds the root. */
static inline const struct gm_region *ept_fast_region(const struct vmem_ept_mmu *e, const vmem_gmem *host)
{
	unsigned h = __atomic_load_n(&((struct vmem_ept_mmu *)(uintptr_t)e)->hint, __ATOMIC_RELAXED);
	if (vmi_unlikely(h >= host->n || e->root - host->r[h].gpa >= host->r[h].size)) {
		int i = gm_find(host, e->root);
		if (i < 0)
			return NULL;
		h = (unsigned)i;
		__atomic_store_n(&((struct vmem_ept_mmu *)(uintptr_t)e)->hint, h, __ATOMIC_RELAXED);
	}
	const struct gm_region *r = &host->r[h];
	return r->host ? r : NULL;
}

/* A per-walk paging-structure cache (SDM vol. 3C 29.4.2 lets a processor
 * cache EPT paging-structure entries): the page directory and page table
 * the last translation went through, with the AND of the entries above each, so that the next translation of the same nested walk
 * whose GPA shares the 1-GByte or 2-MByte region reads only the entries
 * below. It lives on the stack of one walk: nothing survives the walk, so no
 * invalidation rule is needed. t[0] is the level-1 table (key gpa >> 21),
 * t[1] the level-2 table (key gpa >> 30); key ~0: empty. */
struct ept_pwc {
	struct {
		uint64_t key, table, all;
	} t[2];
};

static inline void ept_pwc_init(struct ept_pwc *c)
{
	for (int i = 0; i < 2; i++) {
		c->t[i].key = ~0ull;
		c->t[i].table = 0;
		c->t[i].all = 0;
	}
}

/* The common case of an EPT walk, unrolled for `top` levels: every table in
 * region r, present entries without reserved bits or bad memory types, the
 * access (fault-table index aidx) allowed, and with ad (EPT A/D on and
 * wanted) no accessed flag to set nor, for a write (write: a data write or a
 * guest paging-structure access), a dirty flag. Returns false for anything
 * else (the full walk decides); true with the leaf in *leaf, its level in
 * *level and the ANDed permissions in *perms. No side effects. pwc: NULL, or
 * a per-walk cache to start from and fill. */
static inline __attribute__((always_inline)) bool
ept_fast_core(const struct vmem_ept_mmu *e, const struct gm_region *r, uint64_t gpa, unsigned aidx,
	      bool write, bool ad, const int top, uint64_t *leaf, int *level_out, unsigned *perms_out,
	      uint64_t *hpa_out, struct ept_pwc *pwc)
{
	uint64_t hpa = 0;
	const uint8_t *base_host = r->host;
	uint64_t base = r->gpa, size = r->size, table = e->root, all = ~0ull, pte = 0;
	int level, start = top;
	if (pwc) {
		if (pwc->t[0].key == gpa >> 21) {
			start = 1;
			table = pwc->t[0].table;
			all = pwc->t[0].all;
		} else if (pwc->t[1].key == gpa >> 30) {
			start = 2;
			table = pwc->t[1].table;
			all = pwc->t[1].all;
		}
	}
#pragma GCC unroll 5
	for (level = top; level >= 1; level--) {
		if (level > start)
			continue;
		uint64_t off = table + (((gpa >> (12 + 9 * (level - 1))) & 511) << 3) - base;
		if (vmi_unlikely(off >= size))
			return false;
		pte = *(const volatile uint64_t *)(base_host + off);
		all &= pte;
		/* R clear (not present, misconfigured, or execute-only) or a reserved
		 * bit: the full walk decides. R set: present, R/W/X legal. */
		if (level <= 3 && level >= 2 && (pte & VMEM_EPT_PS)) {
			/* A 1-GByte (large_ok: else PS is in flarge) or 2-MByte leaf. */
			if (vmi_unlikely((pte & e->flarge[level]) != VMEM_EPT_R))
				return false;
			hpa = (pte & e->frame[level][1]) | (gpa & ((1ull << (12 + 9 * (level - 1))) - 1));
			break;
		}
		if (vmi_unlikely((pte & e->fchk[level]) != VMEM_EPT_R))
			return false;
		if (level == 1) {
			hpa = (pte & e->frame[1][0]) | (gpa & 0xfff);
			break;
		}
		table = pte & e->frame[level][0];
		if (pwc && (level == 2 || level == 3)) {
			pwc->t[level - 2].key = gpa >> (12 + 9 * (level - 1));
			pwc->t[level - 2].table = table;
			pwc->t[level - 2].all = all;
		}
	}
	if (vmi_unlikely((EPT_BAD_MEMTYPES >> ((pte >> 3) & 7)) & 1))
		return false;
	/* The access's rights in every entry (the fault table's rule on entry bits). */
	if (vmi_unlikely((all & e->need[aidx]) != e->need[aidx]))
		return false;
	unsigned perms = EPT_PIDX(all) & e->permmask;
	/* Flags to set (and maybe a PML entry): the full walk. */
	if (ad && (!(all & VMEM_EPT_A) || (write && !(pte & VMEM_EPT_D))))
		return false;
	*leaf = pte;
	*level_out = level;
	*perms_out = perms;
	*hpa_out = hpa;
	return true;
}

#endif
