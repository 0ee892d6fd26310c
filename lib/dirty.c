/* libvmem dirty-page logging: write-protection faults, EPT dirty-flag harvest, or PML drain, into one bitmap. */
#include <libvmem/dirty.h>
#include <libvmem/ept.h>
#include "dirty_int.h"
#include "ept_map_int.h"
#include "vmem_int.h"

struct vmem_dirty {
	struct vmi_ept_log watch; /* in the EPT's list while the log exists (table changes, leaf_change) */
	const vmem_allocator *alloc;
	vmem_ept *ept;
	uint64_t gpa, size, words;
	uint64_t *bitmap;   /* logged, not yet harvested */
	vmem_dirty_mode mode;  /* read by other logs' PML drains: atomic */
	vmem_pml *const *pml;  /* PML mode: the vCPUs' logs, npml of them */
	unsigned npml;
	vmem_pml *one;         /* vmem_dirty_set_mode's pml: pml is &one */
	bool ad;            /* the EPT has A/D enabled */
	int lock;           /* WP mode: a fault's open and a harvest's re-arm of a page are atomic */
};

static void spin_lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static void spin_unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static void lock(vmem_dirty *d) { spin_lock(&d->lock); }
static void unlock(vmem_dirty *d) { spin_unlock(&d->lock); }

#define PAGE_IDX(d, g) (((g) - (d)->gpa) >> 12)

static inline void bit_set(uint64_t *bm, uint64_t i)
{
	__atomic_fetch_or(&bm[i / 64], 1ull << (i % 64), __ATOMIC_SEQ_CST);
}

bool vmem_pml_log(vmem_pml *pml, uint64_t gpa)
{
	/* SDM 29.3.6: an index outside 0..511 is "log full"; else write, then decrement. */
	if (pml->index > 511)
		return false;
	pml->log[pml->index] = gpa & ~0xfffull;
	pml->index--;
	return true;
}

/* The pages of [lo, hi) (inside the range) were written since the last harvest. */
static void mark_dirty(vmem_dirty *d, uint64_t lo, uint64_t hi)
{
	for (uint64_t g = lo; g < hi; g += 4096)
		bit_set(d->bitmap, PAGE_IDX(d, g));
}

/* A leaf of the range that vmem_ept_map, _unmap or _protect changes from
 * old to ne (vmi_ept_log.leaf; the VMM's EPT changes are ordered with the
 * harvest and the WP fault, dirty.h, so d->lock is not needed).
 * EPT_D mode: a D flag the new entry does not keep (a leaf replaced or
 * removed, alone or with its table) is a write the harvest would never see
 * (SDM 29.3.5): its pages are dirty now. A large leaf's D stands for every
 * page of it. PML mode: nothing is lost, the processor logged the page's
 * GPA when it set D (SDM 29.3.6), in the PML or already in the bitmap.
 * WP mode: a page given W it did not have (mapped, or W added by protect)
 * is armed as the log arms its range: W withheld, the armed mark set, so
 * its first write faults and is logged (SDM 29.3.3.2). Not marked dirty at
 * once, as KVM does when it maps a page writable during logging: KVM
 * makes the entry on the guest's write fault, the write is due; a VMM's
 * map or protect is not a write, and a page only mapped would be reported
 * (and sent again by a migration) at each harvest it is remapped in. A
 * page that keeps W (it was written since the last harvest: the log
 * opened it) stays writable; one the VMM leaves without W is not armed
 * (its rights win). WP mode has no leaf crossing the range's edge
 * (split_edges; maps make 4K leaves while logging), so the arming never
 * reaches a page outside the range. */
static vmem_dirty *log_of(struct vmi_ept_log *w)
{
	return (vmem_dirty *)(void *)((char *)w - offsetof(vmem_dirty, watch));
}

static uint64_t leaf_change(struct vmi_ept_log *w, uint64_t old, uint64_t ne, uint64_t gpa, uint64_t size)
{
	vmem_dirty *d = log_of(w);
	uint64_t lo = gpa > d->gpa ? gpa : d->gpa, end = d->gpa + d->size;
	uint64_t hi = gpa + size < end ? gpa + size : end;
	if (d->mode == VMEM_DIRTY_EPT_D && (old & VMEM_EPT_PERM_MASK) && (old & ~ne & VMEM_EPT_D))
		mark_dirty(d, lo, hi);
	else if (d->mode == VMEM_DIRTY_WP && (ne & ~old & VMEM_EPT_W))
		return (ne & ~VMEM_EPT_W) | VMI_EPT_WP_ARMED;
	return ne;
}

vmem_err vmem_dirty_new(const vmem_allocator *alloc, vmem_ept *ept, uint64_t gpa, uint64_t size, vmem_dirty **out)
{
	if (!ept || !out || !size || ((gpa | size) & 0xfff) || gpa + size < gpa)
		return VMEM_E_INVAL;
	uint64_t eptp = vmem_ept_eptp(ept);
	unsigned levels = (unsigned)((eptp & VMEM_EPTP_PWL_MASK) >> VMEM_EPTP_PWL_SHIFT) + 1;
	if (gpa + size > 1ull << (12 + 9 * levels))
		return VMEM_E_RANGE; /* beyond what the EPT translates (SDM 29.3.2) */
	uint64_t pages = size >> 12, words = (pages + 63) / 64;
	vmem_err err;
	vmem_dirty *d = vmi_handle_new(&alloc, sizeof(*d), &err);
	if (!d)
		return err;
	d->alloc = alloc;
	d->bitmap = vmi_zalloc(alloc, words * 8);
	if (!d->bitmap) {
		vmi_free(alloc, d, sizeof(*d));
		return VMEM_E_NOMEM;
	}
	d->ept = ept;
	d->gpa = gpa;
	d->size = size;
	d->words = words;
	d->ad = (eptp & VMEM_EPTP_AD) != 0;
	d->watch.lo = gpa;
	d->watch.hi = gpa + size;
	d->watch.leaf = leaf_change;
	vmi_ept_log_add(ept, &d->watch); /* nothing left to fail */
	*out = d;
	return VMEM_OK;
}

struct leaf_arg {
	vmem_dirty *d;
	bool changed;
};

/* WP mode marks a leaf whose W it took with VMI_EPT_WP_ARMED; W and the
 * mark change together, one for the other, only under d->lock (and by the
 * VMM's vmem_ept_protect / _map, which drop the mark: their rights win). */
static bool flip_armed(uint64_t *e, uint64_t from)
{
	const uint64_t both = VMEM_EPT_W | VMI_EPT_WP_ARMED;
	if ((__atomic_load_n(e, __ATOMIC_RELAXED) & both) != from)
		return false;
	__atomic_fetch_xor(e, both, __ATOMIC_SEQ_CST); /* a locked op: A/D set meanwhile stay */
	return true;
}

/* Take W from a writable leaf (it is armed). */
static int arm_leaf(void *arg, uint64_t *e, uint64_t gpa, unsigned level)
{
	struct leaf_arg *a = arg;
	(void)gpa, (void)level;
	if (flip_armed(e, VMEM_EPT_W))
		a->changed = true;
	return 0;
}

/* Give W back to an armed leaf (more rights: no flush). */
static int open_leaf(void *arg, uint64_t *e, uint64_t gpa, unsigned level)
{
	(void)arg, (void)gpa, (void)level;
	flip_armed(e, VMI_EPT_WP_ARMED);
	return 0;
}

/* Add what add asks to invalidate to fl (the union of the ranges). */
static void flush_add(vmem_ept_flush *fl, const vmem_ept_flush *add)
{
	if (!add->flags)
		return;
	if (!fl->flags) {
		*fl = *add;
		return;
	}
	fl->flags |= add->flags;
	fl->start = add->start < fl->start ? add->start : fl->start;
	fl->end = add->end > fl->end ? add->end : fl->end;
}

static void note_flush(const vmem_dirty *d, vmem_ept_flush *fl)
{
	vmem_ept_flush r = { VMEM_EPT_FLUSH_INVEPT, d->gpa, d->gpa + d->size };
	flush_add(fl, &r);
}

/* WP mode takes W from whole leaves: a large leaf that crosses an edge of
 * the range is split first (down to 4K at the edge), so that no page outside
 * the range loses write access. Both edges in one split: all or nothing. */
static vmem_err split_edges(vmem_dirty *d, vmem_ept_flush *fl)
{
	uint64_t edge[2] = { d->gpa, d->gpa + d->size - 4096 }, split[2], leaf;
	unsigned n = 0;
	for (unsigned k = 0; k < 2; k++) {
		unsigned level;
		if (vmem_ept_lookup(d->ept, edge[k], &leaf, &level) || level == 1)
			continue;
		uint64_t sz = 1ull << (12 + 9 * (level - 1)), base = edge[k] & ~(sz - 1);
		if (base < d->gpa || base + sz > d->gpa + d->size)
			split[n++] = edge[k];
	}
	vmem_ept_flush sf;
	vmem_err e = n ? vmi_ept_split_pages(d->ept, split, n, &sf) : VMEM_OK;
	if (n && !e)
		flush_add(fl, &sf);
	return e;
}

/* Empty the PML p: each GPA it holds goes into the bitmap of every log of
 * ept in PML mode whose range holds it (a vCPU's PML logs all of them);
 * then the index is 511 again. Valid entries are index+1 .. 511 (all 512
 * after the index wrapped, SDM 29.3.6). */
static void pml_empty(vmem_ept *ept, vmem_pml *p)
{
	/* Two drains of one PML may run at once (its vCPU out of guest mode): atomic index. */
	unsigned idx = __atomic_load_n(&p->index, __ATOMIC_RELAXED), first = idx > 511 ? 0 : idx + 1u;
	for (struct vmi_ept_log *w = vmi_ept_logs(ept); w; w = w->next) {
		vmem_dirty *o = log_of(w);
		if (__atomic_load_n(&o->mode, __ATOMIC_RELAXED) != VMEM_DIRTY_PML)
			continue;
		for (unsigned k = first; k < 512; k++) {
			uint64_t g = p->log[k] & ~0xfffull;
			if (g >= o->gpa && g - o->gpa < o->size)
				bit_set(o->bitmap, PAGE_IDX(o, g));
		}
	}
	__atomic_store_n(&p->index, 511, __ATOMIC_RELAXED);
}

static bool pmls_ok(vmem_pml *const *pml, unsigned n)
{
	if (!pml || !n)
		return false;
	for (unsigned k = 0; k < n; k++)
		if (!pml[k] || !pml[k]->log)
			return false;
	return true;
}

/* Modes whose logs may not share a page (bit m of clash[mode]): a leaf has
 * one W and one D. WP logs share W (a write's violation, SDM 29.3.3.2,
 * reaches one log, which gives W back); EPT_D shares D with EPT_D and PML
 * (D is set only when clear, 29.3.5: a harvest that clears it for one log
 * hides the write from the other; PML clears it to log the next write,
 * 29.3.6). PML logs share the vCPUs' PMLs, which fill every one. */
static const uint8_t clash[4] = {
	[VMEM_DIRTY_WP] = 1u << VMEM_DIRTY_WP,
	[VMEM_DIRTY_EPT_D] = 1u << VMEM_DIRTY_EPT_D | 1u << VMEM_DIRTY_PML,
	[VMEM_DIRTY_PML] = 1u << VMEM_DIRTY_EPT_D,
};

/* Whether another log of d's EPT, on, shares a page with d in a mode of
 * modes (bit m: mode m). */
static bool shares(vmem_dirty *d, unsigned modes)
{
	for (struct vmi_ept_log *w = vmi_ept_logs(d->ept); w; w = w->next)
		if (w != &d->watch && w->on && w->lo < d->watch.hi && d->watch.lo < w->hi &&
		    ((modes >> __atomic_load_n(&log_of(w)->mode, __ATOMIC_RELAXED)) & 1))
			return true;
	return false;
}

/* Logs of an EPT that share pages but no flag (a WP log with an EPT_D or
 * PML one) each write the leaves' flags: W and the armed mark, D. A
 * harvest's re-arm stores a leaf whole where no processor writes it (A
 * and D set, dirty_rearm.c), and another log's harvest or mode switch
 * writing the same leaf between its read and its store would get its own
 * change undone: D set again (no next write sets it, SDM 29.3.5, so the
 * PML or EPT_D log never sees one) or W back without the mark (no next
 * write faults, 29.3.3.2: the WP log never sees one). So the harvests and
 * mode switches of an EPT's logs run one at a time (the EPT's logs lock,
 * taken before a log's own), and a harvest whose pages another log shares
 * clears by locked operations only (a WP fault, under its log's lock
 * alone, may open a leaf meanwhile). */
#define ANY_MODE (1u << VMEM_DIRTY_WP | 1u << VMEM_DIRTY_EPT_D | 1u << VMEM_DIRTY_PML)

/* The mode, with PML mode's n PMLs (n is 0 otherwise). */
static vmem_err set_mode(vmem_dirty *d, vmem_dirty_mode mode, vmem_pml *const *pml, unsigned n, vmem_ept_flush *flush)
{
	vmem_ept_flush fl = { 0, 0, 0 };
	if (!d || (unsigned)mode > VMEM_DIRTY_PML || (mode == VMEM_DIRTY_PML && !pmls_ok(pml, n)))
		return VMEM_E_INVAL;
	if ((mode == VMEM_DIRTY_EPT_D || mode == VMEM_DIRTY_PML) && !d->ad)
		return VMEM_E_INVAL; /* dirty flags need EPTP bit 6 */
	int *logs_lock = vmi_ept_logs_lock(d->ept);
	spin_lock(logs_lock);
	if (shares(d, clash[mode])) {
		spin_unlock(logs_lock);
		return VMEM_E_OVERLAP;
	}
	bool needs_split = mode == VMEM_DIRTY_EPT_D || mode == VMEM_DIRTY_PML;
	vmem_err e = VMEM_OK;
	/* The splits are the only step that can fail: first, so that failure
	 * changes no mode (a split keeps the translations). Under the lock: a
	 * WP fault splits tables too. */
	lock(d);
	if (needs_split) {
		vmem_ept_flush sf;
		e = vmem_ept_split(d->ept, d->gpa, d->size, &sf);
		if (!e)
			flush_add(&fl, &sf);
	} else if (mode == VMEM_DIRTY_WP) {
		e = split_edges(d, &fl);
	}
	if (e) {
		unlock(d);
		spin_unlock(logs_lock);
		return e;
	}
	struct leaf_arg a = { d, false };
	vmem_dirty_mode old = d->mode;
	/* vCPUs may write meanwhile: the new mode sees writes before the old
	 * one stops. WP arms its pages first (a write then faults, and waits
	 * for the lock). A D-flag mode after WP drops the D flags before the
	 * armed pages open (a write since WP began faulted: it is in the
	 * bitmap); after EPT_D or PML it collects them once the old mode
	 * stopped (a D set after its collect or drain is a write of the log,
	 * SDM 29.3.5). */
	if (mode == VMEM_DIRTY_WP)
		vmi_ept_foreach_leaf(d->ept, d->gpa, d->size, arm_leaf, &a);
	if (needs_split && old == VMEM_DIRTY_WP && vmi_ept_harvest_d(d->ept, d->gpa, d->size, NULL))
		a.changed = true;
	/* Leave the old mode. */
	if (old == VMEM_DIRTY_WP && mode != VMEM_DIRTY_WP)
		vmi_ept_foreach_leaf(d->ept, d->gpa, d->size, open_leaf, NULL);
	if (old == VMEM_DIRTY_PML)
		vmem_dirty_pml_drain(d);
	/* EPT_D: the writes so far are D flags; they stay, in the bitmap (nothing
	 * else sets its bits in this mode). */
	if (old == VMEM_DIRTY_EPT_D && vmi_ept_harvest_d(d->ept, d->gpa, d->size, d->bitmap))
		a.changed = true;
	if (old != VMEM_DIRTY_OFF)
		vmi_ept_hold_collapse(d->ept, false);
	/* Enter the new one. */
	__atomic_store_n(&d->mode, VMEM_DIRTY_OFF, __ATOMIC_RELAXED);
	d->npml = 0;
	if (mode == VMEM_DIRTY_PML) {
		/* What the PMLs hold so far goes to the other logs (writes before
		 * logging started are not this one's: D is cleared below). */
		for (unsigned k = 0; k < n; k++)
			pml_empty(d->ept, pml[k]);
		if (n == 1) {
			d->one = pml[0];
			pml = &d->one;
		}
		d->pml = pml;
		d->npml = n;
	}
	__atomic_store_n(&d->mode, mode, __ATOMIC_RELAXED);
	d->watch.on = mode != VMEM_DIRTY_OFF;
	if (mode != VMEM_DIRTY_OFF)
		vmi_ept_hold_collapse(d->ept, true); /* keep 4K granularity while logging */
	/* Writes before logging started are not reported: clear D. */
	if (needs_split && old != VMEM_DIRTY_WP &&
	    vmi_ept_harvest_d(d->ept, d->gpa, d->size, old == VMEM_DIRTY_OFF ? NULL : d->bitmap))
		a.changed = true;
	unlock(d);
	spin_unlock(logs_lock);
	if (a.changed)
		note_flush(d, &fl);
	if (flush)
		*flush = fl;
	return VMEM_OK;
}

vmem_err vmem_dirty_set_mode(vmem_dirty *d, vmem_dirty_mode mode, vmem_pml *pml, vmem_ept_flush *flush)
{
	/* EPT_D mode leaves a log it was handed alone. */
	return set_mode(d, mode, &pml, mode == VMEM_DIRTY_PML, flush);
}

vmem_err vmem_dirty_set_mode_pml(vmem_dirty *d, vmem_pml *const *pml, unsigned n, vmem_ept_flush *flush)
{
	return set_mode(d, VMEM_DIRTY_PML, pml, n, flush);
}

vmem_dirty_mode vmem_dirty_get_mode(const vmem_dirty *d)
{
	return d ? d->mode : VMEM_DIRTY_OFF;
}

void vmem_dirty_free(vmem_dirty *d)
{
	if (!d)
		return;
	if (d->mode != VMEM_DIRTY_OFF)
		vmem_dirty_set_mode(d, VMEM_DIRTY_OFF, NULL, NULL);
	vmi_ept_log_del(d->ept, &d->watch);
	vmi_free(d->alloc, d->bitmap, d->words * 8);
	vmi_free(d->alloc, d, sizeof(*d));
}

vmem_err vmem_dirty_wp_fault(vmem_dirty *d, uint64_t gpa, bool *handled, vmem_ept_flush *flush)
{
	if (!d || !handled)
		return VMEM_E_INVAL;
	*handled = false;
	if (flush)
		flush->flags = 0, flush->start = flush->end = 0;
	if (gpa < d->gpa || gpa - d->gpa >= d->size)
		return VMEM_OK;
	uint64_t page = gpa & ~0xfffull, i = PAGE_IDX(d, page), leaf;
	unsigned level;
	lock(d);
	vmem_err e = VMEM_OK;
	if (vmem_ept_lookup(d->ept, page, &leaf, &level))
		goto out;
	if (!(leaf & VMI_EPT_WP_ARMED)) {
		/* Already made writable by another vCPU, or by leaving WP mode (armed
		 * leaves exist in WP mode only): its stale translation faulted, retry
		 * (SDM 29.4.3.1); or a write protection that is not the log's. */
		*handled = (leaf & VMEM_EPT_W) != 0;
		goto out;
	}
	if (level > 1) {
		/* First write under a large leaf: split down to this 4K page only
		 * (a 1G leaf: into 2M leaves, and this page's 2M into 4K ones), so
		 * that only it opens; the other leaves stay armed. */
		e = vmem_ept_split(d->ept, page, 4096, flush);
		if (e)
			goto out;
	}
	vmi_ept_foreach_leaf(d->ept, page, 4096, open_leaf, NULL);
	bit_set(d->bitmap, i);
	*handled = true; /* more rights need no flush: a stale entry only faults again */
out:
	unlock(d);
	return e;
}

void vmem_dirty_pml_drain_from(vmem_dirty *d, vmem_pml *pml)
{
	if (d && pml && pml->log)
		pml_empty(d->ept, pml);
}

void vmem_dirty_pml_drain(vmem_dirty *d)
{
	for (unsigned k = 0; d && k < d->npml; k++)
		pml_empty(d->ept, d->pml[k]);
}

/* The bitmap is taken with plain loads and stores: nothing sets a bit
 * while a harvest runs. WP mode: faults set bits under d->lock, held
 * by the harvest. PML mode: only PML drains set bits (this log's or
 * another log's of the EPT), from PMLs this harvest drained first (every
 * vCPU's, dirty.h) and which do not change meanwhile (their vCPUs are
 * out of guest mode): a drain running alongside sets only bits this
 * harvest's drain of the same PML set too, or had set all of its bits
 * before this harvest's drain found that PML empty (tests/test_dirty.c,
 * test_race_pml_drainer). EPT_D and OFF modes:
 * nothing sets bits (leaf_change does, in EPT_D mode, only for a change of
 * the tables, which does not overlap a harvest). 64 words at a time; no branch
 * depends on one word (at 1 % dirty half the words are zero, at random:
 * such a branch would mispredict on each); the non-zero ones are found
 * by a mask. scan (EPT_D mode): out already holds the leaves' D flags, the
 * bitmap's bits are ORed in; otherwise each word taken is re-armed (r).
 * One copy per mode, its flags constants. */
static inline __attribute__((always_inline)) void
take_words(vmem_dirty *d, uint64_t *out, struct vmi_rearm *r, const bool scan, const bool rearm)
{
	uint64_t *bm = d->bitmap, words = d->words, gpa = d->gpa;
	for (uint64_t w = 0; w < words; w += 64) {
		unsigned nw = words - w < 64 ? (unsigned)(words - w) : 64;
		uint64_t nz = 0;
		for (unsigned k = 0; k < nw; k++) {
			uint64_t bits = __atomic_load_n(&bm[w + k], __ATOMIC_RELAXED);
			out[w + k] = scan ? out[w + k] | bits : bits;
			nz |= (uint64_t)(bits != 0) << k;
		}
		for (; nz; nz &= nz - 1) {
			uint64_t k = w + (uint64_t)__builtin_ctzll(nz);
			__atomic_store_n(&bm[k], 0, __ATOMIC_RELAXED);
			if (!rearm)
				continue;
			vmi_rearm_word(r, gpa + (k << 18), out[k]); /* out[k] is the word taken: not EPT_D mode */
		}
	}
}

static __attribute__((noinline)) void take_bitmap(vmem_dirty *d, uint64_t *out, struct vmi_rearm *r)
{
	switch (d->mode) {
	case VMEM_DIRTY_EPT_D:
		take_words(d, out, r, true, false);
		break;
	case VMEM_DIRTY_WP:
	case VMEM_DIRTY_PML:
		take_words(d, out, r, false, true);
		break;
	default:
		take_words(d, out, r, false, false);
		break;
	}
}

vmem_err vmem_dirty_harvest(vmem_dirty *d, uint64_t *out, vmem_ept_flush *flush)
{
	if (!d || !out)
		return VMEM_E_INVAL;
	vmem_ept_flush fl = { 0, 0, 0 };
	struct leaf_arg a = { d, false };
	int *logs_lock = vmi_ept_logs_lock(d->ept);
	spin_lock(logs_lock); /* one harvest or mode switch of the EPT's logs at a time (shares) */
	bool scan = d->mode == VMEM_DIRTY_EPT_D;
	if (scan) {
		/* Clear D on every leaf and report it if it was set (atomic: a racing
		 * D write is seen now or left for the next harvest). Leaves are 4K:
		 * EPT_D mode split large leaves when it started. */
		for (uint64_t w = 0; w < d->words; w++)
			out[w] = 0;
		if (vmi_ept_harvest_d(d->ept, d->gpa, d->size, out))
			a.changed = true;
	} else if (d->mode == VMEM_DIRTY_PML) {
		vmem_dirty_pml_drain(d);
	}
	/* Take what faults or the PML logged; re-arm those pages. */
	bool wp = d->mode == VMEM_DIRTY_WP;
	struct vmi_rearm r;
	/* WP: take write access away again; PML: log the next write. */
	vmi_rearm_init(&r, d->ept, wp ? VMEM_EPT_W : VMEM_EPT_D, !shares(d, ANY_MODE));
	if (wp)
		lock(d);
	take_bitmap(d, out, &r);
	if (vmi_rearm_finish(&r))
		a.changed = true;
	if (wp)
		unlock(d);
	spin_unlock(logs_lock);
	if (a.changed)
		note_flush(d, &fl);
	if (flush)
		*flush = fl;
	return VMEM_OK;
}
