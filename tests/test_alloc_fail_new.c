/* Failure injection for the constructors test_alloc_fail.c does not cover (tlb, ept, ept grant, ept_mmu, pwc, dirty): each allocation fails in turn; *out untouched, nothing leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include <libvmem/nested.h>
#include <libvmem/tlb.h>
#include "support/failalloc.h"

#define POISON ((void *)(uintptr_t)0x5a5a)

static failalloc fa; /* big (block table): static, reset by each test */

/* A constructor under test: builds into *out with fa's allocator, or fails. */
typedef vmem_err (*ctor_fn)(void *arg, void **out);

/* Fail call k = 0, 1, ... until the constructor succeeds. Each failure must
 * be VMEM_E_NOMEM with *out untouched and every block it took given back.
 * Returns how many calls failed (the allocations the constructor makes). */
static long fail_each(ctor_fn mk, void *arg, void **out)
{
	long live = fa.live, k;
	for (k = 0;; k++) {
		failalloc_fail_in(&fa, k);
		*out = POISON;
		vmem_err e = mk(arg, out);
		if (e == VMEM_OK)
			break;
		assert_int_equal(e, VMEM_E_NOMEM);
		assert_ptr_equal(*out, POISON);
		assert_int_equal(fa.live, live);
		assert_int_equal(fa.bad_frees, 0);
		assert_true(k < 16);
	}
	failalloc_never(&fa);
	assert_ptr_not_equal(*out, POISON);
	return k;
}

static void assert_no_leak(void)
{
	assert_int_equal(fa.live, 0);
	assert_int_equal(fa.live_bytes, 0);
	assert_int_equal(fa.bad_frees, 0);
}

/* ---- tlb: a handle and one array per page size ---- */

static vmem_err mk_tlb(void *arg, void **out)
{
	(void)arg;
	return vmem_tlb_new(&fa.a, 6, (vmem_tlb **)out);
}

static void test_tlb_new_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_tlb *t;
	assert_true(fail_each(mk_tlb, NULL, (void **)&t) >= 2); /* handle + at least one array */
	/* Built from poisoned memory, it still starts empty and works. */
	vmem_tlb_tag tag = { 1, 0, 0 };
	vmem_tlb_xlat x = { 0x5000, 4096, 0, 0, 0, 0 }, got;
	assert_false(vmem_tlb_lookup(t, &tag, 0x7000, &got));
	assert_int_equal(vmem_tlb_insert(t, &tag, 0x7000, &x), VMEM_OK);
	assert_true(vmem_tlb_lookup(t, &tag, 0x7000, &got));
	assert_true(got.pa == 0x5000);
	vmem_tlb_free(t);
	assert_no_leak();
	/* Refused arguments allocate nothing. */
	long calls = fa.calls;
	assert_int_equal(vmem_tlb_new(&fa.a, 3, &t), VMEM_E_INVAL);
	assert_int_equal(fa.calls, calls);
}

/* ---- ept (the map): a handle and a root node (node, page, children) ---- */

static const vmem_ept_config ept_cfg = { .levels = 4, .ad = true, .eptp_mt = VMEM_MT_WB };

static vmem_err mk_ept(void *arg, void **out)
{
	(void)arg;
	return vmem_ept_new(&fa.a, &ept_cfg, (vmem_ept **)out);
}

static void test_ept_new_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_ept *e;
	assert_true(fail_each(mk_ept, NULL, (void **)&e) >= 3);
	vmem_ept_stats st;
	vmem_ept_get_stats(e, &st);
	assert_true(st.table_pages == 1);
	vmem_ept_free(e);
	assert_no_leak();
}

/* A grant that must grow the grant array (8 disjoint ones fill it) fails
 * with the grants as before: map still refuses its HPA, accepts the others. */
static void test_ept_grant_grow_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_ept *e;
	assert_int_equal(vmem_ept_new(&fa.a, &ept_cfg, &e), VMEM_OK);
	const uint64_t step = 1ull << 24; /* disjoint, never adjacent */
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(vmem_ept_grant(e, i * step, 4096), VMEM_OK);
	long live = fa.live;
	failalloc_fail_in(&fa, 0);
	assert_int_equal(vmem_ept_grant(e, 8 * step, 4096), VMEM_E_NOMEM);
	failalloc_never(&fa);
	assert_int_equal(fa.live, live);
	const uint64_t r = VMEM_EPT_R;
	assert_int_equal(vmem_ept_map(e, 0, 8 * step, 4096, r, VMEM_MT_WB, false, NULL), VMEM_E_RANGE);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(vmem_ept_map(e, i * 4096, i * step, 4096, r, VMEM_MT_WB, false, NULL), VMEM_OK);
	assert_int_equal(vmem_ept_grant(e, 8 * step, 4096), VMEM_OK);
	assert_int_equal(vmem_ept_map(e, 0, 8 * step, 4096, r, VMEM_MT_WB, false, NULL), VMEM_OK);
	vmem_ept_free(e);
	assert_no_leak();
}

/* ---- ept_mmu and pwc: one handle each ---- */

static vmem_err mk_ept_mmu(void *arg, void **out)
{
	(void)arg;
	/* WB (6), 4-level walk (bits 5:3 = 3), root at 0x1000. */
	return vmem_ept_mmu_new(&fa.a, 0x1000 | 0x1e, NULL, (vmem_ept_mmu **)out);
}

static vmem_err mk_pwc(void *arg, void **out)
{
	(void)arg;
	return vmem_ept_pwc_new(&fa.a, (vmem_ept_pwc **)out);
}

static void test_ept_mmu_and_pwc_new_fail(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_ept_mmu *m;
	vmem_ept_pwc *c;
	assert_int_equal(fail_each(mk_ept_mmu, NULL, (void **)&m), 1);
	assert_int_equal(fail_each(mk_pwc, NULL, (void **)&c), 1);
	vmem_ept_pwc_free(c);
	vmem_ept_mmu_free(m);
	assert_no_leak();
	long calls = fa.calls;
	assert_int_equal(vmem_ept_mmu_new(&fa.a, 0x1000 | 0x1f, NULL, &m), VMEM_E_INVAL); /* memory type 7 */
	assert_int_equal(fa.calls, calls);
}

/* ---- dirty: a handle and its bitmap, over an existing EPT (WP mode marks armed leaves in the leaves) ---- */

static vmem_err mk_dirty(void *arg, void **out)
{
	return vmem_dirty_new(&fa.a, arg, 0, 1ull << 21, (vmem_dirty **)out);
}

static void test_dirty_new_fails(void **state)
{
	(void)state;
	failalloc_init(&fa);
	vmem_ept *e;
	assert_int_equal(vmem_ept_new(&fa.a, &ept_cfg, &e), VMEM_OK);
	vmem_ept_stats before, st;
	vmem_ept_get_stats(e, &before);
	vmem_dirty *d;
	assert_int_equal(fail_each(mk_dirty, e, (void **)&d), 2);
	vmem_ept_get_stats(e, &st);
	assert_memory_equal(&st, &before, sizeof(st)); /* the EPT is not touched */
	assert_int_equal(vmem_dirty_get_mode(d), VMEM_DIRTY_OFF);
	vmem_dirty_free(d);
	vmem_ept_free(e);
	assert_no_leak();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tlb_new_fails),
		cmocka_unit_test(test_ept_new_fails),
		cmocka_unit_test(test_ept_grant_grow_fails),
		cmocka_unit_test(test_ept_mmu_and_pwc_new_fail),
		cmocka_unit_test(test_dirty_new_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
