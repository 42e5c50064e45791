#pragma once
/// \file
/// The user's own policies of custom_solver.cpp, in a header of their own so that another program can use them
/// too (examples/bench_custom benchmarks them against tether's built-in SGD and leader pull):
///
///   2. `my::rmsprop`, a step policy (RMSprop), satisfying `tether::step_policy`;
///   3. `my::deadzone_leader`, a pull policy: LSGD's pull toward the best worker, but only for the part of each
///      coordinate's gap that exceeds a dead zone; it satisfies `tether::pull_policy`.

#include <tether/tether.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace my {

// --- 2. A step policy: RMSprop ------------------------------------------------------------------------------

/// RMSprop (Tieleman and Hinton): v <- rho*v + (1-rho)*g^2;  x <- x - lr * g / (sqrt(v) + eps).
struct rmsprop {
  struct options {
    float rho = 0.9f;   ///< decay of the mean square
    float eps = 1e-8f;  ///< added to sqrt(v)
  };
  options opt{};

  static constexpr std::size_t state_size = 1;  ///< one buffer per parameter: the mean square v

  /// Scalars of one step, computed once on the host by prepare().
  template <class T>
  struct context {
    T lr, rho, eps;
  };

  void validate() const {
    if (!(opt.rho >= 0.0f && opt.rho < 1.0f)) throw tether::error("rmsprop: rho must be in [0, 1)");
    if (!(opt.eps > 0.0f && std::isfinite(opt.eps))) throw tether::error("rmsprop: eps must be finite and > 0");
  }

  template <class T>
  [[nodiscard]] T initial(std::size_t /*buffer*/) const {
    return T(0);
  }

  template <class T>
  [[nodiscard]] context<T> prepare(std::uint64_t /*k*/, T lr) const {
    return {lr, T(opt.rho), T(opt.eps)};
  }

  /// Per element: updates the state and returns the amount to subtract from x (TETHER_HOST_DEVICE: GPU
  /// execution spaces may call it too).
  template <class T>
  TETHER_HOST_DEVICE static T delta(const context<T>& c, T /*x*/, T g, T& v) {
    v = c.rho * v + (T(1) - c.rho) * g * g;
    return c.lr * g / (std::sqrt(v) + c.eps);
  }
};

// --- 3. A pull policy: the leader with a dead zone ----------------------------------------------------------

/// Every `period` steps the workers elect the one with the lowest mean loss since the last election (one
/// 8-byte min-reduction) and it broadcasts its parameters into every worker's leader copy xl. Each step,
/// fused with the gradient step, every other worker is pulled by
///
///     force(x) = (strength/period) * shrink(x - xl, dead_zone),  shrink(d, z) = sign(d) * max(|d| - z, 0)
///
/// so a coordinate within `dead_zone` of the leader's feels no pull at all.
struct deadzone_leader {
  struct options {
    std::uint32_t period = 10;  ///< steps between elections
    float strength = 0.5f;      ///< fraction of the excess gap closed per period
    float dead_zone = 0.01f;    ///< gap per coordinate that is tolerated
  };
  options opt{};

  static constexpr std::size_t buffers = 1;  ///< one buffer per parameter: the leader's copy xl

  template <class T>
  struct context {
    T a;   ///< strength/period, 0 on the leader itself and before the first election
    T dz;  ///< dead zone
  };

  void validate(int /*workers*/) const {
    if (opt.period == 0) throw tether::error("deadzone_leader: period must be > 0");
    if (!(opt.strength >= 0.0f && opt.strength <= 1.0f))
      throw tether::error("deadzone_leader: strength must be in [0, 1]");
    if (!(opt.dead_zone >= 0.0f && std::isfinite(opt.dead_zone)))
      throw tether::error("deadzone_leader: dead_zone must be finite and >= 0");
  }

  /// Optional: the context of a pulled worker between elections, what tether's benchmark kit measures
  /// (tether/bench.hpp). Without it a benchmark takes the context it is given.
  template <class T>
  [[nodiscard]] context<T> prepare(int /*workers*/) const {
    return {T(opt.strength / static_cast<float>(opt.period)), T(opt.dead_zone)};
  }

  /// Before the first step.
  template <class Env, class T, class S>
  void start(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {
    loss_sum_ = 0.0;
    losses_ = 0;
    leader_ = -1;
  }

  /// Before each step's fused update: elect and broadcast at a round, then set this step's coefficients.
  /// Returns whether the force acts in this step.
  template <class Env, class T, class S>
  bool before(Env& env, tether::view<T, S> x, tether::pull_buffers<T, buffers, S> b, context<T>& c) {
    loss_sum_ += env.loss;  // NaN for a skipped (non-finite) step: this worker cannot win the next election
    ++losses_;
    if (env.step > 0 && env.step % opt.period == 0) {
      const double score = loss_sum_ / static_cast<double>(losses_);
      const tether::election e = env.min_loc(score);  // lowest finite score, ties to the lowest rank
      if (e.rank >= 0) {
        if (e.rank == env.rank()) env.copy(x, b[0]);  // the pre-step x, a kernel of the execution space
        env.broadcast(b[0], e.rank);                  // host or GPU memory alike
        if (leader_ >= 0 && leader_ != e.rank) ++env.stats.leader_changes;
        leader_ = e.rank;
      }
      loss_sum_ = 0.0;
      losses_ = 0;
      env.round = true;  // counted as a round; the optimizer calls on_round after this step
    }
    env.stats.leader = leader_;
    const bool pulled = leader_ >= 0 && leader_ != env.rank();
    c = {pulled ? T(opt.strength / static_cast<float>(opt.period)) : T(0), T(opt.dead_zone)};
    return pulled;
  }

  /// After each step's fused update (nothing to do here).
  template <class Env, class T, class S>
  void after(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}

  /// Per element: the amount subtracted from x, applied in the same pass as the step's delta.
  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>& c, T x, T xl) {
    const T d = x - xl;
    const T excess = d > c.dz ? d - c.dz : (d < -c.dz ? d + c.dz : T(0));
    return c.a * excess;
  }

  [[nodiscard]] int leader() const noexcept { return leader_; }

 private:
  double loss_sum_ = 0.0;
  std::uint64_t losses_ = 0;
  int leader_ = -1;
};

}  // namespace my
