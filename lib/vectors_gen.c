/* libvmem vectors: generate walk vectors from seeded random page tables aimed at each fault class. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include "vectors_gen_int.h"

/* Fault classes, in the order the stream cycles through them. NP and RSVD
 * appear once per level (levels above a mode's top wrap around). */
static const struct { unsigned c; unsigned level; } slots[] = {
	{ VG_GC_OK, 0 }, { VG_GC_NP, 1 }, { VG_GC_NP, 2 }, { VG_GC_NP, 3 }, { VG_GC_NP, 4 }, { VG_GC_NP, 5 },
	{ VG_GC_RSVD, 1 }, { VG_GC_RSVD, 2 }, { VG_GC_RSVD, 3 }, { VG_GC_RSVD, 4 }, { VG_GC_RSVD, 5 },
	{ VG_GC_W, 0 }, { VG_GC_U, 0 }, { VG_GC_I, 0 }, { VG_GC_PK, 0 }, { VG_GC_SMEP, 0 }, { VG_GC_SMAP, 0 },
};
#define NSLOTS (sizeof(slots) / sizeof(slots[0]))
static const char *const class_names[] = { "ok", "np", "rsvd", "w", "u", "i", "pk", "smep", "smap" };

/* Per mode: top level, entry width, bits of index per level, leaf levels allowed. */
static const struct {
	vmem_mode mode;
	const char *name;
	unsigned top, width, idx_bits;
	unsigned leaves; /* bit L: a leaf can be at level L */
} modes[] = {
	{ VMEM_MODE_32BIT, "32bit", 2, 4, 10, 1u << 1 | 1u << 2 },
	{ VMEM_MODE_PAE, "pae", 3, 8, 9, 1u << 1 | 1u << 2 },
	{ VMEM_MODE_4LEVEL, "4level", 4, 8, 9, 1u << 1 | 1u << 2 | 1u << 3 },
	{ VMEM_MODE_5LEVEL, "5level", 5, 8, 9, 1u << 1 | 1u << 2 | 1u << 3 },
};

void vg_init(vg_gen *g, uint64_t seed, unsigned long index, vmem_vector *v)
{
	memset(g, 0, sizeof(*g));
	g->rng = seed * 0x2545f4914f6cdd1dull ^ (uint64_t)index * 0x9e3779b97f4a7c15ull;
	g->v = v;
	vg_rnd(g);
}

vmem_err vg_start(vg_gen *g, uint64_t seed, unsigned modes_mask, unsigned long index,
		  vmem_vector *out, unsigned *mi, unsigned long *round)
{
	unsigned mlist[4], nm = 0;
	for (unsigned k = 0; k < 4; k++)
		if (modes_mask & (1u << k))
			mlist[nm++] = k;
	vmem_vector_init(out);
	if (!nm || (modes_mask & ~VMEM_VGEN_ALL))
		return VMEM_E_INVAL;
	vg_init(g, seed, index, out);
	*mi = mlist[index % nm];
	*round = index / nm;
	return VMEM_OK;
}

uint64_t vg_rnd(vg_gen *g)
{
	/* splitmix64 */
	uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

unsigned vg_rndn(vg_gen *g, unsigned n)
{
	return (unsigned)(vg_rnd(g) % n);
}

bool vg_coin(vg_gen *g)
{
	return vg_rnd(g) & 1;
}

uint64_t vg_frame(vg_gen *g, uint64_t size)
{
	for (;;) {
		uint64_t a = vg_rnd(g) & ((1ull << g->maxphy) - 1) & ~(size - 1);
		bool clash = !a;
		for (unsigned k = 0; k < g->nused; k++)
			clash |= a < g->used[k][1] && g->used[k][0] < a + size;
		if (!clash) {
			if (g->nused < VG_MAX_USED) {
				g->used[g->nused][0] = a;
				g->used[g->nused++][1] = a + size;
			}
			return a;
		}
	}
}

void vg_frames_reset(vg_gen *g)
{
	g->nused = 0;
}

void vg_put(vg_gen *g, uint64_t addr, uint64_t val, unsigned width)
{
	vmem_vector *v = g->v;
	for (size_t k = 0; k < v->n_mem; k++)
		if (v->mem[k].addr == addr) {
			v->mem[k].value = val;
			return;
		}
	if (v->n_mem == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		vmem_vector_word *w = realloc(v->mem, cap * sizeof(*w));
		if (!w) {
			g->oom = true;
			return;
		}
		v->mem = w;
		g->cap = cap;
	}
	v->mem[v->n_mem++] = (vmem_vector_word){ addr, val, width };
}

uint64_t vg_get(const vg_gen *g, uint64_t addr)
{
	for (size_t k = 0; k < g->v->n_mem; k++)
		if (g->v->mem[k].addr == addr)
			return g->v->mem[k].value;
	return 0;
}

vmem_err vg_finish(vg_gen *g, uint64_t seed, unsigned long index, const char *what)
{
	vmem_vector *out = g->v;
	char id[128];
	snprintf(id, sizeof(id), "gen-%llu-%lu %s", (unsigned long long)seed, index, what);
	size_t n = strlen(id) + 1;
	out->id = malloc(n);
	if (!out->id || g->oom) {
		vmem_vector_free(out);
		return VMEM_E_NOMEM;
	}
	memcpy(out->id, id, n);
	out->have |= VMEM_VHAVE_ID;
	vmem_err e = vmem_vector_answer(out);
	if (e)
		vmem_vector_free(out);
	return e;
}

/* Random extra present entries in a table, off the walk's path (realism; the walk never reads them). */
static void noise(vg_gen *g, uint64_t table, unsigned nent, unsigned skip, unsigned width)
{
	unsigned n = vg_rndn(g, 3);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = vg_rndn(g, nent);
		if (i == skip)
			continue;
		uint64_t val = (vg_rnd(g) & ((1ull << g->maxphy) - 1) & ~0xfffull) | 0x27;
		vg_put(g, table + (uint64_t)i * width, width == 4 ? (uint32_t)val : val, width);
	}
}

/* A bit that is reserved in a 64-bit-format entry at `level` (SDM 4.4.2/4.5.4). */
static uint64_t reserved_bit(vg_gen *g, unsigned level, bool leaf, bool *clear_nxe)
{
	unsigned pick = vg_rndn(g, 3);
	if (pick == 0 && leaf && level >= 2)
		return 1ull << 13; /* large-page address bits below the page size */
	if (pick == 1 || g->maxphy >= 52) {
		*clear_nxe = true; /* XD is reserved when EFER.NXE = 0 */
		return VMEM_PTE_XD;
	}
	return 1ull << (g->maxphy + vg_rndn(g, 52 - g->maxphy));
}

typedef struct plan {
	unsigned mi;        /* index into modes[] */
	unsigned cls;
	unsigned at;        /* NP/RSVD: the level that faults; W/U/I: the level that forbids */
	unsigned leaf;      /* leaf level */
	unsigned idx[6];    /* table index per level */
	uint64_t table[6];  /* built: the table at each level */
	uint64_t frame, page_size; /* built: the leaf's frame */
} plan;

static void set_regs(vg_gen *g, plan *p)
{
	vmem_vector *v = g->v;
	unsigned mode = modes[p->mi].mode;
	v->cpu.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | (vg_coin(g) ? 0x30 : 0) |
		     ((vg_coin(g) || p->cls == VG_GC_W) ? VMEM_CR0_WP : 0);
	v->cpu.cr4 = 0;
	v->cpu.efer = 0;
	if (mode == VMEM_MODE_32BIT)
		v->cpu.cr4 |= (p->leaf == 2 || vg_coin(g)) ? VMEM_CR4_PSE : 0;
	else
		v->cpu.cr4 |= VMEM_CR4_PAE | (vg_coin(g) ? VMEM_CR4_PGE : 0);
	if (mode >= VMEM_MODE_4LEVEL)
		v->cpu.efer |= VMEM_EFER_LME | VMEM_EFER_LMA;
	if (mode == VMEM_MODE_5LEVEL)
		v->cpu.cr4 |= VMEM_CR4_LA57;
	if (mode != VMEM_MODE_32BIT && (vg_coin(g) || p->cls == VG_GC_I || p->cls == VG_GC_RSVD))
		v->cpu.efer |= VMEM_EFER_NXE;
	if (p->cls == VG_GC_SMEP || vg_rndn(g, 4) == 0)
		v->cpu.cr4 |= VMEM_CR4_SMEP;
	if (p->cls == VG_GC_SMAP || vg_rndn(g, 4) == 0)
		v->cpu.cr4 |= VMEM_CR4_SMAP;
	if (mode >= VMEM_MODE_4LEVEL && (p->cls == VG_GC_PK || vg_rndn(g, 4) == 0)) {
		v->cpu.cr4 |= VMEM_CR4_PKE;
		v->have |= VMEM_VHAVE_PKRU;
	}
	static const unsigned phys64[] = { 36, 39, 40, 42, 46, 48, 52 };
	g->maxphy = mode == VMEM_MODE_32BIT ? 32 : phys64[vg_rndn(g, 7)];
	v->cpu.maxphyaddr = mode == VMEM_MODE_32BIT ? (vg_coin(g) ? 36 : 40) : g->maxphy;
	v->cpu.gbpages = p->leaf == 3 || vg_rndn(g, 4);
}

static void set_access(vg_gen *g, plan *p)
{
	vmem_vector *v = g->v;
	static const vmem_vector_atype any[3] = { VMEM_VACC_READ, VMEM_VACC_WRITE, VMEM_VACC_FETCH };
	v->access.type = any[vg_rndn(g, 3)];
	v->access.cpl = vg_coin(g) ? 3 : 0;
	switch (p->cls) {
	case VG_GC_W:
		v->access.type = VMEM_VACC_WRITE;
		break;
	case VG_GC_U:
	case VG_GC_PK:
		v->access.cpl = 3;
		if (p->cls == VG_GC_PK && v->access.type == VMEM_VACC_FETCH)
			v->access.type = VMEM_VACC_WRITE;
		break;
	case VG_GC_I:
	case VG_GC_SMEP:
		v->access.type = VMEM_VACC_FETCH;
		v->access.cpl = p->cls == VG_GC_SMEP ? 0 : v->access.cpl;
		break;
	case VG_GC_SMAP:
		v->access.cpl = 0;
		if (v->access.type == VMEM_VACC_FETCH)
			v->access.type = VMEM_VACC_READ;
		if (vg_coin(g)) {
			v->access.implicit = true;
			v->have |= VMEM_VHAVE_IMPLICIT;
		}
		break;
	default:
		break;
	}
	if (vg_rndn(g, 4) == 0) {
		v->access.ac = vg_coin(g);
		v->have |= VMEM_VHAVE_AC;
	}
	if (p->cls == VG_GC_PK) {
		unsigned key = 1 + vg_rndn(g, 15);
		p->idx[0] = key; /* remembered for the leaf */
		v->cpu.pkru = (vg_coin(g) || v->access.type == VMEM_VACC_READ ? 1u : 2u) << (2 * key);
	} else if (v->have & VMEM_VHAVE_PKRU) {
		v->cpu.pkru = (uint32_t)vg_rnd(g);
		if (p->cls == VG_GC_OK) {
			/* The leaf's key allows every access (SDM 4.6.2): AD and WD clear. */
			unsigned key = vg_rndn(g, 16);
			p->idx[0] = key;
			v->cpu.pkru &= ~(3u << (2 * key));
		}
	}
}

/* The linear address from the per-level indices (canonical by construction). */
static uint64_t make_la(vg_gen *g, const plan *p)
{
	unsigned top = modes[p->mi].top, bits = modes[p->mi].idx_bits;
	uint64_t la = vg_rnd(g) & 0xfff;
	if (p->leaf >= 2)
		la = vg_rnd(g) & ((1ull << (12 + bits * (p->leaf - 1))) - 1);
	for (unsigned l = p->leaf; l <= top; l++)
		la |= (uint64_t)p->idx[l] << (12 + bits * (l - 1));
	unsigned width = modes[p->mi].mode == VMEM_MODE_5LEVEL ? 57 :
			 modes[p->mi].mode == VMEM_MODE_4LEVEL ? 48 : 32;
	la &= (1ull << width) - 1;
	if (width < 64 && width > 32 && (la >> (width - 1)) & 1)
		la |= ~0ull << width;
	return la;
}

/* Flags for the entry at level l on the path. */
static uint64_t path_flags(vg_gen *g, const plan *p, unsigned l, bool leaf)
{
	const vmem_vector *v = g->v;
	bool pae_pdpte = modes[p->mi].mode == VMEM_MODE_PAE && l == 3;
	if (pae_pdpte)
		return VMEM_PTE_P | (vg_coin(g) ? VMEM_PTE_PWT : 0); /* SDM 4.4.1: no R/W, U/S, A */
	uint64_t f = VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | (vg_coin(g) ? VMEM_PTE_A : 0);
	if (leaf)
		f |= (vg_coin(g) ? VMEM_PTE_D : 0) | (vg_coin(g) ? VMEM_PTE_G : 0);
	bool user = v->access.cpl == 3 && !v->access.implicit;
	/* A supervisor access ends on a supervisor page unless the class wants otherwise. */
	if (!user && leaf && p->cls != VG_GC_SMEP && p->cls != VG_GC_SMAP && vg_coin(g))
		f &= ~VMEM_PTE_US;
	/* Class ok: a supervisor access that SMEP or SMAP would forbid on a user
	 * page gets a supervisor page (SDM 4.6.1; EFLAGS.AC lifts SMAP for
	 * explicit accesses only). */
	bool smap_applies = (v->cpu.cr4 & VMEM_CR4_SMAP) && v->access.type != VMEM_VACC_FETCH &&
			    !(v->access.ac && !v->access.implicit);
	bool smep_applies = (v->cpu.cr4 & VMEM_CR4_SMEP) && v->access.type == VMEM_VACC_FETCH;
	if (p->cls == VG_GC_OK && !user && leaf && (smap_applies || smep_applies))
		f &= ~VMEM_PTE_US;
	if (p->at == l && p->cls == VG_GC_W)
		f &= ~VMEM_PTE_RW;
	if (p->at == l && p->cls == VG_GC_U)
		f &= ~VMEM_PTE_US;
	if (p->at == l && p->cls == VG_GC_I)
		f |= VMEM_PTE_XD;
	if (modes[p->mi].mode == VMEM_MODE_32BIT)
		f &= 0xfff;
	else if ((v->cpu.efer & VMEM_EFER_NXE) && v->access.type != VMEM_VACC_FETCH &&
		 p->cls != VG_GC_RSVD && vg_rndn(g, 4) == 0)
		f |= VMEM_PTE_XD;
	if (leaf && (v->cpu.cr4 & VMEM_CR4_PKE))
		f |= (uint64_t)(p->cls == VG_GC_PK || p->cls == VG_GC_OK ? p->idx[0] : vg_rndn(g, 16))
		     << VMEM_PTE_PKEY_SHIFT;
	return f;
}

static void build_tables(vg_gen *g, plan *p)
{
	vmem_vector *v = g->v;
	unsigned width = modes[p->mi].width, top = modes[p->mi].top;
	unsigned nent = 1u << modes[p->mi].idx_bits;
	bool is32 = modes[p->mi].mode == VMEM_MODE_32BIT, pae = modes[p->mi].mode == VMEM_MODE_PAE;
	unsigned maxphy = g->maxphy;
	if (pae)
		g->maxphy = 32; /* PAE CR3 holds a 32-bit address */
	uint64_t table = vg_frame(g, 4096);
	g->maxphy = maxphy;
	if (pae) {
		table = (table & 0xffffffffull) | (uint64_t)vg_rndn(g, 128) * 32;
		v->cpu.cr3 = table;
	} else {
		v->cpu.cr3 = table | (vg_coin(g) ? VMEM_PTE_PWT | VMEM_PTE_PCD : 0);
	}
	if (is32 || pae)
		v->cpu.cr3 &= 0xffffffffull;
	table = pae ? v->cpu.cr3 & ~0x1full : table & ~0xfffull;
	for (unsigned l = top; l >= 1; l--) {
		uint64_t ea = table + (uint64_t)p->idx[l] * width;
		p->table[l] = table;
		if (!pae || l != 3)
			noise(g, table, nent, p->idx[l], width);
		if (p->cls == VG_GC_NP && p->at == l) {
			uint64_t junk = vg_rndn(g, 3) ? (vg_rnd(g) & ~1ull) : 0;
			if (junk || vg_coin(g))
				vg_put(g, ea, is32 ? (uint32_t)junk : junk, width);
			return;
		}
		bool leaf = l == p->leaf;
		uint64_t f = path_flags(g, p, l, leaf);
		uint64_t e;
		if (leaf) {
			uint64_t size = 1ull << (12 + modes[p->mi].idx_bits * (l - 1));
			uint64_t frame = vg_frame(g, size);
			if (is32)
				frame &= 0xffffffffull;
			e = frame | f | (l > 1 ? VMEM_PTE_PS : 0);
			p->frame = frame;
			p->page_size = size;
		} else {
			uint64_t next = vg_frame(g, 4096);
			if (is32)
				next &= 0xffffffffull;
			e = next | f;
			table = next;
		}
		if (p->cls == VG_GC_RSVD && p->at == l) {
			bool clear_nxe = false;
			if (is32)
				e |= 1ull << 21; /* a 4-MByte PDE's bit 21 (SDM Table 4-4) */
			else
				e |= reserved_bit(g, l, leaf, &clear_nxe);
			if (clear_nxe)
				v->cpu.efer &= ~VMEM_EFER_NXE;
		}
		vg_put(g, ea, is32 ? (uint32_t)e : e, width);
		if (leaf)
			return;
	}
}

static void make_plan(vg_gen *g, plan *p, unsigned mi, unsigned slot)
{
	memset(p, 0, sizeof(*p));
	p->mi = mi;
	unsigned top = modes[p->mi].top;
	p->cls = slots[slot].c;
	if (p->cls == VG_GC_PK && modes[p->mi].mode < VMEM_MODE_4LEVEL)
		p->cls = VG_GC_W; /* protection keys exist only in IA-32e paging */
	if (p->cls == VG_GC_I && modes[p->mi].mode == VMEM_MODE_32BIT)
		p->cls = VG_GC_U; /* 32-bit paging has no execute-disable bit (SDM 4.3) */
	/* Leaf level: any allowed one at or below the faulting level. */
	unsigned at = slots[slot].level ? (slots[slot].level - 1) % top + 1 : 0;
	unsigned leaves = modes[p->mi].leaves;
	if (p->cls == VG_GC_RSVD && modes[p->mi].mode == VMEM_MODE_32BIT)
		at = 2; /* only a 4-MByte PDE has reserved bits in 32-bit paging */
	if (p->cls == VG_GC_RSVD && modes[p->mi].mode == VMEM_MODE_32BIT)
		leaves = 1u << 2;
	else if (at)
		leaves &= (2u << at) - 1;
	unsigned cand[4], nc = 0;
	for (unsigned l = 1; l <= 3; l++)
		if (leaves & (1u << l))
			cand[nc++] = l;
	p->leaf = nc ? cand[vg_rndn(g, nc)] : 1;
	if (!at && (p->cls == VG_GC_W || p->cls == VG_GC_U || p->cls == VG_GC_I)) {
		/* The forbidding level: any on the path (PAE PDPTEs carry no such bits). */
		unsigned hi = modes[p->mi].mode == VMEM_MODE_PAE ? 2 : top;
		at = hi >= p->leaf ? p->leaf + vg_rndn(g, hi - p->leaf + 1) : p->leaf;
	}
	p->at = at;
	unsigned nent = 1u << modes[p->mi].idx_bits;
	for (unsigned l = 1; l <= top; l++)
		p->idx[l] = vg_rndn(g, nent);
	if (modes[p->mi].mode == VMEM_MODE_PAE)
		p->idx[3] = vg_rndn(g, 4);
}

unsigned vg_walk_slots(void)
{
	return NSLOTS;
}

void vg_walk_guest(vg_gen *g, unsigned mi, unsigned slot, vg_guest *out, char *what, size_t len)
{
	vmem_vector *v = g->v;
	plan p;
	make_plan(g, &p, mi, slot % NSLOTS);
	v->have |= VMEM_VHAVE_CR0 | VMEM_VHAVE_CR3 | VMEM_VHAVE_CR4 | VMEM_VHAVE_EFER |
		   VMEM_VHAVE_MAXPHYADDR | VMEM_VHAVE_GBPAGES | VMEM_VHAVE_CPL;
	set_regs(g, &p);
	set_access(g, &p);
	v->access.addr = make_la(g, &p);
	build_tables(g, &p);
	*out = (vg_guest){ .cls = p.cls, .at = p.at, .leaf = p.leaf, .top = modes[p.mi].top,
			   .pae = modes[p.mi].mode == VMEM_MODE_PAE, .frame = p.frame,
			   .page_size = p.page_size };
	memcpy(out->table, p.table, sizeof(out->table));
	if (p.at && (p.cls == VG_GC_NP || p.cls == VG_GC_RSVD))
		snprintf(what, len, "%s %s@L%u leaf L%u", modes[p.mi].name, class_names[p.cls], p.at, p.leaf);
	else
		snprintf(what, len, "%s %s leaf L%u", modes[p.mi].name, class_names[p.cls], p.leaf);
}

vmem_err vmem_vector_generate(uint64_t seed, unsigned modes_mask, unsigned long index,
			      vmem_vector *out)
{
	vg_gen g;
	unsigned mi;
	unsigned long round;
	vmem_err err = vg_start(&g, seed, modes_mask, index, out, &mi, &round);
	if (err)
		return err;
	vg_guest gu;
	char what[64];
	vg_walk_guest(&g, mi, (unsigned)(round % NSLOTS), &gu, what, sizeof(what));
	return vg_finish(&g, seed, index, what);
}
