#!/usr/bin/env bash
# The cluster study (docs/benchmarks.md, "Cluster study"; docs/cluster.md): every algorithm trains the
# Fashion-MNIST MLP with one worker per MPI rank (fmnist_study_mpi, examples/fashion_mnist/train_mpi.hpp) on the
# emulated cluster of scripts/cluster.sh, for each layout (hosts x ranks per host) and link rate; Sandblaster
# L-BFGS (lbfgs_scaling_mpi) on the softmax regression beside them. Needs root (network namespaces).
#
#   sudo bash bench/fashion_mnist/run_cluster_study.sh            # 4x1 and 2x2, 100mbit, 1gbit, unlimited, seeds 1 2
#   LAYOUTS=4x1 RATES=1gbit SEEDS=1 EPOCHS=2 sudo -E bash bench/fashion_mnist/run_cluster_study.sh   # a quick look
#
# Each algorithm runs as its own mpirun (at most 590 s: a run that does not fit is cut and recorded as such), so
# a configuration's results accrue run by run; a run whose results exist is skipped (the study resumes). Results:
# $OUT_DIR/<layout>/<rate>/seed<k>/<algorithm>/{runs,curves}.csv and .../sandblaster.md; then
# bench/fashion_mnist/cluster_summary.py writes $OUT_DIR/summary.md (the tables of docs/benchmarks.md) and the
# curves for gnuplot, and scripts/plot_cluster_study.gp draws docs/img/cluster_accuracy_vs_time_<layout>.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
BUILD_DIR=${BUILD_DIR:-build/default}
OUT_DIR=$(realpath -m "${OUT_DIR:-out/cluster_study}")
IMG_DIR=${IMG_DIR:-docs/img}
LAYOUTS=${LAYOUTS:-"4x1 2x2"}
RATES=${RATES:-"100mbit 1gbit unlimited"}
SEEDS=${SEEDS:-"1 2"}
EPOCHS=${EPOCHS:-8}
# Each algorithm at its best learning rate of the thread-team study (docs/benchmarks.md).
ALGOS=${ALGOS:-"sync-sgd:0.1 lsgd:0.03 lsgd-grouped:0.03 easgd:0.03 local-sgd:0.03 overlap-local-sgd:0.03 async-lsgd:0.03 async-easgd:0.03 downpour-sgd:0.1 swarm:0.03 swarm+bits=8:0.1"}
RUN_LIMIT=${RUN_LIMIT:-590}
# Asynchronous EASGD's center is an MPI window: over TCP between hosts Open MPI 4.1 makes it only with osc/pt2pt
# (fmnist_study_mpi initialises MPI at MPI_THREAD_SERIALIZED, which osc/pt2pt needs).
export OMPI_MCA_osc=${OMPI_MCA_osc:-pt2pt}

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then cmake --preset default; fi
cmake --build "$BUILD_DIR" --target fmnist_study_mpi lbfgs_scaling_mpi -j2
study="$root/$BUILD_DIR/bench/fashion_mnist/fmnist_study_mpi"
lbfgs="$root/$BUILD_DIR/bench/lbfgs/lbfgs_scaling_mpi"
cluster=(bash "$root/scripts/cluster.sh")

up=$("${cluster[@]}" up --hosts 2 --rate unlimited)
if grep -q skipped <<<"$up"; then echo "$up"; exit 0; fi
trap '"${cluster[@]}" down' EXIT

start=$(date +%s)
for seed in $SEEDS; do
  for layout in $LAYOUTS; do
    hosts=${layout%x*}
    per_host=${layout#*x}
    for rate in $RATES; do
      "${cluster[@]}" up --hosts "$hosts" --rate "$rate"
      cfg="$OUT_DIR/$layout/$rate/seed$seed"
      for a in $ALGOS; do
        name=${a%%:*}
        dir="$cfg/$(tr '+=' '__' <<<"$name")"
        [ -f "$dir/runs.csv" ] && [ "$(wc -l <"$dir/runs.csv")" -ge 2 ] && continue
        mkdir -p "$dir"
        echo "== $layout $rate seed $seed: $name ($(( $(date +%s) - start )) s so far)"
        t0=$(date +%s)
        rc=0
        timeout "$RUN_LIMIT" "${cluster[@]}" run --hosts "$hosts" --ranks-per-host "$per_host" -- "$study" \
          --epochs "$EPOCHS" --seeds 1 --first-seed "$seed" --algorithms "$a" --out "$dir" >"$dir/log.txt" 2>&1 || rc=$?
        echo "   exit $rc after $(( $(date +%s) - t0 )) s: $(grep -E '^\[' "$dir/log.txt" | tail -1)"
        [ "$rc" -eq 0 ] || echo "$rc" >"$dir/failed"
      done
      sb="$cfg/sandblaster.md"
      if [ "$seed" = "$(awk '{print $1}' <<<"$SEEDS")" ] && [ ! -s "$sb" ]; then
        echo "== $layout $rate: Sandblaster L-BFGS"
        timeout "$RUN_LIMIT" "${cluster[@]}" run --hosts "$hosts" --ranks-per-host "$per_host" -- "$lbfgs" \
          --portions 32 --iterations 10 --samples 20000 --repetitions 3 >"$sb.log" 2>&1 || true
        grep -E '^\|' "$sb.log" >"$sb" || true
      fi
    done
  done
done
echo "== study took $(( $(date +%s) - start )) s"
python3 bench/fashion_mnist/cluster_summary.py "$OUT_DIR" > "$OUT_DIR/summary.md"
if command -v gnuplot >/dev/null 2>&1; then
  mkdir -p "$IMG_DIR"
  for layout in $LAYOUTS; do
    gnuplot -e "dir='$OUT_DIR'; img='$IMG_DIR'; layout='$layout'" scripts/plot_cluster_study.gp
  done
fi
echo "tables: $OUT_DIR/summary.md"
