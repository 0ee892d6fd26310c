/* theirs.h: the one function a user implements to fuzz their page-table walker against libvmem (fuzz/fuzz_theirs.c). */
#ifndef VMEM_FUZZ_THEIRS_H
#define VMEM_FUZZ_THEIRS_H

#include <libvmem/vectors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* theirs_answer returns one of these. */
#define THEIRS_ANSWERED     0 /* *out holds your walker's answer: compare it with libvmem's */
#define THEIRS_NOT_MODELLED 1 /* your walker does not model this input: the harness skips it */

/*
 * Translate the access v describes with YOUR walker and fill *out.
 *
 * The question (v, read-only; docs/vectors.md defines every field):
 *   v->kind    VMEM_VKIND_WALK: guest page walk, linear -> guest-physical, with
 *              v->cpu (CR0, CR3, CR4, EFER, PKRU, MAXPHYADDR, 1-GByte pages);
 *              VMEM_VKIND_EPT: EPT walk, guest-physical -> host-physical, with
 *              v->ept (EPTP, MBEC, advanced exit information), MAXPHYADDR from
 *              v->cpu, and a processor that supports execute-only entries, 1-GByte
 *              pages, EPT A/D flags and 5-level EPT;
 *              VMEM_VKIND_NESTED: both, every guest paging-structure access itself
 *              translated through the EPT.
 *   v->access  the address (linear; guest-physical for kind ept), read / write /
 *              fetch, CPL (3 is a user access), implicit supervisor access,
 *              EFLAGS.AC, and for kind ept optionally the guest-linear address
 *              (v->have & VMEM_VHAVE_LINEAR).
 *   v->mem     the initial memory as n_mem words [addr, value, size 4 or 8],
 *              guest-physical for kind walk, host-physical otherwise. Memory not
 *              listed reads as zero. For PAE paging the four PDPTEs are the words
 *              at CR3[31:5] (as the last MOV to CR3 loaded them, unchecked).
 *
 * The answer (*out): the harness zeroes it before the call (result
 * VMEM_VRES_OK, have 0, mem_after NULL). Fill what your walker says:
 *   result              VMEM_VRES_OK, _PAGE_FAULT, _EPT_VIOLATION or _EPT_MISCONFIG
 *   gpa, page_size      result ok, kind walk
 *   hpa, page_size      result ok, kinds ept and nested (nested: the smaller of
 *                       the guest's and the EPT's page size)
 *   error_code          page fault: the #PF error code
 *   exit_qualification  EPT violation: SDM vol. 3C Table 28-7
 *   guest_physical      EPT violation or misconfiguration
 *   guest_linear        EPT violation whose exit_qualification has bit 7 set
 *   mem_after           optional: your walker's side effects (accessed/dirty
 *                       flags). Set VMEM_VEXP_MEM_AFTER in out->have and list
 *                       every memory word the access changed, as its value after
 *                       the access (n_mem_after words, 4 or 8 bytes, naturally
 *                       aligned; none when nothing changed). Without the bit,
 *                       side effects are not compared.
 * You need not set the other bits of out->have: the harness sets those the
 * result requires (docs/vectors.md, "expect"), so every field the result
 * calls for is compared.
 *
 * Memory: out->mem_after must come from malloc (or be NULL); the harness
 * frees it with free() whatever you return. Keep no pointer into v: it is
 * freed after the call.
 *
 * Return THEIRS_ANSWERED, or THEIRS_NOT_MODELLED (any nonzero value) for an
 * input your walker does not model (a paging mode it lacks, a kind it has no
 * engine for, registers it refuses): the harness counts it as skipped.
 * Inputs libvmem itself refuses (registers hardware would not accept,
 * outcomes the vector format cannot express) are skipped too.
 */
int theirs_answer(const vmem_vector *v, vmem_vector_expect *out);

#ifdef __cplusplus
}
#endif
#endif
