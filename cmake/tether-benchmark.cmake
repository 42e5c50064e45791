# find_package(tether COMPONENTS benchmark): the benchmark kit tether::benchmark (tether/bench.hpp) on Google
# Benchmark.
include(CMakeFindDependencyMacro)
find_dependency(benchmark)
include("${CMAKE_CURRENT_LIST_DIR}/tether-benchmarkTargets.cmake")
