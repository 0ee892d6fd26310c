/* oracle_walk.c: the KVM oracle: random 4-level walks answered by KVM's MMU, checked against vmem_walk. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

#include "kvm_answer.h"
#include "kvm_case.h"
#include "kvm_emit.h"
#include "kvm_vm.h"

#define SKIP_CODE 77
#define DEFAULT_SEED 0x6b766d2d77616c6bull /* "kvm-walk" */
#define SHOW_MAX 20 /* disagreements printed in full on stdout */

typedef struct opts {
	unsigned long count;
	uint64_t seed;
	const char *emit, *report;
} opts;

/* The library's answer, in KVM's terms. */
typedef struct lib_answer {
	vmem_err err;
	vmem_walk_result res;
	kvm_changes chg;
} lib_answer;

typedef struct stats {
	unsigned long ok4k, ok2m, pf, rsvd, np, prot;
	unsigned long by_level[5][6]; /* [level][kind] of the entry that ended the walk */
} stats;

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [--count N] [--seed S] [--emit FILE] [--report FILE]\n"
		"  Runs N random 4-level walks on KVM and on vmem_walk and compares them.\n"
		"  --emit FILE   also write each KVM-answered case as a test vector (JSON lines)\n"
		"  --report FILE write every disagreement there (default: none)\n", argv0);
}

static int parse(int argc, char **argv, opts *o)
{
	o->count = 3000;
	o->seed = DEFAULT_SEED;
	o->emit = o->report = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--count") && v) {
			o->count = strtoul(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--seed") && v) {
			o->seed = strtoull(v, NULL, 0);
			i++;
		} else if (!strcmp(a, "--emit") && v) {
			o->emit = v;
			i++;
		} else if (!strcmp(a, "--report") && v) {
			o->report = v;
			i++;
		} else {
			usage(argv[0]);
			return -1;
		}
	}
	return 0;
}

static unsigned lib_access(const kvm_case *c)
{
	unsigned acc = c->type == KVM_ACC_WRITE ? VMEM_ACC_WRITE :
		       c->type == KVM_ACC_FETCH ? VMEM_ACC_FETCH : VMEM_ACC_READ;
	return acc | (c->cpl == 3 ? VMEM_ACC_USER : 0);
}

/* Walk the case on libvmem, over copies of the pages as they were before KVM ran. */
static void lib_walk(const kvm_case *c, unsigned char *const orig[], unsigned char *libbuf,
		     lib_answer *la)
{
	vmem_gmem *gm = NULL;
	vmem_mmu *mmu = NULL;
	unsigned char *copy[KVM_CASE_MAX_PAGES];

	memset(la, 0, sizeof(*la));
	for (unsigned i = 0; i < c->npages; i++) {
		copy[i] = libbuf + (size_t)i * 4096;
		memcpy(copy[i], orig[i], 4096);
	}
	la->err = vmem_gmem_new(NULL, &gm);
	for (unsigned i = 0; !la->err && i < c->npages; i++)
		la->err = vmem_gmem_add_ram(gm, c->page_gpa[i], 4096, copy[i], 0);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = c->cr0;
	r.cr3 = c->cr3;
	r.cr4 = c->cr4;
	r.efer = c->efer;
	r.maxphyaddr = KVM_MAXPHYADDR;
	r.gbpages = false;
	if (!la->err)
		la->err = vmem_mmu_new(NULL, &r, &mmu);
	if (!la->err)
		la->err = vmem_walk(mmu, gm, c->la, lib_access(c), 0, &la->res);
	if (!la->err)
		kvm_diff_pages(c, orig, copy, &la->chg);
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
}

static bool same_changes(const kvm_changes *a, const kvm_changes *b)
{
	if (a->n != b->n || a->overflow || b->overflow)
		return false;
	for (unsigned i = 0; i < a->n; i++) /* both in page order, ascending offsets */
		if (a->w[i].gpa != b->w[i].gpa || a->w[i].after != b->w[i].after)
			return false;
	return true;
}

/* Empty string if the library agrees with KVM, else what differs. */
static void compare(const kvm_case *c, const kvm_answer *k, const lib_answer *l,
		    char *diff, size_t n)
{
	diff[0] = 0;
	if (l->err) {
		snprintf(diff, n, "library call failed: %s", vmem_strerror(l->err));
		return;
	}
	const vmem_walk_result *r = &l->res;
	if (k->ok) {
		if (r->status != VMEM_WALK_OK)
			snprintf(diff, n, "status: KVM ok, library %s",
				 r->status == VMEM_WALK_PF ? "page fault" :
				 r->status == VMEM_WALK_GP ? "#GP" : "bad gpa");
		else if (r->gpa != c->gpa)
			snprintf(diff, n, "gpa: KVM 0x%" PRIx64 ", library 0x%" PRIx64, c->gpa, r->gpa);
		else if (r->page_size != c->page_size)
			snprintf(diff, n, "page size: tables 0x%" PRIx64 ", library 0x%" PRIx64,
				 c->page_size, r->page_size);
	} else {
		if (r->status != VMEM_WALK_PF)
			snprintf(diff, n, "status: KVM page fault, library %s",
				 r->status == VMEM_WALK_OK ? "ok" :
				 r->status == VMEM_WALK_GP ? "#GP" : "bad gpa");
		else if (r->error_code != k->error_code)
			snprintf(diff, n, "error code: KVM 0x%x, library 0x%x", k->error_code,
				 r->error_code);
	}
	if (!diff[0] && !same_changes(&k->chg, &l->chg))
		snprintf(diff, n, "changed memory words differ");
}

static void print_changes(FILE *f, const char *who, const kvm_changes *ch)
{
	fprintf(f, "    %s changed %u word%s%s", who, ch->n, ch->n == 1 ? "" : "s",
		ch->overflow ? " (and more)" : "");
	for (unsigned i = 0; i < ch->n; i++)
		fprintf(f, "%s 0x%" PRIx64 ": 0x%" PRIx64 " -> 0x%" PRIx64, i ? "," : ":",
			ch->w[i].gpa, ch->w[i].before, ch->w[i].after);
	fputc('\n', f);
}

static void report(FILE *f, unsigned long idx, uint64_t seed, const kvm_case *c,
		   const kvm_answer *k, const lib_answer *l, const char *diff)
{
	fprintf(f, "DISAGREEMENT case %lu (seed 0x%" PRIx64 "): %s\n", idx, seed, diff);
	fprintf(f, "    cpu: cr0 0x%" PRIx64 " cr3 0x%" PRIx64 " cr4 0x%" PRIx64 " efer 0x%" PRIx64
		   " (WP %d, NXE %d), maxphyaddr %d, no 1G pages\n",
		c->cr0, c->cr3, c->cr4, c->efer, !!(c->cr0 & VMEM_CR0_WP),
		!!(c->efer & VMEM_EFER_NXE), KVM_MAXPHYADDR);
	fprintf(f, "    access: %s at CPL %u of 0x%" PRIx64 "\n", kvm_acc_name(c->type), c->cpl, c->la);
	for (unsigned i = 0; i < c->npath; i++)
		fprintf(f, "    level %u entry @0x%" PRIx64 " = 0x%016" PRIx64 " (%s)\n",
			c->path[i].level, c->path[i].gpa, c->path[i].value,
			kvm_ent_kind_name(c->path[i].kind));
	if (k->ok)
		fprintf(f, "    KVM:     ok, gpa 0x%" PRIx64 ", page size 0x%" PRIx64 "\n", c->gpa, c->page_size);
	else
		fprintf(f, "    KVM:     #PF, error code 0x%x\n", k->error_code);
	if (l->err)
		fprintf(f, "    libvmem: error %s\n", vmem_strerror(l->err));
	else if (l->res.status == VMEM_WALK_OK)
		fprintf(f, "    libvmem: ok, gpa 0x%" PRIx64 ", page size 0x%" PRIx64 "\n",
			l->res.gpa, l->res.page_size);
	else if (l->res.status == VMEM_WALK_PF)
		fprintf(f, "    libvmem: #PF, error code 0x%x (level %u)\n", l->res.error_code,
			l->res.level);
	else
		fprintf(f, "    libvmem: status %u, gpa 0x%" PRIx64 "\n", l->res.status, l->res.gpa);
	print_changes(f, "KVM    ", &k->chg);
	print_changes(f, "libvmem", &l->chg);
	fputs("    vector: ", f);
	kvm_emit_vector(f, "disagreement", c, k);
}

static void count(stats *s, const kvm_case *c, const kvm_answer *k)
{
	const unsigned last = c->npath - 1;
	if (k->ok) {
		if (c->page_size == 0x1000)
			s->ok4k++;
		else
			s->ok2m++;
		return;
	}
	s->pf++;
	if (k->error_code & VMEM_PFEC_RSVD)
		s->rsvd++;
	else if (!(k->error_code & VMEM_PFEC_P))
		s->np++;
	else
		s->prot++;
	s->by_level[c->path[last].level][c->path[last].kind]++;
}

static void print_stats(const stats *s)
{
	printf("KVM outcomes: %lu ok on 4K pages, %lu ok on 2M pages, %lu #PF "
	       "(%lu not-present, %lu reserved-bit, %lu protection)\n",
	       s->ok4k, s->ok2m, s->pf, s->np, s->rsvd, s->prot);
	printf("faulting walks ended by:");
	for (unsigned lv = 4; lv >= 1; lv--)
		for (unsigned k = ENT_NP; k <= ENT_RSVD_XD; k++)
			if (s->by_level[lv][k])
				printf(" L%u %s %lu;", lv, kvm_ent_kind_name((enum kvm_ent_kind)k),
				       s->by_level[lv][k]);
	printf("\n");
}

int main(int argc, char **argv)
{
	opts o;
	char why[512], diff[256];
	if (parse(argc, argv, &o) < 0)
		return 2;
	if (!kvm_vm_usable(why, sizeof(why))) {
		printf("*** SKIPPED: KVM cannot run a guest here (%s); the KVM oracle did not run ***\n", why);
		return SKIP_CODE;
	}

	FILE *emit = NULL, *rep = NULL;
	if (o.emit && !(emit = fopen(o.emit, "w"))) {
		perror(o.emit);
		return 2;
	}
	if (o.report && !(rep = fopen(o.report, "w"))) {
		perror(o.report);
		return 2;
	}
	if (emit)
		fprintf(emit, "# KVM walk corpus v1: %lu random 4-level walks answered by KVM's software MMU "
			"(kvm_pvm, raw long-mode guest; no 1G pages, MAXPHYADDR 48, no PKU/SMEP/SMAP).\n"
			"# Produced by tests/oracle/oracle_walk --emit FILE --count %lu --seed 0x%" PRIx64
			"; expectations come from KVM, not from libvmem.\n", o.count, o.count, o.seed);

	unsigned char *buf = aligned_alloc(4096, 3 * KVM_CASE_MAX_PAGES * 4096);
	if (!buf) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	unsigned char *origbuf = buf + KVM_CASE_MAX_PAGES * 4096;
	unsigned char *libbuf = buf + 2 * KVM_CASE_MAX_PAGES * 4096;
	kvm_rng rng = { o.seed };
	stats st;
	memset(&st, 0, sizeof(st));
	unsigned long passed = 0, failed = 0, harness = 0, shown = 0;

	for (unsigned long i = 0; i < o.count; i++) {
		kvm_case c;
		kvm_answer k;
		lib_answer l;
		unsigned char *orig[KVM_CASE_MAX_PAGES];

		kvm_case_gen(&c, &rng, buf);
		for (unsigned p = 0; p < c.npages; p++) {
			orig[p] = origbuf + (size_t)p * 4096;
			memcpy(orig[p], c.page[p], 4096);
		}
		if (kvm_answer_case(&c, &k, why, sizeof(why)) < 0) {
			/* Not an answer: the harness failed. Counted as a failure. */
			harness++;
			failed++;
			printf("HARNESS FAILURE case %lu: %s (%s at CPL %u of 0x%" PRIx64 ")\n",
			       i, why, kvm_acc_name(c.type), c.cpl, c.la);
			if (rep)
				fprintf(rep, "HARNESS FAILURE case %lu: %s\n", i, why);
			continue;
		}
		count(&st, &c, &k);
		if (emit) {
			char id[64];
			snprintf(id, sizeof(id), "kvm-walk-v1-%05lu", i);
			kvm_emit_vector(emit, id, &c, &k);
		}
		lib_walk(&c, orig, libbuf, &l);
		compare(&c, &k, &l, diff, sizeof(diff));
		if (!diff[0]) {
			passed++;
			continue;
		}
		failed++;
		if (shown++ < SHOW_MAX)
			report(stdout, i, o.seed, &c, &k, &l, diff);
		if (rep)
			report(rep, i, o.seed, &c, &k, &l, diff);
	}
	free(buf);
	if (emit && fclose(emit) != 0) {
		perror(o.emit);
		return 2;
	}
	if (rep) {
		fprintf(rep, "KVM oracle, seed 0x%" PRIx64 ", %lu cases: %lu passed, %lu failed "
			"(%lu harness failures)\n", o.seed, o.count, passed, failed, harness);
		fclose(rep);
	}

	print_stats(&st);
	if (shown > SHOW_MAX)
		printf("(%lu more disagreements not shown%s%s)\n", shown - SHOW_MAX,
		       o.report ? "; all are in " : "", o.report ? o.report : "");
	if (harness)
		printf("%lu harness failures (KVM gave no usable answer)\n", harness);
	printf("%lu passed, %lu failed\n", passed, failed);
	return failed ? 1 : 0;
}
