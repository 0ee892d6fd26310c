/* Unit tests for guest-physical memory: slot checks, MMIO pieces, bounds, read-only, miss policy, cmpxchg, guard pages. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c11 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include <libvmem/gmem.h>

#define PG 4096ull
#define TOP_PAGE (~0ull - PG + 1) /* the last page of the 64-bit space */

/* ---- helpers ---- */

static void *page_alloc(size_t pages, int fill)
{
	void *p = aligned_alloc(PG, pages * PG);
	assert_non_null(p);
	memset(p, fill, pages * PG);
	return p;
}

/* A slot buffer of `pages` pages with an inaccessible page on either side:
 * any access outside the buffer kills the test with SIGSEGV. */
struct guarded {
	uint8_t *map; /* whole mapping */
	uint8_t *buf; /* the usable pages */
	size_t pages;
};

static void guarded_new(struct guarded *g, size_t pages)
{
	size_t total = (pages + 2) * PG;
	g->map = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(g->map != MAP_FAILED);
	g->buf = g->map + PG;
	g->pages = pages;
	assert_int_equal(mprotect(g->buf, pages * PG, PROT_READ | PROT_WRITE), 0);
}

static void guarded_free(struct guarded *g)
{
	assert_int_equal(munmap(g->map, (g->pages + 2) * PG), 0);
}

/* Region snapshot through foreach. */
struct snap {
	unsigned n;
	vmem_region_info r[64];
};

static int snap_cb(void *arg, const vmem_region_info *r)
{
	struct snap *s = arg;
	assert_true(s->n < 64);
	s->r[s->n++] = *r;
	return 0;
}

static void take_snap(const vmem_gmem *gm, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(vmem_gmem_foreach(gm, snap_cb, s), 0);
}

static void assert_snap_equal(const struct snap *a, const struct snap *b)
{
	assert_int_equal(a->n, b->n);
	for (unsigned i = 0; i < a->n; i++) {
		assert_int_equal(a->r[i].kind, b->r[i].kind);
		assert_true(a->r[i].gpa == b->r[i].gpa);
		assert_true(a->r[i].size == b->r[i].size);
		assert_int_equal(a->r[i].flags, b->r[i].flags);
		assert_ptr_equal(a->r[i].host, b->r[i].host);
	}
}

/* MMIO device: byte at gpa a reads as (a * 7 + 3) & 0xff; writes are logged. */
struct mmio_log {
	unsigned n;
	struct {
		uint64_t gpa;
		unsigned size;
		bool is_write;
		uint64_t val;
	} e[64];
	int fail_rc; /* returned by every call when non-zero */
};

static uint8_t mmio_byte(uint64_t a)
{
	return (uint8_t)((a * 7 + 3) & 0xff);
}

static int mmio_cb(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	struct mmio_log *l = opaque;
	if (l->n < 64) {
		l->e[l->n].gpa = gpa;
		l->e[l->n].size = size;
		l->e[l->n].is_write = is_write;
		l->e[l->n].val = is_write ? *val : 0;
		l->n++;
	}
	if (l->fail_rc)
		return l->fail_rc;
	if (!is_write) {
		uint64_t v = 0;
		for (unsigned i = 0; i < size; i++)
			v |= (uint64_t)mmio_byte(gpa + i) << (8 * i);
		*val = v;
	}
	return 0;
}

/* ---- add_ram / add_mmio argument checks ---- */

static void test_add_ram_args(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *buf = page_alloc(4, 0);
	struct snap before, after;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_new(NULL, NULL), VMEM_E_INVAL);

	assert_int_equal(vmem_gmem_add_ram(NULL, 0, PG, buf, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 0, PG, NULL, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 0, 0, buf, 0), VMEM_E_INVAL);          /* zero size */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1001, PG, buf, 0), VMEM_E_INVAL);    /* gpa */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1800, PG, buf, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG + 1, buf, 0), VMEM_E_INVAL); /* size */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG - 1, buf, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, buf + 16, 0), VMEM_E_INVAL); /* host */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, buf + 1, 0), VMEM_E_INVAL);
	/* Wraps past 2^64. */
	assert_int_equal(vmem_gmem_add_ram(gm, TOP_PAGE, 2 * PG, buf, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 2 * PG, TOP_PAGE, buf, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, TOP_PAGE, TOP_PAGE, buf, 0), VMEM_E_INVAL);
	/* Unknown flags. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, buf, 0x4), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, buf, 0x80000000u), VMEM_E_INVAL);
	take_snap(gm, &after);
	assert_int_equal(after.n, 0);

	/* Valid edges: the last page of the space, and both known flags. */
	assert_int_equal(vmem_gmem_add_ram(gm, TOP_PAGE, PG, buf, VMEM_SLOT_READONLY | VMEM_SLOT_NOEXEC),
			 VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0, PG, buf + PG, VMEM_SLOT_NOEXEC), VMEM_OK);
	vmem_region_info info;
	assert_int_equal(vmem_gmem_lookup(gm, ~0ull, &info), VMEM_OK);
	assert_int_equal(info.kind, VMEM_REGION_RAM);
	assert_ptr_equal(info.host, buf + PG - 1);
	assert_int_equal(info.flags, VMEM_SLOT_READONLY | VMEM_SLOT_NOEXEC);
	assert_int_equal(vmem_gmem_lookup(gm, 0, &info), VMEM_OK);
	assert_int_equal(info.flags, VMEM_SLOT_NOEXEC);

	/* add_mmio arguments. */
	struct mmio_log log = { 0 };
	take_snap(gm, &before);
	assert_int_equal(vmem_gmem_add_mmio(NULL, 0x5000, 1, mmio_cb, &log), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x5000, 1, NULL, &log), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x5000, 0, mmio_cb, &log), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_add_mmio(gm, ~0ull, 2, mmio_cb, &log), VMEM_E_INVAL);
	take_snap(gm, &after);
	assert_snap_equal(&before, &after);
	/* Any byte alignment; a one-byte hole at the very top is fine too... except
	 * it overlaps the top RAM page; one just below 2^64 - PG works. */
	assert_int_equal(vmem_gmem_add_mmio(gm, ~0ull, 1, mmio_cb, &log), VMEM_E_OVERLAP);
	assert_int_equal(vmem_gmem_add_mmio(gm, TOP_PAGE - 1, 1, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x5003, 5, mmio_cb, &log), VMEM_OK);
	assert_int_equal(log.n, 0);

	vmem_gmem_free(gm);
	vmem_gmem_free(NULL);
	free(buf);
}

static void test_overlap_every_side(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *buf = page_alloc(8, 0);
	struct mmio_log log = { 0 };
	struct snap before, after;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	/* RAM [0x10000, 0x12000); MMIO [0x20001, 0x20003) (odd bounds). */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x10000, 2 * PG, buf, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x20001, 2, mmio_cb, &log), VMEM_OK);
	take_snap(gm, &before);

	static const struct {
		uint64_t gpa, size;
	} ram_bad[] = {
		{ 0x10000, 2 * PG },  /* identical */
		{ 0x10000, PG },      /* same start, shorter */
		{ 0x10000, 4 * PG },  /* same start, longer */
		{ 0xf000, 2 * PG },   /* covers the first byte */
		{ 0x11000, 2 * PG },  /* covers the last byte */
		{ 0x11000, PG },      /* inside, ends at the same byte */
		{ 0xe000, 6 * PG },   /* covers the whole slot */
		{ 0x20000, PG },      /* contains the MMIO hole */
		{ 0x1f000, 2 * PG },
		{ 0x0, 0x21000 },     /* covers both */
	};
	for (size_t i = 0; i < sizeof(ram_bad) / sizeof(ram_bad[0]); i++)
		assert_int_equal(vmem_gmem_add_ram(gm, ram_bad[i].gpa, ram_bad[i].size, buf + 4 * PG, 0),
				 VMEM_E_OVERLAP);
	static const struct {
		uint64_t gpa, size;
	} mmio_bad[] = {
		{ 0x10000, 1 },        /* first RAM byte */
		{ 0x11fff, 1 },        /* last RAM byte */
		{ 0xffff, 2 },         /* straddles the start */
		{ 0x11fff, 0x10 },     /* straddles the end */
		{ 0x20001, 2 },        /* identical hole */
		{ 0x20002, 1 },        /* last byte of the hole */
		{ 0x20000, 2 },        /* first byte of the hole */
		{ 0x20000, 0x100 },    /* covers the hole */
	};
	for (size_t i = 0; i < sizeof(mmio_bad) / sizeof(mmio_bad[0]); i++)
		assert_int_equal(vmem_gmem_add_mmio(gm, mmio_bad[i].gpa, mmio_bad[i].size, mmio_cb, &log),
				 VMEM_E_OVERLAP);
	take_snap(gm, &after);
	assert_snap_equal(&before, &after);

	/* Touching but not overlapping, on every side. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0xf000, PG, buf + 2 * PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x12000, PG, buf + 3 * PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x20000, 1, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x20003, 1, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x21000, PG, buf + 4 * PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1f000, PG, buf + 5 * PG, 0), VMEM_OK);
	take_snap(gm, &after);
	assert_int_equal(after.n, 8);
	vmem_gmem_free(gm);
	free(buf);
}

/* ---- lookup and hva bounds ---- */

static void test_lookup_hva_bounds(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *a = page_alloc(2, 0), *b = page_alloc(1, 0);
	struct mmio_log log = { 0 };
	vmem_region_info info;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	/* A [0x10000, 0x12000), B [0x12000, 0x13000) adjacent; MMIO [0x13000, 0x13010). */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x10000, 2 * PG, a, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x12000, PG, b, VMEM_SLOT_READONLY), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x13000, 0x10, mmio_cb, &log), VMEM_OK);

	assert_int_equal(vmem_gmem_lookup(gm, 0x10000, &info), VMEM_OK);
	assert_int_equal(info.kind, VMEM_REGION_RAM);
	assert_true(info.gpa == 0x10000 && info.size == 2 * PG);
	assert_ptr_equal(info.host, a);
	assert_int_equal(vmem_gmem_lookup(gm, 0x11fff, &info), VMEM_OK);
	assert_ptr_equal(info.host, a + 0x1fff);
	assert_int_equal(vmem_gmem_lookup(gm, 0x12000, &info), VMEM_OK);
	assert_ptr_equal(info.host, b);
	assert_int_equal(info.flags, VMEM_SLOT_READONLY);
	assert_int_equal(vmem_gmem_lookup(gm, 0x1300f, &info), VMEM_OK);
	assert_int_equal(info.kind, VMEM_REGION_MMIO);
	assert_null(info.host);
	assert_true(info.gpa == 0x13000 && info.size == 0x10);
	memset(&info, 0x5a, sizeof(info));
	assert_int_equal(vmem_gmem_lookup(gm, 0x13010, &info), VMEM_E_NOENT);
	assert_int_equal(info.kind, VMEM_REGION_NONE);
	assert_int_equal(vmem_gmem_lookup(gm, 0xffff, &info), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_lookup(gm, ~0ull, &info), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_lookup(gm, 0x10000, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_lookup(NULL, 0x10000, &info), VMEM_E_INVAL);

	assert_ptr_equal(vmem_gmem_hva(gm, 0x10000, 2 * PG), a);
	assert_ptr_equal(vmem_gmem_hva(gm, 0x11fff, 1), a + 0x1fff);   /* last byte in */
	assert_ptr_equal(vmem_gmem_hva(gm, 0x11ff8, 8), a + 0x1ff8);
	assert_null(vmem_gmem_hva(gm, 0x11fff, 2));                    /* spans A and B */
	assert_null(vmem_gmem_hva(gm, 0x10000, 2 * PG + 1));
	assert_null(vmem_gmem_hva(gm, 0x11000, 3 * PG));
	assert_ptr_equal(vmem_gmem_hva(gm, 0x12fff, 1), b + 0xfff);
	assert_null(vmem_gmem_hva(gm, 0x12fff, 2));                    /* into MMIO */
	assert_null(vmem_gmem_hva(gm, 0x13000, 1));                    /* MMIO */
	assert_null(vmem_gmem_hva(gm, 0x13010, 1));                    /* one past everything */
	assert_null(vmem_gmem_hva(gm, 0xffff, 1));                     /* one before */
	assert_null(vmem_gmem_hva(gm, 0xffff, 2));
	assert_null(vmem_gmem_hva(gm, 0x10000, 0));                    /* empty */
	assert_null(vmem_gmem_hva(gm, 0x10000, ~0ull));
	assert_null(vmem_gmem_hva(gm, 0x11fff, ~0ull));
	assert_null(vmem_gmem_hva(NULL, 0x10000, 1));
	assert_int_equal(log.n, 0);
	vmem_gmem_free(gm);
	free(a);
	free(b);
}

/* ---- read/write across regions ---- */

static void test_read_write_across(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *a = page_alloc(1, 0x11), *b = page_alloc(1, 0x22);
	struct mmio_log log = { 0 };
	uint8_t out[64];
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, a, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x2000, PG, b, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x3000, 0x10, mmio_cb, &log), VMEM_OK);

	/* Write 16 bytes straddling A|B. */
	uint8_t pat[16];
	for (int i = 0; i < 16; i++)
		pat[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(vmem_gmem_write(gm, 0x1ff8, pat, 16), VMEM_OK);
	assert_memory_equal(a + 0xff8, pat, 8);
	assert_memory_equal(b, pat + 8, 8);
	assert_int_equal(a[0xff7], 0x11);
	assert_int_equal(b[8], 0x22);
	memset(out, 0, sizeof(out));
	assert_int_equal(vmem_gmem_read(gm, 0x1ff8, out, 16), VMEM_OK);
	assert_memory_equal(out, pat, 16);

	/* Read B's last 4 bytes then the whole MMIO hole: 4 RAM + 8 + 8 MMIO. */
	memset(out, 0, sizeof(out));
	assert_int_equal(vmem_gmem_read(gm, 0x2ffc, out, 20), VMEM_OK);
	assert_memory_equal(out, b + 0xffc, 4);
	for (int i = 0; i < 16; i++)
		assert_int_equal(out[4 + i], mmio_byte(0x3000 + (uint64_t)i));
	assert_int_equal(log.n, 2);
	assert_true(log.e[0].gpa == 0x3000 && log.e[0].size == 8 && !log.e[0].is_write);
	assert_true(log.e[1].gpa == 0x3008 && log.e[1].size == 8 && !log.e[1].is_write);

	/* One byte past the MMIO hole: MISS_ERROR, RANGE; output buffer not required unchanged
	 * but the failing read must not call MMIO before it knows the range is bad. */
	log.n = 0;
	assert_int_equal(vmem_gmem_read(gm, 0x2ffc, out, 21), VMEM_E_RANGE);
	assert_int_equal(log.n, 0);
	/* Zero length: fine anywhere. */
	assert_int_equal(vmem_gmem_read(gm, 0x9000, out, 0), VMEM_OK);
	/* NULL handle or buffer. */
	assert_int_equal(vmem_gmem_read(NULL, 0x1000, out, 1), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_read(gm, 0x1000, NULL, 1), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_write(gm, 0x1000, NULL, 1), VMEM_E_INVAL);

	/* Sized accessors: alignment and value. */
	uint32_t v32 = 0;
	uint64_t v64 = 0;
	assert_int_equal(vmem_gmem_write64(gm, 0x1ff8, 0x1122334455667788ull), VMEM_OK);
	assert_int_equal(vmem_gmem_read64(gm, 0x1ff8, &v64), VMEM_OK);
	assert_true(v64 == 0x1122334455667788ull);
	assert_int_equal(a[0xff8], 0x88); /* little-endian */
	assert_int_equal(vmem_gmem_read32(gm, 0x1ffc, &v32), VMEM_OK);
	assert_int_equal(v32, 0x11223344);
	assert_int_equal(vmem_gmem_write32(gm, 0x2000, 0xdeadbeef), VMEM_OK);
	assert_int_equal(b[0], 0xef);
	assert_int_equal(vmem_gmem_read64(gm, 0x1ffc, &v64), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_read32(gm, 0x1ffe, &v32), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_write64(gm, 0x1004, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_write32(gm, 0x1001, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_read64(gm, 0x1000, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_read32(gm, 0x1000, NULL), VMEM_E_INVAL);
	/* A 64-bit MMIO read is one 8-byte access. */
	log.n = 0;
	assert_int_equal(vmem_gmem_read64(gm, 0x3008, &v64), VMEM_OK);
	assert_int_equal(log.n, 1);
	assert_true(log.e[0].gpa == 0x3008 && log.e[0].size == 8);
	uint64_t want = 0;
	for (int i = 0; i < 8; i++)
		want |= (uint64_t)mmio_byte(0x3008 + (uint64_t)i) << (8 * i);
	assert_true(v64 == want);

	vmem_gmem_free(gm);
	free(a);
	free(b);
}

/* ---- MMIO pieces ---- */

static void test_mmio_pieces(void **state)
{
	(void)state;
	vmem_gmem *gm;
	struct mmio_log log = { 0 };
	uint8_t out[64];
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	/* Hole [0x3001, 0x301f): naturally aligned pieces, worked by hand:
	 * 3001/1 3002/2 3004/4 3008/8 3010/8 3018/4 301c/2 301e/1. */
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x3001, 0x1e, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_read(gm, 0x3001, out, 0x1e), VMEM_OK);
	static const struct {
		uint64_t gpa;
		unsigned size;
	} want[] = {
		{ 0x3001, 1 }, { 0x3002, 2 }, { 0x3004, 4 }, { 0x3008, 8 },
		{ 0x3010, 8 }, { 0x3018, 4 }, { 0x301c, 2 }, { 0x301e, 1 },
	};
	assert_int_equal(log.n, 8);
	for (unsigned i = 0; i < 8; i++) {
		assert_true(log.e[i].gpa == want[i].gpa);
		assert_int_equal(log.e[i].size, want[i].size);
		assert_false(log.e[i].is_write);
	}
	for (unsigned i = 0; i < 0x1e; i++)
		assert_int_equal(out[i], mmio_byte(0x3001 + i));

	/* A write of 7 bytes at 0x3009: 3009/1 300a/2 300c/4, values little-endian. */
	uint8_t in[7] = { 1, 2, 3, 4, 5, 6, 7 };
	log.n = 0;
	assert_int_equal(vmem_gmem_write(gm, 0x3009, in, 7), VMEM_OK);
	assert_int_equal(log.n, 3);
	assert_true(log.e[0].gpa == 0x3009 && log.e[0].size == 1 && log.e[0].is_write && log.e[0].val == 0x01);
	assert_true(log.e[1].gpa == 0x300a && log.e[1].size == 2 && log.e[1].val == 0x0302);
	assert_true(log.e[2].gpa == 0x300c && log.e[2].size == 4 && log.e[2].val == 0x07060504);

	/* The region end limits a piece even when the access is aligned: hole [0x4000, 0x4003). */
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x4000, 3, mmio_cb, &log), VMEM_OK);
	log.n = 0;
	assert_int_equal(vmem_gmem_read(gm, 0x4000, out, 3), VMEM_OK);
	assert_int_equal(log.n, 2);
	assert_true(log.e[0].gpa == 0x4000 && log.e[0].size == 2);
	assert_true(log.e[1].gpa == 0x4002 && log.e[1].size == 1);

	/* Two holes back to back: [0x5000, 0x5004) and [0x5004, 0x5010): a read of 16 at
	 * 0x5000 goes 5000/4 (hole 1) then 5004/4 5008/8 (hole 2). */
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x5000, 4, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x5004, 0xc, mmio_cb, &log), VMEM_OK);
	log.n = 0;
	assert_int_equal(vmem_gmem_read(gm, 0x5000, out, 16), VMEM_OK);
	assert_int_equal(log.n, 3);
	assert_true(log.e[0].gpa == 0x5000 && log.e[0].size == 4);
	assert_true(log.e[1].gpa == 0x5004 && log.e[1].size == 4);
	assert_true(log.e[2].gpa == 0x5008 && log.e[2].size == 8);

	/* A failing device: its error comes back (negative as is, positive as IO). */
	log.n = 0;
	log.fail_rc = VMEM_E_NOENT;
	assert_int_equal(vmem_gmem_read(gm, 0x3008, out, 8), VMEM_E_NOENT);
	log.fail_rc = 5;
	assert_int_equal(vmem_gmem_read(gm, 0x3008, out, 8), VMEM_E_IO);
	log.fail_rc = 0;

	/* cmpxchg on MMIO: RANGE, and the device is not called. */
	uint64_t exp = 0;
	log.n = 0;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x3008, &exp, 1), VMEM_E_RANGE);
	assert_int_equal(log.n, 0);
	vmem_gmem_free(gm);
}

/* ---- read-only slots ---- */

static void test_readonly(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *rw = page_alloc(1, 0x11), *ro = page_alloc(1, 0x22);
	uint8_t zero[32] = { 0 };
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	/* RW [0x1000, 0x2000) then RO [0x2000, 0x3000), and RO before RW at 0x7000/0x8000. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, rw, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x2000, PG, ro, VMEM_SLOT_READONLY), VMEM_OK);

	assert_int_equal(vmem_gmem_write(gm, 0x2000, zero, 1), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_write32(gm, 0x2ffc, 0), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_write64(gm, 0x2000, 0), VMEM_E_RANGE);
	/* Spanning RW then RO: nothing written, not even the RW part. */
	assert_int_equal(vmem_gmem_write(gm, 0x1ff0, zero, 32), VMEM_E_RANGE);
	for (int i = 0; i < (int)PG; i++) {
		assert_int_equal(rw[i], 0x11);
		assert_int_equal(ro[i], 0x22);
	}
	uint64_t exp = 0x2222222222222222ull;
	uint32_t exp32 = 0x22222222u;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x2000, &exp, 0), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_cmpxchg32(gm, 0x2000, &exp32, 0), VMEM_E_RANGE);
	assert_int_equal(ro[0], 0x22);
	/* Reads work, across the boundary too. */
	uint8_t out[32];
	assert_int_equal(vmem_gmem_read(gm, 0x1ff0, out, 32), VMEM_OK);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(out[i], 0x11);
		assert_int_equal(out[16 + i], 0x22);
	}
	/* The RW part alone is writable. */
	assert_int_equal(vmem_gmem_write(gm, 0x1ff0, zero, 16), VMEM_OK);
	assert_int_equal(rw[0xff0], 0);

	/* An unbacked gap then RW: RANGE too (MISS_ZERO does not make writes land). */
	vmem_gmem_set_miss(gm, VMEM_GMEM_MISS_ZERO);
	assert_int_equal(vmem_gmem_write(gm, 0x0ff0, zero, 32), VMEM_E_RANGE);
	assert_int_equal(rw[0], 0x11);
	vmem_gmem_free(gm);
	free(rw);
	free(ro);
}

/* ---- MISS_ZERO vs MISS_ERROR ---- */

static void test_miss_policy(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *a = page_alloc(1, 0x33);
	uint8_t out[32];
	uint64_t v64 = 1;
	uint32_t v32 = 1;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x2000, PG, a, 0), VMEM_OK);

	/* Default: MISS_ERROR. */
	assert_int_equal(vmem_gmem_read(gm, 0x5000, out, 1), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_read64(gm, 0x1ff8, &v64), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_read(gm, 0x1ff0, out, 32), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_write(gm, 0x5000, out, 1), VMEM_E_RANGE);

	vmem_gmem_set_miss(gm, VMEM_GMEM_MISS_ZERO);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(vmem_gmem_read(gm, 0x1ff0, out, 32), VMEM_OK);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(out[i], 0);
		assert_int_equal(out[16 + i], 0x33);
	}
	memset(out, 0xee, sizeof(out));
	assert_int_equal(vmem_gmem_read(gm, 0x2ff0, out, 32), VMEM_OK);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(out[i], 0x33);
		assert_int_equal(out[16 + i], 0);
	}
	assert_int_equal(vmem_gmem_read64(gm, 0x9000, &v64), VMEM_OK);
	assert_true(v64 == 0);
	assert_int_equal(vmem_gmem_read32(gm, ~0ull - 3, &v32), VMEM_OK);
	assert_int_equal(v32, 0);
	/* Writes to unbacked memory still fail, and cmpxchg too. */
	assert_int_equal(vmem_gmem_write(gm, 0x5000, out, 1), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_write64(gm, 0x5000, 0), VMEM_E_RANGE);
	uint64_t exp = 0;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x5000, &exp, 1), VMEM_E_RANGE);

	/* An unknown policy is ignored; back to MISS_ERROR works. */
	vmem_gmem_set_miss(gm, (vmem_gmem_miss)7);
	assert_int_equal(vmem_gmem_read(gm, 0x5000, out, 1), VMEM_OK);
	vmem_gmem_set_miss(gm, VMEM_GMEM_MISS_ERROR);
	assert_int_equal(vmem_gmem_read(gm, 0x5000, out, 1), VMEM_E_RANGE);
	vmem_gmem_set_miss(NULL, VMEM_GMEM_MISS_ZERO);
	vmem_gmem_free(gm);
	free(a);
}

/* ---- cmpxchg ---- */

static void test_cmpxchg(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *a = page_alloc(1, 0);
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, a, 0), VMEM_OK);
	uint64_t init = 0x0123456789abcdefull;
	memcpy(a + 0x10, &init, 8);

	/* Success: stored, *expected untouched. */
	uint64_t exp = init, now;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1010, &exp, 0xfeedull), VMEM_OK);
	assert_true(exp == init);
	memcpy(&now, a + 0x10, 8);
	assert_true(now == 0xfeedull);
	/* Failure: memory untouched, *expected = current value. */
	exp = 0x1111;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1010, &exp, 0x2222), VMEM_E_RETRY);
	assert_true(exp == 0xfeedull);
	memcpy(&now, a + 0x10, 8);
	assert_true(now == 0xfeedull);
	/* Retry with the value it gave back succeeds. */
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1010, &exp, 0x2222), VMEM_OK);
	memcpy(&now, a + 0x10, 8);
	assert_true(now == 0x2222);

	/* 32-bit: touches exactly 4 bytes. */
	memset(a + 0x20, 0x77, 16);
	uint32_t e32 = 0x77777777u;
	assert_int_equal(vmem_gmem_cmpxchg32(gm, 0x1024, &e32, 0x01020304u), VMEM_OK);
	static const uint8_t want[16] = { 0x77, 0x77, 0x77, 0x77, 4, 3, 2, 1,
					   0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77 };
	assert_memory_equal(a + 0x20, want, 16);
	e32 = 0;
	assert_int_equal(vmem_gmem_cmpxchg32(gm, 0x1024, &e32, 5), VMEM_E_RETRY);
	assert_int_equal(e32, 0x01020304u);
	assert_memory_equal(a + 0x20, want, 16);

	/* Alignment, NULL, unbacked, last word of the slot. */
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1014, &exp, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_cmpxchg32(gm, 0x1022, &e32, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1010, NULL, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_cmpxchg32(gm, 0x1010, NULL, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_cmpxchg64(NULL, 0x1010, &exp, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x2000, &exp, 0), VMEM_E_RANGE);
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0xff8, &exp, 0), VMEM_E_RANGE);
	exp = 0;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, 0x1ff8, &exp, 9), VMEM_OK);
	assert_int_equal(a[0xff8], 9);
	vmem_gmem_free(gm);
	free(a);
}

/* ---- remove and foreach ---- */

struct visit {
	unsigned n, stop_at;
	uint64_t gpa[16];
};

static int visit_cb(void *arg, const vmem_region_info *r)
{
	struct visit *v = arg;
	v->gpa[v->n++] = r->gpa;
	return v->n == v->stop_at ? 42 : 0;
}

static void test_remove_foreach(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *buf = page_alloc(8, 0);
	struct mmio_log log = { 0 };
	vmem_region_info info;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	/* Inserted out of order. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x50000, PG, buf, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x30001, 7, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x10000, 2 * PG, buf + PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x90000, PG, buf + 3 * PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x0, PG, buf + 4 * PG, 0), VMEM_OK);

	struct visit v = { 0, 0, { 0 } };
	assert_int_equal(vmem_gmem_foreach(gm, visit_cb, &v), 0);
	static const uint64_t order[] = { 0x0, 0x10000, 0x30001, 0x50000, 0x90000 };
	assert_int_equal(v.n, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_true(v.gpa[i] == order[i]);
	/* Early stop returns the callback's value. */
	struct visit w = { 0, 2, { 0 } };
	assert_int_equal(vmem_gmem_foreach(gm, visit_cb, &w), 42);
	assert_int_equal(w.n, 2);
	assert_int_equal(vmem_gmem_foreach(gm, NULL, &w), 0);
	assert_int_equal(vmem_gmem_foreach(NULL, visit_cb, &w), 0);

	/* Remove needs the exact start. */
	assert_int_equal(vmem_gmem_remove(gm, 0x10001), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_remove(gm, 0x11000), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_remove(gm, 0x30000), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_remove(gm, 0x20000), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_remove(NULL, 0x10000), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_remove(gm, 0x10000), VMEM_OK);
	assert_int_equal(vmem_gmem_remove(gm, 0x10000), VMEM_E_NOENT);
	assert_int_equal(vmem_gmem_lookup(gm, 0x10000, &info), VMEM_E_NOENT);
	assert_null(vmem_gmem_hva(gm, 0x10000, 1));
	assert_int_equal(vmem_gmem_remove(gm, 0x30001), VMEM_OK);
	assert_int_equal(vmem_gmem_lookup(gm, 0x30001, &info), VMEM_E_NOENT);
	/* Neighbours are still there and still right. */
	assert_int_equal(vmem_gmem_lookup(gm, 0x50fff, &info), VMEM_OK);
	assert_ptr_equal(info.host, buf + 0xfff);
	assert_int_equal(vmem_gmem_lookup(gm, 0x90000, &info), VMEM_OK);
	assert_ptr_equal(info.host, buf + 3 * PG);
	v.n = 0;
	assert_int_equal(vmem_gmem_foreach(gm, visit_cb, &v), 0);
	assert_int_equal(v.n, 3);
	assert_true(v.gpa[0] == 0 && v.gpa[1] == 0x50000 && v.gpa[2] == 0x90000);
	/* The freed range can be reused with a different size. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x4f000, 2 * PG, buf + 4 * PG, 0), VMEM_E_OVERLAP);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x10000, 4 * PG, buf + 4 * PG, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_lookup(gm, 0x13fff, &info), VMEM_OK);
	assert_ptr_equal(info.host, buf + 8 * PG - 1);
	vmem_gmem_free(gm);
	free(buf);
}

/* foreach whose callback changes the regions (gmem.h: the visit resumes above
 * the gpa it was at): removing the visited region skips none of the others,
 * and regions added above are visited, those added below are not. */
struct churn {
	vmem_gmem *gm;
	uint8_t *buf;
	unsigned n;
	uint64_t gpa[32];
};

static int remove_cb(void *arg, const vmem_region_info *r)
{
	struct churn *c = arg;
	c->gpa[c->n++] = r->gpa;
	assert_int_equal(vmem_gmem_remove(c->gm, r->gpa), VMEM_OK);
	return 0;
}

static int add_cb(void *arg, const vmem_region_info *r)
{
	struct churn *c = arg;
	c->gpa[c->n++] = r->gpa;
	if (r->gpa == 0x10000) /* enough slots to grow the array: it moves under foreach */
		for (unsigned i = 0; i < 12; i++) {
			uint64_t below = 0x1000 * i, above = 0x20000 + 0x1000 * i;
			assert_int_equal(vmem_gmem_add_ram(c->gm, below, PG, c->buf, 0), VMEM_OK);
			assert_int_equal(vmem_gmem_add_ram(c->gm, above, PG, c->buf, 0), VMEM_OK);
		}
	return 0;
}

static void test_foreach_changing(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *buf = page_alloc(1, 0);
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(vmem_gmem_add_ram(gm, 0x100000 * (i + 1), PG, buf, 0), VMEM_OK);
	struct churn c = { gm, buf, 0, { 0 } };
	assert_int_equal(vmem_gmem_foreach(gm, remove_cb, &c), 0);
	assert_int_equal(c.n, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_true(c.gpa[i] == 0x100000 * (i + 1));
	c.n = 0;
	assert_int_equal(vmem_gmem_foreach(gm, remove_cb, &c), 0);
	assert_int_equal(c.n, 0);

	/* Adds: one region at 0x10000, then 12 below it and 12 above it from the callback. */
	assert_int_equal(vmem_gmem_add_ram(gm, 0x10000, PG, buf, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_foreach(gm, add_cb, &c), 0);
	assert_int_equal(c.n, 13);
	assert_true(c.gpa[0] == 0x10000);
	for (unsigned i = 0; i < 12; i++)
		assert_true(c.gpa[i + 1] == 0x20000 + 0x1000 * i);
	vmem_gmem_free(gm);
	free(buf);
}

/* buf inside the slot's own buffer (a VMM moving guest memory through
 * vmem_gmem_hva): the copy behaves as memmove (gmem.h). Pattern byte i = i. */
static void test_copy_overlapping_buf(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *ram = page_alloc(1, 0);
	uint8_t want[64];
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, ram, 0), VMEM_OK);
	for (int dir = 0; dir < 4; dir++) {
		for (unsigned i = 0; i < 64; i++)
			ram[i] = (uint8_t)i;
		/* dir 0/1: write from 8 bytes below/above; 2/3: read to 8 bytes above/below. */
		uint64_t gpa = dir == 1 || dir == 2 ? 0x1000 : 0x1008;
		uint8_t *buf = vmem_gmem_hva(gm, dir == 1 || dir == 2 ? 0x1008 : 0x1000, 32);
		assert_non_null(buf);
		/* Hand-worked: the 32 bytes at src land at dst; the rest is as before. */
		unsigned src = dir < 2 ? (unsigned)(buf - ram) : (unsigned)(gpa - 0x1000);
		unsigned dst = dir < 2 ? (unsigned)(gpa - 0x1000) : (unsigned)(buf - ram);
		for (unsigned i = 0; i < 64; i++)
			want[i] = (uint8_t)(i - dst < 32 ? src + (i - dst) : i);
		if (dir < 2)
			assert_int_equal(vmem_gmem_write(gm, gpa, buf, 32), VMEM_OK);
		else
			assert_int_equal(vmem_gmem_read(gm, gpa, buf, 32), VMEM_OK);
		assert_memory_equal(ram, want, 64);
	}
	vmem_gmem_free(gm);
	free(ram);
}

/* ---- the last page of the 64-bit space ---- */

static void test_top_of_space(void **state)
{
	(void)state;
	vmem_gmem *gm;
	uint8_t *a = page_alloc(1, 0x44);
	uint64_t v64 = 0;
	uint32_t v32 = 0;
	uint8_t out[16];
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, TOP_PAGE, PG, a, 0), VMEM_OK);
	assert_ptr_equal(vmem_gmem_hva(gm, ~0ull, 1), a + PG - 1);
	assert_ptr_equal(vmem_gmem_hva(gm, ~0ull - 7, 8), a + PG - 8);
	assert_null(vmem_gmem_hva(gm, ~0ull, 2));
	/* Accesses that end exactly at 2^64 lie wholly in the slot. */
	assert_int_equal(vmem_gmem_write64(gm, ~0ull - 7, 0x0807060504030201ull), VMEM_OK);
	assert_int_equal(a[PG - 1], 8);
	assert_int_equal(vmem_gmem_read64(gm, ~0ull - 7, &v64), VMEM_OK);
	assert_true(v64 == 0x0807060504030201ull);
	assert_int_equal(vmem_gmem_read32(gm, ~0ull - 3, &v32), VMEM_OK);
	assert_int_equal(v32, 0x08070605u);
	assert_int_equal(vmem_gmem_read(gm, ~0ull, out, 1), VMEM_OK);
	assert_int_equal(out[0], 8);
	uint64_t exp = v64;
	assert_int_equal(vmem_gmem_cmpxchg64(gm, ~0ull - 7, &exp, 1), VMEM_OK);
	/* ...but not one byte more: the range would wrap. */
	assert_int_equal(vmem_gmem_read(gm, ~0ull, out, 2), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_write(gm, ~0ull - 7, out, 9), VMEM_E_INVAL);
	assert_int_equal(vmem_gmem_read(gm, ~0ull - 7, out, 16), VMEM_E_INVAL);
	vmem_gmem_free(gm);
	free(a);
}

/* ---- guard pages: no access ever leaves a slot's buffer ---- */

/* Expected byte at gpa given the layout of hammer(): slot buffers hold
 * pattern bytes; everything else reads as zero (MISS_ZERO) or is an error. */
struct hammer_env {
	vmem_gmem *gm;
	struct guarded g[2];
	uint64_t base[2];  /* slot gpas */
	uint64_t size[2];
	bool readonly[2];
	struct mmio_log log;
};

/* Which slot holds gpa (-1: none). */
static int slot_of(const struct hammer_env *h, uint64_t gpa)
{
	for (int s = 0; s < 2; s++)
		if (gpa >= h->base[s] && gpa - h->base[s] < h->size[s])
			return s;
	return -1;
}

static void fill_pattern(struct hammer_env *h)
{
	for (int s = 0; s < 2; s++)
		for (uint64_t i = 0; i < h->size[s]; i++)
			h->g[s].buf[i] = (uint8_t)((h->base[s] + i) * 13 + 1);
}

static bool range_in_ram(const struct hammer_env *h, uint64_t gpa, uint64_t len, bool for_write)
{
	for (uint64_t i = 0; i < len; i++) {
		int s = slot_of(h, gpa + i);
		if (s < 0 || (for_write && h->readonly[s]))
			return false;
	}
	return true;
}

static void hammer_edges(struct hammer_env *h, const uint64_t *edges, size_t nedges, bool miss_zero)
{
	uint8_t out[40], in[40];
	vmem_gmem_set_miss(h->gm, miss_zero ? VMEM_GMEM_MISS_ZERO : VMEM_GMEM_MISS_ERROR);
	for (size_t e = 0; e < nedges; e++) {
		for (int off = -24; off <= 24; off++) {
			uint64_t gpa = edges[e] + (uint64_t)(int64_t)off;
			for (uint64_t len = 1; len <= 32; len++) {
				/* A range that runs past 2^64 is refused outright. */
				bool wraps = gpa + len - 1 < gpa;
				bool in_ram = !wraps && range_in_ram(h, gpa, len, false);
				/* read */
				memset(out, 0xcc, sizeof(out));
				vmem_err rc = vmem_gmem_read(h->gm, gpa, out, len);
				if (wraps) {
					assert_int_equal(rc, VMEM_E_INVAL);
				} else if (in_ram || miss_zero) {
					assert_int_equal(rc, VMEM_OK);
					for (uint64_t i = 0; i < len; i++) {
						int s = slot_of(h, gpa + i);
						uint8_t want = s < 0 ? 0 : (uint8_t)((gpa + i) * 13 + 1);
						assert_int_equal(out[i], want);
					}
				} else {
					assert_int_equal(rc, VMEM_E_RANGE);
				}
				assert_int_equal(out[len], 0xcc); /* nothing past the buffer */
				/* hva */
				void *p = vmem_gmem_hva(h->gm, gpa, len);
				int s0 = slot_of(h, gpa);
				bool one_slot = s0 >= 0 && slot_of(h, gpa + len - 1) == s0;
				if (one_slot)
					assert_ptr_equal(p, h->g[s0].buf + (gpa - h->base[s0]));
				else
					assert_null(p);
				/* write: the same bytes back (so the pattern survives), or nothing */
				for (uint64_t i = 0; i < len; i++)
					in[i] = (uint8_t)((gpa + i) * 13 + 1);
				rc = vmem_gmem_write(h->gm, gpa, in, len);
				if (wraps)
					assert_int_equal(rc, VMEM_E_INVAL);
				else
					assert_int_equal(rc, range_in_ram(h, gpa, len, true) ? VMEM_OK : VMEM_E_RANGE);
			}
			/* Sized and atomic accessors at aligned addresses near the edge. */
			if (!(gpa & 7)) {
				uint64_t v = 0, exp;
				bool in8 = range_in_ram(h, gpa, 8, false), w8 = range_in_ram(h, gpa, 8, true);
				vmem_err rc = vmem_gmem_read64(h->gm, gpa, &v);
				assert_int_equal(rc, in8 || miss_zero ? VMEM_OK : VMEM_E_RANGE);
				if (in8) {
					exp = v;
					assert_int_equal(vmem_gmem_write64(h->gm, gpa, v), w8 ? VMEM_OK : VMEM_E_RANGE);
					assert_int_equal(vmem_gmem_cmpxchg64(h->gm, gpa, &exp, v),
							 w8 ? VMEM_OK : VMEM_E_RANGE);
					exp = ~v;
					assert_int_equal(vmem_gmem_cmpxchg64(h->gm, gpa, &exp, 0),
							 w8 ? VMEM_E_RETRY : VMEM_E_RANGE);
					if (w8)
						assert_true(exp == v);
				} else {
					exp = 0;
					assert_int_equal(vmem_gmem_write64(h->gm, gpa, 0), VMEM_E_RANGE);
					assert_int_equal(vmem_gmem_cmpxchg64(h->gm, gpa, &exp, 0), VMEM_E_RANGE);
				}
			}
			if (!(gpa & 3)) {
				uint32_t v = 0, exp;
				bool in4 = range_in_ram(h, gpa, 4, false), w4 = range_in_ram(h, gpa, 4, true);
				vmem_err rc = vmem_gmem_read32(h->gm, gpa, &v);
				assert_int_equal(rc, in4 || miss_zero ? VMEM_OK : VMEM_E_RANGE);
				exp = in4 ? v : 0;
				assert_int_equal(vmem_gmem_cmpxchg32(h->gm, gpa, &exp, exp),
						 w4 ? VMEM_OK : VMEM_E_RANGE);
				assert_int_equal(vmem_gmem_write32(h->gm, gpa, v), w4 ? VMEM_OK : VMEM_E_RANGE);
			}
		}
	}
	/* Huge lengths from a slot edge: refused, never a runaway copy. (Reads only
	 * under MISS_ERROR: with MISS_ZERO a read from gpa 0 of SIZE_MAX bytes is
	 * legitimately all readable, and out is not that big.) */
	for (size_t e = 0; e < nedges; e++) {
		uint64_t gpa = edges[e];
		if (!miss_zero) {
			assert_int_not_equal(vmem_gmem_read(h->gm, gpa, out, SIZE_MAX), VMEM_OK);
			if (gpa >= 2)
				assert_int_equal(vmem_gmem_read(h->gm, gpa, out, SIZE_MAX - gpa + 2), VMEM_E_INVAL);
		}
		assert_int_not_equal(vmem_gmem_write(h->gm, gpa, in, SIZE_MAX), VMEM_OK);
		assert_null(vmem_gmem_hva(h->gm, gpa, ~0ull));
		if (gpa >= 2)
			assert_null(vmem_gmem_hva(h->gm, gpa, ~0ull - gpa + 2));
	}
	/* The pattern is intact everywhere (every write wrote the same bytes or nothing). */
	for (int s = 0; s < 2; s++)
		for (uint64_t i = 0; i < h->size[s]; i++)
			assert_int_equal(h->g[s].buf[i], (uint8_t)((h->base[s] + i) * 13 + 1));
}

static void hammer_layout(uint64_t base0, uint64_t pages0, bool ro0, uint64_t base1, uint64_t pages1,
			  bool ro1)
{
	struct hammer_env h;
	memset(&h, 0, sizeof(h));
	h.base[0] = base0, h.size[0] = pages0 * PG, h.readonly[0] = ro0;
	h.base[1] = base1, h.size[1] = pages1 * PG, h.readonly[1] = ro1;
	guarded_new(&h.g[0], pages0);
	guarded_new(&h.g[1], pages1);
	fill_pattern(&h);
	assert_int_equal(vmem_gmem_new(NULL, &h.gm), VMEM_OK);
	for (int s = 0; s < 2; s++)
		assert_int_equal(vmem_gmem_add_ram(h.gm, h.base[s], h.size[s], h.g[s].buf,
						   h.readonly[s] ? VMEM_SLOT_READONLY : 0), VMEM_OK);
	uint64_t edges[4] = { base0, base0 + h.size[0], base1, base1 + h.size[1] };
	hammer_edges(&h, edges, 4, false);
	hammer_edges(&h, edges, 4, true);
	vmem_gmem_free(h.gm);
	guarded_free(&h.g[0]);
	guarded_free(&h.g[1]);
}

static void test_guard_isolated(void **state)
{
	(void)state;
	/* Two slots with unbacked gaps around each. */
	hammer_layout(0x10000, 2, false, 0x40000, 1, false);
}

static void test_guard_adjacent(void **state)
{
	(void)state;
	/* Adjacent slots from separate mappings: a spanning access must switch buffers. */
	hammer_layout(0x10000, 1, false, 0x11000, 2, false);
	hammer_layout(0x10000, 1, false, 0x11000, 1, true);
	hammer_layout(0x10000, 1, true, 0x11000, 1, false);
}

static void test_guard_address_zero(void **state)
{
	(void)state;
	/* A slot at gpa 0: edges at 0 probe addresses that wrap below zero. */
	hammer_layout(0, 1, false, 0x3000, 1, false);
}

static void test_guard_mmio_neighbour(void **state)
{
	(void)state;
	struct guarded g;
	struct mmio_log log = { 0 };
	guarded_new(&g, 1);
	memset(g.buf, 0x5c, PG);
	vmem_gmem *gm;
	uint8_t out[32];
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x0ff8, 8, mmio_cb, &log), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1000, PG, g.buf, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, 0x2000, 8, mmio_cb, &log), VMEM_OK);
	for (uint64_t gpa = 0x0ff8; gpa <= 0x1008; gpa++) {
		assert_int_equal(vmem_gmem_read(gm, gpa, out, 8), VMEM_OK);
		for (uint64_t i = 0; i < 8; i++)
			assert_int_equal(out[i], gpa + i < 0x1000 ? mmio_byte(gpa + i) : 0x5c);
	}
	for (uint64_t gpa = 0x1ff8; gpa <= 0x2000; gpa++) {
		assert_int_equal(vmem_gmem_read(gm, gpa, out, 8), VMEM_OK);
		for (uint64_t i = 0; i < 8; i++)
			assert_int_equal(out[i], gpa + i < 0x2000 ? 0x5c : mmio_byte(gpa + i));
		/* A write that spans RAM and MMIO is refused (a device write cannot be undone). */
		assert_int_equal(vmem_gmem_write(gm, gpa, out, 8),
				 (gpa + 8 <= 0x2000 || gpa >= 0x2000) ? VMEM_OK : VMEM_E_INVAL);
	}
	assert_int_equal(vmem_gmem_read(gm, 0x1ff8, out, 17), VMEM_E_RANGE);
	vmem_gmem_free(gm);
	guarded_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_ram_args),
		cmocka_unit_test(test_overlap_every_side),
		cmocka_unit_test(test_lookup_hva_bounds),
		cmocka_unit_test(test_read_write_across),
		cmocka_unit_test(test_mmio_pieces),
		cmocka_unit_test(test_readonly),
		cmocka_unit_test(test_miss_policy),
		cmocka_unit_test(test_cmpxchg),
		cmocka_unit_test(test_remove_foreach),
		cmocka_unit_test(test_foreach_changing),
		cmocka_unit_test(test_copy_overlapping_buf),
		cmocka_unit_test(test_top_of_space),
		cmocka_unit_test(test_guard_isolated),
		cmocka_unit_test(test_guard_adjacent),
		cmocka_unit_test(test_guard_address_zero),
		cmocka_unit_test(test_guard_mmio_neighbour),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
