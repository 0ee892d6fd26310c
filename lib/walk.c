/* libvmem guest page walk (SDM vol. 3A ch. 4): linear -> guest-physical, driven by the MMU's mode descriptor. */
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "ept_int.h"
#include "gmem_int.h"
#include "mmu_int.h"

/* A concurrent writer that changes an entry between our read and our A/D
 * compare-and-swap makes the walk start over; give up after this many. */
#define WALK_MAX_RETRIES 16
#define ACC_VALID (VMEM_ACC_WRITE | VMEM_ACC_FETCH | VMEM_ACC_USER | VMEM_ACC_IMPLICIT | VMEM_ACC_AC)

/* PAE paging: the walk starts at a PDPTE register, which takes no accessed
 * flag and no part in the R/W and U/S checks (SDM 4.4.1, 4.6). */
static inline bool walk_pae_pdpte(const struct vmem_mmu *m, uint64_t la, unsigned acc, uint64_t *table,
			   vmem_walk_result *res, vmem_walk_trace *tr)
{
	unsigned i = (unsigned)(la >> 30) & 3;
	uint64_t pdpte = m->pdpte[i];
	if (tr) {
		tr->e[0].gpa = (m->regs.cr3 & 0xffffffe0ull) + 8 * i;
		tr->e[0].value = pdpte;
		tr->e[0].level = 3;
		tr->n = 1;
	}
	if (!(pdpte & VMEM_PTE_P)) {
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc];
		res->level = 3;
		res->entry = pdpte;
		res->info = vmem_swap_is_entry(pdpte) ? VMEM_WINFO_SWAP : 0;
		return false;
	}
	if (pdpte & m->pdpte_rsvd) {
		/* Only reachable through vmem_mmu_set_pdptes (MOV CR3 would have #GP'd): report as KVM does. */
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc] | VMEM_PFEC_P | VMEM_PFEC_RSVD;
		res->level = 3;
		res->entry = pdpte;
		return false;
	}
	*table = pdpte & m->frame[3][0];
	return true;
}

#define PTE_BITS 64
#include "walk_tmpl.h"
#undef PTE_BITS
#define PTE_BITS 32
#include "walk_tmpl.h"
#undef PTE_BITS
/* The nested instances (lib/nested.c): the same walk, each entry reached through EPT. */
#undef WALK_NESTED
#define WALK_NESTED 1
#define PTE_BITS 64
#include "walk_tmpl.h"
#undef PTE_BITS
#define PTE_BITS 32
#include "walk_tmpl.h"
#undef PTE_BITS
#undef WALK_NESTED

/* Check arguments and the address form; 0 = go on walking, 1 = res is final, <0 = error. */
static int walk_prologue(const struct vmem_mmu *m, uint64_t la, unsigned acc, vmem_walk_result *res)
{
	if ((acc & ~ACC_VALID) || ((acc & VMEM_ACC_WRITE) && (acc & VMEM_ACC_FETCH)))
		return VMEM_E_INVAL;
	res->gpa = res->page_size = res->entry = 0;
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = res->perms = res->info = 0;
	if (m->va_bits == 32) {
		if (la >> 32)
			return VMEM_E_INVAL; /* linear addresses are 32 bits outside IA-32e mode */
	} else {
		/* Non-canonical: #GP (#SS for stack references), never a #PF (SDM 3.3.7.1). */
		unsigned sh = 64u - m->va_bits;
		if ((uint64_t)((int64_t)(la << sh) >> sh) != la) {
			res->status = VMEM_WALK_GP;
			return 1;
		}
	}
	if (m->mode == VMEM_MODE_NONE) {
		res->gpa = la;
		res->page_size = VMEM_PAGE_4K;
		res->perms = VMEM_PERM_W | VMEM_PERM_U | VMEM_PERM_X;
		return 1;
	}
	return 0;
}

/* The end of a fast walk that reached its leaf: rights (SDM 4.6), keys, and
 * whether an A/D flag would have to be written. all is every entry ANDed
 * with XD inverted (bit 63: executable). false: leave it to the full walk. */
static inline __attribute__((always_inline)) bool
fast_leaf(const struct vmem_mmu *m, uint64_t la, uint64_t pte, uint64_t all, int level,
	  unsigned acc, unsigned flags, vmem_walk_result *res)
{
	unsigned pa = (unsigned)((all >> 1) & 3) | (unsigned)((all >> 63) << 2);
	if (vmi_unlikely((m->perm[acc] >> pa) & 1))
		return false;
	if (vmi_unlikely(m->pkmask[acc] && (pa & PA_U) &&
			 ((m->pkru >> (2 * ((pte >> VMEM_PTE_PKEY_SHIFT) & 15))) & m->pkmask[acc])))
		return false;
	/* A/D already set everywhere (D on the leaf for a write): nothing to write. */
	if (!(flags & VMEM_WALK_NO_AD) &&
	    vmi_unlikely(!(all & VMEM_PTE_A) || ((acc & VMEM_ACC_WRITE) && !(pte & VMEM_PTE_D))))
		return false;
	unsigned shift = 12 + 9 * (unsigned)(level - 1);
	res->gpa = (pte & m->frame[level][level > 1]) | (la & ((1ull << shift) - 1));
	res->page_size = 1ull << shift;
	res->entry = pte;
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = (uint8_t)level;
	res->perms = (uint8_t)pa;
	res->info = 0;
	return true;
}

/* The common case of IA-32e paging, unrolled for a fixed number of levels:
 * every table in one RAM region, no fault, no A/D flag left to set (or
 * VMEM_WALK_NO_AD). Anything else returns false and takes the full walk,
 * which then produces the exact fault, trace or A/D update. */
static inline __attribute__((always_inline)) bool
walk_fast(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned flags,
	  vmem_walk_result *res, const int top)
{
	unsigned h = __atomic_load_n(&gm->hint, __ATOMIC_RELAXED);
	if (vmi_unlikely(h >= gm->n))
		return false;
	const struct gm_region *r = &gm->r[h];
	const uint8_t *host = r->host;
	/* all: every entry ANDed, with XD inverted so that bit 63 ends as "executable". */
	uint64_t base = r->gpa, size = r->size, table = m->root, all = ~0ull, pte = 0;
	if (vmi_unlikely(!host))
		return false;
	int level;
#pragma GCC unroll 5
	for (level = top; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		uint64_t off = table + (((la >> shift) & 511) << 3) - base;
		if (vmi_unlikely(off >= size))
			return false;
		pte = *(const volatile uint64_t *)(host + off);
		all &= pte ^ VMEM_PTE_XD;
		/* Not present or a reserved bit: leave the exact fault to the full walk. */
		if (vmi_unlikely((pte & m->fchk[level]) != VMEM_PTE_P))
			return false;
		if (level == 1)
			break;
		/* PS is in fchk where it is reserved, so a set PS here makes a leaf. */
		if (level <= 3 && (pte & VMEM_PTE_PS)) {
			if (vmi_unlikely(pte & m->flarge[level]))
				return false;
			break;
		}
		table = pte & m->frame[level][0];
	}
	return fast_leaf(m, la, pte, all, level, acc, flags, res);
}

/* The full walk, remembering which region held the tables for the next fast path. */
static vmem_err walk_full(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
			  unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (m->mode == VMEM_MODE_32BIT)
		return walk32(m, gm, la, acc, flags, res, tr);
	vmem_err e = walk64(m, gm, la, acc, flags, res, tr);
	if (m->mode >= VMEM_MODE_4LEVEL && gm->n) {
		int i = gm_find(gm, m->root);
		if (i >= 0)
			__atomic_store_n(&gm->hint, (unsigned)i, __ATOMIC_RELAXED);
	}
	return e;
}

/* Everything but the fast path: argument errors, #GP, paging off, 32-bit and
 * PAE paging, faults, A/D updates, traces. Out of line, so that the fast
 * path's prologue stays small. */
static __attribute__((noinline)) vmem_err
walk_slow(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned flags,
	  vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (!m || !gm || !res)
		return VMEM_E_INVAL;
	if (tr)
		tr->n = 0;
	int rc = walk_prologue(m, la, acc, res);
	if (rc)
		return rc < 0 ? (vmem_err)rc : VMEM_OK;
	return walk_full(m, gm, la, acc, flags, res, tr);
}

vmem_err vmem_walk(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
		   unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (vmi_likely(m && gm && res && !tr && m->mode >= VMEM_MODE_4LEVEL && acc < MMU_ACC_INDEXES &&
		       ((m->acc_ok >> acc) & 1))) {
		/* Canonical (SDM 3.3.7.1): otherwise #GP, which the slow path reports. */
		unsigned sh = 64u - m->va_bits;
		if ((uint64_t)((int64_t)(la << sh) >> sh) == la &&
		    (m->top == 4 ? walk_fast(m, gm, la, acc, flags, res, 4)
				 : walk_fast(m, gm, la, acc, flags, res, 5)))
			return VMEM_OK;
	}
	return walk_slow(m, gm, la, acc, flags, res, tr);
}

vmem_err vmi_walk_nested(const struct vmem_mmu *m, struct nx_walk *nx, uint64_t la,
			 unsigned acc, unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (tr)
		tr->n = 0;
	int rc = walk_prologue(m, la, acc, res);
	if (rc)
		return rc < 0 ? (vmem_err)rc : VMEM_OK;
	if (m->mode == VMEM_MODE_32BIT)
		return walk32_nested(m, nx->host, la, acc, flags, res, tr, nx);
	return walk64_nested(m, nx->host, la, acc, flags, res, tr, nx);
}

/* Batched walks: up to BATCH_LANES walks advance a level at a time in turn,
 * each lane's next entry prefetched, so that their cache misses overlap
 * instead of queueing behind each other. The lanes take the fast path's
 * conditions (IA-32e paging, tables in one RAM region, no fault, no A/D to
 * write); a lane that leaves them is finished by the full single walk. */
#define BATCH_LANES 16

/* One group of up to BATCH_LANES walks, all advancing one level per round
 * (so every shift is a constant); lanes stay in place, a list of live
 * indexes shrinks. Returns a bitmask of lanes left to the full walk. */
static inline __attribute__((always_inline)) uint32_t
batch_group(const struct vmem_mmu *m, const uint8_t *host, uint64_t base, uint64_t size,
	    const uint64_t *la, unsigned k, unsigned acc, unsigned flags, vmem_walk_result *res,
	    const int top)
{
	uint64_t off[BATCH_LANES], all[BATCH_LANES]; /* all: ANDed entries, XD inverted */
	uint8_t live[BATCH_LANES];
	unsigned nlive = 0;
	uint32_t slow = 0;
	unsigned sh = 64u - m->va_bits;
	for (unsigned j = 0; j < k; j++) {
		uint64_t a = la[j];
		off[j] = m->root + (((a >> (12 + 9 * (top - 1))) & 511) << 3) - base;
		all[j] = ~0ull;
		if ((uint64_t)((int64_t)(a << sh) >> sh) != a || off[j] >= size) {
			slow |= 1u << j;
			continue;
		}
		__builtin_prefetch(host + off[j]);
		live[nlive++] = (uint8_t)j;
	}
#pragma GCC unroll 5
	for (int level = top; level >= 1; level--) {
		unsigned still = 0;
		for (unsigned q = 0; q < nlive; q++) {
			unsigned j = live[q];
			uint64_t pte = *(const volatile uint64_t *)(host + off[j]);
			all[j] &= pte ^ VMEM_PTE_XD;
			if ((pte & m->fchk[level]) != VMEM_PTE_P) {
				slow |= 1u << j;
				continue;
			}
			if (level == 1 || (level <= 3 && (pte & VMEM_PTE_PS))) {
				if ((level > 1 && (pte & m->flarge[level])) ||
				    !fast_leaf(m, la[j], pte, all[j], level, acc, flags, &res[j]))
					slow |= 1u << j;
				continue;
			}
			if (level > 1) {
				uint64_t o = (pte & m->frame[level][0]) +
					     (((la[j] >> (12 + 9 * (level - 2))) & 511) << 3) - base;
				if (o >= size) {
					slow |= 1u << j;
					continue;
				}
				off[j] = o;
				__builtin_prefetch(host + o);
				live[still++] = (uint8_t)j;
			}
		}
		nlive = still;
	}
	return slow;
}

vmem_err vmem_walk_batch(const vmem_mmu *m, vmem_gmem *gm, const uint64_t *la, size_t n,
			 unsigned acc, unsigned flags, vmem_walk_result *res)
{
	if (!m || !gm || (!la && n) || (!res && n))
		return VMEM_E_INVAL;
	unsigned h = __atomic_load_n(&gm->hint, __ATOMIC_RELAXED);
	bool fast = m->mode >= VMEM_MODE_4LEVEL && acc < MMU_ACC_INDEXES && ((m->acc_ok >> acc) & 1) &&
		    h < gm->n && gm->r[h].host;
	for (size_t first = 0; first < n; first += BATCH_LANES) {
		unsigned k = n - first < BATCH_LANES ? (unsigned)(n - first) : BATCH_LANES;
		uint32_t slow = (1u << k) - 1;
		if (fast) {
			const struct gm_region *r = &gm->r[h];
			slow = m->top == 4
				? batch_group(m, r->host, r->gpa, r->size, la + first, k, acc, flags, res + first, 4)
				: batch_group(m, r->host, r->gpa, r->size, la + first, k, acc, flags, res + first, 5);
		}
		while (slow) {
			unsigned j = (unsigned)__builtin_ctz(slow);
			slow &= slow - 1;
			vmem_err e = vmem_walk(m, gm, la[first + j], acc, flags, &res[first + j], NULL);
			if (e)
				return e;
		}
	}
	return VMEM_OK;
}
