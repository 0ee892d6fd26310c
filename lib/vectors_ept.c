/* libvmem vectors: redo kind "ept" (vmem_ept_walk) and kind "nested" (vmem_nested_walk) vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/ept.h>
#include <libvmem/nested.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>
#include "vectors_int.h"


/* The EPT context the vector describes: Bochs-like capabilities (execute-only,
 * 1-GByte pages, A/D, 5-level) plus the vector's MBEC and advanced-info flags. */
static vmem_err make_ept(const vmem_vector *v, vv_outcome *o, vmem_ept_mmu **ept)
{
	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	caps.maxphyaddr = v->cpu.maxphyaddr;
	caps.mbec = v->ept.mbec;
	caps.advanced_info = v->ept.advanced_info;
	vmem_err e = vmem_ept_mmu_new(NULL, v->ept.eptp, &caps, ept);
	if (e && e != VMEM_E_NOMEM)
		vv_fail(o, VMEM_VCHECK_ERROR, "the library refused the EPTP", e);
	return e;
}

/* An EPT exit as the vector's expect block. */
static void record_exit(vmem_vector_expect *g, const vmem_ept_result *r)
{
	if (r->status == VMEM_EPT_VIOLATION) {
		g->result = VMEM_VRES_EPT_VIOLATION;
		g->exit_qualification = r->exit_qual;
		g->guest_physical = r->gpa;
		g->have |= VMEM_VEXP_EXITQUAL | VMEM_VEXP_GUEST_PHYS;
		if (r->exit_qual & VMEM_EPTQ_GLA_VALID) {
			g->guest_linear = r->linear;
			g->have |= VMEM_VEXP_GUEST_LIN;
		}
	} else {
		g->result = VMEM_VRES_EPT_MISCONFIG;
		g->guest_physical = r->gpa;
		g->have |= VMEM_VEXP_GUEST_PHYS;
	}
}

vmem_err vv_redo_ept(const vmem_vector *v, vv_outcome *o)
{
	vmem_ept_mmu *ept = NULL;
	vmem_err e = make_ept(v, o, &ept);
	if (e)
		return e == VMEM_E_NOMEM ? e : VMEM_OK;
	vv_mem m;
	e = vv_mem_build(&m, v->mem, v->n_mem, NULL, 0);
	if (e) {
		vmem_ept_mmu_free(ept);
		if (e == VMEM_E_NOMEM)
			return e;
		vv_fail(o, VMEM_VCHECK_ERROR, "building host memory failed", e);
		return VMEM_OK;
	}
	static const uint8_t atype[3] = { VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH };
	/* The vector has no guest translation: its CPL says whether the linear
	 * address is user-mode (MBEC, qualification bit 9); read/write, executable. */
	vmem_ept_access a = {
		.type = atype[v->access.type],
		.flags = (v->have & VMEM_VHAVE_LINEAR) ? VMEM_EPT_LINEAR : 0,
		.guest_perms = VMEM_EPT_GUEST_W | VMEM_EPT_GUEST_X |
			       (v->access.cpl == 3 ? VMEM_EPT_GUEST_U : 0),
		.linear = v->access.linear,
	};
	vmem_ept_result r;
	vmem_ept_trace tr;
	memset(&r, 0, sizeof(r));
	memset(&tr, 0, sizeof(tr));
	e = vmem_ept_walk(ept, m.gm, v->access.addr, &a, 0, &r, &tr);
	if (e) {
		vv_fail(o, VMEM_VCHECK_ERROR, "vmem_ept_walk refused the access", e);
		e = VMEM_OK;
	} else {
		o->have_trace = true;
		o->trace.n = tr.n;
		for (unsigned k = 0; k < tr.n; k++) {
			o->trace.e[k].gpa = tr.e[k].hpa;
			o->trace.e[k].value = tr.e[k].value;
			o->trace.e[k].level = tr.e[k].level;
		}
		vmem_vector_expect *g = &o->got;
		if (r.status == VMEM_EPT_OK) {
			g->result = VMEM_VRES_OK;
			g->hpa = r.hpa;
			g->page_size = r.page_size;
			g->have |= VMEM_VEXP_HPA | VMEM_VEXP_PAGE_SIZE;
		} else if (r.status == VMEM_EPT_BAD_HPA) {
			vv_fail(o, VMEM_VCHECK_UNSUPPORTED, "unsupported outcome: EPT entry outside host memory", 0);
		} else {
			record_exit(g, &r);
		}
		if (o->status == VMEM_VCHECK_PASS) {
			e = vv_mem_changes(&m, 8, &g->mem_after, &g->n_mem_after);
			if (!e)
				g->have |= VMEM_VEXP_MEM_AFTER;
		}
	}
	vv_mem_free(&m);
	vmem_ept_mmu_free(ept);
	return e;
}

/* PAE guests: MOV to CR3 loaded the PDPTEs from guest-physical CR3[31:5],
 * itself an EPT read (without flags: it happened before this access). */
static vmem_err nested_pdptes(vmem_mmu *mmu, const vmem_ept_mmu *ept, vv_mem *m, uint64_t cr3,
			      vv_outcome *o)
{
	vmem_ept_access a = { .type = VMEM_EPT_READ };
	vmem_ept_result r;
	uint64_t pdpte[4];
	vmem_err e = vmem_ept_walk(ept, m->gm, cr3 & 0xffffffe0ull, &a, VMEM_EPT_NO_AD, &r, NULL);
	if (!e && r.status != VMEM_EPT_OK)
		e = VMEM_E_RANGE;
	for (unsigned k = 0; !e && k < 4; k++)
		e = vmem_gmem_read64(m->gm, r.hpa + 8 * k, &pdpte[k]);
	if (e) {
		vv_fail(o, VMEM_VCHECK_ERROR, "loading the PAE PDPTEs through EPT failed", e);
		return e;
	}
	vmem_mmu_set_pdptes(mmu, pdpte);
	return VMEM_OK;
}

vmem_err vv_redo_nested(const vmem_vector *v, vv_outcome *o)
{
	vmem_mmu *mmu;
	vmem_err e = vv_mmu_from_cpu(v, o, &mmu);
	if (e)
		return e == VMEM_E_NOMEM ? e : VMEM_OK;
	vmem_ept_mmu *ept = NULL;
	e = make_ept(v, o, &ept);
	if (e) {
		vmem_mmu_free(mmu);
		return e == VMEM_E_NOMEM ? e : VMEM_OK;
	}
	vv_mem m;
	e = vv_mem_build(&m, v->mem, v->n_mem, NULL, 0);
	if (e) {
		vmem_ept_mmu_free(ept);
		vmem_mmu_free(mmu);
		if (e == VMEM_E_NOMEM)
			return e;
		vv_fail(o, VMEM_VCHECK_ERROR, "building host memory failed", e);
		return VMEM_OK;
	}
	static const unsigned atype[3] = { VMEM_ACC_READ, VMEM_ACC_WRITE, VMEM_ACC_FETCH };
	unsigned acc = atype[v->access.type] | (v->access.cpl == 3 ? VMEM_ACC_USER : 0) |
		       (v->access.implicit ? VMEM_ACC_IMPLICIT : 0) | (v->access.ac ? VMEM_ACC_AC : 0);
	if (vmem_mmu_mode(mmu) == VMEM_MODE_PAE && nested_pdptes(mmu, ept, &m, v->cpu.cr3, o)) {
		e = VMEM_OK;
		goto out;
	}
	vmem_nested_result r;
	vmem_nested_trace *tr = calloc(1, sizeof(*tr));
	if (!tr) {
		e = VMEM_E_NOMEM;
		goto out;
	}
	e = vmem_nested_walk(mmu, ept, m.gm, v->access.addr, acc, 0, &r, tr);
	if (e) {
		vv_fail(o, VMEM_VCHECK_ERROR, "vmem_nested_walk refused the access", e);
		e = VMEM_OK;
	} else {
		o->have_trace = true;
		o->trace = tr->guest;
		vmem_vector_expect *g = &o->got;
		switch (r.status) {
		case VMEM_NESTED_OK:
			g->result = VMEM_VRES_OK;
			g->hpa = r.hpa;
			g->page_size = r.page_size;
			g->have |= VMEM_VEXP_HPA | VMEM_VEXP_PAGE_SIZE;
			break;
		case VMEM_NESTED_PF:
			g->result = VMEM_VRES_PAGE_FAULT;
			g->error_code = r.error_code;
			g->have |= VMEM_VEXP_ERROR;
			break;
		case VMEM_NESTED_EPT_VIOLATION:
		case VMEM_NESTED_EPT_MISCONFIG:
			record_exit(g, &r.ept);
			break;
		case VMEM_NESTED_GP:
			vv_fail(o, VMEM_VCHECK_UNSUPPORTED,
			     "unsupported outcome: non-canonical address (#GP), format v1 has no result for it", 0);
			break;
		default:
			vv_fail(o, VMEM_VCHECK_UNSUPPORTED, "unsupported outcome: an entry outside host memory", 0);
			break;
		}
		if (o->status == VMEM_VCHECK_PASS) {
			/* Guest entries may be 4 bytes (32-bit paging); EPT entries are 8. */
			unsigned width = vmem_mmu_mode(mmu) == VMEM_MODE_32BIT ? 4 : 8;
			e = vv_mem_changes(&m, width, &g->mem_after, &g->n_mem_after);
			if (!e)
				g->have |= VMEM_VEXP_MEM_AFTER;
		}
	}
	free(tr);
out:
	vv_mem_free(&m);
	vmem_ept_mmu_free(ept);
	vmem_mmu_free(mmu);
	return e;
}
