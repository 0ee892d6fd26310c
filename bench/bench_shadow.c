/* bench_shadow: shadow fault fill, cached CR3 switch, guest page-table write, INVLPG, each against a naive full-rebuild baseline in the same run. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libvmem/pte.h>
#include <libvmem/shadow.h>
#include <libvmem/walk.h>

/* Guest: 4-level, 64 MiB of linear space (32 PTs, 16384 4K pages) over 8 MiB of RAM.
 * Baseline ("full rebuild"): a shadow that keeps nothing across an event:
 * every CR3 switch, table write or INVLPG throws all shadows away
 * (vmem_shadow_zap_all) and the guest refaults its working set (WSET pages)
 * before it runs on. Usage: bench_shadow [--rounds N] [--smoke] */
#define RAM (8ull << 20)
#define NPT 32
#define NPAGES (NPT * 512)
#define LA0 0x40000000ull
#define WSET 64

static uint8_t *ram;
static vmem_gmem *gm;
static vmem_shadow *sh;
static vmem_regs ra, rb;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static uint64_t *g64(uint64_t gpa) { return (uint64_t *)(void *)(ram + gpa); }

static void setup(void)
{
	ram = aligned_alloc(4096, RAM);
	memset(ram, 0, RAM);
	/* PML4 0x1000 (and a second one at 0x5000), PDPT 0x2000, PD 0x3000, PTs from 0x100000. */
	*g64(0x1000) = 0x2000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US;
	*g64(0x5000) = 0x2000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US;
	*g64(0x2000 + 8) = 0x3000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US;
	for (unsigned t = 0; t < NPT; t++) {
		uint64_t pt = 0x100000 + 0x1000ull * t;
		*g64(0x3000 + 8 * t) = pt | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US;
		for (unsigned i = 0; i < 512; i++)
			*g64(pt + 8 * i) = (0x200000 + (((uint64_t)t * 512 + i) % 1024) * 0x1000) |
					   VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US | VMEM_PTE_A | VMEM_PTE_D;
	}
	vmem_gmem_new(NULL, &gm);
	vmem_gmem_add_ram(gm, 0, RAM, ram, 0);
	vmem_shadow_config c = { .gmem = gm, .host_levels = 4, .max_pages = 256, .max_roots = 8 };
	if (vmem_shadow_new(&c, &sh))
		abort();
	vmem_regs_init(&ra);
	ra.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	ra.cr4 = VMEM_CR4_PAE;
	ra.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	ra.cr3 = 0x1000;
	rb = ra;
	rb.cr3 = 0x5000;
	vmem_shadow_set_regs(sh, &rb);
	vmem_shadow_set_regs(sh, &ra);
}

static void fault(uint64_t la)
{
	vmem_shadow_fault_result r;
	if (vmem_shadow_fault(sh, la, VMEM_ACC_READ, &r) || r.outcome != VMEM_SHADOW_FIXED)
		abort();
}

static uint64_t la_of(unsigned i) { return LA0 + (uint64_t)i * 4096; }

/* The baseline's price of one event: drop everything, refault the working set. */
static __attribute__((noinline)) void baseline_event(void)
{
	vmem_shadow_zap_all(sh);
	for (unsigned i = 0; i < WSET; i++)
		fault(la_of(i * 7 % NPAGES));
}

static __attribute__((noinline)) void op_fill(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fault(la_of(i));
}

static __attribute__((noinline)) void op_switch(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vmem_shadow_set_regs(sh, (i & 1) ? &ra : &rb);
}

static __attribute__((noinline)) void op_ptwrite(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned p = i % NPAGES;
		uint64_t gpa = 0x100000 + 8ull * p;
		uint64_t v = *g64(gpa) ^ 0x1000; /* another frame: the shadow leaf must go */
		vmem_shadow_emulate_write(sh, gpa, &v, 8);
	}
}

static __attribute__((noinline)) void op_invlpg(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vmem_shadow_invlpg(sh, la_of(i % NPAGES));
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

#define MAXR 64
static double med(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	unsigned rounds = 15;
	bool smoke = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (unsigned)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--smoke"))
			smoke = true;
	}
	if (smoke)
		rounds = 1;
	if (rounds > MAXR)
		rounds = MAXR;
	setup();
	double fill[MAXR], sw[MAXR], ptw[MAXR], inv[MAXR], base[MAXR];
	unsigned n = smoke ? 512 : NPAGES;
	for (unsigned r = 0; r < rounds; r++) {
		vmem_shadow_set_regs(sh, &ra);
		vmem_shadow_zap_all(sh);
		double t0 = now();
		op_fill(n);                          /* every fault fills a fresh leaf */
		fill[r] = (now() - t0) / n;
		t0 = now();
		op_invlpg(n);                        /* every INVLPG drops a present leaf */
		inv[r] = (now() - t0) / n;
		op_fill(n);
		t0 = now();
		op_ptwrite(n);                       /* every write hits a shadowed PT and drops a leaf */
		ptw[r] = (now() - t0) / n;
		op_ptwrite(n);                       /* restore */
		unsigned k = smoke ? 64 : 100000;
		t0 = now();
		op_switch(k);                        /* both roots cached */
		sw[r] = (now() - t0) / k;
		unsigned b = smoke ? 4 : 200;
		t0 = now();
		for (unsigned i = 0; i < b; i++)
			baseline_event();
		base[r] = (now() - t0) / b;
	}
	char why[256];
	if (vmem_shadow_audit(sh, why, sizeof(why))) {
		printf("audit failed: %s\n", why);
		return 1;
	}
	double bl = med(base, rounds);
	printf("bench_shadow (ns per operation, median of %u rounds; baseline = zap all + refault %u pages)\n",
	       rounds, WSET);
	printf("%-28s %10s %12s %8s %8s\n", "operation", "libvmem", "full-rebuild", "ratio", "target");
	printf("%-28s %10.1f %12.1f %8.1f %8s\n", "fault fill (4K leaf)", med(fill, rounds), bl + med(fill, rounds),
	       (bl + med(fill, rounds)) / med(fill, rounds), "150");
	printf("%-28s %10.1f %12.1f %8.1f %8s\n", "CR3 switch to cached root", med(sw, rounds), bl,
	       bl / med(sw, rounds), "50");
	printf("%-28s %10.1f %12.1f %8.1f %8s\n", "guest PT write (shadowed)", med(ptw, rounds), bl,
	       bl / med(ptw, rounds), "200");
	printf("%-28s %10.1f %12.1f %8.1f %8s\n", "INVLPG", med(inv, rounds), bl, bl / med(inv, rounds), "50");
	vmem_shadow_free(sh);
	vmem_gmem_free(gm);
	free(ram);
	return 0;
}
