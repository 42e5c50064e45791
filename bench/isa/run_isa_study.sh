#!/usr/bin/env bash
# The instruction-set measurements of docs/benchmarks.md ("Instruction sets"): ROUNDS rounds (default 2), each
# running bench_isa (default flags, every level), bench_isa_native (-march=native) and, where PyTorch imports,
# bench/isa/torch_cpu_compare.py one after the other, so that the programs see the same machine; then the tables.
#
#   bash bench/isa/run_isa_study.sh                 # build dir build/default, results in out/isa
#   BUILD_DIR=build/me OUT_DIR=out/me ROUNDS=3 N=16777216 bash bench/isa/run_isa_study.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD_DIR=${BUILD_DIR:-build/default}
OUT_DIR=${OUT_DIR:-out/isa}
ROUNDS=${ROUNDS:-2}
N=${N:-16777216}
PYTHON=${PYTHON:-/usr/bin/python3}
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || cmake --preset default -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" --target bench_isa bench_isa_native -j2 >/dev/null
mkdir -p "$OUT_DIR"
args=(--benchmark_filter="/N:$N/" --benchmark_min_time=0.2 --benchmark_repetitions=5
      --benchmark_report_aggregates_only=true --benchmark_format=json)
have_torch=0
"$PYTHON" -c 'import torch' 2>/dev/null && have_torch=1
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r: bench_isa"
  OMP_WAIT_POLICY=passive "$BUILD_DIR/bench/isa/bench_isa" "${args[@]}" >"$OUT_DIR/default_$r.json"
  echo "== round $r: bench_isa_native"
  OMP_WAIT_POLICY=passive "$BUILD_DIR/bench/isa/bench_isa_native" "${args[@]}" >"$OUT_DIR/native_$r.json"
  if [[ $have_torch == 1 ]]; then
    echo "== round $r: torch"
    OMP_WAIT_POLICY=passive "$PYTHON" bench/isa/torch_cpu_compare.py --n "$N" --tether "$OUT_DIR/default_$r.json" \
      --json "$OUT_DIR/torch_$r.json" >"$OUT_DIR/torch_$r.md" 2>"$OUT_DIR/torch_$r.log"
  else
    echo "== round $r: no PyTorch for $PYTHON: the torch comparison is skipped"
  fi
done
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r"
  python3 bench/isa/isa_table.py "$OUT_DIR/default_$r.json" "$OUT_DIR/native_$r.json" --n "$N"
  [[ -f "$OUT_DIR/torch_$r.md" ]] && cat "$OUT_DIR/torch_$r.md"
done
