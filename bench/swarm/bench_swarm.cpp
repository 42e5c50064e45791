// SwarmSGD on the thread team (docs/benchmarks.md, "SwarmSGD"):
//
//   exchange/N/bits   one step of node 0 that ends in a pair exchange with node 1, which serves it from sync():
//                     node 0's local step (a fused pass over N floats, lr 0), its snapshot, encode, the hand-over,
//                     node 1's decode, encode and average, node 0's decode and average; then a sync() of both
//                     (a barrier that keeps serving). bits 32 = fp32 (codec::identity), 8 and 4 = stochastic uniform
//                     (block 256).
//   local_step/N      node 0's step and sync() with no exchange (H larger than the run): what the above pays
//                     besides the exchange.
//   copy/N/bits       a copy of the bytes the exchange moves (one message each way), in the same run.
//   swarm/p/bits      p nodes of pure gossip (H = 1, lr 0) on a ring, N = 2^18: exchanges per second of the whole
//                     swarm (items/s), p threads on this machine's cores.
//
//     bench_swarm [--benchmark_filter=exchange] [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/rng.hpp>

#include <atomic>
#include <cstring>
#include <vector>

namespace {

using worker = tether::team::worker;

std::vector<float> model(std::size_t n, std::uint64_t seed) {
  tether::rng r(seed);
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(r.uniform() - 0.5);
  return x;
}

template <class Codec>
void pair_bench(benchmark::State& state, Codec codec, bool exchange) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::atomic<bool> done{false};
  std::size_t bytes = 0;
  tether::team team(2);
  team.run([&](worker& w) {
    std::vector<float> x = model(n, static_cast<std::uint64_t>(w.rank()) + 1), g(n, 0.0f);
    tether::algo::swarm_sgd<worker, tether::step::sgd, Codec> opt(
        w, n,
        {.lr = 0.0, .local_steps = exchange && w.rank() == 0 ? 1u : 1000000000u, .codec = codec,
         .check_gradient = false});
    if (w.rank() == 0) {
      bytes = opt.message_bytes();
      for (auto _ : state) {
        opt.step(x, g, 0.0);
        opt.sync(x);
      }
      done = true;
      opt.sync(x);
    } else {
      while (!done) opt.sync(x);
    }
    opt.finish(x);
  });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * bytes));
  state.counters["msg_bytes"] = static_cast<double>(bytes);
}

void copy_bench(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto bits = static_cast<unsigned>(state.range(1));
  const std::size_t bytes =
      bits == 32 ? tether::codec::identity<float>{}.encoded_size(n)
                 : tether::codec::stochastic_uniform<float>({.bits = bits, .block = 256}).encoded_size(n);
  std::vector<unsigned char> a(2 * bytes, 1), b(2 * bytes, 0);
  for (auto _ : state) {
    for (std::size_t i = 0; i < a.size(); ++i) b[i] = a[i];  // both messages, as a plain loop
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * bytes));
}

template <class Codec>
void swarm_bench(benchmark::State& state, Codec codec) {
  const int p = static_cast<int>(state.range(0));
  const std::size_t n = 1 << 18;
  constexpr int steps = 40;
  std::uint64_t exchanges = 0;
  for (auto _ : state) {
    std::vector<std::uint64_t> per(static_cast<std::size_t>(p));
    tether::team team(p);
    team.run([&](worker& w) {
      std::vector<float> x = model(n, static_cast<std::uint64_t>(w.rank()) + 1), g(n, 0.0f);
      tether::algo::swarm_sgd<worker, tether::step::sgd, Codec> opt(
          w, n,
          {.lr = 0.0, .topology = tether::comm::topology::ring(p), .local_steps = 1, .codec = codec,
           .check_gradient = false});
      for (int t = 0; t < steps; ++t) opt.step(x, g, 0.0);
      opt.finish(x);
      per[static_cast<std::size_t>(w.rank())] = opt.swarm().exchanges;
    });
    for (auto e : per) exchanges += e;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(exchanges));
  state.counters["nodes"] = p;
}

constexpr std::int64_t one_m = 1 << 20;
constexpr std::int64_t sixteen_m = 1 << 24;

tether::codec::stochastic_uniform<float> quant(unsigned bits) { return tether::codec::stochastic_uniform<float>({.bits = bits, .block = 256}); }

void register_all() {
  for (const std::int64_t n : {one_m, sixteen_m}) {
    benchmark::RegisterBenchmark("local_step", [](benchmark::State& s) { pair_bench(s, tether::codec::identity<float>{}, false); })
        ->Args({n})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("exchange", [](benchmark::State& s) { pair_bench(s, tether::codec::identity<float>{}, true); })
        ->Args({n, 32})->UseRealTime()->Unit(benchmark::kMillisecond);
    for (unsigned bits : {8u, 4u})
      benchmark::RegisterBenchmark("exchange", [bits](benchmark::State& s) { pair_bench(s, quant(bits), true); })
          ->Args({n, bits})->UseRealTime()->Unit(benchmark::kMillisecond);
    for (int bits : {32, 8, 4})
      benchmark::RegisterBenchmark("copy", copy_bench)->Args({n, bits})->Unit(benchmark::kMillisecond);
  }
  for (int p : {4, 8, 16}) {
    benchmark::RegisterBenchmark("swarm", [](benchmark::State& s) { swarm_bench(s, tether::codec::identity<float>{}); })
        ->Args({p, 32})->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("swarm", [](benchmark::State& s) { swarm_bench(s, quant(8)); })
        ->Args({p, 8})->UseRealTime()->Unit(benchmark::kMillisecond);
  }
}

const int registered = (register_all(), 0);

}  // namespace
