/* boot_x86_64.S: boot sector + int 13h loader, then protected mode, long mode with 2M identity paging, stack, call vtx_main. */
#include "layout.h"

	.section .boot, "ax"
	.code16
	.globl boot_start
boot_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $0x7C00, %sp
	ljmp $0, $1f
1:	mov %dl, boot_drive
	sti
	/* Read image_load_sectors sectors from LBA 1 to 0x7E00, 64 at a time (int 13h AH=42h). */
	movw $image_load_sectors, %cx
	movw $0x07E0, dap_seg
	movl $1, dap_lba
2:	test %cx, %cx
	jz 4f
	mov %cx, %bx
	cmp $64, %bx
	jbe 3f
	mov $64, %bx
3:	mov %bx, dap_count
	mov $0x42, %ah
	mov boot_drive, %dl
	mov $dap, %si
	push %cx
	push %bx
	int $0x13
	pop %bx
	pop %cx
	jc boot_fail
	sub %bx, %cx
	movzwl %bx, %eax
	addl %eax, dap_lba
	shl $5, %bx			/* sectors * 512 / 16 */
	addw %bx, dap_seg
	jmp 2b
4:	/* Fast A20 (port 92h), then protected mode. */
	in $0x92, %al
	or $2, %al
	and $0xFE, %al
	out %al, $0x92
	cli
	lgdtl gdt_desc
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $GDT_CODE32, $pm32

boot_fail:
	mov $'!', %al
	out %al, $0xE9
	hlt
	jmp boot_fail

	.p2align 2
dap:	.byte 16, 0
dap_count:	.word 0
dap_off:	.word 0
dap_seg:	.word 0
dap_lba:	.quad 0
boot_drive:	.byte 0

	.p2align 3
	.globl gdt
gdt:	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00af9a000000ffff	/* 0x18: 64-bit code */
	.quad 0, 0			/* 0x20: 64-bit TSS, filled by rt_cpu_init */
gdt_end:
	.globl gdt_desc
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

	.org 510
	.word 0xAA55

	.section .text.entry, "ax"
	.code32
pm32:
	mov $GDT_DATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	/* Identity map the first 1 GiB with 2M pages: PML4 -> PDPT -> PD. */
	mov $BOOT_PML4, %edi
	xor %eax, %eax
	mov $(3 * 1024), %ecx
	rep stosl
	movl $(BOOT_PDPT | 3), BOOT_PML4
	movl $(BOOT_PD | 3), BOOT_PDPT
	mov $BOOT_PD, %edi
	mov $0x83, %eax
	mov $512, %ecx
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b
	mov $BOOT_PML4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $0xC0000080, %ecx		/* IA32_EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	ljmp $GDT_CODE64, $lm64

	.code64
lm64:
	mov $STACK_TOP, %rsp
	mov $bss_start, %rdi
	mov $bss_end, %rcx
	sub %rdi, %rcx
	xor %eax, %eax
	rep stosb
	call vtx_main
	call rt_shutdown
1:	hlt
	jmp 1b

/* Host exception stubs: push a vector (and a zero error code where the CPU pushes none), then rt_trap. */
	.text
	.macro trap_stub n, has_err
	.globl trap_stub_\n
trap_stub_\n:
	.if \has_err == 0
	push $0
	.endif
	push $\n
	jmp trap_common
	.endm
	trap_stub 0,0;  trap_stub 1,0;  trap_stub 2,0;  trap_stub 3,0
	trap_stub 4,0;  trap_stub 5,0;  trap_stub 6,0;  trap_stub 7,0
	trap_stub 8,1;  trap_stub 9,0;  trap_stub 10,1; trap_stub 11,1
	trap_stub 12,1; trap_stub 13,1; trap_stub 14,1; trap_stub 15,0
	trap_stub 16,0; trap_stub 17,1; trap_stub 18,0; trap_stub 19,0
	trap_stub 20,0; trap_stub 21,1
trap_common:
	mov %rsp, %rdi			/* [vector, error, rip, cs, rflags, ...] */
	and $-16, %rsp
	call rt_trap
1:	hlt
	jmp 1b

	.section .rodata
	.globl trap_stubs
	.p2align 3
trap_stubs:
	.quad trap_stub_0, trap_stub_1, trap_stub_2, trap_stub_3
	.quad trap_stub_4, trap_stub_5, trap_stub_6, trap_stub_7
	.quad trap_stub_8, trap_stub_9, trap_stub_10, trap_stub_11
	.quad trap_stub_12, trap_stub_13, trap_stub_14, trap_stub_15
	.quad trap_stub_16, trap_stub_17, trap_stub_18, trap_stub_19
	.quad trap_stub_20, trap_stub_21
