/* libvmem guest-memory internals: the region table and the walker's fast lookup. */
#ifndef VMEM_GMEM_INT_H
#define VMEM_GMEM_INT_H

#include <libvmem/gmem.h>
#include "vmem_int.h"

struct gm_region {
	uint64_t gpa;
	uint64_t size;          /* bytes; gpa + size does not wrap */
	uint8_t *host;          /* RAM: host address of gpa; MMIO: NULL */
	unsigned flags;         /* VMEM_SLOT_* */
	vmem_region_kind kind;
	vmem_mmio_fn mmio;
	void *opaque;
};

struct vmem_gmem {
	const vmem_allocator *alloc;
	struct gm_region *r;    /* sorted by gpa, non-overlapping */
	unsigned n, cap;
	vmem_gmem_miss miss;
	unsigned hint;          /* region the last walk's tables were in (relaxed; a guess) */
};

/* Index of the region holding gpa, or -1. Binary search. */
int gm_find(const vmem_gmem *gm, uint64_t gpa);

/* Where a paging-structure entry of `size` bytes at gpa lives, for the walker.
 * Returns the host pointer for RAM (and sets *writable unless the slot is
 * read-only), or NULL with *val filled for MMIO / zero-miss memory (then not
 * writable), or NULL with an error in *err. *hint caches the last region. */
const void *gm_entry_slow(const vmem_gmem *gm, uint64_t gpa, unsigned size,
			  unsigned *hint, bool *writable, uint64_t *val, vmem_err *err);

static inline const void *gm_entry(const vmem_gmem *gm, uint64_t gpa, unsigned size,
				   unsigned *hint, bool *writable, uint64_t *val, vmem_err *err)
{
	if (vmi_likely(*hint < gm->n)) {
		const struct gm_region *r = &gm->r[*hint];
		/* One unsigned compare covers both bounds; entries are naturally aligned. */
		if (vmi_likely(gpa - r->gpa < r->size && r->host)) {
			*writable = !(r->flags & VMEM_SLOT_READONLY);
			return r->host + (gpa - r->gpa);
		}
	}
	return gm_entry_slow(gm, gpa, size, hint, writable, val, err);
}
#endif
