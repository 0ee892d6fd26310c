/* layout.h: the image's fixed host-physical memory map (Bochs megs: 64); shared by assembly and C. */
#ifndef VTX_LAYOUT_H
#define VTX_LAYOUT_H

#define GDT_CODE32 0x08
#define GDT_DATA   0x10
#define GDT_CODE64 0x18
#define GDT_TSS    0x20

#define BOOT_PML4  0x100000	/* host identity paging: 1 GiB of 2M pages */
#define BOOT_PDPT  0x101000
#define BOOT_PD    0x102000
#define STACK_TOP  0x120000	/* 64 KiB stack below */

#define HEAP_BASE  0x400000	/* bump page allocator */
#define HEAP_END   0x3000000
#define GUEST_C_HPA 0x3000000	/* 2M: guest code and its first tables (guest-physical 0..2M) */
#define SINK_HPA   0x3200000	/* 2M: where every tested guest access lands */
#define SINK_SIZE  0x200000
#define RAM_END    0x4000000

#endif
