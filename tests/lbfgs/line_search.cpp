// lbfgs::more_thuente on the one-dimensional test functions of More and Thuente (ACM TOMS 20(3), 1994,
// section 5), from their four starting steps 1e-3, 1e-1, 10 and 1000: the accepted step satisfies the strong
// Wolfe conditions, checked here on the function itself, within a few evaluations. Non-finite values shrink
// the step and no later trial goes as far; an unbounded function fails at max_step, and a tiny evaluation
// budget fails with max_evaluations.

#include <tether/lbfgs/more_thuente.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <utility>
#include <vector>

namespace {

using phi_t = std::function<std::pair<double, double>(double)>;  // (phi(a), phi'(a))

struct outcome {
  tether::lbfgs::search_state state;
  double step;
  std::size_t evaluations;
  std::vector<double> trials;
};

outcome search(const phi_t& phi, double a0, tether::lbfgs::line_search_options o) {
  const auto [f0, g0] = phi(0.0);
  tether::lbfgs::more_thuente ls(o, f0, g0, a0);
  std::vector<double> trials;
  for (;;) {
    const double a = ls.step();
    trials.push_back(a);
    const auto [f, g] = phi(a);
    const auto st = ls.update(f, g);
    if (st != tether::lbfgs::search_state::evaluate) return {st, ls.step(), ls.evaluations(), trials};
  }
}

void check_wolfe(const phi_t& phi, double a, const tether::lbfgs::line_search_options& o) {
  const auto [f0, g0] = phi(0.0);
  const auto [f, g] = phi(a);
  CHECK(f <= f0 + o.ftol * a * g0);
  CHECK(std::abs(g) <= o.gtol * std::abs(g0));
}

phi_t function1() {
  constexpr double beta = 2.0;
  return [](double a) {
    const double d = a * a + beta;
    return std::pair{-a / d, (a * a - beta) / (d * d)};
  };
}

phi_t function2() {
  constexpr double beta = 0.004;
  return [](double a) {
    const double t = a + beta;
    return std::pair{std::pow(t, 5) - 2.0 * std::pow(t, 4), 5.0 * std::pow(t, 4) - 8.0 * std::pow(t, 3)};
  };
}

phi_t function3() {
  constexpr double beta = 0.01;
  constexpr double l = 39.0;
  return [](double a) {
    double f0 = 0.0;
    double g0 = 0.0;
    if (a <= 1.0 - beta) {
      f0 = 1.0 - a;
      g0 = -1.0;
    } else if (a >= 1.0 + beta) {
      f0 = a - 1.0;
      g0 = 1.0;
    } else {
      f0 = (a - 1.0) * (a - 1.0) / (2.0 * beta) + beta / 2.0;
      g0 = (a - 1.0) / beta;
    }
    const double pi = std::numbers::pi;
    return std::pair{f0 + 2.0 * (1.0 - beta) / (l * pi) * std::sin(l * pi * a / 2.0),
                     g0 + (1.0 - beta) * std::cos(l * pi * a / 2.0)};
  };
}

phi_t function456(double b1, double b2) {
  auto gam = [](double b) { return std::sqrt(1.0 + b * b) - b; };
  return [=](double a) {
    const double r1 = std::sqrt((1.0 - a) * (1.0 - a) + b2 * b2);
    const double r2 = std::sqrt(a * a + b1 * b1);
    return std::pair{gam(b1) * r1 + gam(b2) * r2, -gam(b1) * (1.0 - a) / r1 + gam(b2) * a / r2};
  };
}

}  // namespace

TEST_CASE("More-Thuente finds strong Wolfe steps on the paper's six test functions", "[lbfgs][line_search]") {
  struct test {
    const char* name;
    phi_t phi;
    double ftol, gtol;
  };
  const std::vector<test> tests{
      {"function 1", function1(), 1e-3, 0.1},
      {"function 2", function2(), 0.1, 0.1},
      {"function 3", function3(), 0.1, 0.1},
      {"function 4", function456(0.001, 0.001), 1e-3, 1e-3},
      {"function 5", function456(0.01, 0.001), 1e-3, 1e-3},
      {"function 6", function456(0.001, 0.01), 1e-3, 1e-3},
  };
  for (const auto& t : tests) {
    for (const double a0 : {1e-3, 1e-1, 10.0, 1000.0}) {
      tether::lbfgs::line_search_options o;
      o.ftol = t.ftol;
      o.gtol = t.gtol;
      o.max_evaluations = 40;
      const auto r = search(t.phi, a0, o);
      INFO(t.name << ", a0 = " << a0 << ": step " << r.step << " after " << r.evaluations << " evaluations");
      REQUIRE(r.state == tether::lbfgs::search_state::converged);
      check_wolfe(t.phi, r.step, o);
      // The paper reports 1 to 16 evaluations on these cases; allow some slack, not an unbounded search.
      CHECK(r.evaluations <= 20);
    }
  }
}

TEST_CASE("More-Thuente shrinks the step on non-finite values and never goes that far again",
          "[lbfgs][line_search]") {
  // A parabola with its minimum at 3, not finite from 2 on.
  const phi_t phi = [](double a) {
    if (a >= 2.0)
      return std::pair{std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()};
    return std::pair{(a - 3.0) * (a - 3.0), 2.0 * (a - 3.0)};
  };
  tether::lbfgs::line_search_options o;
  o.gtol = 0.1;  // asks for a step near the minimum, which the non-finite region hides
  const auto r = search(phi, 16.0, o);
  INFO("trials: " << r.trials.size());
  double smallest_bad = std::numeric_limits<double>::infinity();
  for (const double a : r.trials) {
    CHECK(a < smallest_bad);
    if (a >= 2.0) smallest_bad = std::min(smallest_bad, a);
  }
  CHECK(smallest_bad < std::numeric_limits<double>::infinity());
  // Either a Wolfe step in [0, 2), or a clear failure; never a non-finite accepted step.
  if (r.state == tether::lbfgs::search_state::converged) {
    CHECK(r.step < 2.0);
    check_wolfe(phi, r.step, o);
  }
  // With the standard gtol = 0.9 a step below 2 exists (|phi'| <= 5.4) and is found.
  const auto r2 = search(phi, 16.0, tether::lbfgs::line_search_options{});
  REQUIRE(r2.state == tether::lbfgs::search_state::converged);
  CHECK(r2.step < 2.0);
  check_wolfe(phi, r2.step, tether::lbfgs::line_search_options{});
}

TEST_CASE("More-Thuente fails clearly on an unbounded function and on a spent budget",
          "[lbfgs][line_search]") {
  const phi_t line = [](double a) { return std::pair{-a, -1.0}; };
  tether::lbfgs::line_search_options o;
  o.max_step = 100.0;
  const auto r = search(line, 1.0, o);
  CHECK(r.state == tether::lbfgs::search_state::failed);
  tether::lbfgs::more_thuente ls(o, 0.0, -1.0, 1.0);
  while (ls.update(-ls.step(), -1.0) == tether::lbfgs::search_state::evaluate) {
  }
  CHECK(std::string(ls.failure()) == "the step reached max_step");

  tether::lbfgs::line_search_options tiny;
  tiny.ftol = 1e-3;
  tiny.gtol = 0.1;
  tiny.max_evaluations = 2;
  const auto r2 = search(function1(), 1e-3, tiny);
  CHECK(r2.state == tether::lbfgs::search_state::failed);
  CHECK(r2.evaluations == 2);
}
