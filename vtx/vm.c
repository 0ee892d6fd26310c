/* vm.c: a guest's libvmem objects: guest memory slots, EPT tables with a dirty log or a shadow-paging engine, and reading guest-linear memory through the guest's own tables. */
#include "vm.h"
#include "rt.h"

vmem_err vtx_vm_init(struct vtx_vm *vm, const struct vtx_vm_config *cfg)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	if (!vm->cfg.policy)
		vm->cfg.policy = vtx_policy_rom_discard;
	RT_ASSERT(cfg->ram_size && !(cfg->ram_size & 0xfff) && !(cfg->rom_size & 0xfff));
	RT_ASSERT(cfg->rom_gpa + cfg->rom_size <= cfg->ram_size);
	vmem_err err = vmem_gmem_new(cfg->alloc, &vm->gmem);
	uint8_t *ram = cfg->ram;
	if (!err && cfg->rom_size) {
		/* Three slots: RAM below the ROM, the ROM (read-only), RAM above it. */
		if (cfg->rom_gpa)
			err = vmem_gmem_add_ram(vm->gmem, 0, cfg->rom_gpa, ram, 0);
		if (!err)
			err = vmem_gmem_add_ram(vm->gmem, cfg->rom_gpa, cfg->rom_size, ram + cfg->rom_gpa,
						VMEM_SLOT_READONLY);
		uint64_t top = cfg->rom_gpa + cfg->rom_size;
		if (!err && top < cfg->ram_size)
			err = vmem_gmem_add_ram(vm->gmem, top, cfg->ram_size - top, ram + top, 0);
	} else if (!err) {
		err = vmem_gmem_add_ram(vm->gmem, 0, cfg->ram_size, ram, 0);
	}
	if (!err)
		err = vmem_mmu_new(cfg->alloc, &cfg->regs, &vm->mmu);
	if (err)
		goto fail;
	if (cfg->paging == VTX_EPT) {
		/* EPT starts empty but for the dirty-logged range: the rest is mapped on demand. */
		vmem_ept_config ec = { .levels = 4, .eptp_mt = VMEM_MT_WB };
		err = vmem_ept_new(cfg->alloc, &ec, &vm->ept);
		if (!err)
			err = vmem_ept_grant(vm->ept, cfg->ram_hpa, cfg->ram_size);
		if (!err && cfg->dirty_size) {
			RT_ASSERT(cfg->dirty_gpa + cfg->dirty_size <= cfg->ram_size);
			err = vmem_ept_map(vm->ept, cfg->dirty_gpa, cfg->ram_hpa + cfg->dirty_gpa, cfg->dirty_size,
					   VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X, VMEM_MT_WB, false, NULL);
			if (!err)
				err = vmem_dirty_new(cfg->alloc, vm->ept, cfg->dirty_gpa, cfg->dirty_size, &vm->dirty);
			/* No guest ran on these tables yet: nothing to invalidate. */
			if (!err)
				err = vmem_dirty_set_mode(vm->dirty, VMEM_DIRTY_WP, NULL, NULL);
		}
	} else {
		vmem_shadow_config sc = {
			.alloc = cfg->alloc, .gmem = vm->gmem, .host_levels = 4,
			.max_pages = 64, .max_roots = 4,
		};
		err = vmem_shadow_new(&sc, &vm->sh);
		if (!err)
			err = vmem_shadow_set_regs(vm->sh, &cfg->regs);
	}
	if (err)
		goto fail;
	return VMEM_OK;
fail:
	vtx_vm_fini(vm);
	return err;
}

void vtx_vm_fini(struct vtx_vm *vm)
{
	vmem_dirty_free(vm->dirty);
	vmem_ept_free(vm->ept);
	vmem_shadow_free(vm->sh);
	vmem_mmu_free(vm->mmu);
	vmem_gmem_free(vm->gmem);
	vm->dirty = NULL, vm->ept = NULL, vm->sh = NULL, vm->mmu = NULL, vm->gmem = NULL;
}

/* CR0 and CR4 bits the shadow engine's roots depend on (shadow.h:
 * vmem_shadow_set_regs, vmem_shadow_host_regs): PE, NW (29), CD (30), PG,
 * WP; PSE, PAE, PGE, LA57, PCIDE, SMEP, SMAP, PKE, PKS. */
#define SHADOW_CR0_OWNED (VMEM_CR0_PE | VMEM_CR0_WP | (1ull << 29) | (1ull << 30) | VMEM_CR0_PG)
#define SHADOW_CR4_OWNED (VMEM_CR4_PSE | VMEM_CR4_PAE | VMEM_CR4_PGE | VMEM_CR4_LA57 | VMEM_CR4_PCIDE | \
			  VMEM_CR4_SMEP | VMEM_CR4_SMAP | VMEM_CR4_PKE | VMEM_CR4_PKS)
#define CR4_SMXE (1ull << 14)
/* CR4 bits of features not offered to the guest (CPUID.1:ECX[5] VMX, [6]
 * SMX; PKS, which the engine does not model): reserved for it. Owned in both
 * modes, or on a processor that supports one the guest's MOV to CR4 would
 * set it without an exit (SDM vol. 3C 26.3, 25.6.6). */
#define CR4_NOT_OFFERED (VTX_CR4_VMXE | CR4_SMXE | VMEM_CR4_PKS)

uint64_t vtx_vm_cr0_mask(const struct vtx_vm *vm)
{
	return vm->cfg.paging == VTX_SHADOW ? SHADOW_CR0_OWNED : 0;
}

uint64_t vtx_vm_cr4_mask(const struct vtx_vm *vm)
{
	return CR4_NOT_OFFERED | (vm->cfg.paging == VTX_SHADOW ? SHADOW_CR4_OWNED : 0);
}

uint64_t vtx_vm_cr4_allowed(const struct vtx_vm *vm)
{
	return vm->cfg.cr4_fixed1 & ~CR4_NOT_OFFERED;
}

/* The VMM owns the bits of mask: the guest reads them from the read shadow
 * (its own values) and a MOV that changes one exits (SDM vol. 3C 25.6.6, 26.1.3). */
static void own_bits(enum vmcs_field mask_f, enum vmcs_field shadow_f, uint64_t mask, uint64_t guest)
{
	vmcs_write(mask_f, mask);
	vmcs_write(shadow_f, guest);
}

/* The exceptions that exit (SDM vol. 3C 25.6.3); the rest reach the guest's
 * IDT. #PF in shadow mode: the shadows are filled on it. #AC: one raised
 * while delivering an #AC is delivered again forever (benign, vol. 3A 6.15)
 * without an exit; reflected one by one, the loop shows (exit_shadow.c).
 * #DB has such a loop too, but reflecting it needs DR6 put together from
 * the qualification, which the driver does not do: it is the guest's. */
static uint32_t exception_bitmap(const struct vtx_vm *vm)
{
	return (1u << VECTOR_AC) | (vm->cfg.paging == VTX_SHADOW ? 1u << VECTOR_PF : 0);
}

void vtx_vm_load_paging(struct vtx_vm *vm)
{
	uint64_t m0 = vtx_vm_cr0_mask(vm), m4 = vtx_vm_cr4_mask(vm);
	vmcs_write(EXCEPTION_BITMAP, exception_bitmap(vm));
	if (vm->cfg.paging == VTX_EPT) {
		vmcs_write(EPT_POINTER, vmem_ept_eptp(vm->ept));
		own_bits(CR4_GUEST_HOST_MASK, CR4_READ_SHADOW, m4, vmcs_read(GUEST_CR4) & ~CR4_NOT_OFFERED);
		return;
	}
	/* The processor runs the guest on the shadow root with the engine's
	 * CR0.WP, EFER.NXE and CR4 bits (the guest's CR0.WP = 0 is emulated:
	 * EMU_WP0); EFER is not emulated, so the guest's EFER.NXE must be 1. */
	vmem_regs h;
	vmem_shadow_host_regs(vm->sh, &h);
	const vmem_regs *gr = vmem_shadow_regs(vm->sh);
	RT_ASSERT(gr->efer & VMEM_EFER_NXE);
	vmcs_write(GUEST_CR3, h.cr3);
	/* The guest must not change them behind the engine (a guest-owned
	 * CR0.WP = 0 lets supervisor stores through read-only shadow entries):
	 * the VMM owns every bit the engine reads, a MOV to CR0/CR4 changing one
	 * exits (exit_cr.c), and the guest reads its own values from the read
	 * shadows; the processor's registers hold the engine's (VMXE: fixed to 1
	 * in VMX operation, SDM vol. 3C 24.8). */
	vmcs_write(GUEST_CR0, (vmcs_read(GUEST_CR0) & ~m0) | (h.cr0 & m0));
	vmcs_write(GUEST_CR4, (vmcs_read(GUEST_CR4) & ~m4) | (h.cr4 & m4) | VTX_CR4_VMXE);
	own_bits(CR0_GUEST_HOST_MASK, CR0_READ_SHADOW, m0, gr->cr0);
	own_bits(CR4_GUEST_HOST_MASK, CR4_READ_SHADOW, m4, gr->cr4);
}

void vtx_vm_guest_regs(struct vtx_vm *vm, vmem_regs *r)
{
	if (vm->cfg.paging == VTX_SHADOW) {
		*r = *vmem_shadow_regs(vm->sh);
		return;
	}
	*r = vm->cfg.regs;
	r->cr0 = vmcs_read(GUEST_CR0);
	r->cr3 = vmcs_read(GUEST_CR3);
	r->cr4 = vmcs_read(GUEST_CR4);
	r->efer = vmcs_read(GUEST_IA32_EFER);
}

vmem_err vtx_vm_translate(struct vtx_vm *vm, uint64_t la, uint64_t *gpa)
{
	vmem_regs r;
	vtx_vm_guest_regs(vm, &r);
	vmem_err err = vmem_mmu_set_regs(vm->mmu, &r);
	if (err)
		return err;
	vmem_walk_result w;
	err = vmem_walk(vm->mmu, vm->gmem, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &w);
	if (err)
		return err;
	if (w.status != VMEM_WALK_OK)
		return VMEM_E_NOENT;
	*gpa = w.gpa;
	return VMEM_OK;
}

vmem_err vtx_vm_read_linear(struct vtx_vm *vm, uint64_t la, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		size_t n = 4096 - (la & 0xfff);
		if (n > len)
			n = len;
		uint64_t gpa;
		vmem_err err = vtx_vm_translate(vm, la, &gpa);
		if (!err)
			err = vmem_gmem_read(vm->gmem, gpa, p, n);
		if (err)
			return err;
		la += n, p += n, len -= n;
	}
	return VMEM_OK;
}

bool vtx_vm_fetch_mov_store(struct vtx_vm *vm, uint64_t rip, struct vtx_mov_store *out)
{
	/* CS.L (bit 13) in IA-32e mode: 64-bit code; else CS.D (bit 14): 32- or 16-bit (SDM vol. 3A 5.2.1). */
	uint64_t ar = vmcs_read(GUEST_CS_ACCESS_RIGHTS);
	bool code64 = (vmcs_read(GUEST_IA32_EFER) & VMEM_EFER_LMA) && (ar & (1u << 13));
	if (!code64 && !(ar & (1u << 14))) {
		rt_printf("vtx-main: 16-bit code at rip 0x%lx: its MOV is not decoded\n", rip);
		return false;
	}
	/* Outside 64-bit mode the instruction is at CS.base + EIP (3.4.2, 3.2.4). */
	uint64_t la = code64 ? rip : (uint32_t)(vmcs_read(GUEST_CS_BASE) + (uint32_t)rip);
	uint8_t insn[15];
	size_t n = 4096 - (la & 0xfff);
	if (n > sizeof(insn))
		n = sizeof(insn);
	return !vtx_vm_read_linear(vm, la, insn, n) && vtx_decode_mov_store(insn, n, code64, out);
}

/* VM-entry interruption information: vector, type 3 (hardware exception),
 * deliver-error-code, valid (SDM vol. 3C 25.8.3, Table 25-17). A fault
 * pushes RF = 1 (vol. 3A 18.3.1.1), but VM entry pushes RFLAGS as the
 * guest-state area has it (vol. 3C 27.6.1.1) and an instruction's exit saved
 * RF = 0 (28.3.3): the VMM sets it. */
void vtx_vm_inject(struct vtx_vm *vm, unsigned vector, bool has_err, uint32_t err, uint64_t cr2)
{
	if (vector < 32 && ((EXC_FAULT_CLASS >> vector) & 1))
		vmcs_write(GUEST_RFLAGS, vmcs_read(GUEST_RFLAGS) | RFLAGS_RF);
	uint32_t info = INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (vector & 0xff);
	if (has_err)
		info |= INTR_INFO_DELIVER_ERR;
	vmcs_write(VM_ENTRY_INTERRUPTION_INFORMATION, info);
	vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, has_err ? err : 0);
	if (vector == VECTOR_PF) {
		vmx_set_guest_cr2(cr2);
		if (vm)
			vm->pending_cr2 = cr2;
	}
}
