// A worker that takes fewer steps than the others on comm::hierarchical (threads inside ranks; issue 13, item
// 5): (a) every thread of one rank, (b) one thread of a rank while its sibling threads and the other ranks go
// on. Every worker of every rank raises the same tether::error naming the worker that stopped early (its
// global index, rank and thread), its steps and the others', well inside the timeout (20 s here, so a
// regression fails the time bound instead of hanging). Each worker records its own outcome; the test's thread
// checks them.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "support.hpp"
#include "tether/algo/easgd.hpp"
#include "tether/algo/local_sgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/comm/hierarchical.hpp"

using tether::comm::hierarchical;
using hworker = hierarchical::worker;
using tether_mpi_test::world_rank;
using tether_mpi_test::world_size;

namespace {

constexpr double timeout_s = 20.0;
constexpr int threads = 2;

struct outcome {
  std::string error;  // empty: the run ended without an error
  double seconds = 0;
};

// Each worker of this rank: steps(rank, thread) steps of Opt on a 12-parameter quadratic (g = x - 1), then
// finish(). One outcome per thread of this rank.
template <class Opt>
std::vector<outcome> run(hierarchical& h, const typename Opt::options& o,
                         const std::function<int(int, int)>& steps) {
  std::vector<outcome> out(static_cast<std::size_t>(h.threads()));
  h.run([&](hworker& w) {
    const auto t0 = std::chrono::steady_clock::now();
    auto& mine = out[static_cast<std::size_t>(w.thread())];
    try {
      Opt opt(w, 12, o);
      std::vector<float> x(12, static_cast<float>(w.rank()));
      std::vector<float> g(12);
      const int k = steps(h.network().rank(), w.thread());
      for (int t = 0; t < k; ++t) {
        double loss = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
          g[i] = x[i] - 1.0f;
          loss += 0.5 * double(g[i]) * double(g[i]);
        }
        opt.step(x, g, loss);
      }
      opt.finish(x);
    } catch (const std::exception& e) {
      mine.error = e.what();
    }
    mine.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  return out;
}

// "worker 3 (rank 1, thread 1)"
std::string worker(int rank, int thread, int per_rank = threads) {
  return "worker " + std::to_string(rank * per_rank + thread) + " (rank " + std::to_string(rank) +
         ", thread " + std::to_string(thread) + ")";
}
std::string me(int thread) {
  return "tether: rank " + std::to_string(world_rank()) + ", thread " + std::to_string(thread) + ": ";
}

// Checks every thread's outcome: an error starting with its own name and containing each of `parts`, in time.
void check(const std::vector<outcome>& out, const std::vector<std::string>& parts) {
  for (int t = 0; t < static_cast<int>(out.size()); ++t) {
    const auto& r = out[static_cast<std::size_t>(t)];
    INFO("thread " << t << ": " << r.error << " (" << r.seconds << " s)");
    CHECK_THAT(r.error, Catch::StartsWith(me(t)));
    for (const auto& p : parts) CHECK_THAT(r.error, Catch::Contains(p));
    CHECK(r.seconds < timeout_s / 2);
  }
}

std::string stopped(int rank, int thread, int steps, int reached_rank, int reached_thread, int most) {
  return worker(rank, thread) + " stopped early: it finished its run after " + std::to_string(steps) +
         " steps, while " + worker(reached_rank, reached_thread) + " reached step " + std::to_string(most);
}

}  // namespace

TEST_CASE("hierarchical LSGD: a rank whose threads all stop early makes every worker fail at once",
          "[hierarchical][agreement][lsgd]") {
  if (world_size() < 2) return;
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
  const int early = h.ranks() - 1;
  // Rounds at t = 4, 8: the early rank's threads (t = 0..4) end after the round of t = 4; the others wait in
  // the round of t = 8, their 9th step, which the early rank never joins.
  const auto out = run<tether::algo::lsgd<hworker>>(h, {.lr = 0.1, .pull = {.period = 4}},
                                                    [&](int r, int) { return r == early ? 5 : 10; });
  check(out, {stopped(early, 0, 5, 0, 0, 9), worker(0, 0) + " 9 (waiting in a collective)",
              worker(0, 1) + " 9 (waiting in a collective)", worker(early, 0) + " 5 (finished)",
              worker(early, 1) + " 5 (finished)"});
}

TEST_CASE("hierarchical LSGD with one thread per rank: a rank that stops early is named",
          "[hierarchical][agreement][lsgd]") {
  if (world_size() < 2) return;
  hierarchical h(MPI_COMM_WORLD, {.threads = 1, .timeout = timeout_s});
  const int early = h.ranks() - 1;
  const auto out = run<tether::algo::lsgd<hworker>>(h, {.lr = 0.1, .pull = {.period = 4}},
                                                    [&](int r, int) { return r == early ? 5 : 10; });
  check(out, {worker(early, 0, 1) + " stopped early: it finished its run after 5 steps, while " +
                  worker(0, 0, 1) + " reached step 9",
              worker(0, 0, 1) + " 9 (waiting in a collective)", worker(early, 0, 1) + " 5 (finished)"});
}

TEST_CASE("hierarchical LSGD: one thread that stops early, while its sibling and the other ranks go on",
          "[hierarchical][agreement][lsgd]") {
  // Thread 1 of the last rank (not the thread that calls MPI), then thread 0 of rank 0 (the one that does).
  {
    hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
    const int early = h.ranks() - 1;
    const auto out = run<tether::algo::lsgd<hworker>>(
        h, {.lr = 0.1, .pull = {.period = 4}}, [&](int r, int t) { return r == early && t == 1 ? 5 : 10; });
    check(out, {stopped(early, 1, 5, 0, 0, 9), worker(early, 0) + " 9 (waiting in a collective)",
                worker(early, 1) + " 5 (finished)"});
  }
  {
    hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
    const auto out = run<tether::algo::lsgd<hworker>>(
        h, {.lr = 0.1, .pull = {.period = 4}}, [&](int r, int t) { return r == 0 && t == 0 ? 5 : 10; });
    check(out, {stopped(0, 0, 5, 0, 1, 9), worker(0, 0) + " 5 (finished)",
                worker(0, 1) + " 9 (waiting in a collective)"});
  }
}

TEST_CASE("hierarchical local SGD and EASGD: the early worker is named, whether or not a round is pending",
          "[hierarchical][agreement]") {
  const int last = world_size() - 1;
  // No round after step 4 for anybody: every worker reaches finish(), and the counts differ there.
  {
    hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
    const auto out = run<tether::algo::local_sgd<hworker>>(
        h, {.lr = 0.1, .pull = {.period = 4}}, [&](int r, int t) { return r == last && t == 1 ? 5 : 6; });
    check(out,
          {stopped(last, 1, 5, 0, 0, 6), worker(0, 0) + " 6 (finished)", worker(last, 1) + " 5 (finished)"});
  }
  // EASGD, rounds at t = 3, 6: every thread of the last rank (t = 0..4) ends after the round of t = 3; the
  // others wait in the round of t = 6, their 7th step.
  if (world_size() < 2) return;
  {
    hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
    const auto out = run<tether::algo::easgd<hworker>>(h, {.lr = 0.1, .pull = {.period = 3}},
                                                       [&](int r, int) { return r == last ? 5 : 9; });
    check(out, {stopped(last, 0, 5, 0, 0, 7), worker(0, 1) + " 7 (waiting in a collective)"});
  }
}

TEST_CASE("hierarchical Overlap-Local-SGD: a round in flight that waits for the early rank is released",
          "[hierarchical][agreement][overlap]") {
  if (world_size() < 2) return;
  // Rounds start at t = 2 and 4 and complete at the next round or in finish(): rank 1 takes 5 steps (t =
  // 0..4) and waits in finish() for the average started at t = 4, which rank 0 (t = 0..2) never joins.
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
  const auto out = run<tether::algo::overlap_local_sgd<hworker>>(h, {.lr = 0.1, .pull = {.period = 2}},
                                                                 [&](int r, int) { return r == 0 ? 3 : 5; });
  check(out, {stopped(0, 0, 3, 1, 0, 5), worker(1, 0) + " 5 (waiting in a collective)",
              worker(1, 1) + " 5 (waiting in a collective)"});
}

TEST_CASE(
    "hierarchical grouped LSGD: a thread that stops early is seen by its rank's local round and globally",
    "[hierarchical][agreement][lsgd]") {
  if (world_size() < 2) return;
  // A group per rank (its threads). Local rounds at t = 2, 4, 6, 8, global rounds at t = 4, 8. Thread 1 of
  // the last rank takes t = 0..4; its sibling waits for it in the local round of t = 6 (its 7th step); the
  // other ranks complete their local rounds and wait in the global round of t = 8 (their 9th step).
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .group_size = 1, .timeout = timeout_s});
  const int early = h.ranks() - 1;
  const auto out =
      run<tether::algo::lsgd_grouped<hworker>>(h, {.lr = 0.1, .pull = {.period = 2, .global_period = 4}},
                                               [&](int r, int t) { return r == early && t == 1 ? 5 : 10; });
  check(out, {stopped(early, 1, 5, 0, 0, 9), worker(0, 0) + " 9 (waiting in a collective)",
              worker(early, 0) + " 7 (waiting in a collective)", worker(early, 1) + " 5 (finished)"});
}

TEST_CASE("hierarchical: workers that take the same steps finish without error, run after run",
          "[hierarchical][agreement]") {
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout_s});
  for (int run_index = 0; run_index < 3; ++run_index) {
    const auto out = run<tether::algo::lsgd<hworker>>(h, {.lr = 0.1, .pull = {.period = 4}},
                                                      [&](int, int) { return 10 + run_index; });
    for (const auto& r : out) {
      INFO(r.error);
      CHECK(r.error.empty());
    }
  }
  // Two runs inside one h.run, and the communicator still works after them.
  std::vector<std::string> errors(threads);
  std::vector<float> sums(threads);
  h.run([&](hworker& w) {
    try {
      for (int k = 0; k < 2; ++k) {
        tether::algo::easgd<hworker> opt(w, 12, {.lr = 0.1, .pull = {.period = 3}});
        std::vector<float> x(12, 1.0f), g(12, 0.5f);
        for (int t = 0; t < 7; ++t) opt.step(x, g, 1.0);
        opt.finish(x);
      }
      std::vector<float> v{1.0f};
      w.allreduce_sum(std::span<float>(v));
      sums[static_cast<std::size_t>(w.thread())] = v[0];
    } catch (const std::exception& e) {
      errors[static_cast<std::size_t>(w.thread())] = e.what();
    }
  });
  for (int t = 0; t < threads; ++t) {
    INFO("thread " << t << ": " << errors[static_cast<std::size_t>(t)]);
    CHECK(errors[static_cast<std::size_t>(t)].empty());
    CHECK(sums[static_cast<std::size_t>(t)] == static_cast<float>(h.size()));
  }
}
