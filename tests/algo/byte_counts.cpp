// Each optimizer counts its own bytes: two optimizers on the same workers, stepped in turn, each report the
// payload of their own rounds only, by the team's byte model (docs/architecture.md#counters) written out here,
// while the communicator's counters hold the sum. SwarmSGD and Downpour, which keep their own stats, likewise: after
// another optimizer has used the communicator, each reports what the communicator moved during its own life.

#include <tether/algo/local_sgd.hpp>
#include <tether/algo/downpour.hpp>
#include <tether/algo/lsgd.hpp>
#include <tether/algo/swarm_sgd.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

using worker = tether::team::worker;
constexpr int p = 3;

/// Worker r's share of a reduce-scatter of n elements.
std::uint64_t share(std::uint64_t n, int r) {
  return n * static_cast<std::uint64_t>(r + 1) / p - n * static_cast<std::uint64_t>(r) / p;
}

/// The team's all-reduce of n elements of `bytes` bytes: 2 (n - share) bytes each way.
std::uint64_t allreduce_bytes(std::uint64_t n, std::uint64_t bytes, int r) { return 2 * (n - share(n, r)) * bytes; }

}  // namespace

TEST_CASE("each optimizer counts the bytes of its own steps, not the communicator's running total",
          "[algo][counters]") {
  // Local SGD on 10 floats with period 4 and LSGD on 7 floats with period 5, 20 steps each, interleaved.
  // Local SGD: 5 rounds, each an all-reduce of the finite-worker count (1 double) and of x.
  // LSGD: 3 elections (steps 5, 10, 15), each 12 bytes each way, and a broadcast of 7 floats from the leader
  // (worker 0, which has the lowest loss): the root sends (p-1)*28 bytes, the others receive 28.
  constexpr std::size_t na = 10;
  constexpr std::size_t nb = 7;
  constexpr int steps = 20;
  tether::team team(p);
  std::array<tether::worker_stats, p> sa{}, sb{};
  std::array<tether::comm_counters, p> total{};
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    const auto base = w.counters();
    tether::algo::local_sgd<worker> a(w, na, {.lr = 0.1, .pull = {.period = 4}});
    tether::algo::lsgd<worker> b(w, nb, {.lr = 0.1, .pull = {.period = 5}});
    std::vector<float> xa(na, 1.0f), ga(na, 0.5f), xb(nb, 2.0f), gb(nb, 0.25f);
    for (int t = 0; t < steps; ++t) {
      a.step(xa, ga, 1.0);
      b.step(xb, gb, 1.0 + w.rank());
    }
    sa[me] = a.stats();
    sb[me] = b.stats();
    const auto now = w.counters();
    total[me] = {now.bytes_sent - base.bytes_sent, now.bytes_received - base.bytes_received, 0};
  });
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto ur = static_cast<std::size_t>(r);
    const std::uint64_t a_bytes = 5 * (allreduce_bytes(1, sizeof(double), r) + allreduce_bytes(na, sizeof(float), r));
    CHECK(sa[ur].rounds == 5);
    CHECK(sa[ur].bytes_sent == a_bytes);
    CHECK(sa[ur].bytes_received == a_bytes);
    const std::uint64_t b_sent = 3 * (12 + (r == 0 ? (p - 1) * nb * sizeof(float) : 0));
    const std::uint64_t b_received = 3 * (12 + (r == 0 ? 0 : nb * sizeof(float)));
    CHECK(sb[ur].rounds == 3);
    CHECK(sb[ur].bytes_sent == b_sent);
    CHECK(sb[ur].bytes_received == b_received);
    CHECK(total[ur].bytes_sent == a_bytes + b_sent);
    CHECK(total[ur].bytes_received == a_bytes + b_received);
  }
}

namespace {

/// Runs local SGD on every worker first (its traffic stays in the communicator's counters), then `Opt` for 40
/// steps; returns per worker the stats of `Opt` and what the communicator moved during `Opt`'s life.
template <class Opt, class MakeOptions>
void after_local_sgd(MakeOptions make_options, std::array<tether::comm_counters, p>& reported,
                     std::array<tether::comm_counters, p>& moved) {
  constexpr std::size_t n = 16;
  tether::team team(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    std::vector<float> x(n, 1.0f), g(n, 0.5f);
    {
      tether::algo::local_sgd<worker> first(w, n, {.lr = 0.1, .pull = {.period = 2}});
      for (int t = 0; t < 10; ++t) first.step(x, g, 1.0);
      first.finish(x);
    }
    const auto before = w.counters();
    {
      Opt opt(w, n, make_options());
      for (int t = 0; t < 40; ++t) opt.step(x, g, 1.0);
      opt.finish(x);
      reported[me] = {opt.stats().bytes_sent, opt.stats().bytes_received, 0};
    }
    const auto after = w.counters();
    moved[me] = {after.bytes_sent - before.bytes_sent, after.bytes_received - before.bytes_received, 0};
  });
}

}  // namespace

TEST_CASE("swarm_sgd and downpour count their own bytes on a communicator used before", "[algo][counters]") {
  std::array<tether::comm_counters, p> reported{}, moved{};
  SECTION("swarm_sgd") {
    using opt = tether::algo::swarm_sgd<worker>;
    after_local_sgd<opt>([] { return opt::options{.lr = 0.1, .topology = tether::comm::topology::ring(p), .local_steps = 4, .seed = 3}; },
                         reported, moved);
  }
  SECTION("downpour") {
    using opt = tether::algo::downpour<worker>;
    after_local_sgd<opt>([] { return opt::options{.lr = 0.1, .local_lr = 0.1, .n_fetch = 4, .n_push = 4}; }, reported,
                         moved);
  }
  for (std::size_t r = 0; r < p; ++r) {
    CAPTURE(r);
    CHECK(moved[r].bytes_received > 0);
    CHECK(reported[r].bytes_sent == moved[r].bytes_sent);
    CHECK(reported[r].bytes_received == moved[r].bytes_received);
  }
}
