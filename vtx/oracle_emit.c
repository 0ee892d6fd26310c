/* oracle_emit.c: print one test vector (JSON Lines, format v1 of /work/shared/spec/vectors.md) on the console. */
#include "oracle.h"
#include "rt.h"

void oracle_words_add(struct oracle_words *w, uint64_t addr)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->addr[i] == addr)
			return;
	RT_ASSERT(w->n < ORACLE_MAX_WORDS);
	/* Keep them sorted by address: vectors read better that way. */
	unsigned i = w->n++;
	while (i > 0 && w->addr[i - 1] > addr) {
		w->addr[i] = w->addr[i - 1];
		i--;
	}
	w->addr[i] = addr;
}

static const char *const access_name[] = { "read", "write", "fetch" };

static void hex(const char *key, uint64_t v, bool comma)
{
	rt_printf("\"%s\":\"0x%lx\"%s", key, v, comma ? "," : "");
}

void oracle_emit(const struct oracle_vector *v)
{
	const struct oracle_words *m = v->mem;
	rt_printf("{\"v\":1,\"id\":\"%s\",\"kind\":\"%s\",\"cpu\":{", v->id,
		  v->kind == ORACLE_EPT ? "ept" : "nested");
	if (v->kind == ORACLE_NESTED) {
		hex("cr0", v->cr0, true);
		hex("cr3", v->cr3, true);
		hex("cr4", v->cr4, true);
		hex("efer", v->efer, true);
	}
	rt_printf("\"maxphyaddr\":%u%s},\"ept\":{", v->maxphyaddr, v->gbpages ? "" : ",\"gbpages\":false");
	hex("eptp", v->eptp, false);
	rt_puts("},\"access\":{");
	hex("addr", v->addr, true);
	rt_printf("\"type\":\"%s\"", access_name[v->type]);
	if (v->has_linear) {
		rt_putc(',');
		hex("linear", v->linear, false);
	}
	rt_puts("},\"mem\":[");
	for (unsigned i = 0; i < m->n; i++)
		rt_printf("%s[\"0x%lx\",\"0x%lx\"]", i ? "," : "", m->addr[i], m->before[i]);
	rt_puts("],\"expect\":{");
	switch (v->result) {
	case ORACLE_OK:
		rt_puts("\"result\":\"ok\",");
		hex("hpa", v->hpa, true);
		rt_printf("\"page_size\":%lu,", v->page_size);
		break;
	case ORACLE_PAGE_FAULT:
		rt_printf("\"result\":\"page_fault\",\"error_code\":\"0x%x\",", v->error_code);
		break;
	case ORACLE_EPT_VIOLATION:
		rt_puts("\"result\":\"ept_violation\",");
		hex("exit_qualification", v->qual, true);
		hex("guest_physical", v->gpa, true);
		if (v->qual & (1u << 7))
			hex("guest_linear", v->gla, true);
		break;
	case ORACLE_EPT_MISCONFIG:
		rt_puts("\"result\":\"ept_misconfig\",");
		hex("guest_physical", v->gpa, true);
		break;
	}
	rt_puts("\"mem_after\":[");
	bool first = true;
	for (unsigned i = 0; i < m->n; i++) {
		if (m->after[i] == m->before[i])
			continue;
		rt_printf("%s[\"0x%lx\",\"0x%lx\"]", first ? "" : ",", m->addr[i], m->after[i]);
		first = false;
	}
	rt_puts("]}");
	if (v->note)
		rt_printf(",\"vtx_note\":\"%s\"", v->note);
	rt_puts("}\n");
}
