// Downpour checkpoints (downpour::save/load) on the thread team. The reference is the uninterrupted run: a replay
// run of 4 replicas (Adagrad shards, a momentum local step, n_push = 2, n_fetch = 3, warm start, 3 shards) that
// saves after step 25 and goes on ends exactly as new replicas loaded from those files and run to the end (x,
// shards, per-step histories, local state, counters); x alone does not. The bulk-synchronous mode (deterministic)
// resumes bit for bit too; the asynchronous and bounded-staleness modes resume the saved shards and counters
// exactly. A damaged,
// foreign or mismatched file is a tether::error on every replica, naming the file, with x, the counters and the
// shards unchanged; replicas that save after different steps, or during the warm start, all fail, and a save
// after a replica was lost is refused.
#include "support.hpp"

#include <tether/algo/downpour.hpp>
#include <tether/algo/swarm_sgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/optimizer.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using worker = tether::team::worker;
using downpour = tether::algo::downpour<worker, tether::step::adagrad, tether::exec::serial, float,
                                        tether::step::momentum>;
constexpr int p = 4;
constexpr std::uint64_t cut = 25;

fs::path scratch_dir() {
  const fs::path d = fs::temp_directory_path() / ("tether_ps_checkpoint_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string file_of(const fs::path& dir, int rank) { return (dir / ("replica." + std::to_string(rank))).string(); }

downpour::options run_options(tether::ps::consistency c) {
  const bool replay = c.mode == tether::ps::consistency_mode::asynchronous;
  return {.lr = 0.2,
          .local_lr = 0.05,
          .n_fetch = replay ? 3u : 1u,
          .n_push = replay ? 2u : 1u,
          .warm_start = replay ? 10u : 0u,
          .shards = 3,
          .local_step = {.momentum = 0.5f},
          .consistency = c,
          .replay = {.enabled = replay, .seed = 17}};
}

/// What a replica ends with: x after finish(), x after each step from the cut on, its momentum, its counters.
struct replica_end {
  std::vector<float> x, history, velocity;
  std::vector<std::uint64_t> counters, versions;
};

enum class start { fresh, checkpoint, x_only };

std::vector<std::uint64_t> counters_of(const downpour& opt) {
  const auto& s = opt.stats();
  std::vector<std::uint64_t> c{s.steps,    s.rounds,         s.pushes,       s.fetches,
                               s.max_lead, s.pushes_dropped, s.bytes_sent,   s.bytes_received,
                               s.skipped_nonfinite, s.excluded_nonfinite};
  c.insert(c.end(), s.staleness.count.begin(), s.staleness.count.end());
  return c;
}

/// Replica r takes steps [from, 40 + 7r) (all of them with options `o`): from its start point, or from the
/// checkpoint in `load_dir`, or from the x saved there alone; after step `cut` it saves into `save_dir` when set
/// and stops there when `stop`. Gradients depend on (replica, step, x) only; with `lag`, replica 1's gradient of
/// step 5 is not finite (skipped). `after_load` receives replica 0's peek of the shards right after load.
std::vector<replica_end> run(const downpour::options& o, std::uint64_t from, start how, const fs::path* load_dir,
                             const fs::path* save_dir, bool stop, std::vector<float>* after_load = nullptr,
                             bool lag = false) {
  const std::size_t n = ps_test::quad().dimension();
  std::vector<replica_end> out(p);
  tether::team team(p);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    auto& e = out[r];
    downpour opt(w, n, o);
    auto x = ps_test::start_point(n, w.rank());
    std::vector<float> g(n);
    if (how == start::checkpoint) {
      std::fill(x.begin(), x.end(), 99.0f);  // load replaces it
      opt.load(file_of(*load_dir, w.rank()), x);
      if (after_load != nullptr) {
        if (r == 0) {
          after_load->resize(n);
          opt.peek(*after_load);
        }
        w.barrier();  // before any replica steps
      }
    } else if (how == start::x_only) {
      std::ifstream f(file_of(*load_dir, w.rank()) + ".x", std::ios::binary);
      f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
    }
    const std::uint64_t steps = stop ? cut : 40 + 7 * r;
    for (std::uint64_t t = from; t < steps; ++t) {
      double loss = ps_test::gradient(ps_test::quad(), x, g, w.rank(), t);
      if (lag && r == 1 && t == 5) g[0] = std::numeric_limits<float>::quiet_NaN();  // skipped: a push behind
      opt.step(x, g, loss);
      if (t >= cut) e.history.insert(e.history.end(), x.begin(), x.end());
      if (t + 1 == cut && save_dir != nullptr) {
        opt.save(file_of(*save_dir, w.rank()), x);
        std::ofstream f(file_of(*save_dir, w.rank()) + ".x", std::ios::binary);
        f.write(reinterpret_cast<const char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
      }
    }
    e.versions.assign(opt.versions().begin(), opt.versions().end());
    opt.finish(x);
    e.x = x;
    e.velocity.assign(opt.local_state(0).data(), opt.local_state(0).data() + n);
    e.counters = counters_of(opt);
  });
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<char> bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

/// The uninterrupted run (it saves after step `cut` and goes on) against new replicas loaded from its files.
void check_resume(tether::ps::consistency c, bool naive_must_differ) {
  const fs::path whole_dir = scratch_dir() / "whole", part_dir = scratch_dir() / "part";
  fs::create_directories(whole_dir);
  fs::create_directories(part_dir);
  const auto o = run_options(c);
  const auto whole = run(o, 0, start::fresh, nullptr, &whole_dir, false);
  (void)run(o, 0, start::fresh, nullptr, &part_dir, true);
  const auto resumed = run(o, cut, start::checkpoint, &part_dir, nullptr, false);
  const auto naive = run(o, cut, start::x_only, &part_dir, nullptr, false);
  bool naive_differs = false;
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    const auto& a = whole[static_cast<std::size_t>(r)];
    const auto& b = resumed[static_cast<std::size_t>(r)];
    CHECK(same_bits(b.x, a.x));  // after finish(): the shards' final parameters
    CHECK(same_bits(b.history, a.history));
    CHECK(same_bits(b.velocity, a.velocity));
    CHECK(b.counters == a.counters);
    CHECK(b.versions == a.versions);
    naive_differs = naive_differs || !same_bits(naive[static_cast<std::size_t>(r)].x, a.x);
  }
  CHECK(whole[0].counters[2] > 10);  // pushes happened
  if (naive_must_differ) CHECK(naive_differs);  // the test can tell: x alone resumes another run
  fs::remove_all(scratch_dir());
}

}  // namespace

TEST_CASE("downpour checkpoint: a replay run resumed from step 25 is bit-identical to the uninterrupted one",
          "[ps][checkpoint]") {
  check_resume(tether::ps::consistency::asynchronous(), true);
}

TEST_CASE("downpour checkpoint: a bulk-synchronous run resumes bit for bit", "[ps][checkpoint]") {
  check_resume(tether::ps::consistency::bulk_synchronous(), true);
}

TEST_CASE("downpour checkpoint: asynchronous and bounded-staleness runs resume the saved shards and counters",
          "[ps][checkpoint]") {
  // Bounded staleness 0 with replica 1 a skipped push behind: the others' pushes wait for its next one, after the
  // cut; the cut releases them.
  for (const auto c : {tether::ps::consistency::asynchronous(), tether::ps::consistency::bounded(0)}) {
    CAPTURE(static_cast<int>(c.mode));
    const fs::path dir = scratch_dir();
    auto o = run_options(c);
    o.replay = {};
    // Stopped after the save: finish() takes no step, so its x is the shards at the cut.
    const bool lag = c.mode == tether::ps::consistency_mode::bounded;
    const auto part = run(o, 0, start::fresh, nullptr, &dir, true, nullptr, lag);
    std::vector<float> shards_after_load;
    const auto resumed = run(o, cut, start::checkpoint, &dir, nullptr, false, &shards_after_load, lag);
    CHECK(same_bits(shards_after_load, part[0].x));
    // The release happened: replica 0's last push before the cut was applied beyond the bound s = 0.
    if (lag) CHECK(part[0].counters[4] > 0);  // max_lead
    for (int r = 0; r < p; ++r) {
      CAPTURE(r);
      const auto& e = resumed[static_cast<std::size_t>(r)];
      CHECK(e.counters[0] == 40 + 7 * static_cast<std::uint64_t>(r));  // steps: the saved ones, then the rest
      CHECK(e.counters[2] > part[static_cast<std::size_t>(r)].counters[2]);
      CHECK(ps_test::distance2(e.x) < ps_test::distance2(part[0].x));
    }
    fs::remove_all(dir);
  }
}

namespace {

constexpr std::size_t n_small = 20;

/// Replicas that take 5 steps (6 for replica `late`, when set) and save into `dir`; options `o`, `replicas`
/// replicas, n parameters. Returns the save errors, one per replica (empty: it saved).
std::vector<std::string> save_small(const fs::path& dir, downpour::options o = {}, std::size_t n = n_small,
                                    int replicas = 2, std::uint64_t steps = 5, int late = -1) {
  std::vector<std::string> errors(static_cast<std::size_t>(replicas));
  tether::team team(replicas);
  team.run([&](worker& w) {
    downpour opt(w, n, o);
    std::vector<float> x(n, 1.0f + static_cast<float>(w.rank())), g(n, 0.5f);
    const std::uint64_t k = steps + (w.rank() == late ? 1 : 0);
    for (std::uint64_t t = 0; t < k; ++t) opt.step(x, g, 1.0);
    try {
      opt.save(file_of(dir, w.rank()), x);
    } catch (const tether::error& e) {
      errors[static_cast<std::size_t>(w.rank())] = e.what();
    }
    opt.finish(x);
  });
  return errors;
}

/// Two fresh replicas load replica r's file from `files[r]`; each one's error, and " [STATE CHANGED]" when its
/// x, its counters or the shards changed nonetheless ("[LOADED NOTHING]" when it loaded and nothing changed).
std::vector<std::string> load_errors(const std::vector<std::string>& files, downpour::options o = {}) {
  std::vector<std::string> what(2);
  tether::team team(2);
  team.run([&](worker& w) {
    const auto r = static_cast<std::size_t>(w.rank());
    downpour opt(w, n_small, o);
    std::vector<float> x(n_small, 3.0f), shards(n_small, 7.0f);
    try {
      opt.load(files[r], x);
    } catch (const tether::error& e) {
      what[r] = e.what();
    }
    opt.peek(shards);
    const bool changed = x != std::vector<float>(n_small, 3.0f) || shards != std::vector<float>(n_small, 0.0f) ||
                         opt.stats().steps != 0 || opt.stats().pushes != 0;
    if (what[r].empty() && !changed) what[r] = "[LOADED NOTHING]";
    if (!what[r].empty() && changed) what[r] += " [STATE CHANGED]";
    opt.finish(x);
  });
  return what;
}

}  // namespace

TEST_CASE("downpour checkpoint: a damaged or mismatched file is refused on every replica, nothing changes",
          "[ps][checkpoint]") {
  using Catch::Matchers::Contains;
  const fs::path dir = scratch_dir();
  const fs::path good = dir / "good";
  fs::create_directories(good);
  REQUIRE(save_small(good) == std::vector<std::string>(2));
  const std::vector<std::string> files{file_of(good, 0), file_of(good, 1)};
  const std::string shards = files[0] + ".shards";
  {
    const auto ok = load_errors(files);  // the control: good files load
    CHECK(ok[0].empty());
    CHECK(ok[1].empty());
  }
  // Every replica fails, naming `path` and `why`, and nothing changed.
  const auto refused = [](const std::string& path, const std::string& why, const std::vector<std::string>& errs) {
    for (std::size_t r = 0; r < errs.size(); ++r) {
      CAPTURE(path, why, r);
      CHECK_THAT(errs[r], Contains(path) && Contains(why));
      CHECK_THAT(errs[r], !Contains("[STATE CHANGED]"));
    }
  };
  // Every replica fails on its own file of `dir`, naming it and `why`, and nothing changed.
  const auto refused_each = [](const fs::path& d, const std::string& why, const std::vector<std::string>& errs) {
    for (std::size_t r = 0; r < errs.size(); ++r) {
      CAPTURE(why, r);
      CHECK_THAT(errs[r], Contains(file_of(d, static_cast<int>(r))) && Contains(why));
      CHECK_THAT(errs[r], !Contains("[STATE CHANGED]"));
    }
  };
  // A copy of the good files with replica `r`'s file (r = 2: the shards file) replaced by `bytes`.
  const auto with = [&](const std::string& name, int r, const std::vector<char>& bytes) {
    const fs::path d = dir / name;
    fs::create_directories(d);
    for (int q = 0; q < 2; ++q) fs::copy_file(files[static_cast<std::size_t>(q)], file_of(d, q));
    fs::copy_file(shards, file_of(d, 0) + ".shards");
    write_bytes(r == 2 ? file_of(d, 0) + ".shards" : file_of(d, r), bytes);
    return std::vector<std::string>{file_of(d, 0), file_of(d, 1)};
  };

  SECTION("missing: the shards' file, a replica's file") {
    const fs::path d = dir / "missing";
    fs::create_directories(d);
    fs::copy_file(files[0], file_of(d, 0));
    fs::copy_file(files[1], file_of(d, 1));
    refused(file_of(d, 0) + ".shards", "cannot open", load_errors({file_of(d, 0), file_of(d, 1)}));
    fs::copy_file(shards, file_of(d, 0) + ".shards");
    fs::remove(file_of(d, 1));
    refused(file_of(d, 1), "cannot open", load_errors({file_of(d, 0), file_of(d, 1)}));
  }
  SECTION("truncated") {
    auto b = bytes_of(files[1]);
    b.resize(b.size() - 7);
    refused(file_of(dir / "short1", 1), "truncated", load_errors(with("short1", 1, b)));
    auto s = bytes_of(shards);
    s.resize(20);
    refused(file_of(dir / "short2", 0) + ".shards", "truncated", load_errors(with("short2", 2, s)));
  }
  SECTION("a flipped byte") {
    auto b = bytes_of(shards);
    b[b.size() / 2] ^= 0x10;
    refused(file_of(dir / "flipped", 0) + ".shards", "checksum", load_errors(with("flipped", 2, b)));
  }
  SECTION("not a checkpoint") {
    refused(file_of(dir / "text", 0), "not a tether checkpoint",
            load_errors(with("text", 0, std::vector<char>(100, 'x'))));
  }
  SECTION("another algorithm: tether::optimizer's, swarm_sgd's, the shards' file as a replica's") {
    const std::string theirs = (dir / "optimizer.ckpt").string();
    const std::string swarm = (dir / "swarm.ckpt").string();
    tether::team team(1);
    team.run([&](worker& w) {
      tether::optimizer<tether::step::adagrad, tether::pull::none, worker> opt(w, n_small, {.lr = 0.1});
      std::vector<float> x(n_small, 1.0f), g(n_small, 0.5f);
      opt.step(x, g, 1.0);
      opt.save(theirs, x);
      tether::algo::swarm_sgd<worker> s(w, n_small, {.lr = 0.1});
      s.step(x, g, 1.0);
      s.save(swarm, x);
      s.finish(x);
    });
    refused(file_of(dir / "opt", 1), "another algorithm", load_errors(with("opt", 1, bytes_of(theirs))));
    refused(file_of(dir / "swarm", 0), "another algorithm", load_errors(with("swarm", 0, bytes_of(swarm))));
    refused(file_of(dir / "swap", 0) + ".shards", "another algorithm",
            load_errors(with("swap", 2, bytes_of(files[0]))));
  }
  SECTION("other options, another n, another shard count, another replica count") {
    refused_each(good, "other options", load_errors(files, {.lr = 0.5}));
    const fs::path d = dir / "mismatch";
    fs::create_directories(d);
    const std::vector<std::string> mine{file_of(d, 0), file_of(d, 1)};
    REQUIRE(save_small(d, {}, n_small + 1) == std::vector<std::string>(2));
    refused_each(d, "n = 21", load_errors(mine));
    REQUIRE(save_small(d, {.shards = 3}) == std::vector<std::string>(2));
    refused_each(d, "shards = 3", load_errors(mine));
    REQUIRE(save_small(d, {}, n_small, 3) == std::vector<std::string>(3));
    refused_each(d, "replicas = 3", load_errors(mine));
  }
  SECTION("another replica's file, files of different steps") {
    refused(files[1], "rank = 1", load_errors({files[1], files[1]}));
    const fs::path d = dir / "six";
    fs::create_directories(d);
    REQUIRE(save_small(d, {}, n_small, 2, 6) == std::vector<std::string>(2));
    refused("", "different steps (replica 0 at step 5, replica 1 at step 6)", load_errors({files[0], file_of(d, 1)}));
    fs::copy_file(shards, file_of(d, 0) + ".shards", fs::copy_options::overwrite_existing);
    refused(file_of(d, 0) + ".shards", "step (replica 0's file) = 5", load_errors({file_of(d, 0), file_of(d, 1)}));
  }
  fs::remove_all(dir);
}

TEST_CASE("downpour checkpoint: replicas that save after different steps, in the warm start or after a loss fail; "
          "load needs a fresh replica",
          "[ps][checkpoint]") {
  using Catch::Matchers::Contains;
  const fs::path dir = scratch_dir();
  const auto errors = save_small(dir, {}, n_small, 3, 5, 2);
  for (const auto& e : errors) CHECK_THAT(e, Contains("different steps") && Contains("replica 2 at step 6"));
  // During the warm start the joiners cannot arrive (they wait for it in their first step): refused at once.
  // (Replica 1 arrives before replica 0 leaves, or after: then it finds it finished.)
  const auto warm = save_small(dir, {.warm_start = 10}, n_small, 2, 0);
  CHECK_THAT(warm[0], Contains("during the warm start") && Contains("of warm_start = 10"));
  CHECK_THAT(warm[1], Contains("during the warm start") || Contains("replica 0 finished"));
  // A replica that failed (its optimizer destroyed) before the cut: the others' save is refused, naming it.
  std::string after_loss;
  {
    tether::team team(2);
    team.run([&](worker& w) {
      std::vector<float> x(n_small, 1.0f), g(n_small, 0.5f);
      if (w.rank() == 1) {
        downpour gone(w, n_small, {});
        return;  // destroyed without finish(): declared lost
      }
      downpour opt(w, n_small, {});
      opt.step(x, g, 1.0);
      try {
        opt.save(file_of(dir, 0), x);
      } catch (const tether::error& e) {
        after_loss = e.what();
      }
      opt.finish(x);
    });
  }
  CHECK_THAT(after_loss, Contains(file_of(dir, 0)) && Contains("replica 1 was lost"));
  REQUIRE(save_small(dir) == std::vector<std::string>(2));
  std::vector<std::string> what(2);
  tether::team team(2);
  team.run([&](worker& w) {
    downpour opt(w, n_small, {});
    std::vector<float> x(n_small, 1.0f), g(n_small, 0.5f);
    if (w.rank() == 0) opt.step(x, g, 1.0);  // (replica 1's first step would wait for replica 0's)
    try {
      opt.load(file_of(dir, w.rank()), x);
    } catch (const tether::error& e) {
      what[static_cast<std::size_t>(w.rank())] = e.what();
    }
    opt.finish(x);
  });
  CHECK_THAT(what[0], Contains("has taken 1 steps"));
  CHECK_THAT(what[1], Contains("replica 0 could not load") && Contains("has taken 1 steps"));
  fs::remove_all(dir);
}
