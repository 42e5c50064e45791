// A push that is not finite never reaches the shards: with n_push = 2 two finite gradients whose sum overflows,
// and with check_gradient = false a NaN gradient, are dropped and counted in stats().excluded_nonfinite (the
// references are plain loops written here), or thrown with on_nonfinite = raise.

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

using worker = tether::team::worker;
using opt_t = tether::algo::downpour<worker, tether::step::sgd>;

}  // namespace

TEST_CASE("Downpour: a push whose accrued sum overflows is dropped, not applied", "[ps][nonfinite]") {
  constexpr std::uint64_t steps = 8;
  const float lr = 0.05f;
  const std::size_t n = ps_test::quad().dimension();
  std::vector<float> x = ps_test::start_point(n), g(n);
  tether::ps::replica_stats st;
  tether::team team(1);
  team.run([&](worker& w) {
    opt_t opt(w, n, {.lr = lr, .local_lr = 0.0, .n_fetch = 2, .n_push = 2});
    for (std::uint64_t t = 0; t < steps; ++t) opt.step(x, g, ps_test::overflowing_gradient(x, g, t));
    opt.finish(x);
    st = opt.stats();
  });
  CHECK(x == ps_test::overflow_reference(lr, steps));
  CHECK(st.excluded_nonfinite == 1);
  CHECK(st.skipped_nonfinite == 0);
  CHECK(st.pushes == steps / 2 - 1);
}

TEST_CASE("Downpour: with check_gradient = false a NaN gradient is never pushed", "[ps][nonfinite]") {
  constexpr std::uint64_t steps = 10;
  constexpr std::uint64_t bad = 4;
  const float lr = 0.05f;
  const std::size_t n = ps_test::quad().dimension();
  const auto spoiled = [&](std::span<const float> x, std::span<float> g, std::uint64_t t) {
    const double loss = ps_test::gradient(ps_test::quad(), x, g, 0, t);
    if (t == bad) g[5] = std::numeric_limits<float>::quiet_NaN();
    return loss;
  };
  std::vector<float> x = ps_test::start_point(n), g(n);
  tether::ps::replica_stats st;
  tether::team team(1);
  team.run([&](worker& w) {
    opt_t opt(w, n, {.lr = lr, .local_lr = 0.0, .check_gradient = false});
    for (std::uint64_t t = 0; t < steps; ++t) opt.step(x, g, spoiled(x, g, t));
    opt.finish(x);
    st = opt.stats();
  });
  // Reference: sequential SGD that leaves out step `bad`.
  std::vector<float> w = ps_test::start_point(n), h(n);
  for (std::uint64_t t = 0; t < steps; ++t) {
    spoiled(w, h, t);
    if (t == bad) continue;
    for (std::size_t i = 0; i < n; ++i) w[i] -= lr * h[i];
  }
  CHECK(x == w);
  CHECK(st.excluded_nonfinite == 1);
  CHECK(st.pushes == steps - 1);
}

TEST_CASE("Downpour: a push that is not finite throws with on_nonfinite = raise", "[ps][nonfinite]") {
  const std::size_t n = ps_test::quad().dimension();
  std::string error;
  std::uint64_t pushes = 0;
  tether::team team(1);
  try {
    team.run([&](worker& w) {
      opt_t opt(w, n, {.lr = 0.05, .n_fetch = 2, .n_push = 2, .on_nonfinite = tether::nonfinite_policy::raise});
      std::vector<float> x = ps_test::start_point(n), g(n);
      for (std::uint64_t t = 0; t < 8; ++t) {
        pushes = opt.stats().pushes;
        opt.step(x, g, ps_test::overflowing_gradient(x, g, t));
      }
    });
  } catch (const tether::runtime_error& e) {
    error = e.what();
  }
  CHECK_THAT(error, Catch::Contains("downpour::step: non-finite push on replica 0 at step 3: the sum of the 2 "
                                    "gradient(s) accrued since its last push is not finite"));
  CHECK(pushes == 1);  // the push after step 1 only
}

TEST_CASE("Downpour: a replica whose start is not finite is refused before it joins; the next one initialises",
          "[ps][nonfinite]") {
  // Replica 0 (the one that initialises the shards) starts with a NaN: its first step throws, and replica 1
  // initialises the shards from its own finite start, as when replica 0 fails before its first step
  // (ps_faults). Every survivor ends finite and near the quadratic's optimum.
  constexpr int p = 3;
  const std::size_t n = ps_test::quad().dimension();
  std::vector<std::vector<float>> end(p);
  std::vector<int> finished(p, 0);
  tether::team team(p);
  REQUIRE_THROWS_WITH(team.run([&](worker& w) {
    opt_t opt(w, n, {.lr = 0.2, .lease = 30.0});
    auto x = ps_test::start_point(n, w.rank());
    if (w.rank() == 0) x[3] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> g(n);
    for (std::uint64_t t = 0; t < 150; ++t) opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    opt.finish(x);
    end[static_cast<std::size_t>(w.rank())] = x;
    finished[static_cast<std::size_t>(w.rank())] = 1;
  }),
                      Catch::Contains("replica 0: the starting parameters x are not finite"));
  CHECK(finished[0] == 0);
  for (int r = 1; r < p; ++r) {
    INFO("replica " << r);
    const auto& x = end[static_cast<std::size_t>(r)];
    REQUIRE(finished[static_cast<std::size_t>(r)] == 1);
    for (float v : x) CHECK(std::isfinite(v));
    CHECK(ps_test::distance2(x) < 0.05);
  }
}
