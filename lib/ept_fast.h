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

/* The common case of an EPT walk, unrolled for `top` levels: every table in
 * region r, present entries without reserved bits or bad memory types, the
 * access (fault-table index aidx) allowed, and with ad (EPT A/D on and
 * wanted) no accessed flag to set nor, for a write (write: a data write or a
 * guest paging-structure access), a dirty flag. Returns false for anything
 * else (the full walk decides); true with the leaf in *leaf, its level in
 * *level and the ANDed permissions in *perms. No side effects. */
static inline __attribute__((always_inline)) bool
ept_fast_core(const struct vmem_ept_mmu *e, const struct gm_region *r, uint64_t gpa, unsigned aidx,
	      bool write, bool ad, const int top, uint64_t *leaf, int *level_out, unsigned *perms_out)
{
	const uint8_t *base_host = r->host;
	uint64_t base = r->gpa, size = r->size, table = e->root, all = ~0ull, pte = 0;
	int level;
#pragma GCC unroll 5
	for (level = top; level >= 1; level--) {
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
			break;
		}
		if (vmi_unlikely((pte & e->fchk[level]) != VMEM_EPT_R))
			return false;
		if (level == 1)
			break;
		table = pte & e->frame[level][0];
	}
	if (vmi_unlikely((EPT_BAD_MEMTYPES >> ((pte >> 3) & 7)) & 1))
		return false;
	unsigned perms = EPT_PIDX(all) & e->permmask;
	if (vmi_unlikely((e->fault[aidx] >> perms) & 1))
		return false;
	/* Flags to set (and maybe a PML entry): the full walk. */
	if (ad && (!(all & VMEM_EPT_A) || (write && !(pte & VMEM_EPT_D))))
		return false;
	*leaf = pte;
	*level_out = level;
	*perms_out = perms;
	return true;
}

/* Host-physical address of gpa through a leaf at level (frame[level][PS]; PS is 1 for any leaf above level 1). */
static inline uint64_t ept_fast_hpa(const struct vmem_ept_mmu *e, uint64_t leaf, int level, uint64_t gpa)
{
	uint64_t sz = 1ull << (12 + 9 * (level - 1));
	return (leaf & e->frame[level][level > 1]) | (gpa & (sz - 1));
}

#endif
