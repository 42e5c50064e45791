#!/usr/bin/env bash
# Zero-cost composition check: instruction counts (callgrind Ir) of tether's composed fused kernel against a
# hand-written loop, for SGD + leader, Nesterov momentum + leader and Adam + elastic pulls.
#
#   scripts/callgrind_zero_cost.sh                # build dir build/default, N = 1048576, K = 10
#   BUILD_DIR=build/me N=65536 K=20 TOLERANCE=0.02 scripts/callgrind_zero_cost.sh
#
# Builds the target zero_cost with the default (Release) preset, runs each kernel under
# `valgrind --tool=callgrind --toggle-collect=<kernel function>` (only the kernel's instructions are counted),
# prints Ir per mode, Ir per element and the ratio composed/hand. Fails (exit 1) when a ratio leaves
# [1 - TOLERANCE, 1 + TOLERANCE] or when the composed and hand-written results differ in any bit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build/default}
N=${N:-1048576}
K=${K:-10}
TOLERANCE=${TOLERANCE:-0.02}
KERNELS=${KERNELS:-"sgd_leader nesterov_leader adam_elastic"}

command -v valgrind >/dev/null || { echo "callgrind_zero_cost: valgrind not found (apt-get install valgrind)" >&2; exit 2; }

if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  # A fresh tree needs only the benchmarks: tests and examples off (a later `cmake --preset default` turns
  # them back on).
  cmake --preset default -B "$BUILD_DIR" -DTETHER_BUILD_TESTS=OFF -DTETHER_BUILD_EXAMPLES=OFF >/dev/null
fi
cmake --build "$BUILD_DIR" --target zero_cost -j2 >/dev/null
exe="$BUILD_DIR/bench/fused/zero_cost"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "zero_cost: N = $N elements, K = $K calls per kernel, build type ${build_type:-?}, $(valgrind --version)"
printf '%-16s %14s %14s %10s %10s %9s  %s\n' kernel Ir_composed Ir_hand Ir/el_comp Ir/el_hand ratio result
status=0
for kernel in $KERNELS; do
  declare -A ir=() sum=()
  for mode in composed hand; do
    out="$work/callgrind.$kernel.$mode"
    valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="*${mode}_${kernel}(*" \
      "$exe" "$mode" "$kernel" "$N" "$K" >"$work/stdout.$kernel.$mode" 2>"$work/stderr.$kernel.$mode" || {
      cat "$work/stderr.$kernel.$mode" >&2
      exit 2
    }
    ir[$mode]=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out")
    sum[$mode]=$(sed -n 's/.*checksum=\([0-9a-f]*\).*/\1/p' "$work/stdout.$kernel.$mode")
    if [[ -z "${ir[$mode]}" || "${ir[$mode]}" == 0 ]]; then
      echo "callgrind_zero_cost: no instructions counted for ${mode}_${kernel}" >&2
      exit 2
    fi
  done
  read -r ratio ok per_c per_h < <(awk -v c="${ir[composed]}" -v h="${ir[hand]}" -v t="$TOLERANCE" \
    -v el="$((N * K))" 'BEGIN { r = c / h; printf "%.4f %d %.3f %.3f\n", r, (r >= 1 - t && r <= 1 + t), c / el, h / el }')
  result=ok
  if [[ "$ok" != 1 ]]; then result="FAIL (ratio outside 1 +- $TOLERANCE)"; status=1; fi
  if [[ "${sum[composed]}" != "${sum[hand]}" ]]; then
    result="$result; FAIL (results differ: ${sum[composed]} vs ${sum[hand]})"
    status=1
  fi
  printf '%-16s %14s %14s %10s %10s %9s  %s\n' "$kernel" "${ir[composed]}" "${ir[hand]}" "$per_c" "$per_h" \
    "$ratio" "$result"
  unset ir sum
done
exit $status
