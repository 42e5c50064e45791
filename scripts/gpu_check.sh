#!/usr/bin/env bash
# Everything that needs a GPU, for a machine with one (nvcc, CMake, a host C++20 compiler; PyTorch for the
# comparison). Dependencies that machine may lack come from .gpu_deps/ (bash scripts/gpu_deps.sh on Debian).
#
#   bash scripts/gpu_check.sh build [OUT]   configure (CUDA for this GPU) and build         (about 5 min, 16 cores)
#   bash scripts/gpu_check.sh test  [OUT]   ctest -L gpu, then the whole suite
#   bash scripts/gpu_check.sh bench [OUT]   bench_exec_gpu (JSON), torch_compare.py, the other GPU benchmarks
#   bash scripts/gpu_check.sh all   [OUT]   the three in turn
#
# Each phase writes its log into OUT (default: out/gpu). The build tree is build/gpu. Phases are separate so
# that each stays well under a 10-minute command limit; the build tree is reused between them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

phase=${1:-all}
out=${2:-out/gpu}
mkdir -p "$out"
build=build/gpu
jobs=$(nproc)
deps="$PWD/.gpu_deps/usr"
# Google Benchmark's shared library from .gpu_deps, for the test and benchmark executables.
if [[ -d "$deps" ]]; then
  export LD_LIBRARY_PATH="$deps/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

do_build() {
  {
    nvidia-smi -L || true
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv || true
    nvcc --version | tail -2
    cmake --version | head -1
    c++ --version | head -1
  } >"$out/environment.txt" 2>&1
  local prefix=()
  [[ -d "$deps" ]] && prefix=(-DCMAKE_PREFIX_PATH="$deps")
  # The Fashion-MNIST parts need zlib and OpenBLAS, which the GPU machine may not have: they run in CI.
  # Warnings are errors in CI (g++ 12); another compiler's new warnings must not stop the GPU run.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${prefix[@]}" \
    -DTETHER_BUILD_FASHION_MNIST=OFF -DTETHER_WARNINGS_AS_ERRORS=OFF 2>&1 | tee "$out/configure.txt"
  grep -q "GPU found: TRUE" "$out/configure.txt" || { echo "gpu_check: configure found no GPU" >&2; exit 1; }
  cmake --build "$build" -j"$jobs" 2>&1 | tail -40 | tee "$out/build.txt"
}

do_test() {
  local rc=0
  ctest --test-dir "$build" -L gpu --output-on-failure 2>&1 | tee "$out/ctest_gpu.txt" || rc=1
  ctest --test-dir "$build" -j"$jobs" --output-on-failure 2>&1 | tail -60 | tee "$out/ctest_all.txt" || rc=1
  return $rc
}

do_bench() {
  "$build/bench/exec/bench_exec_gpu" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/gpu.json" --benchmark_out_format=json 2>&1 | tee "$out/bench_exec_gpu.txt"
  python3 bench/exec/torch_compare.py --n 67108864 --tether "$out/gpu.json" 2>&1 | tee "$out/torch_compare.txt"
  # Other GPU benchmarks, when built (codecs, NCCL): every bench/*/ executable whose name ends in _gpu.
  for b in "$build"/bench/*/*_gpu; do
    [[ -x "$b" && "$b" != */bench_exec_gpu ]] || continue
    name=$(basename "$b")
    "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
      --benchmark_out="$out/$name.json" --benchmark_out_format=json 2>&1 | tee "$out/$name.txt"
  done
}

case "$phase" in
  build) do_build ;;
  test) do_test ;;
  bench) do_bench ;;
  all) do_build && do_test && do_bench ;;
  *) echo "usage: bash scripts/gpu_check.sh build|test|bench|all [OUT]" >&2; exit 2 ;;
esac
