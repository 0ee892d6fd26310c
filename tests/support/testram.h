/* A cmocka test's memory: one zeroed, page-aligned buffer registered as a RAM slot at address 0, and little-endian word access to it. */
#ifndef VMEM_TESTS_TESTRAM_H
#define VMEM_TESTS_TESTRAM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/gmem.h>

/* The buffer (size bytes, a multiple of 4 KiB) and its vmem_gmem in *gm; cmocka-asserted. */
static inline uint8_t *testram_new(size_t size, vmem_gmem **gm)
{
	uint8_t *ram = aligned_alloc(4096, size);
	assert_non_null(ram);
	memset(ram, 0, size);
	assert_int_equal(vmem_gmem_new(NULL, gm), VMEM_OK);
	assert_int_equal(vmem_gmem_add_ram(*gm, 0, size, ram, 0), VMEM_OK);
	return ram;
}

static inline void testram_free(uint8_t *ram, vmem_gmem *gm)
{
	vmem_gmem_free(gm);
	free(ram);
}

static inline void testram_put64(uint8_t *ram, uint64_t a, uint64_t v) { memcpy(ram + a, &v, 8); }
static inline void testram_put32(uint8_t *ram, uint64_t a, uint32_t v) { memcpy(ram + a, &v, 4); }
static inline uint64_t testram_get64(const uint8_t *ram, uint64_t a) { uint64_t v; memcpy(&v, ram + a, 8); return v; }
static inline uint32_t testram_get32(const uint8_t *ram, uint64_t a) { uint32_t v; memcpy(&v, ram + a, 4); return v; }

#endif
