/* vmem CLI: a raw guest-memory image file, mapped read-only as one guest RAM slot. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "vmem_tool.h"

bool image_open(image *im, const char *cmd, const char *path, uint64_t base)
{
	memset(im, 0, sizeof(*im));
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "vmem %s: %s: %s\n", cmd, path, strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		fprintf(stderr, "vmem %s: %s: not a non-empty regular file\n", cmd, path);
		close(fd);
		return false;
	}
	/* The slot must be a multiple of 4 KiB; the tail of the last page reads zero. */
	im->size = ((uint64_t)st.st_size + 4095) & ~4095ull;
	if (base + im->size < base) {
		fprintf(stderr, "vmem %s: image does not fit above --base\n", cmd);
		close(fd);
		return false;
	}
	im->map = mmap(NULL, im->size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (im->map == MAP_FAILED) {
		fprintf(stderr, "vmem %s: %s: mmap: %s\n", cmd, path, strerror(errno));
		im->map = NULL;
		return false;
	}
	vmem_err e = vmem_gmem_new(NULL, &im->gm);
	if (!e) {
		/* Read-only slot: the walker never writes A/D flags into the file's pages. */
		e = vmem_gmem_add_ram(im->gm, base, im->size, im->map, VMEM_SLOT_READONLY);
	}
	if (e) {
		fprintf(stderr, "vmem %s: %s: %s\n", cmd, path, vmem_strerror(e));
		image_close(im);
		return false;
	}
	return true;
}

void image_close(image *im)
{
	if (im->gm)
		vmem_gmem_free(im->gm);
	if (im->map)
		munmap(im->map, im->size);
	memset(im, 0, sizeof(*im));
}
