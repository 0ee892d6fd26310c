/* fuzz_shadow: libFuzzer target (and replay driver): bytes steer a shadow_seq guest program; the shadow engine must agree with ref_walk + host map and pass its audit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shadow_run.h"
#include "shadow_seq.h"

/* Input layout: byte 0 bit 0: host 5-level; bits 7:1 select the budget;
 * byte 1: ops / 4 (at least 8); bytes 2..9: seed; the rest is consumed by
 * the generator as its random stream (4 bytes a draw), so mutations change
 * table contents, registers and ops directly. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned budgets[] = { 8, 9, 12, 16, 32, 64, 256 };
	if (size < 10)
		return 0;
	uint64_t seed;
	memcpy(&seed, data + 2, 8);
	unsigned ops = 8 + 4u * data[1] % 400;
	seq s;
	if (!seq_generate(&s, seed, data + 10, size - 10, ops, (data[0] & 1) ? 5 : 4))
		return 0;
	shadow_run_cfg cfg = { .max_pages = budgets[(data[0] >> 1) % 7], .max_roots = 1 + (data[0] >> 4) % 4,
			       .audit_each = true };
	char why[1024];
	if (!shadow_run(&s, &cfg, why, sizeof(why), NULL)) {
		fprintf(stderr, "fuzz_shadow: disagreement: %s\n", why);
		abort();
	}
	seq_free(&s);
	return 0;
}

#ifdef VMEM_FUZZ_REPLAY
/* Replay driver: run every file named on the command line once. */
int main(int argc, char **argv)
{
	int n = 0;
	for (int i = 1; i < argc; i++) {
		FILE *fp = fopen(argv[i], "rb");
		if (!fp) {
			fprintf(stderr, "fuzz_shadow_replay: cannot open %s\n", argv[i]);
			return 2;
		}
		static uint8_t buf[1 << 16];
		size_t len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, len);
		n++;
	}
	printf("%d passed, 0 failed\n", n);
	return n ? 0 : 1;
}
#endif
