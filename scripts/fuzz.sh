#!/usr/bin/env bash
# Fuzzes every decoder of outside bytes with libFuzzer for a bounded time (docs/reliability.md#fuzzing):
#   codec_decode   every codec decoder (tests/fuzz/codec_decode.cpp, docs/codecs.md#fuzzing)       half the time
#   idx_parse      the Fashion-MNIST IDX reader, gzip and raw (tests/fuzz/idx_parse.cpp)          a quarter
#   demo_args      tether_demo's command-line parser (tests/fuzz/demo_args.cpp)                  an eighth
#   checkpoint_load  optimizer::load over checkpoint files (tests/fuzz/checkpoint_load.cpp)      a sixteenth
#   lbfgs_checkpoint_load  Sandblaster L-BFGS resumed from checkpoint files
#                  (tests/fuzz/lbfgs_checkpoint_load.cpp)                                        a sixteenth
#
#   bash scripts/fuzz.sh [seconds]      # in all, default 40; CI runs it after the sanitizers
#
# Builds with Debian's clang++ (packages clang and libclang-rt-14-dev, in scripts/setup.sh) into build/fuzz:
# each target with -fsanitize=fuzzer,address,undefined (leaks reported), and seed corpora of valid inputs.
# Skips, with a message and status 0, where clang++ or its fuzzer runtime is missing. Fails on any crash, sanitizer
# report, leak or broken promise of a target (see its comment); the crashing input is left in build/fuzz.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-40}
out=build/fuzz
cxx=${FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: skipped: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
mkdir -p "$out"
probe="$out/probe.cpp"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$probe"
if ! "$cxx" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
  echo "fuzz: skipped: $cxx cannot link libFuzzer (Debian: apt-get install libclang-rt-14-dev)"
  exit 0
fi

flags=(-std=c++20 -O1 -g -Iinclude -fno-omit-frame-pointer -Wall -Wextra -Wpedantic -Werror)
fuzz_flags=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
fmnist=(-Iexamples/fashion_mnist)
cblas=$(dirname "$(find /usr/include -name cblas.h -path '*openblas*' 2>/dev/null | head -1)")
[ -n "$cblas" ] && [ "$cblas" != . ] && fmnist+=(-isystem "$cblas")

# The seed corpora: rebuilt every run (the fuzzers add what they find to a copy in $out/work).
rm -rf "$out/corpus" "$out/work"
mkdir -p "$out/corpus/codec_decode" "$out/corpus/idx_parse" "$out/corpus/demo_args" "$out/corpus/checkpoint_load" \
  "$out/corpus/lbfgs_checkpoint_load"
echo "fuzz: building $out/{codec_decode,idx_parse,demo_args,checkpoint_load,lbfgs_checkpoint_load} ($cxx ${fuzz_flags[0]}) and the seed corpora"
"$cxx" "${flags[@]}" "${fuzz_flags[@]}" tests/fuzz/codec_decode.cpp -o "$out/codec_decode" &
"$cxx" "${flags[@]}" "${fuzz_flags[@]}" "${fmnist[@]}" tests/fuzz/idx_parse.cpp -lz -o "$out/idx_parse" &
"$cxx" "${flags[@]}" "${fuzz_flags[@]}" "${fmnist[@]}" tests/fuzz/demo_args.cpp -lz -lopenblas -o "$out/demo_args" &
"$cxx" "${flags[@]}" tests/fuzz/make_corpus.cpp -o "$out/make_corpus"
"$cxx" "${flags[@]}" tests/fuzz/make_idx_corpus.cpp -lz -o "$out/make_idx_corpus"
for job in $(jobs -p); do wait "$job"; done
# The checkpoint target skips the checksum comparison (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the usual
# libFuzzer convention), so that mutated payloads reach the field checks behind it.
"$cxx" "${flags[@]}" "${fuzz_flags[@]}" -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION tests/fuzz/checkpoint_load.cpp \
  -o "$out/checkpoint_load"
"$out/checkpoint_load" --make-corpus "$out/corpus/checkpoint_load"
"$cxx" "${flags[@]}" "${fuzz_flags[@]}" -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION tests/fuzz/lbfgs_checkpoint_load.cpp \
  -pthread -o "$out/lbfgs_checkpoint_load"
"$out/lbfgs_checkpoint_load" --make-corpus "$out/corpus/lbfgs_checkpoint_load"
"$out/make_corpus" "$out/corpus/codec_decode"
"$out/make_idx_corpus" "$out/corpus/idx_parse"
# Valid command lines of tether_demo (arguments separated by NUL bytes).
seed() { printf '%s\0' "${@:2}" | head -c -1 > "$out/corpus/demo_args/$1"; }
seed defaults
seed workers --workers 8 --epochs 2 --limit 2000
seed grouped --algorithm lsgd-grouped --workers 6 --group-size 3 --period 4 --global-period 16
seed numbers --lr 0.05 --momentum 0.5 --leader-pull 0.5 --leader-jump 0.25 --batch 64 --seed 42
seed paths --csv out/x.csv --png out/y.png --data-dir data
seed swarm --algorithm swarm --topology hypercube --workers 4 --bits 4 --step adam --schedule constant --data shards

total_runs=0
run() {  # name seconds max_len
  local name=$1 secs=$2 max_len=$3 log="$out/$1.log"
  mkdir -p "$out/work/$name"
  echo "fuzz: running $name for $secs s"
  if ! "$out/$name" -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$out/$name-" "$out/work/$name" "$out/corpus/$name" > "$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: FAILED: $name (crashing input in $out/)" >&2
    exit 1
  fi
  local runs cov
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz: $name passed: ${runs:-?} inputs in $secs s, ${cov:-cov: ?} edges, no crash, no sanitizer report"
  total_runs=$((total_runs + ${runs:-0}))
}
half=$(( (seconds + 1) / 2 ))
quarter=$(( (seconds - half + 1) / 2 ))
[ "$quarter" -ge 1 ] || quarter=1
run codec_decode "$half" 8192
run idx_parse "$quarter" 65536
eighth=$(( (seconds - half - quarter) / 2 ))
[ "$eighth" -ge 1 ] || eighth=1
run demo_args "$eighth" 4096
rest=$(( seconds - half - quarter - eighth ))
sixteenth=$(( rest / 2 ))
[ "$sixteenth" -ge 1 ] || sixteenth=1
run checkpoint_load "$sixteenth" 4096
run lbfgs_checkpoint_load "$(( rest - sixteenth > 0 ? rest - sixteenth : 1 ))" 8192
echo "fuzz: passed: $total_runs inputs over 5 targets in $seconds s"
