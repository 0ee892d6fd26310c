/* Example: plug a counting vmem_allocator into libvmem and show that every allocation goes through it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvmem/alloc.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>

/* A VMM's allocator: here plain malloc with bookkeeping, so that we can
 * check the library's side of the contract: every free names a block this
 * allocator handed out, with the size it was asked for. */
#define MAX_LIVE 64

struct counting {
	unsigned long allocs, frees, pages, page_frees, bad_frees;
	size_t live_bytes, peak_bytes;
	long fail_at;  /* refuse the allocation with this index (0-based); -1: never */
	int verbose;
	struct {
		void *p;
		size_t size;
	} live[MAX_LIVE];
};

static void *c_alloc(void *ctx, size_t size)
{
	struct counting *c = ctx;
	if (c->fail_at >= 0 && c->allocs == (unsigned long)c->fail_at)
		return NULL;
	for (unsigned i = 0; i < MAX_LIVE; i++) {
		if (c->live[i].p)
			continue;
		void *p = malloc(size ? size : 1);
		if (!p)
			return NULL;
		c->live[i].p = p;
		c->live[i].size = size;
		c->allocs++;
		c->live_bytes += size;
		if (c->live_bytes > c->peak_bytes)
			c->peak_bytes = c->live_bytes;
		if (c->verbose)
			printf("    alloc(%zu) -> block %u\n", size, i);
		return p;
	}
	return NULL;
}

static void c_free(void *ctx, void *ptr, size_t size)
{
	struct counting *c = ctx;
	for (unsigned i = 0; i < MAX_LIVE; i++) {
		if (c->live[i].p != ptr)
			continue;
		if (c->live[i].size != size)
			c->bad_frees++;
		if (c->verbose)
			printf("    free(block %u, %zu)\n", i, size);
		c->live[i].p = NULL;
		c->live_bytes -= c->live[i].size;
		c->frees++;
		free(ptr);
		return;
	}
	c->bad_frees++; /* not ours */
}

static void *c_alloc_page(void *ctx)
{
	struct counting *c = ctx;
	void *p = aligned_alloc(4096, 4096);
	if (p) {
		memset(p, 0, 4096);
		c->pages++;
	}
	return p;
}

static void c_free_page(void *ctx, void *page)
{
	struct counting *c = ctx;
	c->page_frees++;
	free(page);
}

/* Everything a small VMM does with the library, on allocator `a`. */
static vmem_err session(const vmem_allocator *a, void *ram, int verbose)
{
	vmem_gmem *gm = NULL;
	vmem_mmu *mmu = NULL;
	vmem_regs regs;
	vmem_err e = vmem_gmem_new(a, &gm);
	if (verbose)
		printf("  vmem_gmem_new: %s\n", vmem_strerror(e));
	if (e)
		return e;
	/* Sixteen 4 KiB slots: enough to make the slot array grow. */
	for (unsigned i = 0; i < 16 && !e; i++)
		e = vmem_gmem_add_ram(gm, 0x10000ull * i, 0x1000, (char *)ram + 0x1000 * i, 0);
	if (verbose)
		printf("  16 x vmem_gmem_add_ram: %s\n", vmem_strerror(e));
	if (!e) {
		vmem_regs_init(&regs); /* paging off: linear = physical */
		regs.cr0 |= VMEM_CR0_PE;
		e = vmem_mmu_new(a, &regs, &mmu);
		if (verbose)
			printf("  vmem_mmu_new: %s\n", vmem_strerror(e));
	}
	if (!e) {
		vmem_walk_result r;
		e = vmem_walk(mmu, gm, 0x50123, VMEM_ACC_READ, 0, &r);
		if (verbose)
			printf("  vmem_walk(0x50123): gpa %#" PRIx64 " (walks allocate nothing)\n", r.gpa);
	}
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	if (verbose)
		printf("  freed the MMU and the guest memory\n");
	return e;
}

int main(void)
{
	int bad = 0;
	void *ram = aligned_alloc(4096, 16 * 4096);
	if (!ram)
		return 1;
	struct counting c;
	memset(&c, 0, sizeof(c));
	c.fail_at = -1;
	c.verbose = 1;
	const vmem_allocator counting = {
		.alloc = c_alloc, .free = c_free,
		.alloc_page = c_alloc_page, .free_page = c_free_page, .ctx = &c,
	};

	printf("a session on the counting allocator:\n");
	vmem_err e = session(&counting, ram, 1);
	printf("  => %lu allocations, %lu frees, peak %zu bytes, %zu bytes still live, %lu bad frees\n",
	       c.allocs, c.frees, c.peak_bytes, c.live_bytes, c.bad_frees);
	if (e || c.allocs < 3 || c.allocs != c.frees || c.live_bytes || c.bad_frees ||
	    c.pages != c.page_frees) {
		printf("custom_allocator: the library bypassed or misused the allocator\n");
		bad = 1;
	}

	/* Out of memory at every point: refuse allocation k (k = 0, 1, ...): the
	 * call that asked fails with VMEM_E_NOMEM and nothing leaks. */
	unsigned long total = c.allocs;
	printf("the same session with allocation k refused, k = 0..%lu:\n", total - 1);
	for (unsigned long k = 0; k < total; k++) {
		memset(&c, 0, sizeof(c));
		c.fail_at = (long)k;
		e = session(&counting, ram, 0);
		printf("  k = %lu: %s, %lu allocs, %lu frees\n", k, vmem_strerror(e), c.allocs, c.frees);
		if (e != VMEM_E_NOMEM || c.allocs != c.frees || c.live_bytes || c.bad_frees) {
			printf("  expected VMEM_E_NOMEM and no leak\n");
			bad = 1;
		}
	}

	free(ram);
	printf("custom_allocator: %s\n", bad ? "FAILED" : "every allocation went through the hook");
	return bad;
}
