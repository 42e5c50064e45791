// Asynchronous LSGD and EASGD on device memory, run on the CPU: a test execution space whose memory space is
// not mem::host (host memory underneath) forces the asynchronous pulls' device paths:
//   - async LSGD on the team: the staging buffer in the space's memory and the team's ibroadcast(exec, view,
//     root) (device-to-device copies on the progress thread; no host staging);
//   - async LSGD on a channel with host operations only (as comm::mpi without CUDA-aware MPI): the winner's
//     snapshot and the arrived copy staged through the space's host buffers;
//   - async EASGD: the center is a store of host values, each exchanged block staged through host memory.
// References: the scalar simulation of EASGD's equations (one worker, exact), the conservation of
// sum(x_i) + center (four workers, zero gradient), LSGD's convergence and identical leader copies, and the
// counts of staging copies that say which path ran.

#include "support.hpp"
#include "../common/fake_device.hpp"

#include <tether/algo/async_easgd.hpp>
#include <tether/algo/async_lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/concepts.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace {

using tether_test::copies;
using tether_test::fake_device;
using tether_test::fake_memory;
using tether_test::on_device;

/// A team worker seen through a private channel with host operations only (no ibroadcast(exec, view, root)),
/// as comm::mpi without a CUDA-aware MPI: device buffers must be staged through host memory.
class host_channel {
 public:
  explicit host_channel(std::unique_ptr<tether::team::worker> w) : w_(std::move(w)) {}
  [[nodiscard]] int rank() const noexcept { return w_->rank(); }
  [[nodiscard]] int size() const noexcept { return w_->size(); }
  [[nodiscard]] tether::request imin_loc(double s, tether::election& e) { return w_->imin_loc(s, e); }
  template <class T>
  [[nodiscard]] tether::request ibroadcast(std::span<T> v, int root) {
    return w_->ibroadcast(v, root);
  }
  template <class T>
  [[nodiscard]] tether::request iallreduce_sum(std::span<const T> s, std::span<T> r) {
    return w_->iallreduce_sum(s, r);
  }
  void abort() noexcept { w_->abort(); }

 private:
  std::unique_ptr<tether::team::worker> w_;
};

/// The team worker's collectives, and a duplicate() that gives a host_channel.
class host_channel_comm {
 public:
  explicit host_channel_comm(tether::team::worker& w) : w_(&w) {}
  [[nodiscard]] int rank() const noexcept { return w_->rank(); }
  [[nodiscard]] int size() const noexcept { return w_->size(); }
  void barrier() { w_->barrier(); }
  template <class T>
  void allreduce_sum(std::span<T> d) {
    w_->allreduce_sum(d);
  }
  template <class T>
  [[nodiscard]] tether::request iallreduce_sum(std::span<const T> s, std::span<T> r) {
    return w_->iallreduce_sum(s, r);
  }
  template <class T>
  void broadcast(std::span<T> d, int root) {
    w_->broadcast(d, root);
  }
  [[nodiscard]] tether::election min_loc(double s) { return w_->min_loc(s); }
  [[nodiscard]] host_channel_comm& group() noexcept { return *this; }
  [[nodiscard]] const tether::comm_counters& counters() const noexcept { return w_->counters(); }
  [[nodiscard]] std::unique_ptr<host_channel> duplicate() { return std::make_unique<host_channel>(w_->duplicate()); }

 private:
  tether::team::worker* w_;
};
static_assert(tether::nonblocking_communicator<host_channel_comm>);

using worker = tether::team::worker;
using async_test::distance2;
constexpr int p = 4;

/// Steps [from, to) of a worker's loop on device views of x and g; the workers drift at most `skew` apart.
template <class Opt, class Problem>
void train_on_device(Opt& opt, const Problem& q, std::vector<float>& x, std::vector<float>& g, int rank,
                     std::uint64_t from, std::uint64_t to, async_test::skew_bound* skew = nullptr) {
  for (std::uint64_t t = from; t < to; ++t) {
    if (skew != nullptr) skew->before_step(t);
    const double loss = async_test::gradient(q, x, g, rank, t);
    opt.step(on_device(x), on_device(g), loss);
  }
}

/// Asynchronous LSGD on device memory through communicator handle Comm (made from a team worker by `wrap`):
/// every worker converges and ends with the same leader copy. Returns the team's staging copies.
template <class Comm, class Wrap>
void check_async_lsgd(Wrap&& wrap, copies& count) {
  const auto& q = async_test::quad();
  using opt_t = tether::algo::async_lsgd<Comm, tether::step::sgd, fake_device>;
  tether::team team(p);
  std::vector<double> end(p);
  std::vector<std::vector<float>> copy(p);
  std::vector<int> leader(p);
  std::vector<std::uint64_t> rounds(p);
  async_test::skew_bound skew(p, 8);
  team.run([&](worker& w) {
    auto comm = wrap(w);
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    opt_t opt(fake_device{&count}, *comm, x.size(),
              {.lr = 0.05, .pull = {.period = 8, .strength = 0.3f, .jump = 0.1f}});
    train_on_device(opt, q, x, g, w.rank(), 0, 400, &skew);
    opt.finish(on_device(x));
    end[me] = distance2(x);
    auto c = opt.target(0);
    copy[me].assign(c.data(), c.data() + c.size());
    leader[me] = opt.pull_policy().leader();
    rounds[me] = opt.pull_policy().rounds_completed();
  });
  for (int r = 0; r < p; ++r) {
    const auto me = static_cast<std::size_t>(r);
    INFO("worker " << r << ": mean squared distance to the optimum " << end[me]);
    CHECK(end[me] < 0.02);
    CHECK(rounds[me] == 399 / 8);
    CHECK(leader[me] >= 0);
    CHECK(leader[me] == leader[0]);
    CHECK(copy[me] == copy[0]);
  }
}

/// With one worker EASGD's exchanges happen in a known order: the scalar simulation of the equations.
void easgd_reference(std::vector<float>& x, std::vector<float>& c, std::uint64_t steps, std::uint32_t period,
                     float lr, float beta) {
  std::vector<float> g(x.size());
  c = x;
  for (std::uint64_t t = 0; t < steps; ++t) {
    async_test::gradient(async_test::quad(), x, g, 0, t);
    const bool exchange = t != 0 && t % period == 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float delta = exchange ? beta * (x[i] - c[i]) : 0.0f;
      x[i] = x[i] - lr * g[i] - delta;
      c[i] = c[i] + delta;
    }
  }
}

}  // namespace

TEST_CASE("Async LSGD on device memory: the team's device broadcast, no host staging", "[async][lsgd][device]") {
  copies count;
  check_async_lsgd<worker>([](worker& w) { return &w; }, count);
  CHECK(count.to_host == 0);
  CHECK(count.from_host == 0);
}

TEST_CASE("Async LSGD on device memory: a host-only channel stages the leader's snapshot through host memory",
          "[async][lsgd][device]") {
  copies count;
  check_async_lsgd<host_channel_comm>([](worker& w) { return std::make_unique<host_channel_comm>(w); }, count);
  // Every round: one snapshot copied out by the winner, the arrived copy copied in on every worker.
  const std::uint64_t rounds = 399 / 8;
  CHECK(count.to_host == rounds);
  CHECK(count.from_host == rounds * p);
}

TEST_CASE("Async EASGD on device memory follows the equations exactly with one worker, for 1 and 3 shards",
          "[async][easgd][device]") {
  const auto& q = async_test::quad();
  constexpr std::uint64_t steps = 90;
  constexpr std::uint32_t period = 4;
  constexpr float lr = 0.05f;
  constexpr float beta = 0.5f;
  auto x_ref = async_test::start_point(q.dimension(), 0);
  std::vector<float> c_ref;
  easgd_reference(x_ref, c_ref, steps, period, lr, beta);
  for (std::uint32_t shards : {1u, 3u}) {
    CAPTURE(shards);
    copies count;
    tether::team team(1, {.tuning = {.store_block = 16}});  // blocks of 16: several staged blocks per exchange
    std::vector<float> x, c;
    team.run([&](worker& w) {
      using opt_t = tether::algo::async_easgd<worker, tether::step::sgd, fake_device>;
      x = async_test::start_point(q.dimension(), 0);
      std::vector<float> g(x.size());
      opt_t opt(fake_device{&count}, w, x.size(),
                {.lr = lr, .pull = {.period = period, .beta = beta, .shards = shards}});
      train_on_device(opt, q, x, g, 0, 0, steps);
      opt.finish(on_device(x));
      auto t = opt.target(0);
      c.assign(t.data(), t.data() + t.size());
    });
    CHECK(x == x_ref);
    CHECK(c == c_ref);
    // Staging: the initial center out once; per exchange, each block in and its delta out; the final center in.
    const std::uint64_t blocks = (q.dimension() + 15) / 16;
    const std::uint64_t exchanges = (steps - 1) / period;
    CHECK(count.to_host == 1 + exchanges * blocks);
    CHECK(count.from_host == exchanges * blocks + 1);
  }
}

TEST_CASE("Async EASGD on device memory: zero gradient conserves sum(x_i) + center with 4 workers and 2 shards",
          "[async][easgd][device]") {
  const std::size_t n = async_test::quad().dimension();
  constexpr std::uint64_t steps = 200;
  copies count;
  tether::team team(p);
  std::vector<std::vector<float>> start(p), end(p);
  std::vector<float> center;
  team.run([&](worker& w) {
    using opt_t = tether::algo::async_easgd<worker, tether::step::sgd, fake_device>;
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(n, w.rank());
    start[me] = x;
    std::vector<float> g(n, 0.0f);
    opt_t opt(fake_device{&count}, w, n, {.lr = 0.05, .pull = {.period = 3, .beta = 0.9f, .owner = 1, .shards = 2}});
    for (std::uint64_t t = 0; t < steps; ++t) opt.step(on_device(x), on_device(g), 1.0);
    opt.finish(on_device(x));
    end[me] = x;
    if (me == 0) {
      auto c = opt.target(0);
      center.assign(c.data(), c.data() + c.size());
    }
  });
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double before = 0;
    double after = center[i];
    for (int r = 0; r < p; ++r) {
      before += start[static_cast<std::size_t>(r)][i];
      after += end[static_cast<std::size_t>(r)][i];
    }
    before += before / p;  // the center starts at the mean of the starting points
    worst = std::max(worst, std::abs(after - before));
  }
  INFO("largest change of sum(x) + center: " << worst);
  CHECK(worst < 1e-4);
  CHECK(count.to_host > 0);
}
