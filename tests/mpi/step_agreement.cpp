// A rank that takes fewer steps than the others (issue 13, item 5). Before, it finished "successfully" while
// the others waited out their whole timeout and then blamed a dead rank. Now the ranks agree on their step
// counts in finish(): a rank waiting in a round that the finished rank never joins learns it at once (well
// inside the timeout, which is 20 s here so a regression fails the time bound instead of hanging), and every
// rank raises the same tether::error naming the rank that stopped early, its steps and the others'. Each rank
// checks its own message; the job's exit status is the worst over the ranks.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "tether/algo/easgd.hpp"
#include "tether/algo/local_sgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/comm/mpi.hpp"

using tether::comm::mpi;

namespace {

constexpr double timeout_s = 20.0;

struct outcome {
  std::string error;  // empty: the run ended without an error
  double seconds = 0;
};

// `steps` steps of Opt on a 12-parameter quadratic (g = x - 1, loss = |x - 1|^2 / 2), then finish().
template <class Opt>
outcome run(mpi& c, const typename Opt::options& o, int steps) {
  const auto t0 = std::chrono::steady_clock::now();
  outcome out;
  try {
    Opt opt(c, 12, o);
    std::vector<float> x(12, static_cast<float>(c.rank()));
    std::vector<float> g(12);
    for (int t = 0; t < steps; ++t) {
      double loss = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        g[i] = x[i] - 1.0f;
        loss += 0.5 * double(g[i]) * double(g[i]);
      }
      opt.step(x, g, loss);
    }
    opt.finish(x);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::string me(const mpi& c) { return "tether: rank " + std::to_string(c.rank()) + ": "; }

}  // namespace

TEST_CASE("LSGD: a rank that stops early makes every rank fail at once, naming it and the steps",
          "[mpi][agreement][lsgd]") {
  mpi c(MPI_COMM_WORLD, {.timeout = timeout_s});
  if (c.size() < 2) return;
  const int early = c.size() - 1;
  // A round at every 0-based step t > 0 with t % 4 == 0: the early rank's 5 steps (t = 0..4) end with the round
  // of t = 4; the others wait in the round of t = 8, their 9th step, which the early rank never joins.
  const auto r = run<tether::algo::lsgd<mpi>>(c, {.lr = 0.1, .pull = {.period = 4}}, c.rank() == early ? 5 : 10);
  INFO(r.error);
  CHECK_THAT(r.error, Catch::StartsWith(me(c)));
  CHECK_THAT(r.error, Catch::Contains("rank " + std::to_string(early) +
                                      " stopped early: it finished its run after 5 steps, while rank 0 reached "
                                      "step 9"));
  CHECK_THAT(r.error, Catch::Contains("rank 0 9 (waiting in a collective)") &&
                          Catch::Contains("rank " + std::to_string(early) + " 5 (finished)"));
  CHECK(r.seconds < timeout_s / 2);
}

TEST_CASE("Local SGD and EASGD: a rank that stops early is named, whether or not a round is pending",
          "[mpi][agreement]") {
  if (mpi(MPI_COMM_WORLD).size() < 2) return;
  // A communicator whose agreement failed is unusable (like one that timed out): one per run.
  mpi c(MPI_COMM_WORLD, {.timeout = timeout_s});
  const int early = c.size() - 1;
  const std::string named = "rank " + std::to_string(early) + " stopped early: it finished its run after 5 steps";
  // No round after step 4 for anybody: every rank reaches finish(), and the counts differ there.
  auto r = run<tether::algo::local_sgd<mpi>>(c, {.lr = 0.1, .pull = {.period = 4}}, c.rank() == early ? 5 : 6);
  CHECK_THAT(r.error, Catch::StartsWith(me(c)) && Catch::Contains(named + ", while rank 0 reached step 6"));
  CHECK(r.seconds < timeout_s / 2);
  // EASGD: rounds at t = 3, 6: the early rank (t = 0..4) ends after the round of t = 3, the others wait in the
  // round of t = 6, their 7th step.
  mpi c2(MPI_COMM_WORLD, {.timeout = timeout_s});
  r = run<tether::algo::easgd<mpi>>(c2, {.lr = 0.1, .pull = {.period = 3}}, c.rank() == early ? 5 : 9);
  CHECK_THAT(r.error, Catch::StartsWith(me(c)) && Catch::Contains(named + ", while rank 0 reached step 7"));
  CHECK(r.seconds < timeout_s / 2);
}

TEST_CASE("Overlap-Local-SGD: a rank that stops early is named", "[mpi][agreement][overlap]") {
  mpi c(MPI_COMM_WORLD, {.timeout = timeout_s});
  if (c.size() < 2) return;
  const int early = 0;  // the lowest rank this time
  const auto r =
      run<tether::algo::overlap_local_sgd<mpi>>(c, {.lr = 0.1, .pull = {.period = 2}}, c.rank() == early ? 3 : 11);
  CHECK_THAT(r.error, Catch::StartsWith(me(c)) &&
                          Catch::Contains("rank 0 stopped early: it finished its run after 3 steps, while rank 1 "
                                          "reached step"));
  CHECK(r.seconds < timeout_s / 2);
  // Rounds start at t = 2 and 4 and complete at the next round or in finish(): the others take 5 steps
  // (t = 0..4) and wait in finish() for the average started at t = 4, which rank 0 (t = 0..2) never joins.
  mpi c2(MPI_COMM_WORLD, {.timeout = timeout_s});
  const auto f =
      run<tether::algo::overlap_local_sgd<mpi>>(c2, {.lr = 0.1, .pull = {.period = 2}}, c.rank() == early ? 3 : 5);
  CHECK_THAT(f.error, Catch::StartsWith(me(c)) &&
                          Catch::Contains("rank 0 stopped early: it finished its run after 3 steps, while rank 1 "
                                          "reached step 5") &&
                          Catch::Contains("rank 1 5 (waiting in a collective)"));
  CHECK(f.seconds < timeout_s / 2);
}

TEST_CASE("Ranks that take the same steps finish without error, run after run on one communicator",
          "[mpi][agreement]") {
  mpi c(MPI_COMM_WORLD, {.timeout = timeout_s});
  for (int run_index = 0; run_index < 3; ++run_index) {
    const auto r = run<tether::algo::lsgd<mpi>>(c, {.lr = 0.1, .pull = {.period = 4}}, 10 + run_index);
    CHECK(r.error.empty());
  }
  // And the communicator still works.
  std::vector<int> v{1};
  c.allreduce_sum(std::span<int>(v));
  CHECK(v[0] == c.size());
}

TEST_CASE("Grouped LSGD: a rank that stops early is seen by its group's collectives and by the global ones",
          "[mpi][agreement][lsgd]") {
  // Needs two groups of two ranks: ranks {0, 1} and {2, 3}; rank 3 stops early.
  if (mpi(MPI_COMM_WORLD).size() != 4) return;
  mpi c(MPI_COMM_WORLD, {.timeout = timeout_s, .group_size = 2});
  // Local rounds (inside a group) at t = 2, 4, 6, 8; global rounds at t = 4, 8. Rank 3 takes t = 0..4. Rank 2
  // waits for it in its group's local round of t = 6 (its 7th step); ranks 0 and 1 complete their group's
  // rounds and wait in the global round of t = 8 (their 9th step).
  const auto r = run<tether::algo::lsgd_grouped<mpi>>(c, {.lr = 0.1, .pull = {.period = 2, .global_period = 4}},
                                                       c.rank() == 3 ? 5 : 10);
  CHECK_THAT(r.error, Catch::StartsWith(me(c)) &&
                          Catch::Contains("rank 3 stopped early: it finished its run after 5 steps, while rank 0 "
                                          "reached step 9") &&
                          Catch::Contains("rank 1 9 (waiting in a collective), rank 2 7 (waiting in a collective), "
                                          "rank 3 5 (finished)"));
  CHECK(r.seconds < timeout_s / 2);
}
