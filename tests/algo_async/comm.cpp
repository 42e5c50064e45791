// The thread team's operations behind the asynchronous algorithms, against closed forms: ibroadcast (root's
// values everywhere, bytes), imin_loc (the election rule with ties, NaN and infinities), duplicate() (its
// operations never pair with the original's, even posted in different orders; fault rules), open_store
// (concurrent exchanges lose no addition, over several lock blocks; disagreements are errors).

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/request.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <limits>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 4;

/// Runs `f` on a team of p workers and returns what run() threw ("" if nothing).
template <class F>
std::string run_catching(tether::team& team, F&& f) {
  try {
    team.run(f);
  } catch (const tether::aborted& e) {
    return std::string("aborted: ") + e.what();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("Team ibroadcast: every worker ends with the root's values; bytes as a broadcast", "[async][comm]") {
  constexpr std::size_t n = 1000;
  constexpr int root = 2;
  tether::team team(p);
  std::vector<std::vector<double>> out(p);
  std::vector<tether::comm_counters> counters(p);
  team.run([&](worker& w) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = 1000.0 * w.rank() + static_cast<double>(i);
    auto req = w.ibroadcast(std::span<double>(v), root);
    req.wait();
    out[static_cast<std::size_t>(w.rank())] = v;
    counters[static_cast<std::size_t>(w.rank())] = w.counters();
  });
  for (int r = 0; r < p; ++r) {
    const auto& v = out[static_cast<std::size_t>(r)];
    bool ok = true;
    for (std::size_t i = 0; i < n; ++i) ok = ok && v[i] == 1000.0 * root + static_cast<double>(i);
    CHECK(ok);
    const auto& c = counters[static_cast<std::size_t>(r)];
    CHECK(c.bytes_sent == (r == root ? (p - 1) * n * sizeof(double) : 0));
    CHECK(c.bytes_received == (r == root ? 0 : n * sizeof(double)));
  }
}

TEST_CASE("Team imin_loc: lowest finite score wins, ties to the lowest rank, none finite gives -1", "[async][comm]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct scenario {
    std::array<float, p> scores;
    int winner;
    float score;
  };
  const std::array<scenario, 4> cases{{
      {{3.0f, 1.0f, 2.0f, 1.0f}, 1, 1.0f},  // tie between 1 and 3
      {{nan, 5.0f, -inf, 4.0f}, 3, 4.0f},   // NaN and infinities never win
      {{nan, inf, nan, -inf}, -1, 0.0f},    // nobody finite
      {{0.5f, 0.5f, 0.5f, 0.5f}, 0, 0.5f},
  }};
  tether::team team(p);
  std::vector<std::array<tether::election, 4>> got(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    // All four elections in flight at once, completed in reverse order.
    std::array<tether::election, 4> out{};
    std::array<tether::request, 4> reqs;
    for (std::size_t k = 0; k < cases.size(); ++k) reqs[k] = w.imin_loc(cases[k].scores[me], out[k]);
    for (std::size_t k = cases.size(); k-- > 0;) reqs[k].wait();
    got[me] = out;
  });
  for (int r = 0; r < p; ++r) {
    for (std::size_t k = 0; k < cases.size(); ++k) {
      INFO("worker " << r << ", case " << k);
      CHECK(got[static_cast<std::size_t>(r)][k].rank == cases[k].winner);
      if (cases[k].winner >= 0) CHECK(got[static_cast<std::size_t>(r)][k].score == cases[k].score);
    }
  }
}

TEST_CASE("Team duplicate: its operations never pair with the original's", "[async][comm]") {
  // Even workers post (broadcast on the duplicate, all-reduce on the original), odd workers the reverse; then
  // a blocking all-reduce on the duplicate. Each operation must pair with its own kind on its own handle.
  constexpr std::size_t n = 64;
  tether::team team(p);
  std::vector<std::vector<float>> bcast(p), sum(p), dup_sum(p);
  std::vector<tether::comm_counters> counters(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    auto dup = w.duplicate();
    std::vector<float> b(n, static_cast<float>(w.rank() + 1));
    std::vector<float> send(n, static_cast<float>(w.rank() + 1)), recv(n);
    std::vector<float> d(n, 2.0f * static_cast<float>(w.rank()));
    tether::request rb;
    tether::request ra;
    if (w.rank() % 2 == 0) {
      rb = dup->ibroadcast(std::span<float>(b), 1);
      ra = w.iallreduce_sum(std::span<const float>(send), std::span<float>(recv));
    } else {
      ra = w.iallreduce_sum(std::span<const float>(send), std::span<float>(recv));
      rb = dup->ibroadcast(std::span<float>(b), 1);
    }
    ra.wait();
    rb.wait();
    dup->allreduce_sum(std::span<float>(d));
    bcast[me] = b;
    sum[me] = recv;
    dup_sum[me] = d;
    counters[me] = w.counters();
  });
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    CHECK(bcast[me] == std::vector<float>(n, 2.0f));           // root 1's values
    CHECK(sum[me] == std::vector<float>(n, 1.0f + 2 + 3 + 4));  // sum of rank + 1
    CHECK(dup_sum[me] == std::vector<float>(n, 2.0f * (0 + 1 + 2 + 3)));
  }
  // The duplicate's traffic counts on the original's counters: a broadcast from 1, the team's iallreduce
  // (N*s each way) and a blocking all-reduce (2*(N - N_r)*s each way).
  const std::uint64_t s = sizeof(float);
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    const std::uint64_t share = n * (me + 1) / p - n * me / p;
    const std::uint64_t both = n * s + 2 * (n - share) * s;
    CHECK(counters[me].bytes_sent == both + (r == 1 ? (p - 1) * n * s : 0));
    CHECK(counters[me].bytes_received == both + (r == 1 ? 0 : n * s));
  }
}

TEST_CASE("Team duplicate follows the fault rules", "[async][comm]") {
  SECTION("a worker throws while the others wait on the duplicate: they are released, run() rethrows it") {
    tether::team team(p);
    const std::string what = run_catching(team, [](worker& w) {
      auto dup = w.duplicate();
      if (w.rank() == 2) throw std::runtime_error("boom");
      tether::election e;
      auto r = dup->imin_loc(1.0f, e);
      r.wait();
    });
    CHECK(what == "boom");
  }
  SECTION("a worker returns without posting: the others' waits fail instead of hanging") {
    tether::team team(p);
    const std::string what = run_catching(team, [](worker& w) {
      auto dup = w.duplicate();
      if (w.rank() == 3) return;
      std::vector<float> v(8, 1.0f);
      auto r = dup->ibroadcast(std::span<float>(v), 0);
      r.wait();
    });
    CHECK_THAT(what, Catch::Contains("cannot complete"));
  }
  SECTION("a worker that polls (test(), never wait()) learns of a failure too: test() turns true, wait() throws") {
    // Polling is how the asynchronous pulls drive their rounds; test() used to stay false for an operation
    // that could never complete, so a polling worker never learned of the failure.
    for (const bool throws : {true, false}) {
      INFO((throws ? "worker 3 throws" : "worker 3 returns without posting"));
      tether::team team(p);
      std::vector<int> saw(p, 0);
      std::latch posted(p - 1);  // worker 3 fails once the others posted (a later post would throw at once)
      const std::string what = run_catching(team, [&](worker& w) {
        auto dup = w.duplicate();
        if (w.rank() == 3) {
          posted.wait();
          if (throws) throw std::runtime_error("boom");
          return;
        }
        tether::election e;
        auto r = dup->imin_loc(1.0f, e);
        posted.count_down();
        // Bounded, so that a test() that never turns true fails the check instead of hanging the test.
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!r.test() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        saw[static_cast<std::size_t>(w.rank())] = r.test() ? 1 : 0;
        r.wait();
      });
      CHECK(saw == std::vector<int>{1, 1, 1, 0});
      if (throws)
        CHECK(what == "boom");
      else
        CHECK_THAT(what, Catch::Contains("cannot complete"));
    }
  }
  SECTION("abort() of a duplicate releases its waiters only") {
    tether::team team(p);
    std::vector<int> released(p);
    std::vector<int> world_ok(p);
    team.run([&](worker& w) {
      auto dup = w.duplicate();
      if (w.rank() == 0) dup->abort();
      w.barrier();  // the abort happened before anyone posts below
      tether::election e;
      try {
        auto r = dup->imin_loc(1.0f, e);
        r.wait();
      } catch (const tether::aborted&) {
        released[static_cast<std::size_t>(w.rank())] = 1;
      }
      std::vector<float> v(4, 1.0f);
      w.allreduce_sum(std::span<float>(v));
      world_ok[static_cast<std::size_t>(w.rank())] = v[0] == 4.0f ? 1 : 0;
    });
    CHECK(released == std::vector<int>(p, 1));
    CHECK(world_ok == std::vector<int>(p, 1));
  }
  SECTION("workers that disagree on a broadcast's root get an error") {
    tether::team team(p);
    const std::string what = run_catching(team, [](worker& w) {
      auto dup = w.duplicate();
      std::vector<float> v(8, 1.0f);
      auto r = dup->ibroadcast(std::span<float>(v), w.rank() == 3 ? 1 : 0);
      r.wait();
    });
    CHECK_THAT(what, Catch::Contains("disagree"));
  }
}

TEST_CASE("Team open_store (one shard, the center): concurrent exchanges lose no addition", "[async][comm]") {
  // 40000 values = 3 lock blocks. Each worker makes 50 exchanges adding (rank + 1) to every value; the initial
  // values are i mod 7. Small integers: every sum is exact in float, in any order.
  constexpr std::size_t n = 40000;
  constexpr int rounds = 50;
  tether::team team(p);
  std::vector<std::vector<float>> final_center(p);
  std::vector<int> reads_ok(p);
  std::vector<tether::comm_counters> counters(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    std::vector<float> init(n);
    for (std::size_t i = 0; i < n; ++i) init[i] = static_cast<float>(i % 7);
    auto c = w.open_store(std::span<const float>(init), tether::shard_layout(n, 1), 1);
    std::vector<float> read(n), delta(n);
    bool ok = true;
    for (int k = 0; k < rounds; ++k) {
      c.exchange(std::span<float>(read), std::span<float>(delta), [&](std::size_t lo, std::size_t hi) {
        for (std::size_t i = lo; i < hi; ++i) delta[i] = static_cast<float>(w.rank() + 1);
      });
      // What was read is the initial value plus whole numbers of additions of 1..4: an integer >= i mod 7.
      for (std::size_t i = 0; i < n; i += 997) ok = ok && read[i] >= init[i] && read[i] == std::floor(read[i]);
    }
    std::vector<float> out(n);
    c.close(std::span<float>(out));
    final_center[me] = out;
    reads_ok[me] = ok ? 1 : 0;
    counters[me] = w.counters();
  });
  const float added = static_cast<float>(rounds * (1 + 2 + 3 + 4));
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    bool exact = final_center[me].size() == n;
    for (std::size_t i = 0; exact && i < n; ++i) exact = final_center[me][i] == static_cast<float>(i % 7) + added;
    CHECK(exact);
    CHECK(reads_ok[me] == 1);
    // N floats each way per exchange except on the owner (1); the final center counted as a broadcast.
    const std::uint64_t s = sizeof(float);
    CHECK(counters[me].bytes_sent == (r == 1 ? (p - 1) * n * s : rounds * n * s));
    CHECK(counters[me].bytes_received == (r == 1 ? 0 : rounds * n * s + n * s));
  }
}

TEST_CASE("Team open_store: workers that disagree on the size or the owner get an error", "[async][comm]") {
  SECTION("size") {
    tether::team team(p);
    const std::string what = run_catching(team, [](worker& w) {
      std::vector<float> init(w.rank() == 2 ? 9 : 8);
      auto c = w.open_store(std::span<const float>(init), tether::shard_layout(init.size(), 1), 0);
    });
    CHECK_THAT(what, Catch::Contains("sizes differ"));
  }
  SECTION("owner") {
    tether::team team(p);
    const std::string what = run_catching(team, [](worker& w) {
      std::vector<float> init(8);
      auto c = w.open_store(std::span<const float>(init), tether::shard_layout(8, 1), w.rank() == 2 ? 1 : 0);
    });
    CHECK_THAT(what, Catch::Contains("disagree on the owner or the layout"));
  }
}
