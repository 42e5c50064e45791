// The usage snippet of docs/algorithms/swarm_sgd.md, run: 8 nodes on a ring with 8-bit messages train a
// logistic regression; every node ends near the full-batch optimum (found here by plain gradient descent).
#include <catch2/catch.hpp>

#include <tether/tether.hpp>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

TEST_CASE("docs: the swarm_sgd usage snippet runs and trains", "[swarm][docs]") {
  const tether::problems::logistic<float> data({.samples = 1024, .features = 15, .l2 = 1e-3, .seed = 12});
  const std::size_t n = data.dimension();
  std::vector<double> loss(8);
  // [snippet: swarm_usage]
  tether::team team(8);
  team.run([&](tether::team::worker& w) {
    std::vector<float> x(n), g(n);
    using codec = tether::codec::stochastic_uniform<float>;  // 8-bit messages, one scale per 256 values
    tether::algo::swarm_sgd<tether::team::worker, tether::step::sgd, codec> opt(
        w, n,
        {.lr = 0.5,
         .topology = tether::comm::topology::ring(8),  // each node gossips with its two ring neighbours
         .local_steps = 4,                              // H: 4 local steps, then one pair exchange
         .codec = codec({.bits = 8, .block = 256})});
    tether::rng rng(tether::derive_seed(1, w.rank()));
    std::vector<std::size_t> batch(32);
    for (int t = 0; t < 1000; ++t) {
      for (auto& s : batch) s = rng.below(data.samples());
      opt.step(x, g, data.evaluate(x, g, {.samples = batch}));  // local step; every 4th: average with a neighbour
    }
    opt.finish(x);  // keeps answering the others until every node has finished
    loss[w.rank()] = data.evaluate(x, g, {});  // full-batch loss of this node's model
  });
  // [end snippet]
  std::vector<float> w(n, 0.0f), g(n);
  double best = 0;
  for (int it = 0; it < 3000; ++it) {
    best = data.evaluate(w, g, {});
    for (std::size_t i = 0; i < n; ++i) w[i] -= 0.5f * g[i];
  }
  for (double l : loss) CHECK(l < best + 0.02);
}

TEST_CASE("docs: the swarm_sgd checkpoint snippet resumes bit for bit", "[swarm][docs][checkpoint]") {
  const tether::problems::logistic<float> data({.samples = 256, .features = 7, .l2 = 1e-3, .seed = 3});
  const std::size_t n = data.dimension();
  const auto dir_path =
      std::filesystem::temp_directory_path() / ("tether_swarm_snippet_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir_path);
  const std::string dir = dir_path.string();
  std::vector<std::vector<float>> models(4);
  const auto train = [&](bool resume, int end) {
    // [snippet: swarm_checkpoint]
    tether::team team(4);
    team.run([&](tether::team::worker& w) {
      std::vector<float> x(n), g(n);
      tether::algo::swarm_sgd<tether::team::worker> opt(
          w, n, {.lr = 0.5, .topology = tether::comm::topology::ring(4), .local_steps = 4, .replay = true});
      const std::string file = dir + "/swarm." + std::to_string(w.rank()) + ".ckpt";
      std::uint64_t t = 0;
      if (resume) {
        opt.load(file, x);  // x, the velocity, counters, period position and random streams
        t = opt.stats().steps;
      }
      std::vector<std::size_t> batch(16);
      for (; t < static_cast<std::uint64_t>(end); ++t) {
        tether::rng rng(tether::derive_seed(1, w.rank(), t));  // the batches: the caller's to resume
        for (auto& s : batch) s = rng.below(data.samples());
        opt.step(x, g, data.evaluate(x, g, {.samples = batch}));
        if (t % 100 == 99) opt.save(file, x);  // between steps (non-blocking variant: after sync(x))
      }
      opt.finish(x);
      models[w.rank()] = x;
    });
    // [end snippet]
  };
  train(false, 400);
  const auto whole = models;
  train(false, 250);  // "killed" at step 250: the files hold step 200
  train(true, 400);
  for (std::size_t r = 0; r < 4; ++r)
    CHECK(std::memcmp(models[r].data(), whole[r].data(), n * sizeof(float)) == 0);
  std::filesystem::remove_all(dir_path);
}
