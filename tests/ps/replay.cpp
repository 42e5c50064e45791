// Replay mode on the thread team: the replicas take turns in an order drawn from a seed, so an asynchronous run
// gives bit-identical parameters (and per-step histories) on every rerun with that seed, whatever the timing
// (each run sleeps a random few microseconds between steps, from the system's entropy source); another seed
// gives another interleaving. With the warm start, and with replicas that take different numbers of steps.

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 4;

struct replay_run {
  std::vector<std::vector<float>> history;  // per replica: x after each step, concatenated
  std::vector<float> final_x;
  std::vector<std::uint64_t> versions_at_end;  // replica 0's versions after its last step
};

replay_run run(std::uint64_t seed, std::uint64_t warm) {
  const std::size_t n = ps_test::quad().dimension();
  replay_run out;
  out.history.resize(p);
  std::random_device entropy;
  std::vector<unsigned> jitter_seed(p);
  for (auto& j : jitter_seed) j = entropy();
  tether::team team(p);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    tether::algo::downpour<worker> opt(w, n, {.lr = 0.2, .local_lr = 0.05, .n_fetch = 3, .n_push = 2,
                                              .warm_start = warm, .shards = 3,
                                              .replay = {.enabled = true, .seed = seed}});
    std::minstd_rand jitter(jitter_seed[r]);
    auto x = ps_test::start_point(n, w.rank());
    std::vector<float> g(n);
    const std::uint64_t steps = 40 + 7 * r;
    for (std::uint64_t t = 0; t < steps; ++t) {
      std::this_thread::sleep_for(std::chrono::microseconds(jitter() % 200));
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
      out.history[r].insert(out.history[r].end(), x.begin(), x.end());
    }
    if (r == 0) out.versions_at_end.assign(opt.versions().begin(), opt.versions().end());
    opt.finish(x);
    if (r == 0) out.final_x = x;
  });
  return out;
}

}  // namespace

TEST_CASE("Replay: the same seed gives bit-identical runs; another seed another interleaving", "[ps][replay]") {
  for (std::uint64_t warm : {std::uint64_t{0}, std::uint64_t{10}}) {
    INFO("warm start " << warm);
    const auto a = run(7, warm);
    const auto b = run(7, warm);
    const auto c = run(8, warm);
    CHECK(a.final_x == b.final_x);
    CHECK(a.versions_at_end == b.versions_at_end);
    for (int r = 0; r < p; ++r) {
      INFO("replica " << r);
      CHECK(a.history[static_cast<std::size_t>(r)] == b.history[static_cast<std::size_t>(r)]);
    }
    CHECK(a.final_x != c.final_x);
  }
}
