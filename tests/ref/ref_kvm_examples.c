/* ref_kvm_examples: the 8 real-KVM "walk" answers of shared/spec/examples-v1.jsonl, hand-transcribed, checked against ref_walk (and the library). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ref_diff.h"
#include "ref_walk.h"

enum { R, W, F };

struct word {
	uint64_t gpa, val;
};

/* One vector: cpu, access, initial memory (8-byte words), KVM's answer. */
struct kvm_case {
	const char *id;
	uint64_t cr0, cr3, cr4, efer;
	unsigned maxphyaddr;
	bool gbpages;
	uint64_t la;
	int type, cpl;
	unsigned nmem;
	struct word mem[4];
	bool ok;
	uint64_t gpa, page_size;
	uint32_t error_code;
	unsigned nafter;
	struct word after[4];
};

static const struct kvm_case cases[] = {
	{ "example-walk-01", 0x80010033, 0xa37c8a3ca008, 0x30, 0x500, 48, false, 0xffffb6f8463beee8, F, 0,
	  3, { {0xa37c8a3cab68, 0xbd457001a023}, {0xbd457001af08, 0xcc35d2f9a017}, {0xcc35d2f9a188, 0xcac000e5} },
	  true, 0xcadbeee8, 2097152, 0,
	  1, { {0xbd457001af08, 0xcc35d2f9a037} } },
	{ "example-walk-02", 0x80000033, 0x3823f50d0000, 0x20, 0xd00, 48, false, 0xad20db875ed, F, 3,
	  1, { {0x3823f50d00a8, 0x800000dbf8117026} },
	  false, 0, 0, 0x14,
	  0, { {0, 0} } },
	{ "example-walk-03", 0x80000033, 0x87dadace7000, 0xa0, 0x500, 48, false, 0xffffc8cd1dbe5721, W, 3,
	  4, { {0x87dadace7c88, 0xfffff1485437}, {0xfffff14859a0, 0x4aa79c1017}, {0x4aa79c1768, 0x7131865fc21f}, {0x7131865fcf28, 0x380cc037} },
	  true, 0x380cc721, 4096, 0,
	  3, { {0xfffff14859a0, 0x4aa79c1037}, {0x4aa79c1768, 0x7131865fc23f}, {0x7131865fcf28, 0x380cc077} } },
	{ "example-walk-04", 0x80010033, 0x5bf05f4008, 0xa0, 0xd00, 48, false, 0x451fdf21e29d, R, 3,
	  3, { {0x5bf05f4450, 0x9cfb213035}, {0x9cfb2133f8, 0x5020ffffca4b6075}, {0xffffca4b67c8, 0xdf49f670dcb2c494} },
	  false, 0, 0, 0x4,
	  0, { {0, 0} } },
	{ "example-walk-05", 0x80010033, 0x9e918e62000, 0xa0, 0xd00, 48, false, 0xffffd5dd534c0d69, W, 0,
	  4, { {0x9e918e62d58, 0x27e0784841830079}, {0x784841830ba8, 0xfffffd539037}, {0xfffffd5394d0, 0x3ba0ffffe20c2425}, {0xffffe20c2600, 0x1567d0607b} },
	  false, 0, 0, 0x3,
	  0, { {0, 0} } },
	{ "example-walk-06", 0x80010033, 0x19dde95008, 0x30, 0xd00, 48, false, 0x1695f9f78ef6, F, 0,
	  2, { {0x19dde95168, 0x1d502ea9e8ffb07f}, {0x2ea9e8ffb2b8, 0x6d5c0000b92e803f} },
	  false, 0, 0, 0x19,
	  0, { {0, 0} } },
	{ "example-walk-07", 0x80000033, 0x14359ff1000, 0x20, 0xd00, 48, false, 0xfffffa8fe04c4371, W, 3,
	  3, { {0x14359ff1fa8, 0x1c70c99b7300806f}, {0xc99b730081f8, 0xf950d1a6c48ef10f}, {0xd1a6c48ef810, 0x8000484f258d7006} },
	  false, 0, 0, 0x6,
	  0, { {0, 0} } },
	{ "example-walk-08", 0x80010033, 0x3490a008, 0x30, 0xd00, 48, false, 0xffffb2d6e77110c0, R, 3,
	  3, { {0x3490ab28, 0x8000007f5b42fe77}, {0x7f5b42fad8, 0x190023d0d248c02f}, {0x23d0d248c9d8, 0x92373840068b} },
	  false, 0, 0, 0x5,
	  0, { {0, 0} } },
};

/* Sparse memory for the reference alone: the listed words, zero elsewhere. */
struct sparse {
	unsigned n;
	struct word w[8];
};

static struct word *sparse_find(struct sparse *s, uint64_t gpa)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->w[i].gpa == gpa)
			return &s->w[i];
	return NULL;
}

static bool sp_read(void *ctx, uint64_t gpa, unsigned size, uint64_t *val)
{
	struct word *w = sparse_find(ctx, gpa);
	*val = w ? w->val : 0;
	return size == 8;
}

static bool sp_write(void *ctx, uint64_t gpa, unsigned size, uint64_t val)
{
	struct sparse *s = ctx;
	struct word *w = sparse_find(s, gpa);
	if (size != 8)
		return false;
	if (!w) {
		w = &s->w[s->n++];
		w->gpa = gpa;
	}
	w->val = val;
	return true;
}

static void fill(const struct kvm_case *k, ref_cpu *cpu, ref_access *acc)
{
	memset(cpu, 0, sizeof(*cpu));
	memset(acc, 0, sizeof(*acc));
	cpu->cr0 = k->cr0;
	cpu->cr3 = k->cr3;
	cpu->cr4 = k->cr4;
	cpu->efer = k->efer;
	cpu->maxphyaddr = k->maxphyaddr;
	cpu->gbpages = k->gbpages;
	acc->la = k->la;
	acc->write = k->type == W;
	acc->fetch = k->type == F;
	acc->cpl3 = k->cpl == 3;
}

/* The reference against KVM's answer: result, gpa, size, error code, exact memory changes. */
static bool check_ref(const struct kvm_case *k)
{
	ref_cpu cpu;
	ref_access acc;
	fill(k, &cpu, &acc);
	struct sparse s = { 0, { { 0, 0 } } };
	for (unsigned i = 0; i < k->nmem; i++)
		s.w[s.n++] = k->mem[i];
	ref_mem m = { sp_read, sp_write, &s };
	ref_result r;
	ref_walk(&cpu, &m, &acc, true, &r);

	bool ok = true;
	if (k->ok) {
		ok = r.status == REF_OK && r.gpa == k->gpa && r.page_size == k->page_size;
	} else {
		ok = r.status == REF_PF && r.error_code == k->error_code;
	}
	/* mem_after lists exactly the words that changed. */
	unsigned changed = 0;
	for (unsigned i = 0; i < s.n; i++) {
		const struct word *orig = NULL;
		for (unsigned j = 0; j < k->nmem; j++)
			if (k->mem[j].gpa == s.w[i].gpa)
				orig = &k->mem[j];
		if (orig && orig->val == s.w[i].val)
			continue;
		changed++;
		bool listed = false;
		for (unsigned j = 0; j < k->nafter; j++)
			if (k->after[j].gpa == s.w[i].gpa && k->after[j].val == s.w[i].val)
				listed = true;
		ok = ok && listed;
	}
	ok = ok && changed == k->nafter;
	if (!ok)
		printf("FAIL %s: ref status %d gpa %#" PRIx64 " size %#" PRIx64 " ec %#x changed %u\n",
		       k->id, r.status, r.gpa, r.page_size, r.error_code, changed);
	return ok;
}

/* The same vector through the library, compared with the reference on identical memory. */
static bool check_lib(diff_env *env, const struct kvm_case *k)
{
	ref_cpu cpu;
	ref_access acc;
	fill(k, &cpu, &acc);
	diff_env_reset(env);
	env->miss_zero = true;
	for (unsigned i = 0; i < k->nmem; i++) {
		diff_env_add_page(env, k->mem[i].gpa & ~0xfffull);
		diff_env_store(env, k->mem[i].gpa, 8, k->mem[i].val);
	}
	char why[8192];
	if (diff_run(env, &cpu, &acc, 0, why, sizeof(why), NULL))
		return true;
	printf("FAIL %s (library vs reference):\n%s", k->id, why);
	return false;
}

int main(void)
{
	unsigned pass = 0, fail = 0;
	diff_env env;
	if (!diff_env_init(&env))
		return 2;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_ref(&cases[i]) ? pass++ : fail++;
		check_lib(&env, &cases[i]) ? pass++ : fail++;
	}
	diff_env_fini(&env);
	printf("%u passed, %u failed\n", pass, fail);
	return fail ? 1 : 0;
}
