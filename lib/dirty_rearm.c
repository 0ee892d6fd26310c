/* libvmem dirty logging's re-arm: one flag cleared on the 4K leaves of logged pages, table lookups and leaf misses overlapped. */
#include "dirty_int.h"
#include "ept_map_int.h"

/* A leaf as vmi_ept_foreach_leaf visits it (a large leaf, or a 4K one whose table was not found). */
static int clear_leaf(void *arg, uint64_t *e, uint64_t gpa, unsigned level)
{
	struct vmi_rearm *r = arg;
	(void)gpa, (void)level;
	if (r->set) {
		/* W only where it is set, the armed mark with it (both under d->lock). */
		if (__atomic_load_n(e, __ATOMIC_RELAXED) & r->bit) {
			__atomic_fetch_xor(e, r->bit | r->set, __ATOMIC_SEQ_CST);
			r->changed = true;
		}
	} else if (__atomic_fetch_and(e, ~r->bit, __ATOMIC_SEQ_CST) & r->bit) {
		r->changed = true;
	}
	return 0;
}

void vmi_rearm_init(struct vmi_rearm *r, vmem_ept *ept, uint64_t bit, bool plain)
{
	r->ept = ept;
	r->plain = plain;
	r->bit = bit;
	r->set = bit == VMEM_EPT_W ? VMI_EPT_WP_ARMED : 0;
	r->changed = false;
	r->cur = 0;
	r->fill = &r->b[0];
	for (unsigned k = 0; k < 3; k++) {
		r->b[k].n = r->b[k].nreg = 0;
		r->b[k].last = 1;
	}
}

/* Stage 1 of a batch: its tables' nodes, one per 2 MiB, prefetched. */
static void batch_find(struct vmi_rearm *r, struct vmi_rearm_batch *b)
{
	vmi_ept_leaf_nodes(r->ept, b->reg, b->nreg, b->node);
}

/* Stage 2: its tables, then one prefetch per 64-byte line of the leaves
 * it will clear. */
static void batch_locate(struct vmi_rearm_batch *b)
{
	for (unsigned k = 0; k < b->nreg; k++)
		b->pt[k] = vmi_ept_node_table(b->node[k]);
	for (unsigned k = 0; k < b->n; k++) {
		uint64_t *t = b->pt[b->ri[k]];
		if (!t)
			continue;
		unsigned i0 = (unsigned)(b->g[k] >> 12) & 511;
		for (uint64_t m = b->mask[k]; m;) {
			unsigned j = (unsigned)__builtin_ctzll(m), end = ((i0 + j) | 7) - i0;
			__builtin_prefetch(&t[i0 + j], 1);
			m = end >= 63 ? 0 : m & ~((2ull << end) - 1);
		}
	}
}

/* Stage 3: the clears, a batch after its prefetches were issued. A present
 * leaf only, as vmi_ept_foreach_leaf would visit, whose flag is set (one
 * that reads clear has nothing to re-arm: D set after the read is a new
 * write, logged; W is set only under d->lock, held in WP mode). Which
 * store: the processor writes an EPT entry only to set A or D, each "if
 * not already set" (SDM 29.3.5). So with both set, no processor writes
 * this entry and a plain store of it without the flag loses nothing (as
 * KVM's tdp_mmu_clear_spte_bits, when an entry has no "volatile" bits);
 * the library's own writers of leaves are excluded during a harvest
 * (d->lock in WP mode; the EPT is not changed meanwhile, dirty.h), but
 * for another log's over the same pages (r->plain false): a WP log's
 * fault or re-arm (W and the mark) beside a PML log's re-arm (D), each
 * under its own log's lock. Otherwise a locked clear, of this log's bits
 * alone: an A or D set meanwhile, or the other log's bits, are not lost. WP mode
 * sets the armed mark (set) as W goes: a leaf without W (the VMM made it
 * read-only after its first write) is not the log's to open again. */
static inline __attribute__((always_inline)) bool batch_clear_bit(struct vmi_rearm *r, struct vmi_rearm_batch *b, uint64_t bit,
								  uint64_t set)
{
	const uint64_t ad = VMEM_EPT_A | VMEM_EPT_D;
	bool changed = false;
	for (unsigned k = 0; k < b->n; k++) {
		uint64_t *t = b->pt[b->ri[k]], g = b->g[k];
		if (!t) {
			for (uint64_t m = b->mask[k]; m; m &= m - 1)
				vmi_ept_foreach_leaf(r->ept, g + ((uint64_t)__builtin_ctzll(m) << 12), 4096, clear_leaf, r);
			continue;
		}
		uint64_t *e0 = &t[(g >> 12) & 511];
		for (uint64_t m = b->mask[k]; m; m &= m - 1) {
			uint64_t *e = e0 + __builtin_ctzll(m), v = __atomic_load_n(e, __ATOMIC_RELAXED);
			if (!(v & VMEM_EPT_PERM_MASK) || !(v & bit))
				continue;
			if ((v & ad) == ad && r->plain) {
				__atomic_store_n(e, (v & ~bit) | set, __ATOMIC_RELAXED);
				changed = true;
			} else if (set) {
				__atomic_fetch_xor(e, bit | set, __ATOMIC_SEQ_CST); /* W and the mark: only under d->lock */
				changed = true;
			} else if (__atomic_fetch_and(e, ~bit, __ATOMIC_SEQ_CST) & bit) {
				changed = true;
			}
		}
	}
	b->n = b->nreg = 0;
	b->last = 1;
	return changed;
}

/* The flag as a constant in each copy: a locked bit-test-and-reset. */
static void batch_clear(struct vmi_rearm *r, struct vmi_rearm_batch *b)
{
	if (r->bit == VMEM_EPT_D ? batch_clear_bit(r, b, VMEM_EPT_D, 0) : batch_clear_bit(r, b, VMEM_EPT_W, VMI_EPT_WP_ARMED))
		r->changed = true;
}

void vmi_rearm_advance(struct vmi_rearm *r)
{
	unsigned c = r->cur, older = (c + 2) % 3, oldest = (c + 1) % 3;
	batch_find(r, &r->b[c]);
	batch_locate(&r->b[older]);
	batch_clear(r, &r->b[oldest]);
	r->cur = oldest; /* emptied: filled next */
	r->fill = &r->b[oldest];
}

bool vmi_rearm_finish(struct vmi_rearm *r)
{
	unsigned c = r->cur, older = (c + 2) % 3, oldest = (c + 1) % 3;
	batch_find(r, &r->b[c]);
	batch_locate(&r->b[older]);
	batch_clear(r, &r->b[oldest]);
	batch_locate(&r->b[c]);
	batch_clear(r, &r->b[older]);
	batch_clear(r, &r->b[c]);
	/* The plain clears are seen by every processor before the harvest
	 * returns (as a locked clear would be), before the caller reads a page. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return r->changed;
}
