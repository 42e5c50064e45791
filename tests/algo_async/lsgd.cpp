// Asynchronous LSGD on the thread team (4 workers): convergence on a noisy quadratic (known optimum) and on
// logistic regression (against full-batch gradient descent), every worker holding the same leader copy after
// finish(), byte counters against the communication model, workers that never wait for a sleeping one (no
// staleness bound), rounds that progress during the run with more workers than cores (the bound), reductions
// to plain SGD (one worker; zero pull) against scalar loops, and the fault rules.
// How the workers' steps interleave is up to the scheduler, so every check holds for any interleaving.

#include "support.hpp"

#include <tether/algo/async_lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using worker = tether::team::worker;
using opt_t = tether::algo::async_lsgd<worker>;
using async_test::distance2;

constexpr int p = 4;

/// What a worker saw, recorded on its thread and checked on the test's.
struct seen {
  double start = 0, end = 0;
  std::uint64_t steps = 0, rounds = 0, started = 0, stat_rounds = 0;
  bool in_flight = true;
  int leader = -2;
  std::vector<float> copy;
  std::uint64_t sent = 0, received = 0;
};

}  // namespace

TEST_CASE("Async LSGD on the team: every worker reaches the quadratic's optimum; same leader copy at the end",
          "[async][lsgd]") {
  const auto& q = async_test::quad();
  tether::team team(p);
  std::vector<seen> s(p);
  async_test::skew_bound skew(p, 8);
  team.run([&](worker& w) {
    auto& me = s[static_cast<std::size_t>(w.rank())];
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 8, .strength = 0.3f, .jump = 0.1f}});
    me.start = distance2(x);
    async_test::train(opt, q, x, g, w.rank(), 0, 400, &skew);
    opt.finish(x);
    me.end = distance2(x);
    me.rounds = opt.pull_policy().rounds_completed();
    me.started = opt.pull_policy().rounds_started();
    me.stat_rounds = opt.stats().rounds;
    me.in_flight = opt.pull_policy().in_flight();
    me.leader = opt.pull_policy().leader();
    auto c = opt.target(0);
    me.copy.assign(c.data(), c.data() + c.size());
    me.sent = w.counters().bytes_sent;
    me.received = w.counters().bytes_received;
  });
  std::uint64_t total_sent = 0;
  std::uint64_t total_received = 0;
  for (int r = 0; r < p; ++r) {
    const auto& me = s[static_cast<std::size_t>(r)];
    INFO("worker " << r << ": mean squared distance to the optimum " << me.start << " -> " << me.end);
    // The noise floor of SGD with lr 0.05 and gradient noise 0.3 is about lr*sigma^2/(2*a_min) = 0.0045.
    CHECK(me.end < 0.02);
    CHECK(me.end < me.start / 20);
    CHECK_FALSE(me.in_flight);
    CHECK(me.rounds == 399 / 8);
    CHECK(me.started == me.rounds);
    CHECK(me.stat_rounds == me.rounds);
    CHECK(me.leader >= 0);
    CHECK(me.leader == s[0].leader);
    CHECK(me.copy == s[0].copy);  // exact copies of one worker's parameters
    total_sent += me.sent;
    total_received += me.received;
  }
  // Bytes: per round a 12-byte election each way on every worker, and the leader's N floats received by every
  // other worker (sent by the leader (p-1) times).
  const std::uint64_t rounds = s[0].rounds;
  const std::uint64_t n = q.dimension();
  CHECK(total_received == rounds * (12 * p + (p - 1) * n * sizeof(float)));
  CHECK(total_sent == total_received);
}

TEST_CASE("Async LSGD on the team converges on logistic regression", "[async][lsgd]") {
  const auto& l = async_test::logit();
  tether::team team(p);
  std::vector<double> start(p), end(p);
  async_test::skew_bound skew(p, 10);
  team.run([&](worker& w) {
    auto x = async_test::start_point(l.dimension(), w.rank());
    std::vector<float> g(x.size());
    opt_t opt(w, x.size(), {.lr = 0.2, .pull = {.period = 10, .strength = 0.2f}});
    start[static_cast<std::size_t>(w.rank())] = async_test::full_loss(x);
    async_test::train(opt, l, x, g, w.rank(), 0, 600, &skew);
    opt.finish(x);
    end[static_cast<std::size_t>(w.rank())] = async_test::full_loss(x);
  });
  const double best = async_test::logistic_optimum();
  for (int r = 0; r < p; ++r) {
    INFO("worker " << r << ": full-batch loss " << start[r] << " -> " << end[r] << ", optimum " << best);
    CHECK(end[static_cast<std::size_t>(r)] < best + 0.05);
  }
}

TEST_CASE("Async LSGD on the team: a sleeping worker does not hold the others back", "[async][lsgd]") {
  // Worker 3 falls asleep after 50 steps and wakes only when the three others have taken all their 300 steps:
  // if they had to wait for a round with it, they never would (and the sleeper gives up after a minute, so the
  // test fails instead of hanging). Then everyone completes the rounds due in finish().
  const auto& q = async_test::quad();
  constexpr int sleeper = 3;
  constexpr std::uint64_t steps = 300;
  constexpr std::uint32_t period = 5;
  tether::team team(p);
  async_test::signal fast_done;
  std::vector<seen> s(p);
  std::vector<std::uint64_t> rounds_while_asleep(p);
  bool woken = false;
  team.run([&](worker& w) {
    auto& me = s[static_cast<std::size_t>(w.rank())];
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    // max_staleness = 0: the workers never wait for a round (with the default bound they would wait for the
    // sleeper once it is 4 rounds behind; that bound has its own test below).
    opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = period, .strength = 0.2f, .max_staleness = 0}});
    async_test::train(opt, q, x, g, w.rank(), 0, 50);
    if (w.rank() == sleeper) {
      woken = fast_done.wait_for(p - 1);
      async_test::train(opt, q, x, g, w.rank(), 50, steps);
    } else {
      async_test::train(opt, q, x, g, w.rank(), 50, steps);
      me.steps = opt.stats().steps;  // taken while the sleeper slept
      rounds_while_asleep[static_cast<std::size_t>(w.rank())] = opt.pull_policy().rounds_completed();
      fast_done.add();
    }
    opt.finish(x);
    me.end = distance2(x);
    me.rounds = opt.pull_policy().rounds_completed();
    me.leader = opt.pull_policy().leader();
    auto c = opt.target(0);
    me.copy.assign(c.data(), c.data() + c.size());
  });
  CHECK(woken);
  for (int r = 0; r < p; ++r) {
    const auto& me = s[static_cast<std::size_t>(r)];
    INFO("worker " << r);
    if (r != sleeper) {
      CHECK(me.steps == steps);
      // Rounds need every worker: while the sleeper slept at step 50, at most the rounds it had joined (due at
      // steps 5, 10, ..., 50) could complete.
      CHECK(rounds_while_asleep[static_cast<std::size_t>(r)] <= 50 / period);
    }
    CHECK(me.rounds == (steps - 1) / period);
    CHECK(me.leader == s[0].leader);
    CHECK(me.copy == s[0].copy);
    CHECK(me.end < 0.05);
  }
}

TEST_CASE("Async LSGD on the team: the rounds progress during the run with more workers than cores",
          "[async][lsgd]") {
  // 4 workers taking cheap steps (the 64-parameter quadratic): on a machine with fewer cores than workers, a
  // worker used to run most of its loop while the others were descheduled, and only 11-23 of its 249 rounds
  // completed before finish(). With the staleness bound (default: 4 rounds, waiting at most 10 ms per step)
  // at least 90% of them complete during the steps, whatever the machine: a worker more than 4 rounds behind
  // sleeps while it polls, so the others get the cores.
  const auto& q = async_test::quad();
  constexpr std::uint64_t steps = 4000;
  constexpr std::uint32_t period = 16;
  constexpr std::uint64_t due = (steps - 1) / period;  // 249
  tether::team team(p);
  std::vector<std::uint64_t> during(p), total(p), late(p), stat_rounds(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = period}});
    async_test::train(opt, q, x, g, w.rank(), 0, steps);
    during[me] = opt.pull_policy().rounds_completed();
    opt.finish(x);
    total[me] = opt.pull_policy().rounds_completed();
    late[me] = opt.pull_policy().rounds_late();
    stat_rounds[me] = opt.stats().rounds;
  });
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    INFO("worker " << r << ": " << during[me] << " of " << total[me] << " rounds during the steps");
    CHECK(total[me] == due);
    CHECK(stat_rounds[me] == due);
    CHECK(during[me] * 10 >= due * 9);
    CHECK(late[me] == total[me] - during[me]);
  }
}

TEST_CASE("Async LSGD on the team: one worker is plain SGD; zero pull gives independent runs", "[async][lsgd]") {
  // References: x <- x - lr*g as a scalar loop, with the same losses and gradients.
  const auto& q = async_test::quad();
  constexpr std::uint64_t steps = 120;
  constexpr float lr = 0.05f;
  auto reference = [&](int rank) {
    auto x = async_test::start_point(q.dimension(), rank);
    std::vector<float> g(x.size());
    for (std::uint64_t t = 0; t < steps; ++t) {
      async_test::gradient(q, x, g, rank, t);
      for (std::size_t i = 0; i < x.size(); ++i) x[i] -= lr * g[i];
    }
    return x;
  };
  SECTION("p = 1: the worker is always its own leader and never pulls") {
    tether::team team(1);
    std::vector<float> x;
    std::uint64_t rounds = 0;
    int leader = -2;
    team.run([&](worker& w) {
      x = async_test::start_point(q.dimension(), 0);
      std::vector<float> g(x.size());
      opt_t opt(w, x.size(), {.lr = lr, .pull = {.period = 4, .strength = 0.5f, .jump = 0.5f}});
      async_test::train(opt, q, x, g, 0, 0, steps);
      opt.finish(x);
      rounds = opt.pull_policy().rounds_completed();
      leader = opt.pull_policy().leader();
    });
    CHECK(x == reference(0));
    CHECK(rounds == (steps - 1) / 4);
    CHECK(leader == 0);
  }
  SECTION("p = 4, strength = jump = 0: rounds happen, nobody moves for them") {
    tether::team team(p);
    std::vector<std::vector<float>> x(p);
    std::vector<std::uint64_t> rounds(p);
    team.run([&](worker& w) {
      auto& mine = x[static_cast<std::size_t>(w.rank())];
      mine = async_test::start_point(q.dimension(), w.rank());
      std::vector<float> g(mine.size());
      opt_t opt(w, mine.size(), {.lr = lr, .pull = {.period = 4, .strength = 0.0f, .jump = 0.0f}});
      async_test::train(opt, q, mine, g, w.rank(), 0, steps);
      opt.finish(mine);
      rounds[static_cast<std::size_t>(w.rank())] = opt.pull_policy().rounds_completed();
    });
    for (int r = 0; r < p; ++r) {
      INFO("worker " << r);
      CHECK(x[static_cast<std::size_t>(r)] == reference(r));
      CHECK(rounds[static_cast<std::size_t>(r)] == (steps - 1) / 4);
    }
  }
}

TEST_CASE("Async LSGD on the team: a worker that throws releases the others; run() rethrows it", "[async][lsgd]") {
  const auto& q = async_test::quad();
  constexpr int thrower = 2;
  // Repeated: which operations are in flight when the worker throws depends on the timing.
  SECTION("while the others keep stepping and then finish") {
    for (int rep = 0; rep < 5; ++rep) {
      tether::team team(p);
      std::string what;
      try {
        team.run([&](worker& w) {
          auto x = async_test::start_point(q.dimension(), w.rank());
          std::vector<float> g(x.size());
          opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 3}});
          async_test::train(opt, q, x, g, w.rank(), 0, 37);
          if (w.rank() == thrower) throw std::runtime_error("boom");
          async_test::train(opt, q, x, g, w.rank(), 37, 200);
          opt.finish(x);
        });
      } catch (const tether::aborted&) {
        what = "aborted";
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      CHECK(what == "boom");
    }
  }
  SECTION("while the others wait in a barrier of the team, with rounds the thrower is due but never joined") {
    // The others take one step and wait in a barrier; the thrower takes 40 steps (13 rounds due that nobody
    // else posts) and throws: it must not wait for those rounds on its way out.
    for (int rep = 0; rep < 5; ++rep) {
      tether::team team(p);
      std::string what;
      try {
        team.run([&](worker& w) {
          auto x = async_test::start_point(q.dimension(), w.rank());
          std::vector<float> g(x.size());
          opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 3}});
          async_test::train(opt, q, x, g, w.rank(), 0, w.rank() == thrower ? 40 : 1);
          if (w.rank() == thrower) throw std::runtime_error("boom");
          w.barrier();
        });
      } catch (const tether::aborted&) {
        what = "aborted";
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      CHECK(what == "boom");
    }
  }
}

TEST_CASE("Async LSGD on the team: a worker that returns early makes finish() fail instead of hang",
          "[async][lsgd]") {
  const auto& q = async_test::quad();
  tether::team team(p);
  std::string what;
  try {
    team.run([&](worker& w) {
      auto x = async_test::start_point(q.dimension(), w.rank());
      std::vector<float> g(x.size());
      opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 4}});
      // Worker 1 stops after 20 steps (it completes its 4 rounds on the way out); the others are due 24.
      async_test::train(opt, q, x, g, w.rank(), 0, w.rank() == 1 ? 20 : 100);
      opt.finish(x);
    });
  } catch (const tether::aborted&) {
    what = "aborted";
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  CHECK_THAT(what, Catch::Contains("cannot complete"));
}
