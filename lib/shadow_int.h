/* libvmem shadow-paging internals: shadow pages, roots, the two reverse maps and the engine state. */
#ifndef VMEM_SHADOW_INT_H
#define VMEM_SHADOW_INT_H

#include <libvmem/pte.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>
#include "vmem_int.h"

#define SH_ENTRIES 512
#define SH_DIRECT (~0ull)                  /* gfn of a page that shadows no guest table */
#define SH_FRAME VMI_BITS(51, 12)          /* host-physical frame bits of a shadow entry */
/* Every non-leaf shadow entry grants everything: the leaf carries the
 * combined rights of the whole guest walk (as KVM does), and A is preset so
 * the processor has nothing to write back. */
#define SH_NONLEAF (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | VMEM_PTE_A)

/* One reverse-map node per leaf slot: links the slot into the chain of the
 * guest frame it maps (hash bucket of the leaf rmap). */
struct sh_rnode {
	struct sh_rnode *next, **pprev;
	uint64_t gfn;                      /* guest-physical frame address mapped */
};

struct sh_root;

/* Metadata of one shadow table page. */
struct sh_page {
	uint64_t *pt;                      /* the table itself (one allocator page) */
	uint64_t phys;
	uint64_t gfn;                      /* guest table frame whose entries it follows, or SH_DIRECT */
	uint64_t base;                     /* first linear address it covers (sign-extended) */
	uint64_t stamp;                    /* last fill through it (LRU) */
	struct sh_root *root;
	struct sh_page *parent;            /* NULL for a root page */
	uint16_t pidx;                     /* slot in the parent */
	uint8_t level;                     /* host level 1..5 */
	uint8_t glevel;                    /* guest level followed (0: none) */
	uint32_t npresent;
	struct sh_page *hnext, **hpprev;   /* table hash: pages by gfn */
	struct sh_page *lnext, *lprev;     /* LRU list (non-root pages), or the reserve */
	union {
		struct sh_page *child[SH_ENTRIES]; /* level > 1 */
		struct sh_rnode rm[SH_ENTRIES];    /* level 1: leaf reverse map */
	} u;
};

/* A cached root: one guest address space in one role. */
struct sh_root {
	bool used;
	uint32_t role;                     /* everything that changes what an entry may allow */
	uint64_t key;                      /* guest CR3 table address */
	uint64_t pdpte[4];                 /* PAE: the PDPTE registers (part of the key) */
	vmem_mmu *mmu;                     /* guest walker for these registers */
	struct sh_page *top;
	uint64_t stamp;
	uint8_t glevel[6];                 /* [host level]: guest level its pages follow, 0 = none */
	uint8_t gbits, esize;              /* guest index bits per level (9/10), entry size (8/4) */
	uint8_t mmu_mode;                  /* vmem_mode */
	bool wp, pke;                      /* CR0.WP; protection keys apply (CR4.PKE, IA-32e paging) */
};

struct vmem_shadow {
	const vmem_allocator *alloc;
	vmem_gmem *gm;
	const vmem_ept *ept;
	uint64_t (*host_phys)(void *ctx, const void *hva);
	void *host_phys_ctx;
	unsigned hlevels, budget, max_roots;
	unsigned used;                     /* table pages in roots */
	struct sh_root *roots;
	struct sh_root *cur;
	vmem_mmu *scratch;                 /* spare walker: a new root's, the audit's */
	struct sh_page *pool;              /* reserve of zeroed pages (KVM's mmu cache) */
	unsigned npool, pool_target;
	struct sh_page lru;                /* sentinel: lnext = most recent */
	struct sh_page **thash;            /* guest table frame -> shadow pages following it */
	unsigned thash_mask;
	struct sh_rnode **rhash;           /* guest frame -> shadow leaves mapping it */
	unsigned rhash_mask;
	uint64_t clock;
	bool flush;
	vmem_shadow_stats st;
};

/* Host rights of a guest-physical page. */
struct sh_host {
	uint64_t hpa;                      /* host-physical address of the 4K frame */
	bool ram, w, x;
};

static inline unsigned sh_hash(uint64_t gfn, unsigned mask)
{
	uint64_t h = (gfn >> 12) * 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 40) & mask;
}

static inline unsigned sh_shift(unsigned level) { return 12 + 9 * (level - 1); }

/* shadow_mem.c: pages, the reserve, the budget and reclaim. */
vmem_err vmi_shm_topup(vmem_shadow *sh, unsigned need);
struct sh_page *vmi_shm_take(vmem_shadow *sh, struct sh_root *root, struct sh_page *parent,
			 unsigned pidx, unsigned level, uint64_t gfn, uint64_t base, unsigned glevel);
void vmi_shm_zap_entry(vmem_shadow *sh, struct sh_page *sp, unsigned idx);
void vmi_shm_free_root(vmem_shadow *sh, struct sh_root *r);
void vmi_shm_touch(vmem_shadow *sh, struct sh_page *sp);
void vmi_shm_pool_release(vmem_shadow *sh);

/* shadow_rmap.c: the table hash and the leaf reverse map. */
void vmi_shr_table_add(vmem_shadow *sh, struct sh_page *sp);
void vmi_shr_table_del(vmem_shadow *sh, struct sh_page *sp);
bool vmi_shr_is_table(const vmem_shadow *sh, uint64_t gfn);
void vmi_shr_leaf_add(vmem_shadow *sh, struct sh_page *sp, unsigned idx, uint64_t gfn);
void vmi_shr_leaf_del(struct sh_page *sp, unsigned idx);
void vmi_shr_write_protect(vmem_shadow *sh, uint64_t gfn);
void vmi_shr_zap_gfn_leaves(vmem_shadow *sh, uint64_t gfn);

/* shadow_fill.c */
bool vmi_sh_host_map(const vmem_shadow *sh, uint64_t gpa, struct sh_host *h);

/* shadow_sync.c */
void vmi_shs_guest_wrote(vmem_shadow *sh, uint64_t gpa, uint64_t len);
#endif
