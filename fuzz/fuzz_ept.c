/* fuzz_ept: libFuzzer target (and replay driver) decoding bytes into an EPTP, capabilities, EPT tables and one access; vmem_ept_walk must agree with ref_ept_walk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/ept.h>
#include <libvmem/gmem.h>
#include "fuzz_bytes.h"
#include "ref_ept.h"

/* Input layout (little-endian; short input reads as zero):
 *   0      bit 0 5-level, 1 EPTP A/D, 2 EPTP memory type WB (else UC), 3 execute-only cap,
 *          4 1G cap, 5 MBEC, 6 advanced exit info, 7 VMEM_EPT_NO_AD
 *   1      bits 2:0 access kind (value % 6: read, write, fetch, user fetch, guest PS, guest A/D);
 *          bit 3 guest-linear valid; bits 6:4 guest permissions (W, U, X); bit 7: unused
 *   2      MAXPHYADDR = 32 + value % 21
 *   3..10  guest-physical address (cut to the page-walk length)
 *   11..   records of 10 bytes: u16 slot, u64 value: the 8-byte word at host-physical
 *          HOST_BASE + (slot % 2048) * 8. Entries name table pages in that region when their
 *          address bits fall in it; the EPT root is its first page. */
#define HDR 11
#define HOST_BASE 0x100000ull
#define HOST_PAGES 4
#define HOST_SIZE (HOST_PAGES * 4096ull)

static uint8_t lib_ram[HOST_SIZE] __attribute__((aligned(4096)));
static uint8_t ref_ram[HOST_SIZE];

static bool rd(void *ctx, uint64_t hpa, uint64_t *val)
{
	(void)ctx;
	if (hpa < HOST_BASE || hpa - HOST_BASE > HOST_SIZE - 8 || (hpa & 7))
		return false;
	memcpy(val, ref_ram + (hpa - HOST_BASE), 8);
	return true;
}

static bool wr(void *ctx, uint64_t hpa, uint64_t val)
{
	(void)ctx;
	if (hpa < HOST_BASE || hpa - HOST_BASE > HOST_SIZE - 8 || (hpa & 7))
		return false;
	memcpy(ref_ram + (hpa - HOST_BASE), &val, 8);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR];
	memset(h, 0, sizeof(h));
	memcpy(h, data, size < HDR ? size : HDR);
	memset(lib_ram, 0, sizeof(lib_ram));
	for (size_t off = HDR; off + 10 <= size; off += 10) {
		uint64_t slot = fuzz_le(data + off, 2) % (HOST_SIZE / 8);
		uint64_t v = fuzz_le(data + off + 2, 8);
		memcpy(lib_ram + slot * 8, &v, 8);
	}
	memcpy(ref_ram, lib_ram, sizeof(ref_ram));

	vmem_ept_caps caps;
	vmem_ept_caps_init(&caps);
	caps.maxphyaddr = 32 + h[2] % 21;
	caps.exec_only = h[0] & 8;
	caps.gbpages = h[0] & 16;
	caps.mbec = h[0] & 32;
	caps.advanced_info = h[0] & 64;
	unsigned levels = (h[0] & 1) ? 5 : 4;
	uint64_t eptp = HOST_BASE | ((h[0] & 4) ? 6 : 0) | ((uint64_t)(levels - 1) << 3) |
			((h[0] & 2) ? 1u << 6 : 0);
	vmem_ept_mmu *m = NULL;
	if (vmem_ept_mmu_new(NULL, eptp, &caps, &m))
		return 0; /* an EPTP VM entry refuses: nothing to compare */
	vmem_gmem *host = NULL;
	if (vmem_gmem_new(NULL, &host) || vmem_gmem_add_ram(host, HOST_BASE, HOST_SIZE, lib_ram, 0))
		abort();

	unsigned kind = h[1] % 6;
	uint64_t gpa = fuzz_le(h + 3, 8) & ((1ull << (12 + 9 * levels)) - 1);
	vmem_ept_access a = { 0 };
	ref_ept_access ra = { 0 };
	static const uint8_t lib_kind[6] = { VMEM_EPT_READ, VMEM_EPT_WRITE, VMEM_EPT_FETCH,
					     VMEM_EPT_FETCH, VMEM_EPT_PAGING, VMEM_EPT_PAGING_AD };
	static const ref_ept_kind ref_kind[6] = { REF_EPT_READ, REF_EPT_WRITE, REF_EPT_FETCH,
						  REF_EPT_FETCH, REF_EPT_GUEST_PS, REF_EPT_GUEST_AD };
	a.type = lib_kind[kind];
	ra.kind = ref_kind[kind];
	/* Guest permissions only describe a final access's own translation. */
	unsigned gp = (h[1] >> 4) & 7;
	if (kind == 3)
		gp |= VMEM_EPT_GUEST_U;
	if (kind >= 4)
		gp = 0;
	bool linear = (h[1] & 8) || kind >= 4;
	if (linear) {
		a.flags = VMEM_EPT_LINEAR;
		a.linear = ra.linear = fuzz_le(h + 3, 8) ^ 0x5a5a000;
		ra.has_linear = true;
	}
	a.guest_perms = (uint8_t)gp;
	ra.guest_rw = gp & VMEM_EPT_GUEST_W;
	ra.guest_user = gp & VMEM_EPT_GUEST_U;
	ra.guest_nx = !(gp & VMEM_EPT_GUEST_X);
	bool noad = h[0] & 128;

	vmem_ept_result lr;
	vmem_err e = vmem_ept_walk(m, host, gpa, &a, noad ? VMEM_EPT_NO_AD : 0, &lr, NULL);
	ref_ept_cpu cpu = { eptp, caps.maxphyaddr, caps.exec_only, caps.gbpages, caps.advanced_info, caps.mbec };
	ref_ept_mem mem = { rd, wr, NULL };
	ref_ept_result rr;
	ref_ept_walk(&cpu, &mem, gpa, &ra, !noad, &rr);

	bool bad = e != VMEM_OK || lr.status != (unsigned)rr.status;
	if (!bad && lr.status == VMEM_EPT_OK)
		bad = lr.hpa != rr.hpa || lr.page_size != rr.page_size || lr.memtype != rr.memtype ||
		      lr.ipat != rr.ipat;
	if (!bad && lr.status == VMEM_EPT_VIOLATION)
		bad = lr.exit_qual != rr.qual || lr.gpa != rr.gpa ||
		      ((rr.qual & VMEM_EPTQ_GLA_VALID) && lr.linear != rr.linear);
	if (!bad && lr.status == VMEM_EPT_MISCONFIG)
		bad = lr.gpa != rr.gpa;
	if (!bad)
		bad = memcmp(lib_ram, ref_ram, sizeof(lib_ram)) != 0;
	if (bad) {
		fprintf(stderr, "fuzz_ept: disagreement: eptp 0x%llx kind %u gpa 0x%llx: lib err %d status %u "
			"hpa 0x%llx qual 0x%llx; ref status %d hpa 0x%llx qual 0x%llx; memory %s\n",
			(unsigned long long)eptp, kind, (unsigned long long)gpa, e, lr.status,
			(unsigned long long)lr.hpa, (unsigned long long)lr.exit_qual, rr.status,
			(unsigned long long)rr.hpa, (unsigned long long)rr.qual,
			memcmp(lib_ram, ref_ram, sizeof(lib_ram)) ? "differs" : "same");
		abort();
	}
	vmem_gmem_free(host);
	vmem_ept_mmu_free(m);
	return 0;
}

#ifdef VMEM_FUZZ_REPLAY
/* Replay driver: run each file named on the command line; close with the plain count line. */
int main(int argc, char **argv)
{
	unsigned n = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			fprintf(stderr, "fuzz_ept: cannot open %s\n", argv[i]);
			return 2;
		}
		static uint8_t buf[1 << 16];
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	printf("%u passed, 0 failed\n", n);
	return n ? 0 : 1;
}
#endif
