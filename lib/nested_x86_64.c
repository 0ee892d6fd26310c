/* libvmem nested walk in x86-64 assembly: vmem_nested_walk's common case (4-level guest paging and EPT, a 4K guest page), the C for the rest. */
#include <stddef.h>
#include <libvmem/nested.h>
#include "ept_int.h"
#include "gmem_int.h"
#include "mmu_int.h"

#if NESTED_ASM
/* vmem_nested_walk (System V ABI), the case nested_fast (lib/nested.c) and
 * ept_fast_xlate (lib/ept_fast.h) take without a write: no trace, IA-32e
 * paging with 4 levels whose access takes the window path's rights test
 * (mmu_int.h: wasm, wtest, wwant, wtail; BMI2), canonical, a 4-level EPT,
 * every guest entry of a 4K page (a guest large page goes to the C), EPT
 * leaves of 4K or 2M with memory type WB whose A/D flags (if on) are set,
 * every table in the RAM regions of e->hint (EPT) and e->ghint (guest),
 * else the view's. Anything else jumps to vmi_nested_walk_c with the
 * arguments as they came. It reads what the C reads, writes only *res.
 *
 * The per-walk EPT cache of the C (struct ept_pwc) lives in registers and
 * the frame: K1 the 2-MByte region of the last guest-entry translation,
 * with its page table (state a) or the 2-MByte page that maps it (state
 * b: each state has its own copy of the guest walk, so no tag is tested);
 * K2 the 1-GByte region, with its page directory. EPT entries are tested
 * once, as OR accumulations: non-leaf entries XORed with 0x507 (R, W, X,
 * A, XU: every bit a class wants set) against fcls mask[4] (their reserved
 * bits, PS and the class's rights; PS in a PDPTE or PDE is tested where it
 * is read), so that ((e ^ 0x507) & mask) == 0 is (e & mask) == want; the
 * paging class's PTEs XORed with its lwant against mask[1] (r10), at the
 * guest leaf. An entry that fails still gives an address, read only inside
 * its region, and the walk then fails. Guest entries as the window walk
 * (walk.c): flipped (0x27) and ORed (r11), tested at the leaf against
 * wtest[k]. The chain of loads is kept short: each table's entry address
 * is its host-physical address (one AND off the entry) plus an index and
 * the region's host delta made off the chain; bounds are tested on a copy.
 *
 * rdi m, rcx la (both never written); rsi the paging class, then the final
 * access's; rdx the guest tables' region's base, negated; r8 -K1; r9 K1's
 * page table less K1 >> 9 (a: its PTE for gpa g is at r9 + (g >> 12) * 8)
 * or its page less K1 (b); r10 the EPT PTEs; r11 the guest entries; rax the
 * guest entry / table; rbp the EPT entry / page; rbx scratch. */

/* vmem_mmu */
#define NX_M_ROOT 4456
/* vmem_ept_mmu */
#define NX_E_TOP 0
#define NX_E_AD 1
#define NX_E_PERMMASK 3
#define NX_E_ROOT 32
#define NX_E_HINT 248
#define NX_E_GHINT 252
#define NX_E_FCLS 264
#define NX_FCLS_SIZE 96
/* VMEM_EPT_PAGING's row of fcls relative to row 0: 3 * 2 * sizeof(struct ept_fcls) */
#define NX_PAGING_OFF 576
/* struct ept_fcls */
#define NX_C_M1 8
#define NX_C_M4 32
#define NX_C_LM2 64
#define NX_C_LWANT 88
/* vmem_gmem, struct gm_region */
#define NX_G_R 56
#define NX_G_N 64
#define NX_R_SIZE 48

_Static_assert(offsetof(struct vmem_mmu, root) == NX_M_ROOT && offsetof(struct vmem_mmu, wasm) == MMU_OFF_WASM &&
	       offsetof(struct vmem_mmu, canon_add) == MMU_OFF_CANON_ADD &&
	       offsetof(struct vmem_mmu, canon_lim) == MMU_OFF_CANON_LIM &&
	       offsetof(struct vmem_mmu, wframe) == MMU_OFF_WFRAME && offsetof(struct vmem_mmu, wtest) == MMU_OFF_WTEST &&
	       offsetof(struct vmem_mmu, wwant) == MMU_OFF_WWANT && offsetof(struct vmem_mmu, wtail) == MMU_OFF_WTAIL,
	       "vmem_mmu layout");
_Static_assert(offsetof(struct vmem_ept_mmu, top) == NX_E_TOP && offsetof(struct vmem_ept_mmu, ad) == NX_E_AD &&
	       offsetof(struct vmem_ept_mmu, permmask) == NX_E_PERMMASK &&
	       offsetof(struct vmem_ept_mmu, root) == NX_E_ROOT && offsetof(struct vmem_ept_mmu, hint) == NX_E_HINT &&
	       offsetof(struct vmem_ept_mmu, ghint) == NX_E_GHINT && offsetof(struct vmem_ept_mmu, fcls) == NX_E_FCLS &&
	       sizeof(struct ept_fcls) == NX_FCLS_SIZE &&
	       NX_PAGING_OFF == VMEM_EPT_PAGING * 2 * NX_FCLS_SIZE && 3 << 6 == 2 * NX_FCLS_SIZE &&
	       sizeof(vmi_nx_final_aidx[0]) == 1 && sizeof(vmi_nx_final_aidx) == 8 && sizeof(((struct vmem_ept_mmu *)0)->hint) == 4 &&
	       sizeof(((struct vmem_ept_mmu *)0)->ghint) == 4 && sizeof(((struct vmem_ept_mmu *)0)->ad) == 1,
	       "vmem_ept_mmu layout");
_Static_assert(offsetof(struct ept_fcls, mask[1]) == NX_C_M1 && offsetof(struct ept_fcls, mask[4]) == NX_C_M4 &&
	       offsetof(struct ept_fcls, lmask[2]) == NX_C_LM2 && offsetof(struct ept_fcls, lwant) == NX_C_LWANT,
	       "struct ept_fcls layout");
_Static_assert(offsetof(struct vmem_gmem, r) == NX_G_R && offsetof(struct vmem_gmem, n) == NX_G_N &&
	       sizeof(((struct vmem_gmem *)0)->n) == 4 && offsetof(struct gm_region, gpa) == 0 &&
	       offsetof(struct gm_region, size) == 8 && offsetof(struct gm_region, host) == 16 &&
	       sizeof(struct gm_region) == NX_R_SIZE, "vmem_gmem layout");
_Static_assert(offsetof(vmem_nested_result, hpa) == 0 && offsetof(vmem_nested_result, gpa) == 8 &&
	       offsetof(vmem_nested_result, page_size) == 16 && offsetof(vmem_nested_result, exit_qual) == 24 &&
	       offsetof(vmem_nested_result, linear) == 32 && offsetof(vmem_nested_result, error_code) == 40 &&
	       offsetof(vmem_nested_result, status) == 44 && offsetof(vmem_nested_result, final) == 45 &&
	       offsetof(vmem_nested_result, guest) == 48 && offsetof(vmem_nested_result, ept) == 80 &&
	       sizeof(vmem_nested_result) == 136, "vmem_nested_result layout");
_Static_assert(offsetof(vmem_walk_result, gpa) == 0 && offsetof(vmem_walk_result, page_size) == 8 &&
	       offsetof(vmem_walk_result, entry) == 16 && offsetof(vmem_walk_result, error_code) == 24 &&
	       sizeof(vmem_walk_result) == 32, "vmem_walk_result layout");
_Static_assert(offsetof(vmem_ept_result, gpa) == 0 && offsetof(vmem_ept_result, hpa) == 8 &&
	       offsetof(vmem_ept_result, page_size) == 16 && offsetof(vmem_ept_result, exit_qual) == 24 &&
	       offsetof(vmem_ept_result, linear) == 32 && offsetof(vmem_ept_result, entry) == 40 &&
	       offsetof(vmem_ept_result, status) == 48 && offsetof(vmem_ept_result, level) == 49 &&
	       offsetof(vmem_ept_result, perms) == 50 && offsetof(vmem_ept_result, memtype) == 51 &&
	       offsetof(vmem_ept_result, ipat) == 52 && sizeof(vmem_ept_result) == 56, "vmem_ept_result layout");
_Static_assert(VMEM_EPT_READ == 0 && VMEM_EPT_WRITE == 1 && VMEM_EPT_FETCH == 2 && VMEM_EPT_PAGING == 3 &&
	       EPT_AIDX_FETCH_USER == 5 && VMEM_ACC_WRITE == 1 && VMEM_ACC_FETCH == 2 && VMEM_WALK_NO_AD == 1 &&
	       MMU_ACC_INDEXES == 32 && WIN_FLIP == 0x27 && VMEM_EPT_PS == 0x80 && EPT_MT_WANT_WB == 0x30 &&
	       VMEM_NESTED_OK == 0 && VMEM_WALK_OK == 0 && VMEM_EPT_OK == 0, "constants the assembly uses");

/* The frame, from rsp after the prologue. */
#define NX_FK2 0     /* K2: a guest-physical address in the 1-GByte region */
#define NX_FP2 8     /* P2: its page directory (host address) */
#define NX_FO2 16    /* the EPT PML4E and PDPTE above P2, flipped and ORed */
#define NX_FK 24     /* k = 2 * access + NO_AD (access and flags, for the C) */
#define NX_FENB 32   /* the EPT view: its region's base (host-physical), negated */
#define NX_FES 40    /* size */
#define NX_FED 48    /* host address less host-physical address */
#define NX_FPM 56    /* the EPT result's perms mask (e->permmask) at bits 19:16, ipat's bit 32 */
#define NX_FGS 64    /* the guest tables' region: size (rdx: its base, negated) */
#define NX_FGD 72    /* host address less host-physical address */
#define NX_FRAME 80
/* then the arguments in rsi and rdx, rbp, rbx, the return address, res, trace */
#define NX_FE NX_FRAME
#define NX_FRES (NX_FRAME + 40)

#define NX_S(x) #x
#define NX_N(x) NX_S(x)
#define NX_F(x) NX_N(x) "(%rsp)"
#define NX_ADDR ".Lnx_addr(%rip)"  /* EPT_ADDR: bits 51:12 */
#define NX_M4 NX_N(NX_C_M4) "(%rsi)"
#define NX_LW NX_N(NX_C_LWANT) "(%rsi)"

/* The host-physical table or page rbp in the EPT view (regions do not wrap
 * and are 4 KiB granular: the page is in it). */
#define NX_INVIEW                                                                               \
	"	movq " NX_F(NX_FENB) ", %rbx\n"                                                 \
	"	addq %rbp, %rbx\n"                                                              \
	"	cmpq " NX_F(NX_FES) ", %rbx\n"                                                  \
	"	jae .Lnx_c\n"
/* The EPT PML4E for rax to rbp (its host address: e->root plus the view's delta). */
#define NX_PML4E                                                                                \
	"	movq " NX_F(NX_FE) ", %rbx\n"                                                   \
	"	movq " NX_N(NX_E_ROOT) "(%rbx), %rbx\n"                                         \
	"	addq " NX_F(NX_FED) ", %rbx\n"                                                  \
	"	rorxq $36, %rax, %rbp\n"                                                        \
	"	andl $0xff8, %ebp\n"                                                            \
	"	movq (%rbx,%rbp), %rbp\n"
/* Entry (bits SH+8:SH of rax) of the table at host-physical rbp of the
 * view, to rbp. */
#define NX_EPT_NEXT(SH)                                                                         \
	"	rorxq $" #SH ", %rax, %rbx\n"                                                   \
	"	andl $0xff8, %ebx\n"                                                            \
	"	addq " NX_F(NX_FED) ", %rbx\n"                                                  \
	"	movq (%rbx,%rbp), %rbp\n"

/* The end of an EPT translation for a guest paging-structure access of
 * guest-physical rax: the PT at host-physical rbp (in the view) becomes
 * K1's (P1 biased by K1, so that its PTE for rax is at P1 + (rax >> 12) *
 * 8), its PTE read and accumulated (r10), the page to rbp, on at .Lnx_aL. */
#define NX_PT(L)                                                                                \
	"	movq " NX_F(NX_FED) ", %r9\n"                                                   \
	"	addq %rbp, %r9\n"                                                               \
	"	rorxq $9, %rax, %rbx\n"                                                         \
	"	andl $0xff8, %ebx\n"                                                            \
	"	movq (%r9,%rbx), %rbp\n"                         /* PTE */                      \
	"	movq %rax, %r8\n"                                                               \
	"	andq $-0x200000, %r8\n"                                                         \
	"	negq %r8\n"                                      /* -K1 */                      \
	"	movq %r8, %rbx\n"                                                               \
	"	sarq $9, %rbx\n"                                                                \
	"	addq %rbx, %r9\n"                                                               \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq " NX_LW ", %rbx\n"                                                         \
	"	orq %rbx, %r10\n"                                                               \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	"	jmp .Lnx_a" #L "\n"

/* The PDE in rbp, of guest-physical rax, is a 2-MByte leaf (SDM 29.3.3):
 * the paging class's test (reserved bits 20:12, rights, A/D, WB), then
 * K1 names it, P1 the page less K1; the host page of rax to rbp, on at
 * .Lnx_bL. */
#define NX_LEAF2M(L)                                                                            \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq " NX_LW ", %rbx\n"                                                         \
	"	testq " NX_N(NX_C_LM2) "(%rsi), %rbx\n"                                         \
	"	jne .Lnx_c\n"                                                                   \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	"	movq %rax, %r8\n"                                                               \
	"	andq $-0x200000, %r8\n"                                                         \
	"	negq %r8\n"                                      /* -K1 */                      \
	"	leaq (%rbp,%r8), %r9\n"                                                         \
	"	movq %rax, %rbx\n"                                                              \
	"	andl $0x1ff000, %ebx\n"                                                         \
	"	orq %rbx, %rbp\n"                                                               \
	"	jmp .Lnx_b" #L "\n"

/* Guest level L's table at rax (4 KiB aligned): its EPT translation when
 * K1 is a page table (state a: its PTE) or a 2-MByte page (state b), the
 * host page to rbp; then the guest entry (address bits 12+9(L-1) up,
 * rotated by ROT = that less 3), inside the guest tables' region, to rax. */
#define NX_INGUEST                                                                              \
	"	leaq (%rbp,%rdx), %rbx\n"                                                       \
	"	cmpq " NX_F(NX_FGS) ", %rbx\n"                                                  \
	"	jae .Lnx_c\n"
#define NX_READ(ROT)                                                                            \
	NX_INGUEST                                                                              \
	"	rorxq $" #ROT ", %rcx, %rbx\n"                                                  \
	"	andl $0xff8, %ebx\n"                                                            \
	"	addq " NX_F(NX_FGD) ", %rbx\n"                                                  \
	"	movq (%rbx,%rbp), %rax\n"
#define NX_K1(L)                                                                                \
	"	leaq (%rax,%r8), %rbx\n"                                                        \
	"	cmpq $0x200000, %rbx\n"                                                         \
	"	jae .Lnx_m" #L "\n"
#define NX_LEVEL_A(L, ROT)                                                                      \
	NX_K1(L)                                                                                \
	"	shrq $12, %rax\n"                                                               \
	"	movq (%r9,%rax,8), %rbp\n"                       /* the EPT PTE */              \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq " NX_LW ", %rbx\n"                                                         \
	"	orq %rbx, %r10\n"                                                               \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	".Lnx_a" #L ":\n"                                                                       \
	NX_READ(ROT)
#define NX_LEVEL_B(L, ROT)                                                                      \
	NX_K1(L)                                                                                \
	"	leaq (%rax,%r9), %rbp\n"                                                        \
	".Lnx_b" #L ":\n"                                                                       \
	NX_READ(ROT)
/* A non-leaf guest entry: flipped into r11, its table to rax. */
#define NX_NONLEAF                                                                              \
	"	movq %rax, %rbx\n"                                                              \
	"	xorq $0x27, %rbx\n"                                                             \
	"	orq %rbx, %r11\n"                                                               \
	"	andq " NX_N(MMU_OFF_WFRAME) "(%rdi), %rax\n"

/* The cold side of a level: not in K1's region; K2's page directory, else
 * the PML4 (bits 63:48 of the address: beyond a 4-level EPT walk, which
 * the C refuses). Fills K2/P2 and K1/P1 as the C's ept_pwc. */
#define NX_MISS(L)                                                                              \
	".Lnx_m" #L ":\n"                                                                       \
	"	movq %rax, %rbx\n"                                                              \
	"	xorq " NX_F(NX_FK2) ", %rbx\n"                                                  \
	"	shrq $30, %rbx\n"                                                               \
	"	jne .Lnx_r" #L "\n"                                                             \
	"	rorxq $18, %rax, %rbx\n"                                                        \
	"	andl $0xff8, %ebx\n"                                                            \
	"	addq " NX_F(NX_FP2) ", %rbx\n"                                                  \
	"	movq (%rbx), %rbp\n"                             /* PDE */                      \
	"	testb $0x80, %bpl\n"                                                            \
	"	jne .Lnx_p" #L "\n"                                                             \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq $0x507, %rbx\n"                                                            \
	"	testq " NX_M4 ", %rbx\n"                         /* PS is 0: mask[4] is mask[2] */ \
	"	jne .Lnx_c\n"                                                                   \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	NX_PT(L)                                                                                \
	".Lnx_p" #L ":\n"                                                                       \
	NX_LEAF2M(L)                                                                            \
	".Lnx_r" #L ":\n"                                                                       \
	"	cmpq .Lnx_lim(%rip), %rax\n"                                                    \
	"	jae .Lnx_c\n"                                                                   \
	NX_PML4E                                                                                \
	"	movq %rbp, %r8\n"                                                               \
	"	xorq $0x507, %r8\n"                                                             \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	NX_EPT_NEXT(27)                                  /* PDPTE */                            \
	"	testb $0x80, %bpl\n"                             /* a 1-GByte page (or PS reserved): the C */ \
	"	jne .Lnx_c\n"                                                                   \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq $0x507, %rbx\n"                                                            \
	"	orq %rbx, %r8\n"                                                                \
	"	movq %r8, " NX_F(NX_FO2) "\n"                                                   \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	"	movq %rax, " NX_F(NX_FK2) "\n"                                                  \
	"	movq " NX_F(NX_FED) ", %rbx\n"                                                  \
	"	addq %rbp, %rbx\n"                                                              \
	"	movq %rbx, " NX_F(NX_FP2) "\n"                                                  \
	NX_EPT_NEXT(18)                                  /* PDE */                              \
	"	testb $0x80, %bpl\n"                                                            \
	"	jne .Lnx_s" #L "\n"                                                             \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq $0x507, %rbx\n"                                                            \
	"	orq %rbx, %r8\n"                                                                \
	"	testq " NX_M4 ", %r8\n"                          /* the paging class, PML4E to PDE */ \
	"	jne .Lnx_c\n"                                                                   \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	NX_PT(L)                                                                                \
	".Lnx_s" #L ":\n"                                                                       \
	"	testq " NX_M4 ", %r8\n"                          /* the paging class, PML4E and PDPTE */ \
	"	jne .Lnx_c\n"                                                                   \
	NX_LEAF2M(L)

/* The final access's translation reached its leaf rbp (of level LVL, page
 * SIZE, tested against the class's mask at offset LM), host-physical
 * address r8, the non-leaf EPT entries above flipped and ORed in r11; rsi
 * its class, rax the guest-physical address, r9 the guest leaf, r10 the
 * guest result's last 8 bytes. Test, then nested_final's 17 stores. The
 * EPT result's perms (bits 2:0 and XU, bit 10, of the entries ANDed: the
 * flipped OR inverted), ipat (leaf bit 6; bit 6 is reserved, so 0, in
 * the non-leaf entries) and the rest of its last 8 bytes by one multiply:
 * bits 2:0 to 18:16, 10 to 19, 6 to 32, the products that collide land
 * in bits 26 to 29, masked off. */
#define NX_FINAL(LVL, SIZE, LM)                                                                 \
	"	testq " NX_M4 ", %r11\n"                         /* rights of every non-leaf entry (SDM 29.3.3.2) */ \
	"	jne .Lnx_c\n"                                                                   \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq " NX_LW ", %rbx\n"                                                         \
	"	testq " NX_N(LM) "(%rsi), %rbx\n"                /* the leaf: reserved, rights, A/D, WB */ \
	"	jne .Lnx_c\n"                                                                   \
	"	notq %r11\n"                                                                    \
	"	andq %rbp, %r11\n"                                                              \
	"	andl $0x447, %r11d\n"                                                           \
	"	imulq $0x04010200, %r11, %r11\n"                                                \
	"	andq " NX_F(NX_FPM) ", %r11\n"                                                  \
	"	orq $(0x06000000 | (" #LVL " << 8)), %r11\n"     /* memory type WB, level */    \
	"	movq " NX_F(NX_FRES) ", %rbx\n"                                                 \
	"	movq %r8, (%rbx)\n"                              /* hpa */                      \
	"	movq %rax, 8(%rbx)\n"                            /* gpa */                      \
	"	movq $4096, 16(%rbx)\n"                          /* page_size: the guest's 4K */ \
	"	movq $0, 24(%rbx)\n"                                                            \
	"	movq $0, 32(%rbx)\n"                                                            \
	"	movq $0, 40(%rbx)\n"                             /* error_code, status OK, final */ \
	"	movq %rax, 48(%rbx)\n"                           /* guest */                    \
	"	movq $4096, 56(%rbx)\n"                                                         \
	"	movq %r9, 64(%rbx)\n"                                                           \
	"	movq %r10, 72(%rbx)\n"                                                          \
	"	movq %rax, 80(%rbx)\n"                           /* ept */                      \
	"	movq %r8, 88(%rbx)\n"                                                           \
	"	movq $" #SIZE ", 96(%rbx)\n"                                                    \
	"	movq $0, 104(%rbx)\n"                                                           \
	"	movq $0, 112(%rbx)\n"                                                           \
	"	movq %rbp, 120(%rbx)\n"                                                         \
	"	movq %r11, 128(%rbx)\n"                                                         \
	"	xorl %eax, %eax\n"                                                              \
	"	.cfi_remember_state\n"                                                          \
	"	addq $" NX_N(NX_FRAME + 16) ", %rsp\n"                                          \
	"	.cfi_adjust_cfa_offset -(" NX_N(NX_FRAME + 16) ")\n"                              \
	"	popq %rbp\n"                                                                    \
	"	.cfi_adjust_cfa_offset -8\n"                                                    \
	"	.cfi_restore %rbp\n"                                                            \
	"	popq %rbx\n"                                                                    \
	"	.cfi_adjust_cfa_offset -8\n"                                                    \
	"	.cfi_restore %rbx\n"                                                            \
	"	ret\n"                                                                          \
	"	.cfi_restore_state\n"

/* The guest PTE in rax (state S): judged with the entries above as the
 * window walk judges them (walk.c: win_result); then the final access
 * (ept_fast_xlate without fill) from K2's page directory (K1's region is
 * inside K2's, so K1 is not needed), else the PML4. The EPT indexes come
 * from the leaf itself, off the chain of loads. */
#define NX_TAIL(S)                                                                              \
	"	testb $0x80, %r11b\n"                     /* PS above: a large page or reserved (SDM 4.5): the C */ \
	"	jne .Lnx_c\n"                                                                   \
	"	testq " NX_N(NX_C_M1) "(%rsi), %r10\n"    /* every EPT PTE read: the paging class */ \
	"	jne .Lnx_c\n"                                                                   \
	"	andq $-65, %r11\n"                        /* D counts in the leaf only */       \
	"	movq %rax, %r9\n"                                                               \
	"	rorxq $18, %rax, %rbp\n"                                                        \
	"	andl $0xff8, %ebp\n"                                                            \
	"	rorxq $9, %rax, %r8\n"                                                          \
	"	andl $0xff8, %r8d\n"                                                            \
	"	addq " NX_F(NX_FED) ", %r8\n"                                                   \
	"	xorq $0x67, %rax\n"                                                             \
	"	orq %rax, %r11\n"                                                               \
	"	andq " NX_N(MMU_OFF_WFRAME) "(%rdi), %rax\n"  /* the access's guest-physical address */ \
	"	movl %ecx, %edx\n"                                                              \
	"	andl $0xfff, %edx\n"                                                            \
	"	orq %rdx, %rax\n"                                                               \
	"	movq " NX_F(NX_FK) ", %rbx\n"                                                   \
	"	xorq " NX_N(MMU_OFF_WWANT) "(%rdi,%rbx,8), %r11\n"                              \
	"	testq %r11, " NX_N(MMU_OFF_WTEST) "(%rdi,%rbx,8)\n" /* rights, A/D, reserved bits (SDM 4.5, 4.6) */ \
	"	jne .Lnx_c\n"                                                                   \
	"	movq %r11, %r10\n"                        /* the guest result's tail */         \
	"	andl $6, %r11d\n"                                                               \
	"	shrq $63, %r10\n"                                                               \
	"	leaq (%r11,%r10,8), %r10\n"                                                     \
	"	shlq $47, %r10\n"                                                               \
	"	xorq " NX_N(MMU_OFF_WTAIL) "(%rdi,%rbx,8), %r10\n"                              \
	"	rorxq $47, %r10, %r11\n"                  /* the final access's class (vmi_nx_final_aidx): */ \
	"	andl $4, %r11d\n"                        /* the guest's U (perms bit 1, here bit 49) to bit 2, */ \
	"	shrl $1, %ebx\n"                                                                \
	"	andl $3, %ebx\n"                         /* the access's WRITE and FETCH (k >> 1) to bits 1:0 */ \
	"	orl %ebx, %r11d\n"                                                              \
	"	leaq vmi_nx_final_aidx(%rip), %rbx\n"                                           \
	"	movzbl (%rbx,%r11), %r11d\n"                                                    \
	"	leaq (%r11,%r11,2), %r11\n"                                                     \
	"	shlq $6, %r11\n"                         /* times 2 * sizeof(struct ept_fcls) = 3 << 6 */ \
	"	leaq -" NX_N(NX_PAGING_OFF) "(%rsi,%r11), %rsi\n" /* less the paging class's */ \
	"	movq %rax, %rbx\n"                                                              \
	"	xorq " NX_F(NX_FK2) ", %rbx\n"                                                  \
	"	shrq $30, %rbx\n"                                                               \
	"	jne .Lnx_f4" #S "\n"                                                            \
	"	movq " NX_F(NX_FP2) ", %rbx\n"                                                  \
	"	movq (%rbx,%rbp), %rbp\n"                 /* PDE */                             \
	"	testb $0x80, %bpl\n"                                                            \
	"	jne .Lnx_f2k" #S "\n"                                                           \
	".Lnx_f3" #S ":\n"                            /* a PDE in rbp, the entries above in FO2 */ \
	"	movq %rbp, %r11\n"                                                              \
	"	xorq $0x507, %r11\n"                                                            \
	"	orq " NX_F(NX_FO2) ", %r11\n"                                                   \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	"	movq (%r8,%rbp), %rbp\n"                  /* PTE */                             \
	"	movq %rbp, %r8\n"                                                               \
	"	andq " NX_ADDR ", %r8\n"                                                        \
	"	orq %rdx, %r8\n"                                                                \
	NX_FINAL(1, 4096, NX_C_M1)                                                              \
	".Lnx_f2k" #S ":\n"                                                                     \
	"	movq " NX_F(NX_FO2) ", %r11\n"                                                  \
	".Lnx_f2" #S ":\n"                            /* a 2-MByte leaf in rbp */           \
	"	movq %rbp, %r8\n"                                                               \
	"	andq " NX_ADDR ", %r8\n"                                                        \
	"	movl %eax, %edx\n"                                                              \
	"	andl $0x1fffff, %edx\n"                                                         \
	"	orq %rdx, %r8\n"                                                                \
	NX_FINAL(2, 0x200000, NX_C_LM2)                                                         \
	".Lnx_f4" #S ":\n"                            /* from the PML4 */                   \
	"	cmpq .Lnx_lim(%rip), %rax\n"                                                    \
	"	jae .Lnx_c\n"                                                                   \
	NX_PML4E                                                                                \
	"	movq %rbp, %r11\n"                                                              \
	"	xorq $0x507, %r11\n"                                                            \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	NX_EPT_NEXT(27)                           /* PDPTE */                                   \
	"	testb $0x80, %bpl\n"                                                            \
	"	jne .Lnx_c\n"                                                                   \
	"	movq %rbp, %rbx\n"                                                              \
	"	xorq $0x507, %rbx\n"                                                            \
	"	orq %rbx, %r11\n"                                                               \
	"	andq " NX_ADDR ", %rbp\n"                                                       \
	NX_INVIEW                                                                               \
	NX_EPT_NEXT(18)                           /* PDE */                                     \
	"	movq %r11, " NX_F(NX_FO2) "\n"                                                  \
	"	testb $0x80, %bpl\n"                                                            \
	"	jne .Lnx_f2" #S "\n"                                                            \
	"	jmp .Lnx_f3" #S "\n"

/* Level 4 read in state S: the PML4E (r11 its offset in the table). */
#define NX_READ4                                                                                \
	NX_INGUEST                                                                              \
	"	addq " NX_F(NX_FGD) ", %r11\n"                                                  \
	"	movq (%r11,%rbp), %rax\n"                                                       \
	"	movq %rax, %r11\n"                                                              \
	"	xorq $0x27, %r11\n"                                                             \
	"	andq " NX_N(MMU_OFF_WFRAME) "(%rdi), %rax\n"

__asm__(
	"	.pushsection .rodata\n"
	"	.p2align 3\n"
	".Lnx_addr:\n"
	"	.quad 0x000ffffffffff000\n"
	".Lnx_lim:\n"
	"	.quad 0x0001000000000000\n"
	"	.popsection\n"
	"	.text\n"
	"	.globl vmem_nested_walk\n"
	"	.type vmem_nested_walk, @function\n"
	"	.p2align 4\n"
	"vmem_nested_walk:\n"
	"	.cfi_startproc\n"
#ifdef __CET__
	"	endbr64\n"
#endif
	/* rdi mmu, rsi ept, rdx host, rcx la, r8d access, r9d flags, 8(%rsp) res, 16(%rsp) trace */
	"	cmpq $0, 16(%rsp)\n"                      /* a trace: the C */
	"	jne .Lnx_c0\n"
	"	testl $-2, %r9d\n"                        /* flags other than NO_AD: the C refuses them */
	"	jne .Lnx_c0\n"
	"	cmpl $31, %r8d\n"
	"	ja .Lnx_c0\n"
	"	movq %rdi, %rax\n"                        /* mmu * ept * host * res != 0: none is NULL */
	"	imulq %rsi, %rax\n"
	"	imulq %rdx, %rax\n"
	"	imulq 8(%rsp), %rax\n"
	"	testq %rax, %rax\n"
	"	je .Lnx_c0\n"
	"	leal (%r9,%r8,2), %eax\n"                 /* k */
	"	cmpb $4, " NX_N(MMU_OFF_WASM) "(%rdi,%rax)\n" /* 4-level paging, the window's rights test, BMI2 */
	"	jne .Lnx_c0\n"
	"	movq " NX_N(MMU_OFF_CANON_ADD) "(%rdi), %r10\n" /* canonical (SDM 3.3.7.1) */
	"	addq %rcx, %r10\n"
	"	cmpq " NX_N(MMU_OFF_CANON_LIM) "(%rdi), %r10\n"
	"	jae .Lnx_c0\n"
	"	cmpb $4, " NX_N(NX_E_TOP) "(%rsi)\n"      /* a 4-level EPT */
	"	jne .Lnx_c0\n"
	"	pushq %rbx\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	.cfi_rel_offset %rbx, 0\n"
	"	pushq %rbp\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	.cfi_rel_offset %rbp, 0\n"
	"	pushq %rdx\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	pushq %rsi\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	subq $" NX_N(NX_FRAME) ", %rsp\n"
	"	.cfi_adjust_cfa_offset " NX_N(NX_FRAME) "\n"
	"	movq %rax, " NX_F(NX_FK) "\n"             /* (r8 and r9 are made again from k) */
	/* The paging class: guest paging-structure accesses are writes for
	 * EPT A/D (SDM 29.3.3.2), ead = ad && !NO_AD. */
	"	xorl $1, %r9d\n"
	"	andb " NX_N(NX_E_AD) "(%rsi), %r9b\n"
	"	imull $" NX_N(NX_FCLS_SIZE) ", %r9d, %r11d\n"
	/* The EPT view: the RAM region of e->root, by e->hint (ept_fast_view);
	 * r9 its base negated, r10 host less host-physical, rbp the root's
	 * host address. */
	"	movl " NX_N(NX_E_HINT) "(%rsi), %r9d\n"
	"	cmpl " NX_N(NX_G_N) "(%rdx), %r9d\n"
	"	jae .Lnx_c\n"
	"	imulq $" NX_N(NX_R_SIZE) ", %r9, %r9\n"
	"	addq " NX_N(NX_G_R) "(%rdx), %r9\n"
	"	movq 16(%r9), %r10\n"
	"	testq %r10, %r10\n"
	"	je .Lnx_c\n"
	"	movq 8(%r9), %rbx\n"
	"	movq %rbx, " NX_F(NX_FES) "\n"
	"	movq (%r9), %r9\n"
	"	negq %r9\n"
	"	movq %r9, " NX_F(NX_FENB) "\n"
	"	addq %r9, %r10\n"
	"	movq %r10, " NX_F(NX_FED) "\n"
	"	movq " NX_N(NX_E_ROOT) "(%rsi), %rbp\n"
	"	leaq (%rbp,%r9), %rax\n"
	"	cmpq %rbx, %rax\n"
	"	jae .Lnx_c\n"
	"	addq %r10, %rbp\n"
	"	movzbl " NX_N(NX_E_PERMMASK) "(%rsi), %eax\n"
	"	shll $16, %eax\n"
	"	btsq $32, %rax\n"
	"	movq %rax, " NX_F(NX_FPM) "\n"
	/* The guest tables' region: e->ghint's if it is RAM, else the view's. */
	"	movl " NX_N(NX_E_GHINT) "(%rsi), %eax\n"
	"	cmpl " NX_N(NX_G_N) "(%rdx), %eax\n"
	"	jae .Lnx_gv\n"
	"	imulq $" NX_N(NX_R_SIZE) ", %rax, %rax\n"
	"	addq " NX_N(NX_G_R) "(%rdx), %rax\n"
	"	cmpq $0, 16(%rax)\n"
	"	je .Lnx_gv\n"
	".Lnx_gd:\n"
	"	movq 8(%rax), %rbx\n"
	"	movq %rbx, " NX_F(NX_FGS) "\n"
	"	movq (%rax), %rdx\n"
	"	negq %rdx\n"
	"	movq 16(%rax), %rbx\n"
	"	addq %rdx, %rbx\n"
	"	movq %rbx, " NX_F(NX_FGD) "\n"
	".Lnx_gs:\n"
	"	leaq " NX_N(NX_E_FCLS + 6 * NX_FCLS_SIZE) "(%rsi,%r11), %rsi\n" /* fcls[VMEM_EPT_PAGING][ead] */
	/* Level 4: the PML4E at root + 8 * la[47:39] (r11 its offset); the EPT
	 * walk from the PML4 (rbp its host address, r10 the view's host less
	 * host-physical) translates the root's page. */
	"	rorxq $36, %rcx, %r11\n"
	"	andl $0xff8, %r11d\n"
	"	movq " NX_N(NX_M_ROOT) "(%rdi), %rax\n"
	"	cmpq .Lnx_lim(%rip), %rax\n"              /* bits 63:48: beyond a 4-level EPT walk (the C refuses) */
	"	jae .Lnx_c\n"
	"	rorxq $36, %rax, %rbx\n"
	"	andl $0xff8, %ebx\n"
	"	movq (%rbp,%rbx), %rbp\n"                 /* EPT PML4E */
	"	movq %rbp, %r8\n"
	"	xorq $0x507, %r8\n"
	"	andq " NX_ADDR ", %rbp\n"
	"	leaq (%rbp,%r9), %rbx\n"
	"	cmpq " NX_F(NX_FES) ", %rbx\n"
	"	jae .Lnx_c\n"
	"	rorxq $27, %rax, %rbx\n"
	"	andl $0xff8, %ebx\n"
	"	addq %r10, %rbx\n"
	"	movq (%rbx,%rbp), %rbp\n"                 /* PDPTE */
	"	testb $0x80, %bpl\n"                      /* a 1-GByte page (or PS reserved): the C */
	"	jne .Lnx_c\n"
	"	movq %rbp, %rbx\n"
	"	xorq $0x507, %rbx\n"
	"	orq %rbx, %r8\n"
	"	movq %r8, " NX_F(NX_FO2) "\n"
	"	andq " NX_ADDR ", %rbp\n"
	"	leaq (%rbp,%r9), %rbx\n"
	"	cmpq " NX_F(NX_FES) ", %rbx\n"
	"	jae .Lnx_c\n"
	"	leaq (%rbp,%r10), %rbx\n"
	"	movq %rbx, " NX_F(NX_FP2) "\n"
	"	movq %rax, " NX_F(NX_FK2) "\n"
	"	rorxq $18, %rax, %rbx\n"
	"	andl $0xff8, %ebx\n"
	"	addq %r10, %rbx\n"
	"	movq (%rbx,%rbp), %rbp\n"                 /* PDE */
	"	testb $0x80, %bpl\n"
	"	jne .Lnx_q4\n"
	"	movq %rbp, %rbx\n"
	"	xorq $0x507, %rbx\n"
	"	orq %rbx, %r8\n"
	"	testq " NX_M4 ", %r8\n"                   /* the paging class, PML4E to PDE */
	"	jne .Lnx_c\n"
	"	andq " NX_ADDR ", %rbp\n"
	"	leaq (%rbp,%r9), %rbx\n"
	"	cmpq " NX_F(NX_FES) ", %rbx\n"
	"	jae .Lnx_c\n"
	"	rorxq $9, %rax, %rbx\n"
	"	andl $0xff8, %ebx\n"
	"	addq %r10, %rbx\n"
	"	leaq (%rbp,%r10), %r9\n"
	"	movq (%rbx,%rbp), %rbp\n"                 /* PTE */
	"	movq %rax, %r8\n"
	"	andq $-0x200000, %r8\n"
	"	negq %r8\n"                               /* -K1 */
	"	movq %r8, %rbx\n"
	"	sarq $9, %rbx\n"
	"	addq %rbx, %r9\n"                         /* P1 */
	"	movq %rbp, %r10\n"
	"	xorq " NX_LW ", %r10\n"
	"	andq " NX_ADDR ", %rbp\n"
	/* State a: K1 is a page table. */
	NX_READ4
	NX_LEVEL_A(3, 27)
	NX_NONLEAF
	NX_LEVEL_A(2, 18)
	NX_NONLEAF
	NX_LEVEL_A(1, 9)
	NX_TAIL(a)
	/* State b: K1 is a 2-MByte page. */
	".Lnx_q4:\n"
	"	testq " NX_M4 ", %r8\n"                   /* the paging class, PML4E and PDPTE */
	"	jne .Lnx_c\n"
	"	xorl %r10d, %r10d\n"
	NX_LEAF2M(4)
	".Lnx_b4:\n"
	NX_READ4
	NX_LEVEL_B(3, 27)
	NX_NONLEAF
	NX_LEVEL_B(2, 18)
	NX_NONLEAF
	NX_LEVEL_B(1, 9)
	NX_TAIL(b)
	NX_MISS(3)
	NX_MISS(2)
	NX_MISS(1)
	/* The view's region, from the frame as it was checked: not e->hint
	 * again, which another walker of e (over another host memory map) may
	 * have rewritten since, to an index past host->n or of MMIO. */
	".Lnx_gv:\n"
	"	movq " NX_F(NX_FES) ", %rbx\n"
	"	movq %rbx, " NX_F(NX_FGS) "\n"
	"	movq " NX_F(NX_FENB) ", %rdx\n"
	"	movq " NX_F(NX_FED) ", %rbx\n"
	"	movq %rbx, " NX_F(NX_FGD) "\n"
	"	jmp .Lnx_gs\n"
	/* Everything else: the C, with the arguments as they came. */
	".Lnx_c:\n"
	"	movq " NX_F(NX_FK) ", %r9\n"
	"	movl %r9d, %r8d\n"
	"	shrl $1, %r8d\n"                          /* access = k >> 1 */
	"	andl $1, %r9d\n"                          /* flags = k & 1 */
	"	addq $" NX_N(NX_FRAME) ", %rsp\n"
	"	.cfi_adjust_cfa_offset -" NX_N(NX_FRAME) "\n"
	"	popq %rsi\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	popq %rdx\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	popq %rbp\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	.cfi_restore %rbp\n"
	"	popq %rbx\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	.cfi_restore %rbx\n"
	".Lnx_c0:\n"
	"	jmp vmi_nested_walk_c\n"
	"	.cfi_endproc\n"
	"	.size vmem_nested_walk, .-vmem_nested_walk\n");
#else
typedef int nx_no_asm; /* the C of lib/nested.c is vmem_nested_walk */
#endif
