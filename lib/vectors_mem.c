/* libvmem vectors: a vector's memory list as guest memory (one RAM page per listed page, the rest reads zero). */
#include <stdlib.h>
#include <string.h>
#include <libvmem/gmem.h>
#include "vectors_int.h"

#define PAGE 4096ull

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void store_le(uint8_t *p, uint64_t v, unsigned size)
{
	for (unsigned k = 0; k < size; k++)
		p[k] = (uint8_t)(v >> (8 * k));
}

static uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;
	for (unsigned k = size; k-- > 0;)
		v = (v << 8) | p[k];
	return v;
}

void vv_mem_free(vv_mem *m)
{
	if (m->gm)
		vmem_gmem_free(m->gm);
	for (size_t k = 0; k < m->n; k++) {
		if (m->page)
			free(m->page[k]);
		if (m->initial)
			free(m->initial[k]);
	}
	free(m->page);
	free(m->initial);
	free(m->gpa);
	memset(m, 0, sizeof(*m));
}

static size_t find_page(const vv_mem *m, uint64_t gpa)
{
	uint64_t key = gpa & ~(PAGE - 1);
	const uint64_t *hit = bsearch(&key, m->gpa, m->n, sizeof(uint64_t), cmp_u64);
	return hit ? (size_t)(hit - m->gpa) : (size_t)-1;
}

/* A word as vectors.h defines it (the parser checks the same): 4 or 8 bytes,
 * naturally aligned, hence inside one page. A caller-built vector may break it. */
static bool words_ok(const vmem_vector_word *w, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if ((w[k].size != 4 && w[k].size != 8) || (w[k].addr & (w[k].size - 1)))
			return false;
	return true;
}

/* Pages of w and extra (extra pages start zeroed: mem_after words outside mem). */
vmem_err vv_mem_build(vv_mem *m, const vmem_vector_word *w, size_t nw,
		      const vmem_vector_word *extra, size_t nextra)
{
	memset(m, 0, sizeof(*m));
	if (!words_ok(w, nw) || !words_ok(extra, nextra))
		return VMEM_E_INVAL;
	size_t total = nw + nextra;
	m->gpa = malloc((total ? total : 1) * sizeof(uint64_t));
	if (!m->gpa)
		return VMEM_E_NOMEM;
	for (size_t k = 0; k < total; k++)
		m->gpa[k] = (k < nw ? w[k].addr : extra[k - nw].addr) & ~(PAGE - 1);
	qsort(m->gpa, total, sizeof(uint64_t), cmp_u64);
	size_t n = 0;
	for (size_t k = 0; k < total; k++)
		if (!n || m->gpa[n - 1] != m->gpa[k])
			m->gpa[n++] = m->gpa[k];
	m->page = calloc(n ? n : 1, sizeof(uint8_t *));
	m->initial = calloc(n ? n : 1, sizeof(uint8_t *));
	if (!m->page || !m->initial || vmem_gmem_new(NULL, &m->gm)) {
		vv_mem_free(m);
		return VMEM_E_NOMEM;
	}
	m->n = n;
	vmem_gmem_set_miss(m->gm, VMEM_GMEM_MISS_ZERO);
	for (size_t k = 0; k < n; k++) {
		m->page[k] = aligned_alloc(PAGE, PAGE);
		m->initial[k] = malloc(PAGE);
		if (!m->page[k] || !m->initial[k]) {
			vv_mem_free(m);
			return VMEM_E_NOMEM;
		}
		memset(m->page[k], 0, PAGE);
	}
	for (size_t k = 0; k < nw; k++)
		store_le(m->page[find_page(m, w[k].addr)] + (w[k].addr & (PAGE - 1)), w[k].value,
			 w[k].size);
	for (size_t k = 0; k < n; k++) {
		memcpy(m->initial[k], m->page[k], PAGE);
		vmem_err e = vmem_gmem_add_ram(m->gm, m->gpa[k], PAGE, m->page[k], 0);
		if (e) {
			vv_mem_free(m);
			return e;
		}
	}
	return VMEM_OK;
}

vmem_err vv_mem_changes(const vv_mem *m, unsigned width, vmem_vector_word **out, size_t *n)
{
	size_t cnt = 0, cap = 0;
	vmem_vector_word *w = NULL;
	for (size_t k = 0; k < m->n; k++)
		for (unsigned off = 0; off < PAGE; off += width) {
			if (!memcmp(m->page[k] + off, m->initial[k] + off, width))
				continue;
			if (cnt == cap) {
				cap = cap ? cap * 2 : 8;
				vmem_vector_word *nw = realloc(w, cap * sizeof(*w));
				if (!nw) {
					free(w);
					return VMEM_E_NOMEM;
				}
				w = nw;
			}
			w[cnt].addr = m->gpa[k] + off;
			w[cnt].value = load_le(m->page[k] + off, width);
			w[cnt].size = width;
			cnt++;
		}
	*out = w;
	*n = cnt;
	return VMEM_OK;
}
