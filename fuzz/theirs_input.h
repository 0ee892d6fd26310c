/* theirs_input: decode a fuzz_theirs input into a vmem_vector (a generated vector aimed at one class, then mutated). */
#ifndef VMEM_FUZZ_THEIRS_INPUT_H
#define VMEM_FUZZ_THEIRS_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <libvmem/vectors.h>

/* Input layout (little-endian; a short header reads as zero):
 *   0      bits 1:0 kind (value % 3: walk, ept, nested); bits 5:2 guest modes
 *          (VMEM_VGEN_* mask: 32-bit, PAE, 4-level, 5-level; 0 means all);
 *          bits 7:6 unused
 *   1..8   generator seed
 *   9..12  generator index (picks the class: see vectors.h)
 *   13..   mutation records of 9 bytes: u8 target, u64 mask (THEIRS_MUT_*
 *          below; a target with bit 7 set XORs mask into memory word
 *          (target & 0x7f) % n_mem). */
#define THEIRS_HDR 13
#define THEIRS_REC 9

/* Mutation targets (target byte % 16 when bit 7 is clear). */
enum {
	THEIRS_MUT_CR0, THEIRS_MUT_CR3, THEIRS_MUT_CR4, THEIRS_MUT_EFER,
	THEIRS_MUT_PKRU,       /* ^= low 32 bits */
	THEIRS_MUT_MAXPHYADDR, /* 32 + ((maxphyaddr - 32) ^ mask) % 21 */
	THEIRS_MUT_GBPAGES,    /* toggled by mask bit 0 */
	THEIRS_MUT_ADDR,       /* access.addr ^= mask */
	THEIRS_MUT_TYPE,       /* access.type = (type ^ mask) % 3 */
	THEIRS_MUT_CPL,        /* access.cpl = (cpl ^ mask) & 3 */
	THEIRS_MUT_FLAGS,      /* bit 0 toggles implicit, bit 1 AC, bit 2 (kind ept) linear present */
	THEIRS_MUT_LINEAR,     /* kind ept: access.linear ^= mask (and present) */
	THEIRS_MUT_EPTP,       /* kinds ept, nested: eptp ^= mask */
	THEIRS_MUT_EPT_CTLS,   /* kinds ept, nested: bit 0 toggles mbec, bit 1 advanced_info */
	THEIRS_MUT_COPY_WORD,  /* word (mask >> 16) % n_mem copied to offset mask & 0xfff of its
				* page (aligned down), value ^ (mask >> 32); skipped if it overlaps */
	THEIRS_MUT_DROP_WORD,  /* word mask % n_mem removed (that memory reads zero) */
	THEIRS_MUT_COUNT
};

/* Decode data into *out (a fresh vector the caller frees; its expect block
 * is cleared). VMEM_OK, or the generator's error (VMEM_E_NOMEM...). */
vmem_err theirs_input_decode(const uint8_t *data, size_t size, vmem_vector *out);

#endif
