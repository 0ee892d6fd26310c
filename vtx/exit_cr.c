/* exit_cr.c: control-register accesses (exit reason 28): MOV to CR0/CR4, CLTS and LMSW emulated with the architectural #GP(0) checks and handed to the shadow engine; MOV to/from CR3 in shadow mode. */
#include "vm.h"
#include "rt.h"

#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_NW (1ull << 29)
#define CR0_CD (1ull << 30)
#define CR0_DEFINED 0xe005003full /* PE MP EM TS ET NE, WP AM, NW CD PG (SDM vol. 3A 2.5) */
#define CR4_CET (1ull << 23)
#define CS_AR_L (1u << 13)

/* The guest's control registers as it sees them, and its mode. */
struct cr_state {
	uint64_t cr0, cr3, cr4, efer;
	unsigned maxphyaddr;
	bool lma, code64; /* IA-32e mode; 64-bit mode (CS.L = 1) */
};

/* A register the VMM owns bits of: those from the read shadow, the rest from the processor's. */
static uint64_t guest_cr(enum vmcs_field real, enum vmcs_field shadow, uint64_t mask)
{
	return (vmcs_read(real) & ~mask) | (vmcs_read(shadow) & mask);
}

uint64_t vtx_guest_cr4(const struct vtx_vm *vm)
{
	return vm ? guest_cr(GUEST_CR4, CR4_READ_SHADOW, vtx_vm_cr4_mask(vm)) : vmcs_read(GUEST_CR4);
}

static void cr_state(struct vtx_vm *vm, struct cr_state *s)
{
	vmem_regs r;
	vtx_vm_guest_regs(vm, &r);
	s->cr0 = guest_cr(GUEST_CR0, CR0_READ_SHADOW, vtx_vm_cr0_mask(vm));
	s->cr4 = vtx_guest_cr4(vm);
	s->cr3 = r.cr3;
	s->maxphyaddr = r.maxphyaddr;
	s->efer = vmcs_read(GUEST_IA32_EFER);
	s->lma = s->efer & VMEM_EFER_LMA;
	s->code64 = s->lma && (vmcs_read(GUEST_CS_ACCESS_RIGHTS) & CS_AR_L);
}

/* MOV to CR0 (SDM vol. 2B MOV CR, vol. 3A 2.5): true when it raises #GP(0). */
static bool cr0_faults(const struct cr_state *s, uint64_t v)
{
	if (v >> 32)
		return true; /* bits 63:32 are reserved (bits 31:0's reserved ones are ignored) */
	if (((v & VMEM_CR0_PG) && !(v & VMEM_CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		return true;
	/* Paging cannot be turned off in 64-bit mode, nor while CR4.PCIDE = 1 (vol. 3A 4.10.1). */
	if (!(v & VMEM_CR0_PG) && (s->code64 || (s->cr4 & VMEM_CR4_PCIDE)))
		return true;
	/* Activating IA-32e mode (LME = 1) needs PAE (vol. 3A 10.8.5). */
	if (!(s->cr0 & VMEM_CR0_PG) && (v & VMEM_CR0_PG) && (s->efer & VMEM_EFER_LME) && !(s->cr4 & VMEM_CR4_PAE))
		return true;
	if (!(v & VMEM_CR0_WP) && (s->cr4 & CR4_CET))
		return true; /* WP cannot be cleared while CR4.CET = 1 */
	/* NE is fixed to 1 in VMX operation without "unrestricted guest"
	 * (vol. 3C 24.8): the processor #GPs such a MOV when it does not exit. */
	return !(v & CR0_NE);
}

/* MOV to CR4: true when it raises #GP(0). */
static bool cr4_faults(const struct vtx_vm *vm, const struct cr_state *s, uint64_t v)
{
	if (v & ~vtx_vm_cr4_allowed(vm))
		return true; /* a reserved bit, or a feature the guest is not offered */
	if (s->lma && (!(v & VMEM_CR4_PAE) || ((v ^ s->cr4) & VMEM_CR4_LA57)))
		return true; /* IA-32e mode: PAE cannot be cleared, LA57 not changed */
	/* PCIDE 0 -> 1 needs IA-32e mode and CR3[11:0] = 0 (vol. 3A 4.10.1). */
	if ((v & VMEM_CR4_PCIDE) && !(s->cr4 & VMEM_CR4_PCIDE) && (!s->lma || (s->cr3 & 0xfff)))
		return true;
	return (v & CR4_CET) && !(s->cr0 & VMEM_CR0_WP);
}

static bool inject_gp(struct vtx_vm *vm, unsigned cr, uint64_t v, const struct vtx_exit *e)
{
	rt_printf("vtx-main: MOV to CR%u 0x%lx rip 0x%lx -> #GP(0)\n", cr, v, e->rip);
	vtx_vm_inject(vm, VECTOR_GP, true, 0, 0);
	vm->n.gp_injected++;
	return true;
}

/* Shadow mode: the engine takes the new registers (it decides what a change
 * flushes, SDM vol. 3A 4.10.4.1). 1: accepted; 0: the MOV would #GP (e.g. a
 * PAE PDPTE with a reserved bit, 4.4.1); -1: the engine cannot follow. */
static int engine_set(struct vtx_vm *vm, const vmem_regs *r)
{
	vmem_err err = vmem_shadow_set_regs(vm->sh, r);
	if (err && err != VMEM_E_INVAL)
		rt_printf("vtx-main: vmem_shadow_set_regs cr0 0x%lx cr3 0x%lx cr4 0x%lx: error %d: stop\n", r->cr0,
			  r->cr3, r->cr4, err);
	return !err ? 1 : err == VMEM_E_INVAL ? 0 : -1;
}

/* The new CR0 or CR4 in force: the engine (shadow mode), the processor's
 * register and the read shadows (vtx_vm_load_paging), the MOV completed. */
static bool write_cr(struct vtx_vm *vm, const struct vtx_exit *e, unsigned cr, uint64_t v)
{
	if (vm->cfg.paging == VTX_SHADOW) {
		vmem_regs r = *vmem_shadow_regs(vm->sh);
		*(cr == 0 ? &r.cr0 : &r.cr4) = v;
		int ok = engine_set(vm, &r);
		if (ok <= 0)
			return ok == 0 && inject_gp(vm, cr, v, e);
	}
	vmcs_write(cr == 0 ? GUEST_CR0 : GUEST_CR4, cr == 0 ? v : v | VTX_CR4_VMXE);
	vtx_vm_load_paging(vm);
	vm->n.cr_write++;
	rt_printf("vtx-main: MOV to CR%u 0x%lx emulated\n", cr, v);
	vtx_skip_instruction(e);
	return true;
}

/* MOV to CR0 or CR4 (CLTS and LMSW as the CR0 value they make). */
static bool mov_to_cr(struct vtx_vm *vm, const struct vtx_exit *e, const struct cr_state *s, unsigned cr,
		      uint64_t v)
{
	if (cr == 0 ? cr0_faults(s, v) : cr4_faults(vm, s, v))
		return inject_gp(vm, cr, v, e);
	if (cr == 0)
		v = (v & CR0_DEFINED) | CR0_ET; /* ET reads 1 (vol. 3A 2.5) */
	/* Entering or leaving IA-32e mode, or another paging mode: the guest
	 * would need other VM-entry controls and host tables. */
	uint64_t mode = cr == 0 ? VMEM_CR0_PG : VMEM_CR4_PAE | VMEM_CR4_LA57;
	if ((v ^ (cr == 0 ? s->cr0 : s->cr4)) & mode) {
		rt_printf("vtx-main: MOV to CR%u 0x%lx changes the paging mode: not modelled: stop\n", cr, v);
		return false;
	}
	return write_cr(vm, e, cr, v);
}

/* MOV to CR3 (shadow mode): the engine follows the guest's new tables, the
 * processor gets the new shadow root. In IA-32e mode bits 63:MAXPHYADDR are
 * reserved, but with CR4.PCIDE = 1 bit 63 is the no-flush hint, never
 * written to CR3 (vol. 2B MOV CR, vol. 3A 4.5): the shadows are never
 * stale, so there is nothing it would keep. */
static bool mov_to_cr3(struct vtx_vm *vm, const struct vtx_exit *e, const struct cr_state *s, uint64_t v)
{
	if (s->lma && (s->cr4 & VMEM_CR4_PCIDE))
		v &= ~(1ull << 63);
	if (s->lma && (v >> s->maxphyaddr))
		return inject_gp(vm, 3, v, e);
	vmem_regs r = *vmem_shadow_regs(vm->sh);
	r.cr3 = v;
	int ok = engine_set(vm, &r);
	if (ok <= 0)
		return ok == 0 && inject_gp(vm, 3, v, e);
	vtx_vm_load_paging(vm);
	vm->n.cr3_load++;
	rt_printf("vtx-main: MOV to CR3 0x%lx -> shadow root 0x%lx\n", r.cr3, vmem_shadow_root(vm->sh));
	vtx_skip_instruction(e);
	return true;
}

bool vtx_exit_cr_access(struct vtx_vm *vm, const struct vtx_exit *e, struct vtx_gprs *g)
{
	/* Qualification: bits 3:0 the control register, 5:4 the access type
	 * (0 MOV to CR, 1 MOV from CR, 2 CLTS, 3 LMSW), 11:8 the general-purpose
	 * register, 31:16 LMSW's source data (SDM vol. 3C 28.2.1, Table 28-3). */
	unsigned cr = e->qual & 0xf, type = (e->qual >> 4) & 3, reg = (e->qual >> 8) & 0xf;
	struct cr_state s;
	cr_state(vm, &s);
	uint64_t v = vtx_gpr_get(g, reg);
	if (!s.code64)
		v = (uint32_t)v; /* outside 64-bit mode the operand is 32 bits */
	bool shadow = vm->cfg.paging == VTX_SHADOW;
	if (cr == 3 && type == 0 && shadow)
		return mov_to_cr3(vm, e, &s, v);
	if (cr == 3 && type == 1 && shadow) {
		/* GUEST_CR3 is the shadow root: the guest reads its own CR3 (CR3-store exiting, 26.1.3). */
		vtx_gpr_set(g, reg, s.cr3);
		vm->n.cr3_store++;
		vtx_skip_instruction(e);
		return true;
	}
	if (type == 0 && (cr == 0 || cr == 4))
		return mov_to_cr(vm, e, &s, cr, v);
	if (type == 2)
		return mov_to_cr(vm, e, &s, 0, s.cr0 & ~CR0_TS);
	/* LMSW loads CR0[3:0] and can set PE but not clear it (vol. 2A LMSW). */
	if (type == 3)
		return mov_to_cr(vm, e, &s, 0, (s.cr0 & ~0xeull) | ((e->qual >> 16) & 0xf));
	rt_printf("vtx-main: cr-access qual 0x%lx not handled: stop\n", e->qual);
	return false;
}
