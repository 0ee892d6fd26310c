/* libvmem dirty-page logging for a guest range: write-protection, EPT dirty-flag harvesting, or the page-modification log. */
#ifndef LIBVMEM_DIRTY_H
#define LIBVMEM_DIRTY_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/ept_map.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The three ways a VMM learns which guest pages were written (as KVM offers them). */
typedef enum vmem_dirty_mode {
	VMEM_DIRTY_OFF = 0,
	/* Write-protect the range; the first write to each page is an EPT
	 * violation the VMM hands to vmem_dirty_wp_fault, which logs the page and
	 * makes it writable again. 4K granularity: a large leaf is split on its
	 * first write. The leaves whose W the log took carry bit 52 (ignored by
	 * the processor) until it gives W back; rights the VMM sets meanwhile
	 * (vmem_ept_protect) replace the log's: a page it makes read-only is
	 * never opened by the log. A page of the range the VMM makes writable
	 * (vmem_ept_map, or _protect adding W) is armed likewise, so that its
	 * first write is logged too; one already written since the last
	 * harvest (the log opened it) keeps its W. */
	VMEM_DIRTY_WP = 1,
	/* Let the processor set EPT dirty flags (EPTP bit 6) and harvest them by
	 * atomic clear-and-collect. Large leaves are split when logging starts.
	 * A leaf with D set that vmem_ept_map replaces or _unmap removes (also
	 * with a table that goes whole) has its pages logged as it goes. */
	VMEM_DIRTY_EPT_D = 2,
	/* The page-modification log (SDM vol. 3C 29.3.6): the processor appends
	 * the GPA of every page whose EPT dirty flag it sets; 512 entries, then a
	 * "log full" VM exit. Needs EPT A/D. Each vCPU has its own PML (its EPT
	 * context's, vmem_ept_mmu_set_pml), holding the GPAs of every range:
	 * give each log of an EPT the PMLs of all the vCPUs using the EPT
	 * (vmem_dirty_set_mode_pml); a drain of any one of them fills every
	 * log of the EPT in PML mode whose range holds its GPAs. */
	VMEM_DIRTY_PML = 3
} vmem_dirty_mode;

/* The PML as the VMCS holds it: a 4 KiB page of 512 GPAs and the PML index,
 * which starts at 511 and counts down; an index outside 0..511 when an entry
 * is due is the "page-modification log full" event (exit reason 62). */
typedef struct vmem_pml {
	uint64_t *log;   /* 512 entries */
	uint16_t index;
} vmem_pml;

/* What the processor does when it sets an EPT dirty flag that was clear:
 * false means "log full" (a VM exit before the access); true: logged. */
bool vmem_pml_log(vmem_pml *pml, uint64_t gpa);

typedef struct vmem_dirty vmem_dirty;

/* Track [gpa, gpa+size) (4 KiB aligned) of ept. Logging starts off.
 * VMEM_E_RANGE when the range goes beyond the GPAs ept translates. The log
 * registers itself with ept (no allocation), so that ept's table changes
 * and its PML drains reach it: free every log of an EPT before the EPT. */
vmem_err vmem_dirty_new(const vmem_allocator *alloc, vmem_ept *ept, uint64_t gpa,
			uint64_t size, vmem_dirty **out);
/* Stops logging (restoring write access in WP mode) and frees the log.
 * Not while the EPT's tables change (vmem_ept_map, ...) or a PML of the
 * EPT is drained: they read the EPT's logs. */
void vmem_dirty_free(vmem_dirty *d);

/* Switch the mode at run time (OFF ends logging). Pages dirtied so far stay
 * in the bitmap. Switching needs table changes: *flush says what to
 * invalidate. All or nothing (VMEM_E_NOMEM or VMEM_E_RANGE, vmem_ept_new,
 * leaves the mode as it was).
 * PML mode needs a pml with a log page (one vCPU's: vmem_dirty_set_mode_pml
 * with n = 1); EPT_D and PML need EPT A/D. Logs of an EPT that share a
 * page share its leaf's one W and one D flag: VMEM_E_OVERLAP (nothing
 * changed) for a mode that another log on over a page of the range uses
 * the same flag in: two WP logs (W), an EPT_D log with an EPT_D or PML log
 * (D: a harvest clearing it for one hides the write from the other). PML
 * logs may overlap (each write is in a vCPU's PML, which fills all), and
 * a WP log an EPT_D or PML one. The logs of one EPT may harvest and switch
 * modes from different threads at once: they take turns (one lock per
 * EPT), so that overlapping logs never undo each other's flags. */
vmem_err vmem_dirty_set_mode(vmem_dirty *d, vmem_dirty_mode mode, vmem_pml *pml,
			     vmem_ept_flush *flush);
/* PML mode with the PMLs of n vCPUs (n >= 1), pml[0..n), each with a log
 * page. The log keeps the pointer pml (for n = 1 it copies pml[0]): the
 * array and the PMLs stay as given until the log leaves PML mode.
 * Entering, the GPAs each PML holds go to the other logs of the EPT in PML
 * mode (not to this one: writes before logging started are not reported)
 * and its index to 511; the harvest and leaving PML mode drain every one.
 * All with those n vCPUs out of guest mode. As vmem_dirty_set_mode else. */
vmem_err vmem_dirty_set_mode_pml(vmem_dirty *d, vmem_pml *const *pml, unsigned n,
				 vmem_ept_flush *flush);
vmem_dirty_mode vmem_dirty_get_mode(const vmem_dirty *d);

/* WP mode: an EPT violation for a write at gpa. *handled is true when it was
 * this log's write protection (the page is now logged and writable: retry
 * the access), also a stale one after the log left WP mode (the page is
 * writable: retry); false when the fault is someone else's. It changes the
 * EPT's tables (a large leaf is split): ordered with vmem_ept_map, _unmap,
 * _protect and _split as they are with each other. */
vmem_err vmem_dirty_wp_fault(vmem_dirty *d, uint64_t gpa, bool *handled, vmem_ept_flush *flush);

/* One vCPU's log-full exit (or any time that vCPU is out of guest mode):
 * move the GPAs pml holds into the bitmap of every log of d's EPT in PML
 * mode whose range holds them, and reset pml's index to 511. The other
 * vCPUs may run meanwhile. */
void vmem_dirty_pml_drain_from(vmem_dirty *d, vmem_pml *pml);
/* PML mode: vmem_dirty_pml_drain_from each PML of the log, all of their
 * vCPUs out of guest mode (with one vCPU: its log-full exit). */
void vmem_dirty_pml_drain(vmem_dirty *d);

/* Get and clear: copy the dirty bitmap (bit i = page gpa + i*4K; size/4K bits,
 * in 64-bit words) into out and re-arm logging for those pages. A write that
 * races with the harvest is reported by this harvest or the next, never lost,
 * provided the caller performs the INVEPT *flush asks for before it reads the
 * pages' contents (the TLB may cache a dirty translation). PML mode drains
 * the log's PMLs first: their vCPUs must be out of guest mode meanwhile, as
 * on a log-full exit (KVM kicks every vCPU to flush its PML). The EPT's
 * tables must not be changed meanwhile
 * (vmem_ept_map, _unmap, _protect, _split): the harvest reads them and
 * clears flags in them. Between harvests they may change, and the log
 * sees the changes inside its range: a leaf replaced or removed with its
 * D flag set (EPT_D mode) has its pages logged then (a large leaf: all of
 * its pages in the range); in PML mode its GPA is already in the PML or
 * the bitmap; in WP mode a page given W is armed. Cost: EPT_D mode reads
 * every leaf of the range (8 bytes per 4 KiB page); WP and PML modes read
 * the bitmap and touch only the logged pages' leaves. */
vmem_err vmem_dirty_harvest(vmem_dirty *d, uint64_t *out, vmem_ept_flush *flush);

#ifdef __cplusplus
}
#endif
#endif
