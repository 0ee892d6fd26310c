/* Nested walk: the fast path (no trace) and the walk through the opt-in EPT cache must answer exactly as the full walk (with a trace), which the Bochs, hand-worked and reference tests pin to the SDM. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/tlb.h>
#include <libvmem/walk.h>
#include "support/ept_rand.h"
#include "support/nested_same.h"

#define RAM (1u << 20)
#define GB 0x80000ull /* host address of guest-physical 0 (4K EPT case) */

static uint8_t *ram, *snap, *after_fast;
/* One byte per 8-byte word of ram: 1 if a walk of this iteration read it as
 * an EPT entry (only such entries can be in the cache across walks). */
static uint8_t *ept_word;
static uint32_t ept_list[4096]; /* the marked words' offsets */
static unsigned ept_n;

/* Did the walk from snap to after change an EPT entry other than by the
 * processor's EPT accessed/dirty flags (bits 8, 9)? Only a guest A/D write
 * landing on an EPT table (the guest's tables alias EPT's) does that. Hardware
 * may keep using a cached copy of such an entry until INVEPT (SDM vol. 3C
 * 29.4.3.1), so the cached walk may then legitimately differ. */
static int ept_entry_rewritten(void)
{
	for (unsigned i = 0; i < ept_n; i++) {
		uint64_t x, y;
		memcpy(&x, snap + ept_list[i], 8);
		memcpy(&y, after_fast + ept_list[i], 8);
		if ((x ^ y) & ~0x300ull)
			return 1;
	}
	return 0;
}

static void mark_ept_words(const vmem_nested_trace *tr)
{
	for (unsigned j = 0; j < tr->n; j++)
		for (unsigned q = 0; q < tr->ept[j].t.n; q++)
			if (tr->ept[j].t.e[q].hpa < RAM && !ept_word[tr->ept[j].t.e[q].hpa / 8]) {
				if (ept_n == sizeof(ept_list) / sizeof(ept_list[0])) {
					fprintf(stderr, "nested_fastpath: more EPT entries than ept_list holds\n");
					exit(2);
				}
				ept_word[tr->ept[j].t.e[q].hpa / 8] = 1;
				ept_list[ept_n++] = (uint32_t)(tr->ept[j].t.e[q].hpa & ~7ull);
			}
}
static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
/* A second stream for what was added later (host memory's layout per walk,
 * non-canonical addresses), so that the first draws what it always drew. */
static uint64_t rs2 = 0x9e3779b97f4a7c15ull;
static uint64_t rnd2(void) { rs2 ^= rs2 << 13; rs2 ^= rs2 >> 7; rs2 ^= rs2 << 17; return rs2; }

/* The MMIO page of gm3: reads as the zeros the RAM page under it holds. */
static int mmio_zero(void *opaque, uint64_t gpa, unsigned size, bool is_write, uint64_t *val)
{
	(void)opaque, (void)gpa, (void)size;
	if (!is_write)
		*val = 0;
	return 0;
}
static void put(uint64_t a, uint64_t v) { memcpy(ram + a, &v, 8); }
static uint64_t get(uint64_t a) { uint64_t v; memcpy(&v, ram + a, 8); return v; }

/* Scattered tables: the guest's tables and pages at guest-physical
 * addresses spread over several 2-MByte, 1-GByte and 512-GByte regions
 * (which the walk's EPT paging-structure cache must tell apart), each region
 * mapped by 4K leaves or one 2M or 1G leaf, host memory of one or two slots. */
#define EPT_POOL 0x1000u  /* EPT tables: host pages from here */
#define PAGE_POOL 0x40000u /* guest tables and pages: host pages from here */
static uint64_t ept_next, page_next;

/* The EPT entry for gpa at `level` (0: none, the tables above missing). */
static uint64_t *ept_slot(uint64_t root, int top, uint64_t gpa, int level, int alloc)
{
	uint64_t t = root;
	for (int l = top; l > level; l--) {
		uint64_t a = t + ((gpa >> (12 + 9 * (l - 1))) & 511) * 8, e = get(a);
		if (!(e & 7) || (e & 0x80)) {
			if (!alloc || ept_next + 0x1000 > PAGE_POOL)
				return NULL;
			e = ept_next | 0x7 | ((rnd() & 7) == 0 ? 0x100 : 0) | ((rnd() & 1) ? 0x400 : 0);
			ept_next += 0x1000;
			put(a, e);
		}
		t = e & 0xffffffffff000ull;
		if (t >= RAM)
			return NULL; /* (a flipped address bit) */
	}
	return (uint64_t *)(void *)(ram + t + ((gpa >> (12 + 9 * (level - 1))) & 511) * 8);
}

/* A leaf's memory type: write-back, or any (2, 3 and 7 are misconfigurations). */
static uint64_t mtype(void)
{
	return (rnd() & 7) ? 0x30 : (rnd() & 7) << 3;
}

struct region {
	uint64_t base;
	int leaf; /* 1: 4K leaves, 2: one 2M leaf, 3: one 1G leaf (host 0 up) */
};

/* A guest-physical page backed by a fresh host page (*hpp), in a random region. */
static uint64_t scatter_page(uint64_t root, int top, const struct region *rg, unsigned nrg, uint64_t *hpp)
{
	const struct region *r = &rg[rnd() % nrg];
	uint64_t hp = page_next;
	page_next = page_next + 0x1000 < RAM ? page_next + 0x1000 : PAGE_POOL;
	*hpp = hp;
	if (r->leaf > 1)
		return r->base + hp;
	uint64_t gpa = r->base + (rnd() % 64) * 0x1000;
	uint64_t *e = ept_slot(root, top, gpa, 1, 1);
	if (e) {
		uint64_t v = hp | 0x7 | mtype() | 0x400 | ((rnd() & 1) ? 0x100 : 0) | ((rnd() & 1) ? 0x200 : 0);
		memcpy(e, &v, 8);
	}
	return gpa;
}

static void scatter_tables(int el, uint64_t *cr3, int gl, uint64_t *las)
{
	const uint64_t root = 0x1000;
	ept_next = EPT_POOL + 0x1000;
	page_next = PAGE_POOL;
	static const uint64_t bases[] = { 0, 0x200000, 0x400000, 0x40000000, 0x40200000, 0x8000000000ull,
					  0x8040000000ull, 0xffffc0000000ull, 0x8000000000000ull };
	struct region rg[4];
	unsigned nrg = 1 + (unsigned)(rnd() % 4);
	for (unsigned i = 0; i < nrg; i++) {
		rg[i].base = bases[rnd() % (sizeof(bases) / sizeof(bases[0]))];
		rg[i].leaf = (rnd() & 3) ? 1 : (rg[i].base & 0x3fffffff) || (rnd() & 1) ? 2 : 3;
		uint64_t *e = ept_slot(root, el, rg[i].base, rg[i].leaf, 1);
		if (rg[i].leaf > 1 && e)
			*e = 0x80 | 0x7 | mtype() | 0x400 | ((rnd() & 1) ? 0x300 : 0x100);
	}
	/* Guest: one table per level on the path of 16 linear pages, data pages anywhere. */
	uint64_t t[6], h[6], hd;
	for (int l = gl; l >= 1; l--)
		t[l] = scatter_page(root, el, rg, nrg, &h[l]);
	*cr3 = t[gl];
	uint64_t la0 = (rnd() & 1) ? 0x7f0000000000ull : 0x1000;
	for (int l = gl; l > 1; l--)
		put(h[l] + ((la0 >> (12 + 9 * (l - 1))) & 511) * 8, t[l - 1] | 0x67 | ((rnd() & 7) == 0 ? (1ull << 63) : 0));
	for (uint64_t k = 0; k < 16; k++) {
		las[k] = la0 + k * 4096;
		uint64_t d = scatter_page(root, el, rg, nrg, &hd);
		put(h[1] + ((las[k] >> 12) & 511) * 8,
		    d | 0x67 | ((rnd() & 3) == 0 ? (1ull << 63) : 0) | ((rnd() & 7) == 0 ? (rnd() & 15) << 59 : 0));
	}
	/* A few bit flips: an EPT entry on the way to a guest table, or a guest entry. */
	for (int m = (int)(rnd() % 4); m > 0; m--) {
		int l = 1 + (int)(rnd() % (unsigned)el);
		uint64_t *e = ept_slot(root, el, t[1 + rnd() % (unsigned)gl], l, 0);
		uint64_t a = (rnd() & 1) && e ? (uint64_t)((uint8_t *)e - ram)
					      : h[1 + rnd() % (unsigned)gl] + ((la0 >> (12 + 9 * (rnd() % 4))) & 511) * 8;
		put(a, get(a) ^ (1ull << ((rnd() & 1) ? rnd() % 12 : rnd() % 64)));
	}
}

/* Random EPT (4 or 5 levels, 4K or 2M leaves, A/D and MBEC/execute-only caps) over random
 * guest tables (4 or 5 levels, XD, PS, keys), together or scattered, a few bit
 * flips, every access kind. */
int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 3000;
	/* argv[2]: the first iteration to walk; earlier ones only draw their
	 * random numbers (the same sequence), to replay one failure quickly. */
	long from = argc > 2 ? atol(argv[2]) : 0;
	ept_word = calloc(RAM / 8, 1);
	ram = aligned_alloc(4096, RAM);
	snap = malloc(RAM);
	after_fast = malloc(RAM);
	/* Host memory as one slot, or two (the guest's tables in either); gm3
	 * with page 0 MMIO, gm4 with page 0 a RAM slot of its own: the EPT root
	 * and the guest's tables are past the first slot, where the hints of a
	 * new EPT context point (the fast paths' region misses). */
	vmem_gmem *gm1, *gm2, *gm3, *gm4;
	vmem_ept_pwc *pwc;
	if (!ram || !snap || !after_fast || !ept_word || vmem_gmem_new(NULL, &gm1) || vmem_gmem_add_ram(gm1, 0, RAM, ram, 0) ||
	    vmem_gmem_new(NULL, &gm2) || vmem_gmem_add_ram(gm2, 0, RAM / 2, ram, 0) ||
	    vmem_gmem_add_ram(gm2, RAM / 2, RAM / 2, ram + RAM / 2, 0) || vmem_ept_pwc_new(NULL, &pwc) ||
	    vmem_gmem_new(NULL, &gm3) || vmem_gmem_add_mmio(gm3, 0, 0x1000, mmio_zero, NULL) ||
	    vmem_gmem_add_ram(gm3, 0x1000, RAM - 0x1000, ram + 0x1000, 0) || vmem_gmem_new(NULL, &gm4) ||
	    vmem_gmem_add_ram(gm4, 0, 0x1000, ram, 0) || vmem_gmem_add_ram(gm4, 0x1000, RAM - 0x1000, ram + 0x1000, 0))
		return 2;
	long n_ok = 0, n_tot = 0, failed = 0, n_rewritten = 0;
	for (long it = 0; it < iters && !failed; it++) {
		memset(ram, 0, RAM);
		memset(ept_word, 0, RAM / 8);
		ept_n = 0;
		vmem_ept_caps caps;
		uint64_t eptp;
		int el = ept_rand_caps(rnd, &caps, &eptp);
		int gl = (rnd() & 3) == 0 ? 5 : 4, scatter = rnd() & 1;
		uint64_t cr3 = 0x10000, las[16];
		if (scatter)
			scatter_tables(el, &cr3, gl, las);
		uint64_t t = 0x1000;
		for (int l = el; l > 1 && !scatter; l--) {
			put(t, (t + 0x1000) | 0x7 | ((rnd() & 3) == 0 ? 0x100 : 0) | ((rnd() & 1) ? 0x400 : 0));
			t += 0x1000;
		}
		uint64_t pt = t;
		int big = (rnd() & 3) == 0; /* a 2M EPT leaf (guest-physical 0 = host 0) instead of 4K leaves */
		if (scatter)
			;
		else if (big)
			put(pt - 0x1000, 0x80 | 0x37 | 0x400 | ((rnd() & 1) ? 0x300 : 0));
		else
			for (uint64_t n = 0; n < 128; n++)
				put(pt + 8 * n, (GB + n * 4096) | 0x37 | 0x400 | ((rnd() & 1) ? 0x100 : 0) |
							((rnd() & 1) ? 0x200 : 0));
		/* Guest tables at guest-physical 0x10000; linear 0x1000 * k -> guest-physical 0x20000 + k * 4K. */
		uint64_t gbase = big ? 0 : GB, g = 0x10000;
		for (int l = gl; l > 1 && !scatter; l--) {
			put(gbase + g, (g + 0x1000) | 0x67 | ((rnd() & 3) == 0 ? (1ull << 63) : 0));
			g += 0x1000;
		}
		for (uint64_t k = 0; k < 64 && !scatter; k++)
			put(gbase + g + 8 * k, (0x20000 + k * 4096) | 0x67 | ((rnd() & 7) == 0 ? 0x80 : 0) |
						       ((rnd() & 3) == 0 ? (1ull << 63) : 0) |
						       ((rnd() & 7) == 0 ? (rnd() & 15) << 59 : 0));
		for (int m = scatter ? 0 : (int)(rnd() % 4); m > 0; m--) {
			uint64_t a = (rnd() & 1) ? 0x1000 + rnd() % (uint64_t)(el * 0x1000)
						 : gbase + 0x10000 + rnd() % (uint64_t)(gl * 0x1000);
			a &= ~7ull;
			if (a + 8 <= RAM)
				put(a, get(a) ^ (1ull << ((rnd() & 1) ? rnd() % 12 : rnd() % 64)));
		}
		vmem_ept_mmu *ept;
		if (vmem_ept_mmu_new(NULL, eptp, &caps, &ept))
			continue;
		vmem_regs r;
		vmem_regs_init(&r);
		r.cr0 = 0x80010001ull;
		r.cr3 = cr3;
		r.cr4 = 0x20 | (gl == 5 ? (1ull << 12) : 0) | ((rnd() & 1) ? (1ull << 20) : 0) |
			((rnd() & 1) ? (1ull << 21) : 0) | ((rnd() & 1) ? (1ull << 22) : 0);
		r.efer = 0x500 | ((rnd() & 1) ? 0x800 : 0);
		r.pkru = (uint32_t)rnd();
		r.maxphyaddr = scatter ? 52 : 40;
		vmem_mmu *mmu;
		if (vmem_mmu_new(NULL, &r, &mmu)) {
			vmem_ept_mmu_free(ept);
			continue;
		}
		vmem_gmem *gmi = (rnd() & 1) ? gm2 : gm1;
		vmem_ept_pwc_invept(pwc, VMEM_INVEPT_ALL, 0); /* new tables */
		int stale = 0; /* an EPT entry was rewritten: INVEPT before the next cached walk */
		for (int k = 0; k < 16 && !failed; k++) {
			uint64_t la = scatter ? las[rnd() % 16] + (rnd() & 0xfff) : (rnd() % 64) * 4096 + (rnd() & 0xfff);
			if ((rnd() & 15) == 0)
				la |= 0xffff800000000000ull;
			if ((rnd2() & 31) == 0)
				la ^= 1ull << 47; /* non-canonical with 4-level paging */
			/* Now and then another layout of the same host memory (the
			 * regions' hints then point elsewhere, or past the end). */
			unsigned lay = (unsigned)(rnd2() & 7);
			vmem_gmem *gm = lay == 0 ? gm1 : lay == 1 ? gm3 : lay == 2 ? gm4 : gmi;
			unsigned acc = (unsigned)(rnd() % 32), fl = (unsigned)(rnd() & 1);
			if (it < from)
				continue;
			vmem_nested_result a, b;
			vmem_nested_trace tr;
			memcpy(snap, ram, RAM);
			int e1 = vmem_nested_walk(mmu, ept, gm, la, acc, fl, &a, NULL);
			memcpy(after_fast, ram, RAM);
			memcpy(ram, snap, RAM);
			int e2 = vmem_nested_walk(mmu, ept, gm, la, acc, fl, &b, &tr);
			n_tot++;
			if (e1 == 0 && a.status == VMEM_NESTED_OK)
				n_ok++;
			if (e1 != e2 || (e1 == 0 && !nested_same(&a, &b)) || memcmp(ram, after_fast, RAM)) {
				printf("MISMATCH iteration %ld la %#" PRIx64 " access %#x flags %u: err %d/%d status %u/%u "
				       "hpa %#" PRIx64 "/%#" PRIx64 " memory %s\n", it, la, acc, fl, e1, e2, a.status,
				       b.status, a.hpa, b.hpa, memcmp(ram, after_fast, RAM) ? "differs" : "same");
				failed++;
			}
			/* The opt-in cache across walks: the same answer as long as no
			 * EPT entry it may hold was rewritten since the last INVEPT (the
			 * tables change only by A/D flags, unless the guest's tables
			 * alias EPT's: then INVEPT, as a VMM must). */
			mark_ept_words(&tr);
			int rewritten = ept_entry_rewritten();
			if (stale)
				vmem_ept_pwc_invept(pwc, VMEM_INVEPT_ALL, 0);
			stale = rewritten;
			vmem_nested_result c;
			memcpy(ram, snap, RAM);
			int e3 = vmem_nested_walk_pwc(mmu, ept, gm, pwc, la, acc, fl, &c);
			if (rewritten) {
				/* This walk rewrote an EPT entry it then uses: the cached and
				 * uncached walks may legitimately differ; only memory safety
				 * (and, under ASan/memcheck, definedness) is checked. */
				memcpy(ram, after_fast, RAM);
				n_rewritten++;
			} else if (e3 != e1 || (e1 == 0 && !nested_same(&a, &c)) || memcmp(ram, after_fast, RAM)) {
				printf("MISMATCH (cached) iteration %ld la %#" PRIx64 " access %#x flags %u\n", it, la, acc, fl);
				failed++;
			}
		}
		vmem_mmu_free(mmu);
		vmem_ept_mmu_free(ept);
	}
	printf("nested fast path vs full walk: %ld walks (%ld OK; %ld rewrote an EPT entry through an aliased guest table)\n",
	       n_tot, n_ok, n_rewritten);
	printf("%ld passed, %ld failed\n", n_tot - failed, failed);
	vmem_ept_pwc_free(pwc);
	vmem_gmem_free(gm1);
	vmem_gmem_free(gm2);
	vmem_gmem_free(gm3);
	vmem_gmem_free(gm4);
	free(ram);
	free(snap);
	free(after_fast);
	free(ept_word);
	return failed ? 1 : 0;
}
