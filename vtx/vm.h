/* vm.h: one guest as the driver sees it: the libvmem objects behind it (EPT or shadow paging, guest memory, dirty log), its virtual TSC, and the exit handlers that feed the library. */
#ifndef VTX_VM_H
#define VTX_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include <libvmem/ept_map.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>
#include "vtx.h"

enum vtx_paging { VTX_EPT = 0, VTX_SHADOW = 1 };

/* Hypercall ABI (VMCALL): number in RAX, arguments in RBX, RCX, RDX, result
 * in RAX. CPL 0 only: from CPL > 0 every call returns VTX_HC_ERROR and does nothing. */
#define VTX_HC_VERSION   0 /* -> VTX_HC_ABI */
#define VTX_HC_TRANSLATE 1 /* RBX = guest-linear address -> its guest-physical address, or ~0 */
#define VTX_HC_PRINT     2 /* RBX = guest-linear address, RCX = length (<= 256): printed -> 0 */
#define VTX_HC_DIRTY     3 /* harvest the dirty log -> pages written since the last harvest */
#define VTX_HC_RESULT    4 /* RBX = failed-check mask, RCX = checks passed: the guest's verdict -> 0 */
#define VTX_HC_ABI       0x00010000ull
#define VTX_HC_ERROR     (~0ull)

/* Virtual TSC: offset + (host TSC * mul) >> 32, never going backwards. */
#define VTX_TSC_OFFSET   (1ull << 40)
#define VTX_TSC_MUL      (1ull << 31) /* the guest's TSC runs at half the host's rate */

struct vtx_vm;
/* What the VMM does with an EPT violation the library does not resolve (an
 * access its mapping forbids): true = the guest may resume (the policy has
 * moved RIP on), false = stop. */
typedef bool (*vtx_violation_policy)(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);

struct vtx_vm_config {
	enum vtx_paging paging;
	const vmem_allocator *alloc;  /* NULL: libvmem's default */
	void *ram;                    /* host address of guest-physical 0 */
	uint64_t ram_hpa;             /* its host-physical address */
	uint64_t ram_size;            /* guest RAM [0, ram_size), read-write */
	uint64_t rom_gpa, rom_size;   /* within it, a read-only part (size 0: none) */
	uint64_t dirty_gpa, dirty_size; /* EPT: a range mapped up front and dirty-logged by write protection (size 0: none) */
	vmem_regs regs;               /* the guest's paging registers at entry */
	uint64_t cr4_fixed1;          /* IA32_VMX_CR4_FIXED1: the CR4 bits the processor supports in VMX operation */
	vtx_violation_policy policy;  /* NULL: vtx_policy_rom_discard */
};

/* What the library handled, by kind. */
struct vtx_counts {
	unsigned ept_violation, ept_mapped, ept_policy, ept_dirty_wp, ept_misconfig, invept;
	unsigned pf_exit, pf_fixed, pf_injected, pf_emulated, pf_host_fault, reinjected;
	unsigned cr3_load, cr3_store, invlpg, shadow_flush;
	unsigned cr_write, gp_injected; /* MOV to CR0/CR4, CLTS, LMSW emulated; #GP(0) injected for a MOV to CR */
	unsigned rdtsc, vmcall, cpuid, io, hlt;
};

struct vtx_vm {
	struct vtx_vm_config cfg;
	vmem_gmem *gmem;
	vmem_mmu *mmu;          /* the guest's own paging, for reading guest-linear memory */
	vmem_ept *ept;          /* VTX_EPT */
	vmem_dirty *dirty;      /* VTX_EPT with a dirty range */
	vmem_shadow *sh;        /* VTX_SHADOW */
	uint64_t tsc_last;      /* last virtual TSC returned */
	uint64_t pending_cr2;   /* CR2 of the #PF being injected (re-set on re-injection) */
	uint64_t result_mask, result_passed; /* VTX_HC_RESULT */
	bool result_seen;
	struct vtx_counts n;
};

/* vm.c */
vmem_err vtx_vm_init(struct vtx_vm *vm, const struct vtx_vm_config *cfg);
void vtx_vm_fini(struct vtx_vm *vm);
/* The VMCS fields paging decides: GUEST_CR3 (the shadow root in shadow mode), EPT_POINTER. */
void vtx_vm_load_paging(struct vtx_vm *vm);
/* The guest's paging registers now (EPT: from the VMCS; shadow: the engine's). */
void vtx_vm_guest_regs(struct vtx_vm *vm, vmem_regs *r);
/* Translate a guest-linear address with the guest's own tables (no A/D writes). */
vmem_err vtx_vm_translate(struct vtx_vm *vm, uint64_t la, uint64_t *gpa);
/* Read guest-linear memory (may cross pages). */
vmem_err vtx_vm_read_linear(struct vtx_vm *vm, uint64_t la, void *buf, size_t len);
/* Deliver a hardware exception at the next VM entry (SDM vol. 3C 27.6, event injection). */
void vtx_vm_inject(struct vtx_vm *vm, unsigned vector, bool has_err, uint32_t err, uint64_t cr2);

/* decode_x86_64.c: the one store the driver finishes or drops itself:
 * MOV r/m, reg (opcode 89, optional REX) with a register-indirect memory operand
 * (no SIB, no RIP-relative). Returns the length (0: not that instruction). */
struct vtx_mov_store {
	unsigned len;  /* instruction bytes */
	unsigned src;  /* register number of the value stored */
	unsigned size; /* 4 or 8 (REX.W) */
	unsigned base; /* register number of the memory operand's base (ModR/M.rm, REX.B) */
	int32_t disp;  /* its displacement (disp8 or disp32, sign-extended; 0 without) */
	bool code64;   /* 64-bit code: 64-bit addresses; else 32-bit, DS-relative */
};
unsigned vtx_decode_mov_store(const uint8_t *insn, size_t n, bool code64, struct vtx_mov_store *out);
/* The linear address the decoded MOV stores to (SDM vol. 3A 3.7.5): base
 * register + displacement, in 64-bit code (segment bases ignored, 3.2.4) as
 * 64 bits, else 32 bits plus the DS base (SS for an EBP base, 3.7.4),
 * wrapping at 4 GiB. */
uint64_t vtx_mov_store_la(const struct vtx_mov_store *m, const struct vtx_gprs *g);
/* Whether the fault at linear address la was this MOV's own store: its first
 * byte (a store whose first page faults reports its start; one whose second
 * page faults reports that page's start, which the VMM does not finish). A
 * different address means the instruction at RIP is not the one that
 * faulted (another vCPU rewrote it, or a different access faulted): the VMM
 * must not complete it. */
bool vtx_mov_store_is_fault(const struct vtx_mov_store *m, const struct vtx_gprs *g, uint64_t la);
/* The MOV store at rip (64-bit code: the linear address; else CS.base +
 * EIP), read through the guest's paging (at most 15 bytes, the longest
 * instruction, not past its page) and decoded
 * as the code segment's mode reads it: 64-bit or 32-bit code; 16-bit code
 * (16-bit ModR/M and operands) is refused. */
bool vtx_vm_fetch_mov_store(struct vtx_vm *vm, uint64_t rip, struct vtx_mov_store *out);

/* The CR0/CR4 bits the VMM owns (guest/host masks, SDM vol. 3C 25.6.6):
 * shadow mode: those the shadow engine reads (PE, NW, CD, PG, WP; PSE, PAE,
 * PGE, LA57, PCIDE, SMEP, SMAP, PKE, PKS); both modes: CR4.VMXE, which VMX
 * operation fixes to 1 (24.8) but the guest, not offered VMX, sees as 0,
 * and the other CR4 bits of features not offered (SMXE, PKS): reserved for
 * the guest, so its MOV setting one must exit and #GP. */
#define VTX_CR4_VMXE (1ull << 13)
uint64_t vtx_vm_cr0_mask(const struct vtx_vm *vm);
uint64_t vtx_vm_cr4_mask(const struct vtx_vm *vm);
/* CR4 bits the guest may set: the processor's, less what is not offered to
 * it (VMXE, SMXE, PKS); the others are reserved: a MOV that sets one #GPs. */
uint64_t vtx_vm_cr4_allowed(const struct vtx_vm *vm);

/* The guest's CR4 as it reads it (owned bits from the read shadow); vm NULL: GUEST_CR4. */
uint64_t vtx_guest_cr4(const struct vtx_vm *vm);
/* exit_cpuid.c: CPUID as the guest sees it. */
void vtx_cpuid(struct vtx_vm *vm, uint32_t leaf, uint32_t sub, uint32_t r[4]);
/* What vtx_cpuid does to the host's answer r. */
void vtx_cpuid_filter(struct vtx_vm *vm, uint32_t leaf, uint32_t sub, uint32_t r[4]);

/* General-purpose register n as exit qualifications number them (Table 28-3): RSP lives in the VMCS. */
uint64_t vtx_gpr_get(const struct vtx_gprs *g, unsigned n);
void vtx_gpr_set(struct vtx_gprs *g, unsigned n, uint64_t v);

/* The handlers (exit_*.c): true = resume the guest. */
bool vtx_exit_ept_violation(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_ept_misconfig(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_exception(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_cr_access(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_invlpg(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_rdtsc(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
bool vtx_exit_vmcall(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
/* The default policy: the guest wrote to its read-only memory ("ROM"): the
 * write is dropped (a decoded MOV store is skipped), anything else stops. */
bool vtx_policy_rom_discard(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);
/* EPT mode: honour what a table change requires (INVEPT single-context, then release freed tables). */
void vtx_ept_flush(struct vtx_vm *vm, const vmem_ept_flush *fl);
/* Shadow mode: honour vmem_shadow_take_flush before the guest runs again. */
void vtx_shadow_flush(struct vtx_vm *vm);
/* Skip the instruction that caused the exit (VM-exit instruction length). */
void vtx_skip_instruction(const struct vtx_exit *e);
/* The instruction at the exit's RIP, len bytes, completed by the VMM: RIP
 * moved past it, blocking by STI / MOV SS and RFLAGS.RF cleared, a
 * single-step trap made pending when RFLAGS.TF is set. */
void vtx_complete_instruction(const struct vtx_exit *e, unsigned len);

/* demo.c: the main job's two guests; true when every check passed. */
bool vtx_demo(const struct vtx_caps *c);

/* exit.c: dispatch one exit; vm may be NULL (only CPUID, VMCALL, OUT to 0xE9 are handled then). */
bool vtx_vm_dispatch(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g);

#endif
