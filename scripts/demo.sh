#!/usr/bin/env bash
# Installs the dependencies, builds the demo with the default (Release) preset and runs it.
# Arguments are passed to the demo program.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEMO_TARGET=tether_demo
# The programs to run, preferred first: the Fashion-MNIST demo, else the quick start.
DEMO=(
  build/default/examples/fashion_mnist/tether_demo
  build/default/examples/quickstart/quickstart
)

bash scripts/setup.sh
cmake --preset default

# Build only the demo when the build tree has that target (the default preset uses Unix Makefiles, whose
# `help` target lists them all), else everything.
targets="$(cmake --build --preset default --target help)"
if grep -qxF "... ${DEMO_TARGET}" <<<"$targets"; then
  cmake --build --preset default -j2 --target "${DEMO_TARGET}"
else
  cmake --build --preset default -j2
fi

for program in "${DEMO[@]}"; do
  if [ -x "$program" ]; then
    echo "demo: ./$program $*"
    exec "./$program" "$@"
  fi
done
echo "demo: no demo program was built (looked for: ${DEMO[*]})" >&2
exit 1
