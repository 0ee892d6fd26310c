/* oracle_ept.c: EPT oracle scenarios: build EPT with libvmem and guest tables, vary them, let the guest make one access, record what Bochs did. */
#include "oracle_int.h"
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
	struct oracle_desc d;
};

static uint64_t guest_entry_addr(const struct scen *s, unsigned i)
{
	unsigned level = 4 - i;
	return s->thpa[i] + ((s->la >> (12 + 9 * (level - 1))) & 511) * 8;
}

static const char *const lvl_name[] = { "", "4K", "2M", "1G", "512G" };

static void mutate_guest(struct scen *s, unsigned maxphy)
{
	unsigned i = oracle_rnd_below(s->ntab);
	uint64_t *e = oracle_hp(guest_entry_addr(s, i));
	unsigned k = oracle_rnd_below(100);
	d_add(&s->d, "; guest L");
	d_num(&s->d, 4 - i);
	if (k < 20) {
		*e &= ~G_P;
		d_add(&s->d, " not present");
	} else if (k < 40) {
		*e &= ~G_RW;
		d_add(&s->d, " read-only");
	} else if (k < 55) {
		*e |= G_XD;
		d_add(&s->d, " XD");
	} else if (k < 70) {
		for (unsigned j = 0; j < s->ntab; j++)
			*oracle_hp(guest_entry_addr(s, j)) |= G_US;
		d_add(&s->d, " user (all levels)");
	} else if (k < 82) {
		unsigned bit = maxphy + oracle_rnd_below(52 - maxphy);
		if (i == 0 && oracle_chance(30))
			bit = 7; /* PS in a PML4E is reserved */
		*e |= 1ull << bit;
		d_add(&s->d, " reserved bit ");
		d_num(&s->d, bit);
	} else {
		*e |= G_A | (i == s->ntab - 1 ? G_D : 0);
		d_add(&s->d, " A/D preset");
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
	s.kind = oracle_chance(40) ? ORACLE_EPT : ORACLE_NESTED;
	s.access = (enum oracle_access)oracle_rnd_below(3);
	s.ad = (c->ept_cap & EPT_CAP_AD) && oracle_chance(50);
	s.ept_level = 1 + oracle_rnd_below((c->ept_cap & EPT_CAP_1G) ? 3 : 2);
	s.guest_level = 1 + oracle_rnd_below(c->gbpages ? 3 : 2);
	s.ntab = 5 - s.guest_level;
	static const char *const acc[] = { "read", "write", "fetch" };
	d_add(&s.d, acc[s.access]);
	d_add(&s.d, s.ad ? ", EPT A/D" : ", no EPT A/D");
	d_add(&s.d, ", guest ");
	d_add(&s.d, lvl_name[s.guest_level]);
	d_add(&s.d, ", EPT ");
	d_add(&s.d, lvl_name[s.ept_level]);

	vmem_ept *ept = oracle_ept_new(c, s.ad);
	const uint64_t rwx = VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X;
	uint64_t eptp = vmem_ept_eptp(ept);

	/* Guest tables: in the control region (kind ept: only the final access
	 * is under test) or anywhere in PML4E 1 (kind nested). */
	for (unsigned i = 0; i < s.ntab; i++) {
		if (s.kind == ORACLE_EPT) {
			s.tgpa[i] = 0x10000 + 0x1000 * i;
			s.thpa[i] = GUEST_C_HPA + s.tgpa[i];
			memset(oracle_hp(s.thpa[i]), 0, 4096);
			continue;
		}
		for (;;) {
			s.tgpa[i] = (i && oracle_chance(40)) ? ((s.tgpa[i - 1] & ~0x1fffffull) | (oracle_rnd() & 0x1ff000))
						      : oracle_gpa_hi();
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
		region = oracle_gpa_hi() & ~(esz - 1);
		off = oracle_final_off(s.ept_level, s.access);
		bool clash = false;
		for (unsigned i = 0; i < s.ntab; i++)
			clash |= s.kind == ORACLE_NESTED && oracle_overlaps(region, esz, s.tgpa[i], 4096);
		if (!clash)
			break;
	}
	oracle_map_final(ept, region, s.ept_level);
	s.fgpa = region + off;

	/* The guest's translation of la: la's page offset (guest page size) is fgpa's. */
	uint64_t gsz = LVL_SIZE(s.guest_level);
	for (;;) {
		s.la = (oracle_rnd() & 0x0000ffffffffffffull & ~(gsz - 1)) | (s.fgpa & (gsz - 1));
		if (s.la & (1ull << 47))
			s.la |= 0xffff000000000000ull;
		if ((s.la >> 12) != GUEST_CODE_GPA >> 12)
			break;
	}
	for (unsigned i = 0; i < s.ntab; i++) {
		unsigned level = 4 - i;
		uint64_t *e = oracle_hp(guest_entry_addr(&s, i));
		if (i + 1 < s.ntab)
			*e = s.tgpa[i + 1] | G_P | G_RW;
		else
			*e = (s.fgpa & ~(gsz - 1)) | G_P | G_RW | (level > 1 ? G_PS : 0);
	}

	/* Guest registers. */
	s.cr0 = 0x80000033 | (oracle_chance(70) ? 0x10000 : 0);           /* PG NE ET MP PE, WP */
	s.cr4 = 0x20a0;                                            /* VMXE PGE PAE */
	if (c->smep && oracle_chance(25))
		s.cr4 |= 1ull << 20;
	if (c->smap && oracle_chance(25))
		s.cr4 |= 1ull << 21;
	s.efer = 0x500 | (c->nx && oracle_chance(75) ? 0x800 : 0);        /* LMA LME, NXE */

	/* Variations: EPT entries on the final access's path (and, nested, on the
	 * guest tables' paths), guest entries, flags set in advance. */
	unsigned nmut = oracle_chance(22) ? 0 : oracle_chance(75) ? 1 : 2;
	for (unsigned m = 0; m < nmut; m++) {
		if (s.kind == ORACLE_NESTED && oracle_chance(45)) {
			unsigned i = oracle_rnd_below(s.ntab);
			char what[8] = { 'T', (char)('0' + 4 - i), 0 };
			oracle_mutate_ept(&s.d, eptp, s.tgpa[i], 1, what, c->maxphyaddr);
		} else {
			oracle_mutate_ept(&s.d, eptp, s.fgpa, s.ept_level, "final", c->maxphyaddr);
		}
	}
	if (s.kind == ORACLE_NESTED) {
		if (oracle_chance(35))
			mutate_guest(&s, c->maxphyaddr);
		if (oracle_chance(20)) {
			for (unsigned i = 0; i < s.ntab; i++)
				*oracle_hp(guest_entry_addr(&s, i)) |= G_A;
			d_add(&s.d, "; guest A preset");
		}
	}

	/* The code's own path: flags set now, so fetching it changes nothing. */
	oracle_code_init(eptp);

	/* The words the vector lists. */
	struct oracle_words w;
	memset(&w, 0, sizeof(w));
	if (s.kind == ORACLE_NESTED)
		for (unsigned i = 0; i < s.ntab; i++) {
			oracle_add_ept_path(&w, eptp, s.tgpa[i]);
			oracle_words_add(&w, guest_entry_addr(&s, i));
		}
	oracle_add_ept_path(&w, eptp, s.fgpa);
	for (unsigned i = 0; i < w.n; i++)
		w.before[i] = *oracle_hp(w.addr[i]);

	/* Where the access lands if it translates (from the entries as they are). */
	unsigned leaf = oracle_ept_leaf_level(eptp, s.fgpa);
	uint64_t lsz = leaf ? LVL_SIZE(leaf) : 4096;
	s.fhpa = leaf ? ((*oracle_ept_entry(eptp, s.fgpa, leaf) & ADDR_MASK & ~(lsz - 1)) | (s.fgpa & (lsz - 1))) : 0;
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
		w.after[i] = *oracle_hp(w.addr[i]);
	uint64_t written = in_sink ? *oracle_hp(s.fhpa & ~7ull) : 0;
	if (in_sink) {
		*oracle_hp(s.fhpa & ~7ull) = oracle_sink_tag(s.fhpa);
		if (s.access == ORACLE_FETCH)
			*(uint8_t *)(uintptr_t)s.fhpa = saved_byte;
	}

	struct oracle_vector v;
	memset(&v, 0, sizeof(v));
	char id_text[200];
	{
		/* "bochs-<kind>-NNN (Bochs 2.7): what was varied" */
		struct oracle_desc t;
		t.n = 0;
		t.s[0] = 0;
		d_add(&t, s.kind == ORACLE_EPT ? "bochs-ept-" : "bochs-nested-");
		if (id < 100)
			d_add(&t, "0");
		if (id < 10)
			d_add(&t, "0");
		d_num(&t, id);
		d_add(&t, " (Bochs 2.7): ");
		d_add(&t, s.d.s);
		memcpy(id_text, t.s, t.n + 1);
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

	struct oracle_check k = { .e = &e, .access = s.access, .la = s.la, .fhpa = s.fhpa, .in_sink = in_sink,
				  .rax = r.rax, .marker = marker, .written = written,
				  .hlt_rip = vtx_guest_rip(stub) + 6 };
	const char *skip = oracle_classify(&k, &v, &st->qual_bits);
	if (v.result == ORACLE_OK) {
		v.hpa = s.fhpa;
		v.page_size = lsz < gsz || s.kind == ORACLE_EPT ? lsz : gsz;
	}
	/* Kind ept covers the final access only. */
	if (!skip && s.kind == ORACLE_EPT &&
	    (v.result == ORACLE_PAGE_FAULT ||
	     ((v.result == ORACLE_EPT_VIOLATION || v.result == ORACLE_EPT_MISCONFIG) && e.gpa != s.fgpa)))
		skip = "exit not on the final access";
	/* KD2: with EPT A/D off, Bochs 2.7 sets guest A/D flags without the EPT
	 * write permission the SDM requires for them (vol. 3C 29.3.3.2). Seen as
	 * a guest entry that changed although its table's EPT path lacks W. */
	if (!skip && s.kind == ORACLE_NESTED && !s.ad) {
		uint64_t entry[4];
		for (unsigned i = 0; i < s.ntab; i++)
			entry[i] = guest_entry_addr(&s, i);
		if (oracle_kd2(&w, eptp, entry, s.tgpa, s.ntab))
			v.note = "KD2";
	}
	const uint64_t addr[3] = { s.la, s.fgpa, s.fhpa };
	if (!oracle_report("scenario", id, skip, &e, s.d.s, addr, &v)) {
		st->skipped++;
	} else {
		st->emitted++;
		st->by_result[v.result]++;
	}
	rt_heap_release(mark);
}

void oracle_run(const struct vtx_caps *c)
{
	/* Tag every sink word with its own address. */
	for (uint64_t a = SINK_HPA; a < SINK_HPA + SINK_SIZE; a += 8)
		*oracle_hp(a) = oracle_sink_tag(a);
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
