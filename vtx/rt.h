/* rt.h: the image's freestanding runtime: port E9 console, printf-like output, bump page allocator as a vmem_allocator. */
#ifndef VTX_RT_H
#define VTX_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvmem/alloc.h>

/* Console: bytes to port 0xE9 (Bochs port_e9_hack prints them on stdout). */
void rt_putc(char c);
void rt_puts(const char *s);
/* printf subset: %s %c %d %u %x %p, flags '0', width, length l/ll/z. */
void rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Stop the simulation (Bochs: "Shutdown" on port 0x8900). */
__attribute__((noreturn)) void rt_shutdown(void);
__attribute__((noreturn)) void rt_panic(const char *what, uint64_t a, uint64_t b);

/* Assumptions are checked, always. */
#define RT_ASSERT(c) \
	do { if (!(c)) rt_panic("assert: " #c " at " __FILE__ ":" RT_STR(__LINE__), 0, 0); } while (0)
#define RT_STR(x) RT_STR2(x)
#define RT_STR2(x) #x

/* Host CPU setup: TSS, IDT with trap handlers that print and stop. */
void rt_cpu_init(void);
extern uint8_t rt_tss[104];

/* Bump allocator over [HEAP_BASE, HEAP_END): pages are identity-mapped,
 * so their virtual address is their physical address (page_phys NULL). */
void rt_heap_init(void);
void *rt_alloc_page(void);
uint64_t rt_heap_mark(void);
void rt_heap_release(uint64_t mark);
extern const vmem_allocator rt_allocator;

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
