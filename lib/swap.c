/* libvmem swap entries: a swap location kept in a not-present paging entry (layout in pte.h). */
#include <libvmem/pte.h>
#include "vmem_int.h"

#define SWAP_OFFSET_SHIFT 12
#define SWAP_TYPE_SHIFT 52
#define SWAP_OFFSET_FIELD VMI_BITS(51, 12)
#define SWAP_TYPE_FIELD VMI_BITS(58, 52)
/* Bits that must be clear: P, the flags a CPU may touch, 11:10 and 63:59. */
#define SWAP_ZERO_FIELD (VMI_BITS(8, 0) | VMI_BITS(11, 10) | VMI_BITS(63, 59))

vmem_err vmem_swap_encode(vmem_swap_loc loc, uint64_t *pte)
{
	if (!pte || loc.type > VMEM_SWAP_TYPE_MAX || loc.offset > VMEM_SWAP_OFFSET_MAX)
		return VMEM_E_INVAL;
	/* Inverted offset: small offsets set the high frame bits (L1TF-safe). */
	*pte = VMEM_SWAP_MARKER | ((~loc.offset << SWAP_OFFSET_SHIFT) & SWAP_OFFSET_FIELD) |
	       ((uint64_t)loc.type << SWAP_TYPE_SHIFT);
	return VMEM_OK;
}

bool vmem_swap_is_entry(uint64_t pte)
{
	return (pte & VMEM_SWAP_MARKER) && !(pte & SWAP_ZERO_FIELD);
}

vmem_err vmem_swap_decode(uint64_t pte, vmem_swap_loc *loc)
{
	if (!loc || !vmem_swap_is_entry(pte))
		return VMEM_E_INVAL;
	loc->type = (unsigned)((pte & SWAP_TYPE_FIELD) >> SWAP_TYPE_SHIFT);
	loc->offset = (~pte & SWAP_OFFSET_FIELD) >> SWAP_OFFSET_SHIFT;
	return VMEM_OK;
}
