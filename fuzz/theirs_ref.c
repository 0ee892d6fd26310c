/* theirs_ref: the default "theirs" for fuzz_theirs: the fuzz/theirs.h ABI answered by the independent reference walkers in tests/ref (nested: the two composed). */
#include <stdlib.h>
#include <string.h>

#include "ref_ept.h"
#include "ref_walk.h"
#include "theirs.h"

/* fuzz/theirs_wrong.c builds this file under another name and wraps it. */
#ifndef THEIRS_REF_ENTRY
#define THEIRS_REF_ENTRY theirs_answer
#endif
int THEIRS_REF_ENTRY(const vmem_vector *v, vmem_vector_expect *out);

/* The vector's memory as 8-byte words, before and after the access; memory
 * not listed reads as zero (docs/vectors.md). */
struct qword {
	uint64_t addr, init, cur;
};
struct sparse {
	struct qword *q;
	size_t n, cap;
	bool oom;
};

static struct qword *find(struct sparse *m, uint64_t addr, bool add)
{
	for (size_t k = 0; k < m->n; k++)
		if (m->q[k].addr == addr)
			return &m->q[k];
	if (!add)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct qword *q = realloc(m->q, cap * sizeof(*q));
		if (!q) {
			m->oom = true;
			return NULL;
		}
		m->q = q;
		m->cap = cap;
	}
	m->q[m->n] = (struct qword){ addr, 0, 0 };
	return &m->q[m->n++];
}

/* Store size (4 or 8) bytes at addr (naturally aligned) into the current value. */
static bool store(struct sparse *m, uint64_t addr, unsigned size, uint64_t val)
{
	struct qword *q = find(m, addr & ~7ull, true);
	if (!q)
		return false;
	unsigned shift = 8 * (unsigned)(addr & 7);
	uint64_t mask = (size == 8 ? ~0ull : 0xffffffffull) << shift;
	q->cur = (q->cur & ~mask) | ((val << shift) & mask);
	return true;
}

static uint64_t load(struct sparse *m, uint64_t addr, unsigned size)
{
	struct qword *q = find(m, addr & ~7ull, false);
	uint64_t val = q ? q->cur >> (8 * (addr & 7)) : 0;
	return size == 8 ? val : val & 0xffffffffull;
}

static bool sparse_init(struct sparse *m, const vmem_vector *v)
{
	memset(m, 0, sizeof(*m));
	for (size_t k = 0; k < v->n_mem; k++)
		store(m, v->mem[k].addr, v->mem[k].size, v->mem[k].value);
	for (size_t k = 0; k < m->n; k++)
		m->q[k].init = m->q[k].cur;
	return !m->oom;
}

/* The words the access changed, as mem_after (8-byte words, malloc'd). */
static bool sparse_changes(const struct sparse *m, vmem_vector_expect *out)
{
	for (size_t k = 0; k < m->n; k++) {
		if (m->q[k].cur == m->q[k].init)
			continue;
		vmem_vector_word *w = realloc(out->mem_after, (out->n_mem_after + 1) * sizeof(*w));
		if (!w)
			return false;
		out->mem_after = w;
		w[out->n_mem_after++] = (vmem_vector_word){ m->q[k].addr, m->q[k].cur, 8 };
	}
	out->have |= VMEM_VEXP_MEM_AFTER;
	return true;
}

/* The reference walkers' memory callbacks over the sparse memory. */
static bool walk_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	*val = load(ctx, gpa, size);
	return true;
}
static bool walk_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	return store(ctx, gpa, size, val);
}
static bool ept_read(void *ctx, uint64_t hpa, uint64_t *val)
{
	*val = load(ctx, hpa, 8);
	return true;
}
static bool ept_write(void *ctx, uint64_t hpa, uint64_t val)
{
	return store(ctx, hpa, 8, val);
}

/* The vector's guest registers, access and EPT controls as the references take them. */
static ref_cpu guest_cpu(const vmem_vector *v)
{
	return (ref_cpu){
		.cr0 = v->cpu.cr0, .cr3 = v->cpu.cr3, .cr4 = v->cpu.cr4, .efer = v->cpu.efer,
		.pkru = v->cpu.pkru, .maxphyaddr = v->cpu.maxphyaddr, .gbpages = v->cpu.gbpages,
	};
}
static ref_access guest_access(const vmem_vector *v)
{
	return (ref_access){
		.la = v->access.addr,
		.write = v->access.type == VMEM_VACC_WRITE,
		.fetch = v->access.type == VMEM_VACC_FETCH,
		.cpl3 = v->access.cpl == 3,
		.implicit = v->access.implicit,
		.ac = v->access.ac,
	};
}
/* The processor vectors assume: execute-only entries and 1-GByte pages supported. */
static ref_ept_cpu ept_cpu(const vmem_vector *v)
{
	return (ref_ept_cpu){ v->ept.eptp, v->cpu.maxphyaddr, true, true, v->ept.advanced_info,
			      v->ept.mbec };
}
/* The kind of a final access. */
static const ref_ept_kind final_kind[3] = { REF_EPT_READ, REF_EPT_WRITE, REF_EPT_FETCH };

/* An EPT exit as the answer (false: the reference stopped on something else). */
static bool ept_exit(const ref_ept_result *r, vmem_vector_expect *out)
{
	if (r->status != REF_EPT_VIOLATION && r->status != REF_EPT_MISCONFIG)
		return false;
	out->result = r->status == REF_EPT_VIOLATION ? VMEM_VRES_EPT_VIOLATION : VMEM_VRES_EPT_MISCONFIG;
	out->exit_qualification = r->qual;
	out->guest_physical = r->gpa;
	out->guest_linear = r->linear;
	return true;
}

/* Kind walk: ref_walk with A/D updates. */
static int answer_walk(const vmem_vector *v, struct sparse *m, vmem_vector_expect *out)
{
	ref_cpu cpu = guest_cpu(v);
	/* PAE: the PDPTE registers hold the words at CR3[31:5], loaded unchecked. */
	for (unsigned i = 0; i < 4; i++)
		cpu.pdpte[i] = load(m, (cpu.cr3 & 0xffffffe0ull) + 8 * i, 8);
	ref_access acc = guest_access(v);
	ref_mem mem = { walk_read, walk_write, m };
	ref_result r;
	ref_walk(&cpu, &mem, &acc, true, &r);
	if (r.status == REF_OK) {
		out->result = VMEM_VRES_OK;
		out->gpa = r.gpa;
		out->page_size = r.page_size;
	} else if (r.status == REF_PF) {
		out->result = VMEM_VRES_PAGE_FAULT;
		out->error_code = r.error_code;
	} else {
		return THEIRS_NOT_MODELLED; /* #GP, invalid question: no vector result */
	}
	return THEIRS_ANSWERED;
}

/* Kind ept: ref_ept_walk. The access has no guest translation of its own,
 * so its linear address is read/write and executable, user-mode at CPL 3. */
static int answer_ept(const vmem_vector *v, struct sparse *m, vmem_vector_expect *out)
{
	ref_ept_cpu cpu = ept_cpu(v);
	ref_ept_access acc = {
		.kind = final_kind[v->access.type],
		.has_linear = (v->have & VMEM_VHAVE_LINEAR) != 0,
		.linear = v->access.linear,
		.guest_user = v->access.cpl == 3,
		.guest_rw = true,
		.guest_nx = false,
	};
	ref_ept_mem mem = { ept_read, ept_write, m };
	ref_ept_result r;
	ref_ept_walk(&cpu, &mem, v->access.addr, &acc, true, &r);
	if (r.status != REF_EPT_OK) /* an address beyond the page-walk length is no exit */
		return ept_exit(&r, out) ? THEIRS_ANSWERED : THEIRS_NOT_MODELLED;
	out->result = VMEM_VRES_OK;
	out->hpa = r.hpa;
	out->page_size = r.page_size;
	return THEIRS_ANSWERED;
}

/* Kind nested: ref_walk whose every guest-physical access is an EPT access
 * (ref_ept_walk), the first EPT exit ending the walk. */
struct nested {
	struct sparse *host;
	ref_ept_cpu ept;
	uint64_t la;
	bool exited;
	ref_ept_result exit;
};

static bool nested_xlate(struct nested *n, uint64_t gpa, ref_ept_kind kind, uint64_t *hpa)
{
	if (n->exited)
		return false;
	ref_ept_access a = { .kind = kind, .has_linear = true, .linear = n->la };
	ref_ept_mem mem = { ept_read, ept_write, n->host };
	ref_ept_walk(&n->ept, &mem, gpa, &a, true, &n->exit);
	*hpa = n->exit.hpa;
	n->exited = n->exit.status != REF_EPT_OK;
	return !n->exited;
}
static bool nested_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	struct nested *n = ctx;
	uint64_t hpa;
	if (!nested_xlate(n, gpa, REF_EPT_GUEST_PS, &hpa))
		return false;
	*val = load(n->host, hpa, size);
	return true;
}
static bool nested_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	struct nested *n = ctx;
	uint64_t hpa;
	return nested_xlate(n, gpa, REF_EPT_GUEST_AD, &hpa) && store(n->host, hpa, size, val);
}

static int answer_nested(const vmem_vector *v, struct sparse *m, vmem_vector_expect *out)
{
	struct nested n = { .host = m, .ept = ept_cpu(v), .la = v->access.addr };
	ref_cpu cpu = guest_cpu(v);
	if (!(cpu.cr0 & REF_CR0_PG))
		return THEIRS_NOT_MODELLED;
	/* PAE: the MOV to CR3 read the PDPTEs through EPT earlier (no A/D flags). */
	ref_ept_mem hmem = { ept_read, ept_write, m };
	ref_ept_access rd = { .kind = REF_EPT_READ };
	ref_ept_result pr;
	ref_ept_walk(&n.ept, &hmem, cpu.cr3 & 0xffffffe0ull, &rd, false, &pr);
	for (unsigned i = 0; pr.status == REF_EPT_OK && i < 4; i++)
		cpu.pdpte[i] = load(m, pr.hpa + 8 * i, 8);
	ref_access acc = guest_access(v);
	ref_mem gmem = { nested_read, nested_write, &n };
	ref_result r;
	ref_walk(&cpu, &gmem, &acc, true, &r);
	if (n.exited)
		return ept_exit(&n.exit, out) ? THEIRS_ANSWERED : THEIRS_NOT_MODELLED;
	if (r.status == REF_PF) {
		out->result = VMEM_VRES_PAGE_FAULT;
		out->error_code = r.error_code;
		return THEIRS_ANSWERED;
	}
	if (r.status != REF_OK)
		return THEIRS_NOT_MODELLED;
	/* The final access, with what the guest translation says about the linear address. */
	ref_ept_access fa = { .kind = final_kind[v->access.type], .has_linear = true, .linear = n.la,
			      .guest_user = r.perms & REF_PERM_U, .guest_rw = r.perms & REF_PERM_W,
			      .guest_nx = !(r.perms & REF_PERM_X) };
	ref_ept_result er;
	ref_ept_walk(&n.ept, &hmem, r.gpa, &fa, true, &er);
	if (er.status != REF_EPT_OK)
		return ept_exit(&er, out) ? THEIRS_ANSWERED : THEIRS_NOT_MODELLED;
	out->result = VMEM_VRES_OK;
	out->hpa = er.hpa;
	out->page_size = er.page_size < r.page_size ? er.page_size : r.page_size;
	return THEIRS_ANSWERED;
}

int THEIRS_REF_ENTRY(const vmem_vector *v, vmem_vector_expect *out)
{
	struct sparse m;
	int rc = THEIRS_NOT_MODELLED;
	if (sparse_init(&m, v)) {
		static int (*const by_kind[3])(const vmem_vector *, struct sparse *, vmem_vector_expect *) = {
			answer_walk, answer_ept, answer_nested,
		};
		rc = (unsigned)v->kind < 3 ? by_kind[v->kind](v, &m, out) : THEIRS_NOT_MODELLED;
		if (rc == THEIRS_ANSWERED && (m.oom || !sparse_changes(&m, out)))
			rc = THEIRS_NOT_MODELLED;
	}
	free(m.q);
	return rc;
}
