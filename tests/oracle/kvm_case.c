/* kvm_case.c: random 4-level paging cases for the KVM oracle, biased toward every fault class. */
#include "kvm_case.h"

#include <string.h>

#define P    (1ull << 0)
#define RW   (1ull << 1)
#define US   (1ull << 2)
#define PWT  (1ull << 3)
#define PCD  (1ull << 4)
#define ACC  (1ull << 5)
#define DIRTY (1ull << 6)
#define PS   (1ull << 7)
#define GLB  (1ull << 8)
#define PAT2M (1ull << 12)
#define XD   (1ull << 63)
#define GIB4 (1ull << 32)
#define PHYS_TOP (1ull << KVM_MAXPHYADDR)

uint64_t kvm_rng_next(kvm_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(kvm_rng *r, uint64_t n)
{
	return kvm_rng_next(r) % n;
}

static bool chance(kvm_rng *r, unsigned pct)
{
	return rnd(r, 100) < pct;
}

int kvm_case_page_of(const kvm_case *c, uint64_t gpa)
{
	for (unsigned i = 0; i < c->npages; i++)
		if ((gpa & ~0xfffull) == c->page_gpa[i])
			return (int)i;
	return -1;
}

/* A random guest-physical address aligned to `align`, above the harness
 * region, below MAXPHYADDR; a quarter of them below 4 GiB. */
static uint64_t rand_phys(kvm_rng *r, uint64_t align)
{
	for (;;) {
		uint64_t top = chance(r, 25) ? GIB4 : PHYS_TOP;
		uint64_t a = rnd(r, top) & ~(align - 1);
		if (a >= KVM_HARNESS_SIZE && a >= align)
			return a;
	}
}

static int add_page(kvm_case *c, uint64_t gpa, unsigned char *buf)
{
	int i = (int)c->npages++;
	c->page_gpa[i] = gpa;
	c->page[i] = buf + (size_t)i * 4096;
	memset(c->page[i], 0, 4096);
	return i;
}

static int new_table(kvm_case *c, kvm_rng *r, unsigned char *buf)
{
	uint64_t g;
	do
		g = rand_phys(r, 0x1000);
	while (kvm_case_page_of(c, g) >= 0);
	return add_page(c, g, buf);
}

static void put_entry(unsigned char *page, unsigned idx, uint64_t v)
{
	memcpy(page + 8 * idx, &v, 8);
}

/* True if the entry at (page pg, idx) is taken: on the path or the harness's. */
static bool taken(const kvm_case *c, int pg, unsigned idx)
{
	uint64_t g = c->page_gpa[pg] + 8ull * idx;
	if (pg == 0 && idx == KVM_HARNESS_SLOT)
		return true;
	for (unsigned i = 0; i < c->npath; i++)
		if (c->path[i].gpa == g)
			return true;
	return false;
}

/* Random junk in a few entries the walk must not read. */
static void add_noise(kvm_case *c, kvm_rng *r, int pg, unsigned keep)
{
	unsigned n = (unsigned)rnd(r, 8);
	for (unsigned k = 0; k < n; k++) {
		unsigned idx = (unsigned)rnd(r, 512);
		if (idx == keep || taken(c, pg, idx))
			continue;
		put_entry(c->page[pg], idx, kvm_rng_next(r));
	}
}

/* The next-level table: now and then an existing table page (so that one
 * page serves at two levels, as with recursive mappings), else a new one.
 * cur is the entry being built, not yet on the path. */
static int next_table(kvm_case *c, kvm_rng *r, unsigned char *buf, uint64_t cur,
		      unsigned next_idx)
{
	if (chance(r, 8)) {
		int cand = (int)rnd(r, c->npages);
		if (!taken(c, cand, next_idx) && c->page_gpa[cand] + 8ull * next_idx != cur)
			return cand;
	}
	return new_table(c, r, buf);
}

/* Flags of a present entry without reserved bits (address not included). */
static uint64_t good_flags(kvm_rng *r, bool nxe)
{
	uint64_t e = P;
	if (chance(r, 75))
		e |= RW;
	if (chance(r, 75))
		e |= US;
	if (chance(r, 50))
		e |= ACC;
	if (chance(r, 50))
		e |= DIRTY;
	if (chance(r, 15))
		e |= PWT;
	if (chance(r, 15))
		e |= PCD;
	if (chance(r, 20))
		e |= GLB;
	if (chance(r, 30))
		e |= rnd(r, 8) << 9;          /* bits 11:9 ignored */
	if (chance(r, 15))
		e |= rnd(r, 0x800) << 52;     /* bits 62:52 ignored (no PKE) */
	if (nxe && chance(r, 20))
		e |= XD;
	return e;
}

/* Pick the kind of the path entry at `level`. */
static enum kvm_ent_kind pick_kind(kvm_rng *r, unsigned level, bool nxe)
{
	unsigned x = (unsigned)rnd(r, 100);
	if (x < 5)
		return ENT_NP;
	if (x >= 11)
		return ENT_GOOD;
	enum kvm_ent_kind opts[4];
	unsigned n = 0;
	opts[n++] = ENT_RSVD_ADDR;
	if (level >= 3)
		opts[n++] = ENT_RSVD_PS;
	if (level == 2)
		opts[n++] = ENT_RSVD_ALIGN;
	if (!nxe)
		opts[n++] = ENT_RSVD_XD;
	return opts[rnd(r, n)];
}

static unsigned la_index(uint64_t la, unsigned level)
{
	return (unsigned)(la >> (12 + 9 * (level - 1))) & 511;
}

static uint64_t la_with_index(uint64_t la, unsigned level, unsigned idx)
{
	unsigned sh = 12 + 9 * (level - 1);
	return (la & ~(511ull << sh)) | ((uint64_t)idx << sh);
}

static void push_path(kvm_case *c, uint64_t gpa, uint64_t v, unsigned level, enum kvm_ent_kind k)
{
	c->path[c->npath].gpa = gpa;
	c->path[c->npath].value = v;
	c->path[c->npath].level = level;
	c->path[c->npath].kind = k;
	c->npath++;
}

void kvm_case_gen(kvm_case *c, kvm_rng *r, unsigned char *buf)
{
	memset(c, 0, sizeof(*c));
	bool nxe = chance(r, 50);
	c->cr0 = 0x80000033ull | (chance(r, 50) ? (1ull << 16) : 0); /* PG NE ET MP PE [WP] */
	c->cr4 = 0x20ull | (chance(r, 30) ? 0x80 : 0) | (chance(r, 30) ? 0x10 : 0); /* PAE [PGE] [PSE] */
	c->efer = 0x500ull | (nxe ? 0x800 : 0); /* LME LMA [NXE] */
	c->type = (enum kvm_acc)rnd(r, 3);
	c->cpl = chance(r, 50) ? 3 : 0;
	c->data_page = -1;

	/* Linear address: any PML4 slot but the harness's (and, at CPL 3,
	 * not slot 256, where kvm_pvm faults whatever the tables say). */
	unsigned slot;
	do
		slot = (unsigned)rnd(r, 512);
	while (slot == KVM_HARNESS_SLOT || (c->cpl == 3 && slot == 256));
	c->la = ((uint64_t)slot << 39) | rnd(r, 1ull << 39);
	if (c->la & (1ull << 47))
		c->la |= 0xffff000000000000ull; /* canonical */

	int pg = new_table(c, r, buf);
	c->cr3 = c->page_gpa[pg] | (chance(r, 20) ? PWT : 0) | (chance(r, 20) ? PCD : 0);
	put_entry(c->page[pg], KVM_HARNESS_SLOT, KVM_HARNESS_PML4E);

	bool again = false; /* the entry above points to its own page at this level's index */
	for (unsigned level = 4; level >= 1; level--) {
		unsigned idx = la_index(c->la, level);
		if (again) {
			/* A self-map: the walk reads the same entry again, one level
			 * down, and its page is again the next table. The next index
			 * must name another entry. */
			push_path(c, c->path[c->npath - 1].gpa, c->path[c->npath - 1].value,
				  level, ENT_GOOD);
			again = false;
			unsigned nidx = la_index(c->la, level - 1);
			while (taken(c, pg, nidx))
				nidx = (unsigned)rnd(r, 512);
			c->la = la_with_index(c->la, level - 1, nidx);
			continue;
		}
		enum kvm_ent_kind kind = pick_kind(r, level, nxe);
		bool leaf = level == 1 || (level == 2 && chance(r, 35));
		uint64_t e;

		add_noise(c, r, pg, idx);
		switch (kind) {
		case ENT_NP:
			e = chance(r, 30) ? 0 : kvm_rng_next(r) & ~P;
			break;
		case ENT_RSVD_ADDR:
			e = good_flags(r, nxe) | rand_phys(r, leaf && level == 2 ? 1ull << 21 : 0x1000);
			e |= (1 + rnd(r, 15)) << KVM_MAXPHYADDR;  /* bits 51:48 */
			if (level == 2 && leaf)
				e |= PS;
			break;
		case ENT_RSVD_PS:
			/* SDM 4.5: PS is reserved in a PML4E; in a PDPTE without 1-GByte pages. */
			e = good_flags(r, nxe) | PS | rand_phys(r, 1ull << 30);
			break;
		case ENT_RSVD_ALIGN:
			/* SDM 4.5, Table 4-18: bits 20:13 of a 2-MByte PDE are reserved. */
			e = good_flags(r, nxe) | PS | rand_phys(r, 1ull << 21) | ((1 + rnd(r, 255)) << 13);
			break;
		case ENT_RSVD_XD:
			/* SDM 4.5: XD is reserved when IA32_EFER.NXE = 0. */
			e = good_flags(r, nxe) | XD | rand_phys(r, leaf && level == 2 ? 1ull << 21 : 0x1000);
			if (level == 2 && leaf)
				e |= PS;
			break;
		default: /* ENT_GOOD */
			e = good_flags(r, nxe);
			break;
		}

		uint64_t egpa = c->page_gpa[pg] + 8ull * idx;
		if (kind != ENT_GOOD) {
			put_entry(c->page[pg], idx, e);
			push_path(c, egpa, e, level, kind);
			break;
		}
		if (leaf && level == 2) {
			uint64_t frame, dpage;
			do {
				frame = rand_phys(r, 1ull << 21);
				dpage = frame + (c->la & 0x1ff000);
			} while (kvm_case_page_of(c, dpage) >= 0);
			e |= PS | frame | (chance(r, 30) ? PAT2M : 0);
			c->gpa = frame + (c->la & 0x1fffff);
			c->page_size = 1ull << 21;
			c->data_page = add_page(c, dpage, buf);
		} else if (leaf) {
			int d = new_table(c, r, buf);
			e |= c->page_gpa[d];
			c->gpa = c->page_gpa[d] + (c->la & 0xfff);
			c->page_size = 0x1000;
			c->data_page = d;
		}
		int next = -1;
		if (!leaf && level >= 3 && chance(r, 5)) {
			/* Self-map (recursive) entry: it points to its own page, and
			 * the address's next index selects it again. */
			next = pg;
			again = true;
			c->la = la_with_index(c->la, level - 1, idx);
		} else if (!leaf) {
			next = next_table(c, r, buf, egpa, la_index(c->la, level - 1));
		}
		if (next >= 0)
			e |= c->page_gpa[next];
		put_entry(c->page[pg], idx, e);
		push_path(c, egpa, e, level, kind);
		if (leaf) {
			c->mapped = true;
			break;
		}
		pg = next;
	}

	/* The data page: a HLT at the target for a fetch (and INT3 around it),
	 * a marker byte for a read, something else than the written byte for a write. */
	if (c->data_page >= 0) {
		unsigned char *d = c->page[c->data_page];
		unsigned off = (unsigned)(c->gpa & 0xfff);
		uint8_t fill = (uint8_t)rnd(r, 256);
		memset(d, fill, 4096);
		if (c->type == KVM_ACC_FETCH) {
			memset(d, 0xcc, 4096);
			d[off] = 0xf4;
		}
		do
			c->marker = (uint8_t)rnd(r, 256);
		while (c->marker == fill);
		d[off] = c->type == KVM_ACC_FETCH ? 0xf4 : c->marker;
		if (c->type == KVM_ACC_READ)
			d[off] = c->marker;
	}
	do
		c->wbyte = (uint8_t)rnd(r, 256);
	while (c->data_page >= 0 && c->wbyte == c->page[c->data_page][c->gpa & 0xfff]);
}

const char *kvm_acc_name(enum kvm_acc t)
{
	return t == KVM_ACC_READ ? "read" : t == KVM_ACC_WRITE ? "write" : "fetch";
}

const char *kvm_ent_kind_name(enum kvm_ent_kind k)
{
	static const char *const n[] = { "good", "not-present", "rsvd-addr>=MAXPHYADDR",
					 "rsvd-PS", "rsvd-2M-misaligned", "rsvd-XD-without-NXE" };
	return (unsigned)k < sizeof(n) / sizeof(n[0]) ? n[k] : "?";
}
