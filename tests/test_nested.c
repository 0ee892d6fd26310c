/* Nested (2-D) walk cases worked by hand from the SDM (vol. 3A ch. 4, vol. 3C 28.2.1, 29.3) and the vectors.md ordering rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "support/testram.h"
#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/tlb.h>
#include <libvmem/walk.h>

/* Host memory: 4 MiB. EPT tables at HPA 0x1000 (PML4), 0x2000 (PDPT),
 * 0x3000 (PD), 0x4000 (PT); the PT maps guest page n (GPA n*4K, n < 512)
 * to HPA 0x200000 + n*4K, RWX WB. Guest 4-level tables at GPA 0x10000
 * (PML4), 0x11000 (PDPT), 0x12000 (PD), 0x13000 (PT); LA 0x1000 maps to
 * GPA 0x20000, so HPA 0x220000. */
#define RAM_SIZE (4u << 20)
#define GBASE 0x200000ull
#define EPT_PT 0x4000
#define EPTP    (0x1000 | 0x1e)  /* WB, 4 levels */
#define EPTP_AD (0x1000 | 0x5e)  /* ... with A/D */
#define G_PML4 0x10000
#define G_PDPT 0x11000
#define G_PD   0x12000
#define G_PT   0x13000
#define CR0_PG_WP_PE 0x80010001ull

struct fx {
	uint8_t *ram;
	vmem_gmem *gm;
	vmem_ept_mmu *ept;
	vmem_mmu *mmu;
	vmem_ept_caps caps;
};

static void put(struct fx *f, uint64_t hpa, uint64_t v) { testram_put64(f->ram, hpa, v); }
static uint64_t get(struct fx *f, uint64_t hpa) { return testram_get64(f->ram, hpa); }
static void gput(struct fx *f, uint64_t gpa, uint64_t v) { put(f, GBASE + gpa, v); }
static uint64_t gget(struct fx *f, uint64_t gpa) { return get(f, GBASE + gpa); }
static void gput32(struct fx *f, uint64_t gpa, uint32_t v) { testram_put32(f->ram, GBASE + gpa, v); }
static uint32_t gget32(struct fx *f, uint64_t gpa) { return testram_get32(f->ram, GBASE + gpa); }
/* The EPT PTE of guest page gpa. */
static uint64_t eptpte_at(uint64_t gpa) { return EPT_PT + 8 * (gpa >> 12); }
static void eptpte(struct fx *f, uint64_t gpa, uint64_t bits) { put(f, eptpte_at(gpa), GBASE + (gpa & ~0xfffull) + bits); }

static void load_ept(struct fx *f, uint64_t eptp)
{
	vmem_ept_mmu_free(f->ept);
	f->ept = NULL;
	assert_int_equal(vmem_ept_mmu_new(NULL, eptp, &f->caps, &f->ept), VMEM_OK);
}

static void set_cpu(struct fx *f, uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = cr0, r.cr3 = cr3, r.cr4 = cr4, r.efer = efer;
	r.maxphyaddr = 40;
	vmem_mmu_free(f->mmu);
	f->mmu = NULL;
	assert_int_equal(vmem_mmu_new(NULL, &r, &f->mmu), VMEM_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = testram_new(RAM_SIZE, &f->gm);
	vmem_ept_caps_init(&f->caps);
	f->caps.maxphyaddr = 40;
	put(f, 0x1000, 0x2007);
	put(f, 0x2000, 0x3007);
	put(f, 0x3000, 0x4007);
	for (uint64_t n = 0; n < 512; n++)
		eptpte(f, n << 12, 0x37);
	gput(f, G_PML4, G_PDPT | 7);
	gput(f, G_PDPT, G_PD | 7);
	gput(f, G_PD, G_PT | 7);
	gput(f, G_PT + 8, 0x20007);
	set_cpu(f, CR0_PG_WP_PE, G_PML4, 0x20, 0x500);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmem_ept_mmu_free(f->ept);
	vmem_mmu_free(f->mmu);
	testram_free(f->ram, f->gm);
	free(f);
	return 0;
}

static vmem_nested_result nwalk(struct fx *f, uint64_t la, unsigned acc, vmem_nested_trace *tr)
{
	vmem_nested_result r;
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, la, acc, 0, &r, tr), VMEM_OK);
	return r;
}

/* A read with EPT A/D: guest A on each entry; EPT A on the entries used,
 * and D on the EPT leaves of the guest tables (their accesses are writes),
 * A only on the final read's leaf. */
static void test_ok_read_ad(void **state)
{
	struct fx *f = *state;
	load_ept(f, EPTP_AD);
	vmem_nested_trace tr;
	vmem_nested_result r = nwalk(f, 0x1234, VMEM_ACC_READ, &tr);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.gpa, 0x20234);
	assert_int_equal(r.hpa, 0x220234);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(gget(f, G_PML4), G_PDPT | 0x27);
	assert_int_equal(gget(f, G_PDPT), G_PD | 0x27);
	assert_int_equal(gget(f, G_PD), G_PT | 0x27);
	assert_int_equal(gget(f, G_PT + 8), 0x20027);
	assert_int_equal(get(f, 0x1000), 0x2107);
	assert_int_equal(get(f, 0x3000), 0x4107);
	for (uint64_t g = G_PML4; g <= G_PT; g += 0x1000)
		assert_int_equal(get(f, eptpte_at(g)), GBASE + g + 0x337);
	assert_int_equal(get(f, eptpte_at(0x20000)), GBASE + 0x20000 + 0x137);
	/* The trace: 4 guest entries, 5 EPT translations (4 entries + final). */
	assert_int_equal(tr.guest.n, 4);
	assert_int_equal(tr.guest.e[3].gpa, G_PT + 8);
	assert_int_equal(tr.n, 5);
	assert_int_equal(tr.ept[0].gpa, G_PML4);
	assert_int_equal(tr.ept[4].gpa, 0x20234);
	assert_int_equal(tr.ept[4].t.n, 4);
	assert_int_equal(tr.ept[4].t.e[3].hpa, eptpte_at(0x20000));
	/* A write sets the guest D and the final leaf's EPT D. */
	r = nwalk(f, 0x1234, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(gget(f, G_PT + 8), 0x20067);
	assert_int_equal(get(f, eptpte_at(0x20000)), GBASE + 0x20000 + 0x337);
}

/* EPT A/D off: no EPT entry changes; the guest's flags still do. VMEM_WALK_NO_AD: nothing. */
static void test_no_ept_ad(void **state)
{
	struct fx *f = *state;
	load_ept(f, EPTP);
	vmem_nested_result r;
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0x1000, VMEM_ACC_WRITE,
					  VMEM_WALK_NO_AD, &r, NULL), VMEM_OK);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(gget(f, G_PT + 8), 0x20007);
	load_ept(f, EPTP_AD);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0x1000, VMEM_ACC_WRITE,
					  VMEM_WALK_NO_AD, &r, NULL), VMEM_OK);
	assert_int_equal(get(f, 0x1000), 0x2007);
	assert_int_equal(gget(f, G_PML4), G_PDPT | 7);
	load_ept(f, EPTP);
	r = nwalk(f, 0x1000, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.hpa, 0x220000);
	assert_int_equal(gget(f, G_PT + 8), 0x20067);
	assert_int_equal(get(f, 0x1000), 0x2007);
	assert_int_equal(get(f, eptpte_at(G_PD)), GBASE + G_PD + 0x37);
}

/* A guest #PF: no guest flag written, but each EPT translation that
 * completed before it wrote its flags (vectors.md; example nested-02). */
static void test_guest_pf(void **state)
{
	struct fx *f = *state;
	load_ept(f, EPTP_AD);
	gput(f, G_PD, 0);
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_PF);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(gget(f, G_PML4), G_PDPT | 7);
	assert_int_equal(get(f, eptpte_at(G_PD)), GBASE + G_PD + 0x337);
	assert_int_equal(get(f, eptpte_at(G_PT)), GBASE + G_PT + 0x37);
	/* A guest protection fault comes before the final EPT check. */
	gput(f, G_PD, G_PT | 7);
	gput(f, G_PT + 8, 0x20005);
	eptpte(f, 0x20000, 0);
	vmem_nested_trace tr;
	r = nwalk(f, 0x1000, VMEM_ACC_WRITE | VMEM_ACC_USER, &tr);
	assert_int_equal(r.status, VMEM_NESTED_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U);
	assert_int_equal(tr.n, 4);
	assert_int_equal(gget(f, G_PT + 8), 0x20005);
}

/* An EPT violation on a guest paging-structure access: bit 7 = 1, bit 8 = 0;
 * bits 0-1 both set under EPT A/D (SDM 28.2.1; example nested-06). */
static void test_violation_on_walk(void **state)
{
	struct fx *f = *state;
	put(f, eptpte_at(G_PD), 0); /* the guest PD's page is not present in EPT */
	load_ept(f, EPTP_AD);
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_FETCH, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x83);
	assert_int_equal(r.gpa, G_PD);
	assert_int_equal(r.linear, 0x1000);
	assert_int_equal(r.final, 0);
	assert_int_equal(r.guest.status, VMEM_NESTED_GUEST_STOPPED); /* the guest walk did not complete */
	assert_int_equal(gget(f, G_PML4), G_PDPT | 7);
	assert_int_equal(get(f, eptpte_at(G_PDPT)), GBASE + G_PDPT + 0x337);
	load_ept(f, EPTP);
	r = nwalk(f, 0x1000, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.exit_qual, 0x81);
	/* Read-only guest PD page under EPT A/D: a write for EPT, refused: 0x3 | R << 3 | bit 7. */
	eptpte(f, G_PD, 0x31);
	load_ept(f, EPTP_AD);
	r = nwalk(f, 0x1000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.exit_qual, 0x8b);
	assert_int_equal(r.gpa, G_PD);
}

/* EPT A/D off, guest PD page read-only for EPT: the walk reads it, but the
 * guest's accessed-flag write is a data write (SDM 29.3.3.2): refused with
 * bit 1 and bit 8 = 0. Flags above it were already written (top-down). */
static void test_guest_ad_write_refused(void **state)
{
	struct fx *f = *state;
	eptpte(f, G_PD, 0x31);
	load_ept(f, EPTP);
	vmem_nested_trace tr;
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_READ, &tr);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x8 | 0x80);
	assert_int_equal(r.gpa, G_PD);
	assert_int_equal(r.final, 0);
	assert_int_equal(tr.n, 5);
	assert_int_equal(tr.ept[4].gpa, G_PD);
	assert_int_equal(gget(f, G_PML4), G_PDPT | 0x27);
	assert_int_equal(gget(f, G_PDPT), G_PD | 0x27);
	assert_int_equal(gget(f, G_PD), G_PT | 7);
	assert_int_equal(gget(f, G_PT + 8), 0x20007);
	/* With the PDE's accessed flag already set nothing is written there: OK. */
	gput(f, G_PD, G_PT | 0x27);
	r = nwalk(f, 0x1000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(gget(f, G_PT + 8), 0x20027);
}

/* The final access: guest flags are written first, then EPT refuses (bit 8 = 1). */
static void test_violation_on_final(void **state)
{
	struct fx *f = *state;
	eptpte(f, 0x20000, 0x35); /* R-X */
	load_ept(f, EPTP_AD);
	vmem_nested_result r = nwalk(f, 0x1010, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x28 | 0x180);
	assert_int_equal(r.gpa, 0x20010);
	assert_int_equal(r.linear, 0x1010);
	assert_int_equal(r.final, 1);
	assert_int_equal(gget(f, G_PT + 8), 0x20067);
	assert_int_equal(get(f, eptpte_at(0x20000)), GBASE + 0x20000 + 0x35);
}

static void test_misconfig(void **state)
{
	struct fx *f = *state;
	eptpte(f, G_PDPT, 0x32); /* write without read */
	load_ept(f, EPTP_AD);
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_MISCONFIG);
	assert_int_equal(r.gpa, G_PDPT);
	assert_int_equal(r.final, 0);
	assert_int_equal(get(f, eptpte_at(G_PML4)), GBASE + G_PML4 + 0x337);
	eptpte(f, G_PDPT, 0x37);
	eptpte(f, 0x20000, 0x17); /* memory type 2 */
	r = nwalk(f, 0x1008, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_MISCONFIG);
	assert_int_equal(r.gpa, 0x20008);
	assert_int_equal(r.final, 1);
	assert_int_equal(gget(f, G_PT + 8), 0x20027);
}

/* Page size: the smaller of the guest's and EPT's. */
static void test_page_sizes(void **state)
{
	struct fx *f = *state;
	put(f, 0x3008, 0x000000b7);         /* EPT: GPA 2M..4M -> HPA 0, a 2M leaf */
	put(f, 0x2008, 0x800000b7ull);      /* EPT: GPA 1G..2G -> HPA 2G, a 1G leaf */
	gput(f, G_PT + 16, 0x200007);       /* LA 0x2000 -> GPA 0x200000 (4K guest, 2M EPT) */
	gput(f, G_PD + 8, 0x200087);        /* LA 2M -> GPA 2M (2M guest, 2M EPT) */
	gput(f, G_PD + 16, 0x400087);       /* LA 4M -> GPA 4M: EPT PD[2] not present */
	gput(f, G_PD + 24, 0x000087);       /* LA 6M -> GPA 0 (2M guest, 4K EPT) */
	gput(f, G_PDPT + 8, 0x40000087);    /* LA 1G -> GPA 1G (1G guest, 1G EPT) */
	load_ept(f, EPTP);
	vmem_nested_result r = nwalk(f, 0x2abc, VMEM_ACC_READ, NULL);
	assert_int_equal(r.hpa, 0xabc);
	assert_int_equal(r.page_size, 4096);
	r = nwalk(f, 0x212345, VMEM_ACC_READ, NULL);
	assert_int_equal(r.hpa, 0x12345);
	assert_int_equal(r.page_size, 2u << 20);
	r = nwalk(f, 0x600000 + 0x20010, VMEM_ACC_READ, NULL);
	assert_int_equal(r.gpa, 0x20010);
	assert_int_equal(r.hpa, 0x220010);
	assert_int_equal(r.page_size, 4096);
	r = nwalk(f, 0x40001234, VMEM_ACC_READ, NULL);
	assert_int_equal(r.hpa, 0x80001234ull);
	assert_int_equal(r.page_size, 1u << 30);
	r = nwalk(f, 0x400000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x181);
	assert_int_equal(r.gpa, 0x400000);
}

/* PAE: the PDPTEs come from registers, with no EPT access at walk time. */
static void test_pae(void **state)
{
	struct fx *f = *state;
	set_cpu(f, CR0_PG_WP_PE, G_PDPT, 0x20, 0);
	const uint64_t pdpte[4] = { G_PD | 1, 0, 0, 0 };
	vmem_mmu_set_pdptes(f->mmu, pdpte);
	eptpte(f, G_PDPT, 0); /* the PDPT's page is not even mapped */
	load_ept(f, EPTP_AD);
	vmem_nested_trace tr;
	vmem_nested_result r = nwalk(f, 0x1234, VMEM_ACC_READ, &tr);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, 0x220234);
	assert_int_equal(tr.n, 3);
	assert_int_equal(tr.ept[0].gpa, G_PD);
	assert_int_equal(gget(f, G_PD), G_PT | 0x27);
}

/* 32-bit paging: 4-byte guest entries, reached through EPT like the others. */
static void test_32bit(void **state)
{
	struct fx *f = *state;
	set_cpu(f, CR0_PG_WP_PE, G_PD, 0, 0);
	gput(f, G_PD, 0);
	gput32(f, G_PD, G_PT | 7);
	gput(f, G_PT, 0);
	gput32(f, G_PT + 4, 0x20007);
	load_ept(f, EPTP);
	vmem_nested_result r = nwalk(f, 0x1abc, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, 0x220abc);
	assert_int_equal(gget32(f, G_PD), G_PT | 0x27);
	assert_int_equal(gget32(f, G_PT + 4), 0x20067);
	eptpte(f, G_PT, 0x35);
	gput32(f, G_PT + 4, 0x20007);
	r = nwalk(f, 0x1abc, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x28 | 0x80);
	assert_int_equal(r.gpa, G_PT + 4);
}

/* Paging off: linear = guest-physical; advanced information sees a user,
 * read/write, executable address (SDM 28.2.1, bits 9-11 when CR0.PG = 0). */
static void test_paging_off_advanced(void **state)
{
	struct fx *f = *state;
	set_cpu(f, 0x11, 0, 0, 0);
	f->caps.advanced_info = true;
	eptpte(f, 0x20000, 0x31);
	load_ept(f, EPTP);
	vmem_nested_result r = nwalk(f, 0x20123, VMEM_ACC_READ, NULL);
	assert_int_equal(r.hpa, 0x220123);
	r = nwalk(f, 0x20123, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x8 | 0x180 | 0x200 | 0x400);
	/* Paged, supervisor read-only execute-disable page: bit 11 only. */
	set_cpu(f, CR0_PG_WP_PE, G_PML4, 0x20, 0xd00);
	gput(f, G_PT + 8, 0x20001 | (1ull << 63));
	r = nwalk(f, 0x1123, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_PF); /* CR0.WP: the guest refuses first */
	set_cpu(f, 0x80000001, G_PML4, 0x20, 0xd00);
	r = nwalk(f, 0x1123, VMEM_ACC_WRITE, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x8 | 0x180 | 0x800);
}

/* MBEC: the guest translation's U/S picks XU or XS for the final fetch. */
static void test_mbec(void **state)
{
	struct fx *f = *state;
	f->caps.mbec = true;
	put(f, 0x1000, 0x2407);           /* XU at every level above */
	put(f, 0x2000, 0x3407);
	put(f, 0x3000, 0x4407);
	eptpte(f, 0x20000, 0x400 | 0x31); /* R + XU */
	load_ept(f, EPTP);
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_FETCH | VMEM_ACC_USER, NULL);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	/* Supervisor page (guest PTE U/S = 0), CPL 0 fetch: needs XS. */
	gput(f, G_PT + 8, 0x20003);
	r = nwalk(f, 0x1000, VMEM_ACC_FETCH, NULL);
	assert_int_equal(r.status, VMEM_NESTED_EPT_VIOLATION);
	/* Bits 3-6, the AND over the EPT entries: R (bit 3) and XU (bit 6). */
	assert_int_equal(r.exit_qual, 0x4 | 0x08 | 0x40 | 0x180);
}

/* A walk that starts over (its guest A/D compare-and-swap lost to a change
 * of the entry) traces only the attempt that answered: nested.h promises
 * every EPT translation in order, one per guest entry read, then the final
 * access. Made deterministic by aliasing: the guest PD is the EPT page
 * table (HPA 0x4000), so the guest PDE for LA 0x1000 (index 0) is the EPT
 * PTE of guest page 0, here 0x7 (RWX, UC, A/D clear: a present guest PDE,
 * A = 0, table at GPA 0). The guest PT read (GPA 0x8) goes through that
 * very EPT PTE, and with EPT A/D a guest paging-structure access is a
 * write (SDM 29.3.3.2, 29.3.5): the EPT walk sets its A and D (0x307)
 * after the guest read the PDE as 0x7, so the guest's A-flag
 * compare-and-swap on it fails and the walk starts over; the second
 * attempt reads 0x307 and sets A (0x327). Trace: G_PML4, G_PDPT, G_PD,
 * 0x8, then the final 0x20000, nothing of the first attempt. */
static void test_trace_after_retry(void **state)
{
	struct fx *f = *state;
	put(f, eptpte_at(G_PD), 0x4000 | 0x37); /* guest PD = the EPT PT page */
	put(f, eptpte_at(0), 0x7);              /* guest PDE 0 = EPT PTE 0: GPA 0 -> HPA 0 */
	put(f, 0x8, 0x20027);                   /* guest PTE 1 at GPA 8 = HPA 8 */
	load_ept(f, EPTP_AD);
	vmem_nested_trace tr;
	memset(&tr, 0, sizeof(tr));
	vmem_nested_result r = nwalk(f, 0x1234, VMEM_ACC_READ, &tr);
	assert_int_equal(r.status, VMEM_NESTED_OK);
	assert_int_equal(r.hpa, 0x220234);
	assert_int_equal(get(f, eptpte_at(0)), 0x327);
	assert_int_equal(tr.guest.n, 4);
	assert_int_equal(tr.guest.e[2].value, 0x307);
	assert_int_equal(tr.n, 5);
	static const uint64_t want[5] = { G_PML4, G_PDPT, G_PD, 0x8, 0x20234 };
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(tr.ept[i].gpa, want[i]);
}

/* A guest table outside host memory: reported with its host address. */
static void test_bad_hpa(void **state)
{
	struct fx *f = *state;
	put(f, eptpte_at(G_PD), 0x10000037);
	load_ept(f, EPTP);
	vmem_nested_result r = nwalk(f, 0x1000, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_BAD_HPA);
	assert_int_equal(r.hpa, 0x10000000);
	vmem_nested_result r2;
	assert_int_equal(vmem_nested_walk(NULL, f->ept, f->gm, 0, 0, 0, &r2, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0, VMEM_ACC_WRITE | VMEM_ACC_FETCH,
					  0, &r2, NULL), VMEM_E_INVAL);
	/* An access index or a flag beyond those defined (the assembly's first tests). */
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0, 32, 0, &r2, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0, VMEM_ACC_READ, 2, &r2, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0, VMEM_ACC_READ, 0, NULL, NULL), VMEM_E_INVAL);
	/* Non-canonical: #GP, before any access. */
	r = nwalk(f, 0x800000000000ull, VMEM_ACC_READ, NULL);
	assert_int_equal(r.status, VMEM_NESTED_GP);
}

/* The opt-in EPT paging-structure cache across walks: with unchanged
 * tables it answers as vmem_nested_walk; a cached PDE keeps being used after
 * the EPT changes until an INVEPT for its EP4TA (single-context) or all
 * contexts, never after (SDM vol. 3C 29.4.2, 29.4.3.1). */
static vmem_nested_result pwc_walk(struct fx *f, vmem_ept_pwc *c, uint64_t la)
{
	vmem_nested_result r;
	memset(&r, 0, sizeof(r));
	assert_int_equal(vmem_nested_walk_pwc(f->mmu, f->ept, f->gm, c, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r),
			 VMEM_OK);
	return r;
}

static uint64_t plain_hpa(struct fx *f, uint64_t la)
{
	vmem_nested_result r;
	assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r, NULL),
			 VMEM_OK);
	return r.status == VMEM_NESTED_OK ? r.hpa : 0;
}

static void test_pwc_invept(void **state)
{
	struct fx *f = *state;
	load_ept(f, EPTP);
	vmem_ept_pwc *c;
	assert_int_equal(vmem_ept_pwc_new(NULL, &c), VMEM_OK);
	/* Cold, then filled: every field as the uncached walk. */
	for (int i = 0; i < 2; i++) {
		vmem_nested_result r = pwc_walk(f, c, 0x1234), u;
		memset(&u, 0, sizeof(u));
		assert_int_equal(vmem_nested_walk(f->mmu, f->ept, f->gm, 0x1234, VMEM_ACC_READ, VMEM_WALK_NO_AD, &u,
						  NULL), VMEM_OK);
		assert_memory_equal(&r, &u, sizeof(r));
		assert_int_equal(r.hpa, 0x220234);
	}
	/* A new page table at 0x5000 (a copy) maps GPA 0x20000 elsewhere; the PDE now points to it. */
	for (uint64_t n = 0; n < 512; n++)
		put(f, 0x5000 + 8 * n, get(f, EPT_PT + 8 * n));
	put(f, 0x5000 + 8 * 0x20, GBASE + 0x30000 + 0x37);
	put(f, 0x3000, 0x5007);
	assert_int_equal(plain_hpa(f, 0x1234), 0x230234);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x220234); /* the cached PDE */
	/* INVEPT of another EP4TA keeps it; of this one (any EPTP with this root) drops it. */
	assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_SINGLE, 0x9000 | 0x1e), VMEM_OK);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x220234);
	assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_SINGLE, EPTP_AD), VMEM_OK);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	/* Back to the old table: served from the cache until an all-context INVEPT. */
	put(f, 0x3000, 0x4007);
	assert_int_equal(plain_hpa(f, 0x1234), 0x220234);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_ALL, 0), VMEM_OK);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x220234);
	/* Another EPTP (A/D on) does not use what EPTP cached. */
	put(f, 0x3000, 0x5007);
	load_ept(f, EPTP_AD);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	/* A cached table whose host memory went away is not read. */
	load_ept(f, EPTP);
	assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_ALL, 0), VMEM_OK);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	put(f, 0x3000, 0x4007);
	vmem_gmem *small;
	assert_int_equal(vmem_gmem_new(NULL, &small), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(small, 0, 0x5000, f->ram, 0), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(small, GBASE, RAM_SIZE - GBASE, f->ram + GBASE, 0), VMEM_OK);
	vmem_nested_result r;
	assert_int_equal(vmem_nested_walk_pwc(f->mmu, f->ept, small, c, 0x1234, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r),
			 VMEM_OK);
	assert_int_equal(r.hpa, 0x220234); /* the cached PT at 0x5000 is outside: memory decides */
	vmem_gmem_free(small);
	assert_int_equal(vmem_ept_pwc_invept(c, 3, 0), VMEM_E_INVAL);
	/* INVEPT single-context of an EPTP no VM entry accepts fails and
	 * invalidates nothing (SDM vol. 3C INVEPT, 27.2.1.1): memory type 1,
	 * walk length 3, bit 8. The cached PT at 0x5000 keeps serving. */
	put(f, 0x3000, 0x5007);
	assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_ALL, 0), VMEM_OK);
	assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	put(f, 0x3000, 0x4007);
	static const uint64_t bad[] = { 0x1000 | 0x19, 0x1000 | 0x16, 0x1000 | 0x11e };
	for (unsigned k = 0; k < 3; k++) {
		assert_int_equal(vmem_ept_pwc_invept(c, VMEM_INVEPT_SINGLE, bad[k]), VMEM_E_INVAL);
		assert_int_equal(pwc_walk(f, c, 0x1234).hpa, 0x230234);
	}
	assert_int_equal(vmem_ept_pwc_invept(NULL, VMEM_INVEPT_ALL, 0), VMEM_E_INVAL);
	assert_int_equal(vmem_nested_walk_pwc(f->mmu, f->ept, f->gm, NULL, 0, 0, 0, &r), VMEM_E_INVAL);
	vmem_ept_pwc_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_read_ad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_ept_ad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_pf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_violation_on_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_ad_write_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_violation_on_final, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misconfig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pae, setup, teardown),
		cmocka_unit_test_setup_teardown(test_32bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_off_advanced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_after_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hpa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pwc_invept, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
