/* Unit tests: the strict JSON parser (lib/json.c): values, escapes, and every error class with its column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "json.h"

static int parse(const char *s, vj_doc *d, vj_error *e)
{
	return vj_parse(s, strlen(s), d, e);
}

static void test_values(void **state)
{
	(void)state;
	vj_doc d;
	vj_error e;
	const char *s = " {\"a\": [1, -2, 3.5, 1e3, true, false, null, \"x\"], \"b\": {}, \"c\": [],"
			" \"big\": 18446744073709551616, \"min\": -9223372036854775808} ";
	assert_int_equal(parse(s, &d, &e), 0);
	const vj_value *r = d.root;
	assert_int_equal(r->type, VJ_OBJ);
	assert_int_equal(r->n, 5);
	const vj_value *a = vj_get(r, "a");
	assert_non_null(a);
	assert_int_equal(a->type, VJ_ARR);
	assert_int_equal(a->n, 8);
	assert_true(a->items[0].is_int);
	assert_int_equal(a->items[0].i, 1);
	assert_int_equal(a->items[1].i, -2);
	assert_false(a->items[2].is_int);
	assert_false(a->items[3].is_int);
	assert_int_equal(a->items[4].type, VJ_BOOL);
	assert_true(a->items[4].b);
	assert_false(a->items[5].b);
	assert_int_equal(a->items[6].type, VJ_NULL);
	assert_string_equal(a->items[7].s, "x");
	assert_int_equal(a->items[1].col, 12); /* byte column of "-2" */
	assert_int_equal(vj_get(r, "b")->type, VJ_OBJ);
	assert_int_equal(vj_get(r, "c")->n, 0);
	assert_int_equal(vj_get(r, "big")->type, VJ_NUM);
	assert_false(vj_get(r, "big")->is_int); /* does not fit int64 */
	assert_true(vj_get(r, "min")->is_int);
	assert_true(vj_get(r, "min")->i == INT64_MIN);
	assert_null(vj_get(r, "zzz"));
	vj_free(&d);
}

static void test_escapes(void **state)
{
	(void)state;
	vj_doc d;
	vj_error e;
	/* \u00e9 is C3 A9 in UTF-8; the pair D83D DE00 is U+1F600 = F0 9F 98 80. */
	assert_int_equal(parse("\"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\\ud83d\\ude00\\u0041\"", &d, &e), 0);
	assert_string_equal(d.root->s, "q\"b\\s/n\nt\tu\xc3\xa9\xf0\x9f\x98\x80" "A");
	vj_free(&d);
	assert_int_equal(parse("\"\\u0000x\"", &d, &e), 0);
	assert_int_equal(d.root->len, 2); /* an escaped NUL is kept, length says so */
	vj_free(&d);
	assert_int_equal(parse("\"caf\xc3\xa9\"", &d, &e), 0); /* raw UTF-8 passes */
	vj_free(&d);
}

/* Each malformed input: the 1-based byte column and a word of the message. */
static const struct { const char *in; unsigned col; const char *msg; } bad[] = {
	{ "", 1, "value expected" },
	{ "{\"a\":1,}", 8, "key" },
	{ "[1 2]", 4, "',' or ']'" },
	{ "{\"a\" 1}", 6, "':'" },
	{ "{\"a\":1 \"b\":2}", 8, "',' or '}'" },
	{ "\"abc", 5, "unterminated" },
	{ "tru", 1, "literal" },
	{ "nul", 1, "literal" },
	{ "01", 1, "leading zero" },
	{ "-", 2, "number" },
	{ "1.", 3, "'.'" },
	{ "1e+", 4, "exponent" },
	{ "\"\\x\"", 2, "escape" },
	{ "\"\\u12g4\"", 2, "\\u" },
	{ "\"\\ud800\"", 2, "surrogate" },
	{ "\"\\udc00\"", 2, "surrogate" },
	{ "\"a\tb\"", 3, "control" },
	{ "\"\xff\"", 2, "UTF-8" },
	{ "\"\xc0\x80\"", 2, "UTF-8" },      /* overlong NUL */
	{ "\"\xed\xa0\x80\"", 2, "UTF-8" },  /* encoded surrogate */
	{ "{} x", 4, "trailing" },
	{ "{\"a\":1,\"a\":2}", 8, "duplicate" },
	{ "'a'", 1, "unexpected" },
	{ "[1,]", 4, "unexpected" },
	{ "{\"a\":}", 6, "unexpected" },
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		vj_doc d;
		vj_error e;
		int rc = parse(bad[k].in, &d, &e);
		if (rc != -1 || e.col != bad[k].col || !strstr(e.msg, bad[k].msg))
			fail_msg("input %zu '%s': rc %d col %u msg '%s' (want col %u, '%s')", k,
				 bad[k].in, rc, e.col, e.msg, bad[k].col, bad[k].msg);
		assert_null(d.root);
		vj_free(&d);
	}
}

/* Keys are compared as the decoded strings they are (RFC 8259 8.3: code unit by
 * code unit), so an escaped NUL makes a key different, never a prefix match. */
static void test_keys_with_nul(void **state)
{
	(void)state;
	vj_doc d;
	vj_error e;
	assert_int_equal(parse("{\"a\\u0000b\":1,\"a\\u0000c\":2}", &d, &e), 0);
	assert_int_equal(d.root->n, 2);
	assert_null(vj_get(d.root, "a")); /* "a\0b" is not "a" */
	vj_free(&d);
	assert_int_equal(parse("{\"a\":1,\"a\\u0000\":2}", &d, &e), 0);
	assert_int_equal(vj_get(d.root, "a")->i, 1);
	vj_free(&d);
	assert_int_equal(parse("{\"a\\u0000b\":1,\"a\\u0000b\":2}", &d, &e), -1);
	assert_non_null(strstr(e.msg, "duplicate"));
	vj_free(&d);
}

static void test_depth(void **state)
{
	(void)state;
	char buf[2 * VJ_MAX_DEPTH + 4];
	vj_doc d;
	vj_error e;
	/* VJ_MAX_DEPTH nested arrays parse; one more is refused at its bracket. */
	memset(buf, '[', VJ_MAX_DEPTH);
	memset(buf + VJ_MAX_DEPTH, ']', VJ_MAX_DEPTH);
	assert_int_equal(vj_parse(buf, 2 * VJ_MAX_DEPTH, &d, &e), 0);
	vj_free(&d);
	memset(buf, '[', VJ_MAX_DEPTH + 1);
	memset(buf + VJ_MAX_DEPTH + 1, ']', VJ_MAX_DEPTH + 1);
	assert_int_equal(vj_parse(buf, 2 * VJ_MAX_DEPTH + 2, &d, &e), -1);
	assert_int_equal(e.col, VJ_MAX_DEPTH + 1);
	assert_non_null(strstr(e.msg, "nesting"));
	vj_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_keys_with_nul),
		cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
