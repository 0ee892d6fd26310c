/* libvmem EPT internals: the EPT context's precomputed masks and tables, and the nested walk's entry hooks. */
#ifndef VMEM_EPT_INT_H
#define VMEM_EPT_INT_H

#include <libvmem/ept.h>
#include <libvmem/nested.h>
#include <libvmem/walk.h>
#include "vmem_int.h"

/* Access index of the fault table: vmem_ept_atype, plus a fetch from a
 * user-mode linear address (which MBEC checks against XU). */
#define EPT_AIDX_FETCH_USER 5
#define EPT_AIDX_N 6

/* Permission index of an entry or of an AND of entries: bits 2:0 are R/W/X,
 * bit 3 is bit 10 (XU). */
#define EPT_PIDX(e) ((unsigned)(((e) & 7) | (((e) >> 7) & 8)))

/* EPT memory types 2, 3 and 7 are reserved in a leaf (SDM 29.3.3.1). */
#define EPT_BAD_MEMTYPES ((1u << 2) | (1u << 3) | (1u << 7))

/* The fast path's test of one entry for one access class (access index,
 * EPT A/D flags wanted or not): (entry & mask) == want passes a present
 * entry with legal R/W/X (R set), no reserved bit, every right the access
 * needs (SDM 29.3.3.2) and, when A/D flags are wanted, A already set (D too
 * in the leaf of a write, SDM 29.3.5); a leaf's mask also holds its memory
 * type, want WB (other types: ept_leaf_ok). Anything else takes the full walk. */
struct ept_fcls {
	uint64_t mask[6];       /* [level]: a non-leaf entry (level >= 2) or a PTE (level 1: leaf) */
	uint64_t lmask[4];      /* [level]: a PDPTE (3) / PDE (2) with PS set */
	uint64_t want;          /* non-leaf: R | rights | A */
	uint64_t lwant;         /* leaf: want, plus D for a write, and memory type WB (ept_leaf_ok) */
};

/* An EPT leaf's memory type, bits 5:3 (SDM 29.3.7). */
#define EPT_MT_BITS (7ull << 3)
#define EPT_MT_WANT_WB (6ull << 3)

struct vmem_ept_mmu {
	/* Hot: read on every walk. */
	uint8_t top;            /* 4 or 5 */
	uint8_t ad;             /* EPTP bit 6 */
	uint8_t adv;            /* report advanced information (bits 9-11) */
	uint8_t permmask;       /* 0x7, or 0xf with MBEC (XU counts) */
	uint8_t large_ok[6];    /* PS = 1 ends the walk at this level */
	uint8_t qacc[5];        /* qualification bits 2:0 per vmem_ept_atype */
	uint16_t absent;        /* bit i: permission index i is a not-present entry */
	uint16_t badrwx;        /* bit i: permission index i is a misconfiguration */
	uint16_t fault[EPT_AIDX_N]; /* bit p: permissions p (AND over levels) refuse the access */
	uint64_t root;
	uint64_t gpa_rsvd;      /* gpa bits the page-walk length does not translate */
	uint64_t rsvd[6][2];    /* [level][PS] bits that must be 0 in a present entry */
	uint64_t frame[6][2];   /* [level][PS] address bits of the next table / the page */
	vmem_pml *pml;          /* PML on: log each dirty flag set */
	unsigned hint;          /* host region the EPT tables were last found in (relaxed; a guess) */
	unsigned ghint;         /* host region a nested walk last found guest tables in (relaxed; a guess) */
	uint64_t xtag;          /* tag of vmem_ept_pwc entries: the EPTP, and at 63:52 the caps the masks depend on */
	struct ept_fcls fcls[EPT_AIDX_N][2]; /* fast path: [access index][A/D flags wanted] */
	/* Cold. */
	uint64_t eptp;
	vmem_ept_caps caps;
	const vmem_allocator *alloc;
};

/* Internal walk status (vmem_walk_result.status) of a nested guest walk
 * stopped by EPT: the EPT outcome is in the nx_walk. */
#define WALK_ST_EPT VMEM_NESTED_GUEST_STOPPED

/* The state a nested (two-dimensional) walk threads through the guest
 * walker: each guest paging-structure access is an EPT translation. */
struct nx_walk {
	const struct vmem_ept_mmu *ept;
	vmem_gmem *host;
	uint64_t la;
	unsigned ept_flags;        /* VMEM_EPT_NO_AD when the walk has no side effects */
	vmem_ept_result exit;      /* the EPT outcome that stopped the guest walk */
	vmem_err err;              /* an EPT walk refused (VMEM_E_INVAL, VMEM_E_RETRY) */
	vmem_nested_trace *trace;  /* or NULL */
};

/* Nested hooks of the guest walker (lib/nested.c). The guest entry at egpa
 * is about to be read: translate it (*hpa, and the EPT permissions in
 * *perms). false: an EPT exit, in nx->exit. */
bool vmi_nx_entry(struct nx_walk *nx, uint64_t egpa, uint64_t *hpa, uint8_t *perms);
/* The guest's A/D flags are about to be written in the entry at egpa,
 * whose translation had EPT permissions perms. false: an EPT exit. */
bool vmi_nx_ad_write(struct nx_walk *nx, uint64_t egpa, uint8_t perms);

/* The final access's fast-path class (access index of fcls) by
 * (access & 3) | guest U << 2 (lib/nested.c). */
__attribute__((visibility("hidden"))) extern const uint8_t vmi_nx_final_aidx[8];

/* x86-64: vmem_nested_walk's common case is assembly (lib/nested_x86_64.c),
 * which jumps to the C of lib/nested.c, under this name, for the rest. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__) && !defined(VMEM_NO_ASM)
#define NESTED_ASM 1
__attribute__((visibility("hidden"))) vmem_err
vmi_nested_walk_c(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host, uint64_t la,
		  unsigned acc, unsigned flags, vmem_nested_result *res, vmem_nested_trace *tr);
#else
#define NESTED_ASM 0
#endif

struct vmem_mmu;
/* The guest walk of vmem_walk with every entry reached through EPT (lib/walk.c):
 * res->status WALK_ST_EPT when EPT stopped it. */
vmem_err vmi_walk_nested(const struct vmem_mmu *m, struct nx_walk *nx, uint64_t la,
			 unsigned acc, unsigned flags, vmem_walk_result *res,
			 vmem_walk_trace *tr);

#endif
