/* ref_walk: the SDM vol. 3A ch. 4 page-walk rules written out one per line, as a test oracle (clarity over speed). */
#include "ref_walk.h"

#include <string.h>

#define P_BIT  (1ull << 0)  /* present (4.3-4.5) */
#define RW_BIT (1ull << 1)  /* read/write */
#define US_BIT (1ull << 2)  /* user/supervisor */
#define A_BIT  (1ull << 5)  /* accessed (4.8) */
#define D_BIT  (1ull << 6)  /* dirty (4.8) */
#define PS_BIT (1ull << 7)  /* page size */
#define XD_BIT (1ull << 63) /* execute-disable */

/* Bits hi..lo set (empty when hi < lo). */
static uint64_t bits(int hi, int lo)
{
	uint64_t r = 0;
	for (int b = lo; b <= hi; b++)
		r |= 1ull << b;
	return r;
}

/* Everything one walk accumulates. */
struct walk {
	const ref_cpu *cpu;
	const ref_mem *mem;
	const ref_access *acc;
	ref_result *out;
	unsigned entry_size;  /* 4 (32-bit paging) or 8 */
	unsigned n_used;      /* entries that take the accessed flag */
	uint64_t used_gpa[5];
	bool all_rw, all_us, any_xd;
};

static bool paging_pae_or_longer(const ref_cpu *c) { return (c->cr4 & REF_CR4_PAE) != 0; }
static bool nxe(const ref_cpu *c) { return (c->efer & REF_EFER_NXE) != 0; }

/* 4.6: a user-mode access is one at CPL 3 that is not an implicit supervisor access. */
static bool user_access(const ref_access *a) { return a->cpl3 && !a->implicit; }

/* 4.7: the W/R, U/S and I/D bits every #PF error code carries. */
static uint32_t access_bits(const struct walk *w)
{
	uint32_t ec = 0;
	if (w->acc->write)
		ec |= REF_PF_W;                                   /* 4.7 W/R */
	if (user_access(w->acc))
		ec |= REF_PF_U;                                   /* 4.7 U/S */
	if (w->acc->fetch && ((w->cpu->cr4 & REF_CR4_SMEP) ||
			      (paging_pae_or_longer(w->cpu) && nxe(w->cpu))))
		ec |= REF_PF_I;                                   /* 4.7 I/D */
	return ec;
}

static void page_fault(struct walk *w, uint32_t extra, uint64_t entry, unsigned level)
{
	w->out->status = REF_PF;
	w->out->error_code = access_bits(w) | extra;
	w->out->entry = entry;
	w->out->level = level;
}

/* Read one paging-structure entry; record it in the trace. */
static bool read_entry(struct walk *w, uint64_t gpa, unsigned level, uint64_t *val)
{
	if (!w->mem->read(w->mem->ctx, gpa, w->entry_size, val)) {
		w->out->status = REF_BAD_GPA;
		w->out->gpa = gpa;
		return false;
	}
	w->out->trace[w->out->n].gpa = gpa;
	w->out->trace[w->out->n].value = *val;
	w->out->trace[w->out->n].level = level;
	w->out->n++;
	return true;
}

/* R/W and U/S combine by AND, XD by OR over every level used (4.6, 4.5). */
static void combine_rights(struct walk *w, uint64_t e)
{
	w->all_rw = w->all_rw && (e & RW_BIT);
	w->all_us = w->all_us && (e & US_BIT);
	w->any_xd = w->any_xd || (e & XD_BIT);
}

/* Read-modify-write: OR flags into the entry in memory (a locked OR on hardware). */
static void set_flags(struct walk *w, uint64_t gpa, uint64_t flags)
{
	uint64_t cur;
	if (!w->mem->read(w->mem->ctx, gpa, w->entry_size, &cur))
		return;
	if ((cur & flags) != flags && w->mem->write(w->mem->ctx, gpa, w->entry_size, cur | flags))
		w->out->ad_written = true;
}

/* 4.6 access rights and 4.6.2 protection keys, once the translation is complete.
 * Returns true (and fills *out as a #PF) if the access is not allowed. */
static bool protection_fault(struct walk *w, uint64_t leaf, unsigned leaf_level, bool ia32e)
{
	const ref_cpu *c = w->cpu;
	const ref_access *a = w->acc;
	bool user = user_access(a);
	bool user_addr = w->all_us;                      /* 4.6: U/S = 1 at every level */
	bool writable = w->all_rw;                       /* 4.6: R/W = 1 at every level */
	bool exec = !(nxe(c) && w->any_xd);              /* 4.6: XD only counts with EFER.NXE = 1 */
	bool wp = c->cr0 & REF_CR0_WP;
	bool smep = c->cr4 & REF_CR4_SMEP;
	bool smap = c->cr4 & REF_CR4_SMAP;
	bool smap_override = a->ac && !a->implicit;      /* 4.6.1: explicit access with EFLAGS.AC = 1 */
	bool allowed;

	if (user) {
		if (a->fetch)
			allowed = user_addr && exec;             /* 4.6.1 user fetch */
		else if (a->write)
			allowed = user_addr && writable;         /* 4.6.1 user write */
		else
			allowed = user_addr;                     /* 4.6.1 user read */
	} else {
		if (a->fetch) {
			if (user_addr && smep)
				allowed = false;                 /* 4.6.1 SMEP: no supervisor fetch from user pages */
			else
				allowed = exec;                  /* 4.6.1 supervisor fetch */
		} else {
			bool smap_block = user_addr && smap && !smap_override; /* 4.6.1 SMAP */
			if (a->write)
				allowed = !smap_block && (!wp || writable); /* 4.6.1 CR0.WP */
			else
				allowed = !smap_block;           /* 4.6.1 supervisor read */
		}
	}

	/* 4.6.2: protection keys, IA-32e paging with CR4.PKE, data accesses to user-mode addresses. */
	bool pk = false;
	if (ia32e && (c->cr4 & REF_CR4_PKE) && !a->fetch && user_addr) {
		unsigned key = (unsigned)((leaf >> 59) & 0xf);
		bool ad = (c->pkru >> (2 * key)) & 1;
		bool wd = (c->pkru >> (2 * key + 1)) & 1;
		if (ad)
			pk = true;                               /* 4.6.2 ADi: no data access */
		if (a->write && wd && (user || wp))
			pk = true;                               /* 4.6.2 WDi: no write (supervisor only with CR0.WP) */
	}

	w->out->perms = (writable ? REF_PERM_W : 0) | (user_addr ? REF_PERM_U : 0) | (exec ? REF_PERM_X : 0);
	if (allowed && !pk)
		return false;
	page_fault(w, REF_PF_P | (pk ? REF_PF_PK : 0), leaf, leaf_level); /* 4.7 PK with any rights fault */
	return true;
}

/* A translation completed: 4.8 accessed flag on every entry used, dirty on the leaf for writes. */
static void finish(struct walk *w, uint64_t leaf, uint64_t leaf_gpa, unsigned leaf_level,
		   uint64_t gpa, uint64_t page_size, bool set_ad)
{
	ref_result *o = w->out;
	if (set_ad) {
		for (unsigned i = 0; i < w->n_used; i++)
			set_flags(w, w->used_gpa[i], A_BIT);
		if (w->acc->write)
			set_flags(w, leaf_gpa, A_BIT | D_BIT);
		leaf |= A_BIT | (w->acc->write ? D_BIT : 0);
	}
	o->status = REF_OK;
	o->gpa = gpa;
	o->page_size = page_size;
	o->entry = leaf;
	o->level = leaf_level;
}

/* 4.3: 32-bit paging. */
static void walk_32bit(struct walk *w, bool set_ad)
{
	const ref_cpu *c = w->cpu;
	uint64_t la = w->acc->la;
	uint64_t pde, pte;

	w->entry_size = 4;
	uint64_t pde_gpa = (c->cr3 & bits(31, 12)) | (((la >> 22) & 0x3ff) << 2);  /* 4.3 PDE address */
	if (!read_entry(w, pde_gpa, 2, &pde))
		return;
	if (!(pde & P_BIT))
		{ page_fault(w, 0, pde, 2); return; }
	w->used_gpa[w->n_used++] = pde_gpa;
	combine_rights(w, pde);

	if ((c->cr4 & REF_CR4_PSE) && (pde & PS_BIT)) {
		int m = c->maxphyaddr < 40 ? (int)c->maxphyaddr : 40;   /* 4.3: PSE-36 reaches at most 40 bits */
		uint64_t rsvd = bits(21, 21) | bits(20, m - 19);       /* Table 4-4: bit 21, bits 20:(M-19) */
		if (pde & rsvd)
			{ page_fault(w, REF_PF_P | REF_PF_RSVD, pde, 2); return; }
		uint64_t hi = (pde >> 13) & bits(m - 33, 0);         /* Table 4-4: PDE (M-20):13 = PA (M-1):32 */
		uint64_t gpa = (hi << 32) | (pde & bits(31, 22)) | (la & bits(21, 0));
		if (protection_fault(w, pde, 2, false))
			return;
		{ finish(w, pde, pde_gpa, 2, gpa, 1ull << 22, set_ad); return; }
	}

	uint64_t pte_gpa = (pde & bits(31, 12)) | (((la >> 12) & 0x3ff) << 2);    /* 4.3 PTE address */
	if (!read_entry(w, pte_gpa, 1, &pte))
		return;
	if (!(pte & P_BIT))
		{ page_fault(w, 0, pte, 1); return; }
	w->used_gpa[w->n_used++] = pte_gpa;
	combine_rights(w, pte);
	if (protection_fault(w, pte, 1, false))
		return;
	finish(w, pte, pte_gpa, 1, (pte & bits(31, 12)) | (la & 0xfff), 1ull << 12, set_ad);
}

/* Table 4-8: reserved bits of a PAE PDPTE. */
static uint64_t pae_pdpte_rsvd(const ref_cpu *c)
{
	return bits(63, (int)c->maxphyaddr) | bits(8, 5) | bits(2, 1);
}

ref_status ref_pae_load_pdptes(const ref_cpu *cpu, const ref_mem *mem, uint64_t pdpte[4])
{
	uint64_t v[4];
	for (unsigned i = 0; i < 4; i++) {
		if (!mem->read(mem->ctx, (cpu->cr3 & bits(31, 5)) + 8 * i, 8, &v[i]))
			return REF_BAD_GPA;
		if ((v[i] & P_BIT) && (v[i] & pae_pdpte_rsvd(cpu)))
			return REF_GP;                                  /* 4.4.1: MOV to CR3 #GP */
	}
	memcpy(pdpte, v, sizeof(v));
	return REF_OK;
}

/* 4.4: PAE paging. */
static void walk_pae(struct walk *w, bool set_ad)
{
	const ref_cpu *c = w->cpu;
	uint64_t la = w->acc->la;
	int m = (int)c->maxphyaddr;
	uint64_t xd_rsvd = nxe(c) ? 0 : XD_BIT;                   /* 4.4.2: XD reserved when NXE = 0 */
	uint64_t pde, pte;

	w->entry_size = 8;
	unsigned i = (unsigned)((la >> 30) & 3);                    /* 4.4.1: LA 31:30 select a PDPTE register */
	uint64_t pdpte = c->pdpte[i];
	w->out->trace[0].gpa = (c->cr3 & bits(31, 5)) + 8 * i;
	w->out->trace[0].value = pdpte;
	w->out->trace[0].level = 3;
	w->out->n = 1;
	if (!(pdpte & P_BIT))
		{ page_fault(w, 0, pdpte, 3); return; }
	if (pdpte & pae_pdpte_rsvd(c))                             /* Table 4-8: PDPTE reserved bits */
		{ page_fault(w, REF_PF_P | REF_PF_RSVD, pdpte, 3); return; }
	/* 4.4.1: the PDPTEs take no part in access rights and get no accessed flag. */

	uint64_t pde_gpa = (pdpte & bits(m - 1, 12)) | (((la >> 21) & 0x1ff) << 3);
	if (!read_entry(w, pde_gpa, 2, &pde))
		return;
	if (!(pde & P_BIT))
		{ page_fault(w, 0, pde, 2); return; }
	uint64_t rsvd = bits(62, m) | xd_rsvd;                      /* Tables 4-9..4-11: bits 62:M */
	if (pde & PS_BIT)
		rsvd |= bits(20, 13);                                   /* Table 4-9: 2-MByte page alignment */
	if (pde & rsvd)
		{ page_fault(w, REF_PF_P | REF_PF_RSVD, pde, 2); return; }
	w->used_gpa[w->n_used++] = pde_gpa;
	combine_rights(w, pde);
	if (pde & PS_BIT) {                                         /* 4.4.2: PS honoured regardless of CR4.PSE */
		if (protection_fault(w, pde, 2, false))
			return;
		{ finish(w, pde, pde_gpa, 2, (pde & bits(m - 1, 21)) | (la & bits(20, 0)),
			      1ull << 21, set_ad); return; }
	}

	uint64_t pte_gpa = (pde & bits(m - 1, 12)) | (((la >> 12) & 0x1ff) << 3);
	if (!read_entry(w, pte_gpa, 1, &pte))
		return;
	if (!(pte & P_BIT))
		{ page_fault(w, 0, pte, 1); return; }
	if (pte & (bits(62, m) | xd_rsvd))                          /* Table 4-11 */
		{ page_fault(w, REF_PF_P | REF_PF_RSVD, pte, 1); return; }
	w->used_gpa[w->n_used++] = pte_gpa;
	combine_rights(w, pte);
	if (protection_fault(w, pte, 1, false))
		return;
	finish(w, pte, pte_gpa, 1, (pte & bits(m - 1, 12)) | (la & 0xfff), 1ull << 12, set_ad);
}

/* 4.5: 4-level and 5-level paging. */
static void walk_ia32e(struct walk *w, bool la57, bool set_ad)
{
	const ref_cpu *c = w->cpu;
	uint64_t la = w->acc->la;
	int m = (int)c->maxphyaddr;
	int width = la57 ? 57 : 48;

	/* 3.3.7.1 / 4.5: canonical means bits 63:width-1 all equal; otherwise #GP. */
	uint64_t top = la & bits(63, width - 1);
	if (top != 0 && top != bits(63, width - 1)) {
		w->out->status = REF_GP;
		return;
	}

	w->entry_size = 8;
	uint64_t table = c->cr3 & bits(m - 1, 12);               /* 4.5.2: CR3 M-1:12 */
	for (int level = la57 ? 5 : 4; level >= 1; level--) {
		int shift = 12 + 9 * (level - 1);
		uint64_t gpa = table | (((la >> shift) & 0x1ff) << 3);
		uint64_t e;
		if (!read_entry(w, gpa, (unsigned)level, &e))
			return;
		if (!(e & P_BIT))
			{ page_fault(w, 0, e, (unsigned)level); return; }
		bool ps = level != 1 && (e & PS_BIT);                   /* bit 7 of a PTE is PAT */
		uint64_t rsvd = bits(51, m);                            /* 4.5.4: bits 51:M */
		if (!nxe(c))
			rsvd |= XD_BIT;                                     /* 4.5.4: XD reserved when NXE = 0 */
		if (level >= 4)
			rsvd |= PS_BIT;                                     /* Tables 4-14/4-15: PS reserved in PML5E/PML4E */
		if (level == 3 && ps && !c->gbpages)
			rsvd |= PS_BIT;                                     /* 4.5.4: no 1-GByte pages, PS reserved */
		if (level == 3 && ps && c->gbpages)
			rsvd |= bits(29, 13);                               /* Table 4-16: 1-GByte page alignment */
		if (level == 2 && ps)
			rsvd |= bits(20, 13);                               /* Table 4-18: 2-MByte page alignment */
		if (e & rsvd)
			{ page_fault(w, REF_PF_P | REF_PF_RSVD, e, (unsigned)level); return; }
		w->used_gpa[w->n_used++] = gpa;
		combine_rights(w, e);
		if (level == 1 || ps) {
			uint64_t gpa_out = (e & bits(m - 1, shift)) | (la & bits(shift - 1, 0));
			if (protection_fault(w, e, (unsigned)level, true))
				return;
			{ finish(w, e, gpa, (unsigned)level, gpa_out, 1ull << shift, set_ad); return; }
		}
		table = e & bits(m - 1, 12);
	}
}

void ref_walk(const ref_cpu *cpu, const ref_mem *mem, const ref_access *acc,
	      bool set_ad, ref_result *out)
{
	struct walk w;
	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.cpu = cpu;
	w.mem = mem;
	w.acc = acc;
	w.out = out;
	w.all_rw = true;
	w.all_us = true;
	w.any_xd = false;

	if (acc->write && acc->fetch) {
		out->status = REF_INVAL;                               /* not one access */
		return;
	}
	bool paging = cpu->cr0 & REF_CR0_PG;
	bool ia32e = paging && (cpu->cr4 & REF_CR4_PAE) && (cpu->efer & REF_EFER_LMA);
	if (!ia32e && acc->la > 0xffffffffull) {
		out->status = REF_INVAL;                               /* linear addresses are 32 bits outside IA-32e mode */
		return;
	}
	if (!paging) {                                             /* 4.1.1: CR0.PG = 0, linear = physical */
		out->status = REF_OK;
		out->gpa = acc->la;
		out->page_size = 1ull << 12;
		out->perms = REF_PERM_W | REF_PERM_U | REF_PERM_X;
		return;
	}
	if (!(cpu->cr4 & REF_CR4_PAE))                             /* Table 4-1 */
		walk_32bit(&w, set_ad);
	else if (!(cpu->efer & REF_EFER_LMA))
		walk_pae(&w, set_ad);
	else
		walk_ia32e(&w, (cpu->cr4 & REF_CR4_LA57) != 0, set_ad);
}
