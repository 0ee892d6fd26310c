/* exit_cpuid.c: CPUID (exit reason 10): the host's answer, less what the driver does not virtualise, with OSXSAVE/OSPKE following the guest's own CR4 (SDM vol. 2A CPUID). */
#include "vm.h"
#include "cpu_x86_64.h"

#define BIT(n) (1u << (n))
#define CR4_OSXSAVE (1ull << 18)

/* One register of one leaf: bits hidden; OS-controlled bits set from the guest's CR4. */
struct cpuid_rule {
	uint32_t leaf, sub; /* sub ~0: any subleaf */
	unsigned reg;       /* 0 EAX, 1 EBX, 2 ECX, 3 EDX */
	uint32_t hide;
	uint32_t os_bit;    /* a bit that reflects cr4_bit of the guest's CR4 (0: none) */
	uint64_t cr4_bit;
};

/* Hidden: VMX (no nested VMX: VMXON would exit and stop the guest), SMX;
 * RDTSCP and RDPID ("enable RDTSCP" is 0: #UD, vol. 3C 26.1.2), INVPCID
 * ("enable INVPCID" 0: #UD), WAITPKG ("enable user wait and pause" 0: #UD),
 * XSAVES/XRSTORS ("enable XSAVES/XRSTORS" 0: #UD), PCONFIG ("enable PCONFIG"
 * 0: #UD, vol. 3C Table 25-7), PKS (not modelled by the
 * shadow engine; CR4.PKS is reserved for the guest). */
static const struct cpuid_rule rules[] = {
	{ 1, ~0u, 2, BIT(5) | BIT(6), BIT(27), CR4_OSXSAVE },
	{ 7, 0, 1, BIT(10), 0, 0 },
	{ 7, 0, 2, BIT(5) | BIT(22) | BIT(31), BIT(4), VMEM_CR4_PKE },
	{ 7, 0, 3, BIT(18), 0, 0 },
	{ 0xd, 1, 0, BIT(3), 0, 0 },
	{ 0x80000001, ~0u, 3, BIT(27), 0, 0 },
};

void vtx_cpuid(struct vtx_vm *vm, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	cpuid(leaf, sub, r);
	vtx_cpuid_filter(vm, leaf, sub, r);
}

void vtx_cpuid_filter(struct vtx_vm *vm, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	uint64_t cr4 = vtx_guest_cr4(vm);
	for (unsigned i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct cpuid_rule *c = &rules[i];
		if (c->leaf != leaf || (c->sub != ~0u && c->sub != sub))
			continue;
		r[c->reg] &= ~(c->hide | c->os_bit);
		if (cr4 & c->cr4_bit)
			r[c->reg] |= c->os_bit;
	}
}
