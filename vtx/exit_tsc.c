/* exit_tsc.c: RDTSC exits (reason 16): the guest's virtual TSC, an offset plus the scaled host TSC, never going backwards. */
#include "vm.h"

bool vtx_exit_rdtsc(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	uint64_t v = VTX_TSC_OFFSET + (uint64_t)(((unsigned __int128)vmx_host_tsc() * VTX_TSC_MUL) >> 32);
	if (v <= vm->tsc_last)
		v = vm->tsc_last + 1;
	vm->tsc_last = v;
	/* RDTSC loads EDX:EAX and clears bits 63:32 of RAX and RDX (SDM vol. 2B, RDTSC). */
	g->rax = (uint32_t)v;
	g->rdx = v >> 32;
	vm->n.rdtsc++;
	vtx_skip_instruction(e);
	return true;
}
