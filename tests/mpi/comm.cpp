// comm::mpi under mpiexec (1, 2 and 4 ranks): every collective against closed-form references, the chunked
// path (max_count), both wait paths (polled with a timeout, plain blocking), groups, byte counters,
// consistency checks and the timeout of a collective that a rank does not join.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "support.hpp"
#include "tether/comm/mpi.hpp"
#include "tether/core/concepts.hpp"

using tether::comm::mpi;
using tether_mpi_test::world_rank;
using tether_mpi_test::world_size;

static_assert(tether::communicator<mpi>, "comm::mpi must satisfy tether::communicator");

namespace {

// Rank r's value at index i: small integers and halves, so every sum is exact in any order.
template <class T>
T value(int r, std::size_t i) {
  return static_cast<T>(static_cast<double>((r + 1) * static_cast<int>(i % 97)) + 0.5 * r);
}
template <class T>
T sum_over_ranks(int p, std::size_t i) {
  double s = 0;
  for (int r = 0; r < p; ++r) s += static_cast<double>((r + 1) * static_cast<int>(i % 97)) + 0.5 * r;
  return static_cast<T>(s);
}

}  // namespace

TEST_CASE("comm::mpi wraps a duplicate of the caller's communicator", "[mpi]") {
  mpi c(MPI_COMM_WORLD);
  CHECK(c.rank() == world_rank());
  CHECK(c.size() == world_size());
  int cmp = MPI_UNEQUAL;
  MPI_Comm_compare(c.native(), MPI_COMM_WORLD, &cmp);
  CHECK(cmp == MPI_CONGRUENT);
  MPI_Errhandler eh = MPI_ERRHANDLER_NULL;
  MPI_Comm_get_errhandler(c.native(), &eh);
  CHECK(eh == MPI_ERRORS_RETURN);
  MPI_Errhandler_free(&eh);

  // A second environment inside an initialised program does nothing and reports the level.
  tether::comm::mpi_environment again;
  CHECK_FALSE(again.owns());
  CHECK(again.provided() >= MPI_THREAD_SERIALIZED);
}

TEMPLATE_TEST_CASE("comm::mpi allreduce_sum sums in place", "[mpi]", float, double) {
  const double timeout = GENERATE(0.0, 30.0);          // plain blocking calls, and polled non-blocking ones
  const std::size_t max_count = GENERATE(0u, 7u);      // one call, and chunks of 7 elements
  mpi c(MPI_COMM_WORLD, {.timeout = timeout, .max_count = max_count});
  const std::size_t n = 100;
  std::vector<TestType> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = value<TestType>(c.rank(), i);
  const TestType* before = x.data();
  c.allreduce_sum(std::span<TestType>(x));
  CHECK(x.data() == before);
  for (std::size_t i = 0; i < n; ++i) REQUIRE(x[i] == sum_over_ranks<TestType>(c.size(), i));
}

TEST_CASE("comm::mpi allreduce_sum of integers and of an empty buffer", "[mpi]") {
  mpi c(MPI_COMM_WORLD);
  std::vector<std::int64_t> v{1, c.rank(), std::int64_t{1} << 40};
  c.allreduce_sum(std::span<std::int64_t>(v));
  const std::int64_t p = c.size();
  CHECK(v[0] == p);
  CHECK(v[1] == p * (p - 1) / 2);
  CHECK(v[2] == p * (std::int64_t{1} << 40));
  std::vector<float> none;
  c.allreduce_sum(std::span<float>(none));
}

TEMPLATE_TEST_CASE("comm::mpi iallreduce_sum completes into recv", "[mpi]", float, double) {
  const double timeout = GENERATE(0.0, 30.0);
  const std::size_t max_count = GENERATE(0u, 16u);
  mpi c(MPI_COMM_WORLD, {.timeout = timeout, .max_count = max_count});
  const std::size_t n = 50;
  std::vector<TestType> send(n), recv(n, TestType(-1));
  for (std::size_t i = 0; i < n; ++i) send[i] = value<TestType>(c.rank(), i);
  {
    tether::request r = c.iallreduce_sum(std::span<const TestType>(send), std::span<TestType>(recv));
    CHECK(r.active());
    while (!r.test()) {
    }
    r.wait();
    CHECK_FALSE(r.active());
  }
  for (std::size_t i = 0; i < n; ++i) REQUIRE(recv[i] == sum_over_ranks<TestType>(c.size(), i));
  for (std::size_t i = 0; i < n; ++i) REQUIRE(send[i] == value<TestType>(c.rank(), i));

  // In place (send and recv the same buffer); the destructor of the request waits.
  { auto r = c.iallreduce_sum(std::span<const TestType>(send), std::span<TestType>(send)); }
  for (std::size_t i = 0; i < n; ++i) REQUIRE(send[i] == sum_over_ranks<TestType>(c.size(), i));

  std::vector<TestType> shorter(n - 1);
  CHECK_THROWS_AS(c.iallreduce_sum(std::span<const TestType>(send), std::span<TestType>(shorter)), tether::error);
}

TEST_CASE("comm::mpi broadcast copies the root's buffer", "[mpi]") {
  const double timeout = GENERATE(0.0, 30.0);
  const std::size_t max_count = GENERATE(0u, 9u);
  mpi c(MPI_COMM_WORLD, {.timeout = timeout, .max_count = max_count});
  for (int root = 0; root < c.size(); ++root) {
    std::vector<double> x(40);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = value<double>(c.rank(), i);
    c.broadcast(std::span<double>(x), root);
    for (std::size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == value<double>(root, i));

    std::vector<float> y(33);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = value<float>(c.rank(), i);
    { auto r = c.ibroadcast(std::span<float>(y), root); }
    for (std::size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == value<float>(root, i));
  }
  std::vector<float> z(3);
  CHECK_THROWS_AS(c.broadcast(std::span<float>(z), c.size()), tether::error);
  CHECK_THROWS_AS(c.broadcast(std::span<float>(z), -1), tether::error);
}

TEST_CASE("comm::mpi min_loc elects the lowest finite score, ties to the lowest rank", "[mpi]") {
  const double timeout = GENERATE(0.0, 30.0);
  mpi c(MPI_COMM_WORLD, {.timeout = timeout});
  const int p = c.size();
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();

  // Even ranks score 5, odd ranks 3: rank 1 wins (rank 0 alone: itself).
  auto e = c.min_loc(c.rank() % 2 == 0 ? 5.0f : 3.0f);
  CHECK(e.rank == (p > 1 ? 1 : 0));
  CHECK(e.score == (p > 1 ? 3.0f : 5.0f));

  // Rank 0 has a NaN, -inf never wins either: the lowest finite score of the others wins.
  const float s = c.rank() == 0 ? nan : (c.rank() == 1 ? -inf : 10.0f - static_cast<float>(c.rank()));
  e = c.min_loc(s);
  if (p <= 2) {
    CHECK(e.rank == -1);
  } else {
    CHECK(e.rank == p - 1);
    CHECK(e.score == 10.0f - static_cast<float>(p - 1));
  }

  // Nobody finite.
  e = c.min_loc(c.rank() % 2 == 0 ? nan : inf);
  CHECK(e.rank == -1);

  // All equal: rank 0.
  e = c.min_loc(2.5f);
  CHECK(e.rank == 0);
  CHECK(e.score == 2.5f);

  // Non-blocking election.
  tether::election out{};
  {
    auto r = c.imin_loc(static_cast<float>(p - c.rank()), out);
    r.wait();
  }
  CHECK(out.rank == p - 1);
  CHECK(out.score == 1.0f);
}

TEST_CASE("comm::mpi counts payload bytes as the thread team does", "[mpi]") {
  mpi c(MPI_COMM_WORLD);
  const std::uint64_t p = static_cast<std::uint64_t>(c.size());
  const std::size_t n = 48;  // divisible by 1, 2 and 4: every rank's share is n/p
  std::vector<float> x(n, 1.0f);
  std::vector<float> y(n, 0.0f);

  c.allreduce_sum(std::span<float>(x));
  const std::uint64_t ar = 2 * (n - n / p) * sizeof(float);  // reduce-scatter + all-gather, ring model
  CHECK(c.counters().bytes_sent == ar);
  CHECK(c.counters().bytes_received == ar);

  { auto r = c.iallreduce_sum(std::span<const float>(x), std::span<float>(y)); }
  CHECK(c.counters().bytes_sent == 2 * ar);
  CHECK(c.counters().bytes_received == 2 * ar);

  c.broadcast(std::span<float>(x), 0);
  const std::uint64_t b = n * sizeof(float);
  CHECK(c.counters().bytes_sent == 2 * ar + (c.rank() == 0 ? (p - 1) * b : 0));
  CHECK(c.counters().bytes_received == 2 * ar + (c.rank() == 0 ? 0 : b));

  (void)c.min_loc(1.0f);
  CHECK(c.counters().bytes_sent == 2 * ar + (c.rank() == 0 ? (p - 1) * b : 0) + 12);
  CHECK(c.counters().bytes_received == 2 * ar + (c.rank() == 0 ? 0 : b) + 12);
  CHECK(c.counters().collectives == 4);

  c.barrier();
  c.check_consistent(42, "forty-two");
  CHECK(c.counters().collectives == 4);
}

TEST_CASE("comm::mpi groups: shared-memory nodes by default, or a configured size", "[mpi]") {
  mpi all(MPI_COMM_WORLD);
  // Every rank of these tests runs on this machine: one node, so the group is the communicator itself.
  CHECK(&all.group() == &all);
  CHECK(all.group_count() == 1);
  CHECK(all.group_id() == 0);

  const int p = all.size();
  const int gs = p >= 2 ? 2 : 1;
  mpi c(MPI_COMM_WORLD, {.group_size = gs});
  CHECK(c.group_count() == p / gs);
  CHECK(c.group_id() == c.rank() / gs);
  auto& g = c.group();
  CHECK(g.size() == gs);
  CHECK(g.rank() == c.rank() % gs);
  CHECK(g.group_id() == c.group_id());
  CHECK(&g.group() == &g);

  // A group collective sums over the group only, and counts on the parent.
  std::vector<double> v{static_cast<double>(c.rank())};
  g.allreduce_sum(std::span<double>(v));
  double expect = 0;
  for (int r = c.group_id() * gs; r < (c.group_id() + 1) * gs; ++r) expect += r;
  CHECK(v[0] == expect);
  CHECK(c.counters().collectives == 1);
  auto e = g.min_loc(static_cast<float>(-c.rank()));
  CHECK(e.rank == gs - 1);

  if (p == 4) {
    CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, {.group_size = 3}),
                      Catch::Contains("must be a multiple of group_size (3)"));
  }
  CHECK_THROWS_AS(mpi(MPI_COMM_WORLD, {.group_size = -1}), tether::error);
}

TEST_CASE("comm::mpi check_consistent fails on every rank when ranks disagree", "[mpi]") {
  mpi c(MPI_COMM_WORLD);
  CHECK_NOTHROW(c.check_consistent(7, "seven"));
  if (c.size() == 1) return;
  CHECK_THROWS_AS(c.check_consistent(static_cast<std::uint64_t>(c.rank()), "the rank"), tether::error);
  CHECK_THROWS_WITH(c.check_consistent(static_cast<std::uint64_t>(c.rank() == 1 ? 11 : 10), "the answer"),
                    Catch::Contains("ranks disagree on the answer") && Catch::Contains("rank 0 has 10") &&
                        Catch::Contains("rank 1 has 11"));
  // Still usable afterwards.
  std::vector<float> v{1.0f};
  c.allreduce_sum(std::span<float>(v));
  CHECK(v[0] == static_cast<float>(c.size()));

  // Options that differ across ranks: caught when the communicator is built.
  CHECK_THROWS_WITH(mpi(MPI_COMM_WORLD, {.timeout = 10.0 + c.rank()}),
                    Catch::Contains("ranks disagree on the comm::mpi options"));
}

TEST_CASE("comm::mpi: a collective that a rank does not join times out", "[mpi]") {
  const int p = world_size();
  if (p == 1) return;
  mpi c(MPI_COMM_WORLD, {.timeout = 0.3});
  const int me = c.rank();
  // After a timeout MPI still owns the buffer of the abandoned operation: it must outlive it (to the end of
  // the program here: nothing can wait for that operation any more).
  static std::vector<float> v(10, 1.0f);
  if (me == 0) {
    // tether::timeout, the error type of every bounded wait (a tether::runtime_error).
    CHECK_THROWS_MATCHES(c.allreduce_sum(std::span<float>(v)), tether::timeout,
                         Catch::Message("tether: rank 0: MPI_Allreduce did not complete within 0.3 s: a rank may "
                                        "have died (comm::mpi timeout)"));
    // Tell the others (on the caller's communicator): they join now, so the pending operation completes.
    for (int r = 1; r < p; ++r) {
      int token = 1;
      MPI_Send(&token, 1, MPI_INT, r, 99, MPI_COMM_WORLD);
    }
  } else {
    int token = 0;
    MPI_Recv(&token, 1, MPI_INT, 0, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    c.allreduce_sum(std::span<float>(v));
    CHECK(token == 1);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}
