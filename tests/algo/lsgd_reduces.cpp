// LSGD reduces to its step policy: with zero pull (strength 0, jump 0) the team is p independent runs, and
// with one worker the leader is always the worker itself, so any pull does nothing. Both are compared bit
// for bit with single-worker reference loops (x -= lr*g; Nesterov: v = mu*v + g, x -= lr*(g + mu*v)) fed the
// same gradient sequence (the noisy quadratic evaluated at the reference's own x with the same batch seed).

#include "algo_test_util.hpp"

#include <tether/algo/lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/rng.hpp>
#include <tether/problems/quadratic.hpp>
#include <tether/step/momentum.hpp>
#include <tether/step/sgd.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

using quadratic = tether::problems::quadratic<float>;
constexpr std::size_t n = 13;
constexpr int steps = 60;
constexpr double lr = 0.05;
constexpr float mu = 0.9f;

const quadratic& problem() {
  static const quadratic q(n, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 11});
  return q;
}

std::vector<float> start_of(int rank) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(1.5 * std::sin(1.3 * rank + static_cast<double>(i)));
  return x;
}

tether::batch batch_of(int rank, std::uint64_t t) {
  return {.samples = {}, .seed = tether::derive_seed(77, static_cast<std::uint64_t>(rank), t)};
}

/// Reference: one worker alone, plain SGD or Nesterov momentum, x after every step (flattened).
std::vector<float> reference_run(int rank, bool nesterov) {
  std::vector<float> x = start_of(rank);
  std::vector<float> g(n);
  std::vector<float> v(n, 0.0f);
  std::vector<float> hist;
  const auto lrf = static_cast<float>(lr);
  for (int t = 0; t < steps; ++t) {
    (void)problem().evaluate(x, g, batch_of(rank, static_cast<std::uint64_t>(t)));
    for (std::size_t i = 0; i < n; ++i) {
      if (nesterov) {
        v[i] = mu * v[i] + g[i];
        x[i] = x[i] - lrf * (g[i] + mu * v[i]);
      } else {
        x[i] = x[i] - lrf * g[i];
      }
    }
    hist.insert(hist.end(), x.begin(), x.end());
  }
  return hist;
}

/// What one worker of an LSGD run recorded.
struct worker_record {
  std::vector<float> hist;  // x after every step
  int last_leader = -2;
  std::uint64_t rounds = 0;
};

/// Runs LSGD with `p` workers and the given step policy; each worker records its trajectory.
template <class Step>
std::vector<worker_record> run_lsgd(int p,
                                    typename tether::algo::lsgd<tether::team::worker, Step>::options o) {
  tether::team team(p);
  std::vector<worker_record> rec(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    auto& me = rec[static_cast<std::size_t>(w.rank())];
    tether::algo::lsgd<tether::team::worker, Step> opt(w, n, o);
    std::vector<float> x = start_of(w.rank());
    std::vector<float> g(n);
    for (int t = 0; t < steps; ++t) {
      const double loss = problem().evaluate(x, g, batch_of(w.rank(), static_cast<std::uint64_t>(t)));
      opt.step(x, g, loss);
      me.hist.insert(me.hist.end(), x.begin(), x.end());
    }
    me.last_leader = opt.pull_policy().leader();
    me.rounds = opt.stats().rounds;
  });
  return rec;
}

}  // namespace

TEST_CASE("LSGD with zero pull is p independent runs of the step policy (bit-exact)", "[algo][lsgd]") {
  const int p = 4;
  SECTION("sgd") {
    const auto rec =
        run_lsgd<tether::step::sgd>(p, {.lr = lr, .pull = {.period = 3, .strength = 0.0f, .jump = 0.0f}});
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      const auto& me = rec[static_cast<std::size_t>(r)];
      CHECK(algo_test::bit_equal(me.hist, reference_run(r, false)));
      // Elections did take place (the pull ran its rounds), they just moved nothing.
      CHECK(me.rounds == static_cast<std::uint64_t>((steps - 1) / 3));
      CHECK(me.last_leader >= 0);
    }
  }
  SECTION("nesterov momentum") {
    const auto rec =
        run_lsgd<tether::step::momentum>(p, {.lr = lr,
                                             .step = {.momentum = mu, .nesterov = true},
                                             .pull = {.period = 3, .strength = 0.0f, .jump = 0.0f}});
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      CHECK(algo_test::bit_equal(rec[static_cast<std::size_t>(r)].hist, reference_run(r, true)));
    }
  }
  SECTION("control: a non-zero pull does change the non-leaders") {
    const auto rec = run_lsgd<tether::step::sgd>(p, {.lr = lr, .pull = {.period = 3, .strength = 0.1f}});
    int differ = 0;
    for (int r = 0; r < p; ++r)
      differ += !algo_test::bit_equal(rec[static_cast<std::size_t>(r)].hist, reference_run(r, false));
    CHECK(differ >= p - 1);
  }
}

TEST_CASE("LSGD with one worker is the step policy alone (bit-exact)", "[algo][lsgd]") {
  // A strong proximal pull and jump: with p = 1 the worker is its own leader, so neither may act.
  SECTION("sgd") {
    const auto rec =
        run_lsgd<tether::step::sgd>(1, {.lr = lr, .pull = {.period = 2, .strength = 0.5f, .jump = 0.3f}});
    CHECK(algo_test::bit_equal(rec[0].hist, reference_run(0, false)));
    CHECK(rec[0].last_leader == 0);
    CHECK(rec[0].rounds == static_cast<std::uint64_t>((steps - 1) / 2));
  }
  SECTION("nesterov momentum") {
    const auto rec =
        run_lsgd<tether::step::momentum>(1, {.lr = lr,
                                             .step = {.momentum = mu, .nesterov = true},
                                             .pull = {.period = 2, .strength = 0.5f, .jump = 0.3f}});
    CHECK(algo_test::bit_equal(rec[0].hist, reference_run(0, true)));
    CHECK(rec[0].last_leader == 0);
  }
}
