/* Unit tests: vmem_vector_check on hand-worked vectors (SDM ch. 4 by hand), the shared KVM examples, diffs, and the generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/vectors.h>

static void check_line(const char *line, vmem_vcheck_status want, const char *const *diff_has)
{
	vmem_vector v;
	vmem_vector_error e;
	vmem_vector_verdict vd;
	if (vmem_vector_parse_line(line, strlen(line), &v, &e) != VMEM_OK)
		fail_msg("parse: %s: %s\n  %s", e.field, e.msg, line);
	assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
	if (vd.status != want)
		fail_msg("status %d, want %d\n%s\n  %s", vd.status, want, vd.diff, line);
	if (want == VMEM_VCHECK_PASS)
		assert_string_equal(vd.diff, "");
	for (; diff_has && *diff_has; diff_has++)
		if (!strstr(vd.diff, *diff_has))
			fail_msg("diff lacks '%s':\n%s", *diff_has, vd.diff);
	vmem_vector_verdict_free(&vd);
	vmem_vector_free(&v);
}

/* Vectors worked by hand from SDM vol. 3A ch. 4 (index arithmetic and A/D in comments). */
static const char *const hand_pass[] = {
	/* docs/vectors.md example: 4-level user write 0x401000: PML4[0] PDPT[0] PD[2] PT[1]; A on all, D on the leaf. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80010001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\",\"efer\":\"0x500\"},"
	"\"access\":{\"addr\":\"0x401000\",\"type\":\"write\",\"cpl\":3},\"mem\":[[\"0x1000\",\"0x2007\"],"
	"[\"0x2000\",\"0x3007\"],[\"0x3010\",\"0x4007\"],[\"0x4008\",\"0x5007\"]],\"expect\":{\"result\":\"ok\","
	"\"gpa\":\"0x5000\",\"page_size\":4096,\"mem_after\":[[\"0x1000\",\"0x2027\"],[\"0x2000\",\"0x3027\"],"
	"[\"0x3010\",\"0x4027\"],[\"0x4008\",\"0x5067\"]]}}",
	/* 32-bit, no PSE: read 0x401234: PDE index 1 at 0x1004, PTE index 1 at 0x2004; A only (read). */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0x401234\",\"type\":\"read\"},\"mem\":[[\"0x1004\",\"0x2003\",4],[\"0x2004\",\"0x5003\",4]],"
	"\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5234\",\"page_size\":4096,\"mem_after\":[[\"0x1004\",\"0x2023\",4],"
	"[\"0x2004\",\"0x5023\",4]]}}",
	/* The same with the changes listed as one 8-byte word covering both 4-byte entries' neighbours. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0x401234\",\"type\":\"read\"},\"mem\":[[\"0x1004\",\"0x2003\",4],[\"0x2004\",\"0x5003\",4]],"
	"\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5234\",\"page_size\":4096,\"mem_after\":[[\"0x1000\",\"0x202300000000\"],"
	"[\"0x2000\",\"0x502300000000\"]]}}",
	/* 32-bit with CR4.PSE: write 0xc01234 -> PDE index 3 (0x100c) is a 4-MByte page at 0x800000; A and D. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x10\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0xc01234\",\"type\":\"write\"},\"mem\":[[\"0x100c\",\"0x800083\",4]],"
	"\"expect\":{\"result\":\"ok\",\"gpa\":\"0x801234\",\"page_size\":4194304,\"mem_after\":[[\"0x100c\",\"0x8000e3\",4]]}}",
	/* PAE, CR3 0x1020: la 0x40201000 -> PDPTE 1 (0x1028, no A flag), PD index 1 (0x2008), PT index 1 (0x3008); user read. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1020\",\"cr4\":\"0x20\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0x40201000\",\"type\":\"read\",\"cpl\":3},\"mem\":[[\"0x1028\",\"0x2001\"],"
	"[\"0x2008\",\"0x3007\"],[\"0x3008\",\"0x4007\"]],\"expect\":{\"result\":\"ok\",\"gpa\":\"0x4000\","
	"\"page_size\":4096,\"mem_after\":[[\"0x2008\",\"0x3027\"],[\"0x3008\",\"0x4027\"]]}}",
	/* 4-level, nothing listed: PML4E reads zero -> #PF U (0x4), nothing written. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\",\"efer\":\"0x500\"},"
	"\"access\":{\"addr\":\"0x1000\",\"type\":\"read\",\"cpl\":3},\"mem\":[],\"expect\":{\"result\":\"page_fault\","
	"\"error_code\":\"0x4\",\"mem_after\":[]}}",
	/* PAE PDPTE 0 with bit 1 set (reserved, SDM 4.4.1): loaded anyway, the walk faults P|RSVD (0x9). */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0x1000\",\"type\":\"read\"},\"mem\":[[\"0x1000\",\"0x2003\"]],"
	"\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x9\",\"mem_after\":[]}}",
	/* mem_after absent: side effects are not checked. */
	"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x0\",\"efer\":\"0x0\"},"
	"\"access\":{\"addr\":\"0x401234\",\"type\":\"read\"},\"mem\":[[\"0x1004\",\"0x2003\",4],[\"0x2004\",\"0x5003\",4]],"
	"\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5234\",\"page_size\":4096}}",
	NULL
};

static void test_hand_worked(void **state)
{
	(void)state;
	for (const char *const *l = hand_pass; *l; l++)
		check_line(*l, VMEM_VCHECK_PASS, NULL);
}

#define SPEC_HEAD "{\"v\":1,\"id\":\"x\",\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80010001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\"," \
	"\"efer\":\"0x500\"},\"access\":{\"addr\":\"0x401000\",\"type\":\"write\",\"cpl\":3},\"mem\":[[\"0x1000\"," \
	"\"0x2007\"],[\"0x2000\",\"0x3007\"],[\"0x3010\",\"0x4007\"],[\"0x4008\",\"0x5007\"]],"

static void test_wrong_expectations(void **state)
{
	(void)state;
	const char *gpa[] = { "  gpa: expected 0x6000, got 0x5000\n", "level 4: entry at 0x1000 = 0x2007",
			      "level 1: entry at 0x4008 = 0x5007", NULL };
	check_line(SPEC_HEAD "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x6000\",\"page_size\":4096}}",
		   VMEM_VCHECK_FAIL, gpa);
	const char *size[] = { "page_size: expected 2097152, got 4096", NULL };
	check_line(SPEC_HEAD "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5000\",\"page_size\":2097152}}",
		   VMEM_VCHECK_FAIL, size);
	const char *res[] = { "result: expected page_fault, got ok (gpa 0x5000, page_size 4096)", NULL };
	check_line(SPEC_HEAD "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x7\"}}",
		   VMEM_VCHECK_FAIL, res);
	/* The leaf's dirty flag missing from the expectation, and one word never written. */
	const char *mem[] = { "mem_after 0x4008: expected 0x5027, got 0x5067",
			      "mem_after 0x3010: expected 0x4007 (unchanged), got 0x4027", NULL };
	check_line(SPEC_HEAD "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5000\",\"page_size\":4096,\"mem_after\":"
		   "[[\"0x1000\",\"0x2027\"],[\"0x2000\",\"0x3027\"],[\"0x4008\",\"0x5027\"]]}}",
		   VMEM_VCHECK_FAIL, mem);
	/* Present and empty: every change is a difference. */
	const char *none[] = { "mem_after 0x1000: expected 0x2007 (unchanged), got 0x2027", NULL };
	check_line(SPEC_HEAD "\"expect\":{\"result\":\"ok\",\"gpa\":\"0x5000\",\"page_size\":4096,\"mem_after\":[]}}",
		   VMEM_VCHECK_FAIL, none);
	/* Wrong error code on a fault. */
	const char *ec[] = { "error_code: expected 0x5, got 0x4", NULL };
	check_line("{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\","
		   "\"efer\":\"0x500\"},\"access\":{\"addr\":\"0x1000\",\"type\":\"read\",\"cpl\":3},\"mem\":[],"
		   "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x5\"}}", VMEM_VCHECK_FAIL, ec);
}

static void test_unsupported_and_refused(void **state)
{
	(void)state;
	/* 4-level, non-canonical 0x0000800000000000: #GP, which v1 cannot express. */
	const char *gp[] = { "unsupported outcome: non-canonical", NULL };
	check_line("{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\","
		   "\"efer\":\"0x500\"},\"access\":{\"addr\":\"0x800000000000\",\"type\":\"read\"},\"mem\":[],"
		   "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\"}}", VMEM_VCHECK_UNSUPPORTED, gp);
	/* CR0.PG without CR0.PE: hardware refuses the registers. */
	const char *regs[] = { "refused the registers", NULL };
	check_line("{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80000000\",\"cr3\":\"0x1000\",\"cr4\":\"0x0\","
		   "\"efer\":\"0x0\"},\"access\":{\"addr\":\"0x0\",\"type\":\"read\"},\"mem\":[],"
		   "\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\"}}", VMEM_VCHECK_ERROR, regs);
}

/* A caller-built memory list breaking vectors.h's word rule ("size is 4 or 8",
 * naturally aligned, as the parser demands): the check refuses the setup
 * (VMEM_VCHECK_ERROR; answer: VMEM_E_INVAL) instead of storing the word past
 * its page's buffer. */
static void test_bad_words_refused(void **state)
{
	(void)state;
	static const char line[] =
		"{\"v\":1,\"kind\":\"walk\",\"cpu\":{\"cr0\":\"0x80010001\",\"cr3\":\"0x1000\",\"cr4\":\"0x20\","
		"\"efer\":\"0x500\"},\"access\":{\"addr\":\"0x0\",\"type\":\"read\"},\"mem\":[[\"0x1000\",\"0x0\"]],"
		"\"expect\":{\"result\":\"page_fault\",\"error_code\":\"0x0\"}}";
	static const vmem_vector_word bad[] = {
		{ 0xffc, 0x1122334455667788ull, 8 },  /* unaligned: its last 4 bytes are past the page */
		{ 0x1002, 0x11223344, 4 },            /* unaligned */
		{ 0x1ff0, 0, 16 },                    /* no such size */
		{ 0x1000, 0, 0 },
		{ 0x1000, 0, 1u << 20 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vmem_vector v;
		vmem_vector_error e;
		vmem_vector_verdict vd;
		assert_int_equal(vmem_vector_parse_line(line, strlen(line), &v, &e), VMEM_OK);
		assert_int_equal(v.n_mem, 1);
		v.mem[0] = bad[i];
		assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
		if (vd.status != VMEM_VCHECK_ERROR)
			fail_msg("word %zu: status %d, want %d\n%s", i, vd.status, VMEM_VCHECK_ERROR, vd.diff);
		vmem_vector_verdict_free(&vd);
		assert_int_equal(vmem_vector_answer(&v), VMEM_E_INVAL);
		assert_true(v.mem[0].addr == bad[i].addr && v.mem[0].size == bad[i].size);
		vmem_vector_free(&v);
	}
}

static unsigned check_file(const char *path, unsigned *unsupported)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	vmem_vector_reader *r;
	assert_int_equal(vmem_vector_reader_new(f, &r), VMEM_OK);
	vmem_vector v;
	vmem_vector_error e;
	unsigned n = 0;
	*unsupported = 0;
	while (vmem_vector_read(r, &v, &e) == VMEM_OK) {
		vmem_vector_verdict vd;
		assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
		if (vd.status == VMEM_VCHECK_UNSUPPORTED) {
			/* Only a kind without an engine may be unsupported, and it says so. */
			char want[64];
			snprintf(want, sizeof(want), "kind %s: not supported yet",
				 vmem_vector_kind_name(v.kind));
			assert_int_not_equal(v.kind, VMEM_VKIND_WALK);
			if (!strstr(vd.diff, want))
				fail_msg("%s: %s", v.id, vd.diff);
			(*unsupported)++;
		} else if (vd.status != VMEM_VCHECK_PASS) {
			fail_msg("%s disagrees:\n%s", v.id, vd.diff);
		}
		vmem_vector_verdict_free(&vd);
		vmem_vector_free(&v);
		n++;
	}
	assert_int_equal(vmem_vector_read(r, &v, &e), VMEM_E_NOENT);
	vmem_vector_reader_free(r);
	fclose(f);
	return n;
}

static void test_shared_examples(void **state)
{
	(void)state;
	unsigned uns;
	assert_int_equal(check_file(VMEM_TEST_DATA "/examples-walk-v1.jsonl", &uns), 8);
	assert_int_equal(uns, 0);
	/* All 16 parse; each passes or (before the EPT engine) is reported unsupported. */
	assert_int_equal(check_file(VMEM_TEST_DATA "/examples-ept-nested-v1.jsonl", &uns), 16);
	assert_true(uns == 0 || uns == 16);
}

/* The generator: deterministic, answers agree with the checker, and each
 * class's intent shows in the answer (error-code bits per SDM 4.7). */
static void test_generator(void **state)
{
	(void)state;
	vmem_vector a, b;
	char *sa, *sb;
	assert_int_equal(vmem_vector_generate(5, VMEM_VGEN_ALL, 3, &a), VMEM_OK);
	assert_int_equal(vmem_vector_generate(5, VMEM_VGEN_ALL, 3, &b), VMEM_OK);
	assert_int_equal(vmem_vector_to_string(&a, &sa), VMEM_OK);
	assert_int_equal(vmem_vector_to_string(&b, &sb), VMEM_OK);
	assert_string_equal(sa, sb);
	free(sb);
	vmem_vector_free(&b);
	assert_int_equal(vmem_vector_generate(6, VMEM_VGEN_ALL, 3, &b), VMEM_OK);
	assert_int_equal(vmem_vector_to_string(&b, &sb), VMEM_OK);
	assert_string_not_equal(sa, sb);
	free(sa);
	free(sb);
	vmem_vector_free(&a);
	vmem_vector_free(&b);
	assert_int_equal(vmem_vector_generate(1, 0, 0, &a), VMEM_E_INVAL);

	unsigned long sizes = 0, modes_seen = 0, ec_bits = 0, np_levels = 0, rsvd_levels = 0, ok = 0;
	for (unsigned long k = 0; k < 17 * 4 * 3; k++) {
		vmem_vector v;
		vmem_vector_verdict vd;
		assert_int_equal(vmem_vector_generate(42, VMEM_VGEN_ALL, k, &v), VMEM_OK);
		assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
		if (vd.status != VMEM_VCHECK_PASS)
			fail_msg("%s: %s", v.id, vd.diff);
		vmem_vector_verdict_free(&vd);
		char mode[16], cls[16];
		unsigned at = 0;
		assert_int_equal(sscanf(v.id, "gen-42-%*u %15s %15s", mode, cls), 2);
		char *l = strchr(cls, '@');
		if (l) {
			at = (unsigned)atoi(l + 2);
			*l = 0;
		}
		modes_seen |= 1ul << (strchr("3p45", mode[0]) - "3p45"); /* 32bit pae 4level 5level */
		const vmem_vector_expect *e = &v.expect;
		assert_true(e->have & VMEM_VEXP_MEM_AFTER);
		if (e->result == VMEM_VRES_OK) {
			sizes |= e->page_size;
			ok++;
		} else {
			ec_bits |= e->error_code;
		}
		/* Class ok is built to translate: SMEP/SMAP never meet a user page
		 * there, and the leaf's protection key allows the access. */
		if (!strcmp(cls, "ok"))
			assert_int_equal(e->result, VMEM_VRES_OK);
		uint64_t ec = e->result == VMEM_VRES_PAGE_FAULT ? e->error_code : ~0ull;
		if (!strcmp(cls, "np")) {
			assert_true(ec != ~0ull && !(ec & 1)); /* P = 0 */
			np_levels |= 1ul << at;
		} else if (!strcmp(cls, "rsvd")) {
			assert_true(ec != ~0ull && (ec & 0x9) == 0x9); /* P and RSVD */
			rsvd_levels |= 1ul << at;
		} else if (!strcmp(cls, "w")) {
			assert_true(ec != ~0ull && (ec & 0x3) == 0x3);
		} else if (!strcmp(cls, "u")) {
			assert_true(ec != ~0ull && (ec & 0x5) == 0x5);
		} else if (!strcmp(cls, "i")) {
			assert_true(ec != ~0ull && (ec & 0x11) == 0x11); /* P and I/D: an XD page */
		} else if (!strcmp(cls, "pk")) {
			assert_true(ec != ~0ull && (ec & 0x25) == 0x25);
		} else if (!strcmp(cls, "smep")) {
			assert_true(ec == 0x11);
		} else if (!strcmp(cls, "smap")) {
			/* Faults unless EFLAGS.AC overrode it for an explicit access. */
			assert_true((ec != ~0ull && !(ec & 4)) || (v.access.ac && !v.access.implicit));
		}
		vmem_vector_free(&v);
	}
	assert_true(sizes == (4096ul | 2097152ul | 4194304ul | 1073741824ul));
	assert_true(ec_bits == 0x3f); /* P W U RSVD I PK all seen */
	assert_true(np_levels == 0x3e && rsvd_levels == 0x3e);
	assert_true(ok > 0);
	assert_true(modes_seen == 0xf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_worked),
		cmocka_unit_test(test_wrong_expectations),
		cmocka_unit_test(test_unsupported_and_refused),
		cmocka_unit_test(test_bad_words_refused),
		cmocka_unit_test(test_shared_examples),
		cmocka_unit_test(test_generator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
