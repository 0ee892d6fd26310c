/* Nested walk against an independent composition of the two reference walkers: tests/ref/ref_walk.c's guest walk, each guest-physical access of which is tests/ref/ref_ept.c's EPT walk, then the final access. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>
#include "ref_ept.h"
#include "ref_walk.h"
#include "support/ept_rand.h"

/* The composition states SDM vol. 3C 29.3.3.2 and 28.2.1 once more:
 * - every read of a guest paging-structure entry is an EPT translation of
 *   its own (a data read, a write under EPT A/D), whose exit stops the walk
 *   before the entry is judged, with qualification bit 7 = 1, bit 8 = 0;
 * - each guest accessed/dirty update is a data write to the entry, itself
 *   translated (EPT A/D flags set, or a violation with bit 1);
 * - then the final access, bit 8 = 1, whose qualification bits 9-11 come
 *   from the guest translation's U/S, R/W and XD.
 * The orders the SDM leaves open follow vectors.md: flags are written only
 * by translations that complete, the guest's before the final access. */

#define RAM (1u << 20)
#define GB 0x80000ull /* host address of guest-physical 0 (4K EPT leaves) */

static uint8_t *lram, *rram; /* the library's and the reference's host memory */
static uint64_t rs = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static void put(uint64_t a, uint64_t v) { memcpy(lram + a, &v, 8); }
static void put32(uint64_t a, uint32_t v) { memcpy(lram + a, &v, 4); }
static uint64_t get(uint64_t a) { uint64_t v; memcpy(&v, lram + a, 8); return v; }

static bool h_read(void *ctx, uint64_t hpa, uint64_t *v)
{
	(void)ctx;
	if (hpa >= RAM || (hpa & 7))
		return false;
	memcpy(v, rram + hpa, 8);
	return true;
}

static bool h_write(void *ctx, uint64_t hpa, uint64_t v)
{
	(void)ctx;
	if (hpa >= RAM || (hpa & 7))
		return false;
	memcpy(rram + hpa, &v, 8);
	return true;
}

/* The reference nested walk: where it stopped. */
enum { STOP_NONE, STOP_EPT, STOP_HOST, STOP_INVAL };

struct comp {
	ref_ept_cpu ec;
	ref_ept_mem em;
	uint64_t la;
	bool set_ad;
	int stop;
	ref_ept_result exit; /* STOP_EPT: the EPT walk that did not complete */
	uint64_t host;       /* STOP_HOST: the guest entry's host address */
};

static bool g_xlate(struct comp *c, uint64_t gpa, ref_ept_kind kind, uint64_t *hpa)
{
	if (c->stop)
		return false;
	ref_ept_access a;
	memset(&a, 0, sizeof(a));
	a.kind = kind;
	a.has_linear = true;
	a.linear = c->la;
	ref_ept_result r;
	ref_ept_walk(&c->ec, &c->em, gpa, &a, c->set_ad, &r);
	if (r.status == REF_EPT_INVAL) {
		c->stop = STOP_INVAL;
		return false;
	}
	if (r.status != REF_EPT_OK) {
		c->stop = STOP_EPT;
		c->exit = r;
		return false;
	}
	*hpa = r.hpa;
	return true;
}

/* The host bytes of a guest access of size bytes at gpa, translated for kind; NULL: the walk stops. */
static uint8_t *g_host(struct comp *c, uint64_t gpa, unsigned size, ref_ept_kind kind)
{
	uint64_t hpa;
	if (!g_xlate(c, gpa, kind, &hpa))
		return NULL;
	if (hpa + size > RAM) {
		c->stop = STOP_HOST;
		c->host = hpa;
		return NULL;
	}
	return rram + hpa;
}

static bool g_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	uint8_t *p = g_host(ctx, gpa, size, REF_EPT_GUEST_PS);
	*val = 0;
	if (p)
		memcpy(val, p, size);
	return p != NULL;
}

static bool g_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	uint8_t *p = g_host(ctx, gpa, size, REF_EPT_GUEST_AD);
	if (p)
		memcpy(p, &val, size);
	return p != NULL;
}

/* What the reference says, in the library's terms. */
struct want {
	int inval;
	vmem_nested_status status;
	uint64_t hpa, page_size, qual, gpa, linear;
	uint32_t error_code;
	int final;
};

static void from_exit(struct want *w, const ref_ept_result *r, int final)
{
	w->final = final;
	if (r->status == REF_EPT_VIOLATION) {
		w->status = VMEM_NESTED_EPT_VIOLATION;
		w->qual = r->qual;
		w->gpa = r->gpa;
		w->linear = r->linear;
	} else if (r->status == REF_EPT_MISCONFIG) {
		w->status = VMEM_NESTED_EPT_MISCONFIG;
		w->gpa = r->gpa;
	} else {
		w->status = VMEM_NESTED_BAD_HPA;
		w->hpa = r->hpa;
	}
}

static void ref_nested(struct comp *c, const ref_cpu *gc, const ref_access *ga, struct want *w)
{
	memset(w, 0, sizeof(*w));
	ref_mem gm = { g_read, g_write, c };
	ref_result g;
	ref_walk(gc, &gm, ga, c->set_ad, &g);
	if (g.status == REF_INVAL || c->stop == STOP_INVAL) {
		w->inval = 1;
		return;
	}
	if (c->stop == STOP_EPT) {
		from_exit(w, &c->exit, 0);
		return;
	}
	if (c->stop == STOP_HOST) {
		w->status = VMEM_NESTED_BAD_HPA;
		w->hpa = c->host;
		return;
	}
	if (g.status == REF_PF) {
		w->status = VMEM_NESTED_PF;
		w->error_code = g.error_code;
		return;
	}
	if (g.status == REF_GP) {
		w->status = VMEM_NESTED_GP;
		return;
	}
	ref_ept_access a;
	memset(&a, 0, sizeof(a));
	a.kind = ga->write ? REF_EPT_WRITE : ga->fetch ? REF_EPT_FETCH : REF_EPT_READ;
	a.has_linear = true;
	a.linear = ga->la;
	a.guest_user = g.perms & REF_PERM_U;
	a.guest_rw = g.perms & REF_PERM_W;
	a.guest_nx = !(g.perms & REF_PERM_X);
	ref_ept_result r;
	ref_ept_walk(&c->ec, &c->em, g.gpa, &a, c->set_ad, &r);
	if (r.status == REF_EPT_INVAL) {
		w->inval = 1;
		return;
	}
	if (r.status != REF_EPT_OK) {
		from_exit(w, &r, 1);
		return;
	}
	w->status = VMEM_NESTED_OK;
	w->hpa = r.hpa;
	w->page_size = r.page_size < g.page_size ? r.page_size : g.page_size;
}

/* The library's answer has the reference's status and, for it, the same fields. */
static bool same(const vmem_nested_result *r, const struct want *w)
{
	if (r->status != w->status)
		return false;
	switch (w->status) {
	case VMEM_NESTED_OK: return r->hpa == w->hpa && r->page_size == w->page_size;
	case VMEM_NESTED_PF: return r->error_code == w->error_code;
	case VMEM_NESTED_EPT_VIOLATION: return r->exit_qual == w->qual && r->gpa == w->gpa && r->linear == w->linear && r->final == w->final;
	case VMEM_NESTED_EPT_MISCONFIG: return r->gpa == w->gpa && r->final == w->final;
	case VMEM_NESTED_BAD_HPA: return r->hpa == w->hpa;
	default: return true;
	}
}

/* Guest entry flags: mostly present, writable, user, random A/D, now and then XD or a key. */
static uint64_t gflags(bool leaf)
{
	uint64_t f = (rnd() % 12) ? 1 : 0;
	f |= (rnd() % 5) ? 2 : 0;
	f |= (rnd() % 4) ? 4 : 0;
	f |= (rnd() & 1) ? 0x20 : 0;
	f |= leaf && (rnd() & 1) ? 0x40 : 0;
	f |= (rnd() % 6) == 0 ? (1ull << 63) : 0;
	f |= leaf && (rnd() % 6) == 0 ? (rnd() & 15) << 59 : 0;
	return f;
}

/* An EPT leaf's bits: mostly RWX (XU too) write-back, else any rights or memory type. */
static uint64_t eflags(void)
{
	uint64_t f = (rnd() % 3) ? 0x7 | 0x400 : (rnd() & 7) | ((rnd() & 1) ? 0x400 : 0);
	f |= (rnd() % 8) ? 0x30 : (rnd() & 7) << 3;
	f |= (rnd() & 1) ? 0x100 : 0;
	f |= (rnd() & 1) ? 0x200 : 0;
	return f;
}

enum { M_OFF, M_32, M_PAE, M_4, M_5 };

/* Guest tables at guest-physical 0x10000 up; linear 0x1000 * k (k < 64) ->
 * guest-physical 0x20000 + 0x1000 * k. gbase: host address of guest-physical 0. */
static void guest_tables(int mode, uint64_t gbase)
{
	uint64_t g = 0x10000;
	if (mode == M_32) {
		put32(gbase + g, (uint32_t)(0x11000 | (gflags(false) & 0x67) | ((rnd() % 6) == 0 ? 0x80 : 0)));
		for (uint64_t k = 0; k < 64; k++)
			put32(gbase + 0x11000 + 4 * k, (uint32_t)((0x20000 + k * 4096) | (gflags(true) & 0x67)));
		return;
	}
	int levels = mode == M_PAE ? 2 : mode == M_4 ? 4 : 5;
	if (mode == M_PAE) {
		put(gbase + g, 0x11000 | 1);
		g = 0x11000;
	}
	for (int l = levels; l > 1; l--) {
		uint64_t ps = l <= 3 && (rnd() % 8) == 0 ? 0x80 : 0;
		put(gbase + g, (g + 0x1000) | gflags(false) | ps);
		g += 0x1000;
	}
	for (uint64_t k = 0; k < 64; k++)
		put(gbase + g + 8 * k, (0x20000 + k * 4096) | gflags(true) | ((rnd() % 8) == 0 ? 0x80 : 0));
}

/* A few bit flips in the EPT tables or the guest's. */
static void flips(int el, uint64_t gbase)
{
	for (int m = (int)(rnd() % 4); m > 0; m--) {
		uint64_t a = (rnd() & 1) ? 0x1000 + rnd() % (uint64_t)(el * 0x1000) : gbase + 0x10000 + rnd() % 0x5000;
		a &= ~7ull;
		unsigned bit = (rnd() & 1) ? (unsigned)(rnd() % 12) : (unsigned)(rnd() % 64);
		if (a + 8 <= RAM)
			put(a, get(a) ^ (1ull << bit));
	}
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000;
	lram = aligned_alloc(4096, RAM);
	rram = aligned_alloc(4096, RAM);
	vmem_gmem *gm;
	if (!lram || !rram || vmem_gmem_new(NULL, &gm) || vmem_gmem_add_ram(gm, 0, RAM, lram, 0))
		return 2;
	long n = 0, n_ok = 0, n_exit = 0, failed = 0;
	for (long it = 0; it < iters && !failed; it++) {
		memset(lram, 0, RAM);
		/* EPT: tables at 0x1000 up, 4K leaves mapping guest-physical n * 4K
		 * (n < 128) to GB + n * 4K, or one 2M leaf at host 0. */
		vmem_ept_caps caps;
		uint64_t eptp;
		int el = ept_rand_caps(rnd, &caps, &eptp);
		uint64_t t = 0x1000;
		for (int l = el; l > 1; l--) {
			put(t, (t + 0x1000) | 0x7 | ((rnd() & 1) ? 0x100 : 0) | ((rnd() % 3) ? 0x400 : 0));
			t += 0x1000;
		}
		bool big = (rnd() & 3) == 0;
		if (big)
			put(t - 0x1000, 0x80 | eflags());
		else
			for (uint64_t k = 0; k < 128; k++)
				put(t + 8 * k, (GB + k * 4096) | eflags());
		uint64_t gbase = big ? 0 : GB;
		int mode = (int)(rnd() % 5);
		guest_tables(mode, gbase);
		flips(el, gbase);

		vmem_regs r;
		vmem_regs_init(&r);
		r.maxphyaddr = 40;
		r.gbpages = rnd() & 1;
		r.pkru = (uint32_t)rnd();
		r.cr0 = 0x11 | ((rnd() & 1) ? 0x10000 : 0) | (mode != M_OFF ? 0x80000000ull : 0);
		r.cr3 = 0x10000;
		uint64_t smx = ((rnd() & 1) ? (1ull << 20) : 0) | ((rnd() & 1) ? (1ull << 21) : 0);
		r.cr4 = mode == M_32 ? 0x10 | smx : mode == M_OFF ? 0 : 0x20 | smx;
		if (mode >= M_4)
			r.cr4 |= ((rnd() & 1) ? (1ull << 22) : 0) | (mode == M_5 ? (1ull << 12) : 0);
		r.efer = (mode >= M_4 ? 0x500 : 0) | ((rnd() & 1) ? 0x800 : 0);
		ref_cpu gc;
		memset(&gc, 0, sizeof(gc));
		gc.cr0 = r.cr0, gc.cr3 = r.cr3, gc.cr4 = r.cr4, gc.efer = r.efer, gc.pkru = r.pkru;
		gc.maxphyaddr = r.maxphyaddr;
		gc.gbpages = r.gbpages;
		vmem_mmu *mmu = NULL;
		vmem_ept_mmu *ept = NULL;
		if (vmem_mmu_new(NULL, &r, &mmu) || vmem_ept_mmu_new(NULL, eptp, &caps, &ept)) {
			vmem_mmu_free(mmu);
			continue;
		}
		if (mode == M_PAE) {
			/* The PDPTE registers, as MOV to CR3 loaded them (from what the PDPT is now). */
			uint64_t gpa = r.cr3 & 0xffffffe0ull, pdpte[4];
			vmem_ept_access a = { .type = VMEM_EPT_READ };
			vmem_ept_result er;
			if (vmem_ept_walk(ept, gm, gpa, &a, VMEM_EPT_NO_AD, &er, NULL) || er.status != VMEM_EPT_OK ||
			    er.hpa + 32 > RAM) {
				vmem_mmu_free(mmu);
				vmem_ept_mmu_free(ept);
				continue;
			}
			memcpy(pdpte, lram + er.hpa, 32);
			memcpy(gc.pdpte, pdpte, 32);
			vmem_mmu_set_pdptes(mmu, pdpte);
		}
		struct comp c;
		memset(&c, 0, sizeof(c));
		c.ec.eptp = eptp;
		c.ec.maxphyaddr = caps.maxphyaddr;
		c.ec.exec_only = caps.exec_only;
		c.ec.gbpages = caps.gbpages;
		c.ec.advanced_info = caps.advanced_info;
		c.ec.mbec = caps.mbec;
		c.em.read = h_read;
		c.em.write = h_write;
		for (int k = 0; k < 16 && !failed; k++) {
			uint64_t la = (rnd() % 64) * 4096 + (rnd() & 0xfff);
			if (mode >= M_4 && (rnd() & 15) == 0)
				la ^= 1ull << (mode == M_5 ? 56 : 47); /* non-canonical */
			unsigned acc = (unsigned)(rnd() % 32), fl = (rnd() % 5) == 0;
			memcpy(rram, lram, RAM);
			vmem_nested_result res;
			vmem_nested_trace tr;
			vmem_err e = vmem_nested_walk(mmu, ept, gm, la, acc, fl, &res, (rnd() & 1) ? &tr : NULL);
			struct want w;
			ref_access ga = { .la = la, .write = acc & VMEM_ACC_WRITE, .fetch = acc & VMEM_ACC_FETCH,
					  .cpl3 = acc & VMEM_ACC_USER, .implicit = acc & VMEM_ACC_IMPLICIT,
					  .ac = acc & VMEM_ACC_AC };
			c.la = la;
			c.set_ad = !fl;
			c.stop = STOP_NONE;
			ref_nested(&c, &gc, &ga, &w);
			n++;
			bool bad = w.inval ? e != VMEM_E_INVAL : e || !same(&res, &w);
			n_ok += !w.inval && w.status == VMEM_NESTED_OK;
			n_exit += !w.inval && (w.status == VMEM_NESTED_EPT_VIOLATION || w.status == VMEM_NESTED_EPT_MISCONFIG);
			if (bad || (!w.inval && memcmp(lram, rram, RAM))) {
				printf("MISMATCH iteration %ld mode %d EPT %d levels eptp %#" PRIx64
				       " caps mbec %d xo %d 1g %d adv %d; la %#" PRIx64 " access %#x flags %u\n",
				       it, mode, el, eptp, caps.mbec, caps.exec_only, caps.gbpages, caps.advanced_info, la,
				       acc, fl);
				printf("  library: err %d status %u final %u qual %#" PRIx64 " gpa %#" PRIx64 " linear %#" PRIx64
				       " hpa %#" PRIx64 " size %#" PRIx64 " pfec %#x\n",
				       e, res.status, res.final, res.exit_qual, res.gpa, res.linear, res.hpa, res.page_size,
				       res.error_code);
				printf("  reference: inval %d status %u final %d qual %#" PRIx64 " gpa %#" PRIx64
				       " linear %#" PRIx64 " hpa %#" PRIx64 " size %#" PRIx64 " pfec %#x\n",
				       w.inval, w.status, w.final, w.qual, w.gpa, w.linear, w.hpa, w.page_size, w.error_code);
				for (uint64_t a = 0; a < RAM; a += 8)
					if (memcmp(lram + a, rram + a, 8))
						printf("  memory %#" PRIx64 ": library %#" PRIx64 ", reference %#" PRIx64 "\n", a,
						       get(a), *(uint64_t *)(void *)(rram + a));
				failed++;
			}
		}
		vmem_mmu_free(mmu);
		vmem_ept_mmu_free(ept);
	}
	printf("nested walk vs ref_walk + ref_ept: %ld walks (%ld OK, %ld EPT exits)\n", n, n_ok, n_exit);
	printf("%ld passed, %ld failed\n", n - failed, failed);
	vmem_gmem_free(gm);
	free(lram);
	free(rram);
	return failed ? 1 : 0;
}
