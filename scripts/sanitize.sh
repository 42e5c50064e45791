#!/usr/bin/env bash
# Builds the core, policy, communicator, algorithm, codec and NCCL (host side) tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (preset asan) and ThreadSanitizer (preset tsan) and runs them. MPI and GPU tests
# are left to the Release run: OpenMPI's own allocations drown ASan's leak report, and the GPU paths need a GPU.
# Usage: bash scripts/sanitize.sh [asan] [tsan]   (both by default; run scripts/setup.sh first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

presets=("$@")
[ ${#presets[@]} -gt 0 ] || presets=(asan tsan)

for preset in "${presets[@]}"; do
  areas='core|step|pull|problems|comm|algo|algo_async|ps|codec|isa|nccl|swarm|lbfgs|soak'
  # The IDX reader and the MLP under ASan too; not under TSan (OpenBLAS is not instrumented).
  [ "${preset}" = asan ] && areas="${areas}|fashion_mnist"
  echo "sanitize: preset ${preset}, test labels ${areas}"
  cmake --preset "${preset}" -DTETHER_BUILD_EXAMPLES=OFF -DTETHER_BUILD_BENCH=OFF > /dev/null
  # The test executables of those labels: tether_add_test names the target tether_test_<test name>.
  # exec_isa_bad_environment runs exec_isa's executable.
  mapfile -t targets < <(ctest --test-dir "build/${preset}" -N -L "^(${areas})$" |
                           sed -n 's/^ *Test *#[0-9]*: *\([^ ]*\).*/tether_test_\1/p' |
                           grep -vx -e tether_test_exec_isa_bad_environment)
  [ ${#targets[@]} -gt 0 ] || { echo "sanitize: no tests found for ${preset}" >&2; exit 1; }
  cmake --build --preset "${preset}" -j2 --target "${targets[@]}"
  ctest --preset "${preset}" -L "^(${areas})$"
done
