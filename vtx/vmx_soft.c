/* vmx_soft.c: a software VMX backend: the VMCS as a plain table of fields, INVEPT/CR2/TSC recorded, so the exit dispatcher runs and is tested on the host. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "vmx_soft.h"
#include "rt.h"

#define NFIELDS 160
static struct { uint32_t f; uint64_t v; bool used; } fields[NFIELDS];
struct vmx_soft vmx_soft;

void vmx_soft_reset(void)
{
	for (unsigned i = 0; i < NFIELDS; i++)
		fields[i].used = false;
	struct vmx_soft z = { 0 };
	vmx_soft = z;
}

uint64_t vmcs_read(enum vmcs_field f)
{
	for (unsigned i = 0; i < NFIELDS; i++)
		if (fields[i].used && fields[i].f == (uint32_t)f)
			return fields[i].v;
	return 0;
}

void vmcs_write(enum vmcs_field f, uint64_t v)
{
	for (unsigned i = 0; i < NFIELDS; i++)
		if (!fields[i].used || fields[i].f == (uint32_t)f) {
			fields[i].f = (uint32_t)f, fields[i].v = v, fields[i].used = true;
			return;
		}
	rt_panic("vmx_soft: too many fields", f, 0);
}

void vmx_soft_exit(uint32_t reason, uint64_t qual, uint64_t gpa, uint64_t rip, uint32_t instr_len,
		   uint32_t intr_info, uint32_t intr_err)
{
	vmcs_write(EXIT_REASON, reason);
	vmcs_write(EXIT_QUALIFICATION, qual);
	vmcs_write(GUEST_PHYSICAL_ADDRESS, gpa);
	vmcs_write(GUEST_RIP, rip);
	vmcs_write(VM_EXIT_INSTRUCTION_LENGTH, instr_len);
	vmcs_write(VM_EXIT_INTERRUPTION_INFORMATION, intr_info);
	vmcs_write(VM_EXIT_INTERRUPTION_ERROR_CODE, intr_err);
	vmcs_write(IDT_VECTORING_INFORMATION, 0);
	vmcs_write(VM_ENTRY_INTERRUPTION_INFORMATION,
		   vmcs_read(VM_ENTRY_INTERRUPTION_INFORMATION) & ~(uint64_t)INTR_INFO_VALID);
}

void vmx_on(uint64_t pa) { (void)pa; }
void vmcs_clear(uint64_t pa) { (void)pa; }
void vmcs_load(uint64_t pa) { (void)pa; }
void vmx_invept_all(void) { vmx_soft.invept_all++; }
void vmx_invept_single(uint64_t eptp) { vmx_soft.invept_single++, vmx_soft.invept_eptp = eptp; }
void vmx_set_guest_cr2(uint64_t cr2) { vmx_soft.cr2 = cr2; }
void vmx_flush_vpid0(void) { vmx_soft.vpid0_flushes++; }
uint64_t vmx_host_tsc(void) { return vmx_soft.tsc; }

void rt_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void rt_panic(const char *what, uint64_t a, uint64_t b)
{
	fprintf(stderr, "vtx panic: %s 0x%llx 0x%llx\n", what, (unsigned long long)a, (unsigned long long)b);
	abort();
}
