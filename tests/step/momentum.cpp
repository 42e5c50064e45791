// step::momentum (heavy ball and Nesterov) driven through tether::optimizer on a one-worker team, against the
// PyTorch-convention loop written from the formulas (no dampening):
//   v <- mu*v + g;   heavy ball: x <- x - lr*v;   Nesterov: x <- x - lr*(g + mu*v).

#include <cstddef>
#include <random>
#include <vector>

#include "../core/support.hpp"

TEMPLATE_TEST_CASE("momentum: the optimizer equals the scalar heavy-ball and Nesterov loops",
                   "[step][momentum]", float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  const bool nesterov = GENERATE(false, true);
  const float mu = GENERATE(0.0f, 0.5f, 0.9f);
  CAPTURE(n, nesterov, mu);
  constexpr double lr = 0.01;
  constexpr int steps = 200;

  std::vector<T> x = tt::random_vector<T>(n, 21);
  std::vector<T> ref = x;
  std::vector<T> v_ref(n, T(0));
  std::vector<T> g(n);
  std::vector<T> velocity;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::momentum, T> opt(
        w, n, {.lr = lr, .step = {.momentum = mu, .nesterov = nesterov}});
    std::mt19937_64 gen(22);
    const T lr_t = static_cast<T>(lr);
    const T mu_t = static_cast<T>(mu);
    for (int k = 0; k < steps; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 0.5);
      for (std::size_t i = 0; i < n; ++i) {
        v_ref[i] = mu_t * v_ref[i] + g[i];
        const T d = nesterov ? g[i] + mu_t * v_ref[i] : v_ref[i];
        ref[i] -= lr_t * d;
      }
    }
    const auto s = opt.state(0);
    velocity.assign(s.data(), s.data() + s.size());
  });
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
  REQUIRE(tt::max_ulps(velocity, v_ref) <= tt::same_order_ulps);
}

TEST_CASE("momentum: step::nesterov(mu) is the Nesterov form with that coefficient", "[step][momentum]") {
  const auto m = tether::step::nesterov(0.99f);
  REQUIRE(m.opt.nesterov);
  REQUIRE(m.opt.momentum == 0.99f);
  const auto c = m.prepare<double>(1, 0.1);
  REQUIRE(c.nesterov);
  REQUIRE(c.mu == double(0.99f));
}

TEST_CASE("momentum: one Nesterov step by hand", "[step][momentum]") {
  // v0 = 1, g = 2, mu = 0.5, lr = 0.25: v1 = 0.5*1 + 2 = 2.5; d = 2 + 0.5*2.5 = 3.25; delta = 0.8125.
  tether::step::momentum s{{.momentum = 0.5f, .nesterov = true}};
  double v = 1.0;
  const double delta = tether::step::momentum::delta(s.prepare<double>(1, 0.25), 0.0, 2.0, v);
  REQUIRE(v == 2.5);
  REQUIRE(delta == 0.8125);
  // Heavy ball from the same state: delta = lr*v1 = 0.625.
  tether::step::momentum h{{.momentum = 0.5f, .nesterov = false}};
  double vh = 1.0;
  REQUIRE(tether::step::momentum::delta(h.prepare<double>(1, 0.25), 0.0, 2.0, vh) == 0.625);
}
