// SwarmSGD's pair average against scalar references: one exchange between two nodes leaves both with
// (Q(x_0) + Q(x_1))/2, exactly fl(x_0 + x_1)/2 for fp32 identity, within the codec's bound of the pair's sum when
// quantized (stochastic uniform 8 and 4 bits, lattice 8 bits); the bytes of each exchange from the counters
// against N*b/8 + 4*ceil(N/B) + the 20-byte header + the status byte; many exchanges of pure gossip keep the
// nodes' mean and reach consensus on every topology.
#include <catch2/catch.hpp>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/lattice.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using tether::comm::topology;

/// Runs two nodes with zero gradients: node 0 starts one exchange (H = 1, one step), node 1 only serves
/// (its period is longer than its single step). Returns both final models and their stats.
template <class Codec>
void one_exchange(const Codec& codec, const std::vector<float>& x0, const std::vector<float>& x1,
                  std::vector<std::vector<float>>& out, std::vector<tether::worker_stats>& st,
                  std::vector<tether::algo::swarm_stats>& sw) {
  tether::team team(2);
  out.assign(2, {});
  st.assign(2, {});
  sw.assign(2, {});
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    std::vector<float> x = r == 0 ? x0 : x1;
    std::vector<float> g(x.size(), 0.0f);
    tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, Codec> opt(
        w, x.size(), {.lr = 0.1, .local_steps = r == 0 ? 1u : 1000u, .codec = codec, .seed = 3, .timeout = 30});
    opt.step(x, g, 0.0);
    opt.finish(x);
    out[r] = x;
    st[r] = opt.stats();
    sw[r] = opt.swarm();
  });
}

}  // namespace

TEST_CASE("swarm_sgd: one fp32 exchange leaves both nodes at fl(x0 + x1)/2, bit for bit", "[swarm]") {
  const auto x0 = swarm_test::start(1000, 0);
  const auto x1 = swarm_test::start(1000, 1);
  std::vector<std::vector<float>> x;
  std::vector<tether::worker_stats> st;
  std::vector<tether::algo::swarm_stats> sw;
  one_exchange(tether::codec::identity<float>{}, x0, x1, x, st, sw);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    const float want = (x0[i] + x1[i]) * 0.5f;  // the reference, written out
    mismatches += (x[0][i] != want) + (x[1][i] != want);
  }
  CHECK(mismatches == 0);
  CHECK(sw[0].exchanges == 1);
  CHECK(sw[1].served == 1);
  // fp32: 20-byte header + 4 bytes per value + the status byte, each way, on both nodes' counters.
  CHECK(st[0].bytes_sent == 20 + 4 * 1000 + 1);
  CHECK(st[0].bytes_received == 20 + 4 * 1000 + 1);
  CHECK(st[1].bytes_sent == 20 + 4 * 1000 + 1);
  CHECK(st[1].bytes_received == 20 + 4 * 1000 + 1);
}

TEST_CASE("swarm_sgd: a quantized exchange conserves the pair's sum within the codec's bound", "[swarm]") {
  const std::size_t n = 1000;  // 4 blocks of 256, the last one short
  const auto x0 = swarm_test::start(n, 0);
  const auto x1 = swarm_test::start(n, 1);
  // The bound of stochastic_uniform max_abs: |Q(x) - x| <= 2 s / (2^b - 1), s = max |x| of the block.
  const auto delta = [](const std::vector<float>& x, std::size_t i, unsigned bits) {
    const std::size_t lo = i / 256 * 256, hi = std::min(lo + 256, x.size());
    double s = 0;
    for (std::size_t k = lo; k < hi; ++k) s = std::max(s, std::abs(double(x[k])));
    return 2.0 * s / double((1u << bits) - 1);
  };
  for (unsigned bits : {8u, 4u}) {
    INFO("bits = " << bits);
    std::vector<std::vector<float>> x;
    std::vector<tether::worker_stats> st;
    std::vector<tether::algo::swarm_stats> sw;
    one_exchange(tether::codec::stochastic_uniform<float>({.bits = bits, .block = 256}), x0, x1, x, st, sw);
    std::size_t outside = 0, differ = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double moved = std::abs((double(x[0][i]) + double(x[1][i])) - (double(x0[i]) + double(x1[i])));
      outside += moved > delta(x0, i, bits) + delta(x1, i, bits) + 1e-6;
      differ += x[0][i] != x[1][i];  // both decode the same two messages
    }
    CHECK(outside == 0);
    CHECK(differ == 0);
    // Bytes each way: N*b/8 + 4*ceil(N/B) + 20, and the status byte.
    const std::uint64_t bytes = n * bits / 8 + 4 * ((n + 255) / 256) + 20 + 1;
    CHECK(st[0].bytes_sent == bytes);
    CHECK(st[0].bytes_received == bytes);
    CHECK(st[1].bytes_sent == bytes);
    CHECK(st[1].bytes_received == bytes);
  }
  // Lattice, 8 bits, step s: each value moves by less than s when encoded; both decode exactly next to their
  // own model when the models are within (2^7 - 1) s of each other.
  const float s = 0.02f;  // radius 127 * 0.02 = 2.54 > |x0 - x1| <= 2
  std::vector<std::vector<float>> x;
  std::vector<tether::worker_stats> st;
  std::vector<tether::algo::swarm_stats> sw;
  one_exchange(tether::codec::lattice<float>({.bits = 8, .block = 256, .step = s}), x0, x1, x, st, sw);
  std::size_t outside = 0, differ = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double moved = std::abs((double(x[0][i]) + double(x[1][i])) - (double(x0[i]) + double(x1[i])));
    outside += moved > 2.0 * s + 1e-6;
    differ += x[0][i] != x[1][i];
  }
  CHECK(outside == 0);
  CHECK(differ == 0);
  CHECK(st[0].bytes_sent == n + 4 * 4 + 20 + 1);
}

TEST_CASE("swarm_sgd: pure gossip keeps the mean and reaches consensus on every topology", "[swarm]") {
  constexpr int p = 8;
  const std::size_t n = 256;
  for (const auto& g : {topology::ring(p), topology::torus(p), topology::hypercube(p), topology::complete(p),
                        topology::random_regular(p, 3, 4), topology::exponential(p),
                        topology({{1, 7}, {0, 2}, {1, 3}, {2, 4, 7}, {3, 5}, {4, 6}, {5, 7}, {6, 0, 3}}, "mine")}) {
    INFO("topology " << g.name());
    for (bool nonblocking : {false, true}) {
      INFO("nonblocking = " << nonblocking);
      std::vector<std::vector<float>> x(p), x_start(p);
      std::atomic<int> reached{0};  // nodes with 300 completed exchanges
      tether::team team(p);
      team.run([&](tether::team::worker& w) {
        const auto r = static_cast<std::size_t>(w.rank());
        std::vector<float> xi = swarm_test::start(n, w.rank()), gi(n, 0.0f);
        x_start[r] = xi;
        tether::algo::swarm_sgd<tether::team::worker> opt(
            w, n, {.lr = 0.0, .topology = g, .local_steps = 1, .nonblocking = nonblocking, .seed = 9, .timeout = 30});
        // Node 3 starts late, as a node descheduled on a loaded machine: had every node stopped at its own 300th
        // exchange, the others would finish before it starts and it could mix only with finished neighbours.
        if (w.rank() == 3) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        // Every node gossips until every node has completed 300 exchanges (non-blocking: a step may end with
        // the exchange still in flight).
        bool counted = false;
        for (int t = 0; t < 10000000 && reached.load() < p; ++t) {
          opt.step(xi, gi, 0.0);
          if (!counted && opt.swarm().exchanges >= 300) {
            counted = true;
            reached.fetch_add(1);
          }
          std::this_thread::yield();  // the steps cost nothing here: let the partners run
        }
        opt.finish(xi);
        x[r] = xi;
      });
      // The mean of the nodes, kept (fp32 rounding of the averages only), against the starting mean in double.
      double worst_mean = 0;
      for (std::size_t i = 0; i < n; ++i) {
        double a = 0, b = 0;
        for (int r = 0; r < p; ++r) a += x[static_cast<std::size_t>(r)][i], b += x_start[static_cast<std::size_t>(r)][i];
        worst_mean = std::max(worst_mean, std::abs(a - b) / p);
      }
      CHECK(worst_mean < 1e-5);
      CHECK(swarm_test::consensus2(x) < 1e-6);  // from about 1/3
    }
  }
}
