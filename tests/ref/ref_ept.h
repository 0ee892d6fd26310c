/* ref_ept: an independent, deliberately plain statement of the SDM vol. 3C EPT walk rules (29.3, 28.2.1) as a test oracle. */
#ifndef VMEM_TESTS_REF_EPT_H
#define VMEM_TESTS_REF_EPT_H

#include <stdbool.h>
#include <stdint.h>

/* Nothing here comes from libvmem: own structs, own bit names, own rules,
 * so a mistake in the library's headers or tables cannot leak into it. */

/* What the processor supports and what the VMCS enables besides the EPTP. */
typedef struct ref_ept_cpu {
	uint64_t eptp;        /* as in the VMCS; assumed to have passed VM entry */
	unsigned maxphyaddr;  /* 32..52 */
	bool exec_only;       /* IA32_VMX_EPT_VPID_CAP bit 0 */
	bool gbpages;         /* IA32_VMX_EPT_VPID_CAP bit 17 */
	bool advanced_info;   /* IA32_VMX_EPT_VPID_CAP bit 22 */
	bool mbec;            /* "mode-based execute control for EPT" = 1 */
} ref_ept_cpu;

/* What kind of access translates the guest-physical address. */
typedef enum ref_ept_kind {
	REF_EPT_READ = 0,       /* data read */
	REF_EPT_WRITE = 1,      /* data write */
	REF_EPT_FETCH = 2,      /* instruction fetch */
	REF_EPT_GUEST_PS = 3,   /* processor reads a guest paging-structure entry */
	REF_EPT_GUEST_AD = 4    /* processor writes a guest entry's accessed/dirty flag */
} ref_ept_kind;

typedef struct ref_ept_access {
	ref_ept_kind kind;
	bool has_linear;   /* the access has a guest-linear address */
	uint64_t linear;
	/* The guest's translation of the linear address (final accesses only):
	 * U/S = 1 everywhere, R/W = 1 everywhere, execute-disable. */
	bool guest_user, guest_rw, guest_nx;
} ref_ept_access;

/* Host-physical memory holding the EPT tables: 8-byte naturally aligned
 * accesses; false when nothing is there. */
typedef struct ref_ept_mem {
	bool (*read)(void *ctx, uint64_t hpa, uint64_t *val);
	bool (*write)(void *ctx, uint64_t hpa, uint64_t val);
	void *ctx;
} ref_ept_mem;

typedef enum ref_ept_status {
	REF_EPT_OK = 0,
	REF_EPT_VIOLATION = 1,
	REF_EPT_MISCONFIG = 2,
	REF_EPT_BAD_HPA = 3, /* an EPT entry is not in memory: hpa says where */
	REF_EPT_INVAL = 4    /* no walk: gpa has bits above what the page-walk length translates, or the EPTP's length is not 4 or 5 */
} ref_ept_status;

typedef struct ref_ept_result {
	ref_ept_status status;
	uint64_t gpa;        /* always the guest-physical address asked about */
	uint64_t hpa;        /* OK: host-physical address; BAD_HPA: the entry's */
	uint64_t page_size;  /* OK */
	uint64_t qual;       /* VIOLATION: exit qualification bits 0-11 */
	uint64_t linear;     /* VIOLATION with qualification bit 7 */
	uint64_t entry;      /* the last entry read (OK: the leaf after A/D) */
	unsigned level;      /* its level, 1 (PTE) .. 5 (PML5E) */
	unsigned memtype;    /* OK: leaf bits 5:3 */
	bool ipat;           /* OK: leaf bit 6 */
	bool readable, writable, executable, user_executable; /* AND over the entries read */
	bool ad_written;     /* this walk changed an accessed or dirty flag */
} ref_ept_result;

/* Walk gpa for acc. set_ad: write accessed/dirty flags if the EPTP enables
 * them (and only when the translation completes). Every answer is in *out. */
void ref_ept_walk(const ref_ept_cpu *cpu, const ref_ept_mem *mem, uint64_t gpa,
		  const ref_ept_access *acc, bool set_ad, ref_ept_result *out);

/* 29.3.3.1 on its own: would this present entry at level (1..5) be a
 * misconfiguration because of a reserved bit or a bad memory type? (Used by
 * tests to enumerate reserved positions; the walk applies the same rules.) */
bool ref_ept_entry_reserved(const ref_ept_cpu *cpu, uint64_t entry, unsigned level);

#endif
