/* exit_shadow.c: shadow paging (EPT off): #PF exits into vmem_shadow_fault (fill, inject #PF, emulate a page-table or CR0.WP = 0 write), INVLPG into vmem_shadow_invlpg (MOV CR3: exit_cr.c), and the host TLB flush the engine asks for. */
#include "vm.h"
#include "rt.h"

void vtx_shadow_flush(struct vtx_vm *vm)
{
	/* VPID is off: VM entries and exits already invalidate the mappings of
	 * VPID 0 (SDM vol. 3C 29.4.3.1); the explicit flush keeps the rule visible
	 * and stays right once a VPID is used (then: INVVPID single context). */
	if (vmem_shadow_take_flush(vm->sh)) {
		vmx_flush_vpid0();
		vm->n.shadow_flush++;
	}
}

/* Finish a store the engine cannot let through: a write to a guest page
 * table, or a supervisor write the guest's CR0.WP = 0 allows to a read-only
 * page (SDM vol. 3A 4.6.1) while the processor runs with WP = 1. */
static bool emulate_store(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g, uint64_t gpa)
{
	struct vtx_mov_store m;
	if (!vtx_vm_fetch_mov_store(vm, e->rip, &m)) {
		rt_printf("vtx-main: #PF emulate: not a MOV store at rip 0x%lx: stop\n", e->rip);
		return false;
	}
	if (!vtx_mov_store_is_fault(&m, g, e->qual)) {
		rt_printf("vtx-main: #PF emulate: the MOV at rip 0x%lx stores to 0x%lx, the fault is at 0x%lx: stop\n",
			  e->rip, vtx_mov_store_la(&m, g), e->qual);
		return false;
	}
	uint64_t v = vtx_gpr_get(g, m.src);
	if ((gpa & 0xfff) + m.size > 4096) {
		rt_printf("vtx-main: #PF emulate: store crosses a page at gpa 0x%lx: stop\n", gpa);
		return false;
	}
	vmem_err err = vmem_shadow_emulate_write(vm->sh, gpa, &v, m.size); /* little-endian: the low bytes */
	if (err) {
		rt_printf("vtx-main: vmem_shadow_emulate_write gpa 0x%lx: error %d\n", gpa, err);
		return false;
	}
	vtx_complete_instruction(e, m.len);
	return true;
}

/* An #AC exit: the guest's, reflected with its error code, 0. One during the
 * delivery of an #AC is the endless loop the exit is there to catch; during
 * another event's, delivering both is not modelled: stop either way. */
static bool reflect_ac(struct vtx_vm *vm, const struct vtx_exit *e)
{
	if (e->idt_info & INTR_INFO_VALID) {
		rt_printf("vtx-main: #AC rip 0x%lx while delivering event 0x%x%s: stop\n", e->rip, e->idt_info,
			  INTR_INFO_VECTOR(e->idt_info) == VECTOR_AC ? " (#AC: the guest would loop forever)" : "");
		return false;
	}
	vtx_vm_inject(vm, VECTOR_AC, true, 0, 0);
	return true;
}

bool vtx_exit_exception(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	unsigned vec = INTR_INFO_VECTOR(e->intr_info);
	if (vec == VECTOR_AC)
		return reflect_ac(vm, e);
	if (vec != VECTOR_PF || vm->cfg.paging != VTX_SHADOW) {
		rt_printf("vtx-main: guest exception %u rip 0x%lx: stop\n", vec, e->rip);
		return false;
	}
	vm->n.pf_exit++;
	/* A #PF exit: the qualification is the linear address, CR2 is not
	 * written (SDM vol. 3C 28.2.1); the error code says the access. */
	uint64_t la = e->qual;
	uint32_t ec = e->intr_err;
	unsigned acc = ((ec & VMEM_PFEC_W) ? VMEM_ACC_WRITE : 0) | ((ec & VMEM_PFEC_I) ? VMEM_ACC_FETCH : 0) |
		       ((ec & VMEM_PFEC_U) ? VMEM_ACC_USER : 0);
	bool in_delivery = e->idt_info & INTR_INFO_VALID;
	vmem_shadow_fault_result r;
	vmem_err err;
	unsigned tries = 0;
	do
		err = vmem_shadow_fault(vm->sh, la, acc, &r);
	while (err == VMEM_E_RETRY && ++tries < 8);
	if (err) {
		rt_printf("vtx-main: vmem_shadow_fault la 0x%lx: error %d\n", la, err);
		return false;
	}
	/* During the delivery of another event only a fill is modelled: a guest
	 * #PF there may be a #DF (SDM vol. 3A 6.15, Table 6-5), an emulated or
	 * refused push would have to finish the delivery. The guest chose this:
	 * stop it, never assert. */
	if (in_delivery && r.outcome != VMEM_SHADOW_FIXED) {
		rt_printf("vtx-main: #PF la 0x%lx while delivering event 0x%x: outcome %u not modelled: stop\n", la,
			  e->idt_info, r.outcome);
		return false;
	}
	switch (r.outcome) {
	case VMEM_SHADOW_FIXED:
		vm->n.pf_fixed++;
		return true;
	case VMEM_SHADOW_INJECT_PF:
		vm->n.pf_injected++;
		rt_printf("vtx-main: #PF la 0x%lx rip 0x%lx -> inject #PF error code 0x%x, CR2 0x%lx\n", la, e->rip,
			  r.error_code, r.cr2);
		vtx_vm_inject(vm, VECTOR_PF, true, r.error_code, r.cr2);
		return true;
	case VMEM_SHADOW_EMULATE:
		if ((r.reason != VMEM_SHADOW_EMU_PT_WRITE && r.reason != VMEM_SHADOW_EMU_WP0) || !(acc & VMEM_ACC_WRITE)) {
			rt_printf("vtx-main: #PF la 0x%lx: emulation reason %u not handled: stop\n", la, r.reason);
			return false;
		}
		if (!emulate_store(vm, e, g, r.gpa))
			return false;
		vm->n.pf_emulated++;
		rt_printf("vtx-main: #PF write la 0x%lx -> %s write emulated at gpa 0x%lx\n", la,
			  r.reason == VMEM_SHADOW_EMU_WP0 ? "CR0.WP = 0" : "guest page-table", r.gpa);
		return true;
	case VMEM_SHADOW_HOST_FAULT:
		vm->n.pf_host_fault++;
		rt_printf("vtx-main: #PF %s la 0x%lx gpa 0x%lx: the host mapping forbids it -> VMM policy\n",
			  (acc & VMEM_ACC_WRITE) ? "write" : "read", la, r.gpa);
		return vm->cfg.policy(vm, e, g);
	default:
		rt_printf("vtx-main: #PF la 0x%lx: outcome %u: stop\n", la, r.outcome);
		return false;
	}
}

bool vtx_exit_invlpg(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	(void)g;
	/* Qualification: the linear-address operand (SDM vol. 3C 28.2.1). */
	vmem_shadow_invlpg(vm->sh, e->qual);
	vm->n.invlpg++;
	rt_printf("vtx-main: INVLPG 0x%lx -> shadow entry dropped\n", e->qual);
	vtx_skip_instruction(e);
	return true;
}
