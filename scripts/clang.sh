#!/usr/bin/env bash
# The second compiler: builds and runs, with clang++ (Debian's clang, preset clang: Release, warnings as errors),
# what keeps the public headers honest for clang's users at a bounded cost:
#   headers_compile_alone   every public header on its own (MPI, NCCL, Thrust, Kokkos, OpenMP groups included)
#   labels core, step, pull, codec, comm (the thread team), examples (the docs' skeletons and usage snippets,
#                           docs_snippets), isa (the instruction-set levels: Clang's own exactness rules)
# Left out (g++ builds and runs them in scripts/test.sh): the algorithm, MPI, parameter-server, swarm, L-BFGS,
# problems, exec, Fashion-MNIST and install tests, the examples and the benchmarks, and CUDA (nvcc).
# Usage: bash scripts/clang.sh      (run scripts/setup.sh first; CI runs it after scripts/sanitize.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v clang++ >/dev/null 2>&1; then
  echo "clang: clang++ not found (Debian: apt-get install clang libomp-dev)" >&2
  exit 1
fi
labels='core|step|pull|codec|comm|examples|isa'
cmake --preset clang > /dev/null
# The test executables of those labels (tether_add_test names the target tether_test_<test name>); tests that
# are not tether_add_test executables (docs_snippets, codec_concept_compile_error, exec_isa_bad_environment)
# build what they need or run one that is.
mapfile -t targets < <(ctest --test-dir build/clang -N -L "^(${labels})$" |
                         sed -n 's/^ *Test *#[0-9]*: *\([^ ]*\).*/tether_test_\1/p' |
                         grep -vx -e tether_test_docs_snippets -e tether_test_codec_concept_compile_error \
                               -e tether_test_exec_isa_bad_environment)
[ ${#targets[@]} -gt 0 ] || { echo "clang: no tests found" >&2; exit 1; }
echo "clang: $(clang++ --version | head -1): building ${#targets[@]} test executables and every public header alone"
cmake --build --preset clang -j2 --target "${targets[@]}" tether_headers_alone
ctest --preset clang -L "^(${labels}|headers)$"
