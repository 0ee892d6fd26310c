/* libvmem guest-physical memory: slots of host memory and holes, bounds-checked. */
#ifndef LIBVMEM_GMEM_H
#define LIBVMEM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A guest-physical address space: a set of non-overlapping regions.
 * - RAM slots map [gpa, gpa+size) onto a host buffer the caller owns.
 * - MMIO holes call back on every access.
 * - Everything else is unbacked. By default an access there fails with
 *   VMEM_E_RANGE; VMEM_GMEM_MISS_ZERO makes reads return 0 (and writes fail),
 *   which is how test vectors describe memory ("not listed reads as zero").
 * No accessor ever touches host memory outside a slot's buffer.
 * Threads: walks and accessors may run at once on one vmem_gmem (the hints
 * they store are relaxed guesses, checked before use); adding or removing a
 * region (or changing the miss policy) must not overlap any of them: the
 * caller serialises those, as a VMM does around a memory-map change. */
typedef struct vmem_gmem vmem_gmem;

/* Slot flags. */
#define VMEM_SLOT_READONLY 0x1u /* guest writes refused; the walker does not set A/D here */
#define VMEM_SLOT_NOEXEC   0x2u /* guest instruction fetches refused */

/* Policy for addresses in no region. */
typedef enum vmem_gmem_miss {
	VMEM_GMEM_MISS_ERROR = 0, /* VMEM_E_RANGE */
	VMEM_GMEM_MISS_ZERO = 1   /* reads return zero, writes fail VMEM_E_RANGE */
} vmem_gmem_miss;

/* MMIO callback: read (is_write false, fill *val) or write (*val holds data)
 * of `size` bytes (1, 2, 4 or 8) at `gpa`, always wholly inside the callback's
 * own region (the walker's entry reads too). Return VMEM_OK or an error. */
typedef int (*vmem_mmio_fn)(void *opaque, uint64_t gpa, unsigned size,
			    bool is_write, uint64_t *val);

vmem_err vmem_gmem_new(const vmem_allocator *alloc, vmem_gmem **out);
void vmem_gmem_free(vmem_gmem *gm);

/* Add a RAM slot. gpa, size and host must be 4 KiB aligned, size > 0,
 * gpa+size must not wrap. VMEM_E_OVERLAP if it overlaps any region. */
vmem_err vmem_gmem_add_ram(vmem_gmem *gm, uint64_t gpa, uint64_t size,
			   void *host, unsigned flags);
/* Add an MMIO hole (any byte alignment; size > 0). */
vmem_err vmem_gmem_add_mmio(vmem_gmem *gm, uint64_t gpa, uint64_t size,
			    vmem_mmio_fn fn, void *opaque);
/* Remove the region that starts exactly at gpa. */
vmem_err vmem_gmem_remove(vmem_gmem *gm, uint64_t gpa);
void vmem_gmem_set_miss(vmem_gmem *gm, vmem_gmem_miss policy);

/* Kind of the region holding gpa. */
typedef enum vmem_region_kind {
	VMEM_REGION_NONE = 0,
	VMEM_REGION_RAM = 1,
	VMEM_REGION_MMIO = 2
} vmem_region_kind;

typedef struct vmem_region_info {
	vmem_region_kind kind;
	uint64_t gpa, size; /* the whole region */
	unsigned flags;     /* VMEM_SLOT_* for RAM */
	void *host;         /* RAM: host address of gpa (not of the region start) */
} vmem_region_info;

/* Look up gpa. Returns VMEM_E_NOENT (info->kind NONE) outside every region. */
vmem_err vmem_gmem_lookup(const vmem_gmem *gm, uint64_t gpa, vmem_region_info *info);

/* Host pointer for [gpa, gpa+len) if it lies wholly in one RAM slot, else NULL. */
void *vmem_gmem_hva(const vmem_gmem *gm, uint64_t gpa, uint64_t len);

/* Copy guest memory; the range may span several regions (MMIO is accessed
 * in naturally aligned pieces of up to 8 bytes). Writes check the whole range
 * first, so an unbacked or read-only part fails the write with nothing
 * written; a write that reaches MMIO must lie within that one MMIO region
 * (VMEM_E_INVAL otherwise), since a device's side effects cannot be undone:
 * a callback failing midway stops the write where it failed. buf may overlap
 * the guest memory copied (a vmem_gmem_hva pointer): the copy acts as memmove. */
vmem_err vmem_gmem_read(const vmem_gmem *gm, uint64_t gpa, void *buf, size_t len);
vmem_err vmem_gmem_write(vmem_gmem *gm, uint64_t gpa, const void *buf, size_t len);
/* Naturally aligned 4- and 8-byte accesses (the width of a paging entry).
 * Unaligned gpa: VMEM_E_INVAL. Writes honour VMEM_SLOT_READONLY. */
vmem_err vmem_gmem_read32(const vmem_gmem *gm, uint64_t gpa, uint32_t *val);
vmem_err vmem_gmem_read64(const vmem_gmem *gm, uint64_t gpa, uint64_t *val);
vmem_err vmem_gmem_write32(vmem_gmem *gm, uint64_t gpa, uint32_t val);
vmem_err vmem_gmem_write64(vmem_gmem *gm, uint64_t gpa, uint64_t val);
/* Atomic compare-and-swap in RAM: if *expected matches, store desired and
 * return VMEM_OK; otherwise load the current value into *expected and return
 * VMEM_E_RETRY. MMIO and unbacked: VMEM_E_RANGE. */
vmem_err vmem_gmem_cmpxchg64(vmem_gmem *gm, uint64_t gpa, uint64_t *expected, uint64_t desired);
vmem_err vmem_gmem_cmpxchg32(vmem_gmem *gm, uint64_t gpa, uint32_t *expected, uint32_t desired);

/* Visit every region in ascending gpa order; stop early if fn returns non-zero.
 * fn may add or remove regions: the visit resumes above the gpa it was at. */
int vmem_gmem_foreach(const vmem_gmem *gm,
		      int (*fn)(void *arg, const vmem_region_info *r), void *arg);

#ifdef __cplusplus
}
#endif
#endif
