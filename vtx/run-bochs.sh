#!/usr/bin/env bash
# run-bochs.sh: boot the vtx image in Bochs, extract its EPT and guest-mode vectors, apply the known-difference table, check them with `vmem vectors check`.
# usage: run-bochs.sh VTX_BUILD_DIR VMEM_CLI [EPT_CORPUS [MODES_CORPUS]]   (exit 77 = Bochs not installed: SKIPPED)
set -u
dir=$1 vmem=$2 corpus=${3:-} modes_corpus=${4:-}
if ! command -v bochs >/dev/null 2>&1 || [ ! -e /usr/share/bochs/BIOS-bochs-latest ]; then
	echo "SKIPPED: Bochs (bochs, bochsbios) is not installed; scripts/deps.sh installs it. Nothing was checked."
	exit 77
fi
run=$dir/bochs-run
rm -rf "$run" && mkdir -p "$run" && cd "$run" || exit 1
printf 'c\nquit\n' > rc
start=$(date +%s.%N)
# Bochs exits 1 even on success (the shutdown port): the sentinel decides.
timeout 300 bochs -q -f "$dir/bochsrc" -rc rc > bochs.out 2> bochs.err
end=$(date +%s.%N)
echo "bochs: $(awk "BEGIN{printf \"%.1f\", $end-$start}") s; $(grep -a '^# vtx: [0-9]* vectors' bochs.out)"
grep -a '^# vtx: modes:' bochs.out
if ! grep -aq '^VTX-ORACLE-DONE' bochs.out; then
	echo "FAIL: no VTX-ORACLE-DONE sentinel; last lines of the console and of bochs.log:"
	grep -a -v '^{' bochs.out | tail -15
	tail -5 bochs.log 2>/dev/null
	exit 1
fi
"$dir/vtx_bochs_kd" bochs.out vectors.jsonl modes.jsonl || exit 1
status=0
for f in vectors modes; do
	"$vmem" vectors check $f.jsonl > $f-check.txt
	rc=$?
	echo "$f.jsonl: $(tail -1 $f-check.txt)"
	if [ $rc -ne 0 ]; then
		echo "FAIL: libvmem disagrees with Bochs (after the known-difference table); details in $run/$f-check.txt:"
		grep -a -A4 '^FAIL' $f-check.txt | head -60
		status=1
	fi
done
for pair in "vectors.jsonl:$corpus" "modes.jsonl:$modes_corpus"; do
	got=${pair%%:*} want=${pair#*:}
	if [ -n "$want" ] && ! cmp -s <(grep -v '^#' $got) <(grep -v '^#' "$want"); then
		echo "NOTE: $want differs from this run's vectors (image or library allocation changed);"
		echo "      regenerate: cp $run/$got $want"
	fi
done
exit $status
