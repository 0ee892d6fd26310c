/* vmcs_x86_64.c: the bare-metal VMX backend: VMREAD/VMWRITE, VMXON/VMCLEAR/VMPTRLD/INVEPT, guest CR2, host TLB flush and TSC; a VMfail stops the image. */
#include "vmcs.h"
#include "rt.h"

/* VMX instructions report VMfailInvalid with CF and VMfailValid with ZF (SDM vol. 3C 31.2). */
#define VMX_FAILED(insn, ...) \
	({ uint8_t bad_; __asm__ volatile(insn "; setbe %0" : "=qm"(bad_) : __VA_ARGS__ : "cc", "memory"); bad_; })

static void vmx_fail(const char *what, uint64_t arg)
{
	uint64_t err = 0;
	uint8_t bad;
	__asm__ volatile("vmread %2, %1; setbe %0" : "=qm"(bad), "=r"(err)
			 : "r"((uint64_t)VM_INSTRUCTION_ERROR) : "cc");
	rt_panic(what, arg, bad ? ~0ull : err);
}

uint64_t vmcs_read(enum vmcs_field f)
{
	uint64_t v;
	uint8_t bad;
	__asm__ volatile("vmread %2, %1; setbe %0" : "=qm"(bad), "=r"(v) : "r"((uint64_t)f) : "cc");
	if (bad)
		vmx_fail("vmread", f);
	return v;
}

void vmcs_write(enum vmcs_field f, uint64_t v)
{
	if (VMX_FAILED("vmwrite %1, %2", "r"(v), "r"((uint64_t)f)))
		vmx_fail("vmwrite", f);
}

void vmx_on(uint64_t pa)
{
	if (VMX_FAILED("vmxon %1", "m"(pa)))
		rt_panic("vmxon", pa, 0);
}

void vmcs_clear(uint64_t pa)
{
	if (VMX_FAILED("vmclear %1", "m"(pa)))
		vmx_fail("vmclear", pa);
}

void vmcs_load(uint64_t pa)
{
	if (VMX_FAILED("vmptrld %1", "m"(pa)))
		vmx_fail("vmptrld", pa);
}

/* INVEPT type 2: all-context (SDM vol. 3C 31.3, INVEPT). */
void vmx_invept_all(void)
{
	struct { uint64_t eptp, zero; } desc = { 0, 0 };
	if (VMX_FAILED("invept %1, %2", "m"(desc), "r"((uint64_t)2)))
		vmx_fail("invept", 2);
}

/* INVEPT type 1: single-context, the descriptor names the EPTP (SDM vol. 3C 31.3, INVEPT). */
void vmx_invept_single(uint64_t eptp)
{
	struct { uint64_t eptp, zero; } desc = { eptp, 0 };
	if (VMX_FAILED("invept %1, %2", "m"(desc), "r"((uint64_t)1)))
		vmx_fail("invept", 1);
}

void vmx_set_guest_cr2(uint64_t cr2)
{
	__asm__ volatile("mov %0, %%cr2" : : "r"(cr2) : "memory");
}

void vmx_flush_vpid0(void)
{
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

uint64_t vmx_host_tsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
