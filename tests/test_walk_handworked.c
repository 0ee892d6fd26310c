/* Walker cases worked by hand from the SDM (vol. 3A ch. 4), one per mode and rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "support/testram.h"
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

#define RAM_SIZE (64 * 1024)

struct fx {
	uint8_t *ram;
	vmem_gmem *gm;
	vmem_mmu *mmu;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->ram = testram_new(RAM_SIZE, &f->gm);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vmem_mmu_free(f->mmu);
	testram_free(f->ram, f->gm);
	free(f);
	return 0;
}

static void put64(struct fx *f, uint64_t gpa, uint64_t v) { testram_put64(f->ram, gpa, v); }
static void put32(struct fx *f, uint64_t gpa, uint32_t v) { testram_put32(f->ram, gpa, v); }
static uint64_t get64(struct fx *f, uint64_t gpa) { return testram_get64(f->ram, gpa); }
static uint32_t get32(struct fx *f, uint64_t gpa) { return testram_get32(f->ram, gpa); }

static void set_cpu(struct fx *f, uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer,
		    unsigned maxphy, bool gb, uint32_t pkru)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = cr0, r.cr3 = cr3, r.cr4 = cr4, r.efer = efer;
	r.maxphyaddr = maxphy, r.gbpages = gb, r.pkru = pkru;
	vmem_mmu_free(f->mmu);
	f->mmu = NULL;
	assert_int_equal(vmem_mmu_new(NULL, &r, &f->mmu), VMEM_OK);
}

static vmem_walk_result walk(struct fx *f, uint64_t la, unsigned acc)
{
	vmem_walk_result res;
	assert_int_equal(vmem_walk(f->mmu, f->gm, la, acc, 0, &res), VMEM_OK);
	return res;
}

/* The example in the vectors format description: a 4-level user write. */
static void test_4level_user_write(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3010, 0x4007);
	put64(f, 0x4008, 0x5007);
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0x500, 48, true, 0);
	vmem_walk_result r = walk(f, 0x401000, VMEM_ACC_WRITE | VMEM_ACC_USER);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x5000);
	assert_int_equal(r.page_size, 4096);
	assert_int_equal(r.level, 1);
	assert_int_equal(r.perms, VMEM_PERM_W | VMEM_PERM_U | VMEM_PERM_X);
	/* A on every entry, D on the leaf. */
	assert_int_equal(get64(f, 0x1000), 0x2027);
	assert_int_equal(get64(f, 0x2000), 0x3027);
	assert_int_equal(get64(f, 0x3010), 0x4027);
	assert_int_equal(get64(f, 0x4008), 0x5067);
	assert_int_equal(r.entry, 0x5067);
}

/* NO_AD: a debugger's look writes nothing. */
static void test_no_side_effects(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3010, 0x4007);
	put64(f, 0x4008, 0x5007);
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0x500, 48, true, 0);
	vmem_walk_result r;
	vmem_walk_trace t;
	assert_int_equal(vmem_walk_traced(f->mmu, f->gm, 0x401abc, VMEM_ACC_WRITE, VMEM_WALK_NO_AD, &r, &t), VMEM_OK);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x5abc);
	assert_int_equal(get64(f, 0x1000), 0x2007);
	assert_int_equal(get64(f, 0x4008), 0x5007);
	assert_int_equal(t.n, 4);
	assert_int_equal(t.e[0].gpa, 0x1000);
	assert_int_equal(t.e[2].gpa, 0x3010);
	assert_int_equal(t.e[3].gpa, 0x4008);
	assert_int_equal(t.e[3].value, 0x5007);
	assert_int_equal(t.e[3].level, 1);
}

/* A fault writes no flag at any level (vectors spec; KVM). */
static void test_fault_writes_nothing(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3010, 0x4007);
	put64(f, 0x4008, 0x5005); /* read-only leaf */
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0x500, 48, true, 0);
	vmem_walk_result r = walk(f, 0x401000, VMEM_ACC_WRITE | VMEM_ACC_USER);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U);
	assert_int_equal(get64(f, 0x1000), 0x2007);
	assert_int_equal(get64(f, 0x4008), 0x5005);
	/* Supervisor write with CR0.WP = 0 ignores R/W (SDM 4.6.1). */
	set_cpu(f, 0x80000001, 0x1000, 0x20, 0x500, 48, true, 0);
	r = walk(f, 0x401000, VMEM_ACC_WRITE);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(get64(f, 0x4008), 0x5065);
}

/* 32-bit paging, 4 KiB pages, CR0.WP and U/S. */
static void test_32bit_4k(void **state)
{
	struct fx *f = *state;
	put32(f, 0x100c, 0x2003);      /* PDE 3: P|RW */
	put32(f, 0x200c, 0x7001);      /* PTE 3: P, read-only, supervisor */
	set_cpu(f, 0x80000001, 0x1000, 0, 0, 48, true, 0);
	vmem_walk_result r = walk(f, 0x00c03abc, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x7abc);
	assert_int_equal(get32(f, 0x100c), 0x2023);
	assert_int_equal(get32(f, 0x200c), 0x7021);
	r = walk(f, 0x00c03abc, VMEM_ACC_WRITE); /* WP = 0 */
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(get32(f, 0x200c), 0x7061);
	set_cpu(f, 0x80010001, 0x1000, 0, 0, 48, true, 0);
	r = walk(f, 0x00c03abc, VMEM_ACC_WRITE);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x3);
	r = walk(f, 0x00c03abc, VMEM_ACC_READ | VMEM_ACC_USER);
	assert_int_equal(r.error_code, 0x5);
	/* Fetch without SMEP: no I/D in 32-bit paging (SDM 4.7). */
	r = walk(f, 0x00c03abc, VMEM_ACC_FETCH | VMEM_ACC_USER);
	assert_int_equal(r.error_code, 0x5);
	r = walk(f, 0x00403000, VMEM_ACC_FETCH | VMEM_ACC_USER); /* PDE 1 not present */
	assert_int_equal(r.error_code, 0x4);
	assert_int_equal(r.level, 2);
	/* Linear addresses are 32 bits here. */
	assert_int_equal(vmem_walk(f->mmu, f->gm, 0x100000000ull, 0, 0, &r), VMEM_E_INVAL);
}

/* 32-bit paging, 4 MiB page, PSE-36 high address bits and their reserved part. */
static void test_32bit_4m_pse36(void **state)
{
	struct fx *f = *state;
	put32(f, 0x1800, 0x00c24083);  /* PDE 0x200: PA 31:22 = 3, PA 39:32 = 0x12, P|RW|PS */
	set_cpu(f, 0x80000001, 0x1000, 0x10, 0, 40, true, 0);
	vmem_walk_result r = walk(f, 0x80123456, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x1200d23456ull);
	assert_int_equal(r.page_size, 4u << 20);
	/* MAXPHYADDR 36: PDE bits 21:17 reserved; 0x12 sets bit 17. */
	put32(f, 0x1800, 0x00c24083);
	set_cpu(f, 0x80000001, 0x1000, 0x10, 0, 36, true, 0);
	r = walk(f, 0x80123456, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x9);
	/* Without CR4.PSE the PS bit is ignored: the PDE names a page table at 0xc24000, outside RAM. */
	set_cpu(f, 0x80000001, 0x1000, 0, 0, 40, true, 0);
	r = walk(f, 0x80123456, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_BAD_GPA);
	assert_int_equal(r.gpa, 0xc24000 + 4 * 0x123);
}

/* PAE: PDPTE registers, 2 MiB page, reserved bits, NX. */
static void test_pae(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1010, 0x2001);           /* PDPTE 2 */
	put64(f, 0x2008, 0x400087);         /* PDE 1: 2M page at 0x400000, P|RW|US|PS */
	set_cpu(f, 0x80000001, 0x1000, 0x20, 0, 36, true, 0);
	assert_int_equal(vmem_mmu_load_pdptes(f->mmu, f->gm), VMEM_OK);
	vmem_walk_result r = walk(f, 0x80201234, VMEM_ACC_WRITE | VMEM_ACC_USER);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x401234);
	assert_int_equal(r.page_size, 2u << 20);
	assert_int_equal(get64(f, 0x2008), 0x4000e7);
	assert_int_equal(get64(f, 0x1010), 0x2001); /* a PDPTE takes no accessed flag */
	/* PDPTE 0 not present. */
	r = walk(f, 0x1000, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.level, 3);
	/* XD with NXE = 0 is reserved; with NXE = 1 a fetch faults with I/D. */
	put64(f, 0x2008, 0x8000000000400087ull);
	r = walk(f, 0x80201234, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0x9);
	set_cpu(f, 0x80000001, 0x1000, 0x20, 0x800, 36, true, 0);
	assert_int_equal(vmem_mmu_load_pdptes(f->mmu, f->gm), VMEM_OK);
	r = walk(f, 0x80201234, VMEM_ACC_FETCH);
	assert_int_equal(r.error_code, 0x11);
	/* A PDPTE with R/W set is reserved: MOV CR3 would #GP. */
	put64(f, 0x1010, 0x2003);
	assert_int_equal(vmem_mmu_load_pdptes(f->mmu, f->gm), VMEM_E_INVAL);
	uint64_t p[4] = { 0, 0, 0x2003, 0 };
	vmem_mmu_set_pdptes(f->mmu, p);
	r = walk(f, 0x80201234, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0x9);
	/* PAE PD entries reserve bits 62:M: bit 40 with M = 36. */
	p[2] = 0x2001;
	vmem_mmu_set_pdptes(f->mmu, p);
	put64(f, 0x2008, 0x10000400087ull);
	r = walk(f, 0x80201234, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0x9);
}

/* 5-level paging and a 1 GiB page; no 1G support makes PS reserved. */
static void test_5level_1g(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1008, 0x2003);
	put64(f, 0x2010, 0x3003);
	put64(f, 0x3018, 0x40000083);
	set_cpu(f, 0x80000001, 0x1000, 0x1020, 0x500, 48, true, 0);
	uint64_t la = 0x00010100c2345678ull;
	vmem_walk_result r = walk(f, la, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x42345678);
	assert_int_equal(r.page_size, 1u << 30);
	assert_int_equal(get64(f, 0x1008), 0x2023);
	assert_int_equal(get64(f, 0x2010), 0x3023);
	assert_int_equal(get64(f, 0x3018), 0x400000a3);
	set_cpu(f, 0x80000001, 0x1000, 0x1020, 0x500, 48, false, 0);
	r = walk(f, la, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0x9);
	assert_int_equal(r.level, 3);
	/* Misaligned 1G page: bits 29:13 reserved. */
	put64(f, 0x3018, 0x40002083);
	set_cpu(f, 0x80000001, 0x1000, 0x1020, 0x500, 48, true, 0);
	r = walk(f, la, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0x9);
	/* 57-bit canonical: bit 56 set without the bits above is non-canonical. */
	r = walk(f, 1ull << 56, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_GP);
}

static void test_4level_canonical_and_ps_pml4e(void **state)
{
	struct fx *f = *state;
	set_cpu(f, 0x80000001, 0x1000, 0x20, 0x500, 48, true, 0);
	vmem_walk_result r = walk(f, 0x0000800000000000ull, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_GP);
	r = walk(f, 0xffff800000000000ull, VMEM_ACC_READ); /* canonical; PML4E 256 not present */
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0);
	put64(f, 0x1000, 0x2083); /* PS in a PML4E is reserved */
	r = walk(f, 0x1234, VMEM_ACC_WRITE | VMEM_ACC_USER);
	assert_int_equal(r.error_code, 0xf);
	/* Bits 51:M: bit 47 with MAXPHYADDR 40. */
	put64(f, 0x1000, 0x800000002003ull);
	set_cpu(f, 0x80000001, 0x1000, 0x20, 0x500, 40, true, 0);
	r = walk(f, 0x1234, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0x9);
	/* Bits 62:52 are ignored in a 4-level entry. */
	put64(f, 0x1000, 0x7ff0000000002003ull);
	r = walk(f, 0x1234, VMEM_ACC_READ);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.level, 3);
}

/* SMEP, SMAP (AC, implicit) and protection keys on a user page. */
static void test_smep_smap_pk(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3000, 0x4007);
	put64(f, 0x4000, (5ull << 59) | 0x5067); /* user page, key 5, A and D set */
	uint64_t cr4 = 0x20 | (1u << 20) | (1u << 21);
	set_cpu(f, 0x80010001, 0x1000, cr4, 0xd00, 48, true, 0);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_FETCH).error_code, 0x11);       /* SMEP */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ).error_code, 0x1);         /* SMAP, AC = 0 */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ | VMEM_ACC_AC).status, VMEM_WALK_OK);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ | VMEM_ACC_AC | VMEM_ACC_IMPLICIT).error_code, 0x1);
	/* An implicit access at CPL 3 is a supervisor access: U/S clear in the error code. */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_USER | VMEM_ACC_IMPLICIT).error_code, 0x3);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_USER).status, VMEM_WALK_OK);
	/* PKE, PKRU.AD5 = 1: data accesses fault with PK, fetches do not. */
	set_cpu(f, 0x80010001, 0x1000, 0x20 | (1u << 22), 0xd00, 48, true, 1u << 10);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER).error_code, 0x25);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ).error_code, 0x21);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_FETCH | VMEM_ACC_USER).status, VMEM_WALK_OK);
	/* PKRU.WD5 = 1: user writes fault; supervisor writes only with CR0.WP. */
	set_cpu(f, 0x80010001, 0x1000, 0x20 | (1u << 22), 0xd00, 48, true, 2u << 10);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_USER).error_code, 0x27);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE).error_code, 0x23);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER).status, VMEM_WALK_OK);
	set_cpu(f, 0x80000001, 0x1000, 0x20 | (1u << 22), 0xd00, 48, true, 2u << 10);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE).status, VMEM_WALK_OK);
}

/* A not-present entry that holds a swap location reports it. */
static void test_swap_entry_fault(void **state)
{
	struct fx *f = *state;
	vmem_swap_loc loc = { 3, 0x12345 }, out;
	uint64_t pte;
	assert_int_equal(vmem_swap_encode(loc, &pte), VMEM_OK);
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3000, 0x4007);
	put64(f, 0x4000, pte);
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0xd00, 48, true, 0);
	vmem_walk_result r = walk(f, 0x10, VMEM_ACC_READ);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.level, 1);
	assert_true(r.info & VMEM_WINFO_SWAP);
	assert_int_equal(vmem_swap_decode(r.entry, &out), VMEM_OK);
	assert_int_equal(out.type, 3);
	assert_int_equal(out.offset, 0x12345);
}

/* A read-only slot holding tables: the walk translates but writes no flag. */
static void test_readonly_slot_tables(void **state)
{
	struct fx *f = *state;
	uint8_t *rom = aligned_alloc(4096, 4096);
	memset(rom, 0, 4096);
	uint64_t e = 0x5007;
	memcpy(rom + 8, &e, 8);
	assert_int_equal(vmem_gmem_add_ram(f->gm, 0x100000, 4096, rom, VMEM_SLOT_READONLY), VMEM_OK);
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3010, 0x100007);
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0x500, 48, true, 0);
	vmem_walk_result r = walk(f, 0x401000, VMEM_ACC_WRITE);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x5000);
	memcpy(&e, rom + 8, 8);
	assert_int_equal(e, 0x5007);
	assert_int_equal(get64(f, 0x3010), 0x100027);
	vmem_gmem_remove(f->gm, 0x100000);
	free(rom);
}

static void test_batch_matches_single(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2007);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3000, 0x4007);
	put64(f, 0x3008, 0x600087); /* 2M page */
	for (int i = 0; i < 512; i += 3)
		put64(f, 0x4000 + 8 * i, 0x100000ull * i | 0x7);
	set_cpu(f, 0x80010001, 0x1000, 0x20, 0x500, 48, true, 0);
	uint64_t la[40];
	vmem_walk_result rb[40];
	for (int i = 0; i < 40; i++)
		la[i] = (i % 5 == 4) ? 0x200000ull + (uint64_t)i * 0x1111 : (uint64_t)i * 0x1000 + 0x123;
	la[7] = 0x800000000000ull; /* non-canonical */
	assert_int_equal(vmem_walk_batch(f->mmu, f->gm, la, 40, VMEM_ACC_WRITE, 0, rb), VMEM_OK);
	for (int i = 0; i < 40; i++) {
		if (i == 7) {
			assert_int_equal(rb[i].status, VMEM_WALK_GP);
			continue;
		}
		bool mapped = (i % 5 == 4) || (i % 3 == 0);
		assert_int_equal(rb[i].status, mapped ? VMEM_WALK_OK : VMEM_WALK_PF);
		if (i % 5 == 4)
			assert_int_equal(rb[i].gpa, 0x600000 + (la[i] & 0x1fffff));
		else if (mapped)
			assert_int_equal(rb[i].gpa, 0x100000ull * i + 0x123);
	}
}

/* ---- Subtle SDM rules, one each (audit4) ---- */

#define CR0_PG_WP_PE 0x80010001ull
#define CR0_PG_PE 0x80000001ull
#define CR4_PSE 0x10ull
#define CR4_PAE 0x20ull
#define CR4_LA57 0x1000ull
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE (1ull << 22)
#define EFER_LM 0x500ull     /* LME | LMA */
#define EFER_NXE 0x800ull

/* A walk that must fault with error code ec at level. */
static void expect_pf(struct fx *f, uint64_t la, unsigned acc, uint32_t ec, unsigned level)
{
	vmem_walk_result r = walk(f, la, acc);
	assert_int_equal(r.status, VMEM_WALK_PF);
	assert_int_equal(r.error_code, ec);
	assert_int_equal(r.level, level);
}

/* PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000, la 0 -> leaf. */
static void tables4(struct fx *f, uint64_t pml4e, uint64_t leaf)
{
	put64(f, 0x1000, pml4e);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3000, 0x4007);
	put64(f, 0x4000, leaf);
}

/* SDM 4.6: a user-mode address has U/S = 1 in every paging-structure entry;
 * one supervisor PML4E makes the page supervisor, however its PTE reads. So
 * SMEP and SMAP (4.6.1) and protection keys (4.6.2) leave it alone, and a
 * user access faults P|U without PK (4.7: PK needs a user-mode address). */
static void test_user_address_needs_us_everywhere(void **state)
{
	struct fx *f = *state;
	tables4(f, 0x2003, (5ull << 59) | 0x5067); /* PML4E U/S = 0; leaf user, key 5 */
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_SMEP | CR4_SMAP | CR4_PKE, EFER_LM | EFER_NXE, 48,
		true, 3u << 10); /* PKRU: AD5 = WD5 = 1 */
	vmem_walk_result r = walk(f, 0x10, VMEM_ACC_FETCH);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.perms, VMEM_PERM_W | VMEM_PERM_X);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ).status, VMEM_WALK_OK);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE).status, VMEM_WALK_OK);
	expect_pf(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER, VMEM_PFEC_P | VMEM_PFEC_U, 1);
}

/* SDM 4.7: RSVD is set when there is no translation because of a reserved
 * bit; access rights (4.6) only judge a translation. So a reserved bit in
 * the PTE (bit 51 >= MAXPHYADDR 48, 4.5.4) wins over the U/S = 0 above it
 * (P|U|RSVD, not P|U), as a not-present PTE does (U alone), and neither
 * fault sets an accessed flag (4.8). */
static void test_rsvd_and_not_present_before_rights(void **state)
{
	struct fx *f = *state;
	tables4(f, 0x2003, (1ull << 51) | 0x5007);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE, EFER_LM, 48, true, 0);
	expect_pf(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER, VMEM_PFEC_P | VMEM_PFEC_U | VMEM_PFEC_RSVD, 1);
	put64(f, 0x4000, 0x5006);
	expect_pf(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER, VMEM_PFEC_U, 1);
	assert_int_equal(get64(f, 0x1000), 0x2003);
	assert_int_equal(get64(f, 0x3000), 0x4007);
}

/* SDM 4.6.1, supervisor data writes to a user-mode address with SMAP = 1:
 * allowed only if explicit with EFLAGS.AC = 1, and then, with CR0.WP = 0,
 * whatever R/W says; implicit ones never. */
static void test_smap_ac_with_wp0(void **state)
{
	struct fx *f = *state;
	tables4(f, 0x2007, 0x5005); /* read-only user page, A clear */
	set_cpu(f, CR0_PG_PE, 0x1000, CR4_PAE | CR4_SMAP, EFER_LM, 48, true, 0);
	vmem_walk_result r = walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_AC);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(get64(f, 0x4000), 0x5065); /* A and D: the write happened */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE).error_code, VMEM_PFEC_P | VMEM_PFEC_W);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_AC | VMEM_ACC_IMPLICIT).error_code,
			 VMEM_PFEC_P | VMEM_PFEC_W);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_SMAP, EFER_LM, 48, true, 0);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_WRITE | VMEM_ACC_AC).error_code, VMEM_PFEC_P | VMEM_PFEC_W);
}

/* SDM 4.7, PK flag: set when its four conditions hold (IA-32e with PKE, a
 * data access, a user-mode address with key i, PKRU denying it), whether or
 * not the ordinary rights also deny the access. A user write to a read-only
 * user page: P|W|U alone with PKRU = 0, and with PK under AD5 or WD5. */
static void test_pk_bit_with_rights_fault(void **state)
{
	struct fx *f = *state;
	tables4(f, 0x2007, (5ull << 59) | 0x5025);
	const unsigned acc = VMEM_ACC_WRITE | VMEM_ACC_USER;
	const uint32_t pfwu = VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U;
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_PKE, EFER_LM, 48, true, 0);
	assert_int_equal(walk(f, 0x10, acc).error_code, pfwu);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_PKE, EFER_LM, 48, true, 1u << 10);
	assert_int_equal(walk(f, 0x10, acc).error_code, pfwu | VMEM_PFEC_PK);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_PKE, EFER_LM, 48, true, 2u << 10);
	assert_int_equal(walk(f, 0x10, acc).error_code, pfwu | VMEM_PFEC_PK);
	/* A user read passes WD5 (4.6.2: WD only restricts writes). */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_READ | VMEM_ACC_USER).status, VMEM_WALK_OK);
}

/* SDM 4.7, I/D: 1 for a fetch only if CR4.SMEP = 1, or CR4.PAE = 1 and
 * EFER.NXE = 1. 4-level paging with NXE = 0 reports none without SMEP;
 * 32-bit paging none even with NXE = 1. And XD with NXE = 0 is reserved in
 * a PML4E too (4.5.4): P|RSVD at level 4. */
static void test_id_bit_and_nxe0(void **state)
{
	struct fx *f = *state;
	set_cpu(f, CR0_PG_PE, 0x1000, CR4_PAE, EFER_LM, 48, true, 0);
	expect_pf(f, 0x10, VMEM_ACC_FETCH, 0, 4); /* PML4E 0 not present */
	set_cpu(f, CR0_PG_PE, 0x1000, CR4_PAE | CR4_SMEP, EFER_LM, 48, true, 0);
	assert_int_equal(walk(f, 0x10, VMEM_ACC_FETCH).error_code, VMEM_PFEC_I);
	set_cpu(f, CR0_PG_PE, 0x1000, 0, EFER_NXE, 48, true, 0); /* 32-bit paging, PDE 0 not present */
	assert_int_equal(walk(f, 0x10, VMEM_ACC_FETCH).error_code, 0);
	tables4(f, VMEM_PTE_XD | 0x2007, 0x5027);
	set_cpu(f, CR0_PG_PE, 0x1000, CR4_PAE, EFER_LM, 48, true, 0);
	expect_pf(f, 0x10, VMEM_ACC_READ, VMEM_PFEC_P | VMEM_PFEC_RSVD, 4);
}

/* SDM 4.4.1: PAE walks use the PDPTE registers loaded by MOV to CR3, not
 * memory: a PDPTE cleared afterwards still translates. Table 4-8: bit 63 of
 * a PDPTE is reserved even with EFER.NXE = 1 (no XD there), so the load
 * fails. 4.6.2: protection keys exist only in 4- and 5-level paging, so
 * CR4.PKE with a PKRU denying everything changes nothing under PAE. */
static void test_pae_pdpte_registers_and_no_keys(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2001);
	put64(f, 0x2000, 0x3007);
	put64(f, 0x3000, 0x4067);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE | CR4_PKE, 0, 36, true, 0xffffffffu);
	assert_int_equal(vmem_mmu_load_pdptes(f->mmu, f->gm), VMEM_OK);
	put64(f, 0x1000, 0);
	vmem_walk_result r;
	vmem_walk_trace t;
	assert_int_equal(vmem_walk_traced(f->mmu, f->gm, 0x123, VMEM_ACC_WRITE | VMEM_ACC_USER, 0, &r, &t), VMEM_OK);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0x4123);
	assert_int_equal(t.e[0].value, 0x2001);
	put64(f, 0x1000, VMEM_PTE_XD | 0x2001);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PAE, EFER_NXE, 36, true, 0);
	assert_int_equal(vmem_mmu_load_pdptes(f->mmu, f->gm), VMEM_E_INVAL);
}

/* SDM 4.3, Tables 4-5 and 4-6: under 32-bit paging a PDE that names a page
 * table and a PTE have no reserved bits, and there is no XD bit (bit 31 is
 * an address bit, even with EFER.NXE = 1); only a 4-MByte PDE reserves bits
 * 21:(M-19), here 21:13 with MAXPHYADDR 32 (Table 4-4). PDE 0 = 0x2007 has
 * bit 13 set; PTE 1 is 0xFFFFF0E7 (PAT, bit 31); PDE 1 = 0x00402083 maps
 * 4 MiB with bit 13 set. */
static void test_32bit_reserved_bits_only_in_4m_pde(void **state)
{
	struct fx *f = *state;
	put32(f, 0x1000, 0x2007);
	put32(f, 0x2004, 0xFFFFF0E7u);
	put32(f, 0x1004, 0x00402083u);
	set_cpu(f, CR0_PG_WP_PE, 0x1000, CR4_PSE, EFER_NXE, 32, true, 0);
	vmem_walk_result r = walk(f, 0x1abc, VMEM_ACC_FETCH | VMEM_ACC_USER);
	assert_int_equal(r.status, VMEM_WALK_OK);
	assert_int_equal(r.gpa, 0xFFFFFabcull);
	assert_int_equal(r.page_size, 4096);
	expect_pf(f, 0x00400000, VMEM_ACC_READ, VMEM_PFEC_P | VMEM_PFEC_RSVD, 2);
}

/* SDM 4.5, Table 4-14: PS (bit 7) of a PML5E is reserved. */
static void test_5level_ps_in_pml5e(void **state)
{
	struct fx *f = *state;
	put64(f, 0x1000, 0x2083);
	set_cpu(f, CR0_PG_PE, 0x1000, CR4_PAE | CR4_LA57, EFER_LM, 48, true, 0);
	expect_pf(f, 0x10, VMEM_ACC_READ, VMEM_PFEC_P | VMEM_PFEC_RSVD, 5);
	assert_int_equal(get64(f, 0x1000), 0x2083);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_4level_user_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_side_effects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_writes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_32bit_4k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_32bit_4m_pse36, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pae, setup, teardown),
		cmocka_unit_test_setup_teardown(test_5level_1g, setup, teardown),
		cmocka_unit_test_setup_teardown(test_4level_canonical_and_ps_pml4e, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smep_smap_pk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_entry_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_slot_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_matches_single, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_address_needs_us_everywhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rsvd_and_not_present_before_rights, setup, teardown),
		cmocka_unit_test_setup_teardown(test_smap_ac_with_wp0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pk_bit_with_rights_fault, setup, teardown),
		cmocka_unit_test_setup_teardown(test_id_bit_and_nxe0, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pae_pdpte_registers_and_no_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_32bit_reserved_bits_only_in_4m_pde, setup, teardown),
		cmocka_unit_test_setup_teardown(test_5level_ps_in_pml5e, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
