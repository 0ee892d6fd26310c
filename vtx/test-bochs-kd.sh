#!/usr/bin/env bash
# test-bochs-kd.sh: the known-difference table on a sample of Bochs output (tests/data/bochs-kd-sample.txt): KD1 and KD3 (CPL 3) rewritten, KD2 and KD3 (CPL 0) left out, the results agree with libvmem.
# usage: test-bochs-kd.sh VTX_BOCHS_KD VMEM_CLI SAMPLE WORK_DIR
set -u
kd=$1 vmem=$2 sample=$3 work=$4
mkdir -p "$work" && cd "$work" || exit 1
summary=$("$kd" "$sample" ept.jsonl modes.jsonl) || { echo "FAIL: $summary"; exit 1; }
echo "$summary"
fail=0
want="bochs_kd: 2 vectors written (1 rewritten by KD1, 1 by KD3), 1 left out by KD2, 1 by KD3, 0 not as documented"
[ "$summary" = "$want" ] || { echo "FAIL: expected: $want"; fail=1; }
# KD1: the read bit added to the qualification; KD3 at CPL 3: the PK bit (0x20) taken out of the error code.
grep -q '\[KD1: Bochs 2.7 reports 0x[0-9a-f]*\]' ept.jsonl || { echo "FAIL: no KD1 rewrite"; fail=1; }
grep -q 'bochs-modes-057 .*\[KD3: Bochs 2.7 reports 0x25\].*"error_code":"0x5"' modes.jsonl ||
	{ echo "FAIL: KD3 not rewritten to error code 0x5"; fail=1; }
! grep -q vtx_note ept.jsonl modes.jsonl || { echo "FAIL: a vtx_note reached a corpus"; fail=1; }
for f in ept modes; do
	"$vmem" vectors check $f.jsonl | tail -1 | grep -q '^1 passed, 0 failed$' || { echo "FAIL: $f.jsonl"; fail=1; }
done
exit $fail
