/* exit.c: read a VM exit from the VMCS and dispatch it by basic exit reason (SDM vol. 3C ch. 28 and appendix C). */
#include "vtx.h"
#include "rt.h"
#include "cpu_x86_64.h"

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
}

const char *vtx_exit_name(uint32_t reason)
{
	switch (reason) {
	case EXIT_REASON_EXCEPTION_NMI: return "exception";
	case EXIT_REASON_TRIPLE_FAULT: return "triple-fault";
	case EXIT_REASON_CPUID: return "cpuid";
	case EXIT_REASON_HLT: return "hlt";
	case EXIT_REASON_VMCALL: return "vmcall";
	case EXIT_REASON_IO: return "io";
	case EXIT_REASON_INVALID_GUEST: return "invalid-guest-state";
	case EXIT_REASON_EPT_VIOLATION: return "ept-violation";
	case EXIT_REASON_EPT_MISCONFIG: return "ept-misconfig";
	default: return "other";
	}
}

static void skip_instruction(const struct vtx_exit *e)
{
	vmcs_write(GUEST_RIP, e->rip + e->instr_len);
}

bool vtx_exit_dispatch(const struct vtx_exit *e, struct vtx_gprs *g)
{
	if (e->entry_failed)
		return false;
	switch (e->reason) {
	case EXIT_REASON_CPUID: {
		/* Only RAX reaches the guest: the stub saves RAX, RSI, RDI. */
		uint32_t r[4];
		cpuid((uint32_t)g->rax, 0, r);
		g->rax = r[0];
		skip_instruction(e);
		return true;
	}
	case EXIT_REASON_VMCALL:
		rt_printf("vtx: vmcall rax=0x%lx\n", g->rax);
		skip_instruction(e);
		return true;
	case EXIT_REASON_IO:
		/* Qualification: bit 3 direction (0 = OUT), bits 31:16 port (Table 28-5). */
		if (!(e->qual & 8) && (e->qual >> 16) == 0xE9) {
			rt_printf("vtx: guest wrote '%c' to port 0xe9\n", (char)g->rax);
			skip_instruction(e);
			return true;
		}
		return false;
	case EXIT_REASON_HLT:
	case EXIT_REASON_EXCEPTION_NMI:
	case EXIT_REASON_EPT_VIOLATION:
	case EXIT_REASON_EPT_MISCONFIG:
	default:
		return false; /* the caller looks at these */
	}
}
