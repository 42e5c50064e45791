// Symmetry breaking on the symmetric double well f(x) = 1/4 sum (x_i^2 - 1)^2 (minima at +-1, a stationary
// point at 0). Four workers start two at +0.5 and two at -0.5 (two wells, same loss).
//
// LSGD: every round all workers are pulled toward one leader, so the workers of the other well are dragged
// over the barrier and everyone ends in the leader's well (|x| ~ 1, one sign).
//
// Local SGD (averaging): started symmetrically, each worker's trajectory in the negative well is the exact
// mirror image of one in the positive well (x -> -x commutes with every operation of the step, and IEEE
// negation is exact), so the rank-order sum at an average is exactly 0. The mean is the stationary point
// x = 0, where the gradient x(x^2 - 1) is exactly 0, so after the first average every worker sits at 0
// forever: averaging stalls at the saddle, with loss n/4 instead of 0.

#include "algo_test_util.hpp"

#include <tether/algo/local_sgd.hpp>
#include <tether/algo/lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/problems/double_well.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using well = tether::problems::double_well<float>;
constexpr std::size_t n = 3;
constexpr int p = 4;
constexpr int steps = 400;
constexpr double lr = 0.1;

/// What one worker ended with.
struct outcome {
  std::vector<float> x;
  int leader = -2;        // the leader at the end
  int first_leader = -2;  // the winner of the first election
  std::uint64_t rounds = 0;
};

template <class Opt, class Options>
std::vector<outcome> train(const std::vector<float>& starts, Options o) {
  const well problem(n);
  tether::team team(p);
  std::vector<outcome> out(p);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    Opt opt(w, n, o);
    std::vector<float> x(n, starts[me]);
    std::vector<float> g(n);
    for (int t = 0; t < steps; ++t) {
      const double loss = problem.evaluate(x, g, {});
      opt.step(x, g, loss);
      if constexpr (requires { opt.pull_policy().leader(); })
        if (out[me].first_leader == -2 && opt.pull_policy().leader() >= 0)
          out[me].first_leader = opt.pull_policy().leader();
    }
    out[me].x = x;
    if constexpr (requires { opt.pull_policy().leader(); }) out[me].leader = opt.pull_policy().leader();
    out[me].rounds = opt.stats().rounds;
  });
  return out;
}

/// Every coordinate of every worker is within `tol` of `well_sign * 1`.
bool all_in_well(const std::vector<outcome>& out, float well_sign, double tol) {
  for (const auto& o : out)
    for (const float v : o.x)
      if (!(std::abs(double(v) - double(well_sign)) < tol)) return false;
  return true;
}

}  // namespace

TEST_CASE("LSGD breaks the symmetry of a double well: all workers end in one well", "[algo][lsgd]") {
  using lsgd = tether::algo::lsgd<tether::team::worker>;
  // LSGD's proximal pull 0.1 per round of 4 steps plus a jump c = 0.3 at each round.
  const lsgd::options o{.lr = lr, .pull = {.period = 4, .strength = 0.1f, .jump = 0.3f}};

  SECTION("identical magnitudes: the tie goes to the lowest rank, whose well wins") {
    // Ranks 0 and 3 in the negative well, 1 and 2 in the positive one. Losses are exactly equal (mirror
    // trajectories), so every election is a tie won by rank 0.
    const auto out = train<lsgd>({-0.5f, 0.5f, 0.5f, -0.5f}, o);
    for (const auto& w : out) {
      CHECK(w.first_leader == 0);
      CHECK(w.leader == 0);
    }
    CHECK(all_in_well(out, -1.0f, 1e-3));
  }
  SECTION("tie, the other way round") {
    const auto out = train<lsgd>({0.5f, -0.5f, -0.5f, 0.5f}, o);
    CHECK(all_in_well(out, 1.0f, 1e-3));
  }
  SECTION("different magnitudes: the lower loss wins") {
    // |x| = 0.55 is closer to the bottom of its well than 0.5 (lower loss), so rank 2 wins the first
    // election. (Later, once everyone sits at the bottom of the same well, the losses tie and rank 0 leads.)
    const auto out = train<lsgd>({0.5f, 0.5f, -0.55f, -0.5f}, o);
    for (const auto& w : out) CHECK(w.first_leader == 2);
    CHECK(all_in_well(out, -1.0f, 1e-3));
  }
  SECTION("control: without the pull each worker stays in its own well") {
    const auto out =
        train<lsgd>({-0.5f, 0.5f, 0.5f, -0.5f},
                    lsgd::options{.lr = lr, .pull = {.period = 4, .strength = 0.0f, .jump = 0.0f}});
    CHECK(out[0].x[0] < -0.99f);
    CHECK(out[1].x[0] > 0.99f);
    CHECK(out[2].x[0] > 0.99f);
    CHECK(out[3].x[0] < -0.99f);
  }
}

TEST_CASE("local SGD started symmetrically stalls at the saddle x = 0", "[algo][local_sgd]") {
  using local_sgd = tether::algo::local_sgd<tether::team::worker>;
  const auto out =
      train<local_sgd>({-0.5f, 0.5f, 0.5f, -0.5f}, local_sgd::options{.lr = lr, .pull = {.period = 4}});
  const well problem(n);
  for (std::size_t r = 0; r < out.size(); ++r) {
    CAPTURE(r);
    CHECK(out[r].rounds == static_cast<std::uint64_t>(steps / 4));
    for (const float v : out[r].x) CHECK(v == 0.0f);
    // The loss at the saddle is n/4, far from the minimum 0 LSGD reaches.
    CHECK(problem.value(out[r].x) == Approx(0.25 * n));
  }
}
