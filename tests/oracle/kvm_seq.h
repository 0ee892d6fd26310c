/* kvm_seq.h: op sequences for the KVM shadow-MMU oracle: guest layout, ops, outcomes, generator, runners. */
#ifndef KVM_SEQ_H
#define KVM_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Harness region: guest-physical [0, KSQ_HARNESS_SIZE), identity-mapped
 * through PML4 slot 0 of every root (user-accessible, A/D preset), plus an
 * alias of the whole pool at linear KSQ_ALIAS_LA (supervisor, writable,
 * two 2 MiB pages with A/D preset) through which WRITE64 ops store into
 * the guest's page tables. Ops never write the harness. */
#define KSQ_HARNESS_SIZE 0x20000ull
#define KSQ_PDPT     0x2000ull
#define KSQ_PD       0x3000ull
#define KSQ_ALIAS_PD 0x4000ull
#define KSQ_PT       0x5000ull
#define KSQ_GDT      0x6000ull
#define KSQ_IDT      0x7000ull
#define KSQ_TSS      0x8000ull
#define KSQ_CODE     0x9000ull  /* two pages */
#define KSQ_KSTACK   0xf000ull  /* top of the CPL 0 stack (TSS.RSP0) */
#define KSQ_USTACK   0x11000ull /* top of the CPL 3 stack */
#define KSQ_OPS      0x11000ull /* KSQ_MAX_OPS ops of 32 bytes */
#define KSQ_RES      0x15000ull /* KSQ_MAX_OPS results of 64 bytes */
#define KSQ_MAX_OPS  512u
#define KSQ_PML4E    (KSQ_PDPT | 0x27ull) /* P|RW|US|A: PML4 slot 0 of every root */
#define KSQ_ALIAS_LA 0x40000000ull

/* The pool: one 2 MiB-aligned guest-physical region holding every guest
 * paging structure and every page the sequence's leaves map. */
#define KSQ_POOL_SIZE  0x400000ull
#define KSQ_POOL_PAGES (KSQ_POOL_SIZE / 4096)
#define KSQ_MAXPHYADDR 48

/* Op types (the guest's encoding). */
enum ksq_op_type {
	KSQ_END = 0,
	KSQ_WRITE64 = 1, /* a: linear address (alias), b: value */
	KSQ_MOV_CR3 = 2, /* a: CR3 */
	KSQ_INVLPG = 3,  /* a: linear address */
	KSQ_READ = 4,    /* CPL 0 accesses: a: linear address, b: value a write stores */
	KSQ_WRITE = 5,
	KSQ_FETCH = 6,
	KSQ_UREAD = 7,   /* the same at CPL 3 */
	KSQ_UWRITE = 8,
	KSQ_UFETCH = 9
};

/* Guest op and result layouts. */
typedef struct ksq_gop {
	uint32_t type, pad;
	uint64_t a, b, c;
} ksq_gop;
typedef struct ksq_gres {
	uint64_t status; /* 0 not run, 1 completed in line, 2 exception */
	uint64_t vector, ec, cr2, rip, rax, cs, pad;
} ksq_gres;

/* One op of a sequence, as generated. */
typedef struct ksq_op {
	uint8_t type;   /* enum ksq_op_type */
	uint64_t a, b;
	uint64_t gpa;   /* WRITE64: guest-physical address written */
} ksq_op;

/* An op's outcome, in the same terms on every side. */
enum ksq_kind { KSQ_OUT_NONE = 0, KSQ_OUT_OK = 1, KSQ_OUT_PF = 2, KSQ_OUT_EXC = 3, KSQ_OUT_ERR = 4 };
typedef struct ksq_out {
	uint8_t kind;    /* enum ksq_kind */
	uint8_t vector;  /* PF / EXC */
	uint32_t ec;     /* PF / EXC: error code */
	uint64_t cr2;    /* PF */
	uint64_t value;  /* OK read: the 8 bytes read */
	uint64_t gpa;    /* reference only, OK: where the access went (not compared) */
	uint8_t perms;   /* reference only, OK: VMEM_PERM_* of the translation; page size in size */
	uint64_t size;
	uint64_t path[4]; /* reference only: entries the walk read */
	unsigned npath;
	char note[96];   /* EXC / ERR: what happened */
} ksq_out;

#define KSQ_MAX_ROOTS 3
#define KSQ_MAX_TABLES 32
#define KSQ_MAX_TARGETS 24

typedef struct ksq_seq {
	uint64_t seed;
	uint64_t cr0, cr4, efer, cr3; /* registers at start (cr3: the first root) */
	uint64_t pool;                /* pool base (2 MiB aligned) */
	unsigned ntables, nroots, ntargets, nops;
	uint16_t table[KSQ_MAX_TABLES]; /* pool page indices of the designated tables */
	uint16_t root[KSQ_MAX_ROOTS];   /* pool page indices of the PML4s */
	uint64_t target[KSQ_MAX_TARGETS];
	ksq_op op[KSQ_MAX_OPS];
	unsigned char *init;          /* the pool's initial contents (KSQ_POOL_SIZE bytes) */
	unsigned char *harness;       /* the harness region's contents (KSQ_HARNESS_SIZE bytes) */
} ksq_seq;

/* Deterministic random numbers (splitmix64). */
uint64_t ksq_rand(uint64_t *s);

/* Generate a sequence of about nops ops from seed (buffers allocated; free
 * with ksq_seq_free). 0, or -1 if out of memory. nops 0: a smoke test. */
#define KSQ_GEN_NO_INVAL 1u /* break the discipline: no invalidation before using a
			     * rewritten translation (outcomes then depend on the TLB) */
int ksq_seq_gen(ksq_seq *q, uint64_t seed, unsigned nops, unsigned flags);
void ksq_seq_free(ksq_seq *q);
const char *ksq_op_name(unsigned type);
bool ksq_op_is_access(unsigned type);
/* The value a write access stores (every value starts with 0xF4, HLT, as
 * every data word does, so a fetch lands on a HLT; as an entry it is not
 * present). */
uint64_t ksq_marker(const ksq_seq *q, unsigned op);
/* Contents the pool starts with at gpa (8-aligned) outside the tables. */
uint64_t ksq_data_word(uint64_t gpa);

/* Fill buf (KSQ_HARNESS_SIZE bytes) with the harness: paging structures,
 * GDT, IDT, TSS and the interpreter's code. */
void ksq_harness_build(unsigned char *buf, uint64_t pool);

/* KVM side (kvm_seq_vm.c). */
bool ksq_kvm_usable(char *why, size_t n);
/* Run ops [first, first+n) of q in a fresh VM over pool memory `pool`
 * (KSQ_POOL_SIZE bytes, 4 KiB aligned, updated in place) and harness copy.
 * out[i] for each op. 0, or -1 with a reason (the VM could not run). */
int ksq_kvm_run(const ksq_seq *q, unsigned char *pool, unsigned first, unsigned n,
		ksq_out *out, char *why, size_t whyn);

/* libvmem sides. Each runs the whole sequence over `pool` (initialised
 * from q->init by the caller) and fills out[0..nops). */
int ksq_ref_run(const ksq_seq *q, unsigned char *pool, ksq_out *out, char *why, size_t n);

typedef struct ksq_shadow_opts {
	unsigned max_pages, max_roots;
	bool audit;   /* vmem_shadow_audit after every op */
} ksq_shadow_opts;
typedef struct ksq_shadow_stats {
	unsigned long faults, fixed, inject, emulate_pt, emulate_wp0, other, audits_failed;
	long first_audit_op;   /* -1: every audit passed */
	char audit_why[256];   /* the first audit failure */
} ksq_shadow_stats;
/* False if the library was built without the shadow engine. */
bool ksq_shadow_available(void);
int ksq_shadow_run(const ksq_seq *q, const ksq_shadow_opts *o, unsigned char *pool,
		   ksq_out *out, ksq_shadow_stats *st, char *why, size_t n);

#endif
