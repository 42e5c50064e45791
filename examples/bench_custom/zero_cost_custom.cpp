/// \file
/// The zero-cost check on your own policies (tether/bench/zero_cost.hpp): the fused kernel tether composes from
/// examples/custom_solver's RMSprop and dead-zone leader pull, against the same update written by hand. Run it
/// under callgrind with
///
///     EXE=build/default/examples/bench_custom/zero_cost_custom bash scripts/callgrind_zero_cost.sh
///
/// which counts the instructions of each side and fails if the composed kernel is dearer than the hand loop
/// (it may be cheaper) or if the two results differ in any bit.

#include <cmath>
#include <cstddef>

#include <tether/bench/zero_cost.hpp>

#include "../custom_solver/policies.hpp"

namespace {

using T = float;

/// RMSprop + dead-zone leader: v <- rho*v + (1-rho)*g^2;  x <- x - lr*g/(sqrt(v)+eps) - a*shrink(x - xl, dz)
void rmsprop_deadzone_loop(T* __restrict x, const T* __restrict g, T* __restrict v, const T* __restrict l,
                           std::size_t n, T lr, T rho, T eps, T a, T dz) {
  for (std::size_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T vn = rho * v[i] + (T(1) - rho) * gi * gi;
    v[i] = vn;
    const T d = x[i] - l[i];
    const T excess = d > dz ? d - dz : (d < -dz ? d + dz : T(0));
    x[i] = x[i] - lr * gi / (std::sqrt(vn) + eps) - a * excess;
  }
}

void hand_rmsprop_deadzone(const tether::bench::zero_cost_buffers& b, const my::rmsprop::context<T>& sc,
                           const my::deadzone_leader::context<T>& pc) {
  rmsprop_deadzone_loop(b.x, b.g, b.s[0], b.b[0], b.n, sc.lr, sc.rho, sc.eps, pc.a, pc.dz);
}

}  // namespace

int main(int argc, char** argv) {
  return tether::bench::zero_cost_main(
      argc, argv,
      tether::bench::zero_cost_case<my::rmsprop, my::deadzone_leader>("rmsprop_deadzone", &hand_rmsprop_deadzone,
                                                                       {.lr = 1e-3}));
}
