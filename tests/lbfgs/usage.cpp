// The usage snippets of docs/algorithms/sandblaster_lbfgs.md, run, with assertions on what they computed (the
// snippet regions are checked against the page by lbfgs_docs_snippets).

#include <tether/algo/sandblaster_lbfgs.hpp>
#include <tether/comm/shared_memory.hpp>
#include <tether/problems/logistic.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

TEST_CASE("The Sandblaster L-BFGS usage snippet runs and converges", "[lbfgs][docs]") {
  // [snippet: sandblaster_usage]
  tether::problems::logistic<double> data({.samples = 4000, .features = 20});  // any sampled_objective
  std::vector<tether::lbfgs::result> results(4);                               // each worker's (all the same)
  std::vector<std::vector<double>> xs(4);
  tether::team team(4);
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(data.dimension(), 0.0);  // the same start point on every worker
    results[static_cast<std::size_t>(w.rank())] =
        tether::algo::sandblaster_lbfgs(w, data, x, {.history = 6, .epsilon = 1e-6, .portions = 16});
    xs[static_cast<std::size_t>(w.rank())] = x;  // the minimiser, on every worker
  });
  // results[0].status, .iterations, .function_evaluations, .history, ...
  // [end snippet]
  for (std::size_t r = 0; r < 4; ++r) {
    CHECK(results[r].status == tether::lbfgs::outcome::converged);
    CHECK(xs[r] == xs[0]);
  }
  std::vector<double> g(data.dimension());
  (void)data.evaluate(xs[0], g, {});
  double gn = 0.0, xn = 0.0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    gn += g[i] * g[i];
    xn += xs[0][i] * xs[0][i];
  }
  // The tolerance holds for the full-batch gradient too (up to the portions' rounding).
  CHECK(std::sqrt(gn) <= 1.01e-6 * std::max(1.0, std::sqrt(xn)));
  CHECK(results[0].portions == 16 * results[0].function_evaluations);
}

TEST_CASE("The progress callback runs on the coordinator once per iteration", "[lbfgs][docs]") {
  tether::problems::logistic<double> data({.samples = 1000, .features = 8});
  std::vector<std::size_t> seen;
  // [snippet: sandblaster_progress]
  tether::lbfgs::options o{.history = 8, .epsilon = 1e-7};
  o.on_iteration = [&](const tether::lbfgs::iteration_record& it) {  // on the coordinator (worker 0)
    std::printf("iteration %zu: f = %.6f, |g| = %.2e, %zu trial(s)\n", it.iteration, it.f, it.gradient_norm,
                it.evaluations);
    seen.push_back(it.iteration);  // (the test's record)
  };
  // [end snippet]
  tether::team team(2);
  std::size_t iterations = 0;
  team.run([&](tether::team::worker& w) {
    std::vector<double> x(data.dimension(), 0.0);
    const auto r = tether::lbfgs::minimize(w, data, x, o);
    if (w.rank() == 0) iterations = r.iterations;
  });
  REQUIRE(iterations > 0);
  REQUIRE(seen.size() == iterations);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == i + 1);
}

TEST_CASE("The checkpoint snippet resumes the run it cut, bit for bit", "[lbfgs][docs]") {
  tether::problems::logistic<double> data({.samples = 2000, .features = 10});
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tether_lbfgs_usage_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string stem = (dir / "run").string();
  std::vector<std::vector<double>> resumed(2), whole(2);
  std::vector<tether::lbfgs::result> results(2), reference(2);
  tether::team team(2);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    // [snippet: sandblaster_checkpoint]
    std::vector<double> x(data.dimension(), 0.0);
    tether::lbfgs::options o{.history = 6, .epsilon = 1e-10, .max_iterations = 10};
    o.checkpoint = {.path = stem, .every = 5};  // worker r writes stem.rank<r> after iterations 5 and 10
    auto r = tether::lbfgs::minimize(w, data, x, o);  // a job that ends (or dies) after iteration 10

    // Later, a new job on as many workers, with the same shards and portions:
    o.max_iterations = 0;                        // on to convergence
    o.checkpoint.resume_from = stem;             // each worker reads its own file; x's values are not used
    r = tether::lbfgs::minimize(w, data, x, o);  // the same run as one without a break
    // [end snippet]
    resumed[me] = x;
    results[me] = r;
    whole[me].assign(data.dimension(), 0.0);
    reference[me] = tether::lbfgs::minimize(w, data, whole[me], {.history = 6, .epsilon = 1e-10});
  });
  std::filesystem::remove_all(dir);
  for (std::size_t r = 0; r < 2; ++r) {
    CHECK(results[r].iterations == reference[r].iterations);
    CHECK(results[r].status == reference[r].status);
    CHECK(std::memcmp(resumed[r].data(), whole[r].data(), whole[r].size() * sizeof(double)) == 0);
  }
  CHECK(results[0].status == tether::lbfgs::outcome::converged);
  CHECK(results[0].iterations > 10);
}
