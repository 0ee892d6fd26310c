/* libvmem vectors: redo a kind "walk" vector with vmem_walk (guest page walk, SDM vol. 3A ch. 4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>
#include "vectors_int.h"

void vv_fail(vv_outcome *o, vmem_vcheck_status st, const char *what, int err)
{
	o->status = st;
	if (err)
		snprintf(o->why, sizeof(o->why), "%s: %s", what, vmem_strerror(err));
	else
		snprintf(o->why, sizeof(o->why), "%s", what);
}

vmem_err vv_mmu_from_cpu(const vmem_vector *v, vv_outcome *o, vmem_mmu **mmu)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = v->cpu.cr0;
	r.cr3 = v->cpu.cr3;
	r.cr4 = v->cpu.cr4;
	r.efer = v->cpu.efer;
	r.pkru = v->cpu.pkru;
	r.maxphyaddr = v->cpu.maxphyaddr;
	r.gbpages = v->cpu.gbpages;
	*mmu = NULL;
	vmem_err e = vmem_mmu_new(NULL, &r, mmu);
	if (e && e != VMEM_E_NOMEM) {
		vv_fail(o, VMEM_VCHECK_ERROR, "the library refused the registers", e);
		return VMEM_E_INVAL;
	}
	return e;
}

/* Access flags from the vector's access block; CPL 3 is a user access. */
static unsigned access_flags(const vmem_vector *v)
{
	static const unsigned type[3] = { VMEM_ACC_READ, VMEM_ACC_WRITE, VMEM_ACC_FETCH };
	unsigned a = type[v->access.type];
	if (v->access.cpl == 3)
		a |= VMEM_ACC_USER;
	if (v->access.implicit)
		a |= VMEM_ACC_IMPLICIT;
	if (v->access.ac)
		a |= VMEM_ACC_AC;
	return a;
}

/* SDM 4.4.1: MOV to CR3 loads the PDPTEs; vectors say they hold what mem has
 * at CR3. A present PDPTE with reserved bits would make the MOV #GP, so load
 * it unchecked (as VM entry does): the walk then reports the reserved bit. */
static vmem_err load_pdptes(vmem_mmu *mmu, vv_mem *m, uint64_t cr3)
{
	vmem_err e = vmem_mmu_load_pdptes(mmu, m->gm);
	if (e != VMEM_E_INVAL)
		return e;
	uint64_t pdpte[4];
	for (unsigned k = 0; k < 4; k++) {
		e = vmem_gmem_read64(m->gm, (cr3 & 0xffffffe0ull) + 8 * k, &pdpte[k]);
		if (e)
			return e;
	}
	vmem_mmu_set_pdptes(mmu, pdpte);
	return VMEM_OK;
}

static vmem_err record(const vmem_vector *v, vv_outcome *o, const vv_mem *m, vmem_mode mode,
		       const vmem_walk_result *res)
{
	vmem_vector_expect *g = &o->got;
	switch (res->status) {
	case VMEM_WALK_OK:
		g->result = VMEM_VRES_OK;
		g->gpa = res->gpa;
		g->page_size = res->page_size;
		g->have |= VMEM_VEXP_GPA | VMEM_VEXP_PAGE_SIZE;
		break;
	case VMEM_WALK_PF:
		g->result = VMEM_VRES_PAGE_FAULT;
		g->error_code = res->error_code;
		g->have |= VMEM_VEXP_ERROR;
		break;
	case VMEM_WALK_GP:
		vv_fail(o, VMEM_VCHECK_UNSUPPORTED,
		     "unsupported outcome: non-canonical address (#GP), format v1 has no result for it", 0);
		return VMEM_OK;
	default: {
		char why[96];
		snprintf(why, sizeof(why), "unsupported outcome: paging entry outside guest memory at 0x%llx",
			 (unsigned long long)res->gpa);
		vv_fail(o, VMEM_VCHECK_UNSUPPORTED, why, 0);
		return VMEM_OK;
	}
	}
	(void)v;
	/* 32-bit paging entries are 4 bytes; every other mode's are 8. */
	vmem_err e = vv_mem_changes(m, mode == VMEM_MODE_32BIT ? 4 : 8, &g->mem_after,
				    &g->n_mem_after);
	if (!e)
		g->have |= VMEM_VEXP_MEM_AFTER;
	return e;
}

vmem_err vv_redo_walk(const vmem_vector *v, vv_outcome *o)
{
	vmem_mmu *mmu;
	vmem_err e = vv_mmu_from_cpu(v, o, &mmu);
	if (e)
		return e == VMEM_E_NOMEM ? e : VMEM_OK;
	vv_mem m;
	e = vv_mem_build(&m, v->mem, v->n_mem, NULL, 0);
	if (e) {
		vmem_mmu_free(mmu);
		if (e == VMEM_E_NOMEM)
			return e;
		vv_fail(o, VMEM_VCHECK_ERROR, "building guest memory failed", e);
		return VMEM_OK;
	}
	vmem_mode mode = vmem_mmu_mode(mmu);
	if (mode == VMEM_MODE_PAE)
		e = load_pdptes(mmu, &m, v->cpu.cr3);
	vmem_walk_result res;
	memset(&res, 0, sizeof(res));
	if (e && e != VMEM_E_NOMEM) {
		vv_fail(o, VMEM_VCHECK_ERROR, "loading the PAE PDPTEs failed", e);
		e = VMEM_OK;
	} else if (!e) {
		e = vmem_walk_traced(mmu, m.gm, v->access.addr, access_flags(v), 0, &res, &o->trace);
		if (e == VMEM_E_NOMEM) {
			/* fall through to cleanup */
		} else if (e) {
			vv_fail(o, VMEM_VCHECK_ERROR, "vmem_walk refused the access", e);
			e = VMEM_OK;
		} else {
			o->have_trace = true;
			e = record(v, o, &m, mode, &res);
		}
	}
	vv_mem_free(&m);
	vmem_mmu_free(mmu);
	return e;
}
