// Asynchronous LSGD and EASGD on comm::mpi (1, 2 and 4 ranks): convergence on a noisy quadratic (known
// optimum) and on logistic regression (against a full-batch gradient-descent reference solved here), the
// no-waiting property (ranks run whole training loops while another rank is blocked elsewhere), EASGD's
// conservation of sum(x_i) + center, and the byte counters against the model of docs/mpi.md.
// How the ranks' steps interleave is up to the scheduler (these runs take milliseconds), so every check holds
// for any interleaving: workers sample the whole data set, and the no-waiting tests block a rank on purpose.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "support.hpp"
#include "tether/algo/async_easgd.hpp"
#include "tether/algo/async_lsgd.hpp"
#include "tether/comm/mpi.hpp"

using tether::comm::mpi;

namespace {

const tether::problems::quadratic<float> quad(64, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 11});
const tether::problems::logistic<float> logit({.samples = 1024, .features = 15, .l2 = 1e-3, .seed = 12});

/// Mean squared distance to the quadratic's optimum.
double distance2(std::span<const float> x) {
  double s = 0;
  const auto c = quad.optimum();
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - double(c[i])) * (double(x[i]) - double(c[i]));
  return s / static_cast<double>(x.size());
}

/// Full-batch loss of the logistic problem.
double full_loss(std::span<const float> w) {
  std::vector<float> g(w.size());
  return logit.evaluate(w, g, {});
}

/// The logistic problem's optimal loss, by plain full-batch gradient descent (strongly convex: l2 > 0).
double logistic_optimum() {
  std::vector<float> w(logit.dimension(), 0.0f);
  std::vector<float> g(w.size());
  double loss = 0;
  for (int it = 0; it < 3000; ++it) {
    loss = logit.evaluate(w, g, {});
    for (std::size_t i = 0; i < w.size(); ++i) w[i] -= 0.5f * g[i];
  }
  return loss;
}

/// A worker's loop with Opt, keeping the optimizer for inspection after finish().
template <class Opt, class Problem>
struct run {
  std::vector<float> x;
  std::vector<float> g;
  Opt opt;
  run(mpi& c, const Problem& p, const typename Opt::options& o)
      : x(p.dimension()), g(p.dimension()), opt(c, p.dimension(), o) {
    tether::rng r(tether::derive_seed(5, static_cast<std::uint64_t>(c.rank())));
    for (auto& v : x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  }
  void steps(mpi& c, const Problem& p, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t t = from; t < to; ++t) {
      double loss = 0;
      if constexpr (requires { p.samples(); }) {
        // Minibatches from the whole data set (i.i.d. workers): how long a rank runs alone depends on the
        // scheduler, so a worker that ends up alone must not drift to the optimum of a shard of the data.
        tether::rng r(tether::derive_seed(3, static_cast<std::uint64_t>(c.rank()), t));
        std::vector<std::size_t> idx(16);
        for (auto& i : idx) i = static_cast<std::size_t>(r.below(p.samples()));
        loss = p.evaluate(x, g, tether::batch{idx, 0});
      } else {
        loss = p.evaluate(x, g, tether::batch{{}, tether::derive_seed(3, static_cast<std::uint64_t>(c.rank()), t)});
      }
      opt.step(x, g, loss);
    }
  }
};

/// Blocks rank 0 until every other rank sent a token (they send after their whole loop): if the others had
/// to wait for rank 0 inside their loops this would never return (CTest's timeout then fails the test).
void wait_for_the_others(mpi& c) {
  if (c.rank() == 0) {
    for (int r = 1; r < c.size(); ++r) {
      int token = 0;
      MPI_Recv(&token, 1, MPI_INT, r, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
  } else {
    int token = 1;
    MPI_Send(&token, 1, MPI_INT, 0, 7, MPI_COMM_WORLD);
  }
}

}  // namespace

TEST_CASE("Asynchronous LSGD converges on a noisy quadratic and agrees on the leader at the end", "[async][lsgd]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_lsgd<>;
  run<opt, decltype(quad)> w(c, quad, {.lr = 0.05, .pull = {.period = 8, .strength = 0.3f, .jump = 0.1f}});
  const double start = distance2(w.x);
  w.steps(c, quad, 0, 400);
  w.opt.finish(w.x);
  const double end = distance2(w.x);
  INFO("rank " << c.rank() << ": mean squared distance to the optimum " << start << " -> " << end);
  // The noise floor of SGD with lr 0.05 and gradient noise 0.3 is about lr*sigma^2/(2*a_min) = 0.0045.
  CHECK(end < 0.02);
  CHECK(end < start / 20);

  // Every rank completed the same rounds and holds the same leader copy.
  const auto& pull = w.opt.pull_policy();
  CHECK_FALSE(pull.in_flight());
  CHECK(pull.rounds_completed() == 399 / 8);
  CHECK(pull.rounds_started() == pull.rounds_completed());
  CHECK(w.opt.stats().rounds == pull.rounds_completed());
  auto copy = w.opt.target(0);
  const auto copies = tether_mpi_test::gather(std::span<const float>(copy.data(), copy.size()));
  std::vector<int> leaders(static_cast<std::size_t>(c.size()));
  int mine = pull.leader();
  MPI_Gather(&mine, 1, MPI_INT, leaders.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (c.rank() == 0) {
    for (std::size_t r = 0; r < copies.size(); ++r) {
      CHECK(copies[r] == copies[0]);
      CHECK(leaders[r] == leaders[0]);
    }
    CHECK(leaders[0] >= 0);
  }

  // Bytes: per round a 12-byte election each way, and the leader's N floats received by every other rank.
  std::uint64_t sent = c.counters().bytes_sent;
  std::uint64_t received = c.counters().bytes_received;
  std::uint64_t total_sent = 0;
  std::uint64_t total_received = 0;
  MPI_Allreduce(&sent, &total_sent, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&received, &total_received, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
  const std::uint64_t p = static_cast<std::uint64_t>(c.size());
  const std::uint64_t rounds = pull.rounds_completed();
  const std::uint64_t n = quad.dimension();
  CHECK(total_received == rounds * (12 * p + (p - 1) * n * sizeof(float)));
  CHECK(total_sent == total_received);
}

TEST_CASE("Asynchronous LSGD converges on logistic regression", "[async][lsgd]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_lsgd<>;
  run<opt, decltype(logit)> w(c, logit, {.lr = 0.2, .pull = {.period = 10, .strength = 0.2f}});
  const double start = full_loss(w.x);
  w.steps(c, logit, 0, 600);
  w.opt.finish(w.x);
  const double best = logistic_optimum();
  const double end = full_loss(w.x);
  INFO("rank " << c.rank() << ": full-batch loss " << start << " -> " << end << ", optimum " << best);
  CHECK(end < best + 0.05);
}

TEST_CASE("Asynchronous LSGD: ranks never wait for a round", "[async][lsgd]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_lsgd<>;
  // max_staleness = 0: no bound on the staleness, so no waiting (the default bound waits 4 rounds behind).
  run<opt, decltype(quad)> w(c, quad, {.lr = 0.05, .pull = {.period = 5, .max_staleness = 0}});
  w.steps(c, quad, 0, 1);  // the first step is collective (it sets up the background channel)
  if (c.rank() != 0) {
    // Rank 0 is blocked below: no election can complete, yet these ranks take all their steps.
    w.steps(c, quad, 1, 200);
    CHECK(w.opt.stats().steps == 200);
    CHECK(w.opt.pull_policy().rounds_completed() == 0);
    CHECK(w.opt.pull_policy().in_flight());
  }
  wait_for_the_others(c);
  if (c.rank() == 0) w.steps(c, quad, 1, 200);
  w.opt.finish(w.x);
  CHECK(w.opt.pull_policy().rounds_completed() == 199 / 5);
  CHECK(distance2(w.x) < 0.05);
}

TEST_CASE("Asynchronous EASGD converges on a noisy quadratic; the center ends on every rank", "[async][easgd]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_easgd<>;
  const int owner = c.size() - 1;
  run<opt, decltype(quad)> w(c, quad, {.lr = 0.05, .pull = {.period = 4, .beta = 0.9f, .owner = owner}});
  const double start = distance2(w.x);
  w.steps(c, quad, 0, 400);
  w.opt.finish(w.x);
  const double end = distance2(w.x);
  auto center = w.opt.target(0);
  const double center_end = distance2(std::span<const float>(center.data(), center.size()));
  INFO("rank " << c.rank() << ": distance " << start << " -> " << end << ", center " << center_end);
  CHECK(end < 0.02);
  CHECK(center_end < 0.02);
  CHECK(w.opt.pull_policy().exchanges() == 399 / 4);
  CHECK(w.opt.stats().rounds == 399 / 4);
  const auto centers = tether_mpi_test::gather(std::span<const float>(center.data(), center.size()));
  for (const auto& other : centers) CHECK(other == centers[0]);

  // Bytes: the initial all-reduce of the center, N floats each way per exchange (none for the owner's own),
  // and the final broadcast of the center from the owner.
  const std::uint64_t p = static_cast<std::uint64_t>(c.size());
  const std::uint64_t n = quad.dimension();
  const std::uint64_t s = sizeof(float);
  const std::uint64_t initial = 2 * (n - n / p) * s;
  const std::uint64_t per_exchange = c.rank() == owner ? 0 : n * s;
  const std::uint64_t rounds = w.opt.pull_policy().exchanges();
  CHECK(c.counters().bytes_sent == initial + rounds * per_exchange + (c.rank() == owner ? (p - 1) * n * s : 0));
  CHECK(c.counters().bytes_received == initial + rounds * per_exchange + (c.rank() == owner ? 0 : n * s));
}

TEST_CASE("Asynchronous EASGD converges on logistic regression", "[async][easgd]") {
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_easgd<>;
  run<opt, decltype(logit)> w(c, logit, {.lr = 0.2, .pull = {.period = 5}});
  w.steps(c, logit, 0, 600);
  w.opt.finish(w.x);
  const double best = logistic_optimum();
  auto center = w.opt.target(0);
  const double end = full_loss(w.x);
  const double center_loss = full_loss(std::span<const float>(center.data(), center.size()));
  INFO("rank " << c.rank() << ": loss " << end << ", center " << center_loss << ", optimum " << best);
  CHECK(end < best + 0.05);
  CHECK(center_loss < best + 0.05);
}

TEST_CASE("Asynchronous EASGD: no barrier, and sum(x_i) + center is conserved", "[async][easgd]") {
  // The center in one window on rank 0, or in 3 shards on ranks 0, 1, 2 (mod p): rank 0 holds a shard either way.
  const std::uint32_t shards = GENERATE(1u, 3u);
  CAPTURE(shards);
  mpi c(MPI_COMM_WORLD);
  using opt = tether::algo::async_easgd<>;
  // lr = 0: only the elastic exchanges move anything, and each moves x and the center by opposite amounts.
  run<opt, decltype(quad)> w(c, quad, {.lr = 0.0, .pull = {.period = 3, .beta = 0.9f, .owner = 0, .shards = shards}});
  const std::size_t n = quad.dimension();
  std::vector<double> before(n);
  for (std::size_t i = 0; i < n; ++i) before[i] = w.x[i];
  MPI_Allreduce(MPI_IN_PLACE, before.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  const double p = c.size();
  for (auto& v : before) v += v / p;  // + the center, which starts at the mean

  w.steps(c, quad, 0, 1);  // collective first step: the window is created
  if (c.rank() != 0) {
    // The owner (rank 0) is blocked below; the others exchange with the center all the same.
    w.steps(c, quad, 1, 300);
    CHECK(w.opt.pull_policy().exchanges() == 299 / 3);
  }
  wait_for_the_others(c);
  if (c.rank() == 0) w.steps(c, quad, 1, 300);
  w.opt.finish(w.x);

  std::vector<double> after(n);
  for (std::size_t i = 0; i < n; ++i) after[i] = w.x[i];
  MPI_Allreduce(MPI_IN_PLACE, after.data(), static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  auto center = w.opt.target(0);
  double worst = 0;
  double spread = 0;
  for (std::size_t i = 0; i < n; ++i) {
    after[i] += center.data()[i];
    worst = std::max(worst, std::abs(after[i] - before[i]));
    spread = std::max(spread, std::abs(double(w.x[i]) - double(center.data()[i])));
  }
  INFO("largest change of sum(x) + center: " << worst << "; largest |x - center|: " << spread);
  CHECK(worst < 1e-4);
  // Rank 0 exchanged last, about 100 times with a center nobody else moved any more: they met.
  if (c.rank() == 0) CHECK(spread < 1e-3);
}
