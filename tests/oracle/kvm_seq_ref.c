/* kvm_seq_ref.c: the plain reference for a sequence: vmem_walk over the guest's current memory at every op (no TLB). */
#include "kvm_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

static unsigned acc_flags(unsigned type)
{
	unsigned u = type >= KSQ_UREAD ? VMEM_ACC_USER : 0;
	unsigned t = type >= KSQ_UREAD ? type - (KSQ_UREAD - KSQ_READ) : type;
	return u | (t == KSQ_WRITE ? VMEM_ACC_WRITE : t == KSQ_FETCH ? VMEM_ACC_FETCH : 0);
}

int ksq_ref_run(const ksq_seq *q, unsigned char *pool, ksq_out *out, char *why, size_t n)
{
	int rc = -1;
	vmem_gmem *gm = NULL;
	vmem_mmu *mmu = NULL;
	unsigned char *h = aligned_alloc(4096, KSQ_HARNESS_SIZE);
	if (!h) {
		snprintf(why, n, "out of memory");
		return -1;
	}
	memcpy(h, q->harness, KSQ_HARNESS_SIZE);
	vmem_regs r;
	vmem_regs_init(&r);
	r.cr0 = q->cr0;
	r.cr3 = q->cr3;
	r.cr4 = q->cr4;
	r.efer = q->efer;
	r.maxphyaddr = KSQ_MAXPHYADDR;
	r.gbpages = false;
	vmem_err e = vmem_gmem_new(NULL, &gm);
	if (!e)
		e = vmem_gmem_add_ram(gm, 0, KSQ_HARNESS_SIZE, h, 0);
	if (!e)
		e = vmem_gmem_add_ram(gm, q->pool, KSQ_POOL_SIZE, pool, 0);
	if (!e)
		e = vmem_mmu_new(NULL, &r, &mmu);
	if (e) {
		snprintf(why, n, "setup: %s", vmem_strerror(e));
		goto out;
	}
	for (unsigned i = 0; i < q->nops; i++) {
		const ksq_op *op = &q->op[i];
		ksq_out *o = &out[i];
		memset(o, 0, sizeof(*o));
		o->kind = KSQ_OUT_OK;
		if (op->type == KSQ_MOV_CR3) {
			r.cr3 = op->a;
			if ((e = vmem_mmu_set_regs(mmu, &r)) != VMEM_OK) {
				o->kind = KSQ_OUT_ERR;
				snprintf(o->note, sizeof(o->note), "vmem_mmu_set_regs: %s", vmem_strerror(e));
			}
			continue;
		}
		if (op->type == KSQ_INVLPG)
			continue;
		unsigned acc = op->type == KSQ_WRITE64 ? VMEM_ACC_WRITE : acc_flags(op->type);
		vmem_walk_result w;
		vmem_walk_trace tr;
		e = vmem_walk_traced(mmu, gm, op->a, acc, 0, &w, &tr);
		for (unsigned k = 0; !e && k < tr.n && k < 4; k++)
			o->path[o->npath++] = tr.e[k].gpa;
		if (e) {
			o->kind = KSQ_OUT_ERR;
			snprintf(o->note, sizeof(o->note), "vmem_walk: %s", vmem_strerror(e));
			continue;
		}
		if (w.status == VMEM_WALK_PF) {
			o->kind = KSQ_OUT_PF;
			o->vector = 14;
			o->ec = w.error_code;
			o->cr2 = op->a;
			continue;
		}
		if (w.status != VMEM_WALK_OK) {
			o->kind = KSQ_OUT_EXC;
			o->vector = w.status == VMEM_WALK_GP ? 13 : 0;
			snprintf(o->note, sizeof(o->note), "walk status %u (gpa 0x%llx)", w.status,
				 (unsigned long long)w.gpa);
			continue;
		}
		o->gpa = w.gpa;
		o->perms = w.perms;
		o->size = w.page_size;
		if (acc & VMEM_ACC_WRITE)
			e = vmem_gmem_write64(gm, w.gpa, op->b);
		else
			e = vmem_gmem_read64(gm, w.gpa, &o->value);
		if (e) {
			o->kind = KSQ_OUT_ERR;
			snprintf(o->note, sizeof(o->note), "access at 0x%llx: %s",
				 (unsigned long long)w.gpa, vmem_strerror(e));
		} else if (acc & VMEM_ACC_FETCH) {
			if ((o->value & 0xff) != 0xf4) {
				o->kind = KSQ_OUT_ERR;
				snprintf(o->note, sizeof(o->note), "fetch lands on 0x%02x, not HLT",
					 (unsigned)(o->value & 0xff));
			}
			o->value = 0;
		}
		if (op->type == KSQ_WRITE64 && w.gpa != op->gpa) {
			o->kind = KSQ_OUT_ERR;
			snprintf(o->note, sizeof(o->note), "alias maps to 0x%llx", (unsigned long long)w.gpa);
		}
	}
	rc = 0;
out:
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	free(h);
	return rc;
}
