#pragma once
/// \file
/// pull::elastic: EASGD's elastic force toward a center variable (Zhang, Choromanska, LeCun, NeurIPS 2015).
///
/// The center xc is replicated on every worker and kept identical by an all-reduce. Every `period` steps,
/// with alpha = eta*rho (default beta/p) and the pre-step parameters x_i:
///
///     x_i <- x_i - eta*d(g_i) - alpha*(x_i - xc)        (fused with the gradient step)
///     xc  <- xc + alpha * sum_i (x_i - xc)               (= (1-beta)*xc + beta*mean(x))
///
/// The center starts at the mean of the workers' starting points.

#include <array>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/step_env.hpp"
#include "tether/pull/elastic_rules.hpp"

namespace tether::pull {

/// EASGD's elastic pull with a replicated center.
struct elastic {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"period", "beta", "alpha"};
    std::uint32_t period = 10;  ///< tau: steps between rounds
    float beta = 0.9f;          ///< moving rate of the center, beta = p*alpha
    float alpha = 0.0f;         ///< elastic coefficient; 0 = beta/p
  };
  options opt{};

  /// Buffers: [center, sum of the workers' parameters at the last round].
  static constexpr std::size_t buffers = 2;
  /// Which buffers force() reads (the byte model of tether/bench/byte_model.hpp).
  static constexpr std::array<bool, buffers> force_reads{true, false};

  template <class T>
  struct context {
    T alpha;
  };

  void validate(int workers) const { detail::validate_elastic("elastic pull", opt, workers); }

  [[nodiscard]] float alpha(int workers) const noexcept { return detail::elastic_alpha(opt, workers); }

  /// The context of a step between rounds on a worker that is pulled (not the leader), with `workers`
  /// workers: what benchmarks of the fused kernel run (tether/bench/register.hpp).
  template <class T>
  [[nodiscard]] context<T> prepare(int workers) const {
    return {T(alpha(workers))};
  }

  template <class Env, class T, class S>
  void start(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    const int count = sum_of_finite(env, x, b[1]);
    env.copy(b[1], b[0]);
    env.scale(b[0], count > 0 ? T(1) / static_cast<T>(count) : T(1));
    round_ = false;
  }

  template <class Env, class T, class S>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b, context<T>& c) {
    round_ = env.step > 0 && env.step % opt.period == 0;
    if (!round_) return false;
    finite_workers_ = sum_of_finite(env, x, b[1]);
    env.round = true;
    c.alpha = T(alpha(env.size()));
    return true;
  }

  template <class Env, class T, class S>
  void after(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    if (!round_) return;
    round_ = false;
    if (finite_workers_ == 0) return;  // no finite worker: the center stays
    env.exec.parallel_for(x.size(), kernels::elastic_center<T>{b[0].data(), b[1].data(), T(alpha(env.size())),
                                                               T(finite_workers_)});
  }

  /// Nothing but the buffers lasts from one step to the next: checkpoints (core/checkpoint.hpp) hold no more.
  template <class Writer>
  void save(Writer&) const {}
  template <class Reader>
  void load(Reader&) {}

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T center, T /*sum*/) {
    return c.alpha * (x - center);
  }

 private:
  /// sum <- the sum over the workers whose x is finite (collective); returns how many they are. A worker whose
  /// parameters are not finite contributes zeros, so it never moves the center (one read of x, and an
  /// all-reduce of one double, per round).
  template <class Env, class T, class S>
  static int sum_of_finite(Env& env, view<T, S> x, view<T, S> sum) {
    const bool finite = env.all_finite(x);
    const int count = env.count_workers(finite);
    if (finite) {
      env.allreduce_sum(x, sum);  // read from x (no copy with comm::mpi)
    } else {
      ++env.stats.excluded_nonfinite;
      const auto zeros = env.exec.template allocate<T>(x.size(), T(0));  // rare: a worker gone non-finite
      env.allreduce_sum(view<const T, S>{zeros.data(), x.size()}, sum);
    }
    return count;
  }

  bool round_ = false;
  int finite_workers_ = 0;
};

}  // namespace tether::pull
