// Named algorithms with their optional arguments in any order (core/compose.hpp): double precision without
// spelling out the step and the execution space, the old four-argument spelling unchanged, and a run in
// double against a scalar loop.

#include <cmath>
#include <concepts>
#include <cstddef>
#include <vector>

#include "support.hpp"

namespace {

using w = tether::team::worker;

/// An execution space of the test's own (exec::serial's loops).
struct my_space : tether::exec::serial {};

}  // namespace

TEST_CASE("named algorithms: step, execution space and value type in any order, each defaulted", "[core]") {
  using tether::optimizer;
  namespace algo = tether::algo;
  namespace step = tether::step;
  namespace pull = tether::pull;
  using serial = tether::exec::serial;
  // The spelling of earlier releases.
  STATIC_REQUIRE(
      std::same_as<algo::lsgd<w, step::sgd, serial, double>, optimizer<step::sgd, pull::leader, w, serial, double>>);
  STATIC_REQUIRE(std::same_as<algo::lsgd<w>, optimizer<step::sgd, pull::leader, w, serial, float>>);
  // The value type alone, the execution space alone, in any order with the step.
  STATIC_REQUIRE(std::same_as<algo::lsgd<w, double>, optimizer<step::sgd, pull::leader, w, serial, double>>);
  STATIC_REQUIRE(std::same_as<algo::easgd<w, my_space>, optimizer<step::sgd, pull::elastic, w, my_space, float>>);
  STATIC_REQUIRE(std::same_as<algo::local_sgd<w, double, step::adam>,
                              optimizer<step::adam, pull::average, w, serial, double>>);
  STATIC_REQUIRE(std::same_as<algo::overlap_local_sgd<w, my_space, double, step::momentum>,
                              optimizer<step::momentum, pull::anchor, w, my_space, double>>);
  STATIC_REQUIRE(std::same_as<algo::lsgd_grouped<w, step::clipped<step::adam>, double>,
                              optimizer<step::clipped<step::adam>, pull::group_leader, w, serial, double>>);
  // EAMSGD fixes the step: its arguments are the execution space and the value type.
  STATIC_REQUIRE(std::same_as<algo::eamsgd<w, double>, optimizer<step::momentum, pull::elastic, w, serial, double>>);
  STATIC_REQUIRE(
      std::same_as<algo::eamsgd<w, serial, double>, optimizer<step::momentum, pull::elastic, w, serial, double>>);
  STATIC_REQUIRE(
      std::same_as<algo::async_lsgd<w, double>, optimizer<step::sgd, pull::async_leader, w, serial, double>>);
  STATIC_REQUIRE(std::same_as<algo::async_eamsgd<w, double>,
                              optimizer<step::momentum, pull::async_elastic, w, serial, double>>);
}

TEST_CASE("algo::local_sgd<worker, double> runs in double: one worker is SGD in double", "[core]") {
  const std::size_t n = 6;
  std::vector<double> x(n), x_ref(n), g(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = x_ref[i] = 1.0 / static_cast<double>(i + 3);
  tt::on_one_worker([&](w& worker) {
    tether::algo::local_sgd<w, double> opt(worker, n, {.lr = 0.1, .pull = {.period = 2}});
    for (int t = 0; t < 30; ++t) {
      for (std::size_t i = 0; i < n; ++i) g[i] = 2.0 * (x[i] - 0.1 * static_cast<double>(i));
      opt.step(x, g, 0.0);
      for (std::size_t i = 0; i < n; ++i) x_ref[i] -= 0.1 * (2.0 * (x_ref[i] - 0.1 * static_cast<double>(i)));
    }
  });
  CHECK(x == x_ref);  // float arithmetic would differ after a few steps
  double err_float = 0.0;
  for (std::size_t i = 0; i < n; ++i) err_float = std::max(err_float, std::abs(double(float(x_ref[i])) - x_ref[i]));
  CHECK(err_float > 0.0);
}
