/* Guest page tables built directly in one flat host buffer (guest-physical 0 .. size). */
#ifndef BENCH_PTSPACE_H
#define BENCH_PTSPACE_H

#include <stdint.h>

/* Bits used when building entries (SDM vol. 3A 4.5). */
#define PT_P  0x1ull
#define PT_RW 0x2ull
#define PT_US 0x4ull
#define PT_A  0x20ull
#define PT_D  0x40ull
#define PT_PS 0x80ull
#define PT_XD (1ull << 63)
#define PT_ADDR 0x000ffffffffff000ull

/* Data pages are mapped here: far above the tables, never backed. */
#define PT_DATA_GPA 0x0000010000000000ull /* 1 TiB */

typedef struct pt_space {
	uint8_t *buf;   /* host address of gpa 0 */
	uint64_t size;  /* bytes of guest memory (tables only) */
	uint64_t next;  /* gpa of the next free table page */
	uint64_t cr3;   /* gpa of the root table */
	unsigned levels; /* 4 or 5 */
} pt_space;

/* Reserve room for `pages` table pages (huge-page backed when possible) and
 * allocate the root. Returns 0, or -1 if out of memory. */
int pt_init(pt_space *s, uint64_t pages, unsigned levels);
void pt_free(pt_space *s);

/* Table pages needed to map `span` bytes with pages of `page_size`. */
uint64_t pt_pages_for(uint64_t span, uint64_t page_size, unsigned levels);

/* Map [la, la+len) to [gpa, gpa+len) with pages of page_size (4K, 2M or 1G);
 * leaf entries get leaf_flags, non-leaf entries table_flags (both include P).
 * Aborts if the buffer is too small. */
void pt_map(pt_space *s, uint64_t la, uint64_t len, uint64_t gpa, uint64_t page_size,
	    uint64_t leaf_flags, uint64_t table_flags);

/* Host pointer to the entry at `level` (1 = PTE) that maps la, or NULL if a
 * table above it is not present. */
uint64_t *pt_entry(const pt_space *s, uint64_t la, unsigned level);

#endif
