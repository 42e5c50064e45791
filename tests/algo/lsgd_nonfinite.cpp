// Non-finite losses and LSGD's elections: the worker that would be the best (it starts closest to the
// optimum) reports a NaN (or Inf) loss; it must never be elected leader, while the step is skipped and
// counted. With every loss non-finite nobody is elected and nothing moves. With
// on_nonfinite = raise the worker throws and run() rethrows tether::runtime_error without deadlock.

#include "algo_test_util.hpp"

#include <tether/algo/lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/problems/quadratic.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using quadratic = tether::problems::quadratic<float>;
using lsgd = tether::algo::lsgd<tether::team::worker>;
constexpr int p = 4;
constexpr std::size_t n = 5;
constexpr int steps = 24;
constexpr std::uint32_t period = 2;
constexpr int best = 2;  // the worker that starts closest to the optimum

const quadratic& problem() {
  static const quadratic q(n, {.a_min = 1.0, .a_max = 2.0, .seed = 21});
  return q;
}

std::vector<float> start_of(int r) {
  constexpr std::array<float, p> factor{0.9f, 0.6f, 0.1f, 0.7f};
  std::vector<float> x(n);
  const auto c = problem().optimum();
  for (std::size_t j = 0; j < n; ++j)
    x[j] = c[j] + factor[static_cast<std::size_t>(r)] * (j % 2 == 0 ? 1.0f : -1.0f);
  return x;
}

/// When worker `best` lies about its loss.
enum class inject { never, always, at_elections };

struct run_result {
  std::array<std::vector<int>, p> leaders;  // leader() after every round step
  std::array<std::uint64_t, p> skipped{};
  std::array<std::uint64_t, p> applied{};
  std::array<std::vector<float>, p> x;
};

run_result run(inject when, double bad_loss, bool everyone = false, std::uint32_t window = 10) {
  tether::team team(p);
  run_result res;
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    lsgd opt(w, n, {.lr = 0.1, .pull = {.period = period, .strength = 0.2f, .score_window = window}});
    std::vector<float> x = start_of(w.rank());
    std::vector<float> g(n);
    for (int t = 0; t < steps; ++t) {
      double loss = problem().evaluate(x, g, {});
      const bool liar = everyone || w.rank() == best;
      const bool election = t > 0 && t % period == 0;
      if (liar && (when == inject::always || (when == inject::at_elections && election))) loss = bad_loss;
      opt.step(x, g, loss);
      if (election) res.leaders[me].push_back(opt.pull_policy().leader());
    }
    res.skipped[me] = opt.stats().skipped_nonfinite;
    res.applied[me] = opt.applied_steps();
    res.x[me] = x;
  });
  return res;
}

constexpr double nan_loss = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_loss = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("control: with honest losses the best-placed worker is elected", "[algo][lsgd][nonfinite]") {
  const auto res = run(inject::never, 0.0);
  for (int r = 0; r < p; ++r) {
    REQUIRE_FALSE(res.leaders[static_cast<std::size_t>(r)].empty());
    CHECK(res.leaders[static_cast<std::size_t>(r)].front() == best);
    CHECK(res.skipped[static_cast<std::size_t>(r)] == 0);
  }
}

TEST_CASE("a finite loss below float's range wins the election", "[algo][lsgd][nonfinite]") {
  // -1e39 is a finite double but -inf as a float: an election narrowed to float would never elect it.
  const auto res = run(inject::always, -1e39);
  for (int r = 0; r < p; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    CAPTURE(r);
    REQUIRE(res.leaders[ur].size() == static_cast<std::size_t>((steps - 1) / period));
    for (const int l : res.leaders[ur]) CHECK(l == best);
    CHECK(res.skipped[ur] == 0);
  }
}

TEST_CASE("a worker with a non-finite loss is never elected leader", "[algo][lsgd][nonfinite]") {
  const double bad = GENERATE(nan_loss, inf_loss);
  CAPTURE(bad);
  SECTION("non-finite at every step: every step skipped and counted") {
    const auto res = run(inject::always, bad);
    for (int r = 0; r < p; ++r) {
      const auto ur = static_cast<std::size_t>(r);
      CAPTURE(r);
      CHECK(res.leaders[ur].size() == static_cast<std::size_t>((steps - 1) / period));
      for (std::size_t k = 0; k < res.leaders[ur].size(); ++k) {
        CAPTURE(k);
        CHECK(res.leaders[ur][k] != best);
        CHECK(res.leaders[ur][k] >= 0);
        CHECK(res.leaders[ur][k] == res.leaders[0][k]);  // every worker agrees
      }
      CHECK(res.skipped[ur] == (r == best ? static_cast<std::uint64_t>(steps) : 0));
      CHECK(res.applied[ur] == (r == best ? 0 : static_cast<std::uint64_t>(steps)));
    }
    // The non-finite worker is still pulled toward the leader (its x moved although no step was applied).
    CHECK_FALSE(algo_test::bit_equal(res.x[best], start_of(best)));
  }
  SECTION("non-finite only at the election steps, score over that step alone") {
    const auto res = run(inject::at_elections, bad, false, 1);
    for (int r = 0; r < p; ++r) {
      const auto ur = static_cast<std::size_t>(r);
      CAPTURE(r);
      for (const int l : res.leaders[ur]) CHECK((l != best && l >= 0));
      CHECK(res.skipped[ur] == (r == best ? static_cast<std::uint64_t>((steps - 1) / period) : 0));
    }
  }
}

TEST_CASE("with every loss non-finite nobody is elected and nothing moves", "[algo][lsgd][nonfinite]") {
  const auto res = run(inject::always, nan_loss, true);
  for (int r = 0; r < p; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    CAPTURE(r);
    for (const int l : res.leaders[ur]) CHECK(l == -1);
    CHECK(res.skipped[ur] == static_cast<std::uint64_t>(steps));
    CHECK(algo_test::bit_equal(res.x[ur], start_of(r)));
  }
}

TEST_CASE("on_nonfinite = raise: the worker throws and run() rethrows it", "[algo][lsgd][nonfinite]") {
  tether::team team(p);
  bool threw = false;
  std::string what;
  try {
    team.run([&](tether::team::worker& w) {
      lsgd opt(w, n,
               {.lr = 0.1, .pull = {.period = period}, .on_nonfinite = tether::nonfinite_policy::raise});
      std::vector<float> x = start_of(w.rank());
      std::vector<float> g(n);
      for (int t = 0; t < steps; ++t) {
        double loss = problem().evaluate(x, g, {});
        if (w.rank() == best && t == 5) loss = nan_loss;
        opt.step(x, g, loss);
      }
    });
  } catch (const tether::aborted&) {
  } catch (const tether::runtime_error& e) {
    threw = true;
    what = e.what();
  }
  REQUIRE(threw);
  CHECK_THAT(what, Catch::Contains("non-finite loss"));
}
