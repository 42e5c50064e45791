/// \file
/// zero_cost: tether's composed fused kernels against hand-written loops of the same updates, for
/// instruction counts under callgrind, on the benchmark kit's zero-cost harness (tether/bench/zero_cost.hpp).
///
///     zero_cost <composed|hand> <sgd_leader|nesterov_leader|adam_elastic> [N = 1048576] [K = 10]
///
/// "composed" runs the optimizer's own kernel (fused_update with the contexts the step and pull prepare,
/// through exec::serial); "hand" runs the loop written below over __restrict pointers and scalars.
/// scripts/callgrind_zero_cost.sh runs every pair under callgrind and compares the counts. The program prints
/// a checksum of the final buffers: composed and hand must agree to the bit.

#include <cmath>
#include <cstddef>

#include <tether/bench/zero_cost.hpp>
#include <tether/tether.hpp>

namespace {

using T = float;
using tether::bench::zero_cost_buffers;

// Each hand-written loop takes __restrict pointer parameters (GCC honours restrict best on parameters); the
// adapter the harness calls unpacks the buffers and the contexts into them.

/// SGD + leader pull:  x <- x - lr*g - a*(x - xL)
void sgd_leader_loop(T* __restrict x, const T* __restrict g, const T* __restrict l, std::size_t n, T lr, T a) {
  for (std::size_t i = 0; i < n; ++i) x[i] = x[i] - lr * g[i] - a * (x[i] - l[i]);
}
void hand_sgd_leader(const zero_cost_buffers& b, const tether::step::sgd::context<T>& sc,
                     const tether::pull::leader::context<T>& pc) {
  sgd_leader_loop(b.x, b.g, b.b[0], b.n, sc.lr, pc.a_global);
}

/// Nesterov momentum + leader pull:  v <- mu*v + g;  x <- x - lr*(g + mu*v) - a*(x - xL)
void nesterov_leader_loop(T* __restrict x, const T* __restrict g, T* __restrict v, const T* __restrict l,
                          std::size_t n, T lr, T mu, T a) {
  for (std::size_t i = 0; i < n; ++i) {
    const T vn = mu * v[i] + g[i];
    v[i] = vn;
    x[i] = x[i] - lr * (g[i] + mu * vn) - a * (x[i] - l[i]);
  }
}
void hand_nesterov_leader(const zero_cost_buffers& b, const tether::step::momentum::context<T>& sc,
                          const tether::pull::leader::context<T>& pc) {
  nesterov_leader_loop(b.x, b.g, b.s[0], b.b[0], b.n, sc.lr, sc.mu, pc.a_global);
}

/// Adam + elastic pull:  m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2;
///                       x <- x - step_size*m / (sqrt(v)*inv_sqrt_bc2 + eps) - alpha*(x - center)
void adam_elastic_loop(T* __restrict x, const T* __restrict g, T* __restrict m, T* __restrict v,
                       const T* __restrict center, std::size_t n, const tether::step::adam::context<T>& c,
                       T alpha) {
  const T b1 = c.b1, b1c = c.one_minus_b1, b2 = c.b2, b2c = c.one_minus_b2;
  const T step_size = c.step_size, inv_sqrt_bc2 = c.inv_sqrt_bc2, eps = c.eps;
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = x[i];
    const T gi = g[i];
    const T mn = b1 * m[i] + b1c * gi;
    const T vn = b2 * v[i] + b2c * gi * gi;
    m[i] = mn;
    v[i] = vn;
    x[i] = xi - step_size * mn / (std::sqrt(vn) * inv_sqrt_bc2 + eps) - alpha * (xi - center[i]);
  }
}
void hand_adam_elastic(const zero_cost_buffers& b, const tether::step::adam::context<T>& c,
                       const tether::pull::elastic::context<T>& pc) {
  adam_elastic_loop(b.x, b.g, b.s[0], b.s[1], b.b[0], b.n, c, pc.alpha);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tether;
  using bench::zero_cost_case;
  // Contexts as the optimizer prepares them: step k = 10, lr = 1e-3; LSGD's strength/period; EASGD's beta/p
  // with p = 4.
  return bench::zero_cost_main(
      argc, argv, zero_cost_case<step::sgd, pull::leader>("sgd_leader", &hand_sgd_leader, {.lr = 1e-3}),
      zero_cost_case<step::momentum, pull::leader>("nesterov_leader", &hand_nesterov_leader,
                                                   {.step = {.momentum = 0.9f, .nesterov = true}, .lr = 1e-3}),
      zero_cost_case<step::adam, pull::elastic>("adam_elastic", &hand_adam_elastic, {.lr = 1e-3}));
}
