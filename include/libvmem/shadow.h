/* libvmem shadow paging: the VMM's own page tables (guest-linear -> host-physical) for a guest run without EPT. */
#ifndef LIBVMEM_SHADOW_H
#define LIBVMEM_SHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/ept_map.h>
#include <libvmem/error.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A shadow MMU for one vCPU. It keeps host-format 4- or 5-level tables that
 * map guest-linear addresses straight to host-physical frames, built lazily
 * on shadow page faults from the guest's own tables (any guest mode: paging
 * off, 32-bit, PAE, 4-level, 5-level on a 5-level host).
 *
 * Invariants (checked by vmem_shadow_audit):
 * - a shadow leaf never grants more than the guest's tables (as a fresh walk
 *   reads them now) and the host mapping both allow, and names only a frame
 *   of guest RAM (through the gmem slots, or the EPT when one is given);
 * - every guest frame read as a paging structure by any cached root is
 *   mapped read-only in every shadow, so each guest write to it comes to
 *   the engine (EMULATE) and the shadows stay coherent with guest memory:
 *   a shadow never holds a translation a walk of guest memory would not
 *   give, which is less staleness than the SDM lets a TLB keep (4.10.4);
 * - at most max_pages table pages are in use; older roots and tables are
 *   reclaimed (least recently used first) to make room.
 *
 * Not thread-safe: one vCPU, calls serialized by the caller. */
typedef struct vmem_shadow vmem_shadow;

typedef struct vmem_shadow_config {
	const vmem_allocator *alloc; /* NULL: default; page_phys gives table addresses */
	vmem_gmem *gmem;             /* guest-physical memory: the guest's tables and RAM */
	/* Optional: guest-physical -> host-physical through these EPT tables
	 * (vmem_ept_lookup; host rights from its R/W/X bits) instead of the
	 * gmem slots. Guest tables are still read through gmem. */
	const vmem_ept *ept;
	/* Optional: host-physical address of a byte of a RAM slot's buffer.
	 * NULL: the host address is the physical address (the hosted model). */
	uint64_t (*host_phys)(void *ctx, const void *hva);
	void *host_phys_ctx;
	unsigned host_levels;        /* 4 or 5: the host's paging (5 needs CR4.LA57) */
	unsigned max_pages;          /* budget of shadow table pages, >= VMEM_SHADOW_MIN_PAGES */
	unsigned max_roots;          /* cached roots, 1..VMEM_SHADOW_MAX_ROOTS */
} vmem_shadow_config;

#define VMEM_SHADOW_MIN_PAGES 8
#define VMEM_SHADOW_MAX_ROOTS 64

/* Create an engine with the guest's registers at reset (paging off).
 * VMEM_E_INVAL: missing gmem, bad levels, budget or root count. */
vmem_err vmem_shadow_new(const vmem_shadow_config *cfg, vmem_shadow **out);
/* Free every table and the engine. */
void vmem_shadow_free(vmem_shadow *sh);

/* The guest wrote CR0, CR3, CR4 or EFER (or VM entry loaded them): select
 * the root for these registers, from the cache when this CR3 and role were
 * seen recently, else a new empty one. In PAE mode the PDPTEs are loaded
 * from guest memory when hardware loads them (SDM 4.4.1): a call that
 * changes CR3 or nothing (MOV CR3), enters PAE paging or changes CR0.CD/NW/PG
 * or CR4.PAE/PGE/PSE/SMEP; any other call (CR0.WP, CR4.SMAP, EFER...) keeps
 * the PDPTE registers. Errors, with nothing
 * changed: VMEM_E_INVAL (registers hardware refuses; a present PDPTE with a
 * reserved bit: the MOV would #GP), VMEM_E_RANGE (PDPT not in guest memory),
 * VMEM_E_UNSUPPORTED (5-level guest on a 4-level host, CR4.PKS),
 * VMEM_E_NOMEM. */
vmem_err vmem_shadow_set_regs(vmem_shadow *sh, const vmem_regs *r);
/* WRPKRU / XRSTOR: protection-key rights change, no TLB effect. */
void vmem_shadow_set_pkru(vmem_shadow *sh, uint32_t pkru);
/* The guest registers in force. */
const vmem_regs *vmem_shadow_regs(const vmem_shadow *sh);
/* The registers the processor runs the guest with while on the shadow:
 * CR3 = the current root's physical address, 4- or 5-level paging,
 * CR0.WP = 1 (write protection must hold for supervisor writes too),
 * EFER.NXE = 1, the guest's CR4.SMEP/SMAP (when guest paging is on) and
 * CR4.PKE with the guest's PKRU (guest in IA-32e paging only). */
void vmem_shadow_host_regs(const vmem_shadow *sh, vmem_regs *out);

/* What a shadow page fault comes to. */
typedef enum vmem_shadow_outcome {
	VMEM_SHADOW_FIXED = 0,      /* a shadow entry now allows it: resume the guest */
	VMEM_SHADOW_INJECT_PF = 1,  /* deliver #PF: error_code, CR2 = cr2 (what the SDM's walk gives) */
	VMEM_SHADOW_INJECT_GP = 2,  /* non-canonical address: #GP(0) (#SS for stack accesses) */
	VMEM_SHADOW_EMULATE = 3,    /* emulate the access at gpa; reason says why (a write: finish
				     * it with vmem_shadow_emulate_write) */
	VMEM_SHADOW_HOST_FAULT = 4, /* the guest allows it but the host mapping does not (write to a
				     * read-only slot, fetch from a no-exec slot, EPT rights): the VMM's policy */
	VMEM_SHADOW_BAD_TABLE = 5   /* a guest paging structure lies outside guest memory (gpa: the entry) */
} vmem_shadow_outcome;

/* EMULATE reasons. */
#define VMEM_SHADOW_EMU_MMIO     1 /* gpa is not guest RAM (MMIO or unbacked) */
#define VMEM_SHADOW_EMU_PT_WRITE 2 /* a write to a guest frame that holds a paging structure */
#define VMEM_SHADOW_EMU_WP0      3 /* supervisor write to a read-only user page with CR0.WP = 0 */
#define VMEM_SHADOW_EMU_TABLE_MMIO 4 /* a guest paging structure is in MMIO: no shadow can follow it */

typedef struct vmem_shadow_fault_result {
	uint8_t outcome;     /* vmem_shadow_outcome */
	uint8_t reason;      /* EMULATE: VMEM_SHADOW_EMU_* */
	uint32_t error_code; /* INJECT_PF */
	uint64_t cr2;        /* INJECT_PF: the faulting linear address */
	uint64_t gpa;        /* EMULATE / HOST_FAULT: the access's guest-physical address;
			      * BAD_TABLE: the paging-structure entry's */
} vmem_shadow_fault_result;

/* Handle a shadow page fault at la for access (VMEM_ACC_* of walk.h): walk
 * the guest tables (setting guest A/D as hardware would), then fill, refuse
 * or hand back. Returns VMEM_OK with *res filled, VMEM_E_INVAL (bad access
 * flags; la >= 4 GiB outside IA-32e paging), VMEM_E_NOMEM (nothing changed),
 * VMEM_E_RETRY (the guest walk lost its A/D races). */
vmem_err vmem_shadow_fault(vmem_shadow *sh, uint64_t la, unsigned access,
			   vmem_shadow_fault_result *res);

/* Finish an emulated write: store len bytes (1..8, not crossing a 4 KiB
 * page) at gpa in guest memory and bring every shadow entry that depended
 * on the bytes written up to date. Errors from vmem_gmem_write (nothing
 * written), VMEM_E_INVAL for a bad length. */
vmem_err vmem_shadow_emulate_write(vmem_shadow *sh, uint64_t gpa, const void *data, size_t len);
/* Guest memory at [gpa, gpa+len) changed by other means (DMA, the VMM):
 * drop every shadow entry that depended on it. */
void vmem_shadow_notify_write(vmem_shadow *sh, uint64_t gpa, uint64_t len);
/* The host mapping of [gpa, gpa+len) changed (slot removed, made read-only,
 * EPT changed): drop every shadow leaf that maps it. */
void vmem_shadow_invalidate_gpa(vmem_shadow *sh, uint64_t gpa, uint64_t len);

/* INVLPG la (SDM 4.10.4.1): drop the shadow translation of la in the current root. */
void vmem_shadow_invlpg(vmem_shadow *sh, uint64_t la);
/* Drop every shadow translation of every root (roots stay cached, empty). */
void vmem_shadow_zap_all(vmem_shadow *sh);

/* True (once) if a shadow entry lost rights or was removed, or the current
 * root changed (the host TLB is not tagged by CR3), since the last call:
 * the host TLB must be flushed (INVVPID single context) before the
 * guest runs again. Freed table pages may go back to the allocator at once
 * because the guest does not run until then. */
bool vmem_shadow_take_flush(vmem_shadow *sh);

/* Host-physical address of the current root (the CR3 to run the guest with). */
uint64_t vmem_shadow_root(const vmem_shadow *sh);

typedef struct vmem_shadow_stats {
	uint64_t pages;        /* table pages in use (incl. the reserve) */
	uint64_t roots;        /* roots cached */
	uint64_t faults, fills, emulated_writes, zapped, reclaimed;
	uint64_t root_hits, root_misses;
} vmem_shadow_stats;
void vmem_shadow_get_stats(const vmem_shadow *sh, vmem_shadow_stats *st);

/* Visit every table page in use (host pointer, physical address). */
int vmem_shadow_foreach_table(const vmem_shadow *sh,
			      int (*fn)(void *arg, void *page, uint64_t phys), void *arg);

/* Check every invariant above, for every cached root: each shadow leaf
 * against a fresh guest walk (no A/D writes) and the host mapping, the
 * write protection of every shadowed guest table frame, the reverse maps
 * and the budget. VMEM_OK, or VMEM_E_INVAL with a description in why
 * (if non-NULL; NUL-terminated, truncated to why_len). */
vmem_err vmem_shadow_audit(vmem_shadow *sh, char *why, size_t why_len);

#ifdef __cplusplus
}
#endif
#endif
