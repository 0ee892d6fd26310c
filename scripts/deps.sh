#!/usr/bin/env bash
# Install libvmem's build and test dependencies on Debian 12 (run as root, or with sudo available).
set -euo pipefail

# The whole list, in one place: README.md "Dependencies" mirrors it.
PKGS=(
  build-essential cmake pkg-config   # compilers, make, binutils (nm), cmake, pkg-config
  libcmocka-dev                      # unit tests
  libjemalloc-dev                    # the default allocator
  valgrind                           # memcheck label
  clang libclang-rt-dev              # second compiler; ASan/UBSan and libFuzzer runtimes
  bochs bochsbios bochs-term         # Bochs oracle
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages already installed"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
