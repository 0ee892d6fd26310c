/* shadow_run: one sequence through the shadow engine (host walk over the shadow tables + fault handler) and through ref_walk + host map. */
#include "shadow_run.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/gmem.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>
#include "ref/ref_walk.h"

enum out_kind { O_DONE, O_PF, O_GP, O_MMIO, O_HOST, O_BADTAB, O_FAIL };
static const char *const out_name[] = { "done", "#PF", "#GP", "mmio", "host-fault", "bad-table", "fail" };

struct outcome {
	enum out_kind k;
	uint32_t ec;
	uint64_t addr; /* DONE: hpa; MMIO/HOST: gpa; BADTAB: entry gpa */
};

struct run {
	const seq *s;
	const shadow_run_cfg *cfg;
	uint8_t *eng[SEQ_SLOTS], *ref[SEQ_SLOTS];
	vmem_gmem *gm;
	vmem_shadow *sh;
	ref_cpu cpu;
	char *why;
	size_t why_len;
	shadow_run_stats *st;
};

static bool failf(struct run *r, const char *fmt, ...)
{
	if (r->why && r->why_len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->why, r->why_len, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* ---- the reference: guest walk by ref_walk, then the host map ---- */

static uint8_t *ref_ptr(struct run *r, uint64_t gpa, unsigned size)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		if (gpa - seq_slots[i].gpa < seq_slots[i].size && gpa + size - seq_slots[i].gpa <= seq_slots[i].size)
			return r->ref[i] + (gpa - seq_slots[i].gpa);
	return NULL;
}

static bool rm_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	uint8_t *p = ref_ptr(ctx, gpa, size);
	if (!p)
		return false;
	*val = 0;
	memcpy(val, p, size);
	return true;
}

static bool rm_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	struct run *r = ctx;
	uint8_t *p = ref_ptr(r, gpa, size);
	/* The walker's A/D writes: a read-only slot takes none (as libvmem's gmem). */
	for (unsigned i = 0; p && i < SEQ_SLOTS; i++)
		if (gpa - seq_slots[i].gpa < seq_slots[i].size && (seq_slots[i].flags & VMEM_SLOT_READONLY))
			return false;
	if (!p)
		return false;
	memcpy(p, &val, size);
	return true;
}

static int slot_of(uint64_t gpa)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		if (gpa - seq_slots[i].gpa < seq_slots[i].size)
			return (int)i;
	return -1;
}

static struct outcome ref_side_access(struct run *r, const seq_op *op)
{
	ref_mem m = { rm_read, rm_write, r };
	ref_access a = { .la = op->addr, .write = op->acc & VMEM_ACC_WRITE, .fetch = op->acc & VMEM_ACC_FETCH,
			 .cpl3 = op->acc & VMEM_ACC_USER, .implicit = op->acc & VMEM_ACC_IMPLICIT,
			 .ac = op->acc & VMEM_ACC_AC };
	ref_result rr;
	ref_walk(&r->cpu, &m, &a, true, &rr);
	struct outcome o = { O_FAIL, 0, 0 };
	switch (rr.status) {
	case REF_PF:
		o.k = O_PF;
		o.ec = rr.error_code;
		return o;
	case REF_GP:
		o.k = O_GP;
		return o;
	case REF_BAD_GPA:
		o.k = O_BADTAB;
		o.addr = rr.gpa;
		return o;
	case REF_OK:
		break;
	default:
		return o;
	}
	int si = slot_of(rr.gpa);
	o.addr = rr.gpa;
	if (si < 0) {
		o.k = O_MMIO;
		return o;
	}
	if ((a.write && (seq_slots[si].flags & VMEM_SLOT_READONLY)) ||
	    (a.fetch && (seq_slots[si].flags & VMEM_SLOT_NOEXEC))) {
		o.k = O_HOST;
		return o;
	}
	o.k = O_DONE;
	o.addr = (uint64_t)(uintptr_t)(r->eng[si] + (rr.gpa - seq_slots[si].gpa)); /* the host frame the VMM gave */
	if (a.write)
		memcpy(ref_ptr(r, rr.gpa & ~7ull, 8), &op->val, 8);
	return o;
}

static void ref_set_cpu(struct run *r, const vmem_regs *g)
{
	uint64_t pd[4];
	memcpy(pd, r->cpu.pdpte, sizeof(pd));
	memset(&r->cpu, 0, sizeof(r->cpu));
	r->cpu.cr0 = g->cr0;
	r->cpu.cr3 = g->cr3;
	r->cpu.cr4 = g->cr4;
	r->cpu.efer = g->efer;
	r->cpu.pkru = g->pkru;
	r->cpu.maxphyaddr = g->maxphyaddr;
	r->cpu.gbpages = g->gbpages;
	memcpy(r->cpu.pdpte, pd, sizeof(pd));
}

/* SDM 4.4.1: MOV CR3 loads the PDPTEs (an op that changes CR3 or nothing is
 * one); MOV CR0/CR4 only on entering PAE paging or changing CR0.CD/NW/PG or
 * CR4.PAE/PGE/PSE/SMEP. */
static bool ref_loads_pdptes(const ref_cpu *o, const vmem_regs *g)
{
	bool pae = (o->cr0 & VMEM_CR0_PG) && (o->cr4 & VMEM_CR4_PAE) && !(o->efer & VMEM_EFER_LMA);
	bool same = o->cr0 == g->cr0 && o->cr4 == g->cr4 && o->efer == g->efer;
	uint64_t c0 = (o->cr0 ^ g->cr0) & (VMEM_CR0_PG | 1ull << 29 | 1ull << 30);
	uint64_t c4 = (o->cr4 ^ g->cr4) & (VMEM_CR4_PAE | VMEM_CR4_PGE | VMEM_CR4_PSE | VMEM_CR4_SMEP);
	return !pae || o->cr3 != g->cr3 || same || c0 || c4;
}

/* MOV to CR*: true if it succeeds (a PAE PDPTE load can #GP). */
static bool ref_set_regs(struct run *r, const vmem_regs *g)
{
	ref_cpu old = r->cpu;
	ref_set_cpu(r, g);
	if (vmem_regs_mode(g) == VMEM_MODE_PAE && ref_loads_pdptes(&old, g)) {
		ref_mem m = { rm_read, rm_write, r };
		if (ref_pae_load_pdptes(&r->cpu, &m, r->cpu.pdpte) != REF_OK) {
			r->cpu = old;
			return false;
		}
	}
	return true;
}

/* ---- the engine: the processor on the shadow tables, the VMM on faults ---- */

static int add_table(void *arg, void *page, uint64_t phys)
{
	return vmem_gmem_add_ram(arg, phys, 4096, page, 0) ? 1 : 0;
}

/* The processor's walk of the shadow tables (host-physical memory = the table pages). */
static bool host_walk(struct run *r, uint64_t la, unsigned acc, vmem_walk_result *w)
{
	vmem_regs hr;
	vmem_shadow_host_regs(r->sh, &hr);
	vmem_gmem *host;
	vmem_mmu *mmu;
	if (vmem_gmem_new(NULL, &host))
		return failf(r, "host gmem");
	if (vmem_shadow_foreach_table(r->sh, add_table, host) || vmem_mmu_new(NULL, &hr, &mmu)) {
		vmem_gmem_free(host);
		return failf(r, "host tables");
	}
	vmem_err e = vmem_walk(mmu, host, la, acc, 0, w);
	vmem_mmu_free(mmu);
	vmem_gmem_free(host);
	return e ? failf(r, "host walk error %d", e) : true;
}

static bool eng_owns(struct run *r, uint64_t hpa, unsigned len, unsigned *slot)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		uint64_t b = (uint64_t)(uintptr_t)r->eng[i];
		if (hpa - b < seq_slots[i].size && hpa + len - b <= seq_slots[i].size) {
			*slot = i;
			return true;
		}
	}
	return false;
}

static bool retry_nomem(struct run *r, vmem_err e)
{
	if (e != VMEM_E_NOMEM || !r->cfg->fail_off)
		return false;
	r->st->nomem++;
	char why[256];
	if (vmem_shadow_audit(r->sh, why, sizeof(why)))
		return failf(r, "audit after NOMEM: %s", why);
	r->cfg->fail_off(r->cfg->ctx);
	return true;
}

static bool eng_access(struct run *r, const seq_op *op, struct outcome *o)
{
	bool write = op->acc & VMEM_ACC_WRITE;
	o->k = O_FAIL;
	for (int tries = 0; tries < 8; tries++) {
		vmem_walk_result w;
		if (!host_walk(r, op->addr, op->acc, &w))
			return false;
		if (w.status == VMEM_WALK_OK) {
			unsigned si;
			if (!eng_owns(r, w.gpa & ~7ull, 8, &si))
				return failf(r, "shadow maps la %#" PRIx64 " to %#" PRIx64 ", outside guest RAM",
					     op->addr, w.gpa);
			if (write)
				memcpy((void *)(uintptr_t)(w.gpa & ~7ull), &op->val, 8); /* the CPU's store */
			o->k = O_DONE;
			o->addr = w.gpa;
			r->st->accesses++;
			return true;
		}
		if (w.status == VMEM_WALK_GP) {
			o->k = O_GP;
			return true;
		}
		if (w.status != VMEM_WALK_PF)
			return failf(r, "host walk status %u (a shadow entry points outside the tables)", w.status);
		vmem_shadow_fault_result fr;
		vmem_err e = vmem_shadow_fault(r->sh, op->addr, op->acc, &fr);
		if (e) {
			if (retry_nomem(r, e))
				continue;
			return failf(r, "vmem_shadow_fault: %d", e);
		}
		o->addr = fr.gpa;
		switch (fr.outcome) {
		case VMEM_SHADOW_FIXED:
			r->st->fixed++;
			continue;
		case VMEM_SHADOW_INJECT_PF:
			r->st->inject_pf++;
			if (fr.cr2 != op->addr)
				return failf(r, "CR2 %#" PRIx64 " for la %#" PRIx64, fr.cr2, op->addr);
			o->k = O_PF;
			o->ec = fr.error_code;
			return true;
		case VMEM_SHADOW_INJECT_GP:
			o->k = O_GP;
			return true;
		case VMEM_SHADOW_HOST_FAULT:
			r->st->host_faults++;
			o->k = O_HOST;
			return true;
		case VMEM_SHADOW_BAD_TABLE:
			o->k = O_BADTAB;
			return true;
		case VMEM_SHADOW_EMULATE:
			r->st->emulated++;
			if (fr.reason == VMEM_SHADOW_EMU_MMIO) {
				o->k = O_MMIO;
				return true;
			}
			if (!write || (fr.reason != VMEM_SHADOW_EMU_PT_WRITE && fr.reason != VMEM_SHADOW_EMU_WP0))
				return failf(r, "EMULATE reason %u for acc %#x", fr.reason, op->acc);
			e = vmem_shadow_emulate_write(r->sh, fr.gpa & ~7ull, &op->val, 8);
			if (e)
				return failf(r, "emulate_write %d", e);
			int si = slot_of(fr.gpa);
			if (si < 0)
				return failf(r, "EMULATE write outside RAM");
			o->k = O_DONE;
			o->addr = (uint64_t)(uintptr_t)(r->eng[si] + (fr.gpa - seq_slots[si].gpa));
			return true;
		default:
			return failf(r, "outcome %u", fr.outcome);
		}
	}
	return failf(r, "no progress: the fault handler keeps answering FIXED");
}

static bool same_memory(struct run *r)
{
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		if (memcmp(r->eng[i], r->ref[i], seq_slots[i].size) == 0)
			continue;
		for (uint64_t b = 0; b < seq_slots[i].size; b += 8) {
			uint64_t x, y;
			memcpy(&x, r->eng[i] + b, 8);
			memcpy(&y, r->ref[i] + b, 8);
			if (x != y)
				return failf(r, "guest memory differs at gpa %#" PRIx64 ": shadow side %#" PRIx64
					     ", reference %#" PRIx64, seq_slots[i].gpa + b, x, y);
		}
	}
	return true;
}

static bool run_op(struct run *r, unsigned i)
{
	const seq_op *op = &r->s->ops[i];
	vmem_err e;
	switch (op->kind) {
	case SEQ_ACCESS: {
		struct outcome oe = { 0 }, orf; /* every field read below is set on every path; zeroed for the compiler */
		if (!eng_access(r, op, &oe))
			return false;
		orf = ref_side_access(r, op);
		if (oe.k != orf.k || (oe.k == O_PF && oe.ec != orf.ec) ||
		    ((oe.k == O_DONE || oe.k == O_MMIO || oe.k == O_HOST || oe.k == O_BADTAB) && oe.addr != orf.addr))
			return failf(r, "shadow: %s ec=%#x addr=%#" PRIx64 "; reference: %s ec=%#x addr=%#" PRIx64,
				     out_name[oe.k], oe.ec, oe.addr, out_name[orf.k], orf.ec, orf.addr);
		return true;
	}
	case SEQ_PT_WRITE: {
		for (;;) {
			e = vmem_shadow_emulate_write(r->sh, op->addr, &op->val, op->size);
			if (!e || !retry_nomem(r, e))
				break;
		}
		if (e)
			return failf(r, "emulate_write: %d", e);
		uint8_t *p = ref_ptr(r, op->addr, op->size);
		if (!p)
			return failf(r, "pt-write outside RAM");
		memcpy(p, &op->val, op->size);
		return true;
	}
	case SEQ_SET_REGS: {
		for (;;) {
			e = vmem_shadow_set_regs(r->sh, &op->regs);
			if (!e || !retry_nomem(r, e))
				break;
		}
		bool ok = ref_set_regs(r, &op->regs);
		if (ok != (e == VMEM_OK))
			return failf(r, "set_regs: shadow %d, reference %s", e, ok ? "ok" : "#GP");
		return true;
	}
	case SEQ_INVLPG:
		vmem_shadow_invlpg(r->sh, op->addr);
		return true;
	default:
		vmem_shadow_set_pkru(r->sh, (uint32_t)op->val);
		r->cpu.pkru = (uint32_t)op->val;
		return true;
	}
}

bool shadow_run(const seq *s, const shadow_run_cfg *cfg, char *why, size_t why_len, shadow_run_stats *st)
{
	shadow_run_stats dummy;
	struct run r = { .s = s, .cfg = cfg, .why = why, .why_len = why_len, .st = st ? st : &dummy };
	memset(r.st, 0, sizeof(*r.st));
	bool ok = false;
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		r.eng[i] = aligned_alloc(4096, seq_slots[i].size);
		r.ref[i] = malloc(seq_slots[i].size);
		if (!r.eng[i] || !r.ref[i])
			goto out;
		memcpy(r.eng[i], s->image[i], seq_slots[i].size);
		memcpy(r.ref[i], s->image[i], seq_slots[i].size);
	}
	if (vmem_gmem_new(NULL, &r.gm))
		goto out;
	for (unsigned i = 0; i < SEQ_SLOTS; i++)
		if (vmem_gmem_add_ram(r.gm, seq_slots[i].gpa, seq_slots[i].size, r.eng[i], seq_slots[i].flags))
			goto out;
	vmem_shadow_config sc = { .alloc = cfg->alloc, .gmem = r.gm, .host_levels = s->host_levels,
				  .max_pages = cfg->max_pages, .max_roots = cfg->max_roots };
	if (vmem_shadow_new(&sc, &r.sh)) {
		failf(&r, "vmem_shadow_new");
		goto out;
	}
	if (vmem_shadow_set_regs(r.sh, &s->regs0) || !ref_set_regs(&r, &s->regs0)) {
		failf(&r, "initial registers refused");
		goto out;
	}
	for (unsigned i = 0; i < s->nops; i++) {
		if (cfg->before_op)
			cfg->before_op(cfg->ctx, i);
		bool good = run_op(&r, i);
		if (cfg->fail_off)
			cfg->fail_off(cfg->ctx);
		char aw[256] = "";
		if (good && cfg->audit_each && vmem_shadow_audit(r.sh, aw, sizeof(aw)))
			good = failf(&r, "audit: %s", aw);
		if (good)
			good = same_memory(&r);
		if (!good) {
			char d[160], msg[512];
			seq_describe(&s->ops[i], d, sizeof(d));
			snprintf(msg, sizeof(msg), "op %u (%s, mode %s): %s", i, d,
				 vmem_mode_name(vmem_regs_mode(vmem_shadow_regs(r.sh))), why ? why : "");
			if (why)
				snprintf(why, why_len, "%s", msg);
			goto out;
		}
	}
	ok = true;
out:
	vmem_shadow_free(r.sh);
	vmem_gmem_free(r.gm);
	for (unsigned i = 0; i < SEQ_SLOTS; i++) {
		free(r.eng[i]);
		free(r.ref[i]);
	}
	return ok;
}
