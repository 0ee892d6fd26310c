/* libvmem EPT table internals shared with dirty tracking: leaf iteration and collapse holds. */
#ifndef VMEM_EPT_MAP_INT_H
#define VMEM_EPT_MAP_INT_H

#include <libvmem/ept_map.h>

/* A leaf's software bit (bit 52, ignored by the processor: SDM 29.3.2,
 * Tables 29-2, 29-4, 29-6): dirty logging in WP mode took this leaf's W
 * and gives it back on the first write. vmem_ept_protect drops it: the
 * rights the VMM sets replace the log's. */
#define VMI_EPT_WP_ARMED (1ull << 52)

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
/* While held, uniform tables are not collapsed into large leaves and maps make 4K leaves only. */
void vmi_ept_hold_collapse(vmem_ept *ept, bool hold);
#endif
