/* libvmem vectors: lifetime of a vector, error text, and the line-counting file reader. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vectors_int.h"

void vmem_vector_init(vmem_vector *v)
{
	memset(v, 0, sizeof(*v));
	v->v = 1;
	v->kind = VMEM_VKIND_WALK;
	v->cpu.maxphyaddr = 48;
	v->cpu.gbpages = true;
	v->expect.result = VMEM_VRES_OK;
}

void vmem_vector_free(vmem_vector *v)
{
	free(v->id);
	free(v->mem);
	free(v->expect.mem_after);
	vmem_vector_init(v);
}

const char *vmem_vector_error_str(const vmem_vector_error *e, const char *where,
				  char *buf, size_t len)
{
	char line[24] = "", col[16] = "";
	if (e->line)
		snprintf(line, sizeof(line), "%lu:", e->line);
	if (e->column)
		snprintf(col, sizeof(col), "%u:", e->column);
	bool has_where = where && *where;
	bool prefix = has_where || e->line || e->column;
	if (len)
		snprintf(buf, len, "%s%s%s%s%s%s%s", has_where ? where : "", has_where ? ":" : "",
			 line, col, prefix ? " " : "", e->field, e->field[0] ? ": " : "");
	size_t o = len ? strlen(buf) : 0;
	if (o + 1 < len)
		snprintf(buf + o, len - o, "%s", e->msg);
	return buf;
}

void vv_printf(vv_buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap ? b->cap * 2 : 256) + (size_t)n;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

struct vmem_vector_reader {
	FILE *f;
	char *line;
	size_t cap;
	unsigned long lineno;
};

vmem_err vmem_vector_reader_new(FILE *f, vmem_vector_reader **out)
{
	vmem_vector_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return VMEM_E_NOMEM;
	r->f = f;
	*out = r;
	return VMEM_OK;
}

void vmem_vector_reader_free(vmem_vector_reader *r)
{
	if (r) {
		free(r->line);
		free(r);
	}
}

unsigned long vmem_vector_reader_line(const vmem_vector_reader *r)
{
	return r->lineno;
}

/* One line of any length (without its '\n'); 1 at EOF, -1 on error. */
static int read_line(vmem_vector_reader *r, size_t *len)
{
	size_t n = 0;
	int ch;
	while ((ch = getc(r->f)) != EOF && ch != '\n') {
		if (n + 1 >= r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 1024;
			char *s = realloc(r->line, cap);
			if (!s)
				return -2;
			r->line = s;
			r->cap = cap;
		}
		r->line[n++] = (char)ch;
	}
	if (ferror(r->f))
		return -1;
	if (ch == EOF && n == 0)
		return 1;
	*len = n;
	return 0;
}

vmem_err vmem_vector_read(vmem_vector_reader *r, vmem_vector *out, vmem_vector_error *err)
{
	vmem_vector_init(out);
	memset(err, 0, sizeof(*err));
	for (;;) {
		size_t len = 0;
		int rc = read_line(r, &len);
		if (rc == 1)
			return VMEM_E_NOENT;
		if (rc == -2)
			return VMEM_E_NOMEM;
		r->lineno++;
		if (rc < 0) {
			err->line = r->lineno;
			snprintf(err->msg, sizeof(err->msg), "read error");
			return VMEM_E_IO;
		}
		vmem_err e = vmem_vector_parse_line(r->line ? r->line : "", len, out, err);
		if (e == VMEM_E_NOENT)
			continue;
		err->line = r->lineno;
		return e;
	}
}

void vmem_vector_verdict_free(vmem_vector_verdict *vd)
{
	free(vd->diff);
	vd->diff = NULL;
}
