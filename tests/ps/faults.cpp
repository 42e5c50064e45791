// Replicas that fail, on the thread team (4 replicas): one that throws, one that sleeps past its lease, one
// that fails during the warm start or before its first step, and a slow replica lost under bounded staleness and
// bulk-synchronous rounds. In every case the others finish, the loss is reported (which replica, why, after how
// many steps), and nothing the lost replica pushes later is applied. Also: the warm start (replica 0 alone for W
// steps). The "boom" of a replica that throws still reaches team.run()'s caller, after the others finished.

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using worker = tether::team::worker;
using tether::ps::loss_reason;
constexpr int p = 4;

struct outcome {
  bool finished = false;
  std::vector<float> x;
  std::vector<tether::ps::replica_loss> losses;
  tether::ps::replica_stats stats;
};

}  // namespace

TEST_CASE("A replica that throws does not stop the others; its loss is reported", "[ps][faults]") {
  const std::size_t n = ps_test::quad().dimension();
  constexpr std::uint64_t steps = 300;
  std::vector<outcome> out(p);
  tether::team team(p);
  const auto run = [&](tether::ps::consistency c) {
    team.run([&](worker& w) {
      auto& o = out[static_cast<std::size_t>(w.rank())];
      tether::algo::downpour<worker> opt(w, n, {.lr = 0.2, .shards = 2, .consistency = c, .lease = 30.0});
      auto x = ps_test::start_point(n);
      std::vector<float> g(n);
      for (std::uint64_t t = 0; t < steps; ++t) {
        if (w.rank() == 2 && t == 20) throw std::runtime_error("boom");
        opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
      }
      opt.finish(x);
      o = {true, x, opt.losses(), opt.stats()};
    });
  };
  for (auto c : {tether::ps::consistency::asynchronous(), tether::ps::consistency::bounded(1),
                 tether::ps::consistency::bulk_synchronous()}) {
    INFO("consistency mode " << static_cast<int>(c.mode));
    out.assign(p, {});
    REQUIRE_THROWS_WITH(run(c), "boom");
    for (int r = 0; r < p; ++r) {
      INFO("replica " << r);
      const auto& o = out[static_cast<std::size_t>(r)];
      if (r == 2) {
        CHECK(!o.finished);
        continue;
      }
      REQUIRE(o.finished);
      CHECK(o.stats.pushes == (r == 0 ? steps : steps - 1));
      CHECK(o.x == out[0].x);
      REQUIRE(o.losses.size() == 1);
      CHECK(o.losses[0].replica == 2);
      CHECK(o.losses[0].reason == loss_reason::failed);
      CHECK(o.losses[0].steps == 20);
      CHECK(o.losses[0].pushes_applied == 19);  // its first step joined; steps 1..19 pushed
    }
    CHECK(ps_test::distance2(out[0].x) < 0.05);
  }
}

TEST_CASE("A replica that sleeps past its lease is declared lost; its late pushes are dropped, never applied",
          "[ps][faults]") {
  const std::size_t n = ps_test::quad().dimension();
  constexpr std::uint64_t steps = 200;
  constexpr std::uint64_t sleep_at = 10;
  constexpr std::uint64_t late_steps = 5;
  std::vector<outcome> out(p);
  std::vector<float> sleeper_peek(n);
  ps_test::signal survivors_done;
  bool woke_after_survivors = false;
  tether::team team(p);
  team.run([&](worker& w) {
    auto& o = out[static_cast<std::size_t>(w.rank())];
    tether::algo::downpour<worker> opt(w, n, {.lr = 0.2, .shards = 3, .lease = 1.0});
    auto x = ps_test::start_point(n);
    std::vector<float> g(n);
    const bool sleeper = w.rank() == p - 1;
    const std::uint64_t my_steps = sleeper ? sleep_at + late_steps : steps;
    for (std::uint64_t t = 0; t < my_steps; ++t) {
      if (sleeper && t == sleep_at) woke_after_survivors = survivors_done.wait_for(p - 1);
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    }
    if (sleeper) opt.peek(sleeper_peek);
    opt.finish(x);
    o = {true, x, opt.losses(), opt.stats()};
    if (!sleeper) survivors_done.add();
  });
  REQUIRE(woke_after_survivors);  // the survivors finished while it slept: nobody waited for it
  for (int r = 0; r < p; ++r) {
    INFO("replica " << r);
    const auto& o = out[static_cast<std::size_t>(r)];
    REQUIRE(o.finished);
    CHECK(o.x == out[0].x);  // the sleeper's finish() got the same parameters: its late pushes changed nothing
    REQUIRE(o.losses.size() == 1);
    CHECK(o.losses[0].replica == p - 1);
    CHECK(o.losses[0].reason == loss_reason::lease_expired);
    CHECK(o.losses[0].steps == sleep_at);
    CHECK(o.losses[0].pushes_applied == sleep_at - 1);
    CHECK(o.losses[0].seconds >= 1.0);
  }
  const auto& sleeper = out[p - 1].stats;
  CHECK(sleeper.lost);
  CHECK(sleeper.pushes == sleep_at - 1 + late_steps);
  CHECK(sleeper.pushes_dropped == late_steps);
  CHECK(sleeper_peek == out[0].x);  // after its dropped pushes, before its finish()
  CHECK(!out[0].stats.lost);
  CHECK(out[0].stats.pushes_dropped == 0);
}

TEST_CASE("Warm start: replica 0 takes W steps alone, then the others join at the current parameters",
          "[ps][faults]") {
  // Replica 0 records its parameters after its W-th step (n_fetch = 1: the server's, after W pushes of its
  // own) and then waits, in its own code, until the others have joined (they wait for each other too): they
  // must have been held until then, and must read exactly those parameters (version W of every shard).
  const std::size_t n = ps_test::quad().dimension();
  constexpr std::uint64_t warm = 30;
  std::atomic<std::uint64_t> steps0{0};
  std::vector<std::uint64_t> seen_at_join(p, 0);
  std::vector<std::vector<std::uint64_t>> version_at_join(p);
  std::vector<std::vector<float>> joined_x(p);
  std::vector<float> x0_after_warm;
  ps_test::signal joined;
  bool all_joined = false;
  tether::team team(p);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    tether::algo::downpour<worker> opt(w, n, {.lr = 0.2, .warm_start = warm, .steps = 100, .shards = 2});
    auto x = ps_test::start_point(n, w.rank());
    std::vector<float> g(n);
    for (std::uint64_t t = 0; t < 100; ++t) {
      if (r == 0) steps0.store(t + 1);  // replica 0 is taking its (t+1)-th step
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
      if (r == 0) {
        if (t + 1 == warm) {
          x0_after_warm = x;
          all_joined = joined.wait_for(p - 1);
        }
      } else if (t == 0) {
        seen_at_join[r] = steps0.load();
        version_at_join[r].assign(opt.versions().begin(), opt.versions().end());
        joined_x[r] = x;
        joined.add();
        joined.wait_for(p - 1);  // no joiner pushes before all have joined
      }
    }
    opt.finish(x);
  });
  CHECK(all_joined);
  for (int r = 1; r < p; ++r) {
    INFO("replica " << r);
    CHECK(seen_at_join[static_cast<std::size_t>(r)] == warm);
    CHECK(version_at_join[static_cast<std::size_t>(r)] == std::vector<std::uint64_t>(2, warm));
    CHECK(joined_x[static_cast<std::size_t>(r)] == x0_after_warm);
  }
}

TEST_CASE("Replica 0 failing during the warm start or before its first step does not hold the others",
          "[ps][faults]") {
  const std::size_t n = ps_test::quad().dimension();
  for (std::uint64_t fail_at : {std::uint64_t{0}, std::uint64_t{5}}) {
    INFO("replica 0 throws before its step " << fail_at);
    std::vector<outcome> out(p);
    tether::team team(p);
    REQUIRE_THROWS_WITH(team.run([&](worker& w) {
      tether::algo::downpour<worker> opt(w, n, {.lr = 0.2, .warm_start = 50, .lease = 30.0});
      auto x = ps_test::start_point(n, w.rank());
      std::vector<float> g(n);
      for (std::uint64_t t = 0; t < 150; ++t) {
        if (w.rank() == 0 && t == fail_at) throw std::runtime_error("boom");
        opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
      }
      opt.finish(x);
      out[static_cast<std::size_t>(w.rank())] = {true, x, opt.losses(), opt.stats()};
    }),
                        "boom");
    for (int r = 1; r < p; ++r) {
      INFO("replica " << r);
      const auto& o = out[static_cast<std::size_t>(r)];
      REQUIRE(o.finished);
      CHECK(o.x == out[1].x);
      REQUIRE(o.losses.size() == 1);
      CHECK(o.losses[0].replica == 0);
      CHECK(o.losses[0].steps == fail_at);
    }
    // Before its first step replica 0 never initialised the shards: replica 1 did, from its own start point.
    CHECK(ps_test::distance2(out[1].x) < 0.05);
  }
}

TEST_CASE("A slow replica lost under bounded staleness stops holding the others back", "[ps][faults]") {
  const std::size_t n = ps_test::quad().dimension();
  constexpr std::uint64_t steps = 100;
  std::vector<outcome> out(p);
  ps_test::signal survivors_done;
  bool woke = false;
  tether::team team(p);
  team.run([&](worker& w) {
    tether::algo::downpour<worker> opt(
        w, n, {.lr = 0.2, .shards = 2, .consistency = tether::ps::consistency::bounded(1), .lease = 1.0});
    auto x = ps_test::start_point(n);
    std::vector<float> g(n);
    const bool slow = w.rank() == 1;
    for (std::uint64_t t = 0; t < (slow ? 12 : steps); ++t) {
      if (slow && t == 10) woke = survivors_done.wait_for(p - 1);
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    }
    opt.finish(x);
    out[static_cast<std::size_t>(w.rank())] = {true, x, opt.losses(), opt.stats()};
    if (!slow) survivors_done.add();
  });
  CHECK(woke);
  for (int r : {0, 2, 3}) {
    INFO("replica " << r);
    const auto& o = out[static_cast<std::size_t>(r)];
    CHECK(o.stats.pushes == (r == 0 ? steps : steps - 1));
    CHECK(o.stats.max_lead <= 1);
    CHECK(o.stats.seconds_waiting >= 0.5);  // they did wait for the slow replica until its lease expired
    REQUIRE(o.losses.size() == 1);
    CHECK(o.losses[0].replica == 1);
  }
  CHECK(out[1].stats.pushes_dropped == 2);
  CHECK(out[1].x == out[0].x);
}
