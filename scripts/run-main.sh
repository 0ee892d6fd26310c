#!/usr/bin/env bash
# Install dependencies, build libvmem, and run the main job: write a guest memory image, dump and translate it with the vmem CLI, then boot the VT-x driver under Bochs: two guests whose paging exits libvmem handles.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build-main}
JOBS=${JOBS:-2}

if [ "${1:-}" != "--no-deps" ]; then
  bash scripts/deps.sh
fi

echo "==== build ($BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$JOBS"

echo
echo "==== examples/walk_dump: write a raw guest memory image with 4-level page tables, walk it"
WORK="$BUILD/main-job"
mkdir -p "$WORK"
(cd "$WORK" && "../examples/example_walk_dump")
IMG="$WORK/walk_dump.img"

VMEM="$BUILD/tools/vmem"
vtx_main() {
  echo
  echo "==== vtx: the VT-x driver boots in Bochs; a guest under demand-paged EPT, then one under shadow paging, every paging exit handled by libvmem"
  if [ -d "$BUILD/vtx" ]; then
    # 77: Bochs not installed (SKIPPED is printed); any other failure stops the script.
    vtx/run-main-bochs.sh "$ROOT/$BUILD/vtx" --show || [ $? -eq 77 ]
  else
    echo "(the vtx image is not built)"
  fi
}
if [ ! -x "$VMEM" ]; then
  echo "(the vmem CLI is not built; the example above is the main job)"
  vtx_main
  exit 0
fi
# The image's registers: long mode (CR0.PE|WP|PG, CR4.PAE, EFER.LME|LMA|NXE), CR3 = 0x1000.
REGS=(--image "$IMG" --cr0 0x80010001 --cr3 0x1000 --cr4 0x20 --efer 0xd00)

echo
echo "==== vmem dump: every mapping in the image"
"$VMEM" dump "${REGS[@]}"

echo
echo "==== vmem translate -v: a 2M page, a 4K user page, a swapped-out page, a hole"
"$VMEM" translate -v "${REGS[@]}" 0x401234 0x601010 0x602000 0x603000

echo
echo "==== vmem translate: the user page, written from CPL 3 (read-only: #PF)"
"$VMEM" translate "${REGS[@]}" --cpl 3 --write 0x601010 || true

shopt -s nullglob
vectors=(tests/data/examples-*.jsonl)  # the known-good sets (others there are meant to fail)
if [ ${#vectors[@]} -gt 0 ]; then
  echo
  echo "==== vmem vectors check: the bundled test vectors"
  "$VMEM" vectors check "${vectors[@]}"
fi

vtx_main
