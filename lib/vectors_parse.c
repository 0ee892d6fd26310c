/* libvmem vectors: one JSON line -> vmem_vector, with errors that name the field (format v1). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/ept.h>
#include "json.h"
#include "vectors_int.h"

typedef struct pctx {
	vmem_vector_error *err;
	bool failed, oom;
} pctx;

static bool perr(pctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool perr(pctx *c, const char *field, const char *fmt, ...)
{
	if (c->failed)
		return false;
	c->failed = true;
	snprintf(c->err->field, sizeof(c->err->field), "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
	va_end(ap);
	return false;
}

/* Every address, register and memory word: "0x" then 1..16 hex digits. */
static bool get_hex(pctx *c, const vj_value *j, const char *field, uint64_t *out)
{
	if (j->type != VJ_STR)
		return perr(c, field, "expected a hex string \"0x...\", got %s", vj_type_name(j->type));
	const char *s = j->s;
	if (j->len < 3 || s[0] != '0' || s[1] != 'x')
		return perr(c, field, "expected a hex string \"0x...\", got \"%.24s\"", s);
	uint64_t v = 0;
	for (size_t k = 2; k < j->len; k++) {
		char ch = s[k];
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (unsigned)(ch - 'A' + 10);
		else
			return perr(c, field, "invalid hex digit in \"%.24s\"", s);
		if (v >> 60)
			return perr(c, field, "hex value \"%.24s\" is wider than 64 bits", s);
		v = (v << 4) | d;
	}
	*out = v;
	return true;
}

static bool get_uint(pctx *c, const vj_value *j, const char *field, unsigned lo, unsigned hi,
		     unsigned *out)
{
	if (j->type != VJ_NUM)
		return perr(c, field, "expected a number, got %s", vj_type_name(j->type));
	if (!j->is_int || j->i < (int64_t)lo || j->i > (int64_t)hi)
		return perr(c, field, "must be an integer in %u..%u", lo, hi);
	*out = (unsigned)j->i;
	return true;
}

static bool get_bool(pctx *c, const vj_value *j, const char *field, bool *out)
{
	if (j->type != VJ_BOOL)
		return perr(c, field, "expected true or false, got %s", vj_type_name(j->type));
	*out = j->b;
	return true;
}

static const vj_value *need(pctx *c, const vj_value *obj, const char *key, const char *field,
			    vj_type type)
{
	const vj_value *j = vj_get(obj, key);
	if (!j) {
		perr(c, field, "required field missing");
		return NULL;
	}
	if (j->type != type) {
		perr(c, field, "expected %s, got %s", vj_type_name(type), vj_type_name(j->type));
		return NULL;
	}
	return j;
}

/* An optional hex field: sets `bit` in *have when present. */
static bool opt_hex(pctx *c, const vj_value *obj, const char *key, const char *field,
		    uint64_t *out, unsigned *have, unsigned bit)
{
	const vj_value *j = vj_get(obj, key);
	if (!j)
		return true;
	*have |= bit;
	return get_hex(c, j, field, out);
}

static bool opt_bool(pctx *c, const vj_value *obj, const char *key, const char *field,
		     bool *out, unsigned *have, unsigned bit)
{
	const vj_value *j = vj_get(obj, key);
	if (!j)
		return true;
	*have |= bit;
	return get_bool(c, j, field, out);
}

/* Pick a name from a table; the error lists the choices. */
static bool get_enum(pctx *c, const vj_value *j, const char *field, const char *const *names,
		     unsigned n, unsigned *out)
{
	if (j->type != VJ_STR)
		return perr(c, field, "expected a string, got %s", vj_type_name(j->type));
	/* strcmp would stop at an escaped NUL and take "walk\u0000x" for "walk". */
	if (strlen(j->s) != j->len)
		return perr(c, field, "contains a NUL character");
	for (unsigned k = 0; k < n; k++)
		if (strcmp(j->s, names[k]) == 0) {
			*out = k;
			return true;
		}
	char choices[96] = "";
	for (unsigned k = 0; k < n; k++) {
		size_t l = strlen(choices);
		snprintf(choices + l, sizeof(choices) - l, "%s%s", k ? ", " : "", names[k]);
	}
	return perr(c, field, "unknown value \"%.32s\" (one of: %s)", j->s, choices);
}

static const char *const kind_names[] = { "walk", "ept", "nested" };
static const char *const result_names[] = { "ok", "page_fault", "ept_violation", "ept_misconfig" };
static const char *const atype_names[] = { "read", "write", "fetch" };

/* A word list: [[addr, value], [addr, value, size], ...], naturally aligned, no overlap. */
static bool get_words(pctx *c, const vj_value *j, const char *name, vmem_vector_word **out,
		      size_t *n)
{
	char f[64];
	if (j->type != VJ_ARR)
		return perr(c, name, "expected an array of [addr, value] pairs, got %s",
			    vj_type_name(j->type));
	*n = 0;
	*out = NULL;
	if (!j->n)
		return true;
	vmem_vector_word *w = calloc(j->n, sizeof(*w));
	if (!w) {
		c->oom = true;
		return perr(c, name, "out of memory");
	}
	*out = w;
	for (size_t k = 0; k < j->n; k++) {
		const vj_value *e = &j->items[k];
		snprintf(f, sizeof(f), "%s[%zu]", name, k);
		if (e->type != VJ_ARR || e->n < 2 || e->n > 3)
			return perr(c, f, "expected [addr, value] or [addr, value, size]");
		w[k].size = 8;
		snprintf(f, sizeof(f), "%s[%zu][0]", name, k);
		if (!get_hex(c, &e->items[0], f, &w[k].addr))
			return false;
		snprintf(f, sizeof(f), "%s[%zu][1]", name, k);
		if (!get_hex(c, &e->items[1], f, &w[k].value))
			return false;
		if (e->n == 3) {
			snprintf(f, sizeof(f), "%s[%zu][2]", name, k);
			if (!get_uint(c, &e->items[2], f, 4, 8, &w[k].size))
				return false;
			if (w[k].size != 4 && w[k].size != 8)
				return perr(c, f, "size must be 4 or 8");
		}
		snprintf(f, sizeof(f), "%s[%zu]", name, k);
		if (w[k].addr & (w[k].size - 1))
			return perr(c, f, "address 0x%llx is not aligned to its size %u",
				    (unsigned long long)w[k].addr, w[k].size);
		if (w[k].size == 4 && w[k].value > 0xffffffffull)
			return perr(c, f, "value 0x%llx does not fit in 4 bytes",
				    (unsigned long long)w[k].value);
		for (size_t q = 0; q < k; q++)
			if (w[q].addr < w[k].addr + w[k].size && w[k].addr < w[q].addr + w[q].size)
				return perr(c, f, "overlaps %s[%zu] at 0x%llx", name, q,
					    (unsigned long long)w[q].addr);
		*n = k + 1;
	}
	return true;
}

static bool parse_cpu(pctx *c, const vj_value *root, vmem_vector *v)
{
	const vj_value *cpu = need(c, root, "cpu", "cpu", VJ_OBJ);
	if (!cpu)
		return false;
	static const struct { const char *key, *field; unsigned bit; size_t off; } regs[] = {
		{ "cr0", "cpu.cr0", VMEM_VHAVE_CR0, offsetof(vmem_vector, cpu.cr0) },
		{ "cr3", "cpu.cr3", VMEM_VHAVE_CR3, offsetof(vmem_vector, cpu.cr3) },
		{ "cr4", "cpu.cr4", VMEM_VHAVE_CR4, offsetof(vmem_vector, cpu.cr4) },
		{ "efer", "cpu.efer", VMEM_VHAVE_EFER, offsetof(vmem_vector, cpu.efer) },
	};
	for (unsigned k = 0; k < 4; k++) {
		uint64_t *dst = (uint64_t *)((char *)v + regs[k].off);
		if (!opt_hex(c, cpu, regs[k].key, regs[k].field, dst, &v->have, regs[k].bit))
			return false;
		/* The paging registers are required except for kind ept. */
		if (!(v->have & regs[k].bit) && v->kind != VMEM_VKIND_EPT)
			return perr(c, regs[k].field, "required field missing");
	}
	uint64_t pkru = 0;
	if (!opt_hex(c, cpu, "pkru", "cpu.pkru", &pkru, &v->have, VMEM_VHAVE_PKRU))
		return false;
	if (pkru > 0xffffffffull)
		return perr(c, "cpu.pkru", "PKRU is a 32-bit register");
	v->cpu.pkru = (uint32_t)pkru;
	const vj_value *j = vj_get(cpu, "maxphyaddr");
	if (j) {
		v->have |= VMEM_VHAVE_MAXPHYADDR;
		if (!get_uint(c, j, "cpu.maxphyaddr", 32, 52, &v->cpu.maxphyaddr))
			return false;
	}
	return opt_bool(c, cpu, "gbpages", "cpu.gbpages", &v->cpu.gbpages, &v->have,
			VMEM_VHAVE_GBPAGES);
}

static bool parse_ept(pctx *c, const vj_value *root, vmem_vector *v)
{
	const vj_value *ept = vj_get(root, "ept");
	if (v->kind == VMEM_VKIND_WALK) {
		if (!ept)
			return true; /* kind walk: an "ept" object, if any, is parsed but unused */
	} else if (!ept) {
		return perr(c, "ept", "required field missing");
	}
	if (ept->type != VJ_OBJ)
		return perr(c, "ept", "expected an object, got %s", vj_type_name(ept->type));
	v->have |= VMEM_VHAVE_EPT;
	const vj_value *j = need(c, ept, "eptp", "ept.eptp", VJ_STR);
	if (!j || !get_hex(c, j, "ept.eptp", &v->ept.eptp))
		return false;
	return opt_bool(c, ept, "mbec", "ept.mbec", &v->ept.mbec, &v->have, VMEM_VHAVE_MBEC) &&
	       opt_bool(c, ept, "advanced_info", "ept.advanced_info", &v->ept.advanced_info,
			&v->have, VMEM_VHAVE_ADVINFO);
}

static bool parse_access(pctx *c, const vj_value *root, vmem_vector *v)
{
	const vj_value *acc = need(c, root, "access", "access", VJ_OBJ);
	if (!acc)
		return false;
	const vj_value *j = vj_get(acc, "addr");
	if (!j)
		return perr(c, "access.addr", "required field missing");
	if (!get_hex(c, j, "access.addr", &v->access.addr))
		return false;
	j = vj_get(acc, "type");
	if (!j)
		return perr(c, "access.type", "required field missing");
	unsigned t;
	if (!get_enum(c, j, "access.type", atype_names, 3, &t))
		return false;
	v->access.type = (vmem_vector_atype)t;
	j = vj_get(acc, "cpl");
	if (j) {
		v->have |= VMEM_VHAVE_CPL;
		if (!get_uint(c, j, "access.cpl", 0, 3, &v->access.cpl))
			return false;
	}
	return opt_bool(c, acc, "implicit", "access.implicit", &v->access.implicit, &v->have,
			VMEM_VHAVE_IMPLICIT) &&
	       opt_bool(c, acc, "ac", "access.ac", &v->access.ac, &v->have, VMEM_VHAVE_AC) &&
	       opt_hex(c, acc, "linear", "access.linear", &v->access.linear, &v->have,
		       VMEM_VHAVE_LINEAR);
}

/* Results each kind can have, and the expect fields each result requires
 * (vectors.md, "expect"). */
static const unsigned result_kinds[4] = {
	[VMEM_VRES_OK] = 7, [VMEM_VRES_PAGE_FAULT] = 1u << VMEM_VKIND_WALK | 1u << VMEM_VKIND_NESTED,
	[VMEM_VRES_EPT_VIOLATION] = 1u << VMEM_VKIND_EPT | 1u << VMEM_VKIND_NESTED,
	[VMEM_VRES_EPT_MISCONFIG] = 1u << VMEM_VKIND_EPT | 1u << VMEM_VKIND_NESTED,
};

static bool parse_expect(pctx *c, const vj_value *root, vmem_vector *v)
{
	vmem_vector_expect *e = &v->expect;
	const vj_value *ex = need(c, root, "expect", "expect", VJ_OBJ);
	if (!ex)
		return false;
	const vj_value *j = vj_get(ex, "result");
	if (!j)
		return perr(c, "expect.result", "required field missing");
	unsigned r = 0; /* set by get_enum on success */
	if (!get_enum(c, j, "expect.result", result_names, 4, &r))
		return false;
	e->result = (vmem_vector_result)r;
	if (!(result_kinds[r] & (1u << v->kind)))
		return perr(c, "expect.result", "result %s is impossible for kind %s",
			    result_names[r], kind_names[v->kind]);
	static const struct { const char *key, *field; unsigned bit; size_t off; } hx[] = {
		{ "gpa", "expect.gpa", VMEM_VEXP_GPA, offsetof(vmem_vector_expect, gpa) },
		{ "hpa", "expect.hpa", VMEM_VEXP_HPA, offsetof(vmem_vector_expect, hpa) },
		{ "error_code", "expect.error_code", VMEM_VEXP_ERROR,
		  offsetof(vmem_vector_expect, error_code) },
		{ "exit_qualification", "expect.exit_qualification", VMEM_VEXP_EXITQUAL,
		  offsetof(vmem_vector_expect, exit_qualification) },
		{ "guest_physical", "expect.guest_physical", VMEM_VEXP_GUEST_PHYS,
		  offsetof(vmem_vector_expect, guest_physical) },
		{ "guest_linear", "expect.guest_linear", VMEM_VEXP_GUEST_LIN,
		  offsetof(vmem_vector_expect, guest_linear) },
	};
	for (unsigned k = 0; k < sizeof(hx) / sizeof(hx[0]); k++)
		if (!opt_hex(c, ex, hx[k].key, hx[k].field, (uint64_t *)((char *)e + hx[k].off),
			     &e->have, hx[k].bit))
			return false;
	j = vj_get(ex, "page_size");
	if (j) {
		e->have |= VMEM_VEXP_PAGE_SIZE;
		if (j->type != VJ_NUM)
			return perr(c, "expect.page_size", "expected a number, got %s",
				    vj_type_name(j->type));
		if (!j->is_int || (j->i != 4096 && j->i != 2097152 && j->i != 4194304 &&
				   j->i != 1073741824))
			return perr(c, "expect.page_size",
				    "must be 4096, 2097152, 4194304 or 1073741824");
		e->page_size = (uint64_t)j->i;
	}
	if (e->error_code > 0xffffffffull)
		return perr(c, "expect.error_code", "a #PF error code is 32 bits");
	/* Fields the result requires. */
	bool ok = e->result == VMEM_VRES_OK;
	struct { bool when; unsigned bit; const char *field; } req[] = {
		{ ok && v->kind == VMEM_VKIND_WALK, VMEM_VEXP_GPA, "expect.gpa" },
		{ ok && v->kind != VMEM_VKIND_WALK, VMEM_VEXP_HPA, "expect.hpa" },
		{ ok, VMEM_VEXP_PAGE_SIZE, "expect.page_size" },
		{ e->result == VMEM_VRES_PAGE_FAULT, VMEM_VEXP_ERROR, "expect.error_code" },
		{ e->result == VMEM_VRES_EPT_VIOLATION, VMEM_VEXP_EXITQUAL,
		  "expect.exit_qualification" },
		{ e->result >= VMEM_VRES_EPT_VIOLATION, VMEM_VEXP_GUEST_PHYS,
		  "expect.guest_physical" },
		/* "ept_violation, when the qualification says it is valid": bit 7 of
		 * the exit qualification (SDM 3C, EPT violations) says so. */
		{ e->result == VMEM_VRES_EPT_VIOLATION && (e->exit_qualification & VMEM_EPTQ_GLA_VALID),
		  VMEM_VEXP_GUEST_LIN, "expect.guest_linear" },
	};
	for (unsigned k = 0; k < sizeof(req) / sizeof(req[0]); k++)
		if (req[k].when && !(e->have & req[k].bit))
			return perr(c, req[k].field, "required when result is %s%s",
				    result_names[r], req[k].bit == VMEM_VEXP_GUEST_LIN ?
				    " and exit_qualification bit 7 (guest-linear address valid) is set" : "");
	j = vj_get(ex, "mem_after");
	if (j) {
		e->have |= VMEM_VEXP_MEM_AFTER;
		if (!get_words(c, j, "expect.mem_after", &e->mem_after, &e->n_mem_after))
			return false;
	}
	return true;
}

static bool parse_root(pctx *c, const vj_value *root, vmem_vector *v)
{
	if (root->type != VJ_OBJ)
		return perr(c, "", "a vector is a JSON object, got %s", vj_type_name(root->type));
	const vj_value *j = vj_get(root, "v");
	if (!j)
		return perr(c, "v", "required field missing");
	if (!get_uint(c, j, "v", 0, 1000000, &v->v))
		return false;
	if (v->v != 1)
		return perr(c, "v", "unsupported format version %u (this reader knows 1)", v->v);
	j = vj_get(root, "id");
	if (j) {
		if (j->type != VJ_STR)
			return perr(c, "id", "expected a string, got %s", vj_type_name(j->type));
		if (strlen(j->s) != j->len)
			return perr(c, "id", "contains a NUL character");
		v->id = malloc(j->len + 1);
		if (v->id)
			memcpy(v->id, j->s, j->len + 1);
		if (!v->id) {
			c->oom = true;
			return perr(c, "id", "out of memory");
		}
		v->have |= VMEM_VHAVE_ID;
	}
	j = vj_get(root, "kind");
	if (!j)
		return perr(c, "kind", "required field missing");
	unsigned k;
	if (!get_enum(c, j, "kind", kind_names, 3, &k))
		return false;
	v->kind = (vmem_vector_kind)k;
	if (!parse_cpu(c, root, v) || !parse_ept(c, root, v) || !parse_access(c, root, v))
		return false;
	j = vj_get(root, "mem");
	if (!j)
		return perr(c, "mem", "required field missing");
	return get_words(c, j, "mem", &v->mem, &v->n_mem) && parse_expect(c, root, v);
}

vmem_err vmem_vector_parse_line(const char *line, size_t len, vmem_vector *out,
				vmem_vector_error *err)
{
	vmem_vector_init(out);
	memset(err, 0, sizeof(*err));
	size_t k = 0;
	while (k < len && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r' || line[k] == '\n'))
		k++;
	if (k == len || line[k] == '#')
		return VMEM_E_NOENT;
	vj_doc doc;
	vj_error je;
	int rc = vj_parse(line, len, &doc, &je);
	if (rc) {
		vj_free(&doc);
		err->column = je.col;
		snprintf(err->msg, sizeof(err->msg), "%s", je.msg);
		return rc == -2 ? VMEM_E_NOMEM : VMEM_E_PARSE;
	}
	pctx c = { .err = err };
	bool ok = parse_root(&c, doc.root, out);
	vj_free(&doc);
	if (ok)
		return VMEM_OK;
	vmem_vector_free(out);
	return c.oom ? VMEM_E_NOMEM : VMEM_E_PARSE;
}

const char *vmem_vector_kind_name(vmem_vector_kind k)
{
	return (unsigned)k < 3 ? kind_names[k] : "?";
}

const char *vmem_vector_result_name(vmem_vector_result r)
{
	return (unsigned)r < 4 ? result_names[r] : "?";
}

const char *vmem_vector_atype_name(vmem_vector_atype t)
{
	return (unsigned)t < 3 ? atype_names[t] : "?";
}
