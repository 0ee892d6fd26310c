/* libvmem vectors: generate kind "ept" and "nested" vectors from seeded random EPT tables aimed at each exit class. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include "vectors_gen_int.h"

#define PAGE 4096ull
#define FRAME_MASK 0x000ffffffffff000ull /* bits 51:12 */

/* Rights patterns an EPT entry may hold without being misconfigured (SDM
 * vol. 3C 29.3.3.1: bit 0 clear with bit 1 set is a misconfiguration;
 * execute-only, 100b, is allowed since the checker's EPT has that
 * capability). XU (bit 10) is added at random when MBEC is on. */
static const uint64_t valid_rwx[] = { 1, 3, 4, 5, 7 };

/* The rights an access needs in every EPT entry of its translation (SDM
 * 29.3.3.2): bit 0 to read, bits 0 and 1 to write (bit 1 alone is a
 * misconfiguration), to fetch bit 2, or with MBEC bit 10 for a user-mode
 * linear address. */
static uint64_t need_of(vmem_vector_atype t, bool mbec, bool user)
{
	if (t == VMEM_VACC_READ)
		return VMEM_EPT_R;
	if (t == VMEM_VACC_WRITE)
		return VMEM_EPT_R | VMEM_EPT_W;
	return mbec && user ? VMEM_EPT_XU : VMEM_EPT_X;
}

/* A valid rights pattern that grants every bit of `need` (deny = false) or
 * lacks at least one of them (deny = true), never 000b (with MBEC, never
 * 000b without XU either: that entry is not present). */
static uint64_t rights(vg_gen *g, uint64_t need, bool mbec, bool deny)
{
	for (;;) {
		uint64_t p = valid_rwx[vg_rndn(g, 5)] | (mbec && vg_coin(g) ? VMEM_EPT_XU : 0);
		if (mbec && vg_rndn(g, 8) == 0)
			p = VMEM_EPT_XU; /* user-execute only: present with MBEC */
		if (((p & need) == need) != deny)
			return p;
	}
}

/* The EPT under construction in host memory (the vector's words). */
typedef struct ept_build {
	unsigned top;   /* 4 or 5 levels */
	bool ad, mbec;
	uint64_t root;
} ept_build;

static unsigned ept_index(uint64_t gpa, unsigned level)
{
	return (unsigned)(gpa >> (12 + 9 * (level - 1))) & 511;
}

/* Accessed / dirty flags a processor could have left (EPTP bit 6 on), or
 * noise in the same bits where they are ignored (off: SDM 29.3.5). */
static uint64_t ad_bits(vg_gen *g, bool leaf)
{
	return (vg_coin(g) ? VMEM_EPT_A : 0) | (leaf && vg_coin(g) ? VMEM_EPT_D : 0);
}

/* Leaf attributes besides rights: a valid memory type (SDM 29.3.7), IPAT,
 * A/D, and the ignored bit 11. */
static uint64_t leaf_attrs(vg_gen *g)
{
	static const uint64_t mt[] = { VMEM_MT_UC, VMEM_MT_WC, VMEM_MT_WT, VMEM_MT_WP, VMEM_MT_WB };
	return mt[vg_rndn(g, 5)] << VMEM_EPT_MT_SHIFT | (vg_coin(g) ? VMEM_EPT_IPAT : 0) |
	       ad_bits(g, true) | (vg_rndn(g, 4) == 0 ? 1ull << 11 : 0);
}

/* Map the guest-physical page or large page at gpa to hpa with a leaf at
 * `leaf` holding `bits` (rights and attributes); missing tables are made
 * with full rights, so that only the leaf decides. */
static void ept_map(vg_gen *g, const ept_build *e, uint64_t gpa, uint64_t hpa, unsigned leaf,
		    uint64_t bits)
{
	uint64_t table = e->root;
	for (unsigned l = e->top; l > leaf; l--) {
		uint64_t ea = table + 8ull * ept_index(gpa, l);
		uint64_t ent = vg_get(g, ea);
		if (!ent) {
			ent = vg_frame(g, PAGE) | VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X |
			      (e->mbec ? VMEM_EPT_XU : 0) | ad_bits(g, false);
			vg_put(g, ea, ent, 8);
		}
		table = ent & FRAME_MASK;
	}
	vg_put(g, table + 8ull * ept_index(gpa, leaf), hpa | bits | (leaf > 1 ? VMEM_EPT_PS : 0), 8);
}

/* The address of the EPT entry at `level` on gpa's path (its table must exist). */
static uint64_t ept_entry_at(const vg_gen *g, const ept_build *e, uint64_t gpa, unsigned level)
{
	uint64_t table = e->root;
	for (unsigned l = e->top; l > level; l--)
		table = vg_get(g, table + 8ull * ept_index(gpa, l)) & FRAME_MASK;
	return table + 8ull * ept_index(gpa, level);
}

/* The EPTP and the vector's "ept" object. */
static void ept_start(vg_gen *g, ept_build *e, unsigned top)
{
	vmem_vector *v = g->v;
	e->top = top;
	e->ad = vg_coin(g);
	e->mbec = vg_rndn(g, 4) == 0;
	e->root = vg_frame(g, PAGE);
	v->ept.eptp = e->root | (vg_coin(g) ? VMEM_MT_WB : VMEM_MT_UC) |
		      (uint64_t)(top - 1) << VMEM_EPTP_PWL_SHIFT | (e->ad ? VMEM_EPTP_AD : 0);
	v->ept.mbec = e->mbec;
	v->ept.advanced_info = vg_coin(g);
	v->have |= VMEM_VHAVE_EPT | (e->mbec ? VMEM_VHAVE_MBEC : 0) |
		   (v->ept.advanced_info ? VMEM_VHAVE_ADVINFO : 0);
}

/* A bit that makes a present entry at `level` misconfigured (SDM 29.3.3.1):
 * bits 51:MAXPHYADDR; bits 6:3 of a non-leaf entry; bit 7 of a PML4E or
 * PML5E; address bits below a large page's size. 0 if none applies. */
static uint64_t reserved_bit(vg_gen *g, unsigned level, bool leaf, unsigned maxphy)
{
	for (unsigned tries = 0; tries < 8; tries++) {
		switch (vg_rndn(g, 3)) {
		case 0:
			if (maxphy < 52)
				return 1ull << (maxphy + vg_rndn(g, 52 - maxphy));
			break;
		case 1:
			if (!leaf)
				return level >= 4 && vg_coin(g) ? VMEM_EPT_PS : 1ull << (3 + vg_rndn(g, 4));
			break;
		default:
			if (leaf && level > 1)
				return 1ull << (12 + vg_rndn(g, 9 * (level - 1)));
			break;
		}
	}
	return maxphy < 52 ? 1ull << 51 : 0;
}

/* ---- kind "ept" ---- */

enum eclass { EC_OK, EC_NP, EC_DENY, EC_WONLY, EC_WX, EC_RSVD, EC_MTYPE };
static const char *const eclass_names[] = { "ok", "np", "deny", "wonly", "wx", "rsvd", "mtype" };
static const struct { enum eclass c; unsigned level; } eslots[] = {
	{ EC_OK, 0 },    { EC_NP, 1 },    { EC_NP, 2 },   { EC_NP, 3 },   { EC_NP, 4 },
	{ EC_NP, 5 },    { EC_DENY, 0 },  { EC_WONLY, 0 }, { EC_WX, 0 },  { EC_RSVD, 1 },
	{ EC_RSVD, 2 },  { EC_RSVD, 3 },  { EC_RSVD, 4 }, { EC_RSVD, 5 }, { EC_MTYPE, 0 },
	{ EC_OK, 0 },
};
#define NESLOTS (sizeof(eslots) / sizeof(eslots[0]))

vmem_err vmem_vector_generate_ept(uint64_t seed, unsigned long index, vmem_vector *out)
{
	static const unsigned phys[] = { 36, 39, 40, 42, 46, 48, 52 };
	static const vmem_vector_atype types[] = { VMEM_VACC_READ, VMEM_VACC_WRITE, VMEM_VACC_FETCH };
	vmem_vector_init(out);
	vg_gen g;
	vg_init(&g, seed, index, out);
	vmem_vector *v = out;
	enum eclass cls = eslots[index % NESLOTS].c;
	unsigned at = eslots[index % NESLOTS].level;
	v->kind = VMEM_VKIND_EPT;
	unsigned maxphy = phys[vg_rndn(&g, 7)];
	if (cls == EC_RSVD && maxphy == 52)
		maxphy = 48; /* keep bits 51:M for a reserved bit */
	g.maxphy = maxphy;
	v->cpu.maxphyaddr = maxphy;
	v->have |= VMEM_VHAVE_MAXPHYADDR;
	ept_build e;
	ept_start(&g, &e, at == 5 || vg_rndn(&g, 3) == 0 ? 5 : 4);
	v->access.type = types[vg_rndn(&g, 3)];
	v->access.cpl = vg_coin(&g) ? 3 : 0;
	v->have |= VMEM_VHAVE_CPL;
	if (vg_coin(&g)) {
		v->access.linear = vg_rnd(&g) & 0x00007fffffffffffull;
		v->have |= VMEM_VHAVE_LINEAR;
	}
	/* Leaf level: 1 GByte, 2 MBytes or 4 KBytes, at or below the faulting level. */
	unsigned leaf = 1 + vg_rndn(&g, 3);
	if (at && leaf > at)
		leaf = at;
	if (cls == EC_DENY || cls == EC_WONLY || cls == EC_WX)
		at = leaf + vg_rndn(&g, e.top - leaf + 1);
	else if (cls == EC_MTYPE)
		at = leaf;
	uint64_t width = e.top == 5 && maxphy > 48 ? maxphy : (maxphy < 48 ? maxphy : 48);
	v->access.addr = vg_rnd(&g) & ((1ull << width) - 1);
	uint64_t need = need_of(v->access.type, e.mbec, v->access.cpl == 3);

	uint64_t table = e.root;
	for (unsigned l = e.top; l >= leaf; l--) {
		uint64_t ea = table + 8ull * ept_index(v->access.addr, l);
		if (cls == EC_NP && l == at) {
			/* Not present: bits 2:0 (and XU with MBEC) clear, whatever else (SDM 29.3.2). */
			uint64_t junk = vg_coin(&g) ? vg_rnd(&g) & ~(7ull | VMEM_EPT_XU) : 0;
			if (junk || vg_coin(&g))
				vg_put(&g, ea, junk, 8);
			break;
		}
		uint64_t r = rights(&g, need, e.mbec, cls == EC_DENY && l == at);
		if (l == at && (cls == EC_WONLY || cls == EC_WX))
			r = (r & VMEM_EPT_XU) | (cls == EC_WONLY ? VMEM_EPT_W : VMEM_EPT_W | VMEM_EPT_X);
		uint64_t ent;
		if (l == leaf) {
			uint64_t size = 1ull << (12 + 9 * (leaf - 1));
			ent = vg_frame(&g, size) | r | leaf_attrs(&g) | (l > 1 ? VMEM_EPT_PS : 0) |
			      (vg_rndn(&g, 4) == 0 ? VMEM_EPT_SVE : 0);
			if (cls == EC_MTYPE) {
				static const uint64_t bad[] = { 2, 3, 7 }; /* reserved memory types */
				ent = (ent & ~VMEM_EPT_MT_MASK) | bad[vg_rndn(&g, 3)] << VMEM_EPT_MT_SHIFT;
			}
		} else {
			uint64_t next = vg_frame(&g, PAGE);
			ent = next | r | ad_bits(&g, false);
			table = next;
		}
		if (cls == EC_RSVD && l == at)
			ent |= reserved_bit(&g, l, l == leaf, maxphy);
		vg_put(&g, ea, ent, 8);
		if (l == 1)
			break;
	}
	char what[64];
	if (cls == EC_NP || cls == EC_RSVD || cls == EC_DENY || cls == EC_WONLY || cls == EC_WX)
		snprintf(what, sizeof(what), "ept%u %s@L%u leaf L%u", e.top, eclass_names[cls], at, leaf);
	else
		snprintf(what, sizeof(what), "ept%u %s leaf L%u", e.top, eclass_names[cls], leaf);
	return vg_finish(&g, seed, index, what);
}

/* ---- kind "nested" ---- */

enum nclass { NC_OK, NC_GUEST, NC_TABLE, NC_FINAL, NC_MISC };
static const char *const nclass_names[] = { "ok", "guest", "table", "final", "misc" };
static const enum nclass nslots[] = { NC_OK, NC_GUEST, NC_TABLE, NC_FINAL, NC_MISC, NC_OK, NC_TABLE, NC_GUEST };
#define NNSLOTS (sizeof(nslots) / sizeof(nslots[0]))

/* The guest-physical pages the walk reads or accesses, and where EPT puts them. */
typedef struct gpage {
	uint64_t gpa, hpa; /* 4-KByte page addresses */
	unsigned level;    /* guest level of the table it holds (0: the final page) */
	bool big;          /* mapped by a 2-MByte EPT leaf */
} gpage;

/* Add a page (once). */
static void add_page(gpage *pg, unsigned *n, uint64_t gpa, unsigned level)
{
	gpa &= ~(PAGE - 1);
	for (unsigned k = 0; k < *n; k++)
		if (pg[k].gpa == gpa)
			return;
	pg[(*n)++] = (gpage){ gpa, 0, level, false };
}

vmem_err vmem_vector_generate_nested(uint64_t seed, unsigned modes_mask, unsigned long index,
				     vmem_vector *out)
{
	vg_gen g;
	unsigned mi;
	unsigned long round;
	vmem_err err = vg_start(&g, seed, modes_mask, index, out, &mi, &round);
	if (err)
		return err;
	vmem_vector *v = out;
	enum nclass cls = nslots[round % NNSLOTS];
	/* The guest side: the walk generator's tables, OK or one of its faults. */
	unsigned wslot = cls == NC_GUEST ? 1 + vg_rndn(&g, vg_walk_slots() - 1) : 0;
	vg_guest gu;
	char gwhat[64];
	vg_walk_guest(&g, mi, wslot, &gu, gwhat, sizeof(gwhat));
	v->kind = VMEM_VKIND_NESTED;
	unsigned gwidth = g.maxphy; /* guest-physical addresses stay below 2^gwidth */

	/* The pages EPT must map: every guest table the walk may read (PAE: the
	 * PDPTEs' page, read by the MOV to CR3), and the page accessed. */
	gpage pg[8];
	unsigned n = 0;
	for (unsigned l = gu.top; l >= gu.leaf; l--)
		if (gu.table[l])
			add_page(pg, &n, gu.table[l], l);
	uint64_t fgpa = gu.frame | (v->access.addr & (gu.page_size - 1));
	if (gu.frame)
		add_page(pg, &n, fgpa, 0);

	/* Move the guest's words to host memory. */
	size_t nw = v->n_mem;
	vmem_vector_word *gw = v->mem;
	v->mem = NULL;
	v->n_mem = 0;
	g.cap = 0;
	vg_frames_reset(&g);
	g.maxphy = v->cpu.maxphyaddr;
	ept_build e;
	ept_start(&g, &e, gwidth > 48 || vg_rndn(&g, 4) == 0 ? 5 : 4);
	bool user = v->access.cpl == 3 && !v->access.implicit;
	/* Guest tables are read, and written when the guest sets an accessed or
	 * dirty flag; with EPT A/D on every access to them is a write (SDM
	 * 29.3.3.2). So they are mapped read/write, and denied by taking away
	 * what every access to them needs: R, and W when EPT A/D is on. */
	const uint64_t table_need = VMEM_EPT_R | VMEM_EPT_W;
	const uint64_t table_deny = VMEM_EPT_R | (e.ad ? VMEM_EPT_W : 0);
	uint64_t final_need = v->access.type == VMEM_VACC_FETCH && e.mbec ? VMEM_EPT_X | VMEM_EPT_XU
									 : need_of(v->access.type, e.mbec, user);
	/* The page accessed may sit in a 2-MByte EPT page when no other page shares it. */
	for (unsigned k = 0; k < n; k++) {
		bool shared = false;
		for (unsigned j = 0; j < n; j++)
			shared |= j != k && (pg[j].gpa >> 21) == (pg[k].gpa >> 21);
		pg[k].big = pg[k].level == 0 && !shared && vg_coin(&g);
		uint64_t need = pg[k].level ? table_need : final_need;
		uint64_t bits = rights(&g, need, e.mbec, false) | leaf_attrs(&g);
		if (pg[k].big) {
			uint64_t h = vg_frame(&g, 512 * PAGE);
			ept_map(&g, &e, pg[k].gpa & ~(512 * PAGE - 1), h, 2, bits);
			pg[k].hpa = h | (pg[k].gpa & (511 * PAGE));
		} else {
			pg[k].hpa = vg_frame(&g, PAGE);
			ept_map(&g, &e, pg[k].gpa, pg[k].hpa, 1, bits);
		}
	}
	for (size_t w = 0; w < nw; w++)
		for (unsigned k = 0; k < n; k++)
			if ((gw[w].addr & ~(PAGE - 1)) == pg[k].gpa)
				vg_put(&g, pg[k].hpa | (gw[w].addr & (PAGE - 1)), gw[w].value, gw[w].size);
	free(gw);

	/* The class: one page's EPT leaf changed. */
	int target = -1;
	if (cls == NC_FINAL || (cls == NC_MISC && vg_coin(&g)))
		for (unsigned k = 0; k < n; k++)
			target = pg[k].level == 0 ? (int)k : target;
	if (target < 0 && (cls == NC_TABLE || cls == NC_MISC)) {
		unsigned cand[8], nc = 0;
		for (unsigned k = 0; k < n; k++)
			if (pg[k].level && !(gu.pae && pg[k].level == 3)) /* the PDPTEs load must work */
				cand[nc++] = k;
		target = nc ? (int)cand[vg_rndn(&g, nc)] : -1;
	}
	unsigned tlevel = 0;
	if (target >= 0) {
		gpage *t = &pg[target];
		uint64_t ea = ept_entry_at(&g, &e, t->gpa, t->big ? 2 : 1);
		uint64_t ent = vg_get(&g, ea), r = ent & (7 | VMEM_EPT_XU);
		ent &= ~(7 | VMEM_EPT_XU);
		if (cls == NC_MISC) {
			static const uint64_t bad_mt[] = { 2, 3, 7 };
			uint64_t rsvd = reserved_bit(&g, t->big ? 2 : 1, true, g.maxphy);
			switch (vg_rndn(&g, rsvd ? 4 : 3)) {
			case 0:
				ent |= (r & VMEM_EPT_XU) | VMEM_EPT_W;
				break;
			case 1:
				ent |= (r & VMEM_EPT_XU) | VMEM_EPT_W | VMEM_EPT_X;
				break;
			case 2:
				ent = (ent & ~VMEM_EPT_MT_MASK) | r | bad_mt[vg_rndn(&g, 3)] << VMEM_EPT_MT_SHIFT;
				break;
			default:
				ent |= r | rsvd;
				break;
			}
		} else if (vg_rndn(&g, 3) == 0) {
			ent = 0; /* not present */
		} else if (t->level) {
			ent |= rights(&g, table_deny, e.mbec, true);
		} else {
			/* A fetch with MBEC is denied only without both XS and XU,
			 * whichever the guest's U/S makes it need. */
			bool both = v->access.type == VMEM_VACC_FETCH && e.mbec;
			ent |= rights(&g, both ? VMEM_EPT_X : final_need, e.mbec && !both, true);
		}
		vg_put(&g, ea, ent, 8);
		tlevel = t->level;
	}
	char what[128];
	if (cls == NC_TABLE || (cls == NC_MISC && tlevel))
		snprintf(what, sizeof(what), "nested ept%u %s@L%u %s", e.top, nclass_names[cls], tlevel, gwhat);
	else
		snprintf(what, sizeof(what), "nested ept%u %s %s", e.top, nclass_names[cls], gwhat);
	return vg_finish(&g, seed, index, what);
}
