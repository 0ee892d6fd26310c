/* seg_oracle_check.c: check libvmem's segmentation (vmem_seg_load, vmem_seg_load_cs, vmem_seg_translate) against what Bochs did in the segmentation scenarios (vtx/oracle_seg.c), field by field; the format is in docs/vtx.md, "The segmentation scenarios".
 * usage: seg_oracle_check FILE.jsonl   (exit 0: every scenario agrees, after the known-difference table below) */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libvmem/seg.h>

/*
 * Known differences between Bochs 2.7 and the SDM in these scenarios, each
 * recognised by its exact shape and counted in the summary (as vtx/bochs_kd.c
 * does for the paging oracles); anything else that differs fails.
 *
 * KDS1  64-bit mode, MOV SS with a null selector at CPL 1 or 2 (RPL = CPL:
 *       allowed, SDM vol. 2 MOV). SS becomes unusable, and its DPL is still
 *       the CPL: "The value of the DPL field for SS is always equal to the
 *       logical processor's current privilege level" (SDM vol. 3C 25.4.1,
 *       24.4.1 in older editions) and a VM exit saves the DPL of an unusable
 *       SS (28.3.2). Bochs 2.7's load_null_selector (cpu/segment_ctrl_pro.cc)
 *       sets the cache's DPL to 0 whatever the CPL (Bochs keeps the CPL in
 *       CS.RPL), so its VM exit saves SS access rights with DPL 0. The check
 *       requires exactly that (DPL 0, unusable, libvmem's DPL = CPL 1 or 2)
 *       and takes libvmem's answer, the SDM's.
 */
/*
 * KDS2  Not a departure: the SDM leaves it to the implementation. An access
 *       through an expand-up data segment (or readable code) with base 0 and
 *       limit 0xFFFFFFFF, outside 64-bit mode, whose first byte is within the
 *       limit and whose last is not: SDM vol. 3A 5.3 lists it as #GP(0)
 *       (#SS(0) through SS), "When the effective limit is FFFFFFFFH (4
 *       GBytes), these accesses may or may not cause the indicated
 *       exceptions. Behavior is implementation-specific". libvmem reports the
 *       fault (seg.h); Bochs 2.7's read_virtual_checks/write_virtual_checks
 *       (cpu/access.cc) mark such a segment SegAccessROK4G/WOK4G and skip
 *       the limit check, and the linear address wraps mod 2^32. Seen on POP
 *       with ESP = 0xFFFFFFFD..0xFFFFFFFF (the flat SS VM entry loads): Bochs
 *       page-faults at the wrapped linear address instead of #SS(0). The
 *       check requires exactly that shape (libvmem's fault a limit fault,
 *       Bochs' a #PF with CR2 a byte of the access mod 2^32).
 */
/*
 * KDS3  POP to a segment register reads the operand size from the stack:
 *       "DEST <- SS:ESP (* Copy a doubleword *)" for a 32-bit operand, a
 *       quadword in 64-bit mode (SDM vol. 2 POP, Operation), so 4 or 8 bytes
 *       must pass the SS limit (canonical check in 64-bit mode) before the
 *       selector is loaded. Bochs 2.7's POP32_Sw and POP64_Sw (cpu/stack32.cc,
 *       cpu/stack64.cc) read only the 2-byte selector (stack_read_word). Where
 *       the operand-size read faults and the 2-byte one does not, Bochs goes
 *       on: it page-faults at ESP/RSP (unmapped: CR2 = the stack pointer), or
 *       loads the selector in the 2 bytes there (the last canonical page: the
 *       window's pattern) and faults as libvmem's load of that selector does.
 *       The check requires exactly that and takes libvmem's answer, the SDM's.
 */
static unsigned kds1, kds2, kds3;

struct line {
	const char *s;
	const char *bochs; /* the "bochs" object: Bochs' answers, after the inputs */
};

/* Where the value of "key": starts in [from, ...), NULL if absent. */
static const char *value_of(const char *from, const char *key)
{
	char k[48];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *p = strstr(from, k);
	return p ? p + strlen(k) : NULL;
}

/* A quoted hex string or a decimal number. */
static bool get_u64(const char *from, const char *key, uint64_t *v)
{
	const char *p = value_of(from, key);
	if (!p)
		return false;
	p += *p == '"';
	char *end;
	*v = strtoull(p, &end, 0);
	return end != p;
}

static bool get_str(const char *from, const char *key, char *out, size_t n)
{
	const char *p = value_of(from, key);
	if (!p || *p++ != '"')
		return false;
	size_t i = 0;
	for (; p[i] && p[i] != '"' && i + 1 < n; i++)
		out[i] = p[i];
	out[i] = 0;
	return true;
}

static uint8_t pattern(uint64_t la)
{
	return (uint8_t)((la * 0x9E3779B97F4A7C15ull) >> 57);
}

static const char *const sreg_names[VMEM_SREG_COUNT] = { "es", "cs", "ss", "ds", "fs", "gs" };

static int sreg_of(const char *n)
{
	for (int i = 0; i < VMEM_SREG_COUNT; i++)
		if (!strcmp(n, sreg_names[i]))
			return i;
	return -1;
}

/* The register as VM entry left it (vtx_vmcs_setup): flat, DPL and RPL = CPL; CS 64-bit in 64-bit mode, else 32-bit. */
static void initial_cache(vmem_sreg sreg, unsigned cpl, bool m64, vmem_seg_cache *c)
{
	uint32_t ar = (sreg == VMEM_SREG_CS ? (m64 ? 0xa09bu : 0xc09bu) : 0xc093u) | cpl << 5;
	memset(c, 0, sizeof(*c));
	vmem_seg_ar_set(c, ar);
	c->base = 0;
	c->limit = 0xffffffffu;
	c->selector = (uint16_t)((sreg == VMEM_SREG_CS ? 0x08 : 0x10) | cpl);
}

static unsigned failures;
static char cur_id[256];

static void fail(const char *what, uint64_t bochs, uint64_t lib)
{
	failures++;
	printf("FAIL %s\n  %s: Bochs 0x%" PRIx64 ", libvmem 0x%" PRIx64 "\n", cur_id, what, bochs, lib);
}

static void fail_text(const char *what, const char *bochs, const char *lib)
{
	failures++;
	printf("FAIL %s\n  %s: Bochs %s, libvmem %s\n", cur_id, what, bochs, lib);
}

/* libvmem faulted in `phase` (load or access): Bochs must have too, with the same vector and error code. */
static void same_fault(const char *phase, const char *result, uint64_t b_vec, uint64_t b_err,
		       const vmem_seg_result *res)
{
	char want[24], what[40];
	snprintf(want, sizeof(want), "%s_fault", phase);
	if (strcmp(result, want) != 0) {
		snprintf(what, sizeof(what), "%s fault %u(0x%x)", phase, res->vector, res->error_code);
		fail_text(phase, result, what);
		return;
	}
	snprintf(what, sizeof(what), "%s fault vector", phase);
	if (b_vec != res->vector)
		fail(what, b_vec, res->vector);
	snprintf(what, sizeof(what), "%s fault error code", phase);
	if (b_err != res->error_code)
		fail(what, b_err, res->error_code);
}

/* KDS2's shape: libvmem's limit fault on a flat 4 GiB segment (base 0, limit 0xFFFFFFFF, expand-up) whose last
 * byte passes 2^32 - 1, outside 64-bit mode; Bochs page-faulted on a byte of the access, wrapped mod 2^32. */
static bool kds2_shape(const vmem_seg_env *env, const vmem_seg_cache *c, uint64_t off, uint64_t size,
		       const vmem_seg_result *res, const char *bochs)
{
	uint64_t b_vec = 0, cr2 = 0;
	bool expdown = c->s && !(c->type & VMEM_SEG_TYPE_CODE) && (c->type & VMEM_SEG_TYPE_E);
	if (env->mode == VMEM_SEG_LONG || c->unusable || c->base != 0 || c->limit != 0xffffffffu || expdown ||
	    res->status != VMEM_SEG_FAULT || res->error_code != 0 || off + size - 1 <= 0xffffffffu)
		return false;
	if (!get_u64(bochs, "vector", &b_vec) || b_vec != 14 || !get_u64(bochs, "cr2", &cr2))
		return false;
	for (uint64_t i = 0; i < size; i++)
		if (cr2 == ((off + i) & 0xffffffffu))
			return true;
	return false;
}

/* KDS3's shape: the 2-byte read of the selector at rsp passes segmentation; Bochs page-faulted there, or loaded
 * the window pattern's selector and faulted as libvmem's load of it does (a selector past the tables). */
static bool kds3_shape(const vmem_seg_env *env, vmem_sreg sreg, const vmem_seg_cache *ss, uint64_t rsp,
		       const char *bochs)
{
	vmem_seg_result r;
	uint64_t b_vec = 0, b_err = 0, cr2 = 0;
	if (vmem_seg_translate(env, ss, VMEM_SREG_SS, rsp, 2, VMEM_ACC_READ, &r) || r.status != VMEM_SEG_OK ||
	    !get_u64(bochs, "vector", &b_vec))
		return false;
	if (b_vec == 14)
		return get_u64(bochs, "cr2", &cr2) && cr2 == r.linear;
	if (r.linear < 0x7ffffffff000ull || r.linear + 1 >= 1ull << 47)
		return false;
	uint16_t sel = (uint16_t)(pattern(r.linear) | pattern(r.linear + 1) << 8);
	vmem_seg_cache c = *ss;
	vmem_seg_result ld;
	vmem_seg_env e = *env;
	get_u64(bochs, "error_code", &b_err);
	/* Only a selector past both tables: its descriptor (not recorded) is never read. */
	if (vmem_seg_locate(&e, sel, &ld) || ld.status != VMEM_SEG_FAULT ||
	    vmem_seg_load(&e, sreg, sel, 0, &c, &ld) || ld.status != VMEM_SEG_FAULT)
		return false;
	return ld.vector == b_vec && ld.error_code == b_err;
}

/* Field by field; returns true if the scenario agrees. */
static bool check(const struct line *l)
{
	unsigned before = failures;
	uint64_t cpl, sel, desc, off, size, v;
	char mode[16], sregn[4], op[8], result[16];
	if (!get_str(l->s, "mode", mode, sizeof(mode)) || !get_u64(l->s, "cpl", &cpl) ||
	    !get_str(l->s, "sreg", sregn, sizeof(sregn)) || !get_str(l->s, "op", op, sizeof(op)) ||
	    !get_u64(l->s, "size", &size) || !get_u64(l->s, "selector", &sel) || !get_u64(l->s, "desc", &desc) ||
	    !get_u64(l->s, "offset", &off) || !get_str(l->bochs, "result", result, sizeof(result)) || sreg_of(sregn) < 0) {
		fail_text("line", "unreadable", "-");
		return false;
	}
	bool m64 = !strcmp(mode, "64-bit"), compat = !strcmp(mode, "compat");
	vmem_sreg sreg = (vmem_sreg)sreg_of(sregn);
	vmem_seg_env env = { .mode = m64 ? VMEM_SEG_LONG : compat ? VMEM_SEG_COMPAT : VMEM_SEG_PROT, .cpl = (uint8_t)cpl };
	char load[8] = "mov";
	get_str(l->s, "load", load, sizeof(load));
	get_u64(l->s, "gdt_base", &env.gdt_base);
	if (get_u64(l->s, "gdt_limit", &v))
		env.gdt_limit = (uint32_t)v;
	env.ldt_usable = get_u64(l->s, "ldt_base", &env.ldt_base);
	if (get_u64(l->s, "ldt_limit", &v))
		env.ldt_limit = (uint32_t)v;

	vmem_seg_cache c;
	vmem_seg_result res;
	vmem_err err;
	uint64_t b_vec = 0, b_err = 0, b_desc = 0;
	get_u64(l->bochs, "vector", &b_vec);
	get_u64(l->bochs, "error_code", &b_err);
	get_u64(l->bochs, "desc_after", &b_desc);
	uint64_t rsp, pop_size;
	if (!strcmp(load, "pop") && get_u64(l->s, "rsp", &rsp) && get_u64(l->s, "pop_size", &pop_size)) {
		/* POP reads the selector through SS first (SDM vol. 2 POP): its faults come before the load's. */
		initial_cache(VMEM_SREG_SS, (unsigned)cpl, m64, &c);
		err = vmem_seg_translate(&env, &c, VMEM_SREG_SS, rsp, (unsigned)pop_size, VMEM_ACC_READ, &res);
		if (err) {
			fail_text("stack read", result, vmem_strerror(err));
			return false;
		}
		if (res.status == VMEM_SEG_FAULT) {
			if (!strcmp(result, "load_fault") && kds3_shape(&env, sreg, &c, rsp, l->bochs))
				kds3++;
			else if (!strcmp(result, "load_fault") && kds2_shape(&env, &c, rsp, pop_size, &res, l->bochs))
				kds2++;
			else
				same_fault("load", result, b_vec, b_err, &res);
			if (b_desc != desc)
				fail("descriptor after a failed stack read", b_desc, desc);
			return failures == before;
		}
	}
	initial_cache(sreg, (unsigned)cpl, m64, &c);
	bool far = sreg == VMEM_SREG_CS;
	err = far ? vmem_seg_load_cs(&env, (uint16_t)sel, desc, off, &c, &res)
			   : vmem_seg_load(&env, sreg, (uint16_t)sel, desc, &c, &res);
	if (err) {
		fail_text("load", result, vmem_strerror(err));
		return false;
	}
	if (res.status == VMEM_SEG_FAULT) {
		same_fault("load", result, b_vec, b_err, &res);
		if (b_desc != desc)
			fail("descriptor after a failed load", b_desc, desc);
		return failures == before;
	}
	if (strcmp(result, "ok") != 0 && strcmp(result, "access_fault") != 0) {
		fail_text("load", result, "ok");
		return false;
	}
	/* A null selector names no descriptor: nothing is read or written (res.desc is 0). */
	uint64_t want_desc = (sel & 0xfffc) ? res.desc : desc;
	if (b_desc != want_desc)
		fail("descriptor after the load (accessed bit)", b_desc, want_desc);
	uint64_t b_sel = 0, b_base = 0, b_limit = 0, b_ar = 0;
	get_u64(l->bochs, "sel_after", &b_sel);
	get_u64(l->bochs, "base_after", &b_base);
	get_u64(l->bochs, "limit_after", &b_limit);
	get_u64(l->bochs, "ar_after", &b_ar);
	if (b_sel != c.selector)
		fail("selector loaded", b_sel, c.selector);
	if (c.unusable) {
		if (!(b_ar & (1u << 16)))
			fail("access rights loaded (unusable)", b_ar, vmem_seg_ar_get(&c));
		/* SDM vol. 3C 28.3.2: of an unusable register a VM exit saves SS's DPL, FS's and GS's base. */
		unsigned b_dpl = (unsigned)(b_ar >> 5) & 3;
		if (sreg == VMEM_SREG_SS && b_dpl != c.dpl) {
			if (m64 && b_dpl == 0 && (c.dpl == 1 || c.dpl == 2) && c.dpl == cpl)
				kds1++;
			else
				fail("DPL of the unusable SS", b_dpl, c.dpl);
		}
		if ((sreg == VMEM_SREG_FS || sreg == VMEM_SREG_GS) && b_base != c.base)
			fail("base of the unusable FS/GS", b_base, c.base);
	} else {
		if (b_base != c.base)
			fail("base loaded", b_base, c.base);
		if (b_limit != c.limit)
			fail("limit loaded", b_limit, c.limit);
		if (b_ar != vmem_seg_ar_get(&c))
			fail("access rights loaded", b_ar, vmem_seg_ar_get(&c));
	}

	unsigned acc = far ? VMEM_ACC_FETCH : !strcmp(op, "write") ? VMEM_ACC_WRITE : VMEM_ACC_READ;
	/* The caller switches between compatibility and 64-bit mode as the new CS.L says (seg.h). */
	if (far && env.mode >= VMEM_SEG_COMPAT)
		env.mode = c.l ? VMEM_SEG_LONG : VMEM_SEG_COMPAT;
	/* 16-bit addressing: the effective address is (DI + disp) mod 2^16 (SDM vol. 1 3.7.5); libvmem's offset is
	 * the effective address, so the caller computes it: seg.h has no address-size input and needs none. */
	uint64_t disp;
	if (get_u64(l->s, "addr_size", &v) && v == 16 && get_u64(l->s, "disp", &disp))
		off = (off + disp) & 0xffff;
	err = vmem_seg_translate(&env, &c, sreg, off, (unsigned)size, acc, &res);
	if (err) {
		fail_text("access", result, vmem_strerror(err));
		return false;
	}
	uint64_t cr2;
	if (res.status == VMEM_SEG_OK && !strcmp(result, "access_fault") && b_vec == 14 && get_u64(l->bochs, "cr2", &cr2)) {
		/* Segmentation passed and paging faulted: CR2 is a byte of the access (the first, or the
		 * start of the second page), which confirms the linear address (SDM vol. 3A 4.7). */
		uint64_t second = (res.linear | 0xfff) + 1;
		if (cr2 != res.linear && !(cr2 == second && second < res.linear + size))
			fail("#PF linear address (CR2)", cr2, res.linear);
		return failures == before;
	}
	if (res.status == VMEM_SEG_FAULT) {
		if (!strcmp(result, "access_fault") && kds2_shape(&env, &c, off, size, &res, l->bochs))
			kds2++;
		else
			same_fault("access", result, b_vec, b_err, &res);
		return failures == before;
	}
	if (strcmp(result, "ok") != 0) {
		char t[64];
		snprintf(t, sizeof(t), "ok at linear 0x%" PRIx64, res.linear);
		fail_text("access", result, t);
		return false;
	}
	uint64_t b_lin = 0, b_n = 0;
	if (acc == VMEM_ACC_READ) {
		uint64_t want = 0;
		for (unsigned i = 0; i < size; i++)
			want |= (uint64_t)pattern(res.linear + i) << (8 * i);
		if (!get_u64(l->bochs, "value", &v) || v != want)
			fail("value read (the pattern at libvmem's linear address)", v, want);
	} else {
		if (!get_u64(l->bochs, "linear", &b_lin) || b_lin != res.linear)
			fail("linear address accessed", b_lin, res.linear);
		if (acc == VMEM_ACC_WRITE && (!get_u64(l->bochs, "written", &b_n) || b_n != size))
			fail("bytes written", b_n, size);
	}
	return failures == before;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seg_oracle_check FILE.jsonl\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "r");
	if (!f) {
		perror(argv[1]);
		return 2;
	}
	char buf[4096];
	unsigned n = 0, passed = 0;
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, "{\"seg\":1,", 9) != 0)
			continue;
		struct line l = { .s = buf, .bochs = strstr(buf, "\"bochs\":{") };
		if (!get_str(buf, "id", cur_id, sizeof(cur_id)) || !l.bochs) {
			printf("FAIL line %u: no id or no bochs object\n", n + 1);
			failures++;
			n++;
			continue;
		}
		n++;
		passed += check(&l);
	}
	fclose(f);
	printf("known Bochs differences: KDS1 %u (the DPL of a null SS at CPL 1-2, 64-bit mode), KDS2 %u (no limit check "
	       "on a flat 4 GiB segment), KDS3 %u (POP Sreg reads 2 bytes)\n", kds1, kds2, kds3);
	printf("%u passed, %u failed\n", passed, n - passed);
	return n && passed == n ? 0 : 1;
}
