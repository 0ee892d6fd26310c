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

/* The walker's window (gm_window in gmem.c): the largest power-of-two
 * prefix [0, 2^k) of a RAM slot at gpa 0, k <= 52, kept up to date by every
 * slot change (never by walks, so concurrent walkers read a stable view).
 * The assembly's walk and the batch lanes read entry i of the table the
 * entry above points at, at whost + (entry & wmaskb) + (8 * i & wimask),
 * which is inside the slot whatever the guest wrote; it trusts what it read
 * only if the root and every non-leaf entry have no bit of whi set (their
 * table is then inside the window). Without a window, wmaskb and wimask are
 * 0, whost points at wdummy and whi has every bit set: the walk fails and
 * takes the general path. The C single walk reads entry x (a gpa / 8) at
 * whost + 8 * (x & wmask) instead. */
struct gm_window {
	const uint8_t *whost;   /* host address of gpa 0 */
	uint64_t whi;           /* bits 51:k, and PS (bit 7) */
	uint64_t wdummy;        /* what a walk without a window reads (0) */
	uint64_t wmaskb;        /* 2^k - 4096: a table's offset in the window (entry & wmaskb) */
	uint64_t wimask;        /* 0xff8, an entry's offset in its table (0 without a window) */
	uint64_t wmask;         /* 2^(k-3) - 1: an entry's index in the window (0 without a window) */
};

/* Offsets of the window fields, for walk.c's assembly (checked there). */
#define GM_OFF_WHOST 0
#define GM_OFF_WHI 8
#define GM_OFF_WMASKB 24
#define GM_OFF_WIMASK 32

struct vmem_gmem {
	struct gm_window win;   /* first: read on every fast walk */
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
