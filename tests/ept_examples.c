/* The 16 ept/nested real-oracle examples (tests/data/examples-ept-nested-v1.jsonl, Bochs 2.7 with SDM values) checked through vmem_vector_check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/vectors.h>

#ifndef VMEM_EPT_EXAMPLES
#error "VMEM_EPT_EXAMPLES must name the examples file"
#endif

static void test_examples(void **state)
{
	(void)state;
	FILE *fp = fopen(VMEM_EPT_EXAMPLES, "r");
	assert_non_null(fp);
	vmem_vector_reader *rd = NULL;
	assert_int_equal(vmem_vector_reader_new(fp, &rd), VMEM_OK);
	unsigned n_ept = 0, n_nested = 0, n_pass = 0;
	for (;;) {
		vmem_vector v;
		vmem_vector_error err;
		vmem_err e = vmem_vector_read(rd, &v, &err);
		if (e == VMEM_E_NOENT)
			break;
		assert_int_equal(e, VMEM_OK);
		n_ept += v.kind == VMEM_VKIND_EPT;
		n_nested += v.kind == VMEM_VKIND_NESTED;
		/* Every example names its side effects: mem_after is checked too. */
		assert_true(v.expect.have & VMEM_VEXP_MEM_AFTER);
		vmem_vector_verdict vd;
		assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
		if (vd.status != VMEM_VCHECK_PASS)
			print_error("%s:\n%s", v.id ? v.id : "?", vd.diff);
		else
			n_pass++;
		vmem_vector_verdict_free(&vd);
		vmem_vector_free(&v);
	}
	vmem_vector_reader_free(rd);
	fclose(fp);
	assert_int_equal(n_ept, 8);
	assert_int_equal(n_nested, 8);
	assert_int_equal(n_pass, 16);
}

/* The checker is not a rubber stamp: a wrong qualification fails. */
static void test_wrong_answer_fails(void **state)
{
	(void)state;
	static const char line[] =
		"{\"v\":1,\"kind\":\"ept\",\"cpu\":{\"maxphyaddr\":40},\"ept\":{\"eptp\":\"0x5ec001e\"},"
		"\"access\":{\"addr\":\"0x6f05f7a048\",\"type\":\"read\",\"linear\":\"0x6f05f7a048\"},"
		"\"mem\":[[\"0x5ec0000\",\"0x90a3900\"],[\"0x90a3de0\",\"0x3b5\"]],"
		"\"expect\":{\"result\":\"ept_violation\",\"exit_qualification\":\"0x189\","
		"\"guest_physical\":\"0x6f05f7a048\",\"guest_linear\":\"0x6f05f7a048\",\"mem_after\":[]}}";
	vmem_vector v;
	vmem_vector_error err;
	assert_int_equal(vmem_vector_parse_line(line, sizeof(line) - 1, &v, &err), VMEM_OK);
	vmem_vector_verdict vd;
	assert_int_equal(vmem_vector_check(&v, &vd), VMEM_OK);
	assert_int_equal(vd.status, VMEM_VCHECK_FAIL);
	assert_non_null(strstr(vd.diff, "exit_qualification: expected 0x189, got 0x181"));
	vmem_vector_verdict_free(&vd);
	vmem_vector_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_wrong_answer_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
