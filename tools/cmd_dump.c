/* vmem CLI: `vmem dump`, the page-table tree of a raw guest-memory image as collapsed mapping runs. */
#include <stdio.h>
#include <string.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>
#include "vmem_tool.h"

static const char usage_dump[] =
	"usage: vmem dump --image FILE [--base GPA] --cr0 X --cr3 X --cr4 X --efer X\n"
	"                 [--maxphyaddr N] [--max-lines N]\n"
	"\n"
	"Print every present mapping of the page tables in FILE (a raw image of\n"
	"guest-physical memory at GPA, default 0, opened read-only), one line per\n"
	"run of pages contiguous in linear and physical memory with the same size,\n"
	"level and flags:\n"
	"  LINEAR-START..LINEAR-END -> PHYS  SIZE xCOUNT  LEVEL  PERMS FLAGS\n"
	"PERMS are the effective r/w/x and u (user) or s (supervisor) over every\n"
	"level; FLAGS are the leaf's g (global) and pkN (protection key, IA-32e).\n"
	"Entries the processor would reject (reserved bits) and tables outside the\n"
	"image are listed with '!'. An entry that points back to a table on its own\n"
	"path (a recursive or self-map entry) is listed with '~' and not expanded:\n"
	"its range maps the page tables themselves, and a hostile image made of\n"
	"such entries would otherwise list 512^levels runs. Tables shared by many\n"
	"entries can still make the listing huge: it stops after --max-lines lines\n"
	"of runs and entries (default 1000000; 0: no limit) and says so.\n";

/* Shape of each mode's tables: top level, entry width, index bits, linear width. */
static const struct { unsigned top, width, bits, lawidth; } shapes[] = {
	[VMEM_MODE_32BIT] = { 2, 4, 10, 32 },
	[VMEM_MODE_PAE] = { 3, 8, 9, 32 },
	[VMEM_MODE_4LEVEL] = { 4, 8, 9, 48 },
	[VMEM_MODE_5LEVEL] = { 5, 8, 9, 57 },
};

typedef struct run {
	bool open;
	uint64_t la, pa, size, count;
	unsigned level, perms, flags;
} run;

typedef struct dumper {
	const vmem_mmu *mmu;
	vmem_gmem *gm;
	vmem_mode mode;
	bool pse;
	uint64_t addr_mask; /* next-table address bits of an entry */
	run cur;
	unsigned long leaves, runs, bad, recursive;
	uint64_t max_lines; /* runs + '!' + '~' lines before the listing stops; 0: no limit */
	bool stopped;
	uint64_t path[6]; /* the tables being listed, root first (PAE's PDPT: none) */
	unsigned depth;
} dumper;

#define DF_G 0x1u
#define DF_PK_SHIFT 4

static const char *size_name(uint64_t s)
{
	return s == (1ull << 12) ? "4K" : s == (1ull << 21) ? "2M" : s == (1ull << 22) ? "4M" : "1G";
}

static void flush(dumper *d)
{
	run *r = &d->cur;
	if (!r->open)
		return;
	printf("0x%016llx..0x%016llx -> 0x%llx  %s x%llu  L%u  r%c%c %c", (unsigned long long)r->la,
	       (unsigned long long)(r->la + r->size * r->count - 1), (unsigned long long)r->pa,
	       size_name(r->size), (unsigned long long)r->count, r->level,
	       r->perms & VMEM_PERM_W ? 'w' : '-', r->perms & VMEM_PERM_X ? 'x' : '-',
	       r->perms & VMEM_PERM_U ? 'u' : 's');
	if (r->flags & DF_G)
		printf(" g");
	if (d->mode >= VMEM_MODE_4LEVEL && (r->flags >> DF_PK_SHIFT))
		printf(" pk%u", r->flags >> DF_PK_SHIFT);
	printf("\n");
	d->runs++;
	r->open = false;
}

static void add_page(dumper *d, uint64_t la, uint64_t pa, uint64_t size, unsigned level,
		     unsigned perms, unsigned flags)
{
	run *r = &d->cur;
	d->leaves++;
	if (r->open && r->size == size && r->level == level && r->perms == perms &&
	    r->flags == flags && r->la + r->size * r->count == la &&
	    r->pa + r->size * r->count == pa) {
		r->count++;
		return;
	}
	flush(d);
	*r = (run){ true, la, pa, size, 1, level, perms, flags };
}

static uint64_t canonical(const dumper *d, uint64_t la)
{
	unsigned w = shapes[d->mode].lawidth;
	if (w < 64 && w > 32 && ((la >> (w - 1)) & 1))
		la |= ~0ull << w;
	return la;
}

/* A leaf (or an entry only the walker can judge): ask vmem_walk, side-effect free.
 * A supervisor read with EFLAGS.AC = 1 passes SMAP; protection faults still give perms. */
static void leaf(dumper *d, uint64_t la, uint64_t entry, unsigned level)
{
	vmem_walk_result res;
	vmem_err e = vmem_walk(d->mmu, d->gm, la, VMEM_ACC_READ | VMEM_ACC_AC, VMEM_WALK_NO_AD,
			       &res);
	if (e || res.status != VMEM_WALK_OK) {
		bool prot = !e && res.status == VMEM_WALK_PF && !(res.error_code & VMEM_PFEC_RSVD);
		if (!prot) {
			flush(d);
			d->bad++;
			printf("! 0x%016llx: level %u entry 0x%llx: ", (unsigned long long)la, level,
			       (unsigned long long)entry);
			if (e)
				printf("%s\n", vmem_strerror(e));
			else if (res.status == VMEM_WALK_PF)
				printf("page fault, error code 0x%x\n", res.error_code);
			else
				printf("walk status %u\n", res.status);
			return;
		}
		/* Protection fault on a read (a protection key): the mapping exists. */
		uint64_t size = 1ull << (12 + shapes[d->mode].bits * (level - 1));
		res.page_size = size;
		res.gpa = (entry & d->addr_mask) & ~(size - 1);
	}
	unsigned flags = (entry & VMEM_PTE_G) ? DF_G : 0;
	if (d->mode >= VMEM_MODE_4LEVEL)
		flags |= (unsigned)((entry & VMEM_PTE_PKEY_MASK) >> VMEM_PTE_PKEY_SHIFT) << DF_PK_SHIFT;
	add_page(d, la, res.gpa & ~(res.page_size - 1), res.page_size, level, res.perms, flags);
}

/* Is the table at base one of those the listing is inside? */
static bool on_path(const dumper *d, uint64_t base)
{
	for (unsigned i = 0; i < d->depth; i++)
		if (d->path[i] == base)
			return true;
	return false;
}

static void table(dumper *d, uint64_t base, unsigned level, uint64_t la_base)
{
	const unsigned width = shapes[d->mode].width, bits = shapes[d->mode].bits;
	const bool pdpt = d->mode == VMEM_MODE_PAE && level == 3;
	unsigned n = pdpt ? 4 : 1u << bits;
	uint64_t pdptes[4];
	uint32_t probe;
	if (pdpt) {
		vmem_mmu_get_pdptes(d->mmu, pdptes);
	} else if (vmem_gmem_read32(d->gm, base, &probe)) {
		/* CR3 or an entry points past the image: say so rather than list
		 * nothing (tables are 4 KiB aligned, so one read covers the table). */
		flush(d);
		d->bad++;
		printf("! 0x%016llx: level %u table at 0x%llx is outside the image\n",
		       (unsigned long long)la_base, level, (unsigned long long)base);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t e;
		if (d->max_lines && d->runs + d->bad + d->recursive >= d->max_lines) {
			d->stopped = true;
			return;
		}
		if (pdpt) {
			e = pdptes[i];
		} else if (width == 4) {
			uint32_t e32;
			if (vmem_gmem_read32(d->gm, base + 4ull * i, &e32))
				continue;
			e = e32;
		} else if (vmem_gmem_read64(d->gm, base + 8ull * i, &e)) {
			continue;
		}
		if (!(e & VMEM_PTE_P))
			continue;
		uint64_t la = canonical(d, la_base | (uint64_t)i << (12 + bits * (level - 1)));
		/* PS ends the walk above level 1, where the mode allows large pages
		 * (32-bit: CR4.PSE); PS where it is reserved is left to the walker. */
		bool ps = (e & VMEM_PTE_PS) && !pdpt &&
			  (d->mode != VMEM_MODE_32BIT || d->pse);
		if (level == 1 || ps) {
			leaf(d, la, e, level);
			continue;
		}
		uint64_t next = width == 4 ? (e & 0xfffff000ull) : (e & d->addr_mask);
		if (on_path(d, next)) {
			flush(d);
			d->recursive++;
			printf("~ 0x%016llx: level %u entry 0x%llx points back to the table at 0x%llx on its path: "
			       "a recursive mapping, not expanded\n",
			       (unsigned long long)la, level, (unsigned long long)e, (unsigned long long)next);
			continue;
		}
		d->path[d->depth++] = next;
		table(d, next, level - 1, la);
		d->depth--;
	}
}

int cmd_dump(int argc, char **argv)
{
	enum { O_HELP = REGS_TOPTS_N, O_H, O_MAX, O_N };
	topt opts[O_N];
	memcpy(opts, regs_topts, sizeof(regs_topts));
	opts[O_HELP] = (topt){ "--help", false };
	opts[O_H] = (topt){ "-h", false };
	opts[O_MAX] = (topt){ "--max-lines", true };
	uint64_t max_lines = 1000000;
	regs_opts ro;
	memset(&ro, 0, sizeof(ro));
	vmem_regs_init(&ro.regs);
	topt_state st = { .i = 1 };
	const char *val;
	int w;
	while ((w = topt_next(argc, argv, &st, opts, O_N, &val, "dump")) != -2) {
		if (w == -3)
			return EXIT_USAGE;
		if (w == -1) {
			fprintf(stderr, "vmem dump: unexpected argument '%s'\n", val);
			return EXIT_USAGE;
		}
		if (w == O_MAX) {
			if (!parse_u64("dump", "--max-lines", val, &max_lines))
				return EXIT_USAGE;
			continue;
		}
		if (w >= REGS_TOPTS_N) {
			fputs(usage_dump, stdout);
			return 0;
		}
		if (!regs_opt(&ro, "dump", w, val))
			return EXIT_USAGE;
	}
	if (!regs_complete(&ro, "dump"))
		return EXIT_USAGE;
	image im;
	if (!image_open(&im, "dump", ro.image, ro.base))
		return 1;
	vmem_mmu *mmu = tool_mmu("dump", &ro.regs, im.gm);
	if (!mmu) {
		image_close(&im);
		return 1;
	}
	dumper d = { .mmu = mmu, .gm = im.gm, .mode = vmem_mmu_mode(mmu),
		     .pse = (ro.regs.cr4 & VMEM_CR4_PSE) != 0, .max_lines = max_lines };
	d.addr_mask = ((1ull << ro.regs.maxphyaddr) - 1) & ~0xfffull;
	printf("# %s paging, CR3 0x%llx\n", vmem_mode_name(d.mode), (unsigned long long)ro.regs.cr3);
	if (d.mode == VMEM_MODE_NONE) {
		printf("# paging is off: linear = physical\n");
	} else {
		unsigned top = shapes[d.mode].top;
		uint64_t root = d.mode == VMEM_MODE_32BIT ? ro.regs.cr3 & 0xfffff000ull :
				d.mode == VMEM_MODE_PAE ? 0 : ro.regs.cr3 & d.addr_mask;
		if (d.mode != VMEM_MODE_PAE) /* PAE's PDPTEs are registers, not a table in memory */
			d.path[d.depth++] = root;
		table(&d, root, top, 0);
		flush(&d);
	}
	if (d.stopped)
		printf("# stopped after %llu lines (--max-lines): the listing is incomplete\n",
		       (unsigned long long)d.max_lines);
	printf("# %lu pages in %lu runs, %lu bad entries", d.leaves, d.runs, d.bad);
	if (d.recursive)
		printf(", %lu recursive entries not expanded", d.recursive);
	printf("\n");
	vmem_mmu_free(mmu);
	image_close(&im);
	return 0;
}
