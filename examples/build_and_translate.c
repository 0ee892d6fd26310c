/* Example: build 4-level page tables by hand in guest RAM, then translate, fault and watch A/D flags. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

#define RAM_SIZE (4u << 20) /* 4 MiB of guest RAM at guest-physical 0 */
#define PML4_GPA 0x1000u    /* CR3 */
#define TABLE_FLAGS (VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US) /* leaves decide the rights */

static int failures;

#define CHECK(cond, ...)                                                        \
	do {                                                                    \
		if (!(cond)) {                                                  \
			printf("  FAILED: %s: ", #cond);                        \
			printf(__VA_ARGS__);                                    \
			printf("\n");                                           \
			failures++;                                             \
		}                                                               \
	} while (0)

/* The guest's RAM as the VMM sees it, and a bump allocator for table pages. */
struct guest {
	uint8_t *ram;
	uint64_t next_table; /* next free page for paging structures */
};

static uint64_t *entry_at(struct guest *g, uint64_t gpa)
{
	return (uint64_t *)(g->ram + gpa);
}

static uint64_t new_table(struct guest *g)
{
	uint64_t gpa = g->next_table;
	g->next_table += 0x1000;
	memset(g->ram + gpa, 0, 0x1000);
	return gpa;
}

/* Install la -> pa with `flags` as a 4K page (leaf_level 1) or a 2M page
 * (leaf_level 2), creating the tables on the way. Nothing clever: a VMM's
 * first page-table builder looks like this. */
static void map(struct guest *g, uint64_t la, uint64_t pa, unsigned leaf_level, uint64_t flags)
{
	uint64_t table = PML4_GPA;
	for (unsigned level = 4; level > leaf_level; level--) {
		uint64_t *e = entry_at(g, table + 8 * ((la >> (12 + 9 * (level - 1))) & 511));
		if (!(*e & VMEM_PTE_P))
			*e = new_table(g) | TABLE_FLAGS;
		table = *e & 0x000ffffffffff000ull;
	}
	uint64_t *leaf = entry_at(g, table + 8 * ((la >> (12 + 9 * (leaf_level - 1))) & 511));
	*leaf = pa | flags | (leaf_level > 1 ? VMEM_PTE_PS : 0);
}

static const char *status_name(unsigned s)
{
	static const char *const n[] = { "ok", "#PF", "#GP", "bad-gpa" };
	return s < 4 ? n[s] : "?";
}

static void show(const char *what, uint64_t la, const vmem_walk_result *r)
{
	printf("  %-34s la %#018" PRIx64 " -> %-7s", what, la, status_name(r->status));
	if (r->status == VMEM_WALK_OK)
		printf(" gpa %#" PRIx64 " (%" PRIu64 "K page, level %u, perms %s%s%s)", r->gpa,
		       r->page_size >> 10, r->level, r->perms & VMEM_PERM_W ? "W" : "-",
		       r->perms & VMEM_PERM_U ? "U" : "-", r->perms & VMEM_PERM_X ? "X" : "-");
	else if (r->status == VMEM_WALK_PF)
		printf(" error code %#x%s%s%s%s%s, level %u", r->error_code,
		       r->error_code & VMEM_PFEC_P ? " P" : " !P",
		       r->error_code & VMEM_PFEC_W ? " W" : "", r->error_code & VMEM_PFEC_U ? " U" : "",
		       r->error_code & VMEM_PFEC_RSVD ? " RSVD" : "",
		       r->error_code & VMEM_PFEC_I ? " I" : "", r->level);
	printf("\n");
}

/* Walk and check the outcome against hand-computed values. */
static void expect(vmem_mmu *mmu, vmem_gmem *gm, const char *what, uint64_t la, unsigned acc,
		   unsigned status, uint64_t gpa_or_ec, uint64_t page_size)
{
	vmem_walk_result r;
	vmem_err e = vmem_walk(mmu, gm, la, acc, 0, &r);
	CHECK(e == VMEM_OK, "vmem_walk: %s", vmem_strerror(e));
	show(what, la, &r);
	CHECK(r.status == status, "status %s, expected %s", status_name(r.status), status_name(status));
	if (status == VMEM_WALK_OK) {
		CHECK(r.gpa == gpa_or_ec, "gpa %#" PRIx64 ", expected %#" PRIx64, r.gpa, gpa_or_ec);
		CHECK(r.page_size == page_size, "page size %#" PRIx64, r.page_size);
	} else if (status == VMEM_WALK_PF) {
		CHECK(r.error_code == gpa_or_ec, "error code %#x, expected %#" PRIx64, r.error_code,
		      gpa_or_ec);
	}
}

int main(void)
{
	struct guest g = { aligned_alloc(4096, RAM_SIZE), PML4_GPA };
	if (!g.ram)
		return 1;
	memset(g.ram, 0, RAM_SIZE);
	new_table(&g); /* the PML4 */

	/* Three mappings:
	 *   0x40000000..         2M page at 0x200000, supervisor read/write
	 *   0x7ffffffff000       4K page at 0x105000, user read-only
	 *   0xffff800000000000   4K page at 0x106000, supervisor read/write (a kernel page) */
	const uint64_t la_2m = 0x40000000, la_user = 0x7ffffffff000, la_kern = 0xffff800000000000;
	map(&g, la_2m, 0x200000, 2, VMEM_PTE_P | VMEM_PTE_RW);
	map(&g, la_user, 0x105000, 1, VMEM_PTE_P | VMEM_PTE_US);
	map(&g, la_kern, 0x106000, 1, VMEM_PTE_P | VMEM_PTE_RW);
	printf("built 4-level tables: PML4 at %#x, %" PRIu64 " table pages\n", PML4_GPA,
	       (g.next_table - PML4_GPA) / 0x1000);
	/* PML4 0x1000; 2M path: PDPT 0x2000, PD 0x3000; user path: PDPT 0x4000,
	 * PD 0x5000, PT 0x6000; kernel path: PDPT 0x7000, PD 0x8000, PT 0x9000. */
	CHECK(g.next_table == 0xa000, "next_table %#" PRIx64, g.next_table);

	/* Guest memory: one RAM slot. Paging registers: long mode, WP, NXE. */
	vmem_gmem *gm;
	vmem_mmu *mmu;
	vmem_regs regs;
	if (vmem_gmem_new(NULL, &gm) || vmem_gmem_add_ram(gm, 0, RAM_SIZE, g.ram, 0))
		return 1;
	vmem_regs_init(&regs);
	regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	regs.cr4 = VMEM_CR4_PAE;
	regs.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	regs.cr3 = PML4_GPA;
	vmem_err e = vmem_mmu_new(NULL, &regs, &mmu);
	if (e) {
		printf("vmem_mmu_new: %s\n", vmem_strerror(e));
		return 1;
	}
	printf("mode: %s paging\n", vmem_mode_name(vmem_mmu_mode(mmu)));

	printf("translations:\n");
	expect(mmu, gm, "supervisor read, 2M page", la_2m + 0x12345, VMEM_ACC_READ, VMEM_WALK_OK,
	       0x212345, VMEM_PAGE_2M);
	expect(mmu, gm, "user read, 4K user page", la_user + 0x123, VMEM_ACC_USER, VMEM_WALK_OK,
	       0x105123, VMEM_PAGE_4K);
	expect(mmu, gm, "supervisor fetch, kernel page", la_kern + 0x10, VMEM_ACC_FETCH,
	       VMEM_WALK_OK, 0x106010, VMEM_PAGE_4K);

	printf("faults:\n");
	/* Present but read-only, user write: P | W | U. */
	expect(mmu, gm, "user write, read-only page", la_user + 0x123,
	       VMEM_ACC_USER | VMEM_ACC_WRITE, VMEM_WALK_PF, VMEM_PFEC_P | VMEM_PFEC_W | VMEM_PFEC_U, 0);
	/* Supervisor page, user read: P | U. */
	expect(mmu, gm, "user read, kernel page", la_kern + 0x10, VMEM_ACC_USER, VMEM_WALK_PF,
	       VMEM_PFEC_P | VMEM_PFEC_U, 0);
	/* Nothing mapped: not present, so P = 0; a fetch with NXE reports I/D. */
	expect(mmu, gm, "supervisor fetch, unmapped", 0x1000, VMEM_ACC_FETCH, VMEM_WALK_PF,
	       VMEM_PFEC_I, 0);
	/* Bits 63:47 not all equal: #GP, no walk at all. */
	expect(mmu, gm, "read, non-canonical", 0x0000800000000000ull, VMEM_ACC_READ, VMEM_WALK_GP,
	       0, 0);

	/* Accessed and dirty: find the kernel page's PTE through the trace. */
	printf("accessed/dirty flags (kernel page's PTE):\n");
	vmem_walk_result r;
	vmem_walk_trace tr;
	uint64_t la = la_kern + 0x20;
	vmem_walk_traced(mmu, gm, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r, &tr);
	CHECK(tr.n == 4, "trace has %u entries", tr.n);
	uint64_t *pte = entry_at(&g, tr.e[tr.n - 1].gpa);
	printf("  trace:");
	for (unsigned i = 0; i < tr.n; i++)
		printf(" L%u@%#" PRIx64 "=%#" PRIx64, tr.e[i].level, tr.e[i].gpa, tr.e[i].value);
	printf("\n");
	/* The fetch above already set A on every level of this path. */
	CHECK((*pte & (VMEM_PTE_A | VMEM_PTE_D)) == VMEM_PTE_A, "pte %#" PRIx64, *pte);
	*pte &= ~VMEM_PTE_A; /* as a guest OS clears A to age its pages */
	printf("  cleared A:               pte = %#" PRIx64 "\n", *pte);
	vmem_walk(mmu, gm, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r);
	printf("  read with VMEM_WALK_NO_AD: pte = %#" PRIx64 " (no side effects)\n", *pte);
	CHECK(*pte == (0x106000 | VMEM_PTE_P | VMEM_PTE_RW), "pte %#" PRIx64, *pte);
	vmem_walk(mmu, gm, la, VMEM_ACC_READ, 0, &r);
	printf("  read:                    pte = %#" PRIx64 " (A set)\n", *pte);
	CHECK(*pte == (0x106000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_A), "pte %#" PRIx64, *pte);
	CHECK(r.info & VMEM_WINFO_AD_SET, "info %#x", r.info);
	vmem_walk(mmu, gm, la, VMEM_ACC_WRITE, 0, &r);
	printf("  write:                   pte = %#" PRIx64 " (A and D set)\n", *pte);
	CHECK(*pte == (0x106000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_A | VMEM_PTE_D),
	      "pte %#" PRIx64, *pte);
	/* A fault sets nothing: a user write to the supervisor page leaves D of a fresh PTE clear. */
	*pte &= ~(VMEM_PTE_A | VMEM_PTE_D);
	vmem_walk(mmu, gm, la, VMEM_ACC_USER | VMEM_ACC_WRITE, 0, &r);
	printf("  faulting user write:     pte = %#" PRIx64 " (unchanged)\n", *pte);
	CHECK(r.status == VMEM_WALK_PF && *pte == (0x106000 | VMEM_PTE_P | VMEM_PTE_RW),
	      "pte %#" PRIx64, *pte);

	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	free(g.ram);
	if (failures) {
		printf("build_and_translate: %d check(s) FAILED\n", failures);
		return 1;
	}
	printf("build_and_translate: all checks passed\n");
	return 0;
}
