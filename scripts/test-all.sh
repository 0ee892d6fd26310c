#!/usr/bin/env bash
# Build libvmem twice and run every test that is not long: gcc (-Werror, memcheck included), then clang with ASan+UBSan.
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

step "gcc: configure and build (VMEM_WERROR=ON)"
gcc_ok=1
CC=gcc cmake -S . -B "$GCC_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMEM_WERROR=ON || gcc_ok=0
[ $gcc_ok = 1 ] && { cmake --build "$GCC_DIR" -j"$JOBS" || gcc_ok=0; }
if [ $gcc_ok = 1 ]; then
  step "gcc: ctest (all labels but long ones, memcheck included)"
  if (cd "$GCC_DIR" && ctest -j"$JOBS" -LE "$LONG" --output-on-failure); then
    summary+=("gcc: passed")
  else
    summary+=("gcc: TESTS FAILED"); status=1
  fi
else
  summary+=("gcc: BUILD FAILED"); status=1
fi

# The clang build takes the C forms of vmem_walk's window path and of vmem_nested_walk's
# common case (VMEM_ASM=OFF), so that ASan/UBSan check them; the gcc build runs the
# assembly forms (lib/walk.c, lib/nested_x86_64.c), under memcheck too.
step "clang: configure and build (VMEM_WERROR=ON, VMEM_SANITIZE=ON, VMEM_ASM=OFF, libFuzzer targets)"
clang_ok=1
CC=clang cmake -S . -B "$CLANG_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMEM_WERROR=ON \
  -DVMEM_SANITIZE=ON -DVMEM_ASM=OFF -DVMEM_BENCH=OFF -DVMEM_FUZZ=ON || clang_ok=0
[ $clang_ok = 1 ] && { cmake --build "$CLANG_DIR" -j"$JOBS" || clang_ok=0; }
if [ $clang_ok = 1 ]; then
  step "clang: ctest -L unit under ASan+UBSan"
  if (cd "$CLANG_DIR" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest -j"$JOBS" -L '^unit$' --output-on-failure); then
    summary+=("clang+sanitizers: passed")
  else
    summary+=("clang+sanitizers: TESTS FAILED"); status=1
  fi
else
  summary+=("clang+sanitizers: BUILD FAILED"); status=1
fi

step "clang: ThreadSanitizer over the tests that start threads (VMEM_TSAN=ON, VMEM_ASM=OFF)"
tsan_ok=1
CC=clang cmake -S . -B "$TSAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMEM_WERROR=ON \
  -DVMEM_TSAN=ON -DVMEM_ASM=OFF -DVMEM_BENCH=OFF || tsan_ok=0
[ $tsan_ok = 1 ] && { cmake --build "$TSAN_DIR" -j"$JOBS" --target test_dirty test_ept_map || tsan_ok=0; }
if [ $tsan_ok = 1 ]; then
  # halt_on_error: the first data race fails the test (exit code 66).
  if (cd "$TSAN_DIR" && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      ctest -j"$JOBS" -R "$TSAN_TESTS" --output-on-failure); then
    summary+=("clang+tsan: passed")
  else
    summary+=("clang+tsan: TESTS FAILED"); status=1
  fi
else
  summary+=("clang+tsan: BUILD FAILED"); status=1
fi

echo
echo "==== test-all: ${summary[*]} ($(($(date +%s) - start)) s)"
exit $status
