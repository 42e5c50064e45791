// SwarmSGD checkpoints (swarm_sgd::save/load): a replay-mode run of 4 nodes (momentum, 8-bit stochastic
// rounding, random H) saved at step 137, its optimizers destroyed, and resumed from the files by new ones,
// ends bit-identical to the same run left uninterrupted, counters included; a resume that restores x alone
// does not. A damaged, truncated, foreign or mismatched checkpoint is a tether::error naming the file and
// what is wrong, with the optimizer and x untouched (a file of tether::optimizer included, and the other way
// round); save refuses while an exchange of the non-blocking variant is in flight.
#include <catch2/catch.hpp>

#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/optimizer.hpp>
#include <tether/step/momentum.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"
#include "../common/checkpoint_files.hpp"

namespace {

namespace fs = std::filesystem;
using worker = tether::team::worker;
using tether::comm::topology;
using codec = tether::codec::stochastic_uniform<float>;
using swarm = tether::algo::swarm_sgd<worker, tether::step::momentum, codec>;
constexpr int p = 4;
constexpr int steps = 300;
constexpr int cut = 137;

using tether_test::bytes_of;
using tether_test::write_bytes;
fs::path scratch_dir() { return tether_test::scratch_dir("tether_swarm_checkpoint"); }
std::string file_of(const fs::path& dir, int rank) { return tether_test::file_of(dir, rank, "node"); }

swarm::options replay_options() {
  return {.lr = 0.05,
          .step = {.momentum = 0.7f},
          .topology = topology::ring(p),
          .local_steps = 3,
          .random_local_steps = true,
          .codec = codec({.bits = 8, .block = 16}),
          .replay = true,
          .seed = 23};
}

/// What a node ends with: x, the velocity, and the counters (as floats, compared bit for bit).
struct node_end {
  std::vector<float> x, velocity;
  std::vector<std::uint64_t> counters;
};

enum class resume { none, checkpoint, x_only };

/// Steps `from` to `to` of the replay run on every node: from the start point, or resumed from `dir` (the
/// checkpoint, or the saved x alone into a fresh optimizer); saves into `save_dir` at the end when set. The
/// gradients' noise depends on (node, step) only.
std::vector<node_end> run(int from, int to, resume how, const fs::path* dir, const fs::path* save_dir) {
  std::vector<node_end> out(p);
  tether::team team(p);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    const auto& q = swarm_test::quad();
    swarm opt(w, q.dimension(), replay_options());
    std::vector<float> x = swarm_test::start(q.dimension(), w.rank()), g(q.dimension());
    if (how == resume::checkpoint) {
      std::fill(x.begin(), x.end(), 99.0f);  // load replaces it
      opt.load(file_of(*dir, w.rank()), x);
    } else if (how == resume::x_only) {
      std::ifstream f(file_of(*dir, w.rank()) + ".x", std::ios::binary);
      f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
    }
    for (int t = from; t < to; ++t) {
      const double loss = q.evaluate(x, g, {{}, tether::derive_seed(4, r, static_cast<std::uint64_t>(t))});
      opt.step(x, g, loss);
    }
    if (save_dir != nullptr) {
      opt.save(file_of(*save_dir, w.rank()), x);
      std::ofstream f(file_of(*save_dir, w.rank()) + ".x", std::ios::binary);
      f.write(reinterpret_cast<const char*>(x.data()),
              static_cast<std::streamsize>(x.size() * sizeof(float)));
    }
    opt.finish(x);
    auto& e = out[r];
    e.x = x;
    e.velocity.assign(opt.state(0).data(), opt.state(0).data() + x.size());
    const auto& s = opt.stats();
    const auto& sw = opt.swarm();
    e.counters = {s.steps,      s.rounds,  opt.applied_steps(), s.bytes_sent, s.bytes_received,
                  sw.exchanges, sw.served, sw.crossed,          sw.lost};
  });
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}


constexpr std::size_t n = 40;

/// A one-node swarm (no neighbours: local steps only) with options `o`, saved after 5 steps.
template <class Opt = swarm>
std::string save_solo(const fs::path& dir, const std::string& name, typename Opt::options o = {},
                      std::size_t size = n, int nodes = 1) {
  const std::string path = (dir / name).string();
  tether::team team(nodes);
  team.run([&](worker& w) {
    Opt opt(w, size, o);
    std::vector<float> x(size, 1.0f), g(size, 0.5f);
    for (int t = 0; t < 5; ++t) opt.step(x, g, 1.0);
    if (w.rank() == 0) opt.save(path, x);
    if constexpr (requires { opt.finish(x); }) opt.finish(x);
  });
  return path;
}

/// Loads `path` into a one-node swarm (options `o`) that took 3 steps; the error, and " [STATE CHANGED]" when
/// x, the velocity or the counters changed nonetheless. Empty when the file loaded (and changed the state).
template <class Opt = swarm>
std::string load_error(const std::string& path, typename Opt::options o = {}) {
  std::string what;
  tether::team team(1);
  team.run([&](worker& w) {
    Opt opt(w, n, o);
    std::vector<float> x(n, 3.0f), g(n, 1.0f);
    for (int t = 0; t < 3; ++t) opt.step(x, g, 1.0);
    const std::vector<float> x_before = x;
    const std::vector<float> v_before(opt.state(0).data(), opt.state(0).data() + n);
    const auto steps_before = opt.stats().steps;
    const auto applied_before = opt.applied_steps();
    try {
      opt.load(path, x);
    } catch (const tether::error& e) {
      what = e.what();
    }
    const std::vector<float> v_after(opt.state(0).data(), opt.state(0).data() + n);
    const bool changed = !same_bits(x, x_before) || !same_bits(v_after, v_before) ||
                         opt.stats().steps != steps_before || opt.applied_steps() != applied_before;
    if (what.empty() && !changed) what = "[LOADED NOTHING]";
    if (!what.empty() && changed) what += " [STATE CHANGED]";
    if constexpr (requires { opt.finish(x); }) opt.finish(x);
  });
  return what;
}

}  // namespace

TEST_CASE("swarm_sgd checkpoint: a resumed replay run is bit-identical to the uninterrupted one",
          "[swarm][checkpoint]") {
  const fs::path dir = scratch_dir();
  const auto whole = run(0, steps, resume::none, nullptr, nullptr);
  (void)run(0, cut, resume::none, nullptr, &dir);
  const auto resumed = run(cut, steps, resume::checkpoint, &dir, nullptr);
  const auto naive = run(cut, steps, resume::x_only, &dir, nullptr);
  bool naive_differs = false;
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto& a = whole[static_cast<std::size_t>(r)];
    const auto& b = resumed[static_cast<std::size_t>(r)];
    CHECK(same_bits(b.x, a.x));
    CHECK(same_bits(b.velocity, a.velocity));
    CHECK(b.counters == a.counters);
    const auto& c = naive[static_cast<std::size_t>(r)];
    naive_differs = naive_differs || !same_bits(c.x, a.x);
  }
  // The test can tell: x alone (no velocity, random streams, schedule position) resumes another run.
  CHECK(naive_differs);
  CHECK(whole[0].counters[5] > 0);  // exchanges happened
  fs::remove_all(dir);
}

TEST_CASE("swarm_sgd checkpoint: a damaged or mismatched file is refused, nothing changes",
          "[swarm][checkpoint]") {
  using Catch::Matchers::Contains;
  const fs::path dir = scratch_dir();
  const std::string good = save_solo(dir, "good.ckpt");
  CHECK(load_error(good).empty());  // the control: a good file loads

  const auto refused = [](const std::string& path, const std::string& why, const std::string& err) {
    CAPTURE(path, why);
    CHECK_THAT(err, Contains(path) && Contains(why));
    CHECK_THAT(err, !Contains("[STATE CHANGED]"));
  };

  SECTION("missing") {
    refused((dir / "none.ckpt").string(), "cannot open", load_error((dir / "none.ckpt").string()));
  }
  SECTION("truncated") {
    auto b = bytes_of(good);
    const std::string path = (dir / "short.ckpt").string();
    b.resize(b.size() - 7);
    write_bytes(path, b);
    refused(path, "truncated", load_error(path));
    b.resize(12);
    write_bytes(path, b);
    refused(path, "truncated", load_error(path));
  }
  SECTION("a flipped byte") {
    auto b = bytes_of(good);
    b[b.size() / 2] ^= 0x10;
    const std::string path = (dir / "flipped.ckpt").string();
    write_bytes(path, b);
    refused(path, "checksum", load_error(path));
  }
  SECTION("another format version") {
    auto b = bytes_of(good);
    b[8] = static_cast<char>(b[8] + 1);
    const std::string path = (dir / "version.ckpt").string();
    write_bytes(path, b);
    refused(path, "format version", load_error(path));
  }
  SECTION("not a checkpoint") {
    const std::string path = (dir / "text.ckpt").string();
    write_bytes(path, std::vector<char>(100, 'x'));
    refused(path, "not a tether checkpoint", load_error(path));
  }
  SECTION("another algorithm: tether::optimizer's file, and the other way round") {
    using solo = tether::optimizer<tether::step::momentum, tether::pull::none, worker>;
    const std::string theirs = (dir / "optimizer.ckpt").string();
    tether::team team(1);
    team.run([&](worker& w) {
      solo opt(w, n, {.lr = 0.1});
      std::vector<float> x(n, 1.0f), g(n, 0.5f);
      opt.step(x, g, 1.0);
      opt.save(theirs, x);
    });
    refused(theirs, "another algorithm", load_error(theirs));
    std::string err;
    tether::team team2(1);
    team2.run([&](worker& w) {
      solo opt(w, n, {.lr = 0.1});
      std::vector<float> x(n, 2.0f);
      try {
        opt.load(good, x);
      } catch (const tether::error& e) {
        err = e.what();
      }
      if (x != std::vector<float>(n, 2.0f)) err += " [STATE CHANGED]";
    });
    refused(good, "another algorithm", err);
  }
  SECTION("another step policy") {
    using plain = tether::algo::swarm_sgd<worker, tether::step::sgd, codec>;
    const std::string path = save_solo<plain>(dir, "sgd.ckpt");
    refused(path, "another algorithm", load_error(path));
  }
  SECTION("other options") {
    const std::string path = save_solo(dir, "lr.ckpt", {.lr = 0.2});
    refused(path, "other options", load_error(path));
  }
  SECTION("another n") {
    const std::string path = save_solo(dir, "n.ckpt", {}, n + 1);
    refused(path, "n = ", load_error(path));
  }
  SECTION("another node count") {
    const std::string path = save_solo(dir, "two.ckpt", {.topology = topology::complete(2)}, n, 2);
    refused(path, "nodes = 2", load_error(path));
  }
  fs::remove_all(dir);
}

TEST_CASE("swarm_sgd checkpoint: save refuses while an exchange is in flight", "[swarm][checkpoint]") {
  const fs::path dir = scratch_dir();
  const std::string path = (dir / "flight.ckpt").string();
  std::atomic<bool> tried{false};
  std::string during;
  bool after_ok = false;
  tether::team team(2);
  team.run([&](worker& w) {
    tether::algo::swarm_sgd<worker> opt(w, n,
                                        {.lr = 0.1,
                                         .topology = topology::complete(2),
                                         .local_steps = w.rank() == 0 ? 1u : 1000u,
                                         .nonblocking = true,
                                         .timeout = 30});
    std::vector<float> x(n, static_cast<float>(w.rank())), g(n, 0.5f);
    if (w.rank() == 0) {
      opt.step(x, g, 1.0);  // starts an exchange that node 1 cannot answer yet
      try {
        opt.save(path, x);
      } catch (const tether::error& e) {
        during = e.what();
      }
      tried = true;
      opt.finish(x);  // completes it
      opt.save(path, x);
      after_ok = fs::exists(path);
    } else {
      while (!tried) std::this_thread::yield();
      opt.finish(x);
    }
  });
  CHECK_THAT(during, Catch::Matchers::Contains(path) && Catch::Matchers::Contains("in flight"));
  CHECK(after_ok);
  fs::remove_all(dir);
}
