/* theirs_wrong: a deliberately wrong "theirs" (the reference answer with a bug in two classes) proving fuzz_theirs catches disagreement. */
#include "theirs.h"

/* fuzz/theirs_ref.c, built with THEIRS_REF_ENTRY=theirs_ref_answer. */
int theirs_ref_answer(const vmem_vector *v, vmem_vector_expect *out);

int theirs_answer(const vmem_vector *v, vmem_vector_expect *out)
{
	int rc = theirs_ref_answer(v, out);
	if (rc != THEIRS_ANSWERED)
		return rc;
	/* Bug 1: a reserved-bit #PF reported without P (as if not present). */
	if (out->result == VMEM_VRES_PAGE_FAULT && (out->error_code & (1u << 3)))
		out->error_code &= ~1ull;
	/* Bug 2: an EPT violation on a final access loses qualification bit 8. */
	if (out->result == VMEM_VRES_EPT_VIOLATION)
		out->exit_qualification &= ~(1ull << 8);
	return rc;
}
