/* bochs_kd.c: host side of the Bochs EPT oracle: extract the vectors the image printed, apply the known-difference table, write the corpus. */
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

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BOCHS_STDOUT OUT.jsonl\n", argv[0]);
		return 2;
	}
	FILE *in = fopen(argv[1], "r"), *out = fopen(argv[2], "w");
	if (!in || !out) {
		perror("bochs_kd");
		return 2;
	}
	fprintf(out, "# Bochs EPT oracle, format v1: produced by the vtx image (vtx/, seed 1) under Bochs 2.7 "
		     "(corei7_skylake_x, MAXPHYADDR 40, no MBEC, no advanced EPT exit info); expectations are "
		     "Bochs' except the known differences of vtx/bochs_kd.c (KD1 rewritten to the SDM value, "
		     "KD2 left out).\n");
	unsigned n = 0, kd1 = 0, kd2 = 0, bad = 0, lines = 0;
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
		char *note = strstr(line, ",\"vtx_note\":\"KD2\"");
		if (note) {
			kd2++;
			free(line);
			continue;
		}
		uint64_t eptp = 0, qual = 0;
		const char *qat = NULL;
		if (strstr(line, "\"result\":\"ept_violation\"") && find_hex(line, "\"eptp\":", &eptp, NULL) &&
		    find_hex(line, "\"exit_qualification\":", &qual, &qat) && (eptp & (1u << 6)) &&
		    (qual & (1u << 7)) && !(qual & (1u << 8))) {
			if ((qual & 3) != 2) {
				fprintf(stderr, "bochs_kd: KD1 not as documented (Bochs qualification 0x%" PRIx64
						"): %.80s\n", qual, line);
				bad++;
			} else {
				/* Rewrite the qualification and say so in the id. */
				char newq[32], note1[64];
				snprintf(newq, sizeof newq, "\"0x%" PRIx64 "\"", qual | 1);
				snprintf(note1, sizeof note1, " [KD1: Bochs 2.7 reports 0x%" PRIx64 "]", qual);
				const char *qend = strchr(qat + 1, '"') + 1;
				const char *idend = strstr(line, "\",\"kind\"");
				if (!idend) {
					bad++;
				} else {
					fwrite(line, 1, (size_t)(idend - line), out);
					fputs(note1, out);
					fwrite(idend, 1, (size_t)(qat - idend), out);
					fputs(newq, out);
					fputs(qend, out);
					fputc('\n', out);
					kd1++;
					n++;
				}
				free(line);
				continue;
			}
		}
		fputs(line, out);
		fputc('\n', out);
		n++;
		free(line);
	}
	fclose(in);
	if (fclose(out) != 0) {
		perror("bochs_kd");
		return 2;
	}
	printf("bochs_kd: %u vectors written (%u rewritten by KD1), %u left out by KD2, %u not as documented\n",
	       n, kd1, kd2, bad);
	if (!done) {
		fprintf(stderr, "bochs_kd: no VTX-ORACLE-DONE sentinel in %s (%u lines)\n", argv[1], lines);
		return 1;
	}
	if (n == 0 || bad)
		return 1;
	return 0;
}
