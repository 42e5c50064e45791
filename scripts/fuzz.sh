#!/usr/bin/env bash
# Fuzzes every codec decoder with libFuzzer (tests/fuzz/codec_decode.cpp, docs/codecs.md#fuzzing) for a bounded time.
#
#   bash scripts/fuzz.sh [seconds]      # default 20; CI runs it after the sanitizers
#
# Builds with Debian's clang++ (packages clang and libclang-rt-14-dev, in scripts/setup.sh) into build/fuzz:
# the target with -fsanitize=fuzzer,address,undefined, and the seed corpus from valid messages of every codec.
# Skips, with a message and status 0, where clang++ or its fuzzer runtime is missing. Fails on any crash, sanitizer
# report or broken promise of a decoder (see the target's comment); the crashing input is left in build/fuzz.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-20}
out=build/fuzz
cxx=${FUZZ_CXX:-clang++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: skipped: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)"
  exit 0
fi
mkdir -p "$out/corpus"
probe="$out/probe.cpp"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$probe"
if ! "$cxx" -fsanitize=fuzzer "$probe" -o "$out/probe" 2>/dev/null; then
  echo "fuzz: skipped: $cxx cannot link libFuzzer (Debian: apt-get install libclang-rt-14-dev)"
  exit 0
fi

flags=(-std=c++20 -O1 -g -Iinclude -fno-omit-frame-pointer)
echo "fuzz: building $out/codec_decode ($cxx -fsanitize=fuzzer,address,undefined)"
"$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  tests/fuzz/codec_decode.cpp -o "$out/codec_decode"
"$cxx" "${flags[@]}" tests/fuzz/make_corpus.cpp -o "$out/make_corpus"
"$out/make_corpus" "$out/corpus"

echo "fuzz: running codec_decode for ${seconds} s"
log="$out/fuzz.log"
if ! "$out/codec_decode" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" > "$log" 2>&1; then
  tail -40 "$log"
  echo "fuzz: FAILED (crashing input in $out/)" >&2
  exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
echo "fuzz: passed: ${runs:-?} inputs in ${seconds} s, no crash, no sanitizer report"
