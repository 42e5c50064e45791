// comm::mpi and comm::hierarchical agree on the validity of their options before any collective that could
// hang (issue 13, item 3): a rank with a NaN timeout, a negative group size or no threads makes every rank raise
// the same tether::error naming that rank, the option and its value. Before the agreement the bad rank threw
// alone and the others waited forever in MPI_Comm_dup (bounded here by the test's CTest timeout). Every rank
// checks its own message; the job's exit status is the worst over the ranks.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <limits>
#include <span>
#include <string>
#include <vector>

#include "support.hpp"
#include "tether/comm/hierarchical.hpp"
#include "tether/comm/mpi.hpp"

using tether::comm::hierarchical;
using tether::comm::mpi;
using tether_mpi_test::world_rank;
using tether_mpi_test::world_size;

namespace {

// The world still works after a refused construction: nothing is left pending on it.
void check_world_still_usable() {
  mpi c(MPI_COMM_WORLD, {.timeout = 30.0});
  std::vector<int> v{1};
  c.allreduce_sum(std::span<int>(v));
  CHECK(v[0] == world_size());
}

}  // namespace

TEST_CASE("comm::mpi: a NaN timeout on the last rank is refused on every rank, naming rank, option and value",
          "[mpi][agreement]") {
  const int bad = world_size() - 1;
  tether::comm::mpi_options o{.timeout = 20.0};
  if (world_rank() == bad) o.timeout = std::numeric_limits<double>::quiet_NaN();
  const std::string expected = "comm::mpi: rank " + std::to_string(bad) + " has an invalid option: timeout = nan";
  CHECK_THROWS_AS(mpi(MPI_COMM_WORLD, o), tether::error);
  CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, o), Catch::Contains(expected) && Catch::Contains("number of seconds"));
  check_world_still_usable();
}

TEST_CASE("comm::mpi: a negative group size on rank 0 is refused on every rank", "[mpi][agreement]") {
  tether::comm::mpi_options o{.timeout = 20.0};
  if (world_rank() == 0) o.group_size = -3;
  CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, o),
                    Catch::Contains("comm::mpi: rank 0 has an invalid option: group_size = -3") &&
                        Catch::Contains("must be >= 0"));
  check_world_still_usable();
}

TEST_CASE("comm::mpi: when several ranks have bad options, every rank names the lowest and counts the others",
          "[mpi][agreement]") {
  tether::comm::mpi_options o{.timeout = 20.0};
  o.group_size = -1 - world_rank();  // every rank is wrong, each with its own value
  const int p = world_size();
  const std::string others = p == 1   ? std::string()
                             : p == 2 ? std::string("; 1 more rank has an invalid option")
                                      : "; " + std::to_string(p - 1) + " more ranks have an invalid option";
  CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, o),
                    Catch::Contains("rank 0 has an invalid option: group_size = -1 (") && Catch::EndsWith(")" + others));
  check_world_still_usable();
}

TEST_CASE("comm::mpi: an invalid device_direct value on one rank is refused on every rank", "[mpi][agreement]") {
  tether::comm::mpi_options o{.timeout = 20.0};
  if (world_rank() == world_size() - 1) o.device_direct = static_cast<tether::comm::mpi_device_direct>(7);
  CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, o),
                    Catch::Contains("rank " + std::to_string(world_size() - 1) +
                                    " has an invalid option: device_direct = 7"));
  check_world_still_usable();
}

TEST_CASE("comm::hierarchical: no threads, a NaN timeout or a negative group size on one rank fails on every rank",
          "[mpi][hierarchical][agreement]") {
  const int bad = world_size() - 1;
  const bool me = world_rank() == bad;
  const std::string who = "comm::hierarchical: rank " + std::to_string(bad) + " has an invalid option: ";

  CHECK_THROWS_WITH(hierarchical(MPI_COMM_WORLD, {.threads = me ? 0 : 2, .timeout = 20.0}),
                    Catch::Contains(who + "threads = 0") && Catch::Contains("must be >= 1"));
  CHECK_THROWS_WITH(hierarchical(MPI_COMM_WORLD, {.threads = 2,
                                                  .timeout = me ? std::numeric_limits<double>::quiet_NaN() : 20.0}),
                    Catch::Contains(who + "timeout = nan"));
  CHECK_THROWS_WITH(hierarchical(MPI_COMM_WORLD, {.threads = 2, .group_size = me ? -2 : 0, .timeout = 20.0}),
                    Catch::Contains(who + "group_size = -2"));
  check_world_still_usable();
}
