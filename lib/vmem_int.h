/* libvmem internal helpers shared by the core sources: allocation, memory primitives, asserts. */
#ifndef VMEM_INT_H
#define VMEM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/error.h>

#define vmi_likely(x) __builtin_expect(!!(x), 1)
#define vmi_unlikely(x) __builtin_expect(!!(x), 0)

/* Assumptions stated as asserts: on in debug builds, a trap (no libc needed). */
#ifdef NDEBUG
#define VMI_ASSERT(c) ((void)0)
#else
#define VMI_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)
#endif

/* Bits hi..lo set (inclusive), as the SDM writes ranges. */
#define VMI_BITS(hi, lo) ((~0ull >> (63 - (hi))) & ~((1ull << (lo)) - 1))

/* An EPTP every processor's VM entry refuses (SDM vol. 3C 27.2.1.1), so
 * that INVEPT single-context of it fails (VMfailValid): memory type not UC
 * (0) or WB (6), page-walk length not 4 or 5, bits 11:8 or 63:52 set.
 * (5-level, A/D, bit 7 and MAXPHYADDR depend on the processor.) */
static inline bool vmi_eptp_refused(uint64_t eptp)
{
	const unsigned mt_ok = 1u << 0 | 1u << 6, pwl_ok = 1u << 3 | 1u << 4;
	return !((mt_ok >> (eptp & 7)) & 1) || !((pwl_ok >> ((eptp >> 3) & 7)) & 1) ||
	       (eptp & (VMI_BITS(11, 8) | VMI_BITS(63, 52)));
}

void vmi_memset(void *dst, int c, size_t n);
void vmi_memcpy(void *dst, const void *src, size_t n);
void vmi_memmove(void *dst, const void *src, size_t n);

/* Allocation through a hook; NULL hook means the default (hosted) allocator. */
const vmem_allocator *vmi_alloc_resolve(const vmem_allocator *a);
void *vmi_alloc(const vmem_allocator *a, size_t size);
void *vmi_zalloc(const vmem_allocator *a, size_t size);
void vmi_free(const vmem_allocator *a, void *p, size_t size);
/* A handle's memory: *alloc resolved (NULL: the default), then size zeroed
 * bytes; NULL with *err VMEM_E_INVAL (no allocator) or VMEM_E_NOMEM. */
void *vmi_handle_new(const vmem_allocator **alloc, size_t size, vmem_err *err);

/* The host CPU runs BMI2 instructions (lib/cpu.c). */
bool vmi_cpu_bmi2(void);
#endif
