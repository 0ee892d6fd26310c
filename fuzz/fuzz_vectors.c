/* fuzz_vectors: libFuzzer target (replayed by fuzz/replay_main.c) feeding bytes to the vector reader; an accepted vector must write back and read back to the same line, and check without crashing. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/vectors.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The vector as the writer puts it, malloc'd (NULL when out of memory). */
static char *written(const vmem_vector *v, size_t *len)
{
	char *buf = NULL;
	FILE *m = open_memstream(&buf, len);
	if (!m)
		return NULL;
	vmem_err e = vmem_vector_write(m, v);
	if (fclose(m) || e) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Write, read back, write again: both lines must be the same bytes. */
static void round_trip(const vmem_vector *v)
{
	size_t len, len2;
	char *line = written(v, &len);
	if (!line)
		return;
	vmem_vector back;
	vmem_vector_error err;
	if (vmem_vector_parse_line(line, len, &back, &err) != VMEM_OK) {
		fprintf(stderr, "fuzz_vectors: the writer's line does not read back: %s: %s\n%s",
			err.field, err.msg, line);
		abort();
	}
	char *line2 = written(&back, &len2);
	if (line2 && (len2 != len || memcmp(line, line2, len))) {
		fprintf(stderr, "fuzz_vectors: round trip changed the line\n%s%s", line, line2);
		abort();
	}
	free(line2);
	free(line);
	vmem_vector_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	FILE *f = fmemopen((void *)data, size, "rb");
	vmem_vector_reader *r = NULL;
	if (!f || vmem_vector_reader_new(f, &r)) {
		if (f)
			fclose(f);
		return 0;
	}
	for (;;) {
		vmem_vector v;
		vmem_vector_error err;
		vmem_err e = vmem_vector_read(r, &v, &err);
		if (e == VMEM_E_PARSE) {
			/* The rules: every refusal names its line. */
			if (!err.line || !err.msg[0])
				abort();
			continue;
		}
		if (e)
			break;
		round_trip(&v);
		/* Each listed page costs 8 KiB to check: keep the engines on small vectors. */
		vmem_vector_verdict vd;
		if (v.n_mem <= 64 && vmem_vector_check(&v, &vd) == VMEM_OK)
			vmem_vector_verdict_free(&vd);
		vmem_vector_free(&v);
	}
	vmem_vector_reader_free(r);
	fclose(f);
	return 0;
}
