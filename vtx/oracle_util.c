/* oracle_util.c: what the oracle scenario files share: the seeded generator, EPT path lookups and variations, descriptions, exit classification. */
#include "oracle_int.h"
#include "rt.h"
#include "layout.h"
#include <libvmem/ept_map.h>

#ifndef VTX_SEED
#define VTX_SEED 1
#endif

static uint64_t rng = VTX_SEED * 0x9E3779B97F4A7C15ull + 1;

/* xorshift64*: deterministic, so a run is reproducible from the seed. */
uint64_t oracle_rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

void oracle_rnd_seed(uint64_t seed)
{
	rng = seed * 0x9E3779B97F4A7C15ull + 1;
}

unsigned oracle_rnd_below(unsigned n)
{
	return (unsigned)(oracle_rnd() % n);
}

bool oracle_chance(unsigned percent)
{
	return oracle_rnd_below(100) < percent;
}

uint64_t oracle_gpa_hi(void)
{
	return (1ull << 39) | (oracle_rnd() & ((1ull << 39) - 1) & ~0xfffull);
}

bool oracle_overlaps(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	return a < b + bsz && b < a + asz;
}

uint64_t oracle_sink_tag(uint64_t hpa)
{
	return 0x5A5A000000000000ull | (hpa & ~7ull);
}

/* The EPT entry at `level` on the path of gpa: NULL if the walk cannot reach that level. */
uint64_t *oracle_ept_entry(uint64_t eptp, uint64_t gpa, unsigned level)
{
	uint64_t table = eptp & ADDR_MASK;
	for (unsigned l = 4;; l--) {
		uint64_t *e = oracle_hp(table) + ((gpa >> (12 + 9 * (l - 1))) & 511);
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
unsigned oracle_ept_leaf_level(uint64_t eptp, uint64_t gpa)
{
	for (unsigned l = 4; l >= 1; l--) {
		uint64_t *e = oracle_ept_entry(eptp, gpa, l);
		if (!e || !(*e & 7))
			return 0;
		if (l == 1 || (l <= 3 && (*e & VMEM_EPT_PS)))
			return l;
	}
	return 0;
}

/* Whether every entry on gpa's EPT path grants write (bit 1). */
bool oracle_ept_writable(uint64_t eptp, uint64_t gpa)
{
	unsigned leaf = oracle_ept_leaf_level(eptp, gpa);
	if (!leaf)
		return false;
	for (unsigned l = 4; l >= leaf; l--)
		if (!(*oracle_ept_entry(eptp, gpa, l) & VMEM_EPT_W))
			return false;
	return true;
}

void oracle_add_ept_path(struct oracle_words *w, uint64_t eptp, uint64_t gpa)
{
	for (unsigned l = 4; l >= 1; l--) {
		uint64_t *e = oracle_ept_entry(eptp, gpa, l);
		if (!e)
			return;
		oracle_words_add(w, (uint64_t)(uintptr_t)e);
		if (!(*e & 7) || l == 1 || (l <= 3 && (*e & VMEM_EPT_PS)))
			return;
	}
}

bool oracle_kd2(const struct oracle_words *w, uint64_t eptp, const uint64_t *entry, const uint64_t *tgpa,
		unsigned n)
{
	bool kd2 = false;
	for (unsigned i = 0; i < n; i++) {
		uint64_t was = 0, now = 0;
		for (unsigned j = 0; j < w->n; j++)
			if (w->addr[j] == entry[i])
				was = w->before[j], now = w->after[j];
		if (was != now && !oracle_ept_writable(eptp, tgpa[i]))
			kd2 = true;
	}
	return kd2;
}
void d_add(struct oracle_desc *d, const char *t)
{
	while (*t && d->n + 1 < sizeof(d->s))
		d->s[d->n++] = *t++;
	d->s[d->n] = 0;
}

void d_num(struct oracle_desc *d, uint64_t v)
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
	d_add(d, t);
}

vmem_ept *oracle_ept_new(const struct vtx_caps *c, bool ad)
{
	vmem_ept_config cfg = { .levels = 4, .ad = ad, .gbpages = (c->ept_cap & EPT_CAP_1G) != 0,
				.exec_only = (c->ept_cap & EPT_CAP_EXEC_ONLY) != 0, .eptp_mt = VMEM_MT_WB };
	vmem_ept *ept;
	RT_ASSERT(vmem_ept_new(&rt_allocator, &cfg, &ept) == VMEM_OK);
	RT_ASSERT(vmem_ept_grant(ept, 0, 1ull << 30) == VMEM_OK);
	RT_ASSERT(vmem_ept_map(ept, 0, GUEST_C_HPA, GUEST_C_SIZE, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X, VMEM_MT_WB,
			       false, NULL) == VMEM_OK);
	return ept;
}

uint64_t oracle_final_off(unsigned level, enum oracle_access a)
{
	uint64_t off = level == 3 ? SINK_HPA + (oracle_rnd() & (SINK_SIZE - 1)) : oracle_rnd() & (LVL_SIZE(level) - 1);
	return a == ORACLE_FETCH ? off : off & ~7ull;
}

void oracle_map_final(vmem_ept *ept, uint64_t region, unsigned level)
{
	uint64_t hpa = level == 1 ? SINK_HPA + (oracle_rnd() & (SINK_SIZE - 1) & ~0xfffull) : level == 2 ? SINK_HPA : 0;
	RT_ASSERT(vmem_ept_map(ept, region, hpa, LVL_SIZE(level), VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X, VMEM_MT_WB,
			       false, NULL) == VMEM_OK);
	RT_ASSERT(oracle_ept_leaf_level(vmem_ept_eptp(ept), region) == level);
}

void oracle_code_init(uint64_t eptp)
{
	vtx_guest_c_init();
	for (unsigned l = 4; l >= 2; l--)
		*oracle_ept_entry(eptp, GUEST_CODE_GPA, l) |= VMEM_EPT_A | (l == 2 ? VMEM_EPT_D : 0);
}

static const char *const perm_name[] = { "---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx" };

/* Returns false if nothing applies. */
bool oracle_mutate_ept(struct oracle_desc *d, uint64_t eptp, uint64_t gpa, unsigned leaf, const char *what,
		       unsigned maxphy)
{
	unsigned level = leaf + oracle_rnd_below(5 - leaf);
	uint64_t *e = oracle_ept_entry(eptp, gpa, level);
	if (!e)
		return false;
	bool is_leaf = level == leaf;
	unsigned k = oracle_rnd_below(100);
	d_add(d, "; ");
	d_add(d, what);
	d_add(d, " EPT L");
	d_num(d, level);
	if (k < 50) {
		unsigned p = oracle_rnd_below(8);
		*e = (*e & ~7ull) | p;
		d_add(d, " perm ");
		d_add(d, perm_name[p]);
	} else if (k < 62) {
		/* Reserved: bits 51:MAXPHYADDR, or bits 7:3 of a non-leaf (only
		 * bits 6:3 below the PML4E, where bit 7 would make it a leaf). */
		unsigned bit;
		if (is_leaf || oracle_chance(50))
			bit = maxphy + oracle_rnd_below(52 - maxphy);
		else
			bit = 3 + oracle_rnd_below(level == 4 ? 5 : 4);
		*e |= 1ull << bit;
		d_add(d, " reserved bit ");
		d_num(d, bit);
	} else if (k < 72 && is_leaf) {
		static const unsigned bad_mt[] = { 2, 3, 7 };
		unsigned mt = bad_mt[oracle_rnd_below(3)];
		*e = (*e & ~VMEM_EPT_MT_MASK) | ((uint64_t)mt << VMEM_EPT_MT_SHIFT);
		d_add(d, " memory type ");
		d_num(d, mt);
	} else if (k < 80 && is_leaf && level > 1) {
		/* A large leaf whose address is not aligned to its size (SDM 29.3.3.1). */
		unsigned bit = 12 + oracle_rnd_below(9 * (level - 1));
		*e |= 1ull << bit;
		d_add(d, " misaligned bit ");
		d_num(d, bit);
	} else if (k < 88) {
		/* Ignored bits: 11, 52-62 (and 10 without MBEC). */
		unsigned bit = oracle_chance(30) ? 10 + oracle_rnd_below(2) : 52 + oracle_rnd_below(11);
		*e |= 1ull << bit;
		d_add(d, " ignored bit ");
		d_num(d, bit);
	} else if (k < 93 && (level == 4 || level == 1)) {
		*e |= VMEM_EPT_PS;
		d_add(d, level == 4 ? " PS (reserved)" : " bit 7 (ignored)");
	} else {
		*e |= VMEM_EPT_A | (is_leaf ? VMEM_EPT_D : 0);
		d_add(d, " A/D preset");
	}
	return true;
}


/* An `ok` must be confirmed: where the access landed and where the guest stopped. */
static const char *check_ok(const struct oracle_check *k)
{
	const struct vtx_exit *e = k->e;
	uint64_t stop = k->access == ORACLE_FETCH ? k->la : k->hlt_rip;
	uint64_t mask = k->narrow ? 0xffffffffull : ~0ull;
	if (!k->in_sink)
		return "access outside the sink";
	if (k->access == ORACLE_READ && (k->rax & mask) != (oracle_sink_tag(k->fhpa) & mask))
		return "read returned another word";
	if (k->access == ORACLE_WRITE &&
	    k->written != ((k->marker & mask) | (oracle_sink_tag(k->fhpa) & ~mask)))
		return "write landed elsewhere";
	if (e->rip != stop)
		return k->access == ORACLE_FETCH ? "HLT fetched from another address" : "HLT at an unexpected RIP";
	return NULL;
}

const char *oracle_classify(const struct oracle_check *k, struct oracle_vector *v, uint64_t *qual_bits)
{
	const struct vtx_exit *e = k->e;
	bool exc = e->reason == EXIT_REASON_EXCEPTION_NMI;
	unsigned vec = e->intr_info & 0xff;
	if (e->entry_failed)
		return "VM entry failed";
	if ((k->cpl == 0 && e->reason == EXIT_REASON_HLT) || (k->cpl == 3 && exc && vec == 13 && !e->intr_err)) {
		v->result = ORACLE_OK;
		return check_ok(k);
	}
	if (exc && vec == 14) {
		v->result = ORACLE_PAGE_FAULT;
		v->error_code = e->intr_err;
		return e->qual != k->la ? "#PF for another address" : NULL;
	}
	if (e->reason == EXIT_REASON_EPT_VIOLATION) {
		v->result = ORACLE_EPT_VIOLATION;
		v->qual = e->qual;
		v->gpa = e->gpa;
		v->gla = e->gla;
		*qual_bits |= e->qual;
		return NULL;
	}
	if (e->reason == EXIT_REASON_EPT_MISCONFIG) {
		v->result = ORACLE_EPT_MISCONFIG;
		v->gpa = e->gpa;
		return NULL;
	}
	return vtx_exit_name(e->reason);
}

bool oracle_report(const char *what, unsigned id, const char *skip, const struct vtx_exit *e, const char *desc,
		   const uint64_t addr[3], const struct oracle_vector *v)
{
	if (!skip) {
		oracle_emit(v);
		return true;
	}
	rt_printf("# vtx: %s %u skipped (%s): exit %u qual 0x%lx intr 0x%x err 0x%x rip 0x%lx; %s\n", what, id, skip,
		  e->reason, e->qual, e->intr_info, e->intr_err, e->rip, desc);
	rt_printf("# vtx:   la 0x%lx gpa 0x%lx hpa 0x%lx\n", addr[0], addr[1], addr[2]);
	return false;
}
