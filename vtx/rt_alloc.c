/* rt_alloc.c: bump page allocator over the identity-mapped heap, exposed to libvmem as a vmem_allocator. */
#include "rt.h"
#include "layout.h"

static uint64_t heap_next;

void rt_heap_init(void)
{
	heap_next = HEAP_BASE;
}

static void *bump(size_t size, size_t align)
{
	uint64_t p = (heap_next + align - 1) & ~(uint64_t)(align - 1);
	if (p + size > HEAP_END)
		return NULL;
	heap_next = p + size;
	return (void *)(uintptr_t)p;
}

void *rt_alloc_page(void)
{
	void *p = bump(4096, 4096);
	if (p)
		memset(p, 0, 4096);
	return p;
}

/* Scenarios free everything at once: mark before, release after. */
uint64_t rt_heap_mark(void)
{
	return heap_next;
}

void rt_heap_release(uint64_t mark)
{
	RT_ASSERT(mark >= HEAP_BASE && mark <= heap_next);
	heap_next = mark;
}

static void *a_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return bump(size ? size : 1, 16);
}

static void a_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)p;
	(void)size;
}

static void *a_alloc_page(void *ctx)
{
	(void)ctx;
	return rt_alloc_page();
}

static void a_free_page(void *ctx, void *p)
{
	(void)ctx;
	(void)p;
}

const vmem_allocator rt_allocator = {
	.alloc = a_alloc,
	.free = a_free,
	.alloc_page = a_alloc_page,
	.free_page = a_free_page,
	.ctx = NULL,
	.page_phys = NULL, /* identity paging: virtual = physical */
};

void *memset(void *d, int c, size_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = (uint8_t)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	if (p < q) {
		while (n--)
			*p++ = *q++;
	} else {
		while (n--)
			p[n] = q[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}
