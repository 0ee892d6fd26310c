/* Unit tests: the kind "ept" and "nested" vector generators hit the outcome each vector was built for (SDM vol. 3C 28.2.1, 29.3.3), and their vectors pass the checker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libvmem/vectors.h>

/* Exit-qualification bits (SDM vol. 3C Table 28-7), written out here rather
 * than taken from the library's header. */
#define Q_READ  (1ull << 0)
#define Q_WRITE (1ull << 1)
#define Q_FETCH (1ull << 2)
#define Q_R     (1ull << 3)
#define Q_W     (1ull << 4)
#define Q_X     (1ull << 5)
#define Q_XU    (1ull << 6)
#define Q_GLA   (1ull << 7)
#define Q_FINAL (1ull << 8)
#define EPT_D   (1ull << 9) /* dirty flag of an EPT leaf (SDM 29.3.5) */

static void must_pass(vmem_vector *v)
{
	vmem_vector_verdict vd;
	assert_int_equal(vmem_vector_check(v, &vd), VMEM_OK);
	if (vd.status != VMEM_VCHECK_PASS)
		fail_msg("%s: %s", v->id, vd.diff);
	vmem_vector_verdict_free(&vd);
	/* Written and read back, the vector is the same one. */
	char *s;
	vmem_vector back;
	vmem_vector_error err;
	assert_int_equal(vmem_vector_to_string(v, &s), VMEM_OK);
	if (vmem_vector_parse_line(s, strlen(s), &back, &err) != VMEM_OK)
		fail_msg("%s: reads back as %s: %s", v->id, err.field, err.msg);
	char *s2;
	assert_int_equal(vmem_vector_to_string(&back, &s2), VMEM_OK);
	assert_string_equal(s, s2);
	free(s);
	free(s2);
	vmem_vector_free(&back);
}

/* The value of the word at addr after the access: mem_after if it lists
 * it, else mem, else 0 (memory not listed reads zero). */
static uint64_t word(const vmem_vector *v, uint64_t addr, bool after)
{
	for (size_t k = 0; after && k < v->expect.n_mem_after; k++)
		if (v->expect.mem_after[k].addr == addr)
			return v->expect.mem_after[k].value;
	for (size_t k = 0; k < v->n_mem; k++)
		if (v->mem[k].addr == addr)
			return v->mem[k].value;
	return 0;
}

/* The EPT walk of a successful access, redone by hand over the vector's
 * words (SDM 29.3.2): at each level the entry indexed by 9 bits of the
 * guest-physical address, the next table at bits 51:12, a leaf where bit 7
 * is set (or at level 1). With EPT A/D on (EPTP bit 6), every entry used
 * has gained A (bit 8) and, for a write, the leaf D (bit 9); nothing else
 * changed (SDM 29.3.5). With it off, nothing changed at all. */
static void check_ept_ad(const vmem_vector *v)
{
	bool ad = v->ept.eptp & (1ull << 6);
	unsigned top = (unsigned)((v->ept.eptp >> 3) & 7) + 1;
	uint64_t table = v->ept.eptp & 0x000ffffffffff000ull;
	size_t used = 0;
	for (unsigned l = top; l >= 1; l--) {
		uint64_t ea = table + 8 * ((v->access.addr >> (12 + 9 * (l - 1))) & 511);
		uint64_t before = word(v, ea, false), after = word(v, ea, true);
		bool leaf = l == 1 || (before & (1ull << 7));
		uint64_t want = before;
		if (ad)
			want |= (1ull << 8) | (leaf && v->access.type == VMEM_VACC_WRITE ? EPT_D : 0);
		assert_int_equal(after, want);
		used += after != before;
		if (leaf)
			break;
		table = before & 0x000ffffffffff000ull;
	}
	assert_int_equal(v->expect.n_mem_after, used); /* no other word changed */
}

/* "leaf Ln" in an id: the page size a leaf at level n maps. */
static uint64_t leaf_size(const char *id)
{
	const char *l = strstr(id, "leaf L");
	assert_non_null(l);
	return 1ull << (12 + 9 * (l[6] - '1'));
}

static void test_ept_generator(void **state)
{
	(void)state;
	vmem_vector a, b;
	char *sa, *sb;
	assert_int_equal(vmem_vector_generate_ept(5, 9, &a), VMEM_OK);
	assert_int_equal(vmem_vector_generate_ept(5, 9, &b), VMEM_OK);
	assert_int_equal(vmem_vector_to_string(&a, &sa), VMEM_OK);
	assert_int_equal(vmem_vector_to_string(&b, &sb), VMEM_OK);
	assert_string_equal(sa, sb); /* same seed and index, same vector */
	free(sa);
	free(sb);
	vmem_vector_free(&a);
	vmem_vector_free(&b);

	unsigned long sizes = 0, np_levels = 0, rsvd_levels = 0, tops = 0, seen = 0, dirty = 0;
	for (unsigned long k = 0; k < 16 * 30; k++) {
		vmem_vector v;
		assert_int_equal(vmem_vector_generate_ept(42, k, &v), VMEM_OK);
		assert_int_equal(v.kind, VMEM_VKIND_EPT);
		must_pass(&v);
		unsigned top, at = 0;
		char cls[16];
		assert_int_equal(sscanf(v.id, "gen-42-%*u ept%u %15s", &top, cls), 2);
		tops |= 1ul << top;
		char *l = strchr(cls, '@');
		if (l) {
			at = (unsigned)atoi(l + 2);
			*l = 0;
		}
		const vmem_vector_expect *e = &v.expect;
		uint64_t q = e->exit_qualification;
		/* The access bit of the qualification is the access's type. */
		uint64_t acc = v.access.type == VMEM_VACC_READ ? Q_READ :
			       v.access.type == VMEM_VACC_WRITE ? Q_WRITE : Q_FETCH;
		bool user = v.access.cpl == 3;
		if (!strcmp(cls, "ok")) {
			seen |= 1;
			assert_int_equal(e->result, VMEM_VRES_OK);
			assert_int_equal(e->page_size, leaf_size(v.id));
			sizes |= e->page_size;
			check_ept_ad(&v);
			dirty += (v.ept.eptp & (1ull << 6)) && v.access.type == VMEM_VACC_WRITE;
		} else if (!strcmp(cls, "np") || !strcmp(cls, "deny")) {
			seen |= !strcmp(cls, "np") ? 2 : 4;
			assert_int_equal(e->result, VMEM_VRES_EPT_VIOLATION);
			assert_int_equal(e->guest_physical, v.access.addr);
			assert_int_equal(q & (Q_READ | Q_WRITE | Q_FETCH), acc);
			/* Bit 7 says whether there is a linear address; this access is then its final one (bit 8). */
			assert_int_equal(!!(q & Q_GLA), !!(v.have & VMEM_VHAVE_LINEAR));
			if (q & Q_GLA) {
				assert_true(q & Q_FINAL);
				assert_int_equal(e->guest_linear, v.access.linear);
			}
			if (!strcmp(cls, "np")) {
				/* A not-present entry is among those ANDed: no right is reported. */
				assert_int_equal(q & (Q_R | Q_W | Q_X | Q_XU), 0);
				np_levels |= 1ul << at;
			} else if (v.access.type == VMEM_VACC_READ) {
				assert_false(q & Q_R);
			} else if (v.access.type == VMEM_VACC_WRITE) {
				assert_false((q & Q_R) && (q & Q_W));
			} else {
				/* MBEC: a user-mode linear address needs XU (bit 10), else XS (bit 2). */
				assert_false(q & (v.ept.mbec && user ? Q_XU : Q_X));
			}
		} else {
			/* wonly, wx, rsvd, mtype: misconfigurations (SDM 29.3.3.1). */
			seen |= !strcmp(cls, "rsvd") ? 8 : !strcmp(cls, "mtype") ? 16 : 32;
			assert_int_equal(e->result, VMEM_VRES_EPT_MISCONFIG);
			assert_int_equal(e->guest_physical, v.access.addr);
			if (!strcmp(cls, "rsvd"))
				rsvd_levels |= 1ul << at;
		}
		vmem_vector_free(&v);
	}
	assert_int_equal(seen, 63);
	assert_int_equal(sizes, 4096ul | 2097152ul | 1073741824ul);
	assert_int_equal(np_levels, 0x3e);   /* levels 1-5 */
	assert_int_equal(rsvd_levels, 0x3e);
	assert_int_equal(tops, (1ul << 4) | (1ul << 5));
	assert_true(dirty > 0);
}

static void test_nested_generator(void **state)
{
	(void)state;
	vmem_vector a;
	assert_int_equal(vmem_vector_generate_nested(1, 0, 0, &a), VMEM_E_INVAL);
	assert_int_equal(vmem_vector_generate_nested(1, 1u << 4, 0, &a), VMEM_E_INVAL);

	unsigned long modes = 0, tops = 0, table_levels = 0, seen = 0;
	for (unsigned long k = 0; k < 8 * 4 * 12; k++) {
		vmem_vector v;
		assert_int_equal(vmem_vector_generate_nested(42, VMEM_VGEN_ALL, k, &v), VMEM_OK);
		assert_int_equal(v.kind, VMEM_VKIND_NESTED);
		must_pass(&v);
		unsigned top, at = 0;
		char cls[16], mode[16], gcls[16];
		assert_int_equal(sscanf(v.id, "gen-42-%*u nested ept%u %15s %15s %15s", &top, cls, mode, gcls), 4);
		tops |= 1ul << top;
		modes |= 1ul << (strchr("3p45", mode[0]) - "3p45");
		char *l = strchr(cls, '@');
		if (l) {
			at = (unsigned)atoi(l + 2);
			*l = 0;
		}
		const vmem_vector_expect *e = &v.expect;
		uint64_t q = e->exit_qualification;
		if (!strcmp(cls, "ok")) {
			seen |= 1;
			assert_int_equal(e->result, VMEM_VRES_OK);
		} else if (!strcmp(cls, "guest")) {
			/* The guest's own fault; only SMAP lifted by EFLAGS.AC (explicit access) lets it through. */
			seen |= 2;
			if (e->result != VMEM_VRES_PAGE_FAULT)
				assert_true(!strncmp(gcls, "smap", 4) && v.access.ac && !v.access.implicit);
		} else if (!strcmp(cls, "table")) {
			/* A guest paging-structure access: linear address valid, not the final access (Table 28-7). */
			seen |= 4;
			assert_int_equal(e->result, VMEM_VRES_EPT_VIOLATION);
			assert_int_equal(q & (Q_GLA | Q_FINAL), Q_GLA);
			assert_int_equal(e->guest_linear, v.access.addr);
			table_levels |= 1ul << at;
		} else if (!strcmp(cls, "final")) {
			seen |= 8;
			assert_int_equal(e->result, VMEM_VRES_EPT_VIOLATION);
			assert_int_equal(q & (Q_GLA | Q_FINAL), Q_GLA | Q_FINAL);
			assert_int_equal(e->guest_linear, v.access.addr);
			uint64_t acc = v.access.type == VMEM_VACC_READ ? Q_READ :
				       v.access.type == VMEM_VACC_WRITE ? Q_WRITE : Q_FETCH;
			assert_int_equal(q & (Q_READ | Q_WRITE | Q_FETCH), acc);
		} else {
			assert_string_equal(cls, "misc");
			seen |= 16;
			assert_int_equal(e->result, VMEM_VRES_EPT_MISCONFIG);
		}
		vmem_vector_free(&v);
	}
	assert_int_equal(seen, 31);
	assert_int_equal(modes, 0xf);
	assert_int_equal(tops, (1ul << 4) | (1ul << 5));
	assert_int_equal(table_levels, 0x3e); /* guest tables at levels 1-5 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ept_generator),
		cmocka_unit_test(test_nested_generator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
