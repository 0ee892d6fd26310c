/* vmem CLI: `vmem translate`, linear addresses through a raw guest-memory image (side-effect free). */
#include <stdio.h>
#include <string.h>
#include <libvmem/walk.h>
#include "vmem_tool.h"

static const char usage_translate[] =
	"usage: vmem translate --image FILE [--base GPA] --cr0 X --cr3 X --cr4 X --efer X\n"
	"                      [--maxphyaddr N] [--write|--fetch] [--cpl N] [-v] ADDR...\n"
	"\n"
	"Translate each linear ADDR through the page tables in FILE, a raw image of\n"
	"guest-physical memory mapped at GPA (default 0; 4 KiB aligned), opened\n"
	"read-only. Prints the guest-physical address, page size and permissions\n"
	"(r, w, x; u user / s supervisor), or the fault and its #PF error code.\n"
	"-v adds the walk trace: each level's entry address and value. No accessed\n"
	"or dirty flag is ever written. The access is a supervisor read unless\n"
	"--write, --fetch or --cpl 3 says otherwise. Numbers: decimal or 0x hex.\n";

static const char *size_name(uint64_t s)
{
	return s == (1ull << 12) ? "4K" : s == (1ull << 21) ? "2M" : s == (1ull << 22) ? "4M" :
	       s == (1ull << 30) ? "1G" : "?";
}

static void print_pfec(uint32_t ec)
{
	static const char *const bits[] = { "P", "W", "U", "RSVD", "I", "PK", "SS" };
	printf("page fault, error code 0x%x (", ec);
	const char *sep = "";
	for (unsigned k = 0; k < 7; k++)
		if (ec & (1u << k)) {
			printf("%s%s", sep, bits[k]);
			sep = " ";
		}
	printf("%s)", *sep ? "" : "not present, read, supervisor");
}

static void translate_one(const vmem_mmu *mmu, vmem_gmem *gm, uint64_t la, unsigned acc,
			  bool verbose)
{
	vmem_walk_result res;
	vmem_walk_trace tr;
	memset(&tr, 0, sizeof(tr));
	vmem_err e = vmem_walk_traced(mmu, gm, la, acc, VMEM_WALK_NO_AD, &res, &tr);
	printf("0x%llx: ", (unsigned long long)la);
	if (e) {
		printf("refused: %s\n", vmem_strerror(e));
		return;
	}
	switch (res.status) {
	case VMEM_WALK_OK:
		printf("gpa 0x%llx, page %s, %c%c%c %c\n", (unsigned long long)res.gpa,
		       size_name(res.page_size), 'r', res.perms & VMEM_PERM_W ? 'w' : '-',
		       res.perms & VMEM_PERM_X ? 'x' : '-', res.perms & VMEM_PERM_U ? 'u' : 's');
		break;
	case VMEM_WALK_PF:
		print_pfec(res.error_code);
		printf(" at level %u\n", res.level);
		break;
	case VMEM_WALK_GP:
		printf("non-canonical address: #GP(0)\n");
		break;
	default:
		printf("paging entry at gpa 0x%llx is outside the image\n", (unsigned long long)res.gpa);
	}
	if (verbose)
		for (unsigned k = 0; k < tr.n && k < 5; k++)
			printf("    level %u: entry at 0x%llx = 0x%llx\n", tr.e[k].level,
			       (unsigned long long)tr.e[k].gpa, (unsigned long long)tr.e[k].value);
}

int cmd_translate(int argc, char **argv)
{
	enum { O_HELP = REGS_TOPTS_N, O_H, O_WRITE, O_FETCH, O_CPL, O_V, O_N };
	topt opts[O_N];
	memcpy(opts, regs_topts, sizeof(regs_topts));
	opts[O_HELP] = (topt){ "--help", false };
	opts[O_H] = (topt){ "-h", false };
	opts[O_WRITE] = (topt){ "--write", false };
	opts[O_FETCH] = (topt){ "--fetch", false };
	opts[O_CPL] = (topt){ "--cpl", true };
	opts[O_V] = (topt){ "-v", false };
	regs_opts ro;
	memset(&ro, 0, sizeof(ro));
	vmem_regs_init(&ro.regs);
	topt_state st = { .i = 1 };
	const char *val;
	unsigned acc = VMEM_ACC_READ, naddr = 0;
	bool verbose = false;
	uint64_t cpl = 0;
	int w;
	while ((w = topt_next(argc, argv, &st, opts, O_N, &val, "translate")) != -2) {
		if (w == -3)
			return EXIT_USAGE;
		if (w == -1) {
			uint64_t a;
			if (!parse_u64("translate", "ADDR", val, &a))
				return EXIT_USAGE;
			naddr++;
		} else if (w < REGS_TOPTS_N) {
			if (!regs_opt(&ro, "translate", w, val))
				return EXIT_USAGE;
		} else if (w == O_HELP || w == O_H) {
			fputs(usage_translate, stdout);
			return 0;
		} else if (w == O_WRITE || w == O_FETCH) {
			if (acc != VMEM_ACC_READ) {
				fprintf(stderr, "vmem translate: --write and --fetch exclude each other\n");
				return EXIT_USAGE;
			}
			acc = w == O_WRITE ? VMEM_ACC_WRITE : VMEM_ACC_FETCH;
		} else if (w == O_CPL) {
			if (!parse_u64("translate", "--cpl", val, &cpl) || cpl > 3) {
				fprintf(stderr, "vmem translate: --cpl must be 0..3\n");
				return EXIT_USAGE;
			}
		} else {
			verbose = true;
		}
	}
	if (!regs_complete(&ro, "translate"))
		return EXIT_USAGE;
	if (!naddr) {
		fprintf(stderr, "vmem translate: no ADDR given\n");
		return EXIT_USAGE;
	}
	if (cpl == 3)
		acc |= VMEM_ACC_USER;
	image im;
	if (!image_open(&im, "translate", ro.image, ro.base))
		return 1;
	vmem_mmu *mmu = tool_mmu("translate", &ro.regs, im.gm);
	if (!mmu) {
		image_close(&im);
		return 1;
	}
	st = (topt_state){ .i = 1 };
	while ((w = topt_next(argc, argv, &st, opts, O_N, &val, "translate")) != -2) {
		uint64_t la;
		if (w == -1 && parse_u64("translate", "ADDR", val, &la))
			translate_one(mmu, im.gm, la, acc, verbose);
	}
	vmem_mmu_free(mmu);
	image_close(&im);
	return 0;
}
