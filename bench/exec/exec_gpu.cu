/// \file
/// bench_exec_gpu: the fused update kernels on the GPU spaces, step x pull x space x N, timed with CUDA
/// events (manual time), as bytes/s and as a percentage of cudaMemcpy device-to-device of the same N measured
/// in the same run (`pct_of_copy`; a copy moves 8 bytes per element; the reference is the `copy_GBps`
/// counter).
///
/// Spaces: exec::cuda (16-byte vector accesses), exec::cuda with vectorize = false (scalar accesses),
/// exec::thrust_device (thrust::for_each). Kernels: as bench_exec_cpu (12 to 32 bytes per element).
/// N in {2^24, 2^26}. Also the whole optimizer.step of one worker (exec::cuda, SGD and momentum with the
/// leader pull, finite check off and on), which adds the host side of a step to the kernel.
///
///     bench_exec_gpu --benchmark_min_time=0.5 --benchmark_format=json > gpu.json
///     python3 bench/exec/torch_compare.py --tether gpu.json          # PyTorch on the same GPU, side by side

#include <benchmark/benchmark.h>

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <map>
#include <string>
#include <utility>

#include "kernels.hpp"
#include "tether/exec/cuda.hpp"
#include "tether/exec/thrust.hpp"

namespace {

constexpr std::array<std::size_t, 2> sizes{std::size_t{1} << 24, std::size_t{1} << 26};
constexpr std::size_t slots = 6;

void check(cudaError_t e, const char* what) {
  tether::exec::detail::cuda_check(e, what);
}

/// Six device buffers for the largest N, shared by every benchmark.
struct device_pool {
  std::array<tether::exec::detail::device_buffer<float>, slots> b;
  std::array<float*, slots> p{};
  device_pool() {
    const tether::exec::cuda e{};
    for (std::size_t k = 0; k < slots; ++k) {
      b[k] = e.allocate<float>(sizes.back(), k == 1 ? 0.75f : (k == 0 ? 1.0f : 0.5f));
      p[k] = b[k].data();
    }
  }
};
device_pool& pool() {
  static device_pool d;
  return d;
}

/// Times `f` (which queues work on the default stream) with CUDA events; seconds.
template <class F>
double event_seconds(F&& f) {
  cudaEvent_t a{};
  cudaEvent_t b{};
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventRecord(a), "cudaEventRecord");
  f();
  check(cudaEventRecord(b), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  check(cudaEventDestroy(a), "cudaEventDestroy");
  check(cudaEventDestroy(b), "cudaEventDestroy");
  return 1e-3 * static_cast<double>(ms);
}

/// cudaMemcpy device-to-device of n floats: best of 10, bytes/s (8 bytes per element).
double copy_reference(std::size_t n) {
  static std::map<std::size_t, double> cache;
  if (auto it = cache.find(n); it != cache.end()) return it->second;
  auto& p = pool();
  double best = 0.0;
  for (int s = 0; s < 11; ++s) {
    const double sec = event_seconds([&] {
      check(cudaMemcpyAsync(p.p[3], p.p[1], n * sizeof(float), cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    });
    if (s > 0) best = std::max(best, 8.0 * static_cast<double>(n) / sec);
  }
  cache[n] = best;
  return best;
}

void counters(benchmark::State& state, std::size_t n, double bytes_per_elem) {
  const double bytes = bytes_per_elem * static_cast<double>(n) * static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["pct_of_copy"] =
      benchmark::Counter(bytes / copy_reference(n) * 100.0, benchmark::Counter::kIsRate);
  state.counters["bytes_per_elem"] = bytes_per_elem;
  state.counters["copy_GBps"] = copy_reference(n) * 1e-9;  // the reference itself
}

template <class Exec, class Kernel>
void bm_kernel(benchmark::State& state, Exec e, std::size_t n) {
  copy_reference(n);
  const auto f = Kernel::make(pool().p);
  e.parallel_for(n, f);  // warm-up
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  for (auto _ : state) state.SetIterationTime(event_seconds([&] { e.parallel_for(n, f); }));
  counters(state, n, Kernel::bytes);
}

void bm_memcpy(benchmark::State& state, std::size_t n) {
  copy_reference(n);
  auto& p = pool();
  for (auto _ : state)
    state.SetIterationTime(event_seconds([&] {
      check(cudaMemcpyAsync(p.p[3], p.p[1], n * sizeof(float), cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    }));
  counters(state, n, 8.0);
}

/// The whole step of one worker (team of one, so the leader pull never pulls: the kernel is SGD's or
/// momentum's), host side included: wall-clock time per step until the GPU is done.
template <class Step>
void bm_optimizer_step(benchmark::State& state, std::size_t n, bool check_gradient) {
  copy_reference(n);
  auto& p = pool();
  tether::team team(1);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<Step, tether::pull::leader, tether::team::worker, tether::exec::cuda> opt(
        w, n, {.lr = 1e-6, .check_gradient = check_gradient});
    const auto x = tether::as_view<tether::mem::cuda>(p.p[0], n);
    const auto g = tether::as_view<tether::mem::cuda>(p.p[1], n);
    opt.step(x, g, 1.0);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    for (auto _ : state) {
      opt.step(x, g, 1.0);
      check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
  });
  const double bytes = (Step::state_size == 0 ? 12.0 : 20.0) + (check_gradient ? 4.0 : 0.0);
  counters(state, n, bytes);
}

template <class Exec>
void register_space(const std::string& space, const Exec& e) {
  using namespace exec_bench;
  for (const std::size_t n : sizes) {
    const std::string sfx = "/" + space + "/N:" + std::to_string(n);
    auto reg = [&](const std::string& name, auto fn) {
      benchmark::RegisterBenchmark((name + sfx).c_str(), fn, e, n)->UseManualTime();
    };
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::fprintf(stderr, "bench_exec_gpu: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  benchmark::AddCustomContext("gpu", prop.name);
  benchmark::AddCustomContext("gpu_sms", std::to_string(prop.multiProcessorCount));

  for (const std::size_t n : sizes)
    benchmark::RegisterBenchmark(("memcpy_d2d/N:" + std::to_string(n)).c_str(), bm_memcpy, n)
        ->UseManualTime();
  register_space("cuda", tether::exec::cuda{});
  register_space("cuda_scalar", tether::exec::cuda{.tuning = {.vectorize = false}});
  register_space("thrust_device", tether::exec::thrust_device{});
  for (const std::size_t n : sizes) {
    const std::string sfx = "/N:" + std::to_string(n);
    benchmark::RegisterBenchmark(("step_sgd/cuda" + sfx).c_str(), bm_optimizer_step<tether::step::sgd>, n,
                                 false)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("step_sgd_checked/cuda" + sfx).c_str(),
                                 bm_optimizer_step<tether::step::sgd>, n, true)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("step_momentum/cuda" + sfx).c_str(),
                                 bm_optimizer_step<tether::step::momentum>, n, false)
        ->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
