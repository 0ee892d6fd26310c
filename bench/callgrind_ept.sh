#!/bin/sh
# callgrind_ept.sh: instructions per operation of bench_ept's cases, libvmem and the plain loop, counted by callgrind on the timed loops only.
#
# usage: bench/callgrind_ept.sh [path/to/bench_ept]   (env: N=walks per case, MAP_GIB, DIRTY_GIB)
# Collection is toggled on the noinline loop_* functions (callees included:
# for the map cases that is the table-page allocator and its zeroing), so set-up,
# address generation and agreement checks are not counted. Walk and TLB counts
# include the bench loop itself (about 5 instructions per operation).
set -eu

BENCH=${1:-build-eptx/bench/bench_ept}
N=${N:-100000}
MAP_GIB=${MAP_GIB:-64}
DIRTY_GIB=${DIRTY_GIB:-16}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

irs() { sed -n -e 's/^summary: *\([0-9]*\).*/\1/p' -e 's/^totals: *\([0-9]*\).*/\1/p' "$1" | head -n 1; }

# count FUNCTION ARGS...: instructions collected inside FUNCTION over one run.
count() {
	fn=$1; shift
	valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" --collect-atstart=no \
		--toggle-collect="$fn" "$BENCH" --reps 1 --map-gib "$MAP_GIB" --dirty-gib "$DIRTY_GIB" "$@" \
		>"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; exit 1; }
	irs "$TMP/cg.out"
}

row() { # name lib_instr base_instr ops_lib ops_base unit
	awk -v c="$1" -v l="$2" -v b="$3" -v nl="$4" -v nb="$5" -v u="$6" \
		'BEGIN { printf "| %s | %s | %.1f | %.1f | %.2f |\n", c, u, l / nl, b / nb, (l / nl) / (b / nb) }'
}

echo "| case | per | libvmem instr | plain loop instr | libvmem / plain |"
echo "|---|---|---:|---:|---:|"
# Mapping: per leaf entry written. The plain loop writes the same number of leaves.
for m in 4k:4096 2m:2097152 1g:1073741824; do
	name=${m%%:*}; leaf=${m#*:}
	leaves=$(awk -v g="$MAP_GIB" -v l="$leaf" 'BEGIN { printf "%d", g * 1073741824 / l }')
	cold=$(count loop_map_lib --case "map$name" --only lib)
	warm=$(count loop_map_lib_warm --case "map$name" --only lib)
	base=$(count loop_map_base --case "map$name" --only base)
	row "map $name cold" "$cold" "$base" "$leaves" "$leaves" "leaf"
	row "map $name warm" "$warm" "$base" "$leaves" "$leaves" "leaf"
done
# Walks and TLB: one warm-up plus one timed pass of N each.
for c in ept-hot:ept ept-64g:ept nested-ept4k:nested nested-ept2m:nested tlb:tlb; do
	name=${c%%:*}; fn=${c#*:}
	lib=$(count "loop_${fn}_lib" --case "$name" --only lib --n "$N")
	base=$(count "loop_${fn}_base" --case "$name" --only base --n "$N")
	row "$name" "$lib" "$base" $((2 * N)) $((2 * N)) "walk/lookup"
done
# The nested walk through the opt-in EPT paging-structure cache across walks (same plain loop).
for name in nested-pwc-ept4k nested-pwc-ept2m; do
	lib=$(count loop_nested_pwc_lib --case "$name" --only lib --n "$N")
	base=$(count loop_nested_base --case "$name" --only base --n "$N")
	row "$name" "$lib" "$base" $((2 * N)) $((2 * N)) "walk"
done
# Harvest: per 4K page of the range, two harvests (warm-up + timed); EPT_D
# mode (table scan), then PML mode (per logged page).
pages=$((DIRTY_GIB * 262144))
for p in 1 10 100; do
	lib=$(count loop_harvest_lib --case harvest-d --only lib --pct "$p")
	base=$(count loop_harvest_base --case harvest-d --only base --pct "$p")
	row "harvest ${DIRTY_GIB}G ${p}%" "$lib" "$base" $((2 * pages)) $((2 * pages)) "page"
done
for p in 1 10 100; do
	lib=$(count loop_harvest_lib --case harvest-pml --only lib --pct "$p")
	base=$(count loop_harvest_pml_base --case harvest-pml --only base --pct "$p")
	row "harvest ${DIRTY_GIB}G ${p}% PML" "$lib" "$base" $((2 * pages)) $((2 * pages)) "page"
done
# PML drain: per logged GPA, at 100 % (every page logged once per repetition,
# drained on log-full or by the harvest).
lib=$(count vmem_dirty_pml_drain --case harvest-pml --only lib --pct 100)
base=$(count loop_pml_drain_base --case harvest-pml --only base --pct 100)
row "pml drain" "$lib" "$base" $((2 * pages)) $((2 * pages)) "logged GPA"
