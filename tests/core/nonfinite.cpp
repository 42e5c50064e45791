// Non-finite gradients and losses: by default the step is skipped (x and the step's state untouched, the pull
// still takes part in its rounds) and counted in stats().skipped_nonfinite; with on_nonfinite = raise the
// step throws tether::runtime_error.

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

namespace {

constexpr std::size_t n = 6;

template <class T>
constexpr T qnan = std::numeric_limits<T>::quiet_NaN();
template <class T>
constexpr T inf = std::numeric_limits<T>::infinity();

}  // namespace

TEMPLATE_TEST_CASE("non-finite: the default policy skips the step and counts it", "[core][nonfinite]", float,
                   double) {
  using T = TestType;
  // Which value is bad: a gradient element (NaN, +inf, -inf at different places) or the loss (NaN, inf).
  struct bad_case {
    std::size_t index;  // gradient element to spoil, n for none
    T value;
    double loss;
  };
  const bad_case c =
      GENERATE(bad_case{0, qnan<T>, 1.0}, bad_case{n - 1, inf<T>, 1.0}, bad_case{2, -inf<T>, 1.0},
               bad_case{n, T(0), std::numeric_limits<double>::quiet_NaN()},
               bad_case{n, T(0), std::numeric_limits<double>::infinity()});
  CAPTURE(c.index, c.loss);

  std::vector<T> x = tt::random_vector<T>(n, 501);
  std::vector<T> x_before_bad;
  std::vector<T> v_before_bad, v_after_bad;
  std::uint64_t skipped = 0, steps = 0, applied = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::momentum, T> opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<T> g(n, T(1));
    opt.step(x, g, 1.0);
    opt.step(x, g, 1.0);
    x_before_bad = x;
    v_before_bad.assign(opt.state(0).data(), opt.state(0).data() + n);
    std::vector<T> bad = g;
    if (c.index < n) bad[c.index] = c.value;
    opt.step(x, bad, c.loss);
    v_after_bad.assign(opt.state(0).data(), opt.state(0).data() + n);
    skipped = opt.stats().skipped_nonfinite;
    steps = opt.stats().steps;
    applied = opt.applied_steps();
  });
  REQUIRE(tt::same_bits(x, x_before_bad));            // no element moved, not even the finite ones
  REQUIRE(tt::same_bits(v_after_bad, v_before_bad));  // the velocity did not absorb the bad gradient
  REQUIRE(skipped == 1);
  REQUIRE(steps == 3);
  REQUIRE(applied == 2);
}

TEMPLATE_TEST_CASE("non-finite: skipped steps do not advance Adam's bias correction", "[core][nonfinite]",
                   float, double) {
  // Steps: good, NaN, inf loss, good. The two good ones must be Adam's steps k = 1 and k = 2; for a constant
  // gradient g both move x by lr * g / (|g| + eps) (bias-corrected), so x = x0 - 2 lr g/(|g| + eps).
  using T = TestType;
  const std::vector<T> g = {T(2), T(-1), T(0.5), T(-4), T(0.125), T(8)};
  std::vector<T> x(n, T(0));
  std::uint64_t skipped = 0, applied = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::adam, T> opt(w, n, {.lr = 0.01});
    std::vector<T> gg = g;
    std::vector<T> bad = g;
    bad[4] = qnan<T>;
    opt.step(x, gg, 1.0);
    opt.step(x, bad, 1.0);
    opt.step(x, gg, std::numeric_limits<double>::infinity());
    opt.step(x, gg, 1.0);
    skipped = opt.stats().skipped_nonfinite;
    applied = opt.applied_steps();
  });
  REQUIRE(skipped == 2);
  REQUIRE(applied == 2);
  for (std::size_t i = 0; i < n; ++i) {
    const double gi = double(g[i]);
    const double expected = -2.0 * double(static_cast<T>(0.01)) * gi / (std::fabs(gi) + double(1e-8f));
    REQUIRE(double(x[i]) == Approx(expected).epsilon(100 * tt::eps_of<T>));
  }
}

TEST_CASE("non-finite: with on_nonfinite = raise the step throws tether::runtime_error",
          "[core][nonfinite]") {
  using tt::message_has;
  tt::on_one_worker([](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n, {.on_nonfinite = tether::nonfinite_policy::raise});
    std::vector<float> x(n, 1.0f), g(n, 1.0f);
    opt.step(x, g, 1.0);
    opt.step(x, g, 1.0);
    g[1] = qnan<float>;
    REQUIRE_THROWS_MATCHES(opt.step(x, g, 1.0), tether::runtime_error,
                           message_has({"non-finite gradient", "worker 0", "step 2"}));
    g[1] = 1.0f;
    REQUIRE_THROWS_MATCHES(opt.step(x, g, std::numeric_limits<double>::infinity()), tether::runtime_error,
                           message_has({"non-finite loss", "step 2"}));
    REQUIRE(opt.stats().skipped_nonfinite == 0);
    REQUIRE(opt.stats().steps == 2);
  });
  // The runtime error is not a tether::error (bad input): callers can tell them apart.
  bool caught_as_error = false;
  try {
    tt::on_one_worker([](tether::team::worker& w) {
      tt::solo_optimizer<tether::step::sgd, float> opt(w, n,
                                                       {.on_nonfinite = tether::nonfinite_policy::raise});
      std::vector<float> x(n, 1.0f), g(n, inf<float>);
      opt.step(x, g, 1.0);
    });
  } catch (const tether::error&) {
    caught_as_error = true;
  } catch (const tether::runtime_error&) {
  }
  REQUIRE_FALSE(caught_as_error);
}

TEST_CASE("non-finite: check_gradient = false trusts the gradient (no scan)", "[core][nonfinite]") {
  std::vector<float> x(n, 1.0f);
  std::uint64_t skipped = 1;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n, {.lr = 0.5, .check_gradient = false});
    std::vector<float> g(n, 1.0f);
    g[2] = qnan<float>;
    opt.step(x, g, 1.0);
    skipped = opt.stats().skipped_nonfinite;
  });
  REQUIRE(skipped == 0);
  REQUIRE(std::isnan(x[2]));
  for (std::size_t i = 0; i < n; ++i)
    if (i != 2) REQUIRE(x[i] == 0.5f);
}

TEMPLATE_TEST_CASE("non-finite: a skipped step still takes part in the pull's round", "[core][nonfinite]",
                   float, double) {
  // One worker with an elastic pull (period 2, alpha 0.5): the center starts at x0; at steps 2, 4, ... the
  // force alpha*(x - center) acts and the center moves by alpha*(x - center). Step 2's gradient is NaN: x
  // still feels the force and the center still moves, only the gradient part is dropped.
  using T = TestType;
  constexpr double lr = 0.1;
  constexpr int steps = 9;
  const std::vector<T> x0 = tt::random_vector<T>(n, 601);
  std::vector<T> x = x0;
  std::vector<T> center;
  std::uint64_t rounds = 0;
  std::vector<std::vector<T>> grads(steps, std::vector<T>(n));
  std::mt19937_64 gen(602);
  for (auto& g : grads) tt::fill_gradient<T>(g, gen);
  grads[2][1] = qnan<T>;
  grads[5][0] = inf<T>;  // a skipped step that is not a round
  tt::on_one_worker([&](tether::team::worker& w) {
    tether::optimizer<tether::step::sgd, tether::pull::elastic, tether::team::worker, tether::exec::serial, T>
        opt(w, n, {.lr = lr, .pull = {.period = 2, .alpha = 0.5f}});
    for (int t = 0; t < steps; ++t) opt.step(x, grads[t], 1.0);
    center.assign(opt.target(0).data(), opt.target(0).data() + n);
    rounds = opt.stats().rounds;
  });

  std::vector<T> ref = x0;
  std::vector<T> c = x0;
  const T a = T(0.5f);
  const T lr_t = static_cast<T>(lr);
  for (int t = 0; t < steps; ++t) {
    const bool skipped = t == 2 || t == 5;
    const bool round = t > 0 && t % 2 == 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T pre = ref[i];
      T r = pre;
      if (!skipped) r -= lr_t * grads[t][i];
      if (round) {
        r -= a * (pre - c[i]);
        c[i] += a * (pre - T(1) * c[i]);
      }
      ref[i] = r;
    }
  }
  REQUIRE(rounds == 4);
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
  REQUIRE(tt::max_ulps(center, c) <= tt::same_order_ulps);
}

TEST_CASE("non-finite: more than skip_limit consecutive skipped steps throw, naming the worker",
          "[core][nonfinite]") {
  using tt::message_has;
  // skip_limit = 3: three bad steps in a row are skipped, the fourth throws before changing anything; a
  // finite step in between starts the count again.
  std::vector<float> x(n, 1.0f);
  std::vector<float> x_before_throw;
  std::uint64_t skipped_at_throw = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n, {.lr = 0.5, .skip_limit = 3});
    std::vector<float> g(n, 1.0f), bad(n, 1.0f);
    bad[3] = qnan<float>;
    for (int i = 0; i < 3; ++i) opt.step(x, bad, 1.0);
    opt.step(x, g, 1.0);  // resets the count
    for (int i = 0; i < 3; ++i) opt.step(x, bad, 1.0);
    REQUIRE(opt.stats().skipped_nonfinite == 6);
    x_before_throw = x;
    REQUIRE_THROWS_MATCHES(opt.step(x, bad, 1.0), tether::runtime_error,
                           message_has({"worker 0", "non-finite gradient", "4 consecutive steps", "step 7",
                                        "skip_limit = 3"}));
    REQUIRE_THROWS_MATCHES(opt.step(x, g, std::numeric_limits<double>::quiet_NaN()), tether::runtime_error,
                           message_has({"non-finite loss", "skip_limit = 3"}));
    skipped_at_throw = opt.stats().skipped_nonfinite;
  });
  REQUIRE(skipped_at_throw == 6);
  REQUIRE(tt::same_bits(x, x_before_throw));
  REQUIRE(x[0] == 0.5f);  // the one finite step moved x by lr * g
}

TEST_CASE("non-finite: the default skip_limit is 100, and 0 skips without limit", "[core][nonfinite]") {
  using tt::message_has;
  tt::on_one_worker([](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n);
    REQUIRE(opt.opts().skip_limit == 100);
    std::vector<float> x(n, 1.0f), bad(n, inf<float>);
    for (int i = 0; i < 100; ++i) opt.step(x, bad, 1.0);
    REQUIRE_THROWS_MATCHES(opt.step(x, bad, 1.0), tether::runtime_error,
                           message_has({"101 consecutive steps", "skip_limit = 100"}));
  });
  std::uint64_t skipped = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, float> opt(w, n, {.skip_limit = 0});
    std::vector<float> x(n, 1.0f), bad(n, inf<float>);
    for (int i = 0; i < 1000; ++i) opt.step(x, bad, 1.0);
    skipped = opt.stats().skipped_nonfinite;
  });
  REQUIRE(skipped == 1000);
}

TEST_CASE("non-finite: a worker past skip_limit in a team makes run() throw its error on time",
          "[core][nonfinite]") {
  using tt::message_has;
  // Worker 1 of 3 never computes a finite gradient; the others average with it every 2 steps. Its error must
  // reach run() (the others are released from their collective by the team's fault handling), not a hang.
  tether::team team(3);
  REQUIRE_THROWS_MATCHES(team.run([](tether::team::worker& w) {
    tether::optimizer<tether::step::sgd, tether::pull::average, tether::team::worker> opt(
        w, n, {.lr = 0.1, .pull = {.period = 2}, .skip_limit = 5});
    std::vector<float> x(n, 1.0f), g(n, 1.0f);
    if (w.rank() == 1) g[0] = qnan<float>;
    for (int t = 0; t < 40; ++t) opt.step(x, g, 1.0);
  }),
                         tether::runtime_error, message_has({"worker 1", "6 consecutive steps", "skip_limit = 5"}));
}
