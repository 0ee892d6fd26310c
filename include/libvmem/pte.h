/* libvmem x86 paging-entry formats: flag bits by SDM name, and swap entries. */
#ifndef LIBVMEM_PTE_H
#define LIBVMEM_PTE_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Intel SDM vol. 3A, 4.3-4.5: flags of paging-structure entries. */
#define VMEM_PTE_P     (1ull << 0)  /* present */
#define VMEM_PTE_RW    (1ull << 1)  /* read/write */
#define VMEM_PTE_US    (1ull << 2)  /* user/supervisor */
#define VMEM_PTE_PWT   (1ull << 3)
#define VMEM_PTE_PCD   (1ull << 4)
#define VMEM_PTE_A     (1ull << 5)  /* accessed */
#define VMEM_PTE_D     (1ull << 6)  /* dirty (leaf entries only) */
#define VMEM_PTE_PS    (1ull << 7)  /* page size (non-4K leaf); PAT in a 4K PTE */
#define VMEM_PTE_PAT4K (1ull << 7)
#define VMEM_PTE_G     (1ull << 8)  /* global (leaf entries only) */
#define VMEM_PTE_PATLG (1ull << 12) /* PAT in a 2M/4M/1G leaf */
#define VMEM_PTE_XD    (1ull << 63) /* execute-disable (PAE, 4- and 5-level) */
#define VMEM_PTE_PKEY_SHIFT 59      /* protection key, bits 62:59 of a leaf */
#define VMEM_PTE_PKEY_MASK  (0xfull << 59)

/* Page sizes a translation can end in. */
#define VMEM_PAGE_4K (1ull << 12)
#define VMEM_PAGE_2M (1ull << 21)
#define VMEM_PAGE_4M (1ull << 22)
#define VMEM_PAGE_1G (1ull << 30)

/* Swap entries: where a swapped-out page lives, kept in a not-present entry.
 *
 * Layout (64-bit entries; libvmem's choice, fixed by these rules):
 *   bit 0       0: not present, so the processor ignores every other bit
 *   bits 8:1    0: bits a processor may touch even in a not-present entry
 *               (A/D errata) or that change the entry's meaning (PS)
 *   bit 9       1: marks a swap entry (a software-available bit), so that an
 *               all-zero "none" entry is never a swap entry
 *   bits 11:10  0
 *   bits 51:12  offset, stored inverted: a small offset then has its high
 *               frame bits set and never names populated memory, even to a
 *               processor that speculates through not-present entries (L1TF).
 *               "Small" depends on the host: the speculative access keeps the
 *               address's bits below MAXPHYADDR, and there the frame ~offset
 *               is at or above half of 2^MAXPHYADDR (where no memory is) for
 *               offsets below 2^(MAXPHYADDR - 13) pages; a VMM that wants the
 *               mitigation caps its swap size there, as Linux does
 *               (max_swapfile_size). The encoder does not know MAXPHYADDR
 *               and accepts every offset up to VMEM_SWAP_OFFSET_MAX.
 *   bits 58:52  type (0..127: which swap device)
 *   bits 63:59  0
 */
#define VMEM_SWAP_MARKER     (1ull << 9)
#define VMEM_SWAP_TYPE_BITS  7
#define VMEM_SWAP_OFFSET_BITS 40
#define VMEM_SWAP_TYPE_MAX   ((1u << VMEM_SWAP_TYPE_BITS) - 1)
#define VMEM_SWAP_OFFSET_MAX ((1ull << VMEM_SWAP_OFFSET_BITS) - 1)

typedef struct vmem_swap_loc {
	unsigned type;   /* 0 .. VMEM_SWAP_TYPE_MAX */
	uint64_t offset; /* 0 .. VMEM_SWAP_OFFSET_MAX, in pages */
} vmem_swap_loc;

/* Encode a swap location into *pte. VMEM_E_INVAL if type or offset is too large. */
vmem_err vmem_swap_encode(vmem_swap_loc loc, uint64_t *pte);
/* Decode; VMEM_E_INVAL if pte is not a swap entry in the layout above. */
vmem_err vmem_swap_decode(uint64_t pte, vmem_swap_loc *loc);
/* True if pte is a well-formed swap entry. */
bool vmem_swap_is_entry(uint64_t pte);

#ifdef __cplusplus
}
#endif
#endif
