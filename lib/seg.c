/* libvmem segmentation: descriptor codec, segment-register load checks, logical -> linear translation. */
#include <libvmem/seg.h>
#include "vmem_int.h"

/* ---- Type tables: bit t (t = type, +16 for system descriptors) set if the rule allows it. ---- */

#define SEG_IDX(s, type) ((unsigned)(type) + ((s) ? 0u : 16u))
/* MOV/POP DS..: data or readable code (SDM vol. 2 MOV). */
#define LOAD_DATA_OK   0xCCFFu
/* DS..: privilege checked for data and non-conforming code (SDM 5.6). */
#define LOAD_DATA_PRIV 0x0FFFu
/* SS: writable data only. */
#define LOAD_SS_OK     0x00CCu
/* CS: any code segment; the conforming ones. */
#define LOAD_CODE      0xFF00u
#define LOAD_CONFORM   0xF000u
/* Far JMP/CALL to a system descriptor: the ones a transfer goes through (not
 * modelled: VMEM_E_UNSUPPORTED); any other type is #GP(selector) (SDM vol. 2
 * JMP, CALL; Table 3-2). Protected mode: available 16/32-bit TSS, 16/32-bit
 * call gate, task gate; IA-32e mode: the 64-bit call gate only. */
#define FAR_SYS_PROT   0x1232u
#define FAR_SYS_IA32E  0x1000u
/* Use-time (SDM 5.5): readable (data, or code with R), writable (data with W), expand-down. */
#define USE_READ       0xCCFFu
#define USE_WRITE      0x00CCu
#define USE_EXPDOWN    0x00F0u

#define BIT(mask, idx) (((mask) >> (idx)) & 1u)

/* ---- Descriptor format (SDM 3.4.5, Figure 3-8). ---- */

#define D_LIMIT_LO  VMI_BITS(15, 0)
#define D_BASE_LO   VMI_BITS(39, 16)
#define D_TYPE_SH   40
#define D_S         (1ull << 44)
#define D_DPL_SH    45
#define D_P         (1ull << 47)
#define D_LIMIT_HI  VMI_BITS(51, 48)
#define D_AVL       (1ull << 52)
#define D_L         (1ull << 53)
#define D_DB        (1ull << 54)
#define D_G         (1ull << 55)
#define D_BASE_HI   VMI_BITS(63, 56)
#define D_ACCESSED  (1ull << D_TYPE_SH)
/* 16-byte system descriptor, upper half: base[63:32] in bits 31:0, type 0 in bits 44:40 (SDM 7.2.3). */
#define D16_UPPER_TYPE VMI_BITS(44, 40)

vmem_err vmem_seg_desc_decode(uint64_t d, vmem_seg_cache *out)
{
	if (!out)
		return VMEM_E_INVAL;
	uint32_t raw = (uint32_t)(d & D_LIMIT_LO) | (uint32_t)((d & D_LIMIT_HI) >> 32);
	vmem_seg_cache c;
	c.base = ((d & D_BASE_LO) >> 16) | ((d & D_BASE_HI) >> 32);
	c.selector = 0;
	c.type = (uint8_t)((d >> D_TYPE_SH) & 0xF);
	c.dpl = (uint8_t)((d >> D_DPL_SH) & 3);
	c.s = (d & D_S) != 0;
	c.p = (d & D_P) != 0;
	c.avl = (d & D_AVL) != 0;
	c.l = (d & D_L) != 0;
	c.db = (d & D_DB) != 0;
	c.g = (d & D_G) != 0;
	c.unusable = false;
	/* SDM 3.4.5: G = 1 scales the limit by 4 KiB, the low 12 bits all ones. */
	c.limit = c.g ? (raw << 12) | 0xFFFu : raw;
	*out = c;
	return VMEM_OK;
}

vmem_err vmem_seg_desc_decode16(const uint64_t desc[2], vmem_seg_cache *out)
{
	if (!desc || !out || (desc[0] & D_S) || (desc[1] & D16_UPPER_TYPE))
		return VMEM_E_INVAL;
	vmem_seg_cache c;
	vmem_seg_desc_decode(desc[0], &c);
	c.base |= (desc[1] & 0xFFFFFFFFull) << 32;
	*out = c;
	return VMEM_OK;
}

static bool seg_encodable(const vmem_seg_cache *c)
{
	if (c->type > 15 || c->dpl > 3)
		return false;
	return c->g ? (c->limit & 0xFFFu) == 0xFFFu : c->limit <= 0xFFFFFu;
}

/* The low 8 bytes with base[31:0]; the caller checks encodability. */
static uint64_t seg_encode_low(const vmem_seg_cache *c)
{
	uint64_t raw = c->g ? c->limit >> 12 : c->limit;
	uint64_t b = c->base & 0xFFFFFFFFull;
	return (raw & 0xFFFF) | ((raw >> 16) << 48) |
	       ((b & 0xFFFFFF) << 16) | ((b >> 24) << 56) |
	       ((uint64_t)c->type << D_TYPE_SH) | ((uint64_t)c->dpl << D_DPL_SH) |
	       (c->s ? D_S : 0) | (c->p ? D_P : 0) | (c->avl ? D_AVL : 0) |
	       (c->l ? D_L : 0) | (c->db ? D_DB : 0) | (c->g ? D_G : 0);
}

vmem_err vmem_seg_desc_encode(const vmem_seg_cache *c, uint64_t *out)
{
	if (!c || !out || !seg_encodable(c) || c->base > 0xFFFFFFFFull)
		return VMEM_E_INVAL;
	*out = seg_encode_low(c);
	return VMEM_OK;
}

vmem_err vmem_seg_desc_encode16(const vmem_seg_cache *c, uint64_t out[2])
{
	if (!c || !out || !seg_encodable(c) || c->s)
		return VMEM_E_INVAL;
	out[0] = seg_encode_low(c);
	out[1] = c->base >> 32;
	return VMEM_OK;
}

/* ---- VMX access rights (SDM vol. 3C, 25.4.1). ---- */

#define AR_S        (1u << 4)
#define AR_P        (1u << 7)
#define AR_AVL      (1u << 12)
#define AR_L        (1u << 13)
#define AR_DB       (1u << 14)
#define AR_G        (1u << 15)
#define AR_UNUSABLE (1u << 16)
#define AR_RSVD     0xFFFE0F00u

uint32_t vmem_seg_ar_get(const vmem_seg_cache *c)
{
	return (c->type & 0xFu) | ((c->dpl & 3u) << 5) | (c->s ? AR_S : 0) |
	       (c->p ? AR_P : 0) | (c->avl ? AR_AVL : 0) | (c->l ? AR_L : 0) |
	       (c->db ? AR_DB : 0) | (c->g ? AR_G : 0) | (c->unusable ? AR_UNUSABLE : 0);
}

vmem_err vmem_seg_ar_set(vmem_seg_cache *c, uint32_t ar)
{
	if (!c || (ar & AR_RSVD))
		return VMEM_E_INVAL;
	c->type = (uint8_t)(ar & 0xF);
	c->dpl = (uint8_t)((ar >> 5) & 3);
	c->s = (ar & AR_S) != 0;
	c->p = (ar & AR_P) != 0;
	c->avl = (ar & AR_AVL) != 0;
	c->l = (ar & AR_L) != 0;
	c->db = (ar & AR_DB) != 0;
	c->g = (ar & AR_G) != 0;
	c->unusable = (ar & AR_UNUSABLE) != 0;
	return VMEM_OK;
}

/* Set every field of *c; no aggregate initializers in this file, which clang
 * at -O0 turns into memset calls the freestanding core does not have. */
static void cache_set(vmem_seg_cache *c, uint64_t base, uint32_t limit, uint16_t sel,
		      unsigned type, unsigned dpl, bool s, bool p, bool unusable)
{
	c->base = base;
	c->limit = limit;
	c->selector = sel;
	c->type = (uint8_t)type;
	c->dpl = (uint8_t)dpl;
	c->s = s;
	c->p = p;
	c->avl = c->l = c->db = c->g = false;
	c->unusable = unusable;
}

void vmem_seg_init_real(vmem_seg_cache *c, vmem_sreg sreg, uint16_t selector)
{
	cache_set(c, (uint64_t)selector << 4, 0xFFFF, selector,
		  sreg == VMEM_SREG_CS ? 0xB : 0x3, 0, true, true, false);
}

/* ---- Shared helpers. ---- */

static bool env_ok(const vmem_seg_env *env)
{
	if (!env || env->mode > VMEM_SEG_LONG || env->cpl > 3)
		return false;
	if (env->mode == VMEM_SEG_REAL && env->cpl != 0)
		return false;
	if (env->mode == VMEM_SEG_V86 && env->cpl != 3)
		return false;
	return true;
}

static bool is_protected(const vmem_seg_env *env)
{
	return env->mode >= VMEM_SEG_PROT;
}

static bool is_ia32e(const vmem_seg_env *env)
{
	return env->mode >= VMEM_SEG_COMPAT;
}

static void set_ok(vmem_seg_result *res, uint64_t linear, uint64_t desc)
{
	res->linear = linear;
	res->desc = desc;
	res->error_code = 0;
	res->status = VMEM_SEG_OK;
	res->vector = 0;
}

static void set_fault(vmem_seg_result *res, unsigned vector, uint16_t code)
{
	res->linear = 0;
	res->desc = 0;
	res->error_code = code;
	res->status = VMEM_SEG_FAULT;
	res->vector = (uint8_t)vector;
}

/* Selector error code: index and TI kept, RPL replaced by EXT (SDM 6.13). */
static uint16_t sel_code(const vmem_seg_env *env, uint16_t sel)
{
	return (uint16_t)((sel & 0xFFFCu) | (env->ext ? 1u : 0u));
}

static bool sel_null(uint16_t sel)
{
	return (sel & 0xFFFCu) == 0; /* index 0 in the GDT, any RPL (SDM 3.4.2) */
}

/* SDM 3.5.1: all 8 bytes of the descriptor inside the table limit; TI = 1 needs an LDT. */
static bool sel_in_table(const vmem_seg_env *env, uint16_t sel, uint64_t *la)
{
	uint64_t off = sel & 0xFFF8u;
	bool ldt = (sel & 4u) != 0;
	if (ldt && !env->ldt_usable)
		return false;
	if (off + 7 > (ldt ? env->ldt_limit : env->gdt_limit))
		return false;
	*la = (ldt ? env->ldt_base : env->gdt_base) + off;
	return true;
}

/* A segment-register load's descriptor: #GP(selector) when the selector is
 * outside its table (SDM 3.5.1), else desc decoded into *c. */
static bool sel_decode(const vmem_seg_env *env, uint16_t sel, uint64_t desc, uint16_t code,
		       vmem_seg_cache *c, vmem_seg_result *res)
{
	uint64_t la;
	if (!sel_in_table(env, sel, &la)) {
		set_fault(res, VMEM_SEG_VEC_GP, code);
		return false;
	}
	vmem_seg_desc_decode(desc, c);
	return true;
}

vmem_err vmem_seg_locate(const vmem_seg_env *env, uint16_t selector, vmem_seg_result *res)
{
	if (!env_ok(env) || !res || !is_protected(env))
		return VMEM_E_INVAL;
	uint64_t la = 0;
	if ((selector & 0xFFFCu) == 0)
		set_fault(res, VMEM_SEG_VEC_GP, 0);
	else if (!sel_in_table(env, selector, &la))
		set_fault(res, VMEM_SEG_VEC_GP, sel_code(env, selector));
	else /* GDTR/LDTR bases are 64 bits in all of IA-32e mode, compat included (SDM 2.4.1, 3.5.2) */
		set_ok(res, is_ia32e(env) ? la : la & 0xFFFFFFFFull, 0);
	return VMEM_OK;
}

/* Real mode keeps limit and attributes; virtual-8086 mode sets them (SDM 20.2.1, 9.9.2). */
static void load_real_v86(const vmem_seg_env *env, uint16_t sel, vmem_seg_cache *c)
{
	if (env->mode == VMEM_SEG_V86) {
		vmem_seg_init_real(c, VMEM_SREG_DS, sel);
		c->dpl = 3;
		return;
	}
	c->selector = sel;
	c->base = (uint64_t)sel << 4;
	c->unusable = false;
}

/* ---- MOV/POP to DS, ES, FS, GS, SS. ---- */

vmem_err vmem_seg_load(const vmem_seg_env *env, vmem_sreg sreg, uint16_t sel,
		       uint64_t desc, vmem_seg_cache *cache, vmem_seg_result *res)
{
	if (!env_ok(env) || !cache || !res || (unsigned)sreg >= VMEM_SREG_COUNT ||
	    sreg == VMEM_SREG_CS)
		return VMEM_E_INVAL;
	bool ss = sreg == VMEM_SREG_SS;
	unsigned rpl = sel & 3u, cpl = env->cpl;

	if (!is_protected(env)) {
		load_real_v86(env, sel, cache);
		set_ok(res, 0, 0);
		return VMEM_OK;
	}
	if (sel_null(sel)) {
		/* SS: #GP(0), but 64-bit mode takes a null SS at CPL < 3 with RPL = CPL (vol. 2 MOV, 64-bit mode exceptions). */
		if (ss && !(env->mode == VMEM_SEG_LONG && cpl < 3 && rpl == cpl)) {
			set_fault(res, VMEM_SEG_VEC_GP, 0);
			return VMEM_OK;
		}
		cache_set(cache, 0, 0, sel, 0, ss ? cpl : 0, false, false, true);
		set_ok(res, 0, 0);
		return VMEM_OK;
	}
	uint16_t code = sel_code(env, sel);
	vmem_seg_cache c;
	if (!sel_decode(env, sel, desc, code, &c, res))
		return VMEM_OK;
	unsigned idx = SEG_IDX(c.s, c.type);
	bool bad;
	if (ss)
		bad = !BIT(LOAD_SS_OK, idx) || rpl != cpl || c.dpl != cpl;
	else /* SDM 5.6: DPL >= max(CPL, RPL) unless conforming code. */
		bad = !BIT(LOAD_DATA_OK, idx) ||
		      (BIT(LOAD_DATA_PRIV, idx) && (rpl > c.dpl || cpl > c.dpl));
	if (bad) {
		set_fault(res, VMEM_SEG_VEC_GP, code);
		return VMEM_OK;
	}
	if (!c.p) {
		set_fault(res, ss ? VMEM_SEG_VEC_SS : VMEM_SEG_VEC_NP, code);
		return VMEM_OK;
	}
	c.selector = sel;
	c.type |= VMEM_SEG_TYPE_A;
	*cache = c;
	set_ok(res, 0, desc | D_ACCESSED);
	return VMEM_OK;
}

/* ---- Far JMP / CALL to a code segment. ---- */

static bool canonical(uint64_t la, bool la57)
{
	unsigned sh = la57 ? 56 : 47;
	uint64_t top = la >> sh;
	return top == 0 || top == (~0ull >> sh);
}

vmem_err vmem_seg_load_cs(const vmem_seg_env *env, uint16_t sel, uint64_t desc,
			  uint64_t ip, vmem_seg_cache *cs, vmem_seg_result *res)
{
	if (!env_ok(env) || !cs || !res)
		return VMEM_E_INVAL;
	unsigned rpl = sel & 3u, cpl = env->cpl;

	if (!is_protected(env)) {
		vmem_seg_cache c = *cs;
		if (env->mode == VMEM_SEG_V86) {
			vmem_seg_init_real(&c, VMEM_SREG_DS, sel);
			c.dpl = 3;
		} else {
			c.selector = sel;
			c.base = (uint64_t)sel << 4;
		}
		if (ip > c.limit) {
			set_fault(res, VMEM_SEG_VEC_GP, 0);
			return VMEM_OK;
		}
		*cs = c;
		set_ok(res, 0, 0);
		return VMEM_OK;
	}
	if (sel_null(sel)) {
		set_fault(res, VMEM_SEG_VEC_GP, 0);
		return VMEM_OK;
	}
	uint16_t code = sel_code(env, sel);
	vmem_seg_cache c;
	if (!sel_decode(env, sel, desc, code, &c, res))
		return VMEM_OK;
	unsigned idx = SEG_IDX(c.s, c.type);
	if (!BIT(LOAD_CODE, idx)) {
		if (c.s || !BIT(is_ia32e(env) ? FAR_SYS_IA32E : FAR_SYS_PROT, c.type)) {
			set_fault(res, VMEM_SEG_VEC_GP, code);
			return VMEM_OK;
		}
		return VMEM_E_UNSUPPORTED; /* call gate, task gate, available TSS: not modelled */
	}
	bool bad = is_ia32e(env) && c.l && c.db; /* SDM vol. 2 JMP: L = D = 1 is reserved in IA-32e mode */
	if (BIT(LOAD_CONFORM, idx))
		bad = bad || c.dpl > cpl;
	else
		bad = bad || rpl > cpl || c.dpl != cpl;
	if (bad) {
		set_fault(res, VMEM_SEG_VEC_GP, code);
		return VMEM_OK;
	}
	if (!c.p) {
		set_fault(res, VMEM_SEG_VEC_NP, code);
		return VMEM_OK;
	}
	bool ip_ok = is_ia32e(env) && c.l ? canonical(ip, env->la57) : ip <= c.limit;
	if (!ip_ok) {
		set_fault(res, VMEM_SEG_VEC_GP, 0);
		return VMEM_OK;
	}
	c.selector = (uint16_t)((sel & 0xFFFCu) | cpl);
	c.type |= VMEM_SEG_TYPE_A;
	*cs = c;
	set_ok(res, 0, desc | D_ACCESSED);
	return VMEM_OK;
}

/* ---- Use-time checks and translation. ---- */

vmem_err vmem_seg_translate(const vmem_seg_env *env, const vmem_seg_cache *c,
			    vmem_sreg sreg, uint64_t offset, unsigned size,
			    unsigned access, vmem_seg_result *res)
{
	bool write = (access & VMEM_ACC_WRITE) != 0, fetch = (access & VMEM_ACC_FETCH) != 0;
	if (!env_ok(env) || !c || !res || (unsigned)sreg >= VMEM_SREG_COUNT ||
	    size == 0 || size > 16 || (write && fetch) ||
	    (fetch && sreg != VMEM_SREG_CS) ||
	    (env->mode != VMEM_SEG_LONG && offset > 0xFFFFFFFFull))
		return VMEM_E_INVAL;
	/* SDM 5.3, 6.15: faults through SS are #SS(0), the rest #GP(0). */
	unsigned vec = sreg == VMEM_SREG_SS ? VMEM_SEG_VEC_SS : VMEM_SEG_VEC_GP;
	uint64_t last = offset + size - 1;

	if (env->mode == VMEM_SEG_LONG) {
		/* SDM 3.2.4: bases of CS/DS/ES/SS are 0; FS/GS keep theirs; no limit checks. */
		uint64_t base = (sreg == VMEM_SREG_FS || sreg == VMEM_SREG_GS) ? c->base : 0;
		uint64_t la = base + offset;
		if (!canonical(la, env->la57) || !canonical(la + size - 1, env->la57))
			set_fault(res, vec, 0);
		else
			set_ok(res, la, 0);
		return VMEM_OK;
	}
	bool ok;
	if (!is_protected(env)) {
		ok = last <= c->limit;
	} else {
		unsigned idx = SEG_IDX(c->s, c->type);
		uint64_t upper = c->db ? 0xFFFFFFFFull : 0xFFFFull;
		if (c->unusable)
			ok = false;
		else if (write ? !BIT(USE_WRITE, idx) : (!fetch && !BIT(USE_READ, idx)))
			ok = false;
		else if (BIT(USE_EXPDOWN, idx)) /* SDM 5.3: expand-down: limit+1 .. 0xFFFF or 0xFFFFFFFF */
			ok = offset > c->limit && last <= upper;
		else
			ok = last <= c->limit;
	}
	if (!ok)
		set_fault(res, vec, 0);
	else
		set_ok(res, (c->base + offset) & 0xFFFFFFFFull, 0);
	return VMEM_OK;
}
