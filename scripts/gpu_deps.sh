#!/usr/bin/env bash
# Gathers, on a Debian 12 machine, what the GPU build needs and a lent GPU machine cannot fetch (it reaches no
# package registry): Catch2's header and Google Benchmark (headers, library, CMake package), into .gpu_deps/
# (ignored by git). Then carry .gpu_deps to the GPU machine and run scripts/gpu_check.sh there. See docs/exec.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dest=.gpu_deps/usr
rm -rf .gpu_deps
mkdir -p "$dest/include" "$dest/lib/x86_64-linux-gnu/cmake"
for pkg in catch2 libbenchmark-dev libbenchmark1debian; do
  dpkg -s "$pkg" >/dev/null 2>&1 || { echo "gpu_deps: $pkg is not installed (bash scripts/setup.sh)" >&2; exit 1; }
done
cp -r /usr/include/catch2 "$dest/include/"
cp -r /usr/include/benchmark "$dest/include/"
cp -a /usr/lib/x86_64-linux-gnu/libbenchmark.so* /usr/lib/x86_64-linux-gnu/libbenchmark_main.a \
  "$dest/lib/x86_64-linux-gnu/"
cp -r /usr/lib/x86_64-linux-gnu/cmake/benchmark "$dest/lib/x86_64-linux-gnu/cmake/"
du -sh .gpu_deps
