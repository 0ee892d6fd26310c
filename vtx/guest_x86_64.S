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
/* The 8 accesses of 32-bit code through memory operand m (prefix p: the stubs' names). */
.macro SEGOPSM p, s, m
	SEGSTUB \p\()_\s\()_r1, , "mov %eax, %\s", "movzbl \m, %eax"
	SEGSTUB \p\()_\s\()_r2, , "mov %eax, %\s", "movzwl \m, %eax"
	SEGSTUB \p\()_\s\()_r4, , "mov %eax, %\s", "mov \m, %eax"
	SEGSTUB \p\()_\s\()_r8, , "mov %eax, %\s", "movq \m, %mm0", "movd %mm0, %eax; psrlq $32, %mm0; movd %mm0, %edx"
	SEGSTUB \p\()_\s\()_w1, , "mov %eax, %\s", "mov %bl, \m"
	SEGSTUB \p\()_\s\()_w2, , "mov %eax, %\s", "mov %bx, \m"
	SEGSTUB \p\()_\s\()_w4, , "mov %eax, %\s", "mov %ebx, \m"
	SEGSTUB \p\()_\s\()_w8, "movd %ebx, %mm0; movd %ecx, %mm1; punpckldq %mm1, %mm0", "mov %eax, %\s", "movq %mm0, \m"
.endm
.macro SEGOPS32 s
	SEGOPSM s32, \s, %\s:(%edi)
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
/* The second set (rows 82-125 of seg_stubs, then seg_loads): 16-bit
 * addressing in 32-bit code (the access at SEG16_DISP(%di): the effective
 * address is (DI + disp) mod 2^16, SDM vol. 1 3.7.5), and far JMP/CALL in
 * 64-bit mode through m16:32 and (REX.W) m16:64 pointers. */
.macro SEGOPS16 s
	SEGOPSM s16, \s, %\s:0x7ff0(%di)
.endm
	.code32
	SEGOPS16 es
	SEGOPS16 ss
	SEGOPS16 ds
	SEGOPS16 fs
	SEGOPS16 gs
	.code64
	SEGSTUB s64_cs_jmp, , "ljmp *(%rsi)", ,
	SEGSTUB s64_cs_call, , "lcall *(%rsi)", ,
	/* REX.W (0x48) as a byte: the m16:64 form; clang's assembler has no rex.W mnemonic. */
	SEGSTUB s64_cs_jmpq, , ".byte 0x48; ljmp *(%rsi)", ,
	SEGSTUB s64_cs_callq, , ".byte 0x48; lcall *(%rsi)", ,
/* Loads by POP and by LDS/LES/LSS/LFS/LGS (seg_loads): the load, then a jump
 * (RDX) to the access of the MOV stub of the same register and operation,
 * whose fault RIP and HLT identify the phases. The 32-bit ones first set
 * MM0 for an 8-byte write (the MOV stub does that before its load). POP reads
 * the selector at ESP/RSP through SS; LxS reads the far pointer at ESI
 * (m16:32) and puts its offset in EDI (64-bit SS: EBP, the SS stubs' base). */
	.globl seg_loads
.macro SEGLOAD name, prep, load, jump
\name:
	\prep
\name\()_ld:
	\load
	\jump
	.subsection 1
	.quad \name, \name\()_ld
	.subsection 0
.endm
.macro SEGLOAD32 name, load
	SEGLOAD \name, "movd %ebx, %mm0; movd %ecx, %mm1; punpckldq %mm1, %mm0", "\load", "jmp *%edx"
.endm
.macro SEGLOAD64 name, load
	SEGLOAD \name, , "\load", "jmp *%rdx"
.endm
	.subsection 1
	.p2align 3
seg_loads:
	.subsection 0
	.code32
	SEGLOAD32 l32_pop_es, "pop %es"
	SEGLOAD32 l32_pop_ss, "pop %ss"
	SEGLOAD32 l32_pop_ds, "pop %ds"
	SEGLOAD32 l32_pop_fs, "pop %fs"
	SEGLOAD32 l32_pop_gs, "pop %gs"
	SEGLOAD32 l32_les, "les (%esi), %edi"
	SEGLOAD32 l32_lss, "lss (%esi), %edi"
	SEGLOAD32 l32_lds, "lds (%esi), %edi"
	SEGLOAD32 l32_lfs, "lfs (%esi), %edi"
	SEGLOAD32 l32_lgs, "lgs (%esi), %edi"
	.code64
	SEGLOAD64 l64_pop_fs, "pop %fs"
	SEGLOAD64 l64_pop_gs, "pop %gs"
	SEGLOAD64 l64_lss, "lss (%rsi), %ebp"
	SEGLOAD64 l64_lfs, "lfs (%rsi), %edi"
	SEGLOAD64 l64_lgs, "lgs (%rsi), %edi"
guest_code_end:
