/* Dirty logging: write-protect faults, EPT dirty-flag harvest, PML with log-full, and no write lost to a racing harvest. */
#define _GNU_SOURCE /* a writer-preferring rwlock */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#if defined(__has_include) && __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
#include <cmocka.h>
#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include <libvmem/gmem.h>
#include "support/failalloc.h"

#define M2 (1ull << 21)
#define RW (VMEM_EPT_R | VMEM_EPT_W)
#define NPAGES 1024 /* the tracked range: 4 MiB */

/* The processor's view: find the leaf entry by reading the raw tables (pages are identity-physical here). */
static uint64_t *leaf_of(vmem_ept *e, uint64_t gpa, unsigned *level)
{
	uint64_t t = vmem_ept_eptp(e) & ~0xfffull;
	for (unsigned L = 4; L >= 1; L--) {
		uint64_t *p = &((uint64_t *)(uintptr_t)t)[(gpa >> (12 + 9 * (L - 1))) & 511];
		uint64_t v = __atomic_load_n(p, __ATOMIC_SEQ_CST); /* the library may change it meanwhile */
		if (!(v & 7))
			return NULL;
		if (L == 1 || (v & VMEM_EPT_PS)) {
			*level = L;
			return p;
		}
		t = v & 0x000ffffffffff000ull;
	}
	return NULL;
}

static vmem_ept *mk(bool ad)
{
	vmem_ept_config cfg = { .levels = 4, .ad = ad, .gbpages = true, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e;
	assert_int_equal(vmem_ept_new(NULL, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 0, 1ull << 30), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, 0, 2 * M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	return e;
}

static bool bit(const uint64_t *bm, unsigned i) { return (bm[i / 64] >> (i % 64)) & 1; }

static void test_wp_mode(void **s)
{
	(void)s;
	vmem_ept *e = mk(false);
	/* One read-only 4K page at 0x3ff000 inside the second 2M. */
	assert_int_equal(vmem_ept_protect(e, 0x3ff000, 4096, VMEM_EPT_R, NULL), VMEM_OK);
	vmem_dirty *d;
	vmem_ept_flush fl;
	uint64_t bm[NPAGES / 64];
	unsigned lvl;
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, &fl), VMEM_OK);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT); /* rights were taken away */
	uint64_t *l = leaf_of(e, 0x1000, &lvl);
	assert_int_equal(lvl, 2);                      /* still a 2M leaf... */
	assert_false(*l & VMEM_EPT_W);                 /* ...write-protected */
	bool handled;
	assert_int_equal(vmem_dirty_wp_fault(d, 0x1234, &handled, &fl), VMEM_OK);
	assert_true(handled);
	l = leaf_of(e, 0x1000, &lvl);
	assert_int_equal(lvl, 1);                      /* split on first write */
	assert_true(*l & VMEM_EPT_W);
	assert_false(*leaf_of(e, 0x2000, &lvl) & VMEM_EPT_W);
	/* The read-only page was never writable: a genuine fault. */
	assert_int_equal(vmem_dirty_wp_fault(d, 0x3ff008, &handled, &fl), VMEM_OK);
	assert_false(handled);
	/* A second fault on the opened page (a stale translation): handled, nothing more. */
	assert_int_equal(vmem_dirty_wp_fault(d, 0x1008, &handled, &fl), VMEM_OK);
	assert_true(handled);
	assert_int_equal(vmem_dirty_harvest(d, bm, &fl), VMEM_OK);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(bit(bm, i), i == 1);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	assert_false(*leaf_of(e, 0x1000, &lvl) & VMEM_EPT_W); /* re-armed */
	assert_int_equal(vmem_dirty_harvest(d, bm, &fl), VMEM_OK);
	for (unsigned i = 0; i < NPAGES / 64; i++)
		assert_int_equal(bm[i], 0);
	/* Off: write access back where it was, not where it never was. */
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, &fl), VMEM_OK);
	assert_true(*leaf_of(e, 0x1000, &lvl) & VMEM_EPT_W);
	assert_true(*leaf_of(e, 0x200000, &lvl) & VMEM_EPT_W);
	assert_false(*leaf_of(e, 0x3ff000, &lvl) & VMEM_EPT_W);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

static void test_ept_d_mode(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	vmem_dirty *d;
	vmem_ept_flush fl;
	uint64_t bm[NPAGES / 64];
	unsigned lvl;
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	/* Dirty before logging starts: not reported. */
	*leaf_of(e, 0x5000, &lvl) |= VMEM_EPT_D;
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_EPT_D, NULL, &fl), VMEM_OK);
	/* The 2M leaves were split and a D cleared: the flush names the range, not an empty one. */
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	assert_true(fl.start == 0 && fl.end == 2 * M2);
	assert_int_equal(leaf_of(e, 0x5000, &lvl) != NULL, 1);
	assert_int_equal(lvl, 1);                      /* split when logging starts */
	__atomic_fetch_or(leaf_of(e, 0x3000, &lvl), VMEM_EPT_D, __ATOMIC_SEQ_CST);
	__atomic_fetch_or(leaf_of(e, 0x2bc000, &lvl), VMEM_EPT_D, __ATOMIC_SEQ_CST);
	assert_int_equal(vmem_dirty_harvest(d, bm, &fl), VMEM_OK);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(bit(bm, i), i == 3 || i == 0x2bc);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);  /* cached dirty translations must go */
	assert_false(*leaf_of(e, 0x3000, &lvl) & VMEM_EPT_D);
	assert_int_equal(vmem_dirty_harvest(d, bm, &fl), VMEM_OK);
	assert_int_equal(bm[0] | bm[11], 0);
	/* Without EPT A/D the mode is refused and nothing changes. */
	vmem_ept *e2 = mk(false);
	vmem_dirty *d2;
	assert_int_equal(vmem_dirty_new(NULL, e2, 0, 2 * M2, &d2), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d2, VMEM_DIRTY_EPT_D, NULL, &fl), VMEM_E_INVAL);
	assert_int_equal(vmem_dirty_get_mode(d2), VMEM_DIRTY_OFF);
	vmem_dirty_free(d2);
	vmem_ept_free(e2);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* The processor's write with PML: set D if clear, and log it; false = log full (exit first). */
static bool hw_write_pml(vmem_ept *e, vmem_pml *pml, uint64_t gpa)
{
	unsigned lvl;
	uint64_t *l = leaf_of(e, gpa, &lvl), old = *l;
	if (old & VMEM_EPT_D)
		return true;
	if (pml->index > 511)
		return false; /* SDM 29.3.6: the log-full exit comes before the access */
	*l = old | VMEM_EPT_D;
	assert_true(vmem_pml_log(pml, gpa));
	return true;
}

static void test_pml_mode(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	vmem_dirty *d;
	vmem_ept_flush fl;
	uint64_t bm[NPAGES / 64], log[512];
	vmem_pml pml = { log, 0 };
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_PML, &pml, &fl), VMEM_OK);
	assert_int_equal(pml.index, 511);
	unsigned fulls = 0;
	for (unsigned p = 0; p < 600; p++) {
		uint64_t g = (uint64_t)(p * 7 % NPAGES) << 12; /* 600 distinct pages */
		while (!hw_write_pml(e, &pml, g)) {
			fulls++;
			vmem_dirty_pml_drain(d);
			assert_int_equal(pml.index, 511);
		}
	}
	assert_int_equal(fulls, 1); /* the 513th new dirty page finds the log full */
	/* Writing an already dirty page logs nothing. */
	uint16_t idx = pml.index;
	assert_true(hw_write_pml(e, &pml, 0));
	assert_int_equal(pml.index, idx);
	assert_int_equal(vmem_dirty_harvest(d, bm, &fl), VMEM_OK);
	unsigned n = 0;
	for (unsigned i = 0; i < NPAGES; i++)
		n += bit(bm, i);
	assert_int_equal(n, 600);
	for (unsigned p = 0; p < 600; p++)
		assert_true(bit(bm, p * 7 % NPAGES));
	/* D cleared: the next write logs again. */
	assert_true(hw_write_pml(e, &pml, 7 << 12));
	assert_int_equal(pml.index, 510);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}


/* The EPT walk itself logs to the PML (SDM 29.3.6): tables registered as host memory. */
static int reg_table(void *arg, void *page, uint64_t phys)
{
	return vmem_gmem_add_ram((vmem_gmem *)arg, phys, 4096, page, 0);
}

/* The processor's EPT walk over e's tables (registered as host memory), logging to pml if not NULL. */
static vmem_ept_mmu *walker(vmem_ept *e, vmem_pml *pml, vmem_gmem **host)
{
	vmem_ept_mmu *em;
	assert_int_equal(vmem_gmem_new(NULL, host), VMEM_OK);
	assert_int_equal(vmem_ept_foreach_table(e, reg_table, *host), 0);
	assert_int_equal(vmem_ept_mmu_new(NULL, vmem_ept_eptp(e), NULL, &em), VMEM_OK);
	vmem_ept_mmu_set_pml(em, pml);
	return em;
}

/* A log of [gpa, gpa+size) of e in mode m (pml for PML mode). */
static vmem_dirty *start(vmem_ept *e, uint64_t gpa, uint64_t size, unsigned m, vmem_pml *pml)
{
	vmem_dirty *d;
	assert_int_equal(vmem_dirty_new(NULL, e, gpa, size, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, (vmem_dirty_mode)m, pml, NULL), VMEM_OK);
	return d;
}

/* An EPT (mk(true)) with a log of [gpa, gpa+size) in mode m, its PML and a bitmap to harvest into. */
struct logged {
	vmem_ept *e;
	vmem_dirty *d;
	vmem_pml pml;
	uint64_t log[512], bm[NPAGES / 64];
};

static void logged_start(struct logged *l, uint64_t gpa, uint64_t size, unsigned m)
{
	l->e = mk(true);
	l->pml.log = l->log;
	l->d = start(l->e, gpa, size, m, &l->pml);
}

static void logged_end(struct logged *l)
{
	vmem_dirty_free(l->d);
	vmem_ept_free(l->e);
}

static void test_pml_through_ept_walk(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	vmem_dirty *d;
	uint64_t bm[NPAGES / 64], log[512];
	vmem_pml pml = { log, 0 };
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_PML, &pml, NULL), VMEM_OK);
	vmem_gmem *host;
	vmem_ept_mmu *em = walker(e, &pml, &host);
	vmem_ept_access wr = { 0 }, rd = { 0 };
	wr.type = VMEM_EPT_WRITE;
	rd.type = VMEM_EPT_READ;
	vmem_ept_result r;
	/* A read sets A only: nothing logged. */
	assert_int_equal(vmem_ept_walk(em, host, 0x5000, &rd, 0, &r, NULL), VMEM_OK);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(pml.index, 511);
	unsigned full = 0;
	for (unsigned p = 0; p < 600; p++) {
		assert_int_equal(vmem_ept_walk(em, host, (uint64_t)p << 12 | 0x10, &wr, 0, &r, NULL), VMEM_OK);
		if (r.status == VMEM_EPT_PML_FULL) {
			unsigned lvl;
			full++;
			assert_int_equal(p, 512);                            /* the 513th new dirty page */
			assert_false(*leaf_of(e, (uint64_t)p << 12, &lvl) & VMEM_EPT_D); /* no flag set */
			vmem_dirty_pml_drain(d);
			assert_int_equal(vmem_ept_walk(em, host, (uint64_t)p << 12, &wr, 0, &r, NULL), VMEM_OK);
		}
		assert_int_equal(r.status, VMEM_EPT_OK);
	}
	assert_int_equal(full, 1);
	assert_int_equal(log[511], 0x200000);          /* first logged after the drain: page 512, page-aligned */
	/* Writing a page already dirty logs nothing. */
	uint16_t idx = pml.index;
	assert_int_equal(vmem_ept_walk(em, host, 0x3000, &wr, 0, &r, NULL), VMEM_OK);
	assert_int_equal(pml.index, idx);
	assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(bit(bm, i), i < 600);
	vmem_ept_mmu_free(em);
	vmem_gmem_free(host);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* A range that starts off any line, word or 2 MiB boundary (page 3), so
 * that the harvest's lines of 8 leaves and the bitmap's 64-page words
 * straddle words and tables: every mode reports exactly the pages written
 * inside the range and re-arms exactly those leaves. */
static void test_unaligned_range(void **s)
{
	(void)s;
	const uint64_t g0 = 0x3000, n = NPAGES - 8; /* pages 3 .. 1018 */
	for (unsigned m = VMEM_DIRTY_WP; m <= VMEM_DIRTY_PML; m++) {
		vmem_ept *e = mk(true);
		vmem_dirty *d;
		uint64_t bm[NPAGES / 64], log[512];
		vmem_pml pml = { log, 0 };
		uint8_t want[NPAGES] = { 0 };
		unsigned lvl;
		assert_int_equal(vmem_ept_split(e, 0, 2 * M2, NULL), VMEM_OK);
		assert_int_equal(vmem_dirty_new(NULL, e, g0, n << 12, &d), VMEM_OK);
		assert_int_equal(vmem_dirty_set_mode(d, (vmem_dirty_mode)m, &pml, NULL), VMEM_OK);
		uint64_t x = 0x9e3779b97f4a7c15ull;
		for (unsigned k = 0; k < 700; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			unsigned p = (unsigned)(x % NPAGES);
			bool in = p >= 3 && p < 3 + n;
			uint64_t *l = leaf_of(e, (uint64_t)p << 12, &lvl);
			if (m == VMEM_DIRTY_WP) {
				bool handled;
				if (!(*l & VMEM_EPT_W)) {
					assert_int_equal(vmem_dirty_wp_fault(d, (uint64_t)p << 12, &handled, NULL), VMEM_OK);
					assert_true(handled);
				}
			} else if (!(*l & VMEM_EPT_D)) {
				*l |= VMEM_EPT_D;
				if (m == VMEM_DIRTY_PML && !vmem_pml_log(&pml, (uint64_t)p << 12)) {
					vmem_dirty_pml_drain(d);
					assert_true(vmem_pml_log(&pml, (uint64_t)p << 12));
				}
			}
			want[p] |= in;
		}
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++) {
			uint64_t leaf = *leaf_of(e, (uint64_t)i << 12, &lvl);
			bool in = i >= 3 && i < 3 + n;
			if (in)
				assert_int_equal(bit(bm, i - 3), want[i]);
			if (m == VMEM_DIRTY_WP)
				assert_int_equal(!(leaf & VMEM_EPT_W), in); /* re-armed: every page of the range */
			else if (in)
				assert_false(leaf & VMEM_EPT_D);
		}
		for (unsigned i = (unsigned)n; i < NPAGES; i++)
			assert_false(bit(bm, i));
		vmem_dirty_free(d);
		vmem_ept_free(e);
	}
}

/* A failed allocation while PML (or EPT_D) logging starts (it splits the
 * 2M leaves) changes nothing and leaks nothing (PML mode with two vCPUs'
 * PMLs, the second holding an entry: neither index moves); a harvest
 * allocates nothing. */
static failalloc fa; /* big (block table): static */

static void test_fail_alloc(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_EPT_D; m <= VMEM_DIRTY_PML; m++) {
		failalloc_init(&fa);
		vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = true, .eptp_mt = VMEM_MT_WB };
		vmem_ept *e;
		vmem_dirty *d;
		uint64_t bm[NPAGES / 64], log[512], log2[512] = { 0 };
		vmem_pml pml = { log, 0 }, pml2 = { log2, 255 };
		vmem_pml *const pmls[2] = { &pml, &pml2 };
		assert_int_equal(vmem_ept_new(&fa.a, &cfg, &e), VMEM_OK);
		assert_int_equal(vmem_ept_grant(e, 0, 1ull << 30), VMEM_OK);
		assert_int_equal(vmem_ept_map(e, 0, 0, 2 * M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		assert_int_equal(vmem_dirty_new(&fa.a, e, 0, 2 * M2, &d), VMEM_OK);
		vmem_ept_stats before, st;
		vmem_ept_get_stats(e, &before);
		long live = fa.live, k;
		for (k = 0;; k++) {
			failalloc_fail_in(&fa, k);
			vmem_err err = m == VMEM_DIRTY_PML ? vmem_dirty_set_mode_pml(d, pmls, 2, NULL)
							    : vmem_dirty_set_mode(d, (vmem_dirty_mode)m, &pml, NULL);
			if (err == VMEM_OK)
				break;
			assert_int_equal(err, VMEM_E_NOMEM);
			assert_true(pml.index == 0 && pml2.index == 255);
			assert_int_equal(vmem_dirty_get_mode(d), VMEM_DIRTY_OFF);
			vmem_ept_get_stats(e, &st);
			assert_memory_equal(&st, &before, sizeof(st));
			assert_int_equal(fa.live, live);
			assert_true(k < 16);
		}
		assert_true(k >= 1); /* the split needed tables */
		vmem_ept_get_stats(e, &st);
		assert_int_equal(st.leaves_4k, NPAGES);
		/* Dirty a page the processor's way, then harvest with every allocation failing. */
		unsigned lvl;
		uint64_t *l = leaf_of(e, 5 << 12, &lvl);
		*l |= VMEM_EPT_D;
		if (m == VMEM_DIRTY_PML)
			assert_true(vmem_pml_log(&pml, 5 << 12));
		long calls = fa.calls;
		failalloc_fail_in(&fa, 0);
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		assert_int_equal(fa.calls, calls);
		assert_int_equal(fa.failed, k); /* none in the harvest */
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), i == 5);
		assert_false(*l & VMEM_EPT_D);
		failalloc_never(&fa);
		vmem_dirty_free(d);
		vmem_ept_free(e);
		assert_int_equal(fa.live, 0);
		assert_int_equal(fa.bad_frees, 0);
	}
}

/* WP mode splits the large leaves that cross an edge of its range (so that
 * no page outside loses W): [1M, 3M) over the 2M leaves [0, 2M) and
 * [2M, 4M) splits both, each needing a page table. A failed allocation
 * for the second must leave the first as it was too (dirty.h: all or
 * nothing; a split changes the page size, which asks for an INVEPT, SDM
 * 29.4.3.1, that an error result cannot report): two 2M leaves, no 4K
 * leaf, nothing leaked; then it succeeds with 2 x 512 4K leaves. */
static void test_wp_fail_alloc_second_edge(void **s)
{
	(void)s;
	failalloc_init(&fa);
	vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = true, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e;
	vmem_dirty *d;
	assert_int_equal(vmem_ept_new(&fa.a, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 0, 1ull << 30), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, 0, 2 * M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_new(&fa.a, e, M2 / 2, M2, &d), VMEM_OK);
	vmem_ept_stats before, st;
	vmem_ept_get_stats(e, &before);
	assert_int_equal(before.leaves_2m, 2);
	long live = fa.live, k;
	for (k = 0;; k++) {
		failalloc_fail_in(&fa, k);
		vmem_err err = vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, NULL);
		if (err == VMEM_OK)
			break;
		assert_int_equal(err, VMEM_E_NOMEM);
		assert_int_equal(vmem_dirty_get_mode(d), VMEM_DIRTY_OFF);
		vmem_ept_get_stats(e, &st);
		assert_memory_equal(&st, &before, sizeof(st));
		assert_int_equal(fa.live, live);
		assert_true(k < 16);
	}
	failalloc_never(&fa);
	assert_true(k >= 2); /* two tables: the second one's failure was exercised */
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_4k, 2 * 512);
	assert_int_equal(st.leaves_2m, 0);
	vmem_dirty_free(d);
	vmem_ept_flush_done(e);
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
	assert_int_equal(fa.bad_frees, 0);
}

/* Switching modes keeps what was dirtied (dirty.h: "Pages dirtied so far
 * stay in the bitmap"). In EPT_D mode a write so far is a D flag the
 * processor set on the leaf (SDM 29.3.5): leaving the mode must collect it,
 * or the next harvest (which no longer reads D) never reports the page. */
static void test_ept_d_switch_keeps_dirty(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_OFF; m <= VMEM_DIRTY_PML; m++) {
		if (m == VMEM_DIRTY_EPT_D)
			continue;
		vmem_ept *e = mk(true);
		uint64_t bm[NPAGES / 64], log[512];
		vmem_pml pml = { log, 0 };
		unsigned lvl;
		vmem_dirty *d = start(e, 0, 2 * M2, VMEM_DIRTY_EPT_D, NULL);
		__atomic_fetch_or(leaf_of(e, 0x7000, &lvl), VMEM_EPT_D, __ATOMIC_SEQ_CST); /* a write at page 7 */
		assert_int_equal(vmem_dirty_set_mode(d, (vmem_dirty_mode)m, &pml, NULL), VMEM_OK);
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), i == 7);
		vmem_dirty_free(d);
		vmem_ept_free(e);
	}
}

/* WP mode write-protects the tracked range only. The range here is pages
 * 1..10 inside a 2M leaf that maps 0..2M: the leaf's other pages are not
 * tracked, so they must stay writable (a write there is no fault of this
 * log: vmem_dirty_wp_fault would say "not handled" and the VMM would treat
 * the guest's ordinary write as an error). Leaving WP mode gives back W
 * everywhere the log took it, also after a first write split the leaf. */
static void test_wp_range_inside_large_leaf(void **s)
{
	(void)s;
	vmem_ept *e = mk(false);
	vmem_dirty *d;
	bool handled;
	unsigned lvl;
	assert_int_equal(vmem_dirty_new(NULL, e, 0x1000, 10 * 4096, &d), VMEM_OK);
	vmem_ept_flush fl;
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, &fl), VMEM_OK);
	/* The 2M leaf's translations changed size (SDM 29.4.3.1): all of it is named. */
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	assert_true(fl.start == 0 && fl.end >= M2);
	assert_false(*leaf_of(e, 0x1000, &lvl) & VMEM_EPT_W);   /* tracked: armed */
	assert_false(*leaf_of(e, 0xa000, &lvl) & VMEM_EPT_W);
	assert_true(*leaf_of(e, 0x0000, &lvl) & VMEM_EPT_W);    /* not tracked */
	assert_true(*leaf_of(e, 0xb000, &lvl) & VMEM_EPT_W);
	assert_true(*leaf_of(e, 0x100000, &lvl) & VMEM_EPT_W);
	assert_int_equal(vmem_dirty_wp_fault(d, 0x2000, &handled, NULL), VMEM_OK);
	assert_true(handled);
	assert_true(*leaf_of(e, 0x100000, &lvl) & VMEM_EPT_W);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
	for (uint64_t g = 0; g < M2; g += 4096)
		assert_true(*leaf_of(e, g, &lvl) & VMEM_EPT_W);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* A map while logging (allowed between harvests: dirty.h forbids table
 * changes only during one) keeps the 4K granularity logging started with.
 * A 2M leaf's D flag says only that some byte of its 2 MiB was written
 * (SDM 29.3.5), and the PML logs a page only when D goes 0 -> 1 (SDM
 * 29.3.6): a second page written under the same leaf would never be logged.
 * Here the tracked range starts at page 1 and a 2M-aligned map of 0..2M
 * is made while EPT_D and PML logging are on: the pages written, 4 and
 * 0x1ff, must be reported as exactly those pages. */
static void test_map_while_logging(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_EPT_D; m <= VMEM_DIRTY_PML; m++) {
		struct logged lg;
		unsigned lvl;
		logged_start(&lg, 0x1000, 2 * M2 - 0x1000, m);
		vmem_ept *e = lg.e;
		vmem_pml *pml = &lg.pml;
		assert_int_equal(vmem_ept_unmap(e, 0, M2, NULL), VMEM_OK);
		assert_int_equal(vmem_ept_map(e, 0, 0, M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		uint64_t *l = leaf_of(e, 0x5000, &lvl);
		assert_int_equal(lvl, 1);
		*l |= VMEM_EPT_A | VMEM_EPT_D;
		if (m == VMEM_DIRTY_PML)
			assert_true(vmem_pml_log(pml, 0x5000));
		l = leaf_of(e, 0x200000 - 0x1000, &lvl);
		assert_int_equal(lvl, 1);
		if (!(*l & VMEM_EPT_D) && m == VMEM_DIRTY_PML)
			assert_true(vmem_pml_log(pml, 0x1ff000));
		*l |= VMEM_EPT_A | VMEM_EPT_D;
		assert_int_equal(vmem_dirty_harvest(lg.d, lg.bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES - 1; i++)
			assert_int_equal(bit(lg.bm, i), i == 4 || i == 0x1fe);
		logged_end(&lg);
	}
}

/* A range the EPT cannot translate (a 4-level EPT maps GPAs below 2^48,
 * SDM 29.3.2) is refused: else WP mode would start with nothing armed and
 * the in-reach page 2^48 - 4K would be written unseen. */
static void test_range_beyond_ept(void **s)
{
	(void)s;
	vmem_ept *e = mk(false);
	vmem_dirty *d = NULL;
	const uint64_t top = 1ull << 48;
	assert_int_equal(vmem_ept_map(e, top - 4096, 0, 4096, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_new(NULL, e, top - 4096, 8192, &d), VMEM_E_RANGE);
	assert_null(d);
	assert_int_equal(vmem_dirty_new(NULL, e, top, 4096, &d), VMEM_E_RANGE);
	assert_int_equal(vmem_dirty_new(NULL, e, top - 4096, 4096, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, NULL), VMEM_OK);
	unsigned lvl;
	assert_false(*leaf_of(e, top - 4096, &lvl) & VMEM_EPT_W);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* vmem_dirty_wp_fault says "handled" (and makes the page writable) only
 * for this log's own write protection (dirty.h). The VMM may change a
 * page's rights between harvests (only a harvest excludes table changes):
 * a page it made read-only stays read-only, whether it was still armed
 * (page 6) or opened by a first write before (page 5); its write
 * violations are the VMM's. */
static void test_wp_vmm_protect_wins(void **s)
{
	(void)s;
	vmem_ept *e = mk(false);
	vmem_dirty *d;
	uint64_t bm[NPAGES / 64];
	bool handled;
	unsigned lvl;
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_wp_fault(d, 0x5000, &handled, NULL), VMEM_OK);
	assert_true(handled);
	assert_int_equal(vmem_ept_protect(e, 0x5000, 2 * 4096, VMEM_EPT_R, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
	assert_true(bit(bm, 5));
	for (uint64_t g = 0x5000; g <= 0x6000; g += 0x1000) {
		assert_int_equal(vmem_dirty_wp_fault(d, g, &handled, NULL), VMEM_OK);
		assert_false(handled);
		assert_false(*leaf_of(e, g, &lvl) & VMEM_EPT_W);
	}
	/* Leaving WP mode gives back only what the log took. */
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
	assert_false(*leaf_of(e, 0x5000, &lvl) & VMEM_EPT_W);
	assert_false(*leaf_of(e, 0x6000, &lvl) & VMEM_EPT_W);
	assert_true(*leaf_of(e, 0x7000, &lvl) & VMEM_EPT_W);
	vmem_dirty_harvest(d, bm, NULL);
	assert_int_equal(bm[0], 0);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* The pml argument belongs to PML mode only: EPT_D mode must not touch a
 * log it was handed (here a vCPU's log holding 11 entries, 501..511, that
 * another range's PML log has yet to drain: SDM 29.3.6, valid entries are
 * index+1..511). */
static void test_ept_d_leaves_pml_alone(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	vmem_dirty *d;
	uint64_t log[512] = { 0 };
	vmem_pml pml = { log, 500 };
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 2 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_EPT_D, &pml, NULL), VMEM_OK);
	assert_int_equal(pml.index, 500);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, &pml, NULL), VMEM_OK);
	assert_int_equal(pml.index, 500);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* A first write under a 1G leaf splits only what 4K granularity needs:
 * the 1G leaf into 2M leaves, and the written page's 2M leaf into 4K ones
 * (the other 511 2M leaves stay armed, SDM 29.3.2 Table 29-2/29-4 formats
 * carry the same rights and memory type): 2 table pages, not 513. */
static void test_wp_1g_split_on_write(void **s)
{
	(void)s;
	vmem_ept_config cfg = { .levels = 4, .ad = false, .gbpages = true, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e;
	vmem_dirty *d;
	vmem_ept_stats st0, st;
	bool handled;
	unsigned lvl;
	const uint64_t G1 = 1ull << 30;
	assert_int_equal(vmem_ept_new(NULL, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 0, G1), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, 0, G1, RW | VMEM_EPT_X, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_get_stats(e, &st0);
	assert_int_equal(st0.leaves_1g, 1);
	assert_int_equal(vmem_dirty_new(NULL, e, 0, G1, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_WP, NULL, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_wp_fault(d, 0x12345678, &handled, NULL), VMEM_OK);
	assert_true(handled);
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_1g, 0);
	assert_int_equal(st.leaves_2m, 511);
	assert_int_equal(st.leaves_4k, 512);
	assert_int_equal(st.table_pages, st0.table_pages + 2);
	uint64_t *l = leaf_of(e, 0x12345000, &lvl);
	assert_int_equal(lvl, 1);
	assert_int_equal(*l & (VMEM_EPT_PERM_MASK | VMEM_EPT_MT_MASK), RW | VMEM_EPT_X | (6u << 3));
	assert_int_equal(*leaf_of(e, 0x12344000, &lvl) & VMEM_EPT_W, 0);
	assert_int_equal(*leaf_of(e, 0x40000000 - 4096, &lvl) & VMEM_EPT_W, 0);
	assert_int_equal(lvl, 2);
	vmem_dirty_free(d);
	for (uint64_t g = 0; g < G1; g += M2)
		assert_true(*leaf_of(e, g, &lvl) & VMEM_EPT_W);
	vmem_ept_free(e);
}

/* Through the library's walk: a read-only page is never dirty. A write to
 * it is an EPT violation before any flag is set (SDM 29.3.5: flags are set
 * only for an access the translation allows); so is a guest paging-structure
 * access, a write under EPT A/D (29.3.3.2). A read sets A only. A page whose
 * guest paging-structure entry is read under A/D is dirty (29.3.5). */
static void test_walk_read_only_never_dirty(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_EPT_D; m <= VMEM_DIRTY_PML; m++) {
		vmem_ept *e = mk(true);
		uint64_t bm[NPAGES / 64], log[512];
		vmem_pml pml = { log, 0 };
		assert_int_equal(vmem_ept_protect(e, 0x9000, 4096, VMEM_EPT_R, NULL), VMEM_OK);
		vmem_dirty *d = start(e, 0, 2 * M2, m, &pml);
		vmem_gmem *host;
		vmem_ept_mmu *em = walker(e, m == VMEM_DIRTY_PML ? &pml : NULL, &host);
		vmem_ept_access acc = { 0 };
		vmem_ept_result r;
		static const struct { uint64_t gpa; unsigned type, status; } acc_tab[] = {
			{ 0x9008, VMEM_EPT_WRITE, VMEM_EPT_VIOLATION },
			{ 0x9010, VMEM_EPT_PAGING, VMEM_EPT_VIOLATION },
			{ 0x9018, VMEM_EPT_READ, VMEM_EPT_OK },
			{ 0xa020, VMEM_EPT_READ, VMEM_EPT_OK },
			{ 0xb028, VMEM_EPT_PAGING, VMEM_EPT_OK },
		};
		for (unsigned k = 0; k < sizeof(acc_tab) / sizeof(acc_tab[0]); k++) {
			acc.type = (uint8_t)acc_tab[k].type;
			assert_int_equal(vmem_ept_walk(em, host, acc_tab[k].gpa, &acc, 0, &r, NULL), VMEM_OK);
			assert_int_equal(r.status, acc_tab[k].status);
		}
		if (m == VMEM_DIRTY_PML) {
			assert_int_equal(pml.index, 510);
			assert_int_equal(log[511], 0xb000); /* 4K aligned: bits 11:0 clear */
		}
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), i == 0xb);
		vmem_ept_mmu_free(em);
		vmem_gmem_free(host);
		vmem_dirty_free(d);
		vmem_ept_free(e);
	}
}

/* A vCPU's write violation on a page WP mode had armed can reach the VMM
 * after the log left WP mode (another thread switched it; the page is
 * writable again): a stale translation's fault, the log's own write
 * protection (SDM 29.4.3.1: rights added need no flush, a stale entry
 * faults again). "Handled": retry, or the VMM would take the guest's store
 * for a genuine violation. A read-only page stays a genuine one. */
static void test_wp_fault_after_switch(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_OFF; m <= VMEM_DIRTY_PML; m++) {
		if (m == VMEM_DIRTY_WP)
			continue;
		vmem_ept *e = mk(true);
		uint64_t log[512];
		vmem_pml pml = { log, 0 };
		bool handled;
		unsigned lvl;
		assert_int_equal(vmem_ept_protect(e, 0x9000, 4096, VMEM_EPT_R, NULL), VMEM_OK);
		vmem_dirty *d = start(e, 0, 2 * M2, VMEM_DIRTY_WP, NULL);
		assert_int_equal(vmem_dirty_set_mode(d, (vmem_dirty_mode)m, &pml, NULL), VMEM_OK);
		assert_true(*leaf_of(e, 0x3000, &lvl) & VMEM_EPT_W);
		assert_int_equal(vmem_dirty_wp_fault(d, 0x3000, &handled, NULL), VMEM_OK);
		assert_true(handled);
		assert_int_equal(vmem_dirty_wp_fault(d, 0x9000, &handled, NULL), VMEM_OK);
		assert_false(handled);
		vmem_dirty_free(d);
		vmem_ept_free(e);
	}
}

/* A leaf that goes takes its D flag (EPT_D mode's record of a write, SDM
 * 29.3.5) with it: the log records the page at that moment (dirty.h: a
 * write since the last harvest is reported by the next one). In PML mode
 * nothing goes with it: the processor wrote the page's GPA to the PML when
 * it set D (SDM 29.3.6), and the drain reads GPAs, not leaves. Worked by
 * hand, range [0, 4M) of 4K leaves (logging split the two 2M leaves):
 *   writes (the EPT walk)  0x10, 0x11, 0x12, 0x205, 0x3ff; a read of 0x13
 *   PML mode only          drain after the write of 0x10 (its GPA is in the
 *                          bitmap; 0x11, 0x12, 0x205, 0x3ff stay in the PML)
 *   map 0x10 elsewhere     replaced, D set          -> 0x10
 *   unmap 0x11             removed, D set           -> 0x11
 *   map 0x13 elsewhere     replaced, D clear (read) -> not reported
 *   unmap [2M, 4M)         its table goes whole, with 0x205 and 0x3ff -> both
 *   0x12 stays             its D or PML entry       -> 0x12
 * Harvest: exactly {0x10, 0x11, 0x12, 0x205, 0x3ff}; the new leaf of 0x10
 * is clean (D 0), so a write to it is reported by the next harvest, alone. */
static void test_leaf_gone_keeps_dirty(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_EPT_D; m <= VMEM_DIRTY_PML; m++) {
		struct logged lg;
		unsigned lvl;
		logged_start(&lg, 0, 2 * M2, m);
		vmem_ept *e = lg.e;
		vmem_dirty *d = lg.d;
		uint64_t *bm = lg.bm;
		vmem_gmem *host;
		vmem_ept_mmu *em = walker(e, m == VMEM_DIRTY_PML ? &lg.pml : NULL, &host);
		vmem_ept_access wr = { 0 }, rd = { 0 };
		vmem_ept_result r;
		wr.type = VMEM_EPT_WRITE;
		rd.type = VMEM_EPT_READ;
		static const uint64_t written[] = { 0x10, 0x11, 0x12, 0x205, 0x3ff };
		for (unsigned k = 0; k < 5; k++) {
			assert_int_equal(vmem_ept_walk(em, host, written[k] << 12 | 0x40, &wr, 0, &r, NULL), VMEM_OK);
			assert_int_equal(r.status, VMEM_EPT_OK);
			if (k == 0)
				vmem_dirty_pml_drain(d);
		}
		assert_int_equal(vmem_ept_walk(em, host, 0x13000, &rd, 0, &r, NULL), VMEM_OK);
		assert_int_equal(r.status, VMEM_EPT_OK);
		if (m == VMEM_DIRTY_PML)
			assert_int_equal(lg.pml.index, 511 - 4);
		assert_int_equal(vmem_ept_map(e, 0x10000, 0x800000, 4096, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		assert_int_equal(vmem_ept_unmap(e, 0x11000, 4096, NULL), VMEM_OK);
		assert_int_equal(vmem_ept_map(e, 0x13000, 0x801000, 4096, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		assert_int_equal(vmem_ept_unmap(e, M2, M2, NULL), VMEM_OK);
		assert_false(*leaf_of(e, 0x10000, &lvl) & VMEM_EPT_D);
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), i == 0x10 || i == 0x11 || i == 0x12 || i == 0x205 || i == 0x3ff);
		assert_int_equal(vmem_ept_walk(em, host, 0x10008, &wr, 0, &r, NULL), VMEM_OK);
		assert_int_equal(r.status, VMEM_EPT_OK);
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), i == 0x10);
		vmem_ept_mmu_free(em);
		vmem_gmem_free(host);
		logged_end(&lg);
	}
}

/* The processor's write under WP logging: a leaf without W is an EPT
 * violation, which the VMM hands to the log (here it must be the log's:
 * handled); with W the write just happens, unseen by the log. */
static void wp_write(vmem_ept *e, vmem_dirty *d, uint64_t gpa)
{
	unsigned lvl;
	bool handled;
	if (*leaf_of(e, gpa, &lvl) & VMEM_EPT_W)
		return;
	assert_int_equal(vmem_dirty_wp_fault(d, gpa, &handled, NULL), VMEM_OK);
	assert_true(handled);
	assert_true(*leaf_of(e, gpa, &lvl) & VMEM_EPT_W);
}

/* WP mode: a page of the range the VMM makes writable between harvests
 * (a map, or a protect that adds W) is armed as the log arms its range
 * (dirty.h): W withheld, bit 52 set, so that its first write faults and is
 * logged (SDM 29.3.3.2: a write without W is an EPT violation). Range
 * [0, 8M): [0, 4M) mapped (armed when logging started), [4M, 8M) a hole.
 *   unmap 0x20, map it again RW  -> armed
 *   map 0x400 (4M: was a hole)   -> armed
 *   protect 0x21 R, then RW      -> armed (the R is the VMM's, the RW too)
 *   protect 0x22 RW (armed)      -> still armed
 *   write each                   -> a fault each, logged
 *   write 0x30                   -> a fault (armed since logging started)
 * Harvest: exactly {0x20, 0x21, 0x22, 0x30, 0x400}. Leaving WP mode gives W
 * back to all of them. */
static void test_wp_map_armed(void **s)
{
	(void)s;
	vmem_ept *e = mk(false);
	uint64_t bm[2 * NPAGES / 64], leaf;
	unsigned lvl;
	vmem_dirty *d = start(e, 0, 4 * M2, VMEM_DIRTY_WP, NULL);
	assert_int_equal(vmem_ept_unmap(e, 0x20000, 4096, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0x20000, 0x20000, 4096, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0x400000, 0x400000, 4096, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_protect(e, 0x21000, 4096, VMEM_EPT_R, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_protect(e, 0x21000, 4096, RW, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_protect(e, 0x22000, 4096, RW, NULL), VMEM_OK);
	static const uint64_t pages[] = { 0x20, 0x21, 0x22, 0x30, 0x400 };
	for (unsigned k = 0; k < 5; k++) {
		assert_int_equal(vmem_ept_lookup(e, pages[k] << 12, &leaf, &lvl), VMEM_OK);
		assert_int_equal(leaf & (RW | (1ull << 52)), VMEM_EPT_R | (1ull << 52));
		wp_write(e, d, pages[k] << 12);
	}
	assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < 2 * NPAGES; i++)
		assert_int_equal(bit(bm, i), i == 0x20 || i == 0x21 || i == 0x22 || i == 0x30 || i == 0x400);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
	for (unsigned k = 0; k < 5; k++) {
		assert_int_equal(vmem_ept_lookup(e, pages[k] << 12, &leaf, &lvl), VMEM_OK);
		assert_int_equal(leaf & (RW | (1ull << 52)), RW);
	}
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* All or nothing with the logs watching: a map that needs a table (the
 * page 0x200 of an unmapped 2M) and replaces a written page (0x1ff, D set
 * in EPT_D mode, armed in WP mode), failing at each allocation, leaves
 * the leaves, the stats and the log as they were and leaks nothing; when
 * it succeeds, the EPT_D log has 0x1ff (its D went with the old leaf) and
 * the WP log finds both pages armed. */
static void test_leaf_hook_fail_alloc(void **s)
{
	(void)s;
	for (unsigned m = VMEM_DIRTY_WP; m <= VMEM_DIRTY_EPT_D; m++) {
		failalloc_init(&fa);
		vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = true, .eptp_mt = VMEM_MT_WB };
		vmem_ept *e;
		vmem_dirty *d;
		uint64_t bm[NPAGES / 64], leaf0, leaf;
		unsigned lvl;
		assert_int_equal(vmem_ept_new(&fa.a, &cfg, &e), VMEM_OK);
		assert_int_equal(vmem_ept_grant(e, 0, 1ull << 30), VMEM_OK);
		assert_int_equal(vmem_ept_map(e, 0, 0, M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		assert_int_equal(vmem_dirty_new(&fa.a, e, 0, 2 * M2, &d), VMEM_OK);
		assert_int_equal(vmem_dirty_set_mode(d, (vmem_dirty_mode)m, NULL, NULL), VMEM_OK);
		if (m == VMEM_DIRTY_EPT_D)
			*leaf_of(e, 0x1ff000, &lvl) |= VMEM_EPT_A | VMEM_EPT_D; /* the processor's write */
		assert_int_equal(vmem_ept_lookup(e, 0x1ff000, &leaf0, &lvl), VMEM_OK);
		vmem_ept_stats before, st;
		vmem_ept_get_stats(e, &before);
		long live = fa.live, k;
		for (k = 0;; k++) {
			failalloc_fail_in(&fa, k);
			vmem_err err = vmem_ept_map(e, 0x1ff000, 0x800000, 2 * 4096, RW, VMEM_MT_WB, false, NULL);
			if (err == VMEM_OK)
				break;
			assert_int_equal(err, VMEM_E_NOMEM);
			vmem_ept_get_stats(e, &st);
			assert_memory_equal(&st, &before, sizeof(st));
			assert_int_equal(vmem_ept_lookup(e, 0x1ff000, &leaf, &lvl), VMEM_OK);
			assert_int_equal(leaf, leaf0);
			assert_int_equal(vmem_ept_lookup(e, 0x200000, &leaf, &lvl), VMEM_E_NOENT);
			assert_int_equal(fa.live, live);
			assert_true(k < 16);
		}
		failalloc_never(&fa);
		assert_true(k >= 1);
		for (uint64_t g = 0x1ff000; g <= 0x200000; g += 0x1000) {
			assert_int_equal(vmem_ept_lookup(e, g, &leaf, &lvl), VMEM_OK);
			assert_int_equal(leaf & 0x000ffffffffff000ull, 0x800000 + g - 0x1ff000);
			if (m == VMEM_DIRTY_WP)
				assert_int_equal(leaf & (RW | (1ull << 52)), VMEM_EPT_R | (1ull << 52));
		}
		assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
		for (unsigned i = 0; i < NPAGES; i++)
			assert_int_equal(bit(bm, i), m == VMEM_DIRTY_EPT_D && i == 0x1ff);
		vmem_dirty_free(d);
		vmem_ept_free(e);
		assert_int_equal(fa.live, 0);
		assert_int_equal(fa.bad_frees, 0);
	}
}

/* A vCPU's write through the EPT walk em (logging into its PML pml, SDM
 * 29.3.6); on the log-full exit (the access not done) the VMM drains that
 * PML and the access is retried. Counts the exits in *fulls. */
static void vcpu_write(vmem_ept_mmu *em, vmem_gmem *host, vmem_dirty *d, vmem_pml *pml, uint64_t gpa,
		       unsigned *fulls)
{
	vmem_ept_access wr = { 0 };
	vmem_ept_result r;
	wr.type = VMEM_EPT_WRITE;
	assert_int_equal(vmem_ept_walk(em, host, gpa, &wr, 0, &r, NULL), VMEM_OK);
	if (r.status == VMEM_EPT_PML_FULL) {
		++*fulls;
		vmem_dirty_pml_drain_from(d, pml);
		assert_int_equal(vmem_ept_walk(em, host, gpa, &wr, 0, &r, NULL), VMEM_OK);
	}
	assert_int_equal(r.status, VMEM_EPT_OK);
}

/* A vCPU's PML logs every page whose D flag it sets (SDM 29.3.6), in any
 * log's range: two logs of one EPT, d1 of [0, 2M) and d2 of [2M, 4M), in
 * PML mode with the one vCPU's PML. Worked by hand (entries from 511 down):
 *   d1 PML; write page 6           PML: 0x6000 (index 510)
 *   d2 PML                         empties the PML (dirty.h): 0x6000 must go
 *                                  to d1, not be dropped; index 511
 *   write pages 5, 0x205           PML: 0x5000, 0x205000 (index 509)
 *   harvest d1 (drains the PML)    {5, 6}; must not drop 0x205000 (d2's)
 *   harvest d2                     {0x205 - 0x200 = 5}
 * The harvests cleared D on the pages they took: a write of 0x205 is
 * logged again (index 510 after the drain) and d2 reports it, d1 not. */
static void test_pml_shared_by_two_logs(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	uint64_t bm[NPAGES / 64], log[512];
	vmem_pml pml = { log, 0 };
	vmem_gmem *host;
	unsigned fulls = 0;
	assert_int_equal(vmem_ept_split(e, 0, 2 * M2, NULL), VMEM_OK); /* every table there for the walker */
	vmem_ept_mmu *em = walker(e, &pml, &host);
	vmem_dirty *d1 = start(e, 0, M2, VMEM_DIRTY_PML, &pml);
	vcpu_write(em, host, d1, &pml, 0x6000, &fulls);
	assert_int_equal(pml.index, 510);
	vmem_dirty *d2 = start(e, M2, M2, VMEM_DIRTY_PML, &pml);
	assert_int_equal(pml.index, 511);
	vcpu_write(em, host, d1, &pml, 0x5000, &fulls);
	vcpu_write(em, host, d1, &pml, 0x205000, &fulls);
	assert_int_equal(pml.index, 509);
	assert_int_equal(vmem_dirty_harvest(d1, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES / 2; i++)
		assert_int_equal(bit(bm, i), i == 5 || i == 6);
	assert_int_equal(vmem_dirty_harvest(d2, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES / 2; i++)
		assert_int_equal(bit(bm, i), i == 5);
	vcpu_write(em, host, d1, &pml, 0x205000, &fulls);
	assert_int_equal(pml.index, 510);
	assert_int_equal(vmem_dirty_harvest(d1, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES / 2; i++)
		assert_false(bit(bm, i));
	assert_int_equal(vmem_dirty_harvest(d2, bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES / 2; i++)
		assert_int_equal(bit(bm, i), i == 5);
	assert_int_equal(fulls, 0);
	vmem_ept_mmu_free(em);
	vmem_gmem_free(host);
	vmem_dirty_free(d2);
	vmem_dirty_free(d1);
	vmem_ept_free(e);
}

/* A guest's vCPUs each log into their own PML (vmem_ept_mmu_set_pml on
 * each one's EPT context) feeding one log of [0, 4M), given both
 * (vmem_dirty_set_mode_pml). Worked by hand (SDM 29.3.6: a GPA is logged
 * when the access sets its D flag, 0 -> 1; entries from index 511 down;
 * an index outside 0..511 when an entry is due is the log-full exit,
 * before the access):
 *   vCPU 0 writes pages 0..99     p0: 100 entries, index 411
 *   vCPU 1 writes pages 50..649   50..99 are dirty already, not logged;
 *                                 100..611 fill p1 (512 entries); the write
 *                                 of 612 is its log-full exit: drain_from(p1)
 *                                 (p0 untouched: index 411); 612..649 are
 *                                 38 entries, index 473
 *   harvest                       drains p0 and p1: pages 0..649 exactly;
 *                                 both indexes 511
 *   vCPU 1 writes page 0          D cleared by the harvest: p1 index 510
 *   vCPU 0 writes page 700        p0 index 510
 *   set_mode(OFF)                 drains both: the harvest reports {0, 700} */
static void test_pml_two_vcpus(void **s)
{
	(void)s;
	struct logged lg;
	uint64_t log1[512];
	vmem_pml p1 = { log1, 0 };
	vmem_pml *const pmls[2] = { &lg.pml, &p1 };
	vmem_gmem *host;
	vmem_ept_mmu *em1;
	unsigned fulls = 0;
	logged_start(&lg, 0, 2 * M2, VMEM_DIRTY_OFF);
	vmem_ept *e = lg.e;
	vmem_dirty *d = lg.d;
	assert_int_equal(vmem_dirty_set_mode_pml(d, pmls, 2, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_get_mode(d), VMEM_DIRTY_PML);
	assert_int_equal(lg.pml.index, 511);
	assert_int_equal(p1.index, 511);
	vmem_ept_mmu *em0 = walker(e, &lg.pml, &host);
	assert_int_equal(vmem_ept_mmu_new(NULL, vmem_ept_eptp(e), NULL, &em1), VMEM_OK);
	vmem_ept_mmu_set_pml(em1, &p1);
	for (uint64_t p = 0; p < 100; p++)
		vcpu_write(em0, host, d, &lg.pml, p << 12, &fulls);
	assert_int_equal(lg.pml.index, 411);
	for (uint64_t p = 50; p < 650; p++) {
		vcpu_write(em1, host, d, &p1, p << 12 | 0x18, &fulls);
		if (p == 611)
			assert_int_equal(fulls, 0);
	}
	assert_int_equal(fulls, 1);
	assert_int_equal(lg.pml.index, 411);
	assert_int_equal(p1.index, 473);
	assert_int_equal(vmem_dirty_harvest(d, lg.bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(bit(lg.bm, i), i < 650);
	assert_int_equal(lg.pml.index, 511);
	assert_int_equal(p1.index, 511);
	vcpu_write(em1, host, d, &p1, 0, &fulls);
	vcpu_write(em0, host, d, &lg.pml, 700 << 12, &fulls);
	assert_int_equal(p1.index, 510);
	assert_int_equal(lg.pml.index, 510);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_harvest(d, lg.bm, NULL), VMEM_OK);
	for (unsigned i = 0; i < NPAGES; i++)
		assert_int_equal(bit(lg.bm, i), i == 0 || i == 700);
	assert_int_equal(fulls, 1);
	vmem_ept_mmu_free(em1);
	vmem_ept_mmu_free(em0);
	vmem_gmem_free(host);
	logged_end(&lg);
}

/* Logs of one EPT whose ranges share a page must not share a flag of its
 * leaf (dirty.h): each leaf has one W and one D. Worked by hand, logs d1
 * of [0, 2M) and d2 of [1M, 3M) (pages 0x100..0x1ff in both):
 *   WP + WP        one W: the page's first write is one EPT violation
 *                  (SDM 29.3.3.2), handed to one log, which gives W back;
 *                  the other log never sees a fault for it
 *   EPT_D + EPT_D  the processor sets D only when it is clear (SDM 29.3.5):
 *                  d1's harvest clears it and reports the page; d2's finds
 *                  D clear and the write is lost to it
 *   EPT_D + PML    the PML log's harvest clears D to log the next write
 *                  (SDM 29.3.6), and entering PML clears D: the EPT_D
 *                  log loses the write either way
 * So those pairs are refused (VMEM_E_OVERLAP, the mode unchanged), in
 * either order; PML + PML (each write is in the vCPU's PML, which fills
 * every log, dirty.h) and WP with EPT_D or PML (W and D apart) overlap
 * fine; adjacent logs ([2M, 4M) beside d1) share no leaf: any pair. */
static void test_overlapping_logs_share_no_flag(void **s)
{
	(void)s;
	static const bool clash[4][4] = {
		[VMEM_DIRTY_WP] = { [VMEM_DIRTY_WP] = true },
		[VMEM_DIRTY_EPT_D] = { [VMEM_DIRTY_EPT_D] = true, [VMEM_DIRTY_PML] = true },
		[VMEM_DIRTY_PML] = { [VMEM_DIRTY_EPT_D] = true },
	};
	uint64_t log[512], bm[NPAGES / 64];
	vmem_pml pml = { log, 511 };
	for (unsigned m1 = VMEM_DIRTY_WP; m1 <= VMEM_DIRTY_PML; m1++)
		for (unsigned m2 = VMEM_DIRTY_WP; m2 <= VMEM_DIRTY_PML; m2++) {
			vmem_ept *e = mk(true);
			vmem_dirty *d1 = start(e, 0, M2, m1, &pml), *d2;
			vmem_dirty_free(start(e, M2, M2, m2, &pml)); /* adjacent to d1 */
			assert_int_equal(vmem_dirty_new(NULL, e, M2 / 2, M2, &d2), VMEM_OK);
			assert_int_equal(vmem_dirty_set_mode(d2, (vmem_dirty_mode)m2, &pml, NULL),
					 clash[m1][m2] ? VMEM_E_OVERLAP : VMEM_OK);
			assert_int_equal(vmem_dirty_get_mode(d2), clash[m1][m2] ? VMEM_DIRTY_OFF : m2);
			/* The other order: d2 on first (when it could be), then d1. */
			if (clash[m1][m2]) {
				assert_int_equal(vmem_dirty_set_mode(d1, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
				assert_int_equal(vmem_dirty_set_mode(d2, (vmem_dirty_mode)m2, &pml, NULL), VMEM_OK);
				assert_int_equal(vmem_dirty_set_mode(d1, (vmem_dirty_mode)m1, &pml, NULL), VMEM_E_OVERLAP);
				assert_int_equal(vmem_dirty_get_mode(d1), VMEM_DIRTY_OFF);
			}
			if (m1 == VMEM_DIRTY_EPT_D && m2 == VMEM_DIRTY_EPT_D) {
				/* Only d2 is on: a write of page 0x180 is d2's (its bit 0x80). */
				unsigned lvl;
				*leaf_of(e, 0x180000, &lvl) |= VMEM_EPT_A | VMEM_EPT_D; /* the processor's write */
				assert_int_equal(vmem_dirty_harvest(d1, bm, NULL), VMEM_OK);
				assert_int_equal(vmem_dirty_harvest(d2, bm, NULL), VMEM_OK);
				for (unsigned i = 0; i < NPAGES / 2; i++)
					assert_int_equal(bit(bm, i), i == 0x80);
			}
			vmem_dirty_free(d2);
			vmem_dirty_free(d1);
			vmem_ept_free(e);
		}
}

/* A switch between logging modes while a vCPU writes (set_mode may run
 * beside the guest, test_wp_fault_after_switch) keeps logging throughout:
 * "pages dirtied so far stay in the bitmap" (dirty.h), and a write is
 * reported by some harvest. The vCPU writes as the processor does: a
 * leaf without W is an EPT violation (SDM 29.3.3.2) that the VMM hands to
 * vmem_dirty_wp_fault before the write is retried; with W the write sets
 * D if it is clear (SDM 29.3.5, EPT A/D on). Worked by hand, the switch
 * that loses a write without this: EPT_D -> EPT_D collects D into the
 * bitmap, then clears D to start the new mode; a write between the two
 * passes sets D after the collect and loses it to the clear. Likewise
 * EPT_D -> WP (a write before its page is armed, after the collect),
 * WP -> EPT_D and WP -> WP (a page given W back by leaving WP is written
 * before the new mode sees it). Each page of [0, 4M) is written once,
 * one write per switch, while the log cycles EPT_D, EPT_D, WP, WP: the
 * harvests together (and the one after the last write) report all 1024. */
/* Pages apart that the writer writes: all, but under Valgrind (slow) a few. */
#define SWITCH_STEP (RUNNING_ON_VALGRIND ? 64u : 1u)
struct switcher {
	vmem_ept *e;
	vmem_dirty *d;
	unsigned switches;
	sem_t tick;  /* posted at each switch, for a vCPU that stopped waiting by yielding */
	int done, bad;
};

static void *switch_writer(void *arg)
{
	struct switcher *w = arg;
	for (unsigned p = 0; p < NPAGES && !w->bad; p += SWITCH_STEP) {
		unsigned lvl, seen = __atomic_load_n(&w->switches, __ATOMIC_SEQ_CST);
		/* One write per switch, at any point of the next (yielding: a
		 * preemption lands it there; under Valgrind, which runs one thread
		 * at a time, the writer blocks at once). */
		for (unsigned n = 0; __atomic_load_n(&w->switches, __ATOMIC_SEQ_CST) == seen; n++)
			if (n < (RUNNING_ON_VALGRIND ? 0u : 64u))
				sched_yield();
			else
				sem_wait(&w->tick);
		uint64_t *l = leaf_of(w->e, (uint64_t)p << 12, &lvl);
		for (;;) {
			uint64_t v = __atomic_load_n(l, __ATOMIC_SEQ_CST);
			bool handled;
			if (!(v & VMEM_EPT_W)) {
				if (vmem_dirty_wp_fault(w->d, (uint64_t)p << 12, &handled, NULL) || !handled)
					__atomic_store_n(&w->bad, 1, __ATOMIC_SEQ_CST);
				if (w->bad)
					break;
				continue;
			}
			if ((v & VMEM_EPT_D) ||
			    __atomic_compare_exchange_n(l, &v, v | VMEM_EPT_A | VMEM_EPT_D, false, __ATOMIC_SEQ_CST,
							__ATOMIC_SEQ_CST))
				break;
		}
	}
	__atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void test_race_mode_switch(void **s)
{
	(void)s;
	static const vmem_dirty_mode cycle[4] = { VMEM_DIRTY_EPT_D, VMEM_DIRTY_EPT_D, VMEM_DIRTY_WP, VMEM_DIRTY_WP };
	struct switcher w = { 0 };
	uint64_t bm[NPAGES / 64], all[NPAGES / 64] = { 0 };
	w.e = mk(true);
	assert_int_equal(vmem_ept_split(w.e, 0, 2 * M2, NULL), VMEM_OK); /* the writer's leaf pointers stay valid */
	w.d = start(w.e, 0, 2 * M2, VMEM_DIRTY_EPT_D, NULL);
	sem_init(&w.tick, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, switch_writer, &w);
	for (unsigned k = 1; !__atomic_load_n(&w.done, __ATOMIC_SEQ_CST); k++) {
		assert_int_equal(vmem_dirty_set_mode(w.d, cycle[k % 4], NULL, NULL), VMEM_OK);
		__atomic_fetch_add(&w.switches, 1, __ATOMIC_SEQ_CST);
		sem_post(&w.tick);
		if (k % 16 == 0) {
			assert_int_equal(vmem_dirty_harvest(w.d, bm, NULL), VMEM_OK);
			for (unsigned i = 0; i < NPAGES / 64; i++)
				all[i] |= bm[i];
		}
	}
	pthread_join(t, NULL);
	sem_destroy(&w.tick);
	assert_int_equal(w.bad, 0);
	assert_int_equal(vmem_dirty_harvest(w.d, bm, NULL), VMEM_OK);
	unsigned lost = 0;
	for (unsigned i = 0; i < NPAGES; i += SWITCH_STEP)
		lost += !bit(all, i) && !bit(bm, i);
	assert_int_equal(lost, 0);
	vmem_dirty_free(w.d);
	vmem_ept_free(w.e);
}

/* set_mode and a WP fault of the same log may run at once (a vCPU's
 * violation while another thread switches the mode, test_wp_fault_after_
 * switch): both change the EPT's tables when a large leaf is armed, the
 * fault splitting it down to the written page (dirty.h) and set_mode
 * splitting the range for EPT_D mode (a large leaf's one D flag stands for
 * all its pages, SDM 29.3.5). Tables changed by two threads at once lose
 * one's change (a table installed over the other's, a leaf counted twice),
 * so the two must exclude each other. Worked by hand: [0, 4M) is two 2M
 * leaves, armed by WP mode; a vCPU writes pages 7 and 0x207 while the
 * log switches to EPT_D: afterwards the range is 1024 4K leaves, no 2M
 * leaf, under the root, one PDPT, one PD and two page tables (5 pages),
 * as after the switch alone; each round then maps [0, 4M) again, whole 2M
 * leaves once logging is off. */
#define FAULT_SPLIT_ROUNDS (RUNNING_ON_VALGRIND ? 50u : 3000u)
struct fault_split {
	vmem_ept *e;
	vmem_dirty *d;
	sem_t go, done; /* a round: the vCPU faults / has faulted */
	int stop, bad;
};

static void *fault_writer(void *arg)
{
	struct fault_split *f = arg;
	static const uint64_t page[2] = { 0x7000, 0x207000 };
	for (unsigned round = 1; round <= FAULT_SPLIT_ROUNDS; round++) {
		sem_wait(&f->go);
		if (__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST))
			break; /* the test stopped early */
		for (unsigned i = round % 41; i; i--) /* lands the fault anywhere in set_mode's split */
			__builtin_ia32_pause();
		for (unsigned k = 0; k < 2 && !f->bad; k++) {
			unsigned lvl;
			bool handled;
			while (!(__atomic_load_n(leaf_of(f->e, page[k], &lvl), __ATOMIC_SEQ_CST) & VMEM_EPT_W))
				if (vmem_dirty_wp_fault(f->d, page[k], &handled, NULL) || !handled) {
					__atomic_store_n(&f->bad, 1, __ATOMIC_SEQ_CST);
					break;
				}
		}
		sem_post(&f->done);
	}
	return NULL;
}

static void test_race_fault_split_set_mode(void **s)
{
	(void)s;
	struct fault_split f = { 0 };
	f.e = mk(true);
	assert_int_equal(vmem_dirty_new(NULL, f.e, 0, 2 * M2, &f.d), VMEM_OK);
	sem_init(&f.go, 0, 0);
	sem_init(&f.done, 0, 0);
	pthread_t t;
	pthread_create(&t, NULL, fault_writer, &f);
	unsigned round;
	for (round = 1; round <= FAULT_SPLIT_ROUNDS && !f.bad; round++) {
		vmem_ept_stats st;
		vmem_ept_get_stats(f.e, &st);
		if (st.leaves_2m != 2)
			break;
		assert_int_equal(vmem_dirty_set_mode(f.d, VMEM_DIRTY_WP, NULL, NULL), VMEM_OK);
		sem_post(&f.go);
		assert_int_equal(vmem_dirty_set_mode(f.d, VMEM_DIRTY_EPT_D, NULL, NULL), VMEM_OK);
		sem_wait(&f.done);
		vmem_ept_get_stats(f.e, &st);
		if (st.leaves_2m || st.leaves_4k != NPAGES || st.table_pages != 5)
			break;
		assert_int_equal(vmem_dirty_set_mode(f.d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
		assert_int_equal(vmem_ept_map(f.e, 0, 0, 2 * M2, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
		vmem_ept_flush_done(f.e);
	}
	if (round <= FAULT_SPLIT_ROUNDS) {
		__atomic_store_n(&f.stop, 1, __ATOMIC_SEQ_CST); /* the vCPU stops */
		sem_post(&f.go);
	}
	pthread_join(t, NULL);
	sem_destroy(&f.go);
	sem_destroy(&f.done);
	assert_int_equal(f.bad, 0);
	assert_int_equal(round, FAULT_SPLIT_ROUNDS + 1); /* the tables stayed whole every round */
	vmem_dirty_free(f.d);
	vmem_ept_free(f.e);
}

/* A WP log and a PML log over the same pages of one EPT (allowed: W and D
 * apart, dirty.h) harvested at the same time by two threads. A page
 * written since the last harvests (the WP log's fault gave it W back; the
 * processor's write set A and D and logged its GPA, SDM 29.3.6) is
 * re-armed by both: the WP harvest takes W again (so that the next write
 * is an EPT violation, 29.3.3.2), the PML harvest clears D (so that the
 * next write sets it and logs the page again: D is set only when clear,
 * 29.3.5). Worked by hand, after both harvests each such leaf must be
 * W = 0, armed, D = 0, whatever their order. A harvest that writes the
 * leaf whole from a value read before the other one's change puts the
 * other's flag back: W set and not armed (the WP log never sees a write
 * to the page again) or D set (the PML log never does). Each round writes
 * every page of [0, 16M) (4096 4K leaves) and harvests both logs at once
 * (released together by a barrier: blocking, also under Valgrind).
 * Likewise a WP fault beside the PML log's harvest: the WP log harvested
 * alone first (W taken, D still set), then one thread writes every page
 * again, each write a violation its fault opens (W back, not armed,
 * "now ... writable", dirty.h), while the other clears D: after both,
 * W = 1, not armed, D = 0. */
#define TWO_LOG_PAGES 4096u
#define TWO_LOG_ROUNDS (RUNNING_ON_VALGRIND ? 3u : 300u)
struct two_logs {
	vmem_dirty *d[2]; /* WP, PML */
	uint64_t bm[2][TWO_LOG_PAGES / 64];
	pthread_barrier_t start, end;
	int stop;
	unsigned ready; /* harvesters at the start line (2 per round) */
	bool faults;    /* the WP log's thread opens every page (its faults) instead of harvesting */
};

static void *two_log_harvester(void *arg)
{
	struct two_logs *t = ((struct two_logs **)arg)[0];
	unsigned k = (unsigned)(((uintptr_t *)arg)[1]);
	for (;;) {
		pthread_barrier_wait(&t->start);
		if (__atomic_load_n(&t->stop, __ATOMIC_SEQ_CST))
			return NULL;
		/* Both start within a few cycles: a barrier's wake-ups are further
		 * apart than a harvest lasts (not under Valgrind: one thread at a time). */
		__atomic_fetch_add(&t->ready, 1, __ATOMIC_SEQ_CST);
		while (!RUNNING_ON_VALGRIND && __atomic_load_n(&t->ready, __ATOMIC_SEQ_CST) % 2)
			__builtin_ia32_pause();
		if (k == 0 && t->faults) {
			for (uint64_t p = 0; p < TWO_LOG_PAGES; p++) {
				bool handled;
				if (vmem_dirty_wp_fault(t->d[0], p << 12, &handled, NULL) || !handled)
					t->bm[1][0] = 0; /* reported as page 0 missing */
			}
		} else if (vmem_dirty_harvest(t->d[k], t->bm[k], NULL)) {
			t->bm[k][0] = 0;
		}
		pthread_barrier_wait(&t->end);
	}
}

static void test_race_wp_pml_harvests(void **s)
{
	(void)s;
	vmem_ept *e = mk(true);
	uint64_t log[512];
	vmem_pml pml = { log, 0 };
	struct two_logs t = { 0 };
	const uint64_t size = (uint64_t)TWO_LOG_PAGES << 12;
	assert_int_equal(vmem_ept_map(e, 0, 0, size, RW, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_split(e, 0, size, NULL), VMEM_OK); /* leaf pointers stay valid */
	t.d[0] = start(e, 0, size, VMEM_DIRTY_WP, NULL);
	t.d[1] = start(e, 0, size, VMEM_DIRTY_PML, &pml);
	pthread_barrier_init(&t.start, NULL, 3);
	pthread_barrier_init(&t.end, NULL, 3);
	pthread_t th[2];
	void *arg[2][2] = { { &t, (void *)0 }, { &t, (void *)1 } };
	for (unsigned k = 0; k < 2; k++)
		pthread_create(&th[k], NULL, two_log_harvester, arg[k]);
	unsigned lost = 0, round;
	for (round = 0; round < 2 * TWO_LOG_ROUNDS && !lost; round++) {
		t.faults = round >= TWO_LOG_ROUNDS;
		for (uint64_t p = 0; p < TWO_LOG_PAGES; p++) {
			unsigned lvl;
			bool handled;
			uint64_t *l = leaf_of(e, p << 12, &lvl);
			assert_int_equal(vmem_dirty_wp_fault(t.d[0], p << 12, &handled, NULL), VMEM_OK);
			assert_true(handled && (*l & VMEM_EPT_W));
			*l |= VMEM_EPT_A;
			while (!hw_write_pml(e, &pml, p << 12))
				vmem_dirty_pml_drain_from(t.d[1], &pml); /* the log-full exit */
		}
		if (t.faults)
			assert_int_equal(vmem_dirty_harvest(t.d[0], t.bm[0], NULL), VMEM_OK);
		pthread_barrier_wait(&t.start);
		pthread_barrier_wait(&t.end);
		for (uint64_t p = 0; p < TWO_LOG_PAGES; p++) {
			unsigned lvl;
			uint64_t v = *leaf_of(e, p << 12, &lvl);
			lost += (v & (VMEM_EPT_W | (1ull << 52) | VMEM_EPT_D)) != (t.faults ? VMEM_EPT_W : 1ull << 52);
			for (unsigned k = 0; k < 2; k++)
				lost += !((t.bm[k][p / 64] >> (p % 64)) & 1);
		}
	}
	__atomic_store_n(&t.stop, 1, __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&t.start);
	for (unsigned k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	pthread_barrier_destroy(&t.start);
	pthread_barrier_destroy(&t.end);
	assert_int_equal(lost, 0);
	vmem_dirty_free(t.d[1]);
	vmem_dirty_free(t.d[0]);
	vmem_ept_free(e);
}

/* Race: a writer (the processor, or the VMM's WP fault path) against a
 * harvester. The contract (dirty.h): a write racing with a harvest is
 * reported by it or by the next. So a write completed before harvest h
 * starts is reported by h or before: by a harvest that reported its page
 * after the write had started. Per page, the writer counts the writes it
 * starts (wstart) and completes (wdone); the harvester takes wdone before
 * each harvest, and for each page it reports, wstart after it (the writes
 * it may have covered): wdone before h must never exceed that. */
struct race {
	vmem_ept *e;
	vmem_dirty *d;
	vmem_dirty_mode mode;
	uint32_t wstart[NPAGES], wdone[NPAGES];
	int stop, bad, started;
	unsigned harvests;
	unsigned long writes;
	/* PML mode: the vCPU's log. The writer holds guest mode exclusively
	 * while it logs (and drains on log-full, its exit handler); the
	 * harvester holds it shared while it harvests, as a VMM kicks the vCPU
	 * out of guest mode to drain its log. The D flags race with the
	 * harvest all the same. With drainer set, a third thread drains the
	 * same frozen log (shared) alongside the harvests: the harvest's plain
	 * take of the bitmap must not lose what it sets. */
	vmem_pml pml;
	uint64_t log[512];
	pthread_rwlock_t guest_mode;
	bool drainer;
	/* The writer's accesses go through the library's EPT walk (SDM 29.3.5:
	 * it sets A and D by compare-and-swap, and logs to the PML, 29.3.6):
	 * every other one a guest paging-structure access, a write for D when
	 * EPT A/D is on. */
	vmem_ept_mmu *em;
	vmem_gmem *host;
};

static void pml_lock(struct race *r) { pthread_rwlock_wrlock(&r->guest_mode); }
static void pml_unlock(struct race *r) { pthread_rwlock_unlock(&r->guest_mode); }

static void *drainer(void *arg)
{
	struct race *r = arg;
	while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST) && !__atomic_load_n(&r->bad, __ATOMIC_SEQ_CST)) {
		pthread_rwlock_rdlock(&r->guest_mode);
		vmem_dirty_pml_drain(r->d);
		pthread_rwlock_unlock(&r->guest_mode);
	}
	return NULL;
}

static void *writer(void *arg)
{
	struct race *r = arg;
	uint64_t x = 88172645463325252ull;
	__atomic_store_n(&r->started, 1, __ATOMIC_SEQ_CST); /* the harvests start now */
	/* Write until the harvester has run many times over, thousands of
	 * writes (bounded: the harvests do go on meanwhile). */
	for (int k = 0; k < 20000000 && (__atomic_load_n(&r->harvests, __ATOMIC_SEQ_CST) < 300 || r->writes < 2000); k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned p = (unsigned)(x % NPAGES), lvl;
		uint64_t *l = leaf_of(r->e, (uint64_t)p << 12, &lvl);
		__atomic_fetch_add(&r->wstart[p], 1, __ATOMIC_SEQ_CST);
		if (r->em) {
			vmem_ept_access acc = { 0 };
			vmem_ept_result res;
			acc.type = (k & 1) ? VMEM_EPT_PAGING : VMEM_EPT_WRITE;
			if (r->mode == VMEM_DIRTY_PML)
				pml_lock(r); /* the vCPU in guest mode: its log is its own */
			vmem_err err = vmem_ept_walk(r->em, r->host, (uint64_t)p << 12 | (x & 0xff8), &acc, 0, &res, NULL);
			while (!err && res.status == VMEM_EPT_PML_FULL) {
				vmem_dirty_pml_drain(r->d); /* exit reason 62; the access did not happen */
				err = vmem_ept_walk(r->em, r->host, (uint64_t)p << 12, &acc, 0, &res, NULL);
			}
			if (r->mode == VMEM_DIRTY_PML)
				pml_unlock(r);
			if (err || res.status != VMEM_EPT_OK) {
				__atomic_store_n(&r->bad, 1, __ATOMIC_SEQ_CST);
				return NULL;
			}
		} else if (r->mode == VMEM_DIRTY_EPT_D) {
			__atomic_fetch_or(l, VMEM_EPT_D, __ATOMIC_SEQ_CST); /* the processor's D update (SDM 29.3.5) */
		} else if (r->mode == VMEM_DIRTY_PML) {
			/* The processor sets A and D (SDM 29.3.5); a D flag it sets is
			 * logged (SDM 29.3.6). With both set, the harvest clears D by a
			 * plain store: this locked OR races with it. */
			if (!(__atomic_fetch_or(l, VMEM_EPT_A | VMEM_EPT_D, __ATOMIC_SEQ_CST) & VMEM_EPT_D)) {
				pml_lock(r);
				while (!vmem_pml_log(&r->pml, (uint64_t)p << 12))
					vmem_dirty_pml_drain(r->d); /* log full: exit reason 62 */
				pml_unlock(r);
			}
		} else {
			while (!(__atomic_load_n(l, __ATOMIC_SEQ_CST) & VMEM_EPT_W)) {
				bool handled;
				if (vmem_dirty_wp_fault(r->d, (uint64_t)p << 12, &handled, NULL) || !handled) {
					__atomic_store_n(&r->bad, 1, __ATOMIC_SEQ_CST);
					return NULL;
				}
				l = leaf_of(r->e, (uint64_t)p << 12, &lvl);
			}
		}
		__atomic_fetch_add(&r->wdone[p], 1, __ATOMIC_SEQ_CST); /* the write completed */
		r->writes++;
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void race(vmem_dirty_mode mode, bool with_drainer, bool walk)
{
	struct race *r = calloc(1, sizeof(*r));
	r->e = mk(true);
	r->mode = mode;
	r->drainer = with_drainer;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* The vCPU gets back into guest mode between the harvests and drains. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&r->guest_mode, &ra);
	pthread_rwlockattr_destroy(&ra);
	assert_int_equal(vmem_dirty_new(NULL, r->e, 0, 2 * M2, &r->d), VMEM_OK);
	/* Split first so that the writer's leaf pointers stay valid. */
	assert_int_equal(vmem_ept_split(r->e, 0, 2 * M2, NULL), VMEM_OK);
	r->pml.log = r->log;
	assert_int_equal(vmem_dirty_set_mode(r->d, mode, mode == VMEM_DIRTY_PML ? &r->pml : NULL, NULL), VMEM_OK);
	if (walk)
		r->em = walker(r->e, mode == VMEM_DIRTY_PML ? &r->pml : NULL, &r->host);
	uint32_t before[NPAGES], covered[NPAGES] = { 0 };
	uint64_t bm[NPAGES / 64];
	unsigned lost = NPAGES;
	pthread_t t, td;
	pthread_create(&t, NULL, writer, r);
	if (r->drainer)
		pthread_create(&td, NULL, drainer, r);
	unsigned harvests = 0;
	while (!__atomic_load_n(&r->started, __ATOMIC_SEQ_CST))
		sched_yield();
	for (bool last = false;; ) {
		last = __atomic_load_n(&r->stop, __ATOMIC_SEQ_CST) || __atomic_load_n(&r->bad, __ATOMIC_SEQ_CST);
		if (last) {
			/* The writer is done: one harvest more must report the rest. */
			pthread_join(t, NULL);
			if (r->drainer)
				pthread_join(td, NULL);
		}
		for (unsigned i = 0; i < NPAGES; i++)
			before[i] = __atomic_load_n(&r->wdone[i], __ATOMIC_SEQ_CST);
		if (mode == VMEM_DIRTY_PML)
			pthread_rwlock_rdlock(&r->guest_mode);
		vmem_err err = vmem_dirty_harvest(r->d, bm, NULL);
		if (mode == VMEM_DIRTY_PML)
			pthread_rwlock_unlock(&r->guest_mode);
		if (err)
			__atomic_store_n(&r->bad, 1, __ATOMIC_SEQ_CST);
		for (unsigned i = 0; i < NPAGES; i++) {
			if (bit(bm, i))
				covered[i] = __atomic_load_n(&r->wstart[i], __ATOMIC_SEQ_CST);
			if (before[i] > covered[i] && lost == NPAGES)
				lost = i, __atomic_store_n(&r->bad, 1, __ATOMIC_SEQ_CST);
		}
		harvests++;
		__atomic_store_n(&r->harvests, harvests, __ATOMIC_SEQ_CST);
		if (last)
			break;
	}
	if (lost != NPAGES)
		fail_msg("page %u: a write done before harvest %u started was not reported", lost, harvests);
	assert_int_equal(r->bad, 0);
	/* The writer ran alongside the harvests: writes in their thousands. */
	assert_true(harvests >= 300);
	assert_true(r->writes >= 2000);
	vmem_ept_mmu_free(r->em);
	vmem_gmem_free(r->host);
	vmem_dirty_free(r->d);
	vmem_ept_free(r->e);
	pthread_rwlock_destroy(&r->guest_mode);
	free(r);
}

static void test_race_ept_d(void **s) { (void)s; race(VMEM_DIRTY_EPT_D, false, false); }
static void test_race_wp(void **s) { (void)s; race(VMEM_DIRTY_WP, false, false); }
static void test_race_pml(void **s) { (void)s; race(VMEM_DIRTY_PML, false, false); }
static void test_race_pml_drainer(void **s) { (void)s; race(VMEM_DIRTY_PML, true, false); }
static void test_race_ept_d_walk(void **s) { (void)s; race(VMEM_DIRTY_EPT_D, false, true); }
static void test_race_pml_walk(void **s) { (void)s; race(VMEM_DIRTY_PML, false, true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wp_mode),
		cmocka_unit_test(test_ept_d_mode),
		cmocka_unit_test(test_pml_mode),
		cmocka_unit_test(test_pml_through_ept_walk),
		cmocka_unit_test(test_unaligned_range),
		cmocka_unit_test(test_fail_alloc),
		cmocka_unit_test(test_wp_fail_alloc_second_edge),
		cmocka_unit_test(test_ept_d_switch_keeps_dirty),
		cmocka_unit_test(test_wp_range_inside_large_leaf),
		cmocka_unit_test(test_map_while_logging),
		cmocka_unit_test(test_range_beyond_ept),
		cmocka_unit_test(test_wp_vmm_protect_wins),
		cmocka_unit_test(test_ept_d_leaves_pml_alone),
		cmocka_unit_test(test_wp_1g_split_on_write),
		cmocka_unit_test(test_walk_read_only_never_dirty),
		cmocka_unit_test(test_wp_fault_after_switch),
		cmocka_unit_test(test_leaf_gone_keeps_dirty),
		cmocka_unit_test(test_wp_map_armed),
		cmocka_unit_test(test_leaf_hook_fail_alloc),
		cmocka_unit_test(test_pml_shared_by_two_logs),
		cmocka_unit_test(test_pml_two_vcpus),
		cmocka_unit_test(test_overlapping_logs_share_no_flag),
		cmocka_unit_test(test_race_ept_d),
		cmocka_unit_test(test_race_wp),
		cmocka_unit_test(test_race_pml),
		cmocka_unit_test(test_race_pml_drainer),
		cmocka_unit_test(test_race_ept_d_walk),
		cmocka_unit_test(test_race_pml_walk),
		cmocka_unit_test(test_race_mode_switch),
		cmocka_unit_test(test_race_fault_split_set_mode),
		cmocka_unit_test(test_race_wp_pml_harvests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
