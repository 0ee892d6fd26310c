/* libvmem allocator hook: every allocation the library makes goes through one of these. */
#ifndef LIBVMEM_ALLOC_H
#define LIBVMEM_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library never calls malloc directly. Objects take a `const vmem_allocator *`
 * at creation and keep the pointer (the allocator must outlive them).
 *
 * - alloc/free: metadata (handles, slot arrays); alignment at least 16 bytes.
 * - alloc_page/free_page: one zero-filled, 4096-byte-aligned 4 KiB page
 *   (paging-structure pages: EPT and shadow tables).
 * Any function may return NULL; the library then fails the call with
 * VMEM_E_NOMEM and leaves every structure as it was. */
typedef struct vmem_allocator {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void *(*alloc_page)(void *ctx);
	void (*free_page)(void *ctx, void *page);
	void *ctx;
	/* Optional: the host-physical address of a page from alloc_page, as
	 * hardware will see it in an EPT or shadow entry (a kernel's virt_to_phys).
	 * NULL: the page's virtual address is taken as its physical address (the
	 * hosted model, where host-physical memory is modelled by a vmem_gmem).
	 * An EPT refuses a page whose address is not 4 KiB aligned or reaches
	 * 2^MAXPHYADDR (vmem_ept_config): the call fails with VMEM_E_RANGE,
	 * as it does with VMEM_E_NOMEM. */
	uint64_t (*page_phys)(void *ctx, const void *page);
} vmem_allocator;

/* The default allocator (jemalloc). Hosted builds only; NULL in a
 * freestanding build. Passing NULL where an allocator is expected means this. */
const vmem_allocator *vmem_allocator_default(void);

#ifdef __cplusplus
}
#endif
#endif
