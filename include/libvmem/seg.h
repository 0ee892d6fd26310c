/* libvmem segmentation: descriptors, segment-register loads, and logical -> linear translation (SDM vol. 3A ch. 3, 5). */
#ifndef LIBVMEM_SEG_H
#define LIBVMEM_SEG_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/error.h>
#include <libvmem/walk.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Segment registers, numbered as the ModR/M sreg field numbers them. */
typedef enum vmem_sreg {
	VMEM_SREG_ES = 0,
	VMEM_SREG_CS = 1,
	VMEM_SREG_SS = 2,
	VMEM_SREG_DS = 3,
	VMEM_SREG_FS = 4,
	VMEM_SREG_GS = 5
} vmem_sreg;
#define VMEM_SREG_COUNT 6

/* The processor's operating mode, as segmentation sees it (SDM vol. 3A, 2.2). */
typedef enum vmem_seg_mode {
	VMEM_SEG_REAL = 0,   /* CR0.PE = 0 */
	VMEM_SEG_V86 = 1,    /* CR0.PE = 1, EFLAGS.VM = 1 */
	VMEM_SEG_PROT = 2,   /* legacy protected mode (16- or 32-bit code) */
	VMEM_SEG_COMPAT = 3, /* IA-32e mode, CS.L = 0 */
	VMEM_SEG_LONG = 4    /* IA-32e mode, CS.L = 1: 64-bit mode */
} vmem_seg_mode;

/* The 4-bit type field of a code or data descriptor (S = 1), SDM 3.4.5.1. */
#define VMEM_SEG_TYPE_A    0x1u /* accessed */
#define VMEM_SEG_TYPE_W    0x2u /* data: writable */
#define VMEM_SEG_TYPE_R    0x2u /* code: readable */
#define VMEM_SEG_TYPE_E    0x4u /* data: expand-down */
#define VMEM_SEG_TYPE_C    0x4u /* code: conforming */
#define VMEM_SEG_TYPE_CODE 0x8u /* code (else data) */

/* System descriptor types (S = 0) that libvmem names, SDM 3.5 Table 3-2. */
#define VMEM_SEG_SYS_LDT       0x2u
#define VMEM_SEG_SYS_TSS_AVAIL 0x9u /* 32-bit (or 64-bit) available TSS */
#define VMEM_SEG_SYS_TSS_BUSY  0xBu

/* A segment register's hidden part (its descriptor cache), decoded.
 * limit is the byte limit after granularity scaling: with g set, a raw
 * 20-bit limit L becomes (L << 12) | 0xFFF. base is 64 bits wide for FS/GS
 * in 64-bit mode (loaded through the MSRs) and for 16-byte system
 * descriptors; otherwise it is below 4 GiB. unusable marks a register loaded
 * with a null selector in protected mode (VMX's "unusable" bit): using it
 * for memory faults outside 64-bit mode. */
typedef struct vmem_seg_cache {
	uint64_t base;
	uint32_t limit;    /* scaled byte limit */
	uint16_t selector;
	uint8_t type;      /* 4 bits, VMEM_SEG_TYPE_* or VMEM_SEG_SYS_* */
	uint8_t dpl;       /* 0..3 */
	bool s;            /* 1: code or data; 0: system */
	bool p;            /* present */
	bool avl;
	bool l;            /* 64-bit code segment */
	bool db;           /* D (code), B (stack / expand-down data) */
	bool g;            /* limit in 4 KiB units */
	bool unusable;
} vmem_seg_cache;

/* Descriptor format. Decode an 8-byte code/data/system descriptor (the
 * 64-bit value read little-endian from the table) into *out; never fails
 * for any 64-bit value except with a NULL pointer (VMEM_E_INVAL). The
 * result has selector 0 and unusable = false. */
vmem_err vmem_seg_desc_decode(uint64_t desc, vmem_seg_cache *out);
/* Decode a 16-byte system descriptor of IA-32e mode (LDT or TSS; SDM 7.2.3,
 * Figure 7-4): desc[0] is the low 8 bytes, desc[1] supplies base[63:32].
 * VMEM_E_INVAL (and *out unchanged) if S = 1 (code and data descriptors are
 * 8 bytes) or if the type field of the upper half (bits 12:8 of its
 * second dword) is not 0. */
vmem_err vmem_seg_desc_decode16(const uint64_t desc[2], vmem_seg_cache *out);
/* Encode a cache back into an 8-byte descriptor. VMEM_E_INVAL (and *out
 * unchanged) if it has no exact encoding: base above 4 GiB, type > 15,
 * dpl > 3, g = 0 with limit > 0xFFFFF, or g = 1 with limit bits 11:0 not all
 * ones. selector and unusable are not part of a descriptor and are ignored. */
vmem_err vmem_seg_desc_encode(const vmem_seg_cache *c, uint64_t *out);
/* Encode a 16-byte system descriptor (any 64-bit base); VMEM_E_INVAL as for
 * vmem_seg_desc_encode, or if s is set. */
vmem_err vmem_seg_desc_encode16(const vmem_seg_cache *c, uint64_t out[2]);

/* VMX guest-segment access rights (SDM vol. 3C, 25.4.1, Table 25-2): type 3:0,
 * S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16. */
uint32_t vmem_seg_ar_get(const vmem_seg_cache *c);
/* Set the attribute fields of *c from access rights (base, limit, selector
 * untouched). VMEM_E_INVAL (nothing changed) if a reserved bit (11:8, 31:17)
 * is set. */
vmem_err vmem_seg_ar_set(vmem_seg_cache *c, uint32_t ar);

/* A register as RESET or a real-mode load leaves it (SDM 9.1.1 Table 9-1):
 * base = selector << 4, limit 0xFFFF, present read/write accessed data
 * (CS: execute/read accessed code), DPL 0, 16-bit. */
void vmem_seg_init_real(vmem_seg_cache *c, vmem_sreg sreg, uint16_t selector);

/* The state that segment-register loads and translation depend on. */
typedef struct vmem_seg_env {
	uint64_t gdt_base;  /* GDTR */
	uint64_t ldt_base;  /* LDTR's hidden base */
	uint32_t gdt_limit; /* GDTR.limit (16 bits in hardware) */
	uint32_t ldt_limit; /* LDTR's scaled limit */
	uint8_t mode;       /* vmem_seg_mode */
	uint8_t cpl;        /* 0..3; 0 in real mode, 3 in virtual-8086 mode */
	bool ldt_usable;    /* false: LDTR holds a null selector */
	bool la57;          /* CR4.LA57: 57-bit canonical addresses in 64-bit mode */
	bool ext;           /* set EXT (bit 0) in selector error codes: the load
			     * is part of delivering an external event */
} vmem_seg_env;

/* Exception vectors a segmentation check raises. */
#define VMEM_SEG_VEC_NP 11 /* #NP: segment not present */
#define VMEM_SEG_VEC_SS 12 /* #SS: stack-segment fault */
#define VMEM_SEG_VEC_GP 13 /* #GP: general protection */

typedef enum vmem_seg_status {
	VMEM_SEG_OK = 0,   /* done: linear (translate) or the new cache (load) */
	VMEM_SEG_FAULT = 1 /* the access or load raises vector(error_code) */
} vmem_seg_status;

/* The outcome of a load or a translation: faults are results, not errors. */
typedef struct vmem_seg_result {
	uint64_t linear;     /* OK: translate: the linear address of the first byte;
			      * locate: the descriptor's linear address */
	uint64_t desc;       /* OK: load: the descriptor with its accessed bit set;
			      * if it differs from the one given the processor
			      * writes it back to the table (SDM 3.4.5.1); 0 for
			      * a null selector, which names no descriptor: nothing
			      * is read or written */
	uint16_t error_code; /* FAULT: 0, or selector & 0xFFFC (| 1 with env->ext) */
	uint8_t status;      /* vmem_seg_status */
	uint8_t vector;      /* FAULT: VMEM_SEG_VEC_* */
} vmem_seg_result;

/* Where the descriptor for selector lives: its linear address in res->linear
 * (table base + index * 8), or #GP(selector) if TI = 1 with an unusable LDTR
 * or if its 8 bytes pass the table limit (SDM 3.5.1). A null selector
 * (index 0, TI 0) has no descriptor: #GP(0). Outside protected, compat and
 * 64-bit mode: VMEM_E_INVAL. */
vmem_err vmem_seg_locate(const vmem_seg_env *env, uint16_t selector, vmem_seg_result *res);

/* Load DS, ES, FS, GS or SS (MOV/POP/LDS..., SDM vol. 2 "MOV", 5.5-5.8).
 * desc is the 8-byte descriptor the selector names (read it at the address
 * vmem_seg_locate gives); it is ignored for a null selector, for a selector
 * beyond the table limit, and in real and virtual-8086 mode.
 *
 * Real mode: selector and base = selector << 4; limit and attributes stay
 * as they were (so *cache is read, as hardware keeps them).
 * Virtual-8086 mode: base = selector << 4, limit 0xFFFF, read/write data, DPL 3.
 * Protected, compat and 64-bit mode, in order:
 *  - null selector: DS/ES/FS/GS become unusable (base 0, limit 0); SS:
 *    #GP(0), except in 64-bit mode at CPL < 3 with RPL = CPL (SS unusable,
 *    DPL = CPL);
 *  - index beyond the GDT/LDT limit, or TI = 1 with no LDT: #GP(sel);
 *  - DS..: not data or readable code, or (data or non-conforming code) with
 *    DPL < max(CPL, RPL): #GP(sel); SS: not writable data, RPL != CPL or
 *    DPL != CPL: #GP(sel);
 *  - not present: #NP(sel) (SS: #SS(sel)).
 * On OK *cache is the new register (selector as given); on FAULT or error
 * *cache is unchanged. VMEM_E_INVAL for sreg CS (see vmem_seg_load_cs), a bad
 * sreg, or a bad env (mode out of range, cpl > 3, cpl != 0 in real mode,
 * cpl != 3 in virtual-8086 mode). */
vmem_err vmem_seg_load(const vmem_seg_env *env, vmem_sreg sreg, uint16_t selector,
		       uint64_t desc, vmem_seg_cache *cache, vmem_seg_result *res);

/* Load CS by a far JMP or far CALL straight to a code segment (not through a
 * gate or TSS), with the new instruction pointer ip (SDM vol. 2 "JMP",
 * "CALL"; vol. 3A 5.8.1). Real and virtual-8086 mode: base = selector << 4
 * (v86 also sets limit 0xFFFF), #GP(0) if ip passes the limit. Otherwise:
 *  - null selector: #GP(0); index beyond the table: #GP(sel);
 *  - not a code segment: #GP(sel), except for a descriptor the transfer
 *    would go through, which is not modelled: VMEM_E_UNSUPPORTED for a call
 *    gate, task gate or available TSS (IA-32e mode: a 64-bit call gate; its
 *    other system types, and an LDT, busy TSS or reserved type, are #GP(sel));
 *  - in IA-32e mode, L = 1 with D = 1: #GP(sel);
 *  - conforming: DPL > CPL -> #GP(sel); non-conforming: RPL > CPL or
 *    DPL != CPL -> #GP(sel);
 *  - not present: #NP(sel);
 *  - ip beyond the new limit (a 64-bit segment in IA-32e mode: ip not
 *    canonical): #GP(0).
 * On OK, *cs is loaded with RPL = CPL (the CPL does not change); the caller
 * switches env->mode between compat and 64-bit as the new L bit says. */
vmem_err vmem_seg_load_cs(const vmem_seg_env *env, uint16_t selector, uint64_t desc,
			  uint64_t ip, vmem_seg_cache *cs, vmem_seg_result *res);

/* Translate a logical address sreg:offset for an access of size bytes
 * (1..16) into a linear address (SDM 3.4, 5.3, 3.2.4). access is
 * VMEM_ACC_READ, VMEM_ACC_WRITE or VMEM_ACC_FETCH (from walk.h; other walk
 * flags are accepted and ignored). A fetch must name CS.
 *
 * Real and virtual-8086 mode: linear = (base + offset) mod 2^32; every byte
 * within the limit (expand-up) else #GP(0) (#SS(0) for SS). No type checks.
 * Protected and compat mode: unusable -> #GP(0); a write to a code segment or
 * to read-only data, or a read of execute-only code -> #GP(0) (a fetch has
 * no type check: CS was checked when loaded); every byte
 * within the limit: expand-up [0, limit], expand-down [limit + 1, 0xFFFF]
 * with B = 0 or [limit + 1, 0xFFFFFFFF] with B = 1, else #GP(0);
 * linear = (base + offset) mod 2^32. Every fault through SS is #SS(0).
 * With an effective limit of 0xFFFFFFFF, an access whose last byte passes
 * it may or may not fault on a processor (SDM 5.3: implementation-specific,
 * and Bochs wraps): libvmem always reports the fault.
 * 64-bit mode: no limit, type or null checks; the base is 0 for CS, DS, ES
 * and SS; linear = (base + offset) mod 2^64 and its first and last byte must
 * be canonical (48-bit, or 57-bit with env->la57) else #GP(0) (#SS(0) for SS).
 *
 * VMEM_E_INVAL for size 0 or > 16, offset >= 2^32 outside 64-bit mode,
 * WRITE with FETCH, FETCH through another register than CS, a bad sreg or a
 * bad env (as for vmem_seg_load). */
vmem_err vmem_seg_translate(const vmem_seg_env *env, const vmem_seg_cache *cache,
			    vmem_sreg sreg, uint64_t offset, unsigned size,
			    unsigned access, vmem_seg_result *res);

#ifdef __cplusplus
}
#endif
#endif
