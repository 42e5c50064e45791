#pragma once
/// \file
/// Shared by the MPI examples: the command line, the data (a logistic regression split into a training and a
/// held-out part), each rank's shard, the training loop and the held-out accuracy.

#include <mpi.h>

#include <tether/core/fnv1a.hpp>
#include <tether/tether.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mpi_example {

constexpr std::size_t train_samples = 8192;
constexpr std::size_t test_samples = 2048;
constexpr std::size_t batch_size = 32;

using problem = tether::problems::logistic<float>;

/// The data: 32 features (33 parameters with the bias); the last test_samples are held out.
inline problem make_data() {
  return problem({.samples = train_samples + test_samples, .features = 32, .l2 = 1e-4, .seed = 7});
}

/// Fraction of the held-out samples that `w` classifies correctly.
inline double test_accuracy(const problem& data, std::span<const float> w) {
  const std::size_t d = data.dimension() - 1;
  std::size_t correct = 0;
  for (std::size_t s = train_samples; s < data.samples(); ++s) {
    const auto f = data.features_of(s);
    double z = w[d];
    for (std::size_t j = 0; j < d; ++j) z += double(w[j]) * double(f[j]);
    correct += (z >= 0.0) == (data.label(s) > 0.0f);
  }
  return double(correct) / double(test_samples);
}

/// Trains one worker for `steps` steps on its shard of the training samples (worker `rank` of `workers`).
template <class Optimizer>
void train(const problem& data, Optimizer& opt, std::vector<float>& x, int rank, int workers, std::uint64_t steps,
           std::uint64_t seed) {
  const std::size_t first = train_samples * static_cast<std::size_t>(rank) / static_cast<std::size_t>(workers);
  const std::size_t last = train_samples * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(workers);
  std::vector<float> g(x.size());
  std::vector<std::size_t> batch(batch_size);
  tether::rng rng(tether::derive_seed(seed, static_cast<std::uint64_t>(rank), 2));
  for (std::uint64_t t = 0; t < steps; ++t) {
    for (auto& s : batch) s = first + rng.below(last - first);
    const double loss = data.evaluate(x, g, {.samples = batch});
    opt.step(x, g, loss);
  }
  opt.finish(x);
}

/// Each worker's own random starting point near 0.
inline std::vector<float> start_point(std::size_t n, int rank, std::uint64_t seed) {
  std::vector<float> x(n);
  tether::rng init(tether::derive_seed(seed, static_cast<std::uint64_t>(rank), 1));
  for (auto& v : x) v = static_cast<float>(0.1 * init.normal());
  return x;
}

struct settings {
  std::uint64_t steps = 2000;
  std::uint32_t period = 16;
  double lr = 0.5;
  std::uint64_t seed = 1;
  int threads = 2;        // hierarchical only
  int group_size = 0;     // hierarchical only: ranks per group, 0 = per node
  double timeout = 60.0;  // seconds before a collective that cannot complete fails
  bool async = false;
  bool check = false;
};

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

/// Takes each option in `names` and its value out of argv, calling `take(name, value)` (which may throw
/// usage_error); the other arguments stay, in order, for parse_args.
template <class F>
void take_options(int& argc, char** argv, std::initializer_list<std::string_view> names, F&& take) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (std::find(names.begin(), names.end(), a) != names.end()) {
      if (i + 1 >= argc) throw usage_error{std::string(a) + " needs a value"};
      take(a, std::string_view(argv[++i]));
      continue;
    }
    argv[out++] = argv[i];
  }
  argc = out;
}

/// Parses the options every MPI example shares; returns false after printing `usage` for --help.
inline bool parse_args(int argc, char** argv, settings& s, const char* usage, bool print) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      if (print) std::fputs(usage, stdout);
      return false;
    }
    if (a == "--check" || a == "--async") {
      (a == "--check" ? s.check : s.async) = true;
      continue;
    }
    if (a == "--steps" || a == "--period" || a == "--lr" || a == "--seed" || a == "--threads" ||
        a == "--group-size" || a == "--timeout") {
      if (i + 1 >= argc) throw usage_error{std::string(a) + " needs a value"};
      const std::string_view v = argv[++i];
      if (a == "--steps") s.steps = parse<std::uint64_t>(a, v);
      if (a == "--period") s.period = parse<std::uint32_t>(a, v);
      if (a == "--lr") s.lr = parse<double>(a, v);
      if (a == "--seed") s.seed = parse<std::uint64_t>(a, v);
      if (a == "--threads") s.threads = parse<int>(a, v);
      if (a == "--group-size") s.group_size = parse<int>(a, v);
      if (a == "--timeout") s.timeout = parse<double>(a, v);
      continue;
    }
    throw usage_error{"unknown option '" + std::string(a) + "'"};
  }
  if (s.steps < 1) throw usage_error{"--steps must be >= 1"};
  if (s.period < 1) throw usage_error{"--period must be >= 1"};
  if (!std::isfinite(s.lr) || s.lr <= 0.0) throw usage_error{"--lr must be a finite number > 0"};
  if (s.threads < 1 || s.threads > 256) throw usage_error{"--threads must be in [1, 256]"};
  if (s.group_size < 0) throw usage_error{"--group-size must be >= 0"};
  return true;
}

/// Parses this rank's command line and agrees on the outcome with every other rank (one MPI_Allreduce), so
/// that a command line refused on any rank ends every rank with the same status instead of leaving the others
/// waiting in their first collective. Returns -1 to go on, else the exit status: 0 after --help (printed by
/// rank 0), 2 after a usage error (each rank whose command line was refused prints why, with its rank).
inline int parse_agreed(int argc, char** argv, settings& s, const char* usage, const char* program) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int mine = -1;  // -1 go on, 0 help, 2 usage error
  try {
    if (!parse_args(argc, argv, s, usage, rank == 0)) mine = 0;
  } catch (const usage_error& e) {
    std::fprintf(stderr, "%s: rank %d: %s (see --help)\n", program, rank, e.message.c_str());
    mine = 2;
  }
  int worst = mine;
  MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (worst == 2 && mine != 2 && rank == 0)
    std::fprintf(stderr, "%s: another rank's command line was refused (see its message)\n", program);
  return worst;
}

/// Builds an `Optimizer` on `comm` (collective: every rank checks that the others have the same n and
/// options), trains this rank's worker (cfg.steps steps, then finish(x)) and returns its stats.
template <class Optimizer, class Comm>
tether::worker_stats run(Comm& comm, const problem& data, const settings& cfg,
                         const typename Optimizer::options& o, std::vector<float>& x) {
  Optimizer opt(comm, x.size(), o);
  train(data, opt, x, comm.rank(), comm.size(), cfg.steps, cfg.seed);
  return opt.stats();
}

/// FNV-1a over the bits of `x`: equal parameters give equal checksums, so runs can be compared exactly.
inline std::uint64_t checksum(std::span<const float> x) {
  return tether::detail::fnv1a_words(x, 1469598103934665603ull);
}

/// Every rank's 64-bit value, on rank 0.
inline std::vector<std::uint64_t> gather_u64(std::uint64_t v, MPI_Comm comm = MPI_COMM_WORLD) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::vector<std::uint64_t> all(static_cast<std::size_t>(rank == 0 ? size : 0));
  MPI_Gather(&v, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, 0, comm);
  return all;
}

/// Every rank's value, on rank 0.
inline std::vector<double> gather(double v, MPI_Comm comm = MPI_COMM_WORLD) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::vector<double> all(static_cast<std::size_t>(rank == 0 ? size : 0));
  MPI_Gather(&v, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, 0, comm);
  return all;
}

}  // namespace mpi_example
