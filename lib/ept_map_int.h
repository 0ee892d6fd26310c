/* libvmem EPT table internals shared with dirty tracking: leaf iteration and collapse holds. */
#ifndef VMEM_EPT_MAP_INT_H
#define VMEM_EPT_MAP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/ept_map.h>

/* A leaf's software bit (bit 52, ignored by the processor: SDM 29.3.2,
 * Tables 29-2, 29-4, 29-6): dirty logging in WP mode took this leaf's W
 * and gives it back on the first write. vmem_ept_protect drops it: the
 * rights the VMM sets replace the log's. */
#define VMI_EPT_WP_ARMED (1ull << 52)

/* A dirty log watching [lo, hi) of the EPT (lib/dirty.c). Each vmem_dirty
 * adds its own node when created and takes it off when freed (no
 * allocation: the node is part of the log), so that the table changes made
 * around the log reach it: while on, vmem_ept_map, _unmap and _protect
 * store every leaf inside [lo, hi) they replace, remove (also with a
 * table that goes whole) or give rights through leaf(). */
struct vmi_ept_log {
	struct vmi_ept_log *next;
	uint64_t lo, hi;
	bool on;            /* logging (a mode other than OFF) */
	/* The leaf slot mapping [gpa, gpa + size) goes from old (not present:
	 * none) to ne (0: removed); returns the entry to store instead of ne.
	 * It may record pages as dirty, allocates nothing, and may be called
	 * again for the same change (a processor set A or D meanwhile). */
	uint64_t (*leaf)(struct vmi_ept_log *log, uint64_t old, uint64_t ne, uint64_t gpa, uint64_t size);
};
void vmi_ept_log_add(vmem_ept *ept, struct vmi_ept_log *log);
void vmi_ept_log_del(vmem_ept *ept, struct vmi_ept_log *log);
/* The logs added, newest first. */
struct vmi_ept_log *vmi_ept_logs(const vmem_ept *ept);
/* The lock (a spinlock word, 0 free) under which the logs of the EPT
 * harvest and change mode one at a time (lib/dirty.c). */
int *vmi_ept_logs_lock(vmem_ept *ept);

/* Call fn on every present leaf entry overlapping [gpa, gpa+size), in order;
 * stop at the first non-zero return and return it. */
int vmi_ept_foreach_leaf(vmem_ept *ept, uint64_t gpa, uint64_t size,
			 int (*fn)(void *arg, uint64_t *entry, uint64_t gpa, unsigned level), void *arg);
/* The EPT_D harvest's walk: clear D on every present leaf overlapping
 * [gpa, gpa+size) that has it and, when out is not NULL, set bit
 * (leaf gpa - gpa) / 4K in out. true if any D was cleared. */
bool vmi_ept_harvest_d(vmem_ept *ept, uint64_t gpa, uint64_t size, uint64_t *out);
/* The table of 4K leaves (level 1) that maps gpa, in two steps so that a
 * batch's lookups overlap: node[k] for each gpa[k] (k < n), prefetched;
 * then vmi_ept_node_table(node[k]) is that table, or NULL when the walk for
 * gpa[k] ends above it (a non-present entry or a large leaf). Valid while
 * the tables stay as they are. */
void vmi_ept_leaf_nodes(vmem_ept *ept, const uint64_t *gpa, unsigned n, const void **node);
uint64_t *vmi_ept_node_table(const void *node);
/* vmem_ept_split of the 4K pages gpa[0..n) (n <= 2) at once: all or nothing. */
vmem_err vmi_ept_split_pages(vmem_ept *ept, const uint64_t *gpa, unsigned n, vmem_ept_flush *flush);
/* While held, uniform tables are not collapsed into large leaves and maps make 4K leaves only. */
void vmi_ept_hold_collapse(vmem_ept *ept, bool hold);
#endif
