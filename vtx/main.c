/* main.c: the image's C entry: runtime setup, VMX bring-up, a smoke-test guest, the demo guests (EPT and shadow paging through libvmem), then the EPT, guest-mode and segmentation oracle scenarios. */
#include "rt.h"
#include "vtx.h"
#include "vm.h"
#include "oracle.h"
#include "layout.h"
#include <libvmem/ept_map.h>

void vtx_main(void);

extern const uint8_t guest_smoke[];

/* A guest that exercises the dispatcher: CPUID, VMCALL, OUT, then HLT. */
static void smoke_test(const struct vtx_caps *c)
{
	uint64_t mark = rt_heap_mark();
	vmem_ept_config cfg = { .levels = 4, .eptp_mt = VMEM_MT_WB };
	vmem_ept *ept;
	RT_ASSERT(vmem_ept_new(&rt_allocator, &cfg, &ept) == VMEM_OK);
	RT_ASSERT(vmem_ept_grant(ept, GUEST_C_HPA, GUEST_C_SIZE) == VMEM_OK);
	RT_ASSERT(vmem_ept_map(ept, 0, GUEST_C_HPA, GUEST_C_SIZE, VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X,
			       VMEM_MT_WB, false, NULL) == VMEM_OK);
	vtx_guest_c_init();
	struct vtx_guest g = {
		.cr0 = 0x80010033, .cr3 = GUEST_CR3A_GPA, .cr4 = 0x20a0, .efer = 0xd00,
		.rip = vtx_guest_rip(guest_smoke), .eptp = vmem_ept_eptp(ept),
	};
	vtx_vmcs_setup(c, &g);
	vmx_invept_all();
	struct vtx_gprs r = { .rax = 0 };
	struct vtx_exit e;
	vtx_run(&r, &e);
	rt_printf("vtx: smoke guest exit %u (%s) rip 0x%lx\n", e.reason, vtx_exit_name(e.reason), e.rip);
	RT_ASSERT(!e.entry_failed && e.reason == EXIT_REASON_HLT);
	rt_heap_release(mark);
}

void vtx_main(void)
{
	rt_cpu_init();
	rt_heap_init();
	rt_puts("vtx: long mode\n");
	struct vtx_caps c;
	vtx_vmx_init(&c);
	rt_printf("vtx: VMXON ok: basic 0x%lx ept/vpid cap 0x%lx maxphyaddr %u gbpages %d smep %d smap %d\n",
		  c.basic, c.ept_cap, c.maxphyaddr, c.gbpages, c.smep, c.smap);
	rt_printf("vtx: cpuid 7.0 ebx 0x%x ecx 0x%x (pku %d la57 %d), cr4 fixed1 0x%lx\n", c.cpuid7_ebx,
		  c.cpuid7_ecx, c.pku, c.la57, c.cr4_fixed1);
	rt_printf("vtx: controls pin 0x%x proc 0x%x proc2 0x%x exit 0x%x entry 0x%x\n",
		  c.pin, c.proc, c.proc2, c.exit, c.entry);
	smoke_test(&c);
	rt_puts(vtx_demo(&c) ? "VTX-MAIN-OK\n" : "VTX-MAIN-FAIL\n");
	oracle_run(&c);
	oracle_modes_run(&c);
	oracle_seg_run(&c);
	rt_puts("VTX-ORACLE-DONE\n");
}
