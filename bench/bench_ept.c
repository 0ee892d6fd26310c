/* bench_ept: EPT map, EPT and nested walks, dirty harvest and TLB hits, each timed against a plain loop in the same run. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/tlb.h>
#include <libvmem/walk.h>

#include "bench_rng.h"
#include "calib.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define PERM_RWX (VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X)
#define ADDR_MASK 0x000ffffffffff000ull

static struct {
	const char *only_case; /* NULL: all */
	const char *only;      /* NULL, "lib" or "base" (callgrind) */
	unsigned reps;
	size_t n;              /* walks / lookups per repetition */
	uint64_t map_size, dirty_size;
	unsigned pct;          /* harvest: only this dirty percentage (0: 1, 10 and 100) */
	bool smoke;
	bool pool_4k;          /* --pool-4k: no MADV_HUGEPAGE on the table pool */
} opt = { NULL, NULL, 7, 1u << 20, 64 * GIB, 16 * GIB, 0, false, false };

volatile uint64_t bench_sink;

/* Timed loops keep their own symbol (no inlining, no constprop clones) for callgrind. */
#if defined(__clang__)
#define BENCH_LOOP __attribute__((noinline))
#else
#define BENCH_LOOP __attribute__((noinline, noclone))
#endif

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool run_lib(void) { return !opt.only || !strcmp(opt.only, "lib"); }
static bool run_base(void) { return !opt.only || !strcmp(opt.only, "base"); }

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_ept: %s failed (%d)\n", what, err);
	exit(1);
}

/* ---------------------------------------------------------------------- */
/* A table-page pool: one mmap'd arena, pages handed out in order, freed pages
 * kept (and zeroed when handed out again), as a VMM's own pool would be.
 * Host-physical address = virtual address (page_phys NULL), so the whole
 * arena is one host-memory slot for the walks. */

struct arena {
	uint8_t *base;
	size_t size, used;
	void **free;
	size_t nfree, capfree;
	vmem_allocator a;
};

static void *ar_alloc(void *ctx, size_t size) { (void)ctx; return calloc(1, size); }
static void ar_free(void *ctx, void *p, size_t size) { (void)ctx; (void)size; free(p); }

static void *ar_page(void *ctx)
{
	struct arena *ar = ctx;
	if (ar->nfree) {
		void *p = ar->free[--ar->nfree];
		memset(p, 0, 4096);
		return p;
	}
	if (ar->used + 4096 > ar->size)
		return NULL;
	void *p = ar->base + ar->used; /* fresh anonymous memory: zero */
	ar->used += 4096;
	return p;
}

static void ar_free_page(void *ctx, void *p)
{
	struct arena *ar = ctx;
	if (ar->nfree == ar->capfree) {
		ar->capfree = ar->capfree ? 2 * ar->capfree : 4096;
		ar->free = realloc(ar->free, ar->capfree * sizeof(void *));
		if (!ar->free)
			die("realloc", 0);
	}
	ar->free[ar->nfree++] = p;
}

static void arena_init(struct arena *ar, size_t size, bool thp)
{
	memset(ar, 0, sizeof(*ar));
	ar->size = size;
	ar->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ar->base == MAP_FAILED)
		die("mmap", 0);
#ifdef MADV_HUGEPAGE
	/* The map cases: a VMM's table pool backed by transparent huge pages
	 * where the kernel allows it (a hint: ignored with THP off), so that a
	 * first touch faults in 2 MiB, not 4 KiB (--pool-4k: plain 4 KiB pages).
	 * The walk cases and the 4K harvest rows keep 4 KiB pages, as they were measured. */
	if (thp && !opt.pool_4k)
		(void)madvise(ar->base, size, MADV_HUGEPAGE);
#else
	(void)thp;
#endif
	ar->a = (vmem_allocator){ ar_alloc, ar_free, ar_page, ar_free_page, ar, NULL };
}

static void arena_fini(struct arena *ar)
{
	munmap(ar->base, ar->size);
	free(ar->free);
	memset(ar, 0, sizeof(*ar));
}

static vmem_ept *ept_create(struct arena *ar, bool ad)
{
	vmem_ept_config cfg = { .levels = 4, .ad = ad, .gbpages = true, .exec_only = true,
				.mbec = false, .eptp_mt = VMEM_MT_WB };
	vmem_ept *e;
	int err = vmem_ept_new(&ar->a, &cfg, &e);
	if (err)
		die("vmem_ept_new", err);
	return e;
}

/* Size of the arena for mapping `size` bytes with 4K leaves (PTs + PDs + slack). */
static size_t arena_for(uint64_t size) { return (size_t)((size >> 21) * 4096 + (size >> 30) * 4096 + 64 * 4096); }

/* ---------------------------------------------------------------------- */
/* Plain reference loops: what the same job costs written without any of the
 * library's checks (pointer = host-physical address). */

/* A 4-level EPT walk: present check, page sizes, nothing else. */
static inline uint64_t plain_ept(uint64_t eptp, uint64_t gpa)
{
	uint64_t t = eptp & ADDR_MASK;
	for (int l = 4;; l--) {
		unsigned shift = 12 + 9 * (unsigned)(l - 1);
		uint64_t e = ((const uint64_t *)(uintptr_t)t)[(gpa >> shift) & 511];
		if (!(e & 7))
			return ~0ull;
		if (l == 1 || (e & VMEM_EPT_PS)) {
			uint64_t m = (1ull << shift) - 1;
			return ((e & ADDR_MASK) & ~m) | (gpa & m);
		}
		t = e & ADDR_MASK;
	}
}

/* The leaf entry for gpa (4K leaves), or NULL. */
static uint64_t *plain_leaf(uint64_t eptp, uint64_t gpa)
{
	uint64_t t = eptp & ADDR_MASK;
	for (int l = 4; l > 1; l--) {
		uint64_t e = ((const uint64_t *)(uintptr_t)t)[(gpa >> (12 + 9 * (l - 1))) & 511];
		if (!(e & 7) || (e & VMEM_EPT_PS))
			return NULL;
		t = e & ADDR_MASK;
	}
	return &((uint64_t *)(uintptr_t)t)[(gpa >> 12) & 511];
}

/* ---------------------------------------------------------------------- */
/* Timed loops: noinline so callgrind can toggle collection on exactly them. */

BENCH_LOOP uint64_t loop_map_lib(vmem_ept *e, uint64_t gpa, uint64_t hpa, uint64_t size);
BENCH_LOOP uint64_t loop_map_lib_warm(vmem_ept *e, uint64_t gpa, uint64_t hpa, uint64_t size);
BENCH_LOOP uint64_t loop_map_base(uint64_t *flat, size_t n, uint64_t hpa, uint64_t step);
BENCH_LOOP uint64_t loop_ept_lib(const vmem_ept_mmu *m, vmem_gmem *h, const uint64_t *gpa, size_t n);
BENCH_LOOP uint64_t loop_ept_base(uint64_t eptp, const uint64_t *gpa, size_t n);
BENCH_LOOP uint64_t loop_nested_lib(const vmem_mmu *g, const vmem_ept_mmu *m, vmem_gmem *h,
				    const uint64_t *la, size_t n);
BENCH_LOOP uint64_t loop_nested_base(uint64_t cr3, uint64_t eptp, const uint64_t *la, size_t n);
BENCH_LOOP uint64_t loop_nested_pwc_lib(const vmem_mmu *g, const vmem_ept_mmu *m, vmem_gmem *h, vmem_ept_pwc *c,
					const uint64_t *la, size_t n);
BENCH_LOOP uint64_t loop_harvest_lib(vmem_dirty *d, uint64_t *out);
BENCH_LOOP uint64_t loop_harvest_base(uint64_t eptp, uint64_t size, uint64_t *out);
BENCH_LOOP uint64_t loop_harvest_floor(const uint64_t *tables, size_t n);
BENCH_LOOP uint64_t loop_harvest_pml_base(uint64_t eptp, vmem_pml *pml, uint64_t *bm, uint64_t pages, uint64_t *out);
BENCH_LOOP void loop_pml_drain_base(vmem_pml *pml, uint64_t *bm, uint64_t pages);
BENCH_LOOP uint64_t loop_tlb_lib(const vmem_tlb *t, const vmem_tlb_tag *tag, const uint64_t *la, size_t n);
BENCH_LOOP uint64_t loop_tlb_base(const uint64_t *tbl, unsigned bits, const uint64_t *la, size_t n);

/* The map call; two timed symbols use it so callgrind counts cold and warm apart. */
static inline uint64_t do_map(vmem_ept *e, uint64_t gpa, uint64_t hpa, uint64_t size)
{
	vmem_ept_flush fl;
	int err = vmem_ept_map(e, gpa, hpa, size, PERM_RWX, VMEM_MT_WB, false, &fl);
	if (err)
		die("vmem_ept_map", err);
	return fl.flags;
}

uint64_t loop_map_lib(vmem_ept *e, uint64_t gpa, uint64_t hpa, uint64_t size)
{
	return do_map(e, gpa, hpa, size);
}

uint64_t loop_map_lib_warm(vmem_ept *e, uint64_t gpa, uint64_t hpa, uint64_t size)
{
	return do_map(e, gpa, hpa, size);
}

/* Store n leaf values in a flat array: the memory floor of writing the leaves. */
uint64_t loop_map_base(uint64_t *flat, size_t n, uint64_t hpa, uint64_t step)
{
	uint64_t v = hpa | PERM_RWX | ((uint64_t)VMEM_MT_WB << 3) | (step > 4096 ? VMEM_EPT_PS : 0);
	for (size_t i = 0; i < n; i++, v += step)
		flat[i] = v;
	return flat[n / 2];
}

uint64_t loop_ept_lib(const vmem_ept_mmu *m, vmem_gmem *h, const uint64_t *gpa, size_t n)
{
	uint64_t sum = 0;
	vmem_ept_access acc = { .type = VMEM_EPT_READ };
	vmem_ept_result r;
	for (size_t i = 0; i < n; i++) {
		vmem_ept_walk(m, h, gpa[i], &acc, VMEM_EPT_NO_AD, &r, NULL);
		sum += r.hpa ^ r.status;
	}
	return sum;
}

uint64_t loop_ept_base(uint64_t eptp, const uint64_t *gpa, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += plain_ept(eptp, gpa[i]);
	return sum;
}

uint64_t loop_nested_lib(const vmem_mmu *g, const vmem_ept_mmu *m, vmem_gmem *h, const uint64_t *la, size_t n)
{
	uint64_t sum = 0;
	vmem_nested_result r;
	for (size_t i = 0; i < n; i++) {
		vmem_nested_walk(g, m, h, la[i], VMEM_ACC_READ, VMEM_WALK_NO_AD, &r, NULL);
		sum += r.hpa ^ r.status;
	}
	return sum;
}

/* The same walks through the opt-in EPT paging-structure cache that survives walks. */
uint64_t loop_nested_pwc_lib(const vmem_mmu *g, const vmem_ept_mmu *m, vmem_gmem *h, vmem_ept_pwc *c,
			     const uint64_t *la, size_t n)
{
	uint64_t sum = 0;
	vmem_nested_result r;
	for (size_t i = 0; i < n; i++) {
		vmem_nested_walk_pwc(g, m, h, c, la[i], VMEM_ACC_READ, VMEM_WALK_NO_AD, &r);
		sum += r.hpa ^ r.status;
	}
	return sum;
}

/* A 4-level guest walk, each entry's guest-physical address through plain_ept, then the final access. */
static inline uint64_t plain_nested(uint64_t cr3, uint64_t eptp, uint64_t la)
{
	uint64_t t = cr3 & ADDR_MASK;
	for (int l = 4;; l--) {
		unsigned shift = 12 + 9 * (unsigned)(l - 1);
		uint64_t hpa = plain_ept(eptp, t + ((la >> shift) & 511) * 8);
		if (hpa == ~0ull)
			return ~0ull;
		uint64_t e = *(const uint64_t *)(uintptr_t)hpa;
		if (!(e & 1))
			return ~0ull;
		if (l == 1 || (l <= 3 && (e & (1ull << 7)))) {
			uint64_t m = (1ull << shift) - 1;
			return plain_ept(eptp, ((e & ADDR_MASK) & ~m) | (la & m));
		}
		t = e & ADDR_MASK;
	}
}

uint64_t loop_nested_base(uint64_t cr3, uint64_t eptp, const uint64_t *la, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += plain_nested(cr3, eptp, la[i]);
	return sum;
}

uint64_t loop_harvest_lib(vmem_dirty *d, uint64_t *out)
{
	vmem_ept_flush fl;
	int err = vmem_dirty_harvest(d, out, &fl);
	if (err)
		die("vmem_dirty_harvest", err);
	return fl.flags;
}

/* Visit every leaf of [0, size), test-and-clear D with plain loads and stores. */
static void plain_harvest_table(uint64_t *t, int l, uint64_t base, uint64_t size, uint64_t *out)
{
	uint64_t esz = 1ull << (12 + 9 * (l - 1));
	for (unsigned i = 0; i < 512 && base + i * esz < size; i++) {
		uint64_t e = t[i];
		if (!(e & 7))
			continue;
		if (l > 1) {
			plain_harvest_table((uint64_t *)(uintptr_t)(e & ADDR_MASK), l - 1, base + i * esz, size, out);
		} else if (e & VMEM_EPT_D) {
			t[i] = e & ~VMEM_EPT_D;
			uint64_t p = (base >> 12) + i;
			out[p / 64] |= 1ull << (p % 64);
		}
	}
}

uint64_t loop_harvest_base(uint64_t eptp, uint64_t size, uint64_t *out)
{
	memset(out, 0, (size >> 12) / 8);
	plain_harvest_table((uint64_t *)(uintptr_t)(eptp & ADDR_MASK), 4, 0, size, out);
	return out[0];
}

/* The memory floor of a harvest that reads every leaf: one sequential read
 * of the table arena (all leaf tables and the few tables above them). */
uint64_t loop_harvest_floor(const uint64_t *tables, size_t n)
{
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (size_t i = 0; i + 4 <= n; i += 4)
		a |= tables[i], b |= tables[i + 1], c |= tables[i + 2], d |= tables[i + 3];
	return a | b | c | d;
}

/* A VMM's own drain of a PML page (SDM 29.3.6: entries index+1 .. 511) into its bitmap. */
void loop_pml_drain_base(vmem_pml *pml, uint64_t *bm, uint64_t pages)
{
	for (unsigned k = pml->index > 511 ? 0 : pml->index + 1u; k < 512; k++) {
		uint64_t p = pml->log[k] >> 12;
		if (p < pages)
			bm[p / 64] |= 1ull << (p % 64);
	}
	pml->index = 511;
}

/* PML harvest by hand: drain the rest of the log, hand the bitmap out and
 * clear D of each logged page through a plain pointer walk. */
uint64_t loop_harvest_pml_base(uint64_t eptp, vmem_pml *pml, uint64_t *bm, uint64_t pages, uint64_t *out)
{
	loop_pml_drain_base(pml, bm, pages);
	for (uint64_t w = 0; w < pages / 64; w++) {
		uint64_t bits = bm[w];
		bm[w] = 0;
		out[w] = bits;
		for (; bits; bits &= bits - 1)
			*plain_leaf(eptp, (w * 64 + (uint64_t)__builtin_ctzll(bits)) << 12) &= ~VMEM_EPT_D;
	}
	return out[0];
}

uint64_t loop_tlb_lib(const vmem_tlb *t, const vmem_tlb_tag *tag, const uint64_t *la, size_t n)
{
	uint64_t sum = 0, pa;
	unsigned perms;
	vmem_tlb_view bound;
	vmem_tlb_bind(t, tag, &bound);
	/* A copy whose address only the inline hit path sees: its fields stay in registers. */
	const vmem_tlb_view v = bound;
	for (size_t i = 0; i < n; i++) {
		/* The inline 4K hit path, then the full lookup (large pages, misses). */
		if (!vmem_tlb_hit4k(&v, la[i], &pa, &perms)) {
			vmem_tlb_xlat x;
			pa = vmem_tlb_lookup(t, tag, la[i], &x) ? x.pa : 0;
		}
		sum += pa;
	}
	return sum;
}

/* A direct-mapped table of (tag, pa) pairs: the floor of a TLB hit. */
uint64_t loop_tlb_base(const uint64_t *tbl, unsigned bits, const uint64_t *la, size_t n)
{
	uint64_t sum = 0, mask = (1ull << bits) - 1;
	for (size_t i = 0; i < n; i++) {
		uint64_t vpn = la[i] >> 12;
		const uint64_t *e = &tbl[2 * (vpn & mask)];
		if (e[0] == vpn + 1)
			sum += e[1] | (la[i] & 4095);
	}
	return sum;
}

/* ---------------------------------------------------------------------- */
/* Results. */

struct row {
	const char *name, *unit;
	double lib, base;      /* medians, in unit */
	double per_op_ns;      /* lib: ns per entry / walk / page */
	const char *extra;
	char buf[96];
};
static struct row rows[32];
static unsigned nrows;

static struct row *add_row(const char *name, const char *unit)
{
	struct row *r = &rows[nrows++];
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->unit = unit;
	return r;
}

static bool want(const char *name)
{
	return !opt.only_case || !strncmp(opt.only_case, name, strlen(opt.only_case));
}

/* ---------------------------------------------------------------------- */
/* (1) Mapping: 64 GiB with 4K, 2M and 1G leaves, cold (fresh pool) and warm. */

static const uint64_t HPA_BASE = 0x100000000000ull; /* 16 TiB: granted, never touched */

static void bench_map(const char *name, uint64_t leaf)
{
	char cold_name[32], warm_name[32];
	snprintf(cold_name, sizeof(cold_name), "%s-cold", name);
	snprintf(warm_name, sizeof(warm_name), "%s-warm", name);
	if (!want(cold_name) && !want(warm_name))
		return;
	uint64_t size = opt.map_size;
	size_t nleaf = (size_t)(size / leaf);
	double *tc = calloc(opt.reps, sizeof(double)), *tw = calloc(opt.reps, sizeof(double)),
	       *tb = calloc(opt.reps, sizeof(double));
	uint64_t *flat = NULL;
	if (run_base()) {
		flat = malloc(nleaf * 8);
		if (!flat)
			die("malloc", 0);
		memset(flat, 0, nleaf * 8);
	}
	vmem_ept_stats st;
	memset(&st, 0, sizeof(st));
	for (unsigned r = 0; r < opt.reps; r++) {
		if (run_lib()) {
			struct arena ar;
			arena_init(&ar, arena_for(size), true);
			vmem_ept *e = ept_create(&ar, false);
			vmem_ept_grant(e, HPA_BASE, size);
			/* A real VMM maps 4K pages when its memory backing is 4K: the
			 * 4K case maps each 2M run from a misaligned HPA (+4K), so that
			 * no large leaf fits. */
			uint64_t hpa = leaf == 4096 ? HPA_BASE + 4096 : HPA_BASE;
			uint64_t gsize = leaf == 4096 ? size - 4096 : size;
			if (leaf == 2 * MIB) {
				/* 2M leaves only: 1G leaves off via a misaligned-by-2M HPA. */
				hpa = HPA_BASE + 2 * MIB;
				gsize = size - 2 * MIB;
			}
			double t0 = now_ns();
			bench_sink += loop_map_lib(e, 0, hpa, gsize);
			tc[r] = now_ns() - t0;
			vmem_ept_get_stats(e, &st);
			vmem_ept_flush fl;
			int err = vmem_ept_unmap(e, 0, gsize, &fl);
			if (err)
				die("vmem_ept_unmap", err);
			vmem_ept_flush_done(e);
			t0 = now_ns();
			bench_sink += loop_map_lib_warm(e, 0, hpa, gsize);
			tw[r] = now_ns() - t0;
			vmem_ept_free(e);
			arena_fini(&ar);
		}
		if (run_base()) {
			double t0 = now_ns();
			bench_sink += loop_map_base(flat, nleaf, HPA_BASE, leaf);
			tb[r] = now_ns() - t0;
		}
	}
	double base = run_base() ? median(tb, opt.reps) / 1e6 : 0;
	const char *unit = "ms / 64 GiB";
	struct row *rc = add_row(name[3] == '4' ? "map 4K cold" : name[3] == '2' ? "map 2M cold" : "map 1G cold", unit);
	rc->lib = run_lib() ? median(tc, opt.reps) / 1e6 : 0;
	rc->base = base;
	rc->per_op_ns = rc->lib * 1e6 / (double)nleaf;
	uint64_t leaves = st.leaves_4k + st.leaves_2m + st.leaves_1g;
	snprintf(rc->buf, sizeof(rc->buf), "%.0f M entries/s; tables %.1f MiB (%" PRIu64 " pages); leaves 4K %" PRIu64 " 2M %" PRIu64 " 1G %" PRIu64,
		 rc->lib > 0 ? (double)leaves / (rc->lib * 1e3) : 0, (double)st.table_pages * 4096 / MIB,
		 st.table_pages, st.leaves_4k, st.leaves_2m, st.leaves_1g);
	rc->extra = rc->buf;
	struct row *rw = add_row(name[3] == '4' ? "map 4K warm" : name[3] == '2' ? "map 2M warm" : "map 1G warm", unit);
	rw->lib = run_lib() ? median(tw, opt.reps) / 1e6 : 0;
	rw->base = base;
	rw->per_op_ns = rw->lib * 1e6 / (double)nleaf;
	snprintf(rw->buf, sizeof(rw->buf), "%.0f M entries/s (after unmap + vmem_ept_flush_done)",
		 rw->lib > 0 ? (double)leaves / (rw->lib * 1e3) : 0);
	rw->extra = rw->buf;
	free(flat);
	free(tc);
	free(tw);
	free(tb);
}

/* ---------------------------------------------------------------------- */
/* (2) EPT walk and nested walk. */

struct walk_env {
	struct arena ar;
	vmem_ept *ept;
	vmem_ept_mmu *mmu;
	vmem_gmem *host;
	uint8_t *guest;        /* guest RAM (host memory), 2M aligned */
	uint64_t guest_size;
	vmem_mmu *gmmu;
	uint64_t cr3;          /* guest-physical */
};

static void gen_addrs(uint64_t *a, size_t n, uint64_t base, uint64_t span, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i < n; i++)
		a[i] = base + (rng_next(&s) % span);
}

static void time_pair(const char *label, const char *extra, double (*lib)(void *), double (*base)(void *),
		      void *arg, size_t n)
{
	double *tl = calloc(opt.reps, sizeof(double)), *tb = calloc(opt.reps, sizeof(double));
	/* one warm-up of each */
	if (run_lib())
		lib(arg);
	if (run_base())
		base(arg);
	for (unsigned r = 0; r < opt.reps; r++) {
		/* alternate the order so slow drifts cancel */
		if (r & 1) {
			if (run_base()) tb[r] = base(arg);
			if (run_lib()) tl[r] = lib(arg);
		} else {
			if (run_lib()) tl[r] = lib(arg);
			if (run_base()) tb[r] = base(arg);
		}
	}
	struct row *row = add_row(label, "ns / op");
	row->lib = run_lib() ? median(tl, opt.reps) / (double)n : 0;
	row->base = run_base() ? median(tb, opt.reps) / (double)n : 0;
	row->per_op_ns = row->lib;
	row->extra = extra;
	free(tl);
	free(tb);
}

struct walk_arg {
	struct walk_env *env;
	const uint64_t *addr;
	size_t n;
};

static double ept_lib_once(void *p)
{
	struct walk_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_ept_lib(a->env->mmu, a->env->host, a->addr, a->n);
	return now_ns() - t0;
}

static double ept_base_once(void *p)
{
	struct walk_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_ept_base(vmem_ept_eptp(a->env->ept), a->addr, a->n);
	return now_ns() - t0;
}

static double nested_lib_once(void *p)
{
	struct walk_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_nested_lib(a->env->gmmu, a->env->mmu, a->env->host, a->addr, a->n);
	return now_ns() - t0;
}

/* nested-pwc-*: the walks and their cache (nested_base_once takes its first member). */
struct nested_pwc_arg {
	struct walk_arg w;
	vmem_ept_pwc *pwc;
};

static double nested_pwc_lib_once(void *p)
{
	struct nested_pwc_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_nested_pwc_lib(a->w.env->gmmu, a->w.env->mmu, a->w.env->host, a->pwc, a->w.addr, a->w.n);
	return now_ns() - t0;
}

static double nested_base_once(void *p)
{
	struct walk_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_nested_base(a->env->cr3, vmem_ept_eptp(a->env->ept), a->addr, a->n);
	return now_ns() - t0;
}

static void host_add_arena(struct walk_env *w)
{
	int err = vmem_gmem_add_ram(w->host, (uint64_t)(uintptr_t)w->ar.base, w->ar.size, w->ar.base, 0);
	if (err)
		die("vmem_gmem_add_ram(arena)", err);
}

static void walk_env_mmu(struct walk_env *w)
{
	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	int err = vmem_ept_mmu_new(NULL, vmem_ept_eptp(w->ept), &caps, &w->mmu);
	if (err)
		die("vmem_ept_mmu_new", err);
}

/* Check both walkers give the same host-physical addresses. */
static void agree_ept(struct walk_env *w, const uint64_t *a, size_t n)
{
	vmem_ept_access acc = { .type = VMEM_EPT_READ };
	for (size_t i = 0; i < n; i++) {
		vmem_ept_result r;
		vmem_ept_walk(w->mmu, w->host, a[i], &acc, VMEM_EPT_NO_AD, &r, NULL);
		uint64_t b = plain_ept(vmem_ept_eptp(w->ept), a[i]);
		if (r.status != VMEM_EPT_OK || r.hpa != b) {
			fprintf(stderr, "EPT walk disagreement at %#" PRIx64 ": lib status %u hpa %#" PRIx64 ", plain %#" PRIx64 "\n",
				a[i], r.status, r.hpa, b);
			exit(1);
		}
	}
}

static void bench_ept_walk(const char *name, uint64_t span, uint64_t leaf)
{
	if (!want(name))
		return;
	struct walk_env w;
	memset(&w, 0, sizeof(w));
	arena_init(&w.ar, arena_for(span), false);
	w.ept = ept_create(&w.ar, false);
	vmem_ept_grant(w.ept, HPA_BASE, span + 4096);
	int err = vmem_ept_map(w.ept, 0, leaf == 4096 ? HPA_BASE + 4096 : HPA_BASE, span, PERM_RWX, VMEM_MT_WB, false, NULL);
	if (err)
		die("vmem_ept_map", err);
	if (vmem_gmem_new(NULL, &w.host))
		die("vmem_gmem_new", 0);
	host_add_arena(&w);
	walk_env_mmu(&w);
	size_t n = opt.n;
	uint64_t *a = malloc(n * 8);
	gen_addrs(a, n, 0, span, 0x1234 + span);
	agree_ept(&w, a, n < 4096 ? n : 4096);
	vmem_ept_stats st;
	vmem_ept_get_stats(w.ept, &st);
	static char buf[4][96];
	static unsigned nb;
	char *extra = buf[nb++ % 4];
	snprintf(extra, 96, "%.2f MiB of EPT tables, random GPAs, 4 levels, no A/D", (double)st.table_pages * 4096 / MIB);
	struct walk_arg arg = { &w, a, n };
	time_pair(name, extra, ept_lib_once, ept_base_once, &arg, n);
	free(a);
	vmem_ept_mmu_free(w.mmu);
	vmem_gmem_free(w.host);
	vmem_ept_free(w.ept);
	arena_fini(&w.ar);
}

/* A guest with 4-level paging mapping 64 MiB of linear space with 4K pages
 * (tables in guest RAM), under EPT with 4K or 2M leaves. Walks of random
 * addresses over `span` bytes of it: all 64 MiB (256 KiB of leaf tables, the
 * L2's size), or 2 MiB (one guest page table, one EPT page table: every
 * entry the walk reads stays in the L1, as the issue's floor of 24 dependent
 * L1 loads assumes). */
#define G_DATA (64 * MIB)
#define G_TABLES G_DATA           /* guest-physical address of the guest's tables */
#define G_SIZE (G_DATA + 2 * MIB)
#define G_LA 0x00007f0000000000ull

static void put_g(struct walk_env *w, uint64_t gpa, uint64_t v) { memcpy(w->guest + gpa, &v, 8); }

static void bench_nested(const char *name, const char *pwc_name, bool ept4k, uint64_t span)
{
	assert(span <= G_DATA && span % (2 * MIB) == 0);
	if (!want(name) && !(pwc_name && want(pwc_name)))
		return;
	struct walk_env w;
	memset(&w, 0, sizeof(w));
	w.guest_size = G_SIZE;
	w.guest = aligned_alloc(2 * MIB, G_SIZE);
	if (!w.guest)
		die("aligned_alloc", 0);
	memset(w.guest, 0, G_SIZE);
	/* Guest tables: PML4 at G_TABLES, PDPT +4K, PD +8K, 32 PTs from +12K. */
	const uint64_t pml4 = G_TABLES, pdpt = G_TABLES + 4096, pd = G_TABLES + 8192, pt0 = G_TABLES + 12288;
	const uint64_t F = 0x67; /* P RW US A D */
	put_g(&w, pml4 + ((G_LA >> 39) & 511) * 8, pdpt | F);
	put_g(&w, pdpt + ((G_LA >> 30) & 511) * 8, pd | F);
	for (uint64_t i = 0; i < G_DATA / (2 * MIB); i++)
		put_g(&w, pd + (((G_LA >> 21) & 511) + i) * 8, (pt0 + i * 4096) | F);
	for (uint64_t p = 0; p < G_DATA / 4096; p++)
		put_g(&w, pt0 + p * 8, (p * 4096) | F);
	w.cr3 = pml4;

	arena_init(&w.ar, arena_for(G_SIZE), false);
	w.ept = ept_create(&w.ar, false);
	uint64_t hbase = (uint64_t)(uintptr_t)w.guest;
	vmem_ept_grant(w.ept, hbase, G_SIZE);
	int err = vmem_ept_map(w.ept, 0, hbase, G_SIZE, PERM_RWX, VMEM_MT_WB, false, NULL);
	if (!err && ept4k)
		err = vmem_ept_split(w.ept, 0, G_SIZE, NULL);
	if (err)
		die("vmem_ept_map/split", err);
	if (vmem_gmem_new(NULL, &w.host))
		die("vmem_gmem_new", 0);
	host_add_arena(&w);
	if ((err = vmem_gmem_add_ram(w.host, hbase, G_SIZE, w.guest, 0)))
		die("vmem_gmem_add_ram(guest)", err);
	walk_env_mmu(&w);
	vmem_regs regs;
	vmem_regs_init(&regs);
	regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	regs.cr4 = VMEM_CR4_PAE;
	regs.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	regs.cr3 = w.cr3;
	if ((err = vmem_mmu_new(NULL, &regs, &w.gmmu)))
		die("vmem_mmu_new", err);

	size_t n = opt.n;
	uint64_t *a = malloc(n * 8);
	vmem_ept_pwc *arg_pwc = NULL;
	gen_addrs(a, n, G_LA, span, 0x77);
	for (size_t i = 0; i < (n < 4096 ? n : 4096); i++) {
		vmem_nested_result r;
		vmem_nested_walk(w.gmmu, w.mmu, w.host, a[i], VMEM_ACC_READ, VMEM_WALK_NO_AD, &r, NULL);
		uint64_t b = plain_nested(w.cr3, vmem_ept_eptp(w.ept), a[i]);
		if (r.status != VMEM_NESTED_OK || r.hpa != b || r.hpa != hbase + (a[i] - G_LA)) {
			fprintf(stderr, "nested disagreement at %#" PRIx64 ": lib status %u hpa %#" PRIx64 ", plain %#" PRIx64 "\n",
				a[i], r.status, r.hpa, b);
			exit(1);
		}
	}
	/* The fast path (no trace) against the full walk (a trace forces it), every
	 * field, for reads, writes and fetches, with and without A/D writes. */
	for (size_t i = 0; i < (n < 1024 ? n : 1024); i++) {
		static const unsigned accs[3] = { VMEM_ACC_READ, VMEM_ACC_WRITE, VMEM_ACC_FETCH | VMEM_ACC_USER };
		for (unsigned k = 0; k < 6; k++) {
			unsigned acc = accs[k % 3], fl = k < 3 ? VMEM_WALK_NO_AD : 0;
			vmem_nested_result f, s2;
			vmem_nested_trace tr;
			memset(&f, 0, sizeof(f));
			memset(&s2, 0, sizeof(s2));
			int e1 = vmem_nested_walk(w.gmmu, w.mmu, w.host, a[i], acc, fl, &f, NULL);
			int e2 = vmem_nested_walk(w.gmmu, w.mmu, w.host, a[i], acc, fl, &s2, &tr);
			if (e1 != e2 || memcmp(&f, &s2, sizeof(f))) {
				fprintf(stderr, "nested fast/full disagreement at %#" PRIx64 " acc %u flags %u\n", a[i], acc, fl);
				exit(1);
			}
		}
	}
	/* The opt-in cache across walks: every field as the uncached walk (the
	 * tables do not change), on a cold and then a filled cache. */
	if ((err = vmem_ept_pwc_new(NULL, &arg_pwc)))
		die("vmem_ept_pwc_new", err);
	for (size_t i = 0; i < 2 * (n < 4096 ? n : 4096); i++) {
		vmem_nested_result f, c;
		memset(&f, 0, sizeof(f));
		memset(&c, 0, sizeof(c));
		int e1 = vmem_nested_walk(w.gmmu, w.mmu, w.host, a[i % 4096 % n], VMEM_ACC_READ, VMEM_WALK_NO_AD, &f, NULL);
		int e2 = vmem_nested_walk_pwc(w.gmmu, w.mmu, w.host, arg_pwc, a[i % 4096 % n], VMEM_ACC_READ,
					      VMEM_WALK_NO_AD, &c);
		if (e1 != e2 || memcmp(&f, &c, sizeof(f))) {
			fprintf(stderr, "nested cached/uncached disagreement at %#" PRIx64 "\n", a[i % 4096 % n]);
			exit(1);
		}
	}
	struct walk_arg arg = { &w, a, n };
	struct nested_pwc_arg parg = { arg, arg_pwc };
	static const char *const what[2][2] = {
		{ "guest 4-level 4K, random over 64 MiB, EPT 2M leaves (19 entry reads)",
		  "guest 4-level 4K, random over 64 MiB, EPT 4K leaves (24 entry reads)" },
		{ "as nested-ept2m, random over 2 MiB (tables in L1)",
		  "as nested-ept4k, random over 2 MiB (tables in L1)" },
	};
	if (want(name))
		time_pair(name, what[span < G_DATA][ept4k], nested_lib_once, nested_base_once, &arg, n);
	if (pwc_name && want(pwc_name))
		time_pair(pwc_name, "as above, opt-in EPT paging-structure cache across walks (vmem_nested_walk_pwc)",
			  nested_pwc_lib_once, nested_base_once, &parg, n);
	vmem_ept_pwc_free(arg_pwc);
	free(a);
	vmem_mmu_free(w.gmmu);
	vmem_ept_mmu_free(w.mmu);
	vmem_gmem_free(w.host);
	vmem_ept_free(w.ept);
	arena_fini(&w.ar);
	free(w.guest);
}

/* ---------------------------------------------------------------------- */
/* (3) Dirty harvest over 16 GiB, 1%, 10%, 100% of pages dirty: EPT_D mode
 * (table arena in 4 KiB pages, and in transparent huge pages) and PML mode. */

struct harvest_env {
	struct arena ar;
	vmem_ept *ept;
	vmem_dirty *d;
	uint64_t size, pages, eptp;
	uint64_t **leaf;       /* the 4K leaf of every page */
	uint64_t *out;
};

static void harvest_env_init(struct harvest_env *h, bool thp)
{
	h->size = opt.dirty_size;
	h->pages = h->size >> 12;
	arena_init(&h->ar, arena_for(h->size), thp);
	h->ept = ept_create(&h->ar, true);
	vmem_ept_grant(h->ept, HPA_BASE, h->size);
	int err = vmem_ept_map(h->ept, 0, HPA_BASE, h->size, PERM_RWX, VMEM_MT_WB, false, NULL);
	if (err)
		die("vmem_ept_map", err);
	if ((err = vmem_dirty_new(NULL, h->ept, 0, h->size, &h->d)))
		die("vmem_dirty_new", err);
	/* EPT_D mode first: it splits large leaves, so every page has a 4K leaf. */
	if ((err = vmem_dirty_set_mode(h->d, VMEM_DIRTY_EPT_D, NULL, NULL)))
		die("vmem_dirty_set_mode", err);
	h->eptp = vmem_ept_eptp(h->ept);
	h->leaf = malloc(h->pages * sizeof(*h->leaf));
	for (uint64_t p = 0; p < h->pages; p++)
		if (!(h->leaf[p] = plain_leaf(h->eptp, p << 12)))
			die("plain_leaf (EPT_D mode did not leave 4K leaves)", 0);
	h->out = malloc(h->pages / 8);
}

static void harvest_env_fini(struct harvest_env *h)
{
	free(h->out);
	free(h->leaf);
	vmem_dirty_free(h->d);
	vmem_ept_free(h->ept);
	arena_fini(&h->ar);
}

/* The next page's draw: dirty or not, pct% of them (the same pages for libvmem and the plain loop of a repetition). */
static bool dirty_pick(unsigned pct, uint64_t *s)
{
	return pct == 100 || rng_next(s) % 100 < pct;
}

static uint64_t popcount_bm(const uint64_t *bm, uint64_t pages)
{
	uint64_t got = 0;
	for (uint64_t w = 0; w < pages / 64; w++)
		got += (uint64_t)__builtin_popcountll(bm[w]);
	return got;
}

static const unsigned harvest_pct[3] = { 1, 10, 100 };

/* The repetitions of one harvest row: in each, libvmem and the plain loop
 * take turns going first; one(arg, lib, r) dirties the pages, harvests and
 * returns the harvest's time. Repetition 0 is the warm-up. */
static void harvest_reps(double (*one)(void *arg, bool lib, unsigned r), void *arg, double *tl, double *tb)
{
	for (unsigned r = 0; r < opt.reps + 1; r++)
		for (unsigned which = 0; which < 2; which++) {
			bool lib = (which ^ (r & 1)) == 0;
			if ((lib && !run_lib()) || (!lib && !run_base()))
				continue;
			double t = one(arg, lib, r);
			if (r > 0)
				(lib ? tl : tb)[r - 1] = t;
		}
}

static void harvest_row(const char *name, double *tl, double *tb, uint64_t pages, const char *extra)
{
	struct row *row = add_row(name, "ms / harvest");
	row->lib = run_lib() ? median(tl, opt.reps) / 1e6 : 0;
	row->base = run_base() ? median(tb, opt.reps) / 1e6 : 0;
	row->per_op_ns = row->lib * 1e6 / (double)pages;
	row->extra = extra;
}

struct harvest_d_arg {
	struct harvest_env *h;
	unsigned pct;
	uint64_t ndirty;
	double *tf;            /* the read floor, per repetition */
};

static double harvest_d_once(void *arg, bool lib, unsigned r)
{
	struct harvest_d_arg *a = arg;
	struct harvest_env *h = a->h;
	/* What the processor would do: set D on pct% of the pages. */
	a->ndirty = 0;
	uint64_t s = 99 + r;
	for (uint64_t p = 0; p < h->pages; p++)
		if (dirty_pick(a->pct, &s)) {
			*h->leaf[p] |= VMEM_EPT_D | VMEM_EPT_A;
			a->ndirty++;
		}
	double t0 = now_ns();
	if (lib)
		bench_sink += loop_harvest_lib(h->d, h->out);
	else
		bench_sink += loop_harvest_base(h->eptp, h->size, h->out);
	double t = now_ns() - t0;
	uint64_t got = popcount_bm(h->out, h->pages);
	if (got != a->ndirty) {
		fprintf(stderr, "%s: harvested %" PRIu64 " pages, %" PRIu64 " dirty\n", lib ? "libvmem" : "plain", got, a->ndirty);
		exit(1);
	}
	if (lib && !opt.only && r > 0) { /* the floor, in the same repetition */
		double f0 = now_ns();
		bench_sink += loop_harvest_floor((const uint64_t *)(const void *)h->ar.base, h->ar.used / 8);
		a->tf[r - 1] = now_ns() - f0;
	}
	return t;
}

static void bench_harvest_d(const char *name, bool thp)
{
	if (!want(name))
		return;
	static const char *const names[2][3] = {
		{ "harvest 16G 1%", "harvest 16G 10%", "harvest 16G 100%" },
		{ "harvest 16G 1% thp", "harvest 16G 10% thp", "harvest 16G 100% thp" } };
	static char bufs[2][3][96];
	struct harvest_env h;
	harvest_env_init(&h, thp);
	for (unsigned k = 0; k < 3; k++) {
		if (opt.pct && opt.pct != harvest_pct[k])
			continue;
		double *tl = calloc(opt.reps, sizeof(double)), *tb = calloc(opt.reps, sizeof(double));
		struct harvest_d_arg a = { &h, harvest_pct[k], 0, calloc(opt.reps, sizeof(double)) };
		harvest_reps(harvest_d_once, &a, tl, tb);
		snprintf(bufs[thp][k], sizeof(bufs[thp][k]), "%" PRIu64 " of %" PRIu64 " pages dirty; read floor %.2f ms (%.1f MiB)",
			 a.ndirty, h.pages, opt.only ? 0.0 : median(a.tf, opt.reps) / 1e6, (double)h.ar.used / MIB);
		harvest_row(names[thp][k], tl, tb, h.pages, bufs[thp][k]);
		free(tl);
		free(tb);
		free(a.tf);
	}
	harvest_env_fini(&h);
}

/* PML mode: pages dirtied the way the processor does it (the library's EPT
 * write walk with A/D and PML logging, drained on each log-full exit as a
 * VMM does on exit reason 62: set-up, not timed), then the harvest alone is
 * timed. The drains are timed separately: "pml drain" row. Plain loop: its
 * own drain into its own bitmap, then a pointer walk per logged GPA. */
struct harvest_pml_arg {
	struct harvest_env *h;
	unsigned pct;
	uint64_t ndirty;
	vmem_pml pml;
	vmem_gmem *host;
	vmem_ept_mmu *mmu;
	uint64_t *pbm;         /* the plain loop's bitmap */
	uint64_t *chosen;      /* the pages written */
	double *td[2];         /* drain times: [0] plain, [1] libvmem */
	size_t nd[2], cap;
};

/* One log-full exit (exit reason 62): drain the log, timed. */
static void pml_exit(struct harvest_pml_arg *a, bool lib)
{
	double t0 = now_ns();
	if (lib)
		vmem_dirty_pml_drain(a->h->d);
	else
		loop_pml_drain_base(&a->pml, a->pbm, a->h->pages);
	double t = now_ns() - t0;
	if (a->nd[lib] == a->cap) {
		a->cap *= 2;
		a->td[0] = realloc(a->td[0], a->cap * sizeof(double));
		a->td[1] = realloc(a->td[1], a->cap * sizeof(double));
		if (!a->td[0] || !a->td[1])
			die("realloc", 0);
	}
	a->td[lib][a->nd[lib]++] = t;
}

static double harvest_pml_once(void *arg, bool lib, unsigned r)
{
	struct harvest_pml_arg *a = arg;
	struct harvest_env *h = a->h;
	vmem_ept_access wr = { .type = VMEM_EPT_WRITE };
	a->ndirty = 0;
	memset(a->chosen, 0, h->pages / 8);
	uint64_t s = 99 + r;
	for (uint64_t p = 0; p < h->pages; p++) {
		if (!dirty_pick(a->pct, &s))
			continue;
		vmem_ept_result res;
		for (;;) {
			int err = vmem_ept_walk(a->mmu, a->host, p << 12 | 0x18, &wr, 0, &res, NULL);
			if (err)
				die("vmem_ept_walk", err);
			if (res.status != VMEM_EPT_PML_FULL)
				break;
			pml_exit(a, lib);
		}
		if (res.status != VMEM_EPT_OK)
			die("EPT write walk status", (int)res.status);
		a->chosen[p / 64] |= 1ull << (p % 64);
		a->ndirty++;
	}
	double t0 = now_ns();
	if (lib)
		bench_sink += loop_harvest_lib(h->d, h->out);
	else
		bench_sink += loop_harvest_pml_base(h->eptp, &a->pml, a->pbm, h->pages, h->out);
	double t = now_ns() - t0;
	if (memcmp(h->out, a->chosen, h->pages / 8)) {
		fprintf(stderr, "%s: the PML harvest is not the pages written (%" PRIu64 " of %" PRIu64 ")\n",
			lib ? "libvmem" : "plain", popcount_bm(h->out, h->pages), a->ndirty);
		exit(1);
	}
	return t;
}

static void bench_harvest_pml(void)
{
	if (!want("harvest-pml"))
		return;
	static const char *const names[3] = { "harvest 16G 1% PML", "harvest 16G 10% PML", "harvest 16G 100% PML" };
	static char bufs[4][96];
	struct harvest_env h;
	harvest_env_init(&h, false);
	struct harvest_pml_arg a;
	memset(&a, 0, sizeof(a));
	a.h = &h;
	a.pml.log = aligned_alloc(4096, 4096);
	a.pbm = calloc(h.pages / 64, 8);
	a.chosen = malloc(h.pages / 8);
	a.cap = 16;
	a.td[0] = malloc(a.cap * sizeof(double));
	a.td[1] = malloc(a.cap * sizeof(double));
	int err = vmem_dirty_set_mode(h.d, VMEM_DIRTY_PML, &a.pml, NULL);
	if (err)
		die("vmem_dirty_set_mode(PML)", err);
	if (vmem_gmem_new(NULL, &a.host) || vmem_gmem_add_ram(a.host, (uint64_t)(uintptr_t)h.ar.base, h.ar.size, h.ar.base, 0))
		die("vmem_gmem (arena)", 0);
	if ((err = vmem_ept_mmu_new(NULL, h.eptp, NULL, &a.mmu)))
		die("vmem_ept_mmu_new", err);
	vmem_ept_mmu_set_pml(a.mmu, &a.pml);
	for (unsigned k = 0; k < 3; k++) {
		if (opt.pct && opt.pct != harvest_pct[k])
			continue;
		double *tl = calloc(opt.reps, sizeof(double)), *tb = calloc(opt.reps, sizeof(double));
		a.pct = harvest_pct[k];
		harvest_reps(harvest_pml_once, &a, tl, tb);
		snprintf(bufs[k], sizeof(bufs[k]), "%" PRIu64 " of %" PRIu64 " pages written (EPT write walks, PML)", a.ndirty, h.pages);
		harvest_row(names[k], tl, tb, h.pages, bufs[k]);
		free(tl);
		free(tb);
	}
	if (a.nd[0] || a.nd[1]) {
		struct row *row = add_row("pml drain", "us / log-full");
		row->lib = a.nd[1] ? median(a.td[1], (unsigned)a.nd[1]) / 1e3 : 0;
		row->base = a.nd[0] ? median(a.td[0], (unsigned)a.nd[0]) / 1e3 : 0;
		row->per_op_ns = row->lib * 1e3 / 512;
		snprintf(bufs[3], sizeof(bufs[3]), "vmem_dirty_pml_drain of 512 GPAs (%zu log-full exits)", a.nd[1]);
		row->extra = bufs[3];
	}
	free(a.td[0]);
	free(a.td[1]);
	vmem_ept_mmu_free(a.mmu);
	vmem_gmem_free(a.host);
	free(a.chosen);
	free(a.pbm);
	free(a.pml.log);
	harvest_env_fini(&h);
}

/* ---------------------------------------------------------------------- */
/* (4) TLB hit. */

struct tlb_arg {
	const vmem_tlb *t;
	vmem_tlb_tag tag;
	const uint64_t *tbl;
	unsigned bits;
	const uint64_t *la;
	size_t n;
	double min_lib, min_base; /* the fastest repetition of each: the least disturbed by the machine's other load */
};

static double tlb_min(double *min, double t)
{
	if (*min == 0 || t < *min)
		*min = t;
	return t;
}

static double tlb_lib_once(void *p)
{
	struct tlb_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_tlb_lib(a->t, &a->tag, a->la, a->n);
	return tlb_min(&a->min_lib, now_ns() - t0);
}

static double tlb_base_once(void *p)
{
	struct tlb_arg *a = p;
	double t0 = now_ns();
	bench_sink += loop_tlb_base(a->tbl, a->bits, a->la, a->n);
	return tlb_min(&a->min_base, now_ns() - t0);
}

static void bench_tlb(void)
{
	if (!want("tlb"))
		return;
	const unsigned bits = 12;
	vmem_tlb *t;
	int err = vmem_tlb_new(NULL, bits, &t);
	if (err)
		die("vmem_tlb_new", err);
	vmem_tlb_tag tag = { .vpid = 1, .pcid = 0, .eptp = 0x1234000 | 0x1e };
	/* 1024 pages spread over 4 MiB; keep only those that hit after insertion. */
	uint64_t *pool = malloc(1024 * 8), *tbl = calloc(2u << bits, 8);
	size_t np = 0;
	for (uint64_t i = 0; i < 1024; i++) {
		uint64_t la = 0x7f0000000000ull + i * 4 * 4096;
		vmem_tlb_xlat x = { .pa = 0x40000000ull + i * 4096, .page_size = 4096, .perms = 7, .dirty = 1 };
		if ((err = vmem_tlb_insert(t, &tag, la, &x)))
			die("vmem_tlb_insert", err);
		uint64_t vpn = la >> 12;
		tbl[2 * (vpn & ((1u << bits) - 1))] = vpn + 1;
		tbl[2 * (vpn & ((1u << bits) - 1)) + 1] = x.pa;
	}
	for (uint64_t i = 0; i < 1024; i++) {
		uint64_t la = 0x7f0000000000ull + i * 4 * 4096;
		vmem_tlb_xlat x;
		if (vmem_tlb_lookup(t, &tag, la, &x) && x.pa == 0x40000000ull + i * 4096)
			pool[np++] = la;
	}
	size_t n = opt.n;
	uint64_t *la = malloc(n * 8), s = 5;
	for (size_t i = 0; i < n; i++)
		la[i] = pool[rng_next(&s) % np] | (i & 4095);
	static char extra[160];
	struct tlb_arg arg = { t, tag, tbl, bits, la, n, 0, 0 };
	time_pair("tlb hit", extra, tlb_lib_once, tlb_base_once, &arg, n);
	snprintf(extra, sizeof(extra), "%zu of 1024 4K translations resident, random hits; fastest rep %.3f / %.3f ns",
		 np, arg.min_lib / (double)n, arg.min_base / (double)n);
	free(la);
	free(pool);
	free(tbl);
	vmem_tlb_free(t);
}

/* ---------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: bench_ept [--case PREFIX] [--only lib|base] [--reps N] [--n N] [--pct P] [--map-gib G] [--dirty-gib G] [--pool-4k] [--smoke]\n"
			"cases: map4k-cold map4k-warm map2m-* map1g-* ept-hot ept-64g nested-ept4k nested-ept2m nested-pwc-ept4k nested-pwc-ept2m nested-hot-ept4k nested-hot-ept2m harvest-d harvest-thp harvest-pml tlb\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--case") && v)
			opt.only_case = v, i++;
		else if (!strcmp(a, "--only") && v)
			opt.only = v, i++;
		else if (!strcmp(a, "--reps") && v)
			opt.reps = (unsigned)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--n") && v)
			opt.n = (size_t)strtoull(v, NULL, 0), i++;
		else if (!strcmp(a, "--pct") && v)
			opt.pct = (unsigned)strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--map-gib") && v)
			opt.map_size = strtoull(v, NULL, 0) * GIB, i++;
		else if (!strcmp(a, "--dirty-gib") && v)
			opt.dirty_size = strtoull(v, NULL, 0) * GIB, i++;
		else if (!strcmp(a, "--smoke"))
			opt.smoke = true;
		else if (!strcmp(a, "--pool-4k"))
			opt.pool_4k = true;
		else
			usage();
	}
	if (opt.smoke) {
		/* Small sizes: every case once, every agreement check. */
		opt.reps = 1;
		opt.n = 4096;
		opt.map_size = 4 * GIB;
		opt.dirty_size = 256 * MIB;
	}
	if (!opt.reps)
		opt.reps = 1;

	bench_map("map4k", 4096);
	bench_map("map2m", 2 * MIB);
	bench_map("map1g", GIB);
	bench_ept_walk("ept-hot", 64 * MIB, 4096);
	bench_ept_walk("ept-64g", opt.map_size, 4096);
	bench_nested("nested-ept4k", "nested-pwc-ept4k", true, G_DATA);
	bench_nested("nested-ept2m", "nested-pwc-ept2m", false, G_DATA);
	bench_nested("nested-hot-ept4k", NULL, true, 2 * MIB);
	bench_nested("nested-hot-ept2m", NULL, false, 2 * MIB);
	bench_harvest_d("harvest-d", false);
	bench_harvest_d("harvest-thp", true);
	bench_harvest_pml();
	bench_tlb();

	calib_machine_print();
	printf("| case | unit | libvmem | plain loop | libvmem / plain | libvmem ns per entry/walk/page | notes |\n");
	printf("|---|---|---:|---:|---:|---:|---|\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		printf("| %s | %s | %.3f | %.3f | %.2f | %.3f | %s |\n", r->name, r->unit, r->lib, r->base,
		       r->base > 0 ? r->lib / r->base : 0.0, r->per_op_ns, r->extra ? r->extra : "");
	}
	printf("\n(median of %u repetitions; map size %" PRIu64 " GiB, harvest %" PRIu64 " GiB)\n", opt.reps,
	       opt.map_size >> 30, opt.dirty_size >> 30);
	return 0;
}
