/* libvmem host CPU features the library's own code may use (CPUID, once per structure, never per walk). */
#include "vmem_int.h"

/* BMI2 (RORX): CPUID.(EAX=07H,ECX=0):EBX[bit 8]. Asked at structure
 * creation, not per walk: CPUID exits to the hypervisor under VMX. */
bool vmi_cpu_bmi2(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
	uint32_t a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0), "c"(0));
	if (a < 7)
		return false;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
	return (b >> 8) & 1;
#else
	return false;
#endif
}
