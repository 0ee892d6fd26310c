/* shadow_random: random guest programs through the shadow engine vs the plain two-stage reference (tiny and large budgets, 4- and 5-level hosts, allocation failures). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow_run.h"
#include "shadow_seq.h"
#include "support/failalloc.h"

/* Usage: shadow_random [--count N] [--ops M] [--seed S] [--verbose] [--no-audit]
 * Sequence i uses seed S+i, host 4- or 5-level and a budget from a fixed
 * cycle (from the 8-page minimum up); every third one runs with random
 * allocation failures armed. */
#define DEFAULT_COUNT 24u
#define DEFAULT_OPS 300u
#define DEFAULT_SEED 0x5bad0c0ffeeull

struct chaos {
	failalloc fa;
	uint64_t rng;
	unsigned pct; /* chance that an op runs with one allocation failing */
};

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	return z ^ (z >> 27);
}

static void arm(void *ctx, unsigned i)
{
	struct chaos *c = ctx;
	(void)i;
	if (next(&c->rng) % 100 < c->pct)
		failalloc_fail_in(&c->fa, (long)(next(&c->rng) % 4));
}

static void disarm(void *ctx)
{
	failalloc_never(&((struct chaos *)ctx)->fa);
}

int main(int argc, char **argv)
{
	unsigned long count = DEFAULT_COUNT, ops = DEFAULT_OPS;
	uint64_t seed = DEFAULT_SEED;
	bool verbose = false, audit = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--verbose"))
			verbose = true;
		else if (!strcmp(argv[i], "--no-audit")) /* the reference comparison alone */
			audit = false;
		else {
			fprintf(stderr, "usage: %s [--count N] [--ops M] [--seed S] [--verbose] [--no-audit]\n", argv[0]);
			return 2;
		}
	}
	static const unsigned budgets[] = { 8, 10, 16, 64, 300 };
	static struct chaos ch;
	shadow_run_stats tot = { 0 };
	for (unsigned long i = 0; i < count; i++) {
		seq s;
		unsigned host = (i & 1) ? 5 : 4;
		if (!seq_generate(&s, seed + i, NULL, 0, (unsigned)ops, host)) {
			fprintf(stderr, "out of memory\n");
			return 1;
		}
		failalloc_init(&ch.fa);
		ch.rng = seed ^ i;
		ch.pct = (i % 3 == 2) ? 10 : 0;
		shadow_run_cfg cfg = { .max_pages = budgets[i % 5], .max_roots = 1 + (unsigned)(i % 4),
				       .audit_each = audit, .alloc = &ch.fa.a,
				       .before_op = arm, .fail_off = disarm, .ctx = &ch };
		char why[1024] = "";
		shadow_run_stats st;
		bool ok = shadow_run(&s, &cfg, why, sizeof(why), &st);
		seq_free(&s);
		if (!ok) {
			printf("FAIL seq %lu (seed %#" PRIx64 ", host %u-level, budget %u, roots %u): %s\n", i,
			       seed + i, host, cfg.max_pages, cfg.max_roots, why);
			return 1;
		}
		if (ch.fa.live || ch.fa.bad_frees) {
			printf("FAIL seq %lu: %ld blocks leaked, %ld bad frees\n", i, ch.fa.live, ch.fa.bad_frees);
			return 1;
		}
		tot.accesses += st.accesses;
		tot.fixed += st.fixed;
		tot.inject_pf += st.inject_pf;
		tot.emulated += st.emulated;
		tot.host_faults += st.host_faults;
		tot.nomem += st.nomem;
		if (verbose)
			printf("seq %lu ok: %lu accesses, %lu fills, %lu #PF, %lu emulated, %lu NOMEM\n", i,
			       st.accesses, st.fixed, st.inject_pf, st.emulated, st.nomem);
	}
	printf("shadow_random: %lu sequences x %lu ops agree (%lu accesses, %lu fills, %lu #PF injected, "
	       "%lu emulated, %lu host faults, %lu NOMEM recovered)\n",
	       count, ops, tot.accesses, tot.fixed, tot.inject_pf, tot.emulated, tot.host_faults, tot.nomem);
	return 0;
}
