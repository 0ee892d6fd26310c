/* kvm_answer.h: KVM's answer to one paging case (outcome plus the memory words it changed). */
#ifndef KVM_ANSWER_H
#define KVM_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvm_case.h"

#define KVM_MAX_CHANGES 16

/* Paging-structure words an access changed (accessed and dirty flags). */
typedef struct kvm_changes {
	unsigned n;
	bool overflow; /* more than KVM_MAX_CHANGES */
	struct {
		uint64_t gpa, before, after;
	} w[KVM_MAX_CHANGES];
} kvm_changes;

typedef struct kvm_answer {
	bool ok;             /* the access completed (translation at c->gpa verified) */
	uint32_t error_code; /* !ok: #PF error code */
	uint64_t cr2;        /* !ok: CR2 */
	kvm_changes chg;     /* words changed in every page but the data page */
} kvm_answer;

/* Run the case in a fresh KVM guest. Returns 0 with *a filled, -1 with a
 * reason in why if the guest did something else than complete the access
 * or take a #PF on it (a harness problem, not an answer). The case's pages
 * are left as the guest left them. */
int kvm_answer_case(const kvm_case *c, kvm_answer *a, char *why, size_t n);

/* Words that differ between the case's pages (before) and after[i], the
 * data page excepted. */
void kvm_diff_pages(const kvm_case *c, unsigned char *const before[],
		    unsigned char *const after[], kvm_changes *out);

#endif
