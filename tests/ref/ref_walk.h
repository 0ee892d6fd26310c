/* ref_walk: an independent, deliberately plain statement of the SDM vol. 3A ch. 4 page-walk rules (test oracle). */
#ifndef VMEM_TESTS_REF_WALK_H
#define VMEM_TESTS_REF_WALK_H

#include <stdbool.h>
#include <stdint.h>

/* Nothing here comes from libvmem: the reference has its own plain structs so
 * that a mistake in the library's headers or tables cannot leak into it. */

/* Register bits the reference reads (SDM vol. 3A 2.5, 4.1). */
#define REF_CR0_WP   (1ull << 16)
#define REF_CR0_PG   (1ull << 31)
#define REF_CR4_PSE  (1ull << 4)
#define REF_CR4_PAE  (1ull << 5)
#define REF_CR4_LA57 (1ull << 12)
#define REF_CR4_SMEP (1ull << 20)
#define REF_CR4_SMAP (1ull << 21)
#define REF_CR4_PKE  (1ull << 22)
#define REF_EFER_LMA (1ull << 10)
#define REF_EFER_NXE (1ull << 11)

/* #PF error-code bits (SDM 4.7). */
#define REF_PF_P    (1u << 0)
#define REF_PF_W    (1u << 1)
#define REF_PF_U    (1u << 2)
#define REF_PF_RSVD (1u << 3)
#define REF_PF_I    (1u << 4)
#define REF_PF_PK   (1u << 5)

/* Effective rights of a translation. */
#define REF_PERM_W (1u << 0) /* R/W = 1 at every level */
#define REF_PERM_U (1u << 1) /* U/S = 1 at every level */
#define REF_PERM_X (1u << 2) /* not execute-disabled */

typedef struct ref_cpu {
	uint64_t cr0, cr3, cr4, efer;
	uint32_t pkru;
	unsigned maxphyaddr; /* 32..52 */
	bool gbpages;        /* 1-GByte pages supported */
	uint64_t pdpte[4];   /* PAE paging: the four PDPTE registers */
} ref_cpu;

typedef struct ref_access {
	uint64_t la;
	bool write;    /* data write */
	bool fetch;    /* instruction fetch */
	bool cpl3;     /* CPL = 3 */
	bool implicit; /* implicit supervisor access (descriptor tables...) */
	bool ac;       /* EFLAGS.AC */
} ref_access;

/* Guest-physical memory, as the walk sees it. read/write return false when
 * nothing is at gpa; size is 4 or 8, little-endian, naturally aligned. */
typedef struct ref_mem {
	bool (*read)(void *ctx, uint64_t gpa, unsigned size, uint64_t *val);
	bool (*write)(void *ctx, uint64_t gpa, unsigned size, uint64_t val);
	void *ctx;
} ref_mem;

typedef enum ref_status {
	REF_OK = 0,      /* translated */
	REF_PF = 1,      /* page fault with error_code */
	REF_GP = 2,      /* non-canonical linear address */
	REF_BAD_GPA = 3, /* a paging-structure entry is outside memory: gpa says where */
	REF_INVAL = 4    /* not a valid question (address >= 4 GiB without IA-32e paging, write+fetch) */
} ref_status;

typedef struct ref_result {
	ref_status status;
	uint64_t gpa;        /* OK: translated address; BAD_GPA: the entry's address */
	uint64_t page_size;  /* OK */
	uint64_t entry;      /* OK: leaf after A/D; PF: the entry that faulted */
	uint32_t error_code; /* PF */
	unsigned level;      /* OK: leaf level; PF: level of the entry that faulted */
	unsigned perms;      /* OK and protection PF: REF_PERM_* */
	bool ad_written;     /* OK: this walk changed an accessed or dirty flag */
	unsigned n;          /* entries read, top level first */
	struct {
		uint64_t gpa, value;
		unsigned level;
	} trace[5];
} ref_result;

/* Walk la for acc. When set_ad, accessed/dirty flags are written (only if
 * the translation succeeds). Never fails: every answer is in *out. */
void ref_walk(const ref_cpu *cpu, const ref_mem *mem, const ref_access *acc,
	      bool set_ad, ref_result *out);

/* PAE paging, MOV to CR3 (4.4.1): load the four PDPTEs from CR3[31:5] into
 * pdpte[]. Returns REF_OK, REF_GP (a present PDPTE has a reserved bit set:
 * the MOV faults and nothing is loaded) or REF_BAD_GPA (not in memory). */
ref_status ref_pae_load_pdptes(const ref_cpu *cpu, const ref_mem *mem, uint64_t pdpte[4]);

#endif
