/* vmem CLI: what the command files share (option parsing, register options, guest images). */
#ifndef VMEM_TOOL_H
#define VMEM_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>

/* Exit codes: 0 success, 1 failure (a vector disagrees, an I/O error), 2 usage error. */
#define EXIT_USAGE 2

typedef struct topt {
	const char *name; /* "--cr3", or "-v" */
	bool arg;         /* takes a value (--name V or --name=V) */
} topt;

/* Where option parsing is: start with { .i = 1 } (argv[0] is the command). */
typedef struct topt_state {
	int i;
	bool rest; /* after "--": everything is positional */
} topt_state;

/* Next argument of argv. Returns the index of the matching option
 * with *val set when it takes one; -1 for a positional argument (*val is it);
 * -2 at the end; -3 for a usage error (already reported on stderr). */
int topt_next(int argc, char **argv, topt_state *st, const topt *opts, unsigned n,
	      const char **val, const char *cmd);
/* Parse an unsigned integer (decimal, or hex with 0x). false (reported) if malformed. */
bool parse_u64(const char *cmd, const char *what, const char *s, uint64_t *out);

/* Register options shared by translate and dump. */
typedef struct regs_opts {
	vmem_regs regs;
	unsigned seen;      /* bit per required register seen */
	const char *image;
	uint64_t base;
} regs_opts;
/* Handle a register/image option (index into regs_topts). false on a bad value. */
#define REGS_TOPTS_N 7
extern const topt regs_topts[REGS_TOPTS_N];
bool regs_opt(regs_opts *ro, const char *cmd, int which, const char *val);
/* Report missing required options. */
bool regs_complete(const regs_opts *ro, const char *cmd);

/* A raw guest-memory image mapped read-only at a guest-physical base. */
typedef struct image {
	vmem_gmem *gm;
	void *map;
	uint64_t size; /* mapped bytes (the file size rounded up to 4 KiB) */
} image;
bool image_open(image *im, const char *cmd, const char *path, uint64_t base);
void image_close(image *im);

/* Build the MMU for the registers (PAE: PDPTEs loaded from the image).
 * Reports and returns NULL on error. */
vmem_mmu *tool_mmu(const char *cmd, const vmem_regs *r, const vmem_gmem *gm);

int cmd_vectors(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_dump(int argc, char **argv);

#endif
