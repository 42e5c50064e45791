// The test problems' gradients against central finite differences of their losses, in double.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "../core/support.hpp"

namespace {

static_assert(tether::objective<tether::problems::quadratic<float>>);
static_assert(tether::objective<tether::problems::quadratic<double>, double>);
static_assert(tether::objective<tether::problems::rosenbrock<double>, double>);
static_assert(tether::objective<tether::problems::logistic<float>>);
static_assert(tether::objective<tether::problems::double_well<double>, double>);

/// Checks evaluate()'s gradient at x against (f(x + h e_i) - f(x - h e_i)) / 2h, f = evaluate()'s loss.
template <class P>
void check_against_central_differences(const P& p, std::vector<double> x, const tether::batch& b = {}) {
  const std::size_t n = x.size();
  std::vector<double> g(n), scratch(n);
  const double f0 = p.evaluate(x, g, b);
  REQUIRE(std::isfinite(f0));
  for (std::size_t i = 0; i < n; ++i) {
    CAPTURE(i, x[i]);
    const double h = 1e-5 * std::max(1.0, std::fabs(x[i]));
    const double xi = x[i];
    x[i] = xi + h;
    const double fp = p.evaluate(x, scratch, b);
    x[i] = xi - h;
    const double fm = p.evaluate(x, scratch, b);
    x[i] = xi;
    const double fd = (fp - fm) / (2.0 * h);
    // Truncation error O(h^2 f''') plus cancellation O(eps |f| / h).
    REQUIRE(g[i] == Approx(fd).epsilon(1e-6).margin(1e-7 * std::max(1.0, std::fabs(f0))));
  }
}

}  // namespace

TEST_CASE("problems: quadratic gradient = central differences", "[problems]") {
  for (std::size_t n : {1, 5, 40}) {
    CAPTURE(n);
    tether::problems::quadratic<double> q(n, {.a_min = 0.5, .a_max = 20.0, .seed = 3});
    for (int k = 0; k < 3; ++k)
      check_against_central_differences(q, tt::random_vector<double>(n, 700 + k, 2.0));
    // And the closed form: g_i = a_i (x_i - c_i), f = 1/2 sum a_i (x_i - c_i)^2.
    const auto x = tt::random_vector<double>(n, 710);
    std::vector<double> g(n);
    const double f = q.evaluate(x, g, {});
    double want = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double a = q.curvature()[i];
      const double d = x[i] - q.optimum()[i];
      want += 0.5 * a * d * d;
      REQUIRE(g[i] == Approx(a * d).epsilon(1e-15));
      REQUIRE(a >= 0.5);
      REQUIRE(a <= 20.0);
    }
    REQUIRE(f == Approx(want).epsilon(1e-14));
    if (n > 1) {
      REQUIRE(q.curvature()[0] == 0.5);
      REQUIRE(q.curvature()[n - 1] == 20.0);
    }
  }
}

TEST_CASE("problems: rosenbrock gradient = central differences", "[problems]") {
  for (std::size_t n : {2, 3, 10}) {
    CAPTURE(n);
    tether::problems::rosenbrock<double> r(n);
    for (int k = 0; k < 4; ++k)
      check_against_central_differences(r, tt::random_vector<double>(n, 720 + k, 0.8, 0.3));
  }
  // The closed form in two dimensions: f = 100 (y - x^2)^2 + (1 - x)^2.
  tether::problems::rosenbrock<double> r2(2);
  std::vector<double> g(2);
  const std::vector<double> x = {-1.2, 1.0};
  REQUIRE(r2.evaluate(x, g, {}) == Approx(100.0 * 0.44 * 0.44 + 2.2 * 2.2).epsilon(1e-14));
  REQUIRE(g[0] == Approx(-400.0 * -1.2 * (1.0 - 1.44) - 2.0 * 2.2).epsilon(1e-14));
  REQUIRE(g[1] == Approx(200.0 * (1.0 - 1.44)).epsilon(1e-14));
}

TEST_CASE("problems: logistic gradient = central differences, full batch and minibatch", "[problems]") {
  tether::problems::logistic<double> lg({.samples = 80, .features = 6, .l2 = 1e-2, .seed = 11});
  REQUIRE(lg.dimension() == 7);
  for (int k = 0; k < 3; ++k) check_against_central_differences(lg, tt::random_vector<double>(7, 730 + k));
  const std::vector<std::size_t> idx = {3, 3, 17, 42, 79, 0};
  check_against_central_differences(lg, tt::random_vector<double>(7, 740), tether::batch{idx, 5});
}

TEST_CASE("problems: double_well gradient = central differences", "[problems]") {
  tether::problems::double_well<double> dw(9);
  for (int k = 0; k < 3; ++k)
    check_against_central_differences(dw, tt::random_vector<double>(9, 750 + k, 1.5));
  // The closed form: f = 1/4 sum (x^2 - 1)^2, g = x (x^2 - 1).
  std::vector<double> g(9);
  const auto x = tt::random_vector<double>(9, 760);
  double want = 0.0;
  dw.evaluate(x, g, {});
  for (std::size_t i = 0; i < 9; ++i) {
    REQUIRE(g[i] == Approx(x[i] * (x[i] * x[i] - 1.0)).epsilon(1e-14).margin(1e-300));
    want += 0.25 * (x[i] * x[i] - 1.0) * (x[i] * x[i] - 1.0);
  }
  REQUIRE(dw.value(x) == Approx(want).epsilon(1e-14));
}

TEST_CASE("problems: the float instantiations agree with the double ones", "[problems]") {
  // The same problem in float: gradients within float rounding of the double gradients.
  const std::size_t n = 12;
  tether::problems::quadratic<float> qf(n);
  tether::problems::quadratic<double> qd(n);
  tether::problems::rosenbrock<float> rf(n);
  tether::problems::rosenbrock<double> rd(n);
  const auto xd = tt::random_vector<double>(n, 770, 0.5);
  std::vector<float> xf(xd.begin(), xd.end());
  std::vector<double> xdf(xf.begin(), xf.end());  // the float point, in double
  std::vector<float> gf(n);
  std::vector<double> gd(n);
  qf.evaluate(xf, gf, {});
  qd.evaluate(xdf, gd, {});
  for (std::size_t i = 0; i < n; ++i) REQUIRE(double(gf[i]) == Approx(gd[i]).epsilon(1e-5).margin(1e-6));
  rf.evaluate(xf, gf, {});
  rd.evaluate(xdf, gd, {});
  for (std::size_t i = 0; i < n; ++i) REQUIRE(double(gf[i]) == Approx(gd[i]).epsilon(1e-5).margin(1e-5));
}
