/* libvmem EPT tables a VMM keeps: map, unmap and protect guest-physical ranges, with explicit flush results. */
#ifndef LIBVMEM_EPT_MAP_H
#define LIBVMEM_EPT_MAP_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* EPT paging-structure entry bits (SDM vol. 3C 29.3.2, Tables 29-1..29-6). */
#define VMEM_EPT_R       (1ull << 0)
#define VMEM_EPT_W       (1ull << 1)
#define VMEM_EPT_X       (1ull << 2)  /* supervisor-mode execute with MBEC */
#define VMEM_EPT_MT_SHIFT 3           /* leaf memory type, bits 5:3 */
#define VMEM_EPT_MT_MASK (7ull << 3)
#define VMEM_EPT_IPAT    (1ull << 6)  /* ignore guest PAT (leaf) */
#define VMEM_EPT_PS      (1ull << 7)  /* 1G / 2M leaf */
#define VMEM_EPT_A       (1ull << 8)  /* accessed (EPTP bit 6) */
#define VMEM_EPT_D       (1ull << 9)  /* dirty (leaf, EPTP bit 6) */
#define VMEM_EPT_XU      (1ull << 10) /* user-mode execute with MBEC */
#define VMEM_EPT_SVE     (1ull << 63) /* suppress #VE */

/* Memory types (SDM vol. 3A 12.3, Table 12-1) valid in an EPT leaf / EPTP. */
#define VMEM_MT_UC 0u
#define VMEM_MT_WC 1u
#define VMEM_MT_WT 4u
#define VMEM_MT_WP 5u
#define VMEM_MT_WB 6u

/* Access rights a mapping grants (EPT R/W/X/XU bits). */
#define VMEM_EPT_PERM_MASK (VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X | VMEM_EPT_XU)

typedef struct vmem_ept vmem_ept;

typedef struct vmem_ept_config {
	unsigned levels;      /* 4 or 5 (EPTP page-walk length + 1) */
	bool ad;              /* EPTP bit 6: accessed and dirty flags */
	bool gbpages;         /* 1-GByte leaves allowed (IA32_VMX_EPT_VPID_CAP bit 17) */
	bool exec_only;       /* execute-only entries allowed (IA32_VMX_EPT_VPID_CAP bit 0) */
	bool mbec;            /* mode-based execute control: XU is meaningful */
	unsigned eptp_mt;     /* EPTP memory type: VMEM_MT_UC or VMEM_MT_WB */
	unsigned maxphyaddr;  /* the host's MAXPHYADDR, 32..52 (0: 52): entries hold no address
				 at or above 2^maxphyaddr (their bits 51:M are reserved, SDM 29.3.3.1) */
} vmem_ept_config;

/* What a mutation requires of the caller before the change is guaranteed
 * to be seen by every logical processor using this EPTP. */
typedef struct vmem_ept_flush {
	unsigned flags;       /* VMEM_EPT_FLUSH_* */
	uint64_t start, end;  /* guest-physical range whose translations changed [start, end) */
} vmem_ept_flush;
/* A present translation changed or lost rights: INVEPT (single-context) is
 * required, or stale translations may still be used (SDM vol. 3C 29.4.3.1). */
#define VMEM_EPT_FLUSH_INVEPT (1u << 0)
/* Paging-structure pages were released: they must not be reused for
 * anything until that INVEPT is done. */
#define VMEM_EPT_FLUSH_TABLES_FREED (1u << 1)

/* Create empty EPT tables (one zeroed root page). VMEM_E_INVAL for an
 * unsupported configuration. The allocator's page_phys gives entries' addresses:
 * a table page it puts at or above 2^maxphyaddr, or off 4 KiB, is refused
 * (VMEM_E_RANGE, here and from every call that makes tables: all or
 * nothing, as VMEM_E_NOMEM). */
vmem_err vmem_ept_new(const vmem_allocator *alloc, const vmem_ept_config *cfg, vmem_ept **out);
/* Free every table page. The caller has stopped every vCPU using it. */
void vmem_ept_free(vmem_ept *ept);

/* The EPTP value to load into the VMCS (SDM vol. 3C 25.6.11). */
uint64_t vmem_ept_eptp(const vmem_ept *ept);

/* Host-physical memory the VMM gave this guest. map() refuses any HPA outside
 * the union of grants: a bug in the caller can never map other host memory.
 * 4 KiB aligned; adjacent and overlapping grants merge. VMEM_E_RANGE for
 * memory reaching 2^MAXPHYADDR (the config's; an entry with a higher
 * address is an EPT misconfiguration, and bits above 51 are not address). */
vmem_err vmem_ept_grant(vmem_ept *ept, uint64_t hpa, uint64_t size);

/* Map [gpa, gpa+size) -> [hpa, hpa+size) with rights `perm` (VMEM_EPT_R|W|X|XU),
 * memory type `mt` (VMEM_MT_*) and ignore-PAT. Replaces what was there.
 * Uses 1G and 2M leaves wherever both addresses are aligned and the range
 * covers them (4K only while a vmem_dirty log is on); splits existing large
 * leaves that are only partly covered; collapses tables that become uniform
 * into a large leaf (not while logging). All or nothing:
 * on VMEM_E_NOMEM the tables are exactly as before and nothing leaked.
 * Errors: VMEM_E_INVAL (alignment, size 0, bad perm: W without R, execute-only
 * without the capability; bad memory type), VMEM_E_RANGE (GPA beyond the EPT's
 * reach, HPA not granted, or a table page page_phys placed out of reach).
 * *flush (may be NULL) says what must be invalidated. */
vmem_err vmem_ept_map(vmem_ept *ept, uint64_t gpa, uint64_t hpa, uint64_t size,
		      uint64_t perm, unsigned mt, bool ipat, vmem_ept_flush *flush);
/* Remove every translation in [gpa, gpa+size). All or nothing, as map. */
vmem_err vmem_ept_unmap(vmem_ept *ept, uint64_t gpa, uint64_t size, vmem_ept_flush *flush);
/* Change the rights of every present translation in [gpa, gpa+size) to perm
 * (holes stay holes). All or nothing, as map. */
vmem_err vmem_ept_protect(vmem_ept *ept, uint64_t gpa, uint64_t size, uint64_t perm,
			  vmem_ept_flush *flush);

/* The caller has executed the INVEPT that a VMEM_EPT_FLUSH_TABLES_FREED result
 * asked for: the released table pages go back to the allocator now. */
void vmem_ept_flush_done(vmem_ept *ept);

/* Split every large leaf in [gpa, gpa+size) into 4K leaves (the same
 * translations, each with the large leaf's A and D flags, also ones a
 * processor sets while it is split). All or nothing, as map. */
vmem_err vmem_ept_split(vmem_ept *ept, uint64_t gpa, uint64_t size, vmem_ept_flush *flush);

/* Software look-up of one GPA (no A/D, no permission check): the leaf entry
 * and its level (1 = 4K, 2 = 2M, 3 = 1G). VMEM_E_NOENT if not mapped. */
vmem_err vmem_ept_lookup(const vmem_ept *ept, uint64_t gpa, uint64_t *leaf, unsigned *level);

/* Statistics: table pages in use, leaves by size. */
typedef struct vmem_ept_stats {
	uint64_t table_pages;
	uint64_t leaves_4k, leaves_2m, leaves_1g;
} vmem_ept_stats;
void vmem_ept_get_stats(const vmem_ept *ept, vmem_ept_stats *st);

/* Visit every table page (host pointer and its physical address): lets a
 * hosted test register the tables as host-physical memory for an EPT walk. */
int vmem_ept_foreach_table(const vmem_ept *ept,
			   int (*fn)(void *arg, void *page, uint64_t phys), void *arg);

#ifdef __cplusplus
}
#endif
#endif
