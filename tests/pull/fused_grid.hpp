#pragma once
/// \file
/// The step x pull grid of the fused-kernel tests: each pull case names a pull policy, a context set by hand,
/// and its force written from ALGORITHMS.md; check_fused() proves that the fused kernel equals the step alone
/// followed by the force computed from the pre-step parameters, for every step configuration of tt::*_case.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "../core/support.hpp"

namespace grid {

/// LSGD, one leader: force = a_global * (x - x_leader).
template <class StepCase, class T>
struct leader_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::leader;
  static pull::context<T> context() { return {.a_local = T(0), .a_global = T(0.3)}; }
  static T force(T x, const std::array<T, 1>& b) { return T(0.3) * (x - b[0]); }
};

/// LSGD with groups: force = a_local * (x - x_local_leader) + a_global * (x - x_global_leader).
template <class StepCase, class T>
struct group_leader_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::group_leader;
  static pull::context<T> context() { return {.a_local = T(0.15), .a_global = T(0.3)}; }
  static T force(T x, const std::array<T, 2>& b) { return T(0.15) * (x - b[0]) + T(0.3) * (x - b[1]); }
};

/// EASGD: force = alpha * (x - center); the second buffer (the sum) takes no part.
template <class StepCase, class T>
struct elastic_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::elastic;
  static pull::context<T> context() { return {.alpha = T(0.2)}; }
  static T force(T x, const std::array<T, 2>& b) { return T(0.2) * (x - b[0]); }
};

/// Overlap-Local-SGD: force = alpha * (x - anchor); snapshot, sum and velocity take no part.
template <class StepCase, class T>
struct anchor_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::anchor;
  static pull::context<T> context() { return {.alpha = T(0.2)}; }
  static T force(T x, const std::array<T, 4>& b) { return T(0.2) * (x - b[0]); }
};

/// No pull: no force.
template <class StepCase, class T>
struct no_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::none;
  static pull::context<T> context() { return {}; }
  static T force(T /*x*/, const std::array<T, 0>& /*b*/) { return T(0); }
};

/// Local SGD: averaging happens after the step, never as a per-step force.
template <class StepCase, class T>
struct average_pull {
  using step_case = StepCase;
  using value_type = T;
  using pull = tether::pull::average;
  static pull::context<T> context() { return {}; }
  static T force(T /*x*/, const std::array<T, 0>& /*b*/) { return T(0); }
};

/// Fused = step alone, then minus the force of the pre-step x; also the kernel's step-only and force-only
/// forms.
template <class Case>
void check_fused() {
  using T = typename Case::value_type;
  using Step = typename Case::step_case::step;
  using Pull = typename Case::pull;
  constexpr std::size_t S = Step::state_size;
  constexpr std::size_t B = Pull::buffers;
  using state_t = std::array<std::vector<T>, S>;

  for (const std::size_t n : tt::sizes) {
    CAPTURE(n);
    std::mt19937_64 gen(1000 + n);
    const std::vector<T> x0 = tt::random_vector<T>(n, 61 + n);
    std::vector<T> g(n);
    tt::fill_gradient<T>(g, gen);
    state_t state0;
    for (std::size_t k = 0; k < S; ++k) {
      state0[k] = tt::random_vector<T>(n, 70 + k);
      for (auto& v : state0[k]) v = std::abs(v);  // valid for every state (sums of squares, second moments)
    }
    std::array<std::vector<T>, B> targets;
    for (std::size_t k = 0; k < B; ++k) targets[k] = tt::random_vector<T>(n, 80 + k);
    const auto target_at = [&](std::size_t i) {
      std::array<T, B> t{};
      for (std::size_t k = 0; k < B; ++k) t[k] = targets[k][i];
      return t;
    };

    Step step{};
    step.opt = Case::step_case::options();
    for (const std::uint64_t k : {std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{25}}) {
      CAPTURE(k);
      const auto sc = step.template prepare<T>(k, T(0.05));
      const auto pc = Case::context();
      const auto wire = [&](auto& kernel, std::vector<T>& x, state_t& s) {
        kernel.x = x.data();
        kernel.g = g.data();
        for (std::size_t j = 0; j < S; ++j) kernel.s[j] = s[j].data();
        for (std::size_t j = 0; j < B; ++j) kernel.b[j] = targets[j].data();
        kernel.sc = sc;
        kernel.pc = pc;
      };

      // One fused pass.
      std::vector<T> xf = x0;
      state_t sf = state0;
      tether::fused_update<Step, Pull, T, true, true> fused{};
      wire(fused, xf, sf);
      for (std::size_t i = 0; i < n; ++i) fused(i);

      // The step alone, then the force computed from the pre-step parameters.
      std::vector<T> xs = x0;
      state_t ss = state0;
      tether::fused_update<Step, Pull, T, true, false> step_only{};
      wire(step_only, xs, ss);
      for (std::size_t i = 0; i < n; ++i) step_only(i);
      const std::vector<T> after_step = xs;
      for (std::size_t i = 0; i < n; ++i) xs[i] -= Case::force(x0[i], target_at(i));

      REQUIRE(tt::max_ulps(xf, xs) <= tt::same_order_ulps);
      for (std::size_t j = 0; j < S; ++j) REQUIRE(tt::max_ulps(sf[j], ss[j]) <= tt::same_order_ulps);

      // The step-only pass is x - delta(...) with the state advanced once.
      state_t sd = state0;
      std::size_t step_mismatch = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const T d = [&]<std::size_t... J>(std::index_sequence<J...>) {
          return Step::delta(sc, x0[i], g[i], sd[J][i]...);
        }
        (std::make_index_sequence<S>{});
        if (tt::ulp_distance(after_step[i], T(x0[i] - d)) > tt::same_order_ulps) ++step_mismatch;
      }
      REQUIRE(step_mismatch == 0);

      // The force alone (a skipped, non-finite gradient step): x - force, the step's state untouched.
      std::vector<T> xp = x0;
      state_t sp = state0;
      tether::fused_update<Step, Pull, T, false, true> force_only{};
      wire(force_only, xp, sp);
      for (std::size_t i = 0; i < n; ++i) force_only(i);
      std::size_t force_mismatch = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (tt::ulp_distance(xp[i], T(x0[i] - Case::force(x0[i], target_at(i)))) > tt::same_order_ulps)
          ++force_mismatch;
      }
      REQUIRE(force_mismatch == 0);
      for (std::size_t j = 0; j < S; ++j) REQUIRE(tt::same_bits(sp[j], state0[j]));
    }
  }
}

}  // namespace grid
