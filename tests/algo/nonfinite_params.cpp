// Workers whose parameters are not finite while their loss is: they never lead (LSGD, synchronous and
// asynchronous), and they are never averaged into a mean (local SGD), an anchor (Overlap-Local-SGD) or a center
// (EASGD, synchronous and asynchronous, its starting center included); they are counted in
// stats().excluded_nonfinite. The references are plain loops over the workers' vectors written here, with the
// gradient zero so that only the rounds move x.

#include "algo_test_util.hpp"

#include <tether/algo/async_easgd.hpp>
#include <tether/algo/async_lsgd.hpp>
#include <tether/algo/easgd.hpp>
#include <tether/algo/local_sgd.hpp>
#include <tether/algo/lsgd.hpp>
#include <tether/algo/overlap_local_sgd.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 3;
constexpr std::size_t n = 4;
constexpr float nan_v = std::numeric_limits<float>::quiet_NaN();
constexpr float inf_v = std::numeric_limits<float>::infinity();

/// Worker r starts at (r*r + 1) * (1, 2, 3, 4).
std::vector<float> start_of(int r) {
  std::vector<float> x(n);
  for (std::size_t j = 0; j < n; ++j) x[j] = static_cast<float>((r * r + 1) * static_cast<int>(j + 1));
  return x;
}

bool all_finite(const std::vector<float>& x) {
  for (float v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST_CASE("a worker whose parameters are not finite never leads, even with the lowest loss",
          "[algo][lsgd][nonfinite]") {
  // Worker 1 reports the lowest loss at every step; from step 5 one of its coordinates is -inf (a coordinate
  // the loss does not look at). It leads the elections before step 5 and none after.
  constexpr int steps = 20;
  constexpr std::uint32_t period = 2;
  tether::team team(p);
  std::array<std::vector<int>, p> leaders;
  std::array<std::uint64_t, p> excluded{};
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::lsgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = period, .strength = 0.2f}});
    std::vector<float> x = start_of(w.rank());
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < steps; ++t) {
      if (w.rank() == 1 && t == 5) x[3] = -inf_v;
      opt.step(x, g, w.rank() == 1 ? 0.5 : 2.0 + w.rank());
      if (t > 0 && t % period == 0) leaders[me].push_back(opt.pull_policy().leader());
    }
    excluded[me] = opt.stats().excluded_nonfinite;
  });
  for (int r = 0; r < p; ++r) {
    const auto& l = leaders[static_cast<std::size_t>(r)];
    CAPTURE(r, l);
    REQUIRE(l.size() == static_cast<std::size_t>((steps - 1) / period));
    CHECK(l[0] == 1);  // t = 2
    CHECK(l[1] == 1);  // t = 4
    for (std::size_t k = 2; k < l.size(); ++k) CHECK(l[k] == 0);  // t >= 6: worker 0 has the next lowest loss
  }
  CHECK(excluded[1] == static_cast<std::uint64_t>((steps - 1) / period - 2));
  CHECK(excluded[0] == 0);
  CHECK(excluded[2] == 0);
}

TEST_CASE("asynchronous LSGD: a worker whose parameters are not finite never leads", "[algo][lsgd][nonfinite]") {
  constexpr int steps = 40;
  constexpr std::uint32_t period = 4;
  tether::team team(p);
  std::array<std::vector<int>, p> leaders;
  std::array<std::vector<float>, p> copies;
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::async_lsgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = period, .strength = 0.2f}});
    std::vector<float> x = start_of(w.rank());
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < steps; ++t) {
      if (w.rank() == 1) x[0] = nan_v;  // from the start: worker 1 must never lead
      opt.step(x, g, w.rank() == 1 ? 0.5 : 2.0 + w.rank());
      leaders[me].push_back(opt.pull_policy().leader());
    }
    opt.finish(x);
    leaders[me].push_back(opt.pull_policy().leader());
    copies[me].assign(opt.target(0).data(), opt.target(0).data() + n);
  });
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    for (int l : leaders[static_cast<std::size_t>(r)]) CHECK(l != 1);
    CHECK(leaders[static_cast<std::size_t>(r)].back() == 0);
    CHECK(all_finite(copies[static_cast<std::size_t>(r)]));
  }
}

TEST_CASE("local SGD: a worker whose parameters are not finite is left out of the mean and receives it",
          "[algo][local_sgd][nonfinite]") {
  // Period 2: rounds after steps 1, 3, 5. Worker 1 spoils x[2] before step 3, so the round after step 3
  // averages workers 0 and 2 only, and every worker (1 too) ends with their mean.
  tether::team team(p);
  std::array<std::vector<float>, p> after_round1, after_round2;
  std::array<std::uint64_t, p> excluded{};
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::local_sgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 2}});
    std::vector<float> x = start_of(w.rank());
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < 4; ++t) {
      if (w.rank() == 1 && t == 3) x[2] = nan_v;
      opt.step(x, g, 1.0);
      if (t == 1) after_round1[me] = x;
    }
    after_round2[me] = x;
    excluded[me] = opt.stats().excluded_nonfinite;
  });
  // Reference: round 1 is the plain mean of the three starts; round 2 is the mean of workers 0 and 2 of that
  // (which is that mean again: every worker held it), so every worker ends at the round-1 mean.
  std::vector<float> mean(n);
  for (std::size_t j = 0; j < n; ++j) {
    double s = 0;
    for (int r = 0; r < p; ++r) s += start_of(r)[j];
    mean[j] = static_cast<float>(s / p);
  }
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto ur = static_cast<std::size_t>(r);
    for (std::size_t j = 0; j < n; ++j) {
      CHECK(after_round1[ur][j] == Approx(mean[j]).epsilon(1e-6));
      CHECK(after_round2[ur][j] == Approx(after_round1[0][j]).epsilon(1e-6));
    }
    CHECK(excluded[ur] == (r == 1 ? 1u : 0u));
  }
}

TEST_CASE("local SGD: distinct finite workers' mean excludes the non-finite one; none finite leaves x",
          "[algo][local_sgd][nonfinite]") {
  // Period 4 with no round before step 3: worker 2 is +inf in x[1] from the start, so the round after step 3
  // gives the mean of workers 0 and 1's starts. With every worker non-finite, x stays as it was.
  for (const bool everyone : {false, true}) {
    CAPTURE(everyone);
    tether::team team(p);
    std::array<std::vector<float>, p> xs;
    team.run([&](worker& w) {
      tether::algo::local_sgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 4}});
      std::vector<float> x = start_of(w.rank());
      if (w.rank() == 2 || everyone) x[1] = inf_v;
      const std::vector<float> g(n, 0.0f);
      for (int t = 0; t < 4; ++t) opt.step(x, g, 1.0);
      xs[static_cast<std::size_t>(w.rank())] = x;
    });
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      const auto& x = xs[static_cast<std::size_t>(r)];
      if (everyone) {
        std::vector<float> want = start_of(r);
        want[1] = inf_v;
        CHECK(algo_test::bit_equal(x, want));
      } else {
        for (std::size_t j = 0; j < n; ++j) CHECK(x[j] == (start_of(0)[j] + start_of(1)[j]) / 2.0f);
      }
    }
  }
}

TEST_CASE("EASGD: a worker whose parameters are not finite never moves the center", "[algo][easgd][nonfinite]") {
  // Period 2, alpha 0.25, zero gradients. Worker 2 spoils x[0] before step 2. Reference, as EASGD's
  // equations read, over the finite workers only: at each round t = 2, 4, with the pre-step x_i,
  //   x_i <- x_i - alpha (x_i - c),   c <- c + alpha * sum_{i finite} (x_i - c).
  constexpr float alpha = 0.25f;
  constexpr int steps = 5;
  tether::team team(p);
  std::array<std::vector<float>, p> xs, centers;
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::easgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 2, .alpha = alpha}});
    std::vector<float> x = start_of(w.rank());
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < steps; ++t) {
      if (w.rank() == 2 && t == 2) x[0] = nan_v;
      opt.step(x, g, 1.0);
    }
    xs[me] = x;
    centers[me].assign(opt.target(0).data(), opt.target(0).data() + n);
  });
  std::array<std::vector<double>, p> rx;
  std::vector<double> c(n, 0.0);
  for (int r = 0; r < p; ++r) {
    const auto s = start_of(r);
    rx[static_cast<std::size_t>(r)].assign(s.begin(), s.end());
    for (std::size_t j = 0; j < n; ++j) c[j] += s[j] / static_cast<double>(p);
  }
  rx[2][0] = std::numeric_limits<double>::quiet_NaN();
  for (int t = 2; t < steps; t += 2) {
    std::vector<double> pull(n, 0.0);
    for (int r = 0; r < p; ++r) {
      auto& x = rx[static_cast<std::size_t>(r)];
      const bool finite = std::isfinite(x[0]) && std::isfinite(x[1]) && std::isfinite(x[2]) && std::isfinite(x[3]);
      for (std::size_t j = 0; j < n; ++j) {
        const double d = x[j] - c[j];
        if (finite) pull[j] += d;
        x[j] -= alpha * d;
      }
    }
    for (std::size_t j = 0; j < n; ++j) c[j] += alpha * pull[j];
  }
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto ur = static_cast<std::size_t>(r);
    REQUIRE(all_finite(centers[ur]));
    for (std::size_t j = 0; j < n; ++j) {
      CHECK(centers[ur][j] == Approx(c[j]).epsilon(1e-5));
      if (r != 2) CHECK(xs[ur][j] == Approx(rx[ur][j]).epsilon(1e-5));
    }
  }
}

TEST_CASE("asynchronous EASGD: a worker whose parameters are not finite adds nothing to the center",
          "[algo][easgd][nonfinite]") {
  // Zero gradients: each exchange moves x_i and the center by opposite amounts, so sum of the finite workers'
  // x + center is conserved when worker 2 (NaN from its second step on) adds nothing; the center stays finite.
  constexpr int steps = 30;
  tether::team team(p);
  std::array<std::vector<float>, p> xs;
  std::vector<float> center;
  std::array<std::uint64_t, p> excluded{};
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::async_easgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 2, .beta = 0.6f}});
    std::vector<float> x = start_of(w.rank());
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < steps; ++t) {
      if (w.rank() == 2 && t == 1) x[1] = nan_v;
      opt.step(x, g, 1.0);
    }
    opt.finish(x);
    xs[me] = x;
    excluded[me] = opt.stats().excluded_nonfinite;
    if (me == 0) center.assign(opt.target(0).data(), opt.target(0).data() + n);
  });
  REQUIRE(all_finite(center));
  for (std::size_t j = 0; j < n; ++j) {
    double before = 0;
    for (int r = 0; r < p; ++r) before += start_of(r)[j];
    before = start_of(0)[j] + start_of(1)[j] + before / p;  // workers 0, 1 and the center's start (the mean)
    const double after = double(xs[0][j]) + double(xs[1][j]) + double(center[j]);
    CHECK(after == Approx(before).epsilon(1e-5));
  }
  CHECK(excluded[2] == static_cast<std::uint64_t>((steps - 1) / 2));
  CHECK(excluded[0] == 0);
}

TEST_CASE("Overlap-Local-SGD: a worker whose snapshot is not finite is left out of the anchor and takes it",
          "[algo][overlap][nonfinite]") {
  // Period 2, alpha 0.25, zero gradients, 7 steps. Worker 2 spoils x[0] before it starts (spoil = -1) or before
  // step 1. Reference, as the anchor's equations read, over the finite snapshots only: the snapshot is taken
  // at the start and after every round; at each round t = 2, 4, 6, with F the workers whose snapshot is finite,
  //   z <- mean_{j in F} snapshot_j;   x_i <- z for i not in F;   x_i <- x_i - alpha (x_i - z).
  constexpr float alpha = 0.25f;
  constexpr int steps = 7;
  for (const int spoil : {-1, 1}) {
    CAPTURE(spoil);
    tether::team team(p);
    std::array<std::vector<float>, p> xs, anchors;
    std::array<std::uint64_t, p> excluded{};
    team.run([&](worker& w) {
      const auto me = static_cast<std::size_t>(w.rank());
      tether::algo::overlap_local_sgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 2, .alpha = alpha}});
      std::vector<float> x = start_of(w.rank());
      const std::vector<float> g(n, 0.0f);
      if (w.rank() == 2 && spoil < 0) x[0] = nan_v;
      for (int t = 0; t < steps; ++t) {
        if (w.rank() == 2 && t == spoil) x[0] = nan_v;
        opt.step(x, g, 1.0);
      }
      opt.finish(x);
      xs[me] = x;
      anchors[me].assign(opt.target(0).data(), opt.target(0).data() + n);
      excluded[me] = opt.stats().excluded_nonfinite;
    });
    std::array<std::vector<double>, p> rx, snap;
    for (int r = 0; r < p; ++r) {
      const auto s = start_of(r);
      rx[static_cast<std::size_t>(r)].assign(s.begin(), s.end());
    }
    if (spoil < 0) rx[2][0] = std::numeric_limits<double>::quiet_NaN();
    snap = rx;
    std::vector<double> z(n, 0.0);
    for (int t = 1; t < steps; ++t) {
      if (t == spoil) rx[2][0] = std::numeric_limits<double>::quiet_NaN();
      if (t % 2 != 0) continue;
      std::array<bool, p> finite{};
      int count = 0;
      for (int r = 0; r < p; ++r) {
        const auto& v = snap[static_cast<std::size_t>(r)];
        finite[static_cast<std::size_t>(r)] = std::isfinite(v[0]) && std::isfinite(v[1]) && std::isfinite(v[2]) &&
                                              std::isfinite(v[3]);
        count += finite[static_cast<std::size_t>(r)] ? 1 : 0;
      }
      for (std::size_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int r = 0; r < p; ++r)
          if (finite[static_cast<std::size_t>(r)]) sum += snap[static_cast<std::size_t>(r)][j];
        z[j] = sum / count;
      }
      for (int r = 0; r < p; ++r) {
        auto& x = rx[static_cast<std::size_t>(r)];
        if (!finite[static_cast<std::size_t>(r)]) x = z;
        for (std::size_t j = 0; j < n; ++j) x[j] -= alpha * (x[j] - z[j]);
      }
      snap = rx;
    }
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      const auto ur = static_cast<std::size_t>(r);
      REQUIRE(all_finite(xs[ur]));
      REQUIRE(all_finite(anchors[ur]));
      for (std::size_t j = 0; j < n; ++j) {
        CHECK(anchors[ur][j] == Approx(z[j]).epsilon(1e-5));
        CHECK(xs[ur][j] == Approx(rx[ur][j]).epsilon(1e-5));
      }
      CHECK(excluded[ur] == (r == 2 ? 1u : 0u));
    }
  }
}

TEST_CASE("Overlap-Local-SGD: with no finite snapshot the rounds leave x as it is", "[algo][overlap][nonfinite]") {
  tether::team team(p);
  std::array<std::vector<float>, p> xs;
  std::array<std::uint64_t, p> excluded{};
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    tether::algo::overlap_local_sgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 2, .alpha = 0.5f}});
    std::vector<float> x = start_of(w.rank());
    x[1] = inf_v;
    const std::vector<float> g(n, 0.0f);
    for (int t = 0; t < 7; ++t) opt.step(x, g, 1.0);
    opt.finish(x);
    xs[me] = x;
    excluded[me] = opt.stats().excluded_nonfinite;
  });
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    std::vector<float> want = start_of(r);
    want[1] = inf_v;
    CHECK(algo_test::bit_equal(xs[static_cast<std::size_t>(r)], want));
    CHECK(excluded[static_cast<std::size_t>(r)] == 3u);  // the rounds at steps 2, 4 and 6
  }
}

TEST_CASE("asynchronous EASGD: the center starts at the mean of the finite starting points",
          "[algo][easgd][nonfinite]") {
  // One step and no exchange (period 100): finish() leaves the starting center in target(0). Worker 2 starts
  // with x[1] = +inf: the center is the mean of workers 0 and 1's starts. With no finite start it is 0, as
  // synchronous EASGD's.
  for (const bool everyone : {false, true}) {
    CAPTURE(everyone);
    tether::team team(p);
    std::array<std::vector<float>, p> centers;
    std::array<std::uint64_t, p> excluded{};
    team.run([&](worker& w) {
      const auto me = static_cast<std::size_t>(w.rank());
      tether::algo::async_easgd<worker> opt(w, n, {.lr = 0.1, .pull = {.period = 100, .beta = 0.6f}});
      std::vector<float> x = start_of(w.rank());
      if (w.rank() == 2 || everyone) x[1] = inf_v;
      const std::vector<float> g(n, 0.0f);
      opt.step(x, g, 1.0);
      opt.finish(x);
      centers[me].assign(opt.target(0).data(), opt.target(0).data() + n);
      excluded[me] = opt.stats().excluded_nonfinite;
    });
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      const auto ur = static_cast<std::size_t>(r);
      for (std::size_t j = 0; j < n; ++j) {
        const float want = everyone ? 0.0f : (start_of(0)[j] + start_of(1)[j]) / 2.0f;  // small integers: exact
        CHECK(centers[ur][j] == want);
      }
      CHECK(excluded[ur] == (r == 2 || everyone ? 1u : 0u));
    }
  }
}
