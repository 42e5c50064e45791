// comm::mpi's ring all-reduce (comm/mpi/ring.hpp: the polled path of allreduce_sum for floating-point buffers
// of 64 KiB or more) under mpiexec (1, 2 and 4 ranks): exact sums against a closed form, in place and from a
// separate send buffer, with uneven shards and segments cut by max_count; the same bits on every rank for
// values whose sum depends on the order of addition, within a bound of the double-precision sum; the same
// result as MPI's own all-reduce (timeout 0); the byte counters; allreduce_scaled_sum (local SGD's average);
// and a communicator that keeps working over several rounds (its private communicator made once).
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/core/rng.hpp"
#include "tether/core/stats.hpp"

using tether::comm::mpi;

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

// Rank r's value at index i for the rounding test: uniform in [-1, 1) from a per-rank stream.
std::vector<float> noisy(int r, std::size_t n) {
  tether::rng g(tether::derive_seed(77, static_cast<std::uint64_t>(r)));
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(2.0 * g.uniform() - 1.0);
  return v;
}

}  // namespace

TEMPLATE_TEST_CASE("comm::mpi ring all-reduce sums large buffers exactly", "[mpi][ring]", float, double) {
  // 40'003 elements: 160 KB of floats (above the ring's 64 KiB), shards of unequal size for 2 and 4 ranks;
  // max_count 1'000 cuts each shard into segments with a short last one.
  const std::size_t n = 40'003;
  REQUIRE(n * sizeof(TestType) >= tether::comm::detail::ring_allreduce_min_bytes);
  const std::size_t max_count = GENERATE(0u, 1'000u);
  const bool in_place = GENERATE(true, false);
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0, .max_count = max_count});
  CAPTURE(max_count, in_place, c.size());
  std::vector<TestType> x(n);
  for (int round = 0; round < 3; ++round) {  // the ring's communicator and scratch are made once, then reused
    for (std::size_t i = 0; i < n; ++i) x[i] = value<TestType>(c.rank(), i);
    const std::vector<TestType> sent = x;
    std::vector<TestType> out(n, TestType(-7));
    if (in_place) {
      c.allreduce_sum(std::span<TestType>(x));
    } else {
      c.allreduce_sum(std::span<const TestType>(x), std::span<TestType>(out));
      REQUIRE(x == sent);  // the send buffer is only read
      x = out;
    }
    for (std::size_t i = 0; i < n; ++i) REQUIRE(x[i] == sum_over_ranks<TestType>(c.size(), i));
  }
}

TEST_CASE("comm::mpi ring all-reduce gives every rank the same bits, close to the exact sum", "[mpi][ring]") {
  const std::size_t n = 100'000;
  mpi polled(MPI_COMM_WORLD, {.timeout = 60.0});
  mpi blocking(MPI_COMM_WORLD, {.timeout = 0.0});
  const int p = polled.size();
  std::vector<float> x = noisy(polled.rank(), n);
  std::vector<float> y = x;
  polled.allreduce_sum(std::span<float>(x));   // the ring
  blocking.allreduce_sum(std::span<float>(y));  // MPI_Allreduce

  // The same bits on every rank: each rank's words against rank 0's (broadcast).
  std::vector<float> first = x;
  MPI_Bcast(first.data(), static_cast<int>(n), MPI_FLOAT, 0, MPI_COMM_WORLD);
  REQUIRE(std::memcmp(first.data(), x.data(), n * sizeof(float)) == 0);

  // Each element within twice p-1 roundings of the double-precision sum of the p float values (an independent
  // reference: every rank regenerates every rank's values), as MPI's own all-reduce is.
  std::vector<std::vector<float>> all;
  for (int r = 0; r < p; ++r) all.push_back(noisy(r, n));
  for (std::size_t i = 0; i < n; ++i) {
    double exact = 0.0;
    double magnitude = 0.0;
    for (int r = 0; r < p; ++r) {
      exact += all[static_cast<std::size_t>(r)][i];
      magnitude += std::fabs(all[static_cast<std::size_t>(r)][i]);
    }
    const double bound = (p - 1) * magnitude * 0x1p-23 + 1e-30;  // twice the first-order bound
    REQUIRE(std::fabs(x[i] - exact) <= bound);
    REQUIRE(std::fabs(y[i] - exact) <= bound);
  }
  if (p <= 2) CHECK(x == y);  // two addends: a + b in either order
}

TEST_CASE("comm::mpi ring all-reduce counts the all-reduce's bytes", "[mpi][ring]") {
  const std::size_t n = 65'537;
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0});
  std::vector<float> x(n, 1.0f);
  const tether::comm_counters before = c.counters();
  c.allreduce_sum(std::span<float>(x));
  const std::uint64_t moved = tether::detail::allreduce_payload_bytes(n, sizeof(float), c.rank(), c.size());
  CHECK(c.counters().bytes_sent - before.bytes_sent == moved);
  CHECK(c.counters().bytes_received - before.bytes_received == moved);
  for (const float v : x) REQUIRE(v == static_cast<float>(c.size()));
}

TEST_CASE("comm::mpi allreduce_sum(send, recv) refuses buffers of different sizes", "[mpi][ring]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0});
  std::vector<float> send(100'000, 1.0f);
  std::vector<float> recv(99'999);
  CHECK_THROWS_AS(c.allreduce_sum(std::span<const float>(send), std::span<float>(recv)), tether::error);
}

TEST_CASE("comm::mpi allreduce_scaled_sum: the sum times the factor, on the ring and off it", "[mpi][ring]") {
  // 50'001 floats take the ring with the timeout on; 1'000 floats, or the timeout off, take MPI's all-reduce
  // followed by the multiplication. The values' sums are exact, so each result is sum * factor rounded once.
  const std::size_t n = GENERATE(1'000u, 50'001u);
  const double timeout = GENERATE(0.0, 60.0);
  const float factor = GENERATE(0.25f, 0.1f);
  mpi c(MPI_COMM_WORLD, {.timeout = timeout});
  CAPTURE(n, timeout, factor, c.size());
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = value<float>(c.rank(), i);
  c.allreduce_scaled_sum(std::span<const float>(x), std::span<float>(x), factor);
  for (std::size_t i = 0; i < n; ++i) REQUIRE(x[i] == sum_over_ranks<float>(c.size(), i) * factor);
}
