/* rt_cpu_x86_64.c: host TSS and IDT (every exception prints its frame and stops the simulation). */
#include "rt.h"
#include "cpu_x86_64.h"
#include "layout.h"

extern uint64_t gdt[];
extern const uint64_t trap_stubs[22];
uint8_t rt_tss[104] __attribute__((aligned(16)));
static uint64_t idt[2 * 32] __attribute__((aligned(16)));

void rt_trap(const uint64_t *f);

void rt_trap(const uint64_t *f)
{
	rt_printf("\nvtx: host exception %lu error 0x%lx rip 0x%lx cr2 0x%lx\n", f[0], f[1], f[2],
		  ({ uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); v; }));
	rt_puts("VTX-FAILED\n");
	rt_shutdown();
}

void rt_cpu_init(void)
{
	/* 64-bit TSS descriptor (SDM vol. 3A 8.2.3): type 9, present; LTR marks it busy. */
	uint64_t base = (uint64_t)(uintptr_t)rt_tss, limit = sizeof(rt_tss) - 1;
	gdt[GDT_TSS / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
			   (((base >> 24) & 0xff) << 56);
	gdt[GDT_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" : : "r"((uint16_t)GDT_TSS));

	for (unsigned v = 0; v < 22; v++) {
		uint64_t h = trap_stubs[v];
		/* 64-bit interrupt gate (type 14), selector = 64-bit code. */
		idt[2 * v] = (h & 0xffff) | ((uint64_t)GDT_CODE64 << 16) | (0x8Eull << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = h >> 32;
	}
	struct dtr d = { .limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(d));
}
