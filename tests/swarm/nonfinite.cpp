// A node whose model is not finite is never averaged into its partner: it takes the partner's model (codecs that
// decode without a reference) or keeps its own (lattice), the partner keeps its own, and the node counts it in
// stats().excluded_nonfinite; when neither is finite both keep theirs. On the blocking and non-blocking
// exchanges, as initiator and as served node, and in replay mode. The references are the starting models,
// written here (zero gradients: only the exchanges move a model).
#include <catch2/catch.hpp>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/lattice.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "support.hpp"

namespace {

constexpr std::size_t n = 40;

struct outcome {
  std::array<std::vector<float>, 2> x;
  std::array<std::uint64_t, 2> excluded{};
};

/// Node 0 starts one exchange (one step, H = 1), node 1 serves it (or, with replay, the seeded rounds of one
/// step). spoiled[r]: node r's model holds a NaN in x[3] from the start.
template <class Codec = tether::codec::identity<float>>
outcome run(std::array<bool, 2> spoiled, bool nonblocking = false, bool replay = false, Codec codec = {}) {
  outcome out;
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    std::vector<float> x = swarm_test::start(n, w.rank()), g(n, 0.0f);
    if (spoiled[r]) x[3] = std::numeric_limits<float>::quiet_NaN();
    tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, Codec> opt(
        w, n,
        {.lr = 0.1, .local_steps = r == 0 || replay ? 1u : 1000u, .codec = codec, .nonblocking = nonblocking,
         .replay = replay, .seed = 3, .timeout = 30});
    opt.step(x, g, 0.0);
    opt.finish(x);
    out.x[r] = x;
    out.excluded[r] = opt.stats().excluded_nonfinite;
  });
  return out;
}

/// The starting model of node r, spoiled as in run().
std::vector<float> start_of(int r, bool spoiled) {
  auto x = swarm_test::start(n, r);
  if (spoiled) x[3] = std::numeric_limits<float>::quiet_NaN();
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("swarm_sgd: a node whose model is not finite takes its partner's, which keeps its own",
          "[swarm][nonfinite]") {
  for (const bool nonblocking : {false, true}) {
    for (const int bad : {0, 1}) {  // the initiator or the served node
      CAPTURE(nonblocking, bad);
      const int good = 1 - bad;
      const auto o = run({bad == 0, bad == 1}, nonblocking);
      CHECK(same_bits(o.x[0], start_of(good, false)));  // identity codec: the partner's model, exactly
      CHECK(same_bits(o.x[1], start_of(good, false)));
      CHECK(o.excluded[static_cast<std::size_t>(bad)] == 1);
      CHECK(o.excluded[static_cast<std::size_t>(good)] == 0);
    }
  }
}

TEST_CASE("swarm_sgd: when neither model is finite both keep their own", "[swarm][nonfinite]") {
  const auto o = run({true, true});
  CHECK(same_bits(o.x[0], start_of(0, true)));
  CHECK(same_bits(o.x[1], start_of(1, true)));
  CHECK(o.excluded[0] == 1);
  CHECK(o.excluded[1] == 1);
}

TEST_CASE("swarm_sgd: replay mode leaves a non-finite model out of its swaps", "[swarm][nonfinite]") {
  // With two nodes a replay round is two swaps of the pair: node 1 (NaN) takes node 0's model at the first,
  // and the second averages two equal models. Both end at node 0's start.
  const auto o = run({false, true}, false, true);
  CHECK(same_bits(o.x[0], start_of(0, false)));
  CHECK(same_bits(o.x[1], start_of(0, false)));
  CHECK(o.excluded[0] == 0);
  CHECK(o.excluded[1] == 1);
}

TEST_CASE("swarm_sgd: quantized, the non-finite node takes the partner's decoded model; lattice keeps its own",
          "[swarm][nonfinite]") {
  const auto q = run({true, false}, false, false, tether::codec::stochastic_uniform<float>({.bits = 8, .block = 8}));
  const auto x1 = start_of(1, false);
  CHECK(same_bits(q.x[1], x1));
  // Within the codec's bound of node 1's model: |Q(x) - x| <= 2 s / (2^8 - 1), s the block's max |x|.
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t k = i / 8 * 8; k < i / 8 * 8 + 8; ++k) s = std::max(s, std::abs(double(x1[k])));
    CHECK(std::abs(double(q.x[0][i]) - double(x1[i])) <= 2.0 * s / 255.0 + 1e-7);
  }
  CHECK(q.excluded[0] == 1);
  const auto l = run({true, false}, false, false, tether::codec::lattice<float>({.bits = 8, .block = 8, .step = 0.02f}));
  CHECK(same_bits(l.x[0], start_of(0, true)));  // no finite reference to decode next to
  CHECK(same_bits(l.x[1], x1));
  CHECK(l.excluded[0] == 1);
}

TEST_CASE("swarm_sgd: gossip on a ring never spreads a non-finite model", "[swarm][nonfinite]") {
  // Node 2 is NaN from the start; zero gradients, 40 exchanges per node. Every model stays finite, node 2 ends
  // finite too (it took a neighbour's model), and every model stays within the finite starts' range.
  constexpr int p = 4;
  std::vector<std::vector<float>> xs(p);
  std::vector<std::uint64_t> excluded(p);
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    std::vector<float> x = start_of(w.rank(), w.rank() == 2), g(n, 0.0f);
    tether::algo::swarm_sgd<tether::team::worker> opt(
        w, n, {.lr = 0.1, .topology = tether::comm::topology::ring(p), .seed = 9, .timeout = 30});
    for (int t = 0; t < 40; ++t) opt.step(x, g, 0.0);
    opt.finish(x);
    xs[r] = x;
    excluded[r] = opt.stats().excluded_nonfinite;
  });
  for (std::size_t i = 0; i < n; ++i) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int r : {0, 1, 3}) {
      lo = std::min(lo, start_of(r, false)[i]);
      hi = std::max(hi, start_of(r, false)[i]);
    }
    for (int r = 0; r < p; ++r) {
      CAPTURE(r, i);
      CHECK(std::isfinite(xs[static_cast<std::size_t>(r)][i]));
      CHECK(xs[static_cast<std::size_t>(r)][i] >= lo - 1e-6f);
      CHECK(xs[static_cast<std::size_t>(r)][i] <= hi + 1e-6f);
    }
  }
  CHECK(excluded[2] >= 1);
  CHECK(excluded[0] + excluded[1] + excluded[3] == 0);
}
