/* fuzz_theirs: libFuzzer target (replayed by fuzz/replay_main.c) comparing the user's walker (fuzz/theirs.h) with libvmem on generated, mutated vectors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/vectors.h>

#include "theirs.h"
#include "theirs_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What happened to the inputs so far (printed at exit). */
static struct {
	unsigned long agreed, skipped_theirs, refused_libvmem, no_vector;
} stats;

static void print_stats(void)
{
	fprintf(stderr, "fuzz_theirs: %lu agreed, %lu not modelled by theirs, %lu refused by libvmem, "
		"%lu not generated\n", stats.agreed, stats.skipped_theirs, stats.refused_libvmem,
		stats.no_vector);
}

/* The expect fields each result requires (docs/vectors.md): the user fills
 * values, the harness says which count, so none of them goes unchecked. */
static void require_fields(vmem_vector_kind kind, vmem_vector_expect *x)
{
	x->have &= VMEM_VEXP_MEM_AFTER;
	switch (x->result) {
	case VMEM_VRES_OK:
		x->have |= (kind == VMEM_VKIND_WALK ? VMEM_VEXP_GPA : VMEM_VEXP_HPA) | VMEM_VEXP_PAGE_SIZE;
		break;
	case VMEM_VRES_PAGE_FAULT:
		x->have |= VMEM_VEXP_ERROR;
		break;
	case VMEM_VRES_EPT_VIOLATION:
		x->have |= VMEM_VEXP_EXITQUAL | VMEM_VEXP_GUEST_PHYS;
		if (x->exit_qualification & (1u << 7))
			x->have |= VMEM_VEXP_GUEST_LIN;
		break;
	case VMEM_VRES_EPT_MISCONFIG:
		x->have |= VMEM_VEXP_GUEST_PHYS;
		break;
	}
	if (!(x->have & VMEM_VEXP_MEM_AFTER)) {
		free(x->mem_after);
		x->mem_after = NULL;
		x->n_mem_after = 0;
	}
}

/* An answer fuzz/theirs.h does not allow is the adapter's bug, not a walker's: say so. */
static void check_abi(const vmem_vector_expect *x)
{
	const char *why = NULL;
	if ((unsigned)x->result > VMEM_VRES_EPT_MISCONFIG)
		why = "result is not a vmem_vector_result";
	if ((x->have & VMEM_VEXP_MEM_AFTER) && x->n_mem_after && !x->mem_after)
		why = "n_mem_after words but mem_after is NULL";
	for (size_t k = 0; !why && (x->have & VMEM_VEXP_MEM_AFTER) && k < x->n_mem_after; k++) {
		const vmem_vector_word *w = &x->mem_after[k];
		if ((w->size != 4 && w->size != 8) || (w->addr & (w->size - 1)))
			why = "a mem_after word is not 4 or 8 bytes, naturally aligned";
	}
	if (why) {
		fprintf(stderr, "fuzz_theirs: theirs_answer broke fuzz/theirs.h: %s\n", why);
		abort();
	}
}

/* A disagreement: everything needed to replay it and keep it, then abort. */
static void report(vmem_vector *v, const char *diff)
{
	fprintf(stderr, "fuzz_theirs: your walker and libvmem disagree. The vector with your answer "
		"(save the line, replay with `vmem vectors check FILE`):\n");
	vmem_vector_write(stderr, v);
	fprintf(stderr, "fuzz_theirs: the differences (expected: your walker; got: libvmem):\n%s", diff);
	if (vmem_vector_answer(v) == VMEM_OK) {
		fprintf(stderr, "fuzz_theirs: the vector with libvmem's answer (a regression vector):\n");
		vmem_vector_write(stderr, v);
	}
	fflush(stderr);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool registered;
	if (!registered)
		registered = !atexit(print_stats);

	vmem_vector v;
	if (theirs_input_decode(data, size, &v) != VMEM_OK) {
		stats.no_vector++;
		return 0;
	}
	vmem_vector_expect ans;
	memset(&ans, 0, sizeof(ans));
	ans.result = VMEM_VRES_OK;
	if (theirs_answer(&v, &ans) != THEIRS_ANSWERED) {
		free(ans.mem_after);
		vmem_vector_free(&v);
		stats.skipped_theirs++;
		return 0;
	}
	check_abi(&ans);
	require_fields(v.kind, &ans);
	v.expect = ans; /* the vector owns their mem_after now */

	vmem_vector_verdict vd;
	if (vmem_vector_check(&v, &vd) != VMEM_OK)
		abort(); /* out of memory */
	if (vd.status == VMEM_VCHECK_FAIL)
		report(&v, vd.diff);
	if (vd.status == VMEM_VCHECK_PASS)
		stats.agreed++;
	else
		stats.refused_libvmem++;
	vmem_vector_verdict_free(&vd);
	vmem_vector_free(&v);
	return 0;
}
