/* vmx_baremetal_x86_64.c: VMX bring-up on bare metal (feature control, fixed CR bits, VMXON) and the VMCS of a small 64-bit guest. */
#include "vtx.h"
#include "rt.h"
#include "cpu_x86_64.h"
#include "layout.h"
#include "vm.h"

extern const uint8_t guest_code[], guest_code_end[];

/* Allowed-0 settings in bits 31:0, allowed-1 in bits 63:32 (SDM vol. 3C A.3). */
static uint32_t adjust(uint32_t msr, uint32_t want, uint32_t must)
{
	uint64_t cap = rdmsr(msr);
	uint32_t v = (want | (uint32_t)cap) & (uint32_t)(cap >> 32);
	if ((v & must) != must)
		rt_panic("VMX control not supported", msr, must & ~v);
	return v;
}

void vtx_vmx_init(struct vtx_caps *c)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	RT_ASSERT(r[2] & (1u << 5)); /* CPUID.1:ECX.VMX */
	cpuid(7, 0, r);
	c->smep = r[1] & (1u << 7);
	c->smap = r[1] & (1u << 20);
	c->pku = r[2] & (1u << 3);
	c->la57 = r[2] & (1u << 16);
	c->cpuid7_ebx = r[1];
	c->cpuid7_ecx = r[2];
	cpuid(0x80000001, 0, r);
	c->gbpages = r[3] & (1u << 26);
	c->nx = r[3] & (1u << 20);
	cpuid(0x80000008, 0, r);
	c->maxphyaddr = r[0] & 0xff;

	/* IA32_FEATURE_CONTROL: lock with VMXON outside SMX (SDM vol. 3C 24.7). */
	uint64_t fc = rdmsr(MSR_IA32_FEATURE_CONTROL);
	if (!(fc & FEATURE_CONTROL_LOCK)) {
		fc |= FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMXON_OUTSIDE_SMX;
		wrmsr(MSR_IA32_FEATURE_CONTROL, fc);
	}
	RT_ASSERT(fc & FEATURE_CONTROL_VMXON_OUTSIDE_SMX);

	c->basic = rdmsr(MSR_IA32_VMX_BASIC);
	c->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	c->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	c->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	c->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);

	/* CR0/CR4 fixed bits hold in VMX operation (SDM vol. 3C 24.8). */
	write_cr4(((read_cr4() | (1ull << 13)) | c->cr4_fixed0) & c->cr4_fixed1);
	write_cr0((read_cr0() | c->cr0_fixed0) & c->cr0_fixed1);

	bool tru = c->basic & VMX_BASIC_TRUE_CTLS;
	c->pin = adjust(tru ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS, 0, 0);
	c->proc = adjust(tru ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS,
			 CPU_HLT_EXITING | CPU_UNCOND_IO_EXITING | CPU_ACTIVATE_SECONDARY,
			 CPU_HLT_EXITING | CPU_ACTIVATE_SECONDARY);
	/* The guest switches CR3 itself: no CR3-load exiting (needs the TRUE MSR). */
	if (c->proc & (CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING))
		rt_panic("CR3 exiting cannot be cleared", c->proc, 0);
	uint64_t pcap = rdmsr(tru ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS);
	c->proc_may0 = (uint32_t)pcap;
	c->proc_may1 = (uint32_t)(pcap >> 32);
	c->proc2_may1 = (uint32_t)(rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32);
	c->proc2 = adjust(MSR_IA32_VMX_PROCBASED_CTLS2, CPU2_ENABLE_EPT, CPU2_ENABLE_EPT);
	c->exit = adjust(tru ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS,
			 EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER,
			 EXIT_HOST_ADDR_SPACE_SIZE | EXIT_LOAD_IA32_EFER);
	c->entry = adjust(tru ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS,
			  ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_IA32_EFER,
			  ENTRY_IA32E_MODE_GUEST | ENTRY_LOAD_IA32_EFER);
	c->ept_cap = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
	RT_ASSERT(c->ept_cap & EPT_CAP_PWL4);
	RT_ASSERT(c->ept_cap & EPT_CAP_WB);

	/* VMXON region: revision identifier in bits 30:0 (SDM vol. 3C 25.11.5). */
	uint32_t *vmxon = rt_alloc_page();
	uint32_t *vmcs = rt_alloc_page();
	RT_ASSERT(vmxon && vmcs);
	vmxon[0] = (uint32_t)c->basic & 0x7fffffff;
	vmcs[0] = (uint32_t)c->basic & 0x7fffffff;
	c->vmxon_pa = (uint64_t)(uintptr_t)vmxon;
	c->vmcs_pa = (uint64_t)(uintptr_t)vmcs;
	vmx_on(c->vmxon_pa);
}

uint64_t vtx_guest_rip(const void *stub)
{
	return GUEST_CODE_GPA + (uint64_t)((const uint8_t *)stub - guest_code);
}

void vtx_guest_c_init(void)
{
	uint8_t *c = (uint8_t *)(uintptr_t)GUEST_C_HPA;
	uint64_t n = (uint64_t)(guest_code_end - guest_code);
	RT_ASSERT(n <= 4096);
	memset(c + GUEST_CODE_GPA, 0xF4, 4096);
	memcpy(c + GUEST_CODE_GPA, guest_code, n);
	/* Linear 0x1000 -> GPA 0x1000 through 4 levels; accessed flags already set
	 * so that fetching the code changes nothing; the PTE is global so the code
	 * stays in the TLB across the guest's MOV to CR3. */
	uint64_t *pml4 = (uint64_t *)(c + GUEST_CR3A_GPA);
	memset(pml4, 0, 4 * 4096);
	pml4[0] = (GUEST_CR3A_GPA + 0x1000) | 0x23;
	pml4[512] = (GUEST_CR3A_GPA + 0x2000) | 0x23;
	pml4[1024] = (GUEST_CR3A_GPA + 0x3000) | 0x23;
	pml4[1536 + 1] = GUEST_CODE_GPA | 0x123; /* P, RW, A, G */
}

void vtx_vmcs_setup(const struct vtx_caps *c, const struct vtx_guest *g)
{
	vmcs_clear(c->vmcs_pa);
	vmcs_load(c->vmcs_pa);

	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, c->pin);
	/* Changed controls must stay within the allowed settings (SDM vol. 3C A.3). */
	uint32_t proc = (c->proc | g->proc_set) & ~g->proc_clear;
	uint32_t proc2 = c->proc2 & ~g->proc2_clear;
	RT_ASSERT((proc & c->proc_may1) == proc && (proc & c->proc_may0) == c->proc_may0);
	RT_ASSERT((proc2 & c->proc2_may1) == proc2);
	vmcs_write(PRIMARY_PROC_BASED_VM_EXEC_CONTROL, proc);
	vmcs_write(SECONDARY_PROC_BASED_VM_EXEC_CONTROL, proc2);
	vmcs_write(VM_EXIT_CONTROLS, c->exit);
	vmcs_write(VM_ENTRY_CONTROLS, g->legacy ? c->entry & ~ENTRY_IA32E_MODE_GUEST : c->entry);
	vmcs_write(EXCEPTION_BITMAP, 0xffffffff); /* every guest exception exits */
	vmcs_write(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmcs_write(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_INTERRUPTION_INFORMATION, 0);
	vmcs_write(CR0_GUEST_HOST_MASK, 0);
	vmcs_write(CR4_GUEST_HOST_MASK, 0);
	vmcs_write(CR0_READ_SHADOW, 0);
	vmcs_write(CR4_READ_SHADOW, 0);
	vmcs_write(EPT_POINTER, g->eptp);
	vmcs_write(VMCS_LINK_POINTER, ~0ull);

	/* Host state: the current long-mode state (SDM vol. 3C 26.2.3). */
	struct dtr gdtr, idtr;
	sgdt(&gdtr);
	sidt(&idtr);
	vmcs_write(HOST_CR0, read_cr0());
	vmcs_write(HOST_CR3, read_cr3());
	vmcs_write(HOST_CR4, read_cr4());
	vmcs_write(HOST_CS_SELECTOR, read_cs());
	vmcs_write(HOST_SS_SELECTOR, read_ss());
	vmcs_write(HOST_DS_SELECTOR, read_ds());
	vmcs_write(HOST_ES_SELECTOR, read_ds());
	vmcs_write(HOST_FS_SELECTOR, read_ds());
	vmcs_write(HOST_GS_SELECTOR, read_ds());
	vmcs_write(HOST_TR_SELECTOR, read_tr());
	vmcs_write(HOST_FS_BASE, 0);
	vmcs_write(HOST_GS_BASE, 0);
	vmcs_write(HOST_TR_BASE, (uint64_t)(uintptr_t)rt_tss);
	vmcs_write(HOST_GDTR_BASE, gdtr.base);
	vmcs_write(HOST_IDTR_BASE, idtr.base);
	vmcs_write(HOST_IA32_SYSENTER_CS, 0);
	vmcs_write(HOST_IA32_SYSENTER_ESP, 0);
	vmcs_write(HOST_IA32_SYSENTER_EIP, 0);
	vmcs_write(HOST_IA32_EFER, rdmsr(MSR_IA32_EFER));

	/* Guest state: flat 64-bit or 32-bit code at CPL 0 or 3 (SDM vol. 3C 26.3.1). */
	vmcs_write(GUEST_CR0, (g->cr0 | c->cr0_fixed0) & c->cr0_fixed1);
	vmcs_write(GUEST_CR3, g->cr3);
	vmcs_write(GUEST_CR4, (g->cr4 | c->cr4_fixed0) & c->cr4_fixed1);
	vmcs_write(GUEST_IA32_EFER, g->efer);
	static const enum vmcs_field pdpte[4] = { GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2, GUEST_PDPTE3 };
	for (unsigned i = 0; i < 4; i++)
		vmcs_write(pdpte[i], g->pdpte[i]);
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(GUEST_DR7, 0x400);
	vmcs_write(GUEST_RFLAGS, 0x2 | (g->ac ? 1u << 18 : 0));
	vmcs_write(GUEST_RSP, 0);
	vmcs_write(GUEST_RIP, g->rip);
	vmcs_write(GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 0);
	vmcs_write(GUEST_ACTIVITY_STATE, 0);
	vmcs_write(GUEST_IA32_SYSENTER_CS, 0);
	vmcs_write(GUEST_IA32_SYSENTER_ESP, 0);
	vmcs_write(GUEST_IA32_SYSENTER_EIP, 0);
	/* CPL is SS.DPL; CS.DPL = SS.DPL and SS.RPL = CS.RPL, data DPL >= RPL
	 * (26.3.1.2): every segment but TR and LDTR gets the CPL as DPL and RPL. */
	uint16_t rpl = (uint16_t)(g->cpl & 3);
	uint32_t dpl = rpl << 5, code = (g->legacy ? 0xc09b : 0xa09b) | dpl, data = 0xc093 | dpl;
	const struct { enum vmcs_field sel, base, limit, ar; uint16_t s; uint32_t a; } seg[] = {
		{ GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_ACCESS_RIGHTS, 0x08 | rpl, code },
		{ GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_ACCESS_RIGHTS, 0x10 | rpl, data },
		{ GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_ACCESS_RIGHTS, 0x10 | rpl, data },
		{ GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_ACCESS_RIGHTS, 0x10 | rpl, data },
		{ GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_ACCESS_RIGHTS, 0x10 | rpl, data },
		{ GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_ACCESS_RIGHTS, 0x10 | rpl, data },
		{ GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_ACCESS_RIGHTS, 0, 0x10000 },
		{ GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_ACCESS_RIGHTS, 0x18, 0x8b },
	};
	for (unsigned i = 0; i < sizeof(seg) / sizeof(seg[0]); i++) {
		vmcs_write(seg[i].sel, seg[i].s);
		vmcs_write(seg[i].base, 0);
		vmcs_write(seg[i].limit, seg[i].a == 0x8b ? 0x67 : seg[i].a == 0x10000 ? 0 : 0xffffffff);
		vmcs_write(seg[i].ar, seg[i].a);
	}
	vmcs_write(GUEST_GDTR_BASE, 0);
	vmcs_write(GUEST_GDTR_LIMIT, 0xffff);
	vmcs_write(GUEST_IDTR_BASE, 0);
	vmcs_write(GUEST_IDTR_LIMIT, 0xffff);
}

void vtx_run_vm(struct vtx_vm *vm, struct vtx_gprs *g, struct vtx_exit *e)
{
	int resume = 0;
	for (;;) {
		if (vmx_enter(g, resume))
			rt_panic("VM entry failed: VM-instruction error", vmcs_read(VM_INSTRUCTION_ERROR), 0);
		vtx_exit_read(e);
		if (!vtx_vm_dispatch(vm, e, g))
			return;
		resume = 1;
	}
}

void vtx_run(struct vtx_gprs *g, struct vtx_exit *e)
{
	vtx_run_vm(NULL, g, e);
}
