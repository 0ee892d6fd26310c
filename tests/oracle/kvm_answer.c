/* kvm_answer.c: run one paging case in a fresh KVM guest and read back its outcome. */
#include "kvm_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kvm_diff_pages(const kvm_case *c, unsigned char *const before[],
		    unsigned char *const after[], kvm_changes *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < c->npages; i++) {
		if ((int)i == c->data_page)
			continue;
		for (unsigned off = 0; off < 4096; off += 8) {
			uint64_t b, a;
			memcpy(&b, before[i] + off, 8);
			memcpy(&a, after[i] + off, 8);
			if (a == b)
				continue;
			if (out->n == KVM_MAX_CHANGES) {
				out->overflow = true;
				continue;
			}
			out->w[out->n].gpa = c->page_gpa[i] + off;
			out->w[out->n].before = b;
			out->w[out->n].after = a;
			out->n++;
		}
	}
}

int kvm_answer_case(const kvm_case *c, kvm_answer *a, char *why, size_t n)
{
	int rc = -1;
	unsigned char *snap = aligned_alloc(4096, KVM_CASE_MAX_PAGES * 4096);
	kvm_vm *vm = NULL;
	unsigned char *before[KVM_CASE_MAX_PAGES];

	memset(a, 0, sizeof(*a));
	if (!snap) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < c->npages; i++) {
		before[i] = snap + (size_t)i * 4096;
		memcpy(before[i], c->page[i], 4096);
	}
	vm = kvm_vm_new(why, n);
	if (!vm)
		goto out;
	for (unsigned i = 0; i < c->npages; i++)
		if (kvm_vm_add_page(vm, c->page_gpa[i], c->page[i]) < 0) {
			snprintf(why, n, "cannot add guest page 0x%llx",
				 (unsigned long long)c->page_gpa[i]);
			goto out;
		}

	kvm_access acc = {
		.cr0 = c->cr0, .cr3 = c->cr3, .cr4 = c->cr4, .efer = c->efer,
		.la = c->la, .type = c->type, .cpl = c->cpl, .wbyte = c->wbyte,
	};
	kvm_outcome o;
	if (kvm_vm_run(vm, &acc, &o, why, n) < 0)
		goto out;

	if (o.completed) {
		/* The access happened: check it reached the address the tables name. */
		unsigned off = (unsigned)(c->gpa & 0xfff);
		if (c->data_page < 0) {
			snprintf(why, n, "access completed but the case maps no page");
			goto out;
		}
		if (c->type == KVM_ACC_READ && o.rbyte != c->marker) {
			snprintf(why, n, "read completed but saw 0x%02x, not the marker 0x%02x",
				 o.rbyte, c->marker);
			goto out;
		}
		if (c->type == KVM_ACC_WRITE && c->page[c->data_page][off] != c->wbyte) {
			snprintf(why, n, "write completed but 0x%llx does not hold the byte written",
				 (unsigned long long)c->gpa);
			goto out;
		}
		a->ok = true;
	} else if (o.fault && o.vector == 14) {
		if (o.cr2 != c->la) {
			snprintf(why, n, "#PF with CR2 0x%llx, not the address accessed",
				 (unsigned long long)o.cr2);
			goto out;
		}
		a->ok = false;
		a->error_code = (uint32_t)o.error_code;
		a->cr2 = o.cr2;
	} else {
		snprintf(why, n, "guest neither completed the access nor took a #PF: %s vector %u "
			 "error code 0x%llx rip 0x%llx cr2 0x%llx",
			 o.fault ? "exception" : "no exception", o.vector,
			 (unsigned long long)o.error_code, (unsigned long long)o.rip,
			 (unsigned long long)o.cr2);
		goto out;
	}
	kvm_diff_pages(c, before, c->page, &a->chg);
	rc = 0;
out:
	kvm_vm_free(vm);
	free(snap);
	return rc;
}
