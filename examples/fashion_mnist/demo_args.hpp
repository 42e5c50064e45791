#pragma once
/// \file
/// The command line of tether_demo (demo.cpp): its settings with their defaults, the --help text, and the strict
/// parser that turns argv into settings or a cli::usage_error naming the flag and the value. One header so that
/// the demo and its fuzz target (tests/fuzz/demo_args.cpp) run the same parser.

#include "cli.hpp"
#include "idx.hpp"
#include "train.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace fmnist::demo {

/// The demo's defaults: chosen so that LSGD's leader reaches >= 89% test accuracy (docs/fashion_mnist.md).
struct settings {
  fmnist::train_options train{.algo = fmnist::algorithm::lsgd,
                              .workers = 4,
                              .group_size = 2,
                              .epochs = 24,
                              .period = 8,
                              .global_period = 0,
                              .lr = 0.02,
                              .step = fmnist::local_step::momentum,
                              .momentum = 0.9f,
                              .schedule = fmnist::lr_schedule::cosine,
                              .batch = 32,
                              .seed = 1,
                              .progress_every = 0,
                              .leader_strength = 1.0f,
                              .leader_jump = 0.0f,
                              .easgd_beta = 0.9f,
                              .anchor_alpha = 0.2f,
                              .replicate_data = true};
  std::string csv = "out/tether_demo.csv";
  std::string png = "out/tether_demo.png";
  std::string data_dir = fmnist::default_directory();
  std::size_t limit = fmnist::all_samples;
};

/// The --help text, with the defaults of `settings`.
[[nodiscard]] inline std::string usage() {
  const settings d;
  const fmnist::train_options& t = d.train;
  const auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  std::string u = R"(Usage: tether_demo [options]
Trains a 784-256-128-10 MLP on Fashion-MNIST with a team of worker threads and one of tether's distributed
algorithms, printing progress; then writes a CSV log and a PNG plot (gnuplot) of test accuracy per epoch.
With no options: LSGD on 4 workers, which reaches about 89% test accuracy.

  --algorithm NAME    distributed algorithm (default )" +
                  std::string(fmnist::algorithm_name(t.algo)) + "):\n";
  for (const auto& a : fmnist::algorithms) {
    char line[200];
    std::snprintf(line, sizeof line, "                      %-18s %s\n", std::string(a.name).c_str(),
                  std::string(a.summary).c_str());
    u += line;
  }
  u += "  --workers N         worker threads (default " + std::to_string(t.workers) + ")\n";
  u += "  --epochs N          passes over the training data, 60000 images per epoch for the team (default " +
       std::to_string(t.epochs) + ")\n";
  u += "  --period N          tau: local steps between communication rounds (default " + std::to_string(t.period) +
       "; sync-sgd uses 1)\n";
  u += "  --step S            each worker's local step: sgd, momentum, nesterov or adam (default " +
       std::string(fmnist::step_name(t.step)) + "; eamsgd, async-eamsgd: nesterov)\n";
  u += "  --lr X              base learning rate (default " + num(t.lr) + ")\n";
  u += "  --momentum X        momentum of the momentum and nesterov steps, in [0, 1) (default " + num(t.momentum) +
       ")\n";
  u += "  --schedule S        learning-rate schedule: cosine (decay to 0 over the run) or constant (default " +
       std::string(t.schedule == fmnist::lr_schedule::cosine ? "cosine" : "constant") + ")\n";
  u += "  --batch N           minibatch size per worker (default " + std::to_string(t.batch) + ")\n";
  u += "  --data D            shards (each worker trains on its own quarter of the images) or replicated (each\n"
       "                      worker samples all of them in its own order) (default " +
       std::string(t.replicate_data ? "replicated" : "shards") + ")\n";
  u += "  --leader-pull X     lsgd, lsgd-grouped: proximal pull p toward the leader, p/period per step (default " +
       num(t.leader_strength) + ")\n";
  u += "  --leader-jump X     lsgd, lsgd-grouped: extra pull c in [0, 1] at each election (default " +
       num(t.leader_jump) + ")\n";
  u += "  --group-size N      lsgd-grouped: workers per group, dividing --workers (default " +
       std::to_string(t.group_size) + ")\n";
  u += "  --global-period N   lsgd-grouped: steps between global elections, a multiple of --period (default "
       "4 * period)\n";
  u += "  --topology G        swarm: the communication graph: ring, torus, hypercube, complete, random (4-regular)\n"
       "                      or exponential (default ring)\n";
  u += "  --bits N            swarm: bits per value of the models exchanged, 1..8 (stochastic uniform rounding, one\n"
       "                      scale per 256 values), or 32 for fp32 (default 32)\n";
  u += "  --seed N            seed of the initial model, the data order and the shards (default " +
       std::to_string(t.seed) + ")\n";
  u += "  --limit N           train on the first N training images only, for quick runs (default: all 60000)\n";
  u += "  --data-dir DIR      folder with the Fashion-MNIST IDX files (default $TETHER_FASHION_MNIST_DIR or\n"
       "                      /usr/share/datasets/fashion-mnist, from Debian's dataset-fashion-mnist)\n";
  u += "  --csv PATH          CSV log, one row per epoch (default " + d.csv + ")\n";
  u += "  --png PATH          plot of test accuracy against epochs, drawn with gnuplot (default " + d.png + ")\n";
  u += "  --help              this text\n\n";
  u += "Exit status: 0 on success, 2 on a bad option, 1 when training fails (e.g. the data files are missing).\n";
  return u;
}

using cli::bad_value;
using cli::parse_number;
using cli::usage_error;

/// The settings of the command line argv[1..argc-1]; a usage_error naming the flag and the value on any bad
/// argument (an unknown flag, a missing or malformed value, a value out of range, flags that disagree).
[[nodiscard]] inline settings parse_args(int argc, const char* const* argv) {
  settings s;
  fmnist::train_options& t = s.train;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag.size() < 3 || flag.substr(0, 2) != "--") throw usage_error{"unexpected argument '" + std::string(flag) + "'"};
    if (i + 1 >= argc) {
      if (flag == "--algorithm" || flag == "--workers" || flag == "--epochs" || flag == "--period" ||
          flag == "--global-period" || flag == "--group-size" || flag == "--lr" || flag == "--momentum" ||
          flag == "--schedule" || flag == "--batch" || flag == "--seed" || flag == "--limit" ||
          flag == "--data-dir" || flag == "--csv" || flag == "--png" || flag == "--leader-pull" ||
          flag == "--leader-jump" || flag == "--data" || flag == "--step" || flag == "--topology" ||
          flag == "--bits")
        throw usage_error{std::string(flag) + ": needs a value"};
      throw usage_error{"unknown option '" + std::string(flag) + "'"};
    }
    const std::string_view v = argv[++i];
    if (flag == "--algorithm") {
      const auto a = fmnist::parse_algorithm(v);
      if (!a) bad_value(flag, v, "unknown algorithm (one of: " + fmnist::algorithm_names() + ")");
      t.algo = *a;
    } else if (flag == "--workers") {
      const int w = parse_number<int>(flag, v);
      if (w < 1 || w > 256) bad_value(flag, v, "must be in [1, 256]");
      t.workers = w;
    } else if (flag == "--epochs") {
      const auto e = parse_number<std::size_t>(flag, v);
      if (e < 1 || e > 1000) bad_value(flag, v, "must be in [1, 1000]");
      t.epochs = e;
    } else if (flag == "--period") {
      const auto p = parse_number<std::uint32_t>(flag, v);
      if (p < 1) bad_value(flag, v, "must be >= 1");
      t.period = p;
    } else if (flag == "--global-period") {
      const auto p = parse_number<std::uint32_t>(flag, v);
      if (p < 1) bad_value(flag, v, "must be >= 1");
      t.global_period = p;
    } else if (flag == "--group-size") {
      const int g = parse_number<int>(flag, v);
      if (g < 1) bad_value(flag, v, "must be >= 1");
      t.group_size = g;
    } else if (flag == "--lr") {
      const double lr = parse_number<double>(flag, v);
      if (!std::isfinite(lr) || lr <= 0.0 || lr > 100.0) bad_value(flag, v, "must be a number in (0, 100]");
      t.lr = lr;
    } else if (flag == "--momentum") {
      const double m = parse_number<double>(flag, v);
      // Checked as the float the optimizer uses: 0.999999999 rounds to 1.
      if (!std::isfinite(m) || m < 0.0 || !(static_cast<float>(m) < 1.0f)) bad_value(flag, v, "must be in [0, 1) as a float");
      t.momentum = static_cast<float>(m);
    } else if (flag == "--leader-pull") {
      const double x = parse_number<double>(flag, v);
      if (!std::isfinite(static_cast<float>(x)) || x < 0.0) bad_value(flag, v, "must be a float >= 0");
      t.leader_strength = static_cast<float>(x);
    } else if (flag == "--leader-jump") {
      const double x = parse_number<double>(flag, v);
      if (!std::isfinite(x) || x < 0.0 || x > 1.0) bad_value(flag, v, "must be in [0, 1]");
      t.leader_jump = static_cast<float>(x);
    } else if (flag == "--step") {
      const auto st = fmnist::parse_step(v);
      if (!st) bad_value(flag, v, "must be sgd, momentum, nesterov or adam");
      t.step = *st;
    } else if (flag == "--data") {
      if (v == "shards") {
        t.replicate_data = false;
      } else if (v == "replicated") {
        t.replicate_data = true;
      } else {
        bad_value(flag, v, "must be shards or replicated");
      }
    } else if (flag == "--schedule") {
      if (v == "cosine") {
        t.schedule = fmnist::lr_schedule::cosine;
      } else if (v == "constant") {
        t.schedule = fmnist::lr_schedule::constant;
      } else {
        bad_value(flag, v, "must be cosine or constant");
      }
    } else if (flag == "--batch") {
      const auto b = parse_number<std::size_t>(flag, v);
      if (b < 1 || b > 60000) bad_value(flag, v, "must be in [1, 60000]");
      t.batch = b;
    } else if (flag == "--topology") {
      const auto k = tether::comm::topology::parse_kind(v);
      if (!k) bad_value(flag, v, "must be ring, torus, hypercube, complete, random or exponential");
      t.topology = *k;
    } else if (flag == "--bits") {
      const auto b = parse_number<unsigned>(flag, v);
      if (b != 32 && (b < 1 || b > 8)) bad_value(flag, v, "must be in 1..8, or 32 for fp32");
      t.bits = b == 32 ? 0 : b;
    } else if (flag == "--seed") {
      t.seed = parse_number<std::uint64_t>(flag, v);
    } else if (flag == "--limit") {
      const auto l = parse_number<std::size_t>(flag, v);
      if (l < 1) bad_value(flag, v, "must be >= 1");
      s.limit = l;
    } else if (flag == "--data-dir") {
      if (v.empty()) bad_value(flag, v, "must not be empty");
      s.data_dir = v;
    } else if (flag == "--csv") {
      if (v.empty()) bad_value(flag, v, "must not be empty");
      s.csv = v;
    } else if (flag == "--png") {
      if (v.empty()) bad_value(flag, v, "must not be empty");
      s.png = v;
    } else {
      throw usage_error{"unknown option '" + std::string(flag) + "'"};
    }
  }
  // Checks between flags.
  namespace fs = std::filesystem;
  const auto same_file = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    return fs::absolute(a, ec).lexically_normal() == fs::absolute(b, ec).lexically_normal();
  };
  if (same_file(s.csv, s.png)) throw usage_error{"--png: must not be the --csv file, got '" + s.png + "'"};
  for (const auto& [flag, path] : {std::pair<const char*, const std::string&>{"--csv", s.csv}, {"--png", s.png}}) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw usage_error{std::string(flag) + ": is a folder, not a file, got '" + path + "'"};
  }
  if (t.algo == fmnist::algorithm::lsgd_grouped && t.global_period == 0 &&
      std::uint64_t{4} * t.period > std::numeric_limits<std::uint32_t>::max()) {
    throw usage_error{"--period: 4 * --period (the default --global-period) must be below 2^32, got '" +
                      std::to_string(t.period) + "'"};
  }
  if (t.algo == fmnist::algorithm::swarm && t.topology == tether::comm::graph_kind::hypercube &&
      (t.workers & (t.workers - 1)) != 0) {
    throw usage_error{"--topology: hypercube needs --workers a power of two, got '" + std::to_string(t.workers) + "'"};
  }
  if (t.algo == fmnist::algorithm::lsgd_grouped) {
    if (t.workers % t.group_size != 0) {
      throw usage_error{"--group-size: must divide --workers " + std::to_string(t.workers) + ", got '" +
                        std::to_string(t.group_size) + "'"};
    }
    if (t.global_period % t.period != 0) {
      throw usage_error{"--global-period: must be a multiple of --period " + std::to_string(t.period) + ", got '" +
                        std::to_string(t.global_period) + "'"};
    }
  }
  return s;
}

}  // namespace fmnist::demo
