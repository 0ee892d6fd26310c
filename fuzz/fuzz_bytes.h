/* fuzz_bytes: little-endian field decoding the fuzz targets share. */
#ifndef VMEM_FUZZ_BYTES_H
#define VMEM_FUZZ_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* The n-byte (n <= 8) little-endian number at p. */
static inline uint64_t fuzz_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#endif
