// Checkpoints (core/checkpoint.hpp, optimizer::save/load): a run of 3 workers saved at step 23, its optimizers
// and parameters destroyed, and resumed from the files by new optimizers, ends bit-identical to the same run
// left uninterrupted (LSGD with momentum, LSGD with groups and Adam, EASGD, local SGD, Overlap-Local-SGD with
// its average in flight at the cut, which saving completes). A damaged, truncated,
// foreign or mismatched checkpoint is a tether::error naming the file and what is wrong, with the optimizer
// and x untouched; a crash mid-write (a leftover temporary file) never replaces the last good checkpoint.

#include "support.hpp"
#include "../common/checkpoint_files.hpp"

#include <tether/core/checkpoint.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using worker = tether::team::worker;
constexpr int p = 4;
constexpr std::size_t n = 9;
constexpr int steps = 50;
constexpr int cut = 23;

using tether_test::bytes_of;
using tether_test::file_of;
using tether_test::write_bytes;
using tt::gradient;
fs::path scratch_dir() { return tether_test::scratch_dir("tether_checkpoint_test"); }

/// Runs `Opt` from step `from` to `to` on every worker; resumes from the checkpoints in `load_dir` when set and
/// saves into `save_dir` at the end when set. Returns the workers' parameters and step state at the end.
template <class Opt>
std::vector<std::vector<float>> run(typename Opt::options o, int from, int to, const fs::path* load_dir,
                                    const fs::path* save_dir, int group_size = 0) {
  tether::team team(p, {.group_size = group_size});
  std::vector<std::vector<float>> out(p);
  team.run([&](worker& w) {
    Opt opt(w, n, o);
    std::vector<float> x(n, 1.0f), g(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(w.rank()) - static_cast<float>(i) * 0.5f;
    if (load_dir != nullptr) opt.load(file_of(*load_dir, w.rank()), x);
    for (int t = from; t < to; ++t) opt.step(x, g, gradient(x, g, w.rank(), t));
    // Saving completes an average in flight (Overlap-Local-SGD); so does finish(), before the buffers are read.
    if (save_dir != nullptr)
      opt.save(file_of(*save_dir, w.rank()), x);
    else
      opt.finish(x);
    auto& mine = out[static_cast<std::size_t>(w.rank())];
    mine = x;
    for (std::size_t k = 0; k < Opt::step_type::state_size; ++k)
      mine.insert(mine.end(), opt.state(k).data(), opt.state(k).data() + n);
    for (std::size_t k = 0; k < Opt::pull_type::buffers; ++k)
      mine.insert(mine.end(), opt.target(k).data(), opt.target(k).data() + n);
    mine.push_back(static_cast<float>(opt.stats().steps));
    mine.push_back(static_cast<float>(opt.stats().rounds));
    mine.push_back(static_cast<float>(opt.applied_steps()));
  });
  return out;
}

template <class Opt>
void check_resume(typename Opt::options o, int group_size = 0) {
  const fs::path dir = scratch_dir();
  const auto whole = run<Opt>(o, 0, steps, nullptr, nullptr, group_size);
  (void)run<Opt>(o, 0, cut, nullptr, &dir, group_size);
  const auto resumed = run<Opt>(o, cut, steps, &dir, nullptr, group_size);
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    REQUIRE(tt::same_bits(resumed[static_cast<std::size_t>(r)], whole[static_cast<std::size_t>(r)]));
  }
  fs::remove_all(dir);
}

template <class Opt>
std::string load_error(const std::string& path, typename Opt::options o = {}) {
  std::string what;
  tt::on_one_worker([&](worker& w) {
    Opt opt(w, n, o);
    std::vector<float> x(n, 3.0f), g(n, 1.0f);
    opt.step(x, g, 1.0);
    const std::vector<float> x_before = x;
    const auto steps_before = opt.stats().steps;
    try {
      opt.load(path, x);
    } catch (const tether::error& e) {
      what = e.what();
    }
    if (!tt::same_bits(x, x_before) || opt.stats().steps != steps_before) what += " [STATE CHANGED]";
  });
  return what;
}

using solo_sgd = tether::optimizer<tether::step::momentum, tether::pull::none, worker>;

std::string save_one(const fs::path& dir, const std::string& name) {
  const std::string path = (dir / name).string();
  tt::on_one_worker([&](worker& w) {
    solo_sgd opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n, 1.0f), g(n, 0.5f);
    for (int t = 0; t < 5; ++t) opt.step(x, g, 1.0);
    opt.save(path, x);
  });
  return path;
}

}  // namespace

TEST_CASE("checkpoint: a resumed run is bit-identical to the uninterrupted one", "[core][checkpoint]") {
  SECTION("LSGD with Nesterov momentum") {
    check_resume<tether::optimizer<tether::step::momentum, tether::pull::leader, worker>>(
        {.lr = 0.05, .step = {.momentum = 0.8f, .nesterov = true}, .pull = {.period = 4, .strength = 0.3f, .jump = 0.2f, .score_window = 3}});
  }
  SECTION("LSGD with local and global leaders, Adam") {
    check_resume<tether::optimizer<tether::step::adam, tether::pull::group_leader, worker>>(
        {.lr = 0.01, .pull = {.period = 2, .global_period = 6}}, 2);
  }
  SECTION("EASGD") {
    check_resume<tether::optimizer<tether::step::sgd, tether::pull::elastic, worker>>(
        {.lr = 0.05, .pull = {.period = 3, .alpha = 0.1f}});
  }
  SECTION("local SGD with warm-up") {
    check_resume<tether::optimizer<tether::step::adagrad, tether::pull::average, worker>>(
        {.lr = 0.05, .pull = {.period = 5, .warmup = 3}});
  }
  SECTION("Overlap-Local-SGD with anchor momentum, saved with an average in flight") {
    // Rounds at steps 8, 16, 24, ...: the cut at 23 falls while the average launched at 16 is in flight.
    check_resume<tether::optimizer<tether::step::momentum, tether::pull::anchor, worker>>(
        {.lr = 0.05, .step = {.momentum = 0.5f}, .pull = {.period = 8, .alpha = 0.3f, .momentum = 0.4f}});
  }
}

TEST_CASE("checkpoint: damaged, foreign and mismatched files are errors that change nothing",
          "[core][checkpoint]") {
  using tt::message_has;
  const fs::path dir = scratch_dir();
  const std::string good = save_one(dir, "good.ckpt");
  const auto bytes = bytes_of(good);
  REQUIRE(bytes.size() > 64);

  // The good file loads, and restores x and the counters.
  tt::on_one_worker([&](worker& w) {
    solo_sgd opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n, 7.0f);
    opt.load(good, x);
    CHECK(opt.stats().steps == 5);
    CHECK(x[0] != 7.0f);
  });

  const auto bad = [&](const std::string& name, std::vector<char> b) {
    const std::string path = (dir / name).string();
    write_bytes(path, b);
    return load_error<solo_sgd>(path, {.lr = 0.1, .step = {.momentum = 0.5f}});
  };
  const auto has = [](const std::string& what, std::initializer_list<const char*> parts) {
    CAPTURE(what);
    CHECK(what.find("[STATE CHANGED]") == std::string::npos);
    for (const char* part : parts) CHECK(what.find(part) != std::string::npos);
  };

  has(load_error<solo_sgd>((dir / "missing.ckpt").string()), {"missing.ckpt", "cannot open"});
  has(bad("truncated.ckpt", std::vector<char>(bytes.begin(), bytes.end() - 5)), {"truncated.ckpt", "truncated"});
  has(bad("header.ckpt", std::vector<char>(bytes.begin(), bytes.begin() + 20)), {"header.ckpt", "header"});
  auto flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;
  has(bad("flipped.ckpt", flipped), {"flipped.ckpt", "checksum"});
  auto version = bytes;
  version[8] = 9;
  has(bad("version.ckpt", version), {"version.ckpt", "version 9"});
  has(bad("text.ckpt", std::vector<char>(64, 'x')), {"text.ckpt", "not a tether checkpoint"});

  // Another algorithm, other options, another n.
  has(load_error<tether::optimizer<tether::step::sgd, tether::pull::none, worker>>(good), {"another algorithm"});
  has(load_error<solo_sgd>(good, {.lr = 0.2, .step = {.momentum = 0.5f}}), {"other options"});
  std::string other_n;
  tt::on_one_worker([&](worker& w) {
    solo_sgd opt(w, n + 1, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n + 1, 0.0f);
    try {
      opt.load(good, x);
    } catch (const tether::error& e) {
      other_n = e.what();
    }
  });
  has(other_n, {"n = 9", "n = 10"});
  // Another worker count.
  std::string other_size;
  tether::team team(2);
  team.run([&](worker& w) {
    solo_sgd opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n, 0.0f);
    try {
      opt.load(good, x);
    } catch (const tether::error& e) {
      if (w.rank() == 0) other_size = e.what();
    }
  });
  has(other_size, {"workers = 1", "workers = 2"});
  fs::remove_all(dir);
}

TEST_CASE("checkpoint: a failed write leaves the last good checkpoint; a leftover temporary file is ignored",
          "[core][checkpoint]") {
  const fs::path dir = scratch_dir();
  const std::string good = save_one(dir, "last.ckpt");
  const auto before = bytes_of(good);
  // A crash mid-write leaves last.ckpt.tmp behind: the good file still loads.
  write_bytes(good + ".tmp", std::vector<char>(10, 'z'));
  std::uint64_t loaded_steps = 0;
  tt::on_one_worker([&](worker& w) {
    solo_sgd opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n, 0.0f);
    opt.load(good, x);
    loaded_steps = opt.stats().steps;
  });
  CHECK(loaded_steps == 5);
  // A write that cannot complete (its temporary name is a folder) fails and leaves last.ckpt as it was.
  fs::remove(good + ".tmp");
  fs::create_directories(good + ".tmp");
  bool failed = false;
  tt::on_one_worker([&](worker& w) {
    solo_sgd opt(w, n, {.lr = 0.1, .step = {.momentum = 0.5f}});
    std::vector<float> x(n, 2.0f), g(n, 1.0f);
    opt.step(x, g, 1.0);
    try {
      opt.save(good, x);
    } catch (const tether::runtime_error& e) {
      failed = std::string(e.what()).find("last.ckpt") != std::string::npos;
    }
  });
  CHECK(failed);
  CHECK(bytes_of(good) == before);
  fs::remove_all(dir);
}
