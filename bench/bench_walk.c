/* bench_walk: libvmem's page walker timed against the plain baseline walker, as ratios in one run. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_env.h"
#include "bench_rng.h"
#include "calib.h"
#include "floor.h"
#include "faults.h"

#define GIB (1ull << 30)
#define LA_4L 0x00007f0000000000ull /* PML4 index 254 */
#define LA_5L 0x00127f0000000000ull /* PML5 index 18, PML4 index 254 */

enum space_id { SP_64M_4K, SP_1G_4K, SP_1G_2M, SP_1G_4K_5L, SP_64G_4K, SP_2M_4K, SP_COUNT };
enum pattern { PAT_RANDOM, PAT_SEQ };
enum mode { MODE_SINGLE, MODE_BATCH };

static const struct space_def {
	uint64_t span, page_size;
	unsigned levels;
} spaces[SP_COUNT] = {
	[SP_2M_4K] = { 2ull << 20, 1ull << 12, 4 },
	[SP_64M_4K] = { 64ull << 20, 1ull << 12, 4 },
	[SP_1G_4K] = { GIB, 1ull << 12, 4 },
	[SP_1G_2M] = { GIB, 1ull << 21, 4 },
	[SP_1G_4K_5L] = { GIB, 1ull << 12, 5 },
	[SP_64G_4K] = { 64 * GIB, 1ull << 12, 4 },
};

typedef struct bcase {
	const char *name, *desc;
	enum space_id space;
	enum pattern pattern;
	enum mode mode;
	unsigned access, flags;
	bool ad_pair; /* also time VMEM_WALK_NO_AD in the same repetitions */
} bcase;

#define ACC_R (VMEM_ACC_USER | VMEM_ACC_READ)
#define ACC_W (VMEM_ACC_USER | VMEM_ACC_WRITE)

static const bcase cases[] = {
	{ "hot2m", "(a'') random, 2 MiB 4K (tables in L1)", SP_2M_4K, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "hot64m", "(a') random, 64 MiB 4K (tables in L2)", SP_64M_4K, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "random1g", "(a) random, 1 GiB 4K", SP_1G_4K, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "seq1g", "(b) sequential, 1 GiB 4K", SP_1G_4K, PAT_SEQ, MODE_SINGLE, ACC_R, 0, false },
	{ "random2m", "(c) random, 1 GiB 2M pages", SP_1G_2M, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "random5l", "(d) random, 1 GiB 4K, 5-level", SP_1G_4K_5L, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "random64g", "(e) random, 64 GiB 4K", SP_64G_4K, PAT_RANDOM, MODE_SINGLE, ACC_R, 0, false },
	{ "batch2m", "(f) batch, random 2 MiB 4K (tables in L1)", SP_2M_4K, PAT_RANDOM, MODE_BATCH, ACC_R, 0, false },
	{ "batch1g", "(f) batch, random 1 GiB 4K", SP_1G_4K, PAT_RANDOM, MODE_BATCH, ACC_R, 0, false },
	{ "batch64g", "(f) batch, random 64 GiB 4K", SP_64G_4K, PAT_RANDOM, MODE_BATCH, ACC_R, 0, false },
	{ "adset", "(g) write, A/D already set, 64 MiB", SP_64M_4K, PAT_RANDOM, MODE_SINGLE, ACC_W, 0, true },
	{ "noad", "(g) write, VMEM_WALK_NO_AD, 64 MiB", SP_64M_4K, PAT_RANDOM, MODE_SINGLE, ACC_W, VMEM_WALK_NO_AD, false },
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

static struct options {
	const char *only_case; /* NULL: all */
	const char *only_walker; /* NULL, "lib" or "base" */
	size_t n;
	unsigned reps, warmup;
	size_t batch;
	int smoke;
} opt = { NULL, NULL, 0, 15, 1, 256, 0 };

volatile uint64_t bench_sink;

/* ---- timed loops: noinline so callgrind can toggle collection on them ---- */

__attribute__((noinline)) uint64_t loop_lib(const bench_env *env, const uint64_t *la, size_t n,
					    unsigned access, unsigned flags);
__attribute__((noinline)) uint64_t loop_batch(const bench_env *env, const uint64_t *la, size_t n,
					      unsigned access, unsigned flags, vmem_walk_result *res,
					      size_t chunk);
__attribute__((noinline)) uint64_t loop_base(const bench_env *env, const uint64_t *la, size_t n,
					     unsigned access, unsigned flags);
uint64_t loop_lib(const bench_env *env, const uint64_t *la, size_t n, unsigned access,
		  unsigned flags)
{
	uint64_t sum = 0;
	vmem_walk_result r;

	for (size_t i = 0; i < n; i++) {
		vmem_walk(env->mmu, env->gm, la[i], access, flags, &r);
		sum += r.gpa ^ r.status;
	}
	return sum;
}

uint64_t loop_batch(const bench_env *env, const uint64_t *la, size_t n, unsigned access,
		    unsigned flags, vmem_walk_result *res, size_t chunk)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i += chunk) {
		size_t m = n - i < chunk ? n - i : chunk;
		vmem_walk_batch(env->mmu, env->gm, la + i, m, access, flags, res);
		for (size_t j = 0; j < m; j++)
			sum += res[j].gpa ^ res[j].status;
	}
	return sum;
}

uint64_t loop_base(const bench_env *env, const uint64_t *la, size_t n, unsigned access,
		   unsigned flags)
{
	uint64_t sum = 0;
	bl_result r;

	for (size_t i = 0; i < n; i++) {
		bl_walk(&env->mem, &env->cpu, la[i], access, flags, &r);
		sum += r.gpa ^ r.status;
	}
	return sum;
}

/* ---- helpers ---- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static pt_space built[SP_COUNT];
static bench_env envs[SP_COUNT];

static const bench_env *get_env(enum space_id id)
{
	const struct space_def *d = &spaces[id];
	pt_space *s = &built[id];
	uint64_t la = d->levels == 5 ? LA_5L : LA_4L;
	uint64_t flags = PT_P | PT_RW | PT_US | PT_A | PT_D;

	if (s->buf)
		return &envs[id];
	if (pt_init(s, pt_pages_for(d->span, d->page_size, d->levels), d->levels)) {
		fprintf(stderr, "bench: out of memory building tables\n");
		exit(2);
	}
	pt_map(s, la, d->span, PT_DATA_GPA, d->page_size, flags, PT_P | PT_RW | PT_US | PT_A);
	if (env_init(&envs[id], s, s->buf, true, true))
		exit(2);
	return &envs[id];
}

static void gen_addresses(const bcase *c, uint64_t *la, size_t n)
{
	const struct space_def *d = &spaces[c->space];
	uint64_t base = d->levels == 5 ? LA_5L : LA_4L;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)c->space;

	for (size_t i = 0; i < n; i++) {
		if (c->pattern == PAT_RANDOM)
			la[i] = base + (rng_next(&rng) & (d->span - 1));
		else
			la[i] = base + ((i * 4096 + (i & 0xff8)) & (d->span - 1));
	}
}

/* Every timed address: libvmem (single or batched) and the baseline agree. */
static unsigned verify(const bcase *c, const bench_env *env, const uint64_t *la, size_t n,
		       vmem_walk_result *res)
{
	unsigned bad = 0;

	for (size_t i = 0; i < n && bad < 10; i += opt.batch) {
		size_t m = n - i < opt.batch ? n - i : opt.batch;
		vmem_err err;

		if (c->mode == MODE_BATCH) {
			err = vmem_walk_batch(env->mmu, env->gm, la + i, m, c->access, c->flags, res);
		} else {
			err = VMEM_OK;
			for (size_t j = 0; j < m && !err; j++)
				err = vmem_walk(env->mmu, env->gm, la[i + j], c->access, c->flags,
						&res[j]);
		}
		if (err) {
			fprintf(stderr, "%s: walk failed: %s\n", c->name, vmem_strerror(err));
			return bad + 1;
		}
		for (size_t j = 0; j < m; j++) {
			bl_result br;
			bl_walk(&env->mem, &env->cpu, la[i + j], c->access, c->flags, &br);
			if (br.status != BL_OK) {
				fprintf(stderr, "%s: baseline did not translate %#" PRIx64 "\n",
					c->name, la[i + j]);
				bad++;
			}
			if (!env_agree(la[i + j], c->access, c->flags, &res[j], &br))
				bad++;
		}
	}
	return bad;
}

typedef struct row {
	const bcase *c;
	double lib_ns, base_ns; /* medians over the passes */
	double ratio;           /* median over the pairs of lib / base */
	double ad_lib, ad_base; /* adset only: median of (as is) / (NO_AD) per rep */
	double l1_ns;           /* median over the reps of one dependent L1 load */
	double lib_l1;          /* median over the reps of libvmem's walk / that load */
	double cyc_ns;          /* median over the reps of one dependent add (a cycle) */
	double lib_cyc;         /* median over the reps of libvmem's walk / that add */
	int floor_kind;         /* 0 none, 1 loop_floor (batch), 2 loop_chain (single 4-level 4K) */
	double floor_ns[FLOOR_OPS_KINDS]; /* median of the floor with floor_ops[i] ALU operations */
	double floor_ratio;     /* median over the reps of libvmem / the floor with none */
} row;

static double time_once(int lib, const bcase *c, unsigned flags, const bench_env *env,
			const uint64_t *la, size_t n, vmem_walk_result *res)
{
	double t0 = now_ns();

	if (!lib)
		bench_sink += loop_base(env, la, n, c->access, flags);
	else if (c->mode == MODE_BATCH)
		bench_sink += loop_batch(env, la, n, c->access, flags, res, opt.batch);
	else
		bench_sink += loop_lib(env, la, n, c->access, flags);
	return (now_ns() - t0) / (double)n;
}

/* The passes of one repetition: libvmem and the baseline with the case's
 * flags, and for the A/D case both again with VMEM_WALK_NO_AD. */
enum { P_LIB, P_BASE, P_LIB_NOAD, P_BASE_NOAD, P_MAX };

static int run_case(const bcase *c, row *out)
{
	size_t n = opt.n ? opt.n : (opt.smoke ? 4096 : 1u << 18);
	uint64_t *la = malloc(n * sizeof(*la));
	vmem_walk_result *res = malloc(opt.batch * sizeof(*res));
	double *t[P_MAX], *tr = calloc(opt.reps, sizeof(double));
	double *ad_l = calloc(opt.reps, sizeof(double)), *ad_b = calloc(opt.reps, sizeof(double));
	double *l1 = calloc(opt.reps, sizeof(double)), *in_l1 = calloc(opt.reps, sizeof(double));
	double *cy = calloc(opt.reps, sizeof(double)), *in_cy = calloc(opt.reps, sizeof(double));
	const bench_env *env = get_env(c->space);
	int on[P_MAX];
	bool fail = !la || !res || !tr || !ad_l || !ad_b || !l1 || !in_l1 || !cy || !in_cy;

	on[P_LIB] = !opt.only_walker || !strcmp(opt.only_walker, "lib");
	on[P_BASE] = !opt.only_walker || !strcmp(opt.only_walker, "base");
	on[P_LIB_NOAD] = c->ad_pair && !opt.only_walker;
	on[P_BASE_NOAD] = c->ad_pair && !opt.only_walker;
	for (unsigned p = 0; p < P_MAX; p++) {
		t[p] = calloc(opt.reps, sizeof(double));
		fail |= !t[p];
	}
	if (fail) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	gen_addresses(c, la, n);
	unsigned bad = verify(c, env, la, n, res);
	/* The floor: batch cases (4K pages) read each walk's PDE and PTE
	 * (loop_floor), single walks of 4-level 4K cases the four entries
	 * (loop_chain); each also with floor_ops[] independent ALU operations. */
	const struct space_def *sd = &spaces[c->space];
	const pt_space *ps = &built[c->space];
	int fkind = !on[P_LIB] || sd->page_size != 4096 ? 0 : c->mode == MODE_BATCH ? 1 : sd->levels == 4 ? 2 : 0;
	const uint64_t **pde = fkind == 1 ? malloc(n * sizeof(*pde)) : NULL;
	double *fl[FLOOR_OPS_KINDS], *flr = calloc(opt.reps, sizeof(double));
	fail = !flr || (fkind == 1 && !pde); /* the buffers above were checked already */
	for (unsigned f = 0; f < FLOOR_OPS_KINDS; f++)
		fail |= !(fl[f] = calloc(opt.reps, sizeof(double)));
	if (fail) {
		fprintf(stderr, "bench: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; fkind && i < n; i++) {
		/* The PTE the floor finds from the entries above is the walk's. */
		const uint64_t *p1 = pt_entry(ps, la[i], 1), *p2 = pt_entry(ps, la[i], 2);
		const uint8_t *found = NULL;
		if (!p1) {
			/* no PTE: the chain below would follow a missing table */
		} else if (fkind == 1) {
			pde[i] = p2;
			found = ps->buf + (*p2 & PT_ADDR) + ((la[i] >> 9) & 0xff8);
		} else if (fkind == 2) {
			uint64_t e = ps->cr3;
			for (int sh = 39; sh >= 12; sh -= 9) {
				found = ps->buf + (e & PT_ADDR) + ((la[i] >> (sh - 3)) & 0xff8);
				e = sh > 12 ? *(const uint64_t *)(const void *)found : e;
			}
		}
		if (!p1 || (const uint8_t *)p1 != found) {
			fprintf(stderr, "%s: no PTE for %#" PRIx64 "\n", c->name, la[i]);
			exit(2);
		}
	}
	for (unsigned w = 0; w < opt.warmup; w++) {
		for (unsigned p = 0; p < P_MAX; p++)
			if (on[p])
				time_once(p % 2 == 0, c, p >= 2 ? VMEM_WALK_NO_AD : c->flags, env, la, n, res);
	}
	/* Each repetition runs every pass once, starting at a different one, so
	 * slow drifts of the machine (other tenants, clocks) cancel in the
	 * per-repetition ratios, whose median is reported. */
	for (unsigned r = 0; r < opt.reps; r++) {
		for (unsigned k = 0; k < P_MAX; k++) {
			unsigned p = (r + k) % P_MAX;
			if (on[p])
				t[p][r] = time_once(p % 2 == 0, c, p >= 2 ? VMEM_WALK_NO_AD : c->flags,
						    env, la, n, res);
		}
		for (unsigned f = 0; fkind && f < FLOOR_OPS_KINDS; f++) {
			if (!floor_ops_ok(f))
				continue;
			double t0 = now_ns();
			bench_sink += fkind == 1 ? loop_floor(f, ps->buf, pde, la, n)
						 : loop_chain(f, ps->buf, ps->cr3, la, n);
			fl[f][r] = (now_ns() - t0) / (double)n;
		}
		flr[r] = fkind ? t[P_LIB][r] / fl[0][r] : 0;
		/* The machine's units in the same repetition: one dependent L1
		 * load, one dependent add (a cycle). */
		l1[r] = calib_l1_ns(1u << 20);
		in_l1[r] = t[P_LIB][r] / l1[r];
		cy[r] = calib_cycle_ns(1u << 22);
		in_cy[r] = t[P_LIB][r] / cy[r];
		tr[r] = t[P_BASE][r] > 0 ? t[P_LIB][r] / t[P_BASE][r] : 0;
		ad_l[r] = t[P_LIB_NOAD][r] > 0 ? t[P_LIB][r] / t[P_LIB_NOAD][r] : 0;
		ad_b[r] = t[P_BASE_NOAD][r] > 0 ? t[P_BASE][r] / t[P_BASE_NOAD][r] : 0;
	}
	out->c = c;
	out->ratio = median(tr, opt.reps);
	out->ad_lib = median(ad_l, opt.reps);
	out->ad_base = median(ad_b, opt.reps);
	out->lib_ns = median(t[P_LIB], opt.reps);
	out->base_ns = median(t[P_BASE], opt.reps);
	out->l1_ns = median(l1, opt.reps);
	out->lib_l1 = median(in_l1, opt.reps);
	out->cyc_ns = median(cy, opt.reps);
	out->lib_cyc = median(in_cy, opt.reps);
	out->floor_kind = fkind;
	for (unsigned f = 0; f < FLOOR_OPS_KINDS; f++) {
		out->floor_ns[f] = fkind && floor_ops_ok(f) ? median(fl[f], opt.reps) : 0;
		free(fl[f]);
	}
	out->floor_ratio = fkind ? median(flr, opt.reps) : 0;
	free(flr);
	free(pde);
	free(in_cy);
	free(cy);
	for (unsigned p = 0; p < P_MAX; p++)
		free(t[p]);
	free(in_l1);
	free(l1);
	free(ad_b);
	free(ad_l);
	free(tr);
	free(res);
	free(la);
	return bad ? -1 : 0;
}

static void print_table(const row *rows, unsigned n)
{
	calib_machine_print();
	printf("| case | libvmem ns/walk | libvmem M walks/s | baseline ns/walk | baseline M walks/s "
	       "| libvmem / baseline time (median of pairs) | L1 load ns | libvmem walk in L1 loads "
	       "| libvmem cycles/walk |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (unsigned i = 0; i < n; i++) {
		const row *r = &rows[i];
		printf("| %s `%s` | %.2f | %.1f | %.2f | %.1f | %.2f | %.2f | %.2f | %.1f |\n", r->c->desc,
		       r->c->name, r->lib_ns, r->lib_ns > 0 ? 1e3 / r->lib_ns : 0.0, r->base_ns,
		       r->base_ns > 0 ? 1e3 / r->base_ns : 0.0, r->ratio, r->l1_ns, r->lib_l1, r->lib_cyc);
	}
	/* Against the memory floors, timed in the same repetitions. */
	for (unsigned i = 0; i < n; i++) {
		const row *r = &rows[i];
		if (!r->floor_kind)
			continue;
		if (r->floor_kind == 1)
			printf("\nmemory floor of `%s` (its walks' PDE and PTE loads alone, each PTE found from its PDE "
			       "and prefetched %d addresses ahead)", r->c->name, FLOOR_AHEAD);
		else
			printf("\nfloor of `%s` (its walks' four dependent entry loads alone, each entry found from the "
			       "one above)", r->c->name);
		printf(": %.2f ns = %.1f M/s; libvmem %.2fx the floor (median of paired passes)\n", r->floor_ns[0],
		       1e3 / r->floor_ns[0], r->floor_ratio);
		for (unsigned f = 1; f < FLOOR_OPS_KINDS; f++)
			if (r->floor_ns[f] > 0)
				printf("  the floor + %u independent ALU operations a walk: %.2f ns = %.1f M/s "
				       "(%.1f cycles)\n", floor_ops[f], r->floor_ns[f], 1e3 / r->floor_ns[f],
				       r->cyc_ns > 0 ? r->floor_ns[f] / r->cyc_ns : 0.0);
	}
	/* A/D already set against side-effect-free, timed in the same repetitions. */
	for (unsigned i = 0; i < n; i++) {
		if (rows[i].ad_lib > 0)
			printf("\nA/D already set / VMEM_WALK_NO_AD (median of paired passes): "
			       "libvmem %.2fx, baseline %.2fx\n", rows[i].ad_lib, rows[i].ad_base);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_walk [--case NAME] [--n N] [--reps R] [--warmup W] [--batch B]\n"
		"                  [--only lib|base] [--smoke] [--list] [--calib]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--smoke")) {
			opt.smoke = 1;
		} else if (!strcmp(a, "--calib")) {
			calib_print();
			return 0;
		} else if (!strcmp(a, "--list")) {
			for (unsigned k = 0; k < N_CASES; k++)
				printf("%s\t%s\n", cases[k].name, cases[k].desc);
			return 0;
		} else if (v && !strcmp(a, "--case")) {
			opt.only_case = v, i++;
		} else if (v && !strcmp(a, "--only")) {
			opt.only_walker = v, i++;
		} else if (v && !strcmp(a, "--n")) {
			opt.n = strtoull(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--reps")) {
			opt.reps = (unsigned)strtoul(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--warmup")) {
			opt.warmup = (unsigned)strtoul(v, NULL, 0), i++;
		} else if (v && !strcmp(a, "--batch")) {
			opt.batch = strtoull(v, NULL, 0), i++;
		} else {
			usage();
		}
	}
	if (opt.smoke && !opt.n)
		opt.reps = 1, opt.warmup = 0;
	if (!opt.reps || !opt.batch ||
	    (opt.only_walker && strcmp(opt.only_walker, "lib") && strcmp(opt.only_walker, "base")))
		usage();

	row rows[N_CASES];
	unsigned nrows = 0, failed = 0;
	for (unsigned k = 0; k < N_CASES; k++) {
		if (opt.only_case && strcmp(opt.only_case, cases[k].name))
			continue;
		if (run_case(&cases[k], &rows[nrows]))
			failed++;
		nrows++;
	}
	if (!nrows) {
		fprintf(stderr, "bench: no case named %s (try --list)\n", opt.only_case);
		return 2;
	}
	print_table(rows, nrows);
	if (opt.smoke && !opt.only_case)
		failed += faults_run(20000, 0x1234567ull);
	for (unsigned s = 0; s < SP_COUNT; s++) {
		if (built[s].buf) {
			env_fini(&envs[s]);
			pt_free(&built[s]);
		}
	}
	if (failed) {
		fprintf(stderr, "bench: libvmem and the baseline disagree\n");
		return 1;
	}
	if (opt.smoke)
		printf("\nsmoke: libvmem and the baseline agree on every answer\n");
	return 0;
}
