// Rates that are finite doubles but do not fit the optimizer's value type T (issue 13, item 7): 1e39 is no
// float. A float optimizer refuses such a base rate when it is built, and a schedule that leaves T's range at
// some step is refused at that step, naming the step and the rate, before the parameters change (they would
// otherwise all become inf). A double optimizer takes the same rates and matches a scalar loop in double.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

constexpr std::size_t n = 5;

/// Builds a one-worker optimizer of step S over T with options `o`; returns the tether::error's message ("" if
/// none was thrown).
template <class S, class T>
std::string build_error(tether::optimizer_options<S, tether::pull::none> o) {
  std::string what;
  tt::on_one_worker([&](tether::team::worker& w) {
    try {
      tt::solo_optimizer<S, T> opt(w, n, o);
    } catch (const tether::error& e) {
      what = e.what();
    }
  });
  return what;
}

/// A rate that grows tenfold per step from 1e30: 1e38 at step 8 (a float), 1e39 at step 9 (no float).
tether::schedule growing() { return tether::schedule::step_decay(1, 10.0); }
constexpr double base = 1e30;
constexpr int first_bad_step = 9;

/// The result of running `steps` SGD steps with the growing schedule and gradient g = 1e-38 everywhere.
template <class T>
struct run_result {
  std::vector<T> x_before_failure;  ///< x after the last step that completed
  std::vector<T> x_after;           ///< x when the run ended (after the refused step, if any)
  std::string error;                ///< the tether::error's message, if one was thrown
  int failed_at = -1;               ///< the step at which it was thrown
};

template <class T>
run_result<T> run_growing(int steps) {
  run_result<T> r;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, T> opt(w, n, {.lr = base, .schedule = growing()});
    std::vector<T> x(n, T(1)), g(n, static_cast<T>(1e-38));
    for (int k = 0; k < steps; ++k) {
      r.x_before_failure = x;
      try {
        opt.step(x, g, 1.0);
      } catch (const tether::error& e) {
        r.error = e.what();
        r.failed_at = k;
        break;
      }
    }
    r.x_after = x;
  });
  return r;
}

}  // namespace

TEST_CASE("value range: a float optimizer refuses a base rate that is no float", "[core][bad_input]") {
  using S = tether::step::sgd;
  const std::string e = build_error<S, float>({.lr = 1e39});
  CHECK_THAT(e, Catch::Contains("lr = 1e+39") && Catch::Contains("float"));
  // Just above FLT_MAX (3.4028235e38) is refused; FLT_MAX itself is a float and is taken.
  CHECK_THAT((build_error<S, float>({.lr = 3.5e38})), Catch::Contains("lr = 3.5e+38"));
  CHECK((build_error<S, float>({.lr = static_cast<double>(std::numeric_limits<float>::max())}).empty()));
  // Every step policy goes through the same check.
  CHECK_THAT((build_error<tether::step::momentum, float>({.lr = 1e39})), Catch::Contains("lr = 1e+39"));
  CHECK_THAT((build_error<tether::step::adam, float>({.lr = 1e39})), Catch::Contains("lr = 1e+39"));
  CHECK_THAT((build_error<tether::step::adagrad, float>({.lr = 1e39})), Catch::Contains("lr = 1e+39"));
}

TEST_CASE("value range: a double optimizer takes 1e39 and steps as a scalar loop in double", "[core][bad_input]") {
  CHECK((build_error<tether::step::sgd, double>({.lr = 1e39}).empty()));
  CHECK((build_error<tether::step::adam, double>({.lr = 1e39}).empty()));
  std::vector<double> x{1.0, -2.0, 0.5}, g{1e-40, -3e-40, 2e-41}, ref = x;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<tether::step::sgd, double> opt(w, x.size(), {.lr = 1e39});
    opt.step(x, g, 1.0);
  });
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] -= 1e39 * g[i];
  for (std::size_t i = 0; i < x.size(); ++i) {
    CHECK(std::isfinite(x[i]));
    CHECK(x[i] == Approx(ref[i]).epsilon(1e-12));
  }
}

TEST_CASE("value range: a schedule that leaves float's range is refused at that step, x untouched",
          "[core][bad_input]") {
  const auto r = run_growing<float>(first_bad_step + 3);
  REQUIRE(r.failed_at == first_bad_step);
  CHECK_THAT(r.error, Catch::Contains("at step 9") && Catch::Contains("lr = 1e+39") && Catch::Contains("float"));
  // The refused step lost nothing: x is what the last good step left, and finite.
  CHECK(tt::same_bits(r.x_after, r.x_before_failure));
  // Reference: the nine good steps in double, x <- x - 1e30*10^k * 1e-38 (the float run rounds each step).
  double ref = 1.0;
  for (int k = 0; k < first_bad_step; ++k) ref -= base * std::pow(10.0, k) * static_cast<double>(1e-38f);
  for (float v : r.x_after) {
    CHECK(std::isfinite(v));
    CHECK(v == Approx(ref).epsilon(1e-5));
  }
}

TEST_CASE("value range: a double optimizer runs the same schedule past step 9", "[core][bad_input]") {
  const auto r = run_growing<double>(first_bad_step + 3);
  CHECK(r.failed_at == -1);
  CHECK(r.error.empty());
  double ref = 1.0;
  for (int k = 0; k < first_bad_step + 3; ++k) ref -= base * std::pow(10.0, k) * 1e-38;
  for (double v : r.x_after) CHECK(v == Approx(ref).epsilon(1e-12));
}

TEST_CASE("value range: Adam's step size lr/(1-beta1^k) that leaves float's range is refused, x untouched",
          "[core][bad_input]") {
  // lr = 1e38 is a float, but the first step's size is lr/(1 - 0.9) = 1e39: no float.
  using A = tether::step::adam;
  std::vector<float> x(n, 0.5f), g(n, 1.0f);
  const std::vector<float> x0 = x;
  std::string what;
  std::uint64_t applied = 99, steps = 99;
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<A, float> opt(w, n, {.lr = 1e38, .step = {.beta1 = 0.9f}});
    try {
      opt.step(x, g, 1.0);
    } catch (const tether::error& e) {
      what = e.what();
    }
    applied = opt.applied_steps();
    steps = opt.stats().steps;
  });
  CHECK_THAT(what, Catch::Contains("adam") && Catch::Contains("step size") && Catch::Contains("float") &&
                       Catch::Contains("applied step 1"));
  CHECK(tt::same_bits(x, x0));
  CHECK(applied == 0);
  CHECK(steps == 0);

  // In double the same step runs. Adam's first step in closed form: m = (1-b1) g, v = (1-b2) g^2, so
  // x1 = x0 - lr * g / (|g| + eps).
  std::vector<double> xd(n, 0.5), gd(n, 1.0);
  tt::on_one_worker([&](tether::team::worker& w) {
    tt::solo_optimizer<A, double> opt(w, n, {.lr = 1e38, .step = {.beta1 = 0.9f}});
    opt.step(xd, gd, 1.0);
  });
  const double ref = 0.5 - 1e38 * 1.0 / (1.0 + static_cast<double>(1e-8f));
  for (double v : xd) CHECK(v == Approx(ref).epsilon(1e-9));
}
