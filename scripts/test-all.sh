#!/usr/bin/env bash
# Build libvmem three ways and run every test that is not long: gcc (-Werror, memcheck included), clang with ASan+UBSan, clang with TSan (the threaded tests).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-2}
GCC_DIR=${GCC_DIR:-build-ci-gcc}
CLANG_DIR=${CLANG_DIR:-build-ci-clang}
TSAN_DIR=${TSAN_DIR:-build-ci-tsan}
# The tests that run the library from several threads at once (dirty logs
# beside vCPU writes and faults, EPT splits beside processor A/D writes).
TSAN_TESTS='^(test_dirty|test_ept_map)$'

# Labels left out of the default run; run them with e.g. `ctest -L matrix-full`.
LONG='^(long|matrix-full|bench-long|fuzz-long)$'

if [ "${1:-}" != "--no-deps" ]; then
  bash "$ROOT/scripts/deps.sh"
fi

start=$(date +%s)
status=0
summary=()

step() { echo; echo "==== $* ($(($(date +%s) - start)) s)"; }

# build NAME CC DIR [cmake options...] [--target T...]: configure (RelWithDebInfo,
# -Werror) and build; on failure the summary says NAME: BUILD FAILED.
build() {
  local name=$1 cc=$2 dir=$3 opts=() targets=()
  shift 3
  while [ $# -gt 0 ] && [ "$1" != --target ]; do opts+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; targets=(--target "$@"); }
  if CC=$cc cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMEM_WERROR=ON "${opts[@]}" &&
     cmake --build "$dir" -j"$JOBS" "${targets[@]}"; then
    return 0
  fi
  summary+=("$name: BUILD FAILED"); status=1
  return 1
}

# tests NAME DIR [VAR=value...] -- [ctest options...]: run ctest in DIR with
# those variables; the summary says NAME: passed, or TESTS FAILED.
tests() {
  local name=$1 dir=$2 vars=()
  shift 2
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  if (cd "$dir" && env "${vars[@]}" ctest -j"$JOBS" --output-on-failure "$@"); then
    summary+=("$name: passed")
  else
    summary+=("$name: TESTS FAILED"); status=1
  fi
}

step "gcc: configure and build (VMEM_WERROR=ON)"
if build gcc gcc "$GCC_DIR"; then
  step "gcc: ctest (all labels but long ones, memcheck included)"
  tests gcc "$GCC_DIR" -- -LE "$LONG"
fi

# The clang build takes the C forms of vmem_walk's window path and of vmem_nested_walk's
# common case (VMEM_ASM=OFF), so that ASan/UBSan check them; the gcc build runs the
# assembly forms (lib/walk.c, lib/nested_x86_64.c), under memcheck too.
step "clang: configure and build (VMEM_WERROR=ON, VMEM_SANITIZE=ON, VMEM_ASM=OFF, libFuzzer targets)"
if build clang+sanitizers clang "$CLANG_DIR" -DVMEM_SANITIZE=ON -DVMEM_ASM=OFF -DVMEM_BENCH=OFF -DVMEM_FUZZ=ON; then
  step "clang: ctest -L unit under ASan+UBSan"
  tests clang+sanitizers "$CLANG_DIR" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 -- -L '^unit$'
fi

step "clang: ThreadSanitizer over the tests that start threads (VMEM_TSAN=ON, VMEM_ASM=OFF)"
if build clang+tsan clang "$TSAN_DIR" -DVMEM_TSAN=ON -DVMEM_ASM=OFF -DVMEM_BENCH=OFF --target test_dirty test_ept_map; then
  # halt_on_error: the first data race fails the test (exit code 66).
  tests clang+tsan "$TSAN_DIR" TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 -- -R "$TSAN_TESTS"
fi

echo
echo "==== test-all: ${summary[*]} ($(($(date +%s) - start)) s)"
exit $status
