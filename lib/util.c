/* libvmem core utilities: memory primitives and allocator dispatch, with no libc. */
#include "vmem_int.h"

/* Plain loops: the freestanding core must not depend on libc's memset/memcpy.
 * volatile keeps the compiler from turning them back into calls to those;
 * 8-byte words while both pointers are aligned, bytes for the rest. */
typedef uint64_t __attribute__((may_alias)) vmi_word; /* word access to any object */

void vmi_memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	uint64_t w = 0x0101010101010101ull * (unsigned char)c;
	for (; n && ((uintptr_t)d & 7); n--)
		*(volatile unsigned char *)d++ = (unsigned char)c;
	for (; n >= 8; n -= 8, d += 8)
		*(volatile vmi_word *)d = w;
	while (n--)
		*(volatile unsigned char *)d++ = (unsigned char)c;
}

void vmi_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0)
		for (; n >= 8; n -= 8, d += 8, s += 8)
			*(volatile vmi_word *)d = *(const vmi_word *)s;
	while (n--)
		*(volatile unsigned char *)d++ = *s++;
}

void vmi_memmove(void *dst, const void *src, size_t n)
{
	volatile unsigned char *d = dst;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
}

const vmem_allocator *vmi_alloc_resolve(const vmem_allocator *a)
{
	return a ? a : vmem_allocator_default();
}

void *vmi_alloc(const vmem_allocator *a, size_t size)
{
	a = vmi_alloc_resolve(a);
	if (!a || !a->alloc)
		return NULL;
	return a->alloc(a->ctx, size);
}

void *vmi_zalloc(const vmem_allocator *a, size_t size)
{
	void *p = vmi_alloc(a, size);
	if (p)
		vmi_memset(p, 0, size);
	return p;
}

void *vmi_handle_new(const vmem_allocator **alloc, size_t size, vmem_err *err)
{
	*alloc = vmi_alloc_resolve(*alloc);
	void *p = *alloc ? vmi_zalloc(*alloc, size) : NULL;
	*err = !*alloc ? VMEM_E_INVAL : p ? VMEM_OK : VMEM_E_NOMEM;
	return p;
}

void vmi_free(const vmem_allocator *a, void *p, size_t size)
{
	if (!p)
		return;
	a = vmi_alloc_resolve(a);
	a->free(a->ctx, p, size);
}

#ifdef VMEM_FREESTANDING
/* No default allocator without libc: the driver passes its own. */
const vmem_allocator *vmem_allocator_default(void)
{
	return NULL;
}
#endif
