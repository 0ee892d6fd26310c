/* A benchmark environment: one set of guest page tables seen by libvmem and by the baseline. */
#ifndef BENCH_ENV_H
#define BENCH_ENV_H

#include <stdbool.h>
#include <libvmem/gmem.h>
#include <libvmem/paging.h>
#include <libvmem/walk.h>
#include "baseline_walk.h"
#include "ptspace.h"

typedef struct bench_env {
	vmem_gmem *gm;
	vmem_mmu *mmu;
	bl_mem mem;
	bl_cpu cpu;
} bench_env;

/* Describe the tables in s to both walkers. `lib_buf` is the host buffer
 * registered as libvmem's RAM slot at gpa 0 (s->buf, or a copy of it);
 * the baseline walks s->buf. nxe and wp select EFER.NXE and CR0.WP.
 * Returns 0, or -1 (message printed). */
int env_init(bench_env *env, const pt_space *s, uint8_t *lib_buf, bool nxe, bool wp);
void env_fini(bench_env *env);

/* True if libvmem's answer matches the baseline's; prints both otherwise. */
bool env_agree(uint64_t la, unsigned access, unsigned flags,
	       const vmem_walk_result *lib, const bl_result *base);

#endif
