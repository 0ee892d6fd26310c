/* oracle_emit.c: print one test vector (JSON Lines, format v1 of /work/shared/spec/vectors.md) on the console. */
#include "oracle.h"
#include "rt.h"

void oracle_words_add(struct oracle_words *w, uint64_t addr)
{
	oracle_words_add_sized(w, addr, 8);
}

void oracle_words_add_sized(struct oracle_words *w, uint64_t addr, unsigned size)
{
	for (unsigned i = 0; i < w->n; i++)
		if (w->addr[i] == addr)
			return;
	RT_ASSERT(w->n < ORACLE_MAX_WORDS);
	/* Keep them sorted by address: vectors read better that way. */
	unsigned i = w->n++;
	while (i > 0 && w->addr[i - 1] > addr) {
		w->addr[i] = w->addr[i - 1];
		w->size[i] = w->size[i - 1];
		i--;
	}
	w->addr[i] = addr;
	w->size[i] = (uint8_t)size;
}

void oracle_words_read(struct oracle_words *w, bool after)
{
	for (unsigned i = 0; i < w->n; i++) {
		uint64_t v = w->size[i] == 4 ? *(const uint32_t *)(uintptr_t)w->addr[i]
					      : *(const uint64_t *)(uintptr_t)w->addr[i];
		if (after)
			w->after[i] = v;
		else
			w->before[i] = v;
	}
}

static void word(bool comma, uint64_t addr, uint64_t value, unsigned size)
{
	rt_printf("%s[\"0x%lx\",\"0x%lx\"", comma ? "," : "", addr, value);
	rt_puts(size == 4 ? ",4]" : "]");
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
		if (v->pkru)
			rt_printf("\"pkru\":\"0x%x\",", v->pkru);
	}
	rt_printf("\"maxphyaddr\":%u%s},\"ept\":{", v->maxphyaddr, v->gbpages ? "" : ",\"gbpages\":false");
	hex("eptp", v->eptp, false);
	rt_puts("},\"access\":{");
	hex("addr", v->addr, true);
	rt_printf("\"type\":\"%s\"", access_name[v->type]);
	if (v->cpl)
		rt_printf(",\"cpl\":%u", v->cpl);
	if (v->ac)
		rt_puts(",\"ac\":true");
	if (v->has_linear) {
		rt_putc(',');
		hex("linear", v->linear, false);
	}
	rt_puts("},\"mem\":[");
	for (unsigned i = 0; i < m->n; i++)
		word(i != 0, m->addr[i], m->before[i], m->size[i]);
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
		word(!first, m->addr[i], m->after[i], m->size[i]);
		first = false;
	}
	rt_puts("]}");
	if (v->note)
		rt_printf(",\"vtx_note\":\"%s\"", v->note);
	rt_puts("}\n");
}
