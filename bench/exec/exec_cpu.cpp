/// \file
/// bench_exec_cpu: the fused update kernels on every CPU execution space, step x pull x space x N, on the
/// benchmark kit (tether/bench.hpp): bytes/s and percentages of a copy and a triad measured in the same run,
/// by the same space, on the same N (`pct_of_copy`, `pct_of_triad`): the copy is kernels::copy through the
/// space's parallel_for, 8 bytes per element, median of 7 right before the space's first kernel at that N (the
/// `copy_GBps` counter of every row).
///
/// Spaces: serial; openmp on 1 thread and on all cores; thrust_cpp; thrust_omp (all cores); kokkos<Serial>.
/// Kernels: the optimizer's fused_update for SGD, SGD+leader, SGD+local/global leaders, momentum,
/// momentum+leader, Adam, Adam+leader (12 to 32 bytes per element, ../shared/PERFORMANCE.md). N in {2^20,
/// 2^24}. Every space allocates its own buffers (first touch by its own threads).
///
/// Clock (TETHER_BENCH_CLOCK): `real` (wall clock, the default: use it on a machine of your own) or `cpu`
/// (CPU time: the benchmark thread's for one-thread spaces, the process's for the others, so that time other
/// processes hold the cores is not counted on a shared machine). The copy reference uses the same clock.
///
///     TETHER_BENCH_CLOCK=cpu OMP_WAIT_POLICY=passive bench_exec_cpu --benchmark_min_time=0.3
///
/// The translation unit is built with -fno-tree-loop-distribute-patterns, so that GCC keeps the copy a loop
/// (with ordinary stores, as the kernels use) instead of a call to memcpy.

#include <benchmark/benchmark.h>

#include <omp.h>

#include <cstddef>
#include <cstdlib>
#include <string>

#include <Kokkos_Core.hpp>

#include "tether/bench.hpp"
#include "tether/exec/kokkos.hpp"
#include "tether/exec/openmp.hpp"
#include "tether/exec/thrust.hpp"
#include "tether/tether.hpp"

namespace {

/// The clock of TETHER_BENCH_CLOCK: CPU time (`cpu`) or the wall clock (anything else, the default).
tether::bench::clock bench_clock() {
  const char* c = std::getenv("TETHER_BENCH_CLOCK");
  return c != nullptr && std::string(c) == "cpu" ? tether::bench::clock::cpu : tether::bench::clock::real;
}

/// Registers the grid of one space; `threaded` when its kernels run on more than one thread.
template <class Exec>
void register_space(const std::string& name, const Exec& e, bool threaded) {
  using namespace tether;
  using bench::register_update;
  const bench::space<Exec> sp(name, e, {.sizes = {std::size_t{1} << 20, std::size_t{1} << 24},
                                        .threaded = threaded, .timing = bench_clock()});
  bench::register_references(sp);
  register_update<step::sgd, pull::none>(sp, "sgd");
  register_update<step::sgd, pull::leader>(sp, "sgd+leader");
  register_update<step::sgd, pull::group_leader>(sp, "sgd+group_leader");
  register_update<step::momentum, pull::none>(sp, "momentum");
  register_update<step::momentum, pull::leader>(sp, "momentum+leader");
  register_update<step::adam, pull::none>(sp, "adam");
  register_update<step::adam, pull::leader>(sp, "adam+leader");
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int cores = omp_get_max_threads();
  benchmark::AddCustomContext("omp_max_threads", std::to_string(cores));
  benchmark::AddCustomContext("clock", bench_clock() == tether::bench::clock::cpu ? "cpu" : "real");

  register_space("serial", tether::exec::serial{}, false);
  register_space("openmp_1", tether::exec::openmp{.threads = 1}, false);
  register_space("openmp_" + std::to_string(cores), tether::exec::openmp{.threads = cores}, cores > 1);
  register_space("thrust_cpp", tether::exec::thrust_cpp{}, false);
  register_space("thrust_omp", tether::exec::thrust_omp{}, cores > 1);
  register_space("kokkos_serial", tether::exec::kokkos<Kokkos::Serial>{}, false);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  tether::bench::release_buffers();  // Kokkos::Views go before Kokkos::finalize
  return 0;
}
