/* A program built against an installed libvmem: translate through a 1-GByte page and check the answer. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

int main(void)
{
	/* PML4 at 0x0, PDPT at 0x1000 whose entry 1 maps a 1-GByte page at 1 GiB. */
	uint64_t *ram = aligned_alloc(4096, 0x2000);
	if (!ram)
		return 1;
	memset(ram, 0, 0x2000);
	ram[0] = 0x1000 | VMEM_PTE_P | VMEM_PTE_RW;
	ram[512 + 1] = 0x40000000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_PS;

	vmem_gmem *gm;
	vmem_mmu *mmu;
	vmem_regs regs;
	vmem_regs_init(&regs);
	regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG;
	regs.cr4 = VMEM_CR4_PAE;
	regs.efer = VMEM_EFER_LME | VMEM_EFER_LMA;
	if (vmem_gmem_new(NULL, &gm) || vmem_gmem_add_ram(gm, 0, 0x2000, ram, 0) ||
	    vmem_mmu_new(NULL, &regs, &mmu))
		return 1;
	vmem_walk_result r;
	vmem_err e = vmem_walk(mmu, gm, 0x40abcdef, VMEM_ACC_WRITE, 0, &r);
	printf("consumer: %s, la 0x40abcdef -> gpa %#" PRIx64 ", page size %#" PRIx64 "\n",
	       vmem_strerror(e), r.gpa, r.page_size);
	int ok = e == VMEM_OK && r.status == VMEM_WALK_OK && r.gpa == 0x40abcdef &&
		 r.page_size == VMEM_PAGE_1G && (ram[513] & VMEM_PTE_D);
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	free(ram);
	return ok ? 0 : 1;
}
