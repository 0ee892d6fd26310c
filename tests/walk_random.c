/* walk_random: random differential walks over every paging mode (tables biased toward valid-but-interesting entries), library vs reference. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_diff.h"
#include "ref/ref_walk.h"

/* Usage: walk_random [--count N] [--seed S] [--verbose]
 * Each of the N cases builds one random guest (registers + tables along a
 * random address) and compares several accesses through it. */
#define DEFAULT_COUNT 5000u
#define DEFAULT_SEED  0x5eed1234ull
#define ACCESSES_PER_CASE 4
#define POOL_PAGES 24

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static bool chance(unsigned percent) { return below(100) < percent; }

enum mode { M_NONE, M_32, M_PAE, M_4L, M_5L };
static const unsigned mode_weight[] = { 4, 22, 22, 27, 25 };

static enum mode pick_mode(void)
{
	unsigned r = (unsigned)below(100), acc = 0;
	for (unsigned m = 0; m < 5; m++) {
		acc += mode_weight[m];
		if (r < acc)
			return (enum mode)m;
	}
	return M_4L;
}

/* The guest being built. */
struct guest {
	enum mode mode;
	ref_cpu cpu;
	unsigned maxphy;
	uint64_t pool[POOL_PAGES]; /* table pages, all in the diff_env */
	unsigned npool;
	uint64_t dense_base;       /* dense layout: tables come from POOL_PAGES pages from here */
	bool dense;
};

/* A random page address the tables can point at: below 4 GiB for 32-bit
 * structures (and the PAE PDPT), else anywhere below MAXPHYADDR. */
static uint64_t random_page(const struct guest *g, bool low)
{
	unsigned bits = (low || g->mode == M_32 || chance(40)) ? 32 : g->maxphy;
	if (chance(30))
		bits = 24;                                 /* dense: more sharing */
	return below(1ull << (bits - 12)) << 12;
}

static uint64_t table_page(struct guest *g, diff_env *env, bool low)
{
	if (g->dense)                                  /* one contiguous block, added in order */
		return g->dense_base + (below(POOL_PAGES) << 12);
	/* Reuse a page now and then: shared and recursive tables. */
	if (g->npool && chance(10)) {
		uint64_t p = g->pool[below(g->npool)];
		if (!low || p < (1ull << 32))
			return p;
	}
	for (int tries = 0; tries < 64 && g->npool < POOL_PAGES; tries++) {
		uint64_t p = random_page(g, low);
		if (diff_env_add_page(env, p) >= 0) {
			g->pool[g->npool++] = p;
			return p;
		}
	}
	return g->npool ? g->pool[0] : 0;
}

/* Bits worth flipping: reserved ones in some mode, boundaries around MAXPHYADDR. */
static uint64_t interesting_bit(const struct guest *g)
{
	static const unsigned fixed[] = { 1, 2, 5, 6, 7, 8, 12, 13, 16, 20, 21, 22, 29, 30,
					  31, 32, 39, 51, 52, 58, 59, 62, 63 };
	switch (below(4)) {
	case 0:
		return 1ull << g->maxphy;                  /* first reserved address bit (or 52) */
	case 1:
		return 1ull << (g->maxphy - 1);            /* last legal address bit */
	case 2:
		return 1ull << below(64);
	default:
		return 1ull << fixed[below(sizeof(fixed) / sizeof(fixed[0]))];
	}
}

/* Random flags: present most of the time, rights mostly granted. */
static uint64_t random_flags(const struct guest *g, bool wide)
{
	uint64_t e = 0;
	if (chance(93))
		e |= 1;                                    /* P */
	if (chance(75))
		e |= 2;                                    /* R/W */
	if (chance(70))
		e |= 4;                                    /* U/S */
	e |= rnd() & 0x18;                             /* PWT, PCD */
	if (chance(50))
		e |= 0x20;                                 /* A */
	if (chance(40))
		e |= 0x40;                                 /* D */
	if (chance(30))
		e |= 0x100;                                /* G */
	e |= rnd() & 0xe00;                            /* ignored 11:9 */
	if (wide) {
		if (chance(20))
			e |= 1ull << 63;                       /* XD */
		if (g->mode >= M_4L && chance(50))
			e |= (rnd() & 0x7ffull) << 52;         /* ignored / protection key */
	}
	if (chance(12))
		e ^= interesting_bit(g);
	if (!wide)
		e &= 0xffffffffull;
	return e;
}

static uint64_t mask_bits(unsigned hi, unsigned lo)
{
	return (hi >= 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
}

/* A random linear address for the mode (occasionally illegal). */
static uint64_t random_la(const struct guest *g)
{
	uint64_t la = rnd();
	switch (g->mode) {
	case M_NONE:
	case M_32:
	case M_PAE:
		return chance(3) ? la : (la & 0xffffffffull);
	case M_4L:
	case M_5L: {
		unsigned w = g->mode == M_5L ? 57 : 48;
		if (chance(5))
			return la;                             /* almost surely non-canonical */
		la &= mask_bits(w - 1, 0);
		if (la & (1ull << (w - 1)))
			la |= mask_bits(63, w);
		return la;
	}
	}
	return la;
}

/* Lay down the entries along la's path, biased so the walk goes deep. */
static void build_path(struct guest *g, diff_env *env, uint64_t la)
{
	ref_cpu *c = &g->cpu;
	unsigned m = g->maxphy;
	switch (g->mode) {
	case M_NONE:
		return;
	case M_32: {
		uint64_t pd = table_page(g, env, true);
		c->cr3 = pd | (rnd() & 0x18);
		uint64_t pde = random_flags(g, false);
		bool big = (c->cr4 & REF_CR4_PSE) && chance(40);
		if (big) {
			pde |= 0x80;
			pde = (pde & ~0xffc00000ull) | (rnd() & 0xffc00000ull);
			pde = (pde & ~0x1fe000ull) | (chance(60) ? 0 : (rnd() & 0x1fe000ull)); /* PSE-36 high bits */
			if (chance(30))
				pde &= ~0x3fe000ull;
		} else {
			if (chance(20))
				pde |= 0x80;                       /* PS: ignored without CR4.PSE */
			pde = (pde & 0xfff) | (chance(5) ? rnd() & 0xfffff000ull : table_page(g, env, true));
			if (c->cr4 & REF_CR4_PSE)   /* PS here would make a 4M page */
				pde &= ~0x80ull;
		}
		diff_env_store(env, pd + ((la >> 22) & 0x3ff) * 4, 4, pde);
		if (pde & 0x80 && (c->cr4 & REF_CR4_PSE))
			return;
		uint64_t pt = pde & 0xfffff000ull;
		if (!diff_env_ptr(env, pt))
			return;
		uint64_t pte = (random_flags(g, false) & 0xfff) | (rnd() & 0xfffff000ull);
		diff_env_store(env, pt + ((la >> 12) & 0x3ff) * 4, 4, pte);
		return;
	}
	case M_PAE: {
		uint64_t pdpt = table_page(g, env, true);
		unsigned off = (unsigned)below(128) * 32;    /* CR3[11:5] picks a 32-byte PDPT */
		c->cr3 = pdpt | off | (rnd() & 0x18);
		for (unsigned i = 0; i < 4; i++) {
			uint64_t v = chance(85) ? 1 : 0;
			v |= rnd() & 0x18;                         /* PWT, PCD */
			v |= rnd() & 0xe00;
			v |= table_page(g, env, false) & mask_bits(m - 1, 12);
			if (chance(10))
				v ^= interesting_bit(g);
			c->pdpte[i] = v;
			diff_env_store(env, pdpt + off + 8 * i, 8, v);
		}
		uint64_t pdpte = c->pdpte[(la >> 30) & 3];
		uint64_t pd = pdpte & mask_bits(m - 1, 12);
		if (!diff_env_ptr(env, pd))
			return;
		uint64_t pde = random_flags(g, true);
		bool big = chance(35);
		if (big)
			pde = (pde | 0x80) | (rnd() & mask_bits(m - 1, 21)) | (chance(85) ? 0 : (rnd() & 0x1fe000));
		else
			pde = (pde & ~0x80ull) | table_page(g, env, false);
		diff_env_store(env, pd + ((la >> 21) & 0x1ff) * 8, 8, pde);
		if (big || !(pde & 1))
			return;
		uint64_t pt = pde & mask_bits(m - 1, 12);
		if (!diff_env_ptr(env, pt))
			return;
		uint64_t pte = random_flags(g, true) | (rnd() & mask_bits(m - 1, 12));
		diff_env_store(env, pt + ((la >> 12) & 0x1ff) * 8, 8, pte);
		return;
	}
	case M_4L:
	case M_5L: {
		uint64_t table = table_page(g, env, false);
		c->cr3 = table | (rnd() & 0x18);
		for (int level = g->mode == M_5L ? 5 : 4; level >= 1; level--) {
			unsigned shift = 12 + 9 * (unsigned)(level - 1);
			uint64_t e = random_flags(g, true);
			bool big = (level == 2 && chance(30)) || (level == 3 && chance(25)) ||
				   (level >= 4 && chance(3));
			if (big && level > 1) {
				e |= 0x80;
				e |= rnd() & mask_bits(m - 1, shift);
				if (chance(15))
					e |= 1ull << (chance(40) ? 13 : 13 + below(shift - 13)); /* one misaligned bit */
				else if (chance(5))
					e |= rnd() & mask_bits(shift - 1, 13);
			} else if (level == 1) {
				e |= rnd() & mask_bits(m - 1, 12);
			} else {
				e &= ~0x80ull;
				e |= table_page(g, env, false);
			}
			uint64_t at = table + ((la >> shift) & 0x1ff) * 8;
			diff_env_store(env, at, 8, e);
			if (big || level == 1 || !(e & 1))
				return;
			table = e & mask_bits(m - 1, 12);
			if (!diff_env_ptr(env, table))
				return;
		}
		return;
	}
	}
}

static void random_regs(struct guest *g)
{
	static const unsigned maxphys[] = { 32, 36, 39, 40, 41, 42, 46, 48, 52 };
	ref_cpu *c = &g->cpu;
	memset(c, 0, sizeof(*c));
	g->maxphy = chance(70) ? maxphys[below(sizeof(maxphys) / sizeof(maxphys[0]))]
			       : 32 + (unsigned)below(21);
	c->maxphyaddr = g->maxphy;
	c->gbpages = chance(70);
	c->cr0 = 0x11 | (chance(70) ? REF_CR0_WP : 0);
	if (g->mode != M_NONE)
		c->cr0 |= REF_CR0_PG;
	c->cr4 = (chance(50) ? REF_CR4_PSE : 0) | (chance(40) ? REF_CR4_SMEP : 0) |
		 (chance(40) ? REF_CR4_SMAP : 0) | (chance(30) ? (1ull << 7) : 0); /* PGE */
	if (g->mode >= M_PAE)
		c->cr4 |= REF_CR4_PAE;
	if (g->mode >= M_4L)
		c->efer |= 0x500;                          /* LME | LMA */
	if (chance(g->mode >= M_4L ? 40 : 20))
		c->cr4 |= REF_CR4_PKE;                     /* no effect outside IA-32e paging */
	if (g->mode == M_5L)
		c->cr4 |= REF_CR4_LA57;
	if (chance(60))
		c->efer |= REF_EFER_NXE;
	c->pkru = chance(40) ? 0 : (uint32_t)rnd();
}

static void random_access(ref_access *a, uint64_t la)
{
	memset(a, 0, sizeof(*a));
	a->la = la;
	unsigned t = (unsigned)below(3);
	a->write = t == 1;
	a->fetch = t == 2;
	if (chance(1))
		a->write = a->fetch = true;                /* not an access: refused, nothing changes */
	a->cpl3 = chance(50);
	a->implicit = !a->fetch && chance(12);
	a->ac = chance(30);
}

int main(int argc, char **argv)
{
	unsigned long long count = DEFAULT_COUNT, seed = DEFAULT_SEED;
	bool verbose = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else {
			fprintf(stderr, "usage: %s [--count N] [--seed S] [--verbose]\n", argv[0]);
			return 2;
		}
	}
	rng_state = seed;

	diff_env env;
	if (!diff_env_init(&env))
		return 2;
	unsigned long long pass = 0, fail = 0;
	unsigned long long by_status[5][5] = { { 0 } }; /* [mode][status] */
	unsigned long long by_size[5] = { 0 };           /* OK: 4K, 2M, 4M, 1G, other */
	char why[8192];
	for (unsigned long long n = 0; n < count; n++) {
		struct guest g;
		memset(&g, 0, sizeof(g));
		g.mode = pick_mode();
		random_regs(&g);
		diff_env_reset(&env);
		env.miss_zero = chance(85);
		env.coalesce = chance(60);
		g.dense = chance(40);
		if (g.dense) {
			g.dense_base = random_page(&g, true) & ~0xffffull;
			for (unsigned p = 0; p < POOL_PAGES; p++)
				diff_env_add_page(&env, g.dense_base + ((uint64_t)p << 12));
		}
		uint64_t la = random_la(&g);
		build_path(&g, &env, la);
		for (unsigned k = 0; k < ACCESSES_PER_CASE; k++) {
			ref_access a;
			/* Mostly the built address again (A/D already set), sometimes a neighbour. */
			uint64_t l = la;
			if (k && chance(30))
				l = la ^ (rnd() & 0x3fffff);
			random_access(&a, l);
			unsigned flags = (chance(10) ? DIFF_NO_AD : 0) | (chance(25) ? DIFF_BATCH : 0) |
					 (chance(45) ? DIFF_NO_TRACE : 0) |
					 (chance(50) ? DIFF_LOAD_PDPTES : 0) | (chance(20) ? DIFF_SET_REGS : 0);
			ref_result r;
			if (diff_run(&env, &g.cpu, &a, flags, why, sizeof(why), &r)) {
				pass++;
				by_status[g.mode][r.status]++;
				if (r.status == REF_OK)
					by_size[r.page_size == 1u << 12 ? 0 : r.page_size == 1u << 21 ? 1 :
						r.page_size == 1u << 22 ? 2 : r.page_size == 1u << 30 ? 3 : 4]++;
			} else {
				fail++;
				if (fail <= 20 || verbose)
					printf("case %llu access %u (seed %#llx):\n%s", n, k, seed, why);
			}
		}
	}
	diff_env_fini(&env);
	static const char *const names[] = { "none", "32-bit", "PAE", "4-level", "5-level" };
	for (unsigned m = 0; m < 5; m++)
		printf("%-8s ok %llu, page_fault %llu, gp %llu, bad_gpa %llu, inval %llu\n", names[m],
		       by_status[m][0], by_status[m][1], by_status[m][2], by_status[m][3], by_status[m][4]);
	printf("ok by page size: 4K %llu, 2M %llu, 4M %llu, 1G %llu, other %llu\n",
	       by_size[0], by_size[1], by_size[2], by_size[3], by_size[4]);
	printf("%llu passed, %llu failed\n", pass, fail);
	return fail || pass == 0 ? 1 : 0;
}
