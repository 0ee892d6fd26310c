/* Baseline page walker: a plain loop over a flat host buffer, the yardstick libvmem is measured against. */
#ifndef BENCH_BASELINE_WALK_H
#define BENCH_BASELINE_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest-physical memory as one flat buffer: gpa g lives at base + g, g < size. */
typedef struct bl_mem {
	uint8_t *base;
	uint64_t size;
} bl_mem;

/* What the baseline models: 4- or 5-level paging with NXE, CR0.WP, 1G pages. */
typedef struct bl_cpu {
	uint64_t cr3;
	unsigned levels;     /* 4 or 5 */
	unsigned maxphyaddr; /* 32..52 */
	bool nxe, wp, gbpages;
} bl_cpu;

/* Access bits: the same values as VMEM_ACC_READ/WRITE/FETCH/USER. */
#define BL_ACC_WRITE 1u
#define BL_ACC_FETCH 2u
#define BL_ACC_USER  4u
/* Walk flag: the same value as VMEM_WALK_NO_AD. */
#define BL_NO_AD 1u

enum { BL_OK = 0, BL_PF = 1, BL_GP = 2, BL_BAD_GPA = 3 };

typedef struct bl_result {
	uint64_t gpa;        /* OK: translated address; BAD_GPA: the entry's address */
	uint64_t page_size;  /* OK */
	uint64_t entry;      /* OK: leaf entry after A/D */
	uint32_t error_code; /* PF */
	unsigned status;     /* BL_* */
	unsigned level;      /* OK: leaf level */
	unsigned perms;      /* OK: bit 0 W, bit 1 U, bit 2 X (as VMEM_PERM_*) */
} bl_result;

/* Translate la. Returns the status (also in *res). */
unsigned bl_walk(const bl_mem *mem, const bl_cpu *cpu, uint64_t la,
		 unsigned access, unsigned flags, bl_result *res);

#endif
