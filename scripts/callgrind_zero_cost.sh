#!/usr/bin/env bash
# Zero-cost composition check: instruction counts (callgrind Ir) of tether's composed fused kernel against a
# hand-written loop of the same update. By default: tether's own program (bench/fused/zero_cost: SGD + leader,
# Nesterov momentum + leader and Adam + elastic); EXE= any program built on tether/bench/zero_cost.hpp (your
# own step or pull against your own loop: docs/benchmarks.md#benchmark-your-own-kernel).
#
#   scripts/callgrind_zero_cost.sh                # build dir build/default, N = 1048576, K = 10
#   BUILD_DIR=build/me N=65536 K=20 TOLERANCE=0.02 TOLERANCE_avx2=0.08 scripts/callgrind_zero_cost.sh
#   EXE=build/default/examples/bench_custom/my_zero_cost scripts/callgrind_zero_cost.sh   # every case it lists
#
# At each instruction-set level of LEVELS (default: "baseline avx2" for tether's program, "baseline" for an EXE;
# valgrind does not run AVX-512): the composed side runs the program built with default flags, with TETHER_ISA
# set to the level (at avx2 that is the dispatched AVX2+FMA loop, docs/exec.md#instruction-sets); the hand side
# runs the same program built for that level (HAND_EXE_avx2, default zero_cost_avx2: -mavx2 -mfma
# -ffp-contract=off, as the dispatched loops do not contract either), so that the
# composed kernel is held to a hand loop compiled for the same instructions. A level the CPU lacks is skipped.
#
# Runs each case under `valgrind --tool=callgrind --toggle-collect=<the harness's entry function>` (only the
# kernel's K calls are counted), prints Ir per mode, Ir per element and the ratio composed/hand. One-sided:
# the composed kernel may be cheaper than the hand-written loop, never dearer; fails (exit 1) when a ratio is
# above 1 + TOLERANCE, or when the composed and hand-written results differ in any bit (BITS=ignore reports
# the difference without failing, for a hand loop that rounds differently on purpose).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build/default}
N=${N:-1048576}
K=${K:-10}
TOLERANCE=${TOLERANCE:-0.02}
BITS=${BITS:-require}

command -v valgrind >/dev/null || { echo "callgrind_zero_cost: valgrind not found (apt-get install valgrind)" >&2; exit 2; }

if [[ -n "${EXE:-}" ]]; then
  exe=$EXE
  [[ -x "$exe" ]] || { echo "callgrind_zero_cost: EXE=$exe is not an executable" >&2; exit 2; }
  build_type="of $exe"
else
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    # A fresh tree needs only the benchmarks: tests and examples off (a later `cmake --preset default` turns
    # them back on).
    cmake --preset default -B "$BUILD_DIR" -DTETHER_BUILD_TESTS=OFF -DTETHER_BUILD_EXAMPLES=OFF >/dev/null
  fi
  cmake --build "$BUILD_DIR" --target zero_cost zero_cost_avx2 -j2 >/dev/null
  exe="$BUILD_DIR/bench/fused/zero_cost"
  HAND_EXE_avx2=${HAND_EXE_avx2:-$BUILD_DIR/bench/fused/zero_cost_avx2}
  LEVELS=${LEVELS:-baseline avx2}
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")
fi
LEVELS=${LEVELS:-baseline}
KERNELS=${KERNELS:-$("$exe" --list | tr '\n' ' ')}
[[ -n "$KERNELS" ]] || { echo "callgrind_zero_cost: $exe lists no cases" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "zero_cost: N = $N elements, K = $K calls per kernel, build type ${build_type:-?}, $(valgrind --version)"
printf '%-9s %-16s %14s %14s %10s %10s %9s  %s\n' level kernel Ir_composed Ir_hand Ir/el_comp Ir/el_hand ratio \
  result
status=0
for level in $LEVELS; do
  case "$level" in
    baseline) hand_exe=$exe ;;
    avx2)
      hand_exe=${HAND_EXE_avx2:-}
      if [[ -z "$hand_exe" || ! -x "$hand_exe" ]]; then
        echo "skipped avx2: no hand-side program built for it (HAND_EXE_avx2)"
        continue
      fi
      if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
        echo "skipped avx2: this CPU has no AVX2+FMA"
        continue
      fi ;;
    *) echo "callgrind_zero_cost: LEVELS names $level; expected baseline or avx2 (valgrind runs no AVX-512)" >&2
       exit 2 ;;
  esac
  # TOLERANCE_<level> overrides TOLERANCE at that level.
  level_tolerance_var="TOLERANCE_$level"
  level_tolerance=${!level_tolerance_var:-$TOLERANCE}
for kernel in $KERNELS; do
  declare -A ir=() sum=()
  for mode in composed hand; do
    out="$work/callgrind.$level.$kernel.$mode"
    run_exe=$exe
    [[ "$mode" == hand ]] && run_exe=$hand_exe
    TETHER_ISA=$level valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect="*zero_cost_${mode}<*" \
      "$run_exe" "$mode" "$kernel" "$N" "$K" >"$work/stdout.$kernel.$mode" 2>"$work/stderr.$kernel.$mode" || {
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
  read -r ratio ok per_c per_h < <(awk -v c="${ir[composed]}" -v h="${ir[hand]}" -v t="$level_tolerance" \
    -v el="$((N * K))" 'BEGIN { r = c / h; printf "%.4f %d %.3f %.3f\n", r, (r <= 1 + t), c / el, h / el }')
  result=ok
  if [[ "$ok" != 1 ]]; then result="FAIL (composed dearer than hand by more than $level_tolerance)"; status=1; fi
  if [[ "${sum[composed]}" != "${sum[hand]}" ]]; then
    if [[ "$BITS" == ignore ]]; then
      result="$result; results differ (${sum[composed]} vs ${sum[hand]})"
    else
      result="$result; FAIL (results differ: ${sum[composed]} vs ${sum[hand]})"
      status=1
    fi
  fi
  printf '%-9s %-16s %14s %14s %10s %10s %9s  %s\n' "$level" "$kernel" "${ir[composed]}" "${ir[hand]}" "$per_c" \
    "$per_h" "$ratio" "$result"
  unset ir sum
done
done
exit $status
