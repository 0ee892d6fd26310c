/* guest_x86_64.S: guest code, copied to guest-physical 0x1000: a smoke test and the oracle's one-access stubs. */
	.section .rodata
	.globl guest_code, guest_code_end
	.globl guest_smoke, guest_read, guest_write, guest_fetch
	.code64
	.p2align 4
guest_code:
/* Smoke test: CPUID, VMCALL and OUT exit to the dispatcher, HLT ends it. */
guest_smoke:
	mov $0, %eax
	cpuid
	vmcall
	mov $'G', %al
	out %al, $0xE9
	hlt
/* One access each: RSI = the tables to switch to (the code page stays in the
 * TLB: it is global, SDM vol. 3A 4.10.4.1), RDI = the linear address. */
guest_read:
	mov %rsi, %cr3
	mov (%rdi), %rax
	hlt
guest_write:
	mov %rsi, %cr3
	mov %rax, (%rdi)
	hlt
guest_fetch:
	mov %rsi, %cr3
	jmp *%rdi
guest_code_end:
