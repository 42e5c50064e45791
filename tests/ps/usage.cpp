// The usage snippets of docs/algorithms/downpour.md, run: the doc's blocks must equal the regions marked here
// (ps_docs_snippets checks it), and each region runs as written and reaches the problem's optimum.

#include <tether/tether.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/checkpoint_files.hpp"

TEST_CASE("docs/algorithms/downpour.md: Downpour on the thread team", "[ps][usage]") {
  const tether::problems::quadratic<float> problem(64, {.noise = 0.1, .seed = 3});
  const std::size_t n = problem.dimension();
  const std::uint64_t steps = 400;
  std::vector<float> server(n);
  std::vector<std::size_t> lost(4);
  // [snippet: downpour_team]
  tether::team team(4);  // 4 replicas; the shards live in the process
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    tether::algo::downpour<tether::team::worker> opt(  // Adagrad on the shards, plain SGD on the replicas
        w, n, {.lr = 0.3, .local_lr = 0.05, .n_fetch = 4, .n_push = 2, .warm_start = 20, .shards = 8});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = problem.evaluate(x, g, {{}, tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);  // accrue g, local step; push every 2 steps, fetch every 4; never waits
    }
    opt.finish(x);  // waits for the other replicas (or their loss); x = the server's parameters
    if (w.rank() == 0) server = x;
    lost[static_cast<std::size_t>(w.rank())] = opt.losses().size();  // none here
  });
  // [end snippet]
  const auto optimum = problem.optimum();
  double d2 = 0.0;
  for (std::size_t i = 0; i < n; ++i) d2 += (double(server[i]) - double(optimum[i])) * (double(server[i]) - double(optimum[i]));
  CHECK(d2 / static_cast<double>(n) < 1e-2);
  CHECK(lost == std::vector<std::size_t>(4, 0));
}

TEST_CASE("docs/algorithms/downpour.md: consistency, leases and replay as options", "[ps][usage]") {
  const tether::problems::quadratic<float> problem(32, {.noise = 0.1, .seed = 4});
  const std::size_t n = problem.dimension();
  std::vector<std::uint64_t> lead(3);
  tether::team team(3);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    // [snippet: downpour_options]
    using tether::ps::consistency;
    tether::algo::downpour<tether::team::worker, tether::step::sgd> opt(  // plain SGD on the shards
        w, n,
        {.lr = 0.05,
         .shards = 4,
         .consistency = consistency::bounded(2),  // or consistency::bulk_synchronous(); asynchronous by default
         .lease = 5.0});                          // a replica silent for 5 s is declared lost
    // .replay = {.enabled = true, .seed = 7}: replicas take turns in a seeded order (asynchronous mode only)
    // [end snippet]
    for (std::uint64_t t = 0; t < 100; ++t) opt.step(x, g, problem.evaluate(x, g, {{}, t}));
    opt.finish(x);
    lead[static_cast<std::size_t>(w.rank())] = opt.stats().max_lead;
  });
  for (auto l : lead) CHECK(l <= 2);
}

TEST_CASE("docs/algorithms/downpour.md: a checkpoint saved by one run and loaded by another", "[ps][usage]") {
  // Bulk-synchronous, so the resumed run is deterministic: it must end where the run that saved and went on
  // ended, bit for bit (the reference: that run's x, read through nothing but the parameters).
  const tether::problems::quadratic<float> problem(32, {.noise = 0.1, .seed = 5});
  const std::size_t n = problem.dimension();
  const std::uint64_t cut = 60, steps = 150;
  const std::string dir = tether_test::scratch_dir("tether_ps_usage_checkpoint").string();
  using opt_t = tether::algo::downpour<tether::team::worker>;
  const opt_t::options o{.lr = 0.3, .n_fetch = 2, .n_push = 2, .shards = 4,
                         .consistency = tether::ps::consistency::bulk_synchronous()};
  const auto gradient = [&](std::vector<float>& x, std::vector<float>& g, int rank, std::uint64_t t) {
    return problem.evaluate(x, g, {{}, tether::derive_seed(2, static_cast<std::uint64_t>(rank), t)});
  };
  std::vector<std::vector<float>> whole(3), resumed(3);
  tether::team(3).run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    opt_t opt(w, n, o);
    for (std::uint64_t t = 0; t < steps; ++t) {
      if (t == cut) {
        // [snippet: downpour_save]
        opt.save(dir + "/replica." + std::to_string(w.rank()), x);  // every replica, after the same step
        // [end snippet]
      }
      opt.step(x, g, gradient(x, g, w.rank(), t));
    }
    opt.finish(x);
    whole[static_cast<std::size_t>(w.rank())] = x;
  });
  tether::team(3).run([&](tether::team::worker& w) {
    std::vector<float> x(n), g(n);
    // [snippet: downpour_load]
    opt_t opt(w, n, o);  // a new run: the same options, n and replica count
    opt.load(dir + "/replica." + std::to_string(w.rank()), x);  // every replica, before its first step
    for (std::uint64_t t = opt.stats().steps; t < steps; ++t) opt.step(x, g, gradient(x, g, w.rank(), t));
    // [end snippet]
    opt.finish(x);
    resumed[static_cast<std::size_t>(w.rank())] = x;
  });
  for (std::size_t r = 0; r < 3; ++r) {
    CHECK(resumed[r] == whole[r]);
    CHECK(resumed[r] == whole[0]);  // finish() leaves the server's parameters on every replica
  }
  std::filesystem::remove_all(dir);
}
