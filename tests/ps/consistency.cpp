// Consistency policies on the thread team (4 replicas): bulk-synchronous rounds equal synchronous SGD on the
// summed gradient (a loop written here, bit for bit); bounded staleness s holds under a deliberately slow
// replica (no push applied more than s pushes ahead of the slowest live replica, and the bound is reached),
// where the asynchronous mode, the control, runs further ahead; asynchronous Downpour converges to the
// quadratic's known optimum and to the logistic problem's optimal loss.

#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 4;

}  // namespace

TEST_CASE("Bulk-synchronous Downpour equals synchronous SGD on the summed gradient", "[ps][consistency]") {
  // Round k applies one SGD step on g_0 + g_1 + g_2 + g_3 (summed in replica order), every gradient taken at
  // the parameters of round k - 1. Replica 0 initialises the shards and pushes from its first step; the others
  // join at their first step (fetch, gradient dropped), so their k-th push is their step k: they take one more
  // step than replica 0 for the same number of pushes.
  const float lr = 0.02f;
  constexpr std::uint64_t rounds = 40;
  const std::size_t n = ps_test::quad().dimension();
  std::vector<std::vector<float>> final_x(p);
  std::vector<tether::ps::replica_stats> stats(p);
  tether::team team(p);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    tether::algo::downpour<worker, tether::step::sgd> opt(
        w, n, {.lr = lr, .shards = 3, .consistency = tether::ps::consistency::bulk_synchronous()});
    auto x = ps_test::start_point(n);
    std::vector<float> g(n);
    const std::uint64_t my_steps = w.rank() == 0 ? rounds : rounds + 1;
    for (std::uint64_t t = 0; t < my_steps; ++t)
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    opt.finish(x);
    final_x[r] = x;
    stats[r] = opt.stats();
  });

  std::vector<float> wv = ps_test::start_point(n);
  std::vector<float> sum(n), g(n);
  for (std::uint64_t k = 0; k < rounds; ++k) {
    for (int r = 0; r < p; ++r) {
      ps_test::gradient(ps_test::quad(), wv, g, r, r == 0 ? k : k + 1);
      for (std::size_t i = 0; i < n; ++i) sum[i] = r == 0 ? g[i] : sum[i] + g[i];
    }
    for (std::size_t i = 0; i < n; ++i) wv[i] -= lr * sum[i];
  }
  for (int r = 0; r < p; ++r) {
    INFO("replica " << r);
    CHECK(final_x[static_cast<std::size_t>(r)] == wv);
    CHECK(stats[static_cast<std::size_t>(r)].pushes == rounds);
    CHECK(stats[static_cast<std::size_t>(r)].staleness.max == 0);
    CHECK(stats[static_cast<std::size_t>(r)].max_lead == 0);
  }
}

namespace {

/// 4 replicas, replica 3 sleeping 3 ms before each step; returns each replica's stats.
std::vector<tether::ps::replica_stats> run_with_slow_replica(tether::ps::consistency c, std::uint64_t steps) {
  const std::size_t n = ps_test::quad().dimension();
  std::vector<tether::ps::replica_stats> stats(p);
  tether::team team(p);
  team.run([&](worker& w) {
    tether::algo::downpour<worker> opt(w, n, {.lr = 0.05, .shards = 2, .consistency = c, .lease = 30.0});
    auto x = ps_test::start_point(n);
    std::vector<float> g(n);
    for (std::uint64_t t = 0; t < steps; ++t) {
      if (w.rank() == p - 1) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    }
    opt.finish(x);
    stats[static_cast<std::size_t>(w.rank())] = opt.stats();
  });
  return stats;
}

}  // namespace

TEST_CASE("Bounded staleness: no push is applied more than s pushes ahead of the slowest live replica",
          "[ps][consistency]") {
  constexpr std::uint64_t steps = 120;
  for (std::uint32_t s : {0u, 2u, 5u}) {
    INFO("staleness bound s = " << s);
    const auto stats = run_with_slow_replica(tether::ps::consistency::bounded(s), steps);
    std::uint64_t fast_lead = 0;
    for (int r = 0; r < p; ++r) {
      const auto& st = stats[static_cast<std::size_t>(r)];
      CHECK(st.max_lead <= s);
      // With n_fetch = n_push = 1, another replica can make at most 2s + 2 updates between a replica's fetch and
      // its next push (its clock is at least c - 1 - s at the fetch and at most c + s + 1 at the push).
      CHECK(st.staleness.max <= static_cast<std::uint64_t>(p - 1) * (2 * s + 2));
      CHECK(st.pushes == (r == 0 ? steps : steps - 1));
      if (r != p - 1 && st.max_lead > fast_lead) fast_lead = st.max_lead;
    }
    CHECK(fast_lead == s);  // the slow replica held the fast ones back: the bound is reached, not just kept
  }
  // The control: asynchronous, the fast replicas run far ahead of the slow one.
  const auto free_run = run_with_slow_replica(tether::ps::consistency::asynchronous(), steps);
  CHECK(free_run[0].max_lead > 5);
}

TEST_CASE("Asynchronous Downpour with Adagrad shards converges on the noisy quadratic", "[ps][convergence]") {
  const std::size_t n = ps_test::quad().dimension();
  std::vector<std::vector<float>> final_x(p);
  std::vector<double> start_d2(p);
  tether::team team(p);
  team.run([&](worker& w) {
    tether::algo::downpour<worker> opt(w, n, {.lr = 0.3, .local_lr = 0.05, .n_fetch = 2, .n_push = 2, .shards = 4});
    auto x = ps_test::start_point(n);
    start_d2[static_cast<std::size_t>(w.rank())] = ps_test::distance2(x);
    std::vector<float> g(n);
    for (std::uint64_t t = 0; t < 600; ++t) opt.step(x, g, ps_test::gradient(ps_test::quad(), x, g, w.rank(), t));
    opt.finish(x);
    final_x[static_cast<std::size_t>(w.rank())] = x;
  });
  for (int r = 0; r < p; ++r) {
    INFO("replica " << r);
    CHECK(final_x[static_cast<std::size_t>(r)] == final_x[0]);  // finish() leaves the server's parameters
    CHECK(ps_test::distance2(final_x[static_cast<std::size_t>(r)]) < 1e-2);
  }
  CHECK(start_d2[0] > 0.2);  // from far away
}

TEST_CASE("Asynchronous Downpour converges on the logistic problem (Adagrad and plain SGD on the shards)",
          "[ps][convergence]") {
  const std::size_t n = ps_test::logit().dimension();
  const double optimum = ps_test::logistic_optimum();
  const double start = ps_test::full_loss(std::vector<float>(n, 0.0f));
  auto run = [&](auto tag, double lr) {
    using step_t = decltype(tag);
    std::vector<float> result;
    tether::team team(p);
    team.run([&](worker& w) {
      // The cosine decay takes plain SGD below its noise floor (minibatches of 16) whatever the interleaving.
      tether::algo::downpour<worker, step_t> opt(w, n, {.lr = lr, .local_lr = 0.1, .n_fetch = 4, .n_push = 2,
                                                         .shards = 3, .schedule = tether::schedule::cosine(800)});
      std::vector<float> x(n, 0.0f), g(n);
      for (std::uint64_t t = 0; t < 800; ++t) opt.step(x, g, ps_test::gradient(ps_test::logit(), x, g, w.rank(), t));
      opt.finish(x);
      if (w.rank() == 0) result = x;
    });
    return ps_test::full_loss(result);
  };
  const double adagrad = run(tether::step::adagrad{}, 0.1);
  const double sgd = run(tether::step::sgd{}, 0.1);
  INFO("optimum " << optimum << ", start " << start << ", adagrad " << adagrad << ", sgd " << sgd);
  CHECK(adagrad - optimum < 0.02 * (start - optimum));
  CHECK(sgd - optimum < 0.02 * (start - optimum));
}
