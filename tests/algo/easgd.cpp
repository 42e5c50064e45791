// EASGD's equations on a small case, simulated by hand: p = 3 workers, N = 5, plain SGD, period tau = 2,
// alpha = 0.2, and a known gradient g_r(x)_j = a_j * (x_j - c_{r,j}) that differs per worker. The center
// starts at the mean of the workers' starting points; at a round, with the pre-step x_r,
//
//     x_r <- x_r - eta*g_r - alpha*(x_r - xc)
//     xc  <- xc + alpha * sum_r (x_r - xc)          (the sum added in rank order)
//
// and between rounds x_r <- x_r - eta*g_r. The reference is this loop in float; the optimizer's x and its
// center (target(0)) must match it to 4 ulps of the values' magnitude (the optimizer computes the center as
// xc + alpha*(sum_r x_r - p*xc) and the start as sum*(1/p), which round differently from the equations as
// written; over 6 rounds the differences stay at about one ulp because the dynamics contract).

#include "algo_test_util.hpp"

#include <tether/algo/easgd.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

constexpr int p = 3;
constexpr std::size_t n = 5;
constexpr std::uint32_t tau = 2;
constexpr float alpha = 0.2f;
constexpr double eta = 0.1;
constexpr int steps = 13;  // rounds at t = 2, 4, ..., 12
constexpr double tolerance_ulps = 4.0;

float curvature(std::size_t j) {
  return 0.5f + 0.75f * static_cast<float>(j);
}
float target_of(int r, std::size_t j) {
  return 0.5f * static_cast<float>(r + 1) - 0.3f * static_cast<float>(j);
}
float start_of(int r, std::size_t j) {
  return 2.0f - 1.1f * static_cast<float>(r) + 0.2f * static_cast<float>(j);
}

void gradient(int r, const std::vector<float>& x, std::vector<float>& g) {
  for (std::size_t j = 0; j < n; ++j) g[j] = curvature(j) * (x[j] - target_of(r, j));
}

/// The reference trajectory: x of every worker and the center after every step.
struct reference {
  std::vector<std::vector<std::vector<float>>> x;  // [t][r][j]
  std::vector<std::vector<float>> center;          // [t][j]
};

reference simulate() {
  reference ref;
  std::vector<std::vector<float>> x(p, std::vector<float>(n));
  for (int r = 0; r < p; ++r)
    for (std::size_t j = 0; j < n; ++j) x[static_cast<std::size_t>(r)][j] = start_of(r, j);
  std::vector<float> xc(n);
  for (std::size_t j = 0; j < n; ++j) {
    float s = 0.0f;
    for (int r = 0; r < p; ++r) s += x[static_cast<std::size_t>(r)][j];
    xc[j] = s / static_cast<float>(p);
  }
  const auto lr = static_cast<float>(eta);
  std::vector<float> g(n);
  for (int t = 0; t < steps; ++t) {
    const bool round = t > 0 && t % tau == 0;
    std::vector<float> pull_sum(n, 0.0f);  // sum_r (x_r - xc), pre-step x, rank order
    for (int r = 0; r < p; ++r) {
      auto& xr = x[static_cast<std::size_t>(r)];
      gradient(r, xr, g);
      for (std::size_t j = 0; j < n; ++j) {
        if (round) {
          pull_sum[j] += xr[j] - xc[j];
          xr[j] = xr[j] - lr * g[j] - alpha * (xr[j] - xc[j]);
        } else {
          xr[j] = xr[j] - lr * g[j];
        }
      }
    }
    if (round)
      for (std::size_t j = 0; j < n; ++j) xc[j] = xc[j] + alpha * pull_sum[j];
    ref.x.push_back(x);
    ref.center.push_back(xc);
  }
  return ref;
}

}  // namespace

TEST_CASE("EASGD's workers and center follow the elastic equations", "[algo][easgd]") {
  const reference ref = simulate();

  tether::team team(p);
  std::vector<std::vector<std::vector<float>>> xs(p);       // [r][t][j]
  std::vector<std::vector<std::vector<float>>> centers(p);  // [r][t][j]
  std::vector<std::uint64_t> rounds(p);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::easgd<tether::team::worker> opt(w, n, {.lr = eta, .pull = {.period = tau, .alpha = alpha}});
    std::vector<float> x(n);
    for (std::size_t j = 0; j < n; ++j) x[j] = start_of(w.rank(), j);
    std::vector<float> g(n);
    for (int t = 0; t < steps; ++t) {
      gradient(w.rank(), x, g);
      opt.step(x, g, 0.0);
      xs[me].push_back(x);
      const auto c = opt.target(0);
      centers[me].emplace_back(c.data(), c.data() + c.size());
    }
    rounds[me] = opt.stats().rounds;
  });

  double worst_x = 0.0;
  double worst_c = 0.0;
  for (int r = 0; r < p; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    CHECK(rounds[ur] == static_cast<std::uint64_t>((steps - 1) / tau));
    for (int t = 0; t < steps; ++t) {
      const auto ut = static_cast<std::size_t>(t);
      CAPTURE(r, t);
      const double ex = algo_test::max_ulps(xs[ur][ut], ref.x[ut][ur]);
      const double ec = algo_test::max_ulps(centers[ur][ut], ref.center[ut]);
      CHECK(ex <= tolerance_ulps);
      CHECK(ec <= tolerance_ulps);
      worst_x = std::max(worst_x, ex);
      worst_c = std::max(worst_c, ec);
      // The replicated center is the same bits on every worker.
      CHECK(algo_test::bit_equal(centers[ur][ut], centers[0][ut]));
    }
  }
  // The center does move in this case (otherwise the checks above would not test its update).
  double center_moved = 0.0;
  for (std::size_t j = 0; j < n; ++j)
    center_moved =
        std::max(center_moved, std::abs(double(ref.center.back()[j]) - double(ref.center.front()[j])));
  CHECK(center_moved > 0.1);
  INFO("largest difference from the reference: x " << worst_x << " ulps, center " << worst_c << " ulps");
  CHECK(worst_x <= tolerance_ulps);
}
