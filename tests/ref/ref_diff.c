/* ref_diff: run one access through libvmem's vmem_walk and through ref_walk on identical memory, and compare. */
#include "ref_diff.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

#define PAGE 4096u

bool diff_env_init(diff_env *env)
{
	memset(env, 0, sizeof(*env));
	env->lib_mem = aligned_alloc(PAGE, (size_t)DIFF_MAX_PAGES * PAGE);
	env->ref_mem = aligned_alloc(PAGE, (size_t)DIFF_MAX_PAGES * PAGE);
	if (!env->lib_mem || !env->ref_mem) {
		diff_env_fini(env);
		return false;
	}
	diff_env_reset(env);
	return true;
}

static void drop_gmem(diff_env *env)
{
	vmem_gmem_free(env->gm);
	env->gm = NULL;
}

void diff_env_fini(diff_env *env)
{
	drop_gmem(env);
	free(env->lib_mem);
	free(env->ref_mem);
	env->lib_mem = env->ref_mem = NULL;
}

void diff_env_reset(diff_env *env)
{
	memset(env->lib_mem, 0, (size_t)DIFF_MAX_PAGES * PAGE);
	memset(env->ref_mem, 0, (size_t)DIFF_MAX_PAGES * PAGE);
	env->npages = 0;
	drop_gmem(env);
}

static int page_index(const diff_env *env, uint64_t gpa)
{
	for (unsigned i = 0; i < env->npages; i++)
		if (env->gpa[i] == (gpa & ~(uint64_t)(PAGE - 1)))
			return (int)i;
	return -1;
}

int diff_env_add_page(diff_env *env, uint64_t gpa)
{
	if (env->npages >= DIFF_MAX_PAGES || (gpa & (PAGE - 1)) || page_index(env, gpa) >= 0)
		return -1;
	env->gpa[env->npages] = gpa;
	drop_gmem(env);
	return (int)env->npages++;
}

uint8_t *diff_env_ptr(diff_env *env, uint64_t gpa)
{
	int i = page_index(env, gpa);
	return i < 0 ? NULL : env->ref_mem + (size_t)i * PAGE + (gpa & (PAGE - 1));
}

static void put_le(uint8_t *p, unsigned size, uint64_t v)
{
	for (unsigned b = 0; b < size; b++)
		p[b] = (uint8_t)(v >> (8 * b));
}

static uint64_t get_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	for (unsigned b = 0; b < size; b++)
		v |= (uint64_t)p[b] << (8 * b);
	return v;
}

bool diff_env_store(diff_env *env, uint64_t gpa, unsigned size, uint64_t val)
{
	int i = page_index(env, gpa);
	if (i < 0 || (gpa & (size - 1)))
		return false;
	size_t off = (size_t)i * PAGE + (gpa & (PAGE - 1));
	put_le(env->ref_mem + off, size, val);
	put_le(env->lib_mem + off, size, val);
	return true;
}

/* The reference's view of memory: the ref copy, zero or nothing elsewhere. */
static bool ref_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	diff_env *env = ctx;
	int i = page_index(env, gpa);
	if (i < 0) {
		*val = 0;
		return env->miss_zero;
	}
	*val = get_le(env->ref_mem + (size_t)i * PAGE + (gpa & (PAGE - 1)), size);
	return true;
}

static bool ref_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	diff_env *env = ctx;
	int i = page_index(env, gpa);
	if (i < 0)
		return false;
	put_le(env->ref_mem + (size_t)i * PAGE + (gpa & (PAGE - 1)), size, val);
	return true;
}

/* A growing text buffer for failure reports. */
struct sbuf {
	char *p;
	size_t len, used;
};

static void say(struct sbuf *s, const char *fmt, ...)
{
	if (!s->p || s->used + 1 >= s->len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s->p + s->used, s->len - s->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->used = s->used + (size_t)n < s->len ? s->used + (size_t)n : s->len - 1;
}

static const char *const status_names[] = { "ok", "page_fault", "gp", "bad_gpa", "inval" };

static void describe_case(struct sbuf *s, const diff_env *env, const ref_cpu *c,
			  const ref_access *a, unsigned flags)
{
	say(s, "  regs: cr0=%#" PRIx64 " cr3=%#" PRIx64 " cr4=%#" PRIx64 " efer=%#" PRIx64
	    " pkru=%#x maxphyaddr=%u gbpages=%d\n", c->cr0, c->cr3, c->cr4, c->efer,
	    c->pkru, c->maxphyaddr, c->gbpages);
	if ((c->cr0 & REF_CR0_PG) && (c->cr4 & REF_CR4_PAE) && !(c->efer & REF_EFER_LMA))
		say(s, "  pdptes: %#" PRIx64 " %#" PRIx64 " %#" PRIx64 " %#" PRIx64 "\n",
		    c->pdpte[0], c->pdpte[1], c->pdpte[2], c->pdpte[3]);
	say(s, "  access: la=%#" PRIx64 " %s cpl=%d implicit=%d ac=%d%s%s%s%s%s miss=%s%s\n", a->la,
	    a->fetch ? "fetch" : a->write ? "write" : "read", a->cpl3 ? 3 : 0, a->implicit,
	    a->ac, (flags & DIFF_NO_AD) ? " NO_AD" : "", (flags & DIFF_BATCH) ? " BATCH" : "",
	    (flags & DIFF_NO_TRACE) ? " NO_TRACE" : "", (flags & DIFF_LOAD_PDPTES) ? " LOAD_PDPTES" : "",
	    (flags & DIFF_SET_REGS) ? " SET_REGS" : "", env->miss_zero ? "zero" : "error",
	    env->coalesce ? " one-slot-per-run" : " one-slot-per-page");
	for (unsigned p = 0; p < env->npages; p++)
		say(s, "  page %#" PRIx64 "\n", env->gpa[p]);
}

static void describe_ref(struct sbuf *s, const ref_result *r)
{
	say(s, "  ref: %s gpa=%#" PRIx64 " size=%#" PRIx64 " ec=%#x level=%u entry=%#" PRIx64
	    " perms=%#x\n", status_names[r->status], r->gpa, r->page_size, r->error_code,
	    r->level, r->entry, r->perms);
	for (unsigned i = 0; i < r->n; i++)
		say(s, "    L%u entry @%#" PRIx64 " = %#" PRIx64 "\n", r->trace[i].level,
		    r->trace[i].gpa, r->trace[i].value);
}

static void describe_lib(struct sbuf *s, vmem_err err, const vmem_walk_result *l)
{
	if (err) {
		say(s, "  lib: error %d (%s)\n", err, vmem_strerror(err));
		return;
	}
	say(s, "  lib: %s gpa=%#" PRIx64 " size=%#" PRIx64 " ec=%#x level=%u entry=%#" PRIx64
	    " perms=%#x\n", l->status < 4 ? status_names[l->status] : "?", l->gpa, l->page_size,
	    l->error_code, l->level, l->entry, l->perms);
}

static unsigned access_flags(const ref_access *a)
{
	return (a->write ? VMEM_ACC_WRITE : 0) | (a->fetch ? VMEM_ACC_FETCH : 0) |
	       (a->cpl3 ? VMEM_ACC_USER : 0) | (a->implicit ? VMEM_ACC_IMPLICIT : 0) |
	       (a->ac ? VMEM_ACC_AC : 0);
}

/* True when the walk read one entry twice (recursive tables). */
static bool recursive(const ref_result *r)
{
	for (unsigned i = 0; i < r->n; i++)
		for (unsigned j = i + 1; j < r->n; j++)
			if (r->trace[j].gpa == r->trace[i].gpa)
				return true;
	return false;
}

#define MISMATCH(...) do { bad++; say(s, "  mismatch: " __VA_ARGS__); } while (0)

/* Every byte of both memory copies, whatever the outcome (a refused request changes nothing). */
static unsigned compare_memory(struct sbuf *s, const diff_env *env)
{
	unsigned bad = 0;
	for (unsigned p = 0; p < env->npages; p++) {
		const uint8_t *lp = env->lib_mem + (size_t)p * PAGE, *rp = env->ref_mem + (size_t)p * PAGE;
		if (!memcmp(lp, rp, PAGE))
			continue;
		for (unsigned off = 0; off < PAGE; off += 4)
			if (memcmp(lp + off, rp + off, 4))
				MISMATCH("memory after @%#" PRIx64 ": lib %#" PRIx64 " ref %#" PRIx64 "\n",
					 env->gpa[p] + off, get_le(lp + off, 4), get_le(rp + off, 4));
	}
	return bad;
}

/* Compare; each mismatch is described in s. Returns the number of mismatches. */
static unsigned compare(struct sbuf *s, const diff_env *env, unsigned flags, vmem_err err,
			const vmem_walk_result *l, const vmem_walk_trace *tr, const ref_result *r)
{
	unsigned bad = compare_memory(s, env);
	if (r->status == REF_INVAL) {
		if (err != VMEM_E_INVAL)
			MISMATCH("ref says invalid request, lib returned %d\n", err);
		return bad;
	}
	if (err != VMEM_OK) {
		MISMATCH("lib returned error %d\n", err);
		return bad;
	}
	if (l->status != (unsigned)r->status) {
		MISMATCH("status\n");
		return bad;
	}
	switch (r->status) {
	case REF_OK:
		if (l->gpa != r->gpa)
			MISMATCH("gpa\n");
		if (l->page_size != r->page_size)
			MISMATCH("page_size\n");
		if (l->level != r->level)
			MISMATCH("level\n");
		if (l->entry != r->entry)
			MISMATCH("entry\n");
		if (l->perms != r->perms)
			MISMATCH("perms\n");
		if (!(flags & DIFF_NO_AD) && !recursive(r) &&
		    !(l->info & VMEM_WINFO_AD_SET) != !r->ad_written)
			MISMATCH("info AD_SET %d, ref wrote A/D %d\n", !!(l->info & VMEM_WINFO_AD_SET),
				 r->ad_written);
		break;
	case REF_PF:
		if (l->error_code != r->error_code)
			MISMATCH("error_code\n");
		if (l->level != r->level)
			MISMATCH("level\n");
		if (l->entry != r->entry)
			MISMATCH("entry\n");
		if ((r->error_code & REF_PF_P) && !(r->error_code & REF_PF_RSVD) && l->perms != r->perms)
			MISMATCH("perms\n");
		break;
	case REF_BAD_GPA:
		if (l->gpa != r->gpa)
			MISMATCH("gpa (entry address)\n");
		break;
	default:
		break;
	}
	if (tr && !(flags & DIFF_NO_TRACE) && (r->status == REF_OK || r->status == REF_PF)) {
		if (tr->n != r->n) {
			MISMATCH("trace length lib %u ref %u\n", tr->n, r->n);
		} else {
			/* When the walk uses one entry twice (recursive tables), the library's A/D
			 * compare-and-swap fails against its own earlier update and the walk
			 * restarts, re-reading entries it has already flagged: compare values
			 * without A and D then. The header does not pin this case down. */
			uint64_t ignore = recursive(r) ? 0x60 : 0;
			for (unsigned i = 0; i < r->n; i++) {
				if (tr->e[i].gpa != r->trace[i].gpa || tr->e[i].level != r->trace[i].level ||
				    ((tr->e[i].value ^ r->trace[i].value) & ~ignore))
					MISMATCH("trace[%u]: lib L%u @%#" PRIx64 " = %#" PRIx64 "\n", i,
						 tr->e[i].level, tr->e[i].gpa, tr->e[i].value);
			}
		}
	}
	return bad;
}

#undef MISMATCH

bool diff_run(diff_env *env, const ref_cpu *cpu, const ref_access *acc, unsigned flags,
	      char *why, size_t why_len, ref_result *ref_out)
{
	struct sbuf s = { why, why_len, 0 };
	if (why && why_len)
		why[0] = 0;

	/* The library side: guest memory over the lib copy, an MMU from the registers. */
	vmem_gmem *gm = NULL;
	vmem_mmu *mmu = NULL;
	bool ok = false;
	vmem_regs regs;
	vmem_regs_init(&regs);
	regs.cr0 = cpu->cr0;
	regs.cr3 = cpu->cr3;
	regs.cr4 = cpu->cr4;
	regs.efer = cpu->efer;
	regs.pkru = cpu->pkru;
	regs.maxphyaddr = cpu->maxphyaddr;
	regs.gbpages = cpu->gbpages;

	if (!env->gm || env->gm_pages != env->npages || env->gm_miss_zero != env->miss_zero ||
	    env->gm_coalesce != env->coalesce) {
		drop_gmem(env);
		if (vmem_gmem_new(NULL, &gm)) {
			say(&s, "  setup: vmem_gmem_new failed\n");
			goto out;
		}
		vmem_gmem_set_miss(gm, env->miss_zero ? VMEM_GMEM_MISS_ZERO : VMEM_GMEM_MISS_ERROR);
		for (unsigned p = 0, run; p < env->npages; p += run) {
			run = 1;
			while (env->coalesce && p + run < env->npages &&
			       env->gpa[p + run] == env->gpa[p] + (uint64_t)run * PAGE)
				run++;
			vmem_err e = vmem_gmem_add_ram(gm, env->gpa[p], (uint64_t)run * PAGE,
						       env->lib_mem + (size_t)p * PAGE, 0);
			if (e) {
				say(&s, "  setup: vmem_gmem_add_ram(%#" PRIx64 ") = %d\n", env->gpa[p], e);
				vmem_gmem_free(gm);
				gm = NULL;
				goto out;
			}
		}
		env->gm = gm;
		env->gm_pages = env->npages;
		env->gm_miss_zero = env->miss_zero;
		env->gm_coalesce = env->coalesce;
	}
	gm = env->gm;
	vmem_err e;
	if (flags & DIFF_SET_REGS) {
		/* Start from a different mode (4-level, everything on), then switch. */
		vmem_regs prev;
		vmem_regs_init(&prev);
		prev.cr0 = 0x80010011ull;
		prev.cr4 = VMEM_CR4_PAE | VMEM_CR4_SMEP | VMEM_CR4_SMAP | VMEM_CR4_PKE | VMEM_CR4_PSE;
		prev.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
		prev.cr3 = 0x1000;
		prev.pkru = 0x55555554u;
		prev.maxphyaddr = 52 + 32 - cpu->maxphyaddr;
		prev.gbpages = !cpu->gbpages;
		e = vmem_mmu_new(NULL, &prev, &mmu);
		if (!e)
			e = vmem_mmu_set_regs(mmu, &regs);
	} else {
		e = vmem_mmu_new(NULL, &regs, &mmu);
	}
	if (e) {
		say(&s, "  setup: vmem_mmu_new/set_regs = %d (%s)\n", e, vmem_strerror(e));
		describe_case(&s, env, cpu, acc, flags);
		goto out;
	}
	ref_mem rm = { ref_read, ref_write, env };
	ref_cpu rcpu = *cpu;
	bool pae = vmem_regs_mode(&regs) == VMEM_MODE_PAE;
	if (pae && (flags & DIFF_LOAD_PDPTES)) {
		static const uint64_t sentinel[4] = { 0x1111000, 0x2222000, 0x3333000, 0x4444000 };
		uint64_t got[4];
		vmem_mmu_set_pdptes(mmu, sentinel);
		ref_status rs = ref_pae_load_pdptes(cpu, &rm, rcpu.pdpte);
		vmem_err le = vmem_mmu_load_pdptes(mmu, gm);
		vmem_err want = rs == REF_OK ? VMEM_OK : rs == REF_GP ? VMEM_E_INVAL : VMEM_E_RANGE;
		vmem_mmu_get_pdptes(mmu, got);
		bool same = le == want && !memcmp(got, rs == REF_OK ? rcpu.pdpte : sentinel, sizeof(got));
		if (!same) {
			say(&s, "DISAGREEMENT (PAE PDPTE load)\n");
			describe_case(&s, env, cpu, acc, flags);
			say(&s, "  ref: load %s; lib: %d, registers %#" PRIx64 " %#" PRIx64 " %#" PRIx64
			    " %#" PRIx64 "\n", rs == REF_OK ? "ok" : rs == REF_GP ? "#GP" : "unbacked", le,
			    got[0], got[1], got[2], got[3]);
			goto out;
		}
		if (rs != REF_OK) {
			if (ref_out) {
				memset(ref_out, 0, sizeof(*ref_out));
				ref_out->status = rs;
			}
			ok = true;       /* the MOV to CR3 faulted on both sides: no walk */
			goto out;
		}
	} else if (pae) {
		vmem_mmu_set_pdptes(mmu, cpu->pdpte);
	}

	vmem_walk_result lres;
	vmem_walk_trace ltr;
	memset(&lres, 0, sizeof(lres));
	memset(&ltr, 0, sizeof(ltr));
	unsigned wflags = (flags & DIFF_NO_AD) ? VMEM_WALK_NO_AD : 0;
	vmem_err lerr;
	bool lanes_agree = true;
	vmem_walk_result lb1, lb2; /* two lanes that differ, for the message */
	memset(&lb1, 0, sizeof(lb1));
	memset(&lb2, 0, sizeof(lb2));
	if (flags & DIFF_BATCH) {
		/* Three lanes of the one address: the first is compared with the
		 * reference; the others follow it in the same call (after its A/D
		 * writes, past the batch's cache of upper entries) and must give
		 * its answer, the leaf as read and VMEM_WINFO_AD_SET aside (the
		 * leaf may now show A and D, which they then need not write). */
		uint64_t las[3] = { acc->la, acc->la, acc->la };
		vmem_walk_result lb[3];
		memset(lb, 0, sizeof(lb));
		lerr = vmem_walk_batch(mmu, gm, las, 3, access_flags(acc), wflags, lb);
		lres = lb[0];
		lb[0].entry = lb[1].entry;
		lb[0].info &= (uint8_t)~VMEM_WINFO_AD_SET; /* the first walk wrote the flags */
		bool first_differs = memcmp(&lb[0], &lb[1], sizeof(lb[0])) != 0;
		lanes_agree = !first_differs && !memcmp(&lb[1], &lb[2], sizeof(lb[1]));
		lb1 = first_differs ? lb[0] : lb[1];
		lb2 = first_differs ? lb[1] : lb[2];
		flags |= DIFF_NO_TRACE;
	} else {
		lerr = vmem_walk_traced(mmu, gm, acc->la, access_flags(acc), wflags, &lres,
				       (flags & DIFF_NO_TRACE) ? NULL : &ltr);
	}

	ref_result rres;
	ref_walk(&rcpu, &rm, acc, !(flags & DIFF_NO_AD), &rres);
	if (ref_out)
		*ref_out = rres;

	struct sbuf detail = { NULL, 0, 0 };
	char tmp[4096];
	detail.p = tmp;
	detail.len = sizeof(tmp);
	tmp[0] = 0;
	if (!lanes_agree)
		say(&detail, "the batch's later lanes of the same address gave another answer: "
			     "gpa %#llx/%#llx size %#llx/%#llx entry %#llx/%#llx ec %#x/%#x status %u/%u "
			     "level %u/%u perms %#x/%#x info %#x/%#x\n",
		    (unsigned long long)lb1.gpa, (unsigned long long)lb2.gpa, (unsigned long long)lb1.page_size,
		    (unsigned long long)lb2.page_size, (unsigned long long)lb1.entry, (unsigned long long)lb2.entry,
		    lb1.error_code, lb2.error_code, lb1.status, lb2.status, lb1.level, lb2.level, lb1.perms, lb2.perms,
		    lb1.info, lb2.info);
	else if (compare(&detail, env, flags, lerr, &lres, &ltr, &rres) == 0) {
		ok = true;
		goto out;
	}
	say(&s, "DISAGREEMENT (%s)\n",
	    vmem_mode_name(vmem_regs_mode(&regs)));
	describe_case(&s, env, &rcpu, acc, flags);
	describe_ref(&s, &rres);
	describe_lib(&s, lerr, &lres);
	say(&s, "%s", tmp);
out:
	vmem_mmu_free(mmu);
	return ok;
}
