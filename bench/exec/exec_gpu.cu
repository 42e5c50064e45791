/// \file
/// bench_exec_gpu: the fused update kernels on the GPU spaces, step x pull x space x N, on the benchmark kit
/// (tether/bench.hpp): timed with CUDA events on exec::cuda's stream (manual time; Thrust: wall clock up to
/// the stream's end), as bytes/s and as a percentage of the space's copy of the same N measured in the same
/// run (`pct_of_copy`; exec::cuda's copy is cudaMemcpyAsync device-to-device, 8 bytes per element; the
/// reference is the `copy_GBps` counter and the `copy/cuda/N:<n>` row).
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

#include <cstddef>
#include <cstdio>
#include <string>

#include "tether/bench.hpp"
#include "tether/exec/cuda.hpp"
#include "tether/exec/thrust.hpp"
#include "tether/tether.hpp"

namespace {

using cuda_space = tether::bench::space<tether::exec::cuda>;

void check(cudaError_t e, const char* what) {
  tether::exec::detail::cuda_check(e, what);
}

/// The whole step of one worker (team of one, so the leader pull never pulls: the kernel is SGD's or
/// momentum's), host side included: wall-clock time per step until the GPU is done.
template <class Step>
void bm_optimizer_step(benchmark::State& state, cuda_space sp, std::size_t n, bool check_gradient) {
  const tether::bench::reference r = sp.references(n);
  const auto x = tether::as_view<tether::mem::cuda>(sp.buffer(0).data(), n);
  const auto g = tether::as_view<tether::mem::cuda>(sp.buffer(1).data(), n);
  tether::team team(1);
  team.run([&](tether::team::worker& w) {
    tether::optimizer<Step, tether::pull::leader, tether::team::worker, tether::exec::cuda> opt(
        w, n, {.lr = 1e-6, .check_gradient = check_gradient});
    opt.step(x, g, 1.0);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    for (auto _ : state) {
      opt.step(x, g, 1.0);
      check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
  });
  const double bytes =
      static_cast<double>(tether::bench::bytes_per_element<Step, tether::pull::none>) + (check_gradient ? 4.0 : 0.0);
  tether::bench::set_counters(state, bytes * static_cast<double>(n), bytes, r);
}

template <class Exec>
void register_space(const std::string& name, const Exec& e) {
  using namespace tether;
  using bench::register_update;
  const bench::space<Exec> sp(name, e, {.sizes = {std::size_t{1} << 24, std::size_t{1} << 26}});
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

  register_space("cuda", tether::exec::cuda{});
  register_space("cuda_scalar", tether::exec::cuda{.tuning = {.vectorize = false}});
  register_space("thrust_device", tether::exec::thrust_device{});
  const cuda_space cuda("cuda", tether::exec::cuda{}, {.sizes = {std::size_t{1} << 24, std::size_t{1} << 26}});
  for (const std::size_t n : cuda.options().sizes) {
    const std::string sfx = "/cuda/N:" + std::to_string(n);
    benchmark::RegisterBenchmark(("step_sgd" + sfx).c_str(), bm_optimizer_step<tether::step::sgd>, cuda, n, false)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("step_sgd_checked" + sfx).c_str(), bm_optimizer_step<tether::step::sgd>, cuda, n,
                                 true)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("step_momentum" + sfx).c_str(), bm_optimizer_step<tether::step::momentum>, cuda, n,
                                 false)
        ->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  tether::bench::release_buffers();
  return 0;
}
