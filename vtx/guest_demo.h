/* guest_demo.h: the demo guests' guest-physical (and, through their identity tables, linear) layout; shared by guest_demo_x86_64.S, demo.c and the host tests. */
#ifndef VTX_GUEST_DEMO_H
#define VTX_GUEST_DEMO_H

#define GD_RAM_SIZE   0x200000 /* guest RAM [0, 2M): the control region */
#define GD_CODE       0x1000   /* the guest_demo blob */
#define GD_CR3A       0x2000   /* tables the VMM builds: PML4 0x2000, PDPT 0x3000, PD 0x4000, PT 0x5000 (identity, 4K) */
#define GD_PT_A       0x5000
#define GD_IDT        0x6000   /* the guests' IDT: #UD, #GP, #PF */
#define GD_GDT        0x7000   /* the guests' GDT; pseudo-descriptors at +0x100 and +0x110 */
#define GD_EXC_REC    0x8e00   /* #UD handler: count; #GP handler: error code, count, RF pushed */
#define GD_PF_REC     0x8f00   /* shadow guest's #PF handler: error code, CR2, count */
#define GD_STACK_TOP  0x9000
#define GD_CR3B       0x10000  /* tables the shadow guest builds: PML4 0x10000 ... PT 0x13000 */
#define GD_PT_B       0x13000
#define GD_DATA       0x20000  /* data pages 0x20000, 0x21000, 0x22000 */
#define GD_ALIAS_GPA  0x30000  /* what the alias is switched to */
#define GD_EPT_PF_STACK 0x51000 /* EPT guest: top of a stack page first touched by a #PF's delivery */
#define GD_DIRTY      0x100000 /* EPT: 4 pages mapped up front, dirty-logged */
#define GD_DIRTY_SIZE 0x4000
#define GD_ROM        0x180000 /* 4K read-only slot */
#define GD_ROM_SIZE   0x1000
#define GD_RO_LA      0x1a0000 /* shadow guest: a read-only mapping of GD_DATA */
#define GD_ALIAS_LA   0x1b0000 /* a linear page whose PTE the guests rewrite */
#define GD_NP_LA      0x1c0000 /* shadow guest: not present */

#define GD_ROM_TAG    0x524f4d2d54414721 /* "!GAT-MOR" */
#define GD_TAG1       0x1111111111111111
#define GD_TAG2       0x2222222222222222
#define GD_TAG3       0x3333333333333333
#define GD_TAG4       0x4444444444444444

#define GD_EPT_CHECKS    19
#define GD_SHADOW_CHECKS 18

#endif
