/* kvm_guest.S: the KVM oracle's guest code, copied into guest memory (position-independent). */

/* Layout: 32 exception stubs of 16 bytes each (IDT vector N -> start + 16*N),
 * the common handler, then the three access entry points. Registers set by
 * the host: RBX = linear address to access, CL = byte to write,
 * R15 = all ones ("no exception yet"). */

	.text
	.globl kvm_guest_start, kvm_guest_end
	.globl kvm_guest_do_read, kvm_guest_read_done
	.globl kvm_guest_do_write, kvm_guest_write_done
	.globl kvm_guest_do_fetch

/* One stub: R14 = error code (popped if the CPU pushed one, else 0),
 * R15 = vector, then the common handler. */
	.macro VEC n, err
	.balign 16
	.if \err
	pop	%r14
	.else
	xor	%r14d, %r14d
	.endif
	mov	$\n, %r15d
	jmp	.Lcommon
	.endm

	.balign 16
kvm_guest_start:
#include "kvm_idt_vectors.inc"

/* Common handler (CPL 0): R13 = CR2, R12 = faulting RIP, R11 = its CS;
 * then HLT, which exits to the host with these registers. */
	.balign 16
.Lcommon:
	mov	%cr2, %r13
	mov	(%rsp), %r12
	mov	8(%rsp), %r11
1:	hlt
	jmp	1b

/* The one access under test. At CPL 0 the HLT exits to the host; at CPL 3
 * it raises #GP(0), whose handler reports RIP = the HLT. */
	.balign 16
kvm_guest_do_read:
	movb	(%rbx), %al	/* one-byte read: never crosses a page */
kvm_guest_read_done:
	hlt
	ud2

	.balign 16
kvm_guest_do_write:
	movb	%cl, (%rbx)	/* one-byte write */
kvm_guest_write_done:
	hlt
	ud2

/* Fetch: jump to the address; the host put a HLT (0xF4) there. */
	.balign 16
kvm_guest_do_fetch:
	jmp	*%rbx
	ud2

	.balign 16
kvm_guest_end:

	.section .note.GNU-stack,"",@progbits
