/* ept_access_matrix: EPT permission patterns x access x level x page size, reserved / ignored bits, memory types, A/D (after kvm-unit-tests vmx_tests.c ept_access_test_*), library vs ref_ept. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/ept.h>
#include <libvmem/gmem.h>

#include "ref/ref_ept.h"

/* Usage: ept_access_matrix [--full] [--stride N] [--verbose] [--log FILE]
 * Default ("unit"): the hand-worked cases, the 14 named patterns over every
 * level / page size / access, and a fixed hashed sample (1 in STRIDE) of the
 * rest. --full ("matrix-full"): everything. */
#define DEFAULT_STRIDE 397u

/* Host-physical layout: the five table pages of one path, in one RAM slot. */
#define TBL_BASE 0x10000ull
#define TBL_PAGES 5u
#define TBL_SIZE (TBL_PAGES * 4096u)
static uint64_t table_hpa(unsigned level) { return TBL_BASE + (5 - level) * 0x1000ull; } /* PML5 first */
/* Leaf frames: high bits set (bit 39) so the address bits M-1:12 are exercised; masked to M. */
#define FRAME_4K 0xabcdef5000ull
#define FRAME_2M 0x8abce00000ull
#define FRAME_1G 0x8ac0000000ull

/* Entry bits, spelled here (not from ept_map.h) for what the test builds. */
#define E_R  (1ull << 0)
#define E_W  (1ull << 1)
#define E_X  (1ull << 2)
#define E_PS (1ull << 7)
#define E_A  (1ull << 8)
#define E_D  (1ull << 9)
#define E_XU (1ull << 10)
#define E_RWX (E_R | E_W | E_X)

/* ---------------------------------------------------------------------- */
/* Host memory: the library's RAM and an identical copy for the reference. */

static uint8_t *lib_ram, *ref_ram;
static vmem_gmem *host;

static bool ref_read(void *ctx, uint64_t hpa, uint64_t *val)
{
	(void)ctx;
	if (hpa < TBL_BASE || hpa + 8 > TBL_BASE + TBL_SIZE || (hpa & 7))
		return false;
	memcpy(val, ref_ram + (hpa - TBL_BASE), 8);
	return true;
}

static bool ref_write(void *ctx, uint64_t hpa, uint64_t val)
{
	(void)ctx;
	if (hpa < TBL_BASE || hpa + 8 > TBL_BASE + TBL_SIZE || (hpa & 7))
		return false;
	memcpy(ref_ram + (hpa - TBL_BASE), &val, 8);
	return true;
}

static const ref_ept_mem ref_mem = { ref_read, ref_write, NULL };

static void put_both(uint64_t hpa, uint64_t v)
{
	memcpy(lib_ram + (hpa - TBL_BASE), &v, 8);
	memcpy(ref_ram + (hpa - TBL_BASE), &v, 8);
}

static uint64_t get_lib(uint64_t hpa)
{
	uint64_t v;
	memcpy(&v, lib_ram + (hpa - TBL_BASE), 8);
	return v;
}

/* ---------------------------------------------------------------------- */
/* One case. */

enum kind { K_READ, K_WRITE, K_FETCH, K_FETCH_USER, K_PAGING, K_PAGING_AD, K_N };
static const char *const kind_name[K_N] = { "read", "write", "fetch", "user-fetch",
					    "guest-PS", "guest-A/D" };

/* A/D state: EPTP bit 6 off; on with clean entries; on with A already set
 * everywhere; on with A everywhere and D on the leaf. */
enum adstate { AD_OFF, AD_CLEAN, AD_PRESET_A, AD_PRESET_AD, AD_N };

struct ecase {
	unsigned pwl;           /* 4 or 5 */
	unsigned leaf;          /* leaf level: 1 (4K), 2 (2M), 3 (1G) */
	unsigned tlevel;        /* the entry under test */
	uint64_t tperm;         /* its R/W/X/XU bits */
	uint64_t tor;           /* bits ORed into it afterwards (reserved / ignored bits) */
	uint64_t tclear;        /* bits cleared from it afterwards */
	unsigned mt;            /* leaf memory type */
	bool ipat;
	unsigned maxphy;
	bool exec_only, gbpages, mbec, adv;
	enum adstate ad;
	enum kind kind;
	bool linear;
	unsigned gperms;        /* VMEM_EPT_GUEST_* */
	bool noad;
	unsigned eptp_mt;       /* 0 or 6 */
	uint64_t gpa;
};

struct outcome {
	vmem_err err;
	vmem_ept_result lib;
	ref_ept_result ref;
	uint64_t path[5];       /* hpa of the entries written, top first */
	uint64_t before[5];     /* their values */
	unsigned npath;
};

struct stats {
	unsigned long long run, pass, fail;
	bool verbose;
	FILE *log;
	const char *section;
};

static uint64_t mask_below(unsigned m) { return m >= 64 ? ~0ull : (1ull << m) - 1; }

static uint64_t frame_for(unsigned leaf, unsigned maxphy)
{
	uint64_t f = leaf == 1 ? FRAME_4K : leaf == 2 ? FRAME_2M : FRAME_1G;
	return f & mask_below(maxphy);
}

static uint64_t eptp_of(const struct ecase *c)
{
	return table_hpa(c->pwl) | ((uint64_t)(c->pwl - 1) << 3) | c->eptp_mt |
	       (c->ad != AD_OFF ? 1ull << 6 : 0);
}

/* The library context, recreated only when caps or EPTP change. */
static vmem_ept_mmu *mmu;
static vmem_ept_caps mmu_caps;
static uint64_t mmu_eptp;

static vmem_ept_mmu *get_mmu(const struct ecase *c)
{
	vmem_ept_caps caps;
	memset(&caps, 0, sizeof(caps));
	vmem_ept_caps_init(&caps);
	caps.maxphyaddr = c->maxphy;
	caps.exec_only = c->exec_only;
	caps.gbpages = c->gbpages;
	caps.mbec = c->mbec;
	caps.advanced_info = c->adv;
	caps.pml5 = true;
	caps.ad = true;
	uint64_t eptp = eptp_of(c);
	if (mmu && eptp == mmu_eptp && !memcmp(&caps, &mmu_caps, sizeof(caps)))
		return mmu;
	vmem_ept_mmu_free(mmu);
	mmu = NULL;
	if (vmem_ept_mmu_new(NULL, eptp, &caps, &mmu) != VMEM_OK) {
		fprintf(stderr, "vmem_ept_mmu_new refused eptp %#" PRIx64 "\n", eptp);
		exit(2);
	}
	mmu_caps = caps;
	mmu_eptp = eptp;
	return mmu;
}

/* Build the path for c->gpa in both copies, walk both, leave the entries
 * in place (the caller clears them with clear_path). */
static void run_walks(const struct ecase *c, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	uint64_t others = E_RWX | (c->mbec ? E_XU : 0);
	for (unsigned level = c->pwl; level >= c->leaf; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t ea = table_hpa(level) + ((c->gpa >> shift) & 511) * 8;
		uint64_t e;
		if (level == c->leaf) {
			e = frame_for(c->leaf, c->maxphy) | others | ((uint64_t)c->mt << 3) |
			    (c->ipat ? 1ull << 6 : 0) | (level > 1 ? E_PS : 0);
			if (c->ad == AD_PRESET_AD)
				e |= E_A | E_D;
		} else {
			e = table_hpa(level - 1) | others;
		}
		if (c->ad == AD_PRESET_A || c->ad == AD_PRESET_AD)
			e |= E_A;
		if (level == c->tlevel)
			e = ((e & ~(E_RWX | E_XU)) | c->tperm | c->tor) & ~c->tclear;
		put_both(ea, e);
		o->path[o->npath] = ea;
		o->before[o->npath] = e;
		o->npath++;
	}

	static const uint8_t lib_type[K_N] = { VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH,
					       VMEM_EPT_FETCH, VMEM_EPT_PAGING, VMEM_EPT_PAGING_AD };
	static const ref_ept_kind ref_kind[K_N] = { REF_EPT_READ, REF_EPT_WRITE, REF_EPT_FETCH,
						    REF_EPT_FETCH, REF_EPT_GUEST_PS, REF_EPT_GUEST_AD };
	unsigned gperms = c->gperms;
	if (c->kind == K_FETCH_USER)
		gperms |= VMEM_EPT_GUEST_U;
	else if (c->kind == K_FETCH)
		gperms &= ~VMEM_EPT_GUEST_U;
	uint64_t la = 0x7f12345678ull ^ c->gpa;

	vmem_ept_access a;
	memset(&a, 0, sizeof(a));
	a.type = lib_type[c->kind];
	a.flags = c->linear ? VMEM_EPT_LINEAR : 0;
	a.guest_perms = (uint8_t)gperms;
	a.linear = c->linear ? la : 0;
	o->err = vmem_ept_walk(get_mmu(c), host, c->gpa, &a, c->noad ? VMEM_EPT_NO_AD : 0, &o->lib, NULL);

	ref_ept_cpu cpu = { .eptp = eptp_of(c), .maxphyaddr = c->maxphy, .exec_only = c->exec_only,
			    .gbpages = c->gbpages, .advanced_info = c->adv, .mbec = c->mbec };
	ref_ept_access ra = { .kind = ref_kind[c->kind], .has_linear = c->linear, .linear = la,
			      .guest_user = (gperms & VMEM_EPT_GUEST_U) != 0,
			      .guest_rw = (gperms & VMEM_EPT_GUEST_W) != 0,
			      .guest_nx = (gperms & VMEM_EPT_GUEST_X) == 0 };
	ref_ept_walk(&cpu, &ref_mem, c->gpa, &ra, !c->noad, &o->ref);
}

static void clear_path(const struct outcome *o)
{
	for (unsigned i = 0; i < o->npath; i++)
		put_both(o->path[i], 0);
}

static const char *st_name(unsigned s)
{
	static const char *const n[] = { "OK", "VIOLATION", "MISCONFIG", "BAD_HPA", "INVAL" };
	return s < 5 ? n[s] : "?";
}

static void describe(FILE *f, const struct ecase *c)
{
	fprintf(f, "pwl %u leaf %s test-level %u perm %#" PRIx64 " or %#" PRIx64 " clear %#" PRIx64
		" mt %u ipat %d M %u exec-only %d 1G %d mbec %d adv %d ad %d %s linear %d gperms %u noad %d gpa %#" PRIx64,
		c->pwl, c->leaf == 1 ? "4K" : c->leaf == 2 ? "2M" : "1G", c->tlevel, c->tperm, c->tor,
		c->tclear, c->mt, c->ipat, c->maxphy, c->exec_only, c->gbpages, c->mbec, c->adv, c->ad,
		kind_name[c->kind], c->linear, c->gperms, c->noad, c->gpa);
}

/* Compare the library with the reference (and memory after). Returns a
 * static description of the first difference, or NULL. */
static const char *compare(const struct ecase *c, const struct outcome *o)
{
	const vmem_ept_result *l = &o->lib;
	const ref_ept_result *r = &o->ref;
	if (r->status == REF_EPT_INVAL)
		return o->err == VMEM_E_INVAL ? NULL : "reference: gpa out of range; library accepted it";
	if (o->err != VMEM_OK)
		return "library returned an error";
	if (l->status != (unsigned)r->status)
		return "status";
	if (l->gpa != r->gpa)
		return "gpa";
	if (l->level != r->level)
		return "level";
	unsigned rperm = (r->readable ? 1u : 0) | (r->writable ? 2u : 0) | (r->executable ? 4u : 0) |
			 (c->mbec && r->user_executable ? 8u : 0);
	switch (r->status) {
	case REF_EPT_OK:
		if (l->hpa != r->hpa) return "hpa";
		if (l->page_size != r->page_size) return "page size";
		if (l->memtype != r->memtype) return "memory type";
		if (l->ipat != r->ipat) return "ipat";
		if (l->perms != rperm) return "perms";
		if (l->entry != r->entry) return "leaf entry";
		if (((l->info & VMEM_EPT_INFO_AD_SET) != 0) != r->ad_written) return "A/D written flag";
		break;
	case REF_EPT_VIOLATION:
		if (l->exit_qual != r->qual) return "exit qualification";
		if (l->linear != r->linear) return "linear";
		if (l->perms != rperm) return "perms";
		if (l->entry != r->entry) return "entry";
		break;
	case REF_EPT_MISCONFIG:
		if (l->entry != r->entry) return "entry";
		break;
	case REF_EPT_BAD_HPA:
		if (l->hpa != r->hpa) return "entry hpa";
		break;
	default:
		break;
	}
	if (memcmp(lib_ram, ref_ram, TBL_SIZE))
		return "memory after the walk";
	/* Independently of the reference: exactly which A/D bits were written
	 * (29.3.5): A on every entry of a completed translation, D on its leaf
	 * for a write (guest paging-structure accesses are writes under A/D). */
	bool write = c->kind == K_WRITE || c->kind == K_PAGING_AD || c->kind == K_PAGING;
	bool sets = r->status == REF_EPT_OK && c->ad != AD_OFF && !c->noad;
	for (unsigned i = 0; i < o->npath; i++) {
		uint64_t want = o->before[i];
		if (sets) {
			want |= E_A;
			if (i == o->npath - 1 && write)
				want |= E_D;
		}
		if (get_lib(o->path[i]) != want)
			return "A/D bits written (hand rule)";
	}
	return NULL;
}

static void record(struct stats *st, const struct ecase *c, const struct outcome *o, const char *why)
{
	st->run++;
	if (!why) {
		st->pass++;
		if (st->verbose) {
			describe(stdout, c);
			printf(" -> %s\n", st_name(o->ref.status));
		}
		return;
	}
	st->fail++;
	FILE *outs[2] = { st->fail <= 20 ? stdout : NULL, st->log };
	for (int k = 0; k < 2; k++) {
		FILE *f = outs[k];
		if (!f)
			continue;
		fprintf(f, "MISMATCH [%s] %s: ", st->section, why);
		describe(f, c);
		fprintf(f, "\n  lib: err %d status %s gpa %#" PRIx64 " hpa %#" PRIx64 " size %#" PRIx64
			" qual %#" PRIx64 " linear %#" PRIx64 " entry %#" PRIx64 " level %u perms %#x mt %u ipat %u info %#x\n",
			o->err, st_name(o->lib.status), o->lib.gpa, o->lib.hpa, o->lib.page_size,
			o->lib.exit_qual, o->lib.linear, o->lib.entry, o->lib.level, o->lib.perms,
			o->lib.memtype, o->lib.ipat, o->lib.info);
		fprintf(f, "  ref: status %s gpa %#" PRIx64 " hpa %#" PRIx64 " size %#" PRIx64
			" qual %#" PRIx64 " linear %#" PRIx64 " entry %#" PRIx64 " level %u RWX/XU %d%d%d%d mt %u ipat %d ad-written %d\n",
			st_name(o->ref.status), o->ref.gpa, o->ref.hpa, o->ref.page_size, o->ref.qual,
			o->ref.linear, o->ref.entry, o->ref.level, o->ref.readable, o->ref.writable,
			o->ref.executable, o->ref.user_executable, o->ref.memtype, o->ref.ipat,
			o->ref.ad_written);
	}
	/* Never let a difference leak into the next case. */
	memset(lib_ram, 0, TBL_SIZE);
	memset(ref_ram, 0, TBL_SIZE);
}

/* Run one case against the reference. */
static void check(struct stats *st, const struct ecase *c, struct outcome *o)
{
	run_walks(c, o);
	record(st, c, o, compare(c, o));
	clear_path(o);
}

/* ---------------------------------------------------------------------- */
/* Case generation. */

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A guest-physical address with every level's index non-trivial. */
static uint64_t gpa_for(unsigned pwl, uint64_t seed)
{
	uint64_t g = mix(seed) & (pwl == 5 ? mask_below(57) : mask_below(48));
	return g;
}

static void base_case(struct ecase *c)
{
	memset(c, 0, sizeof(*c));
	c->pwl = 4;
	c->leaf = 1;
	c->tlevel = 1;
	c->tperm = E_RWX;
	c->mt = 6;
	c->maxphy = 40;
	c->exec_only = true;
	c->gbpages = true;
	c->eptp_mt = 6;
	c->gpa = 0x0000123456789abcull;
}

/* The 14 permission patterns of kvm-unit-tests' ept_access_test_* (plus MBEC). */
struct pattern {
	const char *name;
	uint64_t perm;
	bool exec_only, mbec;
};
static const struct pattern named[14] = {
	{ "not present", 0, true, false },
	{ "read-only", E_R, true, false },
	{ "write-only (misconfig)", E_W, true, false },
	{ "read-write", E_R | E_W, true, false },
	{ "execute-only, supported", E_X, true, false },
	{ "execute-only, unsupported (misconfig)", E_X, false, false },
	{ "read-execute", E_R | E_X, true, false },
	{ "write-execute without read (misconfig)", E_W | E_X, true, false },
	{ "read-write-execute", E_RWX, true, false },
	{ "MBEC user-execute-only, supported", E_XU, true, true },
	{ "MBEC user-execute-only, unsupported (misconfig)", E_XU, false, true },
	{ "MBEC read + user-execute", E_R | E_XU, true, true },
	{ "MBEC read + supervisor-execute", E_R | E_X, true, true },
	{ "MBEC read-write-execute + user-execute", E_RWX | E_XU, true, true },
};

struct gen {
	struct stats *st;
	bool full;
	unsigned stride;
	unsigned long long seq;
};

/* Take this case? Everything with --full; a hashed 1-in-stride sample otherwise. */
static bool take(struct gen *g, bool always)
{
	unsigned long long s = g->seq++;
	return g->full || always || mix(s ^ 0x5eedull) % g->stride == 0;
}

/* Leaf size x level under test, for a page-walk length. */
#define FOR_SHAPES(c, pwl_) \
	for ((c).leaf = 1; (c).leaf <= 3; (c).leaf++) \
		for ((c).tlevel = (c).leaf; (c).tlevel <= (pwl_); (c).tlevel++)

/* 1. Permissions: every R/W/X/XU value (the 14 named patterns among them) x
 * capability x access x level x page size x A/D x linear x advanced info x
 * guest permissions x NO_AD. The named patterns always run with one
 * representative setting (linear, advanced info, guest W|U, A/D on and off). */
static void section_perms(struct gen *g)
{
	struct outcome o;
	struct ecase c;
	g->st->section = "permissions";
	for (unsigned pwl = 4; pwl <= 5; pwl++) {
		base_case(&c);
		c.pwl = pwl;
		FOR_SHAPES(c, pwl) {
			for (unsigned p = 0; p < 64; p++) {
				c.tperm = (p & 7) | ((p & 8) ? E_XU : 0);
				c.exec_only = (p >> 4) & 1;
				c.mbec = (p >> 5) & 1;
				bool is_named = false;
				for (unsigned k = 0; k < 14; k++)
					if (named[k].perm == c.tperm && named[k].exec_only == c.exec_only &&
					    named[k].mbec == c.mbec)
						is_named = true;
				for (unsigned kind = 0; kind < K_N; kind++)
				for (unsigned ad = 0; ad < AD_N; ad++)
				for (unsigned lin = 0; lin < 2; lin++)
				for (unsigned adv = 0; adv < 2; adv++)
				for (unsigned gp = 0; gp < 8; gp++)
				for (unsigned noad = 0; noad < 2; noad++) {
					bool rep = is_named && pwl == 4 && lin && adv && gp == 3 && !noad &&
						   (ad == AD_OFF || ad == AD_CLEAN);
					if (!take(g, rep))
						continue;
					c.kind = (enum kind)kind;
					c.ad = (enum adstate)ad;
					c.linear = lin;
					c.adv = adv;
					c.gperms = gp;
					c.noad = noad;
					c.gpa = gpa_for(pwl, g->seq);
					check(g->st, &c, &o);
				}
			}
		}
	}
}

/* 2. Reserved bits: every bit 0..63 set in every entry of every path, for
 * several MAXPHYADDRs, with and without 1-GByte pages, MBEC and A/D. */
static void section_reserved(struct gen *g)
{
	static const unsigned maxphys[] = { 36, 40, 46, 48, 52 };
	struct outcome o;
	struct ecase c;
	g->st->section = "reserved bits";
	for (unsigned pwl = 4; pwl <= 5; pwl++)
	for (unsigned mi = 0; mi < 5; mi++)
	for (unsigned gb = 0; gb < 2; gb++)
	for (unsigned mbec = 0; mbec < 2; mbec++)
	for (unsigned ad = 0; ad < 2; ad++) {
		base_case(&c);
		c.pwl = pwl;
		c.maxphy = maxphys[mi];
		c.gbpages = gb;
		c.mbec = mbec;
		c.ad = ad ? AD_CLEAN : AD_OFF;
		c.linear = true;
		c.adv = true;
		c.gperms = 7;
		FOR_SHAPES(c, pwl) {
			if (c.leaf == 3 && !gb)
				continue; /* no 1-GByte leaves to build (PS in a PDPTE is covered as a bit below) */
			c.tperm = E_RWX | (mbec ? E_XU : 0);
			for (unsigned bit = 0; bit < 64; bit++) {
				/* One M, one level set, one bit: all of them under "unit" for M 40. */
				if (!take(g, maxphys[mi] == 40 && pwl == 4 && ad && gb))
					continue;
				c.tor = 1ull << bit;
				c.kind = (enum kind)(g->seq % K_N);
				c.gpa = gpa_for(pwl, g->seq);
				check(g->st, &c, &o);
			}
		}
	}
}

/* The fields that must not change when an ignored bit is set. */
static bool same_outcome(const struct outcome *a, const struct outcome *b)
{
	const vmem_ept_result *x = &a->lib, *y = &b->lib;
	return a->err == b->err && x->status == y->status && x->gpa == y->gpa && x->hpa == y->hpa &&
	       x->page_size == y->page_size && x->exit_qual == y->exit_qual &&
	       x->linear == y->linear && x->level == y->level && x->perms == y->perms &&
	       x->memtype == y->memtype && x->ipat == y->ipat;
}

/* 3. Ignored bits (29.3.2 tables): 11 and 63:52 everywhere, 9 in non-leaf
 * entries, 7 in a PTE, 8 and 9 without A/D, 10 without MBEC. Set one at a
 * time and all at once: the outcome must be the one without them (and the
 * reference must agree). */
static void section_ignored(struct gen *g)
{
	struct outcome o, base;
	struct ecase c;
	g->st->section = "ignored bits";
	for (unsigned pwl = 4; pwl <= 5; pwl++)
	for (unsigned mbec = 0; mbec < 2; mbec++)
	for (unsigned ad = 0; ad < 2; ad++)
	for (unsigned pi = 0; pi < 4; pi++) {
		static const uint64_t perms[4] = { E_RWX, E_R, 0, E_X };
		base_case(&c);
		c.pwl = pwl;
		c.mbec = mbec;
		c.ad = ad ? AD_CLEAN : AD_OFF;
		c.linear = true;
		c.adv = true;
		c.gperms = 3;
		FOR_SHAPES(c, pwl) {
			bool leaf = c.tlevel == c.leaf;
			uint64_t ign = (1ull << 11) | (0xfffull << 52);
			if (!leaf)
				ign |= E_D;                   /* bit 9 of a non-leaf entry */
			if (c.tlevel == 1)
				ign |= E_PS;                  /* bit 7 of a PTE */
			if (!ad)
				ign |= E_A | E_D;
			if (!mbec)
				ign |= E_XU;
			for (unsigned kind = 0; kind < K_N; kind++)
			for (int bit = -1; bit < 64; bit++) {
				uint64_t set = bit < 0 ? ign : 1ull << bit;
				if (bit >= 0 && !(ign & set))
					continue;
				if (!take(g, pwl == 4 && (bit < 0 || kind == (unsigned)bit % K_N)))
					continue;
				c.kind = (enum kind)kind;
				c.gpa = gpa_for(pwl, g->seq);
				/* The tested entry gets perms[pi] (with XU for MBEC when executable). */
				c.tperm = perms[pi] | (mbec && (perms[pi] & E_X) ? E_XU : 0);
				c.tor = 0;
				run_walks(&c, &base);
				bool base_agrees = compare(&c, &base) == NULL;
				clear_path(&base);
				c.tor = set;
				run_walks(&c, &o);
				const char *why = compare(&c, &o);
				if (!why && !same_outcome(&o, &base))
					why = "an ignored bit changed the outcome";
				if (!why && !base_agrees)
					why = "baseline (no ignored bits) disagrees with the reference";
				record(g->st, &c, &o, why);
				clear_path(&o);
			}
		}
	}
}

/* 4. Memory types: every leaf type 0-7 with IPAT 0/1 at every page size
 * (2, 3 and 7 are misconfigurations, 29.3.3.1), EPTP UC and WB. */
static void section_memtype(struct gen *g)
{
	struct outcome o;
	struct ecase c;
	g->st->section = "memory types";
	for (unsigned pwl = 4; pwl <= 5; pwl++)
	for (unsigned leaf = 1; leaf <= 3; leaf++)
	for (unsigned mt = 0; mt < 8; mt++)
	for (unsigned ipat = 0; ipat < 2; ipat++)
	for (unsigned emt = 0; emt < 2; emt++)
	for (unsigned kind = 0; kind < K_N; kind++) {
		if (!take(g, pwl == 4 && kind == K_READ))
			continue;
		base_case(&c);
		c.pwl = pwl;
		c.leaf = c.tlevel = leaf;
		c.mt = mt;
		c.ipat = ipat;
		c.eptp_mt = emt ? 6 : 0;
		c.kind = (enum kind)kind;
		c.ad = AD_CLEAN;
		c.gpa = gpa_for(pwl, g->seq);
		run_walks(&c, &o);
		const char *why = compare(&c, &o);
		/* Hand rule, independent of the reference. */
		bool bad = mt == 2 || mt == 3 || mt == 7;
		if (!why && bad && o.lib.status != VMEM_EPT_MISCONFIG)
			why = "reserved memory type not a misconfiguration";
		if (!why && !bad && (o.lib.status != VMEM_EPT_OK || o.lib.memtype != mt || o.lib.ipat != ipat))
			why = "valid memory type not reported";
		record(g->st, &c, &o, why);
		clear_path(&o);
	}
}

/* 5. Address range: the GPA bits above the page-walk length, and entries
 * pointing outside host memory. */
static void section_range(struct gen *g)
{
	struct outcome o;
	struct ecase c;
	g->st->section = "address range";
	for (unsigned pwl = 4; pwl <= 5; pwl++)
	for (unsigned bit = 40; bit < 64; bit++) {
		if (!take(g, true))
			continue;
		base_case(&c);
		c.pwl = pwl;
		c.gpa = (0x1234567000ull | 0x321) | (1ull << bit);
		check(g->st, &c, &o);
	}
}

/* ---------------------------------------------------------------------- */
/* Hand-worked cases: the expectation is written here from the SDM, and
 * both the library and the reference must produce it. */

struct hand {
	const char *what;
	unsigned status;  /* VMEM_EPT_* */
	uint64_t qual;    /* VIOLATION */
	unsigned level;
	uint64_t hpa;     /* OK (0: not checked) */
};

static void hand_check(struct stats *st, const struct ecase *c, const struct hand *h)
{
	struct outcome o;
	run_walks(c, &o);
	const char *why = compare(c, &o);
	if (!why && o.lib.status != h->status)
		why = "hand-worked status";
	if (!why && h->status == VMEM_EPT_VIOLATION && o.lib.exit_qual != h->qual)
		why = "hand-worked qualification";
	if (!why && o.lib.level != h->level)
		why = "hand-worked level";
	if (!why && h->hpa && o.lib.hpa != h->hpa)
		why = "hand-worked hpa";
	if (why)
		printf("hand-worked case failed: %s\n", h->what);
	record(st, c, &o, why);
	clear_path(&o);
}

static void section_hand(struct stats *st)
{
	struct ecase c;
	struct outcome o;
	st->section = "hand-worked";

	/* Read-only 4K leaf, write with a linear address, advanced information,
	 * guest U|W (not X): 0x2 | R 0x8 | 0x80 | 0x100 | U 0x200 | RW 0x400 | NX 0x800. */
	base_case(&c);
	c.tperm = E_R; c.kind = K_WRITE; c.linear = true; c.adv = true; c.gperms = 3;
	hand_check(st, &c, &(struct hand){ "RO leaf, write, adv", VMEM_EPT_VIOLATION, 0xf8a, 1, 0 });
	c.adv = false;
	hand_check(st, &c, &(struct hand){ "RO leaf, write, no adv", VMEM_EPT_VIOLATION, 0x18a, 1, 0 });

	/* A not-present PDE, read without a linear address: bits 3-5 are 0. */
	base_case(&c);
	c.tlevel = 2; c.tperm = 0;
	hand_check(st, &c, &(struct hand){ "not-present PDE", VMEM_EPT_VIOLATION, 0x1, 2, 0 });

	/* Guest paging-structure access under EPT A/D to an R-X page: a write;
	 * bits 0 and 1, R and X, bit 7, bit 8 = 0 and no advanced bits. */
	base_case(&c);
	c.tperm = E_R | E_X; c.kind = K_PAGING; c.linear = true; c.adv = true; c.gperms = 7; c.ad = AD_CLEAN;
	hand_check(st, &c, &(struct hand){ "guest PS access, A/D, R-X", VMEM_EPT_VIOLATION, 0xab, 1, 0 });
	c.ad = AD_OFF; /* ... without A/D it is a read: allowed */
	hand_check(st, &c, &(struct hand){ "guest PS access, no A/D, R-X", VMEM_EPT_OK, 0, 1, 0 });
	/* The guest A/D update itself without EPT A/D: a data write, bit 8 = 0. */
	c.kind = K_PAGING_AD;
	hand_check(st, &c, &(struct hand){ "guest A/D write, R-X", VMEM_EPT_VIOLATION, 0xaa, 1, 0 });

	/* Write-only PML4E: misconfiguration at level 4. */
	base_case(&c);
	c.tlevel = 4; c.tperm = E_W;
	hand_check(st, &c, &(struct hand){ "write-only PML4E", VMEM_EPT_MISCONFIG, 0, 4, 0 });

	/* Execute-only PTE: fetch allowed; a read reports bits 0 and 5. */
	base_case(&c);
	c.tperm = E_X; c.kind = K_FETCH;
	c.gpa = 0x5123;
	hand_check(st, &c, &(struct hand){ "exec-only fetch", VMEM_EPT_OK, 0, 1, FRAME_4K | 0x123 });
	c.kind = K_READ;
	hand_check(st, &c, &(struct hand){ "exec-only read", VMEM_EPT_VIOLATION, 0x21, 1, 0 });
	c.exec_only = false;
	hand_check(st, &c, &(struct hand){ "exec-only unsupported", VMEM_EPT_MISCONFIG, 0, 1, 0 });

	/* MBEC: an R-X leaf (no XU), fetch from a user-mode linear address with
	 * advanced information (guest U|X): 0x4 | 0x8 | 0x20 | 0x80 | 0x100 | U 0x200. */
	base_case(&c);
	c.mbec = true; c.tperm = E_R | E_X; c.kind = K_FETCH_USER; c.linear = true; c.adv = true;
	c.gperms = VMEM_EPT_GUEST_X;
	hand_check(st, &c, &(struct hand){ "MBEC user fetch without XU", VMEM_EPT_VIOLATION, 0x3ac, 1, 0 });
	c.kind = K_FETCH;
	hand_check(st, &c, &(struct hand){ "MBEC supervisor fetch with X", VMEM_EPT_OK, 0, 1, 0 });
	/* R + XU: user fetch allowed; supervisor fetch refused: 0x4 | 0x8 | XU 0x40. */
	c.tperm = E_R | E_XU; c.linear = false;
	hand_check(st, &c, &(struct hand){ "MBEC supervisor fetch, XU only", VMEM_EPT_VIOLATION, 0x4c, 1, 0 });
	c.kind = K_FETCH_USER;
	hand_check(st, &c, &(struct hand){ "MBEC user fetch with XU", VMEM_EPT_OK, 0, 1, 0 });

	/* Rights are ANDed over levels: an R-only PDE above an RWX PTE, write: 0x2 | 0x8. */
	base_case(&c);
	c.tlevel = 2; c.tperm = E_R; c.kind = K_WRITE;
	hand_check(st, &c, &(struct hand){ "R-only PDE above RWX PTE", VMEM_EPT_VIOLATION, 0xa, 1, 0 });

	/* A misconfiguration below an entry without read rights still wins (ept-05). */
	base_case(&c);
	c.tlevel = 3; c.tperm = E_X;
	/* Two entries differ from RWX here (PDPTE execute-only, PTE write-only):
	 * built from the path of a case, then changed by hand. */
	{
		struct outcome o2;
		run_walks(&c, &o2);
		put_both(o2.path[3], (get_lib(o2.path[3]) & ~E_RWX) | E_W);
		vmem_ept_access a = { .type = VMEM_EPT_READ };
		vmem_ept_result r;
		vmem_err err = vmem_ept_walk(get_mmu(&c), host, c.gpa, &a, 0, &r, NULL);
		ref_ept_cpu cpu = { .eptp = eptp_of(&c), .maxphyaddr = c.maxphy, .exec_only = true,
				    .gbpages = true };
		ref_ept_access ra = { .kind = REF_EPT_READ };
		ref_ept_result rr;
		ref_ept_walk(&cpu, &ref_mem, c.gpa, &ra, true, &rr);
		o2.lib = r;
		o2.err = err;
		o2.ref = rr;
		const char *why = NULL;
		if (err || r.status != VMEM_EPT_MISCONFIG || r.level != 1)
			why = "library: misconfig below an exec-only PDPTE";
		else if (rr.status != REF_EPT_MISCONFIG || rr.level != 1)
			why = "reference: misconfig below an exec-only PDPTE";
		record(st, &c, &o2, why);
		clear_path(&o2);
	}

	/* Large leaves: bit 12 is reserved in a 2M and a 1G leaf; bit 7 of a PTE is ignored. */
	base_case(&c);
	c.leaf = c.tlevel = 2; c.tor = 1ull << 12;
	hand_check(st, &c, &(struct hand){ "2M leaf bit 12", VMEM_EPT_MISCONFIG, 0, 2, 0 });
	c.leaf = c.tlevel = 3; c.tor = 1ull << 29;
	hand_check(st, &c, &(struct hand){ "1G leaf bit 29", VMEM_EPT_MISCONFIG, 0, 3, 0 });
	c.tor = 0; c.gpa = 0x200000000ull | 0x1234567ull;
	hand_check(st, &c, &(struct hand){ "1G leaf", VMEM_EPT_OK, 0, 3, FRAME_1G | 0x1234567 });
	c.gbpages = false; /* PS in a PDPTE without 1-GByte pages */
	hand_check(st, &c, &(struct hand){ "1G leaf unsupported", VMEM_EPT_MISCONFIG, 0, 3, 0 });
	base_case(&c);
	c.tor = E_PS; c.gpa = 0x5123;
	hand_check(st, &c, &(struct hand){ "PTE bit 7", VMEM_EPT_OK, 0, 1, FRAME_4K | 0x123 });
	/* Bit 7 of a PML4E and bit 3 of a non-leaf PDE are reserved. */
	c.tlevel = 4; c.tor = E_PS;
	hand_check(st, &c, &(struct hand){ "PML4E bit 7", VMEM_EPT_MISCONFIG, 0, 4, 0 });
	c.tlevel = 2; c.tor = 1ull << 3;
	hand_check(st, &c, &(struct hand){ "non-leaf PDE bit 3", VMEM_EPT_MISCONFIG, 0, 2, 0 });
	/* MAXPHYADDR 40: bit 40 of a PDPTE is reserved; bit 39 of a leaf is address. */
	c.tlevel = 3; c.tor = 1ull << 40;
	hand_check(st, &c, &(struct hand){ "PDPTE bit 40, M 40", VMEM_EPT_MISCONFIG, 0, 3, 0 });
	/* Memory type 2 in a leaf; WC (1) is fine. */
	base_case(&c);
	c.mt = 2;
	hand_check(st, &c, &(struct hand){ "leaf memory type 2", VMEM_EPT_MISCONFIG, 0, 1, 0 });

	/* A/D: a write sets A in all four entries and D in the leaf; a read A only. */
	base_case(&c);
	c.ad = AD_CLEAN; c.kind = K_WRITE; c.gpa = 0x5123;
	run_walks(&c, &o);
	{
		const char *why = compare(&c, &o);
		uint64_t leaf_want = FRAME_4K | 0x30 | E_RWX | E_A | E_D; /* WB 0x30, 0x337 */
		if (!why && (get_lib(o.path[0]) != (table_hpa(3) | 0x107) || get_lib(o.path[3]) != leaf_want))
			why = "hand-worked A/D on a write";
		record(st, &c, &o, why);
		clear_path(&o);
	}
	c.kind = K_READ;
	run_walks(&c, &o);
	{
		const char *why = compare(&c, &o);
		if (!why && get_lib(o.path[3]) != (FRAME_4K | 0x137))
			why = "hand-worked A/D on a read";
		record(st, &c, &o, why);
		clear_path(&o);
	}

	/* GPA bit 48 with 4 levels: not translatable (VMEM_E_INVAL); bit 56 with 5 is. */
	base_case(&c);
	c.gpa = 1ull << 48;
	run_walks(&c, &o);
	record(st, &c, &o, o.err == VMEM_E_INVAL && o.ref.status == REF_EPT_INVAL ? NULL : "gpa bit 48, 4 levels");
	clear_path(&o);
	c.pwl = 5; c.gpa = 1ull << 56;
	hand_check(st, &c, &(struct hand){ "gpa bit 56, 5 levels", VMEM_EPT_OK, 0, 1, FRAME_4K });
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct stats st;
	struct gen g;
	memset(&st, 0, sizeof(st));
	memset(&g, 0, sizeof(g));
	g.st = &st;
	g.stride = DEFAULT_STRIDE;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--full")) {
			g.full = true;
		} else if (!strcmp(argv[i], "--stride") && i + 1 < argc) {
			g.stride = (unsigned)strtoul(argv[++i], NULL, 0);
			if (!g.stride)
				g.stride = 1;
		} else if (!strcmp(argv[i], "--verbose")) {
			st.verbose = true;
		} else if (!strcmp(argv[i], "--log") && i + 1 < argc) {
			st.log = fopen(argv[++i], "w");
			if (!st.log) {
				perror(argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "usage: %s [--full] [--stride N] [--verbose] [--log FILE]\n", argv[0]);
			return 2;
		}
	}
	lib_ram = aligned_alloc(4096, TBL_SIZE);
	ref_ram = aligned_alloc(4096, TBL_SIZE);
	if (!lib_ram || !ref_ram)
		return 2;
	memset(lib_ram, 0, TBL_SIZE);
	memset(ref_ram, 0, TBL_SIZE);
	if (vmem_gmem_new(NULL, &host) || vmem_gmem_add_ram(host, TBL_BASE, TBL_SIZE, lib_ram, 0))
		return 2;

	struct { const char *name; unsigned long long run, pass, fail; } per[6];
	unsigned ns = 0;
#define SECTION(call, label) do { \
		unsigned long long r0 = st.run, p0 = st.pass, f0 = st.fail; \
		call; \
		per[ns].name = label; per[ns].run = st.run - r0; \
		per[ns].pass = st.pass - p0; per[ns].fail = st.fail - f0; ns++; \
	} while (0)
	SECTION(section_hand(&st), "hand-worked");
	SECTION(section_perms(&g), "permissions");
	SECTION(section_reserved(&g), "reserved bits");
	SECTION(section_ignored(&g), "ignored bits");
	SECTION(section_memtype(&g), "memory types");
	SECTION(section_range(&g), "address range");
	for (unsigned i = 0; i < ns; i++)
		printf("  %-14s %9llu cases: %llu passed, %llu failed\n", per[i].name, per[i].run,
		       per[i].pass, per[i].fail);
	printf("%s: %llu passed, %llu failed\n", g.full ? "full matrix" : "sample", st.pass, st.fail);

	vmem_ept_mmu_free(mmu);
	vmem_gmem_free(host);
	free(lib_ram);
	free(ref_ram);
	if (st.log)
		fclose(st.log);
	return st.fail ? 1 : 0;
}
