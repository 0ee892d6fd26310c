/* vtx.h: the thin VT-x driver: VMX bring-up, one guest's VMCS, running it, and the exit dispatcher. */
#ifndef VTX_VTX_H
#define VTX_VTX_H

#include <stdbool.h>
#include <stdint.h>
#include "vmcs.h"

/* What the processor offers, read once at bring-up. */
struct vtx_caps {
	uint64_t basic, ept_cap;
	uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
	uint32_t pin, proc, proc2, exit, entry; /* the controls, adjusted to the capability MSRs */
	uint32_t proc_may0, proc_may1, proc2_may1; /* allowed-0 and allowed-1 settings (A.3) */
	unsigned maxphyaddr;
	bool gbpages, smep, smap, nx, pku, la57;
	uint32_t cpuid7_ebx, cpuid7_ecx; /* CPUID.(EAX=7,ECX=0), printed as evidence of the model's features */
	uint64_t vmxon_pa, vmcs_pa;
};

/* Guest-physical layout of the control region (GPA 0..2M, backed at GUEST_C_HPA). */
#define GUEST_CODE_GPA 0x1000ull	/* guest_code is copied here; guest-linear = GPA */
#define GUEST_CR3A_GPA 0x2000ull	/* PML4 at 0x2000, PDPT 0x3000, PD 0x4000, PT 0x5000 */
#define GUEST_C_SIZE   0x200000ull

/* The guest's starting point and paging registers. */
struct vtx_guest {
	uint64_t cr0, cr3, cr4, efer; /* as wanted; vtx_vmcs_setup applies the fixed bits */
	uint64_t rip;
	uint64_t eptp;
	uint32_t proc_set, proc_clear, proc2_clear; /* control changes from the capabilities' defaults */
	bool legacy;      /* 32-bit code, "IA-32e mode guest" off (32-bit or PAE paging) */
	unsigned cpl;     /* 0 or 3: CS/SS (and data segments) get that DPL and RPL */
	bool ac;          /* EFLAGS.AC */
	uint64_t pdpte[4]; /* legacy with CR4.PAE: what VM entry loads (EPT on, SDM vol. 3C 27.3.2.4) */
};

/* One VM exit, as the VMCS reports it. */
struct vtx_exit {
	uint32_t reason;      /* basic exit reason, bits 15:0 */
	bool entry_failed;    /* bit 31: VM-entry failure */
	uint64_t qual, gpa, gla, rip;
	uint32_t intr_info, intr_err, instr_len;
	uint32_t idt_info, idt_err; /* IDT-vectoring information: the exit interrupted an event's delivery */
};

void vtx_vmx_init(struct vtx_caps *c);
/* Guest linear address of a stub in guest_x86_64.S. */
uint64_t vtx_guest_rip(const void *stub);
/* (Re)write guest code and the code's own page tables into the control region. */
void vtx_guest_c_init(void);
/* VMCLEAR, VMPTRLD and write every field for guest g. */
void vtx_vmcs_setup(const struct vtx_caps *c, const struct vtx_guest *g);
/* Enter the guest and dispatch exits until one the caller must see
 * (HLT, EPT violation/misconfiguration, exception, anything unexpected). */
void vtx_run(struct vtx_gprs *g, struct vtx_exit *e);
struct vtx_vm;
/* The same with a VM whose library objects handle paging exits (vm.h). */
void vtx_run_vm(struct vtx_vm *vm, struct vtx_gprs *g, struct vtx_exit *e);

/* exit.c */
void vtx_exit_read(struct vtx_exit *e);
/* Returns true when the exit was handled and the guest may resume. */
bool vtx_exit_dispatch(const struct vtx_exit *e, struct vtx_gprs *g);
const char *vtx_exit_name(uint32_t reason);

#endif
