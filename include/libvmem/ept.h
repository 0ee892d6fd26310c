/* libvmem EPT (SDM vol. 3C ch. 29): guest-physical -> host-physical, or the exact EPT violation / misconfiguration. */
#ifndef LIBVMEM_EPT_H
#define LIBVMEM_EPT_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/dirty.h>
#include <libvmem/ept_map.h>
#include <libvmem/error.h>
#include <libvmem/gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EPT pointer fields (SDM vol. 3C, 25.6.11). */
#define VMEM_EPTP_MT_MASK   0x7ull        /* bits 2:0: memory type of EPT structure accesses (0 UC, 6 WB) */
#define VMEM_EPTP_PWL_SHIFT 3             /* bits 5:3: page-walk length - 1 (3: 4-level, 4: 5-level) */
#define VMEM_EPTP_PWL_MASK  (0x7ull << 3)
#define VMEM_EPTP_AD        (1ull << 6)   /* bit 6: accessed and dirty flags for EPT */

/* Entry bits (VMEM_EPT_R, _W, _X, _MT_*, _IPAT, _PS, _A, _D, _XU) are in ept_map.h. */

/* What the processor is and what the VMCS enables besides the EPTP. */
typedef struct vmem_ept_caps {
	unsigned maxphyaddr; /* CPUID.80000008H:EAX[7:0]; 32..52: bits 51:M of entries are reserved */
	bool exec_only;      /* IA32_VMX_EPT_VPID_CAP[0]: execute-only translations allowed */
	bool pml5;           /* [7]: page-walk length 5 allowed */
	bool gbpages;        /* [17]: PS = 1 in an EPT PDPTE is legal */
	bool ad;             /* [21]: EPTP bit 6 allowed */
	bool advanced_info;  /* [22]: exit-qualification bits 9-11 are reported */
	bool mbec;           /* the "mode-based execute control for EPT" VM-execution control is 1 */
} vmem_ept_caps;

/* Defaults: MAXPHYADDR 48, execute-only, 5-level, 1-GByte pages and A/D
 * supported; MBEC off; no advanced exit information. */
void vmem_ept_caps_init(vmem_ept_caps *c);

/* An EPT context: one EPTP with its precomputed reserved-bit masks and
 * permission tables, ready to walk. Walks may share one context from many
 * threads at once, over the same or different host memory maps: the only
 * state a walk writes in it is a hint (which host region held the tables
 * last), a relaxed guess that every walk reads once and checks before use. */
typedef struct vmem_ept_mmu vmem_ept_mmu;

/* Create from an EPTP. VMEM_E_INVAL for an EPTP VM entry would refuse
 * (memory type not UC or WB, page-walk length not 4 (or 5 with caps->pml5),
 * A/D enable without caps->ad, bits 11:7 or 63:MAXPHYADDR set) or caps out
 * of range. caps NULL: vmem_ept_caps_init's defaults. */
vmem_err vmem_ept_mmu_new(const vmem_allocator *alloc, uint64_t eptp, const vmem_ept_caps *caps,
		      vmem_ept_mmu **out);
void vmem_ept_mmu_free(vmem_ept_mmu *ept);
/* Load another EPTP (same caps). On error the context keeps the old one. */
vmem_err vmem_ept_mmu_set_eptp(vmem_ept_mmu *ept, uint64_t eptp);
uint64_t vmem_ept_mmu_eptp(const vmem_ept_mmu *ept);
/* 4 or 5. */
unsigned vmem_ept_mmu_levels(const vmem_ept_mmu *ept);
/* The "enable PML" VM-execution control with its log (SDM vol. 3C 29.3.6):
 * every EPT dirty flag a walk sets from 0 to 1 first appends the access's
 * page-aligned GPA to pml (see dirty.h); a full log stops any access that
 * would set an accessed or dirty flag with VMEM_EPT_PML_FULL. NULL turns PML
 * off. Needs EPTP bit 6 to matter. */
void vmem_ept_mmu_set_pml(vmem_ept_mmu *ept, vmem_pml *pml);

/* What kind of access. */
typedef enum vmem_ept_atype {
	VMEM_EPT_READ = 0,
	VMEM_EPT_WRITE = 1,
	VMEM_EPT_FETCH = 2,
	/* A processor access to a guest paging-structure entry: a read, or a
	 * write when the EPTP enables A/D (SDM 29.3.3.2); its violation reports
	 * bits 0 and 1 then (SDM 28.2.1). Exit-qualification bit 8 is 0. */
	VMEM_EPT_PAGING = 3,
	/* A processor write to a guest paging-structure entry to set its
	 * accessed or dirty flag: a data write with bit 8 = 0. */
	VMEM_EPT_PAGING_AD = 4
} vmem_ept_atype;

/* Access flags. */
#define VMEM_EPT_LINEAR (1u << 0) /* the access has a guest-linear address (qualification bit 7) */

/* Guest permissions of the linear address (VMEM_PERM_* of walk.h: W 1, U 2, X 4). */
#define VMEM_EPT_GUEST_W 1u
#define VMEM_EPT_GUEST_U 2u /* a user-mode linear address: with MBEC a fetch needs XU, else XS */
#define VMEM_EPT_GUEST_X 4u

typedef struct vmem_ept_access {
	uint8_t type;        /* vmem_ept_atype */
	uint8_t flags;       /* VMEM_EPT_LINEAR */
	uint8_t guest_perms; /* VMEM_EPT_GUEST_*: for MBEC and advanced information */
	uint64_t linear;     /* with VMEM_EPT_LINEAR */
} vmem_ept_access;

/* Walk flags. */
#define VMEM_EPT_NO_AD (1u << 0) /* no side effects: no accessed / dirty writes */

typedef enum vmem_ept_status {
	VMEM_EPT_OK = 0,
	VMEM_EPT_VIOLATION = 1, /* exit_qual, gpa (and linear when qualification bit 7 is set) */
	VMEM_EPT_MISCONFIG = 2, /* gpa */
	VMEM_EPT_BAD_HPA = 3,   /* an EPT entry lies outside host memory: hpa says where */
	VMEM_EPT_PML_FULL = 4   /* page-modification log full (exit reason 62): the access and its
				 * accessed / dirty flags did not happen; gpa says which access */
} vmem_ept_status;

/* Effective rights, as an index: entry bits 2:0 (R, W, X) as bits 0-2,
 * bit 10 (XU) as bit 3, the form exit-qualification bits 3-6 take. */
#define VMEM_EPT_RIGHT_R  1u
#define VMEM_EPT_RIGHT_W  2u
#define VMEM_EPT_RIGHT_X  4u  /* XS with MBEC */
#define VMEM_EPT_RIGHT_XU 8u  /* MBEC only */

/* Exit qualification for EPT violations (SDM vol. 3C, 28.2.1, Table 28-7). */
#define VMEM_EPTQ_READ     (1ull << 0)
#define VMEM_EPTQ_WRITE    (1ull << 1)
#define VMEM_EPTQ_FETCH    (1ull << 2)
#define VMEM_EPTQ_R        (1ull << 3)  /* AND of bit 0 of the entries used */
#define VMEM_EPTQ_W        (1ull << 4)  /* AND of bit 1 */
#define VMEM_EPTQ_X        (1ull << 5)  /* AND of bit 2 */
#define VMEM_EPTQ_XU       (1ull << 6)  /* AND of bit 10 (MBEC; else 0) */
#define VMEM_EPTQ_GLA_VALID (1ull << 7)
#define VMEM_EPTQ_FINAL    (1ull << 8)  /* with bit 7: the access is to the translation of the linear address */
#define VMEM_EPTQ_USER     (1ull << 9)  /* advanced information: user-mode linear address */
#define VMEM_EPTQ_RW       (1ull << 10) /* advanced information: read/write page */
#define VMEM_EPTQ_NX       (1ull << 11) /* advanced information: execute-disable page */

#define VMEM_EPT_INFO_AD_SET (1u << 0) /* this walk wrote accessed/dirty flags */

typedef struct vmem_ept_result {
	uint64_t gpa;        /* the guest-physical address translated (reported on violation/misconfig) */
	uint64_t hpa;        /* OK: host-physical address; BAD_HPA: the entry's address */
	uint64_t page_size;  /* OK: 4K, 2M or 1G */
	uint64_t exit_qual;  /* VIOLATION */
	uint64_t linear;     /* VIOLATION with VMEM_EPTQ_GLA_VALID */
	uint64_t entry;      /* OK: the leaf (after A/D); VIOLATION/MISCONFIG: the entry that stopped the walk (the leaf for a permission violation) */
	uint8_t status;      /* vmem_ept_status */
	uint8_t level;       /* level of `entry` (1 = PTE ... 5 = PML5E) */
	uint8_t perms;       /* OK and VIOLATION: VMEM_EPT_PERM_* ANDed over the entries used */
	uint8_t memtype;     /* OK: EPT memory type of the leaf (bits 5:3) */
	uint8_t ipat;        /* OK: leaf bit 6 */
	uint8_t info;        /* VMEM_EPT_INFO_* */
} vmem_ept_result;

/* Every EPT entry a walk read, top level first. */
typedef struct vmem_ept_trace {
	unsigned n;
	struct {
		uint64_t hpa;   /* where the entry is */
		uint64_t value; /* as read, before any A/D update */
		unsigned level;
	} e[5];
} vmem_ept_trace;

/* Translate one guest-physical address through EPT (SDM vol. 3C 29.3):
 * host is the memory the EPT tables live in. Accessed and dirty flags are
 * set (EPTP bit 6 only) when the translation completes, each by
 * compare-and-swap; a racing writer restarts the walk. Returns VMEM_OK with
 * *res filled (violations and misconfigurations are results),
 * VMEM_E_INVAL for a bad access or a gpa above what the page-walk length
 * translates (bits 63:48, or 63:57 with 5 levels), VMEM_E_RETRY. trace may
 * be NULL. */
vmem_err vmem_ept_walk(const vmem_ept_mmu *ept, vmem_gmem *host, uint64_t gpa,
		       const vmem_ept_access *acc, unsigned flags,
		       vmem_ept_result *res, vmem_ept_trace *trace);

#ifdef __cplusplus
}
#endif
#endif
