#!/usr/bin/env bash
# Installs the dependencies, builds tether's tests, examples and benchmarks with the default (Release)
# preset and runs the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
cmake --preset default
cmake --build --preset default -j2
ctest --preset default
