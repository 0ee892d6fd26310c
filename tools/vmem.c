/* vmem CLI: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>
#include "vmem_tool.h"

static const char usage[] =
	"usage: vmem <command> [options]\n"
	"\n"
	"commands:\n"
	"  vectors check FILE...   redo translation test vectors with libvmem, report disagreements\n"
	"  vectors gen [options]   generate walk vectors from seeded random page tables\n"
	"  translate [options] ADDR...\n"
	"                          translate linear addresses through a raw guest-memory image\n"
	"  dump [options]          print the page-table tree of a raw guest-memory image\n"
	"\n"
	"'vmem <command> --help' describes a command. Exit status: 0 success,\n"
	"1 failure (a vector disagrees, an input cannot be read), 2 usage error.\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{ "vectors", cmd_vectors }, { "translate", cmd_translate }, { "dump", cmd_dump },
	};
	for (unsigned k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
		if (!strcmp(cmd, cmds[k].name))
			return cmds[k].fn(argc - 1, argv + 1);
	fprintf(stderr, "vmem: unknown command '%s'\n\n%s", cmd, usage);
	return EXIT_USAGE;
}
