/* ref_ept: the SDM vol. 3C EPT walk rules (29.3.2, 29.3.3, 29.3.5, 28.2.1) written out one per line, as a test oracle (clarity over speed). */
#include "ref_ept.h"

#include <string.h>

/* EPTP fields (25.6.11). */
#define EPTP_AD_BIT (1ull << 6)

/* Entry bits (29.3.2, Tables 29-1 .. 29-6). */
#define BIT_R  (1ull << 0)   /* read access */
#define BIT_W  (1ull << 1)   /* write access */
#define BIT_X  (1ull << 2)   /* execute access (supervisor-mode linear addresses with MBEC) */
#define BIT_PS (1ull << 7)   /* PDPTE / PDE: maps a page */
#define BIT_A  (1ull << 8)   /* accessed (29.3.5) */
#define BIT_D  (1ull << 9)   /* dirty (29.3.5) */
#define BIT_XU (1ull << 10)  /* execute access for user-mode linear addresses (MBEC) */

/* Exit qualification bits (28.2.1, Table 28-7). */
#define Q_READ      (1ull << 0)
#define Q_WRITE     (1ull << 1)
#define Q_FETCH     (1ull << 2)
#define Q_READABLE  (1ull << 3)
#define Q_WRITABLE  (1ull << 4)
#define Q_EXEC      (1ull << 5)
#define Q_UEXEC     (1ull << 6)
#define Q_GLA_VALID (1ull << 7)
#define Q_GLA_FINAL (1ull << 8)
#define Q_USER      (1ull << 9)
#define Q_RW        (1ull << 10)
#define Q_NX        (1ull << 11)

/* Bits hi..lo set (empty when hi < lo). */
static uint64_t bits(int hi, int lo)
{
	uint64_t r = 0;
	for (int b = lo; b <= hi; b++)
		r |= 1ull << b;
	return r;
}

static bool has(uint64_t v, uint64_t bit) { return (v & bit) != 0; }

static unsigned walk_levels(const ref_ept_cpu *c) { return (unsigned)((c->eptp >> 3) & 7) + 1; } /* 25.6.11: bits 5:3 = length - 1 */
static bool ad_enabled(const ref_ept_cpu *c) { return has(c->eptp, EPTP_AD_BIT); }              /* 25.6.11: bit 6 */

/* 29.3.2: the address bits of an entry (or of the EPTP) are M-1:12. */
static uint64_t next_table(const ref_ept_cpu *c, uint64_t e) { return e & bits((int)c->maxphyaddr - 1, 12); }

/* 29.3.2: an entry is present if any of bits 2:0 is 1, or bit 10 with MBEC. */
static bool present(const ref_ept_cpu *c, uint64_t e)
{
	if (e & (BIT_R | BIT_W | BIT_X))
		return true;
	if (c->mbec && has(e, BIT_XU))
		return true;
	return false;
}

/* 29.3.2: which entries map a page. */
static bool is_leaf(const ref_ept_cpu *c, uint64_t e, unsigned level)
{
	if (level == 1)
		return true;                          /* PTE */
	if (level == 2)
		return has(e, BIT_PS);                /* PDE with bit 7: 2 MByte */
	if (level == 3)
		return has(e, BIT_PS) && c->gbpages;  /* PDPTE with bit 7: 1 GByte (when supported) */
	return false;                                 /* PML4E / PML5E never */
}

bool ref_ept_entry_reserved(const ref_ept_cpu *c, uint64_t e, unsigned level)
{
	unsigned M = c->maxphyaddr;
	if (e & bits(51, (int)M))
		return true;                                  /* 29.3.3.1: bits 51:M everywhere */
	if (level >= 4 && (e & bits(7, 3)))
		return true;                                  /* PML5E, PML4E: bits 7:3 */
	if (level == 3 && has(e, BIT_PS) && !c->gbpages)
		return true;                                  /* PDPTE bit 7 without 1-GByte pages */
	if (level == 3 && has(e, BIT_PS) && (e & bits(29, 12)))
		return true;                                  /* 1-GByte page: bits 29:12 */
	if (level == 2 && has(e, BIT_PS) && (e & bits(20, 12)))
		return true;                                  /* 2-MByte page: bits 20:12 */
	if ((level == 2 || level == 3) && !has(e, BIT_PS) && (e & bits(6, 3)))
		return true;                                  /* PDPTE/PDE referencing a table: bits 6:3 */
	if (is_leaf(c, e, level)) {
		unsigned mt = (unsigned)((e >> 3) & 7);
		if (mt == 2 || mt == 3 || mt == 7)
			return true;                          /* 29.3.3.1: leaf memory types 2, 3, 7 are reserved */
	}
	return false;
}

/* 29.3.3.1: the permission combinations that are misconfigurations. */
static bool bad_rwx(const ref_ept_cpu *c, uint64_t e)
{
	if (!has(e, BIT_R) && has(e, BIT_W))
		return true;                                  /* write without read */
	if (!c->exec_only && !has(e, BIT_R) && has(e, BIT_X))
		return true;                                  /* execute-only, not supported */
	if (!c->exec_only && c->mbec && !has(e, BIT_R) && has(e, BIT_XU))
		return true;                                  /* user-execute-only, not supported */
	return false;
}

/* 29.3.3.2 with 29.3.5: guest paging-structure accesses are writes when EPT A/D is on. */
static bool is_write(const ref_ept_cpu *c, const ref_ept_access *a)
{
	if (a->kind == REF_EPT_WRITE || a->kind == REF_EPT_GUEST_AD)
		return true;
	if (a->kind == REF_EPT_GUEST_PS && ad_enabled(c))
		return true;
	return false;
}

/* 29.3.3.2: is the access allowed by the ANDed rights? */
static bool allowed(const ref_ept_cpu *c, const ref_ept_access *a, const ref_ept_result *o)
{
	switch (a->kind) {
	case REF_EPT_READ:
		return o->readable;
	case REF_EPT_WRITE:
	case REF_EPT_GUEST_AD:
		return o->writable;
	case REF_EPT_GUEST_PS:
		return ad_enabled(c) ? o->writable : o->readable;
	case REF_EPT_FETCH:
		if (c->mbec && a->guest_user)
			return o->user_executable;            /* MBEC: user-mode linear address needs bit 10 */
		return o->executable;                         /* otherwise bit 2 */
	}
	return false;
}

/* 28.2.1, Table 28-7: the exit qualification of an EPT violation. */
static uint64_t qualification(const ref_ept_cpu *c, const ref_ept_access *a, const ref_ept_result *o)
{
	uint64_t q = 0;
	if (a->kind == REF_EPT_READ || a->kind == REF_EPT_GUEST_PS)
		q |= Q_READ;                                  /* bit 0: data read (guest PS accesses are reads) */
	if (is_write(c, a))
		q |= Q_WRITE;                                 /* bit 1: data write (under EPT A/D also a guest PS access) */
	if (a->kind == REF_EPT_FETCH)
		q |= Q_FETCH;                                 /* bit 2: instruction fetch */
	if (o->readable)
		q |= Q_READABLE;                              /* bit 3: AND of bit 0 */
	if (o->writable)
		q |= Q_WRITABLE;                              /* bit 4: AND of bit 1 */
	if (o->executable)
		q |= Q_EXEC;                                  /* bit 5: AND of bit 2 */
	if (c->mbec && o->user_executable)
		q |= Q_UEXEC;                                 /* bit 6: AND of bit 10 with MBEC (else undefined: 0) */
	if (a->has_linear)
		q |= Q_GLA_VALID;                             /* bit 7: guest-linear address valid */
	bool final = a->kind == REF_EPT_READ || a->kind == REF_EPT_WRITE || a->kind == REF_EPT_FETCH;
	if (a->has_linear && final)
		q |= Q_GLA_FINAL;                             /* bit 8: the translation of the linear address */
	if (c->advanced_info && a->has_linear && final) {
		if (a->guest_user)
			q |= Q_USER;                          /* bit 9: user-mode linear address */
		if (a->guest_rw)
			q |= Q_RW;                            /* bit 10: read/write linear address */
		if (a->guest_nx)
			q |= Q_NX;                            /* bit 11: execute-disable linear address */
	}
	return q;
}

static void violation(const ref_ept_cpu *c, const ref_ept_access *a, ref_ept_result *o)
{
	o->status = REF_EPT_VIOLATION;
	o->qual = qualification(c, a, o);
	o->linear = a->has_linear ? a->linear : 0;
}

void ref_ept_walk(const ref_ept_cpu *c, const ref_ept_mem *mem, uint64_t gpa,
		  const ref_ept_access *a, bool set_ad, ref_ept_result *o)
{
	memset(o, 0, sizeof(*o));
	o->gpa = gpa;
	unsigned levels = walk_levels(c);
	if (levels != 4 && levels != 5) {
		o->status = REF_EPT_INVAL;                    /* 26.2.1.1: any other page-walk length fails VM entry: no walk */
		return;
	}
	if (gpa & bits(63, levels == 5 ? 57 : 48)) {
		o->status = REF_EPT_INVAL;                    /* 29.3.2: 4 levels translate 47:0, 5 levels 56:0 */
		return;
	}
	o->readable = o->writable = o->executable = o->user_executable = true;
	uint64_t table = next_table(c, c->eptp);              /* 29.3.2: EPTP bits M-1:12 locate the top table */
	uint64_t where[5];
	unsigned n = 0;
	unsigned level = levels;
	uint64_t e = 0;
	for (;;) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t ea = table + ((gpa >> shift) & 511) * 8; /* 29.3.2: 9 bits of the GPA per level */
		if (!mem->read(mem->ctx, ea, &e)) {
			o->status = REF_EPT_BAD_HPA;
			o->hpa = ea;
			o->level = level;
			return;
		}
		where[n++] = ea;
		o->entry = e;
		o->level = level;
		o->readable = o->readable && has(e, BIT_R);
		o->writable = o->writable && has(e, BIT_W);
		o->executable = o->executable && has(e, BIT_X);
		o->user_executable = o->user_executable && has(e, BIT_XU);
		if (!present(c, e)) {
			violation(c, a, o);                   /* 29.3.3.2: a not-present entry */
			return;
		}
		if (bad_rwx(c, e) || ref_ept_entry_reserved(c, e, level)) {
			o->status = REF_EPT_MISCONFIG;        /* 29.3.3.1 */
			return;
		}
		if (is_leaf(c, e, level))
			break;
		table = next_table(c, e);
		level--;
	}
	/* 29.3.3.2: rights are checked once the walk reached the page. */
	if (!allowed(c, a, o)) {
		violation(c, a, o);
		return;
	}
	uint64_t size = 1ull << (12 + 9 * (level - 1));
	o->status = REF_EPT_OK;
	o->page_size = size;
	o->hpa = (e & bits((int)c->maxphyaddr - 1, 12 + 9 * ((int)level - 1))) | (gpa & (size - 1));
	o->memtype = (unsigned)((e >> 3) & 7);                /* leaf bits 5:3 */
	o->ipat = has(e, 1ull << 6);                          /* leaf bit 6 */
	if (!set_ad || !ad_enabled(c))
		return;
	/* 29.3.5: accessed in every entry used; dirty in the leaf for a write.
	 * (libvmem's documented choice: only when the translation completes.) */
	for (unsigned i = 0; i < n; i++) {
		uint64_t old = 0, v;
		if (!mem->read(mem->ctx, where[i], &old))
			continue;
		v = old | BIT_A;
		if (i == n - 1 && is_write(c, a))
			v |= BIT_D;
		if (v != old && !mem->write(mem->ctx, where[i], v))
			v = old;                              /* memory refused the write: the flag stays clear */
		if (v != old)
			o->ad_written = true;
		if (i == n - 1)
			o->entry = v;
	}
}
