/* libvmem translation test vectors (format v1, docs/vectors.md): parse, write, check, generate. */
#ifndef LIBVMEM_VECTORS_H
#define LIBVMEM_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hosted layer only (uses libc: malloc, stdio). Every vector owns its
 * strings and lists; release one with vmem_vector_free. */

typedef enum vmem_vector_kind {
	VMEM_VKIND_WALK = 0,   /* guest page walk: linear -> guest-physical */
	VMEM_VKIND_EPT = 1,    /* EPT walk: guest-physical -> host-physical */
	VMEM_VKIND_NESTED = 2  /* both: linear -> host-physical */
} vmem_vector_kind;

typedef enum vmem_vector_atype {
	VMEM_VACC_READ = 0,
	VMEM_VACC_WRITE = 1,
	VMEM_VACC_FETCH = 2
} vmem_vector_atype;

typedef enum vmem_vector_result {
	VMEM_VRES_OK = 0,
	VMEM_VRES_PAGE_FAULT = 1,
	VMEM_VRES_EPT_VIOLATION = 2,
	VMEM_VRES_EPT_MISCONFIG = 3
} vmem_vector_result;

/* One memory word: [addr, value] or [addr, value, size]; size is 4 or 8 and
 * addr a multiple of it (else check says VMEM_VCHECK_ERROR, answer VMEM_E_INVAL). */
typedef struct vmem_vector_word {
	uint64_t addr, value;
	unsigned size;
} vmem_vector_word;

/* Which optional fields were present (bits of vmem_vector.have). A field
 * that is absent holds its documented default. */
#define VMEM_VHAVE_ID         (1u << 0)
#define VMEM_VHAVE_CR0        (1u << 1)  /* cr0..efer: required for walk/nested, */
#define VMEM_VHAVE_CR3        (1u << 2)  /* optional for ept (then ignored)      */
#define VMEM_VHAVE_CR4        (1u << 3)
#define VMEM_VHAVE_EFER       (1u << 4)
#define VMEM_VHAVE_PKRU       (1u << 5)
#define VMEM_VHAVE_MAXPHYADDR (1u << 6)
#define VMEM_VHAVE_GBPAGES    (1u << 7)
#define VMEM_VHAVE_EPT        (1u << 8)  /* the "ept" object */
#define VMEM_VHAVE_MBEC       (1u << 9)
#define VMEM_VHAVE_ADVINFO    (1u << 10)
#define VMEM_VHAVE_CPL        (1u << 11)
#define VMEM_VHAVE_IMPLICIT   (1u << 12)
#define VMEM_VHAVE_AC         (1u << 13)
#define VMEM_VHAVE_LINEAR     (1u << 14) /* access.linear (kind ept) */

/* Which expect fields were present (bits of vmem_vector_expect.have). */
#define VMEM_VEXP_GPA       (1u << 0)
#define VMEM_VEXP_HPA       (1u << 1)
#define VMEM_VEXP_PAGE_SIZE (1u << 2)
#define VMEM_VEXP_ERROR     (1u << 3) /* error_code */
#define VMEM_VEXP_EXITQUAL  (1u << 4) /* exit_qualification */
#define VMEM_VEXP_GUEST_PHYS (1u << 5)
#define VMEM_VEXP_GUEST_LIN (1u << 6)
#define VMEM_VEXP_MEM_AFTER (1u << 7) /* mem_after present (possibly empty) */

typedef struct vmem_vector_expect {
	vmem_vector_result result;
	unsigned have; /* VMEM_VEXP_* */
	uint64_t gpa, hpa, page_size;
	uint64_t error_code, exit_qualification, guest_physical, guest_linear;
	/* Absent (have lacks VMEM_VEXP_MEM_AFTER): side effects are not checked.
	 * Present with n_mem_after == 0: the access must change nothing. */
	vmem_vector_word *mem_after;
	size_t n_mem_after;
} vmem_vector_expect;

typedef struct vmem_vector {
	unsigned v;    /* format version: 1 */
	unsigned have; /* VMEM_VHAVE_* */
	char *id;      /* NULL when absent */
	vmem_vector_kind kind;
	struct {
		uint64_t cr0, cr3, cr4, efer;
		uint32_t pkru;       /* default 0 */
		unsigned maxphyaddr; /* default 48 */
		bool gbpages;        /* default true */
	} cpu;
	struct {
		uint64_t eptp;
		bool mbec;           /* default false */
		bool advanced_info;  /* default false */
	} ept;
	struct {
		uint64_t addr;
		vmem_vector_atype type;
		unsigned cpl;        /* 0..3, default 0 */
		bool implicit, ac;   /* default false */
		uint64_t linear;     /* kind ept, when VMEM_VHAVE_LINEAR */
	} access;
	vmem_vector_word *mem;
	size_t n_mem;
	vmem_vector_expect expect;
} vmem_vector;

/* Where and why input was rejected. line is 1-based (0 when not from a
 * file); column is the 1-based byte column of a JSON syntax error (0 when
 * the error is about a field); field is the dotted path of the offending
 * field ("cpu.cr3", "mem[2][1]"; empty for a syntax error). */
typedef struct vmem_vector_error {
	unsigned long line;
	unsigned column;
	char field[64];
	char msg[160];
} vmem_vector_error;

/* Format an error as "where:line:column: field: message" (parts that are
 * unknown are left out) into buf. Returns buf. */
const char *vmem_vector_error_str(const vmem_vector_error *e, const char *where,
				  char *buf, size_t len);

/* A fresh vector with every default: v 1, kind walk, maxphyaddr 48,
 * gbpages true, no memory, result ok. */
void vmem_vector_init(vmem_vector *v);
/* Release what the vector owns and re-initialise it. */
void vmem_vector_free(vmem_vector *v);

/* Parse one line (len bytes, no newline needed). Returns VMEM_OK with *out
 * filled; VMEM_E_NOENT for a blank or '#' line (*out initialised, empty);
 * VMEM_E_PARSE with *err filled (err->line set to 0) for malformed input;
 * VMEM_E_NOMEM. On error *out is initialised and owns nothing. */
vmem_err vmem_vector_parse_line(const char *line, size_t len, vmem_vector *out,
				vmem_vector_error *err);

/* A reader over a stdio stream that counts lines. */
typedef struct vmem_vector_reader vmem_vector_reader;
vmem_err vmem_vector_reader_new(FILE *f, vmem_vector_reader **out);
void vmem_vector_reader_free(vmem_vector_reader *r);
/* The next vector, skipping blank and '#' lines. VMEM_OK: *out filled (the
 * caller frees it); VMEM_E_NOENT: end of input; VMEM_E_PARSE: *err names the
 * line (the reader moves on: the next call reads the following line);
 * VMEM_E_IO; VMEM_E_NOMEM. */
vmem_err vmem_vector_read(vmem_vector_reader *r, vmem_vector *out, vmem_vector_error *err);
/* Line number of the last line read. */
unsigned long vmem_vector_reader_line(const vmem_vector_reader *r);

/* Write v as one JSON line (with '\n') in a stable field order: v, id, kind,
 * cpu, ept, access, mem, expect. Only present optional fields are written.
 * VMEM_E_IO on a write error. */
vmem_err vmem_vector_write(FILE *f, const vmem_vector *v);
/* The same into a malloc'd NUL-terminated string (*out; caller frees). */
vmem_err vmem_vector_to_string(const vmem_vector *v, char **out);

/* Names used by the format. */
const char *vmem_vector_kind_name(vmem_vector_kind k);
const char *vmem_vector_result_name(vmem_vector_result r);
const char *vmem_vector_atype_name(vmem_vector_atype t);

/* The verdict of redoing a vector with the library. */
typedef enum vmem_vcheck_status {
	VMEM_VCHECK_PASS = 0,        /* the library agrees */
	VMEM_VCHECK_FAIL = 1,        /* it disagrees: diff says where */
	VMEM_VCHECK_UNSUPPORTED = 2, /* a kind or outcome the library does not model yet (a failure) */
	VMEM_VCHECK_ERROR = 3        /* the library refused the setup (a failure) */
} vmem_vcheck_status;

typedef struct vmem_vector_verdict {
	vmem_vcheck_status status;
	/* malloc'd text, one "  what: ..." line per difference, then the walk
	 * trace (each level's entry address and value); "" on a pass. */
	char *diff;
} vmem_vector_verdict;

/* Redo v with the library and compare with v->expect. Returns VMEM_OK with
 * *out filled (any status), or VMEM_E_NOMEM. Free with vmem_vector_verdict_free. */
vmem_err vmem_vector_check(const vmem_vector *v, vmem_vector_verdict *out);
void vmem_vector_verdict_free(vmem_vector_verdict *vd);

/* Redo v and store what the library answers in v->expect (replacing it,
 * mem_after included). VMEM_E_UNSUPPORTED for kinds and outcomes the
 * library cannot answer yet; VMEM_E_INVAL if it refuses the registers. */
vmem_err vmem_vector_answer(vmem_vector *v);

/* Generator modes. */
#define VMEM_VGEN_32BIT  (1u << 0)
#define VMEM_VGEN_PAE    (1u << 1)
#define VMEM_VGEN_4LEVEL (1u << 2)
#define VMEM_VGEN_5LEVEL (1u << 3)
#define VMEM_VGEN_ALL    0xfu

/* Generate vector number `index` of the stream for `seed`: random page
 * tables in a mode from `modes`, built to hit one fault class (index cycles
 * through them: ok, not-present and reserved-bit at each level, W, U, I, PK,
 * SMEP, SMAP), answered by the library with mem_after, with an id. The same
 * (seed, modes, index) always gives the same vector. */
vmem_err vmem_vector_generate(uint64_t seed, unsigned modes, unsigned long index,
			      vmem_vector *out);

/* Generate vector number `index` of the kind "ept" stream for `seed`: a
 * random EPT (4- or 5-level, A/D on or off, MBEC and advanced information
 * at random) whose tables lie in `mem` at host-physical addresses, built
 * to hit one outcome (index cycles through them): ok with a 4K, 2M or 1G
 * leaf; EPT violation on a not-present entry at each level, or on rights
 * that deny the access at some level; EPT misconfiguration by write-only
 * or write+execute rights, a reserved bit at each level, or a reserved
 * memory type. Answered by the library with mem_after; same arguments,
 * same vector. */
vmem_err vmem_vector_generate_ept(uint64_t seed, unsigned long index, vmem_vector *out);

/* Generate vector number `index` of the kind "nested" stream for `seed`:
 * guest tables as vmem_vector_generate builds them (a mode from `modes`),
 * placed by a random EPT at host-physical addresses, built to hit one
 * outcome (index cycles through them): ok; a guest #PF of one of the walk
 * generator's classes; an EPT violation on a guest paging-structure access
 * (a table at some guest level not present or without the rights the
 * access needs: read, and write when EPT A/D flags are on); an EPT
 * violation on the final access; an EPT misconfiguration on either. */
vmem_err vmem_vector_generate_nested(uint64_t seed, unsigned modes, unsigned long index,
				     vmem_vector *out);

#ifdef __cplusplus
}
#endif
#endif
