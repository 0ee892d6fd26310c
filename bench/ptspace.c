/* Guest page-table builder for the benchmark: a bump allocator of table pages in one host buffer. */
#define _DEFAULT_SOURCE
#include "ptspace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_2M (2ull << 20)

uint64_t pt_pages_for(uint64_t span, uint64_t page_size, unsigned levels)
{
	unsigned leaf = page_size == (1ull << 30) ? 3 : page_size == (1ull << 21) ? 2 : 1;
	uint64_t pages = 1; /* root */

	/* A table at level l holds 512 entries each covering 4K << 9(l-1). */
	for (unsigned l = leaf; l < levels; l++) {
		unsigned shift = 12 + 9 * l;
		uint64_t per = shift >= 64 ? 1 : ((span - 1) >> shift) + 1;
		pages += per + 1; /* +1: the range may straddle a boundary */
	}
	return pages;
}

int pt_init(pt_space *s, uint64_t pages, unsigned levels)
{
	uint64_t size = (pages * 4096 + HUGE_2M - 1) & ~(HUGE_2M - 1);
	/* Over-allocate by 2 MiB so the buffer can start on a huge-page boundary. */
	uint8_t *raw = mmap(NULL, size + HUGE_2M, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (raw == MAP_FAILED)
		return -1;
	uint8_t *buf = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	if (buf > raw)
		munmap(raw, (size_t)(buf - raw));
	uint8_t *end = buf + size;
	if (end < raw + size + HUGE_2M)
		munmap(end, (size_t)(raw + size + HUGE_2M - end));
#ifdef MADV_HUGEPAGE
	madvise(buf, size, MADV_HUGEPAGE);
#endif
	memset(buf, 0, size); /* fault everything in now, outside any timing */
	s->buf = buf;
	s->size = size;
	s->levels = levels;
	s->cr3 = 0;
	s->next = 4096;
	return 0;
}

void pt_free(pt_space *s)
{
	if (s->buf)
		munmap(s->buf, s->size);
	s->buf = NULL;
}

static uint64_t alloc_table(pt_space *s)
{
	if (s->next + 4096 > s->size) {
		fprintf(stderr, "ptspace: table buffer too small\n");
		abort();
	}
	uint64_t gpa = s->next;
	s->next += 4096;
	return gpa;
}

/* The entry for la at `level`, creating missing tables above it. */
static uint64_t *entry_create(pt_space *s, uint64_t la, unsigned level, uint64_t table_flags)
{
	uint64_t table = s->cr3;

	for (unsigned l = s->levels;; l--) {
		unsigned shift = 12 + 9 * (l - 1);
		uint64_t *e = (uint64_t *)(s->buf + table) + ((la >> shift) & 511);
		if (l == level)
			return e;
		if (!(*e & PT_P))
			*e = alloc_table(s) | table_flags;
		table = *e & PT_ADDR;
	}
}

uint64_t *pt_entry(const pt_space *s, uint64_t la, unsigned level)
{
	uint64_t table = s->cr3;

	for (unsigned l = s->levels;; l--) {
		unsigned shift = 12 + 9 * (l - 1);
		uint64_t *e = (uint64_t *)(s->buf + table) + ((la >> shift) & 511);
		if (l == level)
			return e;
		if (!(*e & PT_P) || (*e & PT_PS))
			return NULL;
		table = *e & PT_ADDR;
	}
}

void pt_map(pt_space *s, uint64_t la, uint64_t len, uint64_t gpa, uint64_t page_size,
	    uint64_t leaf_flags, uint64_t table_flags)
{
	unsigned level = page_size == (1ull << 30) ? 3 : page_size == (1ull << 21) ? 2 : 1;
	uint64_t ps = level > 1 ? PT_PS : 0;

	for (uint64_t off = 0; off < len;) {
		uint64_t *e = entry_create(s, la + off, level, table_flags);
		/* Fill the rest of this table in one go. */
		unsigned idx = (unsigned)(((la + off) >> (12 + 9 * (level - 1))) & 511);
		for (; idx < 512 && off < len; idx++, e++, off += page_size)
			*e = ((gpa + off) & PT_ADDR) | leaf_flags | ps;
	}
}
