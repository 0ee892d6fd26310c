/* vmx_entry_x86_64.S: enter the guest (VMLAUNCH/VMRESUME) and come back to C at the VM exit, every guest GPR but RSP saved. */
	.text
	.globl vmx_enter
/* struct vtx_gprs: rax rcx rdx rbx (rsp) rbp rsi rdi r8..r15, 8 bytes each. */
/* int vmx_enter(struct vtx_gprs *g [rdi], int resume [esi]) */
vmx_enter:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	push %rdi			/* the exit path finds g at (%rsp) */
	mov $0x6C14, %rax		/* HOST_RSP */
	vmwrite %rsp, %rax
	jbe 2f
	mov $0x6C16, %rax		/* HOST_RIP */
	lea vmx_exit_point(%rip), %rdx
	vmwrite %rdx, %rax
	jbe 2f
	test %esi, %esi
	mov 0(%rdi), %rax
	mov 8(%rdi), %rcx
	mov 16(%rdi), %rdx
	mov 24(%rdi), %rbx
	mov 40(%rdi), %rbp
	mov 48(%rdi), %rsi
	mov 64(%rdi), %r8
	mov 72(%rdi), %r9
	mov 80(%rdi), %r10
	mov 88(%rdi), %r11
	mov 96(%rdi), %r12
	mov 104(%rdi), %r13
	mov 112(%rdi), %r14
	mov 120(%rdi), %r15
	mov 56(%rdi), %rdi		/* MOVs leave the flags of the TEST alone */
	jnz 1f
	vmlaunch
	jmp 2f
1:	vmresume
2:	/* VMfail: back to the caller with 1. */
	pop %rdi
	mov $1, %eax
	jmp 3f
vmx_exit_point:
	push %rax
	mov 8(%rsp), %rax		/* g */
	mov %rcx, 8(%rax)
	mov %rdx, 16(%rax)
	mov %rbx, 24(%rax)
	mov %rbp, 40(%rax)
	mov %rsi, 48(%rax)
	mov %rdi, 56(%rax)
	mov %r8, 64(%rax)
	mov %r9, 72(%rax)
	mov %r10, 80(%rax)
	mov %r11, 88(%rax)
	mov %r12, 96(%rax)
	mov %r13, 104(%rax)
	mov %r14, 112(%rax)
	mov %r15, 120(%rax)
	pop %rsi
	mov %rsi, 0(%rax)
	pop %rdi
	xor %eax, %eax
3:	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret
