// Bad input to Downpour on the thread team: every worker gets a tether::error naming the argument and its value,
// raised before any communication (option checks) or by the one consistency check at construction (values that
// differ across workers); and misuse of a replica (wrong buffer sizes, a step after finish()).

#include <tether/algo/downpour.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/step/momentum.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace {

using worker = tether::team::worker;
using opt_t = tether::algo::downpour<worker>;
constexpr int p = 3;

/// Constructs the optimizer on every worker of a team of p with the options `make(rank)` and size `n(rank)`;
/// returns the message of the tether::error each worker caught ("" when none was thrown).
template <class Make, class Size>
std::vector<std::string> errors(Make make, Size size) {
  std::vector<std::string> what(p);
  tether::team team(p);
  team.run([&](worker& w) {
    try {
      opt_t opt(w, size(w.rank()), make(w.rank()));
    } catch (const tether::error& e) {
      what[static_cast<std::size_t>(w.rank())] = e.what();
    }
  });
  return what;
}

void check_all(const std::vector<std::string>& what, const std::vector<std::string>& parts) {
  for (int r = 0; r < p; ++r) {
    INFO("worker " << r << ": " << what[static_cast<std::size_t>(r)]);
    CHECK(!what[static_cast<std::size_t>(r)].empty());
    for (const auto& part : parts) CHECK(what[static_cast<std::size_t>(r)].find(part) != std::string::npos);
  }
}

template <class Options>
void check_option(Options o, const std::vector<std::string>& parts) {
  check_all(errors([&](int) { return o; }, [](int) { return std::size_t{10}; }), parts);
}

}  // namespace

TEST_CASE("Bad Downpour options: a tether::error naming the argument and value on every worker", "[ps][bad]") {
  check_option(opt_t::options{.shards = 0}, {"shards", "shards = 0"});
  check_option(opt_t::options{.n_fetch = 0}, {"n_fetch", "n_fetch = 0"});
  check_option(opt_t::options{.n_push = 0}, {"n_push", "n_push = 0"});
  check_option(opt_t::options{.warm_start = 100, .steps = 50}, {"warm_start", "warm_start = 100", "steps = 50"});
  check_option(opt_t::options{.warm_start = 50, .steps = 50}, {"warm_start = 50"});
  check_option(opt_t::options{.shard_step = {.eps = 0.0f}}, {"shards cannot run", "shard_step", "eps = 0"});
  check_option(opt_t::options{.shard_step = {.initial_accumulator = -1.0f}},
               {"shard_step", "initial_accumulator = -1"});
  check_option(opt_t::options{.lr = -0.1}, {"lr", "lr = -0.1"});
  check_option(opt_t::options{.local_lr = std::numeric_limits<double>::quiet_NaN()}, {"local_lr", "nan"});
  // Finite doubles that are no float (issue 13, item 7): the float replica and shards would fill x with inf.
  check_option(opt_t::options{.lr = 1e39}, {"lr", "float", "lr = 1e+39"});
  check_option(opt_t::options{.local_lr = 1e39}, {"local_lr", "float", "local_lr = 1e+39"});
  check_option(opt_t::options{.consistency = {tether::ps::consistency_mode::asynchronous, 3}}, {"staleness = 3"});
  check_option(opt_t::options{.consistency = tether::ps::consistency::bulk_synchronous(),
                              .replay = {.enabled = true, .seed = 1}},
               {"replay", "consistency mode 2"});
  check_option(opt_t::options{.lease = -1.0}, {"lease", "lease = -1"});
  using momentum_local = tether::algo::downpour<worker, tether::step::adagrad, tether::exec::serial, float,
                                                tether::step::momentum>;
  std::vector<std::string> what(p);
  tether::team team(p);
  team.run([&](worker& w) {
    try {
      momentum_local opt(w, 10, {.local_step = {.momentum = 1.0f}});
    } catch (const tether::error& e) {
      what[static_cast<std::size_t>(w.rank())] = e.what();
    }
  });
  check_all(what, {"local_step", "momentum = 1"});
}

TEST_CASE("Workers that disagree on N or on the options: every worker gets a tether::error", "[ps][bad]") {
  check_all(errors([](int) { return opt_t::options{}; }, [](int r) { return std::size_t(r == 1 ? 11 : 10); }),
            {"the parameter count n", "rank 0 has 10", "rank 1 has 11"});
  check_all(errors([](int r) { return opt_t::options{.n_push = r == 2 ? 2u : 1u}; }, [](int) { return std::size_t{10}; }),
            {"the downpour options"});
  check_all(errors([](int r) { return opt_t::options{.shard_step = {.eps = r == 0 ? 1e-8f : 1e-10f}}; },
                   [](int) { return std::size_t{10}; }),
            {"the shard_step options"});
}

TEST_CASE("Misuse of a replica: wrong sizes, a step after finish(), finish() twice", "[ps][bad]") {
  std::vector<std::string> what;
  tether::team team(1);
  team.run([&](worker& w) {
    opt_t opt(w, 10, {.lr = 0.1});
    std::vector<float> x(10, 0.0f), g(10, 1.0f), small(9, 0.0f);
    const auto record = [&](auto&& f) {
      try {
        f();
        what.emplace_back("");
      } catch (const tether::error& e) {
        what.emplace_back(e.what());
      }
    };
    record([&] { opt.step(small, g, 1.0); });
    record([&] { opt.step(x, small, 1.0); });
    record([&] { opt.step(x, g, 1.0); });  // fine
    record([&] { opt.finish(small); });
    record([&] { opt.finish(x); });  // fine
    record([&] { opt.step(x, g, 1.0); });
    record([&] { opt.finish(x); });
  });
  REQUIRE(what.size() == 7);
  CHECK(what[0].find("x has 9 elements, expected n = 10") != std::string::npos);
  CHECK(what[1].find("g has 9 elements, expected n = 10") != std::string::npos);
  CHECK(what[2].empty());
  CHECK(what[3].find("x has 9 elements") != std::string::npos);
  CHECK(what[4].empty());
  CHECK(what[5].find("step after finish()") != std::string::npos);
  CHECK(what[6].find("called twice") != std::string::npos);
}
