/* kvm_seq_shadow.c: runs a sequence through libvmem's shadow engine, each guest access performed on the shadow tables. */
#include "kvm_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>

/* Host-physical layout of the model: shadow table pages in an arena, the
 * guest's RAM buffers at fixed host-physical bases. */
#define ARENA_HPA   0x100000000ull
#define ARENA_PAGES 4096u
#define HARNESS_HPA 0x200000000ull
#define POOL_HPA    0x300000000ull
#define MAX_TRIES   16

typedef struct arena {
	unsigned char *base;
	unsigned *free_list, nfree;
	unsigned long live;
} arena;

static void *a_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void a_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

static void *a_page(void *ctx)
{
	arena *a = ctx;
	if (!a->nfree)
		return NULL;
	unsigned char *p = a->base + (size_t)a->free_list[--a->nfree] * 4096;
	memset(p, 0, 4096);
	a->live++;
	return p;
}

static void a_free_page(void *ctx, void *page)
{
	arena *a = ctx;
	a->free_list[a->nfree++] = (unsigned)(((unsigned char *)page - a->base) / 4096);
	a->live--;
}

static uint64_t a_phys(void *ctx, const void *page)
{
	arena *a = ctx;
	return ARENA_HPA + (uint64_t)((const unsigned char *)page - a->base);
}

typedef struct model {
	arena ar;
	vmem_allocator alloc;
	unsigned char *harness, *pool;
	vmem_gmem *guest, *host;
	vmem_shadow *sh;
	vmem_mmu *hmmu;
	ksq_shadow_stats *st;
} model;

static uint64_t host_phys(void *ctx, const void *hva)
{
	const model *m = ctx;
	const unsigned char *p = hva;
	if (p >= m->harness && p < m->harness + KSQ_HARNESS_SIZE)
		return HARNESS_HPA + (uint64_t)(p - m->harness);
	if (p >= m->pool && p < m->pool + KSQ_POOL_SIZE)
		return POOL_HPA + (uint64_t)(p - m->pool);
	return ~0ull;
}

static unsigned acc_flags(unsigned type)
{
	if (type == KSQ_WRITE64)
		return VMEM_ACC_WRITE;
	unsigned u = type >= KSQ_UREAD ? VMEM_ACC_USER : 0;
	unsigned t = type >= KSQ_UREAD ? type - (KSQ_UREAD - KSQ_READ) : type;
	return u | (t == KSQ_WRITE ? VMEM_ACC_WRITE : t == KSQ_FETCH ? VMEM_ACC_FETCH : 0);
}

static void err(ksq_out *o, const char *what, vmem_err e)
{
	o->kind = KSQ_OUT_ERR;
	snprintf(o->note, sizeof(o->note), "%s: %s", what, vmem_strerror(e));
}

/* One guest access as the processor performs it on the shadow: walk the
 * shadow tables; on a #PF, ask the engine. */
static void access(model *m, const ksq_op *op, ksq_out *o)
{
	unsigned acc = acc_flags(op->type);
	uint64_t la = op->a;
	for (unsigned tries = 0; tries < MAX_TRIES; tries++) {
		vmem_regs hr;
		vmem_shadow_host_regs(m->sh, &hr);
		vmem_err e = vmem_mmu_set_regs(m->hmmu, &hr);
		if (e)
			return err(o, "host registers", e);
		vmem_walk_result w;
		e = vmem_walk(m->hmmu, m->host, la, acc, 0, &w);
		if (e)
			return err(o, "walk of the shadow", e);
		if (w.status == VMEM_WALK_OK) {
			if (acc & VMEM_ACC_WRITE)
				e = vmem_gmem_write64(m->host, w.gpa, op->b);
			else
				e = vmem_gmem_read64(m->host, w.gpa, &o->value);
			if (e) {
				snprintf(o->note, sizeof(o->note), "shadow maps to host 0x%llx: %s",
					 (unsigned long long)w.gpa, vmem_strerror(e));
				o->kind = KSQ_OUT_ERR;
				return;
			}
			o->kind = KSQ_OUT_OK;
			if (acc & VMEM_ACC_FETCH) {
				if ((o->value & 0xff) != 0xf4) {
					o->kind = KSQ_OUT_ERR;
					snprintf(o->note, sizeof(o->note), "fetch lands on 0x%02x, not HLT",
						 (unsigned)(o->value & 0xff));
				}
				o->value = 0;
			}
			return;
		}
		if (w.status != VMEM_WALK_PF) {
			o->kind = KSQ_OUT_ERR;
			snprintf(o->note, sizeof(o->note), "walk of the shadow: status %u at 0x%llx",
				 w.status, (unsigned long long)w.gpa);
			return;
		}
		vmem_shadow_fault_result res;
		do
			e = vmem_shadow_fault(m->sh, la, acc, &res);
		while (e == VMEM_E_RETRY);
		(void)vmem_shadow_take_flush(m->sh);
		if (e)
			return err(o, "vmem_shadow_fault", e);
		m->st->faults++;
		switch (res.outcome) {
		case VMEM_SHADOW_FIXED:
			m->st->fixed++;
			continue;
		case VMEM_SHADOW_INJECT_PF:
			m->st->inject++;
			o->kind = KSQ_OUT_PF;
			o->vector = 14;
			o->ec = res.error_code;
			o->cr2 = res.cr2;
			return;
		case VMEM_SHADOW_INJECT_GP:
			m->st->other++;
			o->kind = KSQ_OUT_EXC;
			o->vector = 13;
			snprintf(o->note, sizeof(o->note), "engine: inject #GP");
			return;
		case VMEM_SHADOW_EMULATE:
			if ((acc & VMEM_ACC_WRITE) && (res.reason == VMEM_SHADOW_EMU_PT_WRITE ||
						      res.reason == VMEM_SHADOW_EMU_WP0)) {
				if (res.reason == VMEM_SHADOW_EMU_PT_WRITE)
					m->st->emulate_pt++;
				else
					m->st->emulate_wp0++;
				e = vmem_shadow_emulate_write(m->sh, res.gpa, &op->b, 8);
				(void)vmem_shadow_take_flush(m->sh);
				if (e)
					return err(o, "vmem_shadow_emulate_write", e);
				o->kind = KSQ_OUT_OK;
				return;
			}
			/* fall through */
		default:
			m->st->other++;
			o->kind = KSQ_OUT_ERR;
			snprintf(o->note, sizeof(o->note), "engine: outcome %u reason %u gpa 0x%llx",
				 res.outcome, res.reason, (unsigned long long)res.gpa);
			return;
		}
	}
	o->kind = KSQ_OUT_ERR;
	snprintf(o->note, sizeof(o->note), "still faulting after %u FIXED shadow faults", MAX_TRIES);
}

bool ksq_shadow_available(void)
{
	return true;
}

int ksq_shadow_run(const ksq_seq *q, const ksq_shadow_opts *opt, unsigned char *pool,
		   ksq_out *out, ksq_shadow_stats *st, char *why, size_t n)
{
	int rc = -1;
	model m;
	memset(&m, 0, sizeof(m));
	memset(st, 0, sizeof(*st));
	st->first_audit_op = -1;
	m.st = st;
	m.pool = pool;
	m.harness = aligned_alloc(4096, KSQ_HARNESS_SIZE);
	m.ar.base = aligned_alloc(4096, (size_t)ARENA_PAGES * 4096);
	m.ar.free_list = malloc(ARENA_PAGES * sizeof(unsigned));
	if (!m.harness || !m.ar.base || !m.ar.free_list) {
		snprintf(why, n, "out of memory");
		goto out;
	}
	memcpy(m.harness, q->harness, KSQ_HARNESS_SIZE);
	for (unsigned i = 0; i < ARENA_PAGES; i++)
		m.ar.free_list[i] = ARENA_PAGES - 1 - i;
	m.ar.nfree = ARENA_PAGES;
	m.alloc = (vmem_allocator){ .alloc = a_alloc, .free = a_free, .alloc_page = a_page,
				    .free_page = a_free_page, .ctx = &m.ar, .page_phys = a_phys };

	vmem_err e = vmem_gmem_new(NULL, &m.guest);
	if (!e) e = vmem_gmem_add_ram(m.guest, 0, KSQ_HARNESS_SIZE, m.harness, 0);
	if (!e) e = vmem_gmem_add_ram(m.guest, q->pool, KSQ_POOL_SIZE, pool, 0);
	if (!e) e = vmem_gmem_new(NULL, &m.host);
	if (!e) e = vmem_gmem_add_ram(m.host, ARENA_HPA, (uint64_t)ARENA_PAGES * 4096, m.ar.base, 0);
	if (!e) e = vmem_gmem_add_ram(m.host, HARNESS_HPA, KSQ_HARNESS_SIZE, m.harness, 0);
	if (!e) e = vmem_gmem_add_ram(m.host, POOL_HPA, KSQ_POOL_SIZE, pool, 0);
	if (e) {
		snprintf(why, n, "gmem setup: %s", vmem_strerror(e));
		goto out;
	}
	vmem_shadow_config cfg = {
		.alloc = &m.alloc, .gmem = m.guest, .host_phys = host_phys, .host_phys_ctx = &m,
		.host_levels = 4, .max_pages = opt->max_pages, .max_roots = opt->max_roots,
	};
	if ((e = vmem_shadow_new(&cfg, &m.sh)) != VMEM_OK) {
		snprintf(why, n, "vmem_shadow_new (pages %u, roots %u): %s", opt->max_pages,
			 opt->max_roots, vmem_strerror(e));
		goto out;
	}
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = q->cr0;
	r.cr3 = q->cr3;
	r.cr4 = q->cr4;
	r.efer = q->efer;
	r.maxphyaddr = KSQ_MAXPHYADDR;
	r.gbpages = false;
	if ((e = vmem_shadow_set_regs(m.sh, &r)) != VMEM_OK) {
		snprintf(why, n, "vmem_shadow_set_regs: %s", vmem_strerror(e));
		goto out;
	}
	vmem_regs hr;
	vmem_shadow_host_regs(m.sh, &hr);
	if ((e = vmem_mmu_new(NULL, &hr, &m.hmmu)) != VMEM_OK) {
		snprintf(why, n, "host mmu: %s", vmem_strerror(e));
		goto out;
	}

	for (unsigned i = 0; i < q->nops; i++) {
		const ksq_op *op = &q->op[i];
		ksq_out *o = &out[i];
		memset(o, 0, sizeof(*o));
		o->kind = KSQ_OUT_OK;
		if (op->type == KSQ_MOV_CR3) {
			r.cr3 = op->a;
			if ((e = vmem_shadow_set_regs(m.sh, &r)) != VMEM_OK)
				err(o, "vmem_shadow_set_regs", e);
		} else if (op->type == KSQ_INVLPG) {
			vmem_shadow_invlpg(m.sh, op->a);
		} else {
			access(&m, op, o);
		}
		(void)vmem_shadow_take_flush(m.sh);
		if (opt->audit) {
			char w[sizeof(st->audit_why)];
			if (vmem_shadow_audit(m.sh, w, sizeof(w)) != VMEM_OK) {
				if (!st->audits_failed++) {
					st->first_audit_op = i;
					snprintf(st->audit_why, sizeof(st->audit_why), "%s", w);
				}
			}
		}
	}
	rc = 0;
out:
	vmem_mmu_free(m.hmmu);
	vmem_shadow_free(m.sh);
	vmem_gmem_free(m.host);
	vmem_gmem_free(m.guest);
	if (rc == 0 && m.ar.live)
		snprintf(why, n, "%lu shadow pages never freed", m.ar.live), rc = -1;
	free(m.ar.free_list);
	free(m.ar.base);
	free(m.harness);
	return rc;
}
