/// \file
/// Bringing your own solver to tether. Everything tether-specific a user writes is in this file and in
/// policies.hpp (2. and 3., kept apart so that examples/bench_custom can benchmark them):
///
///   1. `my::vec`, the user's own vector type, handed to tether through a `tether::buffer_traits`
///      specialisation (tether never copies or owns it);
///   2. `my::rmsprop`, a step policy of the user's (RMSprop), satisfying `tether::step_policy`;
///   3. `my::deadzone_leader`, a pull policy of the user's: LSGD's pull toward the best worker, but only for
///      the part of each coordinate's gap that exceeds a dead zone, so workers that already agree with the
///      leader to within the dead zone are left to explore; it satisfies `tether::pull_policy`, and runs its
///      collectives and kernels through the step environment (env.min_loc, env.copy, env.broadcast), so the
///      same code serves parameters in GPU memory;
///   4. the user's solver loop (a least-squares model with its own data shards) calling `opt.step` from each
///      worker of a thread team, with its own buffers.
///
///     custom_solver [--workers 4] [--steps 2000] [--seed 1] [--check]

#include <tether/tether.hpp>

#include "policies.hpp"  // 2. and 3.: the user's step policy (RMSprop) and pull policy (a dead-zone leader)

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace my {

// --- 1. The user's own buffer type --------------------------------------------------------------------------

/// A fixed-size vector of doubles, as a user's numerics library might have. Not a standard range.
class vec {
 public:
  explicit vec(std::size_t n, double value = 0.0) : n_(n), p_(std::make_unique<double[]>(n)) {
    std::fill_n(p_.get(), n, value);
  }
  [[nodiscard]] std::size_t length() const noexcept { return n_; }
  [[nodiscard]] double* values() noexcept { return p_.get(); }
  [[nodiscard]] const double* values() const noexcept { return p_.get(); }
  double& operator[](std::size_t i) noexcept { return p_[i]; }
  double operator[](std::size_t i) const noexcept { return p_[i]; }

 private:
  std::size_t n_;
  std::unique_ptr<double[]> p_;
};

}  // namespace my

/// Tells tether where a my::vec keeps its numbers: now `opt.step(x, g, loss)` takes my::vec directly.
template <>
struct tether::buffer_traits<my::vec> {
  using value_type = double;
  using memory_space = tether::mem::host;
  static double* data(my::vec& v) { return v.values(); }
  static const double* data(const my::vec& v) { return v.values(); }
  static std::size_t size(const my::vec& v) { return v.length(); }
};

namespace my {

// --- 4. The user's model: linear least squares --------------------------------------------------------------

/// Minimise 1/2 mean_i (a_i . x - b_i)^2 over rows generated from hidden weights plus noise. The columns
/// have scales from 0.3 to 3, so a per-coordinate rate (RMSprop) helps.
class least_squares {
 public:
  least_squares(std::size_t rows, std::size_t cols, double noise, std::uint64_t seed)
      : rows_(rows), cols_(cols), a_(rows * cols), b_(rows) {
    tether::rng r(seed);
    std::vector<double> truth(cols);
    for (auto& t : truth) t = r.normal();
    for (std::size_t i = 0; i < rows; ++i) {
      double dot = 0.0;
      for (std::size_t j = 0; j < cols; ++j) {
        const double scale = 0.3 * std::pow(10.0, double(j) / double(cols - 1));
        a_[i * cols + j] = scale * r.normal();
        dot += a_[i * cols + j] * truth[j];
      }
      b_[i] = dot + noise * r.normal();
    }
  }

  [[nodiscard]] std::size_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::size_t cols() const noexcept { return cols_; }

  /// Loss over the given rows, and its gradient into g.
  double gradient(const vec& x, vec& g, std::span<const std::size_t> rows) const {
    for (std::size_t j = 0; j < cols_; ++j) g[j] = 0.0;
    double loss = 0.0;
    const double inv = 1.0 / double(rows.size());
    for (const std::size_t i : rows) {
      const double* ai = &a_[i * cols_];
      double r = -b_[i];
      for (std::size_t j = 0; j < cols_; ++j) r += ai[j] * x[j];
      loss += 0.5 * r * r * inv;
      for (std::size_t j = 0; j < cols_; ++j) g[j] += r * ai[j] * inv;
    }
    return loss;
  }

  /// The exact minimiser over all rows, from the normal equations (A^T A) x = A^T b by Cholesky.
  [[nodiscard]] std::vector<double> solve() const {
    const std::size_t n = cols_;
    std::vector<double> m(n * n, 0.0), y(n, 0.0);
    for (std::size_t i = 0; i < rows_; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        y[j] += a_[i * n + j] * b_[i];
        for (std::size_t k = 0; k <= j; ++k) m[j * n + k] += a_[i * n + j] * a_[i * n + k];
      }
    for (std::size_t j = 0; j < n; ++j) {  // m = L L^T, L in the lower triangle
      for (std::size_t k = 0; k < j; ++k) m[j * n + j] -= m[j * n + k] * m[j * n + k];
      m[j * n + j] = std::sqrt(m[j * n + j]);
      for (std::size_t i = j + 1; i < n; ++i) {
        for (std::size_t k = 0; k < j; ++k) m[i * n + j] -= m[i * n + k] * m[j * n + k];
        m[i * n + j] /= m[j * n + j];
      }
    }
    for (std::size_t i = 0; i < n; ++i) {  // L z = y
      for (std::size_t k = 0; k < i; ++k) y[i] -= m[i * n + k] * y[k];
      y[i] /= m[i * n + i];
    }
    for (std::size_t i = n; i-- > 0;) {  // L^T x = z
      for (std::size_t k = i + 1; k < n; ++k) y[i] -= m[k * n + i] * y[k];
      y[i] /= m[i * n + i];
    }
    return y;
  }

 private:
  std::size_t rows_, cols_;
  std::vector<double> a_, b_;
};

}  // namespace my

// The extension points in action: checked at compile time, with the messages of the concepts.
static_assert(tether::buffer<my::vec>);
static_assert(tether::step_policy<my::rmsprop, double>);
static_assert(tether::pull_policy<my::deadzone_leader, double>);

namespace {

/// The user's composition: their step, their pull, tether's thread team and serial kernels, in double.
using optimizer = tether::optimizer<my::rmsprop, my::deadzone_leader, tether::team::worker, tether::exec::serial,
                                    double>;

struct settings {
  int workers = 4;
  std::uint64_t steps = 2000;
  std::uint64_t seed = 1;
  bool check = false;
};

constexpr const char* usage = R"(Usage: custom_solver [options]
A user's least-squares solver with a custom step (RMSprop) and a custom pull (a leader with a dead zone).

  --workers N   worker threads (default 4)
  --steps N     steps per worker (default 2000)
  --seed N      seed of the starting points and minibatches (default 1)
  --check       exit with status 1 unless every worker ends within 0.02 (RMS) of the exact solution
  --help        this text
)";

/// Parses the command line; returns false and prints why when it is wrong.
bool parse_args(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--check") {
      s.check = true;
      continue;
    }
    if (a != "--workers" && a != "--steps" && a != "--seed") {
      std::fprintf(stderr, "custom_solver: unknown option '%s' (see --help)\n", argv[i]);
      return false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "custom_solver: %s needs a value (see --help)\n", argv[i]);
      return false;
    }
    const std::string_view v = argv[++i];
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc{} || end != v.data() + v.size()) {
      std::fprintf(stderr, "custom_solver: %s expects a whole number, got '%s' (see --help)\n", argv[i - 1],
                   argv[i]);
      return false;
    }
    if (a == "--workers") s.workers = value <= 1024 ? static_cast<int>(value) : 0;
    if (a == "--steps") s.steps = value;
    if (a == "--seed") s.seed = value;
  }
  if (s.workers < 1) {
    std::fprintf(stderr, "custom_solver: --workers must be in [1, 1024] (see --help)\n");
    return false;
  }
  if (s.steps < 1) {
    std::fprintf(stderr, "custom_solver: --steps must be >= 1 (see --help)\n");
    return false;
  }
  return true;
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
  if (!parse_args(argc, argv, cfg)) return 2;

  try {
    const my::least_squares model(/*rows=*/4096, /*cols=*/16, /*noise=*/0.1, /*seed=*/11);
    const std::vector<double> exact = model.solve();
    const std::size_t n = model.cols();
    const auto p = static_cast<std::size_t>(cfg.workers);

    tether::team team(cfg.workers);
    std::vector<double> rms_error(p);
    std::vector<int> leader(p);
    team.run([&](tether::team::worker& w) {
      const auto r = static_cast<std::size_t>(w.rank());

      // The user's buffers: parameters from a worker-specific random start, and a gradient.
      my::vec x(n);
      my::vec g(n);
      tether::rng rng(tether::derive_seed(cfg.seed, r));
      for (std::size_t j = 0; j < n; ++j) x[j] = rng.normal();

      optimizer::options o{.lr = 0.02,
                           .step = {.rho = 0.9f},
                           .pull = {.period = 10, .strength = 0.5f, .dead_zone = 0.01f},
                           .schedule = tether::schedule::cosine(cfg.steps, 0.01)};
      optimizer opt(w, n, o);

      // This worker's rows: a contiguous shard; minibatches of 16 rows drawn from it.
      const std::size_t first = model.rows() * r / p;
      const std::size_t count = model.rows() * (r + 1) / p - first;
      std::vector<std::size_t> rows(16);
      for (std::uint64_t t = 0; t < cfg.steps; ++t) {
        for (auto& i : rows) i = first + rng.below(count);
        const double loss = model.gradient(x, g, rows);
        opt.step(x, g, loss);  // RMSprop step + dead-zone pull, one fused pass over x
      }

      double err = 0.0;
      for (std::size_t j = 0; j < n; ++j) err += (x[j] - exact[j]) * (x[j] - exact[j]);
      rms_error[r] = std::sqrt(err / double(n));
      leader[r] = opt.pull_policy().leader();
    });

    std::printf("custom_solver: %d workers x %llu steps, RMSprop + dead-zone leader pull, %zu parameters\n",
                cfg.workers, static_cast<unsigned long long>(cfg.steps), n);
    bool ok = true;
    for (std::size_t r = 0; r < p; ++r) {
      const auto& c = team.counters(static_cast<int>(r));
      std::printf("  worker %zu: RMS distance to the exact solution %.5f   (bytes sent %llu, received %llu)\n", r,
                  rms_error[r], static_cast<unsigned long long>(c.bytes_sent),
                  static_cast<unsigned long long>(c.bytes_received));
      ok = ok && rms_error[r] < 0.02;
    }
    std::printf("  last leader: worker %d\n", leader[0]);
    if (cfg.check) {
      std::printf("check: %s\n", ok ? "passed" : "FAILED (a worker is farther than 0.02 from the solution)");
      return ok ? 0 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_solver: %s\n", e.what());
    return 1;
  }
}
