// One replica against sequential loops written here: with one shard and n_fetch = n_push = 1 Downpour is plain
// SGD (SGD on the shards) or Adagrad (Adagrad on the shards), bit for bit; with S shards it is the same as with
// one (S up to N and beyond: each element belongs to exactly one shard, so it is updated exactly once per push);
// with n_push and n_fetch > 1 the replica's accrual and local steps follow the paper's Algorithm 7.1 exactly.
// Counters against the byte model.

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/step/adam.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr std::uint64_t steps = 60;

/// Runs one replica of downpour<worker, Step> for `steps` steps on the quadratic; returns its final x (the
/// server's parameters after finish()) and checks that it equals what peek() saw before finish().
template <class Step, class Local = tether::step::sgd>
std::vector<float> run_one(typename tether::algo::downpour<worker, Step, tether::exec::serial, float, Local>::options o,
                           tether::ps::replica_stats* stats = nullptr, std::uint64_t n_steps = steps) {
  using opt_t = tether::algo::downpour<worker, Step, tether::exec::serial, float, Local>;
  const std::size_t n = ps_test::quad().dimension();
  std::vector<float> x = ps_test::start_point(n);
  std::vector<float> g(n);
  tether::team team(1);
  team.run([&](worker& w) {
    opt_t opt(w, n, o);
    for (std::uint64_t t = 0; t < n_steps; ++t) opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, 0, t));
    opt.finish(x);
    if (stats) *stats = opt.stats();
  });
  return x;
}

}  // namespace

TEST_CASE("One replica, one shard, n_fetch = n_push = 1: sequential SGD bit for bit", "[ps][sequential]") {
  const float lr = 0.05f;
  tether::ps::replica_stats st;
  const auto x = run_one<tether::step::sgd>({.lr = lr, .local_lr = 0.3}, &st);

  std::vector<float> w = ps_test::start_point(x.size());
  std::vector<float> g(w.size());
  for (std::uint64_t t = 0; t < steps; ++t) {
    ps_test::gradient(ps_test::quad(), w, g, 0, t);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= lr * g[i];
  }
  CHECK(x == w);
  CHECK(st.steps == steps);
  CHECK(st.pushes == steps);
  CHECK(st.fetches == steps + 1);  // one per step, and finish()
  CHECK(st.pushes_dropped == 0);
  CHECK(st.staleness.total() == steps);
  CHECK(st.staleness.max == 0);  // alone: nobody else updates the shards
  CHECK(st.bytes_sent == steps * x.size() * sizeof(float));
  CHECK(st.bytes_received == (steps + 1) * x.size() * sizeof(float));
  CHECK(!st.lost);
}

TEST_CASE("One replica, one shard, n_fetch = n_push = 1: sequential Adagrad bit for bit", "[ps][sequential]") {
  const float lr = 0.1f;
  const float eps = 1e-7f;
  const auto x = run_one<tether::step::adagrad>({.lr = lr, .shard_step = {.eps = eps, .initial_accumulator = 0.1f}});

  std::vector<float> w = ps_test::start_point(x.size());
  std::vector<float> h(w.size(), 0.1f);
  std::vector<float> g(w.size());
  for (std::uint64_t t = 0; t < steps; ++t) {
    ps_test::gradient(ps_test::quad(), w, g, 0, t);
    for (std::size_t i = 0; i < w.size(); ++i) {
      h[i] += g[i] * g[i];
      w[i] -= lr * g[i] / (std::sqrt(h[i]) + eps);
    }
  }
  CHECK(x == w);
  // And it went somewhere: Adagrad reduces the distance to the optimum.
  CHECK(ps_test::distance2(x) < 0.5 * ps_test::distance2(ps_test::start_point(x.size())));
}

TEMPLATE_TEST_CASE("S shards give the same parameters as one shard (shards are independent)", "[ps][sequential]",
                   tether::step::sgd, tether::step::adagrad, tether::step::adam) {
  const std::size_t n = ps_test::quad().dimension();
  const auto one = run_one<TestType>({.lr = 0.02, .n_fetch = 2, .n_push = 2, .shards = 1});
  for (std::size_t s : {std::size_t{2}, std::size_t{3}, std::size_t{7}, n - 1, n, n + 5, 3 * n}) {
    INFO("shards = " << s);
    CHECK(run_one<TestType>({.lr = 0.02, .n_fetch = 2, .n_push = 2, .shards = s}) == one);
  }
}

TEST_CASE("Each element belongs to exactly one shard: one push of g moves x by exactly -lr*g", "[ps][sequential]") {
  // A replica whose x starts at 0 pushes g = (1, 2, ..., N) once at lr 1 with plain SGD on the shards: every
  // element must end at exactly -g[i] (updated once), for S below, at and above N.
  constexpr std::size_t n = 10;
  for (std::size_t s : {std::size_t{1}, std::size_t{3}, std::size_t{9}, std::size_t{10}, std::size_t{11},
                        std::size_t{32}}) {
    INFO("shards = " << s);
    std::vector<float> x(n, 0.0f);
    std::vector<float> g(n);
    for (std::size_t i = 0; i < n; ++i) g[i] = static_cast<float>(i + 1);
    std::vector<std::uint64_t> versions;
    tether::team team(1);
    team.run([&](worker& w) {
      tether::algo::downpour<worker, tether::step::sgd> opt(w, n, {.lr = 1.0, .local_lr = 0.0, .shards = s});
      opt.step(x, g, 0.0);
      versions.assign(opt.versions().begin(), opt.versions().end());
      opt.finish(x);
    });
    for (std::size_t i = 0; i < n; ++i) CHECK(x[i] == -g[i]);
    CHECK(versions == std::vector<std::uint64_t>(s, 1));  // every shard, empty ones included, took one update
  }
}

TEST_CASE("n_push and n_fetch > 1: accrual, local steps and fetches as in Algorithm 7.1", "[ps][sequential]") {
  // One replica, n_push = 3, n_fetch = 5, a local SGD step at its own rate, SGD on the shards: the reference
  // below replays the paper's client loop on a replica copy x and a server copy w.
  const float lr = 0.04f;
  const float local_lr = 0.02f;
  constexpr std::uint32_t n_push = 3;
  constexpr std::uint32_t n_fetch = 5;
  constexpr std::uint64_t n_steps = 61;
  tether::ps::replica_stats st;
  const auto got = run_one<tether::step::sgd>(
      {.lr = lr, .local_lr = local_lr, .n_fetch = n_fetch, .n_push = n_push}, &st, n_steps);

  std::vector<float> x = ps_test::start_point(got.size());
  std::vector<float> w = x;
  std::vector<float> acc(x.size(), 0.0f);
  std::vector<float> g(x.size());
  bool fresh = true;
  for (std::uint64_t t = 0; t < n_steps; ++t) {
    ps_test::gradient(ps_test::quad(), x, g, 0, t);
    const bool fetch = (t + 1) % n_fetch == 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      acc[i] = fresh ? g[i] : acc[i] + g[i];
      if (!fetch) x[i] -= local_lr * g[i];  // a stateless local step just before a fetch is skipped
    }
    fresh = false;
    if ((t + 1) % n_push == 0) {
      for (std::size_t i = 0; i < w.size(); ++i) w[i] -= lr * acc[i];
      fresh = true;
    }
    if (fetch) x = w;
  }
  CHECK(got == w);  // finish() leaves the server's parameters
  CHECK(st.pushes == n_steps / n_push);
  CHECK(st.fetches == n_steps / n_fetch + 1);
  CHECK(st.bytes_sent == (n_steps / n_push) * got.size() * sizeof(float));

  // The replica's own copy before finish(), against x: run again and read x before finish().
  const std::size_t n = got.size();
  std::vector<float> xr = ps_test::start_point(n);
  std::vector<float> gr(n);
  tether::team team(1);
  team.run([&](worker& wk) {
    tether::algo::downpour<worker, tether::step::sgd> opt(
        wk, n, {.lr = lr, .local_lr = local_lr, .n_fetch = n_fetch, .n_push = n_push});
    for (std::uint64_t t = 0; t < n_steps; ++t) opt.step(xr, gr, ps_test::gradient(ps_test::quad(), xr, gr, 0, t));
    const std::vector<float> before = xr;
    opt.finish(xr);
    xr = before;
  });
  CHECK(xr == x);
}

TEST_CASE("A stateful local step (momentum) keeps its state across fetches", "[ps][sequential]") {
  const float lr = 0.03f;
  const float local_lr = 0.01f;
  const float mu = 0.9f;
  constexpr std::uint32_t n_fetch = 2;
  constexpr std::uint64_t n_steps = 40;
  using local = tether::step::momentum;
  const auto got = run_one<tether::step::sgd, local>(
      {.lr = lr, .local_lr = local_lr, .n_fetch = n_fetch, .local_step = {.momentum = mu}}, nullptr, n_steps);

  std::vector<float> x = ps_test::start_point(got.size());
  std::vector<float> w = x;
  std::vector<float> v(x.size(), 0.0f);
  std::vector<float> g(x.size());
  for (std::uint64_t t = 0; t < n_steps; ++t) {
    ps_test::gradient(ps_test::quad(), x, g, 0, t);
    for (std::size_t i = 0; i < x.size(); ++i) {
      v[i] = mu * v[i] + g[i];  // step::momentum (heavy ball): v = mu*v + g; x -= lr*v
      x[i] -= local_lr * v[i];
      w[i] -= lr * g[i];
    }
    if ((t + 1) % n_fetch == 0) x = w;
  }
  CHECK(got == w);
}
