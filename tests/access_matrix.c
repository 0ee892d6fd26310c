/* access_matrix: every PTE/PDE flag x control-register x access combination (after kvm-unit-tests x86/access.c), library vs reference. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/ref_diff.h"
#include "ref/ref_walk.h"

/* Usage: access_matrix [--full] [--stride N] [--offset N] [--verbose]
 * Default: every STRIDE-th legal combination (a fixed sample for "unit").
 * --full: all of them ("matrix-full"). */
#define DEFAULT_STRIDE 1009u

/* Guest layout: one table page per level, fixed. */
#define PML5_GPA 0x1000ull
#define PML4_GPA 0x2000ull
#define PDPT_GPA 0x3000ull
#define PD_GPA   0x4000ull
#define PT_GPA   0x5000ull
#define FRAME_4K 0x0abcd000ull  /* the PTE's page */
#define FRAME_2M 0x12200000ull  /* the large PDE's page */
#define MAXPHY   36             /* bit 36 and bit 51 are both above MAXPHYADDR */

/* Entry flag indexes, the order the loops enumerate them in. */
enum { F_P, F_RW, F_US, F_A, F_D, F_NX, F_PS };
static const uint64_t flag_bit[] = { 1ull << 0, 1ull << 1, 1ull << 2, 1ull << 5, 1ull << 6, 1ull << 63, 1ull << 7 };
/* Reserved-bit choices: none, bit 51, bit 36, bit 13 (large PDE only). */
static const uint64_t rsvd_bit[] = { 0, 1ull << 51, 1ull << 36, 1ull << 13 };

enum mode { M_4LEVEL, M_5LEVEL, M_PAE, M_32, M_32PSE, M_COUNT };
static const char *const mode_name[] = { "4-level", "5-level", "PAE", "32-bit", "32-bit PSE" };
#define IS32(m) ((m) == M_32 || (m) == M_32PSE)
/* 32-bit paging: reserved-bit choices of a 4-MByte PDE (MAXPHYADDR 36: bits 21, 20:17). */
static const uint64_t rsvd_bit32[] = { 0, 1ull << 21, 1ull << 17, 1ull << 20 };
#define FRAME_4M 0x12c02000ull  /* bit 13 = PA bit 32 (PSE-36) */

static uint64_t flags_to_bits(unsigned f, unsigned n)
{
	uint64_t b = 0;
	for (unsigned i = 0; i < n; i++)
		if (f & (1u << i))
			b |= flag_bit[i];
	return b;
}

struct stats {
	unsigned long long seq, run, pass, fail;
	unsigned long long stride, offset;
	bool verbose;
	FILE *log;
};

static void run_case(struct stats *st, diff_env *env, enum mode mode, uint64_t pde, uint64_t pte,
		     unsigned envbits, unsigned accbits)
{
	bool wp = envbits & 1, nxe = envbits & 2, smep = envbits & 4, smap = envbits & 8;
	bool pke = envbits & 16, ad = envbits & 32, wd = envbits & 64;
	ref_cpu cpu;
	ref_access acc;
	memset(&cpu, 0, sizeof(cpu));
	memset(&acc, 0, sizeof(acc));

	cpu.cr0 = 0x80000011ull | (wp ? REF_CR0_WP : 0);             /* PG | ET | PE */
	cpu.cr4 = (IS32(mode) ? 0 : REF_CR4_PAE) | (mode == M_32PSE ? REF_CR4_PSE : 0) | (smep ? REF_CR4_SMEP : 0) | (smap ? REF_CR4_SMAP : 0) |
		  (pke ? REF_CR4_PKE : 0) | (mode == M_5LEVEL ? REF_CR4_LA57 : 0);
	cpu.efer = (mode == M_PAE || IS32(mode) ? 0 : 0x500ull) | (nxe ? REF_EFER_NXE : 0); /* LME | LMA */
	/* Key 1 is the page's; every other key denies everything, so a wrong key index shows. */
	cpu.pkru = 0xfffffff3u | (ad ? 1u << 2 : 0) | (wd ? 1u << 3 : 0);
	cpu.maxphyaddr = MAXPHY;
	cpu.gbpages = true;

	/* Upper levels: present, writable, user, not yet accessed. */
	const uint64_t up = 0x7;
	uint64_t la;
	diff_env_store(env, PML5_GPA + 8 * 0x0b, 8, PML4_GPA | up);
	diff_env_store(env, PML4_GPA + 8 * 0xa5, 8, PDPT_GPA | up);
	if (IS32(mode)) {
		cpu.cr3 = PD_GPA;
		la = (0x1d7ull << 22) | (0x155ull << 12) | 0x678;
	} else if (mode == M_PAE) {
		/* PAE: PDPTE register 2 (no R/W, U/S: those bits are reserved in a PDPTE). */
		diff_env_store(env, PDPT_GPA + 8 * 2, 8, PD_GPA | 1);
		cpu.cr3 = PDPT_GPA;
		cpu.pdpte[2] = PD_GPA | 1;
		la = (2ull << 30) | (0xd7ull << 21) | (0x155ull << 12) | 0x678;
	} else {
		diff_env_store(env, PDPT_GPA + 8 * 0x1c3, 8, PD_GPA | up);
		cpu.cr3 = mode == M_5LEVEL ? PML5_GPA : PML4_GPA;
		la = (0xa5ull << 39) | (0x1c3ull << 30) | (0xd7ull << 21) | (0x155ull << 12) | 0x678;
		if (mode == M_5LEVEL)
			la |= 0x0bull << 48;
	}
	if (IS32(mode)) {
		diff_env_store(env, PD_GPA + 4 * 0x1d7, 4, pde);
		diff_env_store(env, PT_GPA + 4 * 0x155, 4, pte);
	} else {
		diff_env_store(env, PD_GPA + 8 * 0xd7, 8, pde);
		diff_env_store(env, PT_GPA + 8 * 0x155, 8, pte);
	}

	acc.la = la;
	acc.cpl3 = accbits & 1;
	acc.implicit = accbits & 2;
	acc.ac = accbits & 4;
	acc.write = (accbits >> 3) == 1;
	acc.fetch = (accbits >> 3) == 2;

	char why[8192];
	ref_result r;
	/* Twice, as access.c does: the second time sees the flags the first set.
	 * The second walk (and every other first one) goes without a trace: that is
	 * when the library may take its fast path (tables in one slot, A/D set). */
	for (int pass = 0; pass < 2; pass++) {
		unsigned flags = (pass == 1 || (st->seq & 1)) ? DIFF_NO_TRACE : 0;
		bool ok = diff_run(env, &cpu, &acc, flags, why, sizeof(why), &r);
		st->run++;
		if (ok) {
			st->pass++;
		} else {
			st->fail++;
			if (st->fail <= 20 || st->verbose)
				printf("case %llu (%s, pass %d):\n%s", st->seq, mode_name[mode], pass + 1, why);
			if (st->log && st->fail <= 200)
				fprintf(st->log, "access_matrix case %llu (%s, pass %d):\n%s\n", st->seq,
					mode_name[mode], pass + 1, why);
		}
		if (!ok || r.status != REF_OK)
			break;
	}
}

/* Register (envb) x access (accb) combinations, filtered as access.c does. */
struct ea_list {
	unsigned n;
	struct {
		uint8_t envb, accb;
	} e[128 * 24];
};
static struct ea_list legal_ea[2]; /* [0]: IA-32e paging, [1]: PAE (no protection keys) */

static void build_legal_ea(void)
{
	for (int pae = 0; pae < 2; pae++) {
		struct ea_list *l = &legal_ea[pae];
		l->n = 0;
		for (unsigned envb = 0; envb < 128; envb++) {
			bool pke = envb & 16, ad = envb & 32, wd = envb & 64, smap = envb & 8;
			if (!pke && (ad || wd))
				continue;           /* PKRU only matters with CR4.PKE */
			if (pae && pke)
				continue;           /* no protection keys in PAE paging */
			for (unsigned accb = 0; accb < 24; accb++) {
				bool implicit = accb & 2, ac = accb & 4;
				bool fetch = (accb >> 3) == 2;
				if (fetch && implicit)
					continue;       /* implicit accesses are data accesses */
				if (ac && (!smap || fetch))
					continue;       /* EFLAGS.AC only matters to SMAP data accesses */
				if (implicit && !(accb & 1) && !smap)
					continue;       /* implicit at CPL 0 differs from explicit only under SMAP */
				l->e[l->n].envb = (uint8_t)envb;
				l->e[l->n].accb = (uint8_t)accb;
				l->n++;
			}
		}
	}
}

/* Enumerate the legal combinations; run those selected by stride/offset. */
static void matrix(struct stats *st, diff_env *env)
{
	for (int mode = 0; mode < M_COUNT; mode++)
	for (unsigned pdef = 0; pdef < 128; pdef++)
	for (unsigned pder = 0; pder < 4; pder++) {
		bool pde_p = pdef & (1u << F_P), pde_ps = pdef & (1u << F_PS);
		bool is32 = IS32(mode);
		bool pde_large = pde_ps && mode != M_32;    /* PS is ignored without CR4.PSE */
		if (!pde_p && (pdef != 0 || pder != 0))
			continue;                       /* not present: nothing else matters */
		if (is32 && (pdef & (1u << F_NX)))
			continue;                       /* no XD bit in 32-bit entries */
		if (pder == 3 && !pde_large && !is32)
			continue;                       /* bit 13 is reserved only in a large PDE */
		if (is32 && pder && !pde_large)
			continue;                       /* 32-bit: reserved bits only in a 4-MByte PDE */
		for (unsigned ptef = 0; ptef < 64; ptef++)
		for (unsigned pter = 0; pter < 3; pter++) {
			bool has_pte = pde_p && !pde_large;
			if (!has_pte && (ptef || pter))
				continue;                   /* no PTE: its bits are not used */
			if (pder && pter)
				continue;                   /* one reserved bit at a time */
			if (is32 && ((ptef & (1u << F_NX)) || pter))
				continue;                   /* 32-bit PTE: no XD, no reserved bits */
			uint64_t key = (mode == M_PAE || is32) ? 0 : 1ull << 59;  /* protection key 1 in the leaf */
			uint64_t pde, pte;
			if (is32) {
				pde = flags_to_bits(pdef, 7) | rsvd_bit32[pder] | (pde_large ? FRAME_4M : PT_GPA);
				pte = flags_to_bits(ptef, 6) | FRAME_4K;
			} else {
				pde = flags_to_bits(pdef, 7) | rsvd_bit[pder] |
				      (pde_large ? FRAME_2M | key : PT_GPA);
				pte = flags_to_bits(ptef, 6) | rsvd_bit[pter] | FRAME_4K | key;
			}
			if (!pde_p)
				pde = 0;
			/* The register x access combinations legal for this mode, run by stride. */
			const struct ea_list *l = &legal_ea[mode == M_PAE];
			unsigned long long base = st->seq;
			unsigned long long first = (st->offset + st->stride - base % st->stride) % st->stride;
			for (unsigned long long i = first; i < l->n; i += st->stride)
				run_case(st, env, (enum mode)mode, pde, pte, l->e[i].envb, l->e[i].accb);
			st->seq += l->n;
		}
	}
}

int main(int argc, char **argv)
{
	struct stats st;
	memset(&st, 0, sizeof(st));
	st.stride = DEFAULT_STRIDE;
	st.offset = 7;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--full")) {
			st.stride = 1;
			st.offset = 0;
		} else if (!strcmp(argv[i], "--stride") && i + 1 < argc) {
			st.stride = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--offset") && i + 1 < argc) {
			st.offset = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--log") && i + 1 < argc) {
			st.log = fopen(argv[++i], "w");
		} else if (!strcmp(argv[i], "--verbose")) {
			st.verbose = true;
		} else {
			fprintf(stderr, "usage: %s [--full] [--stride N] [--offset N] [--log FILE] [--verbose]\n", argv[0]);
			return 2;
		}
	}
	if (st.stride == 0 || st.offset >= st.stride) {
		fprintf(stderr, "access_matrix: need stride > 0 and offset < stride\n");
		return 2;
	}

	diff_env env;
	if (!diff_env_init(&env))
		return 2;
	env.miss_zero = true;
	env.coalesce = true;          /* the five table pages form one RAM slot */
	const uint64_t pages[] = { PML5_GPA, PML4_GPA, PDPT_GPA, PD_GPA, PT_GPA };
	for (unsigned i = 0; i < 5; i++)
		diff_env_add_page(&env, pages[i]);

	build_legal_ea();
	matrix(&st, &env);
	diff_env_fini(&env);
	if (st.log)
		fclose(st.log);
	printf("%llu legal combinations, %llu walks compared: %llu passed, %llu failed\n",
	       st.seq, st.run, st.pass, st.fail);
	return st.fail || st.run == 0 ? 1 : 0;
}
