// Checkpoints of the asynchronous algorithms on the thread team (optimizer::save/load with pull::async_elastic
// and pull::async_leader): save() completes what is in flight (EASGD: every worker's additions, then one read
// of the center between two barriers; LSGD: the rounds due) and a new optimizer's load() opens the private
// channel, as its first step would have, and puts the center and the round state back.
//
// References: the run that saved, read through the optimizers' accessors after save() and finish() (not
// through the file); a single worker of asynchronous EASGD, which is deterministic, resumed against the same
// run left uninterrupted (bit for bit); the quadratic's known optimum for runs resumed with several workers,
// whose exchanges and rounds interleave by timing (they resume a valid run, not the same one).

#include "support.hpp"
#include "../common/checkpoint_files.hpp"
#include "../common/optimizer_snapshot.hpp"

#include <tether/algo/async_easgd.hpp>
#include <tether/algo/async_lsgd.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using worker = tether::team::worker;
using easgd_t = tether::algo::async_easgd<worker, tether::step::momentum>;
using lsgd_t = tether::algo::async_lsgd<worker>;
using async_test::distance2;

constexpr std::uint64_t cut = 23;
constexpr std::uint64_t steps = 400;

using tether_test::file_of;
fs::path scratch_dir(const char* name) { return tether_test::scratch_dir(std::string("tether_async_checkpoint_") + name); }

using snapshot = tether_test::optimizer_snapshot;
using tether_test::snapshot_of;

/// Runs p workers of `Opt` over steps [from, to): starts from the checkpoints in `load_dir` when given, saves
/// into `save_dir` after the last step when given; then finishes and returns every worker's snapshot.
template <class Opt>
std::vector<snapshot> run(int p, typename Opt::options o, std::uint64_t from, std::uint64_t to,
                          const fs::path* load_dir, const fs::path* save_dir) {
  const auto& q = async_test::quad();
  tether::team team(p);
  std::vector<snapshot> out(static_cast<std::size_t>(p));
  async_test::skew_bound skew(p, 4);
  team.run([&](worker& w) {
    auto x = async_test::start_point(q.dimension(), w.rank());
    std::vector<float> g(x.size());
    Opt opt(w, x.size(), o);
    if (load_dir != nullptr) opt.load(file_of(*load_dir, w.rank()), x);
    async_test::train(opt, q, x, g, w.rank(), from, to, &skew);
    if (save_dir != nullptr) opt.save(file_of(*save_dir, w.rank()), x);
    opt.finish(x);
    out[static_cast<std::size_t>(w.rank())] = snapshot_of(opt, x);
  });
  return out;
}

const easgd_t::options easgd_options{.lr = 0.05, .step = {.momentum = 0.5f}, .pull = {.period = 4, .beta = 0.9f}};
const lsgd_t::options lsgd_options{.lr = 0.05, .pull = {.period = 4, .strength = 0.5f, .score_window = 3}};

template <class Opt>
typename Opt::options options_of() {
  if constexpr (std::is_same_v<Opt, easgd_t>)
    return easgd_options;
  else
    return lsgd_options;
}

}  // namespace

TEST_CASE("Async EASGD, one worker: resumed from the checkpoint of step 23, bit-identical to the run left whole",
          "[async][checkpoint]") {
  const fs::path dir = scratch_dir("one");
  const auto whole = run<easgd_t>(1, easgd_options, 0, steps, nullptr, nullptr);
  run<easgd_t>(1, easgd_options, 0, cut, nullptr, &dir);
  const auto resumed = run<easgd_t>(1, easgd_options, cut, steps, &dir, nullptr);
  CHECK(resumed[0] == whole[0]);
  CHECK(whole[0].pull_count == (steps - 1) / 4);
  CHECK(distance2(whole[0].x) < 0.02);
  fs::remove_all(dir);
}

TEMPLATE_TEST_CASE("Async EASGD and LSGD, 3 workers: load() gives back exactly the state save() left",
                   "[async][checkpoint]", easgd_t, lsgd_t) {
  constexpr int p = 3;
  const fs::path dir = scratch_dir("state");
  const auto o = options_of<TestType>();
  // The run that saved, finished at once: its center (EASGD) or leader copy (LSGD) is the one saved, as save()
  // completed every exchange or round in flight, and finish() has nothing left to do.
  const auto saved = run<TestType>(p, o, 0, cut, nullptr, &dir);
  const auto loaded = run<TestType>(p, o, cut, cut, &dir, nullptr);
  for (int r = 0; r < p; ++r) {
    INFO("worker " << r);
    const auto me = static_cast<std::size_t>(r);
    CHECK(loaded[me] == saved[me]);
    CHECK(saved[me].steps == cut);
    CHECK(saved[me].pull_count == (cut - 1) / 4);  // every exchange or round due at step 23, completed
    CHECK(saved[me].targets.size() == TestType::pull_type::buffers * saved[me].x.size());
  }
  if constexpr (std::is_same_v<TestType, lsgd_t>) {
    for (int r = 0; r < p; ++r) {  // every worker holds the same leader copy: the rounds completed everywhere
      const auto me = static_cast<std::size_t>(r);
      CHECK(saved[me].leader >= 0);
      CHECK(saved[me].leader < p);
      CHECK(saved[me].targets == saved[0].targets);
    }
  }
  fs::remove_all(dir);
}

TEMPLATE_TEST_CASE("Async EASGD and LSGD, 3 workers: a run resumed at step 23 goes on with its rounds and converges",
                   "[async][checkpoint]", easgd_t, lsgd_t) {
  constexpr int p = 3;
  const fs::path dir = scratch_dir("go_on");
  const auto o = options_of<TestType>();
  run<TestType>(p, o, 0, cut, nullptr, &dir);
  const auto resumed = run<TestType>(p, o, cut, steps, &dir, nullptr);
  for (int r = 0; r < p; ++r) {
    INFO("worker " << r);
    const auto& s = resumed[static_cast<std::size_t>(r)];
    CHECK(s.steps == steps);
    CHECK(s.pull_count == (steps - 1) / 4);  // the rounds go on from the saved one: none repeated, none lost
    CHECK(distance2(s.x) < 0.02);
    // The center (EASGD) or leader copy (LSGD) ends the same on every worker, near the optimum.
    const std::vector<float> first(s.targets.begin(), s.targets.begin() + static_cast<std::ptrdiff_t>(s.x.size()));
    const auto& s0 = resumed[0];
    CHECK(std::vector<float>(s0.targets.begin(), s0.targets.begin() + static_cast<std::ptrdiff_t>(s0.x.size())) ==
          first);
    CHECK(distance2(first) < 0.02);
  }
  fs::remove_all(dir);
}

TEST_CASE("Async checkpoints: another algorithm's file is refused on every worker, x and the optimizer untouched",
          "[async][checkpoint]") {
  constexpr int p = 3;
  const fs::path dir = scratch_dir("foreign");
  run<lsgd_t>(p, lsgd_options, 0, cut, nullptr, &dir);
  std::vector<std::string> errors(p);
  std::vector<std::vector<float>> before(p), after(p);
  std::vector<std::uint64_t> steps_after(p);
  const auto& q = async_test::quad();
  tether::team team(p);
  team.run([&](worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    auto x = async_test::start_point(q.dimension(), w.rank());
    before[me] = x;
    easgd_t opt(w, x.size(), easgd_options);
    try {
      opt.load(file_of(dir, w.rank()), x);
    } catch (const tether::error& e) {
      errors[me] = e.what();
    }
    after[me] = x;
    steps_after[me] = opt.stats().steps;
  });
  for (int r = 0; r < p; ++r) {
    INFO("worker " << r << ": " << errors[static_cast<std::size_t>(r)]);
    CHECK(errors[static_cast<std::size_t>(r)].find("written by another algorithm") != std::string::npos);
    CHECK(after[static_cast<std::size_t>(r)] == before[static_cast<std::size_t>(r)]);
    CHECK(steps_after[static_cast<std::size_t>(r)] == 0);
  }
  fs::remove_all(dir);
}
