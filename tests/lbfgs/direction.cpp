// The direction the shards form (lbfgs::shard's combination of its slices, with the coefficients of the
// coordinator's two-loop on its incrementally updated dot-product matrix) against the plain two-loop
// recursion on the stored vectors, written here in double: equal to 1e-12 relative at every iteration, the
// first ones included (fewer pairs than m, gamma from the newest pair), and after the ring wrapped. The
// shards and the coordinator logic are driven here by hand (no threads), on a quadratic with 2 shards and one
// portion. Also: the curvature guard drops a pair whose s'y is not positive and keeps the history as it was.

#include <tether/exec/serial.hpp>
#include <tether/lbfgs/coordinator.hpp>
#include <tether/lbfgs/shard.hpp>

#include <catch2/catch.hpp>

#include "serial_reference.hpp"

#include <cmath>
#include <cstddef>
#include <deque>
#include <vector>

namespace {

using vec = std::vector<double>;
using lbfgs_test::dot;
using lbfgs_test::serial_two_loop;

}  // namespace

TEST_CASE("The shards' direction equals the serial two-loop at every iteration", "[lbfgs][direction]") {
  constexpr std::size_t n = 30;
  constexpr std::size_t m = 3;
  // f = 1/2 sum a_i (x_i - c_i)^2
  vec a(n), c(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = 1.0 + 0.7 * static_cast<double>(i);
    c[i] = std::sin(static_cast<double>(i));
  }
  const vec x0(n, 0.0);
  const std::size_t half = n / 2;
  std::vector<tether::lbfgs::shard<tether::exec::serial, double>> shards;
  shards.emplace_back(tether::exec::serial{}, 0, 0, std::span<const double>(x0.data(), half), m, 1);
  shards.emplace_back(tether::exec::serial{}, 1, half, std::span<const double>(x0.data() + half, n - half), m,
                      1);
  tether::lbfgs::options o{.history = m, .epsilon = 1e-12};
  tether::lbfgs::coordinator coord(o);

  // The test's own copy of the state: committed x and g, the last trial's, and the stored pairs (oldest
  // first).
  vec x = x0, g(n, 0.0), xt(n), gt(n);
  std::deque<vec> s_pairs, y_pairs;
  std::size_t checked = 0;
  tether::lbfgs::command cmd = coord.start();
  for (int batch = 0; batch < 200 && !cmd.stop; ++batch) {
    const auto& t = cmd.trial;
    if (t.commit) {
      if (t.store) {
        vec sn(n), yn(n);
        for (std::size_t i = 0; i < n; ++i) {
          sn[i] = xt[i] - x[i];
          yn[i] = gt[i] - g[i];
        }
        if (s_pairs.size() == m) {
          s_pairs.pop_front();
          y_pairs.pop_front();
        }
        s_pairs.push_back(sn);
        y_pairs.push_back(yn);
      }
      x = xt;
      g = gt;
    }
    if (coord.matrix().count() == 0) {  // a restart (none expected on a quadratic) or no pair yet
      s_pairs.clear();
      y_pairs.clear();
    }
    for (auto& sh : shards) sh.start_trial(t);
    if (!t.delta.empty()) {
      vec d(n);
      for (const auto& sh : shards) {
        const auto part = sh.direction();
        for (std::size_t i = 0; i < part.size(); ++i) d[sh.begin() + i] = part[i];
      }
      const vec ref = serial_two_loop(s_pairs, y_pairs, g);
      vec diff(n);
      for (std::size_t i = 0; i < n; ++i) diff[i] = d[i] - ref[i];
      INFO("batch " << batch << ", pairs " << s_pairs.size());
      CHECK(std::sqrt(dot(diff, diff)) <= 1e-12 * std::sqrt(dot(ref, ref)));
      ++checked;
    }
    // Evaluate the batch: one portion, the whole gradient.
    for (const auto& sh : shards) {
      const auto part = sh.trial_point();
      for (std::size_t i = 0; i < part.size(); ++i) xt[sh.begin() + i] = part[i];
    }
    double f = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      gt[i] = a[i] * (xt[i] - c[i]);
      f += 0.5 * a[i] * (xt[i] - c[i]) * (xt[i] - c[i]);
    }
    std::vector<double> dots(tether::lbfgs::dot_index::count(m), 0.0);
    for (auto& sh : shards) {
      REQUIRE(sh.add(t.batch, 0, std::span<const double>(gt.data() + sh.begin(), sh.size())) ==
              tether::lbfgs::shard<tether::exec::serial, double>::added::used);
      REQUIRE(sh.complete());
      const auto part = sh.dot_products();
      for (std::size_t i = 0; i < dots.size(); ++i) dots[i] += part[i];
    }
    cmd = coord.on_batch(f, dots);
  }
  CHECK(cmd.stop);
  CHECK(cmd.status == tether::lbfgs::outcome::converged);
  CHECK(coord.iterations() > 2 * m);     // the ring wrapped
  CHECK(checked == coord.iterations());  // a new direction after every iteration but the last, plus the first
  CHECK(coord.restarts() == 0);
}

TEST_CASE("The curvature guard drops a pair with s'y <= 0 and keeps the history", "[lbfgs][direction]") {
  tether::lbfgs::options o{.history = 2};
  tether::lbfgs::coordinator coord(o);
  const std::size_t k = tether::lbfgs::dot_index::count(2);
  using idx = tether::lbfgs::dot_index;
  (void)coord.start();
  std::vector<double> d0(k, 0.0);
  d0[idx::gt_gt] = 4.0;  // |g| = 2 at the start
  d0[idx::xt_xt] = 1.0;
  auto cmd = coord.on_batch(10.0, d0);
  REQUIRE_FALSE(cmd.stop);
  REQUIRE(cmd.trial.alpha == Approx(0.5));  // 1 / |g|
  // The trial: a sufficient decrease and a flat slope (strong Wolfe holds), but s'y = -1.
  std::vector<double> d1(k, 0.0);
  d1[idx::gt_d] = -0.1;
  d1[idx::gt_gt] = 1.0;
  d1[idx::xt_xt] = 1.0;
  d1[idx::s_y] = -1.0;
  d1[idx::y_y] = 2.0;
  d1[idx::s_s] = 1.0;
  cmd = coord.on_batch(9.0, d1);
  REQUIRE_FALSE(cmd.stop);
  CHECK(cmd.trial.commit);
  CHECK_FALSE(cmd.trial.store);
  CHECK(coord.pairs_skipped() == 1);
  CHECK(coord.matrix().count() == 0);
  REQUIRE(coord.history().size() == 1);
  CHECK(coord.history()[0].pair_skipped);
  // Without a pair the new direction is -g again, tried with step 1.
  CHECK(cmd.trial.delta[coord.matrix().g()] == -1.0);
  CHECK(cmd.trial.alpha == Approx(1.0));
}
