/* Test allocator for libvmem: fails the Nth allocation on request and tracks every live block and byte. */
#ifndef TESTS_SUPPORT_FAILALLOC_H
#define TESTS_SUPPORT_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/alloc.h>

/* Header-only: every function is static inline so a test that uses only part
 * of it compiles warning-free.
 *
 * Calls to alloc and alloc_page share one counter (calls). When that counter
 * equals fail_at, the call returns NULL (and counts in failed); every other
 * call succeeds. Each live block is recorded with its size, so a free of an
 * unknown pointer, a double free, or a free whose size differs from the
 * allocation's counts as a bad free. */
#define FAILALLOC_MAX_BLOCKS 1024
#define FAILALLOC_NEVER (-1L)

typedef struct failalloc {
	vmem_allocator a;          /* pass &fa->a to the library */
	long fail_at;              /* call index that fails, or FAILALLOC_NEVER */
	long calls;                /* alloc + alloc_page calls so far */
	long failed;               /* calls that returned NULL */
	long live;                 /* blocks (including pages) not yet freed */
	size_t live_bytes;
	long bad_frees;            /* unknown pointer, double free or wrong size */
	struct {
		void *p;
		size_t size;
		bool page;
	} blk[FAILALLOC_MAX_BLOCKS];
} failalloc;

static inline bool failalloc_should_fail(failalloc *fa)
{
	long idx = fa->calls++;
	if (idx == fa->fail_at) {
		fa->failed++;
		return true;
	}
	return false;
}

static inline bool failalloc_track(failalloc *fa, void *p, size_t size, bool page)
{
	for (int i = 0; i < FAILALLOC_MAX_BLOCKS; i++) {
		if (!fa->blk[i].p) {
			fa->blk[i].p = p;
			fa->blk[i].size = size;
			fa->blk[i].page = page;
			fa->live++;
			fa->live_bytes += size;
			return true;
		}
	}
	return false; /* table full: refuse the allocation rather than lose track */
}

static inline void failalloc_untrack(failalloc *fa, void *p, size_t size, bool page)
{
	for (int i = 0; i < FAILALLOC_MAX_BLOCKS; i++) {
		if (fa->blk[i].p == p) {
			if (fa->blk[i].size != size || fa->blk[i].page != page)
				fa->bad_frees++;
			fa->live--;
			fa->live_bytes -= fa->blk[i].size;
			fa->blk[i].p = NULL;
			free(p);
			return;
		}
	}
	fa->bad_frees++; /* never allocated here, or already freed: do not touch it */
}

static inline void *failalloc_alloc(void *ctx, size_t size)
{
	failalloc *fa = ctx;
	if (failalloc_should_fail(fa))
		return NULL;
	/* malloc gives 16-byte alignment on the hosts we test on; ask for it anyway. */
	size_t rounded = size ? (size + 15) & ~(size_t)15 : 16; /* aligned_alloc wants a multiple */
	void *p = aligned_alloc(16, rounded);
	if (!p)
		return NULL;
	/* Poison: the library must not rely on fresh metadata being zero. */
	memset(p, 0xa5, size);
	if (!failalloc_track(fa, p, size, false)) {
		free(p);
		return NULL;
	}
	return p;
}

static inline void failalloc_free(void *ctx, void *p, size_t size)
{
	if (p)
		failalloc_untrack(ctx, p, size, false);
}

static inline void *failalloc_alloc_page(void *ctx)
{
	failalloc *fa = ctx;
	if (failalloc_should_fail(fa))
		return NULL;
	void *p = aligned_alloc(4096, 4096);
	if (!p)
		return NULL;
	memset(p, 0, 4096);
	if (!failalloc_track(fa, p, 4096, true)) {
		free(p);
		return NULL;
	}
	return p;
}

static inline void failalloc_free_page(void *ctx, void *p)
{
	if (p)
		failalloc_untrack(ctx, p, 4096, true);
}

/* Set up fa (which may be on the stack or static): nothing fails yet. */
static inline void failalloc_init(failalloc *fa)
{
	memset(fa, 0, sizeof(*fa));
	fa->a.alloc = failalloc_alloc;
	fa->a.free = failalloc_free;
	fa->a.alloc_page = failalloc_alloc_page;
	fa->a.free_page = failalloc_free_page;
	fa->a.ctx = fa;
	fa->fail_at = FAILALLOC_NEVER;
}

/* Make the k-th allocation call from now (0 = the next one) fail. */
static inline void failalloc_fail_in(failalloc *fa, long k)
{
	fa->fail_at = fa->calls + k;
}

static inline void failalloc_never(failalloc *fa)
{
	fa->fail_at = FAILALLOC_NEVER;
}
#endif
