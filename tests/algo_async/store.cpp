// The thread team's shared store (the one-sided tier, docs/concepts.md#one-sided-tier) against a serial
// reference: concurrent accumulates and exchanges of every worker lose no addition, for 1 shard and for
// several (S > N included); what read() sees; the bytes of the model (each shard counted on its holder);
// disagreements and bad layouts are errors on every worker.

#include <tether/comm/shared_memory.hpp>
#include <tether/core/concepts.hpp>
#include <tether/core/error.hpp>
#include <tether/core/shard_layout.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 4;

/// Worker r's k-th addition to value i: small integers, so every sum is exact in float in any order.
float addition(int r, int k, std::size_t i) { return static_cast<float>((r + 1) * ((k + static_cast<int>(i)) % 3)); }

/// The serial reference: the initial values plus every worker's additions, in any order.
std::vector<float> reference(std::size_t n, int rounds) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<float>(i % 7);
    for (int r = 0; r < p; ++r)
      for (int k = 0; k < rounds; ++k) v[i] += addition(r, k, i);
  }
  return v;
}

struct outcome {
  std::vector<std::vector<float>> final_values = std::vector<std::vector<float>>(p);
  std::vector<int> reads_ok = std::vector<int>(p, 0);
  std::vector<tether::comm_counters> counters = std::vector<tether::comm_counters>(p);
};

/// Every worker alternates accumulate() and exchange() `rounds` times on a store of n values in `shards`
/// shards owned from worker `owner`, reading in between, then closes it.
outcome run_store(std::size_t n, std::size_t shards, int owner, int rounds, tether::comm::team_tuning tuning = {}) {
  tether::team team(p, {.tuning = tuning});
  outcome out;
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    std::vector<float> init(n);
    for (std::size_t i = 0; i < n; ++i) init[i] = static_cast<float>(i % 7);
    auto s = w.open_store(std::span<const float>(init), tether::shard_layout(n, shards), owner);
    std::vector<float> in(n), read(n), delta(n);
    bool ok = s.size() == n && s.layout() == tether::shard_layout(n, shards);
    for (int k = 0; k < rounds; ++k) {
      for (std::size_t i = 0; i < n; ++i) in[i] = addition(w.rank(), k, i);
      if (k % 2 == 0) {
        s.accumulate(std::span<const float>(in));
        s.release();
      } else {
        s.exchange(std::span<float>(read), std::span<float>(delta), [&](std::size_t lo, std::size_t hi) {
          for (std::size_t i = lo; i < hi; ++i) delta[i] = in[i];
        });
        s.release();
        // What an exchange reads is the initial value plus whole numbers: an integer >= the initial value.
        for (std::size_t i = 0; i < n; i += 97) ok = ok && read[i] >= init[i] && read[i] == std::floor(read[i]);
      }
    }
    s.read(std::span<float>(read));
    for (std::size_t i = 0; i < n; i += 97) ok = ok && read[i] >= init[i] && read[i] == std::floor(read[i]);
    std::vector<float> final_values(n);
    s.close(std::span<float>(final_values));
    out.final_values[me] = final_values;
    out.reads_ok[me] = ok ? 1 : 0;
    out.counters[me] = w.counters();
  });
  return out;
}

/// The bytes of the model: per worker, the values of the shards it does not hold, once per read (received),
/// accumulate (sent) and exchange (both); close() a broadcast of each shard from its holder; open_store the
/// owner's initial values to the other shards' holders.
void check_bytes(const outcome& out, std::size_t n, std::size_t shards, int owner, int rounds) {
  const tether::shard_layout layout(n, shards);
  const std::uint64_t s = sizeof(float);
  const auto holder = [&](std::size_t k) { return static_cast<int>((static_cast<std::size_t>(owner) + k) % p); };
  for (int r = 0; r < p; ++r) {
    std::uint64_t remote = 0, open_sent = 0, open_received = 0, close_sent = 0, close_received = 0;
    for (std::size_t k = 0; k < shards; ++k) {
      const std::uint64_t c = layout.count(k);
      if (holder(k) != r) remote += c;
      if (c == 0) continue;
      if (holder(k) != owner && r == owner) open_sent += c * s;
      if (holder(k) != owner && r == holder(k)) open_received += c * s;
      if (r == holder(k))
        close_sent += (p - 1) * c * s;
      else
        close_received += c * s;
    }
    const std::uint64_t accumulates = static_cast<std::uint64_t>(rounds + 1) / 2;
    const std::uint64_t exchanges = static_cast<std::uint64_t>(rounds) / 2;
    const auto& got = out.counters[static_cast<std::size_t>(r)];
    INFO("worker " << r);
    CHECK(got.bytes_sent == open_sent + (accumulates + exchanges) * remote * s + close_sent);
    CHECK(got.bytes_received == open_received + (exchanges + 1) * remote * s + close_received);
  }
}

}  // namespace

TEST_CASE("Team store: models tether::shared_store; the team models the one-sided tier", "[async][store]") {
  STATIC_REQUIRE(tether::shared_store<tether::team::store<float>, float>);
  STATIC_REQUIRE(tether::shared_store<tether::team::store<double>, double>);
  STATIC_REQUIRE(tether::one_sided_communicator<worker, float>);
  STATIC_REQUIRE(tether::one_sided_communicator<worker, double>);
}

TEST_CASE("Team store: concurrent accumulates and exchanges lose no addition, for any number of shards",
          "[async][store]") {
  // 40000 values, blocks of 4096: 10 lock blocks, straddling the shards' boundaries.
  constexpr std::size_t n = 40000;
  constexpr int rounds = 30;
  const auto want = reference(n, rounds);
  std::vector<float> one_shard;
  for (std::size_t shards : {std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{7}}) {
    CAPTURE(shards);
    const int owner = 1;
    const auto out = run_store(n, shards, owner, rounds, {.store_block = 4096});
    for (int r = 0; r < p; ++r) {
      CHECK(out.final_values[static_cast<std::size_t>(r)] == want);
      CHECK(out.reads_ok[static_cast<std::size_t>(r)] == 1);
    }
    check_bytes(out, n, shards, owner, rounds);
    if (shards == 1) one_shard = out.final_values[0];
    CHECK(out.final_values[0] == one_shard);  // the same result as S = 1
  }
}

TEST_CASE("Team store: more shards than values leaves shards empty and still adds everything",
          "[async][store]") {
  constexpr std::size_t n = 5;
  constexpr int rounds = 9;
  const auto out = run_store(n, 8, 3, rounds);
  for (int r = 0; r < p; ++r) CHECK(out.final_values[static_cast<std::size_t>(r)] == reference(n, rounds));
  check_bytes(out, n, 8, 3, rounds);
}

TEST_CASE("Team store: read() between additions sees every earlier addition of this worker",
          "[async][store]") {
  // One worker: the store is a plain accumulator; after each accumulate, read() returns the running sum.
  tether::team team(1);
  std::vector<int> ok(1, 0);
  team.run([&](worker& w) {
    std::vector<double> init{1.0, 2.0, 3.0};
    auto s = w.open_store(std::span<const double>(init), tether::shard_layout(3, 2), 0);
    std::vector<double> running = init;
    bool good = true;
    for (int k = 0; k < 10; ++k) {
      const std::vector<double> in{0.5 * k, -1.0 * k, 0.25};
      s.accumulate(std::span<const double>(in));
      for (std::size_t i = 0; i < 3; ++i) running[i] += in[i];
      std::vector<double> got(3);
      s.read(std::span<double>(got));
      good = good && got == running;
    }
    std::vector<double> final_values(3);
    s.close(std::span<double>(final_values));
    good = good && final_values == running && !s.is_open();
    ok[0] = good ? 1 : 0;
  });
  CHECK(ok[0] == 1);
}

TEST_CASE("Team store: bad layouts and disagreements are errors on every worker", "[async][store]") {
  const auto run = [](auto&& f) {
    tether::team team(p);
    std::vector<std::string> what(p);
    team.run([&](worker& w) {
      try {
        f(w);
      } catch (const tether::error& e) {
        what[static_cast<std::size_t>(w.rank())] = e.what();
      }
    });
    return what;
  };
  SECTION("a layout of another size") {
    for (const auto& what : run([](worker& w) {
           std::vector<float> init(8);
           (void)w.open_store(std::span<const float>(init), tether::shard_layout(9, 2), 0);
         }))
      CHECK_THAT(what, Catch::Contains("the layout covers 9 values, the initial buffer has 8"));
  }
  SECTION("shard counts that differ") {
    for (const auto& what : run([](worker& w) {
           std::vector<float> init(8);
           (void)w.open_store(std::span<const float>(init), tether::shard_layout(8, w.rank() == 3 ? 2 : 1), 0);
         }))
      CHECK_THAT(what, Catch::Contains("disagree on the owner or the layout"));
  }
  SECTION("an owner out of range") {
    for (const auto& what : run([](worker& w) {
           std::vector<float> init(8);
           (void)w.open_store(std::span<const float>(init), tether::shard_layout(8, 1), p);
         }))
      CHECK_THAT(what, Catch::Contains("owner must be in [0, 4), got owner = 4"));
  }
  SECTION("a buffer of the wrong size") {
    for (const auto& what : run([](worker& w) {
           std::vector<float> init(8);
           auto s = w.open_store(std::span<const float>(init), tether::shard_layout(8, 3), 0);
           std::vector<float> small(7);
           s.accumulate(std::span<const float>(small));
         }))
      CHECK_THAT(what, Catch::Contains("accumulate with a buffer of 7 elements, the store has 8"));
  }
}
