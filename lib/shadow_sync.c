/* libvmem shadow paging: coherence with guest memory (emulated table writes), INVLPG, zaps of host-map changes. */
#include "shadow_int.h"

/* Drop every shadow entry derived from bytes [lo, hi) of guest frame gfn,
 * in every shadow page that follows that frame as a guest table. */
static void zap_table_bytes(vmem_shadow *sh, uint64_t gfn, unsigned lo, unsigned hi)
{
restart:
	for (struct sh_page *sp = sh->thash[sh_hash(gfn, sh->thash_mask)]; sp; sp = sp->hnext) {
		if (sp->gfn != gfn)
			continue;
		const struct sh_root *r = sp->root;
		unsigned gshift = 12 + r->gbits * (sp->glevel - 1u);
		uint64_t gmask = ((1ull << r->gbits) - 1) << gshift;
		unsigned hshift = sh_shift(sp->level);
		/* A guest entry covers one host entry, or two (32-bit PDE: 4 MiB
		 * over 2-MiB host PDEs); a guest table covers at least the host
		 * page's span, so entry e lies wholly inside the page or outside. */
		unsigned n = 1u << (gshift - hshift);
		bool freed = false;
		for (unsigned e = lo / r->esize; e <= (hi - 1) / r->esize; e++) {
			uint64_t la = (sp->base & ~gmask) | ((uint64_t)e << gshift);
			uint64_t off = la - sp->base;
			if (off >> (hshift + 9))
				continue; /* another quarter of a 32-bit table, or the other half of the space */
			for (unsigned i = (unsigned)(off >> hshift), k = 0; k < n; k++, i++) {
				if (sp->pt[i] & VMEM_PTE_P) {
					freed |= sp->level > 1;
					vmi_shm_zap_entry(sh, sp, i);
				}
			}
		}
		if (freed)
			goto restart; /* freed pages may have left this chain */
	}
}

void vmi_shs_guest_wrote(vmem_shadow *sh, uint64_t gpa, uint64_t len)
{
	uint64_t end = gpa + len < gpa ? ~0ull : gpa + len;
	for (uint64_t f = gpa & ~0xfffull; f < end; f += 4096) {
		uint64_t lo = gpa > f ? gpa - f : 0;
		uint64_t hi = end - f > 4096 ? 4096 : end - f;
		zap_table_bytes(sh, f, (unsigned)lo, (unsigned)hi);
		if (f + 4096 < f)
			break;
	}
}

void vmem_shadow_notify_write(vmem_shadow *sh, uint64_t gpa, uint64_t len)
{
	if (sh && len)
		vmi_shs_guest_wrote(sh, gpa, len);
}

/* Only accessed/dirty flags were set: no shadow entry can allow more than
 * before (a leaf implies A already; D only lets a later fill grant W), so
 * nothing needs dropping. Compared per aligned dword: bits 5 and 6 of a
 * high dword are address bits of an 8-byte entry, so any change there counts. */
static bool only_ad_set(const uint8_t *oldp, const uint8_t *newp, unsigned n, unsigned base_off)
{
	for (unsigned i = 0; i < n; i += 4) {
		uint32_t o, w;
		vmi_memcpy(&o, oldp + i, 4);
		vmi_memcpy(&w, newp + i, 4);
		uint32_t ad = ((base_off + i) & 7) ? 0 : (uint32_t)(VMEM_PTE_A | VMEM_PTE_D);
		if ((o ^ w) & ~(w & ad))
			return false;
	}
	return true;
}

vmem_err vmem_shadow_emulate_write(vmem_shadow *sh, uint64_t gpa, const void *data, size_t len)
{
	if (!sh || !data || !len || len > 8 || (gpa & 0xfff) + len > 4096)
		return VMEM_E_INVAL;
	uint64_t start = gpa & ~7ull, end = (gpa + len + 7) & ~7ull;
	unsigned n = (unsigned)(end - start);
	uint8_t *hva = vmem_gmem_hva(sh->gm, start, n); /* RAM: compare before and after */
	uint8_t before[16];
	if (hva)
		vmi_memcpy(before, hva, n);
	vmem_err e = vmem_gmem_write(sh->gm, gpa, data, len);
	if (e)
		return e;
	sh->st.emulated_writes++;
	if (hva && only_ad_set(before, hva, n, (unsigned)(start & 0xfff)))
		return VMEM_OK;
	vmi_shs_guest_wrote(sh, gpa, len);
	return VMEM_OK;
}

void vmem_shadow_invalidate_gpa(vmem_shadow *sh, uint64_t gpa, uint64_t len)
{
	if (!sh || !len)
		return;
	uint64_t end = gpa + len < gpa ? ~0ull : gpa + len;
	for (uint64_t f = gpa & ~0xfffull; f < end; f += 4096) {
		vmi_shr_zap_gfn_leaves(sh, f);
		if (f + 4096 < f)
			break;
	}
}

void vmem_shadow_invlpg(vmem_shadow *sh, uint64_t la)
{
	if (!sh)
		return;
	/* The shadows are never stale, so INVLPG has nothing it must end; it
	 * drops la's leaf as the instruction drops the TLB entry (SDM 4.10.4.1),
	 * so the next access walks the guest tables again, as hardware would. */
	unsigned sh_bits = 12 + 9 * sh->hlevels;
	if ((uint64_t)((int64_t)(la << (64 - sh_bits)) >> (64 - sh_bits)) != la)
		return;
	struct sh_page *sp = sh->cur->top;
	for (unsigned L = sh->hlevels; L > 1; L--) {
		unsigned idx = (unsigned)(la >> sh_shift(L)) & 511;
		if (!(sp->pt[idx] & VMEM_PTE_P))
			return;
		sp = sp->u.child[idx];
	}
	vmi_shm_zap_entry(sh, sp, (unsigned)(la >> 12) & 511);
}

void vmem_shadow_zap_all(vmem_shadow *sh)
{
	if (!sh)
		return;
	for (unsigned i = 0; i < sh->max_roots; i++)
		if (sh->roots[i].used)
			for (unsigned k = 0; k < SH_ENTRIES; k++)
				vmi_shm_zap_entry(sh, sh->roots[i].top, k);
}
