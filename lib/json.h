/* libvmem private: a small strict JSON parser (RFC 8259) for the hosted vector reader. */
#ifndef VMEM_JSON_H
#define VMEM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nesting deeper than this is refused (no unbounded recursion on hostile input). */
#define VJ_MAX_DEPTH 32

typedef enum vj_type { VJ_NULL, VJ_BOOL, VJ_NUM, VJ_STR, VJ_ARR, VJ_OBJ } vj_type;

typedef struct vj_value vj_value;
struct vj_value {
	vj_type type;
	unsigned col;       /* 1-based byte column where the value starts */
	bool b;             /* VJ_BOOL */
	bool is_int;        /* VJ_NUM: no fraction or exponent and fits int64 */
	int64_t i;          /* VJ_NUM when is_int */
	const char *s;      /* VJ_STR: decoded UTF-8, NUL-terminated; */
	size_t len;         /*   len bytes (may hold an escaped NUL) */
	vj_value *items;    /* VJ_ARR / VJ_OBJ: n values */
	const char **keys;  /* VJ_OBJ: n keys, decoded, all distinct; */
	size_t *key_lens;   /*   their lengths (a key may hold an escaped NUL) */
	size_t n;
};

typedef struct vj_error {
	unsigned col;   /* 1-based byte column of the offending byte */
	char msg[96];
} vj_error;

/* A parsed document owns every value, string and key (one arena). */
typedef struct vj_doc {
	struct vj_chunk *chunks;
	vj_value *root;
} vj_doc;

/* Parse exactly one JSON value (surrounded by optional whitespace).
 * Returns 0 with doc->root set, -1 with *err filled for malformed input, or
 * -2 when out of memory. Call vj_free on the doc either way. */
int vj_parse(const char *text, size_t len, vj_doc *doc, vj_error *err);
void vj_free(vj_doc *doc);

/* Member `key` of an object, or NULL. */
const vj_value *vj_get(const vj_value *obj, const char *key);
const char *vj_type_name(vj_type t);

#endif
