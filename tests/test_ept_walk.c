/* EPT walk cases worked by hand from the SDM (vol. 3C 28.2.1, 29.3): every qualification bit, every misconfiguration class, A/D. */
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

#define RAM_SIZE (64 * 1024)
/* Tables: PML5 0x5000, PML4 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000. */
#define PML5 0x5000
#define PML4 0x1000
#define PDPT 0x2000
#define PD   0x3000
#define PT   0x4000
#define EPTP_WB4    (0x1000 | 0x1e)      /* WB, page-walk length 4 */
#define EPTP_WB4_AD (0x1000 | 0x5e)      /* ... with A/D */
#define LA 0x7fff1234ull                 /* a guest-linear address for bit 7 */

struct fx {
	uint8_t *ram;
	vmem_gmem *gm;
	vmem_ept_mmu *ept;
	vmem_ept_caps caps;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = testram_new(RAM_SIZE, &f->gm);
	vmem_ept_caps_init(&f->caps);
	f->caps.maxphyaddr = 40;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmem_ept_mmu_free(f->ept);
	testram_free(f->ram, f->gm);
	free(f);
	return 0;
}

static void put(struct fx *f, uint64_t hpa, uint64_t v) { testram_put64(f->ram, hpa, v); }
static uint64_t get(struct fx *f, uint64_t hpa) { return testram_get64(f->ram, hpa); }

static void load(struct fx *f, uint64_t eptp)
{
	vmem_ept_mmu_free(f->ept);
	f->ept = NULL;
	assert_int_equal(vmem_ept_mmu_new(NULL, eptp, &f->caps, &f->ept), VMEM_OK);
}

/* The standard 4K path for GPA 0x5000 + k*0x1000: PML4[0] -> PDPT[0] -> PD[0] -> PT[5+k]. */
static void path4k(struct fx *f, uint64_t pml4e, uint64_t pdpte, uint64_t pde, uint64_t pte)
{
	put(f, PML4, pml4e);
	put(f, PDPT, pdpte);
	put(f, PD, pde);
	put(f, PT + 5 * 8, pte);
}

static vmem_ept_result walk(struct fx *f, uint64_t gpa, unsigned type, bool linear,
			    unsigned gperms)
{
	vmem_ept_access a;
	memset(&a, 0, sizeof(a));
	a.type = (uint8_t)type;
	a.flags = linear ? VMEM_EPT_LINEAR : 0;
	a.guest_perms = (uint8_t)gperms;
	a.linear = linear ? LA : 0;
	vmem_ept_result r;
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, gpa, &a, 0, &r, NULL), VMEM_OK);
	return r;
}

#define GUEST_ALL (VMEM_EPT_GUEST_W | VMEM_EPT_GUEST_U | VMEM_EPT_GUEST_X)

/* A 4K translation: R/W/X everywhere, leaf WB with IPAT. */
static void test_ok_4k(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9000 | 0x40 | 0x30 | 7);
	load(f, EPTP_WB4);
	vmem_ept_trace tr;
	vmem_ept_access a = { .type = VMEM_EPT_READ };
	vmem_ept_result r;
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, 0x5123, &a, 0, &r, &tr), VMEM_OK);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, 0x9123);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(r.perms, VMEM_EPT_RIGHT_R | VMEM_EPT_RIGHT_W | VMEM_EPT_RIGHT_X);
	assert_int_equal(r.memtype, 6);
	assert_int_equal(r.ipat, 1);
	assert_int_equal(r.level, 1);
	/* Trace: top level first, where each entry is. */
	assert_int_equal(tr.n, 4);
	assert_int_equal(tr.e[0].hpa, PML4);
	assert_int_equal(tr.e[1].hpa, PDPT);
	assert_int_equal(tr.e[2].hpa, PD);
	assert_int_equal(tr.e[3].hpa, PT + 0x28);
	assert_int_equal(tr.e[3].level, 1);
	/* A/D disabled in the EPTP: nothing written. */
	assert_int_equal(get(f, PT + 0x28), 0x9077);
	assert_int_equal(get(f, PML4), 0x2007);
}

/* 2-MByte and 1-GByte leaves: the page offset is GPA bits 20:0 / 29:0. */
static void test_large_pages(void **state)
{
	struct fx *f = *state;
	put(f, PML4, 0x2007);
	put(f, PDPT, 0x3007);
	put(f, PDPT + 8, 0x80000000ull | 0x80 | 0x30 | 5);  /* GPA 1G..2G -> HPA 2G, R-X */
	put(f, PD + 8, 0x600000 | 0x80 | 0x30 | 3);         /* GPA 2M..4M -> HPA 6M, RW- */
	load(f, EPTP_WB4);
	vmem_ept_result r = walk(f, 0x2fffff, VMEM_EPT_WRITE, false, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, 0x6fffff);
	assert_int_equal(r.page_size, 2ull << 20);
	assert_int_equal(r.level, 2);
	r = walk(f, 0x40001234, VMEM_EPT_FETCH, false, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, 0x80001234);
	assert_int_equal(r.page_size, 1ull << 30);
	assert_int_equal(r.perms, VMEM_EPT_RIGHT_R | VMEM_EPT_RIGHT_X);
	/* Without 1-GByte page support PS is reserved in a PDPTE. */
	f->caps.gbpages = false;
	load(f, EPTP_WB4);
	r = walk(f, 0x40001234, VMEM_EPT_FETCH, false, 0);
	assert_int_equal(r.status, VMEM_EPT_MISCONFIG);
	assert_int_equal(r.gpa, 0x40001234);
}

/* Not present at each level: bits 3-5 are 0 (the AND takes in the
 * not-present entry), bits 7-8 say "final access of a linear address". */
static void test_not_present(void **state)
{
	struct fx *f = *state;
	load(f, EPTP_WB4);
	static const uint64_t where[4] = { PML4, PDPT, PD, PT + 0x28 };
	for (int lvl = 0; lvl < 4; lvl++) {
		path4k(f, 0x2007, 0x3007, 0x4007, 0x9037);
		/* Bits other than 2:0 set: still not present (no misconfiguration). */
		put(f, where[lvl], 0xfff8ull);
		vmem_ept_result r = walk(f, 0x5008, VMEM_EPT_READ, true, 0);
		assert_int_equal(r.status, VMEM_EPT_VIOLATION);
		assert_int_equal(r.exit_qual, 0x181);
		assert_int_equal(r.gpa, 0x5008);
		assert_int_equal(r.linear, LA);
		assert_int_equal(r.level, 4 - lvl);
		r = walk(f, 0x5008, VMEM_EPT_WRITE, true, 0);
		assert_int_equal(r.exit_qual, 0x182);
		r = walk(f, 0x5008, VMEM_EPT_FETCH, true, 0);
		assert_int_equal(r.exit_qual, 0x184);
		/* No guest-linear address: bits 7 and 8 clear. */
		r = walk(f, 0x5008, VMEM_EPT_WRITE, false, 0);
		assert_int_equal(r.exit_qual, 0x2);
		assert_int_equal(r.linear, 0);
	}
}

/* Bits 3-5: the AND of R/W/X over every entry used. */
static void test_permission_violations(void **state)
{
	struct fx *f = *state;
	load(f, EPTP_WB4);
	/* Leaf read-only: a write reports R (bit 3) only: 0x2 | 0x8 | 0x180. */
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9031);
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x18a);
	assert_int_equal(r.perms, VMEM_EPT_RIGHT_R);
	r = walk(f, 0x5000, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	/* Leaf RW-: a fetch reports R and W: 0x4 | 0x18 | 0x180. */
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9033);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, 0);
	assert_int_equal(r.exit_qual, 0x19c);
	/* A non-leaf R-X takes W away from a RWX leaf: 0x2 | 0x28 | 0x180. */
	path4k(f, 0x2007, 0x3005, 0x4007, 0x9037);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(r.exit_qual, 0x1aa);
	/* Execute-only upper level (supported by default): a read sees X only: 0x1 | 0x20 | 0x180. */
	path4k(f, 0x2004, 0x3007, 0x4007, 0x9037);
	r = walk(f, 0x5000, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.exit_qual, 0x1a1);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
}

/* Guest paging-structure accesses: bit 8 = 0; under EPT A/D they are writes
 * and report both bit 0 and bit 1 (SDM 28.2.1, 29.3.3.2). */
static void test_paging_accesses(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9031); /* read-only leaf */
	load(f, EPTP_WB4);
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	r = walk(f, 0x5000, VMEM_EPT_PAGING_AD, true, 0);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x2 | 0x8 | 0x80);
	load(f, EPTP_WB4_AD);
	r = walk(f, 0x5000, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x3 | 0x8 | 0x80);
	/* Not present: 0x3 | 0x80. */
	put(f, PT + 0x28, 0);
	r = walk(f, 0x5000, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.exit_qual, 0x83);
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.exit_qual, 0x81);
}

/* MBEC: bit 10 (XU) decides fetches from user-mode linear addresses, bit 2
 * (XS) from supervisor ones; qualification bit 6 is the AND of bit 10. */
static void test_mbec(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2407, 0x3407, 0x4407, 0x9000 | 0x400 | 0x31); /* leaf R + XU */
	f->caps.mbec = true;
	load(f, EPTP_WB4);
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_FETCH, true, VMEM_EPT_GUEST_U);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.perms, VMEM_EPT_RIGHT_R | VMEM_EPT_RIGHT_XU);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, 0);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x4 | 0x08 | 0x40 | 0x180);
	/* Without MBEC bit 10 is ignored: bit 2 decides every fetch, bit 6 is 0. */
	f->caps.mbec = false;
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, VMEM_EPT_GUEST_U);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x4 | 0x08 | 0x180);
	/* With MBEC an entry with only bit 10 is present (execute-only, user). */
	f->caps.mbec = true;
	path4k(f, 0x2407, 0x3407, 0x4407, 0x9000 | 0x400 | 0x30);
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, VMEM_EPT_GUEST_U);
	assert_int_equal(r.status, VMEM_EPT_OK);
	r = walk(f, 0x5000, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.exit_qual, 0x1 | 0x40 | 0x180);
	/* ... and a misconfiguration where execute-only is not supported. */
	f->caps.exec_only = false;
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, VMEM_EPT_GUEST_U);
	assert_int_equal(r.status, VMEM_EPT_MISCONFIG);
	/* Without MBEC the same entry is not present. */
	f->caps.mbec = false;
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_FETCH, true, VMEM_EPT_GUEST_U);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(r.exit_qual, 0x184);
}

/* Bits 9-11: only when advanced information is reported, and only with bits 7 and 8 set. */
static void test_advanced_info(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9031);
	f->caps.advanced_info = true;
	load(f, EPTP_WB4);
	/* User, read/write, executable: bits 9 and 10. */
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_WRITE, true, GUEST_ALL);
	assert_int_equal(r.exit_qual, 0x18a | 0x200 | 0x400);
	/* Supervisor, read-only, execute-disable: bit 11 only. */
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(r.exit_qual, 0x18a | 0x800);
	/* A paging-structure access (bit 8 = 0): none of them. */
	r = walk(f, 0x5000, VMEM_EPT_PAGING_AD, true, GUEST_ALL);
	assert_int_equal(r.exit_qual, 0x8a);
	/* No linear address (bit 7 = 0): none of them. */
	r = walk(f, 0x5000, VMEM_EPT_WRITE, false, GUEST_ALL);
	assert_int_equal(r.exit_qual, 0xa);
	/* Not modelled: never reported. */
	f->caps.advanced_info = false;
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, GUEST_ALL);
	assert_int_equal(r.exit_qual, 0x18a);
}

/* SDM 29.3.3.1, one case per class; each reports the GPA and writes nothing. */
static void misconfig_at(struct fx *f, uint64_t pml4e, uint64_t pdpte, uint64_t pde, uint64_t pte,
			 uint64_t gpa, unsigned level)
{
	put(f, PML4, pml4e);
	put(f, PDPT, pdpte);
	put(f, PD, pde);
	put(f, PT + 0x28, pte);
	vmem_ept_result r = walk(f, gpa, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.status, VMEM_EPT_MISCONFIG);
	assert_int_equal(r.gpa, gpa);
	assert_int_equal(r.level, level);
	assert_int_equal(get(f, PML4), pml4e);
}

static void test_misconfigs(void **state)
{
	struct fx *f = *state;
	f->caps.exec_only = false;
	load(f, EPTP_WB4_AD);
	const uint64_t g = 0x5000, ok4 = 0x9037;
	/* Write without read; write+execute without read. */
	misconfig_at(f, 0x2002, 0x3007, 0x4007, ok4, g, 4);
	misconfig_at(f, 0x2007, 0x3006, 0x4007, ok4, g, 3);
	misconfig_at(f, 0x2007, 0x3007, 0x4007, 0x9032, g, 1);
	/* Execute-only when not supported. */
	misconfig_at(f, 0x2007, 0x3007, 0x4004, ok4, g, 2);
	/* Bits 51:M (M = 40): bit 40 and bit 51, at a PTE and a PML4E. */
	misconfig_at(f, 0x2007, 0x3007, 0x4007, ok4 | (1ull << 40), g, 1);
	misconfig_at(f, 0x2007 | (1ull << 51), 0x3007, 0x4007, ok4, g, 4);
	/* Bits 7:3 of a PML4E: each of them (bit 7 is PS). */
	for (unsigned b = 3; b <= 7; b++)
		misconfig_at(f, 0x2007 | (1ull << b), 0x3007, 0x4007, ok4, g, 4);
	/* Bits 6:3 of a non-leaf PDPTE and PDE. */
	for (unsigned b = 3; b <= 6; b++) {
		misconfig_at(f, 0x2007, 0x3007 | (1ull << b), 0x4007, ok4, g, 3);
		misconfig_at(f, 0x2007, 0x3007, 0x4007 | (1ull << b), ok4, g, 2);
	}
	/* 1-GByte leaf bits 29:12; 2-MByte leaf bits 20:12. */
	misconfig_at(f, 0x2007, 0x80 | 0x37 | (1ull << 12), 0x4007, ok4, g, 3);
	misconfig_at(f, 0x2007, 0x80 | 0x37 | (1ull << 29), 0x4007, ok4, g, 3);
	misconfig_at(f, 0x2007, 0x3007, 0x80 | 0x37 | (1ull << 12), ok4, g, 2);
	misconfig_at(f, 0x2007, 0x3007, 0x80 | 0x37 | (1ull << 20), ok4, g, 2);
	/* Leaf memory types 2, 3 and 7, at a PTE, a 2M and a 1G leaf. */
	static const unsigned bad_mt[3] = { 2, 3, 7 };
	for (int k = 0; k < 3; k++) {
		uint64_t mt = (uint64_t)bad_mt[k] << 3;
		misconfig_at(f, 0x2007, 0x3007, 0x4007, 0x9007 | mt, g, 1);
		misconfig_at(f, 0x2007, 0x3007, 0x80 | 0x7 | mt, ok4, g, 2);
		misconfig_at(f, 0x2007, 0x80 | 0x7 | mt, 0x4007, ok4, g, 3);
	}
	/* Not misconfigurations: memory types 0, 1, 4, 5, 6 in a leaf; a PTE's
	 * bit 7; bits 11:8 and 63:52 (ignored). */
	static const unsigned good_mt[5] = { 0, 1, 4, 5, 6 };
	for (int k = 0; k < 5; k++) {
		path4k(f, 0x2007, 0x3007, 0x4007, 0x9007 | ((uint64_t)good_mt[k] << 3));
		assert_int_equal(walk(f, g, VMEM_EPT_READ, true, 0).status, VMEM_EPT_OK);
	}
	path4k(f, 0x2007 | 0xf00 | (0xfffull << 52), 0x3007, 0x4007, 0x90b7 | (1ull << 63));
	assert_int_equal(walk(f, g, VMEM_EPT_READ, true, 0).status, VMEM_EPT_OK);
	/* A not-present entry is never misconfigured, whatever its other bits. */
	path4k(f, 0x2007, 0x30f8 | (1ull << 45), 0x4007, ok4);
	assert_int_equal(walk(f, g, VMEM_EPT_READ, true, 0).status, VMEM_EPT_VIOLATION);
	/* The walk goes on past an entry without read rights (as example ept-05). */
	f->caps.exec_only = true;
	load(f, EPTP_WB4);
	misconfig_at(f, 0x2004, 0x3007, 0x4007 | 0x10, ok4, g, 2);
}

/* SDM 29.3.5: A on every entry used, D on the leaf for writes; only when the
 * EPTP enables them and the translation completes. */
static void test_accessed_dirty(void **state)
{
	struct fx *f = *state;
	load(f, EPTP_WB4_AD);
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9037);
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_true(r.info & VMEM_EPT_INFO_AD_SET);
	assert_int_equal(get(f, PML4), 0x2107);
	assert_int_equal(get(f, PDPT), 0x3107);
	assert_int_equal(get(f, PD), 0x4107);
	assert_int_equal(get(f, PT + 0x28), 0x9137);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(get(f, PD), 0x4107);
	assert_int_equal(get(f, PT + 0x28), 0x9337);
	assert_int_equal(r.entry, 0x9337);
	/* A violation writes nothing, not even on the entries above. */
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9035);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(r.status, VMEM_EPT_VIOLATION);
	assert_int_equal(get(f, PML4), 0x2007);
	assert_int_equal(get(f, PT + 0x28), 0x9035);
	/* No side effects when asked. */
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9037);
	vmem_ept_access a = { .type = VMEM_EPT_WRITE };
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, 0x5000, &a, VMEM_EPT_NO_AD, &r, NULL), VMEM_OK);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(get(f, PML4), 0x2007);
	/* A/D off in the EPTP: bits 8 and 9 are ignored and never written. */
	load(f, EPTP_WB4);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(get(f, PT + 0x28), 0x9037);
	assert_false(r.info & VMEM_EPT_INFO_AD_SET);
}

/* 5-level EPT: GPA bits 56:48 index the PML5; 4-level refuses them. */
static void test_five_level(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9037);
	put(f, PML5 + 8 * 2, 0x1007);
	load(f, 0x5000 | 0x26); /* WB, page-walk length 5 */
	assert_int_equal(vmem_ept_mmu_levels(f->ept), 5);
	vmem_ept_result r = walk(f, (2ull << 48) | 0x5010, VMEM_EPT_READ, false, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, 0x9010);
	/* Bits 7:3 are reserved in a PML5E too. */
	put(f, PML5 + 8 * 2, 0x1047);
	r = walk(f, (2ull << 48) | 0x5010, VMEM_EPT_READ, false, 0);
	assert_int_equal(r.status, VMEM_EPT_MISCONFIG);
	assert_int_equal(r.level, 5);
	load(f, EPTP_WB4);
	vmem_ept_access a = { .type = VMEM_EPT_READ };
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, 1ull << 48, &a, 0, &r, NULL), VMEM_E_INVAL);
}

/* VM entry's EPTP checks (SDM 27.2.1.1). */
static void test_eptp_checks(void **state)
{
	struct fx *f = *state;
	vmem_ept_mmu *e = NULL;
	assert_int_equal(vmem_ept_mmu_new(NULL, 0x1000 | 0x18, &f->caps, &e), VMEM_OK); /* UC */
	assert_int_equal(vmem_ept_mmu_eptp(e), 0x1018);
	assert_int_equal(vmem_ept_mmu_set_eptp(e, 0x1019), VMEM_E_INVAL);      /* memory type 1 */
	assert_int_equal(vmem_ept_mmu_eptp(e), 0x1018);                        /* unchanged */
	assert_int_equal(vmem_ept_mmu_set_eptp(e, 0x1016), VMEM_E_INVAL);      /* length 3 */
	assert_int_equal(vmem_ept_mmu_set_eptp(e, 0x101e | 0x80), VMEM_E_INVAL); /* bit 7 */
	assert_int_equal(vmem_ept_mmu_set_eptp(e, 0x101e | (1ull << 40)), VMEM_E_INVAL); /* above M */
	assert_int_equal(vmem_ept_mmu_set_eptp(e, 0x105e), VMEM_OK);
	vmem_ept_mmu_free(e);
	f->caps.ad = false;
	f->caps.pml5 = false;
	assert_int_equal(vmem_ept_mmu_new(NULL, 0x105e, &f->caps, &e), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_mmu_new(NULL, 0x1026, &f->caps, &e), VMEM_E_INVAL);
	f->caps.maxphyaddr = 31;
	assert_int_equal(vmem_ept_mmu_new(NULL, 0x101e, &f->caps, &e), VMEM_E_INVAL);
	vmem_ept_access a = { .type = 9 };
	vmem_ept_result r;
	f->caps.maxphyaddr = 40;
	f->caps.ad = true;
	load(f, EPTP_WB4);
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, 0, &a, 0, &r, NULL), VMEM_E_INVAL);
	a.type = VMEM_EPT_READ;
	a.flags = 0x80;
	assert_int_equal(vmem_ept_walk(f->ept, f->gm, 0, &a, 0, &r, NULL), VMEM_E_INVAL);
	assert_int_equal(vmem_ept_walk(NULL, f->gm, 0, &a, 0, &r, NULL), VMEM_E_INVAL);
}

/* An EPT entry outside host memory; a read-only slot takes no A/D. */
static void test_host_memory(void **state)
{
	struct fx *f = *state;
	path4k(f, 0x2007, 0x3007, 0x100000007ull, 0x9037);
	load(f, EPTP_WB4_AD);
	vmem_ept_result r = walk(f, 0x5000, VMEM_EPT_READ, false, 0);
	assert_int_equal(r.status, VMEM_EPT_BAD_HPA);
	assert_int_equal(r.hpa, 0x100000000ull + 0x28);
	assert_int_equal(get(f, PML4), 0x2007);
	/* Read-only tables: the walk completes, no flag is written. */
	uint8_t *ro = aligned_alloc(4096, 4096);
	memset(ro, 0, 4096);
	uint64_t e = 0x9037;
	memcpy(ro + 0x28, &e, 8);
	assert_int_equal(vmem_gmem_add_ram(f->gm, 0x100000000ull, 4096, ro, VMEM_SLOT_READONLY), VMEM_OK);
	r = walk(f, 0x5000, VMEM_EPT_WRITE, false, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(r.hpa, 0x9000);
	memcpy(&e, ro + 0x28, 8);
	assert_int_equal(e, 0x9037);
	assert_int_equal(get(f, PD), 0x100000107ull);
	assert_int_equal(vmem_gmem_remove(f->gm, 0x100000000ull), VMEM_OK);
	free(ro);
}

/* SDM 29.3.6: the log-full check comes before ANY accessed or dirty flag the
 * access needs ("an accessed or dirty flag for EPT"); only a dirty flag set
 * from 0 to 1 writes a log entry. Index 0xffff: full. */
static void test_pml_accessed(void **state)
{
	struct fx *f = *state;
	uint64_t log[512] = { 0 };
	vmem_pml pml = { log, 0xffff };
	load(f, EPTP_WB4_AD);
	vmem_ept_mmu_set_pml(f->ept, &pml);
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9037); /* every A clear */
	/* A read that must set A flags with the log full: exit, no flag, no access. */
	vmem_ept_result r = walk(f, 0x5123, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.status, VMEM_EPT_PML_FULL);
	assert_int_equal(r.gpa, 0x5123);
	assert_int_equal(get(f, PML4), 0x2007);
	assert_int_equal(get(f, PT + 0x28), 0x9037);
	/* Index 0 (in range): A set everywhere, no dirty flag: nothing logged. */
	pml.index = 0;
	r = walk(f, 0x5123, VMEM_EPT_READ, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(get(f, PML4), 0x2107);
	assert_int_equal(get(f, PT + 0x28), 0x9137);
	assert_int_equal(pml.index, 0);
	/* A write sets D: log[0] = the page, the index wraps to 0xffff. */
	r = walk(f, 0x5123, VMEM_EPT_WRITE, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(get(f, PT + 0x28), 0x9337);
	assert_int_equal(log[0], 0x5000);
	assert_int_equal(pml.index, 0xffff);
	/* Log full, but no flag to set: reads and writes proceed. */
	assert_int_equal(walk(f, 0x5123, VMEM_EPT_READ, true, 0).status, VMEM_EPT_OK);
	assert_int_equal(walk(f, 0x5123, VMEM_EPT_WRITE, true, 0).status, VMEM_EPT_OK);
	/* A leaf with A set and D clear: a read needs no flag, a write does. */
	put(f, PT + 0x30, 0xa137);
	assert_int_equal(walk(f, 0x6000, VMEM_EPT_READ, true, 0).status, VMEM_EPT_OK);
	assert_int_equal(walk(f, 0x6000, VMEM_EPT_WRITE, true, 0).status, VMEM_EPT_PML_FULL);
	assert_int_equal(get(f, PT + 0x30), 0xa137);
	/* Only the leaf's A is clear: a fetch stops too. */
	put(f, PT + 0x30, 0xa037);
	assert_int_equal(walk(f, 0x6000, VMEM_EPT_FETCH, true, 0).status, VMEM_EPT_PML_FULL);
	assert_int_equal(get(f, PT + 0x30), 0xa037);
	assert_int_equal(pml.index, 0xffff);
}

/* SDM 29.3.5: under EPT A/D a guest paging-structure access is a write: it
 * sets D in the leaf that maps it (a 4K PTE or a 2M PDE), A only above, and
 * PML logs it (29.3.6); the PDPTE loads of PAE paging are not modelled here. */
static void test_paging_dirty(void **state)
{
	struct fx *f = *state;
	uint64_t log[512] = { 0 };
	vmem_pml pml = { log, 511 };
	path4k(f, 0x2007, 0x3007, 0x4007, 0x9037);
	put(f, PD + 8, 0x600000 | 0x80 | 0x30 | 3);         /* GPA 2M..4M -> HPA 6M, RW- */
	load(f, EPTP_WB4_AD);
	vmem_ept_mmu_set_pml(f->ept, &pml);
	vmem_ept_result r = walk(f, 0x5ff8, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(get(f, PML4), 0x2107);
	assert_int_equal(get(f, PDPT), 0x3107);
	assert_int_equal(get(f, PD), 0x4107);
	assert_int_equal(get(f, PT + 0x28), 0x9337);
	assert_int_equal(log[511], 0x5000);
	r = walk(f, 0x2abc08, VMEM_EPT_PAGING, true, 0);
	assert_int_equal(r.status, VMEM_EPT_OK);
	assert_int_equal(get(f, PD + 8), 0x600000 | 0x300 | 0x80 | 0x30 | 3);
	assert_int_equal(log[510], 0x2ab000);
	assert_int_equal(pml.index, 509);
	/* A/D off in the EPTP: a read, nothing written, nothing logged. */
	put(f, PT + 0x28, 0x9037);
	load(f, EPTP_WB4);
	vmem_ept_mmu_set_pml(f->ept, &pml);
	assert_int_equal(walk(f, 0x5ff8, VMEM_EPT_PAGING, true, 0).status, VMEM_EPT_OK);
	assert_int_equal(get(f, PT + 0x28), 0x9037);
	assert_int_equal(pml.index, 509);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_4k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_present, setup, teardown),
		cmocka_unit_test_setup_teardown(test_permission_violations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mbec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_advanced_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misconfigs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accessed_dirty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_five_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eptp_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pml_accessed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_dirty, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
