#!/usr/bin/env bash
# The Fashion-MNIST convergence study (docs/benchmarks.md, "Fashion-MNIST convergence study" and "Epoch time split").
#
#   bash bench/fashion_mnist/run_study.sh            # the full study: about 15-20 minutes on 2 cores
#   QUICK=1 bash bench/fashion_mnist/run_study.sh    # a 1-minute smoke run of the pipeline (5000 images, 1 seed)
#
# Builds fmnist_study in $BUILD_DIR (default build/default, configured with the default preset if needed), runs
#   1. the main grid: every algorithm of the thread team (Downpour: n_push = n_fetch = tau, momentum as the replicas'
#      local step, Adagrad or SGD on the shards), p = 4, tau = 16, 8 epochs, batch 64, momentum 0.9,
#      3 learning rates x 3 seeds, each worker on its own shard of the training set, then the epoch time split;
#   2. variants: LSGD with a stronger pull (p = 1) and local SGD, with replicated data (every worker samples the
#      whole training set), 2 learning rates x 3 seeds;
#   3. the demo's longer budget (24 epochs, tau = 8, batch 32, lr 0.02, replicated data) for LSGD (pull p = 1),
#      EASGD and local SGD, 3 seeds;
# and draws the plots with gnuplot (scripts/plot_fmnist_study.gp) into $IMG_DIR (default docs/img).
# Results: $OUT_DIR (default out/fmnist_study)/{main,variants,long}/summary.md, runs.csv, curves.csv, split.csv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BUILD_DIR=${BUILD_DIR:-build/default}
OUT_DIR=${OUT_DIR:-out/fmnist_study}
IMG_DIR=${IMG_DIR:-docs/img}

if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  if [ "$BUILD_DIR" = build/default ]; then
    cmake --preset default
  else
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
  fi
fi
cmake --build "$BUILD_DIR" --target fmnist_study -j2
study="$BUILD_DIR/bench/fashion_mnist/fmnist_study"

main_algos="sync-sgd lsgd lsgd+pull=1 lsgd-grouped easgd eamsgd local-sgd overlap-local-sgd async-lsgd async-easgd async-eamsgd downpour downpour-sgd"
variant_algos="lsgd+pull=1+replicated local-sgd+replicated"
long_algos="lsgd+pull=1+replicated:0.02,easgd+replicated:0.02,local-sgd+replicated:0.02"
common=()
long=(--epochs 24 --period 8 --batch 32)
variant_grid=":0.01/0.03"
if [ -n "${QUICK:-}" ]; then
  common=(--limit 5000 --seeds 1 --epochs 2 --split-epochs 1)
  long=(--epochs 2 --period 8 --batch 32)
  variant_grid=":0.03"
fi

start=$(date +%s)
echo "== main grid: $main_algos"
"$study" "${common[@]}" --out "$OUT_DIR/main" --algorithms "$(tr ' ' ',' <<<"$main_algos")"
echo "== variants: $variant_algos"
variants=""
for a in $variant_algos; do variants="${variants:+$variants,}$a$variant_grid"; done
"$study" "${common[@]}" --only grid --out "$OUT_DIR/variants" --algorithms "$variants"
echo "== the demo's budget: $long_algos"
"$study" "${common[@]}" "${long[@]}" --only grid --out "$OUT_DIR/long" --algorithms "$long_algos"
echo "== study took $(( $(date +%s) - start )) s"

if command -v gnuplot >/dev/null 2>&1; then
  mkdir -p "$IMG_DIR"
  files=$(tr '+=/' '___' <<<"$main_algos")
  gnuplot -e "dir='$OUT_DIR/main'; img='$IMG_DIR'; algos='$files'; titles='$main_algos';
    subtitle=', 8 epochs, tau 16, best lr'" scripts/plot_fmnist_study.gp
  long_names=$(sed 's/:[^,]*//g; s/,/ /g' <<<"$long_algos")
  long_files=$(tr '+=/' '___' <<<"$long_names")
  gnuplot -e "dir='$OUT_DIR/long'; img='$IMG_DIR'; algos='$long_files'; titles='$long_names'; prefix='fmnist_long_';
    subtitle=', 24 epochs, tau 8, batch 32'" scripts/plot_fmnist_study.gp
  echo "plots: $IMG_DIR/fmnist_{,long_}accuracy_vs_{epoch,bytes,time}.png"
else
  echo "gnuplot not found (Debian: gnuplot-nox): no plots; the data is in $OUT_DIR" >&2
fi
echo "tables: $OUT_DIR/{main,variants,long}/summary.md"
