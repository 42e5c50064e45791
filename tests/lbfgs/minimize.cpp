// Whole Sandblaster L-BFGS runs on the thread team (p = 1, 2, 3 workers) against independent references:
//  - the quadratic's known optimum c, to 1e-8, in a number of iterations within 10% of the serial L-BFGS of
//    serial_reference.hpp with the same m;
//  - per iteration, the loss and the accepted step equal the serial reference's (1e-9 relative) on the
//    quadratic, Rosenbrock and the logistic regression, first iterations included (history not yet full):
//    the vector-free direction is the serial two-loop's;
//  - the logistic regression's optimum computed here by Newton's method (to 1e-6);
//  - with the shards and portions fixed, every worker count gives the same bits (the batch gradient is added
//    in portion order and the dot products in shard order, whoever computed what).

#include "serial_reference.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/problems/quadratic.hpp>
#include <tether/problems/rosenbrock.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

namespace {

struct run_output {
  tether::lbfgs::result r;
  std::vector<double> x;
  std::vector<double> g;
};

/// Runs minimize on p worker threads; returns worker 0's result, x and g, and checks every worker got the
/// same x, status and iterations.
template <class O>
run_output run_team(int p, O& problem, const std::vector<double>& x0, const tether::lbfgs::options& o) {
  std::vector<run_output> out(static_cast<std::size_t>(p));
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    auto& mine = out[static_cast<std::size_t>(w.rank())];
    mine.x = x0;
    mine.g.assign(x0.size(), 0.0);
    mine.r = tether::lbfgs::minimize(tether::exec::serial{}, w, problem, mine.x, mine.g, o);
  });
  for (int r = 1; r < p; ++r) {
    const auto& other = out[static_cast<std::size_t>(r)];
    CHECK(std::memcmp(other.x.data(), out[0].x.data(), x0.size() * sizeof(double)) == 0);
    CHECK(other.r.status == out[0].r.status);
    CHECK(other.r.iterations == out[0].r.iterations);
    CHECK(other.r.history.size() == out[0].r.history.size());
  }
  return out[0];
}

void check_trajectory(const tether::lbfgs::result& r, const lbfgs_test::serial_result& ref,
                      std::size_t first) {
  const std::size_t k = std::min({first, r.history.size(), ref.history.size()});
  REQUIRE(k > 0);
  for (std::size_t i = 0; i < k; ++i) {
    INFO("iteration " << i + 1);
    CHECK(r.history[i].f == Approx(ref.history[i].f).epsilon(1e-9));
    CHECK(r.history[i].step == Approx(ref.history[i].step).epsilon(1e-9));
  }
}

/// The logistic regression's minimiser by Newton's method (dense Hessian, Gaussian elimination).
std::vector<double> newton_logistic(const tether::problems::logistic<double>& p, double l2) {
  const std::size_t d = p.dimension() - 1;
  const std::size_t n = d + 1;
  std::vector<double> w(n, 0.0);
  for (int it = 0; it < 50; ++it) {
    std::vector<double> grad(n, 0.0), h(n * n, 0.0);
    const double m = static_cast<double>(p.samples());
    for (std::size_t s = 0; s < p.samples(); ++s) {
      const auto xs = p.features_of(s);
      double z = w[d];
      for (std::size_t j = 0; j < d; ++j) z += w[j] * xs[j];
      const double y = p.label(s);
      const double sig = 1.0 / (1.0 + std::exp(y * z));  // sigma(-y z)
      const double c = -y * sig / m;
      const double curv = sig * (1.0 - sig) / m;
      for (std::size_t j = 0; j < n; ++j) {
        const double xj = j < d ? xs[j] : 1.0;
        grad[j] += c * xj;
        for (std::size_t k = 0; k < n; ++k) h[j * n + k] += curv * xj * (k < d ? xs[k] : 1.0);
      }
    }
    for (std::size_t j = 0; j < d; ++j) {
      grad[j] += l2 * w[j];
      h[j * n + j] += l2;
    }
    // Solve h * step = grad.
    std::vector<double> a = h, b = grad;
    for (std::size_t c = 0; c < n; ++c) {
      std::size_t piv = c;
      for (std::size_t r = c + 1; r < n; ++r)
        if (std::abs(a[r * n + c]) > std::abs(a[piv * n + c])) piv = r;
      for (std::size_t k = 0; k < n; ++k) std::swap(a[c * n + k], a[piv * n + k]);
      std::swap(b[c], b[piv]);
      for (std::size_t r = c + 1; r < n; ++r) {
        const double f = a[r * n + c] / a[c * n + c];
        for (std::size_t k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
        b[r] -= f * b[c];
      }
    }
    std::vector<double> step(n);
    for (std::size_t c = n; c-- > 0;) {
      double v = b[c];
      for (std::size_t k = c + 1; k < n; ++k) v -= a[c * n + k] * step[k];
      step[c] = v / a[c * n + c];
    }
    double norm = 0.0;
    for (std::size_t j = 0; j < n; ++j) {
      w[j] -= step[j];
      norm = std::max(norm, std::abs(step[j]));
    }
    if (norm < 1e-15) break;
  }
  return w;
}

}  // namespace

TEST_CASE("Sandblaster L-BFGS reaches the quadratic's optimum to 1e-8 like serial L-BFGS",
          "[lbfgs][minimize]") {
  const tether::problems::quadratic<double> problem(200, {.a_min = 1.0, .a_max = 100.0, .seed = 3});
  const std::vector<double> x0(problem.dimension(), 0.0);
  tether::lbfgs::options o{.history = 6, .epsilon = 1e-10, .timeout = 60.0};
  auto serial_problem = problem;
  const auto ref = lbfgs_test::serial_lbfgs(serial_problem, x0, o);
  REQUIRE(ref.converged);
  for (const int p : {1, 2, 3}) {
    INFO("p = " << p);
    auto mine = problem;
    const auto out = run_team(p, mine, x0, o);
    CHECK(out.r.status == tether::lbfgs::outcome::converged);
    double err = 0.0;
    for (std::size_t i = 0; i < x0.size(); ++i)
      err = std::max(err, std::abs(out.x[i] - double(problem.optimum()[i])));
    CHECK(err < 1e-8);
    CHECK(static_cast<double>(out.r.iterations) <= 1.1 * static_cast<double>(ref.iterations) + 1.0);
    CHECK(static_cast<double>(out.r.function_evaluations) <=
          1.1 * static_cast<double>(ref.evaluations) + 1.0);
    check_trajectory(out.r, ref, 20);
    // The gradient returned is the objective's at x.
    std::vector<double> g(x0.size());
    (void)mine.evaluate(std::span<const double>(out.x), std::span<double>(g), {});
    for (std::size_t i = 0; i < g.size(); ++i) CHECK(out.g[i] == Approx(g[i]).margin(1e-14));
  }
}

TEST_CASE("Sandblaster L-BFGS follows serial L-BFGS on Rosenbrock", "[lbfgs][minimize]") {
  tether::problems::rosenbrock<double> problem(10);
  std::vector<double> x0(10);
  for (std::size_t i = 0; i < x0.size(); ++i) x0[i] = i % 2 == 0 ? -1.2 : 1.0;
  tether::lbfgs::options o{.history = 5, .epsilon = 1e-8, .timeout = 60.0};
  const auto ref = lbfgs_test::serial_lbfgs(problem, x0, o);
  REQUIRE(ref.converged);
  for (const int p : {1, 3}) {
    INFO("p = " << p);
    const auto out = run_team(p, problem, x0, o);
    CHECK(out.r.status == tether::lbfgs::outcome::converged);
    for (const double v : out.x) CHECK(v == Approx(1.0).margin(1e-6));
    check_trajectory(out.r, ref, 12);
    CHECK(static_cast<double>(out.r.iterations) <= 1.1 * static_cast<double>(ref.iterations) + 1.0);
  }
}

TEST_CASE("Sandblaster L-BFGS on the logistic regression: Newton's optimum and the serial reference",
          "[lbfgs][minimize]") {
  const double l2 = 1e-3;
  tether::problems::logistic<double> problem({.samples = 1500, .features = 12, .l2 = l2, .seed = 5});
  const auto newton = newton_logistic(problem, l2);
  const std::vector<double> x0(problem.dimension(), 0.0);
  tether::lbfgs::options o{.history = 6, .epsilon = 1e-9, .portions = 10, .timeout = 60.0};
  const auto ref = lbfgs_test::serial_lbfgs(problem, x0, o);
  REQUIRE(ref.converged);
  for (const int p : {1, 2, 3}) {
    INFO("p = " << p);
    const auto out = run_team(p, problem, x0, o);
    CHECK(out.r.status == tether::lbfgs::outcome::converged);
    for (std::size_t i = 0; i < x0.size(); ++i) CHECK(out.x[i] == Approx(newton[i]).margin(1e-6));
    check_trajectory(out.r, ref, 15);
    CHECK(out.r.portions == 10 * out.r.function_evaluations);
    CHECK(static_cast<double>(out.r.iterations) <= 1.1 * static_cast<double>(ref.iterations) + 1.0);
  }
}

TEST_CASE("With shards and portions fixed, every worker count gives the same bits", "[lbfgs][minimize]") {
  tether::problems::logistic<double> problem({.samples = 900, .features = 9, .l2 = 1e-3, .seed = 11});
  const std::vector<double> x0(problem.dimension(), 0.1);
  tether::lbfgs::options o{.history = 4, .epsilon = 1e-7, .portions = 7, .shards = 3, .timeout = 60.0};
  const auto base = run_team(1, problem, x0, o);
  REQUIRE(base.r.status == tether::lbfgs::outcome::converged);
  for (const int p : {2, 3, 4}) {
    INFO("p = " << p);
    const auto out = run_team(p, problem, x0, o);
    CHECK(std::memcmp(out.x.data(), base.x.data(), x0.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(out.g.data(), base.g.data(), x0.size() * sizeof(double)) == 0);
    REQUIRE(out.r.history.size() == base.r.history.size());
    for (std::size_t i = 0; i < out.r.history.size(); ++i) {
      CHECK(out.r.history[i].f == base.r.history[i].f);
      CHECK(out.r.history[i].step == base.r.history[i].step);
    }
  }
}

TEST_CASE("Every history size down to 1 and up to the maximum follows serial L-BFGS", "[lbfgs][minimize]") {
  // m = 1, 11, 20, 32: 14, 74, 128 and 200 dot products per shard, the widths of the shards' one-pass
  // reduction.
  tether::problems::logistic<double> problem({.samples = 600, .features = 40, .l2 = 1e-3, .seed = 8});
  const std::vector<double> x0(problem.dimension(), 0.0);
  for (const std::size_t m : {1u, 11u, 20u, 32u}) {
    INFO("m = " << m);
    tether::lbfgs::options o{.history = m, .epsilon = 1e-9, .portions = 6, .timeout = 60.0};
    const auto ref = lbfgs_test::serial_lbfgs(problem, x0, o);
    REQUIRE(ref.converged);
    const auto out = run_team(2, problem, x0, o);
    CHECK(out.r.status == tether::lbfgs::outcome::converged);
    check_trajectory(out.r, ref, 12);
    CHECK(static_cast<double>(out.r.iterations) <= 1.1 * static_cast<double>(ref.iterations) + 1.0);
  }
}
