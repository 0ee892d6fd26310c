/* libvmem software TLB: a per-vCPU translation cache tagged by VPID, PCID and EPTP, with the SDM's invalidation semantics. */
#ifndef LIBVMEM_TLB_H
#define LIBVMEM_TLB_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/alloc.h>
#include <libvmem/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a cached translation is tagged with (SDM vol. 3C 29.4.1): the VPID,
 * the PCID (ignored for a global translation), and the EPTP (its EP4TA, bits
 * 51:12; eptp 0 when EPT is off: linear mappings, apart from every combined
 * one, 29.4.2). A tag whose PCID is above 0xfff (CR3 holds 12 bits), whose
 * EP4TA is at or above 2^48, or that has EPT on at EP4TA 0 is never cached
 * (a TLB may always decline to cache, SDM 4.10.2): its lookups miss, so the
 * caller walks. */
typedef struct vmem_tlb_tag {
	uint16_t vpid;
	uint16_t pcid;
	uint64_t eptp;
} vmem_tlb_tag;

/* One cached translation (a "combined mapping" when EPT is on). */
typedef struct vmem_tlb_xlat {
	uint64_t pa;        /* physical address of the looked-up linear address */
	uint64_t page_size; /* 4K, 2M (or 4M) or 1G */
	uint8_t perms;      /* VMEM_PERM_W / U / X of the translation */
	uint8_t dirty;      /* the leaf's D flag was set: a write needs no walk */
	uint8_t global;     /* G = 1 with CR4.PGE = 1: survives PCID/CR3 flushes */
	uint8_t pkey;
} vmem_tlb_xlat;

typedef struct vmem_tlb vmem_tlb;

/* A TLB of 2^entries_log2 4K entries (and a quarter as many for large pages); 4..20. */
vmem_err vmem_tlb_new(const vmem_allocator *alloc, unsigned entries_log2, vmem_tlb **out);
void vmem_tlb_free(vmem_tlb *tlb);

/* The fast path. A TLB's slots are an array of these (a stable layout, so
 * that the hit path can be inlined into the caller); everything else about a
 * vmem_tlb stays private. A 4K slot is indexed by the page number's low
 * bits, as a hardware TLB's set is. */
typedef struct vmem_tlb_slot {
	uint64_t key;      /* the page's address | 0xfff (never 0); 0: empty */
	uint64_t tag;      /* VPID (bits 63:48) | EP4TA bits 47:12 | PCID (bits 11:0) */
	uint64_t xlat;     /* page address XOR physical frame address: pa = la ^ xlat */
	uint8_t global;
	uint8_t perms;     /* what a hit serves: VMEM_PERM_W only with dirty (vmem_tlb_hit4k) */
	uint8_t dirty, pkey;
	uint8_t clean_w;   /* VMEM_PERM_W of a writable translation cached with D = 0 */
	uint8_t lin;       /* (lib/tlb.c) size class of the guest's page this is a piece of */
	uint8_t pad[2];    /* 0: keeps a slot VMEM_TLB_SLOT_BYTES long */
} vmem_tlb_slot;
#define VMEM_TLB_SLOT_LOG2 5
#define VMEM_TLB_SLOT_BYTES (1u << VMEM_TLB_SLOT_LOG2)

/* A TLB bound to one tag (the vCPU's current VPID, PCID and EPTP): rebind
 * after any of them changes. Invalidations and inserts need no rebind. */
typedef struct vmem_tlb_view {
	const vmem_tlb_slot *slots; /* the 4K slots; a never-filled one for an uncached tag */
	uint64_t imask;    /* byte offset of la's slot: (la >> (12 - VMEM_TLB_SLOT_LOG2)) & imask */
	uint64_t tag;      /* the slot tag of the bound VPID, PCID and EPTP */
	const vmem_tlb *tlb;
	vmem_tlb_tag t;
} vmem_tlb_view;

void vmem_tlb_bind(const vmem_tlb *tlb, const vmem_tlb_tag *tag, vmem_tlb_view *v);

/* Inline 4K hit: true and the physical address and VMEM_PERM_* rights in
 * *pa / *perms when a non-global or global 4K translation of la is cached;
 * false means "ask vmem_tlb_lookup" (a large page, or a miss). The rights
 * are what the cache serves: VMEM_PERM_W only if the leaf's D flag was set,
 * since a write through a clean translation sets D (SDM 4.8): a write
 * without W walks. For the fewest
 * instructions keep the view a local whose address is taken only here (a
 * copy of the bound one), so that its fields stay in registers. */
static inline bool vmem_tlb_hit4k(const vmem_tlb_view *v, uint64_t la, uint64_t *pa, unsigned *perms)
{
	uint64_t key = la | 0xfff;
	const vmem_tlb_slot *e = (const vmem_tlb_slot *)(const void *)((const char *)v->slots +
		((la >> (12 - VMEM_TLB_SLOT_LOG2)) & v->imask));
	/* Key and tag equal: same page, VPID, PCID and EP4TA. A global
	 * translation matches any PCID of its VPID (SDM 4.10.2.4). */
	if (e->key != key)
		return false;
	if (e->tag != v->tag && !(e->global && (e->tag ^ v->tag) <= 0xfff))
		return false;
	*pa = la ^ e->xlat;
	*perms = e->perms;
	return true;
}

/* Look up la under tag. true and *out filled on a hit. */
bool vmem_tlb_lookup(const vmem_tlb *tlb, const vmem_tlb_tag *tag, uint64_t la, vmem_tlb_xlat *out);
/* Cache a completed translation of la (pa is la's own physical address; the
 * page frame is derived from page_size). May evict anything: a TLB may drop
 * any entry at any time (SDM 4.10.2). VMEM_E_INVAL for a bad page size. */
vmem_err vmem_tlb_insert(vmem_tlb *tlb, const vmem_tlb_tag *tag, uint64_t la, const vmem_tlb_xlat *x);
/* vmem_tlb_insert of one piece of a larger page: the guest's paging
 * structures map la with a page of linear_size, of which the translation
 * (x->page_size) covers a part, as when EPT maps a guest 2M page with 4K
 * pages (a nested walk: guest.page_size above page_size). INVLPG, INVPCID
 * and INVVPID of any address of that page then end every piece (SDM
 * 4.10.2.3; the INVLPG and INVPCID footnote). linear_size 0 or x->page_size:
 * vmem_tlb_insert. VMEM_E_INVAL for a linear_size that is no page size or
 * below x->page_size. */
vmem_err vmem_tlb_insert_piece(vmem_tlb *tlb, const vmem_tlb_tag *tag, uint64_t la, const vmem_tlb_xlat *x,
			       uint64_t linear_size);

/* Invalidation, as the instructions and events define it (SDM vol. 3A 4.10.4,
 * vol. 3C 29.4.3). vpid is the current VPID (0 outside VMX non-root). */
/* INVLPG: the page holding la, current VPID and PCID, and global translations of it. */
void vmem_tlb_invlpg(vmem_tlb *tlb, uint16_t vpid, uint16_t pcid, uint64_t la);
/* INVPCID types. */
#define VMEM_INVPCID_ADDR 0       /* (pcid, la), except global translations */
#define VMEM_INVPCID_SINGLE 1     /* every non-global translation of pcid */
#define VMEM_INVPCID_ALL_GLOBAL 2 /* everything, globals included */
#define VMEM_INVPCID_ALL 3        /* everything but global translations */
/* pcide: CR4.PCIDE. VMEM_E_INVAL, nothing done, where INVPCID #GPs: type
 * above 3, pcid above 0xfff, types 0 and 1 of a PCID other than 0 with
 * PCIDE = 0, type 0 of an address no processor calls canonical (bits 63:56
 * not copies of bit 56; a processor without 5-level paging also refuses bits
 * 56:47 not copies of bit 47: the caller's check). */
vmem_err vmem_tlb_invpcid(vmem_tlb *tlb, uint16_t vpid, unsigned type, uint16_t pcid, uint64_t la, bool pcide);
/* MOV to CR3: with CR4.PCIDE = 0 flushes non-global translations of PCID 0;
 * with PCIDE = 1 those of the new PCID (cr3[11:0]), unless cr3 bit 63 is set.
 * VMEM_E_INVAL, nothing done, where the MOV #GPs on a reserved bit whatever
 * MAXPHYADDR is: 60:52, and 63 with PCIDE = 0 (SDM 4.5, Tables 4-12, 4-13). */
vmem_err vmem_tlb_mov_cr3(vmem_tlb *tlb, uint16_t vpid, uint64_t cr3, bool pcide);
/* A change of CR0.PG, CR4.PGE, CR4.PCIDE... : every translation of the VPID, globals included.
 * Also every VM entry and VM exit with "enable VPID" = 0, for VPID 0 (SDM vol. 3C 29.4.3.1). */
void vmem_tlb_flush_vpid(vmem_tlb *tlb, uint16_t vpid);
/* INVVPID types (SDM vol. 3C 31.3, INVVPID). VMEM_E_INVAL, nothing done, for
 * VPID 0 with types 0, 1 and 3, and type 0 of an address no processor calls
 * canonical (as INVPCID) (the instruction's VMfailValid). */
#define VMEM_INVVPID_ADDR 0              /* (vpid, la): every PCID, globals included */
#define VMEM_INVVPID_SINGLE 1            /* every translation of vpid */
#define VMEM_INVVPID_ALL 2               /* every VPID except 0 */
#define VMEM_INVVPID_SINGLE_KEEP_GLOBAL 3 /* vpid, except global translations */
vmem_err vmem_tlb_invvpid(vmem_tlb *tlb, unsigned type, uint16_t vpid, uint64_t la);
/* INVEPT types: single context (mappings whose EP4TA is eptp's) or all.
 * VMEM_E_INVAL, nothing done, for a single-context eptp that VM entry refuses
 * on every processor (VMfailValid; SDM vol. 3C 27.2.1.1): memory type not UC
 * or WB, page-walk length not 4 or 5, bits 11:8 or 63:52 set. The checks
 * that depend on the processor (5-level, A/D, MAXPHYADDR) are the caller's:
 * vmem_ept_mmu_new makes them. */
#define VMEM_INVEPT_SINGLE 1
#define VMEM_INVEPT_ALL 2
vmem_err vmem_tlb_invept(vmem_tlb *tlb, unsigned type, uint64_t eptp);

#ifdef __cplusplus
}
#endif
#endif
