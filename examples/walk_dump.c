/* Example: open a raw guest memory image read-only (mmap), register it as guest RAM and walk it without side effects. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/pte.h>
#include <libvmem/walk.h>

/* Usage:
 *   example_walk_dump                      write walk_dump.img here, then walk it
 *   example_walk_dump IMAGE CR3 LA...      walk a raw dump (guest-physical 0 at
 *                                          file offset 0) in 4-level paging */

#define IMG_NAME "walk_dump.img"
#define IMG_SIZE (4u << 20)

static uint64_t *pte_at(uint8_t *img, uint64_t gpa)
{
	return (uint64_t *)(img + gpa);
}

/* The demo image: 4-level tables at 0x1000..0x4fff mapping
 *   0x00400000  2M page at 0x200000 (PDE)
 *   0x00601000  4K page at 0x9000, user read-only
 *   0x00602000  not present: a swap entry (type 3, offset 0x1234)
 *   0x00603000  not present: all zero */
static int write_demo_image(const char *path, uint8_t **copy)
{
	uint8_t *img = calloc(1, IMG_SIZE);
	if (!img)
		return -1;
	const uint64_t T = VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_US;
	*pte_at(img, 0x1000) = 0x2000 | T;                    /* PML4[0] -> PDPT */
	*pte_at(img, 0x2000) = 0x3000 | T;                    /* PDPT[0] -> PD */
	*pte_at(img, 0x3000 + 8 * 2) = 0x200000 | VMEM_PTE_P | VMEM_PTE_RW | VMEM_PTE_PS;
	*pte_at(img, 0x3000 + 8 * 3) = 0x4000 | T;            /* PD[3] -> PT */
	*pte_at(img, 0x4000 + 8 * 1) = 0x9000 | VMEM_PTE_P | VMEM_PTE_US;
	uint64_t swp;
	vmem_swap_loc loc = { 3, 0x1234 };
	if (vmem_swap_encode(loc, &swp)) {
		free(img);
		return -1;
	}
	*pte_at(img, 0x4000 + 8 * 2) = swp;
	memcpy(img + 0x9000, "hello from guest page 0x9000", 29);

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, img, IMG_SIZE) != (ssize_t)IMG_SIZE || close(fd)) {
		perror(path);
		free(img);
		return -1;
	}
	*copy = img;
	printf("wrote %s: %u KiB raw image, CR3 = 0x1000\n", path, IMG_SIZE >> 10);
	return 0;
}

static void dump_walk(vmem_mmu *mmu, vmem_gmem *gm, uint64_t la, int *bad)
{
	vmem_walk_result r;
	vmem_walk_trace tr;
	vmem_err e = vmem_walk_traced(mmu, gm, la, VMEM_ACC_READ, VMEM_WALK_NO_AD, &r, &tr);
	printf("la %#018" PRIx64 ":\n", la);
	if (e) {
		printf("  error: %s\n", vmem_strerror(e));
		*bad = 1;
		return;
	}
	static const char *const lname[] = { "?", "PTE", "PDE", "PDPTE", "PML4E", "PML5E" };
	for (unsigned i = 0; i < tr.n; i++)
		printf("  %-6s at gpa 0x%08" PRIx64 " = 0x%016" PRIx64 "\n", lname[tr.e[i].level],
		       tr.e[i].gpa, tr.e[i].value);
	switch (r.status) {
	case VMEM_WALK_OK:
		printf("  => gpa %#" PRIx64 ", %" PRIu64 "K page\n", r.gpa, r.page_size >> 10);
		break;
	case VMEM_WALK_PF:
		printf("  => #PF error code %#x at level %u", r.error_code, r.level);
		if (r.info & VMEM_WINFO_SWAP) {
			vmem_swap_loc loc;
			vmem_swap_decode(r.entry, &loc);
			printf(" (swapped out: type %u, offset %#" PRIx64 ")", loc.type, loc.offset);
		}
		printf("\n");
		break;
	case VMEM_WALK_GP:
		printf("  => #GP (non-canonical)\n");
		break;
	default:
		printf("  => a table at gpa %#" PRIx64 " is outside the image\n", r.gpa);
		break;
	}
}

int main(int argc, char **argv)
{
	const char *path = IMG_NAME;
	uint64_t cr3 = 0x1000;
	uint64_t demo_la[] = { 0x400000 + 0x1234, 0x601000 + 0x10, 0x602000, 0x603000 };
	uint64_t *las = demo_la;
	size_t nla = sizeof(demo_la) / sizeof(demo_la[0]);
	uint8_t *orig = NULL;

	if (argc >= 4) {
		path = argv[1];
		cr3 = strtoull(argv[2], NULL, 0);
		nla = (size_t)argc - 3;
		las = calloc(nla, sizeof(*las));
		if (!las)
			return 1;
		for (size_t i = 0; i < nla; i++)
			las[i] = strtoull(argv[3 + i], NULL, 0);
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s [IMAGE CR3 LA...]\n", argv[0]);
		return 2;
	} else if (write_demo_image(path, &orig)) {
		return 1;
	}

	/* Reopen and map the image read-only: the walk must not (and cannot) write. */
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || st.st_size <= 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return 1;
	}
	uint64_t size = ((uint64_t)st.st_size + 0xfff) & ~0xfffull;
	void *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (img == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	vmem_gmem *gm;
	vmem_mmu *mmu;
	vmem_regs regs;
	vmem_err e = vmem_gmem_new(NULL, &gm);
	if (!e)
		e = vmem_gmem_add_ram(gm, 0, size, img, VMEM_SLOT_READONLY);
	vmem_regs_init(&regs);
	regs.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | VMEM_CR0_WP;
	regs.cr4 = VMEM_CR4_PAE;
	regs.efer = VMEM_EFER_LME | VMEM_EFER_LMA | VMEM_EFER_NXE;
	regs.cr3 = cr3;
	if (!e)
		e = vmem_mmu_new(NULL, &regs, &mmu);
	if (e) {
		fprintf(stderr, "setup: %s\n", vmem_strerror(e));
		return 1;
	}
	printf("opened %s read-only: %" PRIu64 " KiB at gpa 0, %s paging, CR3 %#" PRIx64 "\n", path,
	       size >> 10, vmem_mode_name(vmem_mmu_mode(mmu)), cr3);

	int bad = 0;
	for (size_t i = 0; i < nla; i++)
		dump_walk(mmu, gm, las[i], &bad);

	if (orig) {
		/* The demo knows the answers. */
		vmem_walk_result r[4];
		vmem_walk_batch(mmu, gm, demo_la, 4, VMEM_ACC_READ, VMEM_WALK_NO_AD, r);
		char text[32];
		vmem_gmem_read(gm, r[1].gpa - 0x10, text, 28);
		text[28] = 0;
		if (r[0].status != VMEM_WALK_OK || r[0].gpa != 0x201234 ||
		    r[0].page_size != VMEM_PAGE_2M || r[1].status != VMEM_WALK_OK ||
		    r[1].gpa != 0x9010 || strcmp(text, "hello from guest page 0x9000") != 0 ||
		    r[2].status != VMEM_WALK_PF || r[2].error_code != 0 ||
		    !(r[2].info & VMEM_WINFO_SWAP) || r[3].status != VMEM_WALK_PF ||
		    (r[3].info & VMEM_WINFO_SWAP)) {
			printf("walk_dump: unexpected results\n");
			bad = 1;
		}
		printf("read 28 bytes at gpa %#" PRIx64 ": \"%s\"\n", r[1].gpa - 0x10, text);
		if (memcmp(img, orig, IMG_SIZE) != 0) {
			printf("walk_dump: the image changed\n");
			bad = 1;
		} else {
			printf("image unchanged: no accessed/dirty flag was written\n");
		}
		free(orig);
	} else {
		free(las);
	}
	vmem_mmu_free(mmu);
	vmem_gmem_free(gm);
	munmap(img, size);
	printf("walk_dump: %s\n", bad ? "FAILED" : "done");
	return bad;
}
