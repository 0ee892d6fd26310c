/* libvmem private: what the vector reader, writer, checker and generator share (hosted layer). */
#ifndef VMEM_VECTORS_INT_H
#define VMEM_VECTORS_INT_H

#include <libvmem/paging.h>
#include <libvmem/vectors.h>
#include <libvmem/walk.h>

/* A growable text buffer (the checker's diff). On allocation failure it
 * sets oom and stops growing. */
typedef struct vv_buf {
	char *s;
	size_t len, cap;
	bool oom;
} vv_buf;
void vv_printf(vv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What redoing a vector gave: an expect block, plus the walk trace. */
typedef struct vv_outcome {
	vmem_vector_expect got;
	vmem_walk_trace trace;
	bool have_trace;
	vmem_vcheck_status status; /* PASS when `got` is an answer */
	char why[160];             /* UNSUPPORTED / ERROR: the reason */
} vv_outcome;

/* One redo function per kind: fill *o from v (o->got.mem_after malloc'd).
 * Returns VMEM_OK (o->status says whether there is an answer) or VMEM_E_NOMEM. */
typedef vmem_err (*vv_redo_fn)(const vmem_vector *v, vv_outcome *o);
vmem_err vv_redo_walk(const vmem_vector *v, vv_outcome *o);
vmem_err vv_redo_ept(const vmem_vector *v, vv_outcome *o);    /* lib/vectors_ept.c */
vmem_err vv_redo_nested(const vmem_vector *v, vv_outcome *o); /* lib/vectors_ept.c */
vmem_err vv_redo(const vmem_vector *v, vv_outcome *o);
/* Record why a vector could not be checked. */
void vv_fail(vv_outcome *o, vmem_vcheck_status st, const char *what, int err);
/* The guest MMU a vector's cpu block describes: VMEM_OK with *mmu set;
 * VMEM_E_NOMEM; or VMEM_E_INVAL once the refusal is recorded in o. */
vmem_err vv_mmu_from_cpu(const vmem_vector *v, vv_outcome *o, vmem_mmu **mmu);

/* Test memory built from a word list: one 4 KiB page per distinct page. */
typedef struct vv_mem {
	struct vmem_gmem *gm;
	uint64_t *gpa;     /* page addresses, sorted */
	uint8_t **page;    /* host pages */
	uint8_t **initial; /* copies before the access */
	size_t n;
} vv_mem;
vmem_err vv_mem_build(vv_mem *m, const vmem_vector_word *w, size_t nw,
		      const vmem_vector_word *extra, size_t nextra);
void vv_mem_free(vv_mem *m);
/* Words of `width` bytes whose value differs between initial and now (malloc'd list). */
vmem_err vv_mem_changes(const vv_mem *m, unsigned width, vmem_vector_word **out, size_t *n);

#endif
