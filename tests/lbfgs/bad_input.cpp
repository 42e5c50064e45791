// Bad input to lbfgs::minimize: a tether::error naming the option or value on every worker (m = 0 or above
// the maximum, non-finite tolerances, zero portions, an empty objective, sizes that disagree, a coordinator
// out of range, workers that disagree on the options); more portions than samples is allowed. A non-finite
// objective at the start point is a status naming the value with x unchanged; a non-finite value during the
// line search shrinks the step and the run still converges; a gradient that does not match f makes the line
// search fail with a status, after a restart from steepest descent when there was a history.

#include <tether/comm/shared_memory.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/problems/quadratic.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using Catch::Matchers::Contains;

/// Runs minimize on p workers with per-worker options; returns each worker's error text ("" when none).
template <class O, class MakeOptions>
std::vector<std::string> errors_on(int p, O& problem, std::vector<double> x0, MakeOptions make) {
  std::vector<std::string> what(static_cast<std::size_t>(p));
  tether::team team(p);
  try {
    team.run([&](tether::team::worker& w) {
      auto x = x0;
      try {
        (void)tether::lbfgs::minimize(w, problem, x, make(w.rank()));
      } catch (const tether::error& e) {
        what[static_cast<std::size_t>(w.rank())] = e.what();
      }
    });
  } catch (const std::exception& e) {
    FAIL("the team failed instead of each worker reporting the error: " << e.what());
  }
  return what;
}

template <class O>
void expect_error(O& problem, std::size_t n, const tether::lbfgs::options& o, const std::string& text) {
  const auto what = errors_on(2, problem, std::vector<double>(n, 0.0), [&](int) { return o; });
  for (const auto& w : what) CHECK_THAT(w, Contains(text));
}

/// A quadratic 0.5 * sum (x_i - 1)^2 whose value is NaN beyond x_i > 1.2 (a model that overflows).
struct nan_beyond {
  std::size_t n = 3;
  std::size_t dimension() const { return n; }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch&) const {
    double f = 0.0;
    bool bad = false;
    for (std::size_t i = 0; i < n; ++i) {
      g[i] = x[i] - 1.0;
      f += 0.5 * (x[i] - 1.0) * (x[i] - 1.0);
      bad = bad || x[i] > 1.2;
    }
    return bad ? std::numeric_limits<double>::quiet_NaN() : f;
  }
};

/// f = sum a_i x_i^2 / 2 (a_i = 1 + 3i) with a gradient that is right for the first `good` evaluations, then
/// points the wrong way.
struct lying_gradient {
  std::size_t n = 4;
  std::size_t good = 0;
  mutable std::size_t calls = 0;
  std::size_t dimension() const { return n; }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch&) const {
    const double sign = calls++ < good ? 1.0 : -1.0;
    double f = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double a = 1.0 + 3.0 * static_cast<double>(i);
      g[i] = sign * a * x[i];
      f += 0.5 * a * x[i] * x[i];
    }
    return f;
  }
};

/// An objective with samples but none of them.
struct no_samples {
  std::size_t dimension() const { return 3; }
  std::size_t samples() const { return 0; }
  double evaluate(std::span<const double>, std::span<double>, const tether::batch&) const { return 0.0; }
};

struct no_dimension {
  std::size_t dimension() const { return 0; }
  double evaluate(std::span<const double>, std::span<double>, const tether::batch&) const { return 0.0; }
};

}  // namespace

TEST_CASE("Bad options are a tether::error naming the value, on every worker", "[lbfgs][bad_input]") {
  tether::problems::quadratic<double> q(5);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  expect_error(q, 5, {.history = 0}, "history (m) must be in [1, 32], got history = 0");
  expect_error(q, 5, {.history = 33}, "got history = 33");
  expect_error(q, 5, {.epsilon = nan}, "epsilon must be finite and >= 0, got epsilon = nan");
  expect_error(q, 5, {.epsilon = -1.0}, "got epsilon = -1");
  expect_error(q, 5, {.delta = inf}, "delta must be finite and >= 0, got delta = inf");
  expect_error(q, 5, {.portions = 0}, "portions must be >= 1, got portions = 0");
  expect_error(q, 5, {.timeout = 0.0}, "timeout must be a finite number of seconds > 0, got timeout = 0");
  expect_error(q, 5, {.timeout = nan}, "got timeout = nan");
  expect_error(q, 5, {.queue_depth = 0}, "queue_depth must be >= 1");
  expect_error(q, 5, {.backup_threshold = 1.5},
               "backup_threshold must be in [0, 1], got backup_threshold = 1.5");
  expect_error(q, 5, {.max_copies = 0}, "max_copies must be >= 1");
  expect_error(q, 5, {.coordinator = 2}, "coordinator must be in [0, 2), got coordinator = 2");
  tether::lbfgs::options ls;
  ls.line_search.gtol = 1e-5;
  expect_error(q, 5, ls, "line_search.gtol must be in (ftol, 1), got gtol = 1e-05");
  ls = {};
  ls.line_search.ftol = nan;
  expect_error(q, 5, ls, "line_search.ftol must be in (0, 0.5), got ftol = nan");
  ls = {};
  ls.line_search.max_evaluations = 0;
  expect_error(q, 5, ls, "line_search.max_evaluations must be >= 1");
}

TEST_CASE("Empty objectives and mismatched sizes are errors; more portions than samples is not",
          "[lbfgs][bad_input]") {
  no_samples empty;
  expect_error(empty, 3, {}, "the objective has no samples (samples() = 0)");
  no_dimension flat;
  expect_error(flat, 0, {}, "the objective has dimension 0");
  tether::problems::quadratic<double> q(5);
  expect_error(q, 4, {}, "x has 4 elements, the objective's dimension is 5");

  tether::problems::logistic<double> few({.samples = 5, .features = 3, .l2 = 1e-2});
  std::vector<tether::lbfgs::result> res(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(few.dimension(), 0.0);
    res[static_cast<std::size_t>(w.rank())] =
        tether::lbfgs::minimize(w, few, x, {.epsilon = 1e-8, .portions = 50, .timeout = 30.0});
  });
  CHECK(res[0].status == tether::lbfgs::outcome::converged);
  CHECK(res[0].portions == 5 * res[0].function_evaluations);  // one sample per portion
}

TEST_CASE("Workers that disagree on the options or the start point fail on every worker",
          "[lbfgs][bad_input]") {
  tether::problems::quadratic<double> q(6);
  auto what = errors_on(3, q, std::vector<double>(6, 0.0),
                        [](int r) { return tether::lbfgs::options{.history = r == 2 ? 7u : 6u}; });
  for (const auto& w : what) CHECK_THAT(w, Contains("workers disagree on the lbfgs::options"));

  std::vector<std::string> start(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(6, w.rank() == 1 ? 0.5 : 0.0);
    try {
      (void)tether::lbfgs::minimize(w, q, x);
    } catch (const tether::error& e) {
      start[static_cast<std::size_t>(w.rank())] = e.what();
    }
  });
  for (const auto& w : start) CHECK_THAT(w, Contains("workers disagree on the start point x"));
}

TEST_CASE("A non-finite start is a status naming the value, x unchanged", "[lbfgs][bad_input]") {
  nan_beyond bad{.n = 3};
  std::vector<tether::lbfgs::result> res(2);
  std::vector<std::vector<double>> xs(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(3, 2.0);  // beyond 1.2: NaN
    res[static_cast<std::size_t>(w.rank())] = tether::lbfgs::minimize(w, bad, x, {.timeout = 30.0});
    xs[static_cast<std::size_t>(w.rank())] = x;
  });
  for (std::size_t r = 0; r < 2; ++r) {
    CHECK(res[r].status == tether::lbfgs::outcome::non_finite_start);
    CHECK_THAT(res[r].message, Contains("f = nan"));
    CHECK(res[r].iterations == 0);
    for (const double v : xs[r]) CHECK(v == 2.0);
  }
}

TEST_CASE("A non-finite value during the line search shrinks the step; the run converges",
          "[lbfgs][bad_input]") {
  nan_beyond bad{.n = 3};
  tether::team team(2);
  std::vector<tether::lbfgs::result> res(2);
  std::vector<double> x_out;
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(3, 0.9);  // the first steepest-descent step (length 1) lands at 1.48: NaN
    res[static_cast<std::size_t>(w.rank())] =
        tether::lbfgs::minimize(w, bad, x, {.epsilon = 1e-10, .timeout = 30.0});
    if (w.rank() == 0) x_out = x;
  });
  REQUIRE(res[0].status == tether::lbfgs::outcome::converged);
  for (const double v : x_out) CHECK(v == Approx(1.0).margin(1e-9));
  REQUIRE(!res[0].history.empty());
  CHECK(res[0].history[0].evaluations > 1);  // the first line search needed more than one trial
  for (const auto& h : res[0].history) {
    CHECK(std::isfinite(h.f));
    CHECK(std::isfinite(h.gradient_norm));
  }
}

/// A logistic regression whose evaluations sleep `delay` on the worker that owns this copy.
struct sleepy {
  const tether::problems::logistic<double>* data;
  std::chrono::milliseconds delay{0};
  std::size_t dimension() const { return data->dimension(); }
  std::size_t samples() const { return data->samples(); }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch& b) const {
    std::this_thread::sleep_for(delay);
    return data->evaluate(x, g, b);
  }
};

TEST_CASE("A coordinator busy with its own portions for longer than the timeout is not a timeout",
          "[lbfgs][bad_input]") {
  // Worker 0 (the coordinator, holding the only shard) takes 0.2 s per portion and holds three at a time;
  // worker 1 is fast, done with its three at once, then idle: 0.4 s or more with nothing to receive on both,
  // above the 0.3 s timeout. The timeout counts from a worker's last work, and the coordinator sends
  // heartbeats before each portion. (It failed with "no message for 0.3 s" before.)
  const tether::problems::logistic<double> data({.samples = 200, .features = 4, .l2 = 1e-2});
  tether::team team(2);
  std::vector<tether::lbfgs::result> res(2);
  team.run([&](tether::team::worker& w) {
    sleepy mine{&data, std::chrono::milliseconds(w.rank() == 0 ? 200 : 0)};
    std::vector<double> x(data.dimension(), 0.0);
    res[static_cast<std::size_t>(w.rank())] = tether::lbfgs::minimize(w, mine, x,
                                                                      {.epsilon = 1e-3,
                                                                       .max_iterations = 2,
                                                                       .portions = 6,
                                                                       .shards = 1,
                                                                       .queue_depth = 3,
                                                                       .backups = false,
                                                                       .timeout = 0.3});
  });
  CHECK(res[0].iterations >= 1);
  CHECK(res[1].iterations == res[0].iterations);
}

TEST_CASE("A failed line search is a status, after a restart from steepest descent", "[lbfgs][bad_input]") {
  lying_gradient liar{.n = 4, .good = 0};
  tether::team team(1);
  tether::lbfgs::result r;
  std::vector<double> x_out;
  team.run([&](tether::team::worker& w) {
    std::vector<double> x{1.0, -2.0, 0.5, 3.0};
    r = tether::lbfgs::minimize(w, liar, x, {.timeout = 30.0});
    x_out = x;
  });
  CHECK(r.status == tether::lbfgs::outcome::line_search_failed);
  CHECK_THAT(r.message, Contains("the line search failed from steepest descent"));
  CHECK(r.restarts == 0);
  CHECK(x_out == std::vector<double>{1.0, -2.0, 0.5, 3.0});

  lying_gradient later{.n = 4, .good = 4};
  team.run([&](tether::team::worker& w) {
    std::vector<double> x{1.0, -2.0, 0.5, 3.0};
    r = tether::lbfgs::minimize(w, later, x, {.timeout = 30.0});
  });
  CHECK(r.status == tether::lbfgs::outcome::line_search_failed);
  CHECK(r.iterations >= 1);
  CHECK(r.restarts == 1);
}
