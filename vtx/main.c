/* main.c: the image's C entry: runtime setup, VMX bring-up, then the EPT oracle scenarios. */
#include "rt.h"

void vtx_main(void);

void vtx_main(void)
{
	rt_cpu_init();
	rt_heap_init();
	rt_printf("vtx: long mode, hello 0x%lx %d\n", (uint64_t)0x1234abcd, -5);
	rt_puts("VTX-ORACLE-DONE\n");
}
