/* libvmem dirty logging internals: the harvest's re-arm of logged pages (lib/dirty_rearm.c). */
#ifndef VMEM_DIRTY_INT_H
#define VMEM_DIRTY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/ept_map.h>

/* Runs per batch: a run is the logged pages of one bitmap word in one table
 * of 4K leaves (first page + mask). Three batches are live, a stage apart:
 * the newest has its tables' nodes prefetched, the next its leaves, while
 * the oldest one's leaves are cleared. */
#define VMI_REARM_RUNS 32

struct vmi_rearm_batch {
	unsigned n, nreg;
	uint64_t last;                  /* reg[nreg - 1]; 1 (not aligned) when nreg is 0 */
	uint64_t reg[VMI_REARM_RUNS];   /* the distinct 2 MiB (aligned GPAs) of the runs */
	const void *node[VMI_REARM_RUNS]; /* their tables' nodes (vmi_ept_leaf_nodes) */
	uint64_t *pt[VMI_REARM_RUNS];   /* their tables of 4K leaves, or NULL */
	uint64_t g[VMI_REARM_RUNS];     /* a run's first page */
	uint64_t mask[VMI_REARM_RUNS];  /* bit k: page g + 4K * k */
	uint8_t ri[VMI_REARM_RUNS];     /* a run's index in reg */
};

struct vmi_rearm {
	vmem_ept *ept;
	uint64_t bit;      /* the flag cleared: W (WP mode) or D (PML mode) */
	uint64_t set;      /* the flag set with it: VMI_EPT_WP_ARMED (WP mode) or 0 */
	bool changed;      /* some leaf had it */
	bool plain;        /* no other log writes these leaves: one with A and D may be stored whole */
	unsigned cur;      /* the batch being filled; cur + 2 (mod 3) is a stage older, cur + 1 two */
	struct vmi_rearm_batch *fill; /* &b[cur] */
	struct vmi_rearm_batch b[3];
};

/* bit: VMEM_EPT_W (the leaf is marked armed as W goes) or VMEM_EPT_D;
 * plain: no other log of the EPT is on over these pages. */
void vmi_rearm_init(struct vmi_rearm *r, vmem_ept *ept, uint64_t bit, bool plain);
/* The full batch starts the pipeline; each older one moves a stage on. */
void vmi_rearm_advance(struct vmi_rearm *r);

/* One run: the pages g + 4K * k for the bits k of mask, all in g's 2 MiB. */
static inline void vmi_rearm_run(struct vmi_rearm *r, uint64_t g, uint64_t mask)
{
	struct vmi_rearm_batch *b = r->fill;
	uint64_t g2m = g & ~0x1fffffull;
	if (!mask)
		return;
	if (g2m != b->last)
		b->reg[b->nreg++] = b->last = g2m;
	b->ri[b->n] = (uint8_t)(b->nreg - 1);
	b->g[b->n] = g;
	b->mask[b->n] = mask;
	if (++b->n == VMI_REARM_RUNS)
		vmi_rearm_advance(r);
}

/* Re-arm the pages g + 4K * k for the bits k of bits (one bitmap word), as
 * vmi_ept_foreach_leaf(page, 4 KiB) clearing r->bit on each leaf would;
 * the clears happen by vmi_rearm_finish at the latest. One run, or two
 * when the word's 256 KiB crosses a 2 MiB boundary (the tracked range
 * need not be aligned). */
static inline void vmi_rearm_word(struct vmi_rearm *r, uint64_t g, uint64_t bits)
{
	unsigned split = (unsigned)((0x200000 - (g & 0x1fffff)) >> 12); /* pages left in g's 2 MiB */
	if (split >= 64) {
		vmi_rearm_run(r, g, bits);
		return;
	}
	vmi_rearm_run(r, g, bits & ((1ull << split) - 1));
	vmi_rearm_run(r, g + ((uint64_t)split << 12), bits >> split);
}
/* Do the pending clears; true if any leaf had the flag. */
bool vmi_rearm_finish(struct vmi_rearm *r);
#endif
