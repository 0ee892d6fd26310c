/* Machine calibration: a random cyclic pointer chase timed at growing working-set sizes. */
#define _DEFAULT_SOURCE
#include "calib.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "bench_rng.h"

#define LINE 64

/* One random cycle through n lines of buf (Sattolo's shuffle): each line's
 * first word points at the next line. perm: n scratch entries. */
static void cycle_build(uint8_t *buf, size_t n, size_t *perm, uint64_t seed)
{
	uint64_t rng = seed;

	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(rng_next(&rng) % i), t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		*(void **)(buf + perm[i] * LINE) = buf + perm[(i + 1) % n] * LINE;
}

/* ns per step of `steps` dependent loads around the cycle at p (warmed over
 * its n lines first). */
static double cycle_time(void *p, size_t n, size_t steps)
{
	for (size_t i = 0; i < n; i++) /* warm */
		p = *(void **)p;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < steps; i++)
		p = *(void **)p;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__asm__ volatile("" : : "r"(p)); /* keeps the chase live */
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)steps;
}

static double chase_ns(size_t bytes)
{
	size_t n = bytes / LINE;
	uint8_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t *perm = malloc(n * sizeof(*perm));

	if (buf == MAP_FAILED || !perm) {
		free(perm);
		if (buf != MAP_FAILED)
			munmap(buf, bytes);
		return -1;
	}
#ifdef MADV_HUGEPAGE
	madvise(buf, bytes, MADV_HUGEPAGE);
#endif
	cycle_build(buf, n, perm, 42);
	free(perm);
	double ns = cycle_time(buf, n, 1u << 22);
	munmap(buf, bytes);
	return ns;
}

double calib_l1_ns(size_t steps)
{
	enum { BYTES = 16384, N = BYTES / LINE };
	static _Alignas(LINE) uint8_t ring[BYTES];
	static int built;

	if (!built) {
		size_t perm[N];
		cycle_build(ring, N, perm, 7);
		built = 1;
	}
	return cycle_time(ring, N, steps);
}

double calib_cycle_ns(size_t steps)
{
	uint64_t x = 0;
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < steps / 8; i++) {
#if defined(__x86_64__) && defined(__GNUC__)
		__asm__ volatile("addq $1, %0\n\taddq $1, %0\n\taddq $1, %0\n\taddq $1, %0\n\t"
				 "addq $1, %0\n\taddq $1, %0\n\taddq $1, %0\n\taddq $1, %0"
				 : "+r"(x));
#else
		for (int k = 0; k < 8; k++) {
			x += 1;
			__asm__ volatile("" : "+r"(x)); /* one dependent add each */
		}
#endif
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	__asm__ volatile("" : : "r"(x));
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)(steps / 8 * 8);
}

void calib_print(void)
{
	static const size_t kib[] = { 16, 256, 2048, 16384, 131072, 262144 };

	printf("| working set | ns per dependent load |\n|---:|---:|\n");
	for (unsigned i = 0; i < sizeof(kib) / sizeof(kib[0]); i++)
		printf("| %zu KiB | %.1f |\n", kib[i], chase_ns(kib[i] * 1024));
}

void calib_machine_print(void)
{
	char line[256], name[128] = "unknown";
	int family = -1, model = -1;
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');
		if (!v)
			continue;
		v += 1 + (v[1] == ' ');
		v[strcspn(v, "\n")] = 0;
		if (!strncmp(line, "model name", 10) && !strcmp(name, "unknown"))
			snprintf(name, sizeof(name), "%s", v);
		else if (!strncmp(line, "cpu family", 10) && family < 0)
			family = atoi(v);
		else if (!strncmp(line, "model\t", 6) && model < 0)
			model = atoi(v);
		else if (line[0] == '\n' || !strncmp(line, "processor", 9))
			if (family >= 0 && model >= 0)
				break;
	}
	if (f)
		fclose(f);
	double c = calib_cycle_ns(1u << 26);
	printf("machine: %s, family %d model %d, core clock %.2f GHz (a chain of dependent adds)\n\n", name, family,
	       model, c > 0 ? 1 / c : 0.0);
}
