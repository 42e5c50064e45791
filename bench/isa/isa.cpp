/// \file
/// bench_isa: the host kernels at each instruction-set level (exec/isa.hpp), side by side in one run: the
/// fused updates (SGD, SGD+leader, momentum, Nesterov, momentum+leader, Nesterov+leader, Adam, Adam+leader),
/// the codecs' encode and decode (stochastic_uniform 8 and 4 bits, lattice 8 bits), on exec::serial and on
/// exec::openmp with all cores, each at every level this CPU has, as `<kernel>/<space>@<level>/N:<n>`; and
/// the same Adam written with Google Highway and its own dispatch (`adam/highway@<target>/N:<n>`), to choose
/// between the two ways to dispatch by measurement (docs/benchmarks.md, "Instruction sets").
///
/// Built twice: bench_isa with the flags a user's build has by default (no -march), and bench_isa_native with
/// -march=native, whose rows are named `@native` (every level then runs the native code).
///
///     OMP_WAIT_POLICY=passive bench_isa --benchmark_filter=N:16777216 --benchmark_repetitions=5
///         --benchmark_report_aggregates_only=true          (one command line)

#include <benchmark/benchmark.h>

#include <omp.h>

#include <cstddef>
#include <string>
#include <vector>

#include "highway_adam.hpp"
#include "tether/bench.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"
#include "tether/exec/isa.hpp"
#include "tether/exec/openmp.hpp"
#include "tether/tether.hpp"

namespace {

using tether::exec::isa;

/// A host space whose every loop runs at one level: it selects the level before each call.
template <class Exec>
struct at_level {
  using memory_space = typename Exec::memory_space;
  template <class T>
  using buffer = typename Exec::template buffer<T>;

  Exec inner;
  isa level;

  template <class T>
  [[nodiscard]] buffer<T> allocate(std::size_t n, T value = T{}) const {
    tether::exec::select_isa(level);
    return inner.allocate(n, value);
  }
  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    tether::exec::select_isa(level);
    inner.parallel_for(n, f);
  }
  template <class F>
  [[nodiscard]] bool any(std::size_t n, const F& pred) const {
    tether::exec::select_isa(level);
    return inner.any(n, pred);
  }
  template <class R, class F>
  [[nodiscard]] R reduce(std::size_t n, R init, const F& f) const {
    tether::exec::select_isa(level);
    return inner.reduce(n, init, f);
  }
};

constexpr std::size_t large = std::size_t{1} << 24;

template <class Exec>
void register_space(const std::string& name, const Exec& e, bool threaded) {
  using namespace tether;
  const bench::space<Exec> sp(
      name, e, {.sizes = {std::size_t{1} << 20, large}, .threaded = threaded, .timing = bench::clock::real});
  bench::register_references(sp);
  bench::register_update<step::sgd, pull::none>(sp, "sgd");
  bench::register_update<step::sgd, pull::leader>(sp, "sgd+leader");
  bench::register_update<step::momentum, pull::none>(sp, "momentum", {.step = {.momentum = 0.9f}});
  bench::register_update<step::momentum, pull::none>(sp, "nesterov",
                                                     {.step = {.momentum = 0.9f, .nesterov = true}});
  bench::register_update<step::momentum, pull::leader>(sp, "momentum+leader", {.step = {.momentum = 0.9f}});
  bench::register_update<step::momentum, pull::leader>(sp, "nesterov+leader",
                                                       {.step = {.momentum = 0.9f, .nesterov = true}});
  bench::register_update<step::adam, pull::none>(sp, "adam");
  bench::register_update<step::adam, pull::leader>(sp, "adam+leader");
  bench::register_codec(sp, "su8", codec::stochastic_uniform<float>({.bits = 8}));
  bench::register_codec(sp, "su4", codec::stochastic_uniform<float>({.bits = 4}));
  bench::register_codec(sp, "lattice8", codec::lattice<float>({.bits = 8, .step = 1e-3f}));
}

/// The Highway Adam on buffers of its own, with step::adam's constants at step 1 (lr 1e-3), the same bytes
/// per element as the fused Adam (28: x, g, m, v read; x, m, v written).
void register_highway_adam() {
  for (const std::size_t n : {std::size_t{1} << 20, large}) {
    auto* b = benchmark::RegisterBenchmark(
        ("adam/highway/N:" + std::to_string(n)).c_str(), [n](benchmark::State& state) {
          std::vector<float, tether::aligned_allocator<float>> x(n, 1.0f), g(n, 0.5f), m(n, 0.0f), v(n, 0.0f);
          const tether::step::adam step{};
          const auto c = step.prepare<float>(1, 1e-3f);
          const tether_bench::adam_arrays a{x.data(), g.data(), m.data(), v.data(), n};
          const tether_bench::adam_constants k{c.b1,        c.one_minus_b1, c.b2, c.one_minus_b2,
                                               c.step_size, c.inv_sqrt_bc2, c.eps};
          for (auto _ : state) {
            tether_bench::highway_adam(a, k);
            benchmark::ClobberMemory();
          }
          state.SetBytesProcessed(static_cast<std::int64_t>(28.0 * static_cast<double>(n) *
                                                            static_cast<double>(state.iterations())));
          state.SetLabel(tether_bench::highway_target());
        });
    b->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int cores = omp_get_max_threads();
  benchmark::AddCustomContext("omp_max_threads", std::to_string(cores));
  benchmark::AddCustomContext("cpu_isa", std::string(tether::exec::to_string(tether::exec::isa_supported())));
  const bool native = tether::exec::isa_compiled != isa::baseline;
  for (const isa l : {isa::baseline, isa::avx2, isa::avx512}) {
    if (static_cast<int>(l) > static_cast<int>(tether::exec::isa_supported())) continue;
    if (native && l != isa::baseline) continue;  // every level runs the native code
    const std::string at = native ? "@native" : "@" + std::string(tether::exec::to_string(l));
    register_space("serial" + at, at_level<tether::exec::serial>{{}, l}, false);
    if (cores > 1)
      register_space("openmp_" + std::to_string(cores) + at,
                     at_level<tether::exec::openmp>{{.threads = cores}, l}, true);
  }
  register_highway_adam();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
