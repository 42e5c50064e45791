#!/usr/bin/env bash
# The soak (tests/soak/soak.cpp, docs/reliability.md#soak): random runs of the thread team's collectives and of
# every team algorithm, with random delays and random throws, under ThreadSanitizer and under AddressSanitizer
# with LeakSanitizer, each for a bounded time. Prints the runs, the duration, the peak memory and the result.
#
#   bash scripts/soak.sh [seconds] [tsan] [asan]     # default 120 s, both sanitizers
#
# CI runs the same test for 8 s under both sanitizers through scripts/sanitize.sh (label soak).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-120}
shift || true
presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(tsan asan)

for preset in "${presets[@]}"; do
  cmake --preset "${preset}" -DTETHER_BUILD_EXAMPLES=OFF -DTETHER_BUILD_BENCH=OFF > /dev/null
  cmake --build --preset "${preset}" -j2 --target tether_test_soak
  log="build/${preset}/soak.log"
  echo "soak: ${preset}, ${seconds} s"
  status=0
  TETHER_SOAK_SECONDS="${seconds}" ASAN_OPTIONS=detect_leaks=1 TSAN_OPTIONS=halt_on_error=1 \
    /usr/bin/time -f "soak: ${preset}: %e s wall, peak memory %M KiB" \
    "build/${preset}/tests/soak/soak" > "${log}" 2>&1 || status=$?
  grep -E "^soak:|test cases|FAILED|WARNING: ThreadSanitizer|ERROR: (Address|Leak)Sanitizer" "${log}" || true
  if [ "${status}" -ne 0 ]; then
    echo "soak: ${preset} FAILED (status ${status}); the log is ${log}" >&2
    exit 1
  fi
done
echo "soak: passed"
