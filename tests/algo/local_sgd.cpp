// Local SGD (model averaging). With period 1 it is synchronous SGD: every worker holds the same x and
// x <- x - eta * mean_r g_r, checked against that reference loop to 4 ulps of the values' magnitude (the
// optimizer averages the stepped parameters, sum_r (x - eta*g_r) / p, which rounds differently from the
// reference's x - eta * (sum_r g_r)/p). Post-local warm-up: with period 8 and warmup 4 the first 4 steps
// average after every step (workers identical after each) and then only every 8th step.

#include "algo_test_util.hpp"

#include <tether/algo/local_sgd.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

constexpr int p = 4;
constexpr std::size_t n = 7;
constexpr double eta = 0.05;

float curvature(std::size_t j) {
  return 1.0f + 0.5f * static_cast<float>(j);
}
/// Each worker's data pulls toward its own target, so the workers' gradients differ.
float target_of(int r, std::size_t j) {
  return static_cast<float>(r) - 1.5f + 0.25f * static_cast<float>(j) * (r % 2 == 0 ? 1.0f : -1.0f);
}
float start_of(int r, std::size_t j) {
  return 0.3f * static_cast<float>(j) - 0.1f * static_cast<float>(r);
}

void gradient(int r, const std::vector<float>& x, std::vector<float>& g) {
  for (std::size_t j = 0; j < n; ++j) g[j] = curvature(j) * (x[j] - target_of(r, j));
}

/// Runs local SGD and records every worker's x after every step: hist[r][t].
std::vector<std::vector<std::vector<float>>> run(tether::algo::local_sgd<tether::team::worker>::options o,
                                                 int steps, bool same_start,
                                                 std::vector<std::uint64_t>* rounds = nullptr) {
  tether::team team(p);
  std::vector<std::vector<std::vector<float>>> hist(p);
  std::vector<std::uint64_t> r_count(p);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::local_sgd<tether::team::worker> opt(w, n, o);
    std::vector<float> x(n);
    for (std::size_t j = 0; j < n; ++j) x[j] = start_of(same_start ? 0 : w.rank(), j);
    std::vector<float> g(n);
    for (int t = 0; t < steps; ++t) {
      gradient(w.rank(), x, g);
      opt.step(x, g, 0.0);
      hist[me].push_back(x);
    }
    r_count[me] = opt.stats().rounds;
  });
  if (rounds != nullptr) *rounds = r_count;
  return hist;
}

}  // namespace

TEST_CASE("local SGD with period 1 is synchronous SGD", "[algo][local_sgd]") {
  constexpr int steps = 40;
  std::vector<std::uint64_t> rounds;
  const auto hist = run({.lr = eta, .pull = {.period = 1}}, steps, true, &rounds);

  // Reference: one x, stepped with the mean gradient.
  std::vector<float> x(n);
  for (std::size_t j = 0; j < n; ++j) x[j] = start_of(0, j);
  std::vector<float> g(n);
  const auto lr = static_cast<float>(eta);
  double worst = 0.0;
  for (int t = 0; t < steps; ++t) {
    std::vector<float> sum(n, 0.0f);
    for (int r = 0; r < p; ++r) {
      gradient(r, x, g);
      for (std::size_t j = 0; j < n; ++j) sum[j] += g[j];
    }
    for (std::size_t j = 0; j < n; ++j) x[j] = x[j] - lr * (sum[j] / static_cast<float>(p));
    const auto ut = static_cast<std::size_t>(t);
    for (int r = 0; r < p; ++r) {
      const auto& xr = hist[static_cast<std::size_t>(r)][ut];
      CAPTURE(t, r);
      CHECK(algo_test::bit_equal(xr, hist[0][ut]));  // all workers identical
      const double e = algo_test::max_ulps(xr, x);
      CHECK(e <= 4.0);
      worst = std::max(worst, e);
    }
  }
  INFO("largest difference from synchronous SGD: " << worst << " ulps");
  CHECK(worst <= 4.0);
  for (const auto r : rounds) CHECK(r == static_cast<std::uint64_t>(steps));
}

TEST_CASE("post-local SGD: warm-up averages every step, then every period", "[algo][local_sgd]") {
  constexpr int steps = 26;
  std::vector<std::uint64_t> rounds;
  const auto hist = run({.lr = eta, .pull = {.period = 8, .warmup = 4}}, steps, false, &rounds);

  // After step t (0-based), the count of steps taken is t + 1: averaged when t + 1 <= 4 or (t + 1) % 8 == 0.
  const auto averaged_after = [](int t) { return t + 1 <= 4 || (t + 1) % 8 == 0; };
  int expected_rounds = 0;
  for (int t = 0; t < steps; ++t) {
    const auto ut = static_cast<std::size_t>(t);
    bool identical = true;
    for (int r = 1; r < p; ++r)
      identical = identical && algo_test::bit_equal(hist[static_cast<std::size_t>(r)][ut], hist[0][ut]);
    CAPTURE(t);
    CHECK(identical == averaged_after(t));
    expected_rounds += averaged_after(t) ? 1 : 0;
  }
  for (const auto r : rounds) CHECK(r == static_cast<std::uint64_t>(expected_rounds));

  // And the values: a reference loop of local steps with the average (rank-order sum / p) at those steps.
  std::vector<std::vector<float>> x(p, std::vector<float>(n));
  for (int r = 0; r < p; ++r)
    for (std::size_t j = 0; j < n; ++j) x[static_cast<std::size_t>(r)][j] = start_of(r, j);
  std::vector<float> g(n);
  const auto lr = static_cast<float>(eta);
  for (int t = 0; t < steps; ++t) {
    for (int r = 0; r < p; ++r) {
      auto& xr = x[static_cast<std::size_t>(r)];
      gradient(r, xr, g);
      for (std::size_t j = 0; j < n; ++j) xr[j] = xr[j] - lr * g[j];
    }
    if (averaged_after(t)) {
      for (std::size_t j = 0; j < n; ++j) {
        float s = 0.0f;
        for (int r = 0; r < p; ++r) s += x[static_cast<std::size_t>(r)][j];
        for (int r = 0; r < p; ++r) x[static_cast<std::size_t>(r)][j] = s / static_cast<float>(p);
      }
    }
    for (int r = 0; r < p; ++r) {
      CAPTURE(t, r);
      CHECK(algo_test::max_ulps(hist[static_cast<std::size_t>(r)][static_cast<std::size_t>(t)],
                                x[static_cast<std::size_t>(r)]) <= 4.0);
    }
  }
}
