/* libvmem private: strict recursive-descent JSON parser with byte-column errors (hosted layer). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

struct vj_chunk {
	struct vj_chunk *next;
	size_t used, cap;
	max_align_t data[]; /* cap bytes */
};

typedef struct vj_parser {
	const unsigned char *p, *start, *end;
	vj_doc *doc;
	vj_error *err;
	int rc; /* 0, -1 syntax, -2 nomem */
} vj_parser;

static void *arena_alloc(vj_parser *ps, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct vj_chunk *c = ps->doc->chunks;
	if (!c || c->cap - c->used < size) {
		size_t cap = size > 4096 ? size : 4096;
		c = malloc(sizeof(*c) + cap);
		if (!c) {
			ps->rc = -2;
			return NULL;
		}
		c->next = ps->doc->chunks;
		c->used = 0;
		c->cap = cap;
		ps->doc->chunks = c;
	}
	void *r = (char *)c->data + c->used;
	c->used += size;
	return r;
}

static void fail_at(vj_parser *ps, const unsigned char *at, const char *fmt, ...)
{
	if (ps->rc)
		return; /* keep the first error */
	ps->rc = -1;
	ps->err->col = (unsigned)(at - ps->start) + 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
	va_end(ap);
}

static void skip_ws(vj_parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool lit(vj_parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return false;
	ps->p += n;
	return true;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits of a \u escape at p (bounds checked by the caller). */
static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(p[k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t put_utf8(unsigned char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, max U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned long cp, min;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		n = 2; cp = c & 0x1f; min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3; cp = c & 0x0f; min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A string starting at the opening quote; decoded into the arena. */
static const char *parse_string(vj_parser *ps, size_t *out_len)
{
	const unsigned char *q = ps->p + 1;
	/* Decoded text is never longer than the source. */
	const unsigned char *close = q;
	while (close < ps->end && *close != '"') {
		if (*close == '\\' && close + 1 < ps->end)
			close++;
		close++;
	}
	unsigned char *buf = arena_alloc(ps, (size_t)(close - q) + 1);
	if (!buf)
		return NULL;
	size_t o = 0;
	for (;;) {
		if (q >= ps->end) {
			fail_at(ps, q, "unterminated string");
			return NULL;
		}
		unsigned char c = *q;
		if (c == '"')
			break;
		if (c < 0x20) {
			fail_at(ps, q, "control character in string");
			return NULL;
		}
		if (c != '\\') {
			size_t n = utf8_len(q, ps->end);
			if (!n) {
				fail_at(ps, q, "invalid UTF-8 in string");
				return NULL;
			}
			memcpy(buf + o, q, n);
			o += n;
			q += n;
			continue;
		}
		if (q + 1 >= ps->end) {
			fail_at(ps, q, "unterminated string");
			return NULL;
		}
		static const char esc_in[] = "\"\\/bfnrt";
		static const char esc_out[] = "\"\\/\b\f\n\r\t";
		const char *e = memchr(esc_in, q[1], 8);
		if (q[1] && e) {
			buf[o++] = (unsigned char)esc_out[e - esc_in];
			q += 2;
			continue;
		}
		if (q[1] != 'u') {
			fail_at(ps, q, "invalid escape '\\%c'", q[1] >= 0x20 && q[1] < 0x7f ? q[1] : '?');
			return NULL;
		}
		long cp = (ps->end - q >= 6) ? hex4(q + 2) : -1;
		if (cp < 0) {
			fail_at(ps, q, "invalid \\u escape");
			return NULL;
		}
		const unsigned char *at = q;
		q += 6;
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			fail_at(ps, at, "lone low surrogate in \\u escape");
			return NULL;
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			long lo = (ps->end - q >= 6 && q[0] == '\\' && q[1] == 'u') ? hex4(q + 2) : -1;
			if (lo < 0xdc00 || lo > 0xdfff) {
				fail_at(ps, at, "high surrogate without low surrogate");
				return NULL;
			}
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			q += 6;
		}
		o += put_utf8(buf + o, (unsigned long)cp);
	}
	buf[o] = 0;
	ps->p = q + 1;
	*out_len = o;
	return (const char *)buf;
}

static void parse_number(vj_parser *ps, vj_value *v)
{
	const unsigned char *q = ps->p;
	bool neg = false, integral = true, overflow = false;
	uint64_t mag = 0;
	if (q < ps->end && *q == '-') {
		neg = true;
		q++;
	}
	if (q >= ps->end || *q < '0' || *q > '9') {
		fail_at(ps, q, "invalid number");
		return;
	}
	if (*q == '0' && q + 1 < ps->end && q[1] >= '0' && q[1] <= '9') {
		fail_at(ps, q, "leading zero in number");
		return;
	}
	while (q < ps->end && *q >= '0' && *q <= '9') {
		unsigned d = *q - '0';
		if (mag > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			mag = mag * 10 + d;
		q++;
	}
	if (q < ps->end && *q == '.') {
		integral = false;
		q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			fail_at(ps, q, "digit expected after '.'");
			return;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		integral = false;
		q++;
		if (q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || *q < '0' || *q > '9') {
			fail_at(ps, q, "digit expected in exponent");
			return;
		}
		while (q < ps->end && *q >= '0' && *q <= '9')
			q++;
	}
	v->type = VJ_NUM;
	if (integral && !overflow && mag <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
		v->is_int = true;
		v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	}
	ps->p = q;
}

static void parse_value(vj_parser *ps, vj_value *v, unsigned depth);

/* Children are collected in a malloc'd scratch array, then moved to the arena. */
typedef struct scratch {
	vj_value *v;
	const char **k;
	size_t *kl;
	size_t n, cap;
} scratch;

static void scratch_free(scratch *s)
{
	free(s->v);
	free(s->k);
	free(s->kl);
}

static vj_value *scratch_push(vj_parser *ps, scratch *s, const char *key, size_t klen)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		vj_value *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv) {
			ps->rc = -2;
			return NULL;
		}
		s->v = nv;
		const char **nk = realloc(s->k, cap * sizeof(*nk));
		if (!nk) {
			ps->rc = -2;
			return NULL;
		}
		s->k = nk;
		size_t *nl = realloc(s->kl, cap * sizeof(*nl));
		if (!nl) {
			ps->rc = -2;
			return NULL;
		}
		s->kl = nl;
		s->cap = cap;
	}
	s->k[s->n] = key;
	s->kl[s->n] = klen;
	memset(&s->v[s->n], 0, sizeof(vj_value));
	return &s->v[s->n++];
}

static void finish_container(vj_parser *ps, vj_value *v, scratch *s, bool obj)
{
	v->n = s->n;
	if (s->n) {
		v->items = arena_alloc(ps, s->n * sizeof(vj_value));
		if (v->items)
			memcpy(v->items, s->v, s->n * sizeof(vj_value));
		if (obj) {
			v->keys = arena_alloc(ps, s->n * sizeof(char *));
			if (v->keys)
				memcpy(v->keys, s->k, s->n * sizeof(char *));
			v->key_lens = arena_alloc(ps, s->n * sizeof(size_t));
			if (v->key_lens)
				memcpy(v->key_lens, s->kl, s->n * sizeof(size_t));
		}
	}
	scratch_free(s);
}

static void parse_container(vj_parser *ps, vj_value *v, unsigned depth, bool obj)
{
	scratch s = {0};
	char close = obj ? '}' : ']';
	v->type = obj ? VJ_OBJ : VJ_ARR;
	if (depth >= VJ_MAX_DEPTH) {
		fail_at(ps, ps->p, "nesting deeper than %d", VJ_MAX_DEPTH);
		return;
	}
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		finish_container(ps, v, &s, obj);
		return;
	}
	for (;;) {
		const char *key = NULL;
		size_t klen = 0;
		skip_ws(ps);
		if (obj) {
			const unsigned char *kat = ps->p;
			if (ps->p >= ps->end || *ps->p != '"') {
				fail_at(ps, ps->p, "object key (a string) expected");
				break;
			}
			key = parse_string(ps, &klen);
			if (!key)
				break;
			for (size_t k = 0; k < s.n; k++)
				if (s.kl[k] == klen && memcmp(s.k[k], key, klen) == 0) {
					fail_at(ps, kat, "duplicate key \"%.40s\"", key);
					break;
				}
			if (ps->rc)
				break;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail_at(ps, ps->p, "':' expected after object key");
				break;
			}
			ps->p++;
			skip_ws(ps);
		}
		vj_value *child = scratch_push(ps, &s, key, klen);
		if (!child)
			break;
		parse_value(ps, child, depth + 1);
		if (ps->rc)
			break;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			finish_container(ps, v, &s, obj);
			return;
		}
		fail_at(ps, ps->p, obj ? "',' or '}' expected" : "',' or ']' expected");
		break;
	}
	scratch_free(&s);
}

static void parse_value(vj_parser *ps, vj_value *v, unsigned depth)
{
	skip_ws(ps);
	v->col = (unsigned)(ps->p - ps->start) + 1;
	if (ps->p >= ps->end) {
		fail_at(ps, ps->p, "value expected, found end of line");
		return;
	}
	switch (*ps->p) {
	case '{':
		parse_container(ps, v, depth, true);
		return;
	case '[':
		parse_container(ps, v, depth, false);
		return;
	case '"':
		v->type = VJ_STR;
		v->s = parse_string(ps, &v->len);
		return;
	case 't':
	case 'f':
	case 'n':
		if (lit(ps, "true")) {
			v->type = VJ_BOOL;
			v->b = true;
		} else if (lit(ps, "false")) {
			v->type = VJ_BOOL;
		} else if (lit(ps, "null")) {
			v->type = VJ_NULL;
		} else {
			fail_at(ps, ps->p, "invalid literal");
		}
		return;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			parse_number(ps, v);
		else
			fail_at(ps, ps->p, "unexpected character '%c'",
				*ps->p >= 0x20 && *ps->p < 0x7f ? *ps->p : '?');
	}
}

int vj_parse(const char *text, size_t len, vj_doc *doc, vj_error *err)
{
	vj_parser ps = {
		.p = (const unsigned char *)text, .start = (const unsigned char *)text,
		.end = (const unsigned char *)text + len, .doc = doc, .err = err,
	};
	doc->chunks = NULL;
	doc->root = NULL;
	err->col = 0;
	err->msg[0] = 0;
	vj_value *root = arena_alloc(&ps, sizeof(*root));
	if (!root)
		return -2;
	memset(root, 0, sizeof(*root));
	parse_value(&ps, root, 0);
	if (!ps.rc) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			fail_at(&ps, ps.p, "trailing characters after the value");
	}
	if (ps.rc == -2) {
		err->col = 0;
		snprintf(err->msg, sizeof(err->msg), "out of memory");
	}
	if (!ps.rc)
		doc->root = root;
	return ps.rc;
}

void vj_free(vj_doc *doc)
{
	struct vj_chunk *c = doc->chunks;
	while (c) {
		struct vj_chunk *n = c->next;
		free(c);
		c = n;
	}
	doc->chunks = NULL;
	doc->root = NULL;
}

const vj_value *vj_get(const vj_value *obj, const char *key)
{
	if (!obj || obj->type != VJ_OBJ)
		return NULL;
	/* By length too: a key with an escaped NUL is not the name it starts with. */
	size_t len = strlen(key);
	for (size_t k = 0; k < obj->n; k++)
		if (obj->key_lens[k] == len && memcmp(obj->keys[k], key, len) == 0)
			return &obj->items[k];
	return NULL;
}

const char *vj_type_name(vj_type t)
{
	static const char *const names[] = { "null", "a boolean", "a number", "a string",
					     "an array", "an object" };
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}
