/* Deterministic xorshift64* generator for pre-generated benchmark addresses. */
#ifndef BENCH_RNG_H
#define BENCH_RNG_H

#include <stdint.h>

static inline uint64_t rng_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

#endif
