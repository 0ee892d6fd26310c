/* Failure-injection tests: every allocation of gmem_new/add_ram/add_mmio/mmu_new failed in turn; nothing changes, nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include "support/failalloc.h"

#define PG 4096ull
#define NSLOTS 40 /* enough to grow the region array several times (8 -> 16 -> 32 -> 64) */

static failalloc fa; /* big (block table): static, reset by each test */

/* ---- structure snapshots ---- */

struct snap {
	unsigned n;
	vmem_region_info r[NSLOTS + 4];
};

static int snap_cb(void *arg, const vmem_region_info *r)
{
	struct snap *s = arg;
	assert_true(s->n < NSLOTS + 4);
	s->r[s->n++] = *r;
	return 0;
}

static void take_snap(const vmem_gmem *gm, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(vmem_gmem_foreach(gm, snap_cb, s), 0);
}

/* Every region of the snapshot still answers lookups at its first and last byte as before. */
static void assert_still_there(const vmem_gmem *gm, const struct snap *before)
{
	for (unsigned i = 0; i < before->n; i++) {
		const vmem_region_info *a = &before->r[i];
		vmem_region_info li;
		assert_int_equal(vmem_gmem_lookup(gm, a->gpa, &li), VMEM_OK);
		assert_true(li.gpa == a->gpa && li.size == a->size && li.kind == a->kind);
		assert_int_equal(li.flags, a->flags);
		assert_ptr_equal(li.host, a->host);
		assert_int_equal(vmem_gmem_lookup(gm, a->gpa + a->size - 1, &li), VMEM_OK);
		assert_true(li.gpa == a->gpa);
		if (a->kind == VMEM_REGION_RAM)
			assert_ptr_equal(li.host, (uint8_t *)a->host + a->size - 1);
	}
}

/* Exactly the same regions (foreach), and every lookup answers as before. */
static void assert_same(const vmem_gmem *gm, const struct snap *before)
{
	struct snap now;
	take_snap(gm, &now);
	assert_int_equal(now.n, before->n);
	for (unsigned i = 0; i < now.n; i++) {
		const vmem_region_info *a = &before->r[i], *b = &now.r[i];
		assert_int_equal(a->kind, b->kind);
		assert_true(a->gpa == b->gpa && a->size == b->size);
		assert_int_equal(a->flags, b->flags);
		assert_ptr_equal(a->host, b->host);
	}
	assert_still_there(gm, before);
}

static int mmio_cb(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	(void)opaque;
	(void)size;
	if (!is_write)
		*val = gpa;
	return 0;
}

static void assert_no_leak(void)
{
	assert_int_equal(fa.live, 0);
	assert_int_equal(fa.live_bytes, 0);
	assert_int_equal(fa.bad_frees, 0);
}

/* ---- the allocator itself ---- */

static void test_failalloc_self(void **state)
{
	(void)state;
	failalloc_init(&fa);
	void *a = fa.a.alloc(fa.a.ctx, 24), *p = fa.a.alloc_page(fa.a.ctx);
	assert_non_null(a);
	assert_non_null(p);
	assert_int_equal((uintptr_t)a & 15, 0);
	assert_int_equal((uintptr_t)p & 4095, 0);
	assert_int_equal(fa.live, 2);
	assert_int_equal(fa.live_bytes, 24 + 4096);
	failalloc_fail_in(&fa, 1);
	void *b = fa.a.alloc(fa.a.ctx, 8);
	assert_non_null(b);
	assert_null(fa.a.alloc(fa.a.ctx, 8)); /* the one that fails */
	void *c = fa.a.alloc(fa.a.ctx, 8);    /* and only that one */
	assert_non_null(c);
	assert_int_equal(fa.failed, 1);
	fa.a.free(fa.a.ctx, a, 23); /* wrong size: recorded */
	assert_int_equal(fa.bad_frees, 1);
	fa.a.free(fa.a.ctx, b, 8);
	fa.a.free(fa.a.ctx, c, 8);
	fa.a.free_page(fa.a.ctx, p);
	assert_int_equal(fa.live, 0);
	assert_int_equal(fa.live_bytes, 0);
	int local;
	fa.a.free(fa.a.ctx, &local, 4); /* never allocated here: recorded, not freed */
	assert_int_equal(fa.bad_frees, 2);
}

/* ---- gmem ---- */

static void test_gmem_new_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_gmem *gm = (vmem_gmem *)(uintptr_t)0x5a5a;
	long k;
	for (k = 0;; k++) {
		failalloc_fail_in(&fa, k);
		vmem_err e = vmem_gmem_new(&fa.a, &gm);
		if (e == VMEM_OK)
			break;
		assert_int_equal(e, VMEM_E_NOMEM);
		assert_ptr_equal(gm, (vmem_gmem *)(uintptr_t)0x5a5a);
		assert_int_equal(fa.live, 0);
		assert_true(k < 16);
	}
	assert_true(k >= 1); /* a handle had to be allocated */
	/* A fresh handle is empty even though the allocator hands out poisoned memory. */
	struct snap s;
	take_snap(gm, &s);
	assert_int_equal(s.n, 0);
	vmem_region_info li;
	assert_int_equal(vmem_gmem_lookup(gm, 0, &li), VMEM_E_NOENT);
	uint8_t b;
	assert_int_equal(vmem_gmem_read(gm, 0, &b, 1), VMEM_E_RANGE); /* MISS_ERROR by default */
	vmem_gmem_free(gm);
	assert_no_leak();
}

/* gpa of the i-th region: scrambled order so that inserts land at the front,
 * the back and in the middle of the array. Each region gets its own 4 KiB
 * window starting at 0x100000 * perm(i). */
static uint64_t region_gpa(unsigned i)
{
	return 0x100000ull * ((i * 17u) % 41u);
}

static void add_all_with_failures(vmem_gmem *gm, uint8_t *buf, bool mmio_too)
{
	long grew = 0;
	for (unsigned i = 0; i < NSLOTS; i++) {
		uint64_t gpa = region_gpa(i);
		bool is_mmio = mmio_too && (i % 3 == 1);
		struct snap before;
		take_snap(gm, &before);
		long live = fa.live;
		size_t bytes = fa.live_bytes;
		long k;
		for (k = 0;; k++) {
			failalloc_fail_in(&fa, k);
			vmem_err e = is_mmio ? vmem_gmem_add_mmio(gm, gpa + 3, 0x7f1, mmio_cb, NULL)
					     : vmem_gmem_add_ram(gm, gpa, PG, buf + i * PG, i & 1 ? VMEM_SLOT_READONLY : 0);
			if (e == VMEM_OK)
				break;
			assert_int_equal(e, VMEM_E_NOMEM);
			assert_same(gm, &before);
			vmem_region_info li;
			assert_int_equal(vmem_gmem_lookup(gm, gpa + 3, &li), VMEM_E_NOENT);
			assert_int_equal(fa.live, live);
			assert_int_equal(fa.live_bytes, bytes);
			assert_true(k < 16);
		}
		failalloc_never(&fa);
		if (k)
			grew++;
		/* The array must grow when the 1st, 9th, 17th and 33rd regions arrive. */
		if (i == 0 || i == 8 || i == 16 || i == 32)
			assert_true(k >= 1);
		/* The new region answers, the old ones still do. */
		vmem_region_info li;
		assert_int_equal(vmem_gmem_lookup(gm, gpa + 3, &li), VMEM_OK);
		assert_int_equal(li.kind, is_mmio ? VMEM_REGION_MMIO : VMEM_REGION_RAM);
		assert_still_there(gm, &before);
		struct snap after;
		take_snap(gm, &after);
		assert_int_equal(after.n, before.n + 1);
	}
	assert_true(grew >= 4);
}

/* The data path still works after all that: each RAM slot holds its own bytes. */
static void check_data(vmem_gmem *gm, uint8_t *buf, bool mmio_too)
{
	for (unsigned i = 0; i < NSLOTS; i++) {
		if (mmio_too && i % 3 == 1)
			continue;
		uint64_t v = 0, want;
		assert_int_equal(vmem_gmem_read64(gm, region_gpa(i) + 8, &v), VMEM_OK);
		memcpy(&want, buf + i * PG + 8, 8);
		assert_true(v == want);
	}
}

static uint8_t *slot_buffers(void)
{
	uint8_t *buf = aligned_alloc(PG, NSLOTS * PG);
	assert_non_null(buf);
	for (size_t i = 0; i < NSLOTS * PG; i++)
		buf[i] = (uint8_t)(i * 31 + i / PG);
	return buf;
}

static void test_add_ram_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	uint8_t *buf = slot_buffers();
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(&fa.a, &gm), VMEM_OK);
	add_all_with_failures(gm, buf, false);
	check_data(gm, buf, false);
	/* Remove half, add them back under failures again (no growth needed now). */
	for (unsigned i = 0; i < NSLOTS; i += 2)
		assert_int_equal(vmem_gmem_remove(gm, region_gpa(i)), VMEM_OK);
	for (unsigned i = 0; i < NSLOTS; i += 2) {
		struct snap before;
		take_snap(gm, &before);
		long k;
		for (k = 0;; k++) {
			failalloc_fail_in(&fa, k);
			vmem_err e = vmem_gmem_add_ram(gm, region_gpa(i), PG, buf + i * PG, 0);
			if (e == VMEM_OK)
				break;
			assert_int_equal(e, VMEM_E_NOMEM);
			assert_same(gm, &before);
			assert_true(k < 16);
		}
		failalloc_never(&fa);
	}
	check_data(gm, buf, false);
	vmem_gmem_free(gm);
	assert_no_leak();
	free(buf);
}

static void test_add_mixed_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	uint8_t *buf = slot_buffers();
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(&fa.a, &gm), VMEM_OK);
	add_all_with_failures(gm, buf, true);
	check_data(gm, buf, true);
	/* MMIO holes answer through the callback (value = gpa of the piece). */
	uint64_t v = 0;
	assert_int_equal(vmem_gmem_read64(gm, region_gpa(1) + 8, &v), VMEM_OK);
	assert_true(v == region_gpa(1) + 8);
	vmem_gmem_free(gm);
	assert_no_leak();
	free(buf);
}

/* Overlap and argument errors come before any allocation: nothing is allocated for them. */
static void test_refusals_allocate_nothing(void **state)
{
	(void)state;
	failalloc_init(&fa);
	uint8_t *buf = slot_buffers();
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(&fa.a, &gm), VMEM_OK);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(vmem_gmem_add_ram(gm, region_gpa(i), PG, buf + i * PG, 0), VMEM_OK);
	/* The array is full (8): the next add must grow it, but an overlapping one must not try. */
	long calls = fa.calls;
	long live = fa.live;
	assert_int_equal(vmem_gmem_add_ram(gm, region_gpa(3), PG, buf, 0), VMEM_E_OVERLAP);
	assert_int_equal(vmem_gmem_add_mmio(gm, region_gpa(3) + 5, 1, mmio_cb, NULL), VMEM_E_OVERLAP);
	assert_int_equal(vmem_gmem_add_ram(gm, 0x1001, PG, buf, 0), VMEM_E_INVAL);
	assert_int_equal(fa.live, live);
	assert_int_equal(fa.calls, calls);
	vmem_gmem_free(gm);
	assert_no_leak();
	free(buf);
}

/* ---- mmu ---- */

static void test_mmu_new_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	r.cr4 = VMEM_CR4_PAE;
	r.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	r.cr3 = 0x1000;
	vmem_mmu *m = (vmem_mmu *)(uintptr_t)0x5a5a;
	long k;
	for (k = 0;; k++) {
		failalloc_fail_in(&fa, k);
		vmem_err e = vmem_mmu_new(&fa.a, &r, &m);
		if (e == VMEM_OK)
			break;
		assert_int_equal(e, VMEM_E_NOMEM);
		assert_ptr_equal(m, (vmem_mmu *)(uintptr_t)0x5a5a);
		assert_int_equal(fa.live, 0);
		assert_true(k < 16);
	}
	failalloc_never(&fa);
	assert_true(k >= 1);
	/* Built correctly from poisoned memory. */
	assert_int_equal(vmem_mmu_mode(m), VMEM_MODE_4LEVEL);
	assert_memory_equal(vmem_mmu_regs(m), &r, sizeof(r));
	/* set_regs does not allocate, so it cannot fail for lack of memory. */
	long calls = fa.calls;
	vmem_regs pae = r;
	pae.efer = 0;
	assert_int_equal(vmem_mmu_set_regs(m, &pae), VMEM_OK);
	assert_int_equal(vmem_mmu_mode(m), VMEM_MODE_PAE);
	assert_int_equal(fa.calls, calls);
	vmem_mmu_free(m);
	assert_no_leak();

	/* Refused registers: no allocation at all. */
	r.cr0 = VMEM_CR0_PG;
	assert_int_equal(vmem_mmu_new(&fa.a, &r, &m), VMEM_E_INVAL);
	assert_int_equal(fa.calls, calls);
	assert_no_leak();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failalloc_self),
		cmocka_unit_test(test_gmem_new_fails),
		cmocka_unit_test(test_add_ram_fails),
		cmocka_unit_test(test_add_mixed_fails),
		cmocka_unit_test(test_refusals_allocate_nothing),
		cmocka_unit_test(test_mmu_new_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
