/* shadow_seq: the random guest-program generator (several address spaces in any paging mode, then table writes, accesses, CR3 switches, INVLPG). */
#include "shadow_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/gmem.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

/* Slot 0: 2 MiB of RAM holding tables (pages 256..383) and data; a 2-MiB
 * guest page at 0 therefore maps tables too. Slot 1 read-only, slot 2 no-exec. */
const seq_slot seq_slots[SEQ_SLOTS] = {
	{ 0x000000, 0x200000, 0 },
	{ 0x200000, 0x010000, VMEM_SLOT_READONLY },
	{ 0x210000, 0x010000, VMEM_SLOT_NOEXEC },
};
#define POOL_FIRST 256u
#define POOL_PAGES 128u
#define NAS 3          /* address spaces */
#define NREGIONS 4     /* linear regions per address space */
#define REGION_PAGES 4
#define MAX_ENTRIES 256 /* entries the generator wrote (targets of table writes) */

struct rng {
	uint64_t s;
	const uint8_t *f;
	size_t flen, fpos;
};

static uint64_t rnd(struct rng *r)
{
	if (r->fpos + 4 <= r->flen) {
		/* Fuzz bytes first: 4 per draw, mixed so that every bit matters. */
		uint32_t v;
		memcpy(&v, r->f + r->fpos, 4);
		r->fpos += 4;
		r->s ^= v;
	}
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
static uint64_t below(struct rng *r, uint64_t n) { return n ? rnd(r) % n : 0; }
static bool chance(struct rng *r, unsigned pct) { return below(r, 100) < pct; }

struct aspace {
	vmem_regs regs;
	vmem_mode mode;
	uint64_t la[NREGIONS];
};

struct gen {
	struct rng r;
	seq *s;
	unsigned host_levels;
	unsigned next_pool;
	struct aspace as[NAS];
	uint64_t ent_gpa[MAX_ENTRIES]; /* entries written, with their format */
	uint8_t ent_size[MAX_ENTRIES];
	uint64_t ent_orig[MAX_ENTRIES]; /* the value first written */
	unsigned nent;
	uint8_t *img[SEQ_SLOTS];       /* the generator's picture of memory */
};

static uint8_t *mem_at(struct gen *g, uint64_t gpa)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		if (gpa - seq_slots[i].gpa < seq_slots[i].size)
			return g->img[i] + (gpa - seq_slots[i].gpa);
	return NULL;
}

static uint64_t rd(struct gen *g, uint64_t gpa, unsigned size)
{
	uint64_t v = 0;
	memcpy(&v, mem_at(g, gpa), size);
	return v;
}

static void wr(struct gen *g, uint64_t gpa, unsigned size, uint64_t v)
{
	memcpy(mem_at(g, gpa), &v, size);
	if (g->nent < MAX_ENTRIES) {
		g->ent_gpa[g->nent] = gpa;
		g->ent_orig[g->nent] = v;
		g->ent_size[g->nent++] = (uint8_t)size;
	}
}

static uint64_t new_table(struct gen *g)
{
	if (g->next_pool < POOL_PAGES)
		return (uint64_t)(POOL_FIRST + g->next_pool++) << 12;
	return (uint64_t)(POOL_FIRST + below(&g->r, POOL_PAGES)) << 12; /* out of pages: share one */
}

/* A frame for a leaf: mostly data in RAM, sometimes a table, read-only or
 * no-exec memory, or a hole. */
static uint64_t data_frame(struct gen *g)
{
	unsigned k = (unsigned)below(&g->r, 100);
	if (k < 55)
		return (1 + below(&g->r, 40)) << 12;                     /* slot 0 data */
	if (k < 65)
		return (uint64_t)(POOL_FIRST + below(&g->r, g->next_pool + 1)) << 12; /* a table */
	if (k < 77)
		return seq_slots[1].gpa + (below(&g->r, 16) << 12);
	if (k < 89)
		return seq_slots[2].gpa + (below(&g->r, 16) << 12);
	return 0x40000000ull + (below(&g->r, 64) << 12);            /* hole */
}

static uint64_t leaf_flags(struct gen *g, const struct aspace *a)
{
	uint64_t f = 0;
	f |= chance(&g->r, 97) ? VMEM_PTE_P : 0;
	f |= chance(&g->r, 70) ? VMEM_PTE_RW : 0;
	f |= chance(&g->r, 75) ? VMEM_PTE_US : 0;
	f |= chance(&g->r, 40) ? VMEM_PTE_A : 0;
	f |= chance(&g->r, 30) ? VMEM_PTE_D : 0;
	f |= chance(&g->r, 20) ? VMEM_PTE_G : 0;
	if (a->mode >= VMEM_MODE_PAE && chance(&g->r, 20))
		f |= VMEM_PTE_XD;
	if (a->mode >= VMEM_MODE_4LEVEL && chance(&g->r, 30))
		f |= below(&g->r, 16) << VMEM_PTE_PKEY_SHIFT;
	return f;
}

static uint64_t dir_flags(struct gen *g, const struct aspace *a)
{
	uint64_t f = VMEM_PTE_P;
	f |= chance(&g->r, 95) ? VMEM_PTE_RW : 0;
	f |= chance(&g->r, 95) ? VMEM_PTE_US : 0;
	f |= chance(&g->r, 40) ? VMEM_PTE_A : 0;
	if (a->mode >= VMEM_MODE_PAE && chance(&g->r, 4))
		f |= VMEM_PTE_XD;
	return f;
}

/* Map la in address space a: create missing tables along the way, then a
 * leaf (a large page now and then). */
static void map_page(struct gen *g, struct aspace *a, uint64_t la)
{
	unsigned esz = a->mode == VMEM_MODE_32BIT ? 4 : 8;
	unsigned bits = a->mode == VMEM_MODE_32BIT ? 10 : 9;
	unsigned top = a->mode == VMEM_MODE_32BIT ? 2 : a->mode == VMEM_MODE_PAE ? 3 :
		       a->mode == VMEM_MODE_4LEVEL ? 4 : 5;
	uint64_t table = a->mode == VMEM_MODE_PAE ? a->regs.cr3 & 0xffffffe0ull : a->regs.cr3 & ~0xfffull;
	for (unsigned L = top; L >= 1; L--) {
		unsigned shift = 12 + bits * (L - 1);
		unsigned idx = a->mode == VMEM_MODE_PAE && L == 3 ? (unsigned)(la >> 30) & 3 :
			       (unsigned)(la >> shift) & ((1u << bits) - 1);
		uint64_t egpa = table + (uint64_t)idx * esz;
		uint64_t e = rd(g, egpa, esz);
		if (e & VMEM_PTE_P) {
			if (L == 1 || (e & VMEM_PTE_PS))
				return; /* already mapped */
			table = e & (esz == 4 ? 0xfffff000ull : 0x000ffffffffff000ull);
			continue;
		}
		bool large_ok = (L == 2 && (a->mode != VMEM_MODE_32BIT || (a->regs.cr4 & VMEM_CR4_PSE))) ||
				(L == 3 && a->mode >= VMEM_MODE_4LEVEL);
		if (L == 1 || (large_ok && chance(&g->r, 8))) {
			uint64_t f = leaf_flags(g, a);
			uint64_t frame = data_frame(g);
			if (L > 1) {
				f |= VMEM_PTE_PS;
				frame = L == 3 ? 0 : (chance(&g->r, 70) ? 0 : 0x200000ull);
				if (a->mode == VMEM_MODE_32BIT)
					frame &= ~0x3fffffull; /* 4-MiB page at 0 */
			}
			wr(g, egpa, esz, frame | f);
			return;
		}
		uint64_t t = new_table(g);
		uint64_t f = a->mode == VMEM_MODE_PAE && L == 3 ? VMEM_PTE_P : dir_flags(g, a);
		wr(g, egpa, esz, t | f);
		table = t;
	}
}

static uint64_t random_la(struct gen *g, const struct aspace *a)
{
	switch (a->mode) {
	case VMEM_MODE_NONE:
		return chance(&g->r, 80) ? below(&g->r, 0x220) << 12 : 0x40000000ull + (below(&g->r, 16) << 12);
	case VMEM_MODE_32BIT:
	case VMEM_MODE_PAE:
		return (below(&g->r, 1u << 20) << 12) & 0xffffffffull;
	default: {
		unsigned vb = a->mode == VMEM_MODE_5LEVEL ? 57 : 48;
		uint64_t la = below(&g->r, 1ull << (vb - 12)) << 12;
		if (chance(&g->r, 50))
			la &= 0x3fffffffffull; /* low: shares upper tables */
		unsigned s = 64 - vb;
		return (uint64_t)((int64_t)(la << s) >> s);
	}
	}
}

static void make_aspace(struct gen *g, struct aspace *a)
{
	static const unsigned maxphys[] = { 36, 40, 46, 52 };
	vmem_regs *r = &a->regs;
	vmem_regs_init(r);
	unsigned k = (unsigned)below(&g->r, 100);
	a->mode = k < 6 ? VMEM_MODE_NONE : k < 30 ? VMEM_MODE_32BIT : k < 55 ? VMEM_MODE_PAE :
		  (g->host_levels == 5 && k >= 80) ? VMEM_MODE_5LEVEL : VMEM_MODE_4LEVEL;
	r->maxphyaddr = maxphys[below(&g->r, 4)];
	r->gbpages = chance(&g->r, 70);
	r->cr0 = VMEM_CR0_PE;
	if (a->mode != VMEM_MODE_NONE) {
		r->cr0 |= VMEM_CR0_PG | (chance(&g->r, 80) ? VMEM_CR0_WP : 0);
		r->cr4 |= chance(&g->r, 25) ? VMEM_CR4_SMEP : 0;
		r->cr4 |= chance(&g->r, 25) ? VMEM_CR4_SMAP : 0;
		r->cr4 |= chance(&g->r, 50) ? VMEM_CR4_PGE : 0;
		uint64_t root = new_table(g);
		r->cr3 = root;
	}
	if (a->mode == VMEM_MODE_32BIT)
		r->cr4 |= chance(&g->r, 70) ? VMEM_CR4_PSE : 0;
	if (a->mode >= VMEM_MODE_PAE) {
		r->cr4 |= VMEM_CR4_PAE;
		r->efer |= chance(&g->r, 75) ? VMEM_EFER_NXE : 0;
	}
	if (a->mode == VMEM_MODE_PAE)
		r->cr3 |= below(&g->r, 128) << 5; /* PDPT anywhere 32-byte aligned in the page */
	if (a->mode >= VMEM_MODE_4LEVEL) {
		r->efer |= VMEM_EFER_LME | VMEM_EFER_LMA;
		r->cr4 |= chance(&g->r, 30) ? VMEM_CR4_PKE : 0;
		r->pkru = chance(&g->r, 30) ? (uint32_t)(rnd(&g->r) & rnd(&g->r)) & 0xfffffffcu : 0;
		if (a->mode == VMEM_MODE_5LEVEL)
			r->cr4 |= VMEM_CR4_LA57;
	}
	for (unsigned i = 0; i < NREGIONS; i++) {
		a->la[i] = random_la(g, a);
		if (i && chance(&g->r, 40))
			a->la[i] = a->la[i - 1] + (below(&g->r, 64) << 12); /* neighbours share tables */
		if (a->mode != VMEM_MODE_NONE)
			for (unsigned p = 0; p < REGION_PAGES; p++)
				if (a->mode >= VMEM_MODE_4LEVEL || a->la[i] + ((uint64_t)p << 12) < (1ull << 32))
					map_page(g, a, a->la[i] + ((uint64_t)p << 12));
	}
}

/* A variant of an address space's registers: toggle what changes the role. */
static vmem_regs vary(struct gen *g, const struct aspace *a)
{
	vmem_regs r = a->regs;
	if (a->mode == VMEM_MODE_NONE)
		return r;
	if (chance(&g->r, 20))
		r.cr0 ^= VMEM_CR0_WP;
	if (chance(&g->r, 15))
		r.cr4 ^= VMEM_CR4_SMEP;
	if (chance(&g->r, 15))
		r.cr4 ^= VMEM_CR4_SMAP;
	if (a->mode >= VMEM_MODE_PAE && chance(&g->r, 15))
		r.efer ^= VMEM_EFER_NXE;
	if (a->mode >= VMEM_MODE_4LEVEL && chance(&g->r, 15))
		r.cr4 ^= VMEM_CR4_PKE;
	if (a->mode == VMEM_MODE_32BIT && chance(&g->r, 15))
		r.cr4 ^= VMEM_CR4_PSE;
	return r;
}

static uint64_t mutate(struct gen *g, uint64_t v, unsigned size)
{
	static const uint64_t flips[] = { VMEM_PTE_P, VMEM_PTE_RW, VMEM_PTE_US, VMEM_PTE_A, VMEM_PTE_D,
					  VMEM_PTE_PS, VMEM_PTE_G, VMEM_PTE_XD, 1ull << 60, 1ull << 45 };
	unsigned k = (unsigned)below(&g->r, 100);
	if (k < 4)
		return 0;
	if (k < 20) {
		uint64_t frame = chance(&g->r, 50) ? (uint64_t)(POOL_FIRST + below(&g->r, g->next_pool + 1)) << 12
						   : data_frame(g);
		v = (v & 0xfff) | frame | (v & (size == 8 ? 0xfff0000000000000ull : 0));
	} else {
		v ^= flips[below(&g->r, size == 8 ? 10 : 7)];
	}
	return size == 4 ? (uint32_t)v : v;
}

bool seq_generate(seq *s, uint64_t seed, const uint8_t *fuzz, size_t fuzz_len,
		  unsigned nops, unsigned host_levels)
{
	memset(s, 0, sizeof(*s));
	struct gen *g = calloc(1, sizeof(*g));
	s->ops = calloc(nops ? nops : 1, sizeof(*s->ops));
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		s->image[i] = calloc(1, seq_slots[i].size);
	if (!g || !s->ops || !s->image[0] || !s->image[1] || !s->image[2]) {
		free(g);
		seq_free(s);
		return false;
	}
	g->r.s = seed;
	g->r.f = fuzz;
	g->r.flen = fuzz_len;
	g->s = s;
	g->host_levels = host_levels;
	s->host_levels = host_levels;
	for (unsigned i = 0; i < 40; i++) /* data pages: recognisable contents */
		for (unsigned b = 0; b < 4096; b += 8) {
			uint64_t v = ((uint64_t)i << 32) | b;
			memcpy(s->image[0] + ((i + 1) << 12) + b, &v, 8);
		}
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		g->img[i] = s->image[i];
	for (unsigned i = 0; i < NAS; i++)
		make_aspace(g, &g->as[i]);
	/* From here on the generator edits its own copy: the image stays the
	 * state before the first op. */
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		g->img[i] = malloc(seq_slots[i].size);
		if (!g->img[i]) {
			for (unsigned j = 0; j < i; j++)
				free(g->img[j]);
			free(g);
			seq_free(s);
			return false;
		}
		memcpy(g->img[i], s->image[i], seq_slots[i].size);
	}
	unsigned cur = 0;
	s->regs0 = g->as[0].regs;
	s->nops = nops;
	for (unsigned i = 0; i < nops; i++) {
		seq_op *op = &s->ops[i];
		struct aspace *a = &g->as[cur];
		unsigned k = (unsigned)below(&g->r, 100);
		if (k < 55) {
			op->kind = SEQ_ACCESS;
			op->addr = chance(&g->r, 6) ? random_la(g, a) :
				   a->la[below(&g->r, NREGIONS)] + (below(&g->r, REGION_PAGES) << 12);
			op->addr += below(&g->r, 512) * 8;
			if (a->mode < VMEM_MODE_4LEVEL)
				op->addr &= 0xffffffffull;
			unsigned t = (unsigned)below(&g->r, 100);
			op->acc = t < 35 ? VMEM_ACC_WRITE : t < 55 ? VMEM_ACC_FETCH : 0;
			op->acc |= chance(&g->r, 35) ? VMEM_ACC_USER : 0;
			op->acc |= chance(&g->r, 5) ? VMEM_ACC_IMPLICIT : 0;
			op->acc |= chance(&g->r, 20) ? VMEM_ACC_AC : 0;
			op->val = rnd(&g->r);
			op->size = 8;
		} else if (k < 77 && g->nent) {
			unsigned e = (unsigned)below(&g->r, g->nent);
			op->kind = SEQ_PT_WRITE;
			op->size = g->ent_size[e];
			op->addr = g->ent_gpa[e];
			if (chance(&g->r, 10)) {
				op->addr = (op->addr & ~0xfffull) | (below(&g->r, 4096 / op->size) * op->size);
			} else if (op->size == 8 && chance(&g->r, 8)) {
				op->size = 4; /* half an entry */
				op->addr += chance(&g->r, 50) ? 4 : 0;
			}
			op->val = mutate(g, rd(g, op->addr & ~7ull, 8) >> (8 * (op->addr & 4)), op->size);
			if (op->addr == g->ent_gpa[e] && op->size == g->ent_size[e] && chance(&g->r, 35))
				op->val = g->ent_orig[e]; /* repair: mappings come back */
			if (op->size == 4)
				op->val = (uint32_t)op->val;
			/* The generator's own picture of memory follows its writes
			 * (not the A/D flags the run sets; that only steers later picks). */
			memcpy(mem_at(g, op->addr), &op->val, op->size);
		} else if (k < 88) {
			op->kind = SEQ_SET_REGS;
			cur = (unsigned)below(&g->r, NAS);
			op->regs = vary(g, &g->as[cur]);
		} else if (k < 96) {
			op->kind = SEQ_INVLPG;
			op->addr = a->la[below(&g->r, NREGIONS)] + (below(&g->r, REGION_PAGES) << 12);
			if (a->mode < VMEM_MODE_4LEVEL)
				op->addr &= 0xffffffffull;
		} else {
			op->kind = SEQ_SET_PKRU;
			op->val = chance(&g->r, 50) ? 0 : (uint32_t)rnd(&g->r) & 0xfffffffcu;
		}
	}
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		free(g->img[i]);
	free(g);
	return true;
}

void seq_free(seq *s)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		free(s->image[i]);
		s->image[i] = NULL;
	}
	free(s->ops);
	s->ops = NULL;
	s->nops = 0;
}

void seq_describe(const seq_op *op, char *buf, size_t len)
{
	switch (op->kind) {
	case SEQ_ACCESS:
		snprintf(buf, len, "access la=%#llx acc=%#x", (unsigned long long)op->addr, op->acc);
		break;
	case SEQ_PT_WRITE:
		snprintf(buf, len, "pt-write gpa=%#llx size=%u val=%#llx", (unsigned long long)op->addr,
			 op->size, (unsigned long long)op->val);
		break;
	case SEQ_SET_REGS:
		snprintf(buf, len, "set-regs cr0=%#llx cr3=%#llx cr4=%#llx efer=%#llx mode=%s",
			 (unsigned long long)op->regs.cr0, (unsigned long long)op->regs.cr3,
			 (unsigned long long)op->regs.cr4, (unsigned long long)op->regs.efer,
			 vmem_mode_name(vmem_regs_mode(&op->regs)));
		break;
	case SEQ_INVLPG:
		snprintf(buf, len, "invlpg la=%#llx", (unsigned long long)op->addr);
		break;
	default:
		snprintf(buf, len, "wrpkru %#llx", (unsigned long long)op->val);
		break;
	}
}
