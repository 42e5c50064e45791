// Ranks whose options differ (issue 13, item 11): every rank's error names the first option that differs and
// both ranks' values, for every options aggregate that goes through the cross-rank check (comm::mpi's own,
// the optimizer's, SwarmSGD's, Downpour's, Sandblaster L-BFGS's). Before, the error listed two fingerprints.
// The expected field and values are written out from the options each rank was given.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <string>
#include <vector>

#include "support.hpp"
#include "tether/algo/downpour.hpp"
#include "tether/algo/lsgd.hpp"
#include "tether/algo/swarm_sgd.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/comm/mpi/pairwise.hpp"
#include "tether/lbfgs/mpi.hpp"
#include "tether/problems/quadratic.hpp"
#include "tether/ps/mpi_store.hpp"

using tether::comm::mpi;
using tether_mpi_test::world_rank;
using tether_mpi_test::world_size;

namespace {

template <class F>
std::string error_of(F&& make) {
  try {
    make();
  } catch (const tether::error& e) {
    return e.what();
  }
  return "(no tether::error)";
}

// What every rank must read: rank 0 against the last rank, which alone was given other options.
std::string expected(const char* what, const std::string& field, const std::string& rank0,
                     const std::string& last) {
  return std::string("ranks disagree on ") + what + ": the first option that differs is " + field + ": rank 0 has " +
         rank0 + ", rank " + std::to_string(world_size() - 1) + " has " + last;
}

bool last() { return world_rank() == world_size() - 1; }

}  // namespace

TEST_CASE("comm::mpi: options that differ name the field and both values", "[mpi][consistency]") {
  if (world_size() < 2) return;
  const auto e = error_of([] { mpi c(MPI_COMM_WORLD, {.timeout = 30.0, .max_count = last() ? 7u : 0u}); });
  CHECK_THAT(e, Catch::Contains(expected("the comm::mpi options", "max_count", "0", "7")));
  CHECK_THAT(e, Catch::StartsWith("tether: rank " + std::to_string(world_rank()) + ": "));
}

TEST_CASE("optimizer: a nested option that differs is named with its path", "[mpi][consistency]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 30.0});
  if (c.size() < 2) return;
  using opt_t = tether::algo::lsgd<mpi>;
  auto e = error_of([&] { opt_t opt(c, 10, {.lr = 0.1, .pull = {.period = last() ? 8u : 16u}}); });
  CHECK_THAT(e, Catch::Contains(expected("the optimizer options", "pull.period", "16", "8")));
  // Two fields differ: the first in declaration order is named (lr before pull).
  e = error_of([&] { opt_t opt(c, 10, {.lr = last() ? 0.5 : 0.25, .pull = {.strength = last() ? 0.3f : 0.1f}}); });
  CHECK_THAT(e, Catch::Contains(expected("the optimizer options", "lr", "0.25", "0.5")));
  // The schedule too.
  e = error_of([&] {
    opt_t opt(c, 10, {.schedule = last() ? tether::schedule::cosine(100) : tether::schedule::cosine(200)});
  });
  CHECK_THAT(e, Catch::Contains(expected("the optimizer options", "schedule.total", "200", "100")));
}

TEST_CASE("swarm_sgd: options that differ name the field and both values", "[mpi][consistency][swarm]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 30.0});
  if (c.size() < 2) return;
  const auto e = error_of([&] {
    tether::algo::swarm_sgd<mpi> opt(c, 16, {.local_steps = last() ? 3u : 1u, .timeout = 30});
  });
  CHECK_THAT(e, Catch::Contains(expected("the swarm_sgd options", "local_steps", "1", "3")));
}

TEST_CASE("downpour: options that differ name the field and both values", "[mpi][consistency][ps]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 30.0});
  if (c.size() < 2) return;
  using opt_t = tether::algo::downpour<mpi>;
  auto e = error_of([&] { opt_t opt(c, 16, {.n_push = last() ? 4u : 1u}); });
  CHECK_THAT(e, Catch::Contains(expected("the downpour options", "n_push", "1", "4")));
  e = error_of([&] { opt_t opt(c, 16, {.shard_step = {.eps = last() ? 1e-6f : 1e-10f}}); });
  CHECK_THAT(e, Catch::Contains(expected("the shard_step options", "eps", "1.00000001e-10", "9.99999997e-07")));
}

TEST_CASE("lbfgs: options that differ name the field and both values", "[mpi][consistency][lbfgs]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 30.0});
  if (c.size() < 2) return;
  tether::problems::quadratic<double> q(8, {.seed = 4});
  std::vector<double> x(8, 0.0);
  tether::lbfgs::options o{.history = 4, .timeout = 30.0};
  o.line_search.gtol = last() ? 0.8 : 0.9;
  const auto e = error_of([&] { (void)tether::lbfgs::minimize(c, q, x, o); });
  CHECK_THAT(e, Catch::Contains("disagree on the lbfgs::options: the first option that differs is line_search.gtol: "
                                "rank 0 has 0.90000000000000002, rank " +
                                std::to_string(c.size() - 1) + " has 0.80000000000000004"));
}
