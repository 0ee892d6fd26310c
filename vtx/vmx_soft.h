/* vmx_soft.h: the software VMX backend's state, for host-side tests of the exit dispatcher (vmx_soft.c). */
#ifndef VTX_VMX_SOFT_H
#define VTX_VMX_SOFT_H

#include <stdint.h>
#include "vmcs.h"

struct vmx_soft {
	unsigned invept_single, invept_all, vpid0_flushes;
	uint64_t invept_eptp; /* the last single-context INVEPT's EPTP */
	uint64_t cr2;         /* what the VMM loaded into CR2 */
	uint64_t tsc;         /* what RDTSC on the host returns */
};
extern struct vmx_soft vmx_soft;

/* Forget every field and counter. */
void vmx_soft_reset(void);
/* A VM exit as the processor records it: the exit-information fields, and
 * the valid bit of the VM-entry interruption-information field cleared. */
void vmx_soft_exit(uint32_t reason, uint64_t qual, uint64_t gpa, uint64_t rip, uint32_t instr_len,
		   uint32_t intr_info, uint32_t intr_err);

#endif
