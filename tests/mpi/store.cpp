// comm::mpi's shared store (the one-sided tier, docs/concepts.md#one-sided-tier) on 1, 2 and 4 ranks, against
// a serial reference: concurrent accumulates and exchanges of every rank lose no addition, for 1 shard (the
// window on one owner: asynchronous EASGD's center) and for several (shards on several ranks, S > N
// included); read() after this rank's own additions; the bytes of the model; disagreements fail on every rank.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"
#include "tether/core/shard_layout.hpp"

using tether::comm::mpi;

namespace {

/// Rank r's k-th addition to value i: small integers, so every sum is exact in double in any order.
double addition(int r, int k, std::size_t i) { return static_cast<double>((r + 1) * ((k + static_cast<int>(i)) % 3)); }

}  // namespace

TEST_CASE("comm::mpi store: models tether::shared_store; comm::mpi models the one-sided tier", "[mpi][store]") {
  STATIC_REQUIRE(tether::shared_store<mpi::store<float>, float>);
  STATIC_REQUIRE(tether::shared_store<mpi::store<double>, double>);
  STATIC_REQUIRE(tether::one_sided_communicator<mpi, float>);
  STATIC_REQUIRE(tether::one_sided_communicator<mpi, double>);
}

TEST_CASE("comm::mpi store: concurrent accumulates and exchanges lose no addition, for any number of shards",
          "[mpi][store]") {
  // max_count = 1000 cuts each shard into several MPI calls.
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0, .max_count = 1000});
  const int p = c.size();
  constexpr std::size_t n = 5003;
  constexpr int rounds = 20;
  std::vector<double> want(n);
  for (std::size_t i = 0; i < n; ++i) {
    want[i] = static_cast<double>(i % 7);
    for (int r = 0; r < p; ++r)
      for (int k = 0; k < rounds; ++k) want[i] += addition(r, k, i);
  }
  for (std::size_t shards : {std::size_t{1}, std::size_t{3}, std::size_t{8}}) {
    CAPTURE(shards, p);
    const int owner = p - 1;
    const tether::shard_layout layout(n, shards);
    const auto before = c.counters();
    std::vector<double> init(n);
    for (std::size_t i = 0; i < n; ++i) init[i] = static_cast<double>(i % 7);
    auto s = c.open_store(std::span<const double>(init), layout, owner);
    CHECK(s.size() == n);
    CHECK(s.layout() == layout);
    std::vector<double> in(n), read(n), delta(n);
    bool reads_ok = true;
    for (int k = 0; k < rounds; ++k) {
      for (std::size_t i = 0; i < n; ++i) in[i] = addition(c.rank(), k, i);
      if (k % 2 == 0) {
        s.accumulate(std::span<const double>(in));
      } else {
        s.exchange(std::span<double>(read), std::span<double>(delta), [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) delta[i] = in[i];
        });
        for (std::size_t i = 0; i < n; i += 101) reads_ok = reads_ok && read[i] >= init[i];
      }
      s.release();
      s.poll();
    }
    // This rank's own additions are complete (released): a read sees at least all of them.
    s.read(std::span<double>(read));
    for (std::size_t i = 0; i < n; i += 101) {
      double mine = init[i];
      for (int k = 0; k < rounds; ++k) mine += addition(c.rank(), k, i);
      reads_ok = reads_ok && read[i] >= mine && read[i] == std::floor(read[i]);
    }
    CHECK(reads_ok);
    std::vector<double> final_values(n);
    s.close(std::span<double>(final_values));
    CHECK_FALSE(s.is_open());
    CHECK(final_values == want);

    // Bytes (docs/mpi.md): the values of the shards other ranks hold, once per accumulate (sent), read
    // (received) and exchange (both); a broadcast of each shard from its holder at close(); the owner's
    // initial values put into the other holders' windows at open_store.
    std::uint64_t remote = 0, open_sent = 0, open_received = 0, close_sent = 0, close_received = 0;
    const std::uint64_t sz = sizeof(double);
    for (std::size_t k = 0; k < shards; ++k) {
      const int holder = static_cast<int>((static_cast<std::size_t>(owner) + k) % static_cast<std::size_t>(p));
      const std::uint64_t cnt = layout.count(k);
      if (holder != c.rank()) remote += cnt;
      if (cnt == 0) continue;
      if (holder != owner && c.rank() == owner) open_sent += cnt * sz;
      if (holder != owner && c.rank() == holder) open_received += cnt * sz;
      if (c.rank() == holder)
        close_sent += static_cast<std::uint64_t>(p - 1) * cnt * sz;
      else
        close_received += cnt * sz;
    }
    const std::uint64_t accumulates = (rounds + 1) / 2;
    const std::uint64_t exchanges = rounds / 2;
    CHECK(c.counters().bytes_sent - before.bytes_sent ==
          open_sent + (accumulates + exchanges) * remote * sz + close_sent);
    CHECK(c.counters().bytes_received - before.bytes_received ==
          open_received + (exchanges + 1) * remote * sz + close_received);
  }
}

TEST_CASE("comm::mpi store: one shard is the center of asynchronous EASGD, bytes as before", "[mpi][store]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0});
  const std::uint64_t p = static_cast<std::uint64_t>(c.size());
  constexpr std::size_t n = 64;
  const int owner = 0;
  std::vector<float> init(n, 1.0f);
  const auto before = c.counters();
  auto s = c.open_store(std::span<const float>(init), tether::shard_layout(n, 1), owner);
  std::vector<float> read(n), delta(n, 0.5f);
  for (int k = 0; k < 3; ++k) {
    s.exchange(std::span<float>(read), std::span<float>(delta), [](std::size_t, std::size_t) {});
    s.release();
  }
  std::vector<float> out(n);
  s.close(std::span<float>(out));
  CHECK(out == std::vector<float>(n, 1.0f + 1.5f * static_cast<float>(p)));
  // N floats each way per exchange but on the owner; the final center as a broadcast from the owner.
  const std::uint64_t per = c.rank() == owner ? 0 : n * sizeof(float);
  CHECK(c.counters().bytes_sent - before.bytes_sent == 3 * per + (c.rank() == owner ? (p - 1) * n * sizeof(float) : 0));
  CHECK(c.counters().bytes_received - before.bytes_received == 3 * per + (c.rank() == owner ? 0 : n * sizeof(float)));
}

TEST_CASE("comm::mpi store: ranks that disagree on the store fail on every rank", "[mpi][store]") {
  mpi c(MPI_COMM_WORLD, {.timeout = 60.0});
  std::vector<float> init(8);
  if (c.size() > 1) {
    CHECK_THROWS_WITH(c.open_store(std::span<const float>(init), tether::shard_layout(8, c.rank() == 1 ? 2 : 1), 0),
                      Catch::Contains("ranks disagree on the layout's shard count (open_store)"));
    CHECK_THROWS_WITH(c.open_store(std::span<const float>(init), tether::shard_layout(8, 1), c.rank() == 1 ? 1 : 0),
                      Catch::Contains("ranks disagree on the store's owner (open_store)"));
  }
  CHECK_THROWS_WITH(c.open_store(std::span<const float>(init), tether::shard_layout(9, 1), 0),
                    Catch::Contains("open_store: the layout covers 9 values, the initial buffer has 8"));
  CHECK_THROWS_WITH(c.open_store(std::span<const float>(init), tether::shard_layout(8, 1), c.size()),
                    Catch::Contains("open_store: root must be in [0, "));
}
