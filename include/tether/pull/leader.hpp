#pragma once
/// \file
/// pull::leader and pull::group_leader: LSGD's pull toward the best worker (Teng, Gao et al., NeurIPS 2019).
///
/// Every `period` steps the workers elect the one with the lowest score (the mean of its last
/// `score_window` losses, compared as doubles; ties go to the lowest rank, non-finite scores and workers whose
/// parameters are not finite never win) with
/// one (score, rank) min-reduction, and the leader broadcasts its parameters into every worker's leader copy.
/// Each step then applies, fused with the gradient step,
///
///     x <- x - eta*d(g) - (strength/period) * (x - x_leader)                     (proximal form)
///
/// plus, at a round, an extra `jump * (x - x_leader)` (the jump form x <- (1-c)x + c*x_leader of the
/// authors' code, fused with the step). The current leader does not pull toward its own copy, so with one
/// worker LSGD is the step policy alone.
///
/// group_leader adds local leaders: workers of one group (a node) elect a local leader every `period`
/// steps and the whole team a global leader every `global_period` steps (a multiple of `period`):
///
///     x <- x - eta*d(g) - (strength/period)*(x - xL) - (global_strength/global_period)*(x - xG)

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "tether/core/collectives.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/step_env.hpp"
#include "tether/pull/leader_rules.hpp"
#include "tether/pull/loss_window.hpp"

namespace tether::pull {

/// Options of the leader pulls.
struct leader_options {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {
      "period", "strength", "global_period", "global_strength", "jump", "global_jump", "score_window"};
  std::uint32_t period = 16;          ///< tau (tau_L with groups): steps between elections
  float strength = 0.1f;              ///< p (p_L): proximal pull per step is strength/period
  std::uint32_t global_period = 0;    ///< tau_G, group_leader only: a multiple of period; 0 = period
  float global_strength = 0.1f;       ///< p_G, group_leader only
  float jump = 0.0f;                  ///< c: extra pull applied at a round (jump form), 0 = off
  float global_jump = 0.0f;           ///< c_G, group_leader only
  std::uint32_t score_window = 10;    ///< k: the score is the mean of the last k losses
};

/// The leader pull with one level (Grouped = false) or local and global leaders (Grouped = true).
template <bool Grouped>
struct basic_leader {
  using options = leader_options;
  options opt{};

  /// Buffers: [x_leader] or [x_local_leader, x_global_leader].
  static constexpr std::size_t buffers = Grouped ? 2 : 1;

  template <class T>
  struct context {
    T a_local;   ///< coefficient of (x - xL); 0 without groups
    T a_global;  ///< coefficient of (x - xG)
  };

  void validate(int /*workers*/) const {
    detail::validate_leader("leader pull", opt);
    if constexpr (Grouped) {
      detail::require(global_period() % opt.period == 0, "leader pull: global_period (", global_period(),
                      ") must be a multiple of period (", opt.period, ")");
      detail::require(std::isfinite(opt.global_strength) && opt.global_strength >= 0.0f,
                      "leader pull: global_strength must be finite and >= 0, got global_strength = ",
                      opt.global_strength);
      detail::require(std::isfinite(opt.global_jump) && opt.global_jump >= 0.0f && opt.global_jump <= 1.0f,
                      "leader pull: global_jump must be in [0, 1], got global_jump = ", opt.global_jump);
    }
  }

  [[nodiscard]] std::uint32_t global_period() const noexcept {
    return opt.global_period == 0 ? opt.period : opt.global_period;
  }

  /// The context of a step between rounds on a worker that is pulled (not the leader), with `workers`
  /// workers: what benchmarks of the fused kernel run (tether/bench/register.hpp).
  template <class T>
  [[nodiscard]] context<T> prepare(int /*workers*/) const {
    if constexpr (Grouped)
      return {T(opt.strength / static_cast<float>(opt.period)),
              T(opt.global_strength / static_cast<float>(global_period()))};
    else
      return {T(0), T(opt.strength / static_cast<float>(opt.period))};
  }

  /// The worker's score: mean of the last score_window losses (NaN while any of them is non-finite).
  [[nodiscard]] double score() const noexcept { return window_.score(); }
  /// Rank of the current global leader (-1 before the first election) and of the local one (group rank).
  [[nodiscard]] int leader() const noexcept { return global_leader_; }
  [[nodiscard]] int local_leader() const noexcept { return local_leader_; }

  template <class Env, class T, class S>
  void start(Env&, view<T, S>, pull_buffers<T, buffers, S>) {
    window_.reset(opt.score_window);
    global_leader_ = -1;
    local_leader_ = -1;
  }

  template <class Env, class T, class S>
  bool before(Env& env, view<T, S> x, pull_buffers<T, buffers, S> b, context<T>& c) {
    window_.record(env.loss);
    const std::uint64_t t = env.step;
    const bool global_round = t > 0 && t % global_period() == 0;
    const bool local_round = Grouped && t > 0 && t % opt.period == 0;
    // A worker whose parameters are not finite never leads, whatever its loss says (one read of x, at rounds).
    double s = score();
    if ((global_round || local_round) && !env.all_finite(x)) {
      s = std::numeric_limits<double>::quiet_NaN();
      ++env.stats.excluded_nonfinite;
    }
    if constexpr (Grouped) {
      if (local_round) {
        auto& g = env.comm.group();
        local_leader_ = elect_and_share(env, g, s, x, b[0], local_leader_, false);
      }
    }
    if (global_round) global_leader_ = elect_and_share(env, env.comm, s, x, b[buffers - 1], global_leader_, true);
    env.round = global_round || local_round;
    env.stats.leader = global_leader_;
    env.stats.score = score();

    c.a_local = T(0);
    c.a_global = T(0);
    if constexpr (Grouped) {
      if (local_leader_ >= 0 && local_leader_ != env.comm.group().rank())
        c.a_local = T(opt.strength / static_cast<float>(opt.period)) + (local_round ? T(opt.jump) : T(0));
      if (global_leader_ >= 0 && global_leader_ != env.comm.rank())
        c.a_global = T(opt.global_strength / static_cast<float>(global_period())) +
                     (global_round ? T(opt.global_jump) : T(0));
    } else {
      if (global_leader_ >= 0 && global_leader_ != env.comm.rank())
        c.a_global = T(opt.strength / static_cast<float>(opt.period)) + (global_round ? T(opt.jump) : T(0));
    }
    return c.a_local != T(0) || c.a_global != T(0);
  }

  template <class Env, class T, class S>
  void after(Env&, view<T, S>, pull_buffers<T, buffers, S>) {}

  /// The round state between steps, for checkpoints (core/checkpoint.hpp): the leaders and the loss window.
  template <class Writer>
  void save(Writer& w) const {
    w.template put<std::int32_t>(global_leader_);
    w.template put<std::int32_t>(local_leader_);
    window_.save(w);
  }
  template <class Reader>
  void load(Reader& r) {
    const auto global = r.template get<std::int32_t>("the leader");
    const auto local = r.template get<std::int32_t>("the local leader");
    if (global < -1 || local < -1)
      throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted leader ranks ", global, ", ", local));
    window_.load(r, opt.score_window);
    global_leader_ = global;
    local_leader_ = local;
  }

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T xg)
    requires(!Grouped)
  {
    return c.a_global * (x - xg);
  }
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T xl, T xg)
    requires Grouped
  {
    return c.a_local * (x - xl) + c.a_global * (x - xg);
  }

 private:
  /// One election on `comm` and the winner's broadcast into `copy`. Returns the winner (or the previous
  /// leader when no score is finite: the copies are then left as they are).
  template <class Env, class C, class T, class S>
  int elect_and_share(Env& env, C& comm, double s, view<T, S> x, view<T, S> copy, int previous, bool global) {
    const election e = comm.min_loc(s);
    if (e.rank < 0) return previous;
    if constexpr (std::same_as<S, mem::host>) {
      // A broadcast only reads the root's buffer: the leader sends straight from its parameters and fills
      // its own copy afterwards, so the others do not wait for that copy (they run their pulled kernel while
      // the leader copies).
      if (comm.rank() == e.rank) {
        tether::broadcast(env.exec, comm, x, e.rank);  // on env.comm or on its group
        env.copy(x, copy);
      } else {
        tether::broadcast(env.exec, comm, copy, e.rank);
      }
    } else {
      if (comm.rank() == e.rank) env.copy(x, copy);
      tether::broadcast(env.exec, comm, copy, e.rank);
    }
    if (global && previous >= 0 && previous != e.rank) ++env.stats.leader_changes;
    return e.rank;
  }

  loss_window window_;
  int global_leader_ = -1;
  int local_leader_ = -1;
};

/// LSGD's pull toward the one leader of the team.
using leader = basic_leader<false>;
/// LSGD's multi-leader pull: a local leader per group and a global leader of the team.
using group_leader = basic_leader<true>;

}  // namespace tether::pull
