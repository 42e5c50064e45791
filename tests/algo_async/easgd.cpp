// Asynchronous EASGD on the thread team (4 workers): sum_i x_i + center is conserved when the gradient is
// zero, with the center's owner asleep while the others exchange (no barrier); convergence of the workers
// and of the center on a noisy quadratic; byte counters against the model; one worker against a scalar
// simulation of the equations; the fault rules.

#include "support.hpp"

#include <tether/algo/async_easgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using worker = tether::team::worker;
using opt_t = tether::algo::async_easgd<worker>;
using async_test::distance2;

constexpr int p = 4;

}  // namespace

TEST_CASE("Async EASGD on the team: zero gradient conserves sum(x_i) + center; the owner may sleep",
          "[async][easgd]") {
  // The center in one shard on the owner, or in 3 shards on workers 0, 1 and 2.
  const std::uint32_t shards = GENERATE(1u, 3u);
  CAPTURE(shards);
  // With g = 0 only the elastic exchanges move anything, and each moves x_i and the center by opposite
  // amounts. The owner (worker 0) sleeps after its first step until the three others have taken all their
  // steps: they exchange with the center all the same (no barrier). Then the owner exchanges ~100 times with
  // a center nobody else moves any more, so they meet.
  const std::size_t n = async_test::quad().dimension();
  constexpr std::uint64_t steps = 300;
  constexpr std::uint32_t period = 3;
  tether::team team(p);
  async_test::signal others_done;
  bool woken = false;
  std::vector<std::vector<float>> start(p), end(p);
  std::vector<float> center;
  std::vector<std::uint64_t> exchanges_while_asleep(p), exchanges(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(n, w.rank());
    start[me] = x;
    const std::vector<float> g(n, 0.0f);
    opt_t opt(w, n, {.lr = 0.05, .pull = {.period = period, .beta = 0.9f, .owner = 0, .shards = shards}});
    auto run_steps = [&](std::uint64_t from, std::uint64_t to) {
      for (std::uint64_t t = from; t < to; ++t) opt.step(x, g, 1.0);
    };
    run_steps(0, 1);  // the first step opens the center (collective)
    if (w.rank() == 0) {
      woken = others_done.wait_for(p - 1);
      run_steps(1, steps);
    } else {
      run_steps(1, steps);
      exchanges_while_asleep[me] = opt.pull_policy().exchanges();
      others_done.add();
    }
    opt.finish(x);
    exchanges[me] = opt.pull_policy().exchanges();
    end[me] = x;
    if (me == 0) {
      auto c = opt.target(0);
      center.assign(c.data(), c.data() + c.size());
    }
  });
  CHECK(woken);
  for (int r = 1; r < p; ++r) CHECK(exchanges_while_asleep[static_cast<std::size_t>(r)] == (steps - 1) / period);
  for (int r = 0; r < p; ++r) CHECK(exchanges[static_cast<std::size_t>(r)] == (steps - 1) / period);
  double worst = 0;
  double spread = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double before = 0;
    double after = center[i];
    for (int r = 0; r < p; ++r) {
      before += start[static_cast<std::size_t>(r)][i];
      after += end[static_cast<std::size_t>(r)][i];
    }
    before += before / p;  // the center starts at the mean of the starting points
    worst = std::max(worst, std::abs(after - before));
    spread = std::max(spread, std::abs(double(end[0][i]) - double(center[i])));
  }
  INFO("largest change of sum(x) + center: " << worst << "; largest |x_0 - center|: " << spread);
  CHECK(worst < 1e-4);  // values of order 1, ~100 float additions each
  CHECK(spread < 1e-3);
}

TEST_CASE("Async EASGD on the team converges on a noisy quadratic; the center ends on every worker",
          "[async][easgd]") {
  const auto& q = async_test::quad();
  constexpr int owner = p - 1;
  tether::team team(p);
  std::vector<double> start(p), end(p), center_end(p);
  std::vector<std::vector<float>> centers(p);
  std::vector<std::uint64_t> exchanges(p), rounds(p), sent(p), received(p);
  async_test::skew_bound skew(p, 4);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 4, .beta = 0.9f, .owner = owner}});
    start[me] = distance2(x);
    async_test::train(opt, q, x, g, w.rank(), 0, 400, &skew);
    opt.finish(x);
    end[me] = distance2(x);
    auto c = opt.target(0);
    centers[me].assign(c.data(), c.data() + c.size());
    center_end[me] = distance2(centers[me]);
    exchanges[me] = opt.pull_policy().exchanges();
    rounds[me] = opt.stats().rounds;
    sent[me] = w.counters().bytes_sent;
    received[me] = w.counters().bytes_received;
  });
  const std::uint64_t n = q.dimension();
  const std::uint64_t s = sizeof(float);
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    INFO("worker " << r << ": distance " << start[me] << " -> " << end[me] << ", center " << center_end[me]);
    CHECK(end[me] < 0.02);
    CHECK(center_end[me] < 0.02);
    CHECK(exchanges[me] == 399 / 4);
    CHECK(rounds[me] == 399 / 4);
    CHECK(centers[me] == centers[0]);
    // Bytes: the initial all-reduce of the center (2*(N - N_r)*s each way), N floats each way per exchange
    // (none for the owner's own), and the final center counted as a broadcast from the owner.
    const std::uint64_t share = n * (me + 1) / p - n * me / p;
    const std::uint64_t initial = 2 * (n - share) * s;
    const std::uint64_t per_exchange = r == owner ? 0 : n * s;
    CHECK(sent[me] == initial + exchanges[me] * per_exchange + (r == owner ? (p - 1) * n * s : 0));
    CHECK(received[me] == initial + exchanges[me] * per_exchange + (r == owner ? 0 : n * s));
  }
}

TEST_CASE("Async EASGD on the team: one worker follows the equations exactly, for any number of shards",
          "[async][easgd]") {
  // With p = 1 the exchanges happen in a known order. Reference, written from the equations: every `period`
  // steps (not at step 0), with the pre-step x: delta = alpha*(x - xc); x <- x - lr*g - delta; xc <- xc + delta;
  // otherwise x <- x - lr*g. The center starts at x_0; alpha = beta/p = beta.
  const auto& q = async_test::quad();
  constexpr std::uint64_t steps = 90;
  constexpr std::uint32_t period = 4;
  constexpr float lr = 0.05f;
  constexpr float beta = 0.5f;
  auto x_ref = async_test::start_point(q.dimension(), 0);
  auto c_ref = x_ref;
  {
    std::vector<float> g(x_ref.size());
    for (std::uint64_t t = 0; t < steps; ++t) {
      async_test::gradient(q, x_ref, g, 0, t);
      const bool exchange = t != 0 && t % period == 0;
      for (std::size_t i = 0; i < x_ref.size(); ++i) {
        const float delta = exchange ? beta * (x_ref[i] - c_ref[i]) : 0.0f;
        x_ref[i] = x_ref[i] - lr * g[i] - delta;
        c_ref[i] = c_ref[i] + delta;
      }
    }
  }
  const std::uint32_t shards = GENERATE(1u, 2u, 100u);  // 100 > N: empty shards
  CAPTURE(shards);
  tether::team team(1);
  std::vector<float> x, c;
  team.run([&](worker& w) {
    x = async_test::start_point(q.dimension(), 0);
    std::vector<float> g(x.size());
    opt_t opt(w, x.size(), {.lr = lr, .pull = {.period = period, .beta = beta, .shards = shards}});
    async_test::train(opt, q, x, g, 0, 0, steps);
    opt.finish(x);
    auto t = opt.target(0);
    c.assign(t.data(), t.data() + t.size());
  });
  CHECK(x == x_ref);
  CHECK(c == c_ref);
}

TEST_CASE("Async EASGD on the team: a worker that throws releases the others; run() rethrows it",
          "[async][easgd]") {
  const auto& q = async_test::quad();
  for (int rep = 0; rep < 5; ++rep) {
    tether::team team(p);
    std::string what;
    try {
      team.run([&](worker& w) {
        auto x = async_test::start_point(q.dimension(), w.rank());
        std::vector<float> g(x.size());
        opt_t opt(w, x.size(), {.lr = 0.05, .pull = {.period = 3}});
        async_test::train(opt, q, x, g, w.rank(), 0, 30);
        if (w.rank() == 1) throw std::runtime_error("boom");
        async_test::train(opt, q, x, g, w.rank(), 30, 60);
        opt.finish(x);  // a barrier the thrower never reaches
      });
    } catch (const tether::aborted&) {
      what = "aborted";
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    CHECK(what == "boom");
  }
}
