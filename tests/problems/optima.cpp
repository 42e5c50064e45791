// Known optima and stationary points of the test problems, determinism per seed, the logistic loss against a
// hand computation, gradient noise, and bad construction arguments.

#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/support.hpp"

TEMPLATE_TEST_CASE("problems: the quadratic's optimum has zero gradient and zero loss", "[problems]", float,
                   double) {
  using T = TestType;
  tether::problems::quadratic<T> q(50, {.a_min = 1.0, .a_max = 10.0, .seed = 4});
  const auto c = q.optimum();
  std::vector<T> x(c.begin(), c.end());
  std::vector<T> g(50, T(1));
  REQUIRE(q.evaluate(x, g, {}) == 0.0);
  for (const T v : g) REQUIRE(v == T(0));
  // The optimum lies in [-1, 1) and differs between seeds.
  for (const T v : c) {
    REQUIRE(v >= T(-1));
    REQUIRE(v < T(1));
  }
  tether::problems::quadratic<T> other(50, {.seed = 5});
  REQUIRE_FALSE(tt::same_bits(std::vector<T>(other.optimum().begin(), other.optimum().end()), x));
  // Anywhere else the loss is positive.
  x[7] += T(0.5);
  REQUIRE(q.evaluate(x, g, {}) > 0.0);
}

TEMPLATE_TEST_CASE("problems: rosenbrock is 0 with zero gradient at all ones", "[problems]", float, double) {
  using T = TestType;
  for (std::size_t n : {2, 3, 17}) {
    tether::problems::rosenbrock<T> r(n);
    std::vector<T> x(n, T(1)), g(n, T(5));
    REQUIRE(r.evaluate(x, g, {}) == 0.0);
    for (const T v : g) REQUIRE(v == T(0));
    x[0] = T(0.9);
    REQUIRE(r.value(x) > 0.0);
  }
}

TEMPLATE_TEST_CASE("problems: double_well minima at +-1 and a stationary point at 0", "[problems]", float,
                   double) {
  using T = TestType;
  tether::problems::double_well<T> dw(4);
  std::vector<T> g(4, T(3));
  std::vector<T> x = {T(1), T(-1), T(1), T(-1)};
  REQUIRE(dw.evaluate(x, g, {}) == 0.0);
  for (const T v : g) REQUIRE(v == T(0));
  std::vector<T> zero(4, T(0));
  REQUIRE(dw.evaluate(zero, g, {}) == 1.0);  // 4 * 1/4
  for (const T v : g) REQUIRE(v == T(0));
}

TEST_CASE("problems: the logistic loss is the mean log-loss plus l2/2 |w|^2 (hand computation)",
          "[problems]") {
  tether::problems::logistic<double> lg({.samples = 64, .features = 5, .l2 = 0.05, .seed = 21});
  const auto w = tt::random_vector<double>(6, 800);
  std::vector<double> g(6);
  const auto loss_over = [&](const std::vector<std::size_t>& idx) {
    double s = 0.0;
    for (const std::size_t k : idx) {
      const auto f = lg.features_of(k);
      double z = w[5];
      for (std::size_t j = 0; j < 5; ++j) z += w[j] * f[j];
      s += std::log(1.0 + std::exp(-lg.label(k) * z));
    }
    double reg = 0.0;
    for (std::size_t j = 0; j < 5; ++j) reg += w[j] * w[j];
    return s / double(idx.size()) + 0.025 * reg;
  };
  std::vector<std::size_t> all(64);
  for (std::size_t k = 0; k < 64; ++k) all[k] = k;
  REQUIRE(lg.evaluate(w, g, {}) == Approx(loss_over(all)).epsilon(1e-12));
  const std::vector<std::size_t> some = {5, 9, 9, 63};
  REQUIRE(lg.evaluate(w, g, {some, 0}) == Approx(loss_over(some)).epsilon(1e-12));
  // Labels are +-1 and both classes occur; at w = 0 the loss is log 2.
  int pos = 0;
  for (std::size_t k = 0; k < 64; ++k) {
    REQUIRE(std::fabs(lg.label(k)) == 1.0);
    pos += lg.label(k) > 0 ? 1 : 0;
  }
  REQUIRE(pos > 0);
  REQUIRE(pos < 64);
  const std::vector<double> w0(6, 0.0);
  REQUIRE(lg.evaluate(w0, g, {}) == Approx(std::log(2.0)).epsilon(1e-12));
  REQUIRE(lg.accuracy(w0) >= 0.0);
}

TEST_CASE("problems: logistic data is deterministic per seed", "[problems]") {
  using L = tether::problems::logistic<float>;
  const L a({.samples = 100, .features = 8, .seed = 9});
  const L b({.samples = 100, .features = 8, .seed = 9});
  const L c({.samples = 100, .features = 8, .seed = 10});
  bool differs = false;
  for (std::size_t s = 0; s < 100; ++s) {
    REQUIRE(tt::same_bits(std::vector<float>(a.features_of(s).begin(), a.features_of(s).end()),
                          std::vector<float>(b.features_of(s).begin(), b.features_of(s).end())));
    REQUIRE(a.label(s) == b.label(s));
    differs = differs || a.features_of(s)[0] != c.features_of(s)[0];
  }
  REQUIRE(differs);
  const auto w = tt::random_vector<float>(9, 810);
  std::vector<float> ga(9), gb(9);
  REQUIRE(a.evaluate(w, ga, {}) == b.evaluate(w, gb, {}));
  REQUIRE(tt::same_bits(ga, gb));
}

TEST_CASE("problems: gradient noise is seeded by the batch and has the right mean and spread", "[problems]") {
  const std::size_t n = 4;
  tether::problems::quadratic<double> noisy(n, {.noise = 0.5, .seed = 2});
  tether::problems::quadratic<double> exact(n, {.noise = 0.0, .seed = 2});
  const auto x = tt::random_vector<double>(n, 820);
  std::vector<double> g_true(n), g1(n), g2(n);
  exact.evaluate(x, g_true, {});
  noisy.evaluate(x, g1, {{}, 77});
  noisy.evaluate(x, g2, {{}, 77});
  REQUIRE(tt::same_bits(g1, g2));  // same batch seed, same noise
  noisy.evaluate(x, g2, {{}, 78});
  REQUIRE_FALSE(tt::same_bits(g1, g2));
  // Mean over 4000 batch seeds is the true gradient (5 standard errors), the spread is the noise level.
  constexpr int draws = 4000;
  std::vector<double> sum(n, 0.0), sum2(n, 0.0);
  for (int s = 0; s < draws; ++s) {
    noisy.evaluate(x, g1, {{}, std::uint64_t(1000 + s)});
    for (std::size_t i = 0; i < n; ++i) {
      const double e = g1[i] - g_true[i];
      sum[i] += e;
      sum2[i] += e * e;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(std::fabs(sum[i] / draws) < 5.0 * 0.5 / std::sqrt(double(draws)));
    REQUIRE(std::sqrt(sum2[i] / draws) == Approx(0.5).epsilon(0.06));
  }
  // The loss reported is the noiseless value.
  REQUIRE(noisy.evaluate(x, g1, {{}, 5}) == exact.value(x));
}

TEST_CASE("problems: bad construction and evaluation arguments throw tether::error", "[problems]") {
  using tt::message_has;
  using Q = tether::problems::quadratic<float>;
  using L = tether::problems::logistic<float>;
  REQUIRE_THROWS_MATCHES(Q(0), tether::error, message_has({"n = 0"}));
  REQUIRE_THROWS_MATCHES(Q(3, {.a_min = 0.0}), tether::error, message_has({"a_min = 0"}));
  REQUIRE_THROWS_MATCHES(Q(3, {.a_min = 2.0, .a_max = 1.0}), tether::error, message_has({"a_max = 1"}));
  REQUIRE_THROWS_MATCHES(Q(3, {.noise = -1.0}), tether::error, message_has({"noise = -1"}));
  REQUIRE_THROWS_MATCHES(tether::problems::rosenbrock<float>(1), tether::error, message_has({"n = 1"}));
  REQUIRE_THROWS_MATCHES(tether::problems::double_well<float>(0), tether::error, message_has({"n = 0"}));
  REQUIRE_THROWS_MATCHES(tether::problems::double_well<float>(2, -0.1), tether::error,
                         message_has({"noise = -0.1"}));
  REQUIRE_THROWS_MATCHES(L({.samples = 0}), tether::error, message_has({"samples = 0"}));
  REQUIRE_THROWS_MATCHES(L({.features = 0}), tether::error, message_has({"features = 0"}));
  REQUIRE_THROWS_MATCHES(L({.l2 = -1.0}), tether::error, message_has({"l2 = -1"}));

  Q q(3);
  std::vector<float> x3(3), x4(4), g3(3), g2(2);
  REQUIRE_THROWS_MATCHES(q.evaluate(x4, g3, {}), tether::error, message_has({"x has 4", "expected 3"}));
  REQUIRE_THROWS_MATCHES(q.evaluate(x3, g2, {}), tether::error, message_has({"g has 2", "expected 3"}));
  const L lg({.samples = 10, .features = 2});
  std::vector<float> w(3), gw(3);
  const std::vector<std::size_t> idx = {1, 10};
  REQUIRE_THROWS_MATCHES(lg.evaluate(w, gw, {idx, 0}), tether::error,
                         message_has({"sample index 10", "[0, 10)"}));
}
