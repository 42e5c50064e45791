/// \file
/// tether's quick start: LSGD (Leader SGD) on a team of threads, training a logistic regression.
///
/// Every worker trains on its own shard of the data with its own seeded minibatches. Every `period` steps the
/// workers elect the one with the lowest recent loss as leader, and it broadcasts its parameters; between
/// rounds each worker is pulled gently toward the leader's copy, in the same pass as its SGD step.
/// At the end, every worker's test accuracy is compared with plain SGD on one worker for the same steps.
///
///     quickstart [--workers 4] [--steps 3000] [--period 16] [--lr 0.5] [--seed 1] [--check]

#include <tether/tether.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace {

constexpr std::size_t train_samples = 8192;  // the first samples are for training...
constexpr std::size_t test_samples = 2048;   // ...the last ones are held out for the accuracy
constexpr std::size_t batch_size = 32;

using problem = tether::problems::logistic<float>;

/// Fraction of the held-out samples that the weights `w` classify correctly.
double test_accuracy(const problem& data, const std::vector<float>& w) {
  const std::size_t d = data.dimension() - 1;  // the last parameter is the bias
  std::size_t correct = 0;
  for (std::size_t s = train_samples; s < data.samples(); ++s) {
    const auto features = data.features_of(s);
    double z = w[d];
    for (std::size_t j = 0; j < d; ++j) z += double(w[j]) * double(features[j]);
    correct += (z >= 0.0) == (data.label(s) > 0.0f);
  }
  return double(correct) / double(test_samples);
}

/// Trains one worker: its shard is [first, first + count) of the training samples.
template <class Optimizer>
void train(const problem& data, Optimizer& opt, std::vector<float>& x, std::size_t first, std::size_t count,
           std::uint64_t steps, std::uint64_t seed) {
  std::vector<float> g(x.size());
  std::vector<std::size_t> batch(batch_size);
  tether::rng rng(seed);
  for (std::uint64_t t = 0; t < steps; ++t) {
    for (auto& s : batch) s = first + rng.below(count);
    const double loss = data.evaluate(x, g, {.samples = batch});
    opt.step(x, g, loss);  // the SGD step and the pull toward the leader, fused; a collective at rounds
  }
}

// --- command line -----------------------------------------------------------------------------------------

struct settings {
  int workers = 4;
  std::uint64_t steps = 3000;
  std::uint32_t period = 16;
  double lr = 0.5;
  std::uint64_t seed = 1;
  bool check = false;  // exit with status 1 unless every worker reaches a sensible accuracy
};

constexpr const char* usage = R"(Usage: quickstart [options]
LSGD on a team of threads, training a logistic regression (tether::problems::logistic).

  --workers N   worker threads (default 4)
  --steps N     SGD steps per worker (default 3000)
  --period N    steps between leader elections (default 16)
  --lr X        learning rate (default 0.5)
  --seed N      seed of the starting points and minibatches (default 1)
  --check       exit with status 1 unless every worker's test accuracy is within 2 points of
                single-worker SGD and at least 0.8
  --help        this text
)";

struct usage_error {
  std::string message;
};

template <class V>
V parse(std::string_view name, std::string_view text) {
  V v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    throw usage_error{std::string(name) + (std::is_integral_v<V> ? " expects a whole number" : " expects a number") +
                      ", got '" + std::string(text) + "'"};
  return v;
}

settings parse_args(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--check") {
      s.check = true;
      continue;
    }
    if (a == "--workers" || a == "--steps" || a == "--period" || a == "--lr" || a == "--seed") {
      if (i + 1 >= argc) throw usage_error{std::string(a) + " needs a value"};
      const std::string_view v = argv[++i];
      if (a == "--workers") s.workers = parse<int>(a, v);
      if (a == "--steps") s.steps = parse<std::uint64_t>(a, v);
      if (a == "--period") s.period = parse<std::uint32_t>(a, v);
      if (a == "--lr") s.lr = parse<double>(a, v);
      if (a == "--seed") s.seed = parse<std::uint64_t>(a, v);
      continue;
    }
    throw usage_error{"unknown option '" + std::string(a) + "'"};
  }
  if (s.workers < 1 || s.workers > 1024)
    throw usage_error{"--workers must be in [1, 1024], got " + std::to_string(s.workers)};
  if (s.steps < 1) throw usage_error{"--steps must be >= 1"};
  if (s.period < 1) throw usage_error{"--period must be >= 1"};
  if (!std::isfinite(s.lr) || s.lr <= 0.0) throw usage_error{"--lr must be a finite number > 0"};
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
  }
  settings cfg;
  try {
    cfg = parse_args(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "quickstart: %s (see --help)\n", e.message.c_str());
    return 2;
  }

  try {
    // The data: a logistic regression with 32 features (33 parameters with the bias).
    const problem data({.samples = train_samples + test_samples, .features = 32, .l2 = 1e-4, .seed = 7});
    const std::size_t n = data.dimension();
    const auto p = static_cast<std::size_t>(cfg.workers);

    // LSGD on a team of threads. Every worker runs the lambda with its own handle `w` (rank, size, collectives).
    using lsgd = tether::algo::lsgd<tether::team::worker>;
    tether::team team(cfg.workers);
    std::vector<std::vector<float>> final_x(p);
    std::vector<double> scores(p);  // each worker's recent mean loss, gathered for the progress line
    const std::uint64_t rounds = cfg.steps / cfg.period;
    const std::uint64_t print_every = rounds > 10 ? rounds / 10 : 1;

    std::printf("LSGD: %d workers, %llu steps, period %u, lr %g, %zu parameters\n", cfg.workers,
                static_cast<unsigned long long>(cfg.steps), cfg.period, cfg.lr, n);
    std::printf("%8s %10s %7s %14s\n", "step", "mean loss", "leader", "bytes recv/w0");

    team.run([&](tether::team::worker& w) {
      const auto r = static_cast<std::size_t>(w.rank());

      // Called by each worker's optimizer after each round (here: every `period` steps).
      auto progress = [&](const tether::worker_stats& s) {
        if (s.rounds != 1 && s.rounds % print_every != 0) return;
        scores[r] = s.score;  // the mean of this worker's last 10 minibatch losses
        w.barrier();          // every worker has written its score...
        if (r == 0) {
          double mean = 0.0;
          for (double v : scores) mean += v / double(p);
          std::printf("%8llu %10.4f %7d %14llu\n", static_cast<unsigned long long>(s.steps), mean, s.leader,
                      static_cast<unsigned long long>(s.bytes_received));
        }
        w.barrier();  // ...and worker 0 has read them all
      };

      lsgd::options o{.lr = cfg.lr, .pull = {.period = cfg.period, .strength = 0.1f}};
      o.on_round = progress;  // set apart: GCC 12 -O3 warns falsely on a std::function in a designated init
      lsgd opt(w, n, o);

      // Each worker starts from its own random point near 0.
      std::vector<float> x(n);
      tether::rng init(tether::derive_seed(cfg.seed, r, 1));
      for (auto& v : x) v = static_cast<float>(0.1 * init.normal());

      const std::size_t first = train_samples * r / p;
      const std::size_t last = train_samples * (r + 1) / p;
      train(data, opt, x, first, last - first, cfg.steps, tether::derive_seed(cfg.seed, r, 2));
      final_x[r] = x;
    });

    // The baseline: plain SGD (no pull) on one worker that sees all the training data, for the same steps.
    using sgd = tether::optimizer<tether::step::sgd, tether::pull::none, tether::team::worker>;
    tether::team solo(1);
    std::vector<float> baseline(n);
    solo.run([&](tether::team::worker& w) {
      sgd opt(w, n, {.lr = cfg.lr});
      tether::rng init(tether::derive_seed(cfg.seed, 0, 1));
      for (auto& v : baseline) v = static_cast<float>(0.1 * init.normal());
      train(data, opt, baseline, 0, train_samples, cfg.steps, tether::derive_seed(cfg.seed, 0, 2));
    });

    const double base_acc = test_accuracy(data, baseline);
    std::printf("final test accuracy (%zu held-out samples):\n", test_samples);
    bool ok = true;
    for (std::size_t r = 0; r < p; ++r) {
      const double acc = test_accuracy(data, final_x[r]);
      std::printf("  worker %zu: %.4f   (sent %llu bytes, received %llu)\n", r, acc,
                  static_cast<unsigned long long>(team.counters(static_cast<int>(r)).bytes_sent),
                  static_cast<unsigned long long>(team.counters(static_cast<int>(r)).bytes_received));
      ok = ok && acc >= 0.8 && acc >= base_acc - 0.02;
    }
    std::printf("  single-worker SGD: %.4f\n", base_acc);

    if (cfg.check) {
      std::printf("check: %s\n", ok ? "passed" : "FAILED (a worker is below 0.8 or 2 points below SGD)");
      return ok ? 0 : 1;
    }
    return 0;
  } catch (const std::exception& e) {  // tether::error names the bad argument and its value
    std::fprintf(stderr, "quickstart: %s\n", e.what());
    return 1;
  }
}
