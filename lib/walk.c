/* libvmem guest page walk (SDM vol. 3A ch. 4): linear -> guest-physical, driven by the MMU's mode descriptor. */
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "ept_int.h"
#include "gmem_int.h"
#include "mmu_int.h"

/* vmem_walk's 4-level window path in assembly (below), where it can be. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__ELF__) && !defined(VMEM_NO_ASM)
#define WALK_ASM 1
/* The C functions the assembly jumps to: plain ABI, not exported. */
#define VMI_WALK_ENTRY __attribute__((noinline, used, visibility("hidden")))
VMI_WALK_ENTRY vmem_err vmi_walk_key(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned k,
				     vmem_walk_result *res);
VMI_WALK_ENTRY vmem_err vmi_walk_miss(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, uint64_t any, unsigned k,
				      vmem_walk_result *res);
VMI_WALK_ENTRY vmem_err vmi_walk_pde2m(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, uint64_t any, unsigned k,
				       vmem_walk_result *res);
VMI_WALK_ENTRY vmem_err vmi_walk_slow(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
				      unsigned flags, vmem_walk_result *res);
#else
#define WALK_ASM 0
#define VMI_WALK_ENTRY static __attribute__((noinline))
#endif

/* A concurrent writer that changes an entry between our read and our A/D
 * compare-and-swap makes the walk start over; give up after this many. */
#define WALK_MAX_RETRIES 16
#define ACC_VALID (VMEM_ACC_WRITE | VMEM_ACC_FETCH | VMEM_ACC_USER | VMEM_ACC_IMPLICIT | VMEM_ACC_AC)

/* PAE paging: the walk starts at a PDPTE register, which takes no accessed
 * flag and no part in the R/W and U/S checks (SDM 4.4.1, 4.6). */
static inline bool walk_pae_pdpte(const struct vmem_mmu *m, uint64_t la, unsigned acc, uint64_t *table,
			   vmem_walk_result *res, vmem_walk_trace *tr)
{
	unsigned i = (unsigned)(la >> 30) & 3;
	uint64_t pdpte = m->pdpte[i];
	if (tr) {
		tr->e[0].gpa = (m->regs.cr3 & 0xffffffe0ull) + 8 * i;
		tr->e[0].value = pdpte;
		tr->e[0].level = 3;
		tr->n = 1;
	}
	if (!(pdpte & VMEM_PTE_P)) {
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc];
		res->level = 3;
		res->entry = pdpte;
		res->info = vmem_swap_is_entry(pdpte) ? VMEM_WINFO_SWAP : 0;
		return false;
	}
	if (pdpte & m->pdpte_rsvd) {
		/* Only reachable through vmem_mmu_set_pdptes (MOV CR3 would have #GP'd): report as KVM does. */
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc] | VMEM_PFEC_P | VMEM_PFEC_RSVD;
		res->level = 3;
		res->entry = pdpte;
		return false;
	}
	*table = pdpte & m->frame[3][0];
	return true;
}

#define PTE_BITS 64
#include "walk_tmpl.h"
#undef PTE_BITS
#define PTE_BITS 32
#include "walk_tmpl.h"
#undef PTE_BITS
/* The nested instances (lib/nested.c): the same walk, each entry reached through EPT. */
#undef WALK_NESTED
#define WALK_NESTED 1
#define PTE_BITS 64
#include "walk_tmpl.h"
#undef PTE_BITS
#define PTE_BITS 32
#include "walk_tmpl.h"
#undef PTE_BITS
#undef WALK_NESTED

/* Check arguments and the address form; 0 = go on walking, 1 = res is final, <0 = error. */
static int walk_prologue(const struct vmem_mmu *m, uint64_t la, unsigned acc, vmem_walk_result *res)
{
	if ((acc & ~ACC_VALID) || ((acc & VMEM_ACC_WRITE) && (acc & VMEM_ACC_FETCH)))
		return VMEM_E_INVAL;
	res->gpa = res->page_size = res->entry = 0;
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = res->perms = res->info = 0;
	if (m->va_bits == 32) {
		if (la >> 32)
			return VMEM_E_INVAL; /* linear addresses are 32 bits outside IA-32e mode */
	} else {
		/* Non-canonical: #GP (#SS for stack references), never a #PF (SDM 3.3.7.1). */
		unsigned sh = 64u - m->va_bits;
		if ((uint64_t)((int64_t)(la << sh) >> sh) != la) {
			res->status = VMEM_WALK_GP;
			return 1;
		}
	}
	if (m->mode == VMEM_MODE_NONE) {
		res->gpa = la;
		res->page_size = VMEM_PAGE_4K;
		res->perms = VMEM_PERM_W | VMEM_PERM_U | VMEM_PERM_X;
		return 1;
	}
	return 0;
}

/* The end of a general fast walk (walk_fast_gen) that reached its leaf:
 * rights by the perm table (SDM 4.6), keys, and whether an A/D flag would
 * have to be written. all is every entry ANDed with XD inverted (bit 63:
 * executable). false: leave it to the full walk. */
static inline __attribute__((always_inline)) bool
fast_leaf_gen(const struct vmem_mmu *m, uint64_t la, uint64_t pte, uint64_t all, int level,
	      unsigned acc, unsigned flags, vmem_walk_result *res)
{
	unsigned pa;
	if (!mmu_fast_leaf_ok(m, pte, all, acc, flags, &pa))
		return false;
	unsigned shift = 12 + 9 * (unsigned)(level - 1);
	res->gpa = (pte & m->frame[level][level > 1]) | (la & ((1ull << shift) - 1));
	res->page_size = 1ull << shift;
	res->entry = pte;
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = (uint8_t)level;
	res->perms = (uint8_t)pa;
	res->info = 0;
	return true;
}

/* The RAM region the last full walk found the root in (gm->hint), with a
 * host buffer; NULL when there is none. */
static inline __attribute__((always_inline)) const struct gm_region *hint_region(const vmem_gmem *gm)
{
	unsigned h = __atomic_load_n(&gm->hint, __ATOMIC_RELAXED);
	if (vmi_unlikely(h >= gm->n) || vmi_unlikely(!gm->r[h].host))
		return NULL;
	return &gm->r[h];
}

/* The common case of IA-32e paging, unrolled for a fixed number of levels:
 * every table in one RAM region, no fault, no A/D flag left to set (or
 * VMEM_WALK_NO_AD). Anything else returns false and takes the full walk,
 * which then produces the exact fault, trace or A/D update. */
static inline __attribute__((always_inline)) bool
walk_fast_gen(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned flags,
	  vmem_walk_result *res, const int top)
{
	const struct gm_region *r = hint_region(gm);
	if (vmi_unlikely(!r))
		return false;
	const uint8_t *host = r->host;
	/* all: every entry ANDed, with XD inverted so that bit 63 ends as "executable". */
	uint64_t base = r->gpa, size = r->size, table = m->root, all = ~0ull, pte = 0;
	int level;
#pragma GCC unroll 5
	for (level = top; level >= 1; level--) {
		unsigned shift = 12 + 9 * (unsigned)(level - 1);
		uint64_t off = table + (((la >> shift) & 511) << 3) - base;
		if (vmi_unlikely(off >= size))
			return false;
		pte = *(const volatile uint64_t *)(host + off);
		all &= pte ^ VMEM_PTE_XD;
		int k = mmu_fast_entry(m, pte, level);
		if (vmi_unlikely(k < 0))
			return false; /* the full walk reports the fault */
		if (k == 0)
			break;
		table = pte & m->frame[level][0];
	}
	return fast_leaf_gen(m, la, pte, all, level, acc, flags, res);
}


/* The IA-32e fast path proper, for accesses whose rights are a plain
 * conjunction and without protection keys (mmu->fast_ok): the leaf test is
 * two masked compares (struct mmu_facc), the result a few stores. */

/* The answer of a successful walk, in four stores. */
static inline __attribute__((always_inline)) void
fast_result(uint64_t la, uint64_t pte, uint64_t frame, uint64_t all, uint64_t any, const int level,
	    vmem_walk_result *res)
{
	const unsigned shift = 12 + 9 * (unsigned)(level - 1);
	const uint64_t low = (1ull << shift) - 1;
	uint64_t pa = ((all >> 1) & 3) | (((~any) >> 63) << 2);
	res->gpa = (pte & frame & (level > 1 ? ~low : ~0ull)) | (la & low);
	res->page_size = low + 1;
	res->entry = pte;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	/* error_code 0, status OK, level, perms, info 0: one 8-byte store. */
	_Static_assert(offsetof(vmem_walk_result, status) == offsetof(vmem_walk_result, error_code) + 4 &&
		       offsetof(vmem_walk_result, level) == offsetof(vmem_walk_result, error_code) + 5 &&
		       offsetof(vmem_walk_result, perms) == offsetof(vmem_walk_result, error_code) + 6 &&
		       offsetof(vmem_walk_result, info) == offsetof(vmem_walk_result, error_code) + 7,
		       "vmem_walk_result tail layout");
	uint64_t tail = ((uint64_t)level << 40) | (pa << 48);
	__builtin_memcpy(&res->error_code, &tail, sizeof(tail));
#else
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = (uint8_t)level;
	res->perms = (uint8_t)pa;
	res->info = 0;
#endif
}

/* The leaf is reached: all = non-leaf entries ANDed, any = ORed. */
static inline __attribute__((always_inline)) bool
fast_done(const struct vmem_mmu *m, uint64_t la, uint64_t pte, uint64_t all, uint64_t any,
	  const int level, unsigned k, vmem_walk_result *res)
{
	const struct mmu_facc *f = &m->facc[k];
	all = (all | VMEM_PTE_D) & pte; /* D counts in the leaf only */
	any |= pte;
	if (vmi_unlikely(((all & f->mask) != f->want) | ((any & f->bad) != 0)))
		return false;
	fast_result(la, pte, m->fframe, all, any, level, res);
	return true;
}

/* The upper levels (top..2) of one walk over region (host, base, size), the
 * common case of IA-32e paging: 0: leave it to the full walk; 1: done (a
 * large page, *res filled); 2: a 4K page, whose PTE is at offset *off (and
 * prefetched when asked: the batch reads it a group later), with what the
 * upper entries ANDed and ORed. Present and reserved bits are judged once
 * at the leaf (an entry read through a not-present one is still inside the
 * region, and the walk then fails). */
static inline __attribute__((always_inline)) int
region_upper(const struct vmem_mmu *m, const uint8_t *host, uint64_t base, uint64_t size,
	     uint64_t la, unsigned fk, vmem_walk_result *res, uint64_t *off, uint64_t *allp,
	     uint64_t *anyp, const int top, const bool prefetch)
{
	const uint64_t fr = m->fframe;
	uint64_t t = m->froot - base, pte, all = ~0ull, any = 0;
/* Read the entry of level L in the table at offset t of the region. */
#define REGION_READ(L)                                                                  \
	do {                                                                            \
		if (vmi_unlikely(t >= size))                                            \
			return 0;                                                       \
		pte = *(const volatile uint64_t *)(host + t + ((la >> (9 * (L))) & 0xff8)); \
	} while (0)
	if (top == 5) {
		REGION_READ(5);
		all = any = pte;
		t = (pte & fr) - base;
	}
	REGION_READ(4);
	all &= pte;
	any |= pte;
	if (vmi_unlikely(any & VMEM_PTE_PS)) /* reserved in a PML5E and a PML4E */
		return 0;
	t = (pte & fr) - base;
	REGION_READ(3);
	if (vmi_unlikely(pte & VMEM_PTE_PS))
		return !(pte & m->flarge3) && fast_done(m, la, pte, all, any, 3, fk, res);
	all &= pte;
	any |= pte;
	t = (pte & fr) - base;
	REGION_READ(2);
	if (pte & VMEM_PTE_PS)
		return !(pte & m->flarge2) && fast_done(m, la, pte, all, any, 2, fk, res);
	all &= pte;
	any |= pte;
	t = (pte & fr) - base;
	if (vmi_unlikely(t >= size))
		return 0;
	t += (la >> 9) & 0xff8;
	if (prefetch)
		__builtin_prefetch(host + t);
	*off = t;
	*allp = all;
	*anyp = any;
	return 2;
#undef REGION_READ
}

/* The common case of IA-32e paging, unrolled: every table in the region the
 * last full walk used (gm->hint), no fault, no A/D flag left to set (or
 * VMEM_WALK_NO_AD). Anything else returns false and takes the full walk,
 * which produces the exact fault, trace or A/D update. */
static inline __attribute__((always_inline)) bool
walk_fast(const struct vmem_mmu *m, const vmem_gmem *gm, uint64_t la, unsigned k,
	  vmem_walk_result *res, const int top)
{
	const struct gm_region *r = hint_region(gm);
	if (vmi_unlikely(!r))
		return false;
	const uint8_t *host = r->host;
	uint64_t off, all, any;
	int rc = region_upper(m, host, r->gpa, r->size, la, k, res, &off, &all, &any, top, false);
	if (rc != 2)
		return rc;
	uint64_t pte = *(const volatile uint64_t *)(host + off);
	return fast_done(m, la, pte, all, any, 1, k, res);
}

/* The full walk, remembering which region held the tables for the next fast path. */
static vmem_err walk_full(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
			  unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (m->mode == VMEM_MODE_32BIT)
		return walk32(m, gm, la, acc, flags, res, tr);
	vmem_err e = walk64(m, gm, la, acc, flags, res, tr);
	if (m->mode >= VMEM_MODE_4LEVEL && gm->n) {
		int i = gm_find(gm, m->root);
		if (i >= 0)
			__atomic_store_n(&gm->hint, (unsigned)i, __ATOMIC_RELAXED);
	}
	return e;
}

/* Everything but the fast path: argument errors, #GP, paging off, 32-bit and
 * PAE paging, faults, A/D updates, traces. Out of line, so that the fast
 * path's prologue stays small. */
static __attribute__((noinline)) vmem_err
walk_slow(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned flags,
	  vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (!m || !gm || !res)
		return VMEM_E_INVAL;
	/* Accesses the fast paths leave out (protection keys, unusual rights):
	 * the general form, before the full walk. */
	if (!tr && m->mode >= VMEM_MODE_4LEVEL && acc < MMU_ACC_INDEXES && ((m->acc_ok >> acc) & 1) &&
	    !m->wtop[2 * acc + (flags & VMEM_WALK_NO_AD)] && la + m->canon_add < m->canon_lim &&
	    (m->top == 4 ? walk_fast_gen(m, gm, la, acc, flags, res, 4)
			 : walk_fast_gen(m, gm, la, acc, flags, res, 5)))
		return VMEM_OK;
	if (tr)
		tr->n = 0;
	int rc = walk_prologue(m, la, acc, res);
	if (rc)
		return rc < 0 ? (vmem_err)rc : VMEM_OK;
	return walk_full(m, gm, la, acc, flags, res, tr);
}

/* The window fast path (gmem_int.h: struct gm_window; mmu_int.h: wtest).
 * Two forms of the same reads: the batch lanes and the assembly make each
 * entry's address off the chain of loads (win_at); the single walk in C
 * makes the next entry's index with SHLD (the table's frame number, 9 bits
 * of the address) and ROL (the next 9 bits of the address to the top of a
 * register), which compilers keep to fewer instructions. Both judge the
 * accumulated entries once at the leaf by a TEST against memory. The
 * empty asm keeps the compiler from rebuilding each rotation from the
 * original address. */
static inline __attribute__((always_inline)) uint64_t win_shld9(uint64_t hi, uint64_t lo)
{
#if defined(__x86_64__) && defined(__GNUC__)
	__asm__("shldq $9, %1, %0" : "+r"(hi) : "r"(lo) : "cc");
	return hi;
#else
	return (hi << 9) | (lo >> 55);
#endif
}

static inline __attribute__((always_inline)) uint64_t win_rol(uint64_t x, unsigned n)
{
	x = (x << n) | (x >> (64 - n));
#if defined(__GNUC__)
	__asm__("" : "+r"(x));
#endif
	return x;
}


/* a & *b != 0, with *b as a memory operand. */
static inline __attribute__((always_inline)) bool win_test(uint64_t a, const uint64_t *b)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
	bool nz;
	__asm__("testq %2, %1" : "=@ccnz"(nz) : "r"(a), "m"(*b));
	return nz;
#else
	return (a & *b) != 0;
#endif
}

/* An entry of the window (win_at). */
static inline __attribute__((always_inline)) uint64_t win_entry(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* The same, flipped (WIN_FLIP), in the register the next table's offset is
 * made in (the empty asm keeps the compiler from flipping a copy instead). */
static inline __attribute__((always_inline)) uint64_t win_entry_flipped(const uint64_t *p)
{
	uint64_t pte = win_entry(p) ^ WIN_FLIP;
#if defined(__GNUC__)
	__asm__("" : "+r"(pte));
#endif
	return pte;
}

/* Why a window walk gave up: its tables are not all in the window (or a
 * large page ended it: PS alone), or its leaf needs the full walk. */
#define WIN_MISS_FULL 0u

static vmem_err walk_miss4(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k,
			   vmem_walk_result *res, uint64_t why);
static vmem_err walk_miss5(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k,
			   vmem_walk_result *res, uint64_t why);

/* The answer of a window walk that reached its leaf (`leaf` as read, `any`
 * the flipped non-leaf entries ORed): judged, then written in four stores.
 * false: the full walk decides. */
static inline __attribute__((always_inline)) bool
win_result(const struct vmem_mmu *m, const vmem_gmem *gm, uint64_t addr, uint64_t leaf, uint64_t any,
	   size_t k, vmem_walk_result *res, const int level, uint64_t *why)
{
	if (vmi_unlikely(win_test(any, &gm->win.whi))) {
		*why = any & gm->win.whi;
		return false;
	}
	/* Non-leaf D is ignored (SDM 4.5): only the leaf's counts. */
	any = (any & ~VMEM_PTE_D) | (leaf ^ (WIN_FLIP | VMEM_PTE_D));
	any ^= m->wwant[k];
	if (vmi_unlikely(win_test(any, &m->wtest[k]))) {
		*why = WIN_MISS_FULL;
		return false;
	}
	const uint64_t size = 1ull << (12 + 9 * (level - 1));
	res->entry = leaf;
	res->gpa = (leaf & m->wframe & (level > 1 ? ~(size - 1) : ~0ull)) | (addr & (size - 1));
	res->page_size = size;
	/* perms W, U from bits 1, 2 of `any`, X from bit 63 (the XD OR), by
	 * the table wperm (`any` rotated left by 1: bits 2, 3 and 0), each
	 * inverted and corrected for wwant by wtail; error code 0, status OK,
	 * info 0: one 8-byte store. */
	uint64_t tail = m->wperm[((any << 1) | (any >> 63)) & 13] ^ m->wtail[k];
	if (level > 1)
		tail ^= (uint64_t)(level ^ 1) << 40;
	_Static_assert(offsetof(vmem_walk_result, status) == offsetof(vmem_walk_result, error_code) + 4 &&
		       offsetof(vmem_walk_result, level) == offsetof(vmem_walk_result, error_code) + 5 &&
		       offsetof(vmem_walk_result, perms) == offsetof(vmem_walk_result, error_code) + 6 &&
		       offsetof(vmem_walk_result, info) == offsetof(vmem_walk_result, error_code) + 7,
		       "vmem_walk_result tail layout");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	__builtin_memcpy(&res->error_code, &tail, sizeof(tail));
#else
	res->error_code = 0;
	res->status = VMEM_WALK_OK;
	res->level = (uint8_t)(tail >> 40);
	res->perms = (uint8_t)(tail >> 48);
	res->info = 0;
#endif
	return true;
}

/* Where the entry for `la` at `level` lies: its table's offset in the
 * window (t, from the entry above) plus what the address alone gives (its
 * offset in the table, plus the window's host address). Only t comes from
 * the entry just read, so the chain from one entry load to the next is one
 * AND (t = entry & wmaskb); the rest is computed off it. Inside the window
 * whatever the guest wrote: t < 2^k - 4095 and the offset < 4096. The
 * window's fields come as values (struct win_view), read once per walk. */
struct win_view {
	const uint8_t *whost;
	uint64_t wmaskb, wimask;
};

static inline __attribute__((always_inline)) struct win_view win_view(const struct gm_window *w)
{
	return (struct win_view){ w->whost, w->wmaskb, w->wimask };
}

static inline __attribute__((always_inline)) const uint64_t *
win_at(struct win_view v, uint64_t la, uint64_t t, const int level)
{
	return (const uint64_t *)(const void *)(v.whost + ((la >> (9 * level)) & v.wimask) + t);
}

/* Entry x (x & wmask already applied) of the window, by index. */
static inline __attribute__((always_inline)) const uint64_t *win_ix(const vmem_gmem *gm, uint64_t x)
{
	return (const uint64_t *)(const void *)gm->win.whost + x;
}

/* The 4K walk through the window: no test between the loads; PS anywhere
 * above the leaf shows in `any` (whi holds it) and sends the walk to its
 * large-page form. la is canonical. Returns VMEM_OK or what walk_miss
 * answers. */
static inline __attribute__((always_inline)) vmem_err
walk_win(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k, vmem_walk_result *res,
	 const int top)
{
	/* la rotated so that the top level's 9 bits are on top */
	uint64_t lr = win_rol(la, top == 5 ? 7 : 16);
	uint64_t x = win_shld9(m->wpfn, lr) & gm->win.wmask, any = m->wroot, pte, why;
#pragma GCC unroll 5
	for (int level = top; level > 1; level--) {
		lr = win_rol(lr, 9);
		pte = win_entry_flipped(win_ix(gm, x));
		any |= pte;
		x = win_shld9(pte >> 12, lr) & gm->win.wmask;
	}
	pte = win_entry(win_ix(gm, x));
	if (vmi_likely(win_result(m, gm, la, pte, any, k, res, 1, &why)))
		return VMEM_OK;
	return top == 5 ? walk_miss5(m, gm, la, k, res, why) : walk_miss4(m, gm, la, k, res, why);
}

/* The window walk that ends at a large page: as walk_win, with PS tested at
 * levels 3 and 2 (SDM 4.5). 1: done; 0: why says what failed. */
static inline __attribute__((always_inline)) int
walk_win_large(const struct vmem_mmu *m, const vmem_gmem *gm, uint64_t la, size_t k,
	       vmem_walk_result *res, const int top, uint64_t *why)
{
	uint64_t lr = win_rol(la, top == 5 ? 7 : 16);
	uint64_t x = win_shld9(m->wpfn, lr) & gm->win.wmask, any = m->wroot, pte;
#pragma GCC unroll 5
	for (int level = top; level > 1; level--) {
		lr = win_rol(lr, 9);
		pte = win_entry_flipped(win_ix(gm, x));
		if (level <= 3 && (pte & VMEM_PTE_PS)) {
			uint64_t leaf = pte ^ WIN_FLIP;
			if (leaf & (level == 3 ? m->flarge3 : m->flarge2)) {
				*why = WIN_MISS_FULL; /* reserved bits of a large page */
				return 0;
			}
			return level == 3 ? win_result(m, gm, la, leaf, any, k, res, 3, why)
					  : win_result(m, gm, la, leaf, any, k, res, 2, why);
		}
		any |= pte;
		x = win_shld9(pte >> 12, lr) & gm->win.wmask;
	}
	pte = win_entry(win_ix(gm, x));
	return win_result(m, gm, la, pte, any, k, res, 1, why);
}

/* The region fast path and the full walk, for a window walk that gave up. */
static __attribute__((noinline)) vmem_err
win_region(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k, vmem_walk_result *res,
	   uint64_t why)
{
	unsigned acc = (unsigned)k >> 1, flags = (unsigned)k & VMEM_WALK_NO_AD;
	if (why != WIN_MISS_FULL &&
	    (m->wtop[k] == 4 ? walk_fast(m, gm, la, acc | flags << 5, res, 4)
			     : walk_fast(m, gm, la, acc | flags << 5, res, 5)))
		return VMEM_OK;
	return walk_slow(m, gm, la, acc, flags, res, NULL);
}

/* A window walk gave up. PS set: a large page (or a PS bit the full walk
 * reports) may have ended the walk, whose last entries then were no
 * tables; its large-page form decides. A table outside the window: the
 * fast path over the region of the last full walk (gm->hint). Anything
 * else, and what those give up: the full walk. */
static inline __attribute__((always_inline)) vmem_err
walk_miss_top(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k, vmem_walk_result *res,
	      uint64_t why, const int top)
{
	if ((why & VMEM_PTE_PS) && walk_win_large(m, gm, la, k, res, top, &why))
		return VMEM_OK;
	return win_region(m, gm, la, k, res, why);
}

static __attribute__((noinline)) vmem_err
walk_miss4(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k, vmem_walk_result *res, uint64_t why)
{
	return walk_miss_top(m, gm, la, k, res, why, 4);
}

static __attribute__((noinline)) vmem_err
walk_miss5(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, size_t k, vmem_walk_result *res, uint64_t why)
{
	return walk_miss_top(m, gm, la, k, res, why, 5);
}

/* vmem_walk past its argument checks, for what the assembly's 4-level
 * window path does not take: 5-level paging, non-canonical addresses,
 * accesses left to the general paths, a CPU without BMI2 (the window path
 * in C). k = 2 * access + NO_AD (no other flag bit means anything). acc is
 * not used (the assembly jumps here with it in place). */
VMI_WALK_ENTRY vmem_err
vmi_walk_key(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned k, vmem_walk_result *res)
{
	(void)acc;
	if (m->wtop[k] && la + m->canon_add < m->canon_lim) /* canonical (SDM 3.3.7.1) */
		return m->wtop[k] == 5 ? walk_win(m, gm, la, k, res, 5) : walk_win(m, gm, la, k, res, 4);
	return walk_slow(m, gm, la, k >> 1, k & VMEM_WALK_NO_AD, res, NULL);
}

#if WALK_ASM
/* A 4-level window walk of the assembly below gave up at the address la:
 * `any` its flipped non-leaf entries ORed (0: the leaf failed, whatever
 * the tables). */
VMI_WALK_ENTRY vmem_err
vmi_walk_miss(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, uint64_t any, unsigned k, vmem_walk_result *res)
{
	return walk_miss4(m, gm, la, k, res, any & gm->win.whi);
}

/* The assembly's 4-level window walk of la met a PDE with PS set: a
 * 2-MByte page (SDM 4.5), decided here without walking again. `any` is
 * the flipped PML4E and PDPTE ORed (with the root's window bits),
 * res->entry the flipped PDE. What the leaf test leaves undecided (tables
 * outside the window, PS in the PDPTE, reserved bits, rights) takes the
 * same way as any other miss. */
VMI_WALK_ENTRY vmem_err
vmi_walk_pde2m(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, uint64_t any, unsigned k, vmem_walk_result *res)
{
	uint64_t pde = res->entry ^ WIN_FLIP, why = WIN_MISS_FULL;
	if (!(pde & m->flarge2) && win_result(m, gm, la, pde, any, k, res, 2, &why))
		return VMEM_OK;
	return walk_miss4(m, gm, la, k, res, why);
}

/* Argument errors: the general entry (same arguments as vmem_walk). */
VMI_WALK_ENTRY vmem_err
vmi_walk_slow(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc, unsigned flags,
	      vmem_walk_result *res)
{
	return walk_slow(m, gm, la, acc, flags, res, NULL);
}

/* vmem_walk's 4-level window path, in x86-64 assembly (System V ABI): the
 * C below (the #else) with each entry's address made off the chain of
 * loads, as win_at does (the C keeps SHLD/ROL indexes: compiled, the
 * off-chain form costs more than it gains), 66 instructions for a 4K page,
 * 8 per level. The chain from one entry load to the next is the load and
 * one AND: the flip and the OR into `any` work on a copy (a MOV the
 * processor renames away), off the chain. One compare against wclim[k]
 * tests both that the address is canonical and that this path applies to
 * k (wasm: 4-level paging, the window's rights test, BMI2); the tail's
 * perms come from a 16-entry table (wperm) instead of shifts and adds.
 * Every other case jumps to the C functions above with the registers as
 * their arguments.
 * rdi m, rsi gm, rdx la, ecx acc, r8d flags -> k, r9 res;
 * rax the next table's offset in the window, then the entry; r10 the
 * entry flipped; rcx the entry's host address less that offset
 * (WALK_OFFSET); r11 any. */
_Static_assert(offsetof(struct vmem_mmu, wtest) == MMU_OFF_WTEST && offsetof(struct vmem_mmu, wwant) == MMU_OFF_WWANT &&
	       offsetof(struct vmem_mmu, wtail) == MMU_OFF_WTAIL && offsetof(struct vmem_mmu, wroot) == MMU_OFF_WROOT &&
	       offsetof(struct vmem_mmu, wframe) == MMU_OFF_WFRAME && offsetof(struct vmem_mmu, wclim) == MMU_OFF_WCLIM &&
	       offsetof(struct vmem_mmu, wperm) == MMU_OFF_WPERM &&
	       offsetof(struct vmem_mmu, canon_add) == MMU_OFF_CANON_ADD, "vmem_mmu window layout");
_Static_assert(offsetof(struct vmem_gmem, win.whost) == GM_OFF_WHOST &&
	       offsetof(struct vmem_gmem, win.whi) == GM_OFF_WHI &&
	       offsetof(struct vmem_gmem, win.wmaskb) == GM_OFF_WMASKB &&
	       offsetof(struct vmem_gmem, win.wimask) == GM_OFF_WIMASK, "vmem_gmem window layout");
_Static_assert(offsetof(vmem_walk_result, gpa) == 0 && offsetof(vmem_walk_result, page_size) == 8 &&
	       offsetof(vmem_walk_result, entry) == 16 && offsetof(vmem_walk_result, error_code) == 24,
	       "vmem_walk_result layout");
_Static_assert(WIN_FLIP == 0x27 && VMEM_PTE_D == 0x40 && MMU_ACC_INDEXES == 32, "window flip bits");
#define WALK_S(x) #x
#define WALK_N(x) WALK_S(x)
/* The byte offset of the next entry from its table (bits `sh`+8:`sh` of
 * the address, shifted to 11:3) plus the window's host address: made from
 * the address alone, so it stays off the chain of entry loads. */
#define WALK_OFFSET(sh)                                                \
	"	rorxq $" #sh ", %rdx, %rcx\n"                            \
	"	andq " WALK_N(GM_OFF_WIMASK) "(%rsi), %rcx\n"             \
	"	addq " WALK_N(GM_OFF_WHOST) "(%rsi), %rcx\n"
/* One non-leaf level: the entry at rcx + rax, flipped, ORed into r11;
 * its table's offset in the window to rax (one AND on the chain). */
#define WALK_LEVEL(sh)                                                 \
	WALK_OFFSET(sh)                                                 \
	"	movq (%rcx,%rax), %rax\n"                               \
	"	movq %rax, %r10\n"                                      \
	"	andq " WALK_N(GM_OFF_WMASKB) "(%rsi), %rax\n"           \
	"	xorq $0x27, %r10\n"                                     \
	"	orq %r10, %r11\n"
__asm__(
	"	.text\n"
	"	.globl vmem_walk\n"
	"	.type vmem_walk, @function\n"
	"	.p2align 4\n"
	"vmem_walk:\n"
	"	.cfi_startproc\n"                         /* unwinders: a leaf that never moves rsp */
#ifdef __CET__
	"	endbr64\n"                                /* -fcf-protection: a valid indirect-branch target */
#endif
	"	movq %rdi, %rax\n"                        /* m * gm * res != 0: none is NULL */
	"	imulq %rsi, %rax\n"
	"	imulq %r9, %rax\n"
	"	testq %rax, %rax\n"
	"	je 1f\n"
	"	cmpl $31, %ecx\n"                         /* acc < 32 */
	"	ja 1f\n"
	"	andl $1, %r8d\n"                          /* k = 2 * acc + NO_AD */
	"	leal (%r8,%rcx,2), %r8d\n"
	"	movq " WALK_N(MMU_OFF_CANON_ADD) "(%rdi), %rax\n" /* canonical (SDM 3.3.7.1) */
	"	addq %rdx, %rax\n"
	"	cmpq " WALK_N(MMU_OFF_WCLIM) "(%rdi,%r8,8), %rax\n" /* 0 where the 4-level window path does not apply */
	"	jae 2f\n"
	"	movq " WALK_N(MMU_OFF_WROOT) "(%rdi), %rax\n"  /* the root's offset in the window */
	"	andq " WALK_N(GM_OFF_WMASKB) "(%rsi), %rax\n"
	WALK_OFFSET(36)                                    /* PML4E: any = it, flipped, and the root */
	"	movq (%rcx,%rax), %rax\n"
	"	movq %rax, %r11\n"
	"	andq " WALK_N(GM_OFF_WMASKB) "(%rsi), %rax\n"
	"	xorq $0x27, %r11\n"
	"	orq " WALK_N(MMU_OFF_WROOT) "(%rdi), %r11\n"
	WALK_LEVEL(27)                                     /* PDPTE */
	WALK_OFFSET(18)                                    /* PDE */
	"	movq (%rcx,%rax), %rax\n"
	"	movq %rax, %r10\n"
	"	andq " WALK_N(GM_OFF_WMASKB) "(%rsi), %rax\n"
	"	xorq $0x27, %r10\n"
	"	testb $0x80, %r10b\n"                     /* PS: a 2-MByte page (SDM 4.5) */
	"	jne 5f\n"
	"	orq %r10, %r11\n"
	WALK_OFFSET(9)                                     /* PTE */
	"	movq (%rcx,%rax), %rax\n"
	"	testq %r11, " WALK_N(GM_OFF_WHI) "(%rsi)\n"   /* every table in the window, no PS */
	"	jne 3f\n"
	"	movq %rax, 16(%r9)\n"                     /* entry (a miss's answer rewrites it) */
	"	andq $-65, %r11\n"                        /* the leaf's D only, flipped */
	"	xorq $0x67, %rax\n"                       /* the flip leaves the frame as it was */
	"	orq %rax, %r11\n"
	"	xorq " WALK_N(MMU_OFF_WWANT) "(%rdi,%r8,8), %r11\n"
	"	testq %r11, " WALK_N(MMU_OFF_WTEST) "(%rdi,%r8,8)\n"
	"	jne 4f\n"
	"	andq " WALK_N(MMU_OFF_WFRAME) "(%rdi), %rax\n"
	"	andl $4095, %edx\n"
	"	orq %rdx, %rax\n"
	"	movq %rax, (%r9)\n"                       /* gpa */
	"	movq $4096, 8(%r9)\n"                     /* page_size */
	"	rorxq $63, %r11, %rax\n"                  /* the tail (win_result): XD, R/W, U/S to bits 0, 2, 3 */
	"	andl $13, %eax\n"
	"	movq " WALK_N(MMU_OFF_WPERM) "(%rdi,%rax,8), %rax\n"
	"	xorq " WALK_N(MMU_OFF_WTAIL) "(%rdi,%r8,8), %rax\n"
	"	movq %rax, 24(%r9)\n"
	"	xorl %eax, %eax\n"
	"	ret\n"
	"1:	jmp vmi_walk_slow\n"
	"2:	jmp vmi_walk_key\n"
	"3:	movq %r11, %rcx\n"
	"	jmp vmi_walk_miss\n"
	"4:	xorl %ecx, %ecx\n"
	"	jmp vmi_walk_miss\n"
	"5:	movq %r10, 16(%r9)\n"                     /* the flipped PDE, parked in res->entry */
	"	movq %r11, %rcx\n"
	"	jmp vmi_walk_pde2m\n"
	"	.cfi_endproc\n"
	"	.size vmem_walk, .-vmem_walk\n");
#undef WALK_LEVEL
#undef WALK_OFFSET
#else
vmem_err vmem_walk(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
		   unsigned flags, vmem_walk_result *res)
{
	/* The product of the pointers is nonzero only if none is NULL (valid
	 * pointers whose product is 0 modulo 2^64 just take the slow path). */
	if (vmi_likely(((uintptr_t)m * (uintptr_t)gm * (uintptr_t)res) != 0 && acc < MMU_ACC_INDEXES)) {
		unsigned k = 2 * acc + (flags & VMEM_WALK_NO_AD);
		/* Canonical (SDM 3.3.7.1): otherwise #GP, which the slow path reports. */
		if (vmi_likely(la + m->canon_add < m->canon_lim && m->wtop[k] == 4))
			return walk_win(m, gm, la, k, res, 4);
		return vmi_walk_key(m, gm, la, acc, k, res);
	}
	return walk_slow(m, gm, la, acc, flags, res, NULL);
}
#endif

/* A traced walk is the full walk (walk_slow records each entry); without a
 * trace, vmem_walk's fast paths give the same answer. */
vmem_err vmem_walk_traced(const vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
			  unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (!tr)
		return vmem_walk(m, gm, la, acc, flags, res);
	return walk_slow(m, gm, la, acc, flags, res, tr);
}

vmem_err vmi_walk_nested(const struct vmem_mmu *m, struct nx_walk *nx, uint64_t la,
			 unsigned acc, unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr)
{
	if (tr)
		tr->n = 0;
	int rc = walk_prologue(m, la, acc, res);
	if (rc)
		return rc < 0 ? (vmem_err)rc : VMEM_OK;
	if (m->mode == VMEM_MODE_32BIT)
		return walk32_nested(m, nx->host, la, acc, flags, res, tr, nx);
	return walk64_nested(m, nx->host, la, acc, flags, res, tr, nx);
}

/* Batched walks, in groups of up to BATCH_LANES: each walk's upper levels
 * (few tables, mostly cached) run as in the single fast path and end with a
 * prefetch of its PTE, which is read a group later, so that the PTE misses
 * (the ones that go to DRAM in a large address space) overlap each other
 * and the other walks' work instead of queueing behind each other. The
 * lanes take the fast path's conditions (IA-32e paging, tables in one RAM
 * region, no fault, no A/D to write); a lane that leaves them is finished
 * by the full single walk. */
#define BATCH_LANES 64
typedef uint64_t batch_mask;


/* A group of up to BATCH_LANES walks whose upper levels ran: the PTEs to
 * read (prefetched), what the upper levels ANDed and ORed. */
struct bgroup {
	/* off: the PTE's offset in the region (window: its entry index) */
	uint64_t off[BATCH_LANES], all[BATCH_LANES], any[BATCH_LANES];
	batch_mask live;  /* lanes waiting for their PTE */
	batch_mask slow;  /* lanes left to the full walk */
	size_t first;     /* the group's first index in the caller's arrays */
	unsigned n;       /* lanes */
};

static inline __attribute__((always_inline)) void
batch_first(const struct vmem_mmu *m, const uint8_t *host, uint64_t base, uint64_t size,
	    const uint64_t *la, unsigned k, unsigned fk, vmem_walk_result *res, struct bgroup *g,
	    const int top)
{
	batch_mask live = 0, slow = 0;
	const uint64_t ca = m->canon_add, cl = m->canon_lim;
	for (unsigned j = 0; j < k; j++) {
		uint64_t a = la[j];
		int rc = a + ca < cl ? region_upper(m, host, base, size, a, fk, &res[j], &g->off[j],
						    &g->all[j], &g->any[j], top, true)
				     : 0;
		live |= (batch_mask)(rc == 2) << j;
		slow |= (batch_mask)(rc == 0) << j;
	}
	g->live = live;
	g->slow = slow;
}

static inline __attribute__((always_inline)) void
batch_second(const struct vmem_mmu *m, const uint8_t *host, const uint64_t *la, unsigned fk,
	     vmem_walk_result *res, struct bgroup *g)
{
	batch_mask slow = g->slow;
	for (batch_mask w = g->live; w; w &= w - 1) {
		unsigned j = (unsigned)__builtin_ctzll(w);
		uint64_t pte = *(const volatile uint64_t *)(host + g->off[j]);
		if (!fast_done(m, la[j], pte, g->all[j], g->any[j], 1, fk, &res[j]))
			slow |= (batch_mask)1 << j;
	}
	g->slow = slow;
}

/* The lanes of a group its fast path left (bit j: index first + j): the
 * single walk, in order. */
static vmem_err batch_redo(const vmem_mmu *m, vmem_gmem *gm, const uint64_t *la, unsigned acc,
			   unsigned flags, vmem_walk_result *res, size_t first, batch_mask slow)
{
	for (; slow; slow &= slow - 1) {
		size_t i = first + (unsigned)__builtin_ctzll(slow);
		vmem_err e = vmem_walk(m, gm, la[i], acc, flags, &res[i]);
		if (e)
			return e;
	}
	return VMEM_OK;
}

/* The batch over the window (gmem_int.h): stage 1 of each lane runs the
 * upper levels as walk_win does and prefetches its PTE; stage 2, a group
 * later, reads the PTE and judges the walk (win_result). Lanes that fail
 * (non-canonical, tables outside the window, large pages, faults, A/D to
 * set) get the single walk, in order, after their group. */
/* The batch's cache of upper levels, as the processor's paging-structure
 * caches keep them (SDM 4.10.3): what a walk found above the PDE (the page
 * directory's offset in the window, and the flipped entries ORed) for the
 * 1-GByte region la >> 30, which alone picks the PML5E, PML4E and PDPTE.
 * It lives for one vmem_walk_batch call: a lane whose leaf test fails is
 * redone by the full walk, and an entry that walk changes (an A flag set)
 * only makes later lanes of that region fail the test and be redone too. */
#define UC_SLOTS 64
struct ucache {
	struct {
		uint64_t key, t, any, pad;
	} e[UC_SLOTS];
};

static inline void ucache_init(struct ucache *uc)
{
	for (unsigned i = 0; i < UC_SLOTS; i++)
		uc->e[i].key = ~0ull; /* no la >> 30 */
}

static inline __attribute__((always_inline)) void
wbatch_first(const struct vmem_mmu *m, const vmem_gmem *gm, const uint64_t *la, struct bgroup *g,
	     struct ucache *uc, const int top)
{
	const struct win_view v = win_view(&gm->win);
	const uint64_t ca = m->canon_add, cl = m->canon_lim, root = m->wroot;
	const unsigned n = g->n;
	for (unsigned j = 0; j < n; j++) {
		uint64_t a = la[j], key = a >> 30, any, t, pte;
		__typeof__(&uc->e[0]) e = &uc->e[key & (UC_SLOTS - 1)];
		if (vmi_likely(e->key == key)) {
			t = e->t;
			any = e->any;
		} else {
			/* A non-canonical address walks too (inside the window),
			 * with bit 0 of `any` (P, flipped: the root's is 0) set, so
			 * that its leaf test fails and vmem_walk reports it. The
			 * whole region is (non-)canonical as la is: bits 63:47 (or
			 * 63:56) are in the key. */
			any = root + (a + ca >= cl);
			t = root & v.wmaskb;
#pragma GCC unroll 5
			for (int level = top; level > 2; level--) {
				pte = win_entry_flipped(win_at(v, a, t, level));
				any |= pte;
				t = pte & v.wmaskb;
			}
			e->key = key;
			e->t = t;
			e->any = any;
		}
		pte = win_entry_flipped(win_at(v, a, t, 2));
		any |= pte;
		t = pte & v.wmaskb;
		const uint64_t *p = win_at(v, a, t, 1);
		__builtin_prefetch(p);
		g->off[j] = (uint64_t)((const uint8_t *)p - v.whost);
		g->any[j] = any;
	}
}

static inline __attribute__((always_inline)) void
wbatch_second(const struct vmem_mmu *m, const vmem_gmem *gm, const uint64_t *la, size_t k,
	      vmem_walk_result *res, struct bgroup *g)
{
	const uint8_t *host = gm->win.whost;
	const unsigned n = g->n;
	batch_mask slow = 0;
	for (unsigned j = 0; j < n; j++) {
		uint64_t why;
		uint64_t pte = win_entry((const uint64_t *)(const void *)(host + g->off[j]));
		if (!win_result(m, gm, la[j], pte, g->any[j], k, &res[j], 1, &why))
			slow |= (batch_mask)1 << j;
	}
	g->slow = slow;
}

/* Groups in a software pipeline: the upper levels of group i+1 run before
 * the PTEs of group i are read, so each PTE prefetch has a whole group's
 * work to arrive. Over the window (win) or over region r. */
static inline __attribute__((always_inline)) vmem_err
batch_pipe(const vmem_mmu *m, vmem_gmem *gm, const struct gm_region *r, const uint64_t *la, size_t n,
	   unsigned acc, unsigned flags, vmem_walk_result *res, const int top, const bool win)
{
	struct bgroup grp[2];
	struct bgroup *cur = &grp[0], *prev = NULL;
	struct ucache uc;
	unsigned fk = acc | (flags & VMEM_WALK_NO_AD) << 5;
	size_t k = 2 * (size_t)acc + (flags & VMEM_WALK_NO_AD);
	if (win)
		ucache_init(&uc);
	const uint8_t *host = win ? NULL : r->host;
	uint64_t base = win ? 0 : r->gpa, size = win ? 0 : r->size;
	for (size_t first = 0;; first += BATCH_LANES) {
		if (first < n) {
			cur->n = n - first < BATCH_LANES ? (unsigned)(n - first) : BATCH_LANES;
			cur->first = first;
			if (win)
				wbatch_first(m, gm, la + first, cur, &uc, top);
			else
				batch_first(m, host, base, size, la + first, cur->n, fk, res + first, cur, top);
		}
		if (prev) {
			if (win)
				wbatch_second(m, gm, la + prev->first, k, res + prev->first, prev);
			else
				batch_second(m, host, la + prev->first, fk, res + prev->first, prev);
			vmem_err e = batch_redo(m, gm, la, acc, flags, res, prev->first, prev->slow);
			if (e)
				return e;
		}
		if (first >= n)
			return VMEM_OK;
		prev = cur;
		cur = cur == &grp[0] ? &grp[1] : &grp[0];
	}
}

static __attribute__((noinline)) vmem_err
wbatch4(const vmem_mmu *m, vmem_gmem *gm, const uint64_t *la, size_t n, unsigned acc, unsigned flags,
	vmem_walk_result *res)
{
	return batch_pipe(m, gm, NULL, la, n, acc, flags, res, 4, true);
}

static __attribute__((noinline)) vmem_err
wbatch5(const vmem_mmu *m, vmem_gmem *gm, const uint64_t *la, size_t n, unsigned acc, unsigned flags,
	vmem_walk_result *res)
{
	return batch_pipe(m, gm, NULL, la, n, acc, flags, res, 5, true);
}

vmem_err vmem_walk_batch(const vmem_mmu *m, vmem_gmem *gm, const uint64_t *la, size_t n,
			 unsigned acc, unsigned flags, vmem_walk_result *res)
{
	if (!m || !gm || (!la && n) || (!res && n))
		return VMEM_E_INVAL;
	if (acc < MMU_ACC_INDEXES && gm->win.wimask) {
		unsigned top = m->wtop[2 * acc + (flags & VMEM_WALK_NO_AD)];
		if (top == 4)
			return wbatch4(m, gm, la, n, acc, flags, res);
		if (top == 5)
			return wbatch5(m, gm, la, n, acc, flags, res);
	}
	/* No window: the same pipeline over the region of the last full walk. */
	const struct gm_region *r = hint_region(gm);
	if (acc < MMU_ACC_INDEXES && ((m->fast_ok >> acc) & 1) && r)
		return m->ftop == 4 ? batch_pipe(m, gm, r, la, n, acc, flags, res, 4, false)
				    : batch_pipe(m, gm, r, la, n, acc, flags, res, 5, false);
	for (size_t i = 0; i < n; i++) {
		vmem_err e = vmem_walk(m, gm, la[i], acc, flags, &res[i]);
		if (e)
			return e;
	}
	return VMEM_OK;
}
