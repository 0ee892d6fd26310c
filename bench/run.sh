#!/bin/sh
# run.sh: run bench_walk K times and print the table of per-cell medians (for noisy, shared machines).
#
# usage: bench/run.sh [path/to/bench_walk] [K] [extra bench_walk options...]
set -eu

BENCH=${1:-build-bench/bench/bench_walk}
K=${2:-5}
[ $# -ge 2 ] && shift 2 || shift $#
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

i=0
while [ "$i" -lt "$K" ]; do
	"$BENCH" "$@" >"$TMP/run.$i"
	i=$((i + 1))
done

# Rows keep their order from the first run; each numeric cell is the median over runs.
cat "$TMP"/run.* | awk -v k="$K" '
function median(s,   a, n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^\| case/ && !head { head = $0; next }
/^\|---/ && !sep { sep = $0; next }
/^\| \(/ {
	nf = split($0, f, "|")
	key = f[2]
	if (!(key in seen)) { seen[key] = 1; order[++nrows] = key; ncols[key] = nf }
	for (c = 3; c < nf; c++) cell[key, c] = cell[key, c] " " f[c]
}
/^A\/D already set/ {
	lib = $0; sub(/.*libvmem /, "", lib); sub(/x,.*/, "", lib)
	base = $0; sub(/.*baseline /, "", base); sub(/x.*/, "", base)
	adl = adl " " lib; adb = adb " " base
}
END {
	print head; print sep
	for (r = 1; r <= nrows; r++) {
		key = order[r]; line = "|" key
		for (c = 3; c < ncols[key]; c++) {
			m = median(cell[key, c])
			line = line sprintf("| %s ", (m < 10 && c == ncols[key] - 1) ? sprintf("%.2f", m) : (m < 100 ? sprintf("%.2f", m) : sprintf("%.1f", m)))
		}
		print line "|"
	}
	if (adl != "")
		printf "\nA/D already set / VMEM_WALK_NO_AD (median of paired passes, median of %d runs): libvmem %.2fx, baseline %.2fx\n", k, median(adl), median(adb)
	printf "\n(median of %d runs)\n", k
}'
