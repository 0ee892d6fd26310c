/* libvmem shadow paging: the two reverse maps, guest table frame -> shadow pages and guest frame -> shadow leaves. */
#include <stddef.h>
#include "shadow_int.h"

/* A leaf node keeps gfn | slot index (a frame address has 12 zero bits). */
#define RN_IDX 0xfffull

static struct sh_page *node_page(struct sh_rnode *n, unsigned *idx)
{
	*idx = (unsigned)(n->gfn & RN_IDX);
	return (struct sh_page *)(void *)((char *)(n - *idx) - offsetof(struct sh_page, u));
}

bool vmi_shr_is_table(const vmem_shadow *sh, uint64_t gfn)
{
	for (const struct sh_page *sp = sh->thash[sh_hash(gfn, sh->thash_mask)]; sp; sp = sp->hnext)
		if (sp->gfn == gfn)
			return true;
	return false;
}

void vmi_shr_table_add(vmem_shadow *sh, struct sh_page *sp)
{
	/* The first shadow page to follow a guest frame makes it a table: from
	 * now on every guest write to it must come to us (coherence). */
	if (!vmi_shr_is_table(sh, sp->gfn))
		vmi_shr_write_protect(sh, sp->gfn);
	struct sh_page **head = &sh->thash[sh_hash(sp->gfn, sh->thash_mask)];
	sp->hnext = *head;
	sp->hpprev = head;
	if (*head)
		(*head)->hpprev = &sp->hnext;
	*head = sp;
}

void vmi_shr_table_del(vmem_shadow *sh, struct sh_page *sp)
{
	(void)sh;
	*sp->hpprev = sp->hnext;
	if (sp->hnext)
		sp->hnext->hpprev = sp->hpprev;
	sp->hnext = NULL;
	sp->hpprev = NULL;
}

void vmi_shr_leaf_add(vmem_shadow *sh, struct sh_page *sp, unsigned idx, uint64_t gfn)
{
	struct sh_rnode *n = &sp->u.rm[idx];
	struct sh_rnode **head = &sh->rhash[sh_hash(gfn, sh->rhash_mask)];
	n->gfn = gfn | idx;
	n->next = *head;
	n->pprev = head;
	if (*head)
		(*head)->pprev = &n->next;
	*head = n;
}

void vmi_shr_leaf_del(struct sh_page *sp, unsigned idx)
{
	struct sh_rnode *n = &sp->u.rm[idx];
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	n->next = NULL;
	n->pprev = NULL;
	n->gfn = 0;
}

void vmi_shr_write_protect(vmem_shadow *sh, uint64_t gfn)
{
	for (struct sh_rnode *n = sh->rhash[sh_hash(gfn, sh->rhash_mask)]; n; n = n->next) {
		if ((n->gfn & ~RN_IDX) != gfn)
			continue;
		unsigned idx;
		struct sh_page *sp = node_page(n, &idx);
		if (sp->pt[idx] & VMEM_PTE_RW) {
			sp->pt[idx] &= ~VMEM_PTE_RW;
			sh->flush = true;
		}
	}
}

void vmi_shr_zap_gfn_leaves(vmem_shadow *sh, uint64_t gfn)
{
	struct sh_rnode *n = sh->rhash[sh_hash(gfn, sh->rhash_mask)];
	while (n) {
		struct sh_rnode *next = n->next; /* zapping a leaf unlinks only its own node */
		if ((n->gfn & ~RN_IDX) == gfn) {
			unsigned idx;
			struct sh_page *sp = node_page(n, &idx);
			vmi_shm_zap_entry(sh, sp, idx);
		}
		n = next;
	}
}
