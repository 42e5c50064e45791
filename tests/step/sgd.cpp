// step::sgd driven through tether::optimizer on a one-worker team, against the textbook loop x -= lr*g.

#include <cstddef>
#include <random>
#include <vector>

#include "../core/support.hpp"

TEMPLATE_TEST_CASE("sgd: the optimizer equals the scalar loop x -= lr*g", "[step][sgd]", float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(from_range(tt::sizes));
  CAPTURE(n);
  constexpr double lr = 0.05;
  constexpr int steps = 200;

  std::vector<T> x = tt::random_vector<T>(n, 11);
  std::vector<T> ref = x;
  std::vector<T> g(n);
  std::uint64_t applied = 0;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, T> opt(w, n, {.lr = lr});
    std::mt19937_64 gen(12);
    for (int k = 0; k < steps; ++k) {
      tt::fill_gradient<T>(g, gen);
      opt.step(x, g, 1.0);
      const T lr_t = static_cast<T>(lr);
      for (std::size_t i = 0; i < n; ++i) ref[i] -= lr_t * g[i];
    }
    applied = opt.applied_steps();
  });
  REQUIRE(applied == steps);
  REQUIRE(tt::max_ulps(x, ref) <= tt::same_order_ulps);
}
