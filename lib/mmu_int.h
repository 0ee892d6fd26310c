/* libvmem MMU internals: the mode descriptor one walker is driven by (cf. KVM's paging_tmpl.h). */
#ifndef VMEM_MMU_INT_H
#define VMEM_MMU_INT_H

#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "vmem_int.h"

/* Access index: the VMEM_ACC_* bits of walk.h (5 bits). */
#define MMU_ACC_INDEXES 32

/* pte_access: the combined permissions of a translation, as a 3-bit index. */
#define PA_W 1u /* R/W = 1 at every level */
#define PA_U 2u /* U/S = 1 at every level */
#define PA_X 4u /* XD = 0 at every level */

/* IA-32e fast path, per (access | VMEM_WALK_NO_AD << 5): a walk that
 * reached its leaf with every entry ANDed into `all` (the leaf's D only:
 * non-leaf entries are ORed with D first) and ORed into `any` succeeds
 * without a write iff (all & mask) == want and !(any & bad). mask/want hold
 * P, A (unless NO_AD), D (writes unless NO_AD) and the R/W, U/S values the
 * rights require (SDM 4.6); bad the bits reserved in every entry and XD when
 * the access needs execute rights. want bit 4 (never in mask) sends every
 * leaf to the general check (fast_leaf_gen): protection keys, or rights that
 * are not a plain conjunction. */
#define FACC_GEN (1u << 4)
struct mmu_facc {
	uint64_t mask, want, bad, pad; /* 32 bytes: indexed by a shift */
};

/* The window fast path (walk.c: walk_win), per k = 2 * access + NO_AD.
 * Entries are read flipped: P, R/W, U/S and A inverted (WIN_FLIP), and
 * the leaf's D too, so that the OR of every entry used (`any`, non-leaf D
 * dropped) has a bit set where some entry breaks a rule; with
 * a = any ^ wwant[k], the walk succeeds without a write iff !(a & wtest[k]).
 * wtest holds P, A (unless NO_AD), D (writes unless NO_AD), R/W and U/S
 * where the rights fix their value (SDM 4.6), bits 51:M, and XD where it is
 * reserved or the access needs execute rights; wwant the R/W and U/S bits
 * that must be 0 in some entry (e.g. U/S for a supervisor access under
 * SMAP). wtail is the result's last 8 bytes for a 4K page, up to the
 * perms taken from a (walk.c: win_result). */
#define WIN_FLIP (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | VMEM_PTE_A)
#define WIN_KEYS (2 * MMU_ACC_INDEXES)

/* Offsets of the window fields, for walk.c's assembly (checked there). */
#define MMU_OFF_WASM 0
#define MMU_OFF_CANON_ADD 64
#define MMU_OFF_CANON_LIM 72
#define MMU_OFF_WROOT 80
#define MMU_OFF_WFRAME 88
#define MMU_OFF_WTEST 96
#define MMU_OFF_WWANT 608
#define MMU_OFF_WTAIL 1120
#define MMU_OFF_WCLIM 1632
#define MMU_OFF_WPERM 2144

struct vmem_mmu {
	/* Hot: read on every fast walk. */
	uint8_t wasm[WIN_KEYS]; /* 4: the assembly's 4-level window path applies to k (wtop 4 and BMI2) */
	uint64_t canon_add;     /* la + canon_add < canon_lim: canonical */
	uint64_t canon_lim;
	uint64_t wroot;         /* root (its bits above the window fail the walk) */
	uint64_t wframe;        /* bits M-1:12 */
	uint64_t wtest[WIN_KEYS], wwant[WIN_KEYS], wtail[WIN_KEYS];
	uint64_t wclim[WIN_KEYS]; /* canon_lim where wasm[k] is 4, else 0: one compare for both */
	uint64_t wperm[16];       /* by XD, R/W, U/S of `any` in bits 0, 2, 3: the perms byte of the tail, before wtail */
	uint8_t wtop[WIN_KEYS]; /* 4 or 5: the window fast path applies to k; 0: it does not */
	uint64_t wpfn;          /* root >> 12 (the C window walk) */
	uint32_t fast_ok;       /* bit acc: IA-32e paging and a valid access (fast path may try) */
	uint8_t ftop;           /* 4 or 5 (IA-32e), else 0 */
	uint64_t froot;         /* root (IA-32e) */
	uint64_t fframe;        /* bits M-1:12: next table / 4K page */
	uint64_t flarge3;       /* PS = 1 in a PDPTE: bits that must be 0 (PS itself without 1G pages) */
	uint64_t flarge2;       /* PS = 1 in a PDE: bits 20:13 */
	uint64_t fframe3;       /* 1-GByte page frame bits */
	struct mmu_facc facc[2 * MMU_ACC_INDEXES];
	/* The full walk. */
	uint8_t mode;           /* vmem_mode */
	uint8_t top;            /* level the walk starts at (5, 4, 2 for 32-bit, 2 for PAE after the PDPTE) */
	uint8_t va_bits;        /* 57, 48 (canonical check) or 32 */
	uint8_t large_ok[6];    /* PS=1 ends the walk at this level */
	uint32_t pkru;
	uint64_t root;          /* gpa of the top table (not used in PAE) */
	uint64_t rsvd[6][2];    /* [level][PS] bits that must be 0 in a present entry */
	uint64_t frame[6][2];   /* [level][PS] address bits of the next table / the page */
	uint8_t perm[MMU_ACC_INDEXES];   /* bit p set: pte_access p faults (SDM 4.6) */
	uint8_t pkmask[MMU_ACC_INDEXES]; /* PKRU bits that apply: 1 = AD, 2 = WD (SDM 4.6.2) */
	uint16_t pfec[MMU_ACC_INDEXES];  /* W/R, U/S, I/D bits of the error code (SDM 4.7) */
	uint64_t fchk[6];       /* fast path: P | reserved bits of a non-leaf or 4K entry (PS where reserved) */
	uint64_t flarge[6];     /* fast path: further reserved bits once PS makes the entry a leaf */
	uint32_t acc_ok;        /* bit acc set: a valid access-flag combination */
	uint64_t pdpte_rsvd;    /* PAE PDPTE reserved bits (SDM 4.4.1) */
	uint64_t pdpte[4];
	/* Cold. */
	vmem_regs regs;
	const vmem_allocator *alloc;
	bool bmi2;              /* the CPU runs RORX (CPUID.(7,0):EBX[8]); the assembly needs it */
};

/* Fast paths (the guest walk's and the nested walk's), shared. One IA-32e
 * entry at `level`: -1 not present or a reserved bit (the full walk reports
 * it), 0 a leaf, 1 a table to descend into. fchk holds PS where PS is
 * reserved, so a set PS that passes it makes a leaf (SDM 4.5). */
static inline __attribute__((always_inline)) int
mmu_fast_entry(const struct vmem_mmu *m, uint64_t pte, int level)
{
	if (vmi_unlikely((pte & m->fchk[level]) != VMEM_PTE_P))
		return -1;
	if (level == 1)
		return 0;
	if (level <= 3 && (pte & VMEM_PTE_PS))
		return vmi_unlikely(pte & m->flarge[level]) ? -1 : 0;
	return 1;
}

/* The leaf of a fast walk: all is every entry ANDed with XD inverted (bit
 * 63: executable). Rights (SDM 4.6), protection keys (4.6.2), and no A/D
 * flag left to write; *pa gets the PA_* rights. false: the full walk. */
static inline __attribute__((always_inline)) bool
mmu_fast_leaf_ok(const struct vmem_mmu *m, uint64_t pte, uint64_t all, unsigned acc, unsigned flags,
		 unsigned *pa_out)
{
	unsigned pa = (unsigned)((all >> 1) & 3) | (unsigned)((all >> 63) << 2);
	if (vmi_unlikely((m->perm[acc] >> pa) & 1))
		return false;
	if (vmi_unlikely(m->pkmask[acc] && (pa & PA_U) &&
			 ((m->pkru >> (2 * ((pte >> VMEM_PTE_PKEY_SHIFT) & 15))) & m->pkmask[acc])))
		return false;
	if (!(flags & VMEM_WALK_NO_AD) &&
	    vmi_unlikely(!(all & VMEM_PTE_A) || ((acc & VMEM_ACC_WRITE) && !(pte & VMEM_PTE_D))))
		return false;
	*pa_out = pa;
	return true;
}

#endif
