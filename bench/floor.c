/* Memory floors: loops that read only the entries a walk must read, with and without independent ALU work. */
#include "floor.h"

#include "ptspace.h"

const unsigned floor_ops[FLOOR_OPS_KINDS] = { 0, 16, 32, 64 };

#if defined(__x86_64__) && defined(__GNUC__)
/* Four LEAs, each from a loop-invariant register into a scratch one: no
 * operation waits for another or for a load, so they cost only the
 * machine's issue slots. */
#define FILL4(h)                                                                                        \
	__asm__ volatile("leaq 1(%0), %%r8\n\tleaq 2(%0), %%r9\n\tleaq 3(%0), %%r10\n\tleaq 4(%0), %%r11" \
			 :                                                                                \
			 : "r"(h)                                                                         \
			 : "r8", "r9", "r10", "r11")
#define FILL16(h)                                    \
	do {                                         \
		FILL4(h);                            \
		FILL4(h);                            \
		FILL4(h);                            \
		FILL4(h);                            \
	} while (0)
#define FILL_0(h) ((void)0)
#define FILL_16(h) FILL16(h)
#define FILL_32(h)                                   \
	do {                                         \
		FILL16(h);                           \
		FILL16(h);                           \
	} while (0)
#define FILL_64(h)                                   \
	do {                                         \
		FILL_32(h);                          \
		FILL_32(h);                          \
	} while (0)
int floor_ops_ok(unsigned kind)
{
	return kind < FLOOR_OPS_KINDS;
}
#else
#define FILL_0(h) ((void)0)
#define FILL_16(h) ((void)0)
#define FILL_32(h) ((void)0)
#define FILL_64(h) ((void)0)
int floor_ops_ok(unsigned kind)
{
	return kind == 0;
}
#endif

#define LOAD(p) (*(const volatile uint64_t *)(const void *)(p))

#define FLOOR_FN(ops)                                                                                         \
	static __attribute__((noinline)) uint64_t floor_##ops(const uint8_t *host, const uint64_t *const *pde,   \
							      const uint64_t *la, size_t n)                      \
	{                                                                                                     \
		const uint8_t *pte[FLOOR_AHEAD];                                                              \
		uint64_t sum = 0;                                                                             \
		for (size_t i = 0; i < n + FLOOR_AHEAD; i++) {                                                \
			if (i >= FLOOR_AHEAD)                                                                 \
				sum += LOAD(pte[i % FLOOR_AHEAD]);                                            \
			if (i < n) {                                                                          \
				uint64_t e = LOAD(pde[i]);                                                    \
				pte[i % FLOOR_AHEAD] = host + (e & PT_ADDR) + ((la[i] >> 9) & 0xff8);         \
				__builtin_prefetch(pte[i % FLOOR_AHEAD]);                                     \
				FILL_##ops(host);                                                             \
			}                                                                                     \
		}                                                                                             \
		return sum;                                                                                   \
	}
FLOOR_FN(0)
FLOOR_FN(16)
FLOOR_FN(32)
FLOOR_FN(64)

uint64_t loop_floor(unsigned kind, const uint8_t *host, const uint64_t *const *pde, const uint64_t *la,
		    size_t n)
{
	switch (kind) {
	case 1: return floor_16(host, pde, la, n);
	case 2: return floor_32(host, pde, la, n);
	case 3: return floor_64(host, pde, la, n);
	default: return floor_0(host, pde, la, n);
	}
}

/* The entry at `sh` (the index's lowest bit: 39, 30, 21, 12) in the table
 * the entry e points at. */
#define NEXT(e, sh) LOAD(host + ((e) & PT_ADDR) + ((a >> ((sh) - 3)) & 0xff8))

#define CHAIN_FN(ops)                                                                                         \
	static __attribute__((noinline)) uint64_t chain_##ops(const uint8_t *host, uint64_t cr3,                 \
							      const uint64_t *la, size_t n)                      \
	{                                                                                                     \
		uint64_t sum = 0;                                                                             \
		for (size_t i = 0; i < n; i++) {                                                              \
			uint64_t a = la[i];                                                                   \
			uint64_t e = NEXT(cr3, 39);                                                           \
			e = NEXT(e, 30);                                                                      \
			e = NEXT(e, 21);                                                                      \
			sum += NEXT(e, 12);                                                                   \
			FILL_##ops(host);                                                                     \
		}                                                                                             \
		return sum;                                                                                   \
	}
CHAIN_FN(0)
CHAIN_FN(16)
CHAIN_FN(32)
CHAIN_FN(64)

uint64_t loop_chain(unsigned kind, const uint8_t *host, uint64_t cr3, const uint64_t *la, size_t n)
{
	switch (kind) {
	case 1: return chain_16(host, cr3, la, n);
	case 2: return chain_32(host, cr3, la, n);
	case 3: return chain_64(host, cr3, la, n);
	default: return chain_0(host, cr3, la, n);
	}
}
