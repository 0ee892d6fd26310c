/* guest_demo_x86_64.S: the demo guests, copied to guest-physical 0x1000: one run under demand-paged EPT, one under shadow paging (own tables, MOV CR3, a PTE write and INVLPG, #PFs handled in its own IDT). */
#include "guest_demo.h"
	.section .rodata
	.globl guest_demo, guest_demo_end, guest_demo_ept, guest_demo_shadow
	.code64

/* r15: mask of failed checks, r14: checks passed. CHECK n: rax must equal rbx. */
.macro CHECK bit
	cmp %rbx, %rax
	je .Lok\@
	or $(1 << \bit), %r15
	jmp .Lend\@
.Lok\@:	inc %r14
.Lend\@:
.endm
/* Hypercall: number, then VMCALL (result in rax). */
.macro HC nr
	mov $\nr, %eax
	vmcall
.endm
/* rax = the 64-bit TSC */
.macro TSC
	rdtsc
	shl $32, %rdx
	or %rdx, %rax
.endm
/* IDT[vec]: a 64-bit interrupt gate to handler, CS 0x08 (SDM vol. 3A 6.14.1). */
.macro GATE vec, handler
	lea \handler(%rip), %rax
	mov $(GD_IDT + \vec * 16), %rdi
	mov %ax, (%rdi)
	movw $0x08, 2(%rdi)
	movw $0x8e00, 4(%rdi)
	shr $16, %rax
	mov %ax, 6(%rdi)
	shr $16, %rax
	mov %eax, 8(%rdi)
	movl $0, 12(%rdi)
.endm
/* The guest's own exceptions reach its IDT, the VMM sees none of them
 * (exception bitmap: #PF in shadow mode and #AC only): UD2 raises #UD; a
 * MOV to CR4 setting VMXE (VMX is not offered: reserved) exits, and the VMM
 * injects #GP(0). rax = the #UD count, rbx = what it must be. */
.macro EXCEPTIONS ud_bit, gp_bit
	ud2
	mov GD_EXC_REC, %rax
	mov $1, %ebx
	CHECK \ud_bit
	movq $-1, GD_EXC_REC + 8
	mov %cr4, %rax
	bts $13, %rax
	mov %rax, %cr4
	mov GD_EXC_REC + 16, %rax			/* count << 32 | RF pushed | error code */
	shl $32, %rax
	or GD_EXC_REC + 8, %rax
	or GD_EXC_REC + 24, %rax
	movabs $(1 << 32 | 1 << 16), %rbx		/* a fault pushes RF = 1 (SDM vol. 3A 18.3.1.1) */
	CHECK \gp_bit
.endm

	.p2align 4
guest_demo:
/* EPT: the tables at GD_CR3A map [4K, 2M) identically; EPT starts empty. */
guest_demo_ept:
	xor %r15d, %r15d
	xor %r14d, %r14d
	mov $GD_STACK_TOP, %rsp
	call descriptors
	HC 0						/* 0: version */
	mov $0x00010000, %ebx
	CHECK 0
	mov $GD_DATA, %rdi				/* 1-3: three fresh pages written, read back */
	movabs $GD_TAG1, %rax
	mov %rax, (%rdi)
	movabs $GD_TAG2, %rax
	mov %rax, 0x1000(%rdi)
	movabs $GD_TAG3, %rax
	mov %rax, 0x2000(%rdi)
	mov (%rdi), %rax
	movabs $GD_TAG1, %rbx
	CHECK 1
	mov 0x1000(%rdi), %rax
	movabs $GD_TAG2, %rbx
	CHECK 2
	mov 0x2000(%rdi), %rax
	movabs $GD_TAG3, %rbx
	CHECK 3
	mov $GD_ROM, %rdi				/* 4-5: ROM read, write dropped, read again */
	mov (%rdi), %rax
	movabs $GD_ROM_TAG, %rbx
	CHECK 4
	mov $0x5a5a, %eax
	mov %rax, (%rdi)
	mov (%rdi), %rax
	CHECK 5
	mov $GD_DIRTY, %rdi				/* 6-8: dirty log: pages 0 and 2, then 0, then none */
	mov %rdi, (%rdi)
	mov %rdi, 0x2000(%rdi)
	HC 3
	mov $2, %ebx
	CHECK 6
	mov %rdi, 8(%rdi)
	HC 3
	mov $1, %ebx
	CHECK 7
	HC 3
	xor %ebx, %ebx
	CHECK 8
	mov $GD_ALIAS_GPA, %rdi				/* 9: the alias PTE rewritten, INVLPG, read */
	movabs $GD_TAG4, %rax
	mov %rax, (%rdi)
	mov $(GD_ALIAS_GPA | 3), %eax
	mov %rax, GD_PT_A + (GD_ALIAS_LA >> 12) * 8
	invlpg GD_ALIAS_LA
	mov GD_ALIAS_LA, %rax
	movabs $GD_TAG4, %rbx
	CHECK 9
	mov $(GD_ALIAS_LA + 0x123), %ebx		/* 10: translate through the library */
	HC 1
	mov $(GD_ALIAS_GPA + 0x123), %ebx
	CHECK 10
	TSC						/* 11-12: virtual TSC: monotonic, offset */
	mov %rax, %r13
	TSC
	mov %rax, %r12
	xor %eax, %eax
	xor %ebx, %ebx
	cmp %r13, %r12
	ja 1f
	inc %eax
1:	CHECK 11
	movabs $(1 << 40), %rbx
	xor %eax, %eax
	cmp %rbx, %r13
	setae %al
	mov $1, %ebx
	CHECK 12
	xor %eax, %eax					/* 13: CPUID leaf 0: "Genu" */
	xor %ecx, %ecx
	cpuid
	mov %ebx, %eax
	mov $0x756e6547, %ebx
	CHECK 13
	mov $'E', %al
	out %al, $0xE9
	lea msg_ept(%rip), %rbx				/* 14: print */
	mov $(msg_ept_end - msg_ept), %ecx
	HC 2
	xor %ebx, %ebx
	CHECK 14
	EXCEPTIONS 15, 16				/* 15-16: #UD, #GP(0) in the guest's IDT */
	movq $0, GD_PT_A + (GD_NP_LA >> 12) * 8		/* 18: a #PF of the guest's own (no exit in */
	invlpg GD_NP_LA					/* EPT mode) whose delivery exits: its frame */
	mov %rsp, %r13					/* goes to a page EPT has not mapped yet; the */
	mov $GD_EPT_PF_STACK, %rsp			/* VMM maps it and re-injects the #PF, and CR2 */
	mov $GD_NP_LA, %rdi				/* is still what the processor loaded */
	mov (%rdi), %rax
	mov %r13, %rsp
	mov GD_PF_REC + 8, %rax
	mov $GD_NP_LA, %ebx
	CHECK 18
	mov $1, %eax					/* 17: CPUID.1:ECX: VMX (5) hidden, OSXSAVE (27) */
	xor %ecx, %ecx					/* is the guest's CR4.OSXSAVE: 0 */
	cpuid
	mov %ecx, %eax
	and $((1 << 5) | (1 << 27)), %eax
	xor %ebx, %ebx
	CHECK 17
	mov %r15, %rbx
	mov %r14, %rcx
	HC 4
	hlt

/* Shadow paging: starts on the VMM's tables at GD_CR3A, builds its own. */
guest_demo_shadow:
	xor %r15d, %r15d
	xor %r14d, %r14d
	mov $GD_STACK_TOP, %rsp
	call descriptors
	mov $GD_CR3B, %rdi				/* own tables: identity [4K, 2M) ... */
	movq $(GD_CR3B + 0x1003), (%rdi)
	movq $(GD_CR3B + 0x2003), 0x1000(%rdi)
	movq $(GD_CR3B + 0x3003), 0x2000(%rdi)
	mov $(GD_PT_B + 8), %rdi
	mov $0x1003, %eax
	mov $511, %ecx
1:	mov %rax, (%rdi)
	add $8, %rdi
	add $0x1000, %rax
	loop 1b
	movq $(GD_DATA | 1), GD_PT_B + (GD_RO_LA >> 12) * 8	/* ... read-only alias of GD_DATA */
	movq $(GD_DATA | 3), GD_PT_B + (GD_ALIAS_LA >> 12) * 8
	movq $0, GD_PT_B + (GD_NP_LA >> 12) * 8		/* ... a hole */
	movabs $GD_TAG1, %rax
	mov %rax, GD_DATA
	movabs $GD_TAG4, %rax
	mov %rax, GD_ALIAS_GPA
	mov $GD_CR3B, %eax
	mov %rax, %cr3					/* exit: CR access */
	mov %cr3, %rax					/* 13: MOV from CR3 (exit) reads the guest's own CR3 */
	mov $GD_CR3B, %ebx
	CHECK 13
	mov GD_ALIAS_LA, %rax				/* 0: the alias reads GD_DATA */
	movabs $GD_TAG1, %rbx
	CHECK 0
	mov $(GD_PT_B + (GD_ALIAS_LA >> 12) * 8), %rdi	/* a PTE write (emulated), INVLPG */
	mov $(GD_ALIAS_GPA | 3), %eax
	mov %rax, (%rdi)
	invlpg GD_ALIAS_LA
	mov GD_ALIAS_LA, %rax				/* 1: the alias reads GD_ALIAS_GPA now */
	movabs $GD_TAG4, %rbx
	CHECK 1
	mov $(GD_ALIAS_LA + 0x123), %ebx		/* 2: translate */
	HC 1
	mov $(GD_ALIAS_GPA + 0x123), %ebx
	CHECK 2
	mov (%rdi), %rax				/* 3: the PTE holds what was written (+ accessed) */
	and $~0x60, %rax
	mov $(GD_ALIAS_GPA | 3), %ebx
	CHECK 3
	mov $GD_NP_LA, %rdi				/* 4-5: read a hole: #PF, error code 0 */
	mov (%rdi), %rax
	mov GD_PF_REC, %rax
	xor %ebx, %ebx
	CHECK 4
	mov GD_PF_REC + 8, %rax
	mov $GD_NP_LA, %ebx
	CHECK 5
	mov $GD_RO_LA, %rdi				/* 6-8: write a read-only page: #PF, error code P|W */
	mov %rax, (%rdi)
	mov GD_PF_REC, %rax
	mov $3, %ebx
	CHECK 6
	mov GD_PF_REC + 8, %rax
	mov $GD_RO_LA, %ebx
	CHECK 7
	mov GD_PF_REC + 16, %rax
	mov $2, %ebx
	CHECK 8
	mov GD_RO_LA, %rax				/* 9: the read-only page is unchanged */
	movabs $GD_TAG1, %rbx
	CHECK 9
	mov $GD_ROM, %rdi				/* 10: ROM write dropped by the VMM */
	mov (%rdi), %rax
	mov $0x5a5a, %eax
	mov %rax, (%rdi)
	mov (%rdi), %rax
	movabs $GD_ROM_TAG, %rbx
	CHECK 10
	TSC						/* 11: monotonic TSC */
	mov %rax, %r13
	TSC
	xor %ebx, %ebx
	cmp %r13, %rax
	seta %bl
	mov $1, %eax
	CHECK 11
	lea msg_shadow(%rip), %rbx			/* 12: print */
	mov $(msg_shadow_end - msg_shadow), %ecx
	HC 2
	xor %ebx, %ebx
	CHECK 12
	mov %cr4, %rax					/* 14: CR4.PGE cleared (exit: emulated) reads back clear */
	mov %rax, %r13
	btr $7, %rax
	mov %rax, %cr4
	mov %cr4, %rax
	mov %r13, %rbx
	btr $7, %rbx
	CHECK 14
	mov %r13, %cr4					/* PGE set again (exit) */
	mov %cr0, %rax					/* 15: CR0.WP = 0 (exit): a supervisor write to */
	mov %rax, %r13					/* the read-only page goes through (SDM vol. 3A 4.6.1) */
	btr $16, %rax
	mov %rax, %cr0
	movabs $GD_TAG2, %rax
	mov %rax, GD_RO_LA
	mov %r13, %cr0					/* WP set again (exit) */
	mov GD_RO_LA, %rbx
	CHECK 15
	EXCEPTIONS 16, 17				/* 16-17: #UD, #GP(0) in the guest's IDT */
	mov %r15, %rbx
	mov %r14, %rcx
	HC 4
	hlt
/* The guest's GDT (null, 64-bit code 0x08, data 0x10, accessed set) and IDT: #UD, #GP, #PF. */
descriptors:
	mov $GD_GDT, %rdi
	movq $0, (%rdi)
	movabs $0x00af9b000000ffff, %rax
	mov %rax, 8(%rdi)
	movabs $0x00cf93000000ffff, %rax
	mov %rax, 16(%rdi)
	movw $23, 0x100(%rdi)
	movq $GD_GDT, 0x102(%rdi)
	lgdt 0x100(%rdi)
	movw $0xfff, 0x110(%rdi)
	movq $GD_IDT, 0x112(%rdi)
	lidt 0x110(%rdi)
	GATE 6, ud_handler
	GATE 13, gp_handler
	GATE 14, pf_handler
	ret
/* #UD: count; skip the 2-byte UD2. */
ud_handler:
	incq GD_EXC_REC
	addq $2, (%rsp)
	iretq
/* #GP: record the error code, RF of the RFLAGS pushed, count; skip the 3-byte MOV to CR4. */
gp_handler:
	pop %rax
	mov %rax, GD_EXC_REC + 8
	mov 16(%rsp), %rax
	and $0x10000, %eax
	mov %rax, GD_EXC_REC + 24
	incq GD_EXC_REC + 16
	addq $3, (%rsp)
	iretq
/* #PF: record error code, CR2, count; skip the 3-byte faulting MOV. */
pf_handler:
	pop %rax
	mov %rax, GD_PF_REC
	mov %cr2, %rax
	mov %rax, GD_PF_REC + 8
	incq GD_PF_REC + 16
	addq $3, (%rsp)
	iretq

msg_ept:
	.ascii "EPT guest done: demand-paged, dirty-logged, ROM write dropped"
msg_ept_end:
msg_shadow:
	.ascii "shadow guest done: own tables, PTE write + INVLPG, two #PFs handled"
msg_shadow_end:
guest_demo_end:
