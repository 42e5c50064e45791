/// \file
/// bench_fused: bandwidth of tether's fused update kernels on exec::serial, as the optimizer runs them, on
/// the benchmark kit (tether/bench.hpp).
///
/// Each kernel is the optimizer's own `tether::fused_update<Step, Pull, float, ...>` with the contexts the
/// policies prepare, run through `tether::exec::serial{}.parallel_for`, over N in {2^16, 2^20, 2^24} floats.
/// Bytes follow the model the kit derives from the policies (SGD 12, SGD+pull 16, SGD+local+global leader
/// 20, momentum 20, momentum+pull 24, Adam 28, Adam+pull 32 bytes per element: docs/benchmarks.md), reported
/// as bytes/s and as a percentage of a copy (`pct_of_copy`) and triad (`pct_of_triad`) that exec::serial runs
/// in the same process on the same N (median of 7, measured before the first kernel of that N; rows `copy/`
/// and `triad/` too). CPU time of the benchmark thread (the machine is shared). Finally the whole
/// `optimizer::step` on a one-worker team is benchmarked with check_gradient = false and true (the finite
/// check is one extra read of g).
///
///     bench_fused --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2
///
/// Built with -fno-tree-loop-distribute-patterns, so that GCC keeps the copy reference a loop with ordinary
/// stores (as the kernels use) instead of a call to memcpy.

#include <benchmark/benchmark.h>

#include <cstddef>
#include <span>
#include <string>

#include <tether/bench.hpp>
#include <tether/tether.hpp>

namespace {

using T = float;
using space_t = tether::bench::space<tether::exec::serial>;

/// The whole optimizer::step on a one-worker team (no pull): the kernel plus the optional finite check of g.
template <class Step>
void bm_optimizer(benchmark::State& state, space_t sp, std::size_t n, typename Step::options so, bool check) {
  const tether::bench::reference r = sp.references(n);
  std::span<T> x{sp.buffer(0).data(), n};
  std::span<const T> g{sp.buffer(1).data(), n};
  tether::team team(1);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<Step, tether::pull::none, tether::team::worker> opt(
        w, n, {.lr = 1e-6, .step = so, .check_gradient = check});
    for (auto _ : state) {
      opt.step(x, g, 1.0);
      benchmark::ClobberMemory();
    }
  });
  constexpr double bpe = tether::bench::bytes_per_element<Step, tether::pull::none>;
  tether::bench::set_counters(state, bpe * static_cast<double>(n), bpe, r);
}

void register_all() {
  using namespace tether;
  using bench::register_update;
  const space_t cpu("serial", exec::serial{}, {.sizes = {std::size_t{1} << 16, std::size_t{1} << 20, std::size_t{1} << 24}});
  const step::momentum::options nesterov{.momentum = 0.9f, .nesterov = true};
  // Pull coefficients of a running team, from the pulls' own prepare: LSGD's strength/period (with a global
  // period of 64 for the local/global leaders), EASGD's beta/p with p = 4.
  const pull::leader_options grouped{.period = 16, .global_period = 64};

  bench::register_references(cpu);
  register_update<step::sgd, pull::none>(cpu, "sgd");
  register_update<step::sgd, pull::leader>(cpu, "sgd+leader");
  register_update<step::sgd, pull::elastic>(cpu, "sgd+elastic");
  register_update<step::sgd, pull::group_leader>(cpu, "sgd+group_leader", {.pull = grouped});
  register_update<step::momentum, pull::none>(cpu, "nesterov", {.step = nesterov});
  register_update<step::momentum, pull::leader>(cpu, "nesterov+leader", {.step = nesterov});
  register_update<step::momentum, pull::elastic>(cpu, "nesterov+elastic", {.step = nesterov});
  register_update<step::adam, pull::none>(cpu, "adam");
  register_update<step::adam, pull::leader>(cpu, "adam+leader");
  register_update<step::adam, pull::elastic>(cpu, "adam+elastic");

  for (const std::size_t n : cpu.options().sizes) {
    const std::string sfx = "/serial/N:" + std::to_string(n);
    for (const bool check : {false, true}) {
      const std::string c = check ? "/check_gradient:1" : "/check_gradient:0";
      benchmark::RegisterBenchmark(("optimizer_step_sgd" + c + sfx).c_str(), bm_optimizer<step::sgd>, cpu, n,
                                   step::sgd::options{}, check);
      benchmark::RegisterBenchmark(("optimizer_step_adam" + c + sfx).c_str(), bm_optimizer<step::adam>, cpu, n,
                                   step::adam::options{}, check);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  tether::bench::release_buffers();
  return 0;
}
