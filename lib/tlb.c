/* libvmem software TLB: direct-mapped arrays per page size, tags compared whole, invalidation by SDM rule. */
#include <libvmem/tlb.h>
#include <libvmem/walk.h>
#include "vmem_int.h"

#define EP4TA_MASK VMI_BITS(51, 12)
/* The EP4TA bits a slot's tag holds; a higher EP4TA is never cached. */
#define EP4TA_TAGGED VMI_BITS(47, 12)

/* Size classes: 4K, 2M, 4M (32-bit paging), 1G. */
enum { SZ_4K, SZ_2M, SZ_4M, SZ_1G, SZ_N };
static const unsigned sz_shift[SZ_N] = { 12, 21, 22, 30 };
/* vmem_tlb_hit4k indexes slots by VMEM_TLB_SLOT_LOG2. */
_Static_assert(sizeof(vmem_tlb_slot) == VMEM_TLB_SLOT_BYTES, "vmem_tlb_slot size");


struct vmem_tlb {
	const vmem_allocator *alloc;
	unsigned bits[SZ_N];
	vmem_tlb_slot *e[SZ_N];
	vmem_tlb_slot never; /* stays empty: the slot of a view whose tag is not cached */
	int lin_max;         /* largest class of a page with pieces cached (SZ_4K: none) */
};

/* The offset bits of a page of class s. */
static inline uint64_t low_of(int s)
{
	return (1ull << sz_shift[s]) - 1;
}

/* The key of la's page in class s: its address with the offset bits set (never 0, the empty slot). */
static inline uint64_t key_of(int s, uint64_t la)
{
	return la | low_of(s);
}

/* Whether the entry in e translates la, or is a piece of the guest's larger
 * page that holds la (SDM 4.10.2.3: INVLPG of la ends all of its pieces). */
static inline bool holds(const vmem_tlb_slot *e, uint64_t la)
{
	return e->key && (e->key | low_of(e->lin)) == key_of(e->lin, la);
}

/* Whether translations under tag may be cached: a 12-bit PCID (CR3 bits
 * 11:0) and an EP4TA below 2^48, which the slot tag has room for. EPT on at
 * EP4TA 0 (a nonzero EPTP: bits 5:3 are 3 or 4) is not, so that its combined
 * mappings and the linear ones of EPT off (tagged EP4TA 0) stay apart
 * (SDM vol. 3C 29.4.2: neither kind is used while the other is in force). */
static inline bool cacheable(const vmem_tlb_tag *tag)
{
	return tag->pcid <= 0xfff && !(tag->eptp & EP4TA_MASK & ~EP4TA_TAGGED) &&
	       (tag->eptp & EP4TA_TAGGED || !tag->eptp);
}

/* Canonical on every processor: bits 63:56 copies of bit 56 (5-level
 * paging's 57 bits, SDM 4.5; a 48-bit processor's addresses are a subset). */
static inline bool canonical57(uint64_t la)
{
	return (uint64_t)((int64_t)(la << 7) >> 7) == la;
}

/* CR3 bits MOV to CR3 #GPs on (SDM 4.5 Tables 4-12, 4-13): 60:52 always
 * (MAXPHYADDR <= 52; 62:61 are LAM's), 63 with PCIDE = 0 (with PCIDE = 1 it
 * is the no-flush flag, 4.10.4.1). Outside 64-bit mode CR3 takes 32 bits. */
static const uint64_t cr3_rsvd[2] = { VMI_BITS(60, 52) | 1ull << 63, VMI_BITS(60, 52) };

/* The rest of the tag, one word: VPID, EP4TA, PCID. */
static inline uint64_t tag_of(const vmem_tlb_tag *tag)
{
	return (uint64_t)tag->vpid << 48 | (tag->eptp & EP4TA_TAGGED) | tag->pcid;
}

static inline size_t slot(const vmem_tlb *t, int s, uint64_t la)
{
	/* The page number's low bits, as vmem_tlb_hit4k indexes. */
	return (size_t)((la >> sz_shift[s]) & ((1ull << t->bits[s]) - 1));
}

void vmem_tlb_bind(const vmem_tlb *t, const vmem_tlb_tag *tag, vmem_tlb_view *v)
{
	bool c = cacheable(tag);
	v->slots = c ? t->e[SZ_4K] : &t->never;
	v->imask = c ? ((1ull << t->bits[SZ_4K]) - 1) << VMEM_TLB_SLOT_LOG2 : 0;
	v->tag = tag_of(tag);
	v->tlb = t;
	v->t = *tag;
}

vmem_err vmem_tlb_new(const vmem_allocator *alloc, unsigned entries_log2, vmem_tlb **out)
{
	if (!out || entries_log2 < 4 || entries_log2 > 20)
		return VMEM_E_INVAL;
	vmem_err err;
	vmem_tlb *t = vmi_handle_new(&alloc, sizeof(*t), &err);
	if (!t)
		return err;
	t->alloc = alloc;
	for (int s = 0; s < SZ_N; s++) {
		t->bits[s] = s == SZ_4K ? entries_log2 : entries_log2 - 2;
		t->e[s] = vmi_zalloc(alloc, sizeof(vmem_tlb_slot) << t->bits[s]);
		if (!t->e[s]) {
			vmem_tlb_free(t);
			return VMEM_E_NOMEM;
		}
	}
	*out = t;
	return VMEM_OK;
}

void vmem_tlb_free(vmem_tlb *t)
{
	if (!t)
		return;
	for (int s = 0; s < SZ_N; s++)
		vmi_free(t->alloc, t->e[s], sizeof(vmem_tlb_slot) << t->bits[s]);
	vmi_free(t->alloc, t, sizeof(*t));
}

static inline bool hit(const vmem_tlb_slot *e, uint64_t key, uint64_t tag)
{
	/* A global translation matches any PCID of its VPID (SDM 4.10.2.4): the
	 * PCID is the tag's bits 11:0. */
	return e->key == key && (e->tag == tag || (e->global && (e->tag ^ tag) <= 0xfff));
}

static inline void tlb_out(const vmem_tlb_slot *e, unsigned shift, uint64_t la, vmem_tlb_xlat *out)
{
	uint64_t mask = (1ull << shift) - 1;
	out->pa = la ^ e->xlat; /* the page bits of la are the key's */
	out->page_size = mask + 1;
	out->perms = e->perms | e->clean_w;
	out->dirty = e->dirty;
	out->global = e->global;
	out->pkey = e->pkey;
}

bool vmem_tlb_lookup(const vmem_tlb *t, const vmem_tlb_tag *tag, uint64_t la, vmem_tlb_xlat *out)
{
	if (!cacheable(tag))
		return false; /* never cached (see vmem_tlb_insert) */
	uint64_t tg = tag_of(tag);
	/* 4K first, inline: the hit that matters. */
	const vmem_tlb_slot *e = &t->e[SZ_4K][slot(t, SZ_4K, la)];
	if (vmi_likely(hit(e, key_of(SZ_4K, la), tg))) {
		tlb_out(e, 12, la, out);
		return true;
	}
	for (int s = SZ_2M; s < SZ_N; s++) {
		e = &t->e[s][slot(t, s, la)];
		if (hit(e, key_of(s, la), tg)) {
			tlb_out(e, sz_shift[s], la, out);
			return true;
		}
	}
	return false;
}

static int size_class(uint64_t page_size)
{
	for (int s = 0; s < SZ_N; s++)
		if (page_size == 1ull << sz_shift[s])
			return s;
	return -1;
}

vmem_err vmem_tlb_insert(vmem_tlb *t, const vmem_tlb_tag *tag, uint64_t la, const vmem_tlb_xlat *x)
{
	return vmem_tlb_insert_piece(t, tag, la, x, 0);
}

vmem_err vmem_tlb_insert_piece(vmem_tlb *t, const vmem_tlb_tag *tag, uint64_t la, const vmem_tlb_xlat *x,
			       uint64_t linear_size)
{
	int s = x ? size_class(x->page_size) : -1;
	int l = linear_size ? size_class(linear_size) : s;
	if (!t || !tag || s < 0 || l < s)
		return VMEM_E_INVAL;
	/* PCIDs are 12 bits (CR3 bits 11:0) and the tag keeps EP4TA bits 47:12:
	 * another tag is not cached, which a TLB may always do (SDM 4.10.2). */
	if (!cacheable(tag))
		return VMEM_OK;
	vmem_tlb_slot *e = &t->e[s][slot(t, s, la)];
	e->key = key_of(s, la);
	e->tag = tag_of(tag);
	e->lin = (uint8_t)l;
	if (l > t->lin_max)
		t->lin_max = l;
	e->global = x->global ? 1 : 0;
	/* A write through a translation cached with D = 0 sets D (SDM 4.8): the
	 * inline hit, which reports no D, serves writes only with D = 1. */
	e->clean_w = x->dirty ? 0 : x->perms & VMEM_PERM_W;
	e->perms = x->perms & ~e->clean_w;
	e->dirty = x->dirty ? 1 : 0;
	e->pkey = x->pkey;
	/* la ^ xlat is the physical address of any la in the page. */
	e->xlat = (la & ~((1ull << sz_shift[s]) - 1)) ^ (x->pa & ~((1ull << sz_shift[s]) - 1));
	return VMEM_OK;
}

/* Drop every entry the predicate selects (the whole-TLB invalidations). */
enum match { M_VPID, M_VPID_NONGLOBAL, M_PCID_NONGLOBAL, M_ALL_BUT_VPID0, M_EP4TA, M_ALL };
static void flush_where(vmem_tlb *t, enum match m, uint16_t vpid, uint16_t pcid, uint64_t ep4ta)
{
	for (int s = 0; s < SZ_N; s++) {
		size_t n = (size_t)1 << t->bits[s];
		for (size_t i = 0; i < n; i++) {
			vmem_tlb_slot *e = &t->e[s][i];
			if (!e->key)
				continue;
			uint16_t ev = (uint16_t)(e->tag >> 48), ep = (uint16_t)(e->tag & 0xfff);
			bool drop = false;
			switch (m) {
			case M_VPID: drop = ev == vpid; break;
			case M_VPID_NONGLOBAL: drop = ev == vpid && !e->global; break;
			case M_PCID_NONGLOBAL: drop = ev == vpid && ep == pcid && !e->global; break;
			case M_ALL_BUT_VPID0: drop = ev != 0; break;
			case M_EP4TA: drop = (e->tag & EP4TA_TAGGED) == ep4ta; break;
			case M_ALL: drop = true; break;
			}
			if (drop)
				e->key = 0;
		}
	}
	if (m == M_ALL)
		t->lin_max = SZ_4K;
}

/* Drop the entries that can translate la, if selected: la's slot of each
 * size class, and with pieces of larger pages cached (vmem_tlb_insert_piece)
 * every slot of the largest such page around la. */
static void flush_addr(vmem_tlb *t, uint64_t la, uint16_t vpid, int pcid, bool globals)
{
	for (int s = 0; s < SZ_N; s++) {
		int l = t->lin_max > s ? t->lin_max : s;
		unsigned span = sz_shift[l] - sz_shift[s];
		size_t n = (size_t)1 << (span < t->bits[s] ? span : t->bits[s]);
		size_t first = slot(t, s, la & ~low_of(l)), mask = ((size_t)1 << t->bits[s]) - 1;
		for (size_t i = 0; i < n; i++) {
			vmem_tlb_slot *e = &t->e[s][(first + i) & mask];
			if (!holds(e, la) || (e->tag >> 48) != vpid)
				continue;
			if (e->global ? globals : (pcid < 0 || (e->tag & 0xfff) == (uint16_t)pcid))
				e->key = 0;
		}
	}
}

void vmem_tlb_invlpg(vmem_tlb *t, uint16_t vpid, uint16_t pcid, uint64_t la)
{
	/* SDM 4.10.4.1: the current PCID's translations of the page, and global ones. */
	flush_addr(t, la, vpid, pcid, true);
}

vmem_err vmem_tlb_invpcid(vmem_tlb *t, uint16_t vpid, unsigned type, uint16_t pcid, uint64_t la, bool pcide)
{
	/* INVPCID's #GP(0), nothing invalidated: descriptor bits 63:12 set; with
	 * PCIDE = 0 types 0 and 1 only for PCID 000H; type 0 of a non-canonical address. */
	if (!t || pcid > 0xfff || (type <= VMEM_INVPCID_SINGLE && !pcide && pcid) ||
	    (type == VMEM_INVPCID_ADDR && !canonical57(la)))
		return VMEM_E_INVAL;
	switch (type) {
	case VMEM_INVPCID_ADDR: flush_addr(t, la, vpid, pcid, false); break;
	case VMEM_INVPCID_SINGLE: flush_where(t, M_PCID_NONGLOBAL, vpid, pcid, 0); break;
	case VMEM_INVPCID_ALL_GLOBAL: flush_where(t, M_VPID, vpid, 0, 0); break;
	case VMEM_INVPCID_ALL: flush_where(t, M_VPID_NONGLOBAL, vpid, 0, 0); break;
	default: return VMEM_E_INVAL;
	}
	return VMEM_OK;
}

vmem_err vmem_tlb_mov_cr3(vmem_tlb *t, uint16_t vpid, uint64_t cr3, bool pcide)
{
	if (!t || (cr3 & cr3_rsvd[pcide]))
		return VMEM_E_INVAL;
	/* SDM 4.10.4.1: bit 63 set with PCIDE = 1 means no flush. */
	if (pcide && (cr3 >> 63))
		return VMEM_OK;
	flush_where(t, M_PCID_NONGLOBAL, vpid, pcide ? (uint16_t)(cr3 & 0xfff) : 0, 0);
	return VMEM_OK;
}

void vmem_tlb_flush_vpid(vmem_tlb *t, uint16_t vpid)
{
	flush_where(t, M_VPID, vpid, 0, 0);
}

vmem_err vmem_tlb_invvpid(vmem_tlb *t, unsigned type, uint16_t vpid, uint64_t la)
{
	/* SDM vol. 3C 31.3 INVVPID: types 0, 1 and 3 with VPID 0, and type 0 of a
	 * non-canonical address, fail (VMfailValid), invalidating nothing. */
	if (!t || (vpid == 0 && type != VMEM_INVVPID_ALL) || (type == VMEM_INVVPID_ADDR && !canonical57(la)))
		return VMEM_E_INVAL;
	switch (type) {
	case VMEM_INVVPID_ADDR: flush_addr(t, la, vpid, -1, true); break;
	case VMEM_INVVPID_SINGLE: flush_where(t, M_VPID, vpid, 0, 0); break;
	case VMEM_INVVPID_ALL: flush_where(t, M_ALL_BUT_VPID0, 0, 0, 0); break;
	case VMEM_INVVPID_SINGLE_KEEP_GLOBAL: flush_where(t, M_VPID_NONGLOBAL, vpid, 0, 0); break;
	default: return VMEM_E_INVAL;
	}
	return VMEM_OK;
}

vmem_err vmem_tlb_invept(vmem_tlb *t, unsigned type, uint64_t eptp)
{
	if (!t)
		return VMEM_E_INVAL;
	if (type == VMEM_INVEPT_ALL)
		flush_where(t, M_ALL, 0, 0, 0);
	else if (type != VMEM_INVEPT_SINGLE || vmi_eptp_refused(eptp)) /* INVEPT: VMfailValid */
		return VMEM_E_INVAL;
	else if (!(eptp & EP4TA_MASK & ~EP4TA_TAGGED)) /* a higher EP4TA was never cached */
		flush_where(t, M_EP4TA, 0, 0, eptp & EP4TA_TAGGED);
	return VMEM_OK;
}
