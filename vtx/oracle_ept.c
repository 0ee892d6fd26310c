/* oracle_ept.c: EPT oracle scenarios: build EPT with libvmem and guest tables, vary them, let the guest make one access, record what Bochs did. */
#include "oracle.h"
#include "rt.h"
#include "layout.h"
#include <libvmem/ept_map.h>

#ifndef VTX_SEED
#define VTX_SEED 1
#endif
#ifndef VTX_SCENARIOS
#define VTX_SCENARIOS 200
#endif

extern const uint8_t guest_read[], guest_write[], guest_fetch[];

#define ADDR_MASK 0x000ffffffffff000ull
#define G_P  (1ull << 0)
#define G_RW (1ull << 1)
#define G_US (1ull << 2)
#define G_A  (1ull << 5)
#define G_D  (1ull << 6)
#define G_PS (1ull << 7)
#define G_XD (1ull << 63)
#define LVL_SIZE(l) (1ull << (12 + 9 * ((l) - 1)))

static uint64_t rng = VTX_SEED * 0x9E3779B97F4A7C15ull + 1;

/* xorshift64*: deterministic, so a run is reproducible from the seed. */
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

static unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static bool chance(unsigned percent)
{
	return rnd_below(100) < percent;
}

/* The sink holds a tag in every word, so a read tells where it landed. */
static uint64_t sink_tag(uint64_t hpa)
{
	return 0x5A5A000000000000ull | (hpa & ~7ull);
}

static uint64_t *hp(uint64_t hpa)
{
	return (uint64_t *)(uintptr_t)hpa;
}

/* The EPT entry at `level` on the path of gpa, straight from the tables
 * (identity-mapped): NULL if the walk cannot reach that level. */
static uint64_t *ept_entry(uint64_t eptp, uint64_t gpa, unsigned level)
{
	uint64_t table = eptp & ADDR_MASK;
	for (unsigned l = 4;; l--) {
		uint64_t *e = hp(table) + ((gpa >> (12 + 9 * (l - 1))) & 511);
		if (l == level)
			return e;
		if (!(*e & 7) || (l <= 3 && (*e & VMEM_EPT_PS)))
			return NULL;
		table = *e & ADDR_MASK;
		if (table >= RAM_END)
			return NULL; /* a reserved address bit was set: not followed */

	}
}

/* Level of the leaf on gpa's path, 0 if none. */
static unsigned ept_leaf_level(uint64_t eptp, uint64_t gpa)
{
	for (unsigned l = 4; l >= 1; l--) {
		uint64_t *e = ept_entry(eptp, gpa, l);
		if (!e || !(*e & 7))
			return 0;
		if (l == 1 || (l <= 3 && (*e & VMEM_EPT_PS)))
			return l;
	}
	return 0;
}

/* Whether every entry on gpa's EPT path grants write (bit 1). */
static bool ept_writable(uint64_t eptp, uint64_t gpa)
{
	unsigned leaf = ept_leaf_level(eptp, gpa);
	if (!leaf)
		return false;
	for (unsigned l = 4; l >= leaf; l--)
		if (!(*ept_entry(eptp, gpa, l) & VMEM_EPT_W))
			return false;
	return true;
}

static void add_ept_path(struct oracle_words *w, uint64_t eptp, uint64_t gpa)
{
	for (unsigned l = 4; l >= 1; l--) {
		uint64_t *e = ept_entry(eptp, gpa, l);
		if (!e)
			return;
		oracle_words_add(w, (uint64_t)(uintptr_t)e);
		if (!(*e & 7) || l == 1 || (l <= 3 && (*e & VMEM_EPT_PS)))
			return;
	}
}

/* One scenario's construction. */
struct scen {
	unsigned id;
	enum oracle_kind kind;
	enum oracle_access access;
	bool ad;
	unsigned ept_level, guest_level;  /* leaf levels: 1 = 4K, 2 = 2M, 3 = 1G */
	uint64_t la, fgpa, fhpa;          /* the access: linear, guest-physical, host-physical */
	unsigned ntab;                    /* guest tables used: 5 - guest_level */
	uint64_t tgpa[4], thpa[4];        /* [0] = PML4 (CR3) ... */
	uint64_t cr0, cr4, efer;
	char desc[160];
	unsigned dlen;
};

static void d_add(struct scen *s, const char *t)
{
	while (*t && s->dlen + 1 < sizeof(s->desc))
		s->desc[s->dlen++] = *t++;
	s->desc[s->dlen] = 0;
}

static void d_num(struct scen *s, uint64_t v)
{
	char b[20];
	int n = 0;
	do {
		b[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	char t[21];
	int i = 0;
	while (n)
		t[i++] = b[--n];
	t[i] = 0;
	d_add(s, t);
}

static uint64_t guest_entry_addr(const struct scen *s, unsigned i)
{
	unsigned level = 4 - i;
	return s->thpa[i] + ((s->la >> (12 + 9 * (level - 1))) & 511) * 8;
}

/* A GPA in [2^39, 2^40): EPT PML4E 1, apart from the control region. */
static uint64_t rnd_gpa_hi(void)
{
	return (1ull << 39) | (rnd() & ((1ull << 39) - 1) & ~0xfffull);
}

static bool overlaps(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	return a < b + bsz && b < a + asz;
}

static const char *const lvl_name[] = { "", "4K", "2M", "1G", "512G" };
static const char *const perm_name[] = { "---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx" };

/* Change one EPT entry on the path of gpa; returns false if nothing applies. */
static bool mutate_ept(struct scen *s, uint64_t eptp, uint64_t gpa, unsigned leaf, const char *what,
		       unsigned maxphy)
{
	unsigned level = leaf + rnd_below(5 - leaf);
	uint64_t *e = ept_entry(eptp, gpa, level);
	if (!e)
		return false;
	bool is_leaf = level == leaf;
	unsigned k = rnd_below(100);
	d_add(s, "; ");
	d_add(s, what);
	d_add(s, " EPT L");
	d_num(s, level);
	if (k < 50) {
		unsigned p = rnd_below(8);
		*e = (*e & ~7ull) | p;
		d_add(s, " perm ");
		d_add(s, perm_name[p]);
	} else if (k < 62) {
		/* Reserved: bits 51:MAXPHYADDR, or bits 7:3 of a non-leaf (only
		 * bits 6:3 below the PML4E, where bit 7 would make it a leaf). */
		unsigned bit;
		if (is_leaf || chance(50))
			bit = maxphy + rnd_below(52 - maxphy);
		else
			bit = 3 + rnd_below(level == 4 ? 5 : 4);
		*e |= 1ull << bit;
		d_add(s, " reserved bit ");
		d_num(s, bit);
	} else if (k < 72 && is_leaf) {
		static const unsigned bad_mt[] = { 2, 3, 7 };
		unsigned mt = bad_mt[rnd_below(3)];
		*e = (*e & ~VMEM_EPT_MT_MASK) | ((uint64_t)mt << VMEM_EPT_MT_SHIFT);
		d_add(s, " memory type ");
		d_num(s, mt);
	} else if (k < 80 && is_leaf && level > 1) {
		/* A large leaf whose address is not aligned to its size (SDM 29.3.3.1). */
		unsigned bit = 12 + rnd_below(9 * (level - 1));
		*e |= 1ull << bit;
		d_add(s, " misaligned bit ");
		d_num(s, bit);
	} else if (k < 88) {
		/* Ignored bits: 11, 52-62 (and 10 without MBEC). */
		unsigned bit = chance(30) ? 10 + rnd_below(2) : 52 + rnd_below(11);
		*e |= 1ull << bit;
		d_add(s, " ignored bit ");
		d_num(s, bit);
	} else if (k < 93 && (level == 4 || level == 1)) {
		*e |= VMEM_EPT_PS;
		d_add(s, level == 4 ? " PS (reserved)" : " bit 7 (ignored)");
	} else {
		*e |= VMEM_EPT_A | (is_leaf ? VMEM_EPT_D : 0);
		d_add(s, " A/D preset");
	}
	return true;
}

static void mutate_guest(struct scen *s, unsigned maxphy)
{
	unsigned i = rnd_below(s->ntab);
	uint64_t *e = hp(guest_entry_addr(s, i));
	unsigned k = rnd_below(100);
	d_add(s, "; guest L");
	d_num(s, 4 - i);
	if (k < 20) {
		*e &= ~G_P;
		d_add(s, " not present");
	} else if (k < 40) {
		*e &= ~G_RW;
		d_add(s, " read-only");
	} else if (k < 55) {
		*e |= G_XD;
		d_add(s, " XD");
	} else if (k < 70) {
		for (unsigned j = 0; j < s->ntab; j++)
			*hp(guest_entry_addr(s, j)) |= G_US;
		d_add(s, " user (all levels)");
	} else if (k < 82) {
		unsigned bit = maxphy + rnd_below(52 - maxphy);
		if (i == 0 && chance(30))
			bit = 7; /* PS in a PML4E is reserved */
		*e |= 1ull << bit;
		d_add(s, " reserved bit ");
		d_num(s, bit);
	} else {
		*e |= G_A | (i == s->ntab - 1 ? G_D : 0);
		d_add(s, " A/D preset");
	}
}

struct oracle_stats {
	unsigned emitted, skipped, by_result[4];
	uint64_t qual_bits;
};

static void run_one(const struct vtx_caps *c, unsigned id, struct oracle_stats *st)
{
	uint64_t mark = rt_heap_mark();
	struct scen s;
	memset(&s, 0, sizeof(s));
	s.id = id;
	s.kind = chance(40) ? ORACLE_EPT : ORACLE_NESTED;
	s.access = (enum oracle_access)rnd_below(3);
	s.ad = (c->ept_cap & EPT_CAP_AD) && chance(50);
	s.ept_level = 1 + rnd_below((c->ept_cap & EPT_CAP_1G) ? 3 : 2);
	s.guest_level = 1 + rnd_below(c->gbpages ? 3 : 2);
	s.ntab = 5 - s.guest_level;
	static const char *const acc[] = { "read", "write", "fetch" };
	d_add(&s, acc[s.access]);
	d_add(&s, s.ad ? ", EPT A/D" : ", no EPT A/D");
	d_add(&s, ", guest ");
	d_add(&s, lvl_name[s.guest_level]);
	d_add(&s, ", EPT ");
	d_add(&s, lvl_name[s.ept_level]);

	vmem_ept_config cfg = { .levels = 4, .ad = s.ad, .gbpages = (c->ept_cap & EPT_CAP_1G) != 0,
				.exec_only = (c->ept_cap & EPT_CAP_EXEC_ONLY) != 0, .eptp_mt = VMEM_MT_WB };
	vmem_ept *ept;
	RT_ASSERT(vmem_ept_new(&rt_allocator, &cfg, &ept) == VMEM_OK);
	RT_ASSERT(vmem_ept_grant(ept, 0, 1ull << 30) == VMEM_OK);
	const uint64_t rwx = VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X;
	RT_ASSERT(vmem_ept_map(ept, 0, GUEST_C_HPA, GUEST_C_SIZE, rwx, VMEM_MT_WB, false, NULL) == VMEM_OK);
	uint64_t eptp = vmem_ept_eptp(ept);

	/* Guest tables: in the control region (kind ept: only the final access
	 * is under test) or anywhere in PML4E 1 (kind nested). */
	for (unsigned i = 0; i < s.ntab; i++) {
		if (s.kind == ORACLE_EPT) {
			s.tgpa[i] = 0x10000 + 0x1000 * i;
			s.thpa[i] = GUEST_C_HPA + s.tgpa[i];
			memset(hp(s.thpa[i]), 0, 4096);
			continue;
		}
		for (;;) {
			s.tgpa[i] = (i && chance(40)) ? ((s.tgpa[i - 1] & ~0x1fffffull) | (rnd() & 0x1ff000))
						      : rnd_gpa_hi();
			bool clash = false;
			for (unsigned j = 0; j < i; j++)
				clash |= s.tgpa[j] == s.tgpa[i];
			if (!clash)
				break;
		}
		void *page = rt_alloc_page();
		RT_ASSERT(page);
		s.thpa[i] = (uint64_t)(uintptr_t)page;
		RT_ASSERT(vmem_ept_map(ept, s.tgpa[i], s.thpa[i], 4096, rwx, VMEM_MT_WB, false, NULL) == VMEM_OK);
	}

	/* The final access: its EPT leaf of the chosen size maps into the sink. */
	uint64_t esz = LVL_SIZE(s.ept_level), region, off;
	for (;;) {
		if (s.ept_level == 3)
			region = rnd_gpa_hi() & ~(esz - 1), off = SINK_HPA + (rnd() & (SINK_SIZE - 1));
		else
			region = rnd_gpa_hi() & ~(esz - 1), off = rnd() & (esz - 1);
		if (s.access != ORACLE_FETCH)
			off &= ~7ull;
		bool clash = false;
		for (unsigned i = 0; i < s.ntab; i++)
			clash |= s.kind == ORACLE_NESTED && overlaps(region, esz, s.tgpa[i], 4096);
		if (!clash)
			break;
	}
	uint64_t map_hpa = s.ept_level == 1 ? SINK_HPA + (rnd() & (SINK_SIZE - 1) & ~0xfffull)
			 : s.ept_level == 2 ? SINK_HPA : 0;
	RT_ASSERT(vmem_ept_map(ept, region, map_hpa, esz, rwx, VMEM_MT_WB, false, NULL) == VMEM_OK);
	RT_ASSERT(ept_leaf_level(eptp, region) == s.ept_level);
	s.fgpa = region + off;

	/* The guest's translation of la: la's page offset (guest page size) is fgpa's. */
	uint64_t gsz = LVL_SIZE(s.guest_level);
	for (;;) {
		s.la = (rnd() & 0x0000ffffffffffffull & ~(gsz - 1)) | (s.fgpa & (gsz - 1));
		if (s.la & (1ull << 47))
			s.la |= 0xffff000000000000ull;
		if ((s.la >> 12) != GUEST_CODE_GPA >> 12)
			break;
	}
	for (unsigned i = 0; i < s.ntab; i++) {
		unsigned level = 4 - i;
		uint64_t *e = hp(guest_entry_addr(&s, i));
		if (i + 1 < s.ntab)
			*e = s.tgpa[i + 1] | G_P | G_RW;
		else
			*e = (s.fgpa & ~(gsz - 1)) | G_P | G_RW | (level > 1 ? G_PS : 0);
	}

	/* Guest registers. */
	s.cr0 = 0x80000033 | (chance(70) ? 0x10000 : 0);           /* PG NE ET MP PE, WP */
	s.cr4 = 0x20a0;                                            /* VMXE PGE PAE */
	if (c->smep && chance(25))
		s.cr4 |= 1ull << 20;
	if (c->smap && chance(25))
		s.cr4 |= 1ull << 21;
	s.efer = 0x500 | (c->nx && chance(75) ? 0x800 : 0);        /* LMA LME, NXE */

	/* Variations: EPT entries on the final access's path (and, nested, on the
	 * guest tables' paths), guest entries, flags set in advance. */
	unsigned nmut = chance(22) ? 0 : chance(75) ? 1 : 2;
	for (unsigned m = 0; m < nmut; m++) {
		if (s.kind == ORACLE_NESTED && chance(45)) {
			unsigned i = rnd_below(s.ntab);
			char what[8] = { 'T', (char)('0' + 4 - i), 0 };
			mutate_ept(&s, eptp, s.tgpa[i], 1, what, c->maxphyaddr);
		} else {
			mutate_ept(&s, eptp, s.fgpa, s.ept_level, "final", c->maxphyaddr);
		}
	}
	if (s.kind == ORACLE_NESTED) {
		if (chance(35))
			mutate_guest(&s, c->maxphyaddr);
		if (chance(20)) {
			for (unsigned i = 0; i < s.ntab; i++)
				*hp(guest_entry_addr(&s, i)) |= G_A;
			d_add(&s, "; guest A preset");
		}
	}

	/* The code's own path: flags set now, so fetching it changes nothing. */
	vtx_guest_c_init();
	for (unsigned l = 4; l >= 2; l--)
		*ept_entry(eptp, GUEST_CODE_GPA, l) |= VMEM_EPT_A | (l == 2 ? VMEM_EPT_D : 0);

	/* The words the vector lists. */
	struct oracle_words w;
	memset(&w, 0, sizeof(w));
	if (s.kind == ORACLE_NESTED)
		for (unsigned i = 0; i < s.ntab; i++) {
			add_ept_path(&w, eptp, s.tgpa[i]);
			oracle_words_add(&w, guest_entry_addr(&s, i));
		}
	add_ept_path(&w, eptp, s.fgpa);
	for (unsigned i = 0; i < w.n; i++)
		w.before[i] = *hp(w.addr[i]);

	/* Where the access lands if it translates (from the entries as they are). */
	unsigned leaf = ept_leaf_level(eptp, s.fgpa);
	uint64_t lsz = leaf ? LVL_SIZE(leaf) : 4096;
	s.fhpa = leaf ? ((*ept_entry(eptp, s.fgpa, leaf) & ADDR_MASK & ~(lsz - 1)) | (s.fgpa & (lsz - 1))) : 0;
	bool in_sink = s.fhpa >= SINK_HPA && s.fhpa + 8 <= SINK_HPA + SINK_SIZE;
	uint8_t saved_byte = 0;
	if (s.access == ORACLE_FETCH && in_sink) {
		saved_byte = *(uint8_t *)(uintptr_t)s.fhpa;
		*(uint8_t *)(uintptr_t)s.fhpa = 0xF4; /* HLT */
	}

	extern const uint8_t guest_read[], guest_write[], guest_fetch[];
	const uint8_t *stub = s.access == ORACLE_READ ? guest_read : s.access == ORACLE_WRITE ? guest_write : guest_fetch;
	struct vtx_guest g = { .cr0 = s.cr0, .cr3 = GUEST_CR3A_GPA, .cr4 = s.cr4, .efer = s.efer,
			       .rip = vtx_guest_rip(stub), .eptp = eptp };
	vtx_vmcs_setup(c, &g);
	vmx_invept_all();
	const uint64_t marker = 0xC0FFEE0000000000ull | id;
	struct vtx_gprs r = { .rax = marker, .rsi = s.tgpa[0], .rdi = s.la };
	struct vtx_exit e;
	vtx_run(&r, &e);

	for (unsigned i = 0; i < w.n; i++)
		w.after[i] = *hp(w.addr[i]);
	uint64_t written = in_sink ? *hp(s.fhpa & ~7ull) : 0;
	if (in_sink) {
		*hp(s.fhpa & ~7ull) = sink_tag(s.fhpa);
		if (s.access == ORACLE_FETCH)
			*(uint8_t *)(uintptr_t)s.fhpa = saved_byte;
	}

	struct oracle_vector v;
	memset(&v, 0, sizeof(v));
	char id_text[200];
	{
		/* "bochs-<kind>-NNN (Bochs 2.7): what was varied" */
		struct scen t;
		t.dlen = 0;
		t.desc[0] = 0;
		d_add(&t, s.kind == ORACLE_EPT ? "bochs-ept-" : "bochs-nested-");
		if (id < 100)
			d_add(&t, "0");
		if (id < 10)
			d_add(&t, "0");
		d_num(&t, id);
		d_add(&t, " (Bochs 2.7): ");
		d_add(&t, s.desc);
		memcpy(id_text, t.desc, t.dlen + 1);
	}
	v.kind = s.kind;
	v.id = id_text;
	v.cr0 = vmcs_read(GUEST_CR0);
	v.cr3 = vmcs_read(GUEST_CR3);
	v.cr4 = vmcs_read(GUEST_CR4);
	v.efer = vmcs_read(GUEST_IA32_EFER);
	v.maxphyaddr = c->maxphyaddr;
	v.gbpages = c->gbpages;
	v.eptp = eptp;
	v.type = s.access;
	v.mem = &w;
	if (s.kind == ORACLE_EPT) {
		v.addr = s.fgpa;
		v.has_linear = true;
		v.linear = s.la;
	} else {
		v.addr = s.la;
	}

	const char *skip = NULL;
	if (e.entry_failed) {
		skip = "VM entry failed";
	} else if (e.reason == EXIT_REASON_HLT) {
		v.result = ORACLE_OK;
		v.hpa = s.fhpa;
		v.page_size = lsz < gsz || s.kind == ORACLE_EPT ? lsz : gsz;
		/* Bochs must show the access landed where the entries say (a HLT exit saves the RIP of the HLT). */
		if (!in_sink)
			skip = "access outside the sink";
		else if (s.access == ORACLE_READ && r.rax != sink_tag(s.fhpa))
			skip = "read returned another word";
		else if (s.access == ORACLE_WRITE && written != marker)
			skip = "write landed elsewhere";
		else if (s.access == ORACLE_FETCH && e.rip != s.la)
			skip = "HLT fetched from another address";
		else if (s.access != ORACLE_FETCH && e.rip != vtx_guest_rip(stub) + 6)
			skip = "HLT at an unexpected RIP";
	} else if (e.reason == EXIT_REASON_EXCEPTION_NMI && (e.intr_info & 0xff) == 14) {
		v.result = ORACLE_PAGE_FAULT;
		v.error_code = e.intr_err;
		if (e.qual != s.la)
			skip = "#PF for another address";
	} else if (e.reason == EXIT_REASON_EPT_VIOLATION) {
		v.result = ORACLE_EPT_VIOLATION;
		v.qual = e.qual;
		v.gpa = e.gpa;
		v.gla = e.gla;
		st->qual_bits |= e.qual;
	} else if (e.reason == EXIT_REASON_EPT_MISCONFIG) {
		v.result = ORACLE_EPT_MISCONFIG;
		v.gpa = e.gpa;
	} else {
		skip = vtx_exit_name(e.reason);
	}
	/* Kind ept covers the final access only. */
	if (!skip && s.kind == ORACLE_EPT &&
	    (v.result == ORACLE_PAGE_FAULT ||
	     ((v.result == ORACLE_EPT_VIOLATION || v.result == ORACLE_EPT_MISCONFIG) && e.gpa != s.fgpa)))
		skip = "exit not on the final access";
	/* KD2: with EPT A/D off, Bochs 2.7 sets guest A/D flags without the EPT
	 * write permission the SDM requires for them (vol. 3C 29.3.3.2). Seen as
	 * a guest entry that changed although its table's EPT path lacks W. */
	if (!skip && s.kind == ORACLE_NESTED && !s.ad)
		for (unsigned i = 0; i < s.ntab; i++) {
			uint64_t a = guest_entry_addr(&s, i), was = 0, now = 0;
			for (unsigned j = 0; j < w.n; j++)
				if (w.addr[j] == a)
					was = w.before[j], now = w.after[j];
			if (was != now && !ept_writable(eptp, s.tgpa[i]))
				v.note = "KD2";
		}
	if (skip) {
		rt_printf("# vtx: scenario %u skipped (%s): exit %u qual 0x%lx intr 0x%x rip 0x%lx; %s\n", id,
			  skip, e.reason, e.qual, e.intr_info, e.rip, s.desc);
		rt_printf("# vtx:   la 0x%lx gpa 0x%lx hpa 0x%lx\n", s.la, s.fgpa, s.fhpa);
		st->skipped++;
	} else {
		oracle_emit(&v);
		st->emitted++;
		st->by_result[v.result]++;
	}
	rt_heap_release(mark);
}

void oracle_run(const struct vtx_caps *c)
{
	/* Tag every sink word with its own address. */
	for (uint64_t a = SINK_HPA; a < SINK_HPA + SINK_SIZE; a += 8)
		*hp(a) = sink_tag(a);
	RT_ASSERT(c->maxphyaddr >= 40 && c->maxphyaddr < 52);
	struct oracle_stats st;
	memset(&st, 0, sizeof(st));
	rt_printf("# vtx: EPT oracle, seed %u, %u scenarios\n", (unsigned)VTX_SEED, (unsigned)VTX_SCENARIOS);
	for (unsigned id = 1; id <= VTX_SCENARIOS; id++)
		run_one(c, id, &st);
	rt_printf("# vtx: %u vectors (ok %u, page_fault %u, ept_violation %u, ept_misconfig %u), %u skipped, "
		  "qualification bits seen 0x%lx\n", st.emitted, st.by_result[0], st.by_result[1], st.by_result[2],
		  st.by_result[3], st.skipped, st.qual_bits);
}
