/* demo.c: the main job: one guest run under demand-paged EPT and one under shadow paging, every paging exit handled by libvmem; prints the counts and VTX-MAIN-OK when every check passed. */
#include "rt.h"
#include "vm.h"
#include "layout.h"
#include "guest_demo.h"

extern const uint8_t guest_demo[], guest_demo_end[], guest_demo_ept[], guest_demo_shadow[];

/* Guest RAM as a VMM hands it over: zeroed, the code at GD_CODE, identity
 * tables at GD_CR3A, the ROM's contents. */
static void demo_memory(void)
{
	uint8_t *m = (uint8_t *)(uintptr_t)GUEST_C_HPA;
	uint64_t n = (uint64_t)(guest_demo_end - guest_demo);
	RT_ASSERT(n <= 4096);
	memset(m, 0, GD_RAM_SIZE);
	memcpy(m + GD_CODE, guest_demo, n);
	uint64_t *t = (uint64_t *)(m + GD_CR3A);
	t[0] = (GD_CR3A + 0x1000) | 3;
	t[512] = (GD_CR3A + 0x2000) | 3;
	t[1024] = (GD_CR3A + 0x3000) | 3;
	for (uint64_t i = 1; i < 512; i++)
		t[1536 + i] = (i << 12) | 3;
	*(uint64_t *)(m + GD_ROM) = GD_ROM_TAG;
}

/* Shadow paging: GUEST_CR3 is the shadow root, so the guest's MOV to and from
 * CR3 (SDM vol. 3C 26.1.3) and its INVLPG go to the VMM. */
#define SHADOW_EXITING (CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING | CPU_INVLPG_EXITING)

static bool run(const struct vtx_caps *c, enum vtx_paging paging, struct vtx_vm *vm)
{
	demo_memory();
	struct vtx_vm_config cfg = {
		.paging = paging, .alloc = &rt_allocator,
		.ram = (void *)(uintptr_t)GUEST_C_HPA, .ram_hpa = GUEST_C_HPA, .ram_size = GD_RAM_SIZE,
		.rom_gpa = GD_ROM, .rom_size = GD_ROM_SIZE,
		.dirty_gpa = GD_DIRTY, .dirty_size = paging == VTX_EPT ? GD_DIRTY_SIZE : 0,
		.cr4_fixed1 = c->cr4_fixed1,
	};
	vmem_regs_init(&cfg.regs);
	cfg.regs.cr0 = 0x80010033;   /* PG, WP, NE, ET, MP, PE */
	cfg.regs.cr3 = GD_CR3A;
	cfg.regs.cr4 = 0xa0;         /* PAE, PGE (VMXE is added by the fixed bits) */
	cfg.regs.efer = 0xd00;       /* LME, LMA, NXE */
	cfg.regs.maxphyaddr = c->maxphyaddr;
	cfg.regs.gbpages = c->gbpages;
	RT_ASSERT(vtx_vm_init(vm, &cfg) == VMEM_OK);
	struct vtx_guest g = {
		.cr0 = cfg.regs.cr0, .cr3 = GD_CR3A, .cr4 = 0x20a0, .efer = cfg.regs.efer,
		.rip = GD_CODE + (uint64_t)((paging == VTX_EPT ? guest_demo_ept : guest_demo_shadow) - guest_demo),
		.eptp = paging == VTX_EPT ? vmem_ept_eptp(vm->ept) : 0,
		.proc_set = CPU_RDTSC_EXITING | (paging == VTX_SHADOW ? SHADOW_EXITING : 0),
		.proc2_clear = paging == VTX_SHADOW ? CPU2_ENABLE_EPT : 0,
	};
	vtx_vmcs_setup(c, &g);
	vtx_vm_load_paging(vm);
	if (paging == VTX_EPT)
		vmx_invept_all(); /* earlier runs used tables at these addresses */
	struct vtx_gprs r = { .rax = 0 };
	struct vtx_exit e;
	vtx_run_vm(vm, &r, &e);
	rt_printf("vtx-main: %s guest stopped: exit %u (%s) rip 0x%lx\n", paging == VTX_EPT ? "ept" : "shadow",
		  e.reason, vtx_exit_name(e.reason), e.rip);
	bool ok = !e.entry_failed && e.reason == EXIT_REASON_HLT && vm->result_seen;
	vtx_vm_fini(vm);
	return ok;
}

bool vtx_demo(const struct vtx_caps *c)
{
	uint64_t mark = rt_heap_mark();
	struct vtx_vm vm;
	RT_ASSERT(c->proc_may1 & CPU_RDTSC_EXITING);
	rt_puts("vtx-main: EPT guest: EPT tables start empty, every first touch is an EPT violation libvmem maps\n");
	bool ok = run(c, VTX_EPT, &vm);
	const struct vtx_counts *n = &vm.n;
	rt_printf("vtx-main: ept guest: ept-violation %u (mapped %u, dirty-log %u, policy %u) invept %u ept-misconfig %u "
		  "cr-write %u gp %u vmcall %u rdtsc %u cpuid %u io %u hlt %u; checks passed %lu/%u, failed mask 0x%lx\n",
		  n->ept_violation, n->ept_mapped, n->ept_dirty_wp, n->ept_policy, n->invept, n->ept_misconfig,
		  n->cr_write, n->gp_injected, n->vmcall, n->rdtsc, n->cpuid, n->io, n->hlt, vm.result_passed, GD_EPT_CHECKS, vm.result_mask);
	ok = ok && vm.result_mask == 0 && vm.result_passed == GD_EPT_CHECKS;
	rt_heap_release(mark);

	RT_ASSERT((c->proc_may1 & SHADOW_EXITING) == SHADOW_EXITING);
	rt_puts("vtx-main: shadow guest: EPT off, libvmem's shadow engine behind #PF, MOV CR3 and INVLPG exits\n");
	bool ok2 = run(c, VTX_SHADOW, &vm);
	rt_printf("vtx-main: shadow guest: #PF %u (filled %u, injected %u, emulated %u, host-fault %u, re-injected %u) "
		  "cr3-load %u cr3-store %u cr-write %u gp %u invlpg %u flush %u vmcall %u rdtsc %u hlt %u; "
		  "checks passed %lu/%u, failed mask 0x%lx\n",
		  n->pf_exit, n->pf_fixed, n->pf_injected, n->pf_emulated, n->pf_host_fault, n->reinjected,
		  n->cr3_load, n->cr3_store, n->cr_write, n->gp_injected, n->invlpg, n->shadow_flush, n->vmcall, n->rdtsc, n->hlt, vm.result_passed,
		  GD_SHADOW_CHECKS, vm.result_mask);
	ok2 = ok2 && vm.result_mask == 0 && vm.result_passed == GD_SHADOW_CHECKS;
	rt_heap_release(mark);
	return ok && ok2;
}
