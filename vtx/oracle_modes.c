/* oracle_modes.c: oracle scenarios for the guest modes: 32-bit (4K, 4M, PSE-36) and PAE guests, CPL 3, SMEP/SMAP/PKU, 1G pages, as nested vectors. */
#include "oracle_int.h"
#include "rt.h"
#include "layout.h"
#include <libvmem/ept_map.h>

#ifndef VTX_MODES_SCENARIOS
#define VTX_MODES_SCENARIOS 300
#endif

#define CR4_PSE  (1ull << 4)
#define CR4_PAE  (1ull << 5)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE  (1ull << 22)
#define EFER_NXE (1ull << 11)

/* The code's own tables below the scenario's top table (control region). */
#define CODE_TABLES_GPA 0x6000ull

enum gmode { GM_32, GM_PAE, GM_4L };
static const char *const mode_name[] = { "32-bit", "PAE", "4-level" };

struct mscen {
	enum gmode mode;
	unsigned top, leaf, ntab;         /* levels: top table, guest leaf; tables on la's path */
	enum oracle_access access;
	unsigned cpl;
	bool ac, ad;
	uint32_t pkru;
	unsigned ept_level;
	uint64_t la, fgpa, fhpa;
	uint64_t tgpa[4], thpa[4];        /* [0] = the top table */
	uint64_t cr3_off;                 /* PAE: CR3 bits 11:5 */
	uint64_t cr0, cr4, efer;
	struct oracle_desc d;
};

static unsigned width(const struct mscen *s)
{
	return s->mode == GM_32 ? 4 : 8;
}

/* Index of la in the table of `level` (SDM vol. 3A 4.3, 4.4.2, 4.5.4). */
static unsigned index_of(enum gmode m, unsigned level, uint64_t la)
{
	if (m == GM_32)
		return (unsigned)(la >> (12 + 10 * (level - 1))) & 0x3ff;
	if (m == GM_PAE && level == 3)
		return (unsigned)(la >> 30) & 3;
	return (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
}

static uint64_t page_size(enum gmode m, unsigned level)
{
	return m == GM_32 && level == 2 ? 1ull << 22 : LVL_SIZE(level);
}

static bool is_pdpte(const struct mscen *s, unsigned i)
{
	return s->mode == GM_PAE && i == 0;
}

/* Host address of an entry: of linear address la in table i (0 = top). */
static uint64_t entry_at(const struct mscen *s, uint64_t table_hpa, unsigned i, uint64_t la)
{
	return table_hpa + (i == 0 ? s->cr3_off : 0) + index_of(s->mode, s->top - i, la) * width(s);
}

static uint64_t entry_hpa(const struct mscen *s, unsigned i)
{
	return entry_at(s, s->thpa[i], i, s->la);
}

static uint64_t get(const struct mscen *s, uint64_t hpa)
{
	return width(s) == 4 ? *(uint32_t *)(uintptr_t)hpa : *oracle_hp(hpa);
}

static void set(const struct mscen *s, uint64_t hpa, uint64_t v)
{
	if (width(s) == 4)
		*(uint32_t *)(uintptr_t)hpa = (uint32_t)v;
	else
		*oracle_hp(hpa) = v;
}

/* GPAs: 32-bit tables (and the PAE PDPT: CR3 is 32 bits) in [2^31, 2^32), the
 * final access below 4G in [2^30, 2^31), so a 1G EPT leaf there never holds
 * a table; anything else in [2^39, 2^40). */
static uint64_t gpa_lo_table(void)
{
	return (1ull << 31) | (oracle_rnd() & 0x7ffff000ull);
}

static uint64_t gpa_lo_final(void)
{
	return (1ull << 30) | (oracle_rnd() & 0x3ffff000ull);
}

/* A leaf maps `base`; a 4M PDE holds address bits 39:32 in bits 20:13 (PSE-36, SDM vol. 3A 4.3). */
static uint64_t leaf_entry(const struct mscen *s, uint64_t base)
{
	if (s->mode == GM_32 && s->leaf == 2)
		return (base & 0xffc00000ull) | (((base >> 32) & 0xff) << 13) | G_PS;
	return base | (s->leaf > 1 ? G_PS : 0);
}

/* The code page (linear 0x1000) through the same top table, below it the
 * control region's tables; accessed flags set, user at CPL 3. */
static void code_path(const struct mscen *s)
{
	uint64_t table = s->thpa[0];
	for (unsigned i = 0; i < s->top; i++) {
		unsigned level = s->top - i;
		uint64_t next = level > 1 ? CODE_TABLES_GPA + 0x1000 * i : GUEST_CODE_GPA;
		uint64_t e = next | G_P;
		if (!is_pdpte(s, i))
			e |= G_RW | G_A | (s->cpl == 3 ? G_US : 0);
		set(s, entry_at(s, table, i, GUEST_CODE_GPA), e);
		table = GUEST_C_HPA + next;
		if (level > 1)
			memset(oracle_hp(table), 0, 4096);
	}
}

/* A reserved bit for la's entry in table i, or 0 if the entry has none
 * worth setting (a PAE PDPTE's would fail VM entry, SDM vol. 3C 26.3.1.6). */
static unsigned reserved_bit(const struct mscen *s, unsigned i, unsigned maxphy)
{
	unsigned level = s->top - i;
	bool leaf = i == s->ntab - 1;
	if (s->mode == GM_32)
		return leaf && level == 2 ? 21 : 0; /* 4M PDE bits 21:(M-19), M = 40 */
	if (is_pdpte(s, i))
		return 0;
	if (leaf && level > 1 && oracle_chance(30))
		return 13 + oracle_rnd_below(9 * (level - 1) - 1); /* a large leaf's bits 20:13 or 29:13 */
	if (s->mode == GM_4L && level == 4 && oracle_chance(30))
		return 7; /* PS in a PML4E */
	/* PAE: bits 62:M; 4-level: 51:M (SDM vol. 3A Tables 4-8 to 4-11, 4-14 to 4-19). */
	return maxphy + oracle_rnd_below((s->mode == GM_PAE ? 63 : 52) - maxphy);
}

static void mutate_guest(struct mscen *s, unsigned maxphy)
{
	unsigned i = oracle_rnd_below(s->ntab);
	uint64_t a = entry_hpa(s, i), e = get(s, a);
	unsigned k = oracle_rnd_below(100), bit;
	d_add(&s->d, "; guest L");
	d_num(&s->d, s->top - i);
	if (k < 20 || (is_pdpte(s, i) && k < 70)) {
		e &= ~G_P;
		d_add(&s->d, " not present");
	} else if (k < 35 && !is_pdpte(s, i)) {
		e &= ~G_RW;
		d_add(&s->d, " read-only");
	} else if (k < 47 && s->mode != GM_32 && !is_pdpte(s, i)) {
		e |= G_XD;
		d_add(&s->d, " XD");
	} else if (k < 65 && !is_pdpte(s, i)) {
		if (s->cpl == 3) {
			e &= ~G_US;
			d_add(&s->d, " supervisor");
		} else {
			for (unsigned j = 0; j < s->ntab; j++)
				if (!is_pdpte(s, j) && j != i)
					set(s, entry_hpa(s, j), get(s, entry_hpa(s, j)) | G_US);
			e |= G_US;
			d_add(&s->d, " user (all levels)");
		}
	} else if (k < 82 && (bit = reserved_bit(s, i, maxphy)) != 0) {
		e |= 1ull << bit;
		d_add(&s->d, " reserved bit ");
		d_num(&s->d, bit);
	} else if (k < 90 && s->mode == GM_32 && s->leaf == 1 && i == 0 && !(s->cr4 & CR4_PSE)) {
		e |= G_PS; /* ignored without CR4.PSE (SDM vol. 3A 4.3) */
		d_add(&s->d, " PS, CR4.PSE 0");
	} else if (!is_pdpte(s, i)) {
		e |= G_A | (i == s->ntab - 1 ? G_D : 0);
		d_add(&s->d, " A/D preset");
	}
	set(s, a, e);
}

static void build_tables(struct mscen *s, vmem_ept *ept)
{
	for (unsigned i = 0; i < s->ntab; i++) {
		for (;;) {
			bool lo = s->mode == GM_32 || (s->mode == GM_PAE && (i == 0 || oracle_chance(50)));
			s->tgpa[i] = lo ? gpa_lo_table() : oracle_gpa_hi();
			bool clash = false;
			for (unsigned j = 0; j < i; j++)
				clash |= s->tgpa[j] == s->tgpa[i];
			if (!clash)
				break;
		}
		void *page = rt_alloc_page();
		RT_ASSERT(page);
		s->thpa[i] = (uint64_t)(uintptr_t)page;
		RT_ASSERT(vmem_ept_map(ept, s->tgpa[i], s->thpa[i], 4096, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X,
				       VMEM_MT_WB, false, NULL) == VMEM_OK);
	}
	if (s->mode == GM_PAE)
		s->cr3_off = oracle_rnd() & 0xfe0;
}

/* The final access's EPT leaf into the sink, then la (top index not the code's). */
static void place_final(struct mscen *s, vmem_ept *ept)
{
	uint64_t esz = LVL_SIZE(s->ept_level), region;
	bool lo = s->mode == GM_32 ? s->leaf == 1 || oracle_chance(50) : s->mode == GM_PAE && oracle_chance(50);
	for (;;) {
		region = (lo ? gpa_lo_final() : oracle_gpa_hi()) & ~(esz - 1);
		bool clash = false;
		for (unsigned i = 0; i < s->ntab; i++)
			clash |= oracle_overlaps(region, esz, s->tgpa[i], 4096);
		if (!clash)
			break;
	}
	s->fgpa = region + oracle_final_off(s->ept_level, s->access);
	oracle_map_final(ept, region, s->ept_level);
	uint64_t gsz = page_size(s->mode, s->leaf);
	uint64_t span = s->mode == GM_4L ? 0x0000ffffffffffffull : 0xffffffffull;
	do {
		s->la = (oracle_rnd() & span & ~(gsz - 1)) | (s->fgpa & (gsz - 1));
		if (s->la & (1ull << 47))
			s->la |= 0xffff000000000000ull;
	} while (index_of(s->mode, s->top, s->la) == index_of(s->mode, s->top, GUEST_CODE_GPA));
	for (unsigned i = 0; i < s->ntab; i++) {
		uint64_t e = (i + 1 < s->ntab ? s->tgpa[i + 1] : leaf_entry(s, s->fgpa & ~(gsz - 1))) | G_P;
		if (!is_pdpte(s, i))
			e |= G_RW | (s->cpl == 3 ? G_US : 0);
		set(s, entry_hpa(s, i), e);
	}
}

static void choose_regs(struct mscen *s, const struct vtx_caps *c)
{
	s->cr0 = 0x80000033 | (oracle_chance(70) ? 0x10000 : 0);   /* PG NE ET MP PE, WP */
	s->cr4 = 0x2080;                                           /* VMXE PGE */
	if (s->mode == GM_32 && (s->leaf == 2 || oracle_chance(50)))
		s->cr4 |= CR4_PSE;
	if (s->mode != GM_32)
		s->cr4 |= CR4_PAE;
	if (c->smep && oracle_chance(30))
		s->cr4 |= CR4_SMEP;
	if (c->smap && oracle_chance(30))
		s->cr4 |= CR4_SMAP;
	if (s->mode == GM_4L && c->pku && oracle_chance(50)) {
		s->cr4 |= CR4_PKE;
		s->pkru = (uint32_t)oracle_rnd();
		unsigned key = oracle_rnd_below(16);
		uint64_t a = entry_hpa(s, s->ntab - 1);
		set(s, a, get(s, a) | (uint64_t)key << 59);
		d_add(&s->d, ", key ");
		d_num(&s->d, key);
	}
	s->efer = (s->mode == GM_4L ? 0x500 : 0) | (c->nx && oracle_chance(75) ? EFER_NXE : 0);
}

static const char *const acc_name[] = { "read", "write", "fetch" };
static const char *const size_name[] = { "", "4K", "2M", "1G" };

static void describe(struct mscen *s)
{
	d_add(&s->d, mode_name[s->mode]);
	d_add(&s->d, ", ");
	d_add(&s->d, acc_name[s->access]);
	d_add(&s->d, s->cpl ? ", CPL 3" : ", CPL 0");
	if (s->ac)
		d_add(&s->d, ", AC");
	d_add(&s->d, ", guest ");
	d_add(&s->d, s->mode == GM_32 && s->leaf == 2 ? "4M" : size_name[s->leaf]);
	d_add(&s->d, ", EPT ");
	d_add(&s->d, size_name[s->ept_level]);
	d_add(&s->d, s->ad ? ", EPT A/D" : ", no EPT A/D");
}

struct modes_stats {
	unsigned emitted, skipped, kd2, kd3, by_result[4], by_mode[3], cpl3, pke, smep, smap;
	uint64_t qual_bits;
};

static void guest_words(const struct mscen *s, uint64_t eptp, struct oracle_words *w)
{
	memset(w, 0, sizeof(*w));
	for (unsigned i = 0; i < s->ntab; i++) {
		oracle_add_ept_path(w, eptp, s->tgpa[i]);
		oracle_words_add_sized(w, entry_hpa(s, i), width(s));
	}
	oracle_add_ept_path(w, eptp, s->fgpa);
	oracle_words_read(w, false);
}

/* KD3 (vtx/bochs_kd.c): Bochs 2.7 applies PKRU by the CPL, not by the
 * address's mode: keys govern user-mode addresses only, for supervisor-mode
 * accesses too (SDM vol. 3A 4.6.1, 4.6.2). Marked: a PK fault on a
 * supervisor-mode address, or a CPL 0 data access to a user-mode address
 * whose key has access disable set (Bochs checks that bit at CPL 3 only). */
static bool kd3(const struct mscen *s, const struct oracle_vector *v, bool user_addr, unsigned key)
{
	if (!(s->cr4 & CR4_PKE) || s->access == ORACLE_FETCH)
		return false;
	if (!user_addr)
		return v->result == ORACLE_PAGE_FAULT && (v->error_code & 0x20);
	return s->cpl == 0 && ((s->pkru >> (2 * key)) & 1);
}

/* An exit caused by the code's own fetch (its walk shares the top table) is not la's answer. */
static const char *code_exit(const struct mscen *s, const struct vtx_exit *e)
{
	if (e->reason != EXIT_REASON_EPT_VIOLATION && e->reason != EXIT_REASON_EPT_MISCONFIG)
		return NULL;
	if (e->gpa < GUEST_C_SIZE || e->gpa == s->tgpa[0] + index_of(s->mode, s->top, GUEST_CODE_GPA) * width(s))
		return "EPT exit on the code's walk";
	if (e->reason == EXIT_REASON_EPT_VIOLATION && (e->qual & (1u << 7)) && e->gla != s->la)
		return "EPT violation for another linear address";
	return NULL;
}

extern const uint8_t guest_m64_read[], guest_m64_write[], guest_m64_fetch[], guest_m64_pkru_read[],
	guest_m64_pkru_write[], guest_m64_pkru_fetch[], guest_m64_read_hlt[], guest_m64_write_hlt[],
	guest_m32_read[], guest_m32_write[], guest_m32_fetch[], guest_m32_read_hlt[], guest_m32_write_hlt[];

static void run_one(const struct vtx_caps *c, unsigned id, struct modes_stats *st)
{
	uint64_t mark = rt_heap_mark();
	struct mscen s;
	memset(&s, 0, sizeof(s));
	s.mode = (enum gmode)oracle_rnd_below(3);
	s.top = s.mode == GM_32 ? 2 : s.mode == GM_PAE ? 3 : 4;
	s.leaf = 1 + oracle_rnd_below(s.mode == GM_4L && c->gbpages ? 3 : 2);
	s.ntab = s.top - s.leaf + 1;
	s.access = (enum oracle_access)oracle_rnd_below(3);
	s.cpl = oracle_chance(40) ? 3 : 0;
	s.ac = oracle_chance(50);
	s.ad = (c->ept_cap & EPT_CAP_AD) && oracle_chance(50);
	s.ept_level = 1 + oracle_rnd_below((c->ept_cap & EPT_CAP_1G) ? 3 : 2);
	describe(&s);

	vmem_ept *ept = oracle_ept_new(c, s.ad);
	uint64_t eptp = vmem_ept_eptp(ept);
	build_tables(&s, ept);
	place_final(&s, ept);
	choose_regs(&s, c);

	/* Variations: one EPT entry (the final access's path or a table's, never
	 * the PAE PDPT's: its PDPTEs come from the VMCS), guest entries. */
	if (oracle_chance(40)) {
		unsigned i = oracle_rnd_below(s.ntab + 1);
		if (i < s.ntab && !is_pdpte(&s, i)) {
			char what[8] = { 'T', (char)('0' + s.top - i), 0 };
			oracle_mutate_ept(&s.d, eptp, s.tgpa[i], 1, what, c->maxphyaddr);
		} else {
			oracle_mutate_ept(&s.d, eptp, s.fgpa, s.ept_level, "final", c->maxphyaddr);
		}
	}
	if (oracle_chance(55))
		mutate_guest(&s, c->maxphyaddr);
	if (oracle_chance(15)) {
		for (unsigned i = 0; i < s.ntab; i++)
			if (!is_pdpte(&s, i))
				set(&s, entry_hpa(&s, i), get(&s, entry_hpa(&s, i)) | G_A);
		d_add(&s.d, "; guest A preset");
	}
	oracle_code_init(eptp);
	code_path(&s);

	struct oracle_words w;
	guest_words(&s, eptp, &w);
	bool user_addr = true;
	for (unsigned i = 0; i < s.ntab; i++)
		user_addr &= is_pdpte(&s, i) || (get(&s, entry_hpa(&s, i)) & G_US) != 0;
	unsigned key = (unsigned)(get(&s, entry_hpa(&s, s.ntab - 1)) >> 59) & 15;

	unsigned leaf = oracle_ept_leaf_level(eptp, s.fgpa);
	uint64_t lsz = leaf ? LVL_SIZE(leaf) : 4096, gsz = page_size(s.mode, s.leaf);
	s.fhpa = leaf ? ((*oracle_ept_entry(eptp, s.fgpa, leaf) & ADDR_MASK & ~(lsz - 1)) | (s.fgpa & (lsz - 1))) : 0;
	bool in_sink = s.fhpa >= SINK_HPA && s.fhpa + 8 <= SINK_HPA + SINK_SIZE;
	if (s.access == ORACLE_FETCH && in_sink)
		*(uint8_t *)(uintptr_t)s.fhpa = 0xF4; /* HLT */

	bool pke = s.cr4 & CR4_PKE, m32 = s.mode != GM_4L;
	const uint8_t *const stubs[3][3] = {
		{ guest_m64_read, guest_m64_write, guest_m64_fetch },
		{ guest_m64_pkru_read, guest_m64_pkru_write, guest_m64_pkru_fetch },
		{ guest_m32_read, guest_m32_write, guest_m32_fetch },
	};
	const uint8_t *stub = stubs[m32 ? 2 : pke ? 1 : 0][s.access];
	const uint8_t *hlt = s.access == ORACLE_READ ? (m32 ? guest_m32_read_hlt : guest_m64_read_hlt)
						     : (m32 ? guest_m32_write_hlt : guest_m64_write_hlt);
	struct vtx_guest g = { .cr0 = s.cr0, .cr3 = s.tgpa[0] + s.cr3_off, .cr4 = s.cr4, .efer = s.efer,
			       .rip = vtx_guest_rip(stub), .eptp = eptp, .legacy = m32, .cpl = s.cpl, .ac = s.ac };
	if (s.mode == GM_PAE)
		for (unsigned k = 0; k < 4; k++)
			g.pdpte[k] = *oracle_hp(s.thpa[0] + s.cr3_off + 8 * k);
	vtx_vmcs_setup(c, &g);
	vmx_invept_all();
	const uint64_t marker = 0xC0FFEE00C0DE0000ull | id;
	struct vtx_gprs r = { .rax = s.pkru, .rbx = marker, .rdi = s.la };
	struct vtx_exit e;
	vtx_run(&r, &e);

	oracle_words_read(&w, true);
	uint64_t written = in_sink ? *oracle_hp(s.fhpa & ~7ull) : 0;
	if (in_sink)
		*oracle_hp(s.fhpa & ~7ull) = oracle_sink_tag(s.fhpa);

	struct oracle_desc idt = { .n = 0 };
	d_add(&idt, "bochs-modes-");
	d_add(&idt, id < 100 ? (id < 10 ? "00" : "0") : "");
	d_num(&idt, id);
	d_add(&idt, " (Bochs 2.7): ");
	d_add(&idt, s.d.s);
	struct oracle_vector v = {
		.kind = ORACLE_NESTED, .id = idt.s, .cr0 = vmcs_read(GUEST_CR0), .cr3 = vmcs_read(GUEST_CR3),
		.cr4 = vmcs_read(GUEST_CR4), .efer = vmcs_read(GUEST_IA32_EFER), .maxphyaddr = c->maxphyaddr,
		.gbpages = c->gbpages, .eptp = eptp, .addr = s.la, .type = s.access, .cpl = s.cpl, .ac = s.ac,
		.pkru = s.pkru, .mem = &w,
	};
	struct oracle_check k = { .e = &e, .access = s.access, .cpl = s.cpl, .narrow = m32, .la = s.la,
				  .fhpa = s.fhpa, .in_sink = in_sink, .rax = r.rax, .marker = marker,
				  .written = written, .hlt_rip = vtx_guest_rip(hlt) };
	const char *skip = code_exit(&s, &e);
	if (!skip)
		skip = oracle_classify(&k, &v, &st->qual_bits);
	if (v.result == ORACLE_OK) {
		v.hpa = s.fhpa;
		v.page_size = lsz < gsz ? lsz : gsz;
	}
	if (!skip && kd3(&s, &v, user_addr, key)) {
		v.note = "KD3";
		st->kd3++;
	}
	if (!skip && !s.ad) {
		uint64_t entry[4];
		for (unsigned i = 0; i < s.ntab; i++)
			entry[i] = entry_hpa(&s, i);
		if (oracle_kd2(&w, eptp, entry, s.tgpa, s.ntab)) {
			v.note = "KD2";
			st->kd2++;
		}
	}
	const uint64_t addr[3] = { s.la, s.fgpa, s.fhpa };
	if (!oracle_report("modes scenario", id, skip, &e, s.d.s, addr, &v)) {
		st->skipped++;
	} else {
		st->emitted++;
		st->by_result[v.result]++;
		st->by_mode[s.mode]++;
		st->cpl3 += s.cpl == 3;
		st->pke += pke;
		st->smep += (s.cr4 & CR4_SMEP) != 0;
		st->smap += (s.cr4 & CR4_SMAP) != 0;
	}
	rt_heap_release(mark);
}

void oracle_modes_run(const struct vtx_caps *c)
{
	struct modes_stats st;
	memset(&st, 0, sizeof(st));
	rt_printf("# vtx: modes oracle, %u scenarios\n", (unsigned)VTX_MODES_SCENARIOS);
	for (unsigned id = 1; id <= VTX_MODES_SCENARIOS; id++)
		run_one(c, id, &st);
	rt_printf("# vtx: modes: %u vectors (ok %u, page_fault %u, ept_violation %u, ept_misconfig %u; 32-bit %u, "
		  "PAE %u, 4-level %u; CPL 3 %u, PKE %u, SMEP %u, SMAP %u; KD2 %u, KD3 %u), %u skipped, "
		  "qualification bits seen 0x%lx\n", st.emitted, st.by_result[0], st.by_result[1], st.by_result[2],
		  st.by_result[3], st.by_mode[0], st.by_mode[1], st.by_mode[2], st.cpl3, st.pke, st.smep, st.smap,
		  st.kd2, st.kd3, st.skipped, st.qual_bits);
}
