/* Test support: a host CPU without BMI2, linked in place of lib/cpu.c's probe (static libvmem). */
#include <stdbool.h>

bool vmi_cpu_bmi2(void);

/* The assembly's 4-level window path then never applies: walks that would
 * take it go to vmi_walk_key and the C window path instead. */
bool vmi_cpu_bmi2(void)
{
	return false;
}
