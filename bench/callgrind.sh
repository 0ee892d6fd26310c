#!/bin/sh
# callgrind.sh: instructions per walk for libvmem and the baseline, counted by callgrind on the timed loops only.
#
# usage: bench/callgrind.sh [path/to/bench_walk]   (env: N=walks per case, CASES="...")
# Collection is toggled on inside loop_lib / loop_batch / loop_base, so table
# building, address generation and the agreement check are not counted. The
# count includes the bench loop itself (17 instructions per single walk, about 6 per batched walk).
set -eu

BENCH=${1:-build-bench/bench/bench_walk}
N=${N:-100000}
CASES=${CASES:-"hot2m hot64m random1g seq1g random2m random5l random64g batch1g batch64g adset noad"}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Total instructions collected in one callgrind output file.
irs() {
	sed -n -e 's/^summary: *\([0-9]*\).*/\1/p' -e 's/^totals: *\([0-9]*\).*/\1/p' "$1" | head -n 1
}

count() { # case walker function
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
		--collect-atstart=no --toggle-collect="$3" \
		"$BENCH" --case "$1" --n "$N" --reps 1 --warmup 0 --only "$2" \
		>"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; exit 1; }
	irs "$TMP/cg.out"
}

echo "| case | libvmem instr/walk | baseline instr/walk | libvmem / baseline |"
echo "|---|---:|---:|---:|"
for c in $CASES; do
	fn=loop_lib
	case $c in batch*) fn=loop_batch ;; esac
	lib=$(count "$c" lib "$fn")
	base=$(count "$c" base loop_base)
	awk -v c="$c" -v l="$lib" -v b="$base" -v n="$N" \
		'BEGIN { printf "| %s | %.1f | %.1f | %.2f |\n", c, l / n, b / n, l / b }'
done
