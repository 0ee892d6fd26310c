/* shadow_run: execute a shadow_seq sequence on libvmem's shadow engine and on the plain two-stage reference, and compare. */
#ifndef VMEM_TESTS_SHADOW_RUN_H
#define VMEM_TESTS_SHADOW_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <libvmem/alloc.h>
#include "shadow_seq.h"

typedef struct shadow_run_cfg {
	unsigned max_pages;          /* engine budget */
	unsigned max_roots;
	bool audit_each;             /* vmem_shadow_audit after every op (else at the end) */
	const vmem_allocator *alloc; /* engine allocator (NULL: default) */
	/* Called before each op with its index: lets a test arm allocation
	 * failures. An op that then fails with VMEM_E_NOMEM is checked
	 * (audit) and retried with fail_off() called first. */
	void (*before_op)(void *ctx, unsigned i);
	void (*fail_off)(void *ctx);
	void *ctx;
} shadow_run_cfg;

typedef struct shadow_run_stats {
	unsigned long accesses, fixed, inject_pf, emulated, host_faults, nomem;
} shadow_run_stats;

/* The reference: for each access, ref_walk over its own copy of guest
 * memory (setting A/D), then the slot table (RAM, read-only, no-exec,
 * holes). The engine: vmem_walk over the shadow tables with the engine's
 * host registers (as the processor would run), vmem_shadow_fault on a
 * #PF, emulation as the outcome asks. Outcomes, hpa, error codes and all
 * guest memory (A/D flags included) must agree after every op. Returns
 * true if they do; else why says where. */
bool shadow_run(const seq *s, const shadow_run_cfg *cfg, char *why, size_t why_len,
		shadow_run_stats *st);

#endif
