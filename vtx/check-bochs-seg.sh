#!/usr/bin/env bash
# check-bochs-seg.sh: the segmentation lines of the Bochs run oracle_bochs_ept made (its fixture), checked field by field against libvmem by seg_oracle_check.
# usage: check-bochs-seg.sh VTX_BUILD_DIR SEG_ORACLE_CHECK [SEG_CORPUS]   (exit 77 = Bochs not installed: SKIPPED)
set -u
dir=$1 check=$2 corpus=${3:-}
if ! command -v bochs >/dev/null 2>&1 || [ ! -e /usr/share/bochs/BIOS-bochs-latest ]; then
	echo "SKIPPED: Bochs (bochs, bochsbios) is not installed; scripts/deps.sh installs it. Nothing was checked."
	exit 77
fi
run=$dir/bochs-run
if ! grep -aq '^VTX-ORACLE-DONE' "$run/bochs.out" 2>/dev/null; then
	echo "FAIL: no finished Bochs run in $run (the oracle_bochs_ept fixture makes it)"
	exit 1
fi
grep -a '^# vtx: seg' "$run/bochs.out"
{
	echo "# bochs-seg-v1: segment-register loads and one access through the register, as Bochs 2.7 did them (vtx/oracle_seg.c; docs/vtx.md)"
	grep -a '^{"seg":1,' "$run/bochs.out"
} > "$run/seg.jsonl"
"$check" "$run/seg.jsonl" > "$run/seg-check.txt"
rc=$?
tail -2 "$run/seg-check.txt"
if [ $rc -ne 0 ]; then
	echo "FAIL: libvmem disagrees with Bochs (after the known-difference table); details in $run/seg-check.txt:"
	grep -a -A3 '^FAIL' "$run/seg-check.txt" | head -60
fi
if [ -n "$corpus" ] && ! cmp -s <(grep -v '^#' "$run/seg.jsonl") <(grep -v '^#' "$corpus"); then
	echo "NOTE: $corpus differs from this run's scenarios (image changed); regenerate: cp $run/seg.jsonl $corpus"
fi
exit $rc
