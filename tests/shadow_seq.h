/* shadow_seq: deterministic random guest programs (memory image, registers, ops) for shadow-paging differential tests. */
#ifndef VMEM_TESTS_SHADOW_SEQ_H
#define VMEM_TESTS_SHADOW_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/paging.h>

/* A sequence is self-contained: the guest-physical memory layout and its
 * initial contents, the initial registers, and a list of operations. It
 * depends on nothing but the seed (and optional fuzz bytes), so the same
 * sequence can drive libvmem's shadow engine, the plain two-stage
 * reference, or a real CPU (KVM) and the outcomes be compared.
 *
 * Memory: SEQ_SLOTS RAM slots (see seq_slots below); everything else is
 * unbacked (an access there is MMIO to a VMM). Tables of several address
 * spaces (any paging mode) live in slot 0. */
#define SEQ_SLOTS 3
typedef struct seq_slot {
	uint64_t gpa, size;
	unsigned flags;   /* VMEM_SLOT_READONLY / VMEM_SLOT_NOEXEC */
} seq_slot;
extern const seq_slot seq_slots[SEQ_SLOTS];

enum seq_kind {
	SEQ_ACCESS = 0,   /* access `acc` (VMEM_ACC_*) at linear `addr`; a write stores the 8 bytes of `val` */
	SEQ_PT_WRITE = 1, /* the guest stores `size` (4 or 8) bytes of `val` at guest-physical `addr`
			   * (a page-table update: through the emulation path on the shadow side) */
	SEQ_SET_REGS = 2, /* MOV CR0/CR3/CR4, WRMSR EFER: `regs` (PAE: PDPTEs loaded as SDM 4.4.1 says) */
	SEQ_INVLPG = 3,   /* INVLPG `addr` */
	SEQ_SET_PKRU = 4  /* WRPKRU `val` */
};

typedef struct seq_op {
	uint8_t kind;
	uint8_t size;
	unsigned acc;
	uint64_t addr, val;
	vmem_regs regs;
} seq_op;

typedef struct seq {
	uint8_t *image[SEQ_SLOTS]; /* initial contents of each slot */
	vmem_regs regs0;           /* registers at the start (already valid) */
	unsigned nops;
	seq_op *ops;
	unsigned host_levels;      /* 4 or 5: which guests the sequence may use */
} seq;

/* Build a sequence of nops operations from seed. fuzz/fuzz_len (may be
 * NULL/0) are consumed first as the random stream, so a fuzzer's bytes steer
 * every choice. false on allocation failure. */
bool seq_generate(seq *s, uint64_t seed, const uint8_t *fuzz, size_t fuzz_len,
		  unsigned nops, unsigned host_levels);
void seq_free(seq *s);
/* One line describing op i (for failure reports). */
void seq_describe(const seq_op *op, char *buf, size_t len);

#endif
