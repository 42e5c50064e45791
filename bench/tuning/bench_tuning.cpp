/// \file
/// bench_tuning: the benchmarks behind tether's tuning constants (docs/benchmarks.md#tuning). Each sweeps one
/// constant around its default, everything else fixed, so the default can be read off the curve:
///
///   BM_openmp_loop/<n>/<threads>        exec::openmp's min_parallel: the fused SGD update of n floats on one
///                                       thread (an `omp simd` loop) and in a parallel region of 2 threads; the
///                                       default is the n from which 2 threads are faster
///   BM_team_reduce/<block>              team_tuning::reduce_block: the progress thread's rank-order sum of 4
///                                       workers' buffers of 2^20 floats into their 4 receive buffers
///   BM_team_store_exchange/<block>      team_tuning::store_block: 4 workers making 8 exchanges each with a
///                                       store of 2^20 floats (one block lock at a time)
///   BM_thrust_host_block/<block>        thrust_tuning::host_block: the fused SGD+leader update of 2^20 floats
///                                       on exec::thrust_cpp
///
///     OMP_WAIT_POLICY=passive bench_tuning --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include <cstddef>
#include <span>
#include <vector>

#include "tether/comm/shared_memory.hpp"
#include "tether/core/fused_update.hpp"
#include "tether/exec/openmp.hpp"
#include "tether/exec/thrust.hpp"
#include "tether/pull/leader.hpp"
#include "tether/pull/none.hpp"
#include "tether/step/sgd.hpp"

namespace {

using sgd_kernel = tether::fused_update<tether::step::sgd, tether::pull::none, float, true, false>;
using sgd_leader_kernel = tether::fused_update<tether::step::sgd, tether::pull::leader, float, true, true>;

void BM_openmp_loop(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const tether::exec::openmp omp{.threads = threads, .tuning = {.min_parallel = 0}};
  auto x = omp.allocate<float>(n, 1.0f);
  auto g = omp.allocate<float>(n, 0.5f);
  const sgd_kernel k{x.data(), g.data(), {}, {}, {0.001f}, {}};
  for (auto _ : state) {
    omp.parallel_for(n, k);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 12));
}
BENCHMARK(BM_openmp_loop)
    ->ArgsProduct({{4096, 8192, 16384, 32768, 65536, 131072, 262144}, {1, 2}})
    ->UseRealTime();

void BM_team_reduce(benchmark::State& state) {
  const auto block = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t n = std::size_t{1} << 20;
  constexpr int p = 4;
  std::vector<std::vector<float>> send(p, std::vector<float>(n, 0.25f)), recv(p, std::vector<float>(n));
  tether::comm::detail::pending_reduction op;
  op.count = n;
  for (int r = 0; r < p; ++r) {
    op.send.push_back(send[static_cast<std::size_t>(r)].data());
    op.recv.push_back(recv[static_cast<std::size_t>(r)].data());
  }
  for (auto _ : state) {
    tether::comm::detail::reduce_in_rank_order<float>(op, block);
    benchmark::DoNotOptimize(recv[0].data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 2 * p * sizeof(float)));
}
BENCHMARK(BM_team_reduce)->RangeMultiplier(2)->Range(16, 65536)->UseRealTime();

void BM_team_store_exchange(benchmark::State& state) {
  const auto block = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t n = std::size_t{1} << 20;
  constexpr int p = 4;
  constexpr int exchanges = 8;
  tether::team team(p, {.tuning = {.store_block = block}});
  for (auto _ : state) {
    team.run([&](tether::team::worker& w) {
      std::vector<float> init(n, 1.0f), read(n), delta(n, 0.001f);
      auto s = w.open_store(std::span<const float>(init), tether::shard_layout(n, 1), 0);
      for (int k = 0; k < exchanges; ++k)
        s.exchange(std::span<float>(read), std::span<float>(delta), [](std::size_t, std::size_t) {});
      s.close(std::span<float>(read));
      benchmark::DoNotOptimize(read.data());
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * p * exchanges));
}
BENCHMARK(BM_team_store_exchange)
    ->RangeMultiplier(4)
    ->Range(1024, 262144)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_thrust_host_block(benchmark::State& state) {
  const auto block = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t n = std::size_t{1} << 20;
  const tether::exec::thrust_cpp space{.tuning = {.host_block = block}};
  auto x = space.allocate<float>(n, 1.0f);
  auto g = space.allocate<float>(n, 0.5f);
  auto c = space.allocate<float>(n, 0.75f);
  const sgd_leader_kernel k{x.data(), g.data(), {}, {c.data()}, {0.001f}, {0.0f, 0.01f}};
  for (auto _ : state) {
    space.parallel_for(n, k);
    benchmark::DoNotOptimize(x.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n * 16));
}
BENCHMARK(BM_thrust_host_block)->RangeMultiplier(4)->Range(256, 65536)->UseRealTime();

}  // namespace
