/* A paging-structure or EPT entry only partly in an MMIO hole: each device sees only accesses inside its own region. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

/* One device: its region, the value of its register bytes, and any access
 * it saw that reached outside its region (gmem.h: "MMIO holes call back on
 * every access" to them, and a device knows only its own registers). */
struct dev {
	uint64_t base, size;
	uint64_t bytes; /* byte i of the region reads as byte i of this */
	unsigned calls, outside;
};

static int dev_cb(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	struct dev *d = opaque;
	d->calls++;
	if (gpa < d->base || gpa - d->base >= d->size || size > d->size - (gpa - d->base)) {
		d->outside++;
		return VMEM_E_RANGE;
	}
	if (!is_write)
		*val = d->bytes >> (8 * (gpa - d->base));
	if (size < 8)
		*val &= (1ull << (8 * size)) - 1;
	return 0;
}

static vmem_mmu *long_mode(uint64_t cr3)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	r.cr4 = VMEM_CR4_PAE;
	r.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	r.cr3 = cr3;
	vmem_mmu *m;
	assert_int_equal(vmem_mmu_new(NULL, &r, &m), VMEM_OK);
	return m;
}

/* The PML4E for la 0 is the 8 bytes at cr3 = 0x1000: a 4-byte device holds
 * the low half, nothing the high half. Reading those 8 bytes is an access
 * to unbacked memory (VMEM_E_RANGE by default), so the walk reports
 * BAD_GPA at 0x1000, and the device never sees the 8-byte access. */
static void test_half_mmio_half_unbacked(void **state)
{
	(void)state;
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	struct dev a = { 0x1000, 4, 0x11223344, 0, 0 };
	assert_int_equal(vmem_gmem_add_mmio(gm, a.base, a.size, dev_cb, &a), VMEM_OK);
	vmem_mmu *m = long_mode(0x1000);
	vmem_walk_result res;
	assert_int_equal(vmem_walk(m, gm, 0, VMEM_ACC_READ, 0, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_WALK_BAD_GPA);
	assert_true(res.gpa == 0x1000);
	assert_int_equal(a.outside, 0);

	/* Unlisted memory reading as zero: the entry is the device's half, zero above. */
	vmem_gmem_set_miss(gm, VMEM_GMEM_MISS_ZERO);
	vmem_walk_trace tr;
	assert_int_equal(vmem_walk_traced(m, gm, 0, VMEM_ACC_READ, 0, &res, &tr), VMEM_OK);
	assert_int_equal(a.outside, 0);
	assert_true(a.calls > 0);
	assert_int_equal(tr.n, 1); /* bit 0 of 0x11223344 clear: not present */
	assert_true(tr.e[0].value == 0x11223344ull);
	vmem_mmu_free(m);
	vmem_gmem_free(gm);
}

/* Two 4-byte devices side by side under one entry: each answers its half. */
static void test_two_devices_one_entry(void **state)
{
	(void)state;
	vmem_gmem *gm;
	assert_int_equal(vmem_gmem_new(NULL, &gm), VMEM_OK);
	struct dev a = { 0x1000, 4, 0x11223344, 0, 0 }, b = { 0x1004, 4, 0x55667788, 0, 0 };
	assert_int_equal(vmem_gmem_add_mmio(gm, a.base, a.size, dev_cb, &a), VMEM_OK);
	assert_int_equal(vmem_gmem_add_mmio(gm, b.base, b.size, dev_cb, &b), VMEM_OK);
	vmem_mmu *m = long_mode(0x1000);
	vmem_walk_result res;
	vmem_walk_trace tr;
	assert_int_equal(vmem_walk_traced(m, gm, 0, VMEM_ACC_READ, 0, &res, &tr), VMEM_OK);
	assert_int_equal(a.outside + b.outside, 0);
	assert_true(b.calls > 0);
	assert_int_equal(tr.n, 1);
	assert_true(tr.e[0].value == 0x5566778811223344ull);
	vmem_mmu_free(m);
	vmem_gmem_free(gm);
}

/* The EPT walk reads its entries the same way: EPTP WB, 4 levels, root at
 * 0x1000, whose first 8 bytes are two 4-byte devices. gpa 0 uses entry 0. */
static void test_ept_entry_two_devices(void **state)
{
	(void)state;
	vmem_gmem *host;
	assert_int_equal(vmem_gmem_new(NULL, &host), VMEM_OK);
	struct dev a = { 0x1000, 4, 0x11223344, 0, 0 }, b = { 0x1004, 4, 0x55667788, 0, 0 };
	assert_int_equal(vmem_gmem_add_mmio(host, a.base, a.size, dev_cb, &a), VMEM_OK);
	vmem_ept_mmu *e;
	assert_int_equal(vmem_ept_mmu_new(NULL, 0x1000 | 0x1e, NULL, &e), VMEM_OK);
	vmem_ept_access acc = { VMEM_EPT_READ, 0, 0, 0 };
	vmem_ept_result res;
	vmem_ept_trace tr;
	/* High half unbacked: BAD_HPA at the entry, the device never asked for 8 bytes. */
	assert_int_equal(vmem_ept_walk(e, host, 0, &acc, 0, &res, NULL), VMEM_OK);
	assert_int_equal(res.status, VMEM_EPT_BAD_HPA);
	assert_true(res.hpa == 0x1000);
	assert_int_equal(a.outside, 0);
	assert_int_equal(vmem_gmem_add_mmio(host, b.base, b.size, dev_cb, &b), VMEM_OK);
	assert_int_equal(vmem_ept_walk(e, host, 0, &acc, 0, &res, &tr), VMEM_OK);
	assert_int_equal(a.outside + b.outside, 0);
	assert_true(tr.n >= 1 && tr.e[0].value == 0x5566778811223344ull);
	vmem_ept_mmu_free(e);
	vmem_gmem_free(host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_half_mmio_half_unbacked),
		cmocka_unit_test(test_two_devices_one_entry),
		cmocka_unit_test(test_ept_entry_two_devices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
