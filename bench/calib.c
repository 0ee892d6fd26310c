/* Machine calibration: a random cyclic pointer chase timed at growing working-set sizes. */
#define _DEFAULT_SOURCE
#include "calib.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_rng.h"

#define LINE 64

static double chase_ns(size_t bytes)
{
	size_t n = bytes / LINE, steps = 1u << 22;
	uint8_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t *perm = malloc(n * sizeof(*perm));
	uint64_t rng = 42;

	if (buf == MAP_FAILED || !perm) {
		free(perm);
		return -1;
	}
#ifdef MADV_HUGEPAGE
	madvise(buf, bytes, MADV_HUGEPAGE);
#endif
	/* One random cycle through every line (Sattolo's shuffle). */
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rng_next(&rng) % i), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		*(void **)(buf + perm[i] * LINE) = buf + perm[(i + 1) % n] * LINE;
	free(perm);

	void *p = buf;
	for (size_t i = 0; i < n; i++) /* warm */
		p = *(void **)p;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < steps; i++)
		p = *(void **)p;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
		    (double)steps;
	if (p == NULL)
		ns = -1; /* never: keeps the chase live */
	munmap(buf, bytes);
	return ns;
}

/* A 16 KiB random cycle (L1-resident), built once, timed over `steps` loads. */
double calib_l1_ns(size_t steps)
{
	static void *ring[16384 / LINE * (LINE / sizeof(void *))];
	static int built;
	const size_t stride = LINE / sizeof(void *), n = sizeof(ring) / sizeof(ring[0]) / stride;

	if (!built) {
		size_t perm[sizeof(ring) / sizeof(ring[0]) / (LINE / sizeof(void *))];
		uint64_t rng = 7;
		for (size_t i = 0; i < n; i++)
			perm[i] = i;
		for (size_t i = n - 1; i > 0; i--) { /* Sattolo: one cycle */
			size_t j = (size_t)(rng_next(&rng) % i), t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (size_t i = 0; i < n; i++)
			ring[perm[i] * stride] = &ring[perm[(i + 1) % n] * stride];
		built = 1;
	}
	void *p = ring[0];
	for (size_t i = 0; i < n; i++) /* warm */
		p = *(void **)p;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < steps; i++)
		p = *(void **)p;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__asm__ volatile("" : : "r"(p));
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)steps;
}

void calib_print(void)
{
	static const size_t kib[] = { 16, 256, 2048, 16384, 131072, 262144 };

	printf("| working set | ns per dependent load |\n|---:|---:|\n");
	for (unsigned i = 0; i < sizeof(kib) / sizeof(kib[0]); i++)
		printf("| %zu KiB | %.1f |\n", kib[i], chase_ns(kib[i] * 1024));
}
