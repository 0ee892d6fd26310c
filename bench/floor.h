/* Memory floors: loops that read only the entries a walk must read, for the walks' times to be judged against. */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stddef.h>
#include <stdint.h>

/* Independent ALU operations a floor loop may add to each walk (the
 * machine's cost of a walk's own work beside its loads): 0, 16, 32, 64.
 * Without x86-64 inline assembly, only 0 is timed (floor_ops_ok). */
enum { FLOOR_OPS_KINDS = 4 };
extern const unsigned floor_ops[FLOOR_OPS_KINDS];
int floor_ops_ok(unsigned kind);

/* Batch floor: for each address, the PDE its walk reads (pde[i]) and the
 * PTE that PDE points at (its address made from the PDE's value, as any
 * walker must make it), each PTE prefetched FLOOR_AHEAD addresses before it
 * is read, plus floor_ops[kind] independent ALU operations. host: the host
 * address of guest-physical 0. */
#define FLOOR_AHEAD 64
uint64_t loop_floor(unsigned kind, const uint8_t *host, const uint64_t *const *pde, const uint64_t *la,
		    size_t n);

/* Single-walk floor of 4-level paging with 4K pages: for each address, the
 * PML4E, PDPTE, PDE and PTE, each found from the one above (the chain of
 * dependent loads every walk has), no test of any bit, plus floor_ops[kind]
 * independent ALU operations. cr3: the root's guest-physical address. */
uint64_t loop_chain(unsigned kind, const uint8_t *host, uint64_t cr3, const uint64_t *la, size_t n);

#endif
