#pragma once
/// \file
/// tether::fused_update: the one-pass kernel of a step and a pull, and the trait by which a kernel opts into
/// an execution space's vector path (exec::cuda's 16-byte loads and stores):
///
///     x[i] <- x[i] - delta(step_ctx, x[i], g[i], state[i]...) - force(pull_ctx, x[i], target[i]...)

#include <array>
#include <cstddef>
#include <utility>

#include "tether/core/config.hpp"

namespace tether {

/// The fused update kernel of a step and a pull: one pass, no temporaries.
template <class Step, class Pull, class T, bool WithStep, bool WithForce>
struct fused_update {
  T* x;
  const T* g;
  std::array<T*, Step::state_size> s;
  std::array<const T*, Pull::buffers> b;
  typename Step::template context<T> sc;
  typename Pull::template context<T> pc;

  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    apply(i, std::make_index_sequence<Step::state_size>{}, std::make_index_sequence<Pull::buffers>{});
  }

 private:
  template <std::size_t... S, std::size_t... B>
  TETHER_HOST_DEVICE void apply(std::size_t i, std::index_sequence<S...>, std::index_sequence<B...>) const {
    const T xi = x[i];
    T r = xi;
    if constexpr (WithStep) r -= Step::delta(sc, xi, g[i], s[S][i]...);
    if constexpr (WithForce) r -= Pull::force(pc, xi, b[B][i]...);
    x[i] = r;
  }
};

/// Opts a kernel type K into an execution space's vector path (specialise it, as fmt's formatter). A kernel
/// that opts in has the members of fused_update, which the vector path reads: `x` (T*, read and written),
/// `g` (const T*, read when `reads_g`), `s` (an array of `states` T*, read and written), `b` (an array of
/// `buffers` const T*, read), and its operator()(i) touches element i of those buffers only. exec::cuda then
/// loads W = 16/sizeof(T) elements of each buffer at once, points a copy of the kernel at registers, runs
/// the W lanes and stores x and s back; other kernels run element by element.
template <class K>
struct vector_kernel_traits {
  static constexpr bool enabled = false;
};

/// fused_update opts in: it reads g and the state only when it applies the step, its targets only when it
/// applies the force.
template <class Step, class Pull, class T, bool WithStep, bool WithForce>
struct vector_kernel_traits<fused_update<Step, Pull, T, WithStep, WithForce>> {
  static constexpr bool enabled = true;
  using value_type = T;
  static constexpr bool reads_g = WithStep;
  static constexpr std::size_t states = WithStep ? Step::state_size : 0;
  static constexpr std::size_t buffers = WithForce ? Pull::buffers : 0;
};

/// True when kernel K opted into the vector path.
template <class K>
inline constexpr bool vector_kernel = vector_kernel_traits<K>::enabled;

}  // namespace tether
