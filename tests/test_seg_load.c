/* Tests for segment-register loads: MOV/POP to DS..GS and SS, far JMP/CALL to CS (hand-worked from SDM vol. 2 MOV/JMP and vol. 3A 5.5-5.8). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libvmem/seg.h>

/* Descriptors, hand-packed (access byte = P|DPL|S|type in bits 47:40). */
#define D_DATA_RW0   0x00CF92000000FFFFull /* P DPL0 S type 2: read/write data */
#define D_DATA_RWA0  0x00CF93000000FFFFull /* same, already accessed */
#define D_DATA_RW1   0x00CFB2000000FFFFull /* DPL1 */
#define D_DATA_RW2   0x00CFD2000000FFFFull /* DPL2 */
#define D_DATA_RW3   0x00CFF2000000FFFFull /* DPL3 */
#define D_DATA_RO0   0x00CF90000000FFFFull /* type 0: read-only data */
#define D_DATA_ED0   0x00CF96000000FFFFull /* type 6: expand-down read/write */
#define D_DATA_NP0   0x00CF12000000FFFFull /* P=0 read/write data DPL0 */
#define D_CODE_XO0   0x00CF98000000FFFFull /* type 8: execute-only code */
#define D_CODE_XR0   0x00CF9A000000FFFFull /* type A: execute/read, non-conforming */
#define D_CODE_XR3   0x00CFFA000000FFFFull /* type A, DPL3 */
#define D_CODE_NP0   0x00CF1A000000FFFFull /* type A, P=0 */
#define D_CONF_XR0   0x00CF9E000000FFFFull /* type E: conforming execute/read */
#define D_CONF_XO0   0x00CF9C000000FFFFull /* type C: conforming execute-only */
#define D_CONF_XR3   0x00CFFE000000FFFFull /* type E, DPL3 */
#define D_CODE64     0x00AF9A000000FFFFull /* L=1 D=0 */
#define D_CODE_LD    0x00EF9A000000FFFFull /* L=1 D=1: reserved in IA-32e mode */
#define D_CODE64_SMALL 0x00209A0000000FFFull /* L=1 D=0 G=0, limit 0xFFF */
#define D_CODE16     0x00009A0100000FFFull /* base 0x10000, limit 0xFFF, G=0, D=0 */
#define D_SYS_LDT    0x0000820000000FFFull /* S=0 type 2 (LDT) */
#define D_SYS_TSS    0x0000890000000067ull /* S=0 type 9 (TSS) */

enum { OK = 0, GP = VMEM_SEG_VEC_GP, SS = VMEM_SEG_VEC_SS, NP = VMEM_SEG_VEC_NP };

/* One expected load outcome: fault vector (or OK) and error code. */
struct row {
	const char *rule; /* the SDM rule this row checks */
	uint8_t mode, cpl, sreg;
	uint16_t sel;
	uint64_t desc;
	uint8_t vec;
	uint16_t code;
};

/* GDT at 0x1000 with 8 entries (limit 0x3F); LDT with 3 entries (limit 0x17). */
static vmem_seg_env env_for(uint8_t mode, uint8_t cpl)
{
	vmem_seg_env e = { .gdt_base = 0x1000, .gdt_limit = 0x3F, .ldt_base = 0x8000,
			   .ldt_limit = 0x17, .ldt_usable = true, .mode = mode, .cpl = cpl };
	return e;
}

#define P VMEM_SEG_PROT
#define C VMEM_SEG_COMPAT
#define L VMEM_SEG_LONG
#define DS VMEM_SREG_DS
#define ES VMEM_SREG_ES
#define FS VMEM_SREG_FS
#define GS VMEM_SREG_GS
#define SSR VMEM_SREG_SS

static const struct row data_rows[] = {
	/* Null selectors (SDM 3.4.2, vol. 2 MOV). */
	{ "null into DS is legal", P, 0, DS, 0x0000, 0, OK, 0 },
	{ "null with RPL 3 into ES is legal", P, 3, ES, 0x0003, 0, OK, 0 },
	{ "null into GS in 64-bit mode", L, 3, GS, 0x0000, 0, OK, 0 },
	{ "null into SS: #GP(0)", P, 0, SSR, 0x0000, D_DATA_RW0, GP, 0 },
	{ "null into SS in compat mode: #GP(0)", C, 0, SSR, 0x0000, 0, GP, 0 },
	{ "64-bit, CPL0, RPL0: null SS allowed", L, 0, SSR, 0x0000, 0, OK, 0 },
	{ "64-bit, CPL1, RPL1: null SS allowed", L, 1, SSR, 0x0001, 0, OK, 0 },
	{ "64-bit, CPL3: null SS #GP(0)", L, 3, SSR, 0x0003, 0, GP, 0 },
	{ "64-bit, CPL0 RPL1 != CPL: null SS #GP(0)", L, 0, SSR, 0x0001, 0, GP, 0 },
	/* Table limits (SDM 3.5.1): index*8+7 must be within the limit. */
	{ "GDT index 7: last byte at the limit", P, 0, DS, 0x0038, D_DATA_RW0, OK, 0 },
	{ "GDT index 8: past the limit -> #GP(sel)", P, 0, DS, 0x0040, D_DATA_RW0, GP, 0x40 },
	{ "beyond GDT, RPL dropped from error code", P, 3, DS, 0x0043, D_DATA_RW3, GP, 0x40 },
	{ "LDT index 2: within 0x17", P, 0, DS, 0x0014, D_DATA_RW0, OK, 0 },
	{ "LDT index 3: past the limit, TI kept", P, 0, DS, 0x001C, D_DATA_RW0, GP, 0x1C },
	{ "SS beyond the GDT: #GP(sel)", P, 0, SSR, 0x0040, D_DATA_RW0, GP, 0x40 },
	/* DS..: type must be data or readable code (vol. 2 MOV). */
	{ "DS <- read-only data is fine", P, 0, DS, 0x0008, D_DATA_RO0, OK, 0 },
	{ "DS <- expand-down data", P, 0, FS, 0x0008, D_DATA_ED0, OK, 0 },
	{ "DS <- readable code", P, 0, DS, 0x0008, D_CODE_XR0, OK, 0 },
	{ "DS <- execute-only code: #GP(sel)", P, 0, DS, 0x0008, D_CODE_XO0, GP, 0x08 },
	{ "DS <- conforming execute-only: #GP(sel)", P, 0, DS, 0x0008, D_CONF_XO0, GP, 0x08 },
	{ "DS <- system (LDT) descriptor: #GP(sel)", P, 0, DS, 0x0008, D_SYS_LDT, GP, 0x08 },
	/* DS..: DPL >= max(CPL, RPL) for data and non-conforming code (SDM 5.6). */
	{ "CPL3 loads DPL0 data: #GP(sel)", P, 3, DS, 0x000B, D_DATA_RW0, GP, 0x08 },
	{ "CPL0 RPL3 loads DPL0 data: #GP(sel)", P, 0, DS, 0x000B, D_DATA_RW0, GP, 0x08 },
	{ "CPL0 RPL0 loads DPL3 data", P, 0, DS, 0x0008, D_DATA_RW3, OK, 0 },
	{ "CPL2 RPL1 DPL2: max(2,1) <= 2", P, 2, DS, 0x0009, D_DATA_RW2, OK, 0 },
	{ "CPL1 RPL2 DPL1: RPL > DPL -> #GP", P, 1, DS, 0x000A, D_DATA_RW1, GP, 0x08 },
	{ "CPL2 RPL0 DPL1: CPL > DPL -> #GP", P, 2, ES, 0x0008, D_DATA_RW1, GP, 0x08 },
	{ "CPL3 loads conforming readable DPL0: no priv check", P, 3, DS, 0x000B, D_CONF_XR0, OK, 0 },
	{ "CPL3 loads non-conforming readable DPL0: #GP", P, 3, DS, 0x000B, D_CODE_XR0, GP, 0x08 },
	{ "64-bit mode checks DS the same way", L, 3, DS, 0x000B, D_DATA_RW0, GP, 0x08 },
	/* Present (SDM 5.5): checked after type and privilege. */
	{ "DS <- not present: #NP(sel)", P, 0, DS, 0x0010, D_DATA_NP0, NP, 0x10 },
	{ "GS <- not-present code: #NP(sel)", P, 0, GS, 0x0010, D_CODE_NP0, NP, 0x10 },
	{ "not present and DPL too low: #GP first", P, 3, DS, 0x0013, D_DATA_NP0, GP, 0x10 },
	{ "SS <- not present: #SS(sel)", P, 0, SSR, 0x0010, D_DATA_NP0, SS, 0x10 },
	/* SS: writable data with RPL = DPL = CPL (vol. 2 MOV). */
	{ "SS <- writable data DPL0 at CPL0", P, 0, SSR, 0x0010, D_DATA_RW0, OK, 0 },
	{ "SS <- writable DPL3 at CPL3 RPL3", P, 3, SSR, 0x0023, D_DATA_RW3, OK, 0 },
	{ "SS <- expand-down writable", P, 0, SSR, 0x0010, D_DATA_ED0, OK, 0 },
	{ "SS <- read-only data: #GP(sel)", P, 0, SSR, 0x0010, D_DATA_RO0, GP, 0x10 },
	{ "SS <- readable code: #GP(sel)", P, 0, SSR, 0x0010, D_CODE_XR0, GP, 0x10 },
	{ "SS: RPL 1 != CPL 0: #GP(sel)", P, 0, SSR, 0x0011, D_DATA_RW0, GP, 0x10 },
	{ "SS: DPL 3 != CPL 0: #GP(sel)", P, 0, SSR, 0x0010, D_DATA_RW3, GP, 0x10 },
	{ "SS: DPL 0 != CPL 3 (RPL 3): #GP(sel)", P, 3, SSR, 0x0013, D_DATA_RW0, GP, 0x10 },
	{ "SS in compat mode, CPL1", C, 1, SSR, 0x0029, D_DATA_RW1, OK, 0 },
	{ "SS not present with DPL != CPL: #GP first", P, 3, SSR, 0x0013, D_DATA_NP0, GP, 0x10 },
};

static void data_table(void **state)
{
	(void)state;
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof data_rows / sizeof data_rows[0]; i++) {
		const struct row *r = &data_rows[i];
		vmem_seg_env env = env_for(r->mode, r->cpl);
		vmem_seg_cache c = { .base = 0xDEAD0000, .limit = 0x1234, .selector = 0x77 };
		vmem_seg_result res;
		vmem_err err = vmem_seg_load(&env, r->sreg, r->sel, r->desc, &c, &res);
		bool ok = err == VMEM_OK;
		if (ok && r->vec == OK)
			ok = res.status == VMEM_SEG_OK && c.selector == r->sel;
		else if (ok)
			ok = res.status == VMEM_SEG_FAULT && res.vector == r->vec &&
			     res.error_code == r->code &&
			     c.base == 0xDEAD0000 && c.selector == 0x77; /* unchanged */
		if (!ok) {
			print_error("row %zu (%s): err %d status %u vec %u code %#x\n", i, r->rule,
				    err, res.status, res.vector, res.error_code);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* What an OK load leaves: the decoded descriptor, accessed bit set in the cache
 * and in the descriptor to write back (SDM 3.4.5.1). */
static void data_load_result(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(P, 0);
	vmem_seg_cache c;
	vmem_seg_result res;
	assert_int_equal(vmem_seg_load(&env, DS, 0x0010, D_DATA_RW0, &c, &res), VMEM_OK);
	assert_int_equal(c.type, 3);
	assert_int_equal(c.limit, 0xFFFFFFFFu);
	assert_false(c.unusable);
	assert_int_equal(res.desc, D_DATA_RWA0);
	vmem_seg_load(&env, DS, 0x0010, D_DATA_RWA0, &c, &res); /* already accessed: nothing to write */
	assert_int_equal(res.desc, D_DATA_RWA0);
	/* A null load leaves an unusable register with the selector as given. */
	vmem_seg_load(&env, ES, 0x0002, D_DATA_RW0, &c, &res);
	assert_true(c.unusable);
	assert_int_equal(c.selector, 2);
	assert_int_equal(c.base, 0);
}

/* EXT (bit 0) replaces the RPL in selector error codes when asked (SDM 6.13). */
static void ext_bit(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(P, 0);
	env.ext = true;
	vmem_seg_cache c = { 0 };
	vmem_seg_result res;
	vmem_seg_load(&env, DS, 0x0043, D_DATA_RW0, &c, &res);
	assert_int_equal(res.error_code, 0x41);
	vmem_seg_load(&env, SSR, 0x0000, D_DATA_RW0, &c, &res); /* #GP(0) has no EXT: not a selector code */
	assert_int_equal(res.error_code, 0);
}

/* TI = 1 with a null LDTR: #GP(sel). */
static void no_ldt(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(P, 0);
	env.ldt_usable = false;
	vmem_seg_cache c = { 0 };
	vmem_seg_result res;
	vmem_seg_load(&env, DS, 0x000C, D_DATA_RW0, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_FAULT);
	assert_int_equal(res.vector, GP);
	assert_int_equal(res.error_code, 0x0C);
	env.gdt_limit = 0x3E; /* index 7's last byte now past the limit */
	vmem_seg_load(&env, DS, 0x0038, D_DATA_RW0, &c, &res);
	assert_int_equal(res.error_code, 0x38);
}

/* Real mode: base = sel << 4, limit and attributes kept (big real mode). */
static void real_and_v86(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(VMEM_SEG_REAL, 0);
	vmem_seg_cache c = { .limit = 0xFFFFFFFF, .type = 3, .s = true, .p = true };
	vmem_seg_result res;
	assert_int_equal(vmem_seg_load(&env, DS, 0x1234, 0, &c, &res), VMEM_OK);
	assert_int_equal(res.status, VMEM_SEG_OK);
	assert_int_equal(c.base, 0x12340);
	assert_int_equal(c.limit, 0xFFFFFFFFu);
	assert_int_equal(c.selector, 0x1234);
	vmem_seg_load(&env, SSR, 0x0000, 0, &c, &res); /* null SS is fine in real mode */
	assert_int_equal(res.status, VMEM_SEG_OK);
	assert_int_equal(c.base, 0);
	/* Virtual-8086 (SDM 20.2.1): limit 0xFFFF, read/write data, DPL 3. */
	env = env_for(VMEM_SEG_V86, 3);
	assert_int_equal(vmem_seg_load(&env, ES, 0xB800, 0, &c, &res), VMEM_OK);
	assert_int_equal(c.base, 0xB8000);
	assert_int_equal(c.limit, 0xFFFF);
	assert_int_equal(c.dpl, 3);
	assert_int_equal(c.type, 3);
}

/* Invalid arguments change nothing. */
static void load_inval(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(P, 0);
	vmem_seg_cache c = { .selector = 0x77 };
	vmem_seg_result res = { .status = 0xEE };
	assert_int_equal(vmem_seg_load(&env, VMEM_SREG_CS, 8, D_CODE_XR0, &c, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_load(&env, (vmem_sreg)6, 8, D_DATA_RW0, &c, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, NULL, &res), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, &c, NULL), VMEM_E_INVAL);
	env.cpl = 4;
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, &c, &res), VMEM_E_INVAL);
	env = env_for(VMEM_SEG_REAL, 3); /* real mode runs at CPL 0 */
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, &c, &res), VMEM_E_INVAL);
	env = env_for(VMEM_SEG_V86, 0); /* virtual-8086 runs at CPL 3 */
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, &c, &res), VMEM_E_INVAL);
	env = env_for(5, 0);
	assert_int_equal(vmem_seg_load(&env, DS, 8, D_DATA_RW0, &c, &res), VMEM_E_INVAL);
	assert_int_equal(c.selector, 0x77);
	assert_int_equal(res.status, 0xEE);
}

/* Far JMP/CALL to a code segment (vol. 2 JMP; SDM 5.8.1). ip is the target offset. */
struct cs_row {
	const char *rule;
	uint8_t mode, cpl;
	uint16_t sel;
	uint64_t desc, ip;
	uint8_t vec;
	uint16_t code;
	uint16_t new_sel; /* OK: CS selector after the load (RPL = CPL) */
};

static const struct cs_row cs_rows[] = {
	{ "null selector: #GP(0)", P, 0, 0x0000, D_CODE_XR0, 0, GP, 0, 0 },
	{ "beyond the GDT: #GP(sel)", P, 0, 0x0048, D_CODE_XR0, 0, GP, 0x48, 0 },
	{ "data segment: #GP(sel)", P, 0, 0x0008, D_DATA_RW0, 0, GP, 0x08, 0 },
	{ "non-conforming DPL0 at CPL0", P, 0, 0x0008, D_CODE_XR0, 0x100, OK, 0, 0x0008 },
	{ "execute-only non-conforming is fine for CS", P, 0, 0x0008, D_CODE_XO0, 0, OK, 0, 0x0008 },
	{ "non-conforming DPL0 from CPL3: #GP(sel)", P, 3, 0x0008, D_CODE_XR0, 0, GP, 0x08, 0 },
	{ "non-conforming DPL3 from CPL0: DPL != CPL", P, 0, 0x0008, D_CODE_XR3, 0, GP, 0x08, 0 },
	{ "non-conforming RPL3 > CPL0: #GP(sel)", P, 0, 0x000B, D_CODE_XR0, 0, GP, 0x08, 0 },
	{ "non-conforming RPL0 <= CPL3, DPL3: RPL becomes 3", P, 3, 0x0018, D_CODE_XR3, 0, OK, 0, 0x001B },
	{ "conforming DPL0 from CPL3: CPL stays 3", P, 3, 0x0018, D_CONF_XR0, 0, OK, 0, 0x001B },
	{ "conforming execute-only DPL0 from CPL2", P, 2, 0x0018, D_CONF_XO0, 0, OK, 0, 0x001A },
	{ "conforming DPL3 > CPL0: #GP(sel)", P, 0, 0x0018, D_CONF_XR3, 0, GP, 0x18, 0 },
	{ "conforming ignores RPL3 at CPL0; RPL set to 0", P, 0, 0x001B, D_CONF_XR0, 0, OK, 0, 0x0018 },
	{ "not present: #NP(sel)", P, 0, 0x0020, D_CODE_NP0, 0, NP, 0x20, 0 },
	{ "not present and DPL != CPL: #GP first", P, 3, 0x0023, D_CODE_NP0, 0, GP, 0x20, 0 },
	{ "L=1 D=1 in compat mode: #GP(sel)", C, 0, 0x0028, D_CODE_LD, 0, GP, 0x28, 0 },
	{ "L=1 D=1 in 64-bit mode: #GP(sel)", L, 0, 0x0028, D_CODE_LD, 0, GP, 0x28, 0 },
	{ "L=1 D=1 in legacy protected mode: L ignored", P, 0, 0x0028, D_CODE_LD, 0, OK, 0, 0x0028 },
	{ "ip at the limit of a 16-bit segment", P, 0, 0x0030, D_CODE16, 0xFFF, OK, 0, 0x0030 },
	{ "ip one past the limit: #GP(0)", P, 0, 0x0030, D_CODE16, 0x1000, GP, 0, 0 },
	{ "64-bit target: canonical ip, no limit", C, 0, 0x0030, D_CODE64, 0x00007FFFFFFFFFFFull, OK, 0, 0x0030 },
	{ "64-bit target: non-canonical ip #GP(0)", L, 0, 0x0030, D_CODE64, 0x0000800000000000ull, GP, 0, 0 },
	{ "L=1 in legacy mode: the limit still applies", P, 0, 0x0030, D_CODE64_SMALL, 0x1000, GP, 0, 0 },
	{ "L=1 in IA-32e mode: no limit check on ip", C, 0, 0x0030, D_CODE64_SMALL, 0x1000, OK, 0, 0x0030 },
	{ "64-bit target: upper-half canonical ip", L, 0, 0x0030, D_CODE64, 0xFFFF800000000000ull, OK, 0, 0x0030 },
};

static void cs_table(void **state)
{
	(void)state;
	unsigned bad = 0;
	for (size_t i = 0; i < sizeof cs_rows / sizeof cs_rows[0]; i++) {
		const struct cs_row *r = &cs_rows[i];
		vmem_seg_env env = env_for(r->mode, r->cpl);
		vmem_seg_cache c = { .base = 0xDEAD0000, .selector = 0x77 };
		vmem_seg_result res;
		vmem_err err = vmem_seg_load_cs(&env, r->sel, r->desc, r->ip, &c, &res);
		bool ok = err == VMEM_OK;
		if (ok && r->vec == OK)
			ok = res.status == VMEM_SEG_OK && c.selector == r->new_sel &&
			     res.desc == (r->desc | (1ull << 40));
		else if (ok)
			ok = res.status == VMEM_SEG_FAULT && res.vector == r->vec &&
			     res.error_code == r->code && c.selector == 0x77;
		if (!ok) {
			print_error("cs row %zu (%s): err %d status %u vec %u code %#x sel %#x\n", i,
				    r->rule, err, res.status, res.vector, res.error_code, c.selector);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

static void cs_more(void **state)
{
	(void)state;
	vmem_seg_env env = env_for(P, 3);
	vmem_seg_cache c = { 0 };
	vmem_seg_result res;
	/* A conforming segment keeps its DPL in the cache; CPL (= CS.RPL) stays 3. */
	vmem_seg_load_cs(&env, 0x0018, D_CONF_XR0, 0, &c, &res);
	assert_int_equal(c.dpl, 0);
	assert_int_equal(c.type, 0xF); /* accessed */
	/* Gates and TSSs are not modelled: a clear error, nothing changed. */
	env.cpl = 0;
	c.selector = 0x55;
	assert_int_equal(vmem_seg_load_cs(&env, 0x0020, D_SYS_TSS, 0, &c, &res), VMEM_E_UNSUPPORTED);
	assert_int_equal(c.selector, 0x55);
	/* LA57: 57-bit canonical targets. */
	env = env_for(L, 0);
	env.la57 = true;
	vmem_seg_load_cs(&env, 0x0030, D_CODE64, 0x00FFFFFFFFFFFFFFull, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_OK);
	vmem_seg_load_cs(&env, 0x0030, D_CODE64, 0x0100000000000000ull, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_FAULT);
	assert_int_equal(res.vector, GP);
	assert_int_equal(res.error_code, 0);
	/* Real mode: CS base = sel << 4, ip checked against the (kept) limit. */
	env = env_for(VMEM_SEG_REAL, 0);
	vmem_seg_init_real(&c, VMEM_SREG_CS, 0);
	vmem_seg_load_cs(&env, 0xF000, 0, 0xFFF0, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_OK);
	assert_int_equal(c.base, 0xF0000);
	vmem_seg_load_cs(&env, 0x1000, 0, 0x10000, &c, &res);
	assert_int_equal(res.status, VMEM_SEG_FAULT);
	assert_int_equal(res.vector, GP);
	assert_int_equal(c.base, 0xF0000); /* unchanged */
	/* Virtual-8086: same, with DPL 3. */
	env = env_for(VMEM_SEG_V86, 3);
	vmem_seg_load_cs(&env, 0x2000, 0, 0x10, &c, &res);
	assert_int_equal(c.base, 0x20000);
	assert_int_equal(c.dpl, 3);
	assert_int_equal(vmem_seg_load_cs(NULL, 0x2000, 0, 0x10, &c, &res), VMEM_E_INVAL);
}

/* Far JMP/CALL to a system descriptor that is neither a gate nor an available
 * TSS. SDM vol. 2 JMP and CALL, protected/IA-32e mode: "IF IA32_EFER.LMA = 0
 * THEN IF segment type is not a conforming or nonconforming code segment, call
 * gate, task gate, or TSS THEN #GP(segment selector) ... ELSE IF segment type is
 * not a conforming or nonconforming code segment or 64-bit call gate THEN
 * #GP(segment selector)"; a busy TSS: TASK-STATE-SEGMENT: "IF ... TSS
 * descriptor indicates TSS not available THEN #GP(TSS selector)", before the
 * present check. So, by Table 3-2: protected mode, types 0, 8, 0xA, 0xD
 * (reserved), 2 (LDT), 3 and 0xB (busy TSS) -> #GP(sel), present or not, any
 * DPL; IA-32e mode: every system type but 0xC (64-bit call gate) -> #GP(sel).
 * Gates and available TSSs stay VMEM_E_UNSUPPORTED (a transfer through them is
 * not modelled). Bochs 2.7 answers #GP(sel) for the protected-mode ones too
 * (tests/corpus/bochs-seg-v1.jsonl, e.g. bochs-seg-227: type 8; -266: type 3
 * not present). */
static void cs_system_types(void **state)
{
	(void)state;
	static const struct { uint8_t mode; unsigned type; bool gp; } t[] = {
		{ P, 0x0, true }, { P, 0x1, false }, { P, 0x2, true }, { P, 0x3, true },
		{ P, 0x4, false }, { P, 0x5, false }, { P, 0x8, true }, { P, 0x9, false },
		{ P, 0xA, true }, { P, 0xB, true }, { P, 0xC, false }, { P, 0xD, true },
		{ L, 0x2, true }, { L, 0x3, true }, { L, 0x4, true }, { L, 0x5, true },
		{ L, 0x9, true }, { L, 0xB, true }, { L, 0xC, false }, { C, 0x1, true },
		{ C, 0x9, true }, { C, 0xC, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		for (unsigned p = 0; p < 2; p++) {
			vmem_seg_env env = env_for(t[i].mode, 0);
			vmem_seg_cache c = { .selector = 0x55 };
			vmem_seg_result res;
			uint64_t desc = 0x0000000000000067ull | (uint64_t)t[i].type << 40 | (uint64_t)p << 47;
			vmem_err err = vmem_seg_load_cs(&env, 0x0023, desc, 0, &c, &res);
			if (!t[i].gp) {
				assert_int_equal(err, VMEM_E_UNSUPPORTED);
				continue;
			}
			if (err != VMEM_OK || res.status != VMEM_SEG_FAULT || res.vector != GP || res.error_code != 0x20)
				print_error("mode %u type %#x P %u: err %d status %u vec %u code %#x\n", t[i].mode,
					    t[i].type, p, err, res.status, res.vector, res.error_code);
			assert_int_equal(err, VMEM_OK);
			assert_int_equal(res.status, VMEM_SEG_FAULT);
			assert_int_equal(res.vector, GP);
			assert_int_equal(res.error_code, 0x20);
			assert_int_equal(c.selector, 0x55);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(data_table),
		cmocka_unit_test(data_load_result),
		cmocka_unit_test(ext_bit),
		cmocka_unit_test(no_ldt),
		cmocka_unit_test(real_and_v86),
		cmocka_unit_test(load_inval),
		cmocka_unit_test(cs_table),
		cmocka_unit_test(cs_more),
		cmocka_unit_test(cs_system_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
