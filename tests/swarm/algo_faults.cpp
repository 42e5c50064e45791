// SwarmSGD's replay mode (bit-identical reruns), lost neighbours (a node that throws, one that stalls past the
// timeout: the others drop it and finish near the optimum), the non-blocking variant's progress correction
// (the swarm's sum moves by exactly the local steps taken, against the sum of the steps written out), bad
// options, and damaged messages from a peer (corrupt, truncated, oversized: an error naming the peer, the
// model untouched).
#include <catch2/catch.hpp>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/step/momentum.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using tether::comm::topology;

/// p nodes in replay mode on the noisy quadratic; the final models.
std::vector<std::vector<float>> replay_run(std::uint64_t seed, bool random_h) {
  constexpr int p = 6;
  std::vector<std::vector<float>> out(p);
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    const auto& q = swarm_test::quad();
    std::vector<float> x = swarm_test::start(q.dimension(), w.rank()), g(q.dimension());
    tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, tether::codec::stochastic_uniform<float>> opt(
        w, x.size(),
        {.lr = 0.05, .topology = topology::ring(p), .local_steps = 3, .random_local_steps = random_h,
         .codec = tether::codec::stochastic_uniform<float>({.bits = 8, .block = 64}), .replay = true, .seed = seed});
    for (int t = 0; t < 300; ++t) {
      // Uneven compute: thread timing differs from run to run.
      if ((t + static_cast<int>(r)) % 37 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200 * r));
      const double loss = q.evaluate(x, g, {{}, tether::derive_seed(4, r, static_cast<std::uint64_t>(t))});
      opt.step(x, g, loss);
    }
    opt.finish(x);
    out[r] = x;
  });
  return out;
}

}  // namespace

TEST_CASE("swarm_sgd: replay mode gives bit-identical models on a rerun", "[swarm]") {
  for (bool random_h : {false, true}) {
    INFO("random_local_steps = " << random_h);
    const auto a = replay_run(17, random_h);
    const auto b = replay_run(17, random_h);
    CHECK(a == b);
    const auto c = replay_run(18, random_h);
    CHECK(a != c);  // another seed, another order of exchanges (and other rounding)
    CHECK(swarm_test::consensus2(a) < 1e-2);  // the exchanges did happen
    for (const auto& x : a) CHECK(swarm_test::distance2(x) < 0.05);
  }
}

TEST_CASE("swarm_sgd: a node that throws is dropped by its neighbours, the others finish", "[swarm][fault]") {
  constexpr int p = 6;
  constexpr int victim = 3;
  std::vector<std::vector<float>> x(p);
  std::vector<tether::algo::swarm_stats> sw(p);
  std::vector<int> finished(p, 0);
  tether::team team(p);
  CHECK_THROWS_WITH(team.run([&](tether::team::worker& w) {
                      const auto r = static_cast<std::size_t>(w.rank());
                      const auto& q = swarm_test::quad();
                      std::vector<float> xi = swarm_test::start(q.dimension(), w.rank()), g(q.dimension());
                      tether::algo::swarm_sgd<tether::team::worker> opt(
                          w, xi.size(), {.lr = 0.05, .topology = topology::ring(p), .local_steps = 1, .timeout = 30});
                      for (int t = 0; t < 1000; ++t) {
                        if (w.rank() == victim && t == 100) throw std::runtime_error("node 3 fails");
                        const double loss = q.evaluate(xi, g, {{}, tether::derive_seed(4, r, static_cast<std::uint64_t>(t))});
                        opt.step(xi, g, loss);
                      }
                      opt.finish(xi);
                      x[r] = xi;
                      sw[r] = opt.swarm();
                      finished[r] = 1;
                    }),
                    "node 3 fails");
  std::vector<std::vector<float>> survivors;
  for (int r = 0; r < p; ++r) {
    if (r == victim) continue;
    INFO("node " << r);
    const auto k = static_cast<std::size_t>(r);
    CHECK(finished[k] == 1);
    const bool neighbour = r == victim - 1 || r == victim + 1;
    CHECK(sw[k].lost_peers == (neighbour ? std::vector<int>{victim} : std::vector<int>{}));
    CHECK(swarm_test::distance2(x[k]) < 0.01);
    survivors.push_back(x[k]);
  }
  // The ring without node 3 is a path 4-5-0-1-2: still connected, still gossiping.
  CHECK(swarm_test::consensus2(survivors) < 1e-3);
}

TEST_CASE("swarm_sgd: a node stalled past the timeout is dropped, the others finish", "[swarm][fault]") {
  constexpr int p = 4;
  std::vector<tether::algo::swarm_stats> sw(p);
  std::vector<std::vector<float>> x(p);
  tether::team team(p);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    const auto& q = swarm_test::quad();
    std::vector<float> xi = swarm_test::start(q.dimension(), w.rank()), g(q.dimension());
    tether::algo::swarm_sgd<tether::team::worker> opt(
        w, xi.size(), {.lr = 0.05, .topology = topology::complete(p), .local_steps = 1, .timeout = 0.2});
    for (int t = 0; t < 400; ++t) {
      if (w.rank() == 0 && t == 50) std::this_thread::sleep_for(std::chrono::milliseconds(700));  // stalls
      const double loss = q.evaluate(xi, g, {{}, tether::derive_seed(4, r, static_cast<std::uint64_t>(t))});
      opt.step(xi, g, loss);
    }
    opt.finish(xi);
    x[r] = xi;
    sw[r] = opt.swarm();
  });
  int dropped_zero = 0;
  for (int r = 1; r < p; ++r) {
    const auto& lp = sw[static_cast<std::size_t>(r)].lost_peers;
    dropped_zero += std::find(lp.begin(), lp.end(), 0) != lp.end();
    CHECK(swarm_test::distance2(x[static_cast<std::size_t>(r)]) < 0.01);
  }
  CHECK(dropped_zero > 0);  // someone waited for the stalled node for 0.2 s and dropped it
}

TEST_CASE("swarm_sgd: the non-blocking variant keeps the local progress made while an exchange is in flight",
          "[swarm]") {
  // Node 0 steps with a constant gradient (its sum moves by -lr*g per step) and starts an exchange every 8 steps,
  // non-blocking; node 1 has zero gradient, never starts one, and answers slowly (it sleeps 10 times longer
  // between steps), so node 0 takes several steps while each exchange is in flight. Averages conserve the pair's sum, so the final
  // sum must be the initial sum minus node 0's steps: were the in-flight progress averaged away, half of it
  // would be missing.
  // fp64 (identity codec of doubles), so that the check is not about fp32 rounding.
  const std::size_t n = 16;
  const double lr = 0.01;
  std::vector<std::vector<double>> x(2), x0(2);
  std::vector<tether::algo::swarm_stats> sw(2);
  std::vector<std::uint64_t> steps(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    const auto start = swarm_test::start(n, w.rank());
    std::vector<double> xi(start.begin(), start.end()), g(n, r == 0 ? 1.0 : 0.0);
    x0[r] = xi;
    tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, tether::codec::identity<double>,
                            tether::exec::serial, double>
        opt(w, n, {.lr = lr, .local_steps = r == 0 ? 8u : 1000000u, .nonblocking = true, .timeout = 30});
    const int count = r == 0 ? 2000 : 1000;
    for (int t = 0; t < count; ++t) {
      std::this_thread::sleep_for(std::chrono::microseconds(r == 1 ? 500 : 50));
      opt.step(xi, g, 0.0);
    }
    opt.finish(xi);
    x[r] = xi;
    sw[r] = opt.swarm();
    steps[r] = opt.stats().steps;
  });
  CHECK(sw[0].exchanges == 250);          // one per 8 steps
  CHECK(sw[0].steps_in_flight > 250);     // node 0 stepped while its exchanges were in flight
  for (std::size_t i = 0; i < n; ++i) {
    const double want = x0[0][i] + x0[1][i] - lr * static_cast<double>(steps[0]);
    CHECK(std::abs(x[0][i] + x[1][i] - want) < 1e-9);
  }
}

TEST_CASE("swarm_sgd: bad options are a tether::error naming the option", "[swarm][bad_input]") {
  tether::team team(2);
  std::vector<std::string> errors(2);
  team.run([&](tether::team::worker& w) {
    std::string e;
    const auto expect = [&](auto&& make) {
      try {
        make();
        e += "accepted;";
      } catch (const tether::error& x) {
        e += std::string(x.what()) + ";";
      }
    };
    using opt = tether::algo::swarm_sgd<tether::team::worker>;
    using quant = tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, tether::codec::stochastic_uniform<float>>;
    expect([&] { opt o(w, 8, {.local_steps = 0}); });
    expect([&] { opt o(w, 8, {.timeout = -1}); });
    expect([&] { opt o(w, 8, {.lr = -0.1}); });
    expect([&] { opt o(w, 8, {.lr = 1e39}); });  // a finite double but no float (issue 13, item 7)
    expect([&] { opt o(w, 8, {.topology = topology::ring(3)}); });
    expect([&] { opt o(w, 0, {}); });
    expect([&] { quant o(w, 8, {.codec = tether::codec::stochastic_uniform<float>({.bits = 9})}); });
    expect([&] { quant o(w, 8, {.codec = tether::codec::stochastic_uniform<float>({.bits = 0})}); });
    expect([&] { quant o(w, 8, {.codec = tether::codec::stochastic_uniform<float>({.block = 0})}); });
    expect([&] { tether::algo::swarm_sgd<tether::team::worker, tether::step::momentum> o(w, 8, {.step = {.momentum = 1.5f}}); });
    errors[static_cast<std::size_t>(w.rank())] = e;
  });
  for (const auto& e : errors) {
    CHECK_THAT(e, Catch::Contains("swarm_sgd: local_steps (H) must be >= 1, got local_steps = 0"));
    CHECK_THAT(e, Catch::Contains("swarm_sgd: timeout must be a finite number of seconds > 0, got timeout = -1"));
    CHECK_THAT(e, Catch::Contains("swarm_sgd: lr must be finite and >= 0, got lr = -0.1"));
    CHECK_THAT(e, Catch::Contains("swarm_sgd: lr must fit the value type float") && Catch::Contains("got lr = 1e+39"));
    CHECK_THAT(e, Catch::Contains("the topology (ring) has 3 nodes, the communicator has 2 workers"));
    CHECK_THAT(e, Catch::Contains("swarm_sgd: n must be >= 1, got n = 0"));
    CHECK_THAT(e, Catch::Contains("bits must be in 1..8, got bits = 9"));
    CHECK_THAT(e, Catch::Contains("bits must be in 1..8, got bits = 0"));
    CHECK_THAT(e, Catch::Contains("block must be in 1..16777216, got block = 0"));
    CHECK_THAT(e, Catch::Contains("momentum must be in [0, 1), got momentum = 1.5"));
    CHECK_THAT(e, !Catch::Contains("accepted"));
  }
}

TEST_CASE("swarm_sgd: a damaged message from a peer is an error naming the peer, the model untouched",
          "[swarm][bad_input]") {
  using fault = swarm_test::faulty_codec::fault;
  const std::vector<std::pair<fault, std::string>> cases{
      {fault::corrupt, "node 0: the message of peer 1 does not decode (the model is left untouched): tether: codec identity: "
                       "decode: magic"},
      {fault::truncate, "node 0: the message of peer 1 does not decode (the model is left untouched): tether: codec "
                        "identity: decode: size: message is 76 bytes"},
      {fault::oversize, "worker 0: peer 1 sent a 93-byte message, more than this link's 85-byte messages"}};
  for (const auto& [mode, text] : cases) {
    INFO(text);
    // Node 1 (the faulty one) starts an exchange at its first step; node 0 never starts one and serves it.
    std::vector<std::vector<float>> before(2), after(2);
    std::vector<tether::algo::swarm_stats> sw(2);
    std::string error;
    tether::team team(2);
    try {
      team.run([&](tether::team::worker& w) {
        const auto r = static_cast<std::size_t>(w.rank());
        std::vector<float> x = swarm_test::start(16, w.rank()), g(16, 0.0f);
        before[r] = x;
        tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, swarm_test::faulty_codec> opt(
            w, 16,
            {.lr = 0.0, .local_steps = r == 1 ? 1u : 1000u,
             .codec = {.mode = r == 1 ? mode : fault::none}, .timeout = 30});
        try {
          for (int t = 0; t < 50; ++t) opt.step(x, g, 0.0);
          opt.finish(x);
        } catch (...) {
          after[r] = x;
          throw;
        }
        after[r] = x;
        sw[r] = opt.swarm();
      });
    } catch (const tether::runtime_error& e) {
      error = e.what();
    }
    CHECK_THAT(error, Catch::Contains(text));
    CHECK(after[0] == before[0]);  // node 0 refused the exchange before touching its model
    CHECK(after[1] == before[1]);  // node 1's exchange was lost: nothing applied
    CHECK(sw[1].lost_peers == std::vector<int>{0});
  }
}
