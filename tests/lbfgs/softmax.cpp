// problems::softmax: its gradient against central finite differences (double, 1e-7 relative), its loss at
// W = 0 (log C plus nothing), labels out of range refused; Sandblaster L-BFGS on it follows the serial L-BFGS
// of serial_reference.hpp and reaches a point where the gradient vanishes (to the tolerance).

#include "serial_reference.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/softmax.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

TEST_CASE("softmax's gradient matches finite differences", "[lbfgs][softmax]") {
  const auto p = tether::problems::softmax<double>::generated(60, 5, {.classes = 3, .l2 = 0.05}, 9);
  REQUIRE(p.dimension() == 18);
  std::vector<double> w(p.dimension()), g(p.dimension()), gp(p.dimension());
  tether::rng r(3);
  for (auto& v : w) v = 0.3 * r.normal();
  const std::vector<std::size_t> batch{1, 4, 9, 16, 25, 36, 49};
  for (const bool all : {true, false}) {
    const tether::batch b{.samples =
                              all ? std::span<const std::size_t>{} : std::span<const std::size_t>(batch)};
    (void)p.evaluate(w, g, b);
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double h = 1e-5;
      auto wp = w, wm = w;
      wp[i] += h;
      wm[i] -= h;
      const double fd = (p.evaluate(wp, gp, b) - p.evaluate(wm, gp, b)) / (2 * h);
      CHECK(g[i] == Approx(fd).epsilon(1e-7).margin(1e-9));
    }
  }
  std::vector<double> zero(p.dimension(), 0.0);
  CHECK(p.evaluate(zero, g, {}) == Approx(std::log(3.0)).epsilon(1e-14));
}

TEST_CASE("softmax refuses labels out of range and mismatched sizes", "[lbfgs][softmax]") {
  const std::vector<float> x(6, 1.0f);
  const std::vector<std::uint8_t> bad{0, 3};
  CHECK_THROWS_WITH(tether::problems::softmax<float>(x, bad, 3, {.classes = 3}),
                    Catch::Contains("label 3 of sample 1 is not below classes = 3"));
  const std::vector<std::uint8_t> three{0, 1, 2};
  CHECK_THROWS_WITH(tether::problems::softmax<float>(x, three, 3, {.classes = 3}),
                    Catch::Contains("6 feature values for 3 labels of 3 features each"));
}

TEST_CASE("Sandblaster L-BFGS on the softmax regression follows serial L-BFGS", "[lbfgs][softmax]") {
  auto p = tether::problems::softmax<double>::generated(800, 12, {.classes = 4, .l2 = 1e-3}, 5);
  const std::vector<double> x0(p.dimension(), 0.0);
  const tether::lbfgs::options o{.history = 6, .epsilon = 1e-8, .portions = 8, .timeout = 60.0};
  const auto ref = lbfgs_test::serial_lbfgs(p, x0, o);
  REQUIRE(ref.converged);
  tether::team team(2);
  tether::lbfgs::result r;
  std::vector<double> x_out, g_out;
  team.run([&](tether::team::worker& w) {
    std::vector<double> x = x0, g(x0.size());
    auto res = tether::lbfgs::minimize(tether::exec::serial{}, w, p, x, g, o);
    if (w.rank() == 0) {
      r = res;
      x_out = x;
      g_out = g;
    }
  });
  REQUIRE(r.status == tether::lbfgs::outcome::converged);
  CHECK(static_cast<double>(r.iterations) <= 1.1 * static_cast<double>(ref.iterations) + 1.0);
  for (std::size_t i = 0; i < std::min<std::size_t>(10, r.history.size()); ++i)
    CHECK(r.history[i].f == Approx(ref.history[i].f).epsilon(1e-9));
  for (std::size_t i = 0; i < x0.size(); ++i) CHECK(x_out[i] == Approx(ref.x[i]).margin(1e-6));
  std::vector<double> g(x0.size());
  (void)p.evaluate(x_out, g, {});
  double gn = 0.0;
  for (const double v : g) gn += v * v;
  CHECK(std::sqrt(gn) < 1e-6);
}
