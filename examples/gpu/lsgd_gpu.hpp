// LSGD across 4 workers that share one GPU. Each worker keeps its model (parameters and gradient) in a
// thrust::device_vector, computes its stochastic gradient with a Thrust kernel, and hands both vectors to
// tether directly; the optimizer's state (velocity, leader copy) is allocated on the GPU by the execution
// space, elections move 8 bytes, and the leader's parameters reach the other workers as device-to-device
// copies: nothing goes through host memory.
//
// The model is a large ill-conditioned quadratic with noisy gradients (a stand-in for a network's loss near a
// minimum): f(x) = 1/n sum_i a_i/2 (x_i - c_i)^2, a_i in [0.1, 10], gradient noise of standard deviation 1
// that differs per worker and step. Every worker starts from its own random point.
//
// The same source builds for the GPU (main.cu, nvcc, exec::cuda or exec::thrust_device) and for the CPU
// (main_omp.cpp, g++ with Thrust's OpenMP device system), which is how CI runs it without a GPU.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <thrust/device_vector.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include "tether/tether.hpp"

namespace gpu_example {

/// A float in [-0.5, 0.5) from a 64-bit key (splitmix64), on host or device.
TETHER_HOST_DEVICE inline float unit(std::uint64_t k) {
  k += 0x9e3779b97f4a7c15ULL;
  k = (k ^ (k >> 30)) * 0xbf58476d1ce4e5b9ULL;
  k = (k ^ (k >> 27)) * 0x94d049bb133111ebULL;
  k ^= k >> 31;
  return static_cast<float>(k >> 40) * 0x1.0p-24f - 0.5f;
}

TETHER_HOST_DEVICE inline float curvature(std::size_t i) {
  return 0.1f + 9.9f * (unit(i * 3 + 1) + 0.5f);
}
TETHER_HOST_DEVICE inline float optimum(std::size_t i) {
  return 4.0f * unit(i * 3 + 2);
}

/// x_i at the start: a random point of worker `seed`.
struct start_point {
  std::uint64_t seed;
  TETHER_HOST_DEVICE float operator()(std::size_t i) const { return 3.0f * unit(seed * 0x100000000ULL + i); }
};

/// Writes g_i (with noise) and returns the exact loss term of element i, in one pass over the parameters.
struct gradient_and_loss {
  const float* x;
  float* g;
  std::uint64_t key;  // (worker, step)
  TETHER_HOST_DEVICE double operator()(std::size_t i) const {
    const float d = x[i] - optimum(i);
    const float a = curvature(i);
    // Sum of 3 uniforms: mean 0, standard deviation 0.5.
    const float noise = unit(key + 3 * i) + unit(key + 3 * i + 1) + unit(key + 3 * i + 2);
    g[i] = a * d + noise;
    return 0.5 * static_cast<double>(a) * static_cast<double>(d) * static_cast<double>(d);
  }
};

/// Squared distance to the optimum, element i.
struct error_term {
  const float* x;
  TETHER_HOST_DEVICE double operator()(std::size_t i) const {
    const double d = static_cast<double>(x[i]) - static_cast<double>(optimum(i));
    return d * d;
  }
};

struct settings {
  std::size_t n = 1 << 20;
  int steps = 300;
};

inline settings parse(int argc, char** argv, settings s) {
  if (argc > 1) s.n = static_cast<std::size_t>(std::strtoull(argv[1], nullptr, 10));
  if (argc > 2) s.steps = std::atoi(argv[2]);
  if (s.n == 0 || s.steps <= 0) {
    std::fprintf(stderr, "usage: %s [parameters > 0] [steps > 0]\n", argv[0]);
    std::exit(2);
  }
  return s;
}

/// Trains on a team of 4 workers with execution space `exec`; returns 0 when every worker ends near the
/// optimum.
template <class Exec>
int train(const Exec& exec, const char* space_name, settings s) {
  using worker = tether::team::worker;
  using lsgd = tether::algo::lsgd<worker, tether::step::momentum, Exec>;
  constexpr int workers = 4;
  std::printf("LSGD, %d workers on one device (%s), %zu parameters each, %d steps\n", workers, space_name,
              s.n, s.steps);

  std::vector<double> rms(workers);
  std::vector<std::uint64_t> received(workers);
  tether::team team(workers);
  team.run([&](worker& w) {
    const auto rank = static_cast<std::uint64_t>(w.rank());
    thrust::device_vector<float> x(s.n);
    thrust::device_vector<float> g(s.n);
    thrust::transform(thrust::counting_iterator<std::size_t>(0), thrust::counting_iterator<std::size_t>(s.n),
                      x.begin(), start_point{rank + 1});

    // Field by field: inside a template, nvcc (13.0) mistranslates designated initializers that skip members.
    typename lsgd::options o{};
    o.lr = 0.02;
    o.step.momentum = 0.9f;
    o.pull.period = 8;
    o.pull.strength = 0.4f;
    o.pull.jump = 0.2f;
    o.pull.score_window = 4;
    if (w.rank() == 0)
      o.on_round = [](const tether::worker_stats& st) {
        if (st.rounds % 8 == 0)
          std::printf("  step %4llu  leader %d  score %.5f\n", static_cast<unsigned long long>(st.steps),
                      st.leader, st.score);
      };
    lsgd opt(w, s.n, o, exec);

    for (int t = 0; t < s.steps; ++t) {
      const std::uint64_t key = (rank * 1000003ULL + static_cast<std::uint64_t>(t)) * 0x1000000ULL;
      const double loss =
          thrust::transform_reduce(
              thrust::counting_iterator<std::size_t>(0), thrust::counting_iterator<std::size_t>(s.n),
              gradient_and_loss{thrust::raw_pointer_cast(x.data()), thrust::raw_pointer_cast(g.data()), key},
              0.0, thrust::plus<double>()) /
          static_cast<double>(s.n);
      opt.step(x, g, loss);  // device_vectors go straight in: buffer_traits knows them
    }
    if constexpr (requires { exec.fence(); }) exec.fence();
    const double e = thrust::transform_reduce(
        thrust::counting_iterator<std::size_t>(0), thrust::counting_iterator<std::size_t>(s.n),
        error_term{thrust::raw_pointer_cast(x.data())}, 0.0, thrust::plus<double>());
    rms[rank] = std::sqrt(e / static_cast<double>(s.n));
    received[rank] = opt.stats().bytes_received;
  });

  // Starting points are about 1.9 away from the optimum (RMS); the gradient noise leaves about 0.1.
  int status = 0;
  for (int r = 0; r < workers; ++r) {
    const bool ok = rms[static_cast<std::size_t>(r)] < 0.25;
    std::printf("worker %d: RMS distance to the optimum %.4f, %llu bytes received%s\n", r,
                rms[static_cast<std::size_t>(r)],
                static_cast<unsigned long long>(received[static_cast<std::size_t>(r)]),
                ok ? "" : "  (too far)");
    if (!ok) status = 1;
  }
  return status;
}

}  // namespace gpu_example
