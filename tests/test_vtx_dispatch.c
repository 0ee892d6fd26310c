/* The VT-x exit dispatcher on the host (vtx/vmx_soft.c backend): EPT violations mapped on demand, dirty-log INVEPT, a shadow #PF injected with the SDM's error code, a monotonic virtual TSC, the translate hypercall, events re-injected or stopped after an exit during their delivery, the ROM policy, the MOV decoder at its edges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "vm.h"
#include "vmx_soft.h"
#include "guest_demo.h"

static uint8_t *ram;

/* IA32_VMX_CR4_FIXED1 of Bochs' corei7_icelake_u (docs/vtx.md): bits 11:0,
 * VMXE (13), FSGSBASE, PCIDE, OSXSAVE (18:16), SMEP, SMAP, PKE (22:20). */
#define CR4_FIXED1_ICELAKE 0x772fffull

/* Guest RAM with identity tables at GD_CR3A, as demo.c builds them. */
static void build_ram(void)
{
	ram = aligned_alloc(4096, GD_RAM_SIZE);
	assert_non_null(ram);
	memset(ram, 0, GD_RAM_SIZE);
	uint64_t *t = (uint64_t *)(ram + GD_CR3A);
	t[0] = (GD_CR3A + 0x1000) | 3;
	t[512] = (GD_CR3A + 0x2000) | 3;
	t[1024] = (GD_CR3A + 0x3000) | 3;
	for (uint64_t i = 1; i < 512; i++)
		t[1536 + i] = (i << 12) | 3;
	t[1536 + (GD_NP_LA >> 12)] = 0;                  /* a hole */
	t[1536 + (GD_ALIAS_LA >> 12)] = GD_ALIAS_GPA | 3; /* an alias */
}

static void vm_new(struct vtx_vm *vm, enum vtx_paging p)
{
	vmx_soft_reset();
	build_ram();
	struct vtx_vm_config cfg = {
		.paging = p, .ram = ram, .ram_hpa = (uint64_t)(uintptr_t)ram, .ram_size = GD_RAM_SIZE,
		.rom_gpa = GD_ROM, .rom_size = GD_ROM_SIZE,
		.dirty_gpa = GD_DIRTY, .dirty_size = p == VTX_EPT ? GD_DIRTY_SIZE : 0,
		.cr4_fixed1 = CR4_FIXED1_ICELAKE,
	};
	vmem_regs_init(&cfg.regs);
	cfg.regs.cr0 = 0x80010033, cfg.regs.cr3 = GD_CR3A, cfg.regs.cr4 = 0xa0, cfg.regs.efer = 0xd00;
	assert_int_equal(vtx_vm_init(vm, &cfg), VMEM_OK);
	vmcs_write(GUEST_CR0, cfg.regs.cr0);
	vmcs_write(GUEST_CR3, cfg.regs.cr3);
	vmcs_write(GUEST_CR4, 0x20a0);
	vmcs_write(GUEST_IA32_EFER, cfg.regs.efer);
	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xa09b); /* 64-bit code: CS.L = 1 */
	vtx_vm_load_paging(vm);
}

static void vm_del(struct vtx_vm *vm)
{
	vtx_vm_fini(vm);
	free(ram);
}

/* The exit interrupted the delivery of an event (IDT-vectoring information
 * idt, SDM vol. 3C 28.2.4): as exit_now, with that field set. */
static bool exit_during(struct vtx_vm *vm, struct vtx_gprs *g, uint32_t reason, uint64_t qual, uint64_t gpa,
			uint32_t len, uint32_t info, uint32_t err, uint32_t idt)
{
	vmx_soft_exit(reason, qual, gpa, 0x1000, len, info, err);
	vmcs_write(IDT_VECTORING_INFORMATION, idt);
	vmcs_write(IDT_VECTORING_ERROR_CODE, 0);
	struct vtx_exit e;
	vtx_exit_read(&e);
	return vtx_vm_dispatch(vm, &e, g);
}

static bool exit_now(struct vtx_vm *vm, struct vtx_gprs *g, uint32_t reason, uint64_t qual, uint64_t gpa,
		     uint32_t len, uint32_t info, uint32_t err)
{
	return exit_during(vm, g, reason, qual, gpa, len, info, err, 0);
}

/* VM-exit interruption information of a #PF exit: valid, error code,
 * hardware exception, vector 14 (SDM vol. 3C 25.8.3). */
#define PF_EXIT_INFO (INTR_INFO_VALID | INTR_INFO_DELIVER_ERR | INTR_TYPE_HW_EXCEPTION | VECTOR_PF)

/* A write to a fresh page (qualification: write, GLA valid, final translation,
 * no rights: 0x182) maps it R/W/X to its RAM; not-present -> present needs no
 * INVEPT. A write to a dirty-logged page is logged; the harvest that takes
 * the write right away again must INVEPT this EPTP (SDM vol. 3C 29.4.3.1). */
static void ept_violation_maps(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x182, GD_DATA + 8, 0, 0, 0));
	uint64_t leaf;
	unsigned level;
	assert_int_equal(vmem_ept_lookup(vm.ept, GD_DATA, &leaf, &level), VMEM_OK);
	assert_int_equal(level, 1);
	assert_int_equal(leaf & 7, 7);
	assert_int_equal(leaf & 0x000ffffffffff000ull, (uint64_t)(uintptr_t)ram + GD_DATA);
	assert_int_equal(vmx_soft.invept_single, 0);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000); /* the access is retried */

	/* ROM: read maps it without W; a write then goes to the policy, which needs a MOV it can decode. */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x181, GD_ROM, 0, 0, 0));
	assert_int_equal(vmem_ept_lookup(vm.ept, GD_ROM, &leaf, &level), VMEM_OK);
	assert_int_equal(leaf & 7, 5);
	memcpy(ram + 0x1000, "\x48\x89\x07", 3); /* mov %rax, (%rdi) at linear 0x1000 */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x18a, GD_ROM, 0, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vm.n.ept_policy, 1);

	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_DIRTY + 0x1008, 0, 0, 0));
	assert_int_equal(vm.n.ept_dirty_wp, 1);
	g.rax = VTX_HC_DIRTY;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, 1);
	assert_int_equal(vmx_soft.invept_single, 1);
	assert_int_equal(vmx_soft.invept_eptp, vmem_ept_eptp(vm.ept));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	vm_del(&vm);
}

/* Shadow mode: a write to a not-present page (hardware error code W = 0x2 on
 * the shadow) that the guest's tables do not map either: #PF injected with
 * error code 0x2 (not present, write, supervisor: SDM vol. 3A 4.7), CR2 = the
 * address, interruption information 0x80000b0e (valid, deliver error code,
 * hardware exception, vector 14: SDM vol. 3C 25.8.3). */
static void shadow_pf_injected(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_gprs g = { .rax = 0 };
	uint32_t info = INTR_INFO_VALID | INTR_INFO_DELIVER_ERR | INTR_TYPE_HW_EXCEPTION | VECTOR_PF;
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_NP_LA + 0x10, 0, 0, info, 0x2));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0e);
	assert_int_equal(vmcs_read(VM_ENTRY_EXCEPTION_ERROR_CODE), 0x2);
	assert_int_equal(vmx_soft.cr2, GD_NP_LA + 0x10);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000); /* a fault: RIP stays on the instruction */
	/* A mapped page: filled, nothing injected. */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, info, 0x2));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	assert_int_equal(vm.n.pf_fixed, 1);
	/* MOV to CR3 from RBX (qualification: CR 3, type 0, register 3): the root follows, RIP moves on. */
	g.rbx = GD_CR3A;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, 0x303, 0, 3, 0, 0));
	assert_int_equal(vmcs_read(GUEST_CR3), vmem_shadow_root(vm.sh));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	vm_del(&vm);
}

/* RDTSC: 2^40 + host/2 in EDX:EAX, RIP + 2; a host TSC going backwards never makes the guest's go back. */
static void rdtsc_monotonic(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = ~0ull, .rdx = ~0ull };
	vmx_soft.tsc = 0x300000000ull;
	assert_true(exit_now(&vm, &g, EXIT_REASON_RDTSC, 0, 0, 2, 0, 0));
	uint64_t v1 = (g.rdx << 32) | g.rax;
	assert_int_equal(g.rdx >> 32, 0);
	assert_int_equal(v1, (1ull << 40) + 0x180000000ull);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1002);
	vmx_soft.tsc = 0x100;
	assert_true(exit_now(&vm, &g, EXIT_REASON_RDTSC, 0, 0, 2, 0, 0));
	uint64_t v2 = (g.rdx << 32) | g.rax;
	assert_true(v2 > v1);
	vm_del(&vm);
}

/* VMCALL 1: the guest's own tables map GD_ALIAS_LA to GD_ALIAS_GPA. */
static void vmcall_translate(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = VTX_HC_TRANSLATE, .rbx = GD_ALIAS_LA + 0x123 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, GD_ALIAS_GPA + 0x123);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	g.rax = VTX_HC_TRANSLATE, g.rbx = GD_NP_LA;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, VTX_HC_ERROR);
	g.rax = VTX_HC_VERSION;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, VTX_HC_ABI);
	vm_del(&vm);
}

/* INT 0x30 (CD 30, two bytes) at RIP 0x1000 reads IDT entry 0x30 at linear
 * 0x6300; that page is not mapped yet (EPT: mapped on demand; shadow: not
 * filled), so delivery exits with IDT-vectoring information 0x80000430
 * (valid, type 4 software interrupt, vector 0x30: SDM vol. 3C 28.2.4) and
 * the INT's length, 2, in the VM-exit instruction length (28.2.5: faults
 * during delivery of a software interrupt). Once mapped, the VMM re-injects
 * the same event: VM-entry interruption information 0x80000430 and VM-entry
 * instruction length 2, so that the return address pushed is RIP + 2
 * (25.8.3); RIP stays on the INT. */
static void reinject_software_interrupt(void **state)
{
	(void)state;
	struct vtx_vm vm;
	struct vtx_gprs g = { .rax = 0 };
	uint32_t idt = INTR_INFO_VALID | (4u << 8) | 0x30;
	vm_new(&vm, VTX_EPT);
	/* EPT qualification 0x181: read, GLA valid, final translation, no rights. */
	assert_true(exit_during(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x181, GD_IDT + 0x300, 2, 0, 0, idt));
	assert_int_equal(vm.n.ept_mapped, 1);
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000430);
	assert_int_equal(vmcs_read(VM_ENTRY_INSTRUCTION_LENGTH), 2);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_int_equal(vm.n.reinjected, 1);
	vm_del(&vm);

	vm_new(&vm, VTX_SHADOW);
	/* Hardware error code 0 on the shadow: not present, read, supervisor. */
	assert_true(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_IDT + 0x300, 0, 2, PF_EXIT_INFO, 0, idt));
	assert_int_equal(vm.n.pf_fixed, 1);
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000430);
	assert_int_equal(vmcs_read(VM_ENTRY_INSTRUCTION_LENGTH), 2);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	vm_del(&vm);
}

/* Shadow mode, a #PF exit while the processor was delivering a #GP(0)
 * (IDT-vectoring information 0x80000b0d: valid, error code, hardware
 * exception, vector 13). What the engine would do next is not modelled
 * during delivery, so the VMM must stop the guest (dispatch false) with
 * nothing injected, never abort:
 * - GD_NP_LA is not present in the guest's tables: a guest #PF during the
 *   delivery of a contributory exception is a #DF (SDM vol. 3A 6.15, Table 6-5);
 * - a push onto a "stack" in the ROM slot (error code 3: present, write):
 *   the guest's tables allow it, the host slot does not (the VMM's policy);
 * - a push onto the guest's own page table GD_PT_A (made a table by the
 *   first fill): a page-table write to emulate. */
static void shadow_fault_in_delivery_stops(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_gprs g = { .rax = 0 };
	uint32_t pf = PF_EXIT_INFO;
	uint32_t gp = INTR_INFO_VALID | INTR_INFO_DELIVER_ERR | INTR_TYPE_HW_EXCEPTION | 13;
	assert_false(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_NP_LA, 0, 0, pf, 0x2, gp));
	assert_false(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_ROM + 0xff8, 0, 0, pf, 0x3, gp));
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, pf, 0x2));
	assert_false(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_PT_A + 0xff8, 0, 0, pf, 0x3, gp));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	assert_int_equal(vm.n.pf_injected + vm.n.pf_emulated + vm.n.pf_host_fault, 0);
	vm_del(&vm);
}

/* The ROM policy drops the guest's own MOV store (48 89 07 at RIP) and
 * nothing else. Writes to GD_ROM (EPT rights r-x, so qualification bits 3
 * and 5) it must not drop, RIP staying on the MOV and the guest stopped:
 * - qualification 0xaa (write, GLA valid, bit 8 clear): the processor
 *   setting an accessed/dirty flag in a guest paging structure placed in
 *   the ROM (SDM vol. 3C 28.2.1, Table 28-7), not the MOV's store, which
 *   may target writable RAM;
 * - qualification 0x1aa during the delivery of INT 0x30 (IDT-vectoring
 *   information 0x80000430, 28.2.4): the processor pushing the event's
 *   frame onto a stack in the ROM. */
static void rom_policy_only_the_mov(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	memcpy(ram + 0x1000, "\x48\x89\x07", 3); /* mov %rax, (%rdi) at linear 0x1000 */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x181, GD_ROM, 0, 0, 0));
	assert_false(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0xaa, GD_ROM + 0x20, 0, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_false(exit_during(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_ROM + 0xff8, 2, 0, 0,
				 INTR_INFO_VALID | (4u << 8) | 0x30));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	/* The MOV's own store (0x1aa, no event): dropped, RIP past it. */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_ROM + 0x10, 0, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	vm_del(&vm);
}

static unsigned decode(const char *bytes, size_t n, struct vtx_mov_store *m)
{
	memset(m, 0xa5, sizeof(*m));
	return vtx_decode_mov_store((const uint8_t *)bytes, n, true, m);
}

/* MOV r/m, reg (89 /r) by hand (SDM vol. 2A 2.1.5 Table 2-2, 2.2.1 REX):
 * 48 89 07: REX.W, ModR/M 07 = mod 00 reg 000 (RAX) rm 111 ([RDI]) -> 3 bytes, RAX, 8;
 * 4c 89 47 08: REX.W+R, ModR/M 47 = mod 01 (disp8) reg 000 -> 4 bytes, R8, 8;
 * 89 87 + disp32: mod 10 -> 6 bytes, EAX, 4. Refused: a SIB (rm 100),
 * RIP-relative (mod 00 rm 101), a register destination (mod 11), any
 * legacy prefix, another opcode, and every instruction longer than the
 * bytes given (the decoder must not look past n). The fetch reads at most
 * to the end of RIP's page: a MOV in the last 3 bytes of guest RAM (a heap
 * block of exactly its size: one byte read past it is a memcheck error)
 * decodes; one whose disp8 would be the first byte past RAM does not. */
static void decode_mov_store_edges(void **state)
{
	(void)state;
	struct vtx_mov_store m;
	assert_int_equal(decode("\x48\x89\x07", 3, &m), 3);
	assert_int_equal(m.len, 3), assert_int_equal(m.src, 0), assert_int_equal(m.size, 8);
	assert_int_equal(decode("\x4c\x89\x47\x08", 4, &m), 4);
	assert_int_equal(m.src, 8), assert_int_equal(m.size, 8);
	assert_int_equal(decode("\x89\x87\x00\x10\x00\x00", 6, &m), 6);
	assert_int_equal(m.src, 0), assert_int_equal(m.size, 4);
	assert_int_equal(decode("\x89\x04\x24", 3, &m), 0);
	assert_int_equal(decode("\x89\x05\x00\x00\x00\x00", 6, &m), 0);
	assert_int_equal(decode("\x89\xc0", 2, &m), 0);
	assert_int_equal(decode("\x66\x89\x07", 3, &m), 0);
	assert_int_equal(decode("\x48\x48\x89\x07", 4, &m), 0);
	assert_int_equal(decode("\x8b\x07", 2, &m), 0);
	assert_int_equal(decode("\x48\x89\x47", 3, &m), 0);
	assert_int_equal(decode("\x89\x87\x00\x10\x00", 5, &m), 0);
	assert_int_equal(decode("\x48\x89", 2, &m), 0);
	assert_int_equal(decode("\x48", 1, &m), 0);
	assert_int_equal(decode("", 0, &m), 0);

	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	memcpy(ram + GD_RAM_SIZE - 3, "\x48\x89\x07", 3);
	assert_true(vtx_vm_fetch_mov_store(&vm, GD_RAM_SIZE - 3, &m));
	assert_int_equal(m.len, 3);
	memcpy(ram + GD_RAM_SIZE - 3, "\x48\x89\x47", 3);
	assert_false(vtx_vm_fetch_mov_store(&vm, GD_RAM_SIZE - 3, &m));
	/* Past RAM, and a non-canonical RIP: nothing to read, nothing decoded. */
	assert_false(vtx_vm_fetch_mov_store(&vm, GD_RAM_SIZE, &m));
	assert_false(vtx_vm_fetch_mov_store(&vm, 0x0000800000000000ull, &m));
	vm_del(&vm);
}

/* The VMM finishing an instruction for the guest must leave the state the
 * instruction's completion leaves (what KVM's skip and Xen's
 * update_guest_eip do):
 * - blocking by STI and by MOV SS last until the guest "executes one
 *   instruction" (SDM vol. 3C 27.7.1, Table 25-3): after CPUID completes
 *   they are gone; blocking by NMI (bit 3) is not about instructions and stays;
 * - RFLAGS.RF is cleared when an instruction completes (vol. 3A 18.3.1.1):
 *   0x10202 (RF, IF, bit 1) -> 0x202;
 * - with RFLAGS.TF = 1 (and IA32_DEBUGCTL.BTF = 0) the completed instruction
 *   ends in a single-step trap: pending debug exception BS (bit 14 of the
 *   pending debug exceptions field, Table 25-4), which VM entry delivers as a
 *   #DB with DR6.BS (27.7.3). Left out, "STI; VMCALL" with TF = 1 would not even
 *   enter: with blocking by STI, BS must be 1 when TF = 1 and BTF = 0 (27.3.1.5);
 * - with BTF = 1, TF traps on branches only: CPUID is none, no BS;
 * - the same for a store the ROM policy drops (RIP moved by the decoded length). */
static void skip_completes_instruction(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 1 | 8);
	vmcs_write(GUEST_RFLAGS, 0x10202);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CPUID, 0, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1002);
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 8);
	assert_int_equal(vmcs_read(GUEST_RFLAGS), 0x202);
	assert_int_equal(vmcs_read(GUEST_PENDING_DEBUG_EXCEPTIONS), 0);

	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 1);
	vmcs_write(GUEST_RFLAGS, 0x302); /* TF, IF */
	g.rax = VTX_HC_VERSION;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 0);
	assert_int_equal(vmcs_read(GUEST_RFLAGS), 0x302);
	assert_int_equal(vmcs_read(GUEST_PENDING_DEBUG_EXCEPTIONS), 1u << 14);

	vmcs_write(GUEST_PENDING_DEBUG_EXCEPTIONS, 0);
	vmcs_write(GUEST_IA32_DEBUGCTL, 2); /* BTF */
	assert_true(exit_now(&vm, &g, EXIT_REASON_CPUID, 0, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_PENDING_DEBUG_EXCEPTIONS), 0);
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);

	memcpy(ram + 0x1000, "\x48\x89\x07", 3); /* mov %rax, (%rdi) at linear 0x1000 */
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x181, GD_ROM, 0, 0, 0));
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 2);
	vmcs_write(GUEST_RFLAGS, 0x10302);
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_ROM, 0, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 0);
	assert_int_equal(vmcs_read(GUEST_RFLAGS), 0x302);
	assert_int_equal(vmcs_read(GUEST_PENDING_DEBUG_EXCEPTIONS), 1u << 14);
	vm_del(&vm);
}

/* Shadow mode: the processor runs the guest on the shadow root, so GUEST_CR3
 * is the root, not the guest's CR3; without "CR3-store exiting" a MOV from
 * CR3 returns it (SDM vol. 3C 26.1.3: MOV from CR3 exits iff that control is
 * 1; there is no CR3 read shadow). The VMM sets the control and answers the
 * exit: qualification 0x313 = CR 3, access type 1 (MOV from CR), register 3
 * (RBX) (Table 28-3) -> RBX = the guest's CR3, GD_CR3A; 0x413: register 4,
 * RSP, which lives in GUEST_RSP. RIP moves past the 3-byte MOV. */
static void shadow_mov_from_cr3(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_gprs g = { .rbx = ~0ull };
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, 0x313, 0, 3, 0, 0));
	assert_int_equal(g.rbx, GD_CR3A);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	vmcs_write(GUEST_RSP, 0x9000);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, 0x413, 0, 3, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RSP), GD_CR3A);
	assert_int_not_equal(vmcs_read(GUEST_CR3), GD_CR3A); /* the processor's CR3 is the shadow root */
	vm_del(&vm);
}

/* Shadow mode: the processor must run the guest with the engine's registers
 * (shadow.h, vmem_shadow_host_regs: CR0.WP = 1 so that write protection of
 * guest page tables and read-only slots holds for supervisor writes too; the
 * guest's CR4.SMEP/SMAP, PAE/PGE/PSE/PKE the engine's role was built for).
 * A CR0/CR4 bit clear in the guest/host mask belongs to the guest: its MOV to
 * CR0/CR4 writes it without an exit (SDM vol. 3C 25.6.6, 26.1.3), e.g. CR0.WP
 * = 0 and the guest's supervisor stores go through the shadow's read-only
 * entries to the "ROM". So the VMM owns them: CR0 mask has WP (bit 16) and
 * PG (31); CR4 mask has PSE (4), PAE (5), PGE (7), VMXE (13: VMX is not
 * offered to the guest), SMEP (20), SMAP (21), PKE (22); the read shadows
 * hold the guest's values (0x80010033, 0xa0), which a guest MOV from CR0/CR4
 * returns for owned bits (26.3). The processor's own registers hold the
 * engine's bits: GUEST_CR0 = (0x80010033 & ~mask) | PE|WP|PG = 0x80010033,
 * GUEST_CR4 = PAE | VMXE (fixed to 1 in VMX operation, 24.8) = 0x2020. */
static void shadow_owns_paging_bits(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	uint64_t cr0_own = (1ull << 16) | (1ull << 31);
	uint64_t cr4_own = (1ull << 4) | (1ull << 5) | (1ull << 7) | (1ull << 13) | (1ull << 20) | (1ull << 21) |
			   (1ull << 22);
	assert_int_equal(vmcs_read(CR0_GUEST_HOST_MASK) & cr0_own, cr0_own);
	assert_int_equal(vmcs_read(CR4_GUEST_HOST_MASK) & cr4_own, cr4_own);
	assert_int_equal(vmcs_read(CR0_READ_SHADOW) & cr0_own, 0x80010033 & cr0_own);
	assert_int_equal(vmcs_read(CR4_READ_SHADOW) & cr4_own, 0xa0 & cr4_own);
	assert_int_equal(vmcs_read(GUEST_CR0), 0x80010033);
	assert_int_equal(vmcs_read(GUEST_CR4), 0x2020);
	vm_del(&vm);
}

/* A MOV to CR exit whose emulation must fault: #GP(0) is injected (VM-entry
 * interruption information 0x80000b0d: valid, deliver error code, hardware
 * exception, vector 13, SDM vol. 3C 25.8.3; error code 0), RIP stays on the
 * MOV (a fault), and the guest's registers are those before. */
static void assert_gp_injected(struct vtx_vm *vm, const vmem_regs *before)
{
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0d);
	assert_int_equal(vmcs_read(VM_ENTRY_EXCEPTION_ERROR_CODE), 0);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	const vmem_regs *r = vmem_shadow_regs(vm->sh);
	assert_int_equal(r->cr0, before->cr0);
	assert_int_equal(r->cr3, before->cr3);
	assert_int_equal(r->cr4, before->cr4);
}

/* MOV to CR qualification (SDM vol. 3C 28.2.1, Table 28-3): bits 3:0 the
 * control register, 5:4 access type (0 MOV to CR), 11:8 the source register. */
#define QUAL_MOV_TO(cr, reg) ((uint64_t)(cr) | ((uint64_t)(reg) << 8))

/* Shadow mode, MOV to CR4 from RAX (0f 22 e0, 3 bytes; qualification 0x004):
 * - PGE cleared (0xa0 -> 0x20), the TLB flush Linux uses for global pages
 *   (SDM vol. 3A 4.10.4.1): the guest reads 0x20 back (read shadow), the
 *   processor keeps PAE|VMXE (GUEST_CR4 0x2020), the root is the same (PGE
 *   changes no translation and the shadows are never stale), RIP + 3;
 * - PGE and SMEP set (0x1000a0): SMEP is part of the engine's role, so a new
 *   root (GUEST_CR3 changes) and a host TLB flush; the processor needs SMEP
 *   itself (GUEST_CR4 0x102020);
 * - #GP(0) instead (vol. 2B MOV CR; vol. 3A 2.5): PAE cleared in IA-32e mode
 *   (0x1000); VMXE (0x1020a0: VMX is not offered); bit 15, reserved
 *   (0x1080a0); bit 32 (0x1001000a0); LA57 changed in IA-32e mode (0x1010a0);
 *   PCIDE set while CR3[11:0] = 0x008 (PWT) (0x1200a0), accepted once CR3[11:0] = 0;
 * - MOV to CR3 from RBX (0x303): bit 48 set with MAXPHYADDR 48 is reserved:
 *   #GP(0); with CR4.PCIDE = 1 bit 63 is the no-flush hint, not written to
 *   CR3 (vol. 2B MOV): accepted, CR3 = 0x2000. */
static void shadow_mov_to_cr4(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_gprs g = { .rax = 0x20 };
	uint64_t root = vmcs_read(GUEST_CR3);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vmem_shadow_regs(vm.sh)->cr4, 0x20);
	assert_int_equal(vmcs_read(CR4_READ_SHADOW), 0x20);
	assert_int_equal(vmcs_read(GUEST_CR4), 0x2020);
	assert_int_equal(vmcs_read(GUEST_CR3), root);

	unsigned flushes = vmx_soft.vpid0_flushes;
	g.rax = 0x1000a0;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(CR4_READ_SHADOW), 0x1000a0);
	assert_int_equal(vmcs_read(GUEST_CR4), 0x102020);
	assert_int_not_equal(vmcs_read(GUEST_CR3), root);
	assert_int_equal(vmcs_read(GUEST_CR3), vmem_shadow_root(vm.sh));
	assert_true(vmx_soft.vpid0_flushes > flushes);

	static const uint64_t bad[] = { 0x1000, 0x1020a0, 0x1080a0, 0x1001000a0ull, 0x1010a0 };
	vmem_regs before = *vmem_shadow_regs(vm.sh);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g.rax = bad[i];
		assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
		assert_gp_injected(&vm, &before);
	}
	g.rbx = GD_CR3A | 8;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(3, 3), 0, 3, 0, 0));
	before = *vmem_shadow_regs(vm.sh);
	g.rax = 0x1200a0;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_gp_injected(&vm, &before);
	g.rbx = GD_CR3A | (1ull << 48);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(3, 3), 0, 3, 0, 0));
	assert_gp_injected(&vm, &before);
	g.rbx = GD_CR3A;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(3, 3), 0, 3, 0, 0));
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_int_equal(vmem_shadow_regs(vm.sh)->cr4, 0x1200a0);
	g.rbx = GD_CR3A | (1ull << 63);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(3, 3), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	assert_int_equal(vmem_shadow_regs(vm.sh)->cr3, GD_CR3A);
	vm_del(&vm);
}

/* Shadow mode, MOV to CR0 from RBX (0f 22 c3, qualification 0x300), CLTS and LMSW:
 * - WP cleared (0x80000033): the guest reads it back, the processor keeps
 *   WP = 1 (GUEST_CR0 0x80010033) so the shadow's read-only entries still
 *   stop supervisor stores; a new root (WP is in the role). A supervisor
 *   store to a read-only user page (PTE 0x20005: P, U/S; U/S set in the
 *   PML4E, PDPTE and PDE too, 4.6.1) is then allowed by
 *   the guest (SDM vol. 3A 4.6.1) but not by the shadow: the engine asks for
 *   it to be emulated (EMU_WP0), and the VMM finishes the MOV (48 89 07);
 * - reserved bits 15:6 are ignored (0x80010073 reads back 0x80010033);
 * - #GP(0) (vol. 2B MOV CR, vol. 3A 2.5): bit 32 (0x180010033), PG without
 *   PE (0x80010032), NW without CD (0xa0010033), PG cleared in 64-bit mode
 *   (0x00010033), NE cleared while WP changes (0x80000013: NE is fixed to 1
 *   in VMX operation without "unrestricted guest", vol. 3C 24.8);
 * - CLTS (qualification 0x20, type 2, 2 bytes) clears TS (bit 3) the guest
 *   set: 0x8001003b -> 0x80010033;
 * - LMSW (type 3, source data 0x000e in bits 31:16: 0x000e0030, 3 bytes)
 *   loads MP, EM, TS and cannot clear PE: 0x80010033 -> 0x8001003f. */
static void shadow_mov_to_cr0(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	uint64_t *t = (uint64_t *)(ram + GD_CR3A);
	t[0] |= 4, t[512] |= 4, t[1024] |= 4; /* U/S at every level above the PTE */
	t[1536 + (GD_DATA >> 12)] = GD_DATA | 5;
	struct vtx_gprs g = { .rbx = 0x80000033 };
	uint64_t root = vmcs_read(GUEST_CR3);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(0, 3), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vmem_shadow_regs(vm.sh)->cr0, 0x80000033);
	assert_int_equal(vmcs_read(CR0_READ_SHADOW), 0x80000033);
	assert_int_equal(vmcs_read(GUEST_CR0), 0x80010033);
	assert_int_not_equal(vmcs_read(GUEST_CR3), root);

	memcpy(ram + 0x1000, "\x48\x89\x07", 3); /* mov %rax, (%rdi) */
	g.rax = GD_TAG1, g.rdi = GD_DATA;
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, PF_EXIT_INFO, 0x2));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vm.n.pf_emulated, 1);
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	uint64_t v;
	memcpy(&v, ram + GD_DATA, 8);
	assert_int_equal(v, GD_TAG1);

	g.rbx = 0x80010073;
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(0, 3), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(CR0_READ_SHADOW), 0x80010033);
	static const uint64_t bad[] = { 0x180010033ull, 0x80010032, 0xa0010033, 0x00010033, 0x80000013 };
	vmem_regs before = *vmem_shadow_regs(vm.sh);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g.rbx = bad[i];
		assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(0, 3), 0, 3, 0, 0));
		assert_gp_injected(&vm, &before);
	}
	vmcs_write(GUEST_CR0, vmcs_read(GUEST_CR0) | 8);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, 0x20, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1002);
	assert_int_equal(vmcs_read(GUEST_CR0), 0x80010033);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, 0x000e0030, 0, 3, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vmcs_read(CR0_READ_SHADOW), 0x8001003f);
	assert_int_equal(vmcs_read(GUEST_CR0), 0x8001003f);
	vm_del(&vm);
}

/* I/O exits (SDM vol. 3C 28.2.1, Table 28-5): bits 2:0 size - 1, bit 3
 * direction (0 = OUT), bit 4 string instruction, bit 5 REP, bit 6 operand
 * (0 = DX, 1 = immediate), bits 31:16 port. OUT AL, 0xE9 (E6 E9):
 * 0x00e90040 -> printed, RIP + 2. OUTSB to port DX = 0xE9 (6E): 0x00e90010;
 * it writes the byte at DS:RSI, not AL, and moves RSI (by 1, or RCX times
 * with REP, 0x00e90030): answering it as OUT AL would print the wrong byte
 * and leave RSI/RCX as if nothing ran. Not emulated: the guest stops with RIP
 * on the instruction. */
static void io_string_out_not_out_al(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 'x', .rsi = 0x20000, .rcx = 4 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_IO, 0x00e90040, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1002);
	assert_int_equal(vm.n.io, 1);
	assert_false(exit_now(&vm, &g, EXIT_REASON_IO, 0x00e90010, 0, 1, 0, 0));
	assert_false(exit_now(&vm, &g, EXIT_REASON_IO, 0x00e90030, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_int_equal(vm.n.io, 1);
	assert_int_equal(g.rsi, 0x20000);
	vm_del(&vm);
}

/* VMCALL exits at any CPL (SDM vol. 2B VMCALL: "in VMX non-root operation:
 * VM exit", before the CPL > 0 #GP of root operation), so only the VMM can
 * keep its hypercalls for the guest kernel, as KVM does (CPL != 0: -EPERM).
 * The CPL is SS.DPL, bits 6:5 of the SS access rights (vol. 3C 25.4.1,
 * 27.3.1.2): 0xc0f3 = DPL 3. At CPL 3 a dirty-log harvest (which would
 * empty the kernel's log and re-arm its pages) and a verdict answer
 * VTX_HC_ERROR and do nothing; RIP still moves past the 3-byte VMCALL. The
 * kernel's harvest (SS 0xc093, DPL 0) then finds the page written before. */
static void vmcall_user_refused(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_DIRTY + 8, 0, 0, 0));
	vmcs_write(GUEST_SS_ACCESS_RIGHTS, 0xc0f3);
	g.rax = VTX_HC_DIRTY;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, VTX_HC_ERROR);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	assert_int_equal(vmx_soft.invept_single, 0);
	g.rax = VTX_HC_RESULT, g.rbx = 0, g.rcx = GD_EPT_CHECKS;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, VTX_HC_ERROR);
	assert_false(vm.result_seen);
	vmcs_write(GUEST_SS_ACCESS_RIGHTS, 0xc093);
	g.rax = VTX_HC_DIRTY;
	assert_true(exit_now(&vm, &g, EXIT_REASON_VMCALL, 0, 0, 3, 0, 0));
	assert_int_equal(g.rax, 1);
	vm_del(&vm);
}

/* An IRET that faults (EPT violation, #PF) unblocks NMIs before the VM exit
 * when "NMI exiting" is 0 (the driver's pin-based default), and bit 12 of
 * the EPT qualification / of the VM-exit interruption information says NMIs
 * were blocked before it (SDM vol. 3C 28.1, 28.2.1 Table 28-7, 28.2.2).
 * If the VMM resolves the exit and lets the IRET run again, the guest's NMI
 * handler has not returned yet: blocking by NMI (interruptibility bit 3) must
 * be put back, or a second NMI nests inside the handler (what the SDM's
 * VMM programming considerations ask before resuming guest software). If the VMM injects the #PF instead, the IRET
 * faulted as far as the guest can tell, and NMIs stay unblocked.
 * - EPT: read of the fresh page GD_DATA, qualification 0x1181 -> mapped, bit 3;
 * - shadow: #PF exit with bit 12 (0x80001b0e), error code 0, on GD_DATA ->
 *   filled, bit 3; on the hole GD_NP_LA -> #PF injected, bit 3 stays 0. */
static void nmi_blocking_after_iret_retry(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 0);
	assert_true(exit_now(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x1181, GD_DATA, 0, 0, 0));
	assert_int_equal(vm.n.ept_mapped, 1);
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 8);
	vm_del(&vm);

	vm_new(&vm, VTX_SHADOW);
	uint32_t pf_iret = PF_EXIT_INFO | (1u << 12);
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 0);
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, pf_iret, 0));
	assert_int_equal(vm.n.pf_fixed, 1);
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 8);
	vmcs_write(GUEST_INTERRUPTIBILITY_STATE, 0);
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_NP_LA, 0, 0, pf_iret, 0));
	assert_int_equal(vm.n.pf_injected, 1);
	assert_int_equal(vmcs_read(GUEST_INTERRUPTIBILITY_STATE), 0);
	vm_del(&vm);
}

/* The exception bitmap (SDM vol. 3C 25.6.3): an exception whose bit is 1
 * exits, the others go through the guest's IDT. The VMM needs #PF (bit 14)
 * in shadow mode only, to fill shadows; #AC (bit 17) in both modes: an #AC
 * raised while delivering an #AC is delivered again and again (benign, SDM
 * vol. 3A 6.15 Table 6-4) with no VM exit, a processor hung by its guest;
 * with the bit set the VMM reflects each #AC (VM-entry interruption
 * information 0x80000b11: valid, deliver error code, hardware exception,
 * vector 17; error code 0, the only one #AC has) and sees the loop as an
 * #AC exit whose IDT-vectoring information is that #AC: it stops the
 * guest. Every other exception (#UD, #GP, #DB...) is the guest's:
 * EPT 0x20000, shadow 0x24000. */
static void exception_bitmap_only_what_the_vmm_needs(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	assert_int_equal(vmcs_read(EXCEPTION_BITMAP), 0x20000);
	struct vtx_gprs g = { .rax = 0 };
	uint32_t ac = INTR_INFO_VALID | INTR_INFO_DELIVER_ERR | INTR_TYPE_HW_EXCEPTION | 17;
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, 0, 0, 0, ac, 0));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b11);
	assert_int_equal(vmcs_read(VM_ENTRY_EXCEPTION_ERROR_CODE), 0);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_false(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, 0, 0, 0, ac, 0, ac));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & INTR_INFO_VALID, 0);
	vm_del(&vm);
	vm_new(&vm, VTX_SHADOW);
	assert_int_equal(vmcs_read(EXCEPTION_BITMAP), 0x24000);
	vm_del(&vm);
}

/* CPUID, one leaf through the dispatcher: EAX = leaf, ECX = subleaf; RIP + 2. */
static void guest_cpuid(struct vtx_vm *vm, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	struct vtx_gprs g = { .rax = leaf, .rcx = sub };
	assert_true(exit_now(vm, &g, EXIT_REASON_CPUID, 0, 0, 2, 0, 0));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1002);
	r[0] = (uint32_t)g.rax, r[1] = (uint32_t)g.rbx, r[2] = (uint32_t)g.rcx, r[3] = (uint32_t)g.rdx;
}

/* CPUID (SDM vol. 2A CPUID) tells the guest what it may use, so what the
 * driver does not virtualise is hidden, whatever the host has:
 * CPUID.1:ECX[5] VMX (the driver offers no nested VMX: the guest's VMXON
 * would exit and stop it) and [6] SMX (GETSEC); CPUID.80000001H:EDX[27] RDTSCP and CPUID.7.0:ECX[22]
 * RDPID ("enable RDTSCP" is 0: both #UD in the guest, vol. 3C 26.1.2),
 * CPUID.7.0:EBX[10] INVPCID ("enable INVPCID" 0: #UD), ECX[5] WAITPKG
 * ("enable user wait and pause" 0: #UD), CPUID.(0DH,1):EAX[3] XSAVES
 * ("enable XSAVES/XRSTORS" 0: #UD), ECX[31] PKS (the engine does not model
 * it). OSXSAVE (1:ECX[27]) and OSPKE (7.0:ECX[4]) are the guest's own
 * CR4.OSXSAVE (18) and CR4.PKE (22), not the host's; in shadow mode CR4.PKE
 * is an owned bit, read from the read shadow. Leaf 0 (the vendor) passes through. */
static void cpuid_hides_what_is_not_virtualised(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	uint32_t r[4], h[4];
	__asm__ volatile("cpuid" : "=a"(h[0]), "=b"(h[1]), "=c"(h[2]), "=d"(h[3]) : "a"(0), "c"(0));
	guest_cpuid(&vm, 0, 0, r);
	assert_memory_equal(r, h, sizeof(r));
	vmcs_write(GUEST_CR4, vmcs_read(GUEST_CR4) & ~(1ull << 18));
	guest_cpuid(&vm, 1, 0, r);
	assert_int_equal(r[2] & ((1u << 5) | (1u << 6) | (1u << 27)), 0);
	vmcs_write(GUEST_CR4, vmcs_read(GUEST_CR4) | (1ull << 18));
	guest_cpuid(&vm, 1, 0, r);
	assert_int_equal(r[2] & ((1u << 5) | (1u << 6) | (1u << 27)), 1u << 27);
	vmcs_write(CR4_READ_SHADOW, vmcs_read(CR4_READ_SHADOW) | (1ull << 22));
	guest_cpuid(&vm, 7, 0, r);
	assert_int_equal(r[1] & (1u << 10), 0);
	assert_int_equal(r[2] & ((1u << 4) | (1u << 5) | (1u << 22) | (1u << 31)), 1u << 4);
	vmcs_write(CR4_READ_SHADOW, vmcs_read(CR4_READ_SHADOW) & ~(1ull << 22));
	guest_cpuid(&vm, 7, 0, r);
	assert_int_equal(r[2] & (1u << 4), 0);
	guest_cpuid(&vm, 0xd, 1, r);
	assert_int_equal(r[0] & (1u << 3), 0);
	guest_cpuid(&vm, 0x80000001, 0, r);
	assert_int_equal(r[3] & (1u << 27), 0);
	vm_del(&vm);
}

/* The decoder reads bytes as 64-bit code does; CS says what the guest runs
 * (SDM vol. 3A 5.2.1, vol. 3C 25.4.1 access rights: L bit 13, D/B bit 14):
 * - 32-bit code (L = 0, D = 1; 0xc09b): 48 is DEC EAX, not REX.W (vol. 2A
 *   2.2.1: REX exists in 64-bit mode only), so "48 89 07" is two
 *   instructions and the store is "89 07", 4 bytes at [EDI]: "48 89 07" is
 *   refused, "89 07" decodes (2 bytes, EAX, 4);
 * - 16-bit code (L = 0, D = 0; 0x809b): "89 07" is MOV [BX], AX (16-bit
 *   ModR/M, Table 2-1, and operand size): refused. Not an #UD: the guest's
 *   instruction is valid, the VMM lacks the decoder, so it stops the guest;
 * - 64-bit code (L = 1): "48 89 07" decodes as before. */
static void decode_follows_code_segment(void **state)
{
	(void)state;
	struct vtx_vm vm;
	struct vtx_mov_store m;
	vm_new(&vm, VTX_SHADOW);
	memcpy(ram + 0x1000, "\x48\x89\x07", 3);
	memcpy(ram + 0x1010, "\x89\x07", 2);
	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xc09b);
	assert_false(vtx_vm_fetch_mov_store(&vm, 0x1000, &m));
	assert_true(vtx_vm_fetch_mov_store(&vm, 0x1010, &m));
	assert_int_equal(m.len, 2), assert_int_equal(m.src, 0), assert_int_equal(m.size, 4);
	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0x809b);
	assert_false(vtx_vm_fetch_mov_store(&vm, 0x1010, &m));
	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xa09b);
	assert_true(vtx_vm_fetch_mov_store(&vm, 0x1000, &m));
	assert_int_equal(m.len, 3), assert_int_equal(m.size, 8);
	vm_del(&vm);
}

/* The VMM completes (emulates or drops) a MOV store only when the fault is
 * that MOV's own store: its destination, base register + displacement
 * (SDM vol. 3A 3.7.5), must be the faulting linear address: the #PF exit's
 * qualification, or the EPT violation's guest-linear address (vol. 3C
 * 28.2.1). Otherwise the instruction at RIP is not the one that faulted
 * (another vCPU rewrote it, or another access faulted) and finishing it
 * would write the wrong memory or skip an instruction: the guest stops,
 * RIP and memory unchanged.
 * - shadow, CR0.WP = 0 store (as in shadow_mov_to_cr0): 48 89 47 f8 is
 *   mov %rax, -8(%rdi): with RDI = GD_DATA + 8 it stores to GD_DATA, the
 *   fault address: emulated; with RDI = GD_DATA + 16 (destination
 *   GD_DATA + 8): not;
 * - ROM policy (EPT, qualification 0x1aa): 49 89 00 is mov %rax, (%r8)
 *   (REX.B: base R8, not RAX): GLA = R8 = 0x3000: dropped; GLA 0x3008: not. */
static void completed_store_is_the_fault(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	uint64_t *t = (uint64_t *)(ram + GD_CR3A);
	t[0] |= 4, t[512] |= 4, t[1024] |= 4;
	t[1536 + (GD_DATA >> 12)] = GD_DATA | 5;
	struct vtx_gprs g = { .rbx = 0x80000033 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(0, 3), 0, 3, 0, 0)); /* WP = 0 */
	memcpy(ram + 0x1000, "\x48\x89\x47\xf8", 4);
	memset(ram + GD_DATA, 0, 16);
	g.rax = GD_TAG1, g.rdi = GD_DATA + 16;
	assert_false(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, PF_EXIT_INFO, 0x2));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	uint64_t v[2];
	memcpy(v, ram + GD_DATA, 16);
	assert_int_equal(v[0], 0), assert_int_equal(v[1], 0);
	g.rdi = GD_DATA + 8;
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_DATA, 0, 0, PF_EXIT_INFO, 0x2));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1004);
	memcpy(v, ram + GD_DATA, 16);
	assert_int_equal(v[0], GD_TAG1), assert_int_equal(v[1], 0);
	vm_del(&vm);

	vm_new(&vm, VTX_EPT);
	struct vtx_gprs h = { .rax = 0x1234, .r8 = 0x3000 };
	memcpy(ram + 0x1000, "\x49\x89\x00", 3);
	assert_true(exit_now(&vm, &h, EXIT_REASON_EPT_VIOLATION, 0x181, GD_ROM, 0, 0, 0)); /* map the ROM r-x */
	vmx_soft_exit(EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_ROM + 0x10, 0x1000, 0, 0, 0);
	vmcs_write(GUEST_LINEAR_ADDRESS, 0x3008);
	struct vtx_exit e;
	vtx_exit_read(&e);
	assert_false(vtx_vm_dispatch(&vm, &e, &h));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	vmx_soft_exit(EXIT_REASON_EPT_VIOLATION, 0x1aa, GD_ROM + 0x10, 0x1000, 0, 0, 0);
	vmcs_write(GUEST_LINEAR_ADDRESS, 0x3000);
	vtx_exit_read(&e);
	assert_true(vtx_vm_dispatch(&vm, &e, &h));
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1003);
	vm_del(&vm);
}

/* EPT mode: #PF is not in the exception bitmap, so the guest's own #PF is
 * delivered through its IDT (SDM vol. 3C 25.6.3) and the processor loaded
 * CR2 with the faulting address when it raised it (vol. 3A 6.15, Interrupt
 * 14). If that delivery then exits (an EPT violation reading IDT entry 14
 * at GD_IDT + 0xe0, qualification 0x181, IDT-vectoring information
 * 0x80000b0e: valid, error code, hardware exception, vector 14, 28.2.4),
 * the VM exit does not touch CR2 (CR2 is not in the VMCS): the VMM
 * re-injects the #PF and CR2 must still be the guest's 0x1c0123, not
 * whatever the VMM last injected (0: it never injected a #PF). In shadow
 * mode every #PF exits, so a #PF being delivered is the VMM's own
 * injection and its CR2 is the one it injected (GD_NP_LA + 0x10). */
static void reinjected_pf_keeps_cr2(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0 };
	vmx_soft.cr2 = 0x1c0123;
	assert_true(exit_during(&vm, &g, EXIT_REASON_EPT_VIOLATION, 0x181, GD_IDT + 0xe0, 0, 0, 0, PF_EXIT_INFO));
	assert_int_equal(vm.n.ept_mapped, 1);
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0e);
	assert_int_equal(vmx_soft.cr2, 0x1c0123);
	vm_del(&vm);

	vm_new(&vm, VTX_SHADOW);
	assert_true(exit_now(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_NP_LA + 0x10, 0, 0, PF_EXIT_INFO, 0x2));
	assert_int_equal(vmx_soft.cr2, GD_NP_LA + 0x10);
	assert_true(exit_during(&vm, &g, EXIT_REASON_EXCEPTION_NMI, GD_IDT + 0xe0, 0, 0, PF_EXIT_INFO, 0, PF_EXIT_INFO));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0e);
	assert_int_equal(vmx_soft.cr2, GD_NP_LA + 0x10);
	vm_del(&vm);
}

/* A fault the VMM injects must carry RF = 1 in the RFLAGS the guest's
 * handler finds, as a fault raised by the processor does: "for any
 * fault-class exception except a debug exception generated in response to
 * an instruction breakpoint, the value pushed for RF is 1" (SDM vol. 3A
 * 18.3.1.1), so the IRET back to the faulting instruction does not hit its
 * instruction breakpoint again. VM entry pushes RFLAGS from the guest-state
 * area and "the value pushed for the RF flag is not modified based on the
 * type of event being delivered" (vol. 3C 27.6.1.1), and a VM exit caused
 * by an instruction saves RF = 0 (28.3.3): the VMM sets RF. MOV to CR4
 * setting VMXE (EPT mode, VMXE owned: exit), RFLAGS 0x2 -> #GP(0) injected,
 * RFLAGS 0x10002. The #PF and #AC exits save RF = 1 already (28.3.3: the
 * value the event would have pushed). */
static void injected_fault_sets_rf(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	struct vtx_gprs g = { .rax = 0x20a0 | VTX_CR4_VMXE };
	vmcs_write(GUEST_RFLAGS, 0x2);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0d);
	assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
	assert_int_equal(vmcs_read(GUEST_RFLAGS), 0x10002);
	vm_del(&vm);
}

/* 32-bit code addresses memory through segments (SDM vol. 3A 3.7.4,
 * Table 3-5): a memory operand whose base register is EBP (or ESP) is
 * SS-relative, the others DS-relative; instructions are fetched at CS.base
 * + EIP (3.4.2). Compatibility mode (EFER.LMA = 1, CS.L = 0, D = 1:
 * 0xc09b) keeps segment bases (3.2.4: only 64-bit mode treats them as 0).
 * - 89 45 08, mov %eax, 8(%ebp): ModR/M 45 = mod 01 reg 000 rm 101 ([EBP]
 *   + disp8): with SS base 0x10000, DS base 0 and EBP 0x1000 it stores to
 *   0x10000 + 0x1000 + 8 = 0x11008, not DS's 0x1008;
 * - with CS base 0x10000, the MOV at EIP 0x1010 is the bytes at linear
 *   0x11010 (89 07 there; at linear 0x1010 something else: 8b 07). */
static void segment_bases_in_32bit_code(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_mov_store m;
	assert_int_equal(vtx_decode_mov_store((const uint8_t *)"\x89\x45\x08", 3, false, &m), 3);
	vmcs_write(GUEST_SS_BASE, 0x10000);
	vmcs_write(GUEST_DS_BASE, 0);
	struct vtx_gprs g = { .rbp = 0x1000 };
	assert_int_equal(vtx_mov_store_la(&m, &g), 0x11008);
	assert_true(vtx_mov_store_is_fault(&m, &g, 0x11008));

	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xc09b);
	vmcs_write(GUEST_CS_BASE, 0x10000);
	memcpy(ram + 0x1010, "\x8b\x07", 2);
	memcpy(ram + 0x11010, "\x89\x07", 2);
	assert_true(vtx_vm_fetch_mov_store(&vm, 0x1010, &m));
	assert_int_equal(m.len, 2);
	vm_del(&vm);
}

/* MOV to CR0 clearing PG while CR4.PCIDE = 1 raises #GP(0) (SDM vol. 3A
 * 4.10.1: "MOV to CR0 causes a general-protection exception if it would
 * clear CR0.PG to 0 while CR4.PCIDE = 1"; vol. 2B MOV CR). In compatibility
 * mode (CS 0xc09b, LMA = 1) clearing PG is otherwise the way out of IA-32e
 * mode (vol. 3A 10.8.5.4), which the driver does not model (it stops the
 * guest), but with PCIDE = 1 the architectural answer is the #GP: the guest
 * gets it, RIP and registers unchanged. PCIDE is set first from 64-bit code
 * with CR3[11:0] = 0 (0x200a0: PAE, PGE, PCIDE). */
static void pg_cleared_with_pcide_faults(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_SHADOW);
	struct vtx_gprs g = { .rax = 0x200a0, .rbx = 0x00010033 };
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
	assert_int_equal(vmem_shadow_regs(vm.sh)->cr4, 0x200a0);
	vmcs_write(GUEST_CS_ACCESS_RIGHTS, 0xc09b);
	vmem_regs before = *vmem_shadow_regs(vm.sh);
	assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(0, 3), 0, 3, 0, 0));
	assert_gp_injected(&vm, &before);
	vm_del(&vm);
}

/* The CPUID filter on a host that has every feature (all ones), so the
 * answer does not depend on the machine running the test. PCONFIG
 * (CPUID.(EAX=07H,ECX=0):EDX[18]) must be hidden like INVPCID and WAITPKG:
 * secondary control 27 "enable PCONFIG" is 0 (the driver sets only "enable
 * EPT"), and then "any execution of PCONFIG causes #UD" (SDM vol. 3C
 * 25.6.2, Table 25-7). The other bits of leaf 7.0 the table names: EBX[10]
 * INVPCID, ECX[5] WAITPKG, ECX[22] RDPID, ECX[31] PKS hidden; ECX[4]
 * OSPKE = the guest's CR4.PKE (0 here: CR4 0xa0). */
static void cpuid_filter_hides_pconfig(void **state)
{
	(void)state;
	struct vtx_vm vm;
	vm_new(&vm, VTX_EPT);
	uint32_t r[4] = { ~0u, ~0u, ~0u, ~0u };
	vtx_cpuid_filter(&vm, 7, 0, r);
	assert_int_equal(r[3] & (1u << 18), 0);
	assert_int_equal(r[1] & (1u << 10), 0);
	assert_int_equal(r[2] & ((1u << 4) | (1u << 5) | (1u << 22) | (1u << 31)), 0);
	assert_int_equal(r[0], ~0u);
	vm_del(&vm);
}

/* CR4 bits of features the guest is not offered (CPUID hides VMX, SMX and
 * PKS) are reserved for it: its MOV to CR4 setting one must #GP. A bit
 * clear in the CR4 guest/host mask is the guest's: MOV to CR4 loads it
 * without a VM exit whenever the processor supports it in VMX operation
 * (SDM vol. 3C 26.3 MOV to CR4, 25.6.6; IA32_VMX_CR4_FIXED1, 24.8), so on a
 * processor with SMX or PKS the guest would set SMXE (bit 14) or PKS (bit
 * 24) unseen. The VMM must own them in both modes, read shadow 0 (the
 * guest's value), so the MOV exits and gets its #GP(0). With FIXED1 =
 * Bochs' plus SMXE and PKS: EPT mode owns bits 13, 14, 24 and a MOV to CR4
 * setting SMXE (0x60a0) is refused; shadow mode owns them too. */
static void cr4_not_offered_owned(void **state)
{
	(void)state;
	uint64_t not_offered = (1ull << 13) | (1ull << 14) | (1ull << 24);
	for (int p = VTX_EPT; p <= VTX_SHADOW; p++) {
		struct vtx_vm vm;
		vm_new(&vm, (enum vtx_paging)p);
		assert_int_equal(vmcs_read(CR4_GUEST_HOST_MASK) & not_offered, not_offered);
		assert_int_equal(vmcs_read(CR4_READ_SHADOW) & not_offered, 0);
		vm.cfg.cr4_fixed1 |= (1ull << 14) | (1ull << 24);
		struct vtx_gprs g = { .rax = 0x60a0 };
		assert_true(exit_now(&vm, &g, EXIT_REASON_CR_ACCESS, QUAL_MOV_TO(4, 0), 0, 3, 0, 0));
		assert_int_equal(vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION), 0x80000b0d);
		assert_int_equal(vmcs_read(GUEST_RIP), 0x1000);
		vm_del(&vm);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ept_violation_maps),
		cmocka_unit_test(shadow_pf_injected),
		cmocka_unit_test(rdtsc_monotonic),
		cmocka_unit_test(vmcall_translate),
		cmocka_unit_test(reinject_software_interrupt),
		cmocka_unit_test(shadow_fault_in_delivery_stops),
		cmocka_unit_test(rom_policy_only_the_mov),
		cmocka_unit_test(decode_mov_store_edges),
		cmocka_unit_test(completed_store_is_the_fault),
		cmocka_unit_test(skip_completes_instruction),
		cmocka_unit_test(shadow_mov_from_cr3),
		cmocka_unit_test(shadow_owns_paging_bits),
		cmocka_unit_test(shadow_mov_to_cr4),
		cmocka_unit_test(shadow_mov_to_cr0),
		cmocka_unit_test(io_string_out_not_out_al),
		cmocka_unit_test(vmcall_user_refused),
		cmocka_unit_test(nmi_blocking_after_iret_retry),
		cmocka_unit_test(exception_bitmap_only_what_the_vmm_needs),
		cmocka_unit_test(cpuid_hides_what_is_not_virtualised),
		cmocka_unit_test(decode_follows_code_segment),
		cmocka_unit_test(reinjected_pf_keeps_cr2),
		cmocka_unit_test(injected_fault_sets_rf),
		cmocka_unit_test(segment_bases_in_32bit_code),
		cmocka_unit_test(pg_cleared_with_pcide_faults),
		cmocka_unit_test(cpuid_filter_hides_pconfig),
		cmocka_unit_test(cr4_not_offered_owned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
