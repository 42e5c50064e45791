#!/usr/bin/env bash
# Installs what tether's build, tests, examples and benchmarks need on Debian 12.
# Idempotent: when every package is already installed it does nothing (no apt-get update).
# Run as root, or as a user with sudo.
set -euo pipefail

packages=(
  build-essential cmake ninja-build git ca-certificates
  catch2 libbenchmark-dev libhwy-dev
  libopenmpi-dev openmpi-bin
  libtrilinos-kokkos-dev
  libopenblas-dev zlib1g-dev
  dataset-fashion-mnist
  gnuplot-nox valgrind time
  clang libclang-rt-14-dev libomp-dev
  liblbfgs-dev liblbfgspp-dev libeigen3-dev
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup: missing packages (${missing[*]}); run this script as root or install sudo" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
