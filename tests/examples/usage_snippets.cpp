/// \file
/// The usage snippets of README.md and docs/algorithms/*.md, compiled and run. The code between
/// `// [snippet: <name>]` and `// [end snippet]` must match the block after `<!-- snippet: <name> -->` in the docs
/// (leading whitespace aside): the test docs_snippets compares them.

#include <catch2/catch.hpp>

#include <tether/tether.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

/// Largest |x_i - c_i|.
double max_error(const std::vector<float>& x, std::span<const float> c) {
  double e = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) e = std::max(e, std::abs(double(x[i]) - double(c[i])));
  return e;
}

// The model and sizes the algorithm snippets use: a noisy quadratic with a known optimum.
const std::size_t n = 16;
const std::uint64_t steps = 480;
const tether::problems::quadratic<float> model(n, {.a_min = 0.5, .a_max = 2.0, .noise = 0.1, .seed = 5});

}  // namespace

TEST_CASE("README: Using tether", "[examples]") {
  // [snippet: readme_using]
  tether::problems::logistic<float> data;  // or your own model: any type with dimension() and evaluate()
  const std::size_t n = data.dimension();
  std::vector<double> accuracy(4);

  tether::team team(4);  // 4 worker threads, one process
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n), g(n);  // this worker's parameters and gradient (any contiguous buffer)
    tether::algo::lsgd<tether::team::worker> opt(w, n, {.lr = 0.5, .pull = {.period = 16, .strength = 0.1f}});

    tether::rng rng(tether::derive_seed(/*seed=*/1, w.rank()));  // this worker's minibatches
    std::vector<std::size_t> batch(32);
    for (int t = 0; t < 1000; ++t) {
      for (auto& s : batch) s = rng.below(data.samples());
      const double loss = data.evaluate(x, g, {.samples = batch});
      opt.step(x, g, loss);  // SGD step + pull toward the leader in one pass; a collective every 16 steps
    }
    accuracy[w.rank()] = data.accuracy(x);  // on the whole data set
  });
  // [end snippet]
  for (const double acc : accuracy) CHECK(acc > 0.85);
}

TEST_CASE("docs/algorithms/lsgd.md usage", "[examples]") {
  std::vector<std::vector<float>> final_x(4);
  // [snippet: lsgd_usage]
  tether::team team(4);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    tether::algo::lsgd<tether::team::worker> opt(w, n, {.lr = 0.05, .pull = {.period = 16, .strength = 0.1f}});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = model.evaluate(x, g, {.seed = tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);
    }
    final_x[w.rank()] = x;  // opt.stats(): rounds, leader, leader_changes, bytes_sent, bytes_received...
  });
  // [end snippet]
  for (const auto& x : final_x) CHECK(max_error(x, model.optimum()) < 0.15);
}

TEST_CASE("docs/algorithms/easgd.md usage", "[examples]") {
  std::vector<std::vector<float>> final_x(4), center(4);
  // [snippet: easgd_usage]
  tether::team team(4);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    tether::algo::easgd<tether::team::worker> opt(w, n, {.lr = 0.05, .pull = {.period = 10, .beta = 0.9f}});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = model.evaluate(x, g, {.seed = tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);
    }
    final_x[w.rank()] = x;
    const auto c = opt.target(0);  // the center variable, identical on every worker
    center[w.rank()].assign(c.data(), c.data() + c.size());
  });
  // [end snippet]
  for (const auto& x : final_x) CHECK(max_error(x, model.optimum()) < 0.15);
  for (const auto& c : center) {
    CHECK(c == center[0]);
    CHECK(max_error(c, model.optimum()) < 0.1);
  }
}

TEST_CASE("docs/algorithms/local_sgd.md usage", "[examples]") {
  std::vector<std::vector<float>> final_x(4);
  // [snippet: local_sgd_usage]
  tether::team team(4);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    // Average every 16 steps; average after each of the first 32 steps (post-local SGD).
    tether::algo::local_sgd<tether::team::worker> opt(w, n, {.lr = 0.05, .pull = {.period = 16, .warmup = 32}});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = model.evaluate(x, g, {.seed = tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);
    }
    final_x[w.rank()] = x;
  });
  // [end snippet]
  static_assert(steps % 16 == 0);
  for (const auto& x : final_x) {
    CHECK(x == final_x[0]);  // the run ends on an average: every worker holds the same bits
    CHECK(max_error(x, model.optimum()) < 0.1);
  }
}

TEST_CASE("docs/algorithms/overlap_local_sgd.md usage", "[examples]") {
  std::vector<std::vector<float>> final_x(4);
  // [snippet: overlap_local_sgd_usage]
  tether::team team(4);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    tether::algo::overlap_local_sgd<tether::team::worker> opt(w, n,
                                                              {.lr = 0.05, .pull = {.period = 16, .alpha = 0.2f}});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = model.evaluate(x, g, {.seed = tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);  // at a round: wait for the average started tau steps ago, pull, start the next
    }
    opt.finish(x);  // complete the average still in flight before reading the anchor or leaving
    final_x[w.rank()] = x;
  });
  // [end snippet]
  for (const auto& x : final_x) CHECK(max_error(x, model.optimum()) < 0.15);
}

TEST_CASE("docs/algorithms/lsgd.md: local and global leaders", "[examples]") {
  std::vector<std::vector<float>> final_x(8);
  std::vector<int> leaders(8);
  // [snippet: lsgd_grouped_usage]
  tether::team team(8, {.group_size = 4});  // 2 groups of 4 workers (say, 2 nodes)
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n, 0.0f), g(n);
    // A local leader per group every 8 steps, a global leader every 32 steps.
    tether::algo::lsgd_grouped<tether::team::worker> opt(
        w, n, {.lr = 0.05, .pull = {.period = 8, .strength = 0.1f, .global_period = 32, .global_strength = 0.1f}});
    for (std::uint64_t t = 0; t < steps; ++t) {
      const double loss = model.evaluate(x, g, {.seed = tether::derive_seed(1, w.rank(), t)});
      opt.step(x, g, loss);
    }
    final_x[w.rank()] = x;
    leaders[w.rank()] = opt.pull_policy().leader();  // team rank; local_leader() is a rank in the group
  });
  // [end snippet]
  for (const auto& x : final_x) CHECK(max_error(x, model.optimum()) < 0.15);
  for (const int l : leaders) {
    CHECK(l == leaders[0]);
    CHECK((l >= 0 && l < 8));
  }
}

TEST_CASE("docs/architecture.md: options", "[examples]") {
  std::vector<std::vector<float>> final_x(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    // [snippet: options]
    tether::algo::lsgd<tether::team::worker> opt(w, n, {.lr = 0.1,
                                                        .step = {},
                                                        .pull = {.period = 16, .strength = 0.1f, .jump = 0.1f},
                                                        .schedule = tether::schedule::cosine(steps, 0.01)});
    // [end snippet]
    std::vector<float> x(n, 0.0f), g(n);
    for (std::uint64_t t = 0; t < steps; ++t) opt.step(x, g, model.evaluate(x, g, {.seed = t}));
    final_x[w.rank()] = x;
  });
  for (const auto& x : final_x) CHECK(max_error(x, model.optimum()) < 0.1);
}
