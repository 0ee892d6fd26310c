/* exit_ept.c: EPT violations (exit reason 48) mapped on demand from the guest's memory slots with vmem_ept_map, dirty-log write faults, real violations handed to the VMM's policy; EPT misconfigurations (49) reported. */
#include "vm.h"
#include "rt.h"

void vtx_ept_flush(struct vtx_vm *vm, const vmem_ept_flush *fl)
{
	/* A changed or weakened translation may still be cached: INVEPT before the
	 * guest runs again (SDM vol. 3C 29.4.3.1); freed tables only after it. */
	if (fl->flags & (VMEM_EPT_FLUSH_INVEPT | VMEM_EPT_FLUSH_TABLES_FREED)) {
		vmx_invept_single(vmem_ept_eptp(vm->ept));
		vm->n.invept++;
	}
	if (fl->flags & VMEM_EPT_FLUSH_TABLES_FREED)
		vmem_ept_flush_done(vm->ept);
}

/* The three access bits of the qualification as text. */
static const char *access_name(uint64_t q)
{
	return (q & VMEM_EPTQ_FETCH) ? "fetch" : (q & VMEM_EPTQ_WRITE) ? "write" : "read";
}

bool vtx_exit_ept_violation(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	vm->n.ept_violation++;
	uint64_t page = e->gpa & ~0xfffull;
	/* Bits 5:3 are the AND of the R/W/X bits of the entries used: all clear
	 * means no translation (SDM vol. 3C 28.2.1, Table 28-7). */
	bool present = e->qual & (VMEM_EPTQ_R | VMEM_EPTQ_W | VMEM_EPTQ_X);
	/* Bit 7 with bit 8 clear: the access was the guest's own page walk. */
	const char *what = !(e->qual & VMEM_EPTQ_GLA_VALID) ? "" :
			   (e->qual & VMEM_EPTQ_FINAL) ? "" : " (guest page walk)";
	if (!present) {
		vmem_region_info ri;
		if (vmem_gmem_lookup(vm->gmem, e->gpa, &ri) || ri.kind != VMEM_REGION_RAM) {
			rt_printf("vtx-main: ept-violation gpa 0x%lx: not guest RAM, stop\n", e->gpa);
			return false;
		}
		uint64_t perm = VMEM_EPT_R | VMEM_EPT_X;
		if (!(ri.flags & VMEM_SLOT_READONLY))
			perm |= VMEM_EPT_W;
		if (ri.flags & VMEM_SLOT_NOEXEC)
			perm &= ~VMEM_EPT_X;
		vmem_ept_flush fl;
		vmem_err err = vmem_ept_map(vm->ept, page, vm->cfg.ram_hpa + page, 4096, perm, VMEM_MT_WB, false, &fl);
		if (err) {
			rt_printf("vtx-main: vmem_ept_map gpa 0x%lx: error %d\n", page, err);
			return false;
		}
		vtx_ept_flush(vm, &fl);
		vm->n.ept_mapped++;
		rt_printf("vtx-main: ept-violation %s gpa 0x%lx qual 0x%lx%s -> mapped 4K %s\n", access_name(e->qual),
			  e->gpa, e->qual, what, (perm & VMEM_EPT_W) ? "rwx" : "r-x");
		return true;
	}
	if ((e->qual & VMEM_EPTQ_WRITE) && vm->dirty) {
		bool handled;
		vmem_ept_flush fl;
		if (vmem_dirty_wp_fault(vm->dirty, e->gpa, &handled, &fl) == VMEM_OK && handled) {
			vtx_ept_flush(vm, &fl);
			vm->n.ept_dirty_wp++;
			rt_printf("vtx-main: ept-violation write gpa 0x%lx qual 0x%lx -> dirty log: page logged, writable again\n",
				  e->gpa, e->qual);
			return true;
		}
	}
	vm->n.ept_policy++;
	rt_printf("vtx-main: ept-violation %s gpa 0x%lx qual 0x%lx: the mapping forbids it -> VMM policy\n",
		  access_name(e->qual), e->gpa, e->qual);
	return vm->cfg.policy(vm, e, g);
}

bool vtx_exit_ept_misconfig(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	(void)g;
	vm->n.ept_misconfig++;
	rt_printf("vtx-main: ept-misconfig gpa 0x%lx rip 0x%lx: stop\n", e->gpa, e->rip);
	return false;
}

bool vtx_policy_rom_discard(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	/* Only the instruction's own write to its linear address is the MOV's
	 * store: not a fetch, not the processor's write of a guest paging
	 * structure's A/D flags (EPT qualification bit 8 clear, SDM vol. 3C
	 * 28.2.1), not a push while delivering an event (28.2.4). */
	bool own = e->reason == EXIT_REASON_EPT_VIOLATION ?
			   (e->qual & (VMEM_EPTQ_WRITE | VMEM_EPTQ_GLA_VALID | VMEM_EPTQ_FINAL)) ==
				   (VMEM_EPTQ_WRITE | VMEM_EPTQ_GLA_VALID | VMEM_EPTQ_FINAL) :
			   (e->intr_err & VMEM_PFEC_W);
	if (!own || (e->idt_info & INTR_INFO_VALID)) {
		rt_printf("vtx-main: policy: not the instruction's own write (qual 0x%lx, event 0x%x): stop\n", e->qual,
			  e->idt_info);
		return false;
	}
	struct vtx_mov_store m;
	if (!vtx_vm_fetch_mov_store(vm, e->rip, &m)) {
		rt_printf("vtx-main: policy: not a MOV store at rip 0x%lx: stop\n", e->rip);
		return false;
	}
	/* The faulting linear address: the EPT violation's (bit 7 set above) or the #PF's. */
	uint64_t la = e->reason == EXIT_REASON_EPT_VIOLATION ? e->gla : e->qual;
	if (!vtx_mov_store_is_fault(&m, g, la)) {
		rt_printf("vtx-main: policy: the MOV at rip 0x%lx stores to 0x%lx, the fault is at 0x%lx: stop\n",
			  e->rip, vtx_mov_store_la(&m, g), la);
		return false;
	}
	rt_printf("vtx-main: policy: write to read-only memory dropped, rip 0x%lx += %u\n", e->rip, m.len);
	vtx_complete_instruction(e, m.len);
	return true;
}
