/* Differential fault check: random damage to guest tables, then libvmem and the baseline must agree. */
#include "faults.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_env.h"
#include "bench_rng.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define SPAN_4K (32 * MIB) /* mapped with 4K pages at la 0 */

/* la 0: 32 MiB of 4K pages; la 1G: 1 GiB of 2M pages; la 2G: one 1G page; la 3G: nothing. */
static void build(pt_space *s)
{
	uint64_t leaf = PT_P | PT_RW | PT_US, table = PT_P | PT_RW | PT_US;

	pt_map(s, 0, SPAN_4K, PT_DATA_GPA, 1ull << 12, leaf, table);
	pt_map(s, GIB, GIB, PT_DATA_GPA + GIB, 1ull << 21, leaf, table);
	pt_map(s, 2 * GIB, GIB, PT_DATA_GPA + 2 * GIB, 1ull << 30, leaf, table);
}

static const uint64_t mutations[] = {
	~PT_P,           /* not present (AND) */
	~PT_RW,          /* read-only (AND) */
	~PT_US,          /* supervisor (AND) */
	PT_XD,           /* execute-disable (OR; reserved when NXE = 0) */
	1ull << 51,      /* above MAXPHYADDR: reserved */
	1ull << 13,      /* reserved in a large leaf, address bit elsewhere */
	PT_PS,           /* PAT in a PTE, a large page in a PDE/PDPTE */
	1ull << 12,      /* PAT in a large leaf, address bit elsewhere */
	PT_A,            /* already accessed */
	PT_A | PT_D,     /* already dirty */
	1ull << 9,       /* software-available: ignored */
};
#define N_MUT (sizeof(mutations) / sizeof(mutations[0]))

static void damage(uint64_t *e, uint64_t *rng)
{
	unsigned m = (unsigned)(rng_next(rng) % N_MUT);

	if (m < 3)
		*e &= mutations[m];
	else
		*e |= mutations[m];
}

static void damage_all(pt_space *s, uint64_t *rng)
{
	for (unsigned i = 0; i < 1500; i++) {
		uint64_t *e = pt_entry(s, rng_next(rng) % SPAN_4K, 1);
		if (e)
			damage(e, rng);
	}
	for (unsigned i = 0; i < 100; i++) {
		uint64_t la = (rng_next(rng) & 1) ? rng_next(rng) % SPAN_4K
						   : GIB + rng_next(rng) % GIB;
		uint64_t *e = pt_entry(s, la, 2);
		if (e)
			damage(e, rng);
	}
	uint64_t *e = pt_entry(s, (rng_next(rng) % 4) * GIB, 3);
	if (e)
		damage(e, rng);
}

static uint64_t pick_la(uint64_t *rng, unsigned levels)
{
	uint64_t r = rng_next(rng);
	uint64_t off = rng_next(rng);

	switch (r % 70) {
	case 0: /* non-canonical */
		return (off % GIB) | (1ull << (levels == 5 ? 60 : 50));
	case 1: /* canonical upper half, not mapped */
		return ~(off % GIB);
	default:
		switch ((r >> 8) % 4) {
		case 0:
			return off % SPAN_4K;
		case 1:
			return GIB + off % GIB;
		case 2:
			return 2 * GIB + off % GIB;
		default:
			return 3 * GIB + off % GIB;
		}
	}
}

static const unsigned accesses[] = {
	VMEM_ACC_READ, VMEM_ACC_WRITE, VMEM_ACC_FETCH,
	VMEM_ACC_USER, VMEM_ACC_USER | VMEM_ACC_WRITE, VMEM_ACC_USER | VMEM_ACC_FETCH,
};

/* vmem_walk_batch against vmem_walk one address at a time, each on its own
 * copy of the damaged tables: chunks of 1 to 300 addresses with one access
 * and flags each; every result and the final A/D state must be the same. */
static unsigned batch_diff(const pt_space *s, unsigned n, uint64_t rng, bool nxe, bool wp)
{
	uint8_t *cb = aligned_alloc(4096, s->size), *cs = aligned_alloc(4096, s->size);
	uint64_t *la = malloc(300 * sizeof(*la));
	vmem_walk_result *rb = malloc(300 * sizeof(*rb)), *rs = malloc(300 * sizeof(*rs));
	bench_env eb, es;
	unsigned bad = 0, done = 0;

	if (!cb || !cs || !la || !rb || !rs) {
		bad = 1;
		goto out;
	}
	memcpy(cb, s->buf, s->size);
	memcpy(cs, s->buf, s->size);
	if (env_init(&eb, s, cb, nxe, wp)) {
		bad = 1;
		goto out;
	}
	if (env_init(&es, s, cs, nxe, wp)) {
		env_fini(&eb);
		bad = 1;
		goto out;
	}
	while (done < n && !bad) {
		unsigned m = 1 + (unsigned)(rng_next(&rng) % 300);
		unsigned acc = accesses[rng_next(&rng) % 6];
		unsigned fl = (rng_next(&rng) & 3) == 0 ? VMEM_WALK_NO_AD : 0;
		for (unsigned i = 0; i < m; i++)
			la[i] = pick_la(&rng, s->levels);
		memset(rb, 0xa5, m * sizeof(*rb));
		memset(rs, 0xa5, m * sizeof(*rs));
		vmem_err eb_err = vmem_walk_batch(eb.mmu, eb.gm, la, m, acc, fl, rb), es_err = VMEM_OK;
		for (unsigned i = 0; i < m && !es_err; i++)
			es_err = vmem_walk(es.mmu, es.gm, la[i], acc, fl, &rs[i]);
		if (eb_err != es_err || memcmp(rb, rs, m * sizeof(*rb)) != 0) {
			fprintf(stderr, "faults: vmem_walk_batch differs from vmem_walk (%u addresses, access %#x, flags %#x)\n",
				m, acc, fl);
			bad++;
		}
		done += m;
	}
	if (!bad && memcmp(cb, cs, s->size) != 0) {
		fprintf(stderr, "faults: accessed/dirty flags differ between batched and single walks\n");
		bad++;
	}
	env_fini(&es);
	env_fini(&eb);
out:
	free(cb);
	free(cs);
	free(la);
	free(rb);
	free(rs);
	return bad;
}

static unsigned run_one(unsigned levels, bool nxe, bool wp, unsigned n, uint64_t seed)
{
	pt_space s;
	bench_env env;
	unsigned bad = 0, st[4] = { 0 }, rsvd = 0, ad = 0;
	uint64_t rng = seed;

	if (pt_init(&s, pt_pages_for(4 * GIB, 1ull << 12, levels), levels))
		return 1;
	build(&s);
	damage_all(&s, &rng);
	bad += batch_diff(&s, n, seed ^ 0x5bd1e995, nxe, wp);
	uint8_t *copy = aligned_alloc(4096, s.size);
	if (!copy) {
		pt_free(&s);
		return 1;
	}
	memcpy(copy, s.buf, s.size);
	if (env_init(&env, &s, copy, nxe, wp)) {
		free(copy);
		pt_free(&s);
		return 1;
	}
	for (unsigned i = 0; i < n && bad < 10; i++) {
		uint64_t la = pick_la(&rng, levels);
		unsigned acc = accesses[rng_next(&rng) % 6];
		unsigned fl = (rng_next(&rng) & 3) == 0 ? VMEM_WALK_NO_AD : 0;
		vmem_walk_result lr;
		bl_result br;
		vmem_err err = vmem_walk(env.mmu, env.gm, la, acc, fl, &lr);
		bl_walk(&env.mem, &env.cpu, la, acc, fl, &br);
		if (err) {
			fprintf(stderr, "faults: vmem_walk(%#" PRIx64 ") failed: %s\n",
				la, vmem_strerror(err));
			bad++;
		} else if (!env_agree(la, acc, fl, &lr, &br)) {
			bad++;
		}
		st[br.status & 3]++;
		rsvd += br.status == BL_PF && (br.error_code & VMEM_PFEC_RSVD);
		ad += (lr.info & VMEM_WINFO_AD_SET) != 0;
	}
	printf("faults: %u-level NXE %d WP %d: %u ok (%u set A/D), %u #PF (%u reserved), %u #GP\n",
	       levels, nxe, wp, st[BL_OK], ad, st[BL_PF], rsvd, st[BL_GP]);
	if (!bad && memcmp(copy, s.buf, s.size) != 0) {
		fprintf(stderr, "faults: accessed/dirty flags differ after the walks\n");
		bad++;
	}
	if (bad)
		fprintf(stderr, "faults: %u disagreements (levels %u, NXE %d, WP %d)\n",
			bad, levels, nxe, wp);
	env_fini(&env);
	free(copy);
	pt_free(&s);
	return bad;
}

unsigned faults_run(unsigned n, uint64_t seed)
{
	unsigned bad = 0;

	bad += run_one(4, true, true, n, seed);
	bad += run_one(4, false, false, n, seed + 1);
	bad += run_one(5, true, false, n, seed + 2);
	bad += run_one(5, false, true, n, seed + 3);
	return bad;
}
