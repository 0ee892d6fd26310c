/* libvmem vectors: redo a vector (one function per kind) and diff the answer against its expect block. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vectors_int.h"

/* The engine for each kind. */
static const vv_redo_fn redo_by_kind[3] = {
	[VMEM_VKIND_WALK] = vv_redo_walk,
	[VMEM_VKIND_EPT] = vv_redo_ept,
	[VMEM_VKIND_NESTED] = vv_redo_nested,
};

vmem_err vv_redo(const vmem_vector *v, vv_outcome *o)
{
	memset(o, 0, sizeof(*o));
	if ((unsigned)v->kind >= 3) {
		o->status = VMEM_VCHECK_ERROR;
		snprintf(o->why, sizeof(o->why), "unknown kind %d", (int)v->kind);
		return VMEM_OK;
	}
	return redo_by_kind[v->kind](v, o);
}

/* Byte `a` of a word list, if some word covers it. */
static bool list_byte(const vmem_vector_word *w, size_t n, uint64_t a, uint8_t *b)
{
	for (size_t k = 0; k < n; k++)
		if (a - w[k].addr < w[k].size) {
			*b = (uint8_t)(w[k].value >> (8 * (a - w[k].addr)));
			return true;
		}
	return false;
}

/* Memory after the access as a list says it: its words over the initial memory. */
static uint64_t final_word(const vmem_vector *v, const vmem_vector_word *w, size_t n,
			   uint64_t addr, unsigned size)
{
	uint64_t val = 0;
	for (unsigned k = size; k-- > 0;) {
		uint8_t b = 0;
		if (!list_byte(w, n, addr + k, &b))
			list_byte(v->mem, v->n_mem, addr + k, &b);
		val = (val << 8) | b;
	}
	return val;
}

/* Present mem_after: the changes must be exactly these. Compared as final
 * memory over every word either side names, so 4- and 8-byte listings agree. */
static unsigned diff_mem_after(const vmem_vector *v, const vmem_vector_expect *got, vv_buf *b)
{
	const vmem_vector_expect *ex = &v->expect;
	unsigned bad = 0;
	for (int side = 0; side < 2; side++) {
		const vmem_vector_word *w = side ? got->mem_after : ex->mem_after;
		size_t n = side ? got->n_mem_after : ex->n_mem_after;
		for (size_t k = 0; k < n; k++) {
			uint64_t want = final_word(v, ex->mem_after, ex->n_mem_after, w[k].addr, w[k].size);
			uint64_t have = final_word(v, got->mem_after, got->n_mem_after, w[k].addr,
						   w[k].size);
			if (want == have)
				continue;
			/* Report each differing word once: a word the expected list covers
			 * byte for byte was compared on the first pass. */
			if (side) {
				unsigned covered = 0;
				uint8_t dummy;
				for (unsigned q = 0; q < w[k].size; q++)
					covered += list_byte(ex->mem_after, ex->n_mem_after,
							     w[k].addr + q, &dummy);
				if (covered == w[k].size)
					continue;
			}
			uint64_t init = final_word(v, NULL, 0, w[k].addr, w[k].size);
			vv_printf(b, "  mem_after 0x%llx: expected 0x%llx%s, got 0x%llx%s\n",
				  (unsigned long long)w[k].addr, (unsigned long long)want,
				  want == init ? " (unchanged)" : "", (unsigned long long)have,
				  have == init ? " (unchanged)" : "");
			bad++;
		}
	}
	return bad;
}

static unsigned diff_hex(vv_buf *b, const char *name, unsigned bit, const vmem_vector_expect *ex,
			 const vmem_vector_expect *got, uint64_t want, uint64_t have)
{
	if (!(ex->have & bit) || ((got->have & bit) && want == have))
		return 0;
	if (got->have & bit)
		vv_printf(b, "  %s: expected 0x%llx, got 0x%llx\n", name, (unsigned long long)want,
			  (unsigned long long)have);
	else
		vv_printf(b, "  %s: expected 0x%llx, got none\n", name, (unsigned long long)want);
	return 1;
}

static unsigned diff_answer(const vmem_vector *v, const vmem_vector_expect *got, vv_buf *b)
{
	const vmem_vector_expect *ex = &v->expect;
	if (ex->result != got->result) {
		vv_printf(b, "  result: expected %s, got %s", vmem_vector_result_name(ex->result),
			  vmem_vector_result_name(got->result));
		if (got->result == VMEM_VRES_PAGE_FAULT)
			vv_printf(b, " (error_code 0x%llx)", (unsigned long long)got->error_code);
		if (got->result == VMEM_VRES_OK)
			vv_printf(b, " (gpa 0x%llx, page_size %llu)", (unsigned long long)got->gpa,
				  (unsigned long long)got->page_size);
		vv_printf(b, "\n");
		return 1;
	}
	unsigned bad = 0;
	bad += diff_hex(b, "gpa", VMEM_VEXP_GPA, ex, got, ex->gpa, got->gpa);
	bad += diff_hex(b, "hpa", VMEM_VEXP_HPA, ex, got, ex->hpa, got->hpa);
	if ((ex->have & VMEM_VEXP_PAGE_SIZE) && ex->page_size != got->page_size) {
		vv_printf(b, "  page_size: expected %llu, got %llu\n",
			  (unsigned long long)ex->page_size, (unsigned long long)got->page_size);
		bad++;
	}
	bad += diff_hex(b, "error_code", VMEM_VEXP_ERROR, ex, got, ex->error_code, got->error_code);
	bad += diff_hex(b, "exit_qualification", VMEM_VEXP_EXITQUAL, ex, got,
			ex->exit_qualification, got->exit_qualification);
	bad += diff_hex(b, "guest_physical", VMEM_VEXP_GUEST_PHYS, ex, got, ex->guest_physical,
			got->guest_physical);
	bad += diff_hex(b, "guest_linear", VMEM_VEXP_GUEST_LIN, ex, got, ex->guest_linear,
			got->guest_linear);
	return bad;
}

static void print_trace(const vv_outcome *o, vv_buf *b)
{
	if (!o->have_trace)
		return;
	vv_printf(b, "  walk trace (entries the library read, before A/D updates):\n");
	if (!o->trace.n)
		vv_printf(b, "    (none)\n");
	for (unsigned k = 0; k < o->trace.n && k < 5; k++)
		vv_printf(b, "    level %u: entry at 0x%llx = 0x%llx\n", o->trace.e[k].level,
			  (unsigned long long)o->trace.e[k].gpa,
			  (unsigned long long)o->trace.e[k].value);
}

vmem_err vmem_vector_check(const vmem_vector *v, vmem_vector_verdict *out)
{
	vv_outcome o;
	vv_buf b = {0};
	out->status = VMEM_VCHECK_ERROR;
	out->diff = NULL;
	vmem_err e = vv_redo(v, &o);
	if (e) {
		free(o.got.mem_after);
		return e;
	}
	if (o.status != VMEM_VCHECK_PASS) {
		out->status = o.status;
		vv_printf(&b, "  %s\n", o.why);
	} else {
		unsigned bad = diff_answer(v, &o.got, &b);
		if (v->expect.result == o.got.result && (v->expect.have & VMEM_VEXP_MEM_AFTER))
			bad += diff_mem_after(v, &o.got, &b);
		out->status = bad ? VMEM_VCHECK_FAIL : VMEM_VCHECK_PASS;
	}
	if (out->status != VMEM_VCHECK_PASS)
		print_trace(&o, &b);
	else
		vv_printf(&b, "%s", "");
	free(o.got.mem_after);
	if (b.oom || !b.s) {
		free(b.s);
		return VMEM_E_NOMEM;
	}
	out->diff = b.s;
	return VMEM_OK;
}

vmem_err vmem_vector_answer(vmem_vector *v)
{
	vv_outcome o;
	vmem_err e = vv_redo(v, &o);
	if (e) {
		free(o.got.mem_after);
		return e;
	}
	if (o.status != VMEM_VCHECK_PASS) {
		free(o.got.mem_after);
		return o.status == VMEM_VCHECK_UNSUPPORTED ? VMEM_E_UNSUPPORTED : VMEM_E_INVAL;
	}
	free(v->expect.mem_after);
	v->expect = o.got;
	return VMEM_OK;
}
