/* libvmem default allocator: jemalloc (hosted builds only). */
#include <stdlib.h>
#include <string.h>
#include <libvmem/alloc.h>

/* Linked against libjemalloc, malloc/aligned_alloc/free resolve to jemalloc. */
static void *je_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size ? size : 1);
}

static void je_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)size;
	free(ptr);
}

static void *je_alloc_page(void *ctx)
{
	(void)ctx;
	void *p = aligned_alloc(4096, 4096);
	if (p)
		memset(p, 0, 4096);
	return p;
}

static void je_free_page(void *ctx, void *page)
{
	(void)ctx;
	free(page);
}

static const vmem_allocator je_allocator = {
	je_alloc, je_free, je_alloc_page, je_free_page, NULL, NULL,
};

const vmem_allocator *vmem_allocator_default(void)
{
	return &je_allocator;
}
