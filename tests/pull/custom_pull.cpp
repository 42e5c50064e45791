// User-defined pull policies, written here as a user would (no change to the library): a pull toward a fixed
// point (the worker's starting parameters) and a communicating pull toward the mean of the other workers.
// They satisfy tether::pull_policy, plug into tether::optimizer, and match hand loops bit for bit.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../core/support.hpp"

namespace {

/// Pulls every step toward the point the worker started from (an L2-SP-like tether):
/// force = strength * (x - home). One buffer: home, filled by start().
struct home_pull {
  struct options {
    float strength = 0.1f;
  };
  options opt{};
  static constexpr std::size_t buffers = 1;
  template <class T>
  struct context {
    T k;
  };
  void validate(int /*workers*/) const {
    if (!(opt.strength >= 0.0f && opt.strength <= 1.0f))
      throw tether::error("home_pull: strength must be in [0, 1], got strength = " +
                          std::to_string(opt.strength));
  }
  template <class Env, class T, class S>
  void start(Env& env, tether::view<T, S> x, tether::pull_buffers<T, buffers, S> b) {
    env.exec.parallel_for(x.size(), tether::kernels::copy<T>{x.data(), b[0].data()});
  }
  template <class Env, class T, class S>
  bool before(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>, context<T>& c) {
    c.k = T(opt.strength);
    return opt.strength != 0.0f;
  }
  template <class Env, class T, class S>
  void after(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}
  template <class T>
  static T force(const context<T>& c, T x, T home) {
    return c.k * (x - home);
  }
};

/// target[i] = (sum[i] - x[i]) / (p - 1): the mean of the other workers' parameters.
template <class T>
struct others_mean {
  T* target;
  const T* sum;
  const T* x;
  T others;
  void operator()(std::size_t i) const { target[i] = (sum[i] - x[i]) / others; }
};

/// Every `period` steps, pulls toward the mean of the other workers (one all-reduce per round):
/// force = alpha * (x - mean_{j != i} x_j), at rounds only. Buffers: [target, sum].
struct toward_others {
  struct options {
    std::uint32_t period = 4;
    float alpha = 0.5f;
  };
  options opt{};
  static constexpr std::size_t buffers = 2;
  template <class T>
  struct context {
    T alpha;
  };
  void validate(int workers) const {
    if (workers < 2)
      throw tether::error("toward_others: needs workers >= 2, got workers = " + std::to_string(workers));
    if (opt.period == 0) throw tether::error("toward_others: period must be > 0, got period = 0");
  }
  template <class Env, class T, class S>
  void start(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}
  template <class Env, class T, class S>
  bool before(Env& env, tether::view<T, S> x, tether::pull_buffers<T, buffers, S> b, context<T>& c) {
    if (env.step == 0 || env.step % opt.period != 0) return false;
    env.exec.parallel_for(x.size(), tether::kernels::copy<T>{x.data(), b[1].data()});
    env.comm.allreduce_sum(b[1].span());
    env.exec.parallel_for(
        x.size(), others_mean<T>{b[0].data(), b[1].data(), x.data(), static_cast<T>(env.comm.size() - 1)});
    env.round = true;
    c.alpha = T(opt.alpha);
    return true;
  }
  template <class Env, class T, class S>
  void after(Env&, tether::view<T, S>, tether::pull_buffers<T, buffers, S>) {}
  template <class T>
  static T force(const context<T>& c, T x, T target, T /*sum*/) {
    return c.alpha * (x - target);
  }
};

/// Not a pull policy: force has the wrong number of target arguments.
struct bad_force_arity {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 2;
  template <class T>
  struct context {};
  void validate(int) const {}
  template <class T>
  static T force(const context<T>&, T x) {
    return x;
  }
};

/// Not a pull policy: no validate(workers).
struct no_validate {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 0;
  template <class T>
  struct context {};
  template <class T>
  static T force(const context<T>&, T) {
    return T(0);
  }
};

using env_t = tether::step_env<tether::team::worker, tether::exec::serial>;
static_assert(tether::pull_policy<home_pull> && tether::pull_policy<home_pull, double>);
static_assert(tether::pull_policy<toward_others> && tether::pull_policy<toward_others, double>);
static_assert(tether::pull_policy_for<home_pull, float, env_t>);
static_assert(tether::pull_policy_for<toward_others, double, env_t>);
static_assert(!tether::pull_policy<bad_force_arity>);
static_assert(!tether::pull_policy<no_validate>);
// The library's own pulls satisfy the same concepts.
static_assert(tether::pull_policy_for<tether::pull::none, float, env_t> &&
              tether::pull_policy_for<tether::pull::leader, float, env_t> &&
              tether::pull_policy_for<tether::pull::group_leader, double, env_t> &&
              tether::pull_policy_for<tether::pull::elastic, float, env_t> &&
              tether::pull_policy_for<tether::pull::anchor, double, env_t> &&
              tether::pull_policy_for<tether::pull::average, float, env_t>);

/// Gradient of 1/2 |x - c|^2.
template <class T>
void quadratic_gradient(const std::vector<T>& x, const std::vector<T>& c, std::vector<T>& g) {
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = x[i] - c[i];
}

}  // namespace

TEMPLATE_TEST_CASE("custom pull: a fixed home point, with SGD and with heavy-ball momentum", "[pull][custom]",
                   float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  const bool momentum = GENERATE(false, true);
  CAPTURE(n, momentum);
  constexpr double lr = 0.05;
  constexpr float strength = 0.125f;
  const std::vector<T> x0 = tt::random_vector<T>(n, 91);
  std::vector<T> x = x0;
  std::vector<T> ref = x0;
  std::vector<T> v_ref(n, T(0));
  std::vector<T> g(n);
  std::vector<T> home;
  tt::on_one_worker([&](tether::team::worker& w) {
    const auto run = [&](auto& opt) {
      std::mt19937_64 gen(92);
      const T lr_t = static_cast<T>(lr);
      for (int k = 0; k < 100; ++k) {
        tt::fill_gradient<T>(g, gen);
        opt.step(x, g, 1.0);
        for (std::size_t i = 0; i < n; ++i) {
          const T pre = ref[i];
          T d = lr_t * g[i];
          if (momentum) {
            v_ref[i] = T(0.9f) * v_ref[i] + g[i];
            d = lr_t * v_ref[i];
          }
          ref[i] = pre - d - T(strength) * (pre - x0[i]);
        }
      }
      const auto t = opt.target(0);
      home.assign(t.data(), t.data() + t.size());
    };
    if (momentum) {
      tether::optimizer<tether::step::momentum, home_pull, tether::team::worker, tether::exec::serial, T> opt(
          w, n, {.lr = lr, .step = {.momentum = 0.9f}, .pull = {.strength = strength}});
      run(opt);
    } else {
      tether::optimizer<tether::step::sgd, home_pull, tether::team::worker, tether::exec::serial, T> opt(
          w, n, {.lr = lr, .pull = {.strength = strength}});
      run(opt);
    }
  });
  REQUIRE(tt::same_bits(home, x0));
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
}

TEMPLATE_TEST_CASE("custom pull: toward the mean of the other workers, on a team of 2 and of 3",
                   "[pull][custom]", float, double) {
  using T = TestType;
  const int p = GENERATE(2, 3);
  const std::size_t n = GENERATE(std::size_t{1}, std::size_t{7}, std::size_t{300});
  CAPTURE(p, n);
  constexpr double lr = 0.1;
  constexpr std::uint32_t period = 3;
  constexpr float alpha = 0.5f;
  constexpr int steps = 40;

  std::vector<std::vector<T>> start(p), centre(p);
  for (int r = 0; r < p; ++r) {
    start[r] = tt::random_vector<T>(n, 100 + r);
    centre[r] = tt::random_vector<T>(n, 200 + r, 1.0, 3.0 * r);
  }

  // The library, one optimizer per worker thread.
  std::vector<std::vector<T>> x = start;
  std::vector<std::uint64_t> rounds(p);
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    tether::optimizer<tether::step::sgd, toward_others, tether::team::worker, tether::exec::serial, T> opt(
        w, n, {.lr = lr, .pull = {.period = period, .alpha = alpha}});
    std::vector<T> g(n);
    for (int t = 0; t < steps; ++t) {
      quadratic_gradient(x[r], centre[r], g);
      opt.step(x[r], g, 1.0);
    }
    rounds[r] = opt.stats().rounds;
  });

  // The hand loop: all workers in lockstep, the sum added in rank order.
  std::vector<std::vector<T>> ref = start;
  std::vector<T> g(n), sum(n);
  const T lr_t = static_cast<T>(lr);
  for (int t = 0; t < steps; ++t) {
    const bool round = t > 0 && t % period == 0;
    if (round) {
      sum = ref[0];
      for (int r = 1; r < p; ++r)
        for (std::size_t i = 0; i < n; ++i) sum[i] += ref[r][i];
    }
    for (int r = 0; r < p; ++r) {
      quadratic_gradient(ref[r], centre[r], g);
      for (std::size_t i = 0; i < n; ++i) {
        const T pre = ref[r][i];
        T next = pre - lr_t * g[i];
        if (round) next -= T(alpha) * (pre - (sum[i] - pre) / static_cast<T>(p - 1));
        ref[r][i] = next;
      }
    }
  }
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    REQUIRE(tt::max_ulps(x[r], ref[r]) <= tt::same_order_ulps);
    REQUIRE(rounds[r] == (steps - 1) / period);
  }
}

TEST_CASE("custom pull: its validate(workers) runs when the optimizer is built", "[pull][custom]") {
  REQUIRE_THROWS_MATCHES(tt::on_one_worker([](tether::team::worker& w) {
                           tether::optimizer<tether::step::sgd, toward_others, tether::team::worker> opt(w,
                                                                                                         3);
                         }),
                         tether::error, tt::message_has({"workers", "got workers = 1"}));
  REQUIRE_THROWS_MATCHES(tt::on_one_worker([](tether::team::worker& w) {
                           tether::optimizer<tether::step::sgd, home_pull, tether::team::worker> opt(
                               w, 3, {.pull = {.strength = 2.0f}});
                         }),
                         tether::error, tt::message_has({"strength", "2"}));
}
