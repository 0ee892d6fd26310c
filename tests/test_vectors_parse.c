/* Unit tests: vector reader (defaults, unknown fields, every malformed class names its field), writer round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/vectors.h>

/* The example of docs/vectors.md (and shared/spec/vectors.md). */
static const char spec_example[] =
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80010001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\","
	"\"efer\":\"0x500\"},\"access\":{\"addr\":\"0x401000\",\"type\":\"write\",\"cpl\":3},"
	"\"mem\":[[\"0x1000\",\"0x2007\"],[\"0x2000\",\"0x3007\"],[\"0x3010\",\"0x4007\"],"
	"[\"0x4008\",\"0x5007\"]],\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5000\",\"page_size\":4096,"
	"\"mem_after\":[[\"0x1000\",\"0x2027\"],[\"0x2000\",\"0x3027\"],[\"0x3010\",\"0x4027\"],"
	"[\"0x4008\",\"0x5067\"]]}}";

static vmem_err parse(const char *s, vmem_vector *v, vmem_vector_error *e)
{
	return vmem_vector_parse_line(s, strlen(s), v, e);
}

static void test_spec_example(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	assert_int_equal(parse(spec_example, &v, &e), VMEM_OK);
	assert_int_equal(v.v, 1);
	assert_null(v.id);
	assert_int_equal(v.kind, VMEM_VKIND_WALK);
	assert_true(v.cpu.cr0 == 0x80010001ull && v.cpu.cr3 == 0x1000 && v.cpu.cr4 == 0x20 &&
		    v.cpu.efer == 0x500);
	assert_true(v.access.addr == 0x401000);
	assert_int_equal(v.access.type, VMEM_VACC_WRITE);
	assert_int_equal(v.access.cpl, 3);
	assert_int_equal(v.n_mem, 4);
	assert_true(v.mem[2].addr == 0x3010 && v.mem[2].value == 0x4007 && v.mem[2].size == 8);
	assert_int_equal(v.expect.result, VMEM_VRES_OK);
	assert_true(v.expect.gpa == 0x5000 && v.expect.page_size == 4096);
	assert_true(v.expect.have & VMEM_VEXP_MEM_AFTER);
	assert_int_equal(v.expect.n_mem_after, 4);
	assert_true(v.expect.mem_after[3].addr == 0x4008 && v.expect.mem_after[3].value == 0x5067);
	/* Defaults of every optional field (vectors.md). */
	assert_int_equal(v.cpu.pkru, 0);
	assert_int_equal(v.cpu.maxphyaddr, 48);
	assert_true(v.cpu.gbpages);
	assert_false(v.access.implicit);
	assert_false(v.access.ac);
	assert_false(v.have & (VMEM_VHAVE_PKRU | VMEM_VHAVE_MAXPHYADDR | VMEM_VHAVE_GBPAGES |
			       VMEM_VHAVE_IMPLICIT | VMEM_VHAVE_AC | VMEM_VHAVE_EPT));
	vmem_vector_free(&v);
}

static void test_defaults_cpl_and_optional(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	const char *s = "{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x0\",\"cr3\":\"0x0\",\"cr4\":\"0x0\","
			"\"efer\":\"0x0\",\"pkru\":\"0xc\",\"maxphyaddr\":36,\"gbpages\":false},"
			"\"access\":{\"addr\":\"0x10\",\"type\":\"read\",\"implicit\":true,\"ac\":true},"
			"\"mem\":[[\"0x1000\",\"0x7\",4]],\"expect\":{\"result\":\"ok\",\"gpa\":\"0x10\","
			"\"page_size\":4096}}";
	assert_int_equal(parse(s, &v, &e), VMEM_OK);
	assert_int_equal(v.access.cpl, 0); /* default */
	assert_int_equal(v.cpu.pkru, 0xc);
	assert_int_equal(v.cpu.maxphyaddr, 36);
	assert_false(v.cpu.gbpages);
	assert_true(v.access.implicit && v.access.ac);
	assert_int_equal(v.mem[0].size, 4);
	assert_false(v.expect.have & VMEM_VEXP_MEM_AFTER); /* absent: not checked */
	vmem_vector_free(&v);
	/* Present and empty is different from absent. */
	s = "{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x0\",\"cr3\":\"0x0\",\"cr4\":\"0x0\","
	    "\"efer\":\"0x0\"},\"access\":{\"addr\":\"0x10\",\"type\":\"read\"},\"mem\":[],"
	    "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\",\"mem_after\":[]}}";
	assert_int_equal(parse(s, &v, &e), VMEM_OK);
	assert_true(v.expect.have & VMEM_VEXP_MEM_AFTER);
	assert_int_equal(v.expect.n_mem_after, 0);
	vmem_vector_free(&v);
}

static void test_unknown_fields_ignored(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	const char *s = "{\"future\":{\"x\":[1,2,{\"y\":null}]},\"v\":1,\"kind\":\"walk\","
			"\"cpu\":{\"cr0\":\"0x0\",\"cr3\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\",\"cet\":true},"
			"\"access\":{\"addr\":\"0x10\",\"type\":\"read\",\"shadow_stack\":false},"
			"\"mem\":[],\"expect\":{\"result\":\"ok\",\"gpa\":\"0x10\",\"page_size\":4096,"
			"\"note\":\"hi\",\"ts\":1.5e9},\"source\":\"kvm\"}";
	assert_int_equal(parse(s, &v, &e), VMEM_OK);
	assert_true(v.expect.gpa == 0x10);
	vmem_vector_free(&v);
}

static void test_blank_and_comment(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	assert_int_equal(parse("", &v, &e), VMEM_E_NOENT);
	assert_int_equal(parse("   \t\r", &v, &e), VMEM_E_NOENT);
	assert_int_equal(parse("# a comment {", &v, &e), VMEM_E_NOENT);
	assert_int_equal(parse("  # indented comment", &v, &e), VMEM_E_NOENT);
}

/* A valid walk vector with one field replaced: FIELD=... templates. */
#define CPU "\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}"
#define ACC "\"access\":{\"addr\":\"0x10\",\"type\":\"read\"}"
#define MEM "\"mem\":[]"
#define EXP "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\"}"
#define VEC(v, kind, cpu, acc, mem, exp) "{" v "," kind "," cpu "," acc "," mem "," exp "}"
#define W(...) VEC("\"v\":1", "\"kind\":\"walk\"", __VA_ARGS__)

static const struct { const char *in; const char *field; const char *msg; } malformed[] = {
	{ "{\"kind\":\"walk\"," CPU "," ACC "," MEM "," EXP "}", "v", "required" },
	{ VEC("\"v\":2", "\"kind\":\"walk\"", CPU, ACC, MEM, EXP), "v", "version 2" },
	{ VEC("\"v\":\"1\"", "\"kind\":\"walk\"", CPU, ACC, MEM, EXP), "v", "expected a number" },
	{ VEC("\"v\":1.0", "\"kind\":\"walk\"", CPU, ACC, MEM, EXP), "v", "integer" },
	{ VEC("\"v\":1", "\"kind\":\"paging\"", CPU, ACC, MEM, EXP), "kind", "walk, ept, nested" },
	{ "{\"v\":1,\"kind\":\"walk\"," ACC "," MEM "," EXP "}", "cpu", "required" },
	{ W("\"cpu\":[]", ACC, MEM, EXP), "cpu", "expected an object" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP), "cpu.cr3",
	  "required" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":4096,\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP),
	  "cpu.cr3", "hex string" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP),
	  "cpu.cr3", "hex string" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"1000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP),
	  "cpu.cr3", "hex string" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x10g0\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM,
	    EXP), "cpu.cr3", "hex digit" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x10000000000000000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}",
	    ACC, MEM, EXP), "cpu.cr3", "64 bits" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\",\"maxphyaddr\":60}",
	    ACC, MEM, EXP), "cpu.maxphyaddr", "32..52" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\",\"gbpages\":1}",
	    ACC, MEM, EXP), "cpu.gbpages", "true or false" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\",\"pkru\":\"0x100000000\"}",
	    ACC, MEM, EXP), "cpu.pkru", "32-bit" },
	{ "{\"v\":1,\"kind\":\"walk\"," CPU "," MEM "," EXP "}", "access", "required" },
	{ W(CPU, "\"access\":{\"type\":\"read\"}", MEM, EXP), "access.addr", "required" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\"}", MEM, EXP), "access.type", "required" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\",\"type\":\"exec\"}", MEM, EXP), "access.type",
	  "read, write, fetch" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\",\"type\":\"read\",\"cpl\":4}", MEM, EXP), "access.cpl",
	  "0..3" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\",\"type\":\"read\",\"implicit\":\"no\"}", MEM, EXP),
	  "access.implicit", "true or false" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\",\"type\":\"read\",\"ac\":null}", MEM, EXP), "access.ac",
	  "true or false" },
	{ "{\"v\":1,\"kind\":\"walk\"," CPU "," ACC "," EXP "}", "mem", "required" },
	{ W(CPU, ACC, "\"mem\":{}", EXP), "mem", "array" },
	{ W(CPU, ACC, "\"mem\":[[\"0x0\"]]", EXP), "mem[0]", "[addr, value]" },
	{ W(CPU, ACC, "\"mem\":[\"0x0\"]", EXP), "mem[0]", "[addr, value]" },
	{ W(CPU, ACC, "\"mem\":[[\"0x0\",\"0x1\"],[\"0x8\",7]]", EXP), "mem[1][1]", "hex string" },
	{ W(CPU, ACC, "\"mem\":[[\"0x0\",\"0x1\",2]]", EXP), "mem[0][2]", "4..8" },
	{ W(CPU, ACC, "\"mem\":[[\"0x0\",\"0x1\",6]]", EXP), "mem[0][2]", "4 or 8" },
	{ W(CPU, ACC, "\"mem\":[[\"0x4\",\"0x1\"]]", EXP), "mem[0]", "aligned" },
	{ W(CPU, ACC, "\"mem\":[[\"0x4\",\"0x100000000\",4]]", EXP), "mem[0]", "4 bytes" },
	{ W(CPU, ACC, "\"mem\":[[\"0x0\",\"0x1\"],[\"0x4\",\"0x1\",4]]", EXP), "mem[1]", "overlaps" },
	{ "{\"v\":1,\"kind\":\"walk\"," CPU "," ACC "," MEM "}", "expect", "required" },
	{ W(CPU, ACC, MEM, "\"expect\":{}"), "expect.result", "required" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"fault\"}"), "expect.result", "ok, page_fault" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"ept_violation\"}"), "expect.result",
	  "impossible for kind walk" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"ok\",\"page_size\":4096}"), "expect.gpa",
	  "required when result is ok" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x0\"}"), "expect.page_size",
	  "required" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x0\",\"page_size\":8192}"),
	  "expect.page_size", "4096" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"page_fault\"}"), "expect.error_code",
	  "required" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\",\"mem_after\":7}"),
	  "expect.mem_after", "array" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\",\"mem_after\":[[\"0x3\",\"0x1\"]]}"),
	  "expect.mem_after[0]", "aligned" },
	{ VEC("\"v\":1,\"id\":5", "\"kind\":\"walk\"", CPU, ACC, MEM, EXP), "id", "string" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{\"maxphyaddr\":40}", ACC, MEM,
	      "\"expect\":{\"result\":\"ept_misconfig\",\"guest_physical\":\"0x0\"}"), "ept", "required" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{}", ACC, MEM,
	      "\"expect\":{\"result\":\"ept_misconfig\",\"guest_physical\":\"0x0\"}"), "ept.eptp",
	  "required" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{\"eptp\":\"0x1e\",\"mbec\":0}", ACC,
	      MEM, "\"expect\":{\"result\":\"ept_misconfig\",\"guest_physical\":\"0x0\"}"), "ept.mbec",
	  "true or false" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{\"eptp\":\"0x1e\"}", ACC, MEM,
	      "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\"}"), "expect.result",
	  "impossible for kind ept" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{\"eptp\":\"0x1e\"}", ACC, MEM,
	      "\"expect\":{\"result\":\"ept_violation\",\"guest_physical\":\"0x0\"}"),
	  "expect.exit_qualification", "required" },
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{\"eptp\":\"0x1e\"}", ACC, MEM,
	      "\"expect\":{\"result\":\"ok\",\"page_size\":4096}"), "expect.hpa", "required" },
	{ "[1,2]", "", "JSON object" },
	/* A string with an escaped NUL is not the name it starts with: "kind" is
	 * one of "walk", "ept", "nested", and an unknown key is no known one. */
	{ VEC("\"v\":1", "\"kind\":\"walk\\u0000x\"", CPU, ACC, MEM, EXP), "kind", "NUL" },
	{ W(CPU, "\"access\":{\"addr\":\"0x0\",\"type\":\"read\\u0000\"}", MEM, EXP),
	  "access.type", "NUL" },
	{ W(CPU, ACC, MEM, "\"expect\":{\"result\":\"page_fault\\u0000\",\"error_code\":\"0x0\"}"),
	  "expect.result", "NUL" },
	{ W("\"cpu\":{\"cr0\":\"0x1\",\"cr3\\u0000x\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}",
	    ACC, MEM, EXP), "cpu.cr3", "required" },
	/* vectors.md, expect: "guest_linear | ept_violation, when the qualification
	 * says it is valid" -- SDM 3C "Exit Qualification for EPT Violations": bit 7
	 * set means the guest linear-address field is valid. */
	{ VEC("\"v\":1", "\"kind\":\"ept\"", "\"cpu\":{},\"ept\":{\"eptp\":\"0x1e\"}",
	      "\"access\":{\"addr\":\"0x10\",\"type\":\"read\",\"linear\":\"0x10\"}", MEM,
	      "\"expect\":{\"result\":\"ept_violation\",\"exit_qualification\":\"0x181\","
	      "\"guest_physical\":\"0x10\"}"), "expect.guest_linear", "required" },
};

/* "a reader must ... ignore fields it does not know": "cr3\u0000x" and
 * "x\u0000a" are keys it does not know, whatever they start with. */
static void test_unknown_keys_with_nul(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	const char *s = VEC("\"v\":1,\"x\\u0000a\":1,\"x\\u0000b\":2", "\"kind\":\"walk\"",
			    "\"cpu\":{\"cr0\":\"0x0\",\"cr3\":\"0x1000\",\"cr3\\u0000x\":\"0x5000\","
			    "\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP);
	assert_int_equal(parse(s, &v, &e), VMEM_OK);
	assert_true(v.cpu.cr3 == 0x1000);
	vmem_vector_free(&v);
}

static void test_malformed(void **state)
{
	(void)state;
	for (size_t k = 0; k < sizeof(malformed) / sizeof(malformed[0]); k++) {
		vmem_vector v;
		vmem_vector_error e;
		vmem_err rc = parse(malformed[k].in, &v, &e);
		if (rc != VMEM_E_PARSE || strcmp(e.field, malformed[k].field) != 0 ||
		    !strstr(e.msg, malformed[k].msg) || e.column != 0)
			fail_msg("case %zu: rc %d field '%s' msg '%s' (want '%s', '%s')\n  %s", k, rc,
				 e.field, e.msg, malformed[k].field, malformed[k].msg, malformed[k].in);
		/* Nothing is left allocated or half-filled. */
		assert_null(v.mem);
		assert_null(v.id);
		assert_null(v.expect.mem_after);
		assert_int_equal(v.n_mem, 0);
	}
}

static void test_syntax_error_column(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_error e;
	char buf[160];
	assert_int_equal(parse("{\"v\":1,\"kind\":\"walk\",}", &v, &e), VMEM_E_PARSE);
	assert_int_equal(e.column, 22);
	assert_string_equal(e.field, "");
	e.line = 7;
	assert_string_equal(vmem_vector_error_str(&e, "f.jsonl", buf, sizeof(buf)),
			    "f.jsonl:7:22: object key (a string) expected");
}

/* Reader over a stream: skips blank and '#' lines, names the line of an error, moves on. */
static void test_reader_lines(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	assert_non_null(f);
	fprintf(f, "# header\n\n%s\n%s\n%s", spec_example,
		W("\"cpu\":{\"cr0\":\"0x1\",\"cr4\":\"0x0\",\"efer\":\"0x0\"}", ACC, MEM, EXP),
		spec_example); /* last line has no newline */
	rewind(f);
	vmem_vector_reader *r;
	assert_int_equal(vmem_vector_reader_new(f, &r), VMEM_OK);
	vmem_vector v;
	vmem_vector_error e;
	char buf[200];
	assert_int_equal(vmem_vector_read(r, &v, &e), VMEM_OK);
	assert_int_equal(vmem_vector_reader_line(r), 3);
	vmem_vector_free(&v);
	assert_int_equal(vmem_vector_read(r, &v, &e), VMEM_E_PARSE);
	assert_int_equal(e.line, 4);
	assert_string_equal(vmem_vector_error_str(&e, "x.jsonl", buf, sizeof(buf)),
			    "x.jsonl:4: cpu.cr3: required field missing");
	assert_int_equal(vmem_vector_read(r, &v, &e), VMEM_OK);
	assert_int_equal(vmem_vector_reader_line(r), 5);
	assert_int_equal(v.n_mem, 4);
	vmem_vector_free(&v);
	assert_int_equal(vmem_vector_read(r, &v, &e), VMEM_E_NOENT);
	vmem_vector_reader_free(r);
	fclose(f);
}

/* The writer's stable order is the examples' own: writing a parsed line
 * reproduces it byte for byte, and reading it back gives the same vector. */
static void round_trip_file(const char *path, unsigned want)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[8192];
	unsigned n = 0;
	while (fgets(line, sizeof(line), f)) {
		vmem_vector v, w;
		vmem_vector_error e;
		if (vmem_vector_parse_line(line, strlen(line), &v, &e) == VMEM_E_NOENT)
			continue;
		char *out, *out2;
		assert_int_equal(vmem_vector_to_string(&v, &out), VMEM_OK);
		assert_string_equal(out, line);
		assert_int_equal(vmem_vector_parse_line(out, strlen(out), &w, &e), VMEM_OK);
		assert_int_equal(vmem_vector_to_string(&w, &out2), VMEM_OK);
		assert_string_equal(out, out2);
		assert_int_equal(w.have, v.have);
		assert_int_equal(w.expect.have, v.expect.have);
		assert_int_equal(w.n_mem, v.n_mem);
		assert_memory_equal(w.mem, v.mem, v.n_mem * sizeof(*v.mem));
		free(out);
		free(out2);
		vmem_vector_free(&v);
		vmem_vector_free(&w);
		n++;
	}
	fclose(f);
	assert_int_equal(n, want);
}

static void test_round_trip_examples(void **state)
{
	(void)state;
	round_trip_file(VMEM_TEST_DATA "/examples-walk-v1.jsonl", 8);
	round_trip_file(VMEM_TEST_DATA "/examples-ept-nested-v1.jsonl", 16);
}

static void test_round_trip_all_fields(void **state)
{
	(void)state;
	vmem_vector v;
	vmem_vector_init(&v);
	v.have = VMEM_VHAVE_ID | VMEM_VHAVE_CR0 | VMEM_VHAVE_CR3 | VMEM_VHAVE_CR4 | VMEM_VHAVE_EFER |
		 VMEM_VHAVE_PKRU | VMEM_VHAVE_MAXPHYADDR | VMEM_VHAVE_GBPAGES | VMEM_VHAVE_EPT |
		 VMEM_VHAVE_MBEC | VMEM_VHAVE_ADVINFO | VMEM_VHAVE_CPL | VMEM_VHAVE_IMPLICIT |
		 VMEM_VHAVE_AC;
	char id[] = "quote \" backslash \\ tab \t caf\xc3\xa9";
	v.id = id;
	v.kind = VMEM_VKIND_NESTED;
	v.cpu.cr0 = 0x80000001;
	v.cpu.pkru = 0xfffffffc;
	v.cpu.maxphyaddr = 40;
	v.cpu.gbpages = false;
	v.ept.eptp = 0x123405e;
	v.ept.mbec = true;
	v.access.addr = 0xffffffffffffffffull;
	v.access.type = VMEM_VACC_FETCH;
	v.access.cpl = 2;
	v.access.implicit = true;
	vmem_vector_word mem[2] = { { 0x1000, 0xffffffff, 4 }, { 0x2000, 0x8000000000000001ull, 8 } };
	v.mem = mem;
	v.n_mem = 2;
	v.expect.result = VMEM_VRES_EPT_VIOLATION;
	v.expect.have = VMEM_VEXP_EXITQUAL | VMEM_VEXP_GUEST_PHYS | VMEM_VEXP_GUEST_LIN |
			VMEM_VEXP_MEM_AFTER;
	v.expect.exit_qualification = 0x181;
	v.expect.guest_physical = 0x55;
	v.expect.guest_linear = 0x66;
	char *s;
	assert_int_equal(vmem_vector_to_string(&v, &s), VMEM_OK);
	assert_string_equal(s,
		"{\"v\":1,\"id\":\"quote \\\" backslash \\\\ tab \\u0009 caf\xc3\xa9\",\"kind\":\"nested\","
		"\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x0\",\"cr4\":\"0x0\",\"efer\":\"0x0\","
		"\"pkru\":\"0xfffffffc\",\"maxphyaddr\":40,\"gbpages\":false},"
		"\"ept\":{\"eptp\":\"0x123405e\",\"mbec\":true,\"advanced_info\":false},"
		"\"access\":{\"addr\":\"0xffffffffffffffff\",\"type\":\"fetch\",\"cpl\":2,"
		"\"implicit\":true,\"ac\":false},"
		"\"mem\":[[\"0x1000\",\"0xffffffff\",4],[\"0x2000\",\"0x8000000000000001\"]],"
		"\"expect\":{\"result\":\"ept_violation\",\"exit_qualification\":\"0x181\","
		"\"guest_physical\":\"0x55\",\"guest_linear\":\"0x66\",\"mem_after\":[]}}\n");
	vmem_vector w;
	vmem_vector_error e;
	assert_int_equal(vmem_vector_parse_line(s, strlen(s), &w, &e), VMEM_OK);
	assert_string_equal(w.id, id);
	assert_int_equal(w.have, v.have);
	assert_true(w.cpu.pkru == v.cpu.pkru && w.ept.mbec && !w.ept.advanced_info);
	assert_true(w.access.addr == v.access.addr && w.access.cpl == 2);
	assert_true(w.expect.guest_linear == 0x66 && (w.expect.have & VMEM_VEXP_MEM_AFTER));
	assert_int_equal(w.expect.n_mem_after, 0);
	vmem_vector_free(&w);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_defaults_cpl_and_optional),
		cmocka_unit_test(test_unknown_fields_ignored),
		cmocka_unit_test(test_blank_and_comment),
		cmocka_unit_test(test_unknown_keys_with_nul),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_syntax_error_column),
		cmocka_unit_test(test_reader_lines),
		cmocka_unit_test(test_round_trip_examples),
		cmocka_unit_test(test_round_trip_all_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
