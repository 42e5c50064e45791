// comm::hierarchical under mpiexec: 2 threads inside each of 1 or 2 ranks. Collectives against closed forms
// over the global worker ranks, node and configured groups, counters, consistency checks, and the
// synchronous algorithms against a thread team of ranks*threads workers (rank 0 runs the reference):
// LSGD and grouped LSGD bit-identical (broadcasts only), EASGD and Overlap-Local-SGD within 1e-5 relative
// (the all-reduce adds in another order than the team's rank order).
#include <catch2/catch.hpp>

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

#include "support.hpp"
#include "tether/algo/easgd.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/overlap_local_sgd.hpp"
#include "tether/comm/hierarchical.hpp"
#include "tether/comm/shared_memory.hpp"
#include "tether/core/concepts.hpp"

using tether::comm::hierarchical;
using hworker = hierarchical::worker;
using tether_mpi_test::outcome;
using tether_mpi_test::world_size;

static_assert(tether::communicator<hworker>, "hierarchical::worker must satisfy tether::communicator");

namespace {

constexpr int threads = 2;

double value(int worker, std::size_t i) { return static_cast<double>((worker + 1) * static_cast<int>(i % 31)) + 0.25 * worker; }

}  // namespace

/// Reports what the workers recorded (on the test's thread).
static void report(const tether_mpi_test::recorder& rec) {
  for (const auto& f : rec.failures()) FAIL_CHECK(f);
  CHECK(rec.checked() > 0);
}

TEST_CASE("hierarchical: global ranks, all-reduce, broadcast and elections over threads x ranks", "[hierarchical]") {
  const double timeout = GENERATE(0.0, 30.0);
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .timeout = timeout});
  const int p = world_size() * threads;
  REQUIRE(h.size() == p);
  std::mutex m;
  std::vector<int> seen;
  tether_mpi_test::recorder rec;
  h.run([&](hworker& w) {
    const int me = w.rank();
    rec.equal(w.size(), p, "size()", me);
    rec.equal(w.rank(), h.network().rank() * threads + w.thread(), "rank()", me);
    {
      std::lock_guard lk(m);
      seen.push_back(w.rank());
    }

    std::vector<double> x(70);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = value(w.rank(), i);
    w.allreduce_sum(std::span<double>(x));
    for (std::size_t i = 0; i < x.size(); ++i) {
      double s = 0;
      for (int r = 0; r < p; ++r) s += value(r, i);
      rec.equal(x[i], s, "allreduce_sum", me);
    }

    std::vector<float> send(40), recv(40);
    for (std::size_t i = 0; i < send.size(); ++i) send[i] = static_cast<float>(value(w.rank(), i));
    {
      auto r = w.iallreduce_sum(std::span<const float>(send), std::span<float>(recv));
      r.wait();
    }
    for (std::size_t i = 0; i < recv.size(); ++i) {
      double s = 0;
      for (int r = 0; r < p; ++r) s += value(r, i);
      rec.equal(recv[i], static_cast<float>(s), "iallreduce_sum", me);
    }

    for (int root = 0; root < p; ++root) {
      std::vector<double> y(25);
      for (std::size_t i = 0; i < y.size(); ++i) y[i] = value(w.rank(), i);
      w.broadcast(std::span<double>(y), root);
      for (std::size_t i = 0; i < y.size(); ++i) rec.equal(y[i], value(root, i), "broadcast", me);
    }

    // Scores 7 - (rank / 2): the two highest ranks tie; the lower of them wins (thread 0 of the last rank).
    auto e = w.min_loc(7.0f - static_cast<float>(w.rank() / 2));
    rec.equal(e.rank, (p - 1) / 2 * 2, "min_loc with a tie: rank", me);
    rec.equal(e.score, 7.0f - static_cast<float>((p - 1) / 2), "min_loc with a tie: score", me);
    // The best score is a NaN on one worker, finite on the others: a finite one wins.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    e = w.min_loc(w.rank() == p - 1 ? nan : 3.0f + static_cast<float>(w.rank()));
    rec.equal(e.rank, 0, "min_loc, NaN on the last worker", me);
    e = w.min_loc(w.rank() == 0 ? nan : 3.0f - static_cast<float>(w.rank()));
    rec.equal(e.rank, p > 1 ? p - 1 : -1, "min_loc, NaN on worker 0", me);
    e = w.min_loc(nan);
    rec.equal(e.rank, -1, "min_loc, no finite score", me);
    w.barrier();
  });
  report(rec);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<int>{h.network().rank() * threads, h.network().rank() * threads + 1});
}

TEST_CASE("hierarchical: groups are the workers of a node, or of group_size ranks", "[hierarchical]") {
  const int ranks = world_size();
  tether_mpi_test::recorder rec;
  // Default: every rank of these tests shares one node, so the group is every worker.
  hierarchical node(MPI_COMM_WORLD, {.threads = threads});
  node.run([&](hworker& w) {
    rec.is_true(&w.group() == &w, "node group is the worker itself", w.rank());
    rec.equal(w.group_count(), 1, "group_count()", w.rank());
  });

  // One rank per group: a group is the threads of one process.
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .group_size = 1});
  h.run([&](hworker& w) {
    const int me = w.rank();
    auto& g = w.group();
    rec.equal(g.size(), threads, "group size()", me);
    rec.equal(g.rank(), w.thread(), "group rank()", me);
    rec.equal(w.group_count(), ranks, "group_count()", me);
    rec.equal(w.group_id(), h.network().rank(), "group_id()", me);
    rec.is_true(&g.group() == &g, "a group's group is itself", me);
    std::vector<double> v{static_cast<double>(w.rank())};
    g.allreduce_sum(std::span<double>(v));
    const double first = h.network().rank() * threads;
    rec.equal(v[0], first + first + 1, "group allreduce_sum", me);
    std::vector<double> b{static_cast<double>(w.rank())};
    g.broadcast(std::span<double>(b), 1);
    rec.equal(b[0], first + 1, "group broadcast", me);
    auto e = g.min_loc(static_cast<float>(-w.thread()));
    rec.equal(e.rank, 1, "group min_loc", me);
    // The whole team is still reachable through the world handle.
    std::vector<double> all{1.0};
    w.allreduce_sum(std::span<double>(all));
    rec.equal(all[0], static_cast<double>(ranks * threads), "world allreduce_sum", me);
  });
  report(rec);
}

TEST_CASE("hierarchical: counters add the team's traffic and, on thread 0, the MPI traffic", "[hierarchical]") {
  hierarchical h(MPI_COMM_WORLD, {.threads = threads});
  const std::uint64_t ranks = static_cast<std::uint64_t>(h.ranks());
  const std::uint64_t t = threads;
  tether_mpi_test::recorder rec;
  h.run([&](hworker& w) {
    const std::uint64_t n = 40;  // divisible by the threads and the ranks
    std::vector<float> x(n, 1.0f);
    w.allreduce_sum(std::span<float>(x));
    const std::uint64_t s = sizeof(float);
    const std::uint64_t team_ar = 2 * (n - n / t) * s;
    const std::uint64_t net_ar = w.thread() == 0 ? 2 * (n - n / ranks) * s : 0;
    const std::uint64_t bsent = w.thread() == 0 ? (t - 1) * n * s : 0;
    const std::uint64_t brecv = w.thread() == 0 ? 0 : n * s;
    rec.equal(w.counters().bytes_sent, team_ar + net_ar + bsent, "bytes_sent", w.rank());
    rec.equal(w.counters().bytes_received, team_ar + net_ar + brecv, "bytes_received", w.rank());
    rec.equal(w.counters().collectives, std::uint64_t{1}, "collectives", w.rank());
  });
  report(rec);
}

TEST_CASE("hierarchical: threads or ranks that disagree fail on every worker", "[hierarchical]") {
  hierarchical h(MPI_COMM_WORLD, {.threads = threads});
  h.run([&](hworker& w) { w.check_consistent(5, "five"); });
  CHECK_THROWS_WITH(h.run([&](hworker& w) { w.check_consistent(static_cast<std::uint64_t>(w.thread()), "the thread"); }),
                    Catch::Contains("disagree on"));
  if (h.ranks() > 1) {
    CHECK_THROWS_WITH(
        h.run([&](hworker& w) { w.check_consistent(static_cast<std::uint64_t>(h.network().rank()), "the rank"); }),
        Catch::Contains("ranks disagree on the rank"));
    // The optimizer's check: parameter counts that differ between ranks.
    CHECK_THROWS_WITH(h.run([&](hworker& w) {
      tether::algo::lsgd<hworker> opt(w, 10 + static_cast<std::size_t>(h.network().rank()), {.lr = 0.1});
    }),
                      Catch::Contains("ranks disagree on the parameter count n"));
  }
  // Still usable.
  std::vector<float> sums(threads);
  h.run([&](hworker& w) {
    std::vector<float> v{1.0f};
    w.allreduce_sum(std::span<float>(v));
    sums[static_cast<std::size_t>(w.thread())] = v[0];
  });
  for (float v : sums) CHECK(v == static_cast<float>(h.size()));
}

namespace {

const tether::problems::quadratic<float> quad(48, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 3});
const tether::problems::logistic<float> logit({.samples = 512, .features = 11, .l2 = 1e-3, .seed = 4});

/// Opt on comm::hierarchical (threads x ranks) against OptTeam on a team of ranks*threads threads in rank 0.
template <class Opt, class OptTeam, class Problem>
void compare_with_team(const Problem& problem, const typename Opt::options& o, double tolerance, int group_size = 0) {
  hierarchical h(MPI_COMM_WORLD, {.threads = threads, .group_size = group_size});
  std::vector<outcome> mine(threads);
  h.run([&](hworker& w) {
    mine[static_cast<std::size_t>(w.thread())] = tether_mpi_test::train<Opt>(w, problem, o, 100, 77);
  });
  std::vector<float> flat;
  for (const auto& m : mine) flat.insert(flat.end(), m.x.begin(), m.x.end());
  const auto all = tether_mpi_test::gather(flat);
  if (h.network().rank() != 0) return;

  const int p = h.size();
  // The team's groups: the threads of group_size ranks.
  tether::team team(p, {.group_size = group_size == 0 ? 0 : group_size * threads});
  std::vector<outcome> ref(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    ref[static_cast<std::size_t>(w.rank())] = tether_mpi_test::train<OptTeam>(w, problem, o, 100, 77);
  });
  const std::size_t n = problem.dimension();
  for (int r = 0; r < p; ++r) {
    const auto& block = all[static_cast<std::size_t>(r / threads)];
    const std::vector<float> a(block.begin() + static_cast<std::ptrdiff_t>(n * static_cast<std::size_t>(r % threads)),
                               block.begin() + static_cast<std::ptrdiff_t>(n * static_cast<std::size_t>(r % threads + 1)));
    const auto& b = ref[static_cast<std::size_t>(r)].x;
    double worst = 0;
    for (std::size_t i = 0; i < n; ++i)
      worst = std::max(worst, std::abs(double(a[i]) - double(b[i])) / std::max(1.0, std::abs(double(b[i]))));
    INFO("worker " << r << " of " << p << ": largest relative difference " << worst);
    if (tolerance == 0.0)
      CHECK(a == b);
    else
      CHECK(worst <= tolerance);
  }
  // Rank 0's workers also agree on the rounds and the leader.
  for (int t = 0; t < threads; ++t) {
    CHECK(mine[static_cast<std::size_t>(t)].stats.rounds == ref[static_cast<std::size_t>(t)].stats.rounds);
    CHECK(mine[static_cast<std::size_t>(t)].stats.leader == ref[static_cast<std::size_t>(t)].stats.leader);
  }
}

}  // namespace

TEST_CASE("LSGD on threads x ranks equals LSGD on a team of as many threads", "[hierarchical][lsgd]") {
  using opt = tether::algo::lsgd<hworker>;
  using opt_team = tether::algo::lsgd<tether::team::worker>;
  const opt::options o{.lr = 0.05, .pull = {.period = 6, .strength = 0.2f, .jump = 0.1f, .score_window = 3}};
  compare_with_team<opt, opt_team>(quad, o, 0.0);
  compare_with_team<opt, opt_team>(logit, o, 0.0);
}

TEST_CASE("Grouped LSGD: local leaders inside a process, the global leader across", "[hierarchical][lsgd]") {
  using opt = tether::algo::lsgd_grouped<hworker>;
  using opt_team = tether::algo::lsgd_grouped<tether::team::worker>;
  const opt::options o{.lr = 0.05,
                       .pull = {.period = 3, .strength = 0.2f, .global_period = 9, .global_strength = 0.1f,
                                .score_window = 3}};
  compare_with_team<opt, opt_team>(quad, o, 0.0, 1);
  compare_with_team<opt, opt_team>(logit, o, 0.0, 1);
}

TEST_CASE("EASGD and Overlap-Local-SGD on threads x ranks equal the team's up to reduction order",
          "[hierarchical][easgd]") {
  using opt = tether::algo::easgd<hworker>;
  using opt_team = tether::algo::easgd<tether::team::worker>;
  compare_with_team<opt, opt_team>(quad, {.lr = 0.05, .pull = {.period = 4}}, 1e-5);
  compare_with_team<opt, opt_team>(logit, {.lr = 0.05, .pull = {.period = 4}}, 1e-5);

  using ol = tether::algo::overlap_local_sgd<hworker>;
  using ol_team = tether::algo::overlap_local_sgd<tether::team::worker>;
  compare_with_team<ol, ol_team>(quad, {.lr = 0.05, .pull = {.period = 5, .alpha = 0.3f}}, 1e-5);
}
