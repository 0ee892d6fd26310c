/* libvmem guest page walk: linear address -> guest-physical address, or the exact fault. */
#ifndef LIBVMEM_WALK_H
#define LIBVMEM_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <libvmem/error.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Access flags: what the access is (combine with |). */
#define VMEM_ACC_READ     0u
#define VMEM_ACC_WRITE    (1u << 0) /* data write */
#define VMEM_ACC_FETCH    (1u << 1) /* instruction fetch (not with WRITE) */
#define VMEM_ACC_USER     (1u << 2) /* CPL = 3 */
#define VMEM_ACC_IMPLICIT (1u << 3) /* implicit supervisor access (GDT, IDT, TSS...) even at CPL 3 */
#define VMEM_ACC_AC       (1u << 4) /* EFLAGS.AC = 1 (SMAP override for explicit supervisor data accesses) */

/* Walk flags. */
#define VMEM_WALK_NO_AD   (1u << 0) /* no side effects: a debugger's look (no A/D writes) */

/* #PF error code bits (SDM vol. 3A, 4.7). */
#define VMEM_PFEC_P    (1u << 0)
#define VMEM_PFEC_W    (1u << 1)
#define VMEM_PFEC_U    (1u << 2)
#define VMEM_PFEC_RSVD (1u << 3)
#define VMEM_PFEC_I    (1u << 4)
#define VMEM_PFEC_PK   (1u << 5)
#define VMEM_PFEC_SS   (1u << 6)

/* Effective permissions of a translation (combined over every level). */
#define VMEM_PERM_W (1u << 0) /* R/W = 1 at every level */
#define VMEM_PERM_U (1u << 1) /* U/S = 1 at every level: a user-mode address */
#define VMEM_PERM_X (1u << 2) /* XD = 0 at every level (or EFER.NXE = 0) */

typedef enum vmem_walk_status {
	VMEM_WALK_OK = 0,      /* translated */
	VMEM_WALK_PF = 1,      /* page fault: error_code, CR2 = the address */
	VMEM_WALK_GP = 2,      /* non-canonical address: #GP(0) (or #SS(0) for stack accesses) */
	VMEM_WALK_BAD_GPA = 3  /* a paging-structure entry lies outside guest memory: gpa says where */
} vmem_walk_status;

/* Result info bits. */
#define VMEM_WINFO_SWAP (1u << 0) /* PF on a not-present 8-byte entry that is a swap entry (vmem_swap_decode(entry)); never in 32-bit paging */
#define VMEM_WINFO_AD_SET (1u << 1) /* this walk wrote accessed/dirty flags */

typedef struct vmem_walk_result {
	uint64_t gpa;        /* OK: the access's guest-physical address; BAD_GPA: the entry's address */
	uint64_t page_size;  /* OK: 4K, 2M, 4M or 1G */
	uint64_t entry;      /* OK: the leaf entry (after A/D); PF: the entry that faulted */
	uint32_t error_code; /* PF: the #PF error code */
	uint8_t status;      /* vmem_walk_status */
	uint8_t level;       /* OK: leaf level (1 = PTE, 2 = PDE, ...); PF: level that faulted (0: permission fault after a complete walk uses the leaf level) */
	uint8_t perms;       /* OK and protection PF: VMEM_PERM_* */
	uint8_t info;        /* VMEM_WINFO_* */
} vmem_walk_result;

/* Every paging-structure entry a walk read, top level first. If a walk
 * lost an A/D race and started over, the trace is the last attempt's: an
 * entry the walk itself just updated (one table used at two levels, as a
 * recursive mapping does) then shows its accessed flag. */
typedef struct vmem_walk_trace {
	unsigned n;
	struct {
		uint64_t gpa;   /* where the entry is (PAE PDPTEs: where MOV CR3 read it) */
		uint64_t value; /* the value read, before any A/D update */
		unsigned level; /* 5 = PML5E ... 1 = PTE */
	} e[5];
} vmem_walk_trace;

/* Translate one linear address (SDM vol. 3A ch. 4). Accessed and dirty flags
 * are set only if the translation succeeds, each with a compare-and-swap: an
 * entry changed under the walk restarts it. Returns VMEM_OK with *res filled
 * (faults are results, not errors), VMEM_E_INVAL for a NULL argument, bad
 * access flags or an address above 4 GiB in a 32-bit mode, VMEM_E_RETRY if
 * concurrent writers kept winning. Six arguments, all in registers on
 * x86-64 and AArch64: the fault path's call. */
vmem_err vmem_walk(const vmem_mmu *mmu, vmem_gmem *gm, uint64_t la,
		   unsigned access, unsigned flags, vmem_walk_result *res);

/* vmem_walk that also records every entry it read in *trace (for
 * debuggers, `vmem translate`, test vectors); trace may be NULL, which is
 * vmem_walk. The same answer and the same A/D updates as vmem_walk. */
vmem_err vmem_walk_traced(const vmem_mmu *mmu, vmem_gmem *gm, uint64_t la,
			  unsigned access, unsigned flags,
			  vmem_walk_result *res, vmem_walk_trace *trace);

/* Translate n addresses with the same access; walks are interleaved so that
 * their cache misses overlap. Each res[i] is what vmem_walk would give, and
 * the A/D flags written are those of the n walks in order. Like the
 * processor's paging-structure caches (SDM 4.10.3), one call may read the
 * entries above a PDE once for all its addresses in the same 1-GByte
 * region: if another thread changes such an entry while the call runs,
 * later addresses may be answered from the value read before the change
 * (an entry this call's own walks change, an A flag, is read again). */
vmem_err vmem_walk_batch(const vmem_mmu *mmu, vmem_gmem *gm, const uint64_t *la,
			 size_t n, unsigned access, unsigned flags,
			 vmem_walk_result *res);

#ifdef __cplusplus
}
#endif
#endif
