/* vmem_walk_batch against the SDM reference (tests/ref) and vmem_walk: random IA-32e tables over several 1-GByte regions, every lane's result and the memory after. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "ref_walk.h"

/* The promise tested (walk.h): each res[i] is what vmem_walk would give,
 * and the flags written are the ones the single walks, in order, write.
 * The expected answers come from the reference walker (tests/ref: the
 * SDM's rules stated plainly, sharing no code with the library) walking
 * the lanes in order over its own copy of the memory; the batch must also
 * match vmem_walk field for field (info included), since lanes the batch
 * cannot finish are handed to it. The tables are built to
 * reach the batch's shortcuts and their edges: addresses from a few
 * 1-GByte regions (the batch caches what it found above the PDE per
 * region), upper entries without A (the first lane's full walk sets it
 * under the cached copy), 1-GByte and 2-MByte pages, not-present and
 * reserved-bit entries, tables outside the walker's window, non-canonical
 * addresses, 4- and 5-level paging, with and without the window. */

#define RAM_SIZE (1u << 20)  /* the window: 2^20 */
#define POOL_FIRST 1         /* table pages from page 1 */
#define LANES 700
#define GUESTS 40

static uint64_t rng;
/* What the lanes came to, over a run: each kind must occur, or the test
 * would pass without reaching the paths it is about. */
static unsigned seen_ok[4], seen_pf, seen_gp, seen_bad;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The reference's view of guest memory: its own copy of the slot. */
struct refram {
	uint8_t *buf;
	uint64_t base;
};

static bool ref_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	const struct refram *r = ctx;
	if (gpa < r->base || gpa - r->base > RAM_SIZE - size)
		return false;
	*val = 0;
	memcpy(val, r->buf + (gpa - r->base), size);
	return true;
}

static bool ref_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	struct refram *r = ctx;
	if (gpa < r->base || gpa - r->base > RAM_SIZE - size)
		return false;
	memcpy(r->buf + (gpa - r->base), &val, size);
	return true;
}

/* The library's answer against the reference's, field by field as
 * tests/ref/ref_diff.c compares them (statuses share their numbers). */
static void expect_ref(const vmem_walk_result *l, const ref_result *r, bool set_ad, unsigned lane, uint64_t la)
{
	if (l->status != (unsigned)r->status)
		print_error("lane %u la %#llx: status %u, reference %u\n", lane, (unsigned long long)la, l->status,
			    r->status);
	assert_int_equal(l->status, r->status);
	switch (r->status) {
	case REF_OK:
		assert_int_equal(l->gpa, r->gpa);
		assert_int_equal(l->page_size, r->page_size);
		assert_int_equal(l->level, r->level);
		assert_int_equal(l->entry, r->entry);
		assert_int_equal(l->perms, r->perms);
		if (set_ad)
			assert_int_equal(!!(l->info & VMEM_WINFO_AD_SET), r->ad_written);
		break;
	case REF_PF:
		assert_int_equal(l->error_code, r->error_code);
		assert_int_equal(l->level, r->level);
		assert_int_equal(l->entry, r->entry);
		if ((r->error_code & REF_PF_P) && !(r->error_code & REF_PF_RSVD))
			assert_int_equal(l->perms, r->perms);
		break;
	case REF_BAD_GPA:
		assert_int_equal(l->gpa, r->gpa);
		break;
	default:
		break;
	}
}

static uint64_t below(uint64_t n) { return rnd() % n; }
static int chance(unsigned pct) { return below(100) < pct; }

struct guest {
	uint8_t *ram;
	uint64_t base;     /* the RAM slot's guest-physical address (0: the window applies) */
	vmem_gmem *gm;
	vmem_mmu *mmu;
	unsigned levels;
	unsigned next;     /* next free table page */
	uint64_t root;     /* the PML4 (PML5) table: CR3 */
	uint64_t region[6];/* la of each 1-GByte region the lanes use */
	unsigned chunk[6][12]; /* the 2-MByte areas of each region the lanes use */
	unsigned nregion;
};

static uint64_t get64(const struct guest *g, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, g->ram + (gpa - g->base), 8);
	return v;
}

static void put64(struct guest *g, uint64_t gpa, uint64_t v) { memcpy(g->ram + (gpa - g->base), &v, 8); }

static uint64_t new_table(struct guest *g)
{
	assert_true(g->next < RAM_SIZE / 4096);
	return g->base + 4096ull * g->next++;
}

/* The flags of an entry that references a table or maps a page: mostly
 * usable, sometimes not (each miss is a fault or a slow-path lane). */
static uint64_t flags(int leaf)
{
	uint64_t f = VMEM_PTE_P;
	if (chance(4))
		f = 0; /* not present */
	if (chance(85))
		f |= VMEM_PTE_RW;
	if (chance(85))
		f |= VMEM_PTE_US;
	if (chance(70))
		f |= VMEM_PTE_A;
	if (leaf && chance(60))
		f |= VMEM_PTE_D;
	if (!leaf && chance(30))
		f |= VMEM_PTE_D; /* ignored above the leaf (SDM 4.5): Linux sets it */
	if (chance(15))
		f |= VMEM_PTE_XD;
	if (chance(3))
		f |= 1ull << 47; /* reserved above MAXPHYADDR 40 */
	return f;
}

/* The entry at index i of table t (made on first use): a table below it,
 * or at a leaf-capable level sometimes a large page. */
static uint64_t child(struct guest *g, uint64_t t, unsigned i, unsigned level)
{
	uint64_t e = get64(g, t + 8ull * i);
	if (e)
		return e;
	int large = (level == 3 && chance(8)) || (level == 2 && chance(25));
	if (level == 1 || large) {
		uint64_t frame = (rnd() & 0xffffff000ull) & ~((1ull << (12 + 9 * (level - 1))) - 1);
		e = frame | flags(1) | (large ? VMEM_PTE_PS : 0);
		if (large && chance(5))
			e |= 1ull << 13; /* reserved in a large page's address bits */
	} else if (chance(3)) {
		e = 0x40000000ull | flags(0); /* a table outside every slot */
	} else {
		e = new_table(g) | flags(0);
	}
	put64(g, t + 8ull * i, e);
	return e;
}

/* Build the tables on the way to la (never past an entry that ends the walk). */
static void map(struct guest *g, uint64_t root, uint64_t la)
{
	uint64_t t = root;
	for (unsigned level = g->levels; level >= 1; level--) {
		unsigned i = (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
		uint64_t e = child(g, t, i, level);
		if (level == 1 || (e & VMEM_PTE_PS) || !(e & VMEM_PTE_P))
			return;
		uint64_t next = e & 0xffffffffff000ull & ~(1ull << 47);
		if (next < g->base || next >= g->base + RAM_SIZE)
			return;
		t = next;
	}
}

static uint64_t canonical(uint64_t la, unsigned levels)
{
	unsigned sh = 64 - (levels == 5 ? 57 : 48);
	return (uint64_t)((int64_t)(la << sh) >> sh);
}

static void guest_new(struct guest *g, unsigned levels, uint64_t base, uint64_t *la)
{
	memset(g, 0, sizeof(*g));
	g->levels = levels;
	g->base = base;
	g->ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(g->ram);
	memset(g->ram, 0, RAM_SIZE);
	assert_int_equal(vmem_gmem_new(NULL, &g->gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(g->gm, base, RAM_SIZE, g->ram, 0), VMEM_OK);
	g->next = POOL_FIRST;
	uint64_t root = g->root = new_table(g);
	/* Regions: a few 1-GByte areas, some sharing their upper tables. */
	g->nregion = 2 + (unsigned)below(5);
	for (unsigned r = 0; r < g->nregion; r++) {
		uint64_t hi = r && chance(50) ? g->region[below(r)] >> 39 : rnd() >> 28;
		g->region[r] = canonical((hi << 39) | ((rnd() & 511) << 30), levels);
		if (r && chance(40)) /* the region beside another: they differ in bit 30 alone */
			g->region[r] = g->region[below(r)] ^ (1ull << 30);
		for (unsigned c = 0; c < 12; c++)
			g->chunk[r][c] = (unsigned)below(512);
	}
	for (unsigned i = 0; i < LANES; i++) {
		uint64_t a;
		if (chance(3))
			a = rnd(); /* mostly non-canonical */
		else if (i && chance(4)) /* non-canonical, with a mapped address's table indexes */
			a = la[below(i)] ^ (1ull << (levels == 5 ? 60 : 50));
		else {
			unsigned r = (unsigned)below(g->nregion);
			a = g->region[r] | (uint64_t)g->chunk[r][below(12)] << 21 | (rnd() & 0x1ffff8);
		}
		la[i] = a;
		if (a == canonical(a, levels) && chance(60))
			map(g, root, a);
	}
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = 0x80010001; /* PG, WP, PE */
	r.cr3 = root;
	r.cr4 = 0x20 | (levels == 5 ? 0x1000 : 0);
	r.efer = 0xd00; /* LME, LMA, NXE */
	r.maxphyaddr = 40;
	r.gbpages = true;
	assert_int_equal(vmem_mmu_new(NULL, &r, &g->mmu), VMEM_OK);
}

static void guest_free(struct guest *g)
{
	vmem_mmu_free(g->mmu);
	vmem_gmem_free(g->gm);
	free(g->ram);
}

/* One guest, every access type: the batch on the tables as built, then
 * the single walks in order on the same starting bytes. */
static void check_guest(unsigned levels, uint64_t base)
{
	static const unsigned accs[] = {
		VMEM_ACC_USER | VMEM_ACC_READ, VMEM_ACC_USER | VMEM_ACC_WRITE, VMEM_ACC_WRITE,
		VMEM_ACC_USER | VMEM_ACC_FETCH, VMEM_ACC_READ,
	};
	uint64_t la[LANES];
	struct guest g;
	guest_new(&g, levels, base, la);
	uint8_t *start = malloc(RAM_SIZE), *after = malloc(RAM_SIZE);
	struct refram rram = { malloc(RAM_SIZE), base };
	ref_mem rmem = { ref_read, ref_write, &rram };
	ref_cpu rcpu;
	memset(&rcpu, 0, sizeof(rcpu));
	rcpu.cr0 = REF_CR0_PG | REF_CR0_WP | 1;
	rcpu.cr3 = g.root;
	rcpu.cr4 = REF_CR4_PAE | (levels == 5 ? REF_CR4_LA57 : 0);
	rcpu.efer = REF_EFER_LMA | REF_EFER_NXE | (1ull << 8);
	rcpu.maxphyaddr = 40;
	rcpu.gbpages = true;
	assert_non_null(rram.buf);
	vmem_walk_result *rb = calloc(LANES, sizeof(*rb)), *rs = calloc(LANES, sizeof(*rs));
	assert_non_null(start);
	assert_non_null(after);
	assert_non_null(rb);
	assert_non_null(rs);
	memcpy(start, g.ram, RAM_SIZE);
	for (unsigned a = 0; a < sizeof(accs) / sizeof(accs[0]); a++) {
		for (unsigned noad = 0; noad < 2; noad++) {
			unsigned wf = noad ? VMEM_WALK_NO_AD : 0;
			memcpy(g.ram, start, RAM_SIZE);
			memset(rb, 0, LANES * sizeof(*rb));
			assert_int_equal(vmem_walk_batch(g.mmu, g.gm, la, LANES, accs[a], wf, rb), VMEM_OK);
			memcpy(after, g.ram, RAM_SIZE);
			/* The reference, lane by lane in order, on its own copy. */
			memcpy(rram.buf, start, RAM_SIZE);
			for (unsigned i = 0; i < LANES; i++) {
				ref_access ra = { la[i], (accs[a] & VMEM_ACC_WRITE) != 0, (accs[a] & VMEM_ACC_FETCH) != 0,
						  (accs[a] & VMEM_ACC_USER) != 0, false, false };
				ref_result rr;
				ref_walk(&rcpu, &rmem, &ra, !noad, &rr);
				expect_ref(&rb[i], &rr, !noad, i, la[i]);
			}
			assert_memory_equal(after, rram.buf, RAM_SIZE);
			memcpy(g.ram, start, RAM_SIZE);
			memset(rs, 0, LANES * sizeof(*rs));
			for (unsigned i = 0; i < LANES; i++)
				assert_int_equal(vmem_walk(g.mmu, g.gm, la[i], accs[a], wf, &rs[i]), VMEM_OK);
			for (unsigned i = 0; i < LANES; i++) {
				if (rs[i].status == VMEM_WALK_OK)
					seen_ok[rs[i].level]++;
				seen_pf += rs[i].status == VMEM_WALK_PF;
				seen_gp += rs[i].status == VMEM_WALK_GP;
				seen_bad += rs[i].status == VMEM_WALK_BAD_GPA;
				if (memcmp(&rb[i], &rs[i], sizeof(rb[i])))
					print_error("lane %u la %#llx acc %#x: batch status %u gpa %#llx pfec %#x, "
						    "single status %u gpa %#llx pfec %#x\n",
						    i, (unsigned long long)la[i], accs[a], rb[i].status,
						    (unsigned long long)rb[i].gpa, rb[i].error_code, rs[i].status,
						    (unsigned long long)rs[i].gpa, rs[i].error_code);
				assert_memory_equal(&rb[i], &rs[i], sizeof(rb[i]));
			}
			assert_memory_equal(after, g.ram, RAM_SIZE);
		}
	}
	free(start);
	free(after);
	free(rram.buf);
	free(rb);
	free(rs);
	guest_free(&g);
}

static void run(unsigned levels, uint64_t base, uint64_t seed)
{
	rng = seed;
	memset(seen_ok, 0, sizeof(seen_ok));
	seen_pf = seen_gp = seen_bad = 0;
	for (unsigned n = 0; n < GUESTS; n++)
		check_guest(levels, base);
	print_message("%u-level, RAM at %#llx: OK 4K %u, 2M %u, 1G %u; #PF %u; #GP %u; outside memory %u\n",
		      levels, (unsigned long long)base, seen_ok[1], seen_ok[2], seen_ok[3], seen_pf, seen_gp, seen_bad);
	for (unsigned l = 1; l <= 3; l++)
		assert_true(seen_ok[l] >= 100);
	assert_true(seen_pf >= 1000);
	assert_true(seen_gp >= 100);
	assert_true(seen_bad >= 100);
}

static void test_batch_4level_window(void **state)
{
	(void)state;
	run(4, 0, 0xba7c4);
}

static void test_batch_5level_window(void **state)
{
	(void)state;
	run(5, 0, 0xba7c5);
}

/* RAM not at guest-physical 0: no window, the batch over the region. */
static void test_batch_4level_region(void **state)
{
	(void)state;
	run(4, 0x200000, 0xba7c6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_4level_window),
		cmocka_unit_test(test_batch_5level_window),
		cmocka_unit_test(test_batch_4level_region),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
