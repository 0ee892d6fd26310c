/* Nested-walk tests: two vmem_nested_result answers compared field by field (padding left out). */
#ifndef VMEM_TESTS_NESTED_SAME_H
#define VMEM_TESTS_NESTED_SAME_H

#include <libvmem/nested.h>

/* Every field that is an answer (not padding): the fast paths need not
 * write padding as the full walk's memset does. */
static inline int nested_same(const vmem_nested_result *a, const vmem_nested_result *b)
{
	const vmem_walk_result *ga = &a->guest, *gb = &b->guest;
	const vmem_ept_result *ea = &a->ept, *eb = &b->ept;
	return a->hpa == b->hpa && a->gpa == b->gpa && a->page_size == b->page_size &&
	       a->exit_qual == b->exit_qual && a->linear == b->linear && a->error_code == b->error_code &&
	       a->status == b->status && a->final == b->final &&
	       ga->gpa == gb->gpa && ga->page_size == gb->page_size && ga->entry == gb->entry &&
	       ga->error_code == gb->error_code && ga->status == gb->status && ga->level == gb->level &&
	       ga->perms == gb->perms && ga->info == gb->info &&
	       ea->gpa == eb->gpa && ea->hpa == eb->hpa && ea->page_size == eb->page_size &&
	       ea->exit_qual == eb->exit_qual && ea->linear == eb->linear && ea->entry == eb->entry &&
	       ea->status == eb->status && ea->level == eb->level && ea->perms == eb->perms &&
	       ea->memtype == eb->memtype && ea->ipat == eb->ipat && ea->info == eb->info;
}
#endif
