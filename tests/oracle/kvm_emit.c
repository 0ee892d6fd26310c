/* kvm_emit.c: write a KVM-answered case as a format-v1 "walk" test vector. */
#include "kvm_emit.h"

#include <stdbool.h>

static unsigned long long u(uint64_t v)
{
	return (unsigned long long)v;
}

void kvm_emit_vector(FILE *f, const char *id, const kvm_case *c, const kvm_answer *a)
{
	fprintf(f, "{\"v\":1,\"id\":\"%s\",\"kind\":\"walk\",", id);
	fprintf(f, "\"cpu\":{\"cr0\":\"0x%llx\",\"cr3\":\"0x%llx\",\"cr4\":\"0x%llx\","
		   "\"efer\":\"0x%llx\",\"maxphyaddr\":%d,\"gbpages\":false},",
		u(c->cr0), u(c->cr3), u(c->cr4), u(c->efer), KVM_MAXPHYADDR);
	fprintf(f, "\"access\":{\"addr\":\"0x%llx\",\"type\":\"%s\",\"cpl\":%u},",
		u(c->la), kvm_acc_name(c->type), c->cpl);
	fputs("\"mem\":[", f);
	for (unsigned i = 0; i < c->npath; i++) {
		bool dup = false; /* a self-map entry is read twice, listed once */
		for (unsigned j = 0; j < i; j++)
			dup |= c->path[j].gpa == c->path[i].gpa;
		if (!dup)
			fprintf(f, "%s[\"0x%llx\",\"0x%llx\"]", i ? "," : "",
				u(c->path[i].gpa), u(c->path[i].value));
	}
	fputs("],\"expect\":{", f);
	if (a->ok)
		fprintf(f, "\"result\":\"ok\",\"gpa\":\"0x%llx\",\"page_size\":%llu,",
			u(c->gpa), u(c->page_size));
	else
		fprintf(f, "\"result\":\"page_fault\",\"error_code\":\"0x%x\",", a->error_code);
	fputs("\"mem_after\":[", f);
	for (unsigned i = 0; i < a->chg.n; i++)
		fprintf(f, "%s[\"0x%llx\",\"0x%llx\"]", i ? "," : "",
			u(a->chg.w[i].gpa), u(a->chg.w[i].after));
	fputs("]}}\n", f);
}
