/* guest_x86_64.S: guest code, copied to guest-physical 0x1000: a smoke test and the oracles' one-access stubs (64-bit and 32-bit code). */
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
/* The modes oracle: the guest starts on the scenario's tables (no MOV to
 * CR3: it may run at CPL 3), RDI = the linear address, RBX = what a write
 * stores; the _pkru entries first load PKRU from EAX (ECX = EDX = 0). Each
 * access is followed by its HLT (the _hlt labels). */
	.globl guest_m64_read, guest_m64_write, guest_m64_fetch, guest_m64_pkru_read, guest_m64_pkru_write
	.globl guest_m64_pkru_fetch, guest_m64_read_hlt, guest_m64_write_hlt
	.globl guest_m32_read, guest_m32_write, guest_m32_fetch, guest_m32_read_hlt, guest_m32_write_hlt
guest_m64_pkru_read:
	wrpkru
guest_m64_read:
	mov (%rdi), %rax
guest_m64_read_hlt:
	hlt
guest_m64_pkru_write:
	wrpkru
guest_m64_write:
	mov %rbx, (%rdi)
guest_m64_write_hlt:
	hlt
guest_m64_pkru_fetch:
	wrpkru
guest_m64_fetch:
	jmp *%rdi
	.code32
guest_m32_read:
	mov (%edi), %eax
guest_m32_read_hlt:
	hlt
guest_m32_write:
	mov %ebx, (%edi)
guest_m32_write_hlt:
	hlt
guest_m32_fetch:
	jmp *%edi
	.code64
guest_code_end:
