/* ref_diff: run one access through libvmem's vmem_walk and through ref_walk on identical memory, and compare. */
#ifndef VMEM_TESTS_REF_DIFF_H
#define VMEM_TESTS_REF_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ref_walk.h"

#define DIFF_MAX_PAGES 64

/* A guest image: up to DIFF_MAX_PAGES 4 KiB pages, each at its own
 * guest-physical address, held twice (one copy for the library, one for the
 * reference). Every other address reads as zero (miss_zero) or is unbacked. */
typedef struct diff_env {
	unsigned npages;
	uint64_t gpa[DIFF_MAX_PAGES];
	uint8_t *lib_mem;  /* npages * 4096, page-aligned */
	uint8_t *ref_mem;
	bool miss_zero;
	bool coalesce;        /* pages adjacent in gpa and in order form one RAM slot (else one slot each) */
	struct vmem_gmem *gm; /* the library's view, rebuilt when the page set changes */
	unsigned gm_pages;    /* npages when gm was built */
	bool gm_miss_zero, gm_coalesce;
} diff_env;

/* Allocate room for DIFF_MAX_PAGES pages; npages starts at 0. */
bool diff_env_init(diff_env *env);
void diff_env_fini(diff_env *env);
/* Forget every page (contents zeroed). */
void diff_env_reset(diff_env *env);
/* Add a zeroed page at gpa (4 KiB aligned, not yet present). Returns its index or -1. */
int diff_env_add_page(diff_env *env, uint64_t gpa);
/* Host pointer (reference copy) of gpa, or NULL if no page holds it. */
uint8_t *diff_env_ptr(diff_env *env, uint64_t gpa);
/* Store a 4- or 8-byte word into both copies; false if no page holds it. */
bool diff_env_store(diff_env *env, uint64_t gpa, unsigned size, uint64_t val);

/* What one comparison covers. */
#define DIFF_NO_AD     (1u << 0) /* walk with VMEM_WALK_NO_AD (and ref with set_ad = false) */
#define DIFF_NO_TRACE  (1u << 1) /* walk without a trace (the library's fast path needs that) */
#define DIFF_BATCH     (1u << 2) /* library side through vmem_walk_batch (three lanes of the address; no trace) */
#define DIFF_LOAD_PDPTES (1u << 3) /* PAE: PDPTEs loaded from memory at CR3 (vmem_mmu_load_pdptes /
				      * ref_pae_load_pdptes) instead of cpu->pdpte; a #GP on both sides agrees */
#define DIFF_SET_REGS  (1u << 4) /* build the MMU from other registers, then vmem_mmu_set_regs */

/* Walk acc on both sides, then restore nothing: memory keeps its A/D
 * updates on both copies. Returns true when everything compared agrees;
 * otherwise writes a full description of the case and both answers into
 * why (if non-NULL). *ref_out (if non-NULL) gets the reference answer. */
bool diff_run(diff_env *env, const ref_cpu *cpu, const ref_access *acc, unsigned flags,
	      char *why, size_t why_len, ref_result *ref_out);

#endif
