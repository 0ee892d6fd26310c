/* libvmem EPT tables a VMM keeps: range map/unmap/protect with large leaves, split, collapse, all-or-nothing. */
#include <libvmem/ept_map.h>
#include "vmem_int.h"
#include "ept_map_int.h"

#define EPT_ADDR_MASK VMI_BITS(51, 12)
#define EPT_ENTRIES 512u
/* Host-physical addresses an entry can hold: bits 51:12 (SDM 29.3.2; MAXPHYADDR <= 52, SDM 4.1.4). */
#define EPT_PA_LIMIT (1ull << 52)
/* Attribute bits a leaf carries besides its address, A and D. */
#define EPT_LEAF_ATTR (VMEM_EPT_PERM_MASK | VMEM_EPT_MT_MASK | VMEM_EPT_IPAT | VMEM_EPT_PS | VMEM_EPT_SVE)

struct ept_node {
	uint64_t *pt;              /* the table page hardware reads */
	uint64_t phys;             /* its host-physical address */
	struct ept_node **child;   /* next-level nodes (NULL for a level-1 table) */
	uint32_t present;          /* entries with any of R/W/X/XU set */
	unsigned level;
	struct ept_node *next;     /* pool / zombie list link */
};

struct vmem_ept {
	const vmem_allocator *alloc;
	vmem_ept_config cfg;
	struct ept_node *root;
	uint64_t nonleaf;          /* rights in a non-leaf entry: everything (leaves decide) */
	struct { uint64_t lo, hi; } *grant;
	unsigned ngrant, gcap;
	struct ept_node *zombies;  /* released tables awaiting the caller's INVEPT */
	vmem_ept_stats st;
	unsigned collapse_holds;   /* dirty logging keeps 4K granularity: no collapse, no new large leaf */
	struct vmi_ept_log *logs;  /* the dirty logs of this EPT (ept_map_int.h) */
	int logs_lock;             /* vmi_ept_logs_lock */
};

/* One operation on a range; also the dry run that counts the tables it needs. */
enum ept_op { OP_MAP, OP_UNMAP, OP_PROTECT, OP_SPLIT };
struct ept_ctx {
	enum ept_op op;
	uint64_t gpa0, hpa0, perm, attr;
	bool dry;
	unsigned need[6];          /* dry run: tables needed per level */
	struct ept_node *pool[6];  /* real run: preallocated tables per level */
	vmem_ept_flush fl;
};

/* Zero a context with vmi_memset: an initializer would let clang emit a
 * call to memset, which the freestanding core does not have. */
static void ctx_init(struct ept_ctx *c, enum ept_op op)
{
	vmi_memset(c, 0, sizeof(*c));
	c->op = op;
}

static inline uint64_t level_size(unsigned level) { return 1ull << (12 + 9 * (level - 1)); }
static inline bool present(uint64_t e) { return e & VMEM_EPT_PERM_MASK; }
static inline void store_entry(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/* Entries in use change under us: a processor sets A and D (SDM 29.3.5), a
 * dirty log its flags. Read them whole, as an atomic (a plain MOV on x86). */
static inline uint64_t load_entry(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

static uint64_t page_phys(const vmem_ept *ept, const void *page)
{
	if (ept->alloc->page_phys)
		return ept->alloc->page_phys(ept->alloc->ctx, page);
	return (uint64_t)(uintptr_t)page;
}

static void node_destroy(const vmem_ept *ept, struct ept_node *n)
{
	if (!n)
		return;
	if (n->child)
		vmi_free(ept->alloc, n->child, EPT_ENTRIES * sizeof(*n->child));
	if (n->pt)
		ept->alloc->free_page(ept->alloc->ctx, n->pt);
	vmi_free(ept->alloc, n, sizeof(*n));
}

/* Host-physical addresses below 2^MAXPHYADDR: an entry's bits 51:M are reserved (SDM 29.3.3.1). */
static uint64_t pa_limit(const vmem_ept *ept)
{
	return ept->cfg.maxphyaddr ? 1ull << ept->cfg.maxphyaddr : EPT_PA_LIMIT;
}

/* A table page: NULL with *err VMEM_E_NOMEM, or VMEM_E_RANGE when page_phys
 * puts it where no entry can point (bits 51:M reserved, SDM 29.3.3.1; bits
 * 11:0 are the entry's rights and type, 29.3.2). */
static struct ept_node *node_create(const vmem_ept *ept, unsigned level, vmem_err *err)
{
	struct ept_node *n = vmi_zalloc(ept->alloc, sizeof(*n));
	*err = VMEM_E_NOMEM;
	if (!n)
		return NULL;
	n->level = level;
	n->pt = ept->alloc->alloc_page(ept->alloc->ctx);
	if (n->pt && level > 1)
		n->child = vmi_zalloc(ept->alloc, EPT_ENTRIES * sizeof(*n->child));
	if (n->pt && (level == 1 || n->child)) {
		n->phys = page_phys(ept, n->pt); /* alloc_page returns a zeroed page (alloc.h) */
		if (!(n->phys & 0xfff) && n->phys < pa_limit(ept))
			return n;
		*err = VMEM_E_RANGE;
	}
	node_destroy(ept, n);
	return NULL;
}

/* Whether a log that is on watches some of [lo, hi). */
static bool watched(const vmem_ept *ept, uint64_t lo, uint64_t hi)
{
	for (const struct vmi_ept_log *l = ept->logs; l; l = l->next)
		if (l->on && lo < l->hi && hi > l->lo)
			return true;
	return false;
}

/* Replace the leaf slot p, mapping [gpa, gpa + size), by (its entry & keep)
 * | ne (0: remove it), as the logs watching it make of the change (WP mode
 * arms a page given W; EPT_D mode records a D flag that goes). By
 * compare-and-swap: an A or D flag a processor sets meanwhile (SDM 29.3.5)
 * is kept (keep) or seen by the logs, never lost. Returns the old entry. */
static uint64_t set_leaf(vmem_ept *ept, uint64_t *p, uint64_t keep, uint64_t ne, uint64_t gpa, uint64_t size)
{
	uint64_t e = __atomic_load_n(p, __ATOMIC_RELAXED), v;
	do {
		v = (e & keep) | ne;
		for (struct vmi_ept_log *l = ept->logs; l; l = l->next)
			if (l->on && gpa < l->hi && gpa + size > l->lo)
				v = l->leaf(l, e, v, gpa, size);
	} while (v != e && !__atomic_compare_exchange_n(p, &e, v, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	return e;
}

/* Release a subtree to the zombie list: its pages stay untouched until the
 * caller's INVEPT (a processor may still be walking them, SDM 29.4.3.1),
 * but for the leaves a log watches when they go (gone: an unmap, or a map
 * replacing the table): each is taken by set_leaf, not present from then
 * on, so that no D flag is set in it unseen (a processor walking the table
 * meanwhile finds no translation, as after the INVEPT). A collapse (gone
 * false) keeps the translations and their flags in the large leaf. */
static void count_leaf(vmem_ept *ept, unsigned level, int delta);

static void zombify(vmem_ept *ept, struct ept_node *n, uint64_t base, struct ept_ctx *c, bool gone)
{
	uint64_t esz = level_size(n->level);
	gone = gone && watched(ept, base, base + EPT_ENTRIES * esz);
	for (unsigned i = 0; i < EPT_ENTRIES; i++) {
		if (n->child && n->child[i]) {
			zombify(ept, n->child[i], base + i * esz, c, gone);
		} else if (present(load_entry(&n->pt[i]))) {
			count_leaf(ept, n->level, -1); /* the leaves go with the table */
			if (gone)
				set_leaf(ept, &n->pt[i], 0, 0, base + i * esz, esz);
		}
	}
	n->next = ept->zombies;
	ept->zombies = n;
	ept->st.table_pages--;
	c->fl.flags |= VMEM_EPT_FLUSH_INVEPT | VMEM_EPT_FLUSH_TABLES_FREED;
}

static void count_leaf(vmem_ept *ept, unsigned level, int delta)
{
	uint64_t *ctr = level == 1 ? &ept->st.leaves_4k : level == 2 ? &ept->st.leaves_2m : &ept->st.leaves_1g;
	*ctr += (uint64_t)(int64_t)delta;
}

/* While dirty logging holds 4K granularity, a map makes no large leaf
 * either: a 2M/1G leaf's D flag would stand for all its pages (SDM 29.3.5). */
static bool leaf_allowed(const vmem_ept *ept, unsigned level)
{
	return level == 1 || (!ept->collapse_holds && (level == 2 || (level == 3 && ept->cfg.gbpages)));
}

static struct ept_node *pool_take(struct ept_ctx *c, unsigned level)
{
	struct ept_node *n = c->pool[level];
	VMI_ASSERT(n); /* the dry run counted every table this run creates */
	c->pool[level] = n->next;
	n->next = NULL;
	return n;
}

static void note_change(struct ept_ctx *c, uint64_t lo, uint64_t hi)
{
	if (c->fl.start == c->fl.end) {
		c->fl.start = lo;
		c->fl.end = hi;
	}
	c->fl.start = lo < c->fl.start ? lo : c->fl.start;
	c->fl.end = hi > c->fl.end ? hi : c->fl.end;
	c->fl.flags |= VMEM_EPT_FLUSH_INVEPT;
}

/* A table replacing a large leaf: 512 leaves one level down, the same translations. */
static void split_fill(struct ept_node *t, uint64_t leaf)
{
	uint64_t step = level_size(t->level);
	uint64_t base = leaf & EPT_ADDR_MASK & ~(level_size(t->level + 1) - 1);
	uint64_t attr = (leaf & ~EPT_ADDR_MASK) & ~(t->level == 1 ? VMEM_EPT_PS : 0);
	for (unsigned i = 0; i < EPT_ENTRIES; i++)
		t->pt[i] = (base + i * step) | attr;
	t->present = EPT_ENTRIES;
}

/* If table n (under parent entry idx, region at ebase) is 512 leaves that one
 * large leaf can express, replace it by that leaf (SDM 29.3.2: 2M/1G leaves).
 * Its A and D are those the leaves had when read: one a processor sets in
 * them later, up to the INVEPT (through a cached entry pointing at the
 * table, SDM 29.4.3.1), stays in the released table. No dirty log loses a
 * write so (none is on: collapse_holds); carrying them would need each
 * leaf taken away (not present) before the INVEPT. */
static void try_collapse(vmem_ept *ept, struct ept_node *parent, unsigned idx, uint64_t ebase,
			 struct ept_ctx *c)
{
	struct ept_node *n = parent->child[idx];
	if (ept->collapse_holds)
		return;
	if (!n || n->present != EPT_ENTRIES || !leaf_allowed(ept, parent->level))
		return;
	uint64_t step = level_size(n->level), e0 = load_entry(&n->pt[0]);
	uint64_t base = e0 & EPT_ADDR_MASK & ~(step - 1);
	if (base & (level_size(parent->level) - 1))
		return;
	uint64_t attr = e0 & EPT_LEAF_ATTR & ~VMEM_EPT_PS, ad = 0;
	for (unsigned i = 0; i < EPT_ENTRIES; i++) {
		uint64_t e = load_entry(&n->pt[i]);
		if (n->child && n->child[i])
			return; /* an entry that is a table: nothing to merge at this level */
		if ((e & EPT_LEAF_ATTR & ~VMEM_EPT_PS) != attr || (e & EPT_ADDR_MASK & ~(step - 1)) != base + i * step)
			return;
		ad |= e & (VMEM_EPT_A | VMEM_EPT_D);
	}
	store_entry(&parent->pt[idx], base | attr | VMEM_EPT_PS | ad);
	parent->child[idx] = NULL;
	count_leaf(ept, parent->level, 1);
	zombify(ept, n, ebase, c, false); /* also uncounts its 512 leaves */
	/* Bit 7 of the parent entry changed: flush the region (SDM 29.4.3.4). */
	note_change(c, ebase, ebase + level_size(parent->level));
}

/* A present leaf that already is ne but for its A/D flags: left as it is,
 * since clearing A or D needs an INVEPT (SDM vol. 3C 29.4.3.4). */
static inline bool same_translation(uint64_t e, uint64_t ne)
{
	return present(e) && (e & ~(VMEM_EPT_A | VMEM_EPT_D)) == ne;
}

/* Map a run of 4K leaves in one page table: the hot loop of a large 4K map
 * (through set_leaf where a log watches). */
static void map_4k_run(vmem_ept *ept, struct ept_node *n, uint64_t base, uint64_t lo, uint64_t hi,
		       struct ept_ctx *c)
{
	unsigned first = (unsigned)((lo - base) >> 12), last = (unsigned)((hi - 1 - base) >> 12);
	uint64_t ne = (c->hpa0 + (lo - c->gpa0)) | c->attr;
	unsigned added = 0;
	bool changed = false, w = watched(ept, lo, hi);
	for (unsigned i = first; i <= last; i++, ne += 4096) {
		uint64_t e = load_entry(&n->pt[i]);
		if (same_translation(e, ne))
			continue;
		changed |= present(e);
		added += !present(e);
		if (w)
			set_leaf(ept, &n->pt[i], 0, ne, base + ((uint64_t)i << 12), 4096);
		else
			store_entry(&n->pt[i], ne);
	}
	n->present += added;
	ept->st.leaves_4k += added;
	if (changed)
		note_change(c, lo, hi);
}

/* Map entries [i, last] of table n (level L >= 2), each wholly inside the
 * range with an aligned host-physical address, as large leaves, while they
 * are empty (no entry, no table): the hot loop of a large map. Returns the
 * first index left to the general code (a present entry or a table), or last + 1. */
static unsigned map_large_run(vmem_ept *ept, struct ept_node *n, unsigned L, uint64_t base, unsigned i,
			      unsigned last, struct ept_ctx *c)
{
	const unsigned sh = 12 + 9 * (L - 1);
	uint64_t ne = (c->hpa0 + (base + ((uint64_t)i << sh) - c->gpa0)) | c->attr | VMEM_EPT_PS;
	unsigned first = i;
	for (; i <= last; i++, ne += 1ull << sh) {
		if (load_entry(&n->pt[i]) || n->child[i])
			break;
		store_entry(&n->pt[i], ne);
	}
	n->present += i - first;
	count_leaf(ept, L, (int)(i - first));
	return i;
}

/* Apply c->op to [lo, hi) inside table n (level L), whose region starts at base. */
static void range_op(vmem_ept *ept, struct ept_node *n, unsigned L, uint64_t base,
		     uint64_t lo, uint64_t hi, struct ept_ctx *c)
{
	if (c->dry && L == 1)
		return; /* a 4K-leaf table never needs a table below it */
	if (c->op == OP_MAP && L == 1) {
		map_4k_run(ept, n, base, lo, hi, c);
		return;
	}
	const unsigned sh = 12 + 9 * (L - 1);
	uint64_t esz = level_size(L);
	unsigned first = (unsigned)((lo - base) >> sh), last = (unsigned)((hi - 1 - base) >> sh);
	/* A map whose entries [rfirst, rend) are whole and, all of them, at an
	 * aligned host-physical address: large leaves in a run (map_large_run);
	 * the dry run has nothing to count there (a leaf needs no table). */
	unsigned rfirst = (unsigned)((lo - base + esz - 1) >> sh), rend = (unsigned)((hi - base) >> sh);
	if (c->op != OP_MAP || !leaf_allowed(ept, L) || ((c->hpa0 - c->gpa0) & (esz - 1)))
		rend = 0; /* no run */
	for (unsigned i = first; i <= last; i++) {
		if (i >= rfirst && i < rend) {
			if (!c->dry)
				i = map_large_run(ept, n, L, base, i, rend - 1, c);
			if (c->dry || i >= rend) {
				i = rend - 1;
				continue;
			}
		}
		uint64_t ebase = base + i * esz, elo = lo > ebase ? lo : ebase;
		uint64_t ehi = hi < ebase + esz ? hi : ebase + esz;
		bool full = elo == ebase && ehi == ebase + esz;
		uint64_t e = n ? load_entry(&n->pt[i]) : 0;
		struct ept_node *ch = n && n->child ? n->child[i] : NULL;
		bool is_leaf = present(e) && !ch;
		/* Dry run below a table not yet made: for map it starts empty; for
		 * unmap/protect it can only be the split of a large leaf (all present). */
		bool vpresent = n ? present(e) : c->op != OP_MAP;
		bool vleaf = n ? is_leaf : c->op != OP_MAP;

		if (c->op == OP_MAP) {
			uint64_t hpa = c->hpa0 + (ebase - c->gpa0);
			if (full && leaf_allowed(ept, L) && !(hpa & (esz - 1))) {
				if (c->dry)
					continue;
				uint64_t ne = hpa | c->attr | (L > 1 ? VMEM_EPT_PS : 0);
				if (!ch && same_translation(e, ne))
					continue;
				/* A large leaf: no log is on (leaf_allowed), none to tell. */
				if (ch)
					zombify(ept, ch, ebase, c, true), n->child[i] = NULL;
				if (present(e)) {
					note_change(c, ebase, ebase + esz);
					if (!ch)
						count_leaf(ept, L, -1);
				} else {
					n->present++;
				}
				store_entry(&n->pt[i], ne);
				count_leaf(ept, L, 1);
				continue;
			}
			if (is_leaf && L > 1 && same_translation(e, hpa | c->attr | VMEM_EPT_PS))
				continue; /* the large leaf maps this part so already: no split */
		} else {
			if (!vpresent)
				continue;               /* holes stay holes */
			/* A leaf with these rights already (and no write-protection
			 * logging's mark, which the VMM's rights remove): no split. */
			if (c->op == OP_PROTECT && vleaf && (e & (VMEM_EPT_PERM_MASK | VMI_EPT_WP_ARMED)) == c->perm)
				continue;
			if (c->op == OP_SPLIT && (L == 1 || !vleaf))
				goto descend;           /* 4K leaves are done; tables are walked */
			if (c->op != OP_SPLIT && full && (vleaf || c->op == OP_UNMAP)) {
				if (c->dry)
					continue;
				if (c->op == OP_UNMAP) {
					if (ch) {
						zombify(ept, ch, ebase, c, true), n->child[i] = NULL;
						store_entry(&n->pt[i], 0);
					} else {
						count_leaf(ept, L, -1);
						set_leaf(ept, &n->pt[i], 0, 0, ebase, esz);
					}
					n->present--;
				} else {
					/* The rights perm, the A/D flags a processor may set
					 * meanwhile kept; the VMM's rights win over WP
					 * logging's (its armed mark goes; a log re-arms a
					 * page given W). */
					uint64_t old = set_leaf(ept, &n->pt[i], ~(VMEM_EPT_PERM_MASK | VMI_EPT_WP_ARMED), c->perm,
								ebase, esz);
					/* Fewer rights must be flushed; more rights need not (a stale
					 * translation then only causes a spurious EPT violation). */
					if ((old & VMEM_EPT_PERM_MASK) & ~c->perm)
						note_change(c, ebase, ebase + esz);
				}
				if (c->op == OP_UNMAP)
					note_change(c, ebase, ebase + esz);
				continue;
			}
		}
descend:
		if (L == 1)
			continue;
		/* Go one level down: into the existing table, a split of a large leaf, or a new table. */
		if (c->dry) {
			if (!ch)
				c->need[L - 1]++;
			range_op(ept, ch, L - 1, ebase, elo, ehi, c);
			continue;
		}
		if (!ch) {
			ch = pool_take(c, L - 1);
			if (is_leaf) {
				/* The table replaces the leaf by compare-and-swap, refilled
				 * from the leaf as it is now if that failed: an A or D flag a
				 * processor set meanwhile (SDM 29.3.5) goes into the 512
				 * leaves (as KVM's tdp_mmu_split_huge_page retries its link). */
				do
					split_fill(ch, e);
				while (!__atomic_compare_exchange_n(&n->pt[i], &e, ch->phys | ept->nonleaf, false,
								    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
				count_leaf(ept, L, -1);
				count_leaf(ept, L - 1, (int)EPT_ENTRIES);
				/* Same translations at a new page size: flush (SDM 29.4.3.1 / 4.10.4.2). */
				note_change(c, ebase, ebase + esz);
			} else {
				n->present++;
				store_entry(&n->pt[i], ch->phys | ept->nonleaf);
			}
			ept->st.table_pages++;
			n->child[i] = ch;
		}
		range_op(ept, ch, L - 1, ebase, elo, ehi, c);
		if (ch->present == 0) {
			store_entry(&n->pt[i], 0);
			n->child[i] = NULL;
			n->present--;
			zombify(ept, ch, ebase, c, false); /* empty */
		} else {
			try_collapse(ept, n, i, ebase, c);
		}
	}
}

static void pool_release(vmem_ept *ept, struct ept_ctx *c)
{
	for (unsigned l = 0; l < 6; l++)
		while (c->pool[l]) {
			struct ept_node *n = c->pool[l];
			c->pool[l] = n->next;
			node_destroy(ept, n);
		}
}

/* Dry run, preallocate exactly what it counted, then apply: nothing can
 * fail midway. The nr ranges [gpa[k], gpa[k] + size[k]) in turn, each dry
 * run on the tables as they are (splits only for nr > 1: one range's
 * split then needs no more tables than counted, maybe fewer). */
static vmem_err run_op_n(vmem_ept *ept, struct ept_ctx *c, const uint64_t *gpa, const uint64_t *size,
			 unsigned nr, vmem_ept_flush *flush)
{
	unsigned top = ept->cfg.levels;
	for (unsigned k = 0; k < nr; k++) {
		if (!size[k] || ((gpa[k] | size[k]) & 0xfff) || gpa[k] + size[k] < gpa[k])
			return VMEM_E_INVAL;
		if (gpa[k] + size[k] > (1ull << (12 + 9 * top)))
			return VMEM_E_RANGE; /* beyond what this EPT translates */
	}
	c->dry = true;
	for (unsigned k = 0; k < nr; k++)
		range_op(ept, ept->root, top, 0, gpa[k], gpa[k] + size[k], c);
	for (unsigned l = 1; l < top; l++)
		for (unsigned k = 0; k < c->need[l]; k++) {
			vmem_err err;
			struct ept_node *n = node_create(ept, l, &err);
			if (!n) {
				pool_release(ept, c);
				return err;
			}
			n->next = c->pool[l];
			c->pool[l] = n;
		}
	c->dry = false;
	for (unsigned k = 0; k < nr; k++)
		range_op(ept, ept->root, top, 0, gpa[k], gpa[k] + size[k], c);
	pool_release(ept, c); /* collapses may leave some unused */
	if (flush)
		*flush = c->fl;
	return VMEM_OK;
}

static vmem_err run_op(vmem_ept *ept, struct ept_ctx *c, uint64_t gpa, uint64_t size, vmem_ept_flush *flush)
{
	return run_op_n(ept, c, &gpa, &size, 1, flush);
}

static bool granted(const vmem_ept *ept, uint64_t hpa, uint64_t size)
{
	for (unsigned i = 0; i < ept->ngrant; i++)
		if (hpa >= ept->grant[i].lo && hpa + size <= ept->grant[i].hi)
			return true;
	return false;
}

vmem_err vmem_ept_map(vmem_ept *ept, uint64_t gpa, uint64_t hpa, uint64_t size,
		      uint64_t perm, unsigned mt, bool ipat, vmem_ept_flush *flush)
{
	if (!ept || (perm & ~VMEM_EPT_PERM_MASK) || !(perm & VMEM_EPT_PERM_MASK))
		return VMEM_E_INVAL;
	if ((perm & VMEM_EPT_W) && !(perm & VMEM_EPT_R))
		return VMEM_E_INVAL;          /* write without read is a misconfiguration (SDM 29.3.3.1) */
	if (!(perm & VMEM_EPT_R) && !ept->cfg.exec_only)
		return VMEM_E_INVAL;          /* execute-only needs IA32_VMX_EPT_VPID_CAP bit 0 */
	if ((perm & VMEM_EPT_XU) && !ept->cfg.mbec)
		return VMEM_E_INVAL;
	if (mt == 2 || mt == 3 || mt > 6 || (hpa & 0xfff))
		return VMEM_E_INVAL;          /* reserved memory types */
	if (hpa + size < hpa || !granted(ept, hpa, size))
		return VMEM_E_RANGE;
	struct ept_ctx c;
	ctx_init(&c, OP_MAP);
	c.gpa0 = gpa;
	c.hpa0 = hpa;
	c.perm = perm;
	c.attr = perm | ((uint64_t)mt << VMEM_EPT_MT_SHIFT) | (ipat ? VMEM_EPT_IPAT : 0);
	return run_op(ept, &c, gpa, size, flush);
}

vmem_err vmem_ept_unmap(vmem_ept *ept, uint64_t gpa, uint64_t size, vmem_ept_flush *flush)
{
	if (!ept)
		return VMEM_E_INVAL;
	struct ept_ctx c;
	ctx_init(&c, OP_UNMAP);
	return run_op(ept, &c, gpa, size, flush);
}

vmem_err vmem_ept_protect(vmem_ept *ept, uint64_t gpa, uint64_t size, uint64_t perm, vmem_ept_flush *flush)
{
	if (!ept || (perm & ~VMEM_EPT_PERM_MASK) || !(perm & VMEM_EPT_PERM_MASK) ||
	    ((perm & VMEM_EPT_W) && !(perm & VMEM_EPT_R)) ||
	    (!(perm & VMEM_EPT_R) && !ept->cfg.exec_only) || ((perm & VMEM_EPT_XU) && !ept->cfg.mbec))
		return VMEM_E_INVAL;
	struct ept_ctx c;
	ctx_init(&c, OP_PROTECT);
	c.perm = perm;
	return run_op(ept, &c, gpa, size, flush);
}

vmem_err vmi_ept_split_pages(vmem_ept *ept, const uint64_t *gpa, unsigned n, vmem_ept_flush *flush)
{
	const uint64_t size[2] = { 4096, 4096 };
	if (!ept || n > 2)
		return VMEM_E_INVAL;
	struct ept_ctx c;
	ctx_init(&c, OP_SPLIT);
	ept->collapse_holds++; /* the split tables are uniform by construction */
	vmem_err e = run_op_n(ept, &c, gpa, size, n, flush);
	ept->collapse_holds--;
	return e;
}

vmem_err vmem_ept_split(vmem_ept *ept, uint64_t gpa, uint64_t size, vmem_ept_flush *flush)
{
	if (!ept)
		return VMEM_E_INVAL;
	struct ept_ctx c;
	ctx_init(&c, OP_SPLIT);
	ept->collapse_holds++; /* the split tables are uniform by construction */
	vmem_err e = run_op(ept, &c, gpa, size, flush);
	ept->collapse_holds--;
	return e;
}

/* Pushed whole (release): a PML drain walking the list meanwhile sees it or not. */
void vmi_ept_log_add(vmem_ept *ept, struct vmi_ept_log *log)
{
	log->next = __atomic_load_n(&ept->logs, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&ept->logs, &log->next, log, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

void vmi_ept_log_del(vmem_ept *ept, struct vmi_ept_log *log)
{
	struct vmi_ept_log **pp = &ept->logs;
	while (*pp && *pp != log)
		pp = &(*pp)->next;
	if (*pp)
		*pp = log->next;
}

struct vmi_ept_log *vmi_ept_logs(const vmem_ept *ept)
{
	return __atomic_load_n(&ept->logs, __ATOMIC_ACQUIRE);
}

int *vmi_ept_logs_lock(vmem_ept *ept)
{
	return &ept->logs_lock;
}

void vmi_ept_hold_collapse(vmem_ept *ept, bool hold)
{
	if (hold)
		ept->collapse_holds++;
	else if (ept->collapse_holds)
		ept->collapse_holds--;
}

static int leaves_in(struct ept_node *n, unsigned L, uint64_t base, uint64_t lo, uint64_t hi,
		     int (*fn)(void *arg, uint64_t *entry, uint64_t gpa, unsigned level), void *arg)
{
	uint64_t esz = level_size(L);
	unsigned first = (unsigned)((lo - base) / esz), last = (unsigned)((hi - 1 - base) / esz);
	for (unsigned i = first; i <= last; i++) {
		uint64_t ebase = base + i * esz;
		int rc;
		if (!present(load_entry(&n->pt[i])))
			continue;
		if (n->child && n->child[i])
			rc = leaves_in(n->child[i], L - 1, ebase, lo > ebase ? lo : ebase,
				       hi < ebase + esz ? hi : ebase + esz, fn, arg);
		else
			rc = fn(arg, &n->pt[i], ebase, L);
		if (rc)
			return rc;
	}
	return 0;
}

/* Clear D of a present leaf that has it (the plain read first: a clean leaf
 * takes no locked write; a D set after the read stays for the next
 * harvest). true if this cleared it. */
static inline bool clear_d(uint64_t *p)
{
	uint64_t e = __atomic_load_n(p, __ATOMIC_RELAXED);
	if (!(e & VMEM_EPT_D) || !present(e))
		return false;
	return (__atomic_fetch_and(p, ~VMEM_EPT_D, __ATOMIC_SEQ_CST) & VMEM_EPT_D) != 0;
}

/* A leaf of the dirty harvest: clear D and report the leaf's first page. */
static inline bool harvest_leaf(uint64_t *p, uint64_t ebase, uint64_t org, uint64_t *out)
{
	if (!clear_d(p))
		return false;
	uint64_t i = (ebase - org) >> 12;
	if (out)
		out[i / 64] |= 1ull << (i % 64);
	return true;
}

/* The 8 leaves of a line of 4K leaves (page gpa first, all in the range):
 * clear_d each, and report the cleared ones with one mask. */
static bool harvest_line(uint64_t *l, uint64_t gpa, uint64_t org, uint64_t *out)
{
	uint64_t m = 0;
	for (unsigned k = 0; k < 8; k++)
		if (clear_d(&l[k]))
			m |= 1ull << k;
	if (m && out) {
		uint64_t i = (gpa - org) >> 12;
		unsigned sh = (unsigned)(i % 64);
		out[i / 64] |= m << sh;
		if (sh > 56) /* the line's pages go on into the next word */
			out[i / 64 + 1] |= m >> (64 - sh);
	}
	return m != 0;
}

/* The D flags of one 64-byte line of 8 leaves, ORed (plain loads). Only a
 * filter: a D it misses was set after the read and stays for the next
 * harvest, as with harvest_leaf's own first read. */
static inline uint64_t line_d(const uint64_t *l)
{
	return (l[0] | l[1] | l[2] | l[3] | l[4] | l[5] | l[6] | l[7]) & VMEM_EPT_D;
}

/* Entries [first, last] of a table of 4K leaves (level 1). A clean line of
 * 8 leaves costs its read only; a line with a D flag takes harvest_line
 * (locked clear of the dirty leaves). */
static bool harvest_pt(uint64_t *pt, unsigned first, unsigned last, uint64_t base, uint64_t org, uint64_t *out)
{
	bool any = false;
	unsigned i = first;
	for (; i <= last && (i & 7); i++)
		any |= harvest_leaf(&pt[i], base + ((uint64_t)i << 12), org, out);
	for (; i + 7 <= last; i += 8)
		if (line_d(&pt[i]))
			any |= harvest_line(&pt[i], base + ((uint64_t)i << 12), org, out);
	for (; i <= last; i++)
		any |= harvest_leaf(&pt[i], base + ((uint64_t)i << 12), org, out);
	return any;
}

static bool harvest_in(struct ept_node *n, unsigned L, uint64_t base, uint64_t lo, uint64_t hi,
		       uint64_t org, uint64_t *out)
{
	uint64_t esz = level_size(L);
	unsigned first = (unsigned)((lo - base) / esz), last = (unsigned)((hi - 1 - base) / esz);
	bool any = false;
	if (!n->child)
		return harvest_pt(n->pt, first, last, base, org, out);
	for (unsigned i = first; i <= last; i++) {
		uint64_t ebase = base + i * esz;
		if (!present(load_entry(&n->pt[i])))
			continue;
		if (n->child[i])
			any |= harvest_in(n->child[i], L - 1, ebase, lo > ebase ? lo : ebase,
					  hi < ebase + esz ? hi : ebase + esz, org, out);
		else
			any |= harvest_leaf(&n->pt[i], ebase, org, out);
	}
	return any;
}

bool vmi_ept_harvest_d(vmem_ept *ept, uint64_t gpa, uint64_t size, uint64_t *out)
{
	if (!size || gpa + size > (1ull << (12 + 9 * ept->cfg.levels)))
		return false;
	return harvest_in(ept->root, ept->cfg.levels, 0, gpa, gpa + size, gpa, out);
}

int vmi_ept_foreach_leaf(vmem_ept *ept, uint64_t gpa, uint64_t size,
			 int (*fn)(void *arg, uint64_t *entry, uint64_t gpa, unsigned level), void *arg)
{
	if (!size || gpa + size > (1ull << (12 + 9 * ept->cfg.levels)))
		return 0;
	return leaves_in(ept->root, ept->cfg.levels, 0, gpa, gpa + size, fn, arg);
}

vmem_err vmem_ept_new(const vmem_allocator *alloc, const vmem_ept_config *cfg, vmem_ept **out)
{
	if (!cfg || !out || (cfg->levels != 4 && cfg->levels != 5) ||
	    (cfg->eptp_mt != VMEM_MT_UC && cfg->eptp_mt != VMEM_MT_WB) ||
	    (cfg->maxphyaddr && (cfg->maxphyaddr < 32 || cfg->maxphyaddr > 52)))
		return VMEM_E_INVAL;
	alloc = vmi_alloc_resolve(alloc);
	if (!alloc || !alloc->alloc_page)
		return VMEM_E_INVAL;
	vmem_ept *ept = vmi_zalloc(alloc, sizeof(*ept));
	if (!ept)
		return VMEM_E_NOMEM;
	ept->alloc = alloc;
	ept->cfg = *cfg;
	ept->nonleaf = VMEM_EPT_R | VMEM_EPT_W | VMEM_EPT_X | (cfg->mbec ? VMEM_EPT_XU : 0);
	vmem_err err;
	ept->root = node_create(ept, cfg->levels, &err);
	if (!ept->root) {
		vmi_free(alloc, ept, sizeof(*ept));
		return err;
	}
	ept->st.table_pages = 1;
	*out = ept;
	return VMEM_OK;
}

static void subtree_free(vmem_ept *ept, struct ept_node *n)
{
	if (n->child)
		for (unsigned i = 0; i < EPT_ENTRIES; i++)
			if (n->child[i])
				subtree_free(ept, n->child[i]);
	node_destroy(ept, n);
}

/* The caller has done the INVEPT a flush result asked for: release zombies. */
void vmem_ept_flush_done(vmem_ept *ept)
{
	while (ept && ept->zombies) {
		struct ept_node *n = ept->zombies;
		ept->zombies = n->next;
		/* Children were zombified individually: free this node alone. */
		if (n->child)
			vmi_memset(n->child, 0, EPT_ENTRIES * sizeof(*n->child));
		node_destroy(ept, n);
	}
}

void vmem_ept_free(vmem_ept *ept)
{
	if (!ept)
		return;
	vmem_ept_flush_done(ept);
	subtree_free(ept, ept->root);
	vmi_free(ept->alloc, ept->grant, ept->gcap * sizeof(*ept->grant));
	vmi_free(ept->alloc, ept, sizeof(*ept));
}

uint64_t vmem_ept_eptp(const vmem_ept *ept)
{
	/* Bits 2:0 memory type, 5:3 walk length - 1, 6 A/D enable, N-1:12 root (SDM 25.6.11). */
	return ept->root->phys | ept->cfg.eptp_mt | ((uint64_t)(ept->cfg.levels - 1) << 3) |
	       (ept->cfg.ad ? 1ull << 6 : 0);
}

vmem_err vmem_ept_grant(vmem_ept *ept, uint64_t hpa, uint64_t size)
{
	if (!ept || !size || ((hpa | size) & 0xfff) || hpa + size < hpa)
		return VMEM_E_INVAL;
	uint64_t lo = hpa, hi = hpa + size;
	if (hi > pa_limit(ept))
		return VMEM_E_RANGE; /* not a host-physical address: reserved bits 51:M (SDM 29.3.3.1), or lost */
	/* Merge with every grant it touches, then insert the union. */
	unsigned keep = 0;
	for (unsigned i = 0; i < ept->ngrant; i++) {
		if (ept->grant[i].hi >= lo && ept->grant[i].lo <= hi) {
			lo = ept->grant[i].lo < lo ? ept->grant[i].lo : lo;
			hi = ept->grant[i].hi > hi ? ept->grant[i].hi : hi;
		} else {
			keep++;
		}
	}
	if (keep + 1 > ept->gcap) {
		unsigned ncap = ept->gcap ? ept->gcap * 2 : 8;
		void *ng = vmi_alloc(ept->alloc, ncap * sizeof(*ept->grant));
		if (!ng)
			return VMEM_E_NOMEM;
		if (ept->ngrant)
			vmi_memcpy(ng, ept->grant, ept->ngrant * sizeof(*ept->grant));
		vmi_free(ept->alloc, ept->grant, ept->gcap * sizeof(*ept->grant));
		ept->grant = ng;
		ept->gcap = ncap;
	}
	unsigned w = 0;
	for (unsigned i = 0; i < ept->ngrant; i++)
		if (!(ept->grant[i].hi >= lo && ept->grant[i].lo <= hi))
			ept->grant[w++] = ept->grant[i];
	ept->grant[w].lo = lo;
	ept->grant[w].hi = hi;
	ept->ngrant = w + 1;
	return VMEM_OK;
}

/* Where the walk for gpa stops, going no lower than level low: the table
 * holding its leaf (or its first non-present entry), at *level. */
static struct ept_node *walk_down(const vmem_ept *ept, uint64_t gpa, unsigned low, unsigned *level)
{
	struct ept_node *n = ept->root;
	unsigned L = ept->cfg.levels;
	for (; L > low; L--) {
		unsigned i = (unsigned)(gpa >> (12 + 9 * (L - 1))) & 511;
		if (!present(load_entry(&n->pt[i])) || !n->child || !n->child[i])
			break;
		n = n->child[i];
	}
	*level = L;
	return n;
}

static struct ept_node *walk_stop(const vmem_ept *ept, uint64_t gpa, unsigned *level)
{
	return walk_down(ept, gpa, 1, level);
}

vmem_err vmem_ept_lookup(const vmem_ept *ept, uint64_t gpa, uint64_t *leaf, unsigned *level)
{
	if (!ept)
		return VMEM_E_INVAL;
	if (gpa >> (12 + 9 * ept->cfg.levels))
		return VMEM_E_RANGE;
	unsigned L;
	const struct ept_node *n = walk_stop(ept, gpa, &L);
	uint64_t e = load_entry(&n->pt[(gpa >> (12 + 9 * (L - 1))) & 511]);
	if (!present(e))
		return VMEM_E_NOENT;
	if (leaf)
		*leaf = e;
	if (level)
		*level = L;
	return VMEM_OK;
}

/* The level-1 node of each gpa[k] (the walk above it kept per 1 GiB),
 * prefetched; vmi_ept_node_table reads it a batch later, so that the
 * nodes' cache misses overlap other work. */
void vmi_ept_leaf_nodes(vmem_ept *ept, const uint64_t *gpa, unsigned n, const void **node)
{
	struct ept_node *pd = NULL;
	uint64_t pd_1g = 0; /* the 1 GiB that pd maps (gpa >> 30), once pd_known */
	bool pd_known = false;
	for (unsigned k = 0; k < n; k++) {
		uint64_t g = gpa[k];
		node[k] = NULL;
		if (g >> (12 + 9 * ept->cfg.levels))
			continue;
		if (!pd_known || g >> 30 != pd_1g) {
			unsigned L;
			pd = walk_down(ept, g, 2, &L);
			pd = L == 2 ? pd : NULL; /* stopped above: no table of 4K leaves here */
			pd_1g = g >> 30;
			pd_known = true;
		}
		unsigned i = (unsigned)(g >> 21) & 511;
		if (pd && present(load_entry(&pd->pt[i])) && pd->child && pd->child[i]) {
			node[k] = pd->child[i];
			__builtin_prefetch(node[k]);
		}
	}
}

uint64_t *vmi_ept_node_table(const void *node)
{
	return node ? ((const struct ept_node *)node)->pt : NULL;
}

void vmem_ept_get_stats(const vmem_ept *ept, vmem_ept_stats *st)
{
	if (ept && st)
		*st = ept->st;
}

static int foreach_node(const struct ept_node *n, int (*fn)(void *, void *, uint64_t), void *arg)
{
	int rc = fn(arg, n->pt, n->phys);
	if (rc || !n->child)
		return rc;
	for (unsigned i = 0; i < EPT_ENTRIES; i++)
		if (n->child[i] && (rc = foreach_node(n->child[i], fn, arg)))
			return rc;
	return 0;
}

int vmem_ept_foreach_table(const vmem_ept *ept, int (*fn)(void *arg, void *page, uint64_t phys), void *arg)
{
	if (!ept || !fn)
		return 0;
	return foreach_node(ept->root, fn, arg);
}
