// The synchronous algorithms on comm::mpi (1, 2 and 4 ranks) against the thread team: rank 0 runs the same
// problem, seeds and data partition on a tether::team of as many threads as there are ranks, and every
// rank's final parameters, rounds, leaders and byte counters are compared with its team counterpart.
//
// Tolerances: LSGD moves parameters only by broadcast (exact copies) and elects on losses computed the same
// way, so its results must be bit-identical. EASGD, local SGD and Overlap-Local-SGD add the workers'
// parameters; MPI may add them in another order than the team's rank order, so they agree up to
// floating-point reduction order: |x_mpi - x_team| <= 1e-5 * max(1, |x_team|) after the whole run.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "support.hpp"
#include "tether/algo/easgd.hpp"
#include "tether/algo/local_sgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/comm/shared_memory.hpp"
#include "tether/step/adagrad.hpp"
#include "tether/step/adam.hpp"
#include "tether/step/momentum.hpp"

using tether::comm::mpi;
using tether_mpi_test::outcome;
using worker = tether::team::worker;

namespace {

struct expectation {
  double tolerance = 0.0;     // relative, see the file comment; 0 = bit-identical
  bool same_counters = true;  // the byte counters equal the team's
};

/// Runs Opt on comm::mpi (every rank) and OptTeam on a team inside rank 0; compares rank by rank.
template <class Opt, class OptTeam, class Problem>
void compare_with_team(const Problem& problem, const typename Opt::options& o, int steps, expectation e,
                       int group_size = 0) {
  mpi c(MPI_COMM_WORLD, {.group_size = group_size});
  const outcome mine = tether_mpi_test::train<Opt>(c, problem, o, steps, 2024);
  const auto xs = tether_mpi_test::gather(mine.x);
  const auto st = tether_mpi_test::gather_stats(mine);
  if (c.rank() != 0) return;

  const int p = c.size();
  tether::team team(p, {.group_size = group_size});
  std::vector<outcome> ref(static_cast<std::size_t>(p));
  team.run([&](worker& w) {
    ref[static_cast<std::size_t>(w.rank())] = tether_mpi_test::train<OptTeam>(w, problem, o, steps, 2024);
  });

  for (int r = 0; r < p; ++r) {
    const auto& a = xs[static_cast<std::size_t>(r)];
    const auto& b = ref[static_cast<std::size_t>(r)].x;
    INFO("rank " << r << " of " << p);
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double d = std::abs(double(a[i]) - double(b[i])) / std::max(1.0, std::abs(double(b[i])));
      worst = std::max(worst, d);
    }
    INFO("largest relative difference " << worst);
    if (e.tolerance == 0.0)
      CHECK(a == b);
    else
      CHECK(worst <= e.tolerance);
    const auto want = tether_mpi_test::stats_row(ref[static_cast<std::size_t>(r)]);
    const auto& got = st[static_cast<std::size_t>(r)];
    CHECK(got[0] == want[0]);  // steps
    CHECK(got[1] == want[1]);  // rounds
    CHECK(got[2] == want[2]);  // leader changes
    CHECK(got[3] == want[3]);  // last leader
    if (e.same_counters) {
      CHECK(got[4] == want[4]);  // bytes sent
      CHECK(got[5] == want[5]);  // bytes received
    }
  }
}

const tether::problems::quadratic<float> noisy_quadratic(64, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 5});
// 20'000 parameters (80 KB): comm::mpi sums them with its ring all-reduce (comm/mpi/ring.hpp).
const tether::problems::quadratic<float> wide_quadratic(20'000, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 6});
const tether::problems::logistic<float> logistic_problem({.samples = 512, .features = 15, .l2 = 1e-3, .seed = 9});

}  // namespace

TEST_CASE("LSGD on comm::mpi equals LSGD on the thread team, bit for bit", "[mpi][lsgd]") {
  using opt = tether::algo::lsgd<mpi>;
  using opt_team = tether::algo::lsgd<worker>;
  const opt::options o{.lr = 0.05, .pull = {.period = 8, .strength = 0.2f, .jump = 0.1f, .score_window = 4}};
  compare_with_team<opt, opt_team>(noisy_quadratic, o, 120, {});
  compare_with_team<opt, opt_team>(logistic_problem, o, 120, {});
  compare_with_team<opt, opt_team>(wide_quadratic, o, 60, {});

  using opt_m = tether::algo::lsgd<mpi, tether::step::momentum>;
  using opt_m_team = tether::algo::lsgd<worker, tether::step::momentum>;
  const opt_m::options om{.lr = 0.02, .step = {.momentum = 0.9f, .nesterov = true}, .pull = {.period = 5}};
  compare_with_team<opt_m, opt_m_team>(noisy_quadratic, om, 100, {});
}

TEST_CASE("Grouped LSGD on comm::mpi groups equals the thread team's groups", "[mpi][lsgd]") {
  int p = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &p);
  using opt = tether::algo::lsgd_grouped<mpi>;
  using opt_team = tether::algo::lsgd_grouped<worker>;
  const opt::options o{.lr = 0.05,
                       .pull = {.period = 4, .strength = 0.2f, .global_period = 12, .global_strength = 0.1f,
                                .jump = 0.05f, .score_window = 4}};
  const int gs = p >= 2 ? 2 : 1;
  compare_with_team<opt, opt_team>(noisy_quadratic, o, 120, {}, gs);
  compare_with_team<opt, opt_team>(logistic_problem, o, 120, {}, gs);
}

TEST_CASE("EASGD on comm::mpi equals EASGD on the thread team up to reduction order", "[mpi][easgd]") {
  using opt = tether::algo::easgd<mpi>;
  using opt_team = tether::algo::easgd<worker>;
  const opt::options o{.lr = 0.05, .pull = {.period = 5, .beta = 0.9f}};
  compare_with_team<opt, opt_team>(noisy_quadratic, o, 120, {.tolerance = 1e-5});
  compare_with_team<opt, opt_team>(logistic_problem, o, 120, {.tolerance = 1e-5});
  compare_with_team<opt, opt_team>(wide_quadratic, o, 60, {.tolerance = 1e-5});
}

TEST_CASE("Local SGD on comm::mpi equals local SGD on the thread team up to reduction order", "[mpi][local_sgd]") {
  using opt = tether::algo::local_sgd<mpi>;
  using opt_team = tether::algo::local_sgd<worker>;
  const opt::options o{.lr = 0.05, .pull = {.period = 6, .warmup = 5}};
  compare_with_team<opt, opt_team>(noisy_quadratic, o, 100, {.tolerance = 1e-5});
  compare_with_team<opt, opt_team>(logistic_problem, o, 100, {.tolerance = 1e-5});
  compare_with_team<opt, opt_team>(wide_quadratic, o, 60, {.tolerance = 1e-5});
}

TEST_CASE("Overlap-Local-SGD on comm::mpi equals the thread team's up to reduction order", "[mpi][overlap]") {
  using opt = tether::algo::overlap_local_sgd<mpi>;
  using opt_team = tether::algo::overlap_local_sgd<worker>;
  const opt::options o{.lr = 0.05, .pull = {.period = 6, .alpha = 0.3f, .momentum = 0.2f}};
  // The team counts a non-blocking all-reduce as N*s each way, comm::mpi as an all-reduce (docs/mpi.md).
  compare_with_team<opt, opt_team>(noisy_quadratic, o, 100, {.tolerance = 1e-5, .same_counters = false});

  // comm::mpi's counters follow the all-reduce model: 2*(N - N/p)*s per round, and one at the start.
  mpi c(MPI_COMM_WORLD);
  const outcome mine = tether_mpi_test::train<opt>(c, noisy_quadratic, o, 100, 7);
  const std::uint64_t n = noisy_quadratic.dimension();
  const std::uint64_t p = static_cast<std::uint64_t>(c.size());
  const std::uint64_t per_round = 2 * (n - n / p) * sizeof(float);
  CHECK(mine.stats.rounds == 99 / 6);
  CHECK(mine.counters.bytes_sent == (mine.stats.rounds + 1) * per_round);
  CHECK(mine.counters.bytes_received == (mine.stats.rounds + 1) * per_round);
}

TEST_CASE("Ranks that disagree on the parameter count or the options fail at construction", "[mpi][consistency]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::lsgd<mpi>;
  // Agreeing ranks; a logging callback on rank 0 only is not a disagreement.
  opt::options o{.lr = 0.1};
  if (c.rank() == 0) o.on_round = [](const tether::worker_stats&) {};
  CHECK_NOTHROW(opt(c, 10, o));
  if (c.size() == 1) return;

  CHECK_THROWS_WITH(opt(c, 10 + static_cast<std::size_t>(c.rank() == 1), {.lr = 0.1}),
                    Catch::Contains("ranks disagree on the parameter count n") &&
                        Catch::Contains("rank 0 has 10, rank 1 has 11"));
  CHECK_THROWS_WITH(opt(c, 10, {.lr = c.rank() == 1 ? 0.2 : 0.1}),
                    Catch::Contains("ranks disagree on the optimizer options"));
  CHECK_THROWS_WITH(opt(c, 10, {.lr = 0.1, .pull = {.period = c.rank() == 1 ? 4u : 8u}}),
                    Catch::Contains("ranks disagree on the optimizer options"));
  // Nested options of any step policy count: Adam's beta2, Adagrad's eps, the schedule.
  using adam = tether::optimizer<tether::step::adam, tether::pull::elastic, mpi>;
  CHECK_THROWS_WITH(adam(c, 10, {.lr = 0.1, .step = {.beta2 = c.rank() == 1 ? 0.99f : 0.999f}}),
                    Catch::Contains("ranks disagree on the optimizer options"));
  CHECK_NOTHROW(adam(c, 10, {.lr = 0.1, .step = {.beta2 = 0.99f}}));
  using adagrad = tether::optimizer<tether::step::adagrad, tether::pull::anchor, mpi>;
  CHECK_THROWS_WITH(adagrad(c, 10, {.lr = 0.1, .step = {.eps = c.rank() == 1 ? 1e-6f : 1e-10f}}),
                    Catch::Contains("ranks disagree on the optimizer options"));
  opt::options decayed{.lr = 0.1};
  decayed.schedule = tether::schedule::step_decay(c.rank() == 1 ? 100 : 200, 0.5);
  CHECK_THROWS_WITH(opt(c, 10, decayed), Catch::Contains("ranks disagree on the optimizer options"));
  // Bad options that every rank shares: the ordinary argument check, on every rank.
  CHECK_THROWS_WITH(opt(c, 10, {.lr = -1.0}), Catch::Contains("lr must be finite and >= 0"));
  // The communicator is still usable.
  std::vector<float> v{1.0f};
  c.allreduce_sum(std::span<float>(v));
  CHECK(v[0] == static_cast<float>(c.size()));
}
