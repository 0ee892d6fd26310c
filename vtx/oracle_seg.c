/* oracle_seg.c: the segmentation oracle: segment-register loads (MOV, POP and LDS/LES/LSS/LFS/LGS to ES/SS/DS/FS/GS, far JMP/CALL) and one access through the loaded register, in 32-bit protected, compatibility and 64-bit mode (16-bit addressing too), each printed as a JSON line of what Bochs did (docs/vtx.md, "The segmentation scenarios"). */
#include "oracle_int.h"
#include "rt.h"
#include "layout.h"
#include <libvmem/ept_map.h>
#include <libvmem/seg.h>

#ifndef VTX_SEG_SCENARIOS
#define VTX_SEG_SCENARIOS 400
#endif
/* Its own stream, so that the other oracles' scenarios do not move it. */
#define SEG_SEED 0x5E6

/* Guest-physical = guest-linear layout in the control region. */
#define PD32     0x10000ull /* 32-bit paging: PD, PT */
#define PT32     0x11000ull
#define PML4     0x12000ull /* 4-level: PML4, then PDPT/PD/PT for the low pages, */
#define TAB_LO   0x13000ull
#define TAB_EDGE 0x16000ull /* for the last canonical page below 2^47, */
#define TAB_HIGH 0x19000ull /* for the first canonical page at the top */
#define GDT      0x20000ull
#define LDT      0x21000ull
#define STACK    0x22000ull /* ESP = STACK + 4096: far CALL pushes there */
#define FARPTR   0x24000ull
#define WIN0     0x30000ull /* the windows every completing access must land in */
#define WIN_EDGE 0x00007ffffffff000ull
#define WIN_HIGH 0xffff800000000000ull
#define NWIN     3
static const uint64_t win_la[NWIN] = { WIN0, WIN_EDGE, WIN_HIGH };
static const uint64_t win_gpa[NWIN] = { WIN0, WIN0 + 0x1000, WIN0 + 0x2000 };

#define LDT_SEL  0x20 /* GDT entry 4 describes the LDT */
#define GDT_MIN  5    /* the scenario's descriptor is at index >= 5 in the GDT */

enum sop { OP_R1, OP_R2, OP_R4, OP_R8, OP_W1, OP_W2, OP_W4, OP_W8, OP_JMP, OP_CALL };
/* How the register is loaded: MOV (or far JMP/CALL for CS), POP, LDS/LES/LSS/LFS/LGS. */
enum sload { LD_MOV, LD_POP, LD_LXS };
static const char *const load_name[] = { "mov", "pop", "lxs" };
static const char *const lxs_name[] = { "LES", "", "LSS", "LDS", "LFS", "LGS" };
static const char *const op_name[] = { "read", "read", "read", "read", "write", "write", "write", "write",
				       "jmp", "call" };
static const char *const sreg_name[] = { "es", "cs", "ss", "ds", "fs", "gs" };
/* Stub rows (guest_x86_64.S): the data registers in this order. */
static const int stub_row[] = { 0, -1, 1, 2, 3, 4 };

struct seg_stub {
	uint64_t load, access, hlt;
};
extern const struct seg_stub seg_stubs[];
/* The second set's rows of seg_stubs: 16-bit addressing (ES SS DS FS GS x the 8 accesses), 64-bit far JMP/CALL. */
#define ROW_ADDR16 82
#define ROW_FAR64  122
/* POP and LxS loads (guest_x86_64.S): entry, then the load instruction itself; they jump to a MOV stub's access. */
struct seg_load {
	uint64_t entry, load;
};
extern const struct seg_load seg_loads[];
#define LD_POP32 0  /* ES SS DS FS GS */
#define LD_LXS32 5  /* LES LSS LDS LFS LGS */
#define LD_POP64 10 /* FS GS */
#define LD_LXS64 12 /* LSS LFS LGS */
#define SEG16_DISP 0x7ff0u /* the 16-bit stubs' displacement: the access is at (DI + 0x7ff0) mod 2^16 */
/* The second set: its own stream after the first set's, appended (ids 401...), so bochs-seg-v1's first 400 stay as they were. */
#ifndef VTX_SEG2_SCENARIOS
#define VTX_SEG2_SCENARIOS 400
#endif
#define SEG2_SEED 0x5E62

struct sscen {
	bool m64;
	bool v2, compat;             /* the second set; compatibility mode (IA-32e, CS.L = 0) */
	enum sload load;
	bool addr16, ptr64;          /* 16-bit addressing (0x67); far pointer m16:64 (REX.W) */
	uint64_t rsp, popped;        /* POP: the stack pointer and the value at it */
	unsigned cpl, sreg;
	enum sop op;
	unsigned size;
	uint16_t sel;
	uint64_t desc, slot;         /* the descriptor and its host address */
	uint32_t gdt_limit, ldt_limit;
	bool ldt_usable;
	uint64_t offset;             /* data: EDI/RDI (RBP); CS: the new EIP */
	uint64_t target;             /* the window address the scenario aims at */
	struct oracle_desc d;
};

/* The pattern byte of window address la: 7 bits, so a write (bit 7 set) always shows. */
static uint8_t pattern(uint64_t la)
{
	return (uint8_t)((la * 0x9E3779B97F4A7C15ull) >> 57);
}

static uint8_t *host(uint64_t gpa)
{
	return (uint8_t *)(uintptr_t)(GUEST_C_HPA + gpa);
}

static void set64(uint64_t gpa, uint64_t v)
{
	*(uint64_t *)(void *)host(gpa) = v;
}

/* An 8-byte code/data/system descriptor from its fields (SDM vol. 3A 3.4.5, Figure 3-8). */
static uint64_t desc_make(uint32_t base, uint32_t raw_limit, unsigned type, bool s, unsigned dpl, bool p,
			  bool avl, bool l, bool db, bool g)
{
	return (raw_limit & 0xffffull) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)(type & 15) << 40) |
	       ((uint64_t)s << 44) | ((uint64_t)(dpl & 3) << 45) | ((uint64_t)p << 47) |
	       ((uint64_t)((raw_limit >> 16) & 15) << 48) | ((uint64_t)avl << 52) | ((uint64_t)l << 53) |
	       ((uint64_t)db << 54) | ((uint64_t)g << 55) | ((uint64_t)(base >> 24) << 56);
}

/* Identity maps for the pages the guest uses: 32-bit and 4-level tables, P RW US A D. */
static void tables_init(void)
{
	static const uint64_t low[] = { GUEST_CODE_GPA, GDT, LDT, STACK, FARPTR, WIN0 };
	memset(host(PD32), 0, 0x10000);
	*(uint32_t *)(void *)host(PD32) = (uint32_t)PT32 | 0x27;
	set64(PML4, TAB_LO | 0x27);
	set64(TAB_LO, (TAB_LO + 0x1000) | 0x27);
	set64(TAB_LO + 0x1000, (TAB_LO + 0x2000) | 0x27);
	for (unsigned i = 0; i < sizeof(low) / sizeof(low[0]); i++) {
		/* The code page read-only (CR0.WP = 1): no scenario can change it, it is written once. */
		uint64_t pte = low[i] | (low[i] == GUEST_CODE_GPA ? 0x65 : 0x67);
		*(uint32_t *)(void *)host(PT32 + (low[i] >> 12) * 4) = (uint32_t)pte;
		set64(TAB_LO + 0x2000 + (low[i] >> 12) * 8, pte);
	}
	/* The page below 2^47 and the one at 0xffff8000_00000000 (PML4 entries 255, 256). */
	const uint64_t tab[2] = { TAB_EDGE, TAB_HIGH };
	for (unsigned k = 0; k < 2; k++) {
		uint64_t la = win_la[k + 1];
		unsigned idx[3] = { (unsigned)(la >> 30) & 511, (unsigned)(la >> 21) & 511, (unsigned)(la >> 12) & 511 };
		set64(PML4 + ((la >> 39) & 511) * 8, tab[k] | 0x27);
		set64(tab[k] + idx[0] * 8, (tab[k] + 0x1000) | 0x27);
		set64(tab[k] + 0x1000 + idx[1] * 8, (tab[k] + 0x2000) | 0x27);
		set64(tab[k] + 0x2000 + idx[2] * 8, win_gpa[k + 1] | 0x67);
	}
}

/* The windows' contents before a scenario (pattern, or HLT for a far transfer), built once. */
static uint64_t *win_pattern, *win_hlt;

static void windows_init(void)
{
	win_pattern = rt_alloc_page();
	uint64_t *more[2] = { rt_alloc_page(), rt_alloc_page() };
	win_hlt = rt_alloc_page();
	RT_ASSERT(win_pattern && more[0] && more[1] && win_hlt);
	RT_ASSERT(more[0] == win_pattern + 512 && more[1] == more[0] + 512); /* the bump allocator: contiguous */
	for (unsigned w = 0; w < NWIN; w++)
		for (unsigned i = 0; i < 4096; i++)
			((uint8_t *)win_pattern)[w * 4096 + i] = pattern(win_la[w] + i);
	for (unsigned i = 0; i < 512; i++)
		win_hlt[i] = 0xF4F4F4F4F4F4F4F4ull;
}

static void windows_fill(bool hlt)
{
	for (unsigned w = 0; w < NWIN; w++) {
		uint64_t *to = (uint64_t *)(void *)host(win_gpa[w]);
		const uint64_t *from = hlt ? win_hlt : win_pattern + 512 * w;
		for (unsigned i = 0; i < 512; i++)
			to[i] = from[i];
	}
}

/* The first and last changed byte of the windows: where a write landed. */
static bool windows_scan(uint64_t *first, unsigned *count)
{
	bool seen = false;
	for (unsigned w = 0; w < NWIN; w++) {
		const uint64_t *now = (const uint64_t *)(void *)host(win_gpa[w]);
		for (unsigned q = 0; q < 512; q++) {
			if (now[q] == win_pattern[512 * w + q])
				continue;
			for (unsigned i = 8 * q; i < 8 * q + 8; i++) {
				if (host(win_gpa[w])[i] == pattern(win_la[w] + i))
					continue;
				if (!seen)
					*first = win_la[w] + i, *count = 0;
				seen = true;
				*count = (unsigned)(win_la[w] + i - *first) + 1;
			}
		}
	}
	return seen;
}

static unsigned pick(const unsigned *weights, unsigned n)
{
	unsigned total = 0, r;
	for (unsigned i = 0; i < n; i++)
		total += weights[i];
	r = oracle_rnd_below(total);
	for (unsigned i = 0; i < n; i++) {
		if (r < weights[i])
			return i;
		r -= weights[i];
	}
	return n - 1;
}

static uint32_t raw_limit(void)
{
	static const uint32_t special[] = { 0, 0xf, 0xffff, 0xfffff, 0x1 };
	switch (oracle_rnd_below(3)) {
	case 0:
		return (uint32_t)oracle_rnd() & 0xfffff;
	case 1:
		return (uint32_t)oracle_rnd() & 0xfff;
	default:
		return special[oracle_rnd_below(5)];
	}
}

/* Type and S: mostly what the register accepts, else anything (CS: no gate or TSS, which a far
 * transfer would follow: the library models neither). */
static void pick_type(const struct sscen *s, unsigned *type, bool *sflag)
{
	static const unsigned cs_sys[] = { 0, 2, 3, 8, 10, 11, 13 };
	static const unsigned ss_ok[] = { 2, 3, 6, 7 };
	unsigned k = oracle_rnd_below(100);
	*sflag = true;
	if (s->sreg == VMEM_SREG_CS) {
		if (k < 72) {
			*type = 8 + oracle_rnd_below(8);
		} else if (k < 86) {
			*type = oracle_rnd_below(8);
		} else {
			*type = cs_sys[oracle_rnd_below(7)];
			*sflag = false;
		}
		return;
	}
	if (s->sreg == VMEM_SREG_SS && k < 60) {
		*type = ss_ok[oracle_rnd_below(4)];
	} else if (k < 65) {
		*type = oracle_rnd_below(8) | (oracle_chance(25) ? 0xa : 0); /* data, or readable code */
	} else {
		*type = oracle_rnd_below(16);
		*sflag = oracle_chance(70);
	}
}

/* An offset at an edge of the segment the descriptor describes (SDM vol. 3A 5.3), or anywhere. */
static uint64_t pick_offset(uint32_t limit, bool expdown, bool big, unsigned size)
{
	int d = (int)oracle_rnd_below(7) - 3;
	unsigned k = oracle_rnd_below(100);
	if (k < 12)
		return (uint32_t)oracle_rnd();
	if (!expdown)
		return k < 35 ? (limit ? oracle_rnd() % ((uint64_t)limit + 1) : 0) : (uint32_t)(limit - size + 1 + d);
	uint32_t upper = big ? 0xffffffffu : 0xffffu;
	return k < 55 ? (uint32_t)(limit + 1 + d) : (uint32_t)(upper - size + 1 + d);
}

static uint16_t pick_selector(struct sscen *s, unsigned *index, bool *ldt)
{
	unsigned rpl = oracle_chance(60) ? s->cpl : oracle_rnd_below(4);
	unsigned k = oracle_rnd_below(100);
	unsigned ngdt = (s->gdt_limit + 1) / 8, nldt = (s->ldt_limit + 1) / 8;
	*ldt = false;
	/* Null SS: allowed in 64-bit mode at CPL < 3 with RPL = CPL, #GP(0) in compatibility mode (SDM vol. 2 MOV). */
	if (k < 7 || ((s->m64 || s->compat) && s->sreg == VMEM_SREG_SS && oracle_chance(45))) {
		*index = 0;
		d_add(&s->d, "null selector");
		return (uint16_t)rpl;
	}
	if (k < 15) {
		/* Beyond the limit: the entry straddles it, or lies past it (still in the table's page). */
		*ldt = oracle_chance(40);
		unsigned n = *ldt ? nldt : ngdt;
		*index = n + oracle_rnd_below(8);
		d_add(&s->d, *ldt ? "beyond the LDT limit" : "beyond the GDT limit");
	} else if (k < 45) {
		*ldt = true;
		*index = nldt ? oracle_rnd_below(nldt) : 0;
		d_add(&s->d, s->ldt_usable ? "LDT" : "LDT (LDTR unusable)");
	} else {
		*index = GDT_MIN + oracle_rnd_below(ngdt - GDT_MIN);
		d_add(&s->d, "GDT");
	}
	return (uint16_t)(*index << 3 | (*ldt ? 4u : 0u) | rpl);
}

/* v in `digits` hex digits. */
static void d_hex(struct oracle_desc *d, uint64_t v, unsigned digits)
{
	static const char hx[] = "0123456789abcdef";
	char t[17];
	for (unsigned i = 0; i < digits; i++)
		t[i] = hx[(v >> (4 * (digits - 1 - i))) & 15];
	t[digits] = 0;
	d_add(d, t);
}

static void describe_desc(struct sscen *s, unsigned type, bool sflag, unsigned dpl, bool p, bool g, bool db)
{
	d_add(&s->d, sflag ? (type & 8 ? ", code type " : ", data type ") : ", system type ");
	d_num(&s->d, type);
	d_add(&s->d, ", DPL ");
	d_num(&s->d, dpl);
	d_add(&s->d, ", RPL ");
	d_num(&s->d, s->sel & 3);
	d_add(&s->d, p ? "" : ", not present");
	d_add(&s->d, g ? ", G" : "");
	d_add(&s->d, db ? ", B/D" : "");
}

/* 64-bit mode: where the access goes (base + offset), canonical or not (SDM vol. 3A 3.3.7.1). */
static uint64_t pick_la64(struct sscen *s)
{
	unsigned k = oracle_rnd_below(100);
	uint64_t r = oracle_rnd_below(4096 - s->size + 1);
	if (k < 35)
		return WIN0 + r;
	if (k < 65) {
		d_add(&s->d, ", at the top of the lower half");
		if (s->size > 1 && oracle_chance(50)) /* first byte canonical, last not */
			return (1ull << 47) - 1 - oracle_rnd_below(s->size - 1);
		return WIN_EDGE + 4096 - s->size - 3 + oracle_rnd_below(7); /* 3 bytes either side of 2^47 */
	}
	if (k < 80) {
		d_add(&s->d, ", at the bottom of the upper half");
		return WIN_HIGH - 3 + oracle_rnd_below(7);
	}
	d_add(&s->d, ", non-canonical");
	return (oracle_rnd() | (1ull << 47)) & ~(0xffffull << 48); /* bits 63:48 zero, 47 one */
}

static void build_body(struct sscen *s);
static void pick_stack(struct sscen *s);

/* The CPL, then the register by the mode's weights (ES CS SS DS FS GS). */
static void pick_cpl_sreg(struct sscen *s, const unsigned *w64, const unsigned *w32)
{
	static const unsigned cpl_w[] = { 40, 10, 10, 40 };
	s->cpl = pick(cpl_w, 4);
	s->sreg = pick(s->m64 ? w64 : w32, 6);
}

static void build(struct sscen *s)
{
	static const unsigned w64[] = { 6, 0, 30, 6, 29, 29 }, w32[] = { 14, 16, 18, 18, 17, 17 };
	s->m64 = oracle_chance(22);
	pick_cpl_sreg(s, w64, w32);
	s->op = s->sreg == VMEM_SREG_CS ? (oracle_chance(50) ? OP_JMP : OP_CALL) : (enum sop)oracle_rnd_below(8);
	s->size = s->op >= OP_JMP ? 1 : 1u << (s->op & 3);
	d_add(&s->d, s->m64 ? "64-bit, CPL " : "32-bit, CPL ");
	d_num(&s->d, s->cpl);
	d_add(&s->d, ", ");
	d_add(&s->d, s->op >= OP_JMP ? (s->op == OP_JMP ? "far JMP" : "far CALL") : "MOV ");
	if (s->op < OP_JMP)
		d_add(&s->d, sreg_name[s->sreg]);
	d_add(&s->d, ", ");
	build_body(s);
}

/* The descriptor tables, the selector, the descriptor and the offset: the first set's choices, and the
 * second set's where they differ (64-bit code targets, 32-bit LxS offsets in 64-bit mode, 16-bit addressing, POP). */
static void build_body(struct sscen *s)
{
	bool ia32e = s->m64 || s->compat, cs = s->sreg == VMEM_SREG_CS;
	s->gdt_limit = 8 * (GDT_MIN + 2 + oracle_rnd_below(40)) - 1;
	if (oracle_chance(20))
		s->gdt_limit -= 1 + oracle_rnd_below(7);
	s->ldt_usable = oracle_chance(90);
	s->ldt_limit = 8 * (1 + oracle_rnd_below(24)) - 1;
	if (oracle_chance(20))
		s->ldt_limit -= 1 + oracle_rnd_below(7);
	unsigned index;
	bool ldt;
	s->sel = pick_selector(s, &index, &ldt);
	s->slot = (ldt ? LDT : GDT) + 8 * index;

	unsigned type;
	bool sflag;
	pick_type(s, &type, &sflag);
	unsigned dpl = oracle_chance(55) ? s->cpl : oracle_rnd_below(4);
	bool p = oracle_chance(88), g = oracle_chance(50), db = oracle_chance(60), avl = oracle_chance(20);
	bool l = oracle_chance(s->v2 && ia32e && cs ? 40 : s->m64 ? 30 : 8) && (!cs || ia32e);
	if (s->v2 && cs && l && oracle_chance(70)) /* mostly a valid 64-bit code segment (L = 1 with D = 1 is #GP) */
		db = false;
	if (s->sreg == VMEM_SREG_SS && oracle_chance(50)) {
		s->sel = (uint16_t)((s->sel & ~3u) | s->cpl);
		dpl = s->cpl;
	} else if (s->sreg == VMEM_SREG_CS && oracle_chance(s->v2 ? 70 : 45)) {
		/* The privilege rules a direct transfer passes (SDM vol. 3A 5.8.1): RPL <= CPL; DPL = CPL, or <= CPL if conforming. */
		s->sel = (uint16_t)((s->sel & ~3u) | oracle_rnd_below(s->cpl + 1));
		dpl = (type & 4) ? oracle_rnd_below(s->cpl + 1) : s->cpl;
	} else if (s->sreg != VMEM_SREG_CS && oracle_chance(55)) {
		unsigned m = (s->sel & 3) > s->cpl ? (s->sel & 3) : s->cpl;
		dpl = m + oracle_rnd_below(4 - m); /* DPL >= max(CPL, RPL): more loads pass (SDM vol. 3A 5.6) */
	}
	uint32_t raw = raw_limit(), limit = g ? raw << 12 | 0xfff : raw;
	/* Second set: a flat 4 GiB read/write segment (base 0) and an access whose last byte passes 2^32 - 1 (SDM 5.3). */
	bool flat = s->v2 && !cs && !s->m64 && !s->addr16 && s->size > 1 && oracle_chance(10);
	if (flat) {
		type = 3, sflag = true, g = true, raw = 0xfffff, limit = 0xffffffffu;
		d_add(&s->d, " (flat 4 GiB)");
	}
	bool code = sflag && (type & 8), expdown = sflag && !code && (type & 4);
	describe_desc(s, type, sflag, dpl, p, g, db);
	d_add(&s->d, expdown ? ", expand-down" : "");
	d_add(&s->d, ", limit 0x");
	d_hex(&s->d, limit, 8);
	uint32_t base;
	if (flat) {
		base = 0;
		s->offset = 0x100000000ull - s->size + 1 + oracle_rnd_below(s->size - 1);
		s->target = s->offset;
	} else if (s->v2 && cs && ia32e && l && !db) {
		/* A 64-bit code segment: no limit, base ignored, RIP canonical (SDM vol. 2 JMP); m16:32 reaches 4 GiB only. */
		base = (uint32_t)oracle_rnd();
		s->target = s->ptr64 ? pick_la64(s) : WIN0 + oracle_rnd_below(4096);
		s->offset = s->target;
	} else if (s->op >= OP_JMP) {
		int dd = (int)oracle_rnd_below(6) - 3;
		s->offset = oracle_chance(60) ? (uint32_t)(limit + dd + 1) : (limit ? oracle_rnd() % ((uint64_t)limit + 1) : 0);
		s->target = WIN0 + oracle_rnd_below(4096);
		base = (uint32_t)(s->target - s->offset);
		if (s->ptr64 && oracle_chance(20)) /* RIP above 4 GiB: past any limit */
			s->offset |= (uint64_t)(1 + oracle_rnd_below(0xffff)) << 32;
	} else if (s->m64 && s->load == LD_LXS) {
		/* LSS/LFS/LGS load a 32-bit offset (m16:32) into EBP/EDI: the window from a base below it. */
		bool based = (s->sreg == VMEM_SREG_FS || s->sreg == VMEM_SREG_GS) && (s->sel & 0xfffc);
		s->target = WIN0 + oracle_rnd_below(4096 - s->size + 1);
		base = based ? (uint32_t)oracle_rnd_below((uint32_t)s->target + 1) : (uint32_t)oracle_rnd();
		s->offset = s->target - (based ? base : 0);
	} else if (s->m64) {
		base = (uint32_t)oracle_rnd();
		s->target = pick_la64(s);
		/* FS/GS add their base (SDM vol. 3A 3.2.4); the others' is 0. */
		bool based = (s->sreg == VMEM_SREG_FS || s->sreg == VMEM_SREG_GS) && (s->sel & 0xfffc);
		s->offset = s->target - (based ? base : 0);
	} else if (s->addr16) {
		/* The effective address (DI + disp) mod 2^16 at the segment's edges; EDI's upper half is ignored. */
		uint32_t ea = (uint32_t)pick_offset(limit, expdown, db, s->size) & 0xffff;
		s->target = WIN0 + oracle_rnd_below(4096 - s->size + 1);
		base = (uint32_t)(s->target - ea);
		s->offset = ((ea - SEG16_DISP) & 0xffff) | ((uint32_t)oracle_rnd() & 0xffff0000u);
	} else {
		s->offset = pick_offset(limit, expdown, db, s->size);
		s->target = WIN0 + oracle_rnd_below(4096 - s->size + 1);
		base = (uint32_t)(s->target - s->offset);
	}
	s->desc = desc_make(base, raw, type, sflag, dpl, p, avl, l, db, g);
	if (s->load == LD_POP)
		pick_stack(s);
	if (s->op >= OP_JMP) {
		d_add(&s->d, ", to a HLT");
		return;
	}
	d_add(&s->d, ", ");
	d_num(&s->d, s->size);
	d_add(&s->d, s->op >= OP_W1 ? "-byte write" : "-byte read");
	d_add(&s->d, s->addr16 ? ", 16-bit address" : "");
}

/* POP: the selector in the low word of the stack slot (the rest random); the stack pointer in the stack page,
 * or (15%) where the pop's own read fails the SS checks: past 4 GiB in 32-bit code, past 2^47 in 64-bit mode. */
static void pick_stack(struct sscen *s)
{
	s->rsp = STACK + 0x800;
	if (oracle_chance(15)) {
		if (!s->m64)
			s->rsp = 0xffffffffu - oracle_rnd_below(3);
		else if (oracle_chance(50))
			s->rsp = (1ull << 47) - 7 + oracle_rnd_below(7);
		else
			s->rsp = (oracle_rnd() | (1ull << 47)) & ~(0xffffull << 48);
		d_add(&s->d, ", stack 0x");
		d_hex(&s->d, s->rsp, s->m64 ? 16 : 8);
	}
	s->popped = ((s->m64 ? oracle_rnd() : (uint32_t)oracle_rnd()) & ~0xffffull) | s->sel;
}

/* The second set: compatibility mode, 64-bit far JMP/CALL, POP and LxS loads, 16-bit addressing. */
static void build2(struct sscen *s)
{
	static const unsigned mode_w[] = { 35, 35, 30 }; /* protected, compat, 64-bit */
	/* 64-bit mode: far JMP/CALL, LSS, POP or LFS/LGS: POP ES/SS/DS and LDS/LES are invalid there (SDM vol. 2 POP, LDS). */
	static const unsigned w64[] = { 0, 40, 20, 0, 20, 20 }, w32[] = { 16, 20, 16, 16, 16, 16 };
	unsigned mode = pick(mode_w, 3), k;
	s->v2 = true;
	s->compat = mode == 1;
	s->m64 = mode == 2;
	pick_cpl_sreg(s, w64, w32);
	d_add(&s->d, s->m64 ? "64-bit, CPL " : s->compat ? "compat, CPL " : "32-bit, CPL ");
	d_num(&s->d, s->cpl);
	d_add(&s->d, ", ");
	if (s->sreg == VMEM_SREG_CS) {
		s->op = oracle_chance(50) ? OP_JMP : OP_CALL;
		s->ptr64 = s->m64 && oracle_chance(50);
		d_add(&s->d, s->op == OP_JMP ? "far JMP" : "far CALL");
		d_add(&s->d, s->ptr64 ? " m16:64" : "");
	} else {
		s->op = (enum sop)oracle_rnd_below(8);
		k = oracle_rnd_below(100);
		if (s->m64)
			s->load = s->sreg == VMEM_SREG_SS || k < 50 ? LD_LXS : LD_POP;
		else
			s->load = k < 40 ? LD_MOV : k < 70 ? LD_POP : LD_LXS;
		s->addr16 = !s->m64 && s->load == LD_MOV && oracle_chance(60);
		d_add(&s->d, s->load == LD_LXS ? lxs_name[s->sreg] : s->load == LD_POP ? "POP " : "MOV ");
		d_add(&s->d, s->load == LD_LXS ? "" : sreg_name[s->sreg]);
	}
	s->size = s->op >= OP_JMP ? 1 : 1u << (s->op & 3);
	d_add(&s->d, ", ");
	build_body(s);
}

static const enum vmcs_field seg_sel[] = { GUEST_ES_SELECTOR, GUEST_CS_SELECTOR, GUEST_SS_SELECTOR,
					   GUEST_DS_SELECTOR, GUEST_FS_SELECTOR, GUEST_GS_SELECTOR };
static const enum vmcs_field seg_base[] = { GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,
					    GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE };
static const enum vmcs_field seg_limit[] = { GUEST_ES_LIMIT, GUEST_CS_LIMIT, GUEST_SS_LIMIT,
					     GUEST_DS_LIMIT, GUEST_FS_LIMIT, GUEST_GS_LIMIT };
static const enum vmcs_field seg_ar[] = { GUEST_ES_ACCESS_RIGHTS, GUEST_CS_ACCESS_RIGHTS, GUEST_SS_ACCESS_RIGHTS,
					  GUEST_DS_ACCESS_RIGHTS, GUEST_FS_ACCESS_RIGHTS, GUEST_GS_ACCESS_RIGHTS };

struct seg_stats {
	unsigned n, m64, by_result[4], by_sreg[6], cpl[4];
	unsigned compat, by_load[3], addr16, ptr64, pop_bad; /* the second set */
};

static void hexkey(const char *key, uint64_t v)
{
	rt_printf(",\"%s\":\"0x%lx\"", key, v);
}

static void fill_tables(const struct sscen *s)
{
	/* The slots a scenario can name: GDT entries < 54, LDT entries < 32. */
	memset(host(GDT), 0, 0x200);
	memset(host(LDT), 0, 0x200);
	uint32_t cpl = s->cpl;
	/* Entries 1-4: the VM-entry CS and data (flat, DPL = CPL), a TSS, the LDT (not read by the scenario). */
	set64(GDT + 0x08, desc_make(0, 0xfffff, 0xb, true, cpl, true, false, s->m64, !s->m64, true));
	set64(GDT + 0x10, desc_make(0, 0xfffff, 0x3, true, cpl, true, false, false, true, true));
	set64(GDT + 0x18, desc_make(0, 0x67, 0xb, false, 0, true, false, false, false, false));
	set64(GDT + LDT_SEL, desc_make((uint32_t)LDT, s->ldt_limit, 0x2, false, 0, true, false, false, false, false));
	set64(s->slot, s->desc);
	if (s->ptr64) { /* m16:64: the offset, then the selector */
		set64(FARPTR, s->offset);
		set64(FARPTR + 8, s->sel);
	} else {
		set64(FARPTR, s->offset | (uint64_t)s->sel << 32);
	}
	if (s->load == LD_POP && s->rsp == STACK + 0x800)
		set64(s->rsp, s->popped);
}

/* The guest's first instruction and the load's: a MOV stub's, or a POP/LxS load that jumps to its access. */
static void entry_of(const struct sscen *s, const struct seg_stub *stub, uint64_t *start, uint64_t *load)
{
	*start = *load = stub->load;
	if (s->load == LD_MOV)
		return;
	static const unsigned lxs64[] = { 0, 0, 0, 0, 1, 2 };
	unsigned k = s->m64 ? (s->load == LD_POP ? LD_POP64 + (s->sreg == VMEM_SREG_GS) : LD_LXS64 + lxs64[s->sreg])
			    : (s->load == LD_POP ? LD_POP32 : LD_LXS32) + (unsigned)stub_row[s->sreg];
	*start = seg_loads[k].entry;
	*load = seg_loads[k].load;
}

static void run_one(const struct vtx_caps *c, uint64_t eptp, unsigned id, bool v2, struct seg_stats *st)
{
	struct sscen s;
	memset(&s, 0, sizeof(s));
	if (v2)
		build2(&s);
	else
		build(&s);
	windows_fill(s.op >= OP_JMP);
	fill_tables(&s);

	bool ia32e = s.m64 || s.compat;
	unsigned row = s.op >= OP_JMP ? (s.m64 ? ROW_FAR64 + (s.ptr64 ? 2 : 0) : 40) + (s.op - OP_JMP)
				      : (s.addr16 ? ROW_ADDR16 : s.m64 ? 42 : 0) + 8 * (unsigned)stub_row[s.sreg] + (unsigned)s.op;
	const struct seg_stub *stub = &seg_stubs[row];
	uint64_t start, load_at;
	entry_of(&s, stub, &start, &load_at);
	struct vtx_guest g = { .cr0 = 0x80010033, .cr3 = ia32e ? PML4 : PD32, .cr4 = ia32e ? 0x20 : 0,
			       .efer = ia32e ? 0x500 : 0, .rip = vtx_guest_rip((const void *)(uintptr_t)start),
			       .eptp = eptp, .legacy = !ia32e, .cpl = s.cpl };
	vtx_vmcs_setup(c, &g);
	if (s.compat) /* IA-32e mode with a 32-bit code segment: compatibility mode (SDM vol. 3A 2.2) */
		vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xc09b | s.cpl << 5);
	vmcs_write(GUEST_GDTR_BASE, GDT);
	vmcs_write(GUEST_GDTR_LIMIT, s.gdt_limit);
	if (s.ldt_usable) {
		vmcs_write(GUEST_LDTR_SELECTOR, LDT_SEL);
		vmcs_write(GUEST_LDTR_BASE, LDT);
		vmcs_write(GUEST_LDTR_LIMIT, s.ldt_limit);
		vmcs_write(GUEST_LDTR_ACCESS_RIGHTS, 0x82);
	}
	vmcs_write(GUEST_RSP, s.load == LD_POP ? s.rsp : STACK + 4096);
	vmx_invept_all();
	const uint64_t marker = 0x8a9b8c8d8e8f8081ull | ((uint64_t)(id & 0x7f) << 8);
	struct vtx_gprs r = { .rax = s.sel, .rdi = s.offset, .rbp = s.offset, .rsi = FARPTR,
			      .rbx = s.m64 ? marker : (uint32_t)marker, .rcx = marker >> 32,
			      .rdx = s.load == LD_MOV ? 0 : vtx_guest_rip((const void *)(uintptr_t)stub->access) };
	struct vtx_exit e;
	vtx_run(&r, &e);

	/* What happened: where the guest stopped tells the phase. */
	uint64_t load = vtx_guest_rip((const void *)(uintptr_t)load_at);
	uint64_t acc = vtx_guest_rip((const void *)(uintptr_t)stub->access);
	uint64_t hlt = vtx_guest_rip((const void *)(uintptr_t)stub->hlt);
	bool exc = e.reason == EXIT_REASON_EXCEPTION_NMI && !e.entry_failed;
	unsigned vec = e.intr_info & 0xff;
	bool far = s.op >= OP_JMP;
	uint16_t cs_now = (uint16_t)vmcs_read(GUEST_CS_SELECTOR);
	bool far_done = far && cs_now != (0x08 | s.cpl);
	bool halted = (s.cpl == 0 && e.reason == EXIT_REASON_HLT && !e.entry_failed) ||
		      (s.cpl > 0 && exc && vec == 13 && e.intr_err == 0);
	enum { R_OK, R_LOAD, R_ACCESS, R_OTHER } res = R_OTHER;
	if (far ? (halted && far_done && e.rip == s.offset) : (halted && e.rip == hlt))
		res = R_OK;
	else if (exc && e.rip == load && !far_done)
		res = R_LOAD;
	else if (exc && !far && e.rip == acc)
		res = R_ACCESS;

	rt_printf("{\"seg\":1,\"id\":\"bochs-seg-%s%u (Bochs 2.7): %s\",\"mode\":\"%s\",\"cpl\":%u", id < 100 ? (id < 10 ? "00" : "0") : "",
		  id, s.d.s, s.m64 ? "64-bit" : s.compat ? "compat" : "protected", s.cpl);
	hexkey("gdt_base", GDT);
	hexkey("gdt_limit", s.gdt_limit);
	if (s.ldt_usable) {
		hexkey("ldt_base", LDT);
		hexkey("ldt_limit", s.ldt_limit);
	}
	rt_printf(",\"sreg\":\"%s\",\"op\":\"%s\",\"size\":%u", sreg_name[s.sreg], op_name[s.op], s.size);
	hexkey("selector", s.sel);
	hexkey("desc", s.desc);
	hexkey("offset", s.offset);
	if (s.v2)
		rt_printf(",\"load\":\"%s\"", far ? "far" : load_name[s.load]);
	if (s.addr16) {
		rt_printf(",\"addr_size\":16");
		hexkey("disp", SEG16_DISP);
	}
	if (s.ptr64)
		rt_printf(",\"ptr\":\"m16:64\"");
	if (s.load == LD_POP) {
		hexkey("rsp", s.rsp);
		hexkey("stack", s.rsp == STACK + 0x800 ? s.popped : 0);
		rt_printf(",\"pop_size\":%u", s.m64 ? 8 : 4);
	}
	static const char *const res_name[] = { "ok", "load_fault", "access_fault", "other" };
	rt_printf(",\"bochs\":{\"result\":\"%s\"", res_name[res]);
	if (res == R_LOAD || res == R_ACCESS) {
		rt_printf(",\"vector\":%u", vec);
		hexkey("error_code", (e.intr_info & INTR_INFO_DELIVER_ERR) ? e.intr_err : 0);
		if (vec == 14)
			hexkey("cr2", e.qual);
	}
	if (res == R_OTHER) {
		rt_printf(",\"exit\":%u,\"vector\":%u", e.reason, exc ? vec : 0);
		hexkey("rip", e.rip);
	}
	hexkey("desc_after", *(uint64_t *)(void *)host(s.slot));
	if (res != R_LOAD) {
		hexkey("sel_after", vmcs_read(seg_sel[s.sreg]));
		hexkey("base_after", vmcs_read(seg_base[s.sreg]));
		hexkey("limit_after", vmcs_read(seg_limit[s.sreg]));
		hexkey("ar_after", vmcs_read(seg_ar[s.sreg]));
	}
	if (res == R_OK && far) {
		/* A 64-bit code segment: the linear address is RIP (base ignored, SDM vol. 3A 3.2.4). */
		bool l64 = ia32e && (vmcs_read(GUEST_CS_ACCESS_RIGHTS) & 0x2000);
		hexkey("linear", l64 ? e.rip : (uint32_t)(vmcs_read(GUEST_CS_BASE) + e.rip));
	} else if (res == R_OK && s.op >= OP_W1) {
		uint64_t first = 0;
		unsigned count = 0;
		if (windows_scan(&first, &count)) {
			hexkey("linear", first);
			rt_printf(",\"written\":%u", count);
		}
	} else if (res == R_OK) {
		uint64_t v = s.m64 || s.size < 8 ? r.rax : (r.rax & 0xffffffffull) | r.rdx << 32;
		hexkey("value", s.size == 8 ? v : v & ((1ull << (8 * s.size)) - 1));
	}
	rt_puts("}}\n");
	st->n++;
	st->m64 += s.m64;
	st->by_result[res]++;
	st->by_sreg[s.sreg]++;
	st->cpl[s.cpl]++;
	st->compat += s.compat;
	st->by_load[s.load]++;
	st->addr16 += s.addr16;
	st->ptr64 += s.ptr64;
	st->pop_bad += s.load == LD_POP && s.rsp != STACK + 0x800;
}

void oracle_seg_run(const struct vtx_caps *c)
{
	uint64_t mark = rt_heap_mark();
	struct seg_stats st;
	memset(&st, 0, sizeof(st));
	oracle_rnd_seed(SEG_SEED);
	vmem_ept *ept = oracle_ept_new(c, false);
	uint64_t eptp = vmem_ept_eptp(ept);
	vtx_guest_c_init();
	tables_init(); /* the guest never maps its tables: they stay as built */
	windows_init();
	rt_printf("# vtx: segmentation oracle, %u scenarios\n", (unsigned)VTX_SEG_SCENARIOS);
	for (unsigned id = 1; id <= VTX_SEG_SCENARIOS; id++)
		run_one(c, eptp, id, false, &st);
	rt_printf("# vtx: seg: %u scenarios (ok %u, load fault %u, access fault %u, other %u; 64-bit %u; ES %u, CS %u, "
		  "SS %u, DS %u, FS %u, GS %u; CPL 0 %u, 1 %u, 2 %u, 3 %u)\n", st.n, st.by_result[0], st.by_result[1],
		  st.by_result[2], st.by_result[3], st.m64, st.by_sreg[0], st.by_sreg[1], st.by_sreg[2], st.by_sreg[3],
		  st.by_sreg[4], st.by_sreg[5], st.cpl[0], st.cpl[1], st.cpl[2], st.cpl[3]);
	/* The second set, on its own stream, after the first (whose lines it leaves as they were). */
	memset(&st, 0, sizeof(st));
	oracle_rnd_seed(SEG2_SEED);
	for (unsigned id = VTX_SEG_SCENARIOS + 1; id <= VTX_SEG_SCENARIOS + VTX_SEG2_SCENARIOS; id++)
		run_one(c, eptp, id, true, &st);
	rt_printf("# vtx: seg2: %u scenarios (ok %u, load fault %u, access fault %u, other %u; protected %u, compat %u, "
		  "64-bit %u; MOV %u (16-bit address %u), POP %u (stack read failing %u), LxS %u, far %u (m16:64 %u); "
		  "CPL 0 %u, 3 %u)\n", st.n, st.by_result[0], st.by_result[1], st.by_result[2], st.by_result[3],
		  st.n - st.compat - st.m64, st.compat, st.m64, st.by_load[LD_MOV] - st.by_sreg[1], st.addr16,
		  st.by_load[LD_POP], st.pop_bad, st.by_load[LD_LXS], st.by_sreg[1], st.ptr64, st.cpl[0], st.cpl[3]);
	rt_heap_release(mark);
}
