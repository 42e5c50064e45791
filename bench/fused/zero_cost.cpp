/// \file
/// zero_cost: the composed fused kernel against a hand-written loop, for instruction counts under callgrind.
///
///     zero_cost <composed|hand> <sgd_leader|nesterov_leader|adam_elastic> [N = 1048576] [K = 10]
///
/// "composed" runs the optimizer's own kernel as optimizer::run does: a local
/// `tether::fused_update<Step, Pull, float, true, true>` built from the buffers and the contexts the step and
/// pull policies prepare, run through `tether::exec::serial{}.parallel_for`; "hand" runs the same update
/// written as one loop over __restrict pointers and scalars. Each kernel is a separate non-inlined function
/// named <mode>_<kernel>, called K times over N elements, so
///
///     valgrind --tool=callgrind --toggle-collect='*composed_sgd_leader*' zero_cost composed sgd_leader
///
/// counts only that kernel. scripts/callgrind_zero_cost.sh runs every pair and compares the counts. The
/// program prints a checksum of the final buffers: composed and hand must agree to the bit.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <tether/tether.hpp>

#if defined(__GNUC__) && !defined(__clang__)
// noclone: no constant-propagated copies, so the function callgrind counts is the one called.
#define TETHER_KERNEL __attribute__((noinline, noclone))
#else
#define TETHER_KERNEL __attribute__((noinline))
#endif

namespace {

using T = float;
using tether::exec::serial;

// ---------------------------------------------------------------------------------------------------------
// SGD + leader pull:  x <- x - lr*g - a*(x - xL)

using sgd_leader = tether::fused_update<tether::step::sgd, tether::pull::leader, T, true, true>;

TETHER_KERNEL void composed_sgd_leader(T* x, const T* g, const T* l, std::size_t n,
                                       const tether::step::sgd::context<T>& sc,
                                       const tether::pull::leader::context<T>& pc) {
  const sgd_leader k{x, g, {}, {l}, sc, pc};
  serial{}.parallel_for(n, k);
}

TETHER_KERNEL void hand_sgd_leader(T* __restrict x, const T* __restrict g, const T* __restrict l, std::size_t n,
                                   T lr, T a) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] - lr * g[i] - a * (x[i] - l[i]);
}

// ---------------------------------------------------------------------------------------------------------
// Nesterov momentum + leader pull:  v <- mu*v + g;  x <- x - lr*(g + mu*v) - a*(x - xL)

using nesterov_leader = tether::fused_update<tether::step::momentum, tether::pull::leader, T, true, true>;

TETHER_KERNEL void composed_nesterov_leader(T* x, const T* g, T* v, const T* l, std::size_t n,
                                            const tether::step::momentum::context<T>& sc,
                                            const tether::pull::leader::context<T>& pc) {
  const nesterov_leader k{x, g, {v}, {l}, sc, pc};
  serial{}.parallel_for(n, k);
}

TETHER_KERNEL void hand_nesterov_leader(T* __restrict x, const T* __restrict g, T* __restrict v,
                                        const T* __restrict l, std::size_t n, T lr, T mu, T a) {
  for (std::size_t i = 0; i < n; ++i) {
    const T vn = mu * v[i] + g[i];
    v[i] = vn;
    x[i] = x[i] - lr * (g[i] + mu * vn) - a * (x[i] - l[i]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Adam + elastic pull:  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2;
//                       x <- x - step_size*m / (sqrt(v)*inv_sqrt_bc2 + eps) - alpha*(x - center)

using adam_elastic = tether::fused_update<tether::step::adam, tether::pull::elastic, T, true, true>;

TETHER_KERNEL void composed_adam_elastic(T* x, const T* g, T* m, T* v, const T* center, const T* sum,
                                         std::size_t n, const tether::step::adam::context<T>& sc,
                                         const tether::pull::elastic::context<T>& pc) {
  const adam_elastic k{x, g, {m, v}, {center, sum}, sc, pc};
  serial{}.parallel_for(n, k);
}

TETHER_KERNEL void hand_adam_elastic(T* __restrict x, const T* __restrict g, T* __restrict m, T* __restrict v,
                                     const T* __restrict center, std::size_t n,
                                     const tether::step::adam::context<T>& c, T alpha) {
  const T b1 = c.b1, b1c = c.one_minus_b1, b2 = c.b2, b2c = c.one_minus_b2;
  const T step_size = c.step_size, inv_sqrt_bc2 = c.inv_sqrt_bc2, eps = c.eps;
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mn = b1 * m[i] + b1c * gi;
    const T vn = b2 * v[i] + b2c * gi * gi;
    m[i] = mn;
    v[i] = vn;
    x[i] = x[i] - step_size * mn / (std::sqrt(vn) * inv_sqrt_bc2 + eps) - alpha * (x[i] - center[i]);
  }
}

// ---------------------------------------------------------------------------------------------------------

/// Order-dependent checksum of the bits of a buffer (FNV-1a over the words).
std::uint64_t checksum(const serial::buffer<T>& b, std::uint64_t h = 1469598103934665603ull) {
  for (const T v : b) {
    std::uint32_t w = 0;
    std::memcpy(&w, &v, sizeof w);
    h = (h ^ w) * 1099511628211ull;
  }
  return h;
}

int usage() {
  std::fprintf(stderr, "usage: zero_cost <composed|hand> <sgd_leader|nesterov_leader|adam_elastic> [N] [K]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  const std::string kernel = argv[2];
  const std::size_t n = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : std::size_t{1} << 20;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 10;
  if ((mode != "composed" && mode != "hand") || n == 0 || reps <= 0) return usage();
  const bool composed = mode == "composed";

  const serial exec{};
  auto x = exec.allocate<T>(n), g = exec.allocate<T>(n), s0 = exec.allocate<T>(n), s1 = exec.allocate<T>(n),
       b0 = exec.allocate<T>(n), b1 = exec.allocate<T>(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto h = static_cast<std::uint32_t>(i * 2654435761u) >> 22;
    x[i] = T(1) + T(h) / T(2048);
    g[i] = T(0.5) + T(h) / T(2048);
    b0[i] = T(0.25) * T(h) / T(1024);
  }

  // Contexts as the optimizer prepares them (step k = 10, lr = 1e-3; LSGD's strength/period; EASGD's beta/p).
  const T lr = T(1e-3);
  const tether::pull::leader::context<T> leader_c{T(0), T(0.1f / 16.0f)};
  const tether::pull::elastic::context<T> elastic_c{T(0.9f / 4.0f)};

  if (kernel == "sgd_leader") {
    const auto sc = tether::step::sgd{}.prepare<T>(10, lr);
    for (int r = 0; r < reps; ++r) {
      if (composed)
        composed_sgd_leader(x.data(), g.data(), b0.data(), n, sc, leader_c);
      else
        hand_sgd_leader(x.data(), g.data(), b0.data(), n, sc.lr, leader_c.a_global);
    }
  } else if (kernel == "nesterov_leader") {
    const auto sc = tether::step::nesterov(0.9f).prepare<T>(10, lr);
    for (int r = 0; r < reps; ++r) {
      if (composed)
        composed_nesterov_leader(x.data(), g.data(), s0.data(), b0.data(), n, sc, leader_c);
      else
        hand_nesterov_leader(x.data(), g.data(), s0.data(), b0.data(), n, sc.lr, sc.mu, leader_c.a_global);
    }
  } else if (kernel == "adam_elastic") {
    const auto sc = tether::step::adam{}.prepare<T>(10, lr);
    for (int r = 0; r < reps; ++r) {
      if (composed)
        composed_adam_elastic(x.data(), g.data(), s0.data(), s1.data(), b0.data(), b1.data(), n, sc, elastic_c);
      else
        hand_adam_elastic(x.data(), g.data(), s0.data(), s1.data(), b0.data(), n, sc, elastic_c.alpha);
    }
  } else {
    return usage();
  }

  std::printf("zero_cost %s %s N=%zu K=%d checksum=%016llx\n", mode.c_str(), kernel.c_str(), n, reps,
              static_cast<unsigned long long>(checksum(s1, checksum(s0, checksum(x)))));
  return 0;
}
