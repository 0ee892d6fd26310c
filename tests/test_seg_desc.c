/* Tests for segment descriptor decode/encode, VMX access rights, real-mode init and descriptor lookup (hand-worked from SDM 3.4.5, 3.5.1, 7.2.3). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libvmem/seg.h>

/* Flat 4-GiB ring-0 code, the classic 0x00CF9A000000FFFF: base 0, raw limit
 * 0xFFFFF, G = 1, D = 1, P = 1, DPL 0, S = 1, type 0xA (execute/read). */
static void decode_flat_code(void **state)
{
	(void)state;
	vmem_seg_cache c;
	assert_int_equal(vmem_seg_desc_decode(0x00CF9A000000FFFFull, &c), VMEM_OK);
	assert_int_equal(c.base, 0);
	assert_int_equal(c.limit, 0xFFFFFFFFu); /* SDM 3.4.5: G=1 -> (0xFFFFF << 12) | 0xFFF */
	assert_int_equal(c.type, 0xA);
	assert_true(c.s);
	assert_int_equal(c.dpl, 0);
	assert_true(c.p);
	assert_true(c.db);
	assert_false(c.l);
	assert_true(c.g);
	assert_false(c.avl);
	assert_false(c.unusable);
	assert_int_equal(c.selector, 0);
}

/* Hand-packed: base 0x12345678, limit 0xABCDE, G=0, B=1, L=0, AVL=1,
 * P=1, DPL=2, S=1, type 6 (expand-down read/write data).
 *   limit[15:0]=0xBCDE  base[23:0]=0x345678  access=1|10|1|0110=0xD6
 *   flags G,DB,L,AVL=0101 limit[19:16]=0xA -> 0x5A  base[31:24]=0x12 */
static void decode_every_field(void **state)
{
	(void)state;
	vmem_seg_cache c;
	assert_int_equal(vmem_seg_desc_decode(0x125AD6345678BCDEull, &c), VMEM_OK);
	assert_int_equal(c.base, 0x12345678u);
	assert_int_equal(c.limit, 0xABCDEu); /* G=0: byte granular, unscaled */
	assert_int_equal(c.type, 0x6);
	assert_true(c.s);
	assert_int_equal(c.dpl, 2);
	assert_true(c.p);
	assert_true(c.avl);
	assert_false(c.l);
	assert_true(c.db);
	assert_false(c.g);
}

/* 64-bit code 0x00AF9B000000FFFF: L=1, D=0, accessed. */
static void decode_long_code(void **state)
{
	(void)state;
	vmem_seg_cache c;
	assert_int_equal(vmem_seg_desc_decode(0x00AF9B000000FFFFull, &c), VMEM_OK);
	assert_true(c.l);
	assert_false(c.db);
	assert_int_equal(c.type, 0xB);
}

/* Granularity edges: G=1 with raw limit 0 is 0xFFF; raw 1 is 0x1FFF. */
static void decode_granularity(void **state)
{
	(void)state;
	vmem_seg_cache c;
	vmem_seg_desc_decode(0x0080920000000000ull, &c);
	assert_int_equal(c.limit, 0xFFFu);
	vmem_seg_desc_decode(0x0080920000000001ull, &c);
	assert_int_equal(c.limit, 0x1FFFu);
	vmem_seg_desc_decode(0x000F920000000000ull | 0xFFFF, &c); /* G=0, raw 0xFFFFF */
	assert_int_equal(c.limit, 0xFFFFFu);
}

/* 64-bit TSS (SDM 7.2.3, Figure 7-4): base 0xFFFF800012345678, limit 0x67,
 * type 9, P=1, DPL 0, S=0. Low: 0x12|00|89|345678|0067; high: base[63:32]. */
static void decode16_tss(void **state)
{
	(void)state;
	const uint64_t d[2] = { 0x1200893456780067ull, 0x00000000FFFF8000ull };
	vmem_seg_cache c;
	assert_int_equal(vmem_seg_desc_decode16(d, &c), VMEM_OK);
	assert_int_equal(c.base, 0xFFFF800012345678ull);
	assert_int_equal(c.limit, 0x67);
	assert_int_equal(c.type, VMEM_SEG_SYS_TSS_AVAIL);
	assert_false(c.s);
	assert_true(c.p);
}

/* A code/data descriptor is never 16 bytes; the upper half's type must be 0. */
static void decode16_rejects(void **state)
{
	(void)state;
	vmem_seg_cache c = { .limit = 0x1234 };
	const uint64_t data[2] = { 0x00CF92000000FFFFull, 0 };
	const uint64_t bad_upper[2] = { 0x1200893456780067ull, 1ull << 40 };
	assert_int_equal(vmem_seg_desc_decode16(data, &c), VMEM_E_INVAL);
	assert_int_equal(vmem_seg_desc_decode16(bad_upper, &c), VMEM_E_INVAL);
	assert_int_equal(c.limit, 0x1234); /* unchanged */
	assert_int_equal(vmem_seg_desc_decode(0, NULL), VMEM_E_INVAL);
}

/* Encode is the inverse of decode for every encodable descriptor. */
static void encode_roundtrip(void **state)
{
	(void)state;
	static const uint64_t ds[] = {
		0x00CF9A000000FFFFull, 0x125AD6345678BCDEull, 0x00AF9B000000FFFFull,
		0x0080920000000000ull, 0xFFFFFFFFFFFFFFFFull, 0x0000000000000000ull,
	};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
		vmem_seg_cache c;
		uint64_t out = 0;
		vmem_seg_desc_decode(ds[i], &c);
		assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_OK);
		assert_int_equal(out, ds[i]);
	}
	const uint64_t d16[2] = { 0x1200893456780067ull, 0x00000000FFFF8000ull };
	uint64_t o16[2];
	vmem_seg_cache c;
	vmem_seg_desc_decode16(d16, &c);
	assert_int_equal(vmem_seg_desc_encode16(&c, o16), VMEM_OK);
	assert_int_equal(o16[0], d16[0]);
	assert_int_equal(o16[1], d16[1]);
}

/* Caches with no exact 8-byte encoding are refused and *out is left alone. */
static void encode_rejects(void **state)
{
	(void)state;
	uint64_t out = 0x5555;
	vmem_seg_cache c = { .limit = 0x1000, .g = true, .s = true }; /* G=1 needs limit[11:0] = 0xFFF */
	assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_E_INVAL);
	c = (vmem_seg_cache){ .limit = 0x100000, .s = true }; /* G=0: 20 bits only */
	assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_E_INVAL);
	c = (vmem_seg_cache){ .base = 0x100000000ull, .s = true }; /* base above 4 GiB */
	assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_E_INVAL);
	c = (vmem_seg_cache){ .type = 16, .s = true };
	assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_E_INVAL);
	c = (vmem_seg_cache){ .dpl = 4, .s = true };
	assert_int_equal(vmem_seg_desc_encode(&c, &out), VMEM_E_INVAL);
	assert_int_equal(out, 0x5555);
	uint64_t o16[2] = { 7, 7 };
	c = (vmem_seg_cache){ .base = 0x100000000ull, .s = true }; /* 16-byte form is for system descriptors */
	assert_int_equal(vmem_seg_desc_encode16(&c, o16), VMEM_E_INVAL);
	assert_int_equal(o16[0], 7);
}

/* VMX access rights (SDM 3C 25.4.1): flat accessed code is 0xC09B, 64-bit code 0xA09B. */
static void access_rights(void **state)
{
	(void)state;
	vmem_seg_cache c;
	vmem_seg_desc_decode(0x00CF9B000000FFFFull, &c);
	assert_int_equal(vmem_seg_ar_get(&c), 0xC09B);
	vmem_seg_desc_decode(0x00AF9B000000FFFFull, &c);
	assert_int_equal(vmem_seg_ar_get(&c), 0xA09B);
	c.unusable = true;
	assert_int_equal(vmem_seg_ar_get(&c), 0x1A09B);
	vmem_seg_cache d = { .base = 0x1000, .limit = 0xFFFF };
	assert_int_equal(vmem_seg_ar_set(&d, 0x10F3), VMEM_OK); /* AVL, P, DPL3, S, type 3 */
	assert_int_equal(d.type, 3);
	assert_int_equal(d.dpl, 3);
	assert_true(d.s && d.p && d.avl);
	assert_false(d.l || d.db || d.g || d.unusable);
	assert_int_equal(d.base, 0x1000); /* untouched */
	assert_int_equal(vmem_seg_ar_set(&d, 0x1F3), VMEM_E_INVAL); /* bit 8 reserved */
	assert_int_equal(vmem_seg_ar_set(&d, 0x200F3), VMEM_E_INVAL); /* bit 17 reserved */
	assert_int_equal(d.type, 3);
}

/* SDM 9.1.1 Table 9-1 / 20.1.1: real-mode base = selector * 16, limit 0xFFFF. */
static void init_real(void **state)
{
	(void)state;
	vmem_seg_cache c;
	vmem_seg_init_real(&c, VMEM_SREG_DS, 0x1234);
	assert_int_equal(c.base, 0x12340);
	assert_int_equal(c.limit, 0xFFFF);
	assert_int_equal(c.selector, 0x1234);
	assert_true(c.p && c.s);
	assert_int_equal(c.type, 3);
}

/* SDM 3.5.1: descriptor address = table base + index*8; all 8 bytes within the limit. */
static void locate(void **state)
{
	(void)state;
	vmem_seg_env env = { .gdt_base = 0x1000, .gdt_limit = 0x3F, .ldt_base = 0x8000,
			     .ldt_limit = 0x17, .ldt_usable = true, .mode = VMEM_SEG_PROT };
	vmem_seg_result r;
	assert_int_equal(vmem_seg_locate(&env, 0x10, &r), VMEM_OK);
	assert_int_equal(r.status, VMEM_SEG_OK);
	assert_int_equal(r.linear, 0x1010);
	vmem_seg_locate(&env, 0x3B, &r); /* index 7, RPL 3: bytes 0x38..0x3F, last one in */
	assert_int_equal(r.status, VMEM_SEG_OK);
	assert_int_equal(r.linear, 0x1038);
	vmem_seg_locate(&env, 0x40, &r); /* index 8: past the limit */
	assert_int_equal(r.status, VMEM_SEG_FAULT);
	assert_int_equal(r.vector, VMEM_SEG_VEC_GP);
	assert_int_equal(r.error_code, 0x40);
	vmem_seg_locate(&env, 0x14, &r); /* LDT index 2 */
	assert_int_equal(r.linear, 0x8010);
	env.ldt_usable = false;
	vmem_seg_locate(&env, 0x14, &r); /* no LDT: #GP(sel) */
	assert_int_equal(r.status, VMEM_SEG_FAULT);
	assert_int_equal(r.error_code, 0x14);
	vmem_seg_locate(&env, 0x0003, &r); /* null: no descriptor */
	assert_int_equal(r.error_code, 0);
	assert_int_equal(r.vector, VMEM_SEG_VEC_GP);
	env.mode = VMEM_SEG_REAL;
	assert_int_equal(vmem_seg_locate(&env, 0x10, &r), VMEM_E_INVAL);
}

/* IA-32e mode, compatibility mode included: GDTR and LDTR hold 64-bit bases
 * (SDM vol. 3A 2.4.1, 2.4.2, 3.5.2), so a compat-mode MOV DS reads its
 * descriptor at the full 64-bit address (a 64-bit kernel's GDT sits high). */
static void locate_ia32e(void **state)
{
	(void)state;
	vmem_seg_env env = { .gdt_base = 0xFFFFFE0000001000ull, .gdt_limit = 0x7F,
			     .ldt_base = 0xFFFF888000002000ull, .ldt_limit = 0x17, .ldt_usable = true,
			     .mode = VMEM_SEG_COMPAT };
	vmem_seg_result r;
	assert_int_equal(vmem_seg_locate(&env, 0x23, &r), VMEM_OK); /* index 4, RPL 3 */
	assert_int_equal(r.status, VMEM_SEG_OK);
	assert_int_equal(r.linear, 0xFFFFFE0000001020ull);
	vmem_seg_locate(&env, 0x14, &r); /* LDT index 2 */
	assert_int_equal(r.linear, 0xFFFF888000002010ull);
	env.mode = VMEM_SEG_LONG;
	vmem_seg_locate(&env, 0x23, &r);
	assert_int_equal(r.linear, 0xFFFFFE0000001020ull);
	/* Legacy protected mode: GDTR.base is 32 bits; the sum wraps at 4 GiB (SDM 2.4.1). */
	env.mode = VMEM_SEG_PROT;
	env.gdt_base = 0xFFFFFFF8ull;
	vmem_seg_locate(&env, 0x10, &r);
	assert_int_equal(r.linear, 0x8);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decode_flat_code),
		cmocka_unit_test(decode_every_field),
		cmocka_unit_test(decode_long_code),
		cmocka_unit_test(decode_granularity),
		cmocka_unit_test(decode16_tss),
		cmocka_unit_test(decode16_rejects),
		cmocka_unit_test(encode_roundtrip),
		cmocka_unit_test(encode_rejects),
		cmocka_unit_test(access_rights),
		cmocka_unit_test(init_real),
		cmocka_unit_test(locate),
		cmocka_unit_test(locate_ia32e),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
