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
/* The segmentation oracle (oracle_seg.c): EAX = the selector, EDI (RDI) =
 * the offset (64-bit SS accesses: RBP, its default segment), EBX (ECX: the
 * high half of an 8-byte write in 32-bit code) = what a write stores, ESI =
 * a far pointer. Each stub: any preparation, the segment-register load, one
 * access through that register, anything after, HLT. seg_stubs lists the
 * load, access and HLT addresses of each (32-bit: ES SS DS FS GS x r1 r2 r4
 * r8 w1 w2 w4 w8, then far JMP and far CALL; then 64-bit, the same 40). */
	.globl seg_stubs
.macro SEGSTUB name, prep, load, access, post
	\prep
\name\()_load:
	\load
\name\()_acc:
	\access
	\post
\name\()_hlt:
	hlt
	.subsection 1
	.quad \name\()_load, \name\()_acc, \name\()_hlt
	.subsection 0
.endm
.macro SEGOPS32 s
	SEGSTUB s32_\s\()_r1, , "mov %eax, %\s", "movzbl %\s:(%edi), %eax"
	SEGSTUB s32_\s\()_r2, , "mov %eax, %\s", "movzwl %\s:(%edi), %eax"
	SEGSTUB s32_\s\()_r4, , "mov %eax, %\s", "mov %\s:(%edi), %eax"
	SEGSTUB s32_\s\()_r8, , "mov %eax, %\s", "movq %\s:(%edi), %mm0", "movd %mm0, %eax; psrlq $32, %mm0; movd %mm0, %edx"
	SEGSTUB s32_\s\()_w1, , "mov %eax, %\s", "mov %bl, %\s:(%edi)"
	SEGSTUB s32_\s\()_w2, , "mov %eax, %\s", "mov %bx, %\s:(%edi)"
	SEGSTUB s32_\s\()_w4, , "mov %eax, %\s", "mov %ebx, %\s:(%edi)"
	SEGSTUB s32_\s\()_w8, "movd %ebx, %mm0; movd %ecx, %mm1; punpckldq %mm1, %mm0", "mov %eax, %\s", "movq %mm0, %\s:(%edi)"
.endm
.macro SEGOPS64 s, m
	SEGSTUB s64_\s\()_r1, , "mov %eax, %\s", "movzbl \m, %eax"
	SEGSTUB s64_\s\()_r2, , "mov %eax, %\s", "movzwl \m, %eax"
	SEGSTUB s64_\s\()_r4, , "mov %eax, %\s", "mov \m, %eax"
	SEGSTUB s64_\s\()_r8, , "mov %eax, %\s", "mov \m, %rax"
	SEGSTUB s64_\s\()_w1, , "mov %eax, %\s", "mov %bl, \m"
	SEGSTUB s64_\s\()_w2, , "mov %eax, %\s", "mov %bx, \m"
	SEGSTUB s64_\s\()_w4, , "mov %eax, %\s", "mov %ebx, \m"
	SEGSTUB s64_\s\()_w8, , "mov %eax, %\s", "mov %rbx, \m"
.endm
	.subsection 1
	.p2align 3
seg_stubs:
	.subsection 0
	.code32
	SEGOPS32 es
	SEGOPS32 ss
	SEGOPS32 ds
	SEGOPS32 fs
	SEGOPS32 gs
	SEGSTUB s32_cs_jmp, , "ljmp *(%esi)", , 
	SEGSTUB s32_cs_call, , "lcall *(%esi)", ,
	.code64
	/* 64-bit mode ignores ES, DS and SS overrides (SDM vol. 3A 3.2.4): SS through RBP. */
	SEGOPS64 es, (%rdi)
	SEGOPS64 ss, (%rbp)
	SEGOPS64 ds, (%rdi)
	SEGOPS64 fs, %fs:(%rdi)
	SEGOPS64 gs, %gs:(%rdi)
guest_code_end:
