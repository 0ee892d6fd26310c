/* vmem CLI: option parsing, number parsing and the register options of translate/dump. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vmem_tool.h"

int topt_next(int argc, char **argv, topt_state *st, const topt *opts, unsigned n,
	      const char **val, const char *cmd)
{
	int *i = &st->i;
	if (*i >= argc)
		return -2;
	const char *a = argv[(*i)++];
	if (st->rest || a[0] != '-' || a[1] == 0) {
		*val = a;
		return -1;
	}
	if (strcmp(a, "--") == 0) {
		st->rest = true;
		return topt_next(argc, argv, st, opts, n, val, cmd);
	}
	const char *eq = strchr(a, '=');
	size_t len = eq ? (size_t)(eq - a) : strlen(a);
	for (unsigned k = 0; k < n; k++) {
		if (strlen(opts[k].name) != len || strncmp(opts[k].name, a, len) != 0)
			continue;
		if (!opts[k].arg) {
			if (eq) {
				fprintf(stderr, "vmem %s: option %s takes no value\n", cmd, opts[k].name);
				return -3;
			}
			*val = NULL;
			return (int)k;
		}
		if (eq) {
			*val = eq + 1;
		} else if (*i < argc) {
			*val = argv[(*i)++];
		} else {
			fprintf(stderr, "vmem %s: option %s needs a value\n", cmd, opts[k].name);
			return -3;
		}
		return (int)k;
	}
	fprintf(stderr, "vmem %s: unknown option '%s' (try 'vmem %s --help')\n", cmd, a, cmd);
	return -3;
}

bool parse_u64(const char *cmd, const char *what, const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	unsigned long long v = strtoull(s, &end, (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10);
	if (errno || *end)
		goto bad;
	*out = v;
	return true;
bad:
	fprintf(stderr, "vmem %s: %s: not a number: '%s'\n", cmd, what, s);
	return false;
}

const topt regs_topts[REGS_TOPTS_N] = {
	{ "--cr0", true }, { "--cr3", true }, { "--cr4", true }, { "--efer", true },
	{ "--maxphyaddr", true }, { "--image", true }, { "--base", true },
};

bool regs_opt(regs_opts *ro, const char *cmd, int which, const char *val)
{
	uint64_t v;
	if (which == 5) {
		ro->image = val;
		return true;
	}
	if (!parse_u64(cmd, regs_topts[which].name, val, &v))
		return false;
	switch (which) {
	case 0: ro->regs.cr0 = v; break;
	case 1: ro->regs.cr3 = v; break;
	case 2: ro->regs.cr4 = v; break;
	case 3: ro->regs.efer = v; break;
	case 4:
		if (v < 32 || v > 52) {
			fprintf(stderr, "vmem %s: --maxphyaddr must be 32..52\n", cmd);
			return false;
		}
		ro->regs.maxphyaddr = (unsigned)v;
		break;
	case 6:
		if (v & 0xfff) {
			fprintf(stderr, "vmem %s: --base must be 4 KiB aligned\n", cmd);
			return false;
		}
		ro->base = v;
		break;
	}
	ro->seen |= 1u << which;
	return true;
}

bool regs_complete(const regs_opts *ro, const char *cmd)
{
	bool ok = true;
	for (int k = 0; k < 4; k++)
		if (!(ro->seen & (1u << k))) {
			fprintf(stderr, "vmem %s: %s is required\n", cmd, regs_topts[k].name);
			ok = false;
		}
	if (!ro->image) {
		fprintf(stderr, "vmem %s: --image is required\n", cmd);
		ok = false;
	}
	return ok;
}

vmem_mmu *tool_mmu(const char *cmd, const vmem_regs *r, const vmem_gmem *gm)
{
	vmem_mmu *mmu;
	vmem_err e = vmem_mmu_new(NULL, r, &mmu);
	if (e) {
		fprintf(stderr, "vmem %s: the library refuses these registers: %s\n", cmd,
			vmem_strerror(e));
		return NULL;
	}
	if (vmem_mmu_mode(mmu) == VMEM_MODE_PAE) {
		e = vmem_mmu_load_pdptes(mmu, gm);
		if (e) {
			/* MOV to CR3 would fault (#GP) or read outside the image. */
			fprintf(stderr, "vmem %s: cannot load the PAE PDPTEs at CR3: %s\n", cmd,
				vmem_strerror(e));
			vmem_mmu_free(mmu);
			return NULL;
		}
	}
	return mmu;
}
