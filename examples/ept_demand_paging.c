/* Example: a VMM's EPT side — demand-map guest RAM on EPT violations, change rights, collapse to 2M leaves, log dirty pages. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/alloc.h>
#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

/* The host's physical memory, as this hosted example models it: an 8 MiB
 * arena at host-physical 0. EPT table pages come from its first 2 MiB (the
 * allocator below); the guest's 4 MiB of RAM is host-physical 4M..8M. */
#define ARENA_SIZE (8u << 20)
#define TABLE_POOL (2u << 20)
#define GUEST_HPA  (4u << 20)
#define GUEST_SIZE (4u << 20)
#define PAGE 4096u

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

/* ---- the VMM's page allocator: table pages out of the arena ---- */

struct arena {
	uint8_t *base;
	uint32_t free_list[TABLE_POOL / PAGE]; /* page numbers */
	unsigned n_free, live;
};

static void *a_alloc(void *ctx, size_t size) { (void)ctx; return malloc(size ? size : 1); }
static void a_free(void *ctx, void *p, size_t size) { (void)ctx, (void)size; free(p); }

static void *a_page(void *ctx)
{
	struct arena *a = ctx;
	if (!a->n_free)
		return NULL;
	uint8_t *p = a->base + (size_t)a->free_list[--a->n_free] * PAGE;
	memset(p, 0, PAGE); /* the library expects zeroed pages */
	a->live++;
	return p;
}

static void a_free_page(void *ctx, void *page)
{
	struct arena *a = ctx;
	a->free_list[a->n_free++] = (uint32_t)(((uint8_t *)page - a->base) / PAGE);
	a->live--;
}

/* What the hardware will see in an EPT entry: the page's host-physical address. */
static uint64_t a_phys(void *ctx, const void *page)
{
	const struct arena *a = ctx;
	return (uint64_t)((const uint8_t *)page - a->base);
}

/* ---- the guest ---- */

/* The guest's own 4-level tables (GPA 0x1000 PML4, 0x2000 PDPT, 0x3000 PD,
 * 0x4000 PT) map linear 0x400000 + k*4K to guest-physical 0x300000 + k*4K,
 * k < 8. The VMM writes them through its view of guest RAM. */
static void guest_tables(uint8_t *ram)
{
	uint64_t *pml4 = (uint64_t *)(ram + 0x1000), *pdpt = (uint64_t *)(ram + 0x2000);
	uint64_t *pd = (uint64_t *)(ram + 0x3000), *pt = (uint64_t *)(ram + 0x4000);
	pml4[0] = 0x2000 | 7; /* P, R/W, U/S */
	pdpt[0] = 0x3000 | 7;
	pd[2] = 0x4000 | 7; /* linear 0x400000 is PD index 2 */
	for (unsigned k = 0; k < 8; k++)
		pt[k] = (0x300000 + (uint64_t)k * PAGE) | 7;
}

static const char *exit_text(const vmem_nested_result *r)
{
	switch (r->status) {
	case VMEM_NESTED_OK: return "ok";
	case VMEM_NESTED_PF: return "guest #PF";
	case VMEM_NESTED_EPT_VIOLATION: return r->final ? "EPT violation (the access)" : "EPT violation (a guest table)";
	case VMEM_NESTED_EPT_MISCONFIG: return "EPT misconfiguration";
	default: return "other";
	}
}

/* What the VMM does with a flush result: here just say it (a real VMM
 * executes INVEPT single-context on every CPU running this EPTP). */
static void do_flush(vmem_ept *ept, const vmem_ept_flush *f)
{
	if (f->flags & VMEM_EPT_FLUSH_INVEPT)
		printf("    -> INVEPT (single context) for GPA [0x%" PRIx64 ", 0x%" PRIx64 ")\n", f->start, f->end);
	if (f->flags & VMEM_EPT_FLUSH_TABLES_FREED)
		vmem_ept_flush_done(ept); /* after that INVEPT the freed tables may be reused */
}

/* Run the guest's access the way a vCPU would: on each EPT violation for
 * RAM the VMM maps the 4 KiB page (demand paging) and the access retries.
 * Returns the number of exits taken. */
static unsigned run_access(vmem_mmu *mmu, vmem_ept *ept, vmem_ept_mmu *emmu, vmem_gmem *host,
			   uint64_t la, unsigned acc, vmem_nested_result *r)
{
	unsigned exits = 0;
	for (;;) {
		vmem_err e = vmem_nested_walk(mmu, emmu, host, la, acc, 0, r, NULL);
		CHECK(e == VMEM_OK, "vmem_nested_walk: %s", vmem_strerror(e));
		if (e || r->status != VMEM_NESTED_EPT_VIOLATION || exits > 8)
			return exits;
		exits++;
		uint64_t page = r->gpa & ~(uint64_t)(PAGE - 1);
		printf("  exit %u: %s at GPA 0x%" PRIx64 ", qualification 0x%" PRIx64 "\n", exits, exit_text(r),
		       r->gpa, r->exit_qual);
		if (page >= GUEST_SIZE)
			return exits; /* not RAM: a real VMM would emulate MMIO here */
		vmem_ept_flush f;
		e = vmem_ept_map(ept, page, GUEST_HPA + page, PAGE, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X,
				 VMEM_MT_WB, false, &f);
		CHECK(e == VMEM_OK, "vmem_ept_map: %s", vmem_strerror(e));
		do_flush(ept, &f); /* a not-present -> present change needs none (SDM 29.4.3.1) */
	}
}

int main(void)
{
	struct arena *ar = calloc(1, sizeof(*ar));
	uint8_t *arena = aligned_alloc(2u << 20, ARENA_SIZE);
	if (!ar || !arena)
		return 1;
	memset(arena, 0, ARENA_SIZE);
	ar->base = arena;
	for (unsigned k = TABLE_POOL / PAGE; k-- > 0;)
		ar->free_list[ar->n_free++] = k;
	vmem_allocator alloc = { a_alloc, a_free, a_page, a_free_page, ar, a_phys };

	/* Host memory for the walks: the whole arena at host-physical 0. */
	vmem_gmem *host;
	vmem_err e = vmem_gmem_new(&alloc, &host);
	CHECK(!e, "vmem_gmem_new");
	e = vmem_gmem_add_ram(host, 0, ARENA_SIZE, arena, 0);
	CHECK(!e, "vmem_gmem_add_ram");

	/* EPT: 4 levels, A/D flags on; the guest may only ever get 4M..8M. */
	vmem_ept_config cfg = { .levels = 4, .ad = true, .gbpages = true, .exec_only = true,
				.eptp_mt = VMEM_MT_WB };
	vmem_ept *ept;
	e = vmem_ept_new(&alloc, &cfg, &ept);
	CHECK(!e, "vmem_ept_new: %s", vmem_strerror(e));
	e = vmem_ept_grant(ept, GUEST_HPA, GUEST_SIZE);
	CHECK(!e, "vmem_ept_grant");
	vmem_ept_flush f;
	e = vmem_ept_map(ept, 0, 0, PAGE, VMEM_EPT_R, VMEM_MT_WB, false, &f);
	CHECK(e == VMEM_E_RANGE, "mapping host memory the guest was not given is refused (got %s)",
	      vmem_strerror(e));
	vmem_ept_mmu *emmu;
	e = vmem_ept_mmu_new(&alloc, vmem_ept_eptp(ept), NULL, &emmu);
	CHECK(!e, "vmem_ept_mmu_new");

	/* The guest: 4-level paging, CR3 = GPA 0x1000. */
	guest_tables(arena + GUEST_HPA);
	vmem_regs regs;
	vmem_regs_init(&regs);
	regs.cr0 = 0x80010001; /* PG, WP, PE */
	regs.cr3 = 0x1000;
	regs.cr4 = 0x20;       /* PAE */
	regs.efer = 0x500;     /* LME, LMA */
	vmem_mmu *mmu;
	e = vmem_mmu_new(&alloc, &regs, &mmu);
	CHECK(!e, "vmem_mmu_new");

	/* 1. Demand paging. Nothing is mapped: the guest's write to 0x400123
	 * exits once for each guest table it reads (PML4, PDPT, PD, PT) and
	 * once for the page it writes, then completes. */
	printf("1. guest writes linear 0x400123 with nothing mapped in EPT\n");
	vmem_nested_result r;
	unsigned exits = run_access(mmu, ept, emmu, host, 0x400123, VMEM_ACC_WRITE, &r);
	CHECK(exits == 5, "5 exits (4 guest tables + the page), got %u", exits);
	CHECK(r.status == VMEM_NESTED_OK && r.hpa == GUEST_HPA + 0x300123,
	      "HPA 0x%" PRIx64 " (want 0x%x)", r.hpa, GUEST_HPA + 0x300123);
	printf("  done: HPA 0x%" PRIx64 ", page %" PRIu64 " KiB\n", r.hpa, r.page_size >> 10);

	/* 2. Write-protect the page: a rights reduction needs INVEPT; the next
	 * write exits with R allowed, W not (qualification bits 3 and 4). */
	printf("2. VMM makes GPA 0x300000 read-only\n");
	e = vmem_ept_protect(ept, 0x300000, PAGE, VMEM_EPT_R | VMEM_EPT_X, &f);
	CHECK(!e && (f.flags & VMEM_EPT_FLUSH_INVEPT), "protect asks for INVEPT");
	do_flush(ept, &f);
	e = vmem_nested_walk(mmu, emmu, host, 0x400123, VMEM_ACC_WRITE, 0, &r, NULL);
	CHECK(!e && r.status == VMEM_NESTED_EPT_VIOLATION && r.final, "write to a read-only page exits");
	CHECK((r.exit_qual & (VMEM_EPTQ_WRITE | VMEM_EPTQ_R | VMEM_EPTQ_W)) == (VMEM_EPTQ_WRITE | VMEM_EPTQ_R),
	      "qualification 0x%" PRIx64 ": a write, readable, not writable", r.exit_qual);
	printf("  write exits: qualification 0x%" PRIx64 "\n", r.exit_qual);

	/* 3. Map all of guest RAM at once: the 4K leaves are replaced by two
	 * 2M leaves, and the page table they lived in is freed (after INVEPT). */
	printf("3. VMM maps all 4 MiB of guest RAM\n");
	e = vmem_ept_map(ept, 0, GUEST_HPA, GUEST_SIZE, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X, VMEM_MT_WB, false, &f);
	CHECK(!e, "vmem_ept_map: %s", vmem_strerror(e));
	do_flush(ept, &f);
	vmem_ept_stats st;
	vmem_ept_get_stats(ept, &st);
	printf("  leaves: %" PRIu64 " x 4K, %" PRIu64 " x 2M; table pages %" PRIu64 "\n", st.leaves_4k,
	       st.leaves_2m, st.table_pages);
	CHECK(st.leaves_2m == 2 && st.leaves_4k == 0, "two 2M leaves");
	CHECK(st.table_pages == 3, "PML4, PDPT, PD: %" PRIu64, st.table_pages);

	/* 4. Dirty logging by EPT dirty flags: logging splits the 2M leaves
	 * (4K granularity); the guest writes 3 pages. With EPT A/D on, the
	 * guest's own table reads count as writes too (SDM 29.3.3.2), so its 4
	 * table pages are dirty as well: 7 pages. */
	printf("4. dirty logging (EPT dirty flags), guest writes 3 pages\n");
	vmem_dirty *d;
	e = vmem_dirty_new(&alloc, ept, 0, GUEST_SIZE, &d);
	CHECK(!e, "vmem_dirty_new");
	e = vmem_dirty_set_mode(d, VMEM_DIRTY_EPT_D, NULL, &f);
	CHECK(!e, "vmem_dirty_set_mode: %s", vmem_strerror(e));
	do_flush(ept, &f);
	for (unsigned k = 0; k < 3; k++) {
		e = vmem_nested_walk(mmu, emmu, host, 0x400000 + k * PAGE, VMEM_ACC_WRITE, 0, &r, NULL);
		CHECK(!e && r.status == VMEM_NESTED_OK, "write %u", k);
	}
	uint64_t bitmap[GUEST_SIZE / PAGE / 64];
	e = vmem_dirty_harvest(d, bitmap, &f);
	CHECK(!e, "vmem_dirty_harvest");
	do_flush(ept, &f);
	unsigned n = 0;
	printf("  dirty:");
	for (unsigned i = 0; i < GUEST_SIZE / PAGE; i++)
		if (bitmap[i / 64] >> (i % 64) & 1) {
			printf(" 0x%x", i * PAGE);
			n++;
		}
	printf("\n");
	CHECK(n == 7, "7 dirty pages, got %u", n);
	CHECK((bitmap[0] & 0x1e) == 0x1e, "the guest's 4 table pages");
	CHECK((bitmap[0x300 / 64] >> (0x300 % 64) & 7) == 7, "pages 0x300000-0x302000");
	e = vmem_dirty_harvest(d, bitmap, &f);
	n = 0;
	for (unsigned i = 0; i < GUEST_SIZE / PAGE / 64; i++)
		n += (unsigned)__builtin_popcountll(bitmap[i]);
	CHECK(!e && n == 0, "nothing written since: %u", n);
	do_flush(ept, &f);

	vmem_dirty_free(d);
	vmem_mmu_free(mmu);
	vmem_ept_mmu_free(emmu);
	vmem_ept_free(ept);
	vmem_gmem_free(host);
	CHECK(ar->live == 0, "every table page back in the pool: %u live", ar->live);
	free(arena);
	free(ar);
	printf(failures ? "ept_demand_paging: %d check(s) FAILED\n" : "ept_demand_paging: all checks passed\n",
	       failures);
	return failures != 0;
}
