/* libvmem vectors: vmem_vector -> one JSON line, fields in a stable order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vectors_int.h"

static void put_str(vv_buf *b, const char *s)
{
	vv_printf(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			vv_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			vv_printf(b, "\\u%04x", *p);
		else
			vv_printf(b, "%c", *p);
	}
	vv_printf(b, "\"");
}

static void put_hex(vv_buf *b, const char *sep, const char *key, uint64_t v)
{
	vv_printf(b, "%s\"%s\":\"0x%llx\"", sep, key, (unsigned long long)v);
}

static void put_bool(vv_buf *b, const char *key, bool v)
{
	vv_printf(b, ",\"%s\":%s", key, v ? "true" : "false");
}

static void put_words(vv_buf *b, const vmem_vector_word *w, size_t n)
{
	vv_printf(b, "[");
	for (size_t k = 0; k < n; k++) {
		vv_printf(b, "%s[\"0x%llx\",\"0x%llx\"", k ? "," : "",
			  (unsigned long long)w[k].addr, (unsigned long long)w[k].value);
		if (w[k].size != 8)
			vv_printf(b, ",%u", w[k].size);
		vv_printf(b, "]");
	}
	vv_printf(b, "]");
}

static void put_cpu(vv_buf *b, const vmem_vector *v)
{
	static const struct { const char *key; unsigned bit; size_t off; } regs[] = {
		{ "cr0", VMEM_VHAVE_CR0, offsetof(vmem_vector, cpu.cr0) },
		{ "cr3", VMEM_VHAVE_CR3, offsetof(vmem_vector, cpu.cr3) },
		{ "cr4", VMEM_VHAVE_CR4, offsetof(vmem_vector, cpu.cr4) },
		{ "efer", VMEM_VHAVE_EFER, offsetof(vmem_vector, cpu.efer) },
	};
	const char *sep = "";
	vv_printf(b, ",\"cpu\":{");
	for (unsigned k = 0; k < 4; k++)
		if (v->have & regs[k].bit) {
			put_hex(b, sep, regs[k].key, *(const uint64_t *)((const char *)v + regs[k].off));
			sep = ",";
		}
	if (v->have & VMEM_VHAVE_PKRU) {
		put_hex(b, sep, "pkru", v->cpu.pkru);
		sep = ",";
	}
	/* Defaults are written too when they were given, never invented. */
	if (v->have & VMEM_VHAVE_MAXPHYADDR) {
		vv_printf(b, "%s\"maxphyaddr\":%u", sep, v->cpu.maxphyaddr);
		sep = ",";
	}
	if (v->have & VMEM_VHAVE_GBPAGES)
		vv_printf(b, "%s\"gbpages\":%s", sep, v->cpu.gbpages ? "true" : "false");
	vv_printf(b, "}");
}

static void put_expect(vv_buf *b, const vmem_vector_expect *e)
{
	vv_printf(b, ",\"expect\":{\"result\":\"%s\"", vmem_vector_result_name(e->result));
	if (e->have & VMEM_VEXP_GPA)
		put_hex(b, ",", "gpa", e->gpa);
	if (e->have & VMEM_VEXP_HPA)
		put_hex(b, ",", "hpa", e->hpa);
	if (e->have & VMEM_VEXP_PAGE_SIZE)
		vv_printf(b, ",\"page_size\":%llu", (unsigned long long)e->page_size);
	if (e->have & VMEM_VEXP_ERROR)
		put_hex(b, ",", "error_code", e->error_code);
	if (e->have & VMEM_VEXP_EXITQUAL)
		put_hex(b, ",", "exit_qualification", e->exit_qualification);
	if (e->have & VMEM_VEXP_GUEST_PHYS)
		put_hex(b, ",", "guest_physical", e->guest_physical);
	if (e->have & VMEM_VEXP_GUEST_LIN)
		put_hex(b, ",", "guest_linear", e->guest_linear);
	if (e->have & VMEM_VEXP_MEM_AFTER) {
		vv_printf(b, ",\"mem_after\":");
		put_words(b, e->mem_after, e->n_mem_after);
	}
	vv_printf(b, "}");
}

static void put_vector(vv_buf *b, const vmem_vector *v)
{
	vv_printf(b, "{\"v\":%u", v->v);
	if (v->have & VMEM_VHAVE_ID) {
		vv_printf(b, ",\"id\":");
		put_str(b, v->id ? v->id : "");
	}
	vv_printf(b, ",\"kind\":\"%s\"", vmem_vector_kind_name(v->kind));
	put_cpu(b, v);
	if (v->have & VMEM_VHAVE_EPT) {
		put_hex(b, ",\"ept\":{", "eptp", v->ept.eptp);
		if (v->have & VMEM_VHAVE_MBEC)
			put_bool(b, "mbec", v->ept.mbec);
		if (v->have & VMEM_VHAVE_ADVINFO)
			put_bool(b, "advanced_info", v->ept.advanced_info);
		vv_printf(b, "}");
	}
	put_hex(b, ",\"access\":{", "addr", v->access.addr);
	vv_printf(b, ",\"type\":\"%s\"", vmem_vector_atype_name(v->access.type));
	if (v->have & VMEM_VHAVE_CPL)
		vv_printf(b, ",\"cpl\":%u", v->access.cpl);
	if (v->have & VMEM_VHAVE_IMPLICIT)
		put_bool(b, "implicit", v->access.implicit);
	if (v->have & VMEM_VHAVE_AC)
		put_bool(b, "ac", v->access.ac);
	if (v->have & VMEM_VHAVE_LINEAR)
		put_hex(b, ",", "linear", v->access.linear);
	vv_printf(b, "},\"mem\":");
	put_words(b, v->mem, v->n_mem);
	put_expect(b, &v->expect);
	vv_printf(b, "}\n");
}

vmem_err vmem_vector_to_string(const vmem_vector *v, char **out)
{
	vv_buf b = {0};
	put_vector(&b, v);
	if (b.oom) {
		free(b.s);
		return VMEM_E_NOMEM;
	}
	*out = b.s;
	return VMEM_OK;
}

vmem_err vmem_vector_write(FILE *f, const vmem_vector *v)
{
	char *s;
	vmem_err e = vmem_vector_to_string(v, &s);
	if (e)
		return e;
	bool ok = fputs(s, f) >= 0;
	free(s);
	return ok ? VMEM_OK : VMEM_E_IO;
}
