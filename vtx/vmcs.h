/* vmcs.h: the VMCS fields, capability MSRs and control bits the driver uses, named as the SDM names them (vol. 3C ch. 25, appendices A and B). */
#ifndef VTX_VMCS_H
#define VTX_VMCS_H

#include <stdbool.h>
#include <stdint.h>

/* Field encodings (SDM vol. 3C appendix B). */
enum vmcs_field {
	/* 16-bit guest-state fields */
	GUEST_ES_SELECTOR = 0x0800, GUEST_CS_SELECTOR = 0x0802, GUEST_SS_SELECTOR = 0x0804,
	GUEST_DS_SELECTOR = 0x0806, GUEST_FS_SELECTOR = 0x0808, GUEST_GS_SELECTOR = 0x080A,
	GUEST_LDTR_SELECTOR = 0x080C, GUEST_TR_SELECTOR = 0x080E,
	/* 16-bit host-state fields */
	HOST_ES_SELECTOR = 0x0C00, HOST_CS_SELECTOR = 0x0C02, HOST_SS_SELECTOR = 0x0C04,
	HOST_DS_SELECTOR = 0x0C06, HOST_FS_SELECTOR = 0x0C08, HOST_GS_SELECTOR = 0x0C0A,
	HOST_TR_SELECTOR = 0x0C0C,
	/* 64-bit control, read-only and guest/host fields */
	EPT_POINTER = 0x201A,
	GUEST_PHYSICAL_ADDRESS = 0x2400,
	VMCS_LINK_POINTER = 0x2800, GUEST_IA32_DEBUGCTL = 0x2802, GUEST_IA32_EFER = 0x2806,
	GUEST_PDPTE0 = 0x280A, GUEST_PDPTE1 = 0x280C, GUEST_PDPTE2 = 0x280E, GUEST_PDPTE3 = 0x2810,
	HOST_IA32_EFER = 0x2C02,
	/* 32-bit control fields */
	PIN_BASED_VM_EXEC_CONTROL = 0x4000, PRIMARY_PROC_BASED_VM_EXEC_CONTROL = 0x4002,
	EXCEPTION_BITMAP = 0x4004, PAGE_FAULT_ERROR_CODE_MASK = 0x4006,
	PAGE_FAULT_ERROR_CODE_MATCH = 0x4008, CR3_TARGET_COUNT = 0x400A,
	VM_EXIT_CONTROLS = 0x400C, VM_EXIT_MSR_STORE_COUNT = 0x400E, VM_EXIT_MSR_LOAD_COUNT = 0x4010,
	VM_ENTRY_CONTROLS = 0x4012, VM_ENTRY_MSR_LOAD_COUNT = 0x4014,
	VM_ENTRY_INTERRUPTION_INFORMATION = 0x4016, VM_ENTRY_EXCEPTION_ERROR_CODE = 0x4018,
	VM_ENTRY_INSTRUCTION_LENGTH = 0x401A,
	SECONDARY_PROC_BASED_VM_EXEC_CONTROL = 0x401E,
	/* 32-bit read-only data fields */
	VM_INSTRUCTION_ERROR = 0x4400, EXIT_REASON = 0x4402,
	VM_EXIT_INTERRUPTION_INFORMATION = 0x4404, VM_EXIT_INTERRUPTION_ERROR_CODE = 0x4406,
	IDT_VECTORING_INFORMATION = 0x4408, IDT_VECTORING_ERROR_CODE = 0x440A,
	VM_EXIT_INSTRUCTION_LENGTH = 0x440C,
	/* 32-bit guest-state fields */
	GUEST_ES_LIMIT = 0x4800, GUEST_CS_LIMIT = 0x4802, GUEST_SS_LIMIT = 0x4804,
	GUEST_DS_LIMIT = 0x4806, GUEST_FS_LIMIT = 0x4808, GUEST_GS_LIMIT = 0x480A,
	GUEST_LDTR_LIMIT = 0x480C, GUEST_TR_LIMIT = 0x480E,
	GUEST_GDTR_LIMIT = 0x4810, GUEST_IDTR_LIMIT = 0x4812,
	GUEST_ES_ACCESS_RIGHTS = 0x4814, GUEST_CS_ACCESS_RIGHTS = 0x4816,
	GUEST_SS_ACCESS_RIGHTS = 0x4818, GUEST_DS_ACCESS_RIGHTS = 0x481A,
	GUEST_FS_ACCESS_RIGHTS = 0x481C, GUEST_GS_ACCESS_RIGHTS = 0x481E,
	GUEST_LDTR_ACCESS_RIGHTS = 0x4820, GUEST_TR_ACCESS_RIGHTS = 0x4822,
	GUEST_INTERRUPTIBILITY_STATE = 0x4824, GUEST_ACTIVITY_STATE = 0x4826,
	GUEST_IA32_SYSENTER_CS = 0x482A, HOST_IA32_SYSENTER_CS = 0x4C00,
	/* natural-width fields */
	CR0_GUEST_HOST_MASK = 0x6000, CR4_GUEST_HOST_MASK = 0x6002,
	CR0_READ_SHADOW = 0x6004, CR4_READ_SHADOW = 0x6006,
	EXIT_QUALIFICATION = 0x6400, GUEST_LINEAR_ADDRESS = 0x640A,
	GUEST_CR0 = 0x6800, GUEST_CR3 = 0x6802, GUEST_CR4 = 0x6804,
	GUEST_ES_BASE = 0x6806, GUEST_CS_BASE = 0x6808, GUEST_SS_BASE = 0x680A,
	GUEST_DS_BASE = 0x680C, GUEST_FS_BASE = 0x680E, GUEST_GS_BASE = 0x6810,
	GUEST_LDTR_BASE = 0x6812, GUEST_TR_BASE = 0x6814,
	GUEST_GDTR_BASE = 0x6816, GUEST_IDTR_BASE = 0x6818,
	GUEST_DR7 = 0x681A, GUEST_RSP = 0x681C, GUEST_RIP = 0x681E, GUEST_RFLAGS = 0x6820,
	GUEST_PENDING_DEBUG_EXCEPTIONS = 0x6822,
	GUEST_IA32_SYSENTER_ESP = 0x6824, GUEST_IA32_SYSENTER_EIP = 0x6826,
	HOST_CR0 = 0x6C00, HOST_CR3 = 0x6C02, HOST_CR4 = 0x6C04,
	HOST_FS_BASE = 0x6C06, HOST_GS_BASE = 0x6C08, HOST_TR_BASE = 0x6C0A,
	HOST_GDTR_BASE = 0x6C0C, HOST_IDTR_BASE = 0x6C0E,
	HOST_IA32_SYSENTER_ESP = 0x6C10, HOST_IA32_SYSENTER_EIP = 0x6C12,
	HOST_RSP = 0x6C14, HOST_RIP = 0x6C16,
};

/* VMX capability MSRs (SDM vol. 3C appendix A). */
#define MSR_IA32_VMX_BASIC            0x480
#define MSR_IA32_VMX_PINBASED_CTLS    0x481
#define MSR_IA32_VMX_PROCBASED_CTLS   0x482
#define MSR_IA32_VMX_EXIT_CTLS        0x483
#define MSR_IA32_VMX_ENTRY_CTLS       0x484
#define MSR_IA32_VMX_CR0_FIXED0       0x486
#define MSR_IA32_VMX_CR0_FIXED1       0x487
#define MSR_IA32_VMX_CR4_FIXED0       0x488
#define MSR_IA32_VMX_CR4_FIXED1       0x489
#define MSR_IA32_VMX_PROCBASED_CTLS2  0x48B
#define MSR_IA32_VMX_EPT_VPID_CAP     0x48C
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS  0x48D
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48E
#define MSR_IA32_VMX_TRUE_EXIT_CTLS      0x48F
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS     0x490

#define VMX_BASIC_TRUE_CTLS (1ull << 55) /* A.1: the TRUE_* MSRs exist */

/* IA32_FEATURE_CONTROL (SDM vol. 3C 24.7). */
#define FEATURE_CONTROL_LOCK        (1ull << 0)
#define FEATURE_CONTROL_VMXON_OUTSIDE_SMX (1ull << 2)

/* Primary processor-based controls (25.6.2, Table 25-6). */
#define CPU_HLT_EXITING          (1u << 7)
#define CPU_INVLPG_EXITING       (1u << 9)
#define CPU_RDTSC_EXITING        (1u << 12)
#define CPU_CR3_LOAD_EXITING     (1u << 15)
#define CPU_CR3_STORE_EXITING    (1u << 16)
#define CPU_UNCOND_IO_EXITING    (1u << 24)
#define CPU_ACTIVATE_SECONDARY   (1u << 31)
/* Secondary processor-based controls (Table 25-7). */
#define CPU2_ENABLE_EPT          (1u << 1)
#define CPU2_UNRESTRICTED_GUEST  (1u << 7)
/* VM-exit controls (25.7.1, Table 25-13). */
#define EXIT_HOST_ADDR_SPACE_SIZE (1u << 9)
#define EXIT_SAVE_IA32_EFER      (1u << 20)
#define EXIT_LOAD_IA32_EFER      (1u << 21)
/* VM-entry controls (25.8.1, Table 25-15). */
#define ENTRY_IA32E_MODE_GUEST   (1u << 9)
#define ENTRY_LOAD_IA32_EFER     (1u << 15)

/* IA32_VMX_EPT_VPID_CAP bits (A.10). */
#define EPT_CAP_EXEC_ONLY   (1ull << 0)
#define EPT_CAP_PWL4        (1ull << 6)
#define EPT_CAP_WB          (1ull << 14)
#define EPT_CAP_2M          (1ull << 16)
#define EPT_CAP_1G          (1ull << 17)
#define EPT_CAP_INVEPT      (1ull << 20)
#define EPT_CAP_AD          (1ull << 21)
#define EPT_CAP_ADV_INFO    (1ull << 22)
#define EPT_CAP_INVEPT_SINGLE (1ull << 25)
#define EPT_CAP_INVEPT_ALL  (1ull << 26)

/* Basic exit reasons (SDM vol. 3C appendix C). */
#define EXIT_REASON_EXCEPTION_NMI   0
#define EXIT_REASON_TRIPLE_FAULT    2
#define EXIT_REASON_CPUID           10
#define EXIT_REASON_HLT             12
#define EXIT_REASON_INVLPG          14
#define EXIT_REASON_RDTSC           16
#define EXIT_REASON_VMCALL          18
#define EXIT_REASON_CR_ACCESS       28
#define EXIT_REASON_IO              30
#define EXIT_REASON_INVALID_GUEST   33
#define EXIT_REASON_EPT_VIOLATION   48
#define EXIT_REASON_EPT_MISCONFIG   49

/* VM-entry / VM-exit interruption information (SDM vol. 3C 25.8.3, Table 25-17). */
#define INTR_INFO_VALID       (1u << 31)
#define INTR_INFO_DELIVER_ERR (1u << 11)
#define INTR_TYPE_HW_EXCEPTION (3u << 8)
#define INTR_INFO_VECTOR(i)   ((i) & 0xff)
#define INTR_INFO_TYPE(i)     (((i) >> 8) & 7)
#define INTR_INFO_NMI_UNBLOCK (1u << 12) /* VM-exit interruption information: NMI unblocking due to IRET (28.2.2) */
/* Fault-class exceptions (SDM vol. 3A 6.15, Table 6-1): all but #DB (fault
 * or trap), NMI, #BP and #OF (traps), #DF and #MC (aborts). */
#define EXC_FAULT_CLASS (~((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 8) | (1u << 18)))
#define VECTOR_UD 6
#define VECTOR_DF 8
#define VECTOR_GP 13
#define VECTOR_PF 14
#define VECTOR_AC 17
/* EPT-violation qualification bit 12: NMI unblocking due to IRET (28.2.1, Table 28-7). */
#define EPTQ_NMI_UNBLOCK (1ull << 12)

/* Guest interruptibility state (SDM vol. 3C 25.4.2, Table 25-3). */
#define INTR_BLOCK_STI    (1u << 0)
#define INTR_BLOCK_MOV_SS (1u << 1)
#define INTR_BLOCK_NMI    (1u << 3)
/* Pending debug exceptions (Table 25-4): BS, a single-step trap. */
#define PENDING_DBG_BS    (1ull << 14)
/* RFLAGS (vol. 3A 2.3) and IA32_DEBUGCTL (vol. 3A 18.4.1). */
#define RFLAGS_TF         (1ull << 8)
#define RFLAGS_RF         (1ull << 16)
#define DEBUGCTL_BTF      (1ull << 1)

/* The VMX backend: vmcs_x86_64.c on bare metal, vmx_soft.c (a plain C model
 * of the fields) for host-side tests. VMREAD / VMWRITE and the other VMX
 * instructions; a failing instruction stops the image with the VM-instruction error. */
uint64_t vmcs_read(enum vmcs_field f);
void vmcs_write(enum vmcs_field f, uint64_t v);
void vmx_on(uint64_t region_pa);
void vmcs_clear(uint64_t vmcs_pa);
void vmcs_load(uint64_t vmcs_pa);
void vmx_invept_all(void);
/* INVEPT type 1: the mappings derived from this EPTP (single context). */
void vmx_invept_single(uint64_t eptp);
/* CR2 is not part of the VMCS: neither VM entry nor VM exit loads it (SDM vol. 3C,
 * "Loading Guest Control Registers..."), so the VMM sets it before injecting a #PF. */
void vmx_set_guest_cr2(uint64_t cr2);
/* VPID off: flush the linear mappings of VPID 0 (a host MOV to CR3); the guest's shadow
 * translations are cached under VPID 0 too. */
void vmx_flush_vpid0(void);
/* The host's time-stamp counter (RDTSC). */
uint64_t vmx_host_tsc(void);

/* Guest general-purpose registers the entry stub loads and saves, indexed by
 * the x86 register number (the encoding exit qualifications use, Table 28-3);
 * rsp is in the VMCS (GUEST_RSP), its slot is unused. */
struct vtx_gprs {
	union {
		struct {
			uint64_t rax, rcx, rdx, rbx, rsp_unused, rbp, rsi, rdi;
			uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
		};
		uint64_t r[16];
	};
};
/* vmx_entry_x86_64.S: VMLAUNCH (resume 0) or VMRESUME; returns 0 after a VM
 * exit, 1 if the instruction failed (VM_INSTRUCTION_ERROR says why). */
int vmx_enter(struct vtx_gprs *g, int resume);

#endif
