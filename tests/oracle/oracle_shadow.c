/* oracle_shadow.c: KVM's shadow MMU as the oracle for libvmem's shadow engine: random op sequences run on both and compared. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/walk.h>

#include "kvm_seq.h"

#define SKIP_CODE 77
#define DEFAULT_SEED 0x6b766d2d73686477ull /* "kvm-shdw" */
#define SHOW_MAX 5      /* failing sequences printed in full on stdout */
#define CHUNK 200       /* ops per VM run (a fresh VM: an empty TLB, which is allowed) */
#define MEM_SHOW 16

typedef struct opts {
	unsigned long count;
	uint64_t seed, one;
	bool have_one, no_shadow, no_audit, verbose, no_inval, bisect;
	unsigned ops;
	const char *report;
} opts;

typedef struct totals {
	unsigned long ops, access, ok, pf_np, pf_rsvd, pf_prot, write64, invlpg, cr3;
	unsigned long agree_shadow, agree_ref, op_diff_shadow, op_diff_ref;
	ksq_shadow_stats sh;
} totals;

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--count N] [--seed S] [--ops N] [--one SEED] [--report FILE]\n"
		"          [--no-shadow] [--no-audit] [--no-invalidate] [--verbose]\n"
		"  Runs N random sequences of paging ops (about --ops each) in a KVM guest, on\n"
		"  libvmem's shadow engine and on a plain vmem_walk reference, and compares them.\n"
		"  --one SEED   run the single sequence with that seed (as printed) and show it\n"
		"  --no-shadow  compare KVM with the plain reference only\n"
		"  --bisect     with --one: the shortest prefix whose final memory differs\n"
		"               between KVM and the reference (one fresh VM per prefix)\n"
		"  --no-invalidate  break the invalidation discipline (a sensitivity check:\n"
		"               outcomes then depend on what each side caches, failures expected)\n", argv0);
}

static int parse(int argc, char **argv, opts *o)
{
	memset(o, 0, sizeof(*o));
	o->count = 300;
	o->seed = DEFAULT_SEED;
	o->ops = 40;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--count") && v) {
			o->count = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seed") && v) {
			o->seed = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--one") && v) {
			o->one = strtoull(v, NULL, 0);
			o->have_one = true;
			i++;
		} else if (!strcmp(a, "--ops") && v) {
			o->ops = (unsigned)strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--report") && v) {
			o->report = v;
			i++;
		} else if (!strcmp(a, "--no-shadow")) {
			o->no_shadow = true;
		} else if (!strcmp(a, "--no-audit")) {
			o->no_audit = true;
		} else if (!strcmp(a, "--bisect")) {
			o->bisect = true;
		} else if (!strcmp(a, "--no-invalidate")) {
			o->no_inval = true;
		} else if (!strcmp(a, "--verbose")) {
			o->verbose = true;
		} else {
			usage(argv[0]);
			return -1;
		}
	}
	if (o->ops < 1 || o->ops > KSQ_MAX_OPS - 8) {
		fprintf(stderr, "--ops must be 1..%u\n", KSQ_MAX_OPS - 8);
		return -1;
	}
	return 0;
}

static bool same(const ksq_out *a, const ksq_out *b)
{
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case KSQ_OUT_OK:
		return a->value == b->value;
	case KSQ_OUT_PF:
		return a->ec == b->ec && a->cr2 == b->cr2;
	case KSQ_OUT_EXC:
		return a->vector == b->vector && a->ec == b->ec;
	default:
		return false; /* ERR never agrees */
	}
}

static void fmt_out(char *s, size_t n, const ksq_out *o, unsigned type)
{
	switch (o->kind) {
	case KSQ_OUT_OK:
		if (type == KSQ_READ || type == KSQ_UREAD)
			snprintf(s, n, "ok, read 0x%016" PRIx64, o->value);
		else
			snprintf(s, n, "ok");
		break;
	case KSQ_OUT_PF: {
		char bits[64];
		snprintf(bits, sizeof(bits), "%s%s%s%s%s", o->ec & VMEM_PFEC_P ? " P" : " NP",
			 o->ec & VMEM_PFEC_W ? " W" : " R", o->ec & VMEM_PFEC_U ? " U" : " S",
			 o->ec & VMEM_PFEC_RSVD ? " RSVD" : "", o->ec & VMEM_PFEC_I ? " I" : "");
		snprintf(s, n, "#PF ec 0x%x (%s) cr2 0x%" PRIx64, o->ec, bits + 1, o->cr2);
		break;
	}
	case KSQ_OUT_EXC:
		snprintf(s, n, "exception %u ec 0x%x: %s", o->vector, o->ec, o->note);
		break;
	case KSQ_OUT_ERR:
		snprintf(s, n, "ERROR: %s", o->note);
		break;
	default:
		snprintf(s, n, "none");
	}
}

static void count_kvm(totals *t, const ksq_seq *q, const ksq_out *k)
{
	for (unsigned i = 0; i < q->nops; i++) {
		unsigned ty = q->op[i].type;
		t->ops++;
		t->write64 += ty == KSQ_WRITE64;
		t->invlpg += ty == KSQ_INVLPG;
		t->cr3 += ty == KSQ_MOV_CR3;
		if (!ksq_op_is_access(ty))
			continue;
		t->access++;
		if (k[i].kind == KSQ_OUT_OK)
			t->ok++;
		else if (k[i].kind == KSQ_OUT_PF)
			*(k[i].ec & VMEM_PFEC_RSVD ? &t->pf_rsvd : k[i].ec & VMEM_PFEC_P ? &t->pf_prot : &t->pf_np) += 1;
	}
}

static uint64_t word(const unsigned char *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static unsigned mem_diffs(const unsigned char *a, const unsigned char *b)
{
	unsigned n = 0;
	for (size_t off = 0; off < KSQ_POOL_SIZE; off += 4096)
		if (memcmp(a + off, b + off, 4096))
			for (size_t w = off; w < off + 4096; w += 8)
				n += word(a, w) != word(b, w);
	return n;
}

typedef struct run {
	ksq_seq q;
	unsigned char *kpool, *rpool, *spool;
	ksq_out k[KSQ_MAX_OPS], r[KSQ_MAX_OPS], s[KSQ_MAX_OPS];
	ksq_shadow_opts so;
	ksq_shadow_stats sst;
	bool shadow_ran;
	char shadow_why[256];
	unsigned kdiff_mem, rdiff_mem;
	unsigned first_sdiff, first_rdiff; /* op index, or nops */
	bool harness_fail;
	char why[512];
} run;

static void report(FILE *f, unsigned long idx, const run *x)
{
	const ksq_seq *q = &x->q;
	fprintf(f, "DISAGREEMENT sequence %lu: seed 0x%016" PRIx64 " (rerun: oracle_shadow --one 0x%" PRIx64
		   " --ops %u)\n", idx, q->seed, q->seed, q->nops);
	fprintf(f, "  cr0 0x%" PRIx64 " (WP %d) cr4 0x%" PRIx64 " efer 0x%" PRIx64 " (NXE %d) cr3 0x%" PRIx64
		   ", pool 0x%" PRIx64 "+4M, MAXPHYADDR 48, no 1G pages\n",
		q->cr0, !!(q->cr0 & (1ull << 16)), q->cr4, q->efer, !!(q->efer & 0x800), q->cr3, q->pool);
	if (x->shadow_ran)
		fprintf(f, "  shadow engine: max_pages %u, max_roots %u\n", x->so.max_pages, x->so.max_roots);
	else if (x->shadow_why[0])
		fprintf(f, "  shadow engine did not run: %s\n", x->shadow_why);
	if (x->sst.audits_failed)
		fprintf(f, "  AUDIT FAILED %lu times, first after op %ld: %s\n", x->sst.audits_failed,
			x->sst.first_audit_op, x->sst.audit_why);
	fprintf(f, "  roots:");
	for (unsigned i = 0; i < q->nroots; i++)
		fprintf(f, " 0x%" PRIx64, q->pool + (uint64_t)4096 * q->root[i]);
	fprintf(f, "\n  tables:");
	for (unsigned i = 0; i < q->ntables; i++)
		fprintf(f, " 0x%" PRIx64, q->pool + (uint64_t)4096 * q->table[i]);
	fprintf(f, "\n");
	for (unsigned i = 0; i < q->nops; i++) {
		const ksq_op *op = &q->op[i];
		char ks[160], rs[160], ss[160];
		fmt_out(ks, sizeof(ks), &x->k[i], op->type);
		fmt_out(rs, sizeof(rs), &x->r[i], op->type);
		fmt_out(ss, sizeof(ss), &x->s[i], op->type);
		bool sd = x->shadow_ran && !same(&x->k[i], &x->s[i]);
		bool rd = !same(&x->k[i], &x->r[i]);
		fprintf(f, "  %c%3u %-7s 0x%016" PRIx64, sd ? '!' : rd ? '?' : ' ', i,
			ksq_op_name(op->type), op->a);
		if (op->type == KSQ_WRITE64)
			fprintf(f, " <- 0x%016" PRIx64 " (gpa 0x%" PRIx64 ")", op->b, op->gpa);
		if (x->r[i].kind == KSQ_OUT_OK && ksq_op_is_access(op->type))
			fprintf(f, "  [reference: gpa 0x%" PRIx64 ", %s page, W%d U%d X%d]", x->r[i].gpa,
				x->r[i].size == 0x1000 ? "4K" : "2M", !!(x->r[i].perms & VMEM_PERM_W),
				!!(x->r[i].perms & VMEM_PERM_U), !!(x->r[i].perms & VMEM_PERM_X));
		if (x->r[i].npath && ksq_op_is_access(op->type)) {
			fprintf(f, "  [walk:");
			for (unsigned k = 0; k < x->r[i].npath; k++)
				fprintf(f, " 0x%" PRIx64, x->r[i].path[k]);
			fprintf(f, "]");
		}
		fprintf(f, "\n        KVM: %s\n", ks);
		if (sd)
			fprintf(f, "     shadow: %s\n", ss);
		if (rd)
			fprintf(f, "  reference: %s\n", rs);
	}
	const unsigned char *other[2] = { x->shadow_ran ? x->spool : NULL, x->rpool };
	const char *name[2] = { "shadow", "reference" };
	for (unsigned w = 0; w < 2; w++) {
		if (!other[w] || !memcmp(x->kpool, other[w], KSQ_POOL_SIZE))
			continue;
		fprintf(f, "  final memory: KVM vs %s differ in %u words:\n", name[w],
			w ? x->rdiff_mem : x->kdiff_mem);
		unsigned shown = 0;
		for (size_t off = 0; off < KSQ_POOL_SIZE && shown < MEM_SHOW; off += 8)
			if (word(x->kpool, off) != word(other[w], off)) {
				fprintf(f, "    gpa 0x%" PRIx64 ": initial 0x%016" PRIx64 ", KVM 0x%016" PRIx64
					   ", %s 0x%016" PRIx64 "\n", q->pool + off, word(q->init, off),
					word(x->kpool, off), name[w], word(other[w], off));
				shown++;
			}
	}
	fprintf(f, "  (! shadow differs from KVM, ? plain reference differs from KVM)\n\n");
}

/* A sequence KVM could not run: the ops and what the reference says. */
static void show_ops(FILE *f, const run *x)
{
	const ksq_seq *q = &x->q;
	fprintf(f, "  cr0 0x%" PRIx64 " cr4 0x%" PRIx64 " efer 0x%" PRIx64 " cr3 0x%" PRIx64
		   ", pool 0x%" PRIx64 "+4M\n", q->cr0, q->cr4, q->efer, q->cr3, q->pool);
	for (unsigned i = 0; i < q->nops; i++) {
		const ksq_op *op = &q->op[i];
		char rs[160];
		fmt_out(rs, sizeof(rs), &x->r[i], op->type);
		fprintf(f, "  %3u %-7s 0x%016" PRIx64 " b 0x%016" PRIx64 "  reference: %s", i,
			ksq_op_name(op->type), op->a, op->b, rs);
		if (x->r[i].kind == KSQ_OUT_OK && ksq_op_is_access(op->type))
			fprintf(f, " (gpa 0x%" PRIx64 ", page 0x%" PRIx64 ", perms W%d U%d X%d)", x->r[i].gpa,
				x->r[i].size, !!(x->r[i].perms & VMEM_PERM_W), !!(x->r[i].perms & VMEM_PERM_U),
				!!(x->r[i].perms & VMEM_PERM_X));
		fputc('\n', f);
	}
	fputc('\n', f);
}

/* Run one sequence on every side; true if everything agrees. */
static bool run_one(run *x, uint64_t seed, const opts *o, totals *t)
{
	ksq_seq *q = &x->q;
	uint64_t s = seed;
	unsigned nops = o->ops / 2 + (unsigned)(ksq_rand(&s) % (o->ops + 1));
	if (o->have_one)
		nops = o->ops; /* as the report's rerun line says */
	if (nops > KSQ_MAX_OPS - 8)
		nops = KSQ_MAX_OPS - 8;
	x->harness_fail = false;
	x->why[0] = x->shadow_why[0] = 0;
	x->shadow_ran = false;
	memset(&x->sst, 0, sizeof(x->sst));
	if (ksq_seq_gen(q, seed, nops, o->no_inval ? KSQ_GEN_NO_INVAL : 0) < 0) {
		snprintf(x->why, sizeof(x->why), "out of memory");
		x->harness_fail = true;
		return false;
	}
	memcpy(x->kpool, q->init, KSQ_POOL_SIZE);
	memcpy(x->rpool, q->init, KSQ_POOL_SIZE);
	memcpy(x->spool, q->init, KSQ_POOL_SIZE);
	if (ksq_ref_run(q, x->rpool, x->r, x->why, sizeof(x->why)) < 0) {
		x->harness_fail = true;
		return false;
	}
	memset(x->k, 0, sizeof(x->k));
	memset(x->s, 0, sizeof(x->s));
	for (unsigned first = 0; first < q->nops; first += CHUNK) {
		unsigned n = q->nops - first < CHUNK ? q->nops - first : CHUNK;
		if (ksq_kvm_run(q, x->kpool, first, n, x->k + first, x->why, sizeof(x->why)) < 0) {
			x->harness_fail = true;
			return false;
		}
	}
	for (unsigned i = 0; i < q->nops; i++)
		if (x->k[i].kind == KSQ_OUT_EXC || x->k[i].kind == KSQ_OUT_ERR) {
			char ks[160];
			fmt_out(ks, sizeof(ks), &x->k[i], q->op[i].type);
			snprintf(x->why, sizeof(x->why), "KVM op %u (%s 0x%" PRIx64 "): %s", i,
				 ksq_op_name(q->op[i].type), q->op[i].a, ks);
			x->harness_fail = true;
		}
	count_kvm(t, q, x->k);
	if (!o->no_shadow && ksq_shadow_available()) {
		static const unsigned pages[] = { 8, 10, 16, 24, 64, 512 };
		x->so.max_pages = pages[ksq_rand(&s) % 6];
		x->so.max_roots = 1 + (unsigned)(ksq_rand(&s) % 4);
		x->so.audit = !o->no_audit;
		if (ksq_shadow_run(q, &x->so, x->spool, x->s, &x->sst, x->shadow_why,
				   sizeof(x->shadow_why)) == 0)
			x->shadow_ran = true;
		t->sh.faults += x->sst.faults;
		t->sh.fixed += x->sst.fixed;
		t->sh.inject += x->sst.inject;
		t->sh.emulate_pt += x->sst.emulate_pt;
		t->sh.emulate_wp0 += x->sst.emulate_wp0;
		t->sh.other += x->sst.other;
		t->sh.audits_failed += x->sst.audits_failed;
	}
	bool ok = !x->harness_fail;
	x->first_sdiff = x->first_rdiff = q->nops;
	for (unsigned i = 0; i < q->nops; i++) {
		bool rs = same(&x->k[i], &x->r[i]);
		t->agree_ref += rs;
		t->op_diff_ref += !rs;
		if (!rs && x->first_rdiff == q->nops)
			x->first_rdiff = i;
		if (x->shadow_ran) {
			bool ss = same(&x->k[i], &x->s[i]);
			t->agree_shadow += ss;
			t->op_diff_shadow += !ss;
			if (!ss && x->first_sdiff == q->nops)
				x->first_sdiff = i;
			ok &= ss;
		}
		ok &= rs;
	}
	x->rdiff_mem = mem_diffs(x->kpool, x->rpool);
	x->kdiff_mem = x->shadow_ran ? mem_diffs(x->kpool, x->spool) : 0;
	ok &= !x->rdiff_mem && !x->kdiff_mem;
	if (!o->no_shadow && ksq_shadow_available() && !x->shadow_ran)
		ok = false; /* the engine refused to run the sequence */
	ok &= !x->sst.audits_failed;
	return ok;
}

/* The shortest prefix of the sequence after which KVM's memory differs from
 * the reference's (each prefix run in a fresh VM from the initial memory). */
static void bisect(run *x, uint64_t seed, const opts *o)
{
	ksq_seq *q = &x->q;
	if (ksq_seq_gen(q, seed, o->ops, o->no_inval ? KSQ_GEN_NO_INVAL : 0) < 0)
		return;
	unsigned total = q->nops;
	char why[512];
	for (unsigned k = 1; k <= total; k++) {
		q->nops = k;
		memcpy(x->kpool, q->init, KSQ_POOL_SIZE);
		memcpy(x->rpool, q->init, KSQ_POOL_SIZE);
		if (ksq_kvm_run(q, x->kpool, 0, k, x->k, why, sizeof(why)) < 0 ||
		    ksq_ref_run(q, x->rpool, x->r, why, sizeof(why)) < 0) {
			printf("bisect: prefix %u: %s\n", k, why);
			break;
		}
		if (memcmp(x->kpool, x->rpool, KSQ_POOL_SIZE)) {
			printf("bisect: memory first differs after op %u (%s 0x%" PRIx64 "):\n", k - 1,
			       ksq_op_name(q->op[k - 1].type), q->op[k - 1].a);
			for (size_t off = 0; off < KSQ_POOL_SIZE; off += 8)
				if (word(x->kpool, off) != word(x->rpool, off))
					printf("  gpa 0x%" PRIx64 ": KVM 0x%016" PRIx64 ", reference 0x%016" PRIx64 "\n",
					       q->pool + off, word(x->kpool, off), word(x->rpool, off));
			break;
		}
	}
	q->nops = total;
	ksq_seq_free(q);
}

int main(int argc, char **argv)
{
	opts o;
	char why[512];
	if (parse(argc, argv, &o) < 0)
		return 2;
	if (!ksq_kvm_usable(why, sizeof(why))) {
		printf("*** SKIPPED: KVM cannot run a guest here (%s); the KVM shadow oracle did not run ***\n", why);
		return SKIP_CODE;
	}
	bool shadow = !o.no_shadow && ksq_shadow_available();
	if (!o.no_shadow && !shadow)
		printf("*** NOTE: libvmem has no shadow engine in this build: KVM is compared with the plain reference only ***\n");
	FILE *rep = NULL;
	if (o.report && !(rep = fopen(o.report, "w"))) {
		perror(o.report);
		return 2;
	}
	run *x = calloc(1, sizeof(*x));
	if (!x || !(x->kpool = aligned_alloc(4096, KSQ_POOL_SIZE)) ||
	    !(x->rpool = aligned_alloc(4096, KSQ_POOL_SIZE)) ||
	    !(x->spool = aligned_alloc(4096, KSQ_POOL_SIZE))) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	if (o.bisect && o.have_one) {
		bisect(x, o.one, &o);
		free(x->kpool);
		free(x->rpool);
		free(x->spool);
		free(x);
		return 0;
	}
	totals t;
	memset(&t, 0, sizeof(t));
	unsigned long passed = 0, failed = 0, harness = 0, shown = 0;
	uint64_t master = o.seed;
	unsigned long count = o.have_one ? 1 : o.count;
	for (unsigned long i = 0; i < count; i++) {
		uint64_t seed = o.have_one ? o.one : ksq_rand(&master);
		bool ok = run_one(x, seed, &o, &t);
		if (ok) {
			passed++;
			if (o.verbose || o.have_one)
				report(stdout, i, x);
		} else {
			failed++;
			if (x->harness_fail) {
				harness++;
				printf("HARNESS FAILURE sequence %lu (seed 0x%016" PRIx64 "): %s\n", i, seed, x->why);
				if (rep)
					fprintf(rep, "HARNESS FAILURE sequence %lu (seed 0x%016" PRIx64 "): %s\n",
						i, seed, x->why);
			}
			if (x->harness_fail) {
				if (shown++ < SHOW_MAX || o.have_one)
					show_ops(stdout, x);
				if (rep)
					show_ops(rep, x);
			} else {
				if (shown++ < SHOW_MAX || o.have_one)
					report(stdout, i, x);
				if (rep)
					report(rep, i, x);
			}
		}
		ksq_seq_free(&x->q);
	}
	printf("KVM outcomes: %lu ops (%lu WRITE64, %lu INVLPG, %lu MOV CR3, %lu accesses: %lu ok, "
	       "%lu #PF not-present, %lu #PF reserved-bit, %lu #PF protection)\n",
	       t.ops, t.write64, t.invlpg, t.cr3, t.access, t.ok, t.pf_np, t.pf_rsvd, t.pf_prot);
	printf("ops agreeing with KVM: plain reference %lu of %lu", t.agree_ref, t.agree_ref + t.op_diff_ref);
	if (shadow)
		printf(", shadow engine %lu of %lu (shadow faults %lu: %lu fixed, %lu injected #PF, "
		       "%lu PT-write emulations, %lu WP=0 emulations, %lu other; %lu audit failures)",
		       t.agree_shadow, t.agree_shadow + t.op_diff_shadow, t.sh.faults, t.sh.fixed,
		       t.sh.inject, t.sh.emulate_pt, t.sh.emulate_wp0, t.sh.other, t.sh.audits_failed);
	printf("\n");
	if (shown > SHOW_MAX && !o.have_one)
		printf("(%lu more failing sequences not shown%s%s)\n", shown - SHOW_MAX,
		       rep ? "; all are in " : "", rep ? o.report : "");
	if (harness)
		printf("%lu harness failures (KVM gave no usable answer)\n", harness);
	if (rep) {
		fprintf(rep, "KVM shadow oracle, seed 0x%" PRIx64 ", %lu sequences: %lu passed, %lu failed "
			"(%lu harness failures)%s\n", o.seed, count, passed, failed, harness,
			shadow ? "" : " [no shadow engine: reference only]");
		fclose(rep);
	}
	printf("%lu passed, %lu failed\n", passed, failed);
	free(x->kpool);
	free(x->rpool);
	free(x->spool);
	free(x);
	return failed ? 1 : 0;
}
