/* kvm_seq_vm.c: runs a sequence of paging ops in a raw KVM guest (one vCPU in long mode, one VM per run). */
#define _GNU_SOURCE
#include "kvm_common.h"
#include "kvm_seq.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

extern const unsigned char ksq_guest_start[], ksq_guest_end[], ksq_guest_entry[];
extern const unsigned char ksq_guest_uread_done[], ksq_guest_uwrite_done[];
extern const unsigned char ksq_guest_fetch_done[], ksq_guest_end_hlt[];

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS   0x28

static uint64_t code_addr(const unsigned char *sym)
{
	return KSQ_CODE + (uint64_t)(sym - ksq_guest_start);
}

void ksq_harness_build(unsigned char *h, uint64_t pool)
{
	memset(h, 0, KSQ_HARNESS_SIZE);
	kvm_common_put64(h, KSQ_PDPT, KSQ_PD | 0x27);
	kvm_common_put64(h, KSQ_PDPT + 8 * (KSQ_ALIAS_LA >> 30), KSQ_ALIAS_PD | 0x27);
	for (uint64_t i = 0; i < KSQ_POOL_SIZE >> 21; i++) /* P|RW|A|D|PS, supervisor */
		kvm_common_put64(h, KSQ_ALIAS_PD + 8 * i, (pool + (i << 21)) | 0xe3);
	kvm_common_put64(h, KSQ_PD, KSQ_PT | 0x27);
	for (uint64_t pa = 0x1000; pa < KSQ_HARNESS_SIZE; pa += 0x1000)
		kvm_common_put64(h, KSQ_PT + (pa >> 12) * 8, pa | 0x67); /* P|RW|US|A|D */

	/* #BP's gate has DPL 3 so INT3 works at CPL 3. */
	kvm_common_tables(h, KSQ_GDT, KSQ_IDT, KSQ_TSS, KSQ_CODE, KSQ_KSTACK, 1);
	memcpy(h + KSQ_CODE, ksq_guest_start, (size_t)(ksq_guest_end - ksq_guest_start));
}

typedef struct vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	size_t run_size;
	unsigned char *harness;
	unsigned nslots;
} vm;

static void vm_close(vm *v)
{
	kvm_common_close(v->kvm, v->vm, v->vcpu, v->run, v->run_size);
	if (v->harness)
		munmap(v->harness, KSQ_HARNESS_SIZE);
}

static int add_slot(vm *v, uint64_t gpa, uint64_t size, void *host)
{
	if (kvm_common_add_slot(v->vm, v->nslots, gpa, size, host) < 0)
		return -1;
	v->nslots++;
	return 0;
}


static int vm_open(vm *v, const ksq_seq *q, unsigned char *pool, char *why, size_t n)
{
	memset(v, 0, sizeof(*v));
	v->kvm = v->vm = v->vcpu = -1;
	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0) {
		kvm_common_say(why, n, "open /dev/kvm: %s", strerror(errno));
		return -1;
	}
	if (ioctl(v->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		kvm_common_say(why, n, "unexpected KVM API version");
		return -1;
	}
	v->vm = ioctl(v->kvm, KVM_CREATE_VM, 0);
	if (v->vm < 0) {
		kvm_common_say(why, n, "KVM_CREATE_VM: %s", strerror(errno));
		return -1;
	}
	v->harness = mmap(NULL, KSQ_HARNESS_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->harness == MAP_FAILED) {
		v->harness = NULL;
		kvm_common_say(why, n, "mmap: %s", strerror(errno));
		return -1;
	}
	memcpy(v->harness, q->harness, KSQ_HARNESS_SIZE);
	if (add_slot(v, 0, KSQ_HARNESS_SIZE, v->harness) < 0 ||
	    add_slot(v, q->pool, KSQ_POOL_SIZE, pool) < 0) {
		kvm_common_say(why, n, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
		return -1;
	}
	v->vcpu = ioctl(v->vm, KVM_CREATE_VCPU, 0);
	if (v->vcpu < 0) {
		kvm_common_say(why, n, "KVM_CREATE_VCPU: %s", strerror(errno));
		return -1;
	}
	int sz = ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0) {
		kvm_common_say(why, n, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -1;
	}
	v->run_size = (size_t)sz;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		kvm_common_say(why, n, "mmap kvm_run: %s", strerror(errno));
		return -1;
	}
	if (kvm_common_set_cpuid(v->kvm, v->vcpu) < 0) {
		kvm_common_say(why, n, "KVM_SET_CPUID2: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int set_state(vm *v, uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer,
		     char *why, size_t n)
{
	struct kvm_sregs sr;
	if (ioctl(v->vcpu, KVM_GET_SREGS, &sr) < 0) {
		kvm_common_say(why, n, "KVM_GET_SREGS: %s", strerror(errno));
		return -1;
	}
	sr.cs = kvm_common_seg(SEL_KCODE, 11, true);
	sr.ds = sr.es = sr.fs = sr.gs = sr.ss = kvm_common_seg(SEL_KDATA, 3, false);
	sr.tr = (struct kvm_segment){ .base = KSQ_TSS, .limit = 0x67, .selector = SEL_TSS,
				      .type = 11, .present = 1 };
	sr.ldt = (struct kvm_segment){ .unusable = 1 };
	sr.gdt.base = KSQ_GDT;
	sr.gdt.limit = 0x37;
	sr.idt.base = KSQ_IDT;
	sr.idt.limit = 32 * 16 - 1;
	sr.cr0 = cr0;
	sr.cr3 = cr3;
	sr.cr4 = cr4;
	sr.efer = efer;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sr) < 0) {
		kvm_common_say(why, n, "KVM_SET_SREGS: %s", strerror(errno));
		return -1;
	}
	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rsp = KSQ_KSTACK;
	r.r12 = KSQ_OPS;
	r.r13 = KSQ_RES;
	r.rip = code_addr(ksq_guest_entry);
	if (ioctl(v->vcpu, KVM_SET_REGS, &r) < 0) {
		kvm_common_say(why, n, "KVM_SET_REGS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* What the guest's result record says, in common terms. */
static void decode(const ksq_op *op, const ksq_gres *g, ksq_out *o)
{
	memset(o, 0, sizeof(*o));
	bool user = op->type >= KSQ_UREAD;
	bool fetch = op->type == KSQ_FETCH || op->type == KSQ_UFETCH;
	if (g->status == 0) {
		o->kind = KSQ_OUT_ERR;
		snprintf(o->note, sizeof(o->note), "op never ran");
		return;
	}
	if (g->status == 1 && !user && !fetch) {
		o->kind = KSQ_OUT_OK;
		if (op->type == KSQ_READ)
			o->value = g->rax;
		return;
	}
	if (g->status == 1 && op->type == KSQ_FETCH) {
		o->kind = KSQ_OUT_OK; /* the host saw the HLT at the target */
		return;
	}
	if (g->status != 2) {
		o->kind = KSQ_OUT_ERR;
		snprintf(o->note, sizeof(o->note), "bad status %llu", (unsigned long long)g->status);
		return;
	}
	if (g->vector == 14 && ksq_op_is_access(op->type)) {
		o->kind = KSQ_OUT_PF;
		o->vector = 14;
		o->ec = (uint32_t)g->ec;
		o->cr2 = g->cr2;
		return;
	}
	if ((g->vector == 3 && !fetch) || (g->vector == 13 && g->ec == 0 && op->type == KSQ_UFETCH)) {
		uint64_t want = op->type == KSQ_UFETCH ? op->a :
				op->type == KSQ_UREAD ? code_addr(ksq_guest_uread_done) + 1 :
				op->type == KSQ_UWRITE ? code_addr(ksq_guest_uwrite_done) + 1 : ~0ull;
		if (g->rip == want) {
			o->kind = KSQ_OUT_OK;
			if (op->type == KSQ_UREAD)
				o->value = g->rax;
			return;
		}
	}
	o->kind = KSQ_OUT_EXC;
	o->vector = (uint8_t)g->vector;
	o->ec = (uint32_t)g->ec;
	o->cr2 = g->cr2;
	snprintf(o->note, sizeof(o->note), "vector %llu ec 0x%llx at rip 0x%llx cs 0x%llx",
		 (unsigned long long)g->vector, (unsigned long long)g->ec,
		 (unsigned long long)g->rip, (unsigned long long)g->cs);
}

int ksq_kvm_run(const ksq_seq *q, unsigned char *pool, unsigned first, unsigned n,
		ksq_out *out, char *why, size_t whyn)
{
	vm v;
	int rc = -1;
	if (n > KSQ_MAX_OPS - 1) {
		kvm_common_say(why, whyn, "too many ops in one run");
		return -1;
	}
	if (vm_open(&v, q, pool, why, whyn) < 0)
		goto out;
	/* Registers in force at op `first`: the last MOV to CR3 before it. */
	uint64_t cr3 = q->cr3;
	for (unsigned i = 0; i < first; i++)
		if (q->op[i].type == KSQ_MOV_CR3)
			cr3 = q->op[i].a;
	ksq_gop *g = (ksq_gop *)(v.harness + KSQ_OPS);
	for (unsigned i = 0; i < n; i++) {
		const ksq_op *op = &q->op[first + i];
		g[i] = (ksq_gop){ .type = op->type, .a = op->a, .b = op->b };
	}
	g[n] = (ksq_gop){ .type = KSQ_END };
	memset(v.harness + KSQ_RES, 0, (size_t)KSQ_MAX_OPS * sizeof(ksq_gres));
	if (set_state(&v, q->cr0, cr3, q->cr4, q->efer, why, whyn) < 0)
		goto out;

	kvm_common_install_alarm();
	struct kvm_regs regs;
	for (;;) {
		kvm_common_arm_timer(10);
		int r = ioctl(v.vcpu, KVM_RUN, 0);
		int err = errno;
		kvm_common_arm_timer(0);
		if (r < 0) {
			kvm_common_say(why, whyn, "KVM_RUN: %s%s", strerror(err),
			    err == EINTR ? " (guest timed out)" : "");
			goto out;
		}
		ioctl(v.vcpu, KVM_GET_REGS, &regs);
		uint64_t cur = (regs.r12 - KSQ_OPS) / 32;
		if (v.run->exit_reason == KVM_EXIT_HLT && regs.rip == code_addr(ksq_guest_end_hlt))
			break;
		if (v.run->exit_reason == KVM_EXIT_HLT && cur < n && g[cur].type == KSQ_FETCH &&
		    regs.rip == g[cur].a + 1) {
			/* A CPL 0 fetch landed on its HLT: resume the interpreter. */
			regs.rip = code_addr(ksq_guest_fetch_done);
			if (ioctl(v.vcpu, KVM_SET_REGS, &regs) < 0) {
				kvm_common_say(why, whyn, "KVM_SET_REGS: %s", strerror(errno));
				goto out;
			}
			continue;
		}
		kvm_common_say(why, whyn, "unexpected exit reason %u at rip 0x%llx, op %llu%s", v.run->exit_reason,
		    (unsigned long long)regs.rip, (unsigned long long)(cur + first),
		    v.run->exit_reason == KVM_EXIT_MMIO ? " (MMIO)" :
		    v.run->exit_reason == KVM_EXIT_HLT ? " (HLT)" :
		    v.run->exit_reason == KVM_EXIT_SHUTDOWN ? " (triple fault)" :
		    v.run->exit_reason == KVM_EXIT_INTERNAL_ERROR ? " (internal error" : "");
		if (v.run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
			size_t l = strlen(why);
			snprintf(why + l, whyn - l, " suberror %u, data", v.run->internal.suberror);
			for (unsigned i = 0; i < v.run->internal.ndata && i < 6; i++) {
				l = strlen(why);
				snprintf(why + l, whyn - l, " 0x%llx", (unsigned long long)v.run->internal.data[i]);
			}
			l = strlen(why);
			snprintf(why + l, whyn - l, ")");
		}
		goto out;
	}
	if (regs.r12 != KSQ_OPS + 32ull * n) {
		kvm_common_say(why, whyn, "guest stopped at op %llu of %u (rip 0x%llx)",
		    (unsigned long long)((regs.r12 - KSQ_OPS) / 32), n, (unsigned long long)regs.rip);
		goto out;
	}
	const ksq_gres *res = (const ksq_gres *)(v.harness + KSQ_RES);
	for (unsigned i = 0; i < n; i++)
		decode(&q->op[first + i], &res[i], &out[i]);
	rc = 0;
out:
	vm_close(&v);
	return rc;
}

bool ksq_kvm_usable(char *why, size_t n)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		kvm_common_say(why, n, "open /dev/kvm: %s", strerror(errno));
		return false;
	}
	close(fd);
	/* A smoke sequence: one CPL 0 read of a data word through 4K pages. */
	ksq_seq q;
	if (ksq_seq_gen(&q, 0x736d6f6b65ull, 0, 0) < 0) {
		kvm_common_say(why, n, "out of memory");
		return false;
	}
	bool ok = false;
	unsigned char *pool = aligned_alloc(4096, KSQ_POOL_SIZE);
	if (pool) {
		memcpy(pool, q.init, KSQ_POOL_SIZE);
		ksq_out o[2];
		if (ksq_kvm_run(&q, pool, 0, q.nops, o, why, n) == 0) {
			ok = true;
			for (unsigned i = 0; i < q.nops; i++)
				if (o[i].kind != KSQ_OUT_OK) {
					ok = false;
					kvm_common_say(why, n, "smoke op %u (%s) did not complete: kind %u vector %u %s", i,
					    ksq_op_name(q.op[i].type), o[i].kind, o[i].vector, o[i].note);
				}
			if (ok && o[q.nops - 1].value != ksq_data_word(q.op[q.nops - 1].gpa)) {
				ok = false;
				kvm_common_say(why, n, "smoke read saw 0x%llx", (unsigned long long)o[q.nops - 1].value);
			}
		}
		free(pool);
	}
	ksq_seq_free(&q);
	return ok;
}
