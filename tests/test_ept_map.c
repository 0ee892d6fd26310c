/* EPT tables a VMM keeps: map/unmap/protect, large leaves, split, collapse, refusals, failure injection. */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

#define G (1ull << 30)
#define M2 (1ull << 21)
#define K4 4096ull
#define RWX (VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X)

/* An allocator that fails at call number fail_at (0: never) and counts live objects. */
struct failalloc {
	vmem_allocator a;
	long calls, fail_at, live;
};
static void *fa_alloc(void *ctx, size_t n)
{
	struct failalloc *f = ctx;
	if (++f->calls == f->fail_at)
		return NULL;
	f->live++;
	return malloc(n);
}
static void fa_free(void *ctx, void *p, size_t n)
{
	(void)n;
	((struct failalloc *)ctx)->live--;
	free(p);
}
static void *fa_page(void *ctx)
{
	struct failalloc *f = ctx;
	if (++f->calls == f->fail_at)
		return NULL;
	f->live++;
	void *p = aligned_alloc(4096, 4096);
	memset(p, 0, 4096); /* alloc_page's contract: a zeroed page */
	return p;
}
static void fa_free_page(void *ctx, void *p)
{
	((struct failalloc *)ctx)->live--;
	free(p);
}
static void fa_init(struct failalloc *f)
{
	memset(f, 0, sizeof(*f));
	f->a.alloc = fa_alloc, f->a.free = fa_free, f->a.alloc_page = fa_page;
	f->a.free_page = fa_free_page, f->a.ctx = f;
}

/* An independent reader of the raw tables: pages are identity-"physical" here. */
static int raw_lookup(uint64_t eptp, unsigned levels, uint64_t gpa, uint64_t *hpa, uint64_t *leaf)
{
	uint64_t table = eptp & ~0xfffull;
	for (unsigned L = levels; L >= 1; L--) {
		unsigned shift = 12 + 9 * (L - 1);
		uint64_t e = ((uint64_t *)(uintptr_t)table)[(gpa >> shift) & 511];
		if (!(e & 7))
			return 0;
		if (L == 1 || (e & VMEM_EPT_PS)) {
			*hpa = (e & 0x000ffffffffff000ull & ~((1ull << shift) - 1)) | (gpa & ((1ull << shift) - 1));
			*leaf = e;
			return (int)L;
		}
		table = e & 0x000ffffffffff000ull;
	}
	return 0;
}

static vmem_ept *mk(const vmem_allocator *a, bool gb)
{
	vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = gb, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e = NULL;
	assert_int_equal(vmem_ept_new(a, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 0, 64 * G), VMEM_OK);
	return e;
}

static void test_eptp_and_single_4k(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	uint64_t eptp = vmem_ept_eptp(e);
	assert_int_equal(eptp & 0xfff, 6 | (3 << 3) | (1 << 6)); /* WB, 4-level, A/D */
	vmem_ept_flush fl;
	assert_int_equal(vmem_ept_map(e, 0x5000, 0x9000, K4, VMEM_EPT_R, VMEM_MT_WB, false, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0); /* a new mapping needs no flush */
	uint64_t hpa, leaf;
	assert_int_equal(raw_lookup(eptp, 4, 0x5abc, &hpa, &leaf), 1);
	assert_int_equal(hpa, 0x9abc);
	assert_int_equal(leaf, 0x9000 | 1 | (6 << 3));
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.table_pages, 4);
	assert_int_equal(st.leaves_4k, 1);
	assert_int_equal(raw_lookup(eptp, 4, 0x6000, &hpa, &leaf), 0);
	vmem_ept_free(e);
}

static void test_large_leaves_and_range(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
	/* [1G - 8K, 3G + 2M + 4K): 2 head 4K leaves, one 1G... by hand: */
	uint64_t gpa = G - 2 * K4, size = 2 * G + M2 + 3 * K4;
	assert_int_equal(vmem_ept_map(e, gpa, gpa + 4 * G, size, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_1g, 2);    /* [1G, 3G) */
	assert_int_equal(st.leaves_2m, 1);    /* [3G, 3G + 2M) */
	assert_int_equal(st.leaves_4k, 2 + 1);/* [1G - 8K, 1G) and [3G + 2M, 3G + 2M + 4K) */
	assert_int_equal(raw_lookup(eptp, 4, G + 5, &hpa, &leaf), 3);
	assert_int_equal(hpa, 5 * G + 5);
	assert_int_equal(raw_lookup(eptp, 4, 3 * G + 0x1234, &hpa, &leaf), 2);
	assert_int_equal(hpa, 7 * G + 0x1234);
	assert_int_equal(raw_lookup(eptp, 4, G - 1, &hpa, &leaf), 1);
	assert_int_equal(hpa, 5 * G - 1);
	assert_int_equal(raw_lookup(eptp, 4, 3 * G + M2 + K4, &hpa, &leaf), 0);
	/* Co-misaligned addresses get 4K leaves only. */
	assert_int_equal(vmem_ept_map(e, 8 * G, 8 * G + K4, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_4k, 3 + 512);
	vmem_ept_free(e);
	/* Without 1G pages: 2M leaves. */
	e = mk(NULL, false);
	assert_int_equal(vmem_ept_map(e, G, G, G, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_1g, 0);
	assert_int_equal(st.leaves_2m, 512);
	vmem_ept_free(e);
}

static void test_split_and_collapse(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
	vmem_ept_flush fl;
	assert_int_equal(vmem_ept_map(e, 4 * M2, 10 * M2, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	/* Write-protect one 4K page inside: split, and the change must be flushed. */
	assert_int_equal(vmem_ept_protect(e, 4 * M2 + 7 * K4, K4, VMEM_EPT_R | VMEM_EPT_X, &fl), VMEM_OK);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	assert_true(fl.start <= 4 * M2 + 7 * K4 && fl.end >= 4 * M2 + 8 * K4);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_2m, 0);
	assert_int_equal(st.leaves_4k, 512);
	assert_int_equal(raw_lookup(eptp, 4, 4 * M2 + 7 * K4 + 1, &hpa, &leaf), 1);
	assert_int_equal(hpa, 10 * M2 + 7 * K4 + 1);
	assert_int_equal(leaf & 7, VMEM_EPT_R | VMEM_EPT_X);
	assert_int_equal(raw_lookup(eptp, 4, 4 * M2 + 8 * K4, &hpa, &leaf), 1);
	assert_int_equal(leaf & 7, RWX);
	assert_int_equal(hpa, 10 * M2 + 8 * K4);
	/* Give the right back: uniform again, collapses to one 2M leaf; the PT is released. */
	assert_int_equal(vmem_ept_protect(e, 4 * M2 + 7 * K4, K4, RWX, &fl), VMEM_OK);
	assert_true(fl.flags & VMEM_EPT_FLUSH_TABLES_FREED);
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_2m, 1);
	assert_int_equal(st.leaves_4k, 0);
	assert_int_equal(raw_lookup(eptp, 4, 4 * M2 + 0x1234, &hpa, &leaf), 2);
	assert_int_equal(hpa, 10 * M2 + 0x1234);
	vmem_ept_flush_done(e);
	/* Unmap everything: tables below the root go away. */
	assert_int_equal(vmem_ept_unmap(e, 0, 4 * G, &fl), VMEM_OK);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.table_pages, 1);
	assert_int_equal(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	assert_int_equal(raw_lookup(eptp, 4, 4 * M2, &hpa, &leaf), 0);
	vmem_ept_free(e);
}

static void test_refusals(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	/* Host memory the guest was not given. */
	assert_int_equal(vmem_ept_map(e, 0, 64 * G, K4, RWX, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_map(e, 0, 64 * G - K4, 2 * K4, RWX, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	/* Beyond a 4-level EPT's reach (48 bits). */
	assert_int_equal(vmem_ept_map(e, 1ull << 48, 0, K4, RWX, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	/* Write without read; execute-only without the capability; reserved memory types. */
	assert_int_equal(vmem_ept_map(e, 0, 0, K4, VMEM_EPT_W, VMEM_MT_WB, false, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_map(e, 0, 0, K4, VMEM_EPT_X, VMEM_MT_WB, false, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_map(e, 0, 0, K4, RWX, 2, false, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_map(e, 0, 0, K4, RWX, 7, false, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_map(e, 0x800, 0, K4, RWX, VMEM_MT_WB, false, NULL), VMEM_E_INVAL);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.table_pages, 1);
	assert_int_equal(st.leaves_4k, 0);
	vmem_ept_free(e);
}

/* Fail every allocation of a range map in turn: tables as before, nothing leaked. */
static void test_failure_injection(void **s)
{
	(void)s;
	struct failalloc fa;
	fa_init(&fa);
	vmem_ept *e = mk(&fa.a, true);
	/* A prior mapping with a 2M leaf that the big map will have to split. */
	assert_int_equal(vmem_ept_map(e, 6 * M2, 6 * M2, M2, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_OK);
	long base_live = fa.live;
	vmem_ept_stats before;
	vmem_ept_get_stats(e, &before);
	uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
	long total = 0;
	for (long k = 1;; k++) {
		fa.calls = 0;
		fa.fail_at = k;
		vmem_err rc = vmem_ept_map(e, 5 * M2 + 3 * K4, G + 5 * M2 + 3 * K4, 2 * M2 + 5 * K4, RWX, VMEM_MT_WB, false, NULL);
		if (rc == VMEM_OK) {
			total = k;
			break;
		}
		assert_int_equal(rc, VMEM_E_NOMEM);
		assert_int_equal(fa.live, base_live);
		vmem_ept_stats st;
		vmem_ept_get_stats(e, &st);
		assert_memory_equal(&st, &before, sizeof(st));
		assert_int_equal(raw_lookup(eptp, 4, 6 * M2 + 0x10, &hpa, &leaf), 2);
		assert_int_equal(hpa, 6 * M2 + 0x10);
		assert_int_equal(raw_lookup(eptp, 4, 5 * M2 + 3 * K4, &hpa, &leaf), 0);
	}
	assert_true(total > 2);
	assert_int_equal(raw_lookup(eptp, 4, 6 * M2 + 0x10, &hpa, &leaf), 2); /* fully covered and co-aligned: a 2M leaf replaces the old one */
	assert_int_equal(hpa, G + 6 * M2 + 0x10);
	assert_int_equal(raw_lookup(eptp, 4, 5 * M2 + 3 * K4, &hpa, &leaf), 1);
	assert_int_equal(hpa, G + 5 * M2 + 3 * K4);
	fa.fail_at = 0;
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
}


/* Random map / unmap / protect / split sequences over 4 GiB (4K, 2M and 1G
 * leaves, with and without 1G pages) against a plain model: one word per 4K
 * page (host-physical address | R/W/X | memory type, or 0). After every
 * operation the tables, read by their own walker (raw_lookup's rules), must
 * give each page of the operation's range, and every 16th operation each
 * page of the space, exactly the model's translation; the statistics must
 * count the leaves the walk finds; nothing may leak. */
#define MSPACE (4 * G)
#define MPAGES (MSPACE / K4)
static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
	return rng_state;
}

/* The leaf (or the non-present entry) for gpa: its level, 0 if none; *e the entry. */
static unsigned raw_entry(uint64_t eptp, uint64_t gpa, uint64_t *e)
{
	uint64_t table = eptp & ~0xfffull;
	for (unsigned L = 4;; L--) {
		*e = ((uint64_t *)(uintptr_t)table)[(gpa >> (12 + 9 * (L - 1))) & 511];
		if (!(*e & 7) || L == 1 || (*e & VMEM_EPT_PS))
			return L;
		table = *e & 0x000ffffffffff000ull;
	}
}

/* Check the tables against the model over [lo, hi) (4K aligned); leaves
 * found are counted per level in cnt[] when cnt is not NULL. */
static void model_check(uint64_t eptp, const uint64_t *model, uint64_t lo, uint64_t hi, uint64_t *cnt)
{
	uint64_t gpa = lo;
	while (gpa < hi) {
		uint64_t e;
		unsigned L = raw_entry(eptp, gpa, &e);
		uint64_t size = 1ull << (12 + 9 * (L - 1)), start = gpa & ~(size - 1);
		uint64_t end = start + size < hi ? start + size : hi;
		if (e & 7) {
			assert_true(L == 1 || (e & VMEM_EPT_PS));
			if (cnt && gpa == start)
				cnt[L]++;
		}
		for (; gpa < end; gpa += K4) {
			uint64_t want = model[gpa / K4], got = 0;
			if (e & 7)
				got = ((e & 0x000ffffffffff000ull & ~(size - 1)) + (gpa - start)) | (e & (RWX | VMEM_EPT_MT_MASK));
			if (got != want)
				fail_msg("gpa %#llx: tables %#llx, model %#llx", (unsigned long long)gpa,
					 (unsigned long long)got, (unsigned long long)want);
		}
	}
}

/* A range: 4K aligned, length up to a few 1G, start often 2M or 1G aligned. */
static void model_range(uint64_t *gpa, uint64_t *size)
{
	static const uint64_t unit[] = { K4, M2, G };
	uint64_t u = unit[rnd() % 3], su = unit[rnd() % 3];
	*gpa = (rnd() % (MSPACE / u)) * u + (rnd() % 4 ? 0 : (rnd() % 4) * K4);
	*size = ((rnd() % 3) + 1) * su + (rnd() % 3 ? 0 : (rnd() % 5) * K4);
	if (*gpa >= MSPACE)
		*gpa = 0;
	if (*gpa + *size > MSPACE)
		*size = MSPACE - *gpa;
}

static void model_run(bool gb, uint64_t seed, unsigned ops)
{
	struct failalloc fa;
	fa_init(&fa);
	vmem_ept *e = mk(&fa.a, gb);
	uint64_t eptp = vmem_ept_eptp(e);
	uint64_t *model = calloc(MPAGES, sizeof(*model));
	assert_non_null(model);
	static const uint64_t perms[] = { VMEM_EPT_R, VMEM_EPT_R | VMEM_EPT_W, VMEM_EPT_R | VMEM_EPT_X, RWX };
	rng_state = seed;
	for (unsigned k = 0; k < ops; k++) {
		uint64_t gpa, size, perm = perms[rnd() % 4];
		model_range(&gpa, &size);
		unsigned op = (unsigned)(rnd() % 8);
		if (op < 4) { /* map: the host address co-aligned with the guest's (large leaves) or not */
			uint64_t mt = rnd() % 2 ? VMEM_MT_WB : VMEM_MT_UC;
			uint64_t hpa = (rnd() % 16) * G + (gpa & (G - 1));
			if (op == 3)
				hpa = (hpa + (rnd() % 2 ? M2 : K4)) % (60 * G);
			assert_int_equal(vmem_ept_map(e, gpa, hpa, size, perm, (unsigned)mt, false, NULL), VMEM_OK);
			for (uint64_t p = 0; p < size; p += K4)
				model[(gpa + p) / K4] = (hpa + p) | perm | mt << VMEM_EPT_MT_SHIFT;
		} else if (op < 6) {
			assert_int_equal(vmem_ept_unmap(e, gpa, size, NULL), VMEM_OK);
			for (uint64_t p = 0; p < size; p += K4)
				model[(gpa + p) / K4] = 0;
		} else if (op == 6) {
			assert_int_equal(vmem_ept_protect(e, gpa, size, perm, NULL), VMEM_OK);
			for (uint64_t p = 0; p < size; p += K4)
				if (model[(gpa + p) / K4])
					model[(gpa + p) / K4] = (model[(gpa + p) / K4] & ~RWX) | perm;
		} else {
			assert_int_equal(vmem_ept_split(e, gpa, size, NULL), VMEM_OK);
		}
		model_check(eptp, model, gpa, gpa + size, NULL);
		if (k % 16 == 15 || k == ops - 1) {
			uint64_t cnt[5] = { 0 };
			model_check(eptp, model, 0, MSPACE, cnt);
			vmem_ept_stats st;
			vmem_ept_get_stats(e, &st);
			assert_int_equal(st.leaves_4k, cnt[1]);
			assert_int_equal(st.leaves_2m, cnt[2]);
			assert_int_equal(st.leaves_1g, cnt[3]);
			if (!gb)
				assert_int_equal(cnt[3], 0);
		}
	}
	/* Everything unmapped: the tables give nothing, only the root stays after the flush. */
	assert_int_equal(vmem_ept_unmap(e, 0, MSPACE, NULL), VMEM_OK);
	memset(model, 0, MPAGES * sizeof(*model));
	model_check(eptp, model, 0, MSPACE, NULL);
	vmem_ept_flush_done(e);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.table_pages, 1);
	assert_int_equal(st.leaves_4k + st.leaves_2m + st.leaves_1g, 0);
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
	free(model);
}

static void test_random_model(void **s)
{
	(void)s;
	const char *env = getenv("VMEM_EPT_MODEL_OPS");
	unsigned ops = env ? (unsigned)strtoul(env, NULL, 0) : 300;
	model_run(true, 0x9e3779b97f4a7c15ull, ops);
	model_run(false, 0x2545f4914f6cdd1dull, ops);
}


/* 5-level EPT: a GPA above 2^48 needs the fifth level (SDM 29.3.2, page-walk length 5). */
static int raw_lookup5(uint64_t eptp, uint64_t gpa, uint64_t *hpa, uint64_t *leaf)
{
	return raw_lookup(eptp, 5, gpa, hpa, leaf);
}

static void test_5level(void **s)
{
	(void)s;
	vmem_ept_config cfg = { .levels = 5, .ad = false, .gbpages = true, .eptp_mt = VMEM_MT_UC };
	vmem_ept *e;
	assert_int_equal(vmem_ept_new(NULL, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 0, 64 * G), VMEM_OK);
	uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
	assert_int_equal(eptp & 0xfff, 0 | (4 << 3)); /* UC, page-walk length 5 - 1, no A/D */
	uint64_t gpa = (3ull << 48) | (5ull << 39) | (7ull << 30);
	assert_int_equal(vmem_ept_map(e, gpa, 2 * G, G, RWX, VMEM_MT_WB, true, NULL), VMEM_OK);
	assert_int_equal(raw_lookup5(eptp, gpa + 0x1234, &hpa, &leaf), 3);
	assert_int_equal(hpa, 2 * G + 0x1234);
	assert_true(leaf & VMEM_EPT_IPAT);
	/* Beyond 57 bits: out of reach. */
	assert_int_equal(vmem_ept_map(e, 1ull << 57, 0, K4, RWX, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.table_pages, 3); /* PML5, PML4, PDPT */
	vmem_ept_free(e);
}

/* The tables as host memory for vmem_ept_walk: every table page at its physical address. */
static int reg_table(void *arg, void *page, uint64_t phys)
{
	return vmem_gmem_add_ram((vmem_gmem *)arg, phys, 4096, page, 0);
}

/* One data access through the EPT walk (A/D set as the processor would). */
static vmem_ept_result walk_one(vmem_ept *e, uint64_t gpa, vmem_ept_atype type)
{
	vmem_gmem *host;
	vmem_ept_mmu *m;
	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	caps.maxphyaddr = 52;
	assert_int_equal(vmem_gmem_new(NULL, &host), VMEM_OK);
	assert_int_equal(vmem_ept_foreach_table(e, reg_table, host), 0);
	assert_int_equal(vmem_ept_mmu_new(NULL, vmem_ept_eptp(e), &caps, &m), VMEM_OK);
	vmem_ept_access acc = { 0 };
	acc.type = (uint8_t)type;
	vmem_ept_result r;
	assert_int_equal(vmem_ept_walk(m, host, gpa, &acc, 0, &r, NULL), VMEM_OK);
	vmem_ept_mmu_free(m);
	vmem_gmem_free(host);
	return r;
}

/* Mapping again exactly what is mapped (same HPA, rights, memory type,
 * ignore-PAT) must not clear the accessed and dirty flags the processor
 * set unless the flush result asks for INVEPT: with EPTP bit 6 set,
 * clearing bit 8 (A) or, in the last entry, bit 9 (D) needs a
 * single-context INVEPT, or the processor keeps using the cached
 * translation and never sets them again (SDM vol. 3C 29.4.3.4, guidelines
 * for INVEPT). A write to 0x5000 (4K leaf) and to 4 * 2M (2M leaf) sets
 * A and D in their leaves (SDM 29.3.5). */
static void test_remap_identical_keeps_ad(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	vmem_ept_flush fl;
	uint64_t leaf;
	unsigned lvl;
	const uint64_t gpa[2] = { 0x5000, 4 * M2 }, hpa[2] = { 0x9000, 10 * M2 }, size[2] = { K4, M2 };
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(vmem_ept_map(e, gpa[k], hpa[k], size[k], RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
		vmem_ept_result r = walk_one(e, gpa[k] + 8, VMEM_EPT_WRITE);
		assert_int_equal(r.status, VMEM_EPT_OK);
		assert_int_equal(r.hpa, hpa[k] + 8);
		assert_int_equal(vmem_ept_lookup(e, gpa[k], &leaf, &lvl), VMEM_OK);
		assert_int_equal(lvl, k + 1);
		assert_int_equal(leaf & (VMEM_EPT_A | VMEM_EPT_D), VMEM_EPT_A | VMEM_EPT_D);
		assert_int_equal(vmem_ept_map(e, gpa[k], hpa[k], size[k], RWX, VMEM_MT_WB, false, &fl), VMEM_OK);
		assert_int_equal(vmem_ept_lookup(e, gpa[k], &leaf, &lvl), VMEM_OK);
		assert_int_equal(leaf & ~(VMEM_EPT_A | VMEM_EPT_D),
				 hpa[k] | RWX | (6u << 3) | (k ? VMEM_EPT_PS : 0));
		if ((leaf & (VMEM_EPT_A | VMEM_EPT_D)) != (VMEM_EPT_A | VMEM_EPT_D))
			assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	}
	vmem_ept_free(e);
}

/* An EPT entry holds a host-physical address in bits 51:12 only; bits
 * 62:52 are ignored and bit 63 is suppress-#VE (SDM vol. 3C 29.3.2, Tables
 * 29-1..29-6; MAXPHYADDR is at most 52, SDM vol. 3A 4.1.4).
 * A grant reaching 2^52 would let map write an entry whose address is the
 * HPA modulo 2^52 (host memory never granted) or set SVE: refused. The
 * last 4K below 2^52 is a valid host-physical page. */
/* A hosted page's address below 2^40, for an EPT with MAXPHYADDR 40 (the
 * library reads its tables through their host pointers, never this). */
static uint64_t below_2_40(void *ctx, const void *page)
{
	(void)ctx;
	return (uint64_t)(uintptr_t)page & ((1ull << 40) - 1) & ~0xfffull;
}

static void test_grant_beyond_52_bits(void **s)
{
	(void)s;
	vmem_ept_config cfg = { .levels = 4, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e;
	uint64_t leaf;
	assert_int_equal(vmem_ept_new(NULL, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 1ull << 52, K4), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_grant(e, 1ull << 63, K4), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_grant(e, (1ull << 52) - K4, 2 * K4), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_map(e, 0, 1ull << 52, K4, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_map(e, 0, 1ull << 63, K4, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_lookup(e, 0, &leaf, NULL), VMEM_E_NOENT);
	assert_int_equal(vmem_ept_grant(e, (1ull << 52) - K4, K4), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, (1ull << 52) - K4, K4, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_lookup(e, 0, &leaf, NULL), VMEM_OK);
	assert_int_equal(leaf, 0x000ffffffffff000ull | VMEM_EPT_R | (6u << 3));
	vmem_ept_free(e);
	/* With the host's MAXPHYADDR 40, bits 51:40 of an entry are reserved (an
	 * EPT misconfiguration, SDM 29.3.3.1): memory at or above 2^40 is no
	 * host memory to grant. MAXPHYADDR outside 32..52 is refused. */
	cfg.maxphyaddr = 40;
	struct failalloc fa;
	fa_init(&fa);
	fa.a.page_phys = below_2_40; /* tables, too, are below 2^40 (test_table_phys_refused) */
	assert_int_equal(vmem_ept_new(&fa.a, &cfg, &e), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 1ull << 40, K4), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_grant(e, (1ull << 40) - K4, 2 * K4), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_map(e, 0, 1ull << 40, K4, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	assert_int_equal(vmem_ept_grant(e, (1ull << 40) - K4, K4), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, (1ull << 40) - K4, K4, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_free(e);
	for (unsigned m = 31; m <= 53; m += 22) {
		cfg.maxphyaddr = m;
		e = NULL;
		assert_int_equal(vmem_ept_new(NULL, &cfg, &e), VMEM_E_INVAL);
		assert_null(e);
	}
}

/* A collapse changes bit 7 of the EPT PDE (table -> 2M page), a change
 * that needs INVEPT (SDM vol. 3C 29.4.3.4): the flush result says INVEPT
 * and names the 2M region as changed, as it does for the split that is the
 * same change in the other direction. Map [1G, 1G + 2M - 4K) with 4K
 * leaves (hpa = gpa, no large leaf fits), then the last 4K: the PT becomes
 * uniform and collapses into one 2M leaf at 1G. */
static void test_collapse_flush_range(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	vmem_ept_flush fl;
	uint64_t leaf;
	unsigned lvl;
	assert_int_equal(vmem_ept_map(e, G, G, M2 - K4, RWX, VMEM_MT_WB, false, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0);
	assert_int_equal(vmem_ept_map(e, G + M2 - K4, G + M2 - K4, K4, RWX, VMEM_MT_WB, false, &fl), VMEM_OK);
	assert_int_equal(vmem_ept_lookup(e, G + 0x1234, &leaf, &lvl), VMEM_OK);
	assert_int_equal(lvl, 2);
	assert_int_equal(fl.flags, VMEM_EPT_FLUSH_INVEPT | VMEM_EPT_FLUSH_TABLES_FREED);
	assert_true(fl.start <= G && fl.end >= G + M2);
	vmem_ept_free(e);
}

/* vmem_ept_protect while a processor writes the pages: the processor sets
 * an EPT dirty flag with a locked write (SDM vol. 3C 29.3.5) whenever it
 * likes, and protect keeps A and D of the leaves it changes, so every D a
 * completed write set must still be there after it. Writes go through
 * vmem_ept_walk (its own compare-and-swap, as a processor's); protect
 * toggles X only, so every write is allowed. 512 4K leaves (hpa = gpa +
 * 4K: no large leaf, no collapse, the tables stay put); each round clears
 * the flags, writes every page once in a second thread while protect
 * keeps running, then checks all 512 D flags. Before protect kept the
 * flags atomically, a D set between its read and its store was lost (a
 * page dirtied but never logged), within the first rounds on two cores. */
struct protect_race {
	vmem_ept_mmu *m;
	vmem_gmem *host;
	int go, done, bad;
};

static void *protect_race_writer(void *arg)
{
	struct protect_race *r = arg;
	vmem_ept_access wr = { 0 };
	wr.type = VMEM_EPT_WRITE;
	while (!__atomic_load_n(&r->go, __ATOMIC_ACQUIRE))
		;
	for (uint64_t p = 0; p < 512; p++) {
		vmem_ept_result res;
		vmem_err rc;
		while ((rc = vmem_ept_walk(r->m, r->host, p << 12, &wr, 0, &res, NULL)) == VMEM_E_RETRY)
			;
		if (rc || res.status != VMEM_EPT_OK || !(res.entry & VMEM_EPT_D))
			__atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_protect_keeps_racing_dirty(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	struct protect_race r = { 0 };
	uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
	const uint64_t rw = VMEM_EPT_R | VMEM_EPT_W;
	vmem_ept_caps caps;
	assert_int_equal(vmem_ept_map(e, 0, K4, M2, rw, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_caps_init(&caps);
	assert_int_equal(vmem_gmem_new(NULL, &r.host), VMEM_OK);
	assert_int_equal(vmem_ept_foreach_table(e, reg_table, r.host), 0);
	assert_int_equal(vmem_ept_mmu_new(NULL, eptp, &caps, &r.m), VMEM_OK);
	/* The PT of [0, 2M): PML4E 0 -> PDPTE 0 -> PDE 0 (identity-"physical" pages). */
	uint64_t *pt = (uint64_t *)(uintptr_t)(eptp & ~0xfffull);
	for (unsigned L = 4; L > 1; L--)
		pt = (uint64_t *)(uintptr_t)(pt[0] & 0x000ffffffffff000ull);
	assert_int_equal(raw_lookup(eptp, 4, 511 << 12, &hpa, &leaf), 1);
	assert_int_equal(leaf, pt[511]);
	unsigned lost = 0;
	for (unsigned round = 0; round < 300 && !lost; round++) {
		for (unsigned p = 0; p < 512; p++)
			pt[p] &= ~(VMEM_EPT_A | VMEM_EPT_D);
		r.go = r.done = 0;
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, protect_race_writer, &r), 0);
		__atomic_store_n(&r.go, 1, __ATOMIC_RELEASE);
		for (unsigned k = 0; !__atomic_load_n(&r.done, __ATOMIC_ACQUIRE); k++)
			assert_int_equal(vmem_ept_protect(e, 0, M2, k & 1 ? rw | VMEM_EPT_X : rw, NULL), VMEM_OK);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(r.bad, 0);
		for (unsigned p = 0; p < 512; p++)
			lost += !(pt[p] & VMEM_EPT_D);
	}
	assert_int_equal(lost, 0);
	vmem_ept_mmu_free(r.m);
	vmem_gmem_free(r.host);
	vmem_ept_free(e);
}

/* A split replaces a large leaf by a table of 512 leaves with the same
 * translations, A and D included (a 2M leaf's D stands for each of its
 * pages, SDM vol. 3C 29.3.5). A processor may set A or D in the large leaf
 * at any moment, by a locked read-modify-write, until the leaf is gone
 * (29.3.5): a split that builds the table from the leaf as read and then
 * stores the table's entry over the leaf drops a D set in between, and the
 * written page reads clean ever after (a VMM's working-set or dirty scan
 * misses the write). The processor here: a walk of the raw tables, D set
 * by compare-and-swap on the leaf it reaches, walked again if the entry
 * changed meanwhile. Each round: [0, 2M) one 2M leaf, A and D clear; the
 * processor writes page 0x1ff while the tables are split; after both, the
 * 4K leaf of page 0x1ff must have D, wherever the write landed. */
#define SPLIT_ROUNDS (RUNNING_ON_VALGRIND ? 20u : 4000u)
struct split_race {
	uint64_t eptp;
	pthread_barrier_t start, end;
	unsigned ready, round;
	int stop;
};

static void *split_race_writer(void *arg)
{
	struct split_race *r = arg;
	for (;;) {
		pthread_barrier_wait(&r->start);
		if (__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST))
			return NULL;
		__atomic_fetch_add(&r->ready, 1, __ATOMIC_SEQ_CST); /* start with the split (not under Valgrind) */
		while (!RUNNING_ON_VALGRIND && __atomic_load_n(&r->ready, __ATOMIC_SEQ_CST) % 2)
			__builtin_ia32_pause();
		for (unsigned i = (r->round * 7) % 600; i; i--) /* anywhere in the split */
			__builtin_ia32_pause();
		for (;;) {
			uint64_t table = r->eptp & ~0xfffull, *p = NULL, v = 0;
			for (unsigned L = 4; L >= 1; L--) {
				p = &((uint64_t *)(uintptr_t)table)[(0x1ff000ull >> (12 + 9 * (L - 1))) & 511];
				v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
				if (L == 1 || (v & VMEM_EPT_PS))
					break;
				table = v & 0x000ffffffffff000ull;
			}
			if ((v & VMEM_EPT_D) || __atomic_compare_exchange_n(p, &v, v | VMEM_EPT_A | VMEM_EPT_D, false,
									   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				break;
		}
		pthread_barrier_wait(&r->end);
	}
}

static void test_split_keeps_racing_dirty(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	struct split_race r = { 0 };
	r.eptp = vmem_ept_eptp(e);
	pthread_barrier_init(&r.start, NULL, 2);
	pthread_barrier_init(&r.end, NULL, 2);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, split_race_writer, &r), 0);
	unsigned lost = 0;
	for (r.round = 0; r.round < SPLIT_ROUNDS && !lost; r.round++) {
		uint64_t hpa, leaf = 0;
		assert_int_equal(vmem_ept_map(e, 0, 0, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
		vmem_ept_flush_done(e);
		assert_int_equal(raw_lookup(r.eptp, 4, 0x1ff000, &hpa, &leaf), 2);
		assert_int_equal(leaf & (VMEM_EPT_A | VMEM_EPT_D), 0);
		pthread_barrier_wait(&r.start);
		__atomic_fetch_add(&r.ready, 1, __ATOMIC_SEQ_CST);
		while (!RUNNING_ON_VALGRIND && __atomic_load_n(&r.ready, __ATOMIC_SEQ_CST) % 2)
			__builtin_ia32_pause();
		assert_int_equal(vmem_ept_split(e, 0, M2, NULL), VMEM_OK);
		pthread_barrier_wait(&r.end);
		assert_int_equal(raw_lookup(r.eptp, 4, 0x1ff000, &hpa, &leaf), 1);
		lost += !(leaf & VMEM_EPT_D);
		assert_int_equal(vmem_ept_unmap(e, 0, M2, NULL), VMEM_OK);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_SEQ_CST);
	pthread_barrier_wait(&r.start);
	assert_int_equal(pthread_join(t, NULL), 0);
	pthread_barrier_destroy(&r.start);
	pthread_barrier_destroy(&r.end);
	assert_int_equal(lost, 0);
	vmem_ept_free(e);
}

/* The raw tables as one value: a hash of every table page's physical
 * address and 512 entries, in vmem_ept_foreach_table's order. */
static int hash_table(void *arg, void *page, uint64_t phys)
{
	uint64_t *h = arg;
	const uint64_t *q = page;
	*h = (*h ^ phys) * 0x100000001b3ull;
	for (unsigned i = 0; i < 512; i++)
		*h = (*h ^ q[i]) * 0x100000001b3ull;
	return 0;
}

static uint64_t tables_hash(const vmem_ept *e)
{
	uint64_t h = 0xcbf29ce484222325ull;
	assert_int_equal(vmem_ept_foreach_table(e, hash_table, &h), 0);
	return h;
}

/* Every mutation, not only map, fails at each of its allocations in turn:
 * the tables (every page and entry), the statistics and the live
 * allocations stay exactly as before; then it succeeds. The sequence
 * splits 1G and 2M leaves at both ends of a range (protect), unmaps
 * [1G - 4K, 2G + 4K) (splits), maps at an HPA that only 4K leaves fit
 * (splits), splits a 1G span to 4K, and protects all back (collapses). */
static int fi_protect(vmem_ept *e) { return vmem_ept_protect(e, 5 * M2 + K4, 3 * G, VMEM_EPT_R, NULL); }
static int fi_unmap(vmem_ept *e) { return vmem_ept_unmap(e, G - K4, G + 2 * K4, NULL); }
static int fi_map(vmem_ept *e)
{
	return vmem_ept_map(e, G + K4, 9 * G + M2 + K4, G - 2 * K4, RWX, VMEM_MT_UC, true, NULL);
}
static int fi_split(vmem_ept *e) { return vmem_ept_split(e, 2 * G + M2, G, NULL); }
static int fi_collapse(vmem_ept *e) { return vmem_ept_protect(e, 0, 4 * G, RWX, NULL); }

static void test_failure_injection_every_op(void **s)
{
	(void)s;
	int (*const op[])(vmem_ept *) = { fi_protect, fi_unmap, fi_map, fi_split, fi_collapse };
	struct failalloc fa;
	fa_init(&fa);
	vmem_ept *e = mk(&fa.a, true);
	assert_int_equal(vmem_ept_map(e, 0, 8 * G, 4 * G, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	for (unsigned o = 0; o < sizeof(op) / sizeof(op[0]); o++) {
		long k = 1;
		for (;; k++) {
			vmem_ept_stats before, after;
			uint64_t h = tables_hash(e);
			long live = fa.live;
			vmem_ept_get_stats(e, &before);
			fa.calls = 0;
			fa.fail_at = k;
			int rc = op[o](e);
			fa.fail_at = 0;
			if (rc == VMEM_OK)
				break;
			assert_int_equal(rc, VMEM_E_NOMEM);
			assert_int_equal(fa.live, live);
			assert_true(tables_hash(e) == h);
			vmem_ept_get_stats(e, &after);
			assert_memory_equal(&after, &before, sizeof(after));
		}
		if (op[o] != fi_collapse)
			assert_true(k > 1); /* each of these needed tables: its failures were exercised */
		vmem_ept_flush_done(e);
	}
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_int_equal(st.leaves_1g, 1); /* [3G, 4G) collapsed back; holes at 1G - 4K, 1G, 2G - 4K, 2G keep the rest apart */
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
}

/* A table page's physical address (the allocator's page_phys, alloc.h) is
 * what the entries above it and the EPTP hold: bits 51:12 of an entry are
 * the next table's address and bits 51:M (M = MAXPHYADDR) are reserved,
 * an EPT misconfiguration when set (SDM vol. 3C 29.3.2, Tables 29-1..29-6;
 * 29.3.3.1); the EPTP's bits 63:M must be 0 or VM entry fails (25.6.11,
 * 27.2.1.1). So a page at or above 2^M, or one not 4 KiB aligned (its low
 * bits would land in the entry's rights and memory type), is no table: the
 * operation that asked for it fails with VMEM_E_RANGE (an address outside
 * what a table may be at, as vmem_ept_grant refuses such memory), frees
 * what it took and leaves the tables as they were. With MAXPHYADDR 48:
 *   page + 2^48    (the hosted pages are below 2^47: at or above 2^48)
 *   page | 0x800   (not aligned)
 *   2^48 exactly   (the first address with bit 48 set)
 * each returned by the k-th page_phys call, k = 1, 2, ... of a map that
 * needs tables (as test_failure_injection's), and by the first call of
 * vmem_ept_new (the root). */
struct physalloc {
	struct failalloc fa; /* first: the allocator's ctx is the physalloc */
	long phys_calls, bad_at;
	unsigned kind;
};

static uint64_t pa_phys(void *ctx, const void *page)
{
	struct physalloc *p = ctx;
	uint64_t good = (uint64_t)(uintptr_t)page;
	if (++p->phys_calls != p->bad_at)
		return good;
	return p->kind == 0 ? good + (1ull << 48) : p->kind == 1 ? good | 0x800 : 1ull << 48;
}

static void test_table_phys_refused(void **s)
{
	(void)s;
	for (unsigned kind = 0; kind < 3; kind++) {
		struct physalloc pa;
		fa_init(&pa.fa);
		pa.fa.a.page_phys = pa_phys;
		pa.kind = kind;
		pa.phys_calls = 0;
		pa.bad_at = 1;
		vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = true, .eptp_mt = VMEM_MT_WB, .maxphyaddr = 48 };
		vmem_ept *e = NULL;
		assert_int_equal(vmem_ept_new(&pa.fa.a, &cfg, &e), VMEM_E_RANGE);
		assert_null(e);
		assert_int_equal(pa.fa.live, 0);
		pa.bad_at = 0;
		assert_int_equal(vmem_ept_new(&pa.fa.a, &cfg, &e), VMEM_OK);
		assert_int_equal(vmem_ept_grant(e, 0, 1ull << 40), VMEM_OK);
		assert_int_equal(vmem_ept_map(e, 6 * M2, 6 * M2, M2, VMEM_EPT_R, VMEM_MT_WB, false, NULL), VMEM_OK);
		uint64_t eptp = vmem_ept_eptp(e), hpa, leaf;
		long k;
		for (k = 1;; k++) {
			vmem_ept_stats before, after;
			uint64_t h = tables_hash(e);
			long live = pa.fa.live;
			vmem_ept_get_stats(e, &before);
			pa.phys_calls = 0;
			pa.bad_at = k;
			vmem_err rc = vmem_ept_map(e, 5 * M2 + 3 * K4, G + 5 * M2 + 3 * K4, 2 * M2 + 5 * K4, RWX, VMEM_MT_WB,
						   false, NULL);
			pa.bad_at = 0;
			if (rc == VMEM_OK)
				break;
			assert_int_equal(rc, VMEM_E_RANGE);
			assert_int_equal(pa.fa.live, live);
			assert_true(tables_hash(e) == h);
			vmem_ept_get_stats(e, &after);
			assert_memory_equal(&after, &before, sizeof(after));
			assert_int_equal(raw_lookup(eptp, 4, 5 * M2 + 3 * K4, &hpa, &leaf), 0);
			assert_true(k < 16);
		}
		assert_true(k > 2); /* the map made tables: each one's address was refused in turn */
		assert_int_equal(raw_lookup(eptp, 4, 5 * M2 + 3 * K4, &hpa, &leaf), 1);
		assert_int_equal(hpa, G + 5 * M2 + 3 * K4);
		vmem_ept_free(e);
		assert_int_equal(pa.fa.live, 0);
	}
}

/* Dirty logging holds 4K granularity (no collapse while it runs): a map
 * during EPT_D logging must not make a large leaf either. A processor
 * write sets D in the leaf that translates it (SDM vol. 3C 29.3.5); in a
 * 2M leaf that D cannot say which 4K page was written, and the harvest
 * (one bit per 4K page, dirty.h) would report page 512 for a write to
 * page 517. Logging [0, 8M) in EPT_D mode; unmap [2M, 4M) and map it
 * again at the same, 2M-aligned, HPA; write gpa 2M + 5 * 4K through the
 * EPT walk: the harvest must give exactly bit 512 + 5. */
static void test_map_while_logging_keeps_4k(void **s)
{
	(void)s;
	vmem_ept *e = mk(NULL, true);
	vmem_dirty *d;
	uint64_t bm[4 * 512 / 64] = { 0 }, leaf;
	unsigned lvl;
	assert_int_equal(vmem_ept_map(e, 0, 0, 4 * M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_dirty_new(NULL, e, 0, 4 * M2, &d), VMEM_OK);
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_EPT_D, NULL, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_unmap(e, M2, M2, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, M2, M2, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_result r = walk_one(e, M2 + 5 * K4 + 0x10, VMEM_EPT_WRITE);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, M2 + 5 * K4 + 0x10);
	assert_int_equal(vmem_dirty_harvest(d, bm, NULL), VMEM_OK);
	for (unsigned w = 0; w < 4 * 512 / 64; w++)
		assert_int_equal(bm[w], w == 8 ? 1ull << 5 : 0);
	assert_int_equal(vmem_ept_lookup(e, M2 + 5 * K4, &leaf, &lvl), VMEM_OK);
	assert_int_equal(lvl, 1);
	/* Logging off: maps make large leaves again. */
	assert_int_equal(vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_unmap(e, 2 * M2, M2, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 2 * M2, 2 * M2, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_lookup(e, 2 * M2, &leaf, &lvl), VMEM_OK);
	assert_int_equal(lvl, 2);
	vmem_dirty_free(d);
	vmem_ept_free(e);
}

/* A 2M leaf [4 * 2M, 5 * 2M) -> 10 * 2M (RWX, WB) and a 1G leaf [1G, 2G) ->
 * 3G (R, UC, ignore-PAT); then every allocation fails. */
static vmem_ept *two_large_leaves(struct failalloc *fa)
{
	fa_init(fa);
	vmem_ept *e = mk(&fa->a, true);
	assert_int_equal(vmem_ept_map(e, 4 * M2, 10 * M2, M2, RWX, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, G, 3 * G, G, VMEM_EPT_R, VMEM_MT_UC, true, NULL), VMEM_OK);
	fa->calls = 0;
	fa->fail_at = 1;
	return e;
}

/* The leaf for gpa: at level lvl, entry want (A/D aside). */
static void assert_leaf(const vmem_ept *e, uint64_t gpa, unsigned lvl, uint64_t want)
{
	uint64_t leaf;
	unsigned l;
	assert_int_equal(vmem_ept_lookup(e, gpa, &leaf, &l), VMEM_OK);
	assert_int_equal(l, lvl);
	assert_int_equal(leaf & ~(VMEM_EPT_A | VMEM_EPT_D), want);
}

/* Protecting part of a large leaf with the rights it already has changes
 * no entry: nothing to split, so no table to allocate and no INVEPT (SDM
 * vol. 3C 29.4.3.4 lists only changed entries; bit 7 stays as it is).
 * Before, the large leaf was split, then collapsed back: INVEPT, a table
 * freed, and VMEM_E_NOMEM possible for a no-op. */
static void test_protect_same_rights_no_split(void **s)
{
	(void)s;
	struct failalloc fa;
	vmem_ept *e = two_large_leaves(&fa);
	vmem_ept_flush fl;
	assert_int_equal(vmem_ept_protect(e, 4 * M2 + 7 * K4, K4, RWX, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0);
	assert_int_equal(vmem_ept_protect(e, G + M2 + K4, M2, VMEM_EPT_R, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0);
	fa.fail_at = 0;
	assert_leaf(e, 4 * M2 + 7 * K4, 2, 10 * M2 | RWX | (6u << 3) | VMEM_EPT_PS);
	assert_leaf(e, G + M2 + K4, 3, 3 * G | VMEM_EPT_R | VMEM_EPT_IPAT | VMEM_EPT_PS);
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
}

/* The same for map: mapping part of a large leaf exactly as the leaf
 * already maps it (HPA at the same offset, rights, memory type, ignore-PAT)
 * changes no entry, so no split, no allocation, no INVEPT. A 4K inside the
 * 2M leaf (gpa 4 * 2M + 7 * 4K -> 10 * 2M + 7 * 4K) and 2M + 4K inside the
 * 1G leaf (gpa 1G + 2M -> 3G + 2M); one 4K page at another HPA still
 * splits (and needs INVEPT: bits 51:12 change). */
static void test_map_same_inside_large_no_split(void **s)
{
	(void)s;
	struct failalloc fa;
	vmem_ept *e = two_large_leaves(&fa);
	vmem_ept_flush fl;
	assert_int_equal(vmem_ept_map(e, 4 * M2 + 7 * K4, 10 * M2 + 7 * K4, K4, RWX, VMEM_MT_WB, false, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0);
	assert_int_equal(vmem_ept_map(e, G + M2, 3 * G + M2, M2 + K4, VMEM_EPT_R, VMEM_MT_UC, true, &fl), VMEM_OK);
	assert_int_equal(fl.flags, 0);
	fa.fail_at = 0;
	assert_leaf(e, 4 * M2 + 7 * K4, 2, 10 * M2 | RWX | (6u << 3) | VMEM_EPT_PS);
	assert_leaf(e, G + M2, 3, 3 * G | VMEM_EPT_R | VMEM_EPT_IPAT | VMEM_EPT_PS);
	assert_int_equal(vmem_ept_map(e, 4 * M2 + 7 * K4, 20 * M2, K4, RWX, VMEM_MT_WB, false, &fl), VMEM_OK);
	assert_true(fl.flags & VMEM_EPT_FLUSH_INVEPT);
	assert_leaf(e, 4 * M2 + 7 * K4, 1, 20 * M2 | RWX | (6u << 3));
	vmem_ept_free(e);
	assert_int_equal(fa.live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eptp_and_single_4k),
		cmocka_unit_test(test_large_leaves_and_range),
		cmocka_unit_test(test_split_and_collapse),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_failure_injection),
		cmocka_unit_test(test_5level),
		cmocka_unit_test(test_random_model),
		cmocka_unit_test(test_remap_identical_keeps_ad),
		cmocka_unit_test(test_grant_beyond_52_bits),
		cmocka_unit_test(test_collapse_flush_range),
		cmocka_unit_test(test_protect_keeps_racing_dirty),
		cmocka_unit_test(test_failure_injection_every_op),
		cmocka_unit_test(test_map_while_logging_keeps_4k),
		cmocka_unit_test(test_protect_same_rights_no_split),
		cmocka_unit_test(test_map_same_inside_large_no_split),
		cmocka_unit_test(test_table_phys_refused),
		cmocka_unit_test(test_split_keeps_racing_dirty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
