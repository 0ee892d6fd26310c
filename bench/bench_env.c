/* Benchmark environment: registers one page-table buffer with libvmem and the baseline, and compares answers. */
#include "bench_env.h"

#include <inttypes.h>
#include <stdio.h>

int env_init(bench_env *env, const pt_space *s, uint8_t *lib_buf, bool nxe, bool wp)
{
	vmem_regs r;
	vmem_err err;

	env->gm = NULL;
	env->mmu = NULL;
	env->mem.base = s->buf;
	env->mem.size = s->size;
	env->cpu.cr3 = s->cr3;
	env->cpu.levels = s->levels;
	env->cpu.maxphyaddr = 48;
	env->cpu.nxe = nxe;
	env->cpu.wp = wp;
	env->cpu.gbpages = true;

	err = vmem_gmem_new(NULL, &env->gm);
	if (!err)
		err = vmem_gmem_add_ram(env->gm, 0, s->size, lib_buf, 0);
	if (err) {
		fprintf(stderr, "bench: gmem setup: %s\n", vmem_strerror(err));
		env_fini(env);
		return -1;
	}
	vmem_regs_init(&r);
	r.cr0 = VMEM_CR0_PE | VMEM_CR0_PG | (wp ? VMEM_CR0_WP : 0);
	r.cr4 = VMEM_CR4_PAE | (s->levels == 5 ? VMEM_CR4_LA57 : 0);
	r.efer = VMEM_EFER_LME | VMEM_EFER_LMA | (nxe ? VMEM_EFER_NXE : 0);
	r.cr3 = s->cr3;
	r.maxphyaddr = env->cpu.maxphyaddr;
	r.gbpages = env->cpu.gbpages;
	err = vmem_mmu_new(NULL, &r, &env->mmu);
	if (err) {
		fprintf(stderr, "bench: mmu setup: %s\n", vmem_strerror(err));
		env_fini(env);
		return -1;
	}
	return 0;
}

void env_fini(bench_env *env)
{
	if (env->mmu)
		vmem_mmu_free(env->mmu);
	if (env->gm)
		vmem_gmem_free(env->gm);
	env->mmu = NULL;
	env->gm = NULL;
}

bool env_agree(uint64_t la, unsigned access, unsigned flags,
	       const vmem_walk_result *lib, const bl_result *base)
{
	bool ok = lib->status == base->status;

	if (ok && base->status == BL_OK)
		ok = lib->gpa == base->gpa && lib->page_size == base->page_size &&
		     lib->entry == base->entry && lib->level == base->level &&
		     lib->perms == base->perms;
	else if (ok && base->status == BL_PF)
		ok = lib->error_code == base->error_code;
	else if (ok && base->status == BL_BAD_GPA)
		ok = lib->gpa == base->gpa;
	if (!ok)
		fprintf(stderr,
			"MISMATCH la=%#" PRIx64 " access=%#x flags=%#x\n"
			"  libvmem:  status %u gpa %#" PRIx64 " size %#" PRIx64 " entry %#" PRIx64
			" level %u perms %u ec %#x\n"
			"  baseline: status %u gpa %#" PRIx64 " size %#" PRIx64 " entry %#" PRIx64
			" level %u perms %u ec %#x\n",
			la, access, flags,
			(unsigned)lib->status, lib->gpa, lib->page_size, lib->entry,
			(unsigned)lib->level, (unsigned)lib->perms, (unsigned)lib->error_code,
			base->status, base->gpa, base->page_size, base->entry,
			base->level, base->perms, (unsigned)base->error_code);
	return ok;
}
