/* libvmem nested walk (SDM vol. 3C 29.3.3): the guest walker with EPT hooks, then the final access through EPT. */
#include <libvmem/nested.h>
#include "ept_int.h"
#include "mmu_int.h"

/* An access of the nested walk: every one has the guest-linear address. Fields
 * one by one: an aggregate initializer may become a memset call, which the
 * freestanding core lacks. */
static inline void nx_access(vmem_ept_access *a, unsigned type, const struct nx_walk *nx,
			     unsigned guest_perms)
{
	a->type = (uint8_t)type;
	a->flags = VMEM_EPT_LINEAR;
	a->guest_perms = (uint8_t)guest_perms;
	a->linear = nx->la;
}

/* One EPT translation on behalf of the nested walk, traced. */
static bool nx_translate(struct nx_walk *nx, uint64_t gpa, const vmem_ept_access *a,
			 vmem_ept_result *r)
{
	vmem_ept_trace *t = NULL;
	vmem_nested_trace *nt = nx->trace;
	if (nt && nt->n < sizeof(nt->ept) / sizeof(nt->ept[0])) {
		nt->ept[nt->n].gpa = gpa;
		t = &nt->ept[nt->n++].t;
	}
	vmem_err e = vmem_ept_walk(nx->ept, nx->host, gpa, a, nx->ept_flags, r, t);
	if (vmi_unlikely(e)) {
		nx->err = e;
		r->status = VMEM_EPT_BAD_HPA;
		return false;
	}
	if (r->status != VMEM_EPT_OK) {
		vmi_memcpy(&nx->exit, r, sizeof(*r));
		return false;
	}
	return true;
}

bool vmi_nx_entry(struct nx_walk *nx, uint64_t egpa, uint64_t *hpa, uint8_t *perms)
{
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, VMEM_EPT_PAGING, nx, 0);
	if (!nx_translate(nx, egpa, &a, &r))
		return false;
	*hpa = r.hpa;
	*perms = r.perms;
	return true;
}

bool vmi_nx_ad_write(struct nx_walk *nx, uint64_t egpa, uint8_t perms)
{
	/* Under EPT A/D the read was already a write (SDM 29.3.3.2); else the
	 * flag update is a data write of its own, refused without W. */
	if (nx->ept->ad || (perms & VMEM_EPT_RIGHT_W))
		return true;
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, VMEM_EPT_PAGING_AD, nx, 0);
	return nx_translate(nx, egpa, &a, &r);
}

/* An EPT outcome other than OK as the nested result. */
static void from_ept(vmem_nested_result *res, const vmem_ept_result *r, bool final)
{
	vmi_memcpy(&res->ept, r, sizeof(*r));
	res->final = final;
	switch (r->status) {
	case VMEM_EPT_VIOLATION:
		res->status = VMEM_NESTED_EPT_VIOLATION;
		res->exit_qual = r->exit_qual;
		res->gpa = r->gpa;
		res->linear = r->linear;
		break;
	case VMEM_EPT_MISCONFIG:
		res->status = VMEM_NESTED_EPT_MISCONFIG;
		res->gpa = r->gpa;
		break;
	case VMEM_EPT_PML_FULL:
		res->status = VMEM_NESTED_PML_FULL;
		res->gpa = r->gpa;
		break;
	default:
		res->status = VMEM_NESTED_BAD_HPA;
		res->hpa = r->hpa;
		break;
	}
}

vmem_err vmem_nested_walk(const vmem_mmu *mmu, const vmem_ept_mmu *ept, vmem_gmem *host,
			  uint64_t la, unsigned acc, unsigned flags,
			  vmem_nested_result *res, vmem_nested_trace *tr)
{
	if (!mmu || !ept || !host || !res || (flags & ~VMEM_WALK_NO_AD))
		return VMEM_E_INVAL;
	vmi_memset(res, 0, sizeof(*res));
	struct nx_walk nx;
	vmi_memset(&nx, 0, sizeof(nx));
	nx.ept = ept;
	nx.host = host;
	nx.la = la;
	nx.ept_flags = (flags & VMEM_WALK_NO_AD) ? VMEM_EPT_NO_AD : 0;
	nx.trace = tr;
	if (tr)
		tr->n = 0;
	vmem_err e = vmi_walk_nested(mmu, &nx, la, acc, flags, &res->guest,
				     tr ? &tr->guest : NULL);
	if (nx.err)
		return nx.err;
	if (e)
		return e;
	switch (res->guest.status) {
	case VMEM_WALK_OK:
		break;
	case VMEM_WALK_PF:
		res->status = VMEM_NESTED_PF;
		res->error_code = res->guest.error_code;
		return VMEM_OK;
	case VMEM_WALK_GP:
		res->status = VMEM_NESTED_GP;
		return VMEM_OK;
	case WALK_ST_EPT:
		from_ept(res, &nx.exit, false);
		return VMEM_OK;
	default: /* a guest entry's host-physical address is outside host memory */
		res->status = VMEM_NESTED_BAD_HPA;
		res->hpa = res->guest.gpa;
		return VMEM_OK;
	}
	/* The final access (qualification bit 8 = 1). Guest permissions: VMEM_PERM_*
	 * and VMEM_EPT_GUEST_* are the same bits. */
	static const uint8_t atype[4] = { VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH, VMEM_EPT_READ };
	vmem_ept_access a;
	vmem_ept_result r;
	nx_access(&a, atype[acc & (VMEM_ACC_WRITE | VMEM_ACC_FETCH)], &nx, res->guest.perms);
	if (!nx_translate(&nx, res->guest.gpa, &a, &r)) {
		if (nx.err)
			return nx.err;
		from_ept(res, &r, true);
		return VMEM_OK;
	}
	vmi_memcpy(&res->ept, &r, sizeof(r));
	res->status = VMEM_NESTED_OK;
	res->hpa = r.hpa;
	res->gpa = res->guest.gpa;
	res->page_size = r.page_size < res->guest.page_size ? r.page_size : res->guest.page_size;
	return VMEM_OK;
}
