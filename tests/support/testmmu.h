/* A cmocka test's guest MMU: IA-32e mode with 4-level paging (CR0.PG/WP/PE, CR4.PAE, EFER.LME/LMA) at a given CR3 and MAXPHYADDR. */
#ifndef VMEM_TESTS_TESTMMU_H
#define VMEM_TESTS_TESTMMU_H

#include <stdint.h>
#include <libvmem/paging.h>

/* The MMU, cmocka-asserted (include cmocka.h first). */
static inline vmem_mmu *testmmu_4level(uint64_t cr3, unsigned maxphyaddr)
{
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PG | VMEM_CR0_WP | VMEM_CR0_PE;
	r.cr3 = cr3;
	r.cr4 = VMEM_CR4_PAE;
	r.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	r.maxphyaddr = maxphyaddr;
	vmem_mmu *m = NULL;
	assert_int_equal(vmem_mmu_new(NULL, &r, &m), VMEM_OK);
	return m;
}
#endif
