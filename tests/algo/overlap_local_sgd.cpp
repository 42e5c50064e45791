// Overlap-Local-SGD (anchor pull). On a small case the anchor and the pull follow the hand reference:
// the anchor z used at a round is the mean of the snapshots the workers took one round earlier (at the start
// for the first round), the pull is x <- x - eta*g - alpha*(x - z), and each round snapshots the updated x
// for the next one. With p = 4 the mean (sum times 1/4) is exact, so the reference can add in rank order and
// divide; the comparison allows 2 ulps of the values' magnitude (in practice the bits agree; the slack covers
// a compiler contracting a multiply-add differently in the two loops). Also: a 4-worker training with a fixed
// seed is bit-identical from run to run (the overlapped reduction adds in rank order whatever the thread
// timing), and opt.finish(x) leaves no request pending.

#include "algo_test_util.hpp"

#include <tether/algo/overlap_local_sgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/rng.hpp>
#include <tether/problems/logistic.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

constexpr int p = 4;

namespace hand {

constexpr std::size_t n = 5;
constexpr std::uint32_t tau = 3;
constexpr float alpha = 0.3f;
constexpr double eta = 0.05;
constexpr int steps = 13;  // rounds at t = 3, 6, 9, 12; the last one launches an average left pending

float curvature(std::size_t j) {
  return 1.0f + 0.5f * static_cast<float>(j);
}
float target_of(int r, std::size_t j) {
  return 0.7f * static_cast<float>(r) - 0.2f * static_cast<float>(j);
}
float start_of(int r, std::size_t j) {
  return 1.0f - 0.4f * static_cast<float>(r) + 0.1f * static_cast<float>(j);
}
void gradient(int r, const std::vector<float>& x, std::vector<float>& g) {
  for (std::size_t j = 0; j < n; ++j) g[j] = curvature(j) * (x[j] - target_of(r, j));
}

/// Mean over workers, added in rank order.
std::vector<float> mean_of(const std::vector<std::vector<float>>& v) {
  std::vector<float> m(n, 0.0f);
  for (std::size_t j = 0; j < n; ++j) {
    float s = v[0][j];
    for (std::size_t r = 1; r < v.size(); ++r) s += v[r][j];
    m[j] = s / static_cast<float>(v.size());
  }
  return m;
}

}  // namespace hand

/// What a worker of the small case recorded.
struct hand_record {
  std::vector<std::vector<float>> x;       // after every step
  std::vector<std::vector<float>> anchor;  // target(0) after each round step
  std::vector<float> final_sum;            // target(2), the completed sum, after finish()
  bool pending_before_finish = false;
  bool pending_after_finish = true;
  std::uint64_t rounds = 0;
};

/// The 4-worker training used for the determinism check: logistic regression on minibatches drawn with
/// seeds derived from (rank, step), Nesterov momentum, anchor momentum.
std::vector<std::vector<float>> train_logistic(std::uint64_t seed) {
  using olsgd = tether::algo::overlap_local_sgd<tether::team::worker, tether::step::momentum>;
  const tether::problems::logistic<float> problem({.samples = 512, .features = 16, .seed = 3});
  const std::size_t n = problem.dimension();
  tether::team team(p);
  std::vector<std::vector<float>> out(p);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    olsgd opt(w, n,
              {.lr = 0.1,
               .step = {.momentum = 0.9f, .nesterov = true},
               .pull = {.period = 4, .alpha = 0.6f, .momentum = 0.5f}});
    std::vector<float> x(n, 0.0f);
    std::vector<float> g(n);
    std::vector<std::size_t> idx(16);
    for (int t = 0; t < 200; ++t) {
      tether::rng r(tether::derive_seed(seed, me, static_cast<std::uint64_t>(t)));
      for (auto& i : idx) i = static_cast<std::size_t>(r.below(problem.samples()));
      const double loss = problem.evaluate(x, g, {.samples = idx, .seed = 0});
      opt.step(x, g, loss);
    }
    opt.finish(x);
    out[me] = x;
    const auto z = opt.target(0);
    out[me].insert(out[me].end(), z.data(), z.data() + z.size());
  });
  return out;
}

}  // namespace

TEST_CASE("Overlap-Local-SGD's anchor and pull follow the hand reference", "[algo][overlap_local_sgd]") {
  using namespace hand;
  // Reference.
  std::vector<std::vector<float>> x(p, std::vector<float>(n));
  for (int r = 0; r < p; ++r)
    for (std::size_t j = 0; j < n; ++j) x[static_cast<std::size_t>(r)][j] = start_of(r, j);
  std::vector<std::vector<float>> snapshot = x;  // taken at the start
  std::vector<std::vector<std::vector<float>>> ref_x;
  std::vector<std::vector<float>> ref_anchor;
  const auto lr = static_cast<float>(eta);
  std::vector<float> g(n);
  for (int t = 0; t < steps; ++t) {
    const bool round = t > 0 && t % tau == 0;
    std::vector<float> z;
    if (round) {
      z = mean_of(snapshot);
      ref_anchor.push_back(z);
    }
    for (int r = 0; r < p; ++r) {
      auto& xr = x[static_cast<std::size_t>(r)];
      gradient(r, xr, g);
      for (std::size_t j = 0; j < n; ++j)
        xr[j] = round ? xr[j] - lr * g[j] - alpha * (xr[j] - z[j]) : xr[j] - lr * g[j];
    }
    if (round) snapshot = x;  // the next average starts from the updated parameters
    ref_x.push_back(x);
  }
  std::vector<float> ref_final_sum(n);
  for (std::size_t j = 0; j < n; ++j) {
    float s = snapshot[0][j];
    for (int r = 1; r < p; ++r) s += snapshot[static_cast<std::size_t>(r)][j];
    ref_final_sum[j] = s;
  }

  // The optimizer.
  tether::team team(p);
  std::vector<hand_record> rec(p);
  team.run([&](tether::team::worker& w) {
    auto& me = rec[static_cast<std::size_t>(w.rank())];
    tether::algo::overlap_local_sgd<tether::team::worker> opt(
        w, n, {.lr = eta, .pull = {.period = tau, .alpha = alpha}});
    std::vector<float> xw(n);
    for (std::size_t j = 0; j < n; ++j) xw[j] = start_of(w.rank(), j);
    std::vector<float> gw(n);
    for (int t = 0; t < steps; ++t) {
      gradient(w.rank(), xw, gw);
      opt.step(xw, gw, 0.0);
      me.x.push_back(xw);
      if (t > 0 && t % tau == 0) {
        const auto z = opt.target(0);
        me.anchor.emplace_back(z.data(), z.data() + z.size());
      }
    }
    me.pending_before_finish = opt.pull_policy().pending();
    opt.finish(xw);
    me.pending_after_finish = opt.pull_policy().pending();
    const auto s = opt.target(2);
    me.final_sum.assign(s.data(), s.data() + s.size());
    me.rounds = opt.stats().rounds;
  });

  for (int r = 0; r < p; ++r) {
    const auto& me = rec[static_cast<std::size_t>(r)];
    CAPTURE(r);
    REQUIRE(me.x.size() == static_cast<std::size_t>(steps));
    REQUIRE(me.anchor.size() == ref_anchor.size());
    CHECK(me.rounds == ref_anchor.size());
    for (std::size_t k = 0; k < ref_anchor.size(); ++k) {
      CAPTURE(k);
      CHECK(algo_test::max_ulps(me.anchor[k], ref_anchor[k]) <= 2.0);
    }
    for (int t = 0; t < steps; ++t) {
      CAPTURE(t);
      CHECK(algo_test::max_ulps(me.x[static_cast<std::size_t>(t)],
                                ref_x[static_cast<std::size_t>(t)][static_cast<std::size_t>(r)]) <= 2.0);
    }
    // The last round launched an average that finish() completed: nothing pending, and its sum is there.
    CHECK(me.pending_before_finish);
    CHECK_FALSE(me.pending_after_finish);
    CHECK(algo_test::max_ulps(me.final_sum, ref_final_sum) <= 2.0);
  }
}

TEST_CASE("Overlap-Local-SGD with a fixed seed is deterministic", "[algo][overlap_local_sgd]") {
  const auto a = train_logistic(9);
  const auto b = train_logistic(9);
  REQUIRE(a.size() == static_cast<std::size_t>(p));
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    CHECK(algo_test::bit_equal(a[static_cast<std::size_t>(r)], b[static_cast<std::size_t>(r)]));
  }
  // And the seed does matter (the check above is not comparing constants).
  const auto c = train_logistic(10);
  CHECK_FALSE(algo_test::bit_equal(a[0], c[0]));
}
