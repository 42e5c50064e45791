#pragma once
/// \file
/// pull::average: local SGD (model averaging). After every `period`-th step, x_i <- mean_j x_j.
/// Post-local SGD: the first `warmup` steps average after every step (fully synchronous SGD).
/// A worker whose parameters are not finite at a round is left out of the mean (it contributes zeros, the
/// divisor is the number of finite workers) and receives the others' mean; when no worker is finite the round
/// leaves x as it is. Knowing it costs one read of x and an all-reduce of one double per round.

#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/step_env.hpp"

namespace tether::pull {

/// Plain averaging of the parameters by all-reduce. No per-step force.
struct average {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"period", "warmup"};
    std::uint32_t period = 16;  ///< tau: local steps between averages
    std::uint32_t warmup = 0;   ///< steps of fully synchronous SGD first (post-local SGD)
  };
  options opt{};
  static constexpr std::size_t buffers = 0;
  template <class T>
  struct context {};

  void validate(int /*workers*/) const {
    detail::require(opt.period > 0, "average pull: period must be > 0, got period = ", opt.period);
  }

  /// True when the parameters are averaged after step t (0-based).
  [[nodiscard]] bool averages_after(std::uint64_t t) const noexcept {
    const std::uint64_t k = t + 1;
    return k <= opt.warmup || k % opt.period == 0;
  }

  template <class Env, class T, class S>
  void start(Env&, view<T, S>, pull_buffers<T, 0, S>) {}

  template <class Env, class T, class S>
  bool before(Env&, view<T, S>, pull_buffers<T, 0, S>, context<T>&) {
    return false;
  }

  template <class Env, class T, class S>
  void after(Env& env, view<T, S> x, pull_buffers<T, 0, S>) {
    if (!averages_after(env.step)) return;
    env.round = true;
    const bool finite = env.all_finite(x);
    const int count = env.count_workers(finite);
    if (!finite) ++env.stats.excluded_nonfinite;
    if (count == 0) return;  // nothing finite to average
    if (!finite) env.fill(x, T(0));
    env.allreduce_scaled_sum(x, T(1) / static_cast<T>(count));
  }

  /// Nothing but the buffers lasts from one step to the next: checkpoints (core/checkpoint.hpp) hold no more.
  template <class Writer>
  void save(Writer&) const {}
  template <class Reader>
  void load(Reader&) {}

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>&, T /*x*/) {
    return T(0);
  }
};

}  // namespace tether::pull
