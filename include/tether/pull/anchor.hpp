#pragma once
/// \file
/// pull::anchor: Overlap-Local-SGD (Wang et al., ICASSP 2020). Each worker holds an anchor z, the last
/// completed average of the workers' parameters. Every `period` steps it waits for the pending average,
/// pulls toward the anchor (fused with the gradient step),
///
///     x <- x - eta*d(g) - alpha*(x - z)
///
/// and starts a non-blocking all-reduce of a snapshot of x that completes while the next `period` local
/// steps compute. With anchor momentum m > 0: v <- m*v + (avg - z); z <- z + v.
///
/// A worker whose snapshot is not finite is left out of the average and, at the round that completes it, takes
/// the anchor in place of its x (counted in stats().excluded_nonfinite). While every snapshot is finite it
/// costs one read of the sum per round and no message: a non-finite snapshot makes the sum non-finite on every
/// worker (they receive the same sum), and only then do the workers count the finite snapshots and sum them
/// again (two blocking all-reduces, the others contributing zeros). With no finite snapshot the round leaves
/// the anchor and x as they are.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/step_env.hpp"

namespace tether::pull {

/// The anchor pull with an overlapping average.
struct anchor {
  struct options {
    /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
    static constexpr const char* field_names[] = {"period", "alpha", "momentum"};
    std::uint32_t period = 16;  ///< tau: local steps between rounds
    float alpha = 0.2f;         ///< pull toward the anchor at a round
    float momentum = 0.0f;      ///< anchor momentum m
  };
  options opt{};

  /// Buffers: [anchor z, snapshot being averaged, sum received, anchor velocity].
  static constexpr std::size_t buffers = 4;
  /// Which buffers force() reads (the byte model of tether/bench/byte_model.hpp).
  static constexpr std::array<bool, buffers> force_reads{true, false, false, false};

  template <class T>
  struct context {
    T alpha;
  };

  void validate(int /*workers*/) const {
    detail::require(opt.period > 0, "anchor pull: period must be > 0, got period = ", opt.period);
    detail::require(std::isfinite(opt.alpha) && opt.alpha >= 0.0f && opt.alpha <= 1.0f,
                    "anchor pull: alpha must be in [0, 1], got alpha = ", opt.alpha);
    detail::require(std::isfinite(opt.momentum) && opt.momentum >= 0.0f && opt.momentum < 1.0f,
                    "anchor pull: momentum must be in [0, 1), got momentum = ", opt.momentum);
  }

  /// The context of a step between rounds on a worker that is pulled (not the leader), with `workers`
  /// workers: what benchmarks of the fused kernel run (tether/bench/register.hpp).
  template <class T>
  [[nodiscard]] context<T> prepare(int /*workers*/) const {
    return {T(opt.alpha)};
  }

  template <class Env, class T, class S>
  void start(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    first_ = true;
    launch(env, x, b);
  }

  template <class Env, class T, class S>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b, context<T>& c) {
    round_ = env.step > 0 && env.step % opt.period == 0;
    if (!round_) return false;
    pending_.wait();
    env.round = true;
    int count = env.size();
    bool mine = true;  // this worker's snapshot is finite
    if (!env.all_finite(b[2])) {
      // Rare: a snapshot (or the sum) is not finite. Sum the finite snapshots again, with their count.
      mine = env.all_finite(b[1]);
      count = env.count_workers(mine);
      if (!mine) ++env.stats.excluded_nonfinite;
      if (count > 0 && count < env.size()) {
        if (!mine) env.fill(b[1], T(0));
        env.allreduce_sum(b[1], b[2]);
      }
    }
    if (count == 0) return false;  // no finite snapshot: the anchor and x stay
    env.exec.parallel_for(x.size(), kernels::anchor_update<T>{b[0].data(), b[3].data(), b[2].data(),
                                                              T(1) / static_cast<T>(count), T(opt.momentum),
                                                              first_});
    first_ = false;
    if (!mine) env.copy(b[0], x);  // it takes the others' mean
    c.alpha = T(opt.alpha);
    return opt.alpha != 0.0f;
  }

  template <class Env, class T, class S>
  void after(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    if (!round_) return;
    round_ = false;
    launch(env, x, b);
  }

  /// Completes the average in flight (the optimizer calls this before its buffers go away).
  template <class Env, class T, class S>
  void finish(Env&, view<T, S>, pull_buffers<T, buffers, S>) {
    pending_.wait();
  }

  /// True while an average is in flight.
  [[nodiscard]] bool pending() const noexcept { return pending_.active(); }

  /// Checkpoints (optimizer::save/load): the average in flight completes first (its sum is then in the sum
  /// buffer, which the optimizer saves with the others, and the next round uses it as it would have), and the
  /// state is the first-round flag.
  template <class Env, class T, class S>
  void drain(Env&, view<T, S>, pull_buffers<T, buffers, S>) {
    pending_.wait();
  }
  struct record {
    bool first;
  };
  template <class Writer>
  void save(Writer& w) const {
    w.template put<std::uint8_t>(first_ ? 1 : 0);
  }
  template <class Reader>
  [[nodiscard]] record read_state(Reader& r, std::size_t /*n*/) const {
    const auto first = r.template get<std::uint8_t>("the anchor's first-round flag");
    if (first > 1)
      throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted first-round flag ", int{first}));
    return {first != 0};
  }
  template <class Env, class T, class S>
  void restore(Env&, view<T, S>, pull_buffers<T, buffers, S>, const record& rec) noexcept {
    first_ = rec.first;
    round_ = false;
  }

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T z, T /*snapshot*/, T /*sum*/, T /*velocity*/) {
    return c.alpha * (x - z);
  }

 private:
  template <class Env, class T, class S>
  void launch(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b) {
    env.copy(x, b[1]);
    pending_ = env.iallreduce_sum(b[1], b[2]);
  }

  request pending_;
  bool first_ = true;
  bool round_ = false;
};

}  // namespace tether::pull
