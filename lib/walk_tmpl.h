/* libvmem page walk template: one walk, instantiated for 4-byte (32-bit paging) and 8-byte entries. */
/* Included by walk.c with PTE_BITS defined to 32 or 64 (the paging_tmpl.h pattern), and
 * WALK_NESTED 1 for the nested instances, whose entry reads and A/D writes go through EPT. */
#ifndef WALK_NESTED
#define WALK_NESTED 0
#endif
#if WALK_NESTED
#define FN_SFX(n, b) n##b##_nested
#define NX_PARAM , struct nx_walk *nx
#define NX_ARG , nx
#else
#define FN_SFX(n, b) n##b
#define NX_PARAM
#define NX_ARG
#endif
#if PTE_BITS == 64
#define pte_t uint64_t
#define FN(n) FN_SFX(n, 64)
#define IDX_BITS 9
#define SWAP_INFO(pte) (vmem_swap_is_entry(pte) ? VMEM_WINFO_SWAP : 0)
#elif PTE_BITS == 32
#define pte_t uint32_t
#define FN(n) FN_SFX(n, 32)
#define IDX_BITS 10
/* The swap layout (pte.h) is for 64-bit entries: a 4-byte entry is never one. */
#define SWAP_INFO(pte) 0
#else
#error "PTE_BITS must be 32 or 64"
#endif
#define IDX_MASK ((1u << IDX_BITS) - 1)

/* State of one walk in flight. */
struct FN(lane) {
	uint64_t la;
	uint64_t table;          /* gpa of the table being indexed */
	const pte_t *p;          /* the entry to read, or NULL: value in mval */
	uint64_t mval;
	uint64_t egpa;           /* gpa of the entry to read */
	uint64_t and_bits;       /* R/W and U/S ANDed over the levels */
	uint64_t or_bits;        /* XD ORed over the levels */
	pte_t pte;               /* the last entry read */
	unsigned level, n, hint;
	bool wr;                 /* the entry's memory may take A/D writes */
	pte_t *ep[5];            /* entries used, for A/D (NULL: not writable) */
	pte_t ev[5];             /* their values as read */
#if WALK_NESTED
	struct nx_walk *nx;
	uint64_t eg[5];          /* guest-physical addresses of the entries used */
	uint8_t eperm[5];        /* EPT permissions of their translations */
#endif
};

/* Find the entry for lane->level. false: it is outside guest memory (res filled). */
static inline bool FN(lane_locate)(struct FN(lane) *l, const vmem_gmem *gm, vmem_walk_result *res)
{
	unsigned shift = 12 + IDX_BITS * (l->level - 1);
	vmem_err err = VMEM_OK;
	l->egpa = l->table + ((uint64_t)((l->la >> shift) & IDX_MASK) * sizeof(pte_t));
#if WALK_NESTED
	/* Every guest paging-structure access is itself an EPT translation (SDM 29.3.3.2). */
	uint64_t addr;
	if (!vmi_nx_entry(l->nx, l->egpa, &addr, &l->eperm[l->n])) {
		res->status = WALK_ST_EPT;
		res->gpa = l->egpa;
		res->level = (uint8_t)l->level;
		return false;
	}
#else
	uint64_t addr = l->egpa;
#endif
	l->p = gm_entry(gm, addr, sizeof(pte_t), &l->hint, &l->wr, &l->mval, &err);
	if (vmi_unlikely(err)) {
		res->status = VMEM_WALK_BAD_GPA;
		res->gpa = addr;
		res->level = (uint8_t)l->level;
		return false;
	}
	return true;
}

/* Read and judge the entry. Returns 1: descend (locate next), 0: leaf reached, -1: fault (res filled). */
static inline int FN(lane_consume)(struct FN(lane) *l, const struct vmem_mmu *m, unsigned acc,
				   vmem_walk_result *res, vmem_walk_trace *tr)
{
	pte_t pte = l->p ? __atomic_load_n(l->p, __ATOMIC_RELAXED) : (pte_t)l->mval;
	unsigned level = l->level;
	if (tr) {
		tr->e[tr->n].gpa = l->egpa;
		tr->e[tr->n].value = pte;
		tr->e[tr->n].level = level;
		tr->n++;
	}
	l->pte = pte;
	l->ep[l->n] = l->wr ? (pte_t *)(uintptr_t)l->p : NULL;
	l->ev[l->n] = pte;
#if WALK_NESTED
	l->eg[l->n] = l->egpa;
#endif
	l->n++;
	if (vmi_unlikely(!(pte & VMEM_PTE_P))) {
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc];
		res->level = (uint8_t)level;
		res->entry = pte;
		res->info = SWAP_INFO(pte);
		return -1;
	}
	unsigned ps = (pte >> 7) & 1;
	if (vmi_unlikely(pte & m->rsvd[level][ps])) {
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc] | VMEM_PFEC_P | VMEM_PFEC_RSVD;
		res->level = (uint8_t)level;
		res->entry = pte;
		return -1;
	}
	l->and_bits &= pte;
	l->or_bits |= pte;
	if (level == 1 || (ps & m->large_ok[level]))
		return 0;
	l->table = pte & m->frame[level][0];
	l->level = level - 1;
	return 1;
}

/* The leaf is reached: rights, protection keys, then A/D. 1: done, 0: lost an A/D race (retry). */
static inline int FN(lane_finish)(struct FN(lane) *l, const struct vmem_mmu *m, unsigned acc,
				  unsigned flags, vmem_walk_result *res)
{
	pte_t pte = l->pte;
	unsigned level = l->level;
	unsigned pa = (unsigned)((l->and_bits >> 1) & 3);
#if PTE_BITS == 64
	pa |= (l->or_bits >> 63) ? 0 : PA_X;
#else
	pa |= PA_X;
#endif
	unsigned fault = (m->perm[acc] >> pa) & 1;
	unsigned pk = 0;
#if PTE_BITS == 64
	/* Protection keys apply to user-mode addresses only (SDM 4.6.2). */
	if (m->pkmask[acc] && (pa & PA_U))
		pk = (m->pkru >> (2 * ((pte >> VMEM_PTE_PKEY_SHIFT) & 15))) & m->pkmask[acc];
#endif
	res->perms = (uint8_t)pa;
	res->level = (uint8_t)level;
	if (vmi_unlikely(fault | pk)) {
		res->status = VMEM_WALK_PF;
		res->error_code = m->pfec[acc] | VMEM_PFEC_P | (pk ? VMEM_PFEC_PK : 0);
		res->entry = pte;
		return 1;
	}
	unsigned shift = 12 + IDX_BITS * (level - 1);
	uint64_t off = l->la & ((1ull << shift) - 1);
	unsigned ps = level > 1;
#if PTE_BITS == 32
	if (ps) /* 4-MByte page: PDE bits 20:13 are PA bits 39:32 (PSE-36, SDM 4.3) */
		res->gpa = ((uint64_t)(pte & 0xffc00000u)) |
			   ((uint64_t)(pte & m->frame[2][1] & VMI_BITS(20, 13)) << 19) | off;
	else
		res->gpa = (pte & m->frame[level][0]) | off;
#else
	res->gpa = (pte & m->frame[level][ps]) | off;
#endif
	res->page_size = 1ull << shift;
	res->status = VMEM_WALK_OK;
	res->info = 0;
	if (!(flags & VMEM_WALK_NO_AD)) {
		/* A on every entry used, D on the leaf for a write; only now that the walk
		 * succeeded (SDM 4.8), each by compare-and-swap so a racing writer is not lost. */
		for (unsigned i = 0; i < l->n; i++) {
			pte_t want = l->ev[i] | (pte_t)VMEM_PTE_A;
			if (i == l->n - 1 && (acc & VMEM_ACC_WRITE))
				want |= (pte_t)VMEM_PTE_D;
#if WALK_NESTED
			/* The flag write is a data write to guest memory: EPT may refuse it. */
			if (want != l->ev[i] && !vmi_nx_ad_write(l->nx, l->eg[i], l->eperm[i])) {
				res->status = WALK_ST_EPT;
				res->gpa = l->eg[i];
				return 1;
			}
#endif
			if (want == l->ev[i] || !l->ep[i])
				continue;
			pte_t expect = l->ev[i];
			if (!__atomic_compare_exchange_n(l->ep[i], &expect, want, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
				return 0;
			res->info |= VMEM_WINFO_AD_SET;
			if (i == l->n - 1)
				pte = want;
		}
	}
	res->entry = pte;
	return 1;
}

static inline void FN(lane_init)(struct FN(lane) *l, const struct vmem_mmu *m, uint64_t la NX_PARAM)
{
#if WALK_NESTED
	l->nx = nx;
	/* Each attempt traces its own EPT translations, not those of one that started over. */
	if (nx->trace)
		nx->trace->n = 0;
#endif
	l->la = la;
	l->table = m->root;
	l->level = m->top;
	l->n = 0;
	l->hint = 0;
	l->and_bits = VMEM_PTE_RW | VMEM_PTE_US;
	l->or_bits = 0;
}

/* One complete walk. */
static vmem_err FN(walk)(const struct vmem_mmu *m, vmem_gmem *gm, uint64_t la, unsigned acc,
			 unsigned flags, vmem_walk_result *res, vmem_walk_trace *tr NX_PARAM)
{
	struct FN(lane) l;
	for (unsigned attempt = 0; attempt < WALK_MAX_RETRIES; attempt++) {
		FN(lane_init)(&l, m, la NX_ARG);
		if (tr)
			tr->n = 0;
#if PTE_BITS == 64
		if (m->mode == VMEM_MODE_PAE && !walk_pae_pdpte(m, la, acc, &l.table, res, tr))
			return VMEM_OK;
#endif
		int rc;
		do {
			if (!FN(lane_locate)(&l, gm, res))
				return VMEM_OK;
			rc = FN(lane_consume)(&l, m, acc, res, tr);
		} while (rc > 0);
		if (rc < 0 || FN(lane_finish)(&l, m, acc, flags, res))
			return VMEM_OK;
	}
	return VMEM_E_RETRY;
}

#undef pte_t
#undef FN
#undef FN_SFX
#undef NX_PARAM
#undef NX_ARG
#undef IDX_BITS
#undef SWAP_INFO
#undef IDX_MASK
