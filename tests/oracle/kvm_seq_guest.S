/* kvm_seq_guest.S: the shadow oracle's guest: an op interpreter plus exception stubs (position-independent). */

/* Registers while interpreting (the host sets them): R12 = current op
 * (32 bytes: type, a, b), R13 = its result (64 bytes: status, vector,
 * error code, CR2, RIP, RAX, CS), RSP = the CPL 0 stack top.
 * Exceptions never return: the handler records the exception in the
 * current result, resets RSP and goes on with the next op. CPL 3 accesses
 * run in a user stub entered by IRETQ and end with INT3 (gate DPL 3). A
 * fetch lands on the HLT (0xF4) the host put at every data word: at CPL 0
 * it exits to the host, which resumes at ksq_guest_fetch_done; at CPL 3 it
 * raises #GP(0) at the target. (An INT3 at CPL 0 makes this KVM try to
 * emulate it, which fails.) */

	.set KSTACK, 0xf000
	.set USTACK, 0x11000
	.set UCODE, 0x1b
	.set UDATA, 0x23

	.text
	.globl ksq_guest_start, ksq_guest_end, ksq_guest_entry
	.globl ksq_guest_uread_done, ksq_guest_uwrite_done
	.globl ksq_guest_fetch_done, ksq_guest_end_hlt

	.macro VEC n, err
	.balign 16
	.if \err
	.else
	push	$0
	.endif
	push	$\n
	jmp	.Lexc
	.endm

	.balign 16
ksq_guest_start:
#include "kvm_idt_vectors.inc"

/* Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS. */
	.balign 16
.Lexc:
	mov	(%rsp), %rcx
	mov	%rcx, 8(%r13)
	mov	8(%rsp), %rcx
	mov	%rcx, 16(%r13)
	mov	%cr2, %rcx
	mov	%rcx, 24(%r13)
	mov	16(%rsp), %rcx
	mov	%rcx, 32(%r13)
	mov	%rax, 40(%r13)
	mov	24(%rsp), %rcx
	mov	%rcx, 48(%r13)
	movq	$2, (%r13)
	mov	$KSTACK, %rsp
	jmp	.Lnext

	.balign 16
ksq_guest_entry:
.Lloop:
	mov	(%r12), %eax
	cmp	$1, %eax
	je	.Lwrite64
	cmp	$2, %eax
	je	.Lcr3
	cmp	$3, %eax
	je	.Linvlpg
	cmp	$4, %eax
	je	.Lread
	cmp	$5, %eax
	je	.Lwrite
	cmp	$6, %eax
	je	.Lfetch
	cmp	$7, %eax
	je	.Luser
	cmp	$8, %eax
	je	.Luser
	cmp	$9, %eax
	je	.Luser
.Lend:
	hlt
ksq_guest_end_hlt:
	jmp	.Lend

.Lwrite64:
	mov	8(%r12), %rdi
	mov	16(%r12), %rax
	mov	%rax, (%rdi)
	jmp	.Lok
.Lcr3:
	mov	8(%r12), %rax
	mov	%rax, %cr3
	jmp	.Lok
.Linvlpg:
	mov	8(%r12), %rdi
	invlpg	(%rdi)
	jmp	.Lok
.Lread:
	mov	8(%r12), %rdi
	mov	(%rdi), %rax
	mov	%rax, 40(%r13)
	jmp	.Lok
.Lwrite:
	mov	8(%r12), %rdi
	mov	16(%r12), %rax
	mov	%rax, (%rdi)
	jmp	.Lok
.Lfetch:
	mov	8(%r12), %rdi
	jmp	*%rdi		/* lands on HLT: the host resumes here */
ksq_guest_fetch_done:
	jmp	.Lok

/* CPL 3: IRETQ to the stub for the op type. */
.Luser:
	mov	8(%r12), %rdi
	mov	16(%r12), %rax
	lea	.Lustub_read(%rip), %rcx
	cmpl	$7, (%r12)
	je	1f
	lea	.Lustub_write(%rip), %rcx
	cmpl	$8, (%r12)
	je	1f
	lea	.Lustub_fetch(%rip), %rcx
1:	push	$UDATA
	push	$USTACK
	push	$2
	push	$UCODE
	push	%rcx
	iretq

.Lok:
	movq	$1, (%r13)
.Lnext:
	add	$32, %r12
	add	$64, %r13
	jmp	.Lloop

	.balign 16
.Lustub_read:
	mov	(%rdi), %rax
ksq_guest_uread_done:
	int3
	ud2
.Lustub_write:
	mov	%rax, (%rdi)
ksq_guest_uwrite_done:
	int3
	ud2
.Lustub_fetch:
	jmp	*%rdi
	ud2

	.balign 16
ksq_guest_end:

	.section .note.GNU-stack,"",@progbits
