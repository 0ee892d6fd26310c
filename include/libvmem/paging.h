/* libvmem paging state: the control registers that select a mode, and the MMU handle built from them. */
#ifndef LIBVMEM_PAGING_H
#define LIBVMEM_PAGING_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/error.h>
#include <libvmem/gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Control-register and EFER bits that paging depends on (SDM vol. 3A, 2.5, 4.1). */
#define VMEM_CR0_PE    (1ull << 0)
#define VMEM_CR0_WP    (1ull << 16)
#define VMEM_CR0_PG    (1ull << 31)
#define VMEM_CR4_PSE   (1ull << 4)
#define VMEM_CR4_PAE   (1ull << 5)
#define VMEM_CR4_PGE   (1ull << 7)
#define VMEM_CR4_LA57  (1ull << 12)
#define VMEM_CR4_PCIDE (1ull << 17)
#define VMEM_CR4_SMEP  (1ull << 20)
#define VMEM_CR4_SMAP  (1ull << 21)
#define VMEM_CR4_PKE   (1ull << 22)
#define VMEM_CR4_PKS   (1ull << 24)
#define VMEM_EFER_LME  (1ull << 8)
#define VMEM_EFER_LMA  (1ull << 10)
#define VMEM_EFER_NXE  (1ull << 11)

/* Paging modes (SDM vol. 3A, 4.1.1, Table 4-1). */
typedef enum vmem_mode {
	VMEM_MODE_NONE = 0,   /* CR0.PG = 0: linear = physical */
	VMEM_MODE_32BIT = 1,  /* CR4.PAE = 0 */
	VMEM_MODE_PAE = 2,    /* CR4.PAE = 1, EFER.LMA = 0 */
	VMEM_MODE_4LEVEL = 3, /* EFER.LMA = 1, CR4.LA57 = 0 */
	VMEM_MODE_5LEVEL = 4  /* EFER.LMA = 1, CR4.LA57 = 1 */
} vmem_mode;

/* What the guest processor is: the registers plus the CPUID facts paging uses. */
typedef struct vmem_regs {
	uint64_t cr0, cr3, cr4, efer;
	uint32_t pkru;       /* protection-key rights (CR4.PKE) */
	unsigned maxphyaddr; /* CPUID.80000008H:EAX[7:0]; 32..52 */
	bool gbpages;        /* CPUID.80000001H:EDX[26]: PS=1 in a PDPTE is legal */
} vmem_regs;

/* Fill r with a sane reset state: paging off, MAXPHYADDR 48, 1-GByte pages. */
void vmem_regs_init(vmem_regs *r);
/* The mode these registers select, as hardware derives it. */
vmem_mode vmem_regs_mode(const vmem_regs *r);
const char *vmem_mode_name(vmem_mode m);

/* An MMU: a paging mode with its precomputed reserved-bit masks and
 * permission tables, ready to walk. Rebuilt only when registers change. */
typedef struct vmem_mmu vmem_mmu;

/* Create from registers. VMEM_E_INVAL for a combination hardware refuses
 * (CR0.PG without PE, LMA without PAE or LME, LME with PG but not LMA,
 * CR4.PCIDE outside IA-32e mode, CR3 reserved bits in IA-32e mode,
 * MAXPHYADDR outside 32..52); VMEM_E_UNSUPPORTED for CR4.PKS. */
vmem_err vmem_mmu_new(const vmem_allocator *alloc, const vmem_regs *r, vmem_mmu **out);
void vmem_mmu_free(vmem_mmu *mmu);
/* Replace the registers (a MOV to CR0/CR3/CR4 or WRMSR EFER). On error the
 * MMU keeps its previous state. In PAE mode the PDPTE registers are kept:
 * call vmem_mmu_load_pdptes as a MOV to CR3 would. */
vmem_err vmem_mmu_set_regs(vmem_mmu *mmu, const vmem_regs *r);
const vmem_regs *vmem_mmu_regs(const vmem_mmu *mmu);
vmem_mode vmem_mmu_mode(const vmem_mmu *mmu);

/* PAE paging: load the four PDPTE registers from guest memory at CR3[31:5],
 * as MOV to CR3 does (SDM 4.4.1). VMEM_E_INVAL if a present PDPTE has a
 * reserved bit set (the MOV would #GP); VMEM_E_RANGE if the PDPT is not in
 * guest memory. Either way the registers are left unchanged. */
vmem_err vmem_mmu_load_pdptes(vmem_mmu *mmu, const vmem_gmem *gm);
/* Set the PDPTE registers directly (VM entry loads them from the VMCS).
 * No check: a walk through a present PDPTE with reserved bits reports a
 * reserved-bit #PF, as KVM does. */
void vmem_mmu_set_pdptes(vmem_mmu *mmu, const uint64_t pdpte[4]);
void vmem_mmu_get_pdptes(const vmem_mmu *mmu, uint64_t pdpte[4]);

#ifdef __cplusplus
}
#endif
#endif
