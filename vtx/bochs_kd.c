/* bochs_kd.c: host side of the Bochs oracle: extract the vectors the image printed, apply the known-difference table, write the corpora. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Known differences between Bochs 2.7 and the SDM. Each entry: how to
 * recognise it in what Bochs printed, what Bochs shows, what the SDM says.
 *
 * KD1  EPT violation on a guest paging-structure access (qualification bit 7
 *      set, bit 8 clear) with EPT A/D enabled (EPTP bit 6). Such an access is a
 *      write for EPT and its violation reports the read and the write bit
 *      (SDM vol. 3C 29.3.3.2 and 28.2.1, Table 28-7). Bochs reports only the
 *      write bit (bit 1). The test requires exactly that shape (bit 1 set, bit 0
 *      clear) and rewrites the expectation to the SDM value (bit 0 set).
 * KD2  EPT A/D disabled: a guest A/D update is a write to the guest paging
 *      structure and needs EPT write permission (SDM vol. 3C 29.3.3.2); Bochs
 *      sets the flag without checking. The image marks such a vector
 *      ("vtx_note":"KD2": a guest entry changed although its table's EPT path
 *      lacks W). Bochs' answer says nothing of what the SDM processor does
 *      next, so the vector is left out of the corpus (counted, not hidden).
 * KD3  Protection keys (CR4.PKE, 4-level paging) govern user-mode addresses
 *      only (U/S = 1 at every level), for supervisor-mode accesses as well:
 *      PKRU.AD forbids a CPL 0 read of a user-mode address when SMAP does not
 *      (SDM vol. 3A 4.6.1, 4.6.2; the error code's PK bit, 4.7). Bochs applies
 *      PKRU by the CPL instead: it checks the key of a supervisor-mode address
 *      too, before U/S, and AD only at CPL 3. The image marks such a vector
 *      ("vtx_note":"KD3": a PK fault on a supervisor-mode address, or a CPL 0
 *      data access to a user-mode address whose key has AD set). At CPL 3 the
 *      SDM answer is the U/S fault Bochs would report without its key check:
 *      the test requires the PK bit and rewrites the error code without it. At
 *      CPL 0 the SDM answer depends on checks Bochs skipped: left out.
 */

static int find_hex(const char *line, const char *key, uint64_t *v, const char **at)
{
	const char *p = strstr(line, key);
	if (!p)
		return 0;
	p += strlen(key);
	if (strncmp(p, "\"0x", 3) != 0)
		return 0;
	if (at)
		*at = p; /* the opening quote */
	*v = strtoull(p + 3, NULL, 16);
	return 1;
}

/* Write line with the value at `at` (a quoted hex string) replaced by
 * `value` and `note` appended to the id, minus a trailing vtx_note. */
static int rewrite(FILE *out, const char *line, const char *at, uint64_t value, const char *note)
{
	const char *vend = strchr(at + 1, '"') + 1;
	const char *idend = strstr(line, "\",\"kind\"");
	const char *tail = strstr(line, ",\"vtx_note\":");
	if (!idend || idend > at)
		return 0;
	fwrite(line, 1, (size_t)(idend - line), out);
	fputs(note, out);
	fwrite(idend, 1, (size_t)(at - idend), out);
	fprintf(out, "\"0x%" PRIx64 "\"", value);
	if (tail && tail > vend) {
		fwrite(vend, 1, (size_t)(tail - vend), out);
		fputs("}\n", out);
	} else {
		fputs(vend, out);
		fputc('\n', out);
	}
	return 1;
}

static char *read_line(FILE *f)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	int c;
	if (!b)
		return NULL;
	while ((c = fgetc(f)) != EOF && c != '\n') {
		if (n + 2 > cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				return NULL;
			}
			b = nb;
		}
		b[n++] = (char)c;
	}
	if (c == EOF && n == 0) {
		free(b);
		return NULL;
	}
	b[n] = 0;
	return b;
}

static const char header[] =
	"# Bochs %s oracle, format v1: produced by the vtx image (vtx/, seed 1) under Bochs 2.7 "
	"(corei7_icelake_u, MAXPHYADDR 40, no MBEC, no advanced EPT exit info); expectations are "
	"Bochs' except the known differences of vtx/bochs_kd.c (KD1 and KD3 at CPL 3 rewritten to the SDM value, "
	"KD2 and KD3 at CPL 0 left out).\n";

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s BOCHS_STDOUT OUT.jsonl [OUT_MODES.jsonl]\n", argv[0]);
		return 2;
	}
	FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "w");
	FILE *modes = argc == 4 ? fopen(argv[3], "w") : out;
	if (!in || !out || !modes) {
		perror("bochs_kd");
		return 2;
	}
	fprintf(out, header, "EPT");
	if (modes != out)
		fprintf(modes, header, "guest-modes");
	unsigned n = 0, kd1 = 0, kd2 = 0, kd3 = 0, kd3_out = 0, bad = 0, lines = 0;
	int done = 0;
	char *line;
	while ((line = read_line(in))) {
		lines++;
		if (strstr(line, "VTX-ORACLE-DONE"))
			done = 1;
		if (strstr(line, "VTX-FAILED"))
			fprintf(stderr, "bochs_kd: the image failed: %s\n", line);
		if (strncmp(line, "{\"v\":1,", 7) != 0) {
			free(line);
			continue;
		}
		FILE *to = strstr(line, "\"id\":\"bochs-modes-") ? modes : out;
		uint64_t eptp = 0, qual = 0, err = 0;
		const char *qat = NULL, *eat = NULL;
		char note[64];
		if (strstr(line, ",\"vtx_note\":\"KD2\"")) {
			kd2++;
		} else if (strstr(line, ",\"vtx_note\":\"KD3\"")) {
			if (!strstr(line, "\"cpl\":3")) {
				kd3_out++;
			} else if (!find_hex(line, "\"error_code\":", &err, &eat) || !(err & 0x20)) {
				fprintf(stderr, "bochs_kd: KD3 not as documented: %.100s\n", line);
				bad++;
			} else {
				snprintf(note, sizeof note, " [KD3: Bochs 2.7 reports 0x%" PRIx64 "]", err);
				if (rewrite(to, line, eat, err & ~0x20ull, note))
					kd3++, n++;
				else
					bad++;
			}
		} else if (strstr(line, "\"result\":\"ept_violation\"") && find_hex(line, "\"eptp\":", &eptp, NULL) &&
			   find_hex(line, "\"exit_qualification\":", &qual, &qat) && (eptp & (1u << 6)) &&
			   (qual & (1u << 7)) && !(qual & (1u << 8))) {
			if ((qual & 3) != 2) {
				fprintf(stderr, "bochs_kd: KD1 not as documented (Bochs qualification 0x%" PRIx64
						"): %.80s\n", qual, line);
				bad++;
			} else {
				snprintf(note, sizeof note, " [KD1: Bochs 2.7 reports 0x%" PRIx64 "]", qual);
				if (rewrite(to, line, qat, qual | 1, note))
					kd1++, n++;
				else
					bad++;
			}
		} else {
			fputs(line, to);
			fputc('\n', to);
			n++;
		}
		free(line);
	}
	fclose(in);
	if ((modes != out && fclose(modes) != 0) || fclose(out) != 0) {
		perror("bochs_kd");
		return 2;
	}
	printf("bochs_kd: %u vectors written (%u rewritten by KD1, %u by KD3), %u left out by KD2, %u by KD3, "
	       "%u not as documented\n", n, kd1, kd3, kd2, kd3_out, bad);
	if (!done) {
		fprintf(stderr, "bochs_kd: no VTX-ORACLE-DONE sentinel in %s (%u lines)\n", argv[1], lines);
		return 1;
	}
	if (n == 0 || bad)
		return 1;
	return 0;
}
