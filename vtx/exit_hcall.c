/* exit_hcall.c: VMCALL (exit reason 18): the driver's small hypercall ABI (vm.h): version, translate a guest-linear address through libvmem, print a guest string, harvest the dirty log, the guest's verdict. */
#include "vm.h"
#include "rt.h"

#define VTX_HC_NOT_KERNEL (~0ull) /* a call from CPL > 0: no hypercall has this number */

static uint64_t hc_dirty(struct vtx_vm *vm)
{
	if (!vm->dirty)
		return VTX_HC_ERROR;
	uint64_t bits[8];
	RT_ASSERT(vm->cfg.dirty_size / 4096 <= 64 * 8);
	vmem_ept_flush fl;
	if (vmem_dirty_harvest(vm->dirty, bits, &fl))
		return VTX_HC_ERROR;
	/* The re-armed pages lost W: INVEPT before the guest writes again. */
	vtx_ept_flush(vm, &fl);
	uint64_t n = 0;
	for (uint64_t w = 0; w < (vm->cfg.dirty_size / 4096 + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(bits[w]);
	return n;
}

bool vtx_exit_vmcall(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	vm->n.vmcall++;
	uint64_t nr = g->rax, gpa;
	/* VMCALL exits at any CPL (SDM vol. 2B, VMCALL): the ABI is the guest
	 * kernel's; the CPL is SS.DPL (vol. 3C 25.4.1). */
	if ((vmcs_read(GUEST_SS_ACCESS_RIGHTS) >> 5) & 3)
		nr = VTX_HC_NOT_KERNEL;
	switch (nr) {
	case VTX_HC_VERSION:
		g->rax = VTX_HC_ABI;
		break;
	case VTX_HC_TRANSLATE:
		g->rax = vtx_vm_translate(vm, g->rbx, &gpa) ? VTX_HC_ERROR : gpa;
		rt_printf("vtx-main: vmcall translate 0x%lx -> 0x%lx\n", g->rbx, g->rax);
		break;
	case VTX_HC_PRINT: {
		char buf[257];
		uint64_t n = g->rcx;
		if (n > 256 || vtx_vm_read_linear(vm, g->rbx, buf, n)) {
			g->rax = VTX_HC_ERROR;
			break;
		}
		buf[n] = 0;
		rt_printf("vtx-main: guest says: %s\n", buf);
		g->rax = 0;
		break;
	}
	case VTX_HC_DIRTY:
		g->rax = hc_dirty(vm);
		rt_printf("vtx-main: vmcall dirty-log harvest -> %lu pages\n", g->rax);
		break;
	case VTX_HC_RESULT:
		vm->result_mask = g->rbx;
		vm->result_passed = g->rcx;
		vm->result_seen = true;
		g->rax = 0;
		break;
	default:
		g->rax = VTX_HC_ERROR;
		break;
	}
	vtx_skip_instruction(e);
	return true;
}
