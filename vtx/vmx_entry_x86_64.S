/* vmx_entry_x86_64.S: enter the guest (VMLAUNCH/VMRESUME) and come back to C at the VM exit, guest RAX/RSI/RDI saved. */
	.text
	.globl vmx_enter
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
	mov %esi, %ecx
	mov 0(%rdi), %rax
	mov 8(%rdi), %rsi
	mov 16(%rdi), %rdi
	test %ecx, %ecx
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
	mov %rsi, 8(%rax)
	mov %rdi, 16(%rax)
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
