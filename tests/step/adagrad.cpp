// step::adagrad driven through tether::optimizer on a one-worker team, against the loop written from Duchi et
// al. (the form Downpour's shards apply): h <- h + g^2;  x <- x - lr * g / (sqrt(h) + eps).

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

#include "../core/support.hpp"

TEMPLATE_TEST_CASE("adagrad: the optimizer equals the scalar loop", "[step][adagrad]", float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  const float h0 = GENERATE(0.0f, 0.1f);
  CAPTURE(n, h0);
  constexpr double lr = 0.1;
  constexpr float eps = 1e-10f;
  constexpr int steps = 200;

  std::vector<T> x = tt::random_vector<T>(n, 31);
  std::vector<T> ref = x;
  std::vector<T> h_ref(n, static_cast<T>(h0));
  std::vector<T> g(n);
  std::vector<T> h_initial;
  std::vector<T> h;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::adagrad, T> opt(
        w, n, {.lr = lr, .step = {.eps = eps, .initial_accumulator = h0}});
    const auto s0 = opt.state(0);
    h_initial.assign(s0.data(), s0.data() + s0.size());
    std::mt19937_64 gen(32);
    const T lr_t = static_cast<T>(lr);
    const T eps_t = static_cast<T>(eps);
    for (int k = 0; k < steps; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 2.0);
      for (std::size_t i = 0; i < n; ++i) {
        h_ref[i] += g[i] * g[i];
        ref[i] -= lr_t * g[i] / (std::sqrt(h_ref[i]) + eps_t);
      }
    }
    const auto s = opt.state(0);
    h.assign(s.data(), s.data() + s.size());
  });
  REQUIRE(h_initial == std::vector<T>(n, static_cast<T>(h0)));
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
  REQUIRE(tt::max_ulps(h, h_ref) <= tt::same_order_ulps);
}

TEST_CASE("adagrad: the first step from h = 0 moves every coordinate by about lr", "[step][adagrad]") {
  // h = g^2 after one step, so the step is lr * g / (|g| + eps) = lr * sign(g) up to eps.
  tether::step::adagrad a{};
  const auto c = a.prepare<double>(1, 0.3);
  for (const double g : {-5.0, -1e-3, 2e-2, 7.0}) {
    double h = 0.0;
    const double d = tether::step::adagrad::delta(c, 0.0, g, h);
    REQUIRE(h == g * g);
    REQUIRE(d == Approx(0.3 * (g > 0 ? 1.0 : -1.0)).epsilon(1e-6));
  }
}
