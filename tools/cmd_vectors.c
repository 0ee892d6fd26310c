/* vmem CLI: `vmem vectors check` and `vmem vectors gen`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/vectors.h>
#include "vmem_tool.h"

static const char usage_vectors[] =
	"usage: vmem vectors check FILE...\n"
	"       vmem vectors gen [--seed S] [--count N] [--mode 32|pae|4|5|all]\n"
	"                        [--kind walk|ept|nested|all]\n"
	"\n"
	"check: redo every vector of each JSON Lines FILE ('-' is standard input)\n"
	"  with libvmem; print each disagreement with a diff and the walk trace,\n"
	"  then 'N passed, N failed'. Vectors of kinds the library does not model\n"
	"  yet, and malformed lines (reported as FILE:LINE: field: message), count\n"
	"  as failures. Exit 1 on any failure.\n"
	"gen: write N (default 100) vectors of a kind (default walk; all: walk,\n"
	"  ept and nested in turn) to standard output, built from random page\n"
	"  tables seeded by S (default 1), cycling through every fault or exit\n"
	"  class, guest paging mode (default all; not for ept) and page size;\n"
	"  answers and mem_after come from libvmem.\n";

static const char *const status_names[] = { "pass", "FAIL", "UNSUPPORTED", "ERROR" };

/* Check one stream; adds to the counts. Returns false on an I/O error. */
static bool check_stream(FILE *f, const char *name, unsigned long *pass, unsigned long *fail)
{
	vmem_vector_reader *r;
	if (vmem_vector_reader_new(f, &r)) {
		fprintf(stderr, "vmem vectors check: out of memory\n");
		return false;
	}
	bool ok = true;
	for (;;) {
		vmem_vector v;
		vmem_vector_error err;
		char msg[400];
		vmem_err e = vmem_vector_read(r, &v, &err);
		if (e == VMEM_E_NOENT)
			break;
		if (e == VMEM_E_PARSE) {
			fprintf(stderr, "%s\n", vmem_vector_error_str(&err, name, msg, sizeof(msg)));
			(*fail)++;
			continue;
		}
		if (e) {
			fprintf(stderr, "vmem vectors check: %s:%lu: %s\n", name,
				vmem_vector_reader_line(r), vmem_strerror(e));
			ok = false;
			break;
		}
		vmem_vector_verdict vd;
		e = vmem_vector_check(&v, &vd);
		if (e) {
			fprintf(stderr, "vmem vectors check: %s\n", vmem_strerror(e));
			vmem_vector_free(&v);
			ok = false;
			break;
		}
		if (vd.status == VMEM_VCHECK_PASS) {
			(*pass)++;
		} else {
			(*fail)++;
			printf("%s %s:%lu%s%s\n%s", status_names[vd.status], name,
			       vmem_vector_reader_line(r), v.id ? " " : "", v.id ? v.id : "", vd.diff);
		}
		vmem_vector_verdict_free(&vd);
		vmem_vector_free(&v);
	}
	vmem_vector_reader_free(r);
	return ok;
}

static int vectors_check(int argc, char **argv)
{
	static const topt opts[] = { { "--help", false }, { "-h", false } };
	topt_state st = { .i = 1 };
	const char *val;
	int w, nfiles = 0;
	bool io_ok = true;
	unsigned long pass = 0, fail = 0;
	/* First pass: options only, so a usage error comes before any output. */
	while ((w = topt_next(argc, argv, &st, opts, 2, &val, "vectors check")) != -2) {
		if (w == -3)
			return EXIT_USAGE;
		if (w >= 0) {
			fputs(usage_vectors, stdout);
			return 0;
		}
		nfiles++;
	}
	if (!nfiles) {
		fprintf(stderr, "vmem vectors check: no FILE given\n\n%s", usage_vectors);
		return EXIT_USAGE;
	}
	st = (topt_state){ .i = 1 };
	while ((w = topt_next(argc, argv, &st, opts, 2, &val, "vectors check")) != -2) {
		FILE *f = strcmp(val, "-") ? fopen(val, "r") : stdin;
		if (!f) {
			perror(val);
			io_ok = false;
			continue;
		}
		io_ok &= check_stream(f, val, &pass, &fail);
		if (f != stdin)
			fclose(f);
	}
	printf("%lu passed, %lu failed\n", pass, fail);
	return (fail || !io_ok) ? 1 : 0;
}

static int vectors_gen(int argc, char **argv)
{
	static const topt opts[] = {
		{ "--help", false }, { "-h", false }, { "--seed", true }, { "--count", true },
		{ "--mode", true }, { "--kind", true },
	};
	static const char *const kinds[] = { "walk", "ept", "nested", "all" };
	static const struct { const char *name; unsigned mask; } modes[] = {
		{ "32", VMEM_VGEN_32BIT }, { "pae", VMEM_VGEN_PAE }, { "4", VMEM_VGEN_4LEVEL },
		{ "5", VMEM_VGEN_5LEVEL }, { "all", VMEM_VGEN_ALL },
	};
	topt_state st = { .i = 1 };
	const char *val, *mode_name = "all";
	unsigned kind = 0; /* index into kinds */
	uint64_t seed = 1, count = 100;
	unsigned mask = VMEM_VGEN_ALL;
	int w;
	while ((w = topt_next(argc, argv, &st, opts, 6, &val, "vectors gen")) != -2) {
		switch (w) {
		case -3:
			return EXIT_USAGE;
		case -1:
			fprintf(stderr, "vmem vectors gen: unexpected argument '%s'\n", val);
			return EXIT_USAGE;
		case 0:
		case 1:
			fputs(usage_vectors, stdout);
			return 0;
		case 2:
			if (!parse_u64("vectors gen", "--seed", val, &seed))
				return EXIT_USAGE;
			break;
		case 3:
			if (!parse_u64("vectors gen", "--count", val, &count))
				return EXIT_USAGE;
			break;
		case 4:
			mask = 0;
			for (unsigned k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
				if (!strcmp(val, modes[k].name))
					mask = modes[k].mask;
			if (!mask) {
				fprintf(stderr, "vmem vectors gen: --mode must be 32, pae, 4, 5 or all\n");
				return EXIT_USAGE;
			}
			mode_name = val;
			break;
		case 5:
			for (kind = 0; kind < 4 && strcmp(val, kinds[kind]); kind++)
				;
			if (kind == 4) {
				fprintf(stderr, "vmem vectors gen: --kind must be walk, ept, nested or all\n");
				return EXIT_USAGE;
			}
			break;
		}
	}
	printf("# vmem vectors gen --seed %llu --count %llu --mode %s --kind %s: answers from libvmem\n",
	       (unsigned long long)seed, (unsigned long long)count, mode_name, kinds[kind]);
	for (uint64_t k = 0; k < count; k++) {
		vmem_vector v;
		/* all: kinds in turn, each stream at its own index k / 3 */
		unsigned kk = kind == 3 ? (unsigned)(k % 3) : kind;
		unsigned long i = (unsigned long)(kind == 3 ? k / 3 : k);
		vmem_err e = kk == 0 ? vmem_vector_generate(seed, mask, i, &v)
			     : kk == 1 ? vmem_vector_generate_ept(seed, i, &v)
				       : vmem_vector_generate_nested(seed, mask, i, &v);
		if (e) {
			fprintf(stderr, "vmem vectors gen: vector %llu: %s\n", (unsigned long long)k,
				vmem_strerror(e));
			return 1;
		}
		e = vmem_vector_write(stdout, &v);
		vmem_vector_free(&v);
		if (e) {
			fprintf(stderr, "vmem vectors gen: write error\n");
			return 1;
		}
	}
	return fflush(stdout) ? 1 : 0;
}

int cmd_vectors(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_vectors, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage_vectors, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "check"))
		return vectors_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "gen"))
		return vectors_gen(argc - 1, argv + 1);
	fprintf(stderr, "vmem vectors: unknown subcommand '%s'\n\n%s", argv[1], usage_vectors);
	return EXIT_USAGE;
}
