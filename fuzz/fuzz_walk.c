/* fuzz_walk: libFuzzer target (and replay driver) decoding bytes into registers + guest tables + one access; vmem_walk must agree with ref_walk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_bytes.h"
#include "ref_diff.h"
#include "ref_walk.h"

/* Input layout (little-endian; short input reads as zero):
 *   0      bits 5:0 mode (value % 5: none, 32-bit, PAE, 4-level, 5-level); bit 6: MMU reached through
 *          vmem_mmu_set_regs; bit 7: unbacked memory is an error, not zero
 *   1      bit 0 CR0.WP, 1 CR4.PSE, 2 CR4.SMEP, 3 CR4.SMAP, 4 CR4.PKE, 5 EFER.NXE, 6 gbpages, 7 CR4.PGE
 *   2      bits 5:0 MAXPHYADDR = 32 + value % 21; bit 6: walk without a trace (the library's
 *          fast path); bit 7: one RAM slot per page instead of one for all 16 KiB
 *   3      bits 1:0 access (0 read, 1 write, 2 fetch, 3 read), 2 CPL 3, 3 implicit, 4 EFLAGS.AC,
 *          5 VMEM_WALK_NO_AD, 6 through vmem_walk_batch, 7 PAE: PDPTEs loaded from memory (MOV CR3)
 *   4..7   PKRU
 *   8..15  linear address
 *   16..23 CR3 (cut to the mode's width)
 *   24..55 the four PAE PDPTE registers
 *   56..   records of 10 bytes: u16 slot, u64 value: the 8-byte word at guest-physical
 *          (slot % 2048) * 8 in the 16 KiB of RAM at 0..0x3fff. */
#define HDR 56
#define RAM_PAGES 4

static diff_env env;
static bool env_ready;
static bool verbose; /* replay driver -v: print each input's reference answer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR];
	memset(h, 0, sizeof(h));
	memcpy(h, data, size < HDR ? size : HDR);

	if (!env_ready) {
		if (!diff_env_init(&env))
			abort();
		env_ready = true;
	}
	diff_env_reset(&env);
	for (unsigned p = 0; p < RAM_PAGES; p++)
		diff_env_add_page(&env, (uint64_t)p << 12);
	env.miss_zero = !(h[0] & 0x80);
	env.coalesce = !(h[2] & 0x80);
	for (size_t off = HDR; off + 10 <= size; off += 10) {
		uint64_t slot = fuzz_le(data + off, 2) % (RAM_PAGES * 512);
		diff_env_store(&env, slot * 8, 8, fuzz_le(data + off + 2, 8));
	}

	unsigned mode = (h[0] & 0x3f) % 5;
	unsigned f = h[1];
	unsigned m = 32 + (h[2] & 0x3f) % 21;
	ref_cpu cpu;
	memset(&cpu, 0, sizeof(cpu));
	cpu.maxphyaddr = m;
	cpu.gbpages = f & 0x40;
	cpu.cr0 = 0x11 | ((f & 1) ? REF_CR0_WP : 0) | (mode ? REF_CR0_PG : 0);
	cpu.cr4 = ((f & 2) ? REF_CR4_PSE : 0) | ((f & 4) ? REF_CR4_SMEP : 0) |
		  ((f & 8) ? REF_CR4_SMAP : 0) | ((f & 16) ? REF_CR4_PKE : 0) | ((f & 0x80) ? (1ull << 7) : 0);
	cpu.efer = (f & 32) ? REF_EFER_NXE : 0;
	if (mode >= 2)
		cpu.cr4 |= REF_CR4_PAE;
	if (mode >= 3)
		cpu.efer |= 0x500;                        /* LME | LMA */
	if (mode == 4)
		cpu.cr4 |= REF_CR4_LA57;
	cpu.pkru = (uint32_t)fuzz_le(h + 4, 4);
	cpu.cr3 = fuzz_le(h + 16, 8);
	cpu.cr3 &= mode >= 3 ? ((1ull << m) - 1) & ~0xfe7ull : 0xffffffe7ull; /* no PCID: keep PWT/PCD */
	for (unsigned i = 0; i < 4; i++)
		cpu.pdpte[i] = fuzz_le(h + 24 + 8 * i, 8);

	ref_access acc;
	memset(&acc, 0, sizeof(acc));
	acc.la = fuzz_le(h + 8, 8);
	acc.write = (h[3] & 3) == 1;
	acc.fetch = (h[3] & 3) == 2;
	acc.cpl3 = h[3] & 4;
	acc.implicit = !acc.fetch && (h[3] & 8);
	acc.ac = h[3] & 16;
	unsigned flags = ((h[3] & 32) ? DIFF_NO_AD : 0) | ((h[3] & 64) ? DIFF_BATCH : 0) |
			 ((h[3] & 128) ? DIFF_LOAD_PDPTES : 0) | ((h[0] & 64) ? DIFF_SET_REGS : 0) |
			 ((h[2] & 64) ? DIFF_NO_TRACE : 0);

	static char why[8192];
	ref_result r;
	if (!diff_run(&env, &cpu, &acc, flags, why, sizeof(why), &r)) {
		fputs(why, stderr);
		abort();
	}
	if (verbose)
		printf("  mode %u: status %d gpa %#llx size %#llx ec %#x level %u\n", mode, r.status,
		       (unsigned long long)r.gpa, (unsigned long long)r.page_size, r.error_code, r.level);
	return 0;
}

#ifdef VMEM_FUZZ_REPLAY
/* Replay driver: run every file named on the command line once. */
int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = true;
			continue;
		}
		if (verbose)
			printf("%s\n", argv[i]);
		FILE *fp = fopen(argv[i], "rb");
		if (!fp) {
			fprintf(stderr, "fuzz_walk_replay: cannot open %s\n", argv[i]);
			return 2;
		}
		static uint8_t buf[1 << 16];
		size_t len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	if (env_ready)
		diff_env_fini(&env);
	printf("%d passed, 0 failed\n", n);
	return n ? 0 : 1;
}
#endif
