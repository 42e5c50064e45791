// Sandblaster L-BFGS on comm::mpi (1, 2 and 4 ranks): with the shards and portions fixed, the ranks' result
// is bit for bit the thread team's on one worker (run here on each rank as the reference); the quadratic's
// optimum to 1e-8; a slow rank (every rank sleeps 1 ms per portion, the last 10 ms) with backups gives the
// serial portion-order batch gradient exactly and backup copies are made; bad options and ranks that disagree
// fail on every rank with tether::error.

#include <catch2/catch.hpp>

#include <mpi.h>

#include <chrono>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "tether/comm/shared_memory.hpp"
#include "tether/core/shard_layout.hpp"
#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/logistic.hpp"
#include "tether/problems/quadratic.hpp"

using tether::comm::mpi;

namespace {

const tether::problems::logistic<double> logit({.samples = 1200, .features = 11, .l2 = 1e-3, .seed = 31});

struct slowed {
  const tether::problems::logistic<double>* data;
  std::chrono::microseconds delay{0};
  std::size_t dimension() const { return data->dimension(); }
  std::size_t samples() const { return data->samples(); }
  double evaluate(std::span<const double> x, std::span<double> g, const tether::batch& b) const {
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    return data->evaluate(x, g, b);
  }
};

/// The thread team's result on one worker.
std::vector<double> team_reference(const tether::lbfgs::options& o, tether::lbfgs::result& r) {
  std::vector<double> x(logit.dimension(), 0.0);
  tether::team team(1);
  team.run([&](tether::team::worker& w) { r = tether::lbfgs::minimize(w, logit, x, o); });
  return x;
}

}  // namespace

TEST_CASE("Sandblaster L-BFGS on MPI ranks gives the thread team's bits", "[lbfgs][mpi]") {
  mpi comm;
  const tether::lbfgs::options o{.history = 5, .epsilon = 1e-8, .portions = 9, .shards = 3, .timeout = 60.0};
  tether::lbfgs::result ref_r;
  const auto ref = team_reference(o, ref_r);
  REQUIRE(ref_r.status == tether::lbfgs::outcome::converged);
  std::vector<double> x(logit.dimension(), 0.0), g(x.size());
  auto copy = logit;
  const auto r = tether::algo::sandblaster_lbfgs(tether::exec::serial{}, comm, copy, x, g, o);
  CHECK(r.status == tether::lbfgs::outcome::converged);
  CHECK(std::memcmp(x.data(), ref.data(), x.size() * sizeof(double)) == 0);
  CHECK(r.iterations == ref_r.iterations);
  CHECK(r.function_evaluations == ref_r.function_evaluations);
  CHECK(r.portions == 9 * r.function_evaluations);
  if (comm.size() > 1) {
    CHECK(r.bytes_sent > 0);
    CHECK(r.coordinator_bytes > 0);
  }
}

TEST_CASE("Sandblaster L-BFGS on MPI: the quadratic's optimum to 1e-8", "[lbfgs][mpi]") {
  tether::problems::quadratic<double> q(300, {.a_min = 1.0, .a_max = 50.0, .seed = 4});
  // [snippet: sandblaster_mpi]
  // #include <tether/lbfgs/mpi.hpp>; link tether::mpi; run under mpiexec
  tether::comm::mpi comm;                     // every rank, after MPI_Init_thread
  std::vector<double> x(q.dimension(), 0.0);  // the same start point on every rank
  const auto r = tether::lbfgs::minimize(comm, q, x, {.history = 8, .epsilon = 1e-11, .timeout = 60.0});
  // [end snippet]
  CHECK(r.status == tether::lbfgs::outcome::converged);
  double err = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) err = std::max(err, std::abs(x[i] - q.optimum()[i]));
  CHECK(err < 1e-8);
}

TEST_CASE("Sandblaster L-BFGS on MPI: a slow rank with backups keeps the batch gradient exact",
          "[lbfgs][mpi]") {
  mpi comm;
  if (comm.size() < 2) return;
  constexpr std::size_t portions = 16;
  tether::lbfgs::options o{.history = 5,
                           .epsilon = 1e-8,
                           .portions = portions,
                           .shards = static_cast<std::size_t>(comm.size() - 1),
                           .queue_depth = 1,
                           .timeout = 60.0};
  o.backup_after = 1.0;
  slowed mine{&logit, comm.rank() == comm.size() - 1 ? std::chrono::microseconds(10000)
                                                     : std::chrono::microseconds(1000)};
  std::vector<double> x(logit.dimension(), 0.0), g(x.size());
  const auto r = tether::lbfgs::minimize(tether::exec::serial{}, comm, mine, x, g, o);
  REQUIRE(r.status == tether::lbfgs::outcome::converged);
  // The serial batch gradient at x, in portion order.
  const tether::shard_layout layout(logit.samples(), portions);
  std::vector<double> ref(x.size(), 0.0), gk(x.size());
  std::vector<std::size_t> idx;
  for (std::size_t k = 0; k < portions; ++k) {
    idx.resize(layout.count(k));
    std::iota(idx.begin(), idx.end(), layout.begin(k));
    (void)logit.evaluate(x, gk, {.samples = idx});
    const double w = static_cast<double>(layout.count(k)) / static_cast<double>(logit.samples());
    for (std::size_t i = 0; i < x.size(); ++i) ref[i] += w * gk[i];
  }
  CHECK(std::memcmp(g.data(), ref.data(), ref.size() * sizeof(double)) == 0);
  CHECK(r.portions == portions * r.function_evaluations);
  CHECK(r.backups > 0);
}

TEST_CASE("Sandblaster L-BFGS on MPI: bad input fails on every rank", "[lbfgs][mpi]") {
  mpi comm;
  std::vector<double> x(logit.dimension(), 0.0);
  auto copy = logit;
  std::string what;
  try {
    (void)tether::lbfgs::minimize(comm, copy, x, {.history = 0});
  } catch (const tether::error& e) {
    what = e.what();
  }
  CHECK(what.find("history (m) must be in [1, 32], got history = 0") != std::string::npos);
  what.clear();
  try {
    (void)tether::lbfgs::minimize(comm, copy, x, {.portions = comm.rank() == 0 ? 8u : 9u});
  } catch (const tether::error& e) {
    what = e.what();
  }
  if (comm.size() > 1)
    CHECK(what.find("disagree on the lbfgs::options") != std::string::npos);
  else
    CHECK(what.empty());
}
