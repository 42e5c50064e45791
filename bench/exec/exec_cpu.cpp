/// \file
/// bench_exec_cpu: the fused update kernels on every CPU execution space, step x pull x space x N, as
/// bytes/s and as a percentage of a copy measured in the same run, by the same space, on the same N
/// (`pct_of_copy`): the copy is kernels::copy through the space's parallel_for, 8 bytes per element, median
/// of 7 right before the space's first kernel at that N (the `copy_GBps` counter of every row).
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

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <Kokkos_Core.hpp>

#include "kernels.hpp"
#include "tether/exec/kokkos.hpp"
#include "tether/exec/openmp.hpp"
#include "tether/exec/thrust.hpp"

namespace {

constexpr std::array<std::size_t, 2> sizes{std::size_t{1} << 20, std::size_t{1} << 24};
constexpr std::size_t slots = 6;

/// The buffers of the space being benchmarked (allocated by the space, for the largest N). One space holds
/// buffers at a time: switching spaces frees the previous one's.
struct pool_base {
  virtual ~pool_base() = default;
  std::array<float*, slots> p{};
};
template <class Exec>
struct pool : pool_base {
  std::array<typename Exec::template buffer<float>, slots> b;
  explicit pool(const Exec& e) {
    const std::size_t n = sizes.back();
    for (std::size_t k = 0; k < slots; ++k) {
      b[k] = e.template allocate<float>(n, k == 1 ? 0.75f : (k == 0 ? 1.0f : 0.5f));
      p[k] = b[k].data();
    }
  }
};

/// True when timing with CPU time (TETHER_BENCH_CLOCK=cpu), false for wall-clock time.
bool cpu_clock() {
  static const bool cpu = [] {
    const char* c = std::getenv("TETHER_BENCH_CLOCK");
    return c != nullptr && std::string(c) == "cpu";
  }();
  return cpu;
}

/// Seconds on the benchmark's clock: wall, or CPU time of this thread (one-thread spaces) or of the process.
double now(bool threaded) {
  if (!cpu_clock())
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts{};
  clock_gettime(threaded ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string current_space;
std::unique_ptr<pool_base> current_pool;
std::map<std::pair<std::string, std::size_t>, double> copy_bandwidth;  // bytes/s

template <class Exec>
const std::array<float*, slots>& buffers(const std::string& space, const Exec& e) {
  if (space != current_space) {
    current_pool.reset();
    current_pool = std::make_unique<pool<Exec>>(e);
    current_space = space;
  }
  return current_pool->p;
}

/// The space's copy of n floats (g into the second state slot): median of 7 samples, as bytes/s (the median,
/// not the best: on a shared machine the best sample catches a moment when the cores were free, which the
/// kernels' medians would not). Measured once per (space, N), right before the first kernel of that pair.
template <class Exec>
double copy_reference(const std::string& space, const Exec& e, std::size_t n, bool threaded) {
  const auto key = std::make_pair(space, n);
  if (auto it = copy_bandwidth.find(key); it != copy_bandwidth.end()) return it->second;
  const auto& p = buffers(space, e);
  const tether::kernels::copy<float> c{p[1], p[3]};
  const std::size_t reps = std::max<std::size_t>(1, (std::size_t{1} << 26) / n);
  e.parallel_for(n, c);  // warm-up
  std::vector<double> samples;
  for (int s = 0; s < 7; ++s) {
    const double t0 = now(threaded);
    for (std::size_t r = 0; r < reps; ++r) e.parallel_for(n, c);
    const double sec = now(threaded) - t0;
    samples.push_back(8.0 * static_cast<double>(n * reps) / sec);
  }
  std::nth_element(samples.begin(), samples.begin() + 3, samples.end());
  copy_bandwidth[key] = samples[3];
  return samples[3];
}

void counters(benchmark::State& state, std::size_t n, double bytes_per_elem, double copy_bps) {
  const double bytes = bytes_per_elem * static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  // A rate counter is divided by the time: (bytes / copy) / time * 100 = achieved / copy * 100.
  state.counters["pct_of_copy"] = benchmark::Counter(bytes / copy_bps * 100.0, benchmark::Counter::kIsRate);
  state.counters["bytes_per_elem"] = bytes_per_elem;
  state.counters["copy_GBps"] = copy_bps * 1e-9;  // the reference itself
}

template <class Exec, class Kernel>
void bm_kernel(benchmark::State& state, std::string space, Exec e, std::size_t n, bool threaded) {
  const double copy_bps = copy_reference(space, e, n, threaded);
  const auto f = Kernel::make(buffers(space, e));
  for (auto _ : state) {
    e.parallel_for(n, f);
    benchmark::ClobberMemory();
  }
  counters(state, n, Kernel::bytes, copy_bps);
}

template <class Exec>
void bm_copy(benchmark::State& state, std::string space, Exec e, std::size_t n, bool threaded) {
  const double copy_bps = copy_reference(space, e, n, threaded);
  const auto& p = buffers(space, e);
  const tether::kernels::copy<float> c{p[1], p[3]};
  for (auto _ : state) {
    e.parallel_for(n, c);
    benchmark::ClobberMemory();
  }
  counters(state, n, 8.0, copy_bps);
}

/// Registers the grid of one space; `threaded` when its kernels run on more than one thread.
template <class Exec>
void register_space(const std::string& space, const Exec& e, bool threaded) {
  using namespace exec_bench;
  for (const std::size_t n : sizes) {
    const std::string sfx = "/" + space + "/N:" + std::to_string(n);
    auto reg = [&](const std::string& name, auto fn) {
      auto* b = benchmark::RegisterBenchmark((name + sfx).c_str(), fn, space, e, n, threaded);
      if (!cpu_clock())
        b->UseRealTime();
      else if (threaded)
        b->MeasureProcessCPUTime();
    };
    reg("copy", bm_copy<Exec>);
    reg("sgd", bm_kernel<Exec, sgd>);
    reg("sgd+leader", bm_kernel<Exec, sgd_leader>);
    reg("sgd+group_leader", bm_kernel<Exec, sgd_group_leader>);
    reg("momentum", bm_kernel<Exec, momentum>);
    reg("momentum+leader", bm_kernel<Exec, momentum_leader>);
    reg("adam", bm_kernel<Exec, adam>);
    reg("adam+leader", bm_kernel<Exec, adam_leader>);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const int cores = omp_get_max_threads();
  benchmark::AddCustomContext("omp_max_threads", std::to_string(cores));

  benchmark::AddCustomContext("clock", cpu_clock() ? "cpu" : "real");

  register_space("serial", tether::exec::serial{}, false);
  register_space("openmp_1", tether::exec::openmp{.threads = 1}, false);
  register_space("openmp_" + std::to_string(cores), tether::exec::openmp{.threads = cores}, cores > 1);
  register_space("thrust_cpp", tether::exec::thrust_cpp{}, false);
  register_space("thrust_omp", tether::exec::thrust_omp{}, cores > 1);
  register_space("kokkos_serial", tether::exec::kokkos<Kokkos::Serial>{}, false);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  current_pool.reset();  // Kokkos::Views go before Kokkos::finalize
  return 0;
}
