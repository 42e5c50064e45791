/// \file
/// bench_fused: bandwidth of tether's fused update kernels on exec::serial, as the optimizer runs them.
///
/// Each kernel is the optimizer's own `tether::fused_update<Step, Pull, float, WithStep, WithForce>`, run
/// through `tether::exec::serial{}.parallel_for`, over N in {2^16, 2^20, 2^24} floats. Bytes are counted
/// with the model of docs/benchmarks.md (SGD 12, SGD+pull 16, SGD+local+global leader 20,
/// momentum 20, momentum+pull 24, Adam 28, Adam+pull 32 bytes per element) and reported as bytes/s and as a
/// percentage of a STREAM-style copy (`pct_of_copy`) and triad (`pct_of_triad`) measured by this program at
/// startup on the same N (median of several runs; printed in the context block). The copy and triad loops
/// are also benchmarked alongside the kernels. Finally the whole `optimizer::step` on a one-worker team is
/// benchmarked with check_gradient = false and true (the finite check is one extra read of g).
///
///     bench_fused --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_min_time=0.2

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <tether/tether.hpp>

#if defined(__GNUC__) && !defined(__clang__)
// Keeps GCC from turning the copy loop into a call to memcpy (which may use non-temporal stores for large
// sizes): the reference is a plain loop with ordinary stores, as the fused kernels use.
#define TETHER_BENCH_PLAIN_LOOP __attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
#else
#define TETHER_BENCH_PLAIN_LOOP __attribute__((noinline))
#endif

namespace {

using T = float;

constexpr std::array<std::size_t, 3> sizes{std::size_t{1} << 16, std::size_t{1} << 20, std::size_t{1} << 24};
constexpr std::size_t max_n = std::size_t{1} << 24;

/// Buffers shared by every benchmark, sized for the largest N, allocated and first-touched once.
/// Slots: 0 x, 1 g, 2-3 step state, 4-5 pull buffers (leader copies, elastic center and sum).
class pool {
 public:
  static constexpr std::size_t slots = 6;

  pool() {
    tether::exec::serial exec;
    for (std::size_t k = 0; k < slots; ++k) buf_[k] = exec.allocate<T>(max_n, T(0));
    for (std::size_t i = 0; i < max_n; ++i) {
      // g in [0.5, 1): never zero, so momentum and Adam state stay normal numbers (no denormal slow paths).
      const auto h = static_cast<std::uint32_t>(i * 2654435761u) >> 22;  // 10 bits
      buf_[0][i] = T(1) + T(h) / T(2048);
      buf_[1][i] = T(0.5) + T(h) / T(2048);
      buf_[4][i] = T(0.25) * T(h) / T(1024);
      buf_[5][i] = T(-0.5) * T(h) / T(1024);
    }
  }

  [[nodiscard]] T* slot(std::size_t k) { return buf_[k].data(); }

 private:
  std::array<tether::exec::serial::buffer<T>, slots> buf_;
};

pool& buffers() {
  static pool p;
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// STREAM-style references

/// STREAM copy: dst = src (8 bytes per element).
TETHER_BENCH_PLAIN_LOOP void stream_copy(const T* __restrict src, T* __restrict dst, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
}

/// STREAM triad: a = b + s*c (12 bytes per element).
TETHER_BENCH_PLAIN_LOOP void stream_triad(T* __restrict a, const T* __restrict b, const T* __restrict c, T s,
                                          std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

/// Reference bandwidths (bytes/s) of one N.
struct reference {
  double copy;
  double triad;
};
std::map<std::size_t, reference> references;

/// CPU time of the calling thread, the clock Google Benchmark reports as "CPU" (the machine is shared: wall
/// time also counts the time other processes hold the core).
double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Median over `samples` timings (thread CPU time) of `reps` back-to-back calls of f, as bytes/s.
template <class F>
double median_bandwidth(F&& f, std::size_t n, double bytes_per_elem, int samples = 9) {
  const std::size_t reps = std::max<std::size_t>(1, (std::size_t{1} << 25) / n);  // >= 32M elements a sample
  f();                                                                             // warm-up
  std::vector<double> bw;
  for (int s = 0; s < samples; ++s) {
    const double t0 = thread_seconds();
    for (std::size_t r = 0; r < reps; ++r) f();
    const double sec = thread_seconds() - t0;
    bw.push_back(bytes_per_elem * static_cast<double>(n) * static_cast<double>(reps) / sec);
  }
  std::nth_element(bw.begin(), bw.begin() + samples / 2, bw.end());
  return bw[static_cast<std::size_t>(samples / 2)];
}

void measure_references() {
  auto& p = buffers();
  for (const std::size_t n : sizes) {
    reference r{};
    r.copy = median_bandwidth([&] { stream_copy(p.slot(1), p.slot(3), n); }, n, 8.0);
    r.triad = median_bandwidth([&] { stream_triad(p.slot(3), p.slot(1), p.slot(4), T(0.5), n); }, n, 12.0);
    references[n] = r;
    benchmark::AddCustomContext("copy_GBps_N" + std::to_string(n), std::to_string(r.copy * 1e-9));
    benchmark::AddCustomContext("triad_GBps_N" + std::to_string(n), std::to_string(r.triad * 1e-9));
  }
}

/// Byte counters of one benchmark: bytes/s and the percentages of this N's copy and triad references.
void count_bytes(benchmark::State& state, std::size_t n, double bytes_per_elem) {
  const double bytes = bytes_per_elem * static_cast<double>(n) * static_cast<double>(state.iterations());
  const reference& r = references.at(n);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  // Rate counters are divided by the benchmark's time: (bytes / copy) / time * 100 = achieved / copy * 100.
  state.counters["pct_of_copy"] = benchmark::Counter(bytes / r.copy * 100.0, benchmark::Counter::kIsRate);
  state.counters["pct_of_triad"] = benchmark::Counter(bytes / r.triad * 100.0, benchmark::Counter::kIsRate);
  state.counters["bytes_per_elem"] = bytes_per_elem;
}

void bm_copy(benchmark::State& state, std::size_t n) {
  auto& p = buffers();
  for (auto _ : state) {
    stream_copy(p.slot(1), p.slot(3), n);
    benchmark::ClobberMemory();
  }
  count_bytes(state, n, 8.0);
}

void bm_triad(benchmark::State& state, std::size_t n) {
  auto& p = buffers();
  for (auto _ : state) {
    stream_triad(p.slot(3), p.slot(1), p.slot(4), T(0.5), n);
    benchmark::ClobberMemory();
  }
  count_bytes(state, n, 12.0);
}

// ---------------------------------------------------------------------------------------------------------
// Fused kernels, exactly as tether::optimizer::run builds and runs them

template <class Step, class Pull, bool WithForce>
void bm_fused(benchmark::State& state, std::size_t n, Step step, typename Pull::template context<T> pc,
              double bytes_per_elem) {
  auto& p = buffers();
  const auto sc = step.template prepare<T>(10, T(1e-3));
  tether::fused_update<Step, Pull, T, true, WithForce> k{p.slot(0), p.slot(1), {}, {}, sc, pc};
  for (std::size_t j = 0; j < Step::state_size; ++j) k.s[j] = p.slot(2 + j);
  for (std::size_t j = 0; j < Pull::buffers; ++j) k.b[j] = p.slot(4 + j);
  const tether::exec::serial exec{};
  for (auto _ : state) {
    exec.parallel_for(n, k);
    benchmark::ClobberMemory();
  }
  count_bytes(state, n, bytes_per_elem);
}

// ---------------------------------------------------------------------------------------------------------
// The whole optimizer::step on a one-worker team (no pull): the kernel plus the optional finite check of g

template <class Step>
void bm_optimizer(benchmark::State& state, std::size_t n, Step step, bool check, double bytes_per_elem) {
  auto& p = buffers();
  tether::team team(1);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<Step, tether::pull::none, tether::team::worker> opt(
        w, n, {.lr = 1e-3, .step = step.opt, .check_gradient = check});
    std::span<T> x{p.slot(0), n};
    std::span<const T> g{p.slot(1), n};
    for (auto _ : state) {
      opt.step(x, g, 1.0);
      benchmark::ClobberMemory();
    }
  });
  count_bytes(state, n, bytes_per_elem);
}

// ---------------------------------------------------------------------------------------------------------

template <class F>
void add(const std::string& name, std::size_t n, F f) {
  // CPU time (the default): every kernel runs on one thread, and CPU time leaves out the time other
  // processes of this shared machine hold the core.
  benchmark::RegisterBenchmark((name + "/" + std::to_string(n)).c_str(),
                               [f, n](benchmark::State& s) { f(s, n); })
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  using namespace tether;
  using T2 = T;
  const step::sgd sgd{};
  const step::momentum nesterov = step::nesterov(0.9f);
  const step::adam adam{};
  // Pull coefficients as in a running team: LSGD's strength/period, EASGD's beta/p with p = 4.
  const pull::leader::context<T2> leader_c{T2(0), T2(0.1f / 16.0f)};
  const pull::group_leader::context<T2> group_c{T2(0.1f / 16.0f), T2(0.1f / 64.0f)};
  const pull::elastic::context<T2> elastic_c{T2(0.9f / 4.0f)};

  for (const std::size_t n : sizes) {
    add("stream/copy", n, [](benchmark::State& s, std::size_t m) { bm_copy(s, m); });
    add("stream/triad", n, [](benchmark::State& s, std::size_t m) { bm_triad(s, m); });

    add("fused/sgd", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::sgd, pull::none, false>(s, m, sgd, {}, 12.0);
    });
    add("fused/sgd+leader", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::sgd, pull::leader, true>(s, m, sgd, leader_c, 16.0);
    });
    add("fused/sgd+elastic", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::sgd, pull::elastic, true>(s, m, sgd, elastic_c, 16.0);
    });
    add("fused/sgd+group_leader", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::sgd, pull::group_leader, true>(s, m, sgd, group_c, 20.0);
    });

    add("fused/nesterov", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::momentum, pull::none, false>(s, m, nesterov, {}, 20.0);
    });
    add("fused/nesterov+leader", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::momentum, pull::leader, true>(s, m, nesterov, leader_c, 24.0);
    });
    add("fused/nesterov+elastic", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::momentum, pull::elastic, true>(s, m, nesterov, elastic_c, 24.0);
    });

    add("fused/adam", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::adam, pull::none, false>(s, m, adam, {}, 28.0);
    });
    add("fused/adam+leader", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::adam, pull::leader, true>(s, m, adam, leader_c, 32.0);
    });
    add("fused/adam+elastic", n, [=](benchmark::State& s, std::size_t m) {
      bm_fused<step::adam, pull::elastic, true>(s, m, adam, elastic_c, 32.0);
    });

    // Bytes of the kernel's model; check_gradient = true reads g once more (+4 bytes per element).
    add("optimizer_step/sgd/check_gradient:0", n,
        [=](benchmark::State& s, std::size_t m) { bm_optimizer(s, m, sgd, false, 12.0); });
    add("optimizer_step/sgd/check_gradient:1", n,
        [=](benchmark::State& s, std::size_t m) { bm_optimizer(s, m, sgd, true, 12.0); });
    add("optimizer_step/adam/check_gradient:0", n,
        [=](benchmark::State& s, std::size_t m) { bm_optimizer(s, m, adam, false, 28.0); });
    add("optimizer_step/adam/check_gradient:1", n,
        [=](benchmark::State& s, std::size_t m) { bm_optimizer(s, m, adam, true, 28.0); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::fprintf(stderr, "bench_fused: measuring the copy and triad references...\n");
  measure_references();
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
