/* Nested-walk differential tests: random EPT capabilities and EPTP (root at host 0x1000, write-back). */
#ifndef VMEM_TESTS_EPT_RAND_H
#define VMEM_TESTS_EPT_RAND_H

#include <stdint.h>
#include <libvmem/ept.h>

/* MAXPHYADDR 40; MBEC, execute-only, 1-GByte pages and advanced exit
 * information each drawn; 4 or (one time in four) 5 levels; A/D drawn.
 * Returns the number of levels. */
static inline int ept_rand_caps(uint64_t (*rnd)(void), vmem_ept_caps *caps, uint64_t *eptp)
{
	vmem_ept_caps_init(caps);
	caps->maxphyaddr = 40;
	caps->mbec = rnd() & 1;
	caps->exec_only = rnd() & 1;
	caps->gbpages = rnd() & 1;
	caps->advanced_info = rnd() & 1;
	int el = (rnd() & 3) == 0 ? 5 : 4;
	*eptp = 0x1000 | 6 | ((uint64_t)(el - 1) << 3) | ((rnd() & 1) ? 0x40 : 0);
	return el;
}
#endif
