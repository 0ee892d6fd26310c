/* oracle.h: the EPT oracle: scenarios run in the guest, each printed as a v1 test vector on port E9. */
#ifndef VTX_ORACLE_H
#define VTX_ORACLE_H

#include <stdbool.h>
#include <stdint.h>
#include "vtx.h"

void oracle_run(const struct vtx_caps *c);
/* The guest-mode scenarios (oracle_modes.c): 32-bit, PAE, CPL 3, SMEP/SMAP/PKU. */
void oracle_modes_run(const struct vtx_caps *c);
/* The segmentation scenarios (oracle_seg.c): loads and accesses in 32-bit protected and 64-bit mode. */
void oracle_seg_run(const struct vtx_caps *c);

/* The memory words a vector lists: host-physical address, value before the
 * access, value after (oracle_emit prints the changed ones as mem_after). */
#define ORACLE_MAX_WORDS 48
struct oracle_words {
	unsigned n;
	uint64_t addr[ORACLE_MAX_WORDS], before[ORACLE_MAX_WORDS], after[ORACLE_MAX_WORDS];
	uint8_t size[ORACLE_MAX_WORDS]; /* 4 (32-bit paging entries) or 8 */
};
void oracle_words_add(struct oracle_words *w, uint64_t addr);
void oracle_words_add_sized(struct oracle_words *w, uint64_t addr, unsigned size);
/* Read every word into before[] (after = false) or after[]. */
void oracle_words_read(struct oracle_words *w, bool after);

enum oracle_kind { ORACLE_EPT, ORACLE_NESTED };
enum oracle_access { ORACLE_READ, ORACLE_WRITE, ORACLE_FETCH };
enum oracle_result { ORACLE_OK, ORACLE_PAGE_FAULT, ORACLE_EPT_VIOLATION, ORACLE_EPT_MISCONFIG };

/* One vector, as vectors.md (format v1) defines it. */
struct oracle_vector {
	enum oracle_kind kind;
	const char *id;
	uint64_t cr0, cr3, cr4, efer; /* nested only */
	unsigned maxphyaddr;
	bool gbpages;
	uint64_t eptp;
	uint64_t addr;                /* guest-linear (nested) or guest-physical (ept) */
	enum oracle_access type;
	unsigned cpl;                 /* 0 or 3 */
	bool ac;                      /* EFLAGS.AC */
	uint32_t pkru;
	bool has_linear;              /* ept: the access completes the translation of `linear` */
	uint64_t linear;
	const struct oracle_words *mem;
	const char *note;             /* "KD2" etc.: a known Bochs difference the host side handles */
	enum oracle_result result;
	uint64_t hpa, page_size;      /* ok */
	uint32_t error_code;          /* page_fault */
	uint64_t qual, gpa, gla;      /* EPT exits; gla when qual bit 7 */
};
void oracle_emit(const struct oracle_vector *v);

#endif
