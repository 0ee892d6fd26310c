/* libvmem guest-physical memory: RAM slots and MMIO holes, every access bounds-checked. */
#include <libvmem/gmem.h>
#include "gmem_int.h"

/* Recompute the walker's window (gmem_int.h) after a slot change. */
static void gm_window(vmem_gmem *gm)
{
	struct gm_window *w = &gm->win;
	w->whost = (const uint8_t *)&w->wdummy;
	w->whi = ~0ull;
	w->wdummy = 0;
	w->wmaskb = 0;
	w->wimask = 0;
	w->wmask = 0;
	if (!gm->n || gm->r[0].gpa != 0 || gm->r[0].kind != VMEM_REGION_RAM)
		return;
	unsigned k = 63 - (unsigned)__builtin_clzll(gm->r[0].size); /* size >= 4 KiB: k >= 12 */
	if (k > 52)
		k = 52; /* an entry index never takes the entry's bits 62:52 (ignored) */
	w->whost = gm->r[0].host;
	w->wmaskb = (1ull << k) - 4096;
	w->wimask = 0xff8;
	w->wmask = (1ull << (k - 3)) - 1;
	w->whi = (k < 52 ? VMI_BITS(51, k) : 0) | (1ull << 7);
}

vmem_err vmem_gmem_new(const vmem_allocator *alloc, vmem_gmem **out)
{
	if (!out)
		return VMEM_E_INVAL;
	vmem_err err;
	vmem_gmem *gm = vmi_handle_new(&alloc, sizeof(*gm), &err);
	if (!gm)
		return err;
	gm->alloc = alloc;
	gm_window(gm);
	*out = gm;
	return VMEM_OK;
}

void vmem_gmem_free(vmem_gmem *gm)
{
	if (!gm)
		return;
	vmi_free(gm->alloc, gm->r, gm->cap * sizeof(*gm->r));
	vmi_free(gm->alloc, gm, sizeof(*gm));
}

int gm_find(const vmem_gmem *gm, uint64_t gpa)
{
	unsigned lo = 0, hi = gm->n;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct gm_region *r = &gm->r[mid];
		if (gpa < r->gpa)
			hi = mid;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

/* Insert keeping order; all-or-nothing. */
static vmem_err gm_insert(vmem_gmem *gm, const struct gm_region *nr)
{
	unsigned pos = 0;
	while (pos < gm->n && gm->r[pos].gpa < nr->gpa)
		pos++;
	/* Overlap with the neighbours? */
	if (pos > 0) {
		const struct gm_region *p = &gm->r[pos - 1];
		if (nr->gpa - p->gpa < p->size)
			return VMEM_E_OVERLAP;
	}
	if (pos < gm->n && gm->r[pos].gpa - nr->gpa < nr->size)
		return VMEM_E_OVERLAP;
	if (gm->n == gm->cap) {
		unsigned ncap = gm->cap ? gm->cap * 2 : 8;
		struct gm_region *nrr = vmi_alloc(gm->alloc, ncap * sizeof(*nrr));
		if (!nrr)
			return VMEM_E_NOMEM;
		if (gm->n)
			vmi_memcpy(nrr, gm->r, gm->n * sizeof(*nrr));
		vmi_free(gm->alloc, gm->r, gm->cap * sizeof(*gm->r));
		gm->r = nrr;
		gm->cap = ncap;
	}
	vmi_memmove(&gm->r[pos + 1], &gm->r[pos], (gm->n - pos) * sizeof(*gm->r));
	gm->r[pos] = *nr;
	gm->n++;
	gm_window(gm);
	return VMEM_OK;
}

vmem_err vmem_gmem_add_ram(vmem_gmem *gm, uint64_t gpa, uint64_t size, void *host, unsigned flags)
{
	if (!gm || !host || !size || ((gpa | size | (uintptr_t)host) & 0xfff) ||
	    gpa + size - 1 < gpa || (flags & ~(VMEM_SLOT_READONLY | VMEM_SLOT_NOEXEC)))
		return VMEM_E_INVAL;
	struct gm_region r = { gpa, size, host, flags, VMEM_REGION_RAM, NULL, NULL };
	return gm_insert(gm, &r);
}

vmem_err vmem_gmem_add_mmio(vmem_gmem *gm, uint64_t gpa, uint64_t size, vmem_mmio_fn fn, void *opaque)
{
	if (!gm || !fn || !size || gpa + size - 1 < gpa)
		return VMEM_E_INVAL;
	struct gm_region r = { gpa, size, NULL, 0, VMEM_REGION_MMIO, fn, opaque };
	return gm_insert(gm, &r);
}

vmem_err vmem_gmem_remove(vmem_gmem *gm, uint64_t gpa)
{
	if (!gm)
		return VMEM_E_INVAL;
	int i = gm_find(gm, gpa);
	if (i < 0 || gm->r[i].gpa != gpa)
		return VMEM_E_NOENT;
	vmi_memmove(&gm->r[i], &gm->r[i + 1], (gm->n - (unsigned)i - 1) * sizeof(*gm->r));
	gm->n--;
	gm_window(gm);
	return VMEM_OK;
}

void vmem_gmem_set_miss(vmem_gmem *gm, vmem_gmem_miss policy)
{
	if (gm && (policy == VMEM_GMEM_MISS_ERROR || policy == VMEM_GMEM_MISS_ZERO))
		gm->miss = policy;
}

static void gm_info(const struct gm_region *r, uint64_t gpa, vmem_region_info *info)
{
	info->kind = r->kind;
	info->gpa = r->gpa;
	info->size = r->size;
	info->flags = r->flags;
	info->host = r->host ? r->host + (gpa - r->gpa) : NULL;
}

vmem_err vmem_gmem_lookup(const vmem_gmem *gm, uint64_t gpa, vmem_region_info *info)
{
	if (!gm || !info)
		return VMEM_E_INVAL;
	int i = gm_find(gm, gpa);
	if (i < 0) {
		vmi_memset(info, 0, sizeof(*info));
		return VMEM_E_NOENT;
	}
	gm_info(&gm->r[i], gpa, info);
	return VMEM_OK;
}

void *vmem_gmem_hva(const vmem_gmem *gm, uint64_t gpa, uint64_t len)
{
	if (!gm || !len)
		return NULL;
	int i = gm_find(gm, gpa);
	if (i < 0)
		return NULL;
	const struct gm_region *r = &gm->r[i];
	if (!r->host || len > r->size - (gpa - r->gpa))
		return NULL;
	return r->host + (gpa - r->gpa);
}

int vmem_gmem_foreach(const vmem_gmem *gm, int (*fn)(void *arg, const vmem_region_info *r), void *arg)
{
	if (!gm || !fn)
		return 0;
	for (unsigned i = 0; i < gm->n;) {
		vmem_region_info info;
		gm_info(&gm->r[i], gm->r[i].gpa, &info);
		int rc = fn(arg, &info);
		if (rc)
			return rc;
		/* Resume after this region's gpa, not at index i + 1: fn may have
		 * added or removed regions, which moves the rest of the array. */
		unsigned lo = 0, hi = gm->n;
		while (lo < hi) {
			unsigned mid = lo + (hi - lo) / 2;
			if (gm->r[mid].gpa <= info.gpa)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	return 0;
}

/* MMIO in naturally aligned pieces of 1, 2, 4 or 8 bytes. */
static unsigned mmio_piece(uint64_t gpa, size_t left, uint64_t region_left)
{
	unsigned sz = 8;
	while (sz > 1 && ((gpa & (sz - 1)) || sz > left || sz > region_left))
		sz >>= 1;
	return sz;
}

/* Walk [gpa, gpa+len) region by region. op: 0 check-read, 1 check-write, 2 read, 3 write. */
static vmem_err gm_copy(const vmem_gmem *gm, uint64_t gpa, unsigned char *buf, size_t len, int op)
{
	/* The range may end exactly at 2^64 (a slot may), but not run past it. */
	if (!gm || (!buf && op >= 2) || (len && gpa + (len - 1) < gpa))
		return VMEM_E_INVAL;
	bool is_write = op & 1;
	unsigned regions = 0;
	bool mmio = false;
	while (len) {
		int i = gm_find(gm, gpa);
		if (i < 0) {
			if (is_write || gm->miss != VMEM_GMEM_MISS_ZERO)
				return VMEM_E_RANGE;
			/* Zero until the next region (or the end of the space). `room` is
			 * the number of bytes from gpa to there, minus one, so that the
			 * end at 2^64 is representable. */
			uint64_t room = ~0ull - gpa;
			for (unsigned k = 0; k < gm->n; k++)
				if (gm->r[k].gpa > gpa) {
					room = gm->r[k].gpa - gpa - 1;
					break;
				}
			size_t chunk = room < len - 1 ? (size_t)room + 1 : len;
			if (op == 2)
				vmi_memset(buf, 0, chunk);
			buf = buf ? buf + chunk : buf; /* NULL in the check passes: no arithmetic on it */
			gpa += chunk, len -= chunk;
			continue;
		}
		const struct gm_region *r = &gm->r[i];
		uint64_t rleft = r->size - (gpa - r->gpa);
		size_t chunk = rleft < len ? (size_t)rleft : len;
		regions++;
		mmio |= r->kind == VMEM_REGION_MMIO;
		/* A device write cannot be undone: a write that reaches MMIO must
		 * stay inside that one region, or a failing callback would leave the
		 * rest half-written. */
		if (op == 1 && mmio && regions > 1)
			return VMEM_E_INVAL;
		if (r->kind == VMEM_REGION_RAM) {
			if (is_write && (r->flags & VMEM_SLOT_READONLY))
				return VMEM_E_RANGE;
			if (op >= 2) {
				uint8_t *h = r->host + (gpa - r->gpa);
				void *d = op == 2 ? (void *)buf : h;
				const void *s = op == 2 ? (const void *)h : buf;
				/* buf may be guest memory itself (from vmem_gmem_hva):
				 * vmi_memcpy copies forward, so an overlap moves. */
				if ((uintptr_t)buf < (uintptr_t)h + chunk && (uintptr_t)h < (uintptr_t)buf + chunk)
					vmi_memmove(d, s, chunk);
				else
					vmi_memcpy(d, s, chunk);
			}
		} else if (op >= 2) {
			size_t done = 0;
			while (done < chunk) {
				unsigned sz = mmio_piece(gpa + done, chunk - done, rleft - done);
				uint64_t v = 0;
				if (op == 3)
					vmi_memcpy(&v, buf + done, sz);
				int rc = r->mmio(r->opaque, gpa + done, sz, op == 3, &v);
				if (rc)
					return rc < 0 ? (vmem_err)rc : VMEM_E_IO;
				if (op == 2)
					vmi_memcpy(buf + done, &v, sz);
				done += sz;
			}
		}
		buf = buf ? buf + chunk : buf;
		gpa += chunk, len -= chunk;
	}
	return VMEM_OK;
}

vmem_err vmem_gmem_read(const vmem_gmem *gm, uint64_t gpa, void *buf, size_t len)
{
	vmem_err e = gm_copy(gm, gpa, NULL, len, 0);
	return e ? e : gm_copy(gm, gpa, buf, len, 2);
}

vmem_err vmem_gmem_write(vmem_gmem *gm, uint64_t gpa, const void *buf, size_t len)
{
	/* Check the whole range first so that a failing write changes nothing. */
	vmem_err e = gm_copy(gm, gpa, NULL, len, 1);
	return e ? e : gm_copy(gm, gpa, (unsigned char *)(uintptr_t)buf, len, 3);
}

vmem_err vmem_gmem_read32(const vmem_gmem *gm, uint64_t gpa, uint32_t *val)
{
	if (!val || (gpa & 3))
		return VMEM_E_INVAL;
	return vmem_gmem_read(gm, gpa, val, 4);
}

vmem_err vmem_gmem_read64(const vmem_gmem *gm, uint64_t gpa, uint64_t *val)
{
	if (!val || (gpa & 7))
		return VMEM_E_INVAL;
	return vmem_gmem_read(gm, gpa, val, 8);
}

vmem_err vmem_gmem_write32(vmem_gmem *gm, uint64_t gpa, uint32_t val)
{
	if (gpa & 3)
		return VMEM_E_INVAL;
	return vmem_gmem_write(gm, gpa, &val, 4);
}

vmem_err vmem_gmem_write64(vmem_gmem *gm, uint64_t gpa, uint64_t val)
{
	if (gpa & 7)
		return VMEM_E_INVAL;
	return vmem_gmem_write(gm, gpa, &val, 8);
}

static void *gm_ram_word(vmem_gmem *gm, uint64_t gpa, unsigned size, vmem_err *err)
{
	if (!gm || (gpa & (size - 1))) {
		*err = VMEM_E_INVAL;
		return NULL;
	}
	int i = gm_find(gm, gpa);
	if (i < 0 || gm->r[i].kind != VMEM_REGION_RAM || (gm->r[i].flags & VMEM_SLOT_READONLY)) {
		*err = VMEM_E_RANGE;
		return NULL;
	}
	return gm->r[i].host + (gpa - gm->r[i].gpa);
}

vmem_err vmem_gmem_cmpxchg64(vmem_gmem *gm, uint64_t gpa, uint64_t *expected, uint64_t desired)
{
	vmem_err err = VMEM_OK;
	uint64_t *p = gm_ram_word(gm, gpa, 8, &err);
	if (!p || !expected)
		return p ? VMEM_E_INVAL : err;
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST) ? VMEM_OK : VMEM_E_RETRY;
}

vmem_err vmem_gmem_cmpxchg32(vmem_gmem *gm, uint64_t gpa, uint32_t *expected, uint32_t desired)
{
	vmem_err err = VMEM_OK;
	uint32_t *p = gm_ram_word(gm, gpa, 4, &err);
	if (!p || !expected)
		return p ? VMEM_E_INVAL : err;
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST) ? VMEM_OK : VMEM_E_RETRY;
}

const void *gm_entry_slow(const vmem_gmem *gm, uint64_t gpa, unsigned size,
			  unsigned *hint, bool *writable, uint64_t *val, vmem_err *err)
{
	int i = gm_find(gm, gpa);
	*writable = false;
	if (i >= 0 && gm->r[i].kind == VMEM_REGION_RAM) {
		const struct gm_region *r = &gm->r[i];
		*hint = (unsigned)i;
		/* Remember it for the next walk: a relaxed guess, never trusted unchecked. */
		__atomic_store_n(&((vmem_gmem *)(uintptr_t)gm)->hint, (unsigned)i, __ATOMIC_RELAXED);
		*writable = !(r->flags & VMEM_SLOT_READONLY);
		return r->host + (gpa - r->gpa); /* RAM is 4 KiB granular: the whole entry is in it */
	}
	/* MMIO or unbacked, never written. MMIO holes have byte granularity, so
	 * the entry may span a hole's end: read it as vmem_gmem_read would, piece
	 * by piece, so that no device sees an access beyond its own region. */
	uint64_t v = 0;
	if (vmem_gmem_read(gm, gpa, &v, size)) {
		*err = VMEM_E_RANGE;
		return NULL;
	}
	*val = v;
	return NULL;
}
