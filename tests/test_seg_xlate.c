/* Tests for use-time segment checks and logical -> linear translation (hand-worked from SDM vol. 3A 3.2.4, 3.4, 5.3, 5.5, 20.1). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libvmem/seg.h>

enum { OK = 0, GP = VMEM_SEG_VEC_GP, SS = VMEM_SEG_VEC_SS };
enum { RD = VMEM_ACC_READ, WR = VMEM_ACC_WRITE, FX = VMEM_ACC_FETCH };

/* Caches written out field by field (not decoded), so that these tests do not lean on the decoder. */
/* Byte-granular read/write data, base 0x10000, limit 0xFFF. */
static const vmem_seg_cache small_rw = { .base = 0x10000, .limit = 0xFFF, .type = 3, .s = true, .p = true };
/* Read-only data, same extent. */
static const vmem_seg_cache small_ro = { .base = 0x10000, .limit = 0xFFF, .type = 1, .s = true, .p = true };
/* Expand-down read/write, limit 0xFFF: B = 0 -> valid 0x1000..0xFFFF; B = 1 -> 0x1000..0xFFFFFFFF. */
static const vmem_seg_cache ed_b0 = { .base = 0x100000, .limit = 0xFFF, .type = 7, .s = true, .p = true };
static const vmem_seg_cache ed_b1 = { .base = 0x100000, .limit = 0xFFF, .type = 7, .s = true, .p = true, .db = true };
/* Expand-down read-only, B = 1. */
static const vmem_seg_cache ed_ro = { .base = 0, .limit = 0xFFF, .type = 5, .s = true, .p = true, .db = true };
/* Flat 4 GiB read/write data (G = 1, raw 0xFFFFF), and one based at 0xFFFFF000 to wrap. */
static const vmem_seg_cache flat = { .base = 0, .limit = 0xFFFFFFFF, .type = 3, .s = true, .p = true, .db = true, .g = true };
static const vmem_seg_cache flat_hi = { .base = 0xFFFFF000, .limit = 0xFFFFFFFF, .type = 3, .s = true, .p = true, .db = true, .g = true };
/* Code: execute-only, execute/read, conforming execute/read; flat. */
static const vmem_seg_cache code_xo = { .limit = 0xFFFFFFFF, .type = 9, .s = true, .p = true, .db = true, .g = true };
static const vmem_seg_cache code_xr = { .limit = 0xFFFFFFFF, .type = 0xB, .s = true, .p = true, .db = true, .g = true };
static const vmem_seg_cache code_cxr = { .limit = 0xFFFFFFFF, .type = 0xF, .s = true, .p = true, .db = true, .g = true };
/* A code segment with a small limit, for fetches. */
static const vmem_seg_cache code_small = { .base = 0x20000, .limit = 0x7FF, .type = 0xB, .s = true, .p = true };
/* A register loaded with a null selector; its other fields are stale (VMX leaves them undefined). */
static const vmem_seg_cache null_seg = { .limit = 0xFFFF, .type = 3, .s = true, .p = true, .unusable = true };
/* A system segment in a data register (only VMX state could put one there). */
static const vmem_seg_cache sys_seg = { .limit = 0xFFFF, .type = 2, .p = true };
/* Real-mode 0x1234 and 0xFFFF; 64-bit FS/GS bases. */
static const vmem_seg_cache real_1234 = { .base = 0x12340, .limit = 0xFFFF, .selector = 0x1234, .type = 3, .s = true, .p = true };
static const vmem_seg_cache real_ffff = { .base = 0xFFFF0, .limit = 0xFFFF, .selector = 0xFFFF, .type = 3, .s = true, .p = true };
static const vmem_seg_cache real_ro_cs = { .base = 0x10, .limit = 0xFFFF, .selector = 1, .type = 0xB, .s = true, .p = true };
static const vmem_seg_cache fs64 = { .base = 0xFFFF800000000000ull, .limit = 0, .type = 1, .s = true, .p = true };
static const vmem_seg_cache fs64_edge = { .base = 0x00007FFFFFFFF000ull, .type = 3, .s = true, .p = true };
static const vmem_seg_cache fs64_wrap = { .base = 0xFFFFFFFFFFFFFFF0ull, .type = 3, .s = true, .p = true };
static const vmem_seg_cache ds64 = { .base = 0x12345678, .limit = 0xFFF, .type = 1, .s = true, .p = true };

#define P VMEM_SEG_PROT
#define C VMEM_SEG_COMPAT
#define L VMEM_SEG_LONG
#define R VMEM_SEG_REAL
#define V VMEM_SEG_V86

struct row {
	const char *rule;
	uint8_t mode;
	bool la57;
	const vmem_seg_cache *c;
	uint8_t sreg;
	uint64_t off;
	uint8_t size, acc;
	uint8_t vec;     /* OK, GP or SS; error code is always 0 */
	uint64_t linear; /* OK */
};

#define DS VMEM_SREG_DS
#define CS VMEM_SREG_CS
#define SSR VMEM_SREG_SS
#define ES VMEM_SREG_ES
#define FS VMEM_SREG_FS
#define GS VMEM_SREG_GS

static const struct row rows[] = {
	/* Expand-up limit (SDM 5.3): every byte in [0, limit]. */
	{ "first byte", P, 0, &small_rw, DS, 0x0, 1, RD, OK, 0x10000 },
	{ "last byte in", P, 0, &small_rw, DS, 0xFFF, 1, RD, OK, 0x10FFF },
	{ "one byte past", P, 0, &small_rw, DS, 0x1000, 1, RD, GP, 0 },
	{ "2 bytes ending at the limit", P, 0, &small_rw, DS, 0xFFE, 2, WR, OK, 0x10FFE },
	{ "2 bytes straddling the limit", P, 0, &small_rw, DS, 0xFFF, 2, WR, GP, 0 },
	{ "16 bytes ending at the limit", P, 0, &small_rw, ES, 0xFF0, 16, RD, OK, 0x10FF0 },
	{ "16 bytes, last one past", P, 0, &small_rw, ES, 0xFF1, 16, RD, GP, 0 },
	{ "SS past the limit: #SS(0)", P, 0, &small_rw, SSR, 0x1000, 1, RD, SS, 0 },
	{ "SS straddling write: #SS(0)", P, 0, &small_rw, SSR, 0xFFD, 4, WR, SS, 0 },
	{ "compat mode checks limits too", C, 0, &small_rw, DS, 0x1000, 1, RD, GP, 0 },
	{ "compat mode in-limit", C, 0, &small_rw, FS, 0x800, 8, WR, OK, 0x10800 },
	/* Granularity: G=1 raw 0xFFFFF is 0xFFFFFFFF. */
	{ "flat: top dword", P, 0, &flat, DS, 0xFFFFFFFC, 4, RD, OK, 0xFFFFFFFC },
	{ "flat: last byte", P, 0, &flat, DS, 0xFFFFFFFF, 1, WR, OK, 0xFFFFFFFF },
	{ "flat: 4 bytes past 4 GiB", P, 0, &flat, DS, 0xFFFFFFFE, 4, RD, GP, 0 },
	/* Expand-down, B = 0 (SDM 5.3): valid limit+1 .. 0xFFFF. */
	{ "ED B0: limit+1 is the first valid", P, 0, &ed_b0, DS, 0x1000, 1, RD, OK, 0x101000 },
	{ "ED B0: the limit itself is out", P, 0, &ed_b0, DS, 0xFFF, 1, RD, GP, 0 },
	{ "ED B0: offset 0 is out", P, 0, &ed_b0, DS, 0x0, 1, RD, GP, 0 },
	{ "ED B0: straddles the limit from below", P, 0, &ed_b0, DS, 0xFFE, 4, RD, GP, 0 },
	{ "ED B0: 0xFFFF is the last valid", P, 0, &ed_b0, DS, 0xFFFF, 1, WR, OK, 0x10FFFF },
	{ "ED B0: 2 bytes ending at 0xFFFF", P, 0, &ed_b0, DS, 0xFFFE, 2, WR, OK, 0x10FFFE },
	{ "ED B0: 2 bytes past 0xFFFF", P, 0, &ed_b0, DS, 0xFFFF, 2, RD, GP, 0 },
	{ "ED B0: 0x10000 is out", P, 0, &ed_b0, DS, 0x10000, 1, RD, GP, 0 },
	{ "ED B0 as stack: #SS(0)", P, 0, &ed_b0, SSR, 0xFFF, 1, WR, SS, 0 },
	{ "ED B0 as stack: push at limit+1", P, 0, &ed_b0, SSR, 0x1000, 2, WR, OK, 0x101000 },
	/* Expand-down, B = 1: valid limit+1 .. 0xFFFFFFFF. */
	{ "ED B1: 0x10000 is valid", P, 0, &ed_b1, DS, 0x10000, 1, RD, OK, 0x110000 },
	{ "ED B1: top dword", P, 0, &ed_b1, DS, 0xFFFFFFFC, 4, RD, OK, 0x000FFFFC },
	{ "ED B1: dword past 4 GiB", P, 0, &ed_b1, DS, 0xFFFFFFFD, 4, RD, GP, 0 },
	{ "ED B1: the limit itself is out", P, 0, &ed_b1, DS, 0xFFF, 1, RD, GP, 0 },
	{ "ED B1: straddles limit+1", P, 0, &ed_b1, DS, 0xFFF, 2, RD, GP, 0 },
	{ "ED B1 stack below the limit: #SS(0)", P, 0, &ed_b1, SSR, 0x800, 4, WR, SS, 0 },
	/* Types (SDM 5.5, 3.4.5.1). */
	{ "read of read-only data", P, 0, &small_ro, DS, 0x10, 4, RD, OK, 0x10010 },
	{ "write to read-only data: #GP(0)", P, 0, &small_ro, DS, 0x10, 4, WR, GP, 0 },
	{ "write to read-only data via SS: #SS(0)", P, 0, &small_ro, SSR, 0x10, 4, WR, SS, 0 },
	{ "write to read-only expand-down: #GP(0)", P, 0, &ed_ro, GS, 0x2000, 1, WR, GP, 0 },
	{ "read of read-only expand-down", P, 0, &ed_ro, GS, 0x2000, 1, RD, OK, 0x2000 },
	{ "read of execute-only code: #GP(0)", P, 0, &code_xo, CS, 0x100, 1, RD, GP, 0 },
	{ "fetch from execute-only code", P, 0, &code_xo, CS, 0x100, 1, FX, OK, 0x100 },
	{ "read of execute/read code (CS override)", P, 0, &code_xr, CS, 0x100, 4, RD, OK, 0x100 },
	{ "read of execute/read code through DS", P, 0, &code_xr, DS, 0x100, 4, RD, OK, 0x100 },
	{ "write to execute/read code: #GP(0)", P, 0, &code_xr, CS, 0x100, 4, WR, GP, 0 },
	{ "write to code through ES: #GP(0)", P, 0, &code_xr, ES, 0x100, 1, WR, GP, 0 },
	{ "write to conforming code: #GP(0)", P, 0, &code_cxr, DS, 0x100, 1, WR, GP, 0 },
	{ "code segments never expand down", P, 0, &code_cxr, DS, 0x0, 1, RD, OK, 0x0 },
	{ "fetch within the code limit", P, 0, &code_small, CS, 0x7F0, 16, FX, OK, 0x207F0 },
	{ "fetch straddling the code limit", P, 0, &code_small, CS, 0x7F1, 16, FX, GP, 0 },
	{ "system segment cannot be read", P, 0, &sys_seg, DS, 0, 1, RD, GP, 0 },
	/* Null (unusable) segment (SDM 5.4.1). */
	{ "read through null DS: #GP(0)", P, 0, &null_seg, DS, 0, 1, RD, GP, 0 },
	{ "write through null FS: #GP(0)", C, 0, &null_seg, FS, 0, 1, WR, GP, 0 },
	{ "use of an unusable SS: #SS(0)", P, 0, &null_seg, SSR, 0, 1, RD, SS, 0 },
	/* 32-bit wraparound of base + offset. */
	{ "base 0xFFFFF000 + 0x2000 wraps", P, 0, &flat_hi, DS, 0x2000, 4, RD, OK, 0x1000 },
	{ "base 0xFFFFF000 + 0xFFF", P, 0, &flat_hi, DS, 0xFFF, 1, RD, OK, 0xFFFFFFFF },
	{ "base 0xFFFFF000 + 0x1000 = 0", P, 0, &flat_hi, DS, 0x1000, 1, RD, OK, 0x0 },
	{ "compat wraps at 32 bits as well", C, 0, &flat_hi, SSR, 0x1004, 4, WR, OK, 0x4 },
	/* Real mode (SDM 20.1.1): base = sel*16, limit checked, types ignored. */
	{ "real: 1234:FFFF", R, 0, &real_1234, DS, 0xFFFF, 1, RD, OK, 0x2233F },
	{ "real: 2 bytes at FFFF: #GP", R, 0, &real_1234, DS, 0xFFFF, 2, RD, GP, 0 },
	{ "real: stack past FFFF: #SS", R, 0, &real_1234, SSR, 0xFFFF, 2, WR, SS, 0 },
	{ "real: FFFF:0010 = 1 MiB (no 20-bit wrap here)", R, 0, &real_ffff, DS, 0x10, 1, RD, OK, 0x100000 },
	{ "real: write through CS is allowed", R, 0, &real_ro_cs, CS, 0x20, 2, WR, OK, 0x30 },
	{ "real: fetch past the CS limit", R, 0, &real_ro_cs, CS, 0xFFFF, 2, FX, GP, 0 },
	{ "real: offset 0x10000 with a 32-bit address size", R, 0, &real_1234, ES, 0x10000, 1, RD, GP, 0 },
	/* Virtual-8086 mode: the same arithmetic. */
	{ "v86: FFFF:0000", V, 0, &real_ffff, ES, 0x0, 2, WR, OK, 0xFFFF0 },
	{ "v86: past FFFF", V, 0, &real_1234, DS, 0xFFFF, 4, RD, GP, 0 },
	/* 64-bit mode (SDM 3.2.4): bases of CS/DS/ES/SS are 0, no limits or types, canonical. */
	{ "64: DS base ignored", L, 0, &ds64, DS, 0x1000, 8, RD, OK, 0x1000 },
	{ "64: DS limit ignored", L, 0, &ds64, DS, 0x100000, 8, RD, OK, 0x100000 },
	{ "64: DS read-only type ignored", L, 0, &ds64, DS, 0x100, 8, WR, OK, 0x100 },
	{ "64: SS base ignored", L, 0, &ds64, SSR, 0x2000, 8, WR, OK, 0x2000 },
	{ "64: CS base ignored for fetch", L, 0, &ds64, CS, 0x3000, 16, FX, OK, 0x3000 },
	{ "64: null DS usable", L, 0, &null_seg, DS, 0x4000, 1, RD, OK, 0x4000 },
	{ "64: FS base used", L, 0, &fs64, FS, 0x10, 8, RD, OK, 0xFFFF800000000010ull },
	{ "64: GS base used, limit ignored", L, 0, &fs64, GS, 0x7FFFFFFFFFFFull, 1, WR, OK, 0xFFFFFFFFFFFFFFFFull },
	{ "64: last canonical low byte", L, 0, &flat, DS, 0x00007FFFFFFFFFFFull, 1, RD, OK, 0x00007FFFFFFFFFFFull },
	{ "64: 2 bytes crossing into the hole", L, 0, &flat, DS, 0x00007FFFFFFFFFFFull, 2, RD, GP, 0 },
	{ "64: first non-canonical", L, 0, &flat, DS, 0x0000800000000000ull, 1, RD, GP, 0 },
	{ "64: last non-canonical", L, 0, &flat, DS, 0xFFFF7FFFFFFFFFFFull, 1, RD, GP, 0 },
	{ "64: first upper canonical", L, 0, &flat, DS, 0xFFFF800000000000ull, 8, RD, OK, 0xFFFF800000000000ull },
	{ "64: non-canonical stack: #SS(0)", L, 0, &flat, SSR, 0x0000800000000000ull, 8, WR, SS, 0 },
	{ "64: FS base + offset leaves canonical", L, 0, &fs64_edge, FS, 0x1000, 1, RD, GP, 0 },
	{ "64: FS base + offset wraps 2^64", L, 0, &fs64_wrap, FS, 0x20, 4, RD, OK, 0x10 },
	{ "64: ending at 2^64 - 1", L, 0, &flat, GS, 0xFFFFFFFFFFFFFFF0ull, 16, RD, OK, 0xFFFFFFFFFFFFFFF0ull },
	/* LA57: 57-bit canonical. */
	{ "LA57: 0x0000800000000000 is canonical", L, 1, &flat, DS, 0x0000800000000000ull, 1, RD, OK, 0x0000800000000000ull },
	{ "LA57: last low canonical", L, 1, &flat, DS, 0x00FFFFFFFFFFFFFFull, 1, RD, OK, 0x00FFFFFFFFFFFFFFull },
	{ "LA57: crossing bit 56", L, 1, &flat, DS, 0x00FFFFFFFFFFFFFFull, 2, RD, GP, 0 },
	{ "LA57: first upper canonical", L, 1, &flat, SSR, 0xFF00000000000000ull, 1, RD, OK, 0xFF00000000000000ull },
	{ "LA57: last upper non-canonical", L, 1, &flat, SSR, 0xFEFFFFFFFFFFFFFFull, 1, RD, SS, 0 },
};

static void table(void **state)
{
	(void)state;
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		vmem_seg_env env = { .mode = r->mode, .la57 = r->la57,
				     .cpl = (uint8_t)(r->mode == V ? 3 : 0) };
		vmem_seg_result res;
		vmem_err err = vmem_seg_translate(&env, r->c, r->sreg, r->off, r->size, r->acc, &res);
		bool ok = err == VMEM_OK;
		if (ok && r->vec == OK)
			ok = res.status == VMEM_SEG_OK && res.linear == r->linear;
		else if (ok)
			ok = res.status == VMEM_SEG_FAULT && res.vector == r->vec && res.error_code == 0;
		if (!ok) {
			print_error("row %zu (%s): err %d status %u vec %u linear %#llx\n", i, r->rule,
				    err, res.status, res.vector, (unsigned long long)res.linear);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* The walk's other access flags pass through (the same access word serves both). */
static void walk_flags_ignored(void **state)
{
	(void)state;
	vmem_seg_env env = { .mode = P, .cpl = 3 };
	vmem_seg_result res;
	assert_int_equal(vmem_seg_translate(&env, &small_ro, DS, 0, 1,
					    VMEM_ACC_READ | VMEM_ACC_USER | VMEM_ACC_AC, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_SEG_OK);
	vmem_seg_translate(&env, &small_ro, DS, 0, 1, VMEM_ACC_WRITE | VMEM_ACC_USER, &res);
	assert_int_equal(res.vector, GP);
}

/* Bad arguments: VMEM_E_INVAL, result untouched. */
static void inval(void **state)
{
	(void)state;
	vmem_seg_env env = { .mode = P };
	vmem_seg_result res = { .status = 0xEE };
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0, 0, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0, 17, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0x100000000ull, 1, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &code_xr, CS, 0, 1, WR | FX, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &code_xr, DS, 0, 1, FX, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &flat, (vmem_sreg)6, 0, 1, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, NULL, DS, 0, 1, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(NULL, &flat, DS, 0, 1, RD, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0, 1, RD, NULL), VMEM_E_INVAL);
	env.mode = R;
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0x100000000ull, 1, RD, &res), VMEM_E_INVAL);
	env.cpl = 1; /* real mode is CPL 0 */
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0, 1, RD, &res), VMEM_E_INVAL);
	assert_int_equal(res.status, 0xEE);
	env = (vmem_seg_env){ .mode = L }; /* 64-bit offsets are legal in 64-bit mode */
	assert_int_equal(vmem_seg_translate(&env, &flat, DS, 0x100000000ull, 16, RD, &res), VMEM_OK);
}

/* Load then use: a hand-packed descriptor, loaded and translated end to end. */
static void load_then_use(void **state)
{
	(void)state;
	/* base 0x00400000, raw limit 0x0000F, G=1 -> 0xFFFF; type 2 DPL3: 0x00C0F2400000000F */
	vmem_seg_env env = { .gdt_limit = 0xFF, .mode = P, .cpl = 3 };
	vmem_seg_cache c;
	vmem_seg_result res;
	vmem_seg_load(&env, DS, 0x002B, 0x00C0F2400000000Full, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_OK);
	vmem_seg_translate(&env, &c, DS, 0xFFFF, 1, WR, &res);
	assert_int_equal(res.status, VMEM_SEG_OK);
	assert_int_equal(res.linear, 0x40FFFF);
	vmem_seg_translate(&env, &c, DS, 0x10000, 1, WR, &res);
	assert_int_equal(res.vector, GP);
	/* Null-loaded DS then used: #GP(0). */
	vmem_seg_load(&env, DS, 0x0003, 0, &c, &res);
	vmem_seg_translate(&env, &c, DS, 0, 1, RD, &res);
	assert_int_equal(res.status, VMEM_SEG_FAULT);
	assert_int_equal(res.vector, GP);
}

/* Expand-down with G = 1 (SDM 3.4.5.1, 5.3): the scaled limit (raw << 12) | 0xFFF
 * is the last invalid offset; B picks the upper bound. Raw limit 1, type 6,
 * DPL 0: B = 1 is 0x00C0960000000001 (valid 0x2000..0xFFFFFFFF), B = 0 is
 * 0x0080960000000001 (valid 0x2000..0xFFFF). */
static void expand_down_granular(void **state)
{
	(void)state;
	vmem_seg_env env = { .gdt_limit = 0xFF, .mode = P, .cpl = 0 };
	vmem_seg_cache es, ss;
	vmem_seg_result res;
	assert_int_equal(vmem_seg_load(&env, ES, 0x0010, 0x00C0960000000001ull, &es, &res), VMEM_OK);
	assert_int_equal(es.limit, 0x1FFF);
	assert_int_equal(vmem_seg_load(&env, SSR, 0x0010, 0x0080960000000001ull, &ss, &res), VMEM_OK);
	const struct { const vmem_seg_cache *c; uint8_t sreg; uint64_t off; uint8_t size, vec; } cases[] = {
		{ &es, ES, 0x1FFF, 1, GP }, { &es, ES, 0x2000, 1, OK }, { &es, ES, 0xFFFFFFFC, 4, OK },
		{ &ss, SSR, 0x1FFF, 2, SS }, { &ss, SSR, 0xFFFE, 2, OK }, { &ss, SSR, 0x10000, 2, SS },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		vmem_seg_translate(&env, cases[i].c, cases[i].sreg, cases[i].off, cases[i].size, WR, &res);
		assert_int_equal(res.status == VMEM_SEG_OK ? OK : res.vector, cases[i].vec);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table),
		cmocka_unit_test(walk_flags_ignored),
		cmocka_unit_test(inval),
		cmocka_unit_test(load_then_use),
		cmocka_unit_test(expand_down_granular),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
