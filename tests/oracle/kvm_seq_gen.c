/* kvm_seq_gen.c: random, seed-deterministic paging-op sequences whose outcomes the SDM fixes (invalidation discipline). */
#include "kvm_seq.h"

#include <stdlib.h>
#include <string.h>

#define P_BIT   (1ull << 0)
#define RW_BIT  (1ull << 1)
#define US_BIT  (1ull << 2)
#define PWT_BIT (1ull << 3)
#define PCD_BIT (1ull << 4)
#define A_BIT   (1ull << 5)
#define D_BIT   (1ull << 6)
#define PS_BIT  (1ull << 7)
#define G_BIT   (1ull << 8)
#define XD_BIT  (1ull << 63)
#define ADDR_MASK 0x000ffffffffff000ull /* bits 51:12 */

uint64_t ksq_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t ksq_data_word(uint64_t gpa)
{
	return 0xf4ull | ((gpa >> 3) << 8);
}

uint64_t ksq_marker(const ksq_seq *q, unsigned op)
{
	return 0xf4ull | ((uint64_t)op << 8) | ((q->seed & 0xffffff) << 24) | (0xa5ull << 56);
}

const char *ksq_op_name(unsigned t)
{
	static const char *const n[] = { "END", "WRITE64", "MOV_CR3", "INVLPG", "READ", "WRITE",
					 "FETCH", "UREAD", "UWRITE", "UFETCH" };
	return t < sizeof(n) / sizeof(n[0]) ? n[t] : "?";
}

bool ksq_op_is_access(unsigned t)
{
	return t >= KSQ_READ && t <= KSQ_UFETCH;
}

typedef struct gen {
	ksq_seq *q;
	uint64_t rng;
	unsigned char *mem;            /* model of the pool: initial contents + WRITE64s */
	bool is_table[KSQ_POOL_PAGES], is_root[KSQ_POOL_PAGES];
	uint64_t assigned[KSQ_POOL_PAGES][8]; /* entries the path builder set */
	bool dirty[KSQ_MAX_TARGETS];   /* translation may be stale: invalidate before use */
	uint64_t cr3;
	bool nxe, no_inval;
} gen;

static uint64_t rnd(gen *g, uint64_t n)
{
	return n ? ksq_rand(&g->rng) % n : 0;
}

static bool chance(gen *g, unsigned pct)
{
	return rnd(g, 100) < pct;
}

static uint64_t rd(const gen *g, uint64_t gpa)
{
	uint64_t v;
	memcpy(&v, g->mem + (gpa - g->q->pool), 8);
	return v;
}

static void wr(gen *g, uint64_t gpa, uint64_t v)
{
	memcpy(g->mem + (gpa - g->q->pool), &v, 8);
}

static uint64_t page_gpa(const gen *g, unsigned page)
{
	return g->q->pool + (uint64_t)page * 4096;
}

static unsigned pick_table(gen *g, bool allow_root)
{
	for (;;) {
		unsigned p = g->q->table[rnd(g, g->q->ntables)];
		if (allow_root || !g->is_root[p])
			return p;
	}
}

static unsigned pick_data(gen *g)
{
	for (;;) {
		unsigned p = (unsigned)rnd(g, KSQ_POOL_PAGES);
		if (!g->is_table[p])
			return p;
	}
}

/* A random entry for a table used at `level`. */
static uint64_t gen_entry(gen *g, unsigned level)
{
	unsigned r = (unsigned)rnd(g, 100);
	if (r < 6) /* not present: zero or junk */
		return chance(g, 50) ? 0 : ksq_rand(&g->rng) & ~P_BIT;

	uint64_t e = P_BIT;
	if (chance(g, 80)) e |= RW_BIT;
	if (chance(g, 75)) e |= US_BIT;
	if (chance(g, 10)) e |= PWT_BIT;
	if (chance(g, 10)) e |= PCD_BIT;
	if (chance(g, 50)) e |= A_BIT;
	if (chance(g, 40)) e |= D_BIT;
	if (chance(g, 20)) e |= G_BIT;
	e |= rnd(g, 8) << 9;                       /* ignored 11:9 */
	if (chance(g, 15)) e |= rnd(g, 1ull << 11) << 52; /* ignored 62:52 */
	if (g->nxe && chance(g, 25)) e |= XD_BIT;

	bool leaf2m = level == 2 && chance(g, 35);
	if (level == 1) {
		/* Never a root: a walk reading a root below level 4 could reach
		 * the harness through its slot-0 entry. */
		unsigned p = chance(g, 15) ? pick_table(g, false) : pick_data(g);
		e |= page_gpa(g, p);
		if (chance(g, 10)) e |= PS_BIT;    /* PAT for a 4K page */
	} else if (leaf2m) {
		e |= PS_BIT | (g->q->pool + (rnd(g, KSQ_POOL_SIZE >> 21) << 21));
		if (chance(g, 10)) e |= 1ull << 12; /* PAT */
	} else {
		e |= page_gpa(g, chance(g, 4) ? pick_data(g) : pick_table(g, false));
	}

	if (r < 11) { /* one reserved bit */
		switch (rnd(g, 4)) {
		case 0: e |= (1ull << (48 + rnd(g, 4))); break;            /* above MAXPHYADDR */
		case 1: if (level >= 3) { e |= PS_BIT; break; }            /* no 1G pages; PS in PML4E */
			/* fall through */
		case 2: if (leaf2m) { e |= (1ull << (13 + rnd(g, 8))); break; } /* 2M alignment */
			/* fall through */
		default: if (!g->nxe) e |= XD_BIT; else e |= 1ull << 50; break;
		}
	}
	return e;
}

/* The entries a walk of la reads in the model (ignoring rights and
 * reserved bits other than the address), and the address it lands on.
 * Returns true if it reaches a page. */
static bool mwalk(const gen *g, uint64_t cr3, uint64_t la, uint64_t path[4], unsigned *np,
		  uint64_t *gpa)
{
	uint64_t table = cr3 & ADDR_MASK;
	*np = 0;
	for (unsigned level = 4; level >= 1; level--) {
		unsigned idx = (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
		uint64_t ea = table + 8 * idx;
		if (ea < g->q->pool || ea >= g->q->pool + KSQ_POOL_SIZE)
			return false;
		path[(*np)++] = ea;
		uint64_t e = rd(g, ea);
		if (!(e & P_BIT) || (e & 0x000f000000000000ull))
			return false;
		if (level >= 3 && (e & PS_BIT))
			return false;
		if (level == 2 && (e & PS_BIT)) {
			*gpa = (e & ADDR_MASK & ~0x1fffffull) | (la & 0x1fffff);
			return true;
		}
		if (level == 1) {
			*gpa = (e & ADDR_MASK) | (la & 0xfff);
			return true;
		}
		table = e & ADDR_MASK;
	}
	return false;
}

static bool on_path(const gen *g, uint64_t la, uint64_t w)
{
	uint64_t path[4], gpa;
	unsigned np;
	mwalk(g, g->cr3, la, path, &np, &gpa);
	for (unsigned i = 0; i < np; i++)
		if (path[i] == w)
			return true;
	return false;
}

static void mark_dirty(gen *g, uint64_t w)
{
	for (unsigned t = 0; t < g->q->ntargets; t++)
		if (on_path(g, g->q->target[t], w))
			g->dirty[t] = true;
}

static bool in_pool(const gen *g, uint64_t gpa)
{
	return gpa >= g->q->pool && gpa < g->q->pool + KSQ_POOL_SIZE;
}

static bool in_table_page(const gen *g, uint64_t gpa)
{
	return in_pool(g, gpa) && g->is_table[(gpa - g->q->pool) >> 12];
}

static unsigned add_op(gen *g, unsigned type, uint64_t a, uint64_t b, uint64_t gpa)
{
	ksq_seq *q = g->q;
	q->op[q->nops] = (ksq_op){ .type = (uint8_t)type, .a = a, .b = b, .gpa = gpa };
	return q->nops++;
}

static void op_write64(gen *g, uint64_t w, uint64_t v)
{
	mark_dirty(g, w);
	wr(g, w, v);
	mark_dirty(g, w);
	add_op(g, KSQ_WRITE64, KSQ_ALIAS_LA + (w - g->q->pool), v, w);
}

static uint64_t random_cr3(gen *g)
{
	uint64_t cr3 = page_gpa(g, g->q->root[rnd(g, g->q->nroots)]);
	if (chance(g, 15)) cr3 |= PWT_BIT;
	if (chance(g, 15)) cr3 |= PCD_BIT;
	return cr3;
}

static void op_cr3(gen *g, uint64_t cr3)
{
	g->cr3 = cr3;
	memset(g->dirty, 0, sizeof(g->dirty));
	add_op(g, KSQ_MOV_CR3, cr3, 0, 0);
}

/* An access to target t; the invalidation it needs first. */
static void op_access(gen *g, unsigned t)
{
	ksq_seq *q = g->q;
	uint64_t la = q->target[t];
	if (g->dirty[t] && !g->no_inval) {
		if (chance(g, 85))
			add_op(g, KSQ_INVLPG, la, 0, 0);
		else
			op_cr3(g, g->cr3);
		g->dirty[t] = false;
		if (q->nops >= KSQ_MAX_OPS - 2)
			return;
	}
	bool user = ((la >> 39) & 511) != 256 && chance(g, 40);
	unsigned r = (unsigned)rnd(g, 100);
	unsigned type = r < 40 ? KSQ_READ : r < 75 ? KSQ_WRITE : KSQ_FETCH;
	uint64_t path[4], gpa = 0;
	unsigned np;
	bool lands = mwalk(g, g->cr3, la, path, &np, &gpa);
	if (type == KSQ_FETCH && lands && in_table_page(g, gpa))
		type = KSQ_READ; /* entries are not code */
	/* Nor near the end of a page: fetching the instruction there may use
	 * (and set the accessed flag of) the next page's translation, which
	 * the SDM allows for prefetch; KVM reads 15 bytes to decode the HLT
	 * whose #GP ends a CPL 3 fetch. */
	if (type == KSQ_FETCH && (la & 0xfff) > 0x1000 - 32)
		type = KSQ_READ;
	if (user)
		type += KSQ_UREAD - KSQ_READ;
	unsigned i = add_op(g, type, la, 0, lands ? gpa : 0);
	q->op[i].b = ksq_marker(q, i);
	if ((type == KSQ_WRITE || type == KSQ_UWRITE) && lands && in_table_page(g, gpa)) {
		/* The marker may land on a paging-structure entry (making it not
		 * present); the model keeps the old value, a superset of paths. */
		mark_dirty(g, gpa & ~7ull);
	}
}

/* An entry to rewrite: mostly one a target's walk reads now. */
static void op_rewrite(gen *g)
{
	ksq_seq *q = g->q;
	uint64_t w = 0;
	unsigned level = 0;
	if (chance(g, 75)) {
		uint64_t path[4], gpa;
		unsigned np;
		mwalk(g, g->cr3, q->target[rnd(g, q->ntargets)], path, &np, &gpa);
		if (np) {
			unsigned k = (unsigned)rnd(g, np);
			w = path[k];
			level = 4 - k;
		}
	}
	if (!w || !in_table_page(g, w)) {
		unsigned p = pick_table(g, true);
		w = page_gpa(g, p) + 8 * rnd(g, 512);
		level = 1 + (unsigned)rnd(g, 4);
		if (g->is_root[p])
			level = 4;
	}
	if (g->is_root[(w - q->pool) >> 12] && (w & 0xfff) == 0)
		return; /* the harness's PML4E */
	uint64_t v = rd(g, w);
	if (chance(g, 50)) {
		static const uint64_t bits[] = { P_BIT, RW_BIT, US_BIT, A_BIT, D_BIT, A_BIT, RW_BIT, US_BIT };
		switch (rnd(g, 5)) {
		case 0: case 1: case 2:
			v ^= bits[rnd(g, 8)];
			break;
		case 3:
			if (g->nxe || chance(g, 20))
				v ^= XD_BIT;
			else
				v ^= A_BIT | D_BIT;
			break;
		default: /* repoint at another table */
			if (!(v & PS_BIT) && level > 1)
				v = (v & ~ADDR_MASK) | page_gpa(g, pick_table(g, false));
			else
				v ^= P_BIT;
			break;
		}
	} else {
		v = gen_entry(g, level);
	}
	/* A junk not-present entry made present: point it into the pool. */
	if ((v & P_BIT) && !(v & 0x000f000000000000ull) && !in_pool(g, v & ADDR_MASK))
		v = (v & ~ADDR_MASK) | page_gpa(g, pick_table(g, false));
	op_write64(g, w, v);
}

static void build_tables(gen *g, unsigned char *pool)
{
	ksq_seq *q = g->q;
	for (uint64_t off = 0; off < KSQ_POOL_SIZE; off += 8) {
		uint64_t w = ksq_data_word(q->pool + off);
		memcpy(pool + off, &w, 8);
	}
	g->mem = pool;
	/* Junk in every table (entries no path uses at first, still in the pool). */
	for (unsigned t = 0; t < q->ntables; t++)
		for (unsigned i = 0; i < 512; i++)
			wr(g, page_gpa(g, q->table[t]) + 8 * i, gen_entry(g, 1 + (unsigned)rnd(g, 4)));
	for (unsigned r = 0; r < q->nroots; r++)
		wr(g, page_gpa(g, q->root[r]), KSQ_PML4E);
	/* Paths for every target under every root; roots share tables. */
	for (unsigned r = 0; r < q->nroots; r++)
		for (unsigned t = 0; t < q->ntargets; t++) {
			uint64_t la = q->target[t];
			uint64_t table = page_gpa(g, q->root[r]);
			for (unsigned level = 4; level >= 1; level--) {
				unsigned idx = (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
				unsigned page = (unsigned)((table - q->pool) >> 12);
				uint64_t ea = table + 8 * idx;
				if (!(g->assigned[page][idx / 64] & (1ull << (idx % 64)))) {
					uint64_t e = gen_entry(g, level);
					if (level == 4 && r > 0 && chance(g, 50))
						e = rd(g, page_gpa(g, q->root[0]) + 8 * idx);
					wr(g, ea, e);
					g->assigned[page][idx / 64] |= 1ull << (idx % 64);
				}
				uint64_t e = rd(g, ea);
				if (!(e & P_BIT) || (e & 0x000f000000000000ull) || level == 1 ||
				    (e & PS_BIT))
					break;
				table = e & ADDR_MASK;
				if (table < q->pool || table >= q->pool + KSQ_POOL_SIZE ||
				    !g->is_table[(table - q->pool) >> 12])
					break;
			}
		}
}

static uint64_t canon(uint64_t la)
{
	return la & (1ull << 47) ? la | 0xffff000000000000ull : la;
}

static void pick_set(gen *g, unsigned *set, unsigned n, unsigned lo)
{
	for (unsigned i = 0; i < n; i++)
		set[i] = lo + (unsigned)rnd(g, 512 - lo);
}

static void free_bufs(ksq_seq *q)
{
	free(q->init);
	free(q->harness);
	q->init = q->harness = NULL;
}

void ksq_seq_free(ksq_seq *q)
{
	free_bufs(q);
}

int ksq_seq_gen(ksq_seq *q, uint64_t seed, unsigned nops, unsigned flags)
{
	memset(q, 0, sizeof(*q));
	gen *g = calloc(1, sizeof(*g));
	q->init = aligned_alloc(4096, KSQ_POOL_SIZE);
	q->harness = aligned_alloc(4096, KSQ_HARNESS_SIZE);
	if (!g || !q->init || !q->harness) {
		free(g);
		free_bufs(q);
		return -1;
	}
	g->q = q;
	g->rng = seed;
	g->no_inval = flags & KSQ_GEN_NO_INVAL;
	q->seed = seed;
	bool smoke = nops == 0;

	g->nxe = smoke || chance(g, 75);
	q->cr0 = 0x80000033ull | (chance(g, 70) ? (1ull << 16) : 0); /* PE|MP|ET|NE|PG, WP */
	q->cr4 = 0x20 | (chance(g, 50) ? 0x10 : 0);                   /* PAE, PSE (ignored) */
	q->efer = 0x500 | (g->nxe ? 0x800 : 0);                       /* LME|LMA, NXE */
	/* Pool: 2 MiB aligned below 2^48, a quarter of them below 4 GiB. */
	uint64_t lim = chance(g, 25) ? (1ull << 32) : (1ull << KSQ_MAXPHYADDR);
	q->pool = (2 + rnd(g, (lim >> 21) - 4)) << 21;

	q->ntables = smoke ? 4 : 12 + (unsigned)rnd(g, KSQ_MAX_TABLES - 11);
	for (unsigned i = 0; i < q->ntables; i++) {
		unsigned p;
		do
			p = (unsigned)rnd(g, KSQ_POOL_PAGES);
		while (g->is_table[p]);
		g->is_table[p] = true;
		q->table[i] = (uint16_t)p;
	}
	q->nroots = smoke ? 1 : 1 + (unsigned)rnd(g, KSQ_MAX_ROOTS);
	for (unsigned i = 0; i < q->nroots; i++) {
		q->root[i] = q->table[i];
		g->is_root[q->table[i]] = true;
	}

	if (smoke) {
		q->ntargets = 1;
		q->target[0] = (1ull << 39) | (2ull << 30) | (3ull << 21) | (4ull << 12) | 8;
	} else {
		unsigned s4[3], s3[3], s2[3], s1[4];
		unsigned n4 = 1 + (unsigned)rnd(g, 3), n3 = 1 + (unsigned)rnd(g, 3);
		unsigned n2 = 1 + (unsigned)rnd(g, 3), n1 = 1 + (unsigned)rnd(g, 4);
		pick_set(g, s4, n4, 1);
		if (chance(g, 20))
			s4[0] = 256; /* CPL 0 only here */
		pick_set(g, s3, n3, 0);
		pick_set(g, s2, n2, 0);
		pick_set(g, s1, n1, 0);
		unsigned want = 6 + (unsigned)rnd(g, KSQ_MAX_TARGETS - 5);
		for (unsigned k = 0; k < 4 * want && q->ntargets < want; k++) {
			uint64_t la = ((uint64_t)s4[rnd(g, n4)] << 39) | ((uint64_t)s3[rnd(g, n3)] << 30) |
				      ((uint64_t)s2[rnd(g, n2)] << 21) | ((uint64_t)s1[rnd(g, n1)] << 12) |
				      (8 * (1 + rnd(g, 511)));
			la = canon(la);
			bool dup = false;
			for (unsigned j = 0; j < q->ntargets; j++)
				dup |= q->target[j] == la;
			if (!dup)
				q->target[q->ntargets++] = la;
		}
	}

	build_tables(g, q->init);
	q->cr3 = g->cr3 = page_gpa(g, q->root[0]);
	ksq_harness_build(q->harness, q->pool);

	if (smoke) {
		/* One good path to a data page, a CPL 0 read of it. */
		uint64_t t = q->target[0], pg[4];
		for (unsigned i = 0; i < 4; i++)
			pg[i] = page_gpa(g, q->table[i]);
		wr(g, pg[0] + 8 * 1, pg[1] | 0x27);
		wr(g, pg[1] + 8 * 2, pg[2] | 0x27);
		wr(g, pg[2] + 8 * 3, pg[3] | 0x27);
		uint64_t data = page_gpa(g, pick_data(g));
		wr(g, pg[3] + 8 * 4, data | 0x67);
		add_op(g, KSQ_READ, t, 0, data + 8);
		free(g);
		return 0;
	}

	/* From here on the model is a private copy: q->init stays the start. */
	g->mem = malloc(KSQ_POOL_SIZE);
	if (!g->mem) {
		free(g);
		free_bufs(q);
		return -1;
	}
	memcpy(g->mem, q->init, KSQ_POOL_SIZE);
	if (nops > KSQ_MAX_OPS - 8)
		nops = KSQ_MAX_OPS - 8;
	while (q->nops < nops) {
		unsigned r = (unsigned)rnd(g, 100);
		unsigned t = (unsigned)rnd(g, q->ntargets);
		if (r < 50) {
			op_access(g, t);
		} else if (r < 76) {
			op_rewrite(g);
		} else if (r < 84) {
			if (q->nops + 1 < nops) { /* rewrite then use at once */
				op_rewrite(g);
				if (q->nops < nops)
					op_access(g, t);
			}
		} else if (r < 92) {
			op_cr3(g, random_cr3(g));
		} else {
			uint64_t la = chance(g, 75) ? q->target[t] :
				      canon((1 + rnd(g, 511)) << 39 | rnd(g, 1ull << 39));
			if (la == q->target[t])
				g->dirty[t] = false;
			add_op(g, KSQ_INVLPG, la, 0, 0);
		}
	}
	free(g->mem);
	free(g);
	return 0;
}
