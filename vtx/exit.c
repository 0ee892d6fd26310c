/* exit.c: read a VM exit from the VMCS and dispatch it by basic exit reason into the VM's handlers (SDM vol. 3C ch. 28 and appendix C). */
#include "vtx.h"
#include "vm.h"
#include "rt.h"

void vtx_exit_read(struct vtx_exit *e)
{
	uint64_t r = vmcs_read(EXIT_REASON);
	e->reason = (uint32_t)r & 0xffff;
	e->entry_failed = r & (1u << 31);
	e->qual = vmcs_read(EXIT_QUALIFICATION);
	e->gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS);
	e->gla = vmcs_read(GUEST_LINEAR_ADDRESS);
	e->rip = vmcs_read(GUEST_RIP);
	e->intr_info = (uint32_t)vmcs_read(VM_EXIT_INTERRUPTION_INFORMATION);
	e->intr_err = (uint32_t)vmcs_read(VM_EXIT_INTERRUPTION_ERROR_CODE);
	e->instr_len = (uint32_t)vmcs_read(VM_EXIT_INSTRUCTION_LENGTH);
	e->idt_info = (uint32_t)vmcs_read(IDT_VECTORING_INFORMATION);
	e->idt_err = (uint32_t)vmcs_read(IDT_VECTORING_ERROR_CODE);
}

const char *vtx_exit_name(uint32_t reason)
{
	switch (reason) {
	case EXIT_REASON_EXCEPTION_NMI: return "exception";
	case EXIT_REASON_TRIPLE_FAULT: return "triple-fault";
	case EXIT_REASON_CPUID: return "cpuid";
	case EXIT_REASON_HLT: return "hlt";
	case EXIT_REASON_INVLPG: return "invlpg";
	case EXIT_REASON_RDTSC: return "rdtsc";
	case EXIT_REASON_VMCALL: return "vmcall";
	case EXIT_REASON_CR_ACCESS: return "cr-access";
	case EXIT_REASON_IO: return "io";
	case EXIT_REASON_INVALID_GUEST: return "invalid-guest-state";
	case EXIT_REASON_EPT_VIOLATION: return "ept-violation";
	case EXIT_REASON_EPT_MISCONFIG: return "ept-misconfig";
	default: return "other";
	}
}

uint64_t vtx_gpr_get(const struct vtx_gprs *g, unsigned n)
{
	return n == 4 ? vmcs_read(GUEST_RSP) : g->r[n];
}

void vtx_gpr_set(struct vtx_gprs *g, unsigned n, uint64_t v)
{
	if (n == 4)
		vmcs_write(GUEST_RSP, v);
	else
		g->r[n] = v;
}

/* The VMM finished the instruction at RIP (len bytes) for the guest: what
 * its completion does besides moving RIP. Blocking by STI and by MOV SS end
 * once the guest "executes one instruction" (SDM vol. 3C 27.7.1); RF is
 * cleared after an instruction completes (vol. 3A 2.3); with TF = 1 and
 * IA32_DEBUGCTL.BTF = 0 it ends in a single-step trap, left to VM entry as
 * pending debug exception BS (vol. 3C Table 25-4, 27.7.3). */
void vtx_complete_instruction(const struct vtx_exit *e, unsigned len)
{
	vmcs_write(GUEST_RIP, e->rip + len);
	uint64_t irq = vmcs_read(GUEST_INTERRUPTIBILITY_STATE);
	if (irq & (INTR_BLOCK_STI | INTR_BLOCK_MOV_SS))
		vmcs_write(GUEST_INTERRUPTIBILITY_STATE, irq & ~(uint64_t)(INTR_BLOCK_STI | INTR_BLOCK_MOV_SS));
	uint64_t fl = vmcs_read(GUEST_RFLAGS);
	if (fl & RFLAGS_RF)
		vmcs_write(GUEST_RFLAGS, fl & ~RFLAGS_RF);
	if ((fl & RFLAGS_TF) && !(vmcs_read(GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF))
		vmcs_write(GUEST_PENDING_DEBUG_EXCEPTIONS, vmcs_read(GUEST_PENDING_DEBUG_EXCEPTIONS) | PENDING_DBG_BS);
}

/* CPUID, RDTSC, VMCALL, MOV CR3, INVLPG, I/O and HLT exit before the
 * instruction completes ("Instruction-Specific Exits"): the VMM moves RIP past
 * it by the VM-exit instruction length (SDM vol. 3C 28.2.5). */
void vtx_skip_instruction(const struct vtx_exit *e)
{
	RT_ASSERT(e->instr_len >= 1 && e->instr_len <= 15);
	vtx_complete_instruction(e, e->instr_len);
}

/* An exit during the delivery of an event (IDT-vectoring information valid,
 * SDM vol. 3C 28.2.4): once the cause is fixed the VMM delivers the event
 * again with VM-entry event injection, of the same type. The guest chooses
 * it: INT n, INT3, INTO and INT1 (types 4 to 6) carry their instruction's
 * length, which such exits report (28.2.5), as the VM-entry instruction
 * length, from which the return address pushed follows (25.8.3). */
static void reinject(struct vtx_vm *vm, const struct vtx_exit *e)
{
	if (!(e->idt_info & INTR_INFO_VALID))
		return;
	/* The handler must not have injected something else. */
	RT_ASSERT(!(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID));
	unsigned vec = INTR_INFO_VECTOR(e->idt_info), type = INTR_INFO_TYPE(e->idt_info);
	bool has_err = e->idt_info & INTR_INFO_DELIVER_ERR;
	/* The IDT-vectoring fields become the VM-entry ones as they are: vector,
	 * type, error code (bit 12 is undefined on exit, reserved on entry:
	 * Table 25-17). */
	vmcs_write(VM_ENTRY_INTERRUPTION_INFORMATION, e->idt_info & (INTR_INFO_VALID | INTR_INFO_DELIVER_ERR | 0x7ff));
	vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, has_err ? e->idt_err : 0);
	if (type >= 4)
		vmcs_write(VM_ENTRY_INSTRUCTION_LENGTH, e->instr_len);
	/* A #PF being delivered is the VMM's own injection when #PF exits
	 * (exception bitmap, PFEC mask/match 0: every #PF; SDM vol. 3C 25.6.3):
	 * it keeps the CR2 injected. Otherwise the processor raised it and
	 * loaded CR2 itself (vol. 3A 6.15, Interrupt 14); the exit left it alone. */
	if (type == 3 && vec == VECTOR_PF && (vmcs_read(EXCEPTION_BITMAP) & (1u << VECTOR_PF)))
		vmx_set_guest_cr2(vm ? vm->pending_cr2 : 0);
	if (vm)
		vm->n.reinjected++;
}

/* A fault of an IRET that had NMIs blocked: with "NMI exiting" 0 the exit
 * cleared the blocking and bit 12 of the EPT qualification or of the
 * VM-exit interruption information recorded it (undefined during event
 * delivery and for a #DF: SDM vol. 3C 28.1, 28.2.1, 28.2.2). If the VMM lets
 * the IRET run again (nothing injected), the NMI handler has not returned:
 * blocking by NMI is put back, as the SDM's VMM programming considerations
 * ask before resuming. An injected #PF is the IRET's fault: NMIs stay unblocked. */
static void reblock_nmi(const struct vtx_exit *e)
{
	bool iret = e->reason == EXIT_REASON_EPT_VIOLATION ? (e->qual & EPTQ_NMI_UNBLOCK) :
		    e->reason == EXIT_REASON_EXCEPTION_NMI && (e->intr_info & INTR_INFO_NMI_UNBLOCK) &&
			    INTR_INFO_VECTOR(e->intr_info) != VECTOR_DF;
	if (!iret || (e->idt_info & INTR_INFO_VALID) ||
	    (vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID))
		return;
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, vmcs_read(GUEST_INTERRUPTIBILITY_STATE) | INTR_BLOCK_NMI);
}

bool vtx_vm_dispatch(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	if (e->entry_failed)
		return false;
	bool ok;
	switch (e->reason) {
	case EXIT_REASON_CPUID: {
		uint32_t r[4];
		vtx_cpuid(vm, (uint32_t)g->rax, (uint32_t)g->rcx, r);
		g->rax = r[0], g->rbx = r[1], g->rcx = r[2], g->rdx = r[3];
		if (vm)
			vm->n.cpuid++;
		vtx_skip_instruction(e);
		return true;
	}
	case EXIT_REASON_VMCALL:
		if (!vm) {
			rt_printf("vtx: vmcall rax=0x%lx\n", g->rax);
			vtx_skip_instruction(e);
			return true;
		}
		ok = vtx_exit_vmcall(vm, e, g);
		break;
	case EXIT_REASON_IO:
		/* Qualification: bit 3 direction (0 = OUT), bit 4 string (OUTS: the
		 * byte at DS:RSI, not AL), bits 31:16 port (Table 28-5). */
		if (!(e->qual & (8 | 0x10)) && (e->qual >> 16) == 0xE9) {
			rt_printf("vtx: guest wrote '%c' to port 0xe9\n", (char)g->rax);
			if (vm)
				vm->n.io++;
			vtx_skip_instruction(e);
			return true;
		}
		return false;
	case EXIT_REASON_RDTSC:
		if (!vm)
			return false;
		ok = vtx_exit_rdtsc(vm, e, g);
		break;
	case EXIT_REASON_EPT_VIOLATION:
		if (!vm)
			return false;
		ok = vtx_exit_ept_violation(vm, e, g);
		break;
	case EXIT_REASON_EPT_MISCONFIG:
		if (!vm)
			return false;
		ok = vtx_exit_ept_misconfig(vm, e, g);
		break;
	case EXIT_REASON_EXCEPTION_NMI:
		if (!vm)
			return false;
		ok = vtx_exit_exception(vm, e, g);
		break;
	case EXIT_REASON_CR_ACCESS:
		if (!vm)
			return false;
		ok = vtx_exit_cr_access(vm, e, g);
		break;
	case EXIT_REASON_INVLPG:
		if (!vm || vm->cfg.paging != VTX_SHADOW)
			return false;
		ok = vtx_exit_invlpg(vm, e, g);
		break;
	case EXIT_REASON_HLT:
		if (vm)
			vm->n.hlt++;
		return false; /* the caller looks at these */
	default:
		return false;
	}
	if (ok) {
		reblock_nmi(e);
		reinject(vm, e);
		if (vm->cfg.paging == VTX_SHADOW)
			vtx_shadow_flush(vm);
	}
	return ok;
}

bool vtx_exit_dispatch(const struct vtx_exit *e, struct vtx_gprs *g)
{
	return vtx_vm_dispatch(NULL, e, g);
}
