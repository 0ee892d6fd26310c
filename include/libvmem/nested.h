/* libvmem nested (two-dimensional) walk: linear -> guest-physical -> host-physical, every guest access through EPT. */
#ifndef LIBVMEM_NESTED_H
#define LIBVMEM_NESTED_H

#include <stdint.h>
#include <libvmem/ept.h>
#include <libvmem/error.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vmem_nested_status {
	VMEM_NESTED_OK = 0,            /* hpa, gpa, page_size */
	VMEM_NESTED_PF = 1,            /* guest page fault: error_code (CR2 = the address) */
	VMEM_NESTED_GP = 2,            /* non-canonical address: #GP(0) / #SS(0) */
	VMEM_NESTED_EPT_VIOLATION = 3, /* exit_qual, gpa, linear (when qualification bit 7 is set) */
	VMEM_NESTED_EPT_MISCONFIG = 4, /* gpa */
	VMEM_NESTED_BAD_HPA = 5,       /* an entry (EPT or guest) lies outside host memory: hpa says where */
	VMEM_NESTED_PML_FULL = 6       /* page-modification log full before an EPT A/D flag (gpa: the access) */
} vmem_nested_status;

/* vmem_nested_result.guest.status when EPT stopped the guest walk (beside
 * the vmem_walk_status values). */
#define VMEM_NESTED_GUEST_STOPPED 0x80

typedef struct vmem_nested_result {
	uint64_t hpa;        /* OK: host-physical address of the access; BAD_HPA: the entry's */
	uint64_t gpa;        /* OK: guest-physical address of the access; EPT exits: the one reported */
	uint64_t page_size;  /* OK: the smaller of the guest's and EPT's page sizes */
	uint64_t exit_qual;  /* EPT_VIOLATION: SDM vol. 3C 28.2.1 */
	uint64_t linear;     /* EPT_VIOLATION with VMEM_EPTQ_GLA_VALID */
	uint32_t error_code; /* PF */
	uint8_t status;      /* vmem_nested_status */
	uint8_t final;       /* EPT exits: 1 if on the final access, 0 if on a guest paging-structure access */
	/* Details: the guest walk as vmem_walk reports it (its status is OK when
	 * it completed, its gpa the final access's; VMEM_NESTED_GUEST_STOPPED
	 * when an EPT exit on a guest paging-structure access stopped it), and
	 * the EPT translation that decided (of the final access, or the one that
	 * exited). */
	vmem_walk_result guest;
	vmem_ept_result ept;
} vmem_nested_result;

/* What a nested walk read: the guest entries (guest-physical addresses and
 * values), and every EPT translation in order (one per guest entry read,
 * one for a refused guest A/D write, then the final access). */
typedef struct vmem_nested_trace {
	vmem_walk_trace guest;
	unsigned n;
	struct {
		uint64_t gpa;
		vmem_ept_trace t;
	} ept[8];
} vmem_nested_trace;

/* Translate one linear address of a guest running under EPT (SDM vol. 3C
 * 29.3.3): the guest walk of vmem_walk (registers and PAE PDPTE registers
 * from mmu), whose every paging-structure access is an EPT translation
 * (qualification bit 7 = 1, bit 8 = 0; a read, or a write when the EPTP
 * enables A/D), whose accessed / dirty flags are written when it completes
 * (a data write for EPT), then the final access through EPT (bit 8 = 1).
 * host is the memory that holds the EPT tables and the guest's memory.
 * access: VMEM_ACC_* of walk.h; flags: VMEM_WALK_NO_AD (no A/D writes, guest
 * or EPT). Returns VMEM_OK with *res filled (faults and exits are results),
 * VMEM_E_INVAL for bad arguments or a guest-physical address beyond what the
 * EPT page-walk length translates, VMEM_E_RETRY. trace may be NULL. */
vmem_err vmem_nested_walk(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			  uint64_t la, unsigned access, unsigned flags,
			  vmem_nested_result *res, vmem_nested_trace *trace);

/* Opt-in: an EPT paging-structure cache that survives walks, one per vCPU
 * (a single thread at a time). vmem_nested_walk reads every EPT entry on
 * every walk; vmem_nested_walk_pwc may instead use EPT PDEs and PDPTEs that
 * reference tables, as an earlier walk of the same EPTP (and EPT caps) read
 * them (SDM vol. 3C 29.4.2), until vmem_ept_pwc_invept removes them: like
 * hardware, a change to those EPT entries takes effect only after the
 * INVEPT the SDM requires for it (29.4.3.1). Leaf entries are read on every
 * walk. Walks the cache cannot serve (faults, exits, A/D flags to set, ...)
 * read memory. Each use still checks the cached table is in host memory. */
typedef struct vmem_ept_pwc vmem_ept_pwc;
vmem_err vmem_ept_pwc_new(const vmem_allocator *alloc, vmem_ept_pwc **out);
void vmem_ept_pwc_free(vmem_ept_pwc *pwc);
/* type: VMEM_INVEPT_SINGLE (what was cached under an EPTP with eptp's
 * EP4TA) or VMEM_INVEPT_ALL (tlb.h). */
vmem_err vmem_ept_pwc_invept(vmem_ept_pwc *pwc, unsigned type, uint64_t eptp);
/* vmem_nested_walk (no trace) through the cache pwc. */
vmem_err vmem_nested_walk_pwc(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			      vmem_ept_pwc *pwc, uint64_t la, unsigned access, unsigned flags,
			      vmem_nested_result *res);

#ifdef __cplusplus
}
#endif
#endif
