/// \file
/// tether's flagship demo: 4 worker threads train a 784-256-128-10 MLP on Fashion-MNIST with LSGD (Leader SGD),
/// printing a live progress line, then write a CSV log and a PNG plot of test accuracy against epochs.
///
///     tether_demo [--algorithm lsgd] [--workers 4] [--epochs 24] [--period 8] [--lr 0.02] ...  (see --help)
///
/// Every worker runs momentum SGD on its own stream of minibatches. Every `period` steps the workers elect the one
/// with the lowest recent loss as leader; it broadcasts its parameters, and each step pulls every other worker
/// toward that copy, in the same fused pass as its momentum step. Test accuracy is that of the leader's model,
/// measured on the 10000 test images after every epoch. docs/fashion_mnist.md explains the defaults.

#include "cli.hpp"
#include "idx.hpp"
#include "mlp.hpp"
#include "report.hpp"
#include "train.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace {

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

std::string usage() {
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

using fmnist::cli::bad_value;
using fmnist::cli::parse_number;
using fmnist::cli::usage_error;

settings parse_args(int argc, char** argv) {
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

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0.0) return "?";
  if (s < 60.0) {
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  }
  return buf;
}

/// The title of the demo's plot.
std::string plot_title(const settings& s, const fmnist::train_result& r) {
  char title[256];
  std::snprintf(title, sizeof title, "%s, %d workers, tau = %u, lr %g, momentum %g, batch %zu: final %.2f%%",
                std::string(fmnist::algorithm_name(s.train.algo)).c_str(), s.train.workers,
                s.train.algo == fmnist::algorithm::sync_sgd ? 1U : s.train.period, s.train.lr,
                static_cast<double>(s.train.momentum), s.train.batch, 100.0 * r.final_accuracy());
  return std::string("Fashion-MNIST MLP with tether: ") + title;
}

/// The gnuplot script of the demo's plot: test accuracy (left axis) and mean training loss (right axis). Run
/// as `gnuplot -c script <png> <csv> <title>`: the file names and the title are the strings ARG1..ARG3, never
/// gnuplot code.
std::string plot_script(const settings& s) {
  std::string g = fmnist::gnuplot_png_terminal(900, 540);
  g += "set output ARG1\n";
  g += "set datafile separator ','\n";
  g += "set title ARG3 noenhanced\n";
  g += "set xlabel 'epoch'\nset ylabel 'test accuracy (%)'\nset y2label 'mean training loss'\n";
  g += "set ytics nomirror\nset y2tics\nset grid\nset key bottom right\n";
  g += "set yrange [50:100]\nset y2range [0:*]\nset xrange [0:*]\n";
  if (s.train.epochs <= 30) g += "set xtics 1\n";
  g += "set arrow from graph 0, first 89 to graph 1, first 89 nohead dashtype 2 lc rgb '#888888'\n";
  g += "plot ARG2 using 1:(100*$4) skip 1 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'test accuracy', \\\n"
       "     '' using 1:3 skip 1 axes x1y2 with linespoints lw 1 pt 6 dashtype 3 lc rgb '#d62728' title 'training loss'\n";
  return g;
}

int run(const settings& s) {
  const fmnist::train_options& t = s.train;
  using clock = std::chrono::steady_clock;
  const auto t_load = clock::now();
  if (!fmnist::dataset_present(s.data_dir)) {
    std::fprintf(stderr,
                 "tether_demo: the Fashion-MNIST files are not in %s\n"
                 "  install Debian's package (apt-get install dataset-fashion-mnist), or pass --data-dir DIR\n"
                 "  (or set TETHER_FASHION_MNIST_DIR) naming a folder with train-images-idx3-ubyte.gz,\n"
                 "  train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz\n",
                 s.data_dir.c_str());
    return 1;
  }
  const fmnist::dataset train = fmnist::load_fashion_mnist(s.data_dir, fmnist::split::train, s.limit);
  const fmnist::dataset test =
      fmnist::load_fashion_mnist(s.data_dir, fmnist::split::test, fmnist::all_samples, train.norm);
  const double load_s = fmnist::detail::seconds_since(t_load);
  if (test.count == 0) throw tether::runtime_error(s.data_dir + ": the test set has no images");

  if (train.count / static_cast<std::size_t>(t.workers) < t.batch) {
    std::fprintf(stderr,
                 "tether_demo: --batch: %zu training images over %d workers leave fewer than one batch per worker, "
                 "got '%zu' (lower --batch or --workers, or raise --limit)\n",
                 train.count, t.workers, t.batch);
    return 2;
  }
  const std::size_t steps_per_epoch =
      fmnist::shard::common_batches_per_epoch(train.count, static_cast<std::size_t>(t.workers), t.batch);

  std::printf("tether demo: Fashion-MNIST, MLP 784-256-128-10 (%zu parameters)\n", fmnist::mlp::parameter_count);
  std::printf("  data: %zu training and %zu test images from %s (%.1f s)\n", train.count, test.count,
              s.data_dir.c_str(), load_s);
  std::printf("  %s on %d worker threads: %zu epochs x %zu steps of %zu images per worker, tau = %u,\n",
              std::string(fmnist::algorithm_name(t.algo)).c_str(), t.workers, t.epochs, steps_per_epoch, t.batch,
              t.algo == fmnist::algorithm::sync_sgd ? 1U : t.period);
  const bool nesterov = t.step == fmnist::local_step::nesterov || t.algo == fmnist::algorithm::eamsgd ||
                        t.algo == fmnist::algorithm::async_eamsgd;
  char step_desc[64];
  if (nesterov || t.step == fmnist::local_step::momentum) {
    std::snprintf(step_desc, sizeof step_desc, "%s %g", nesterov ? "Nesterov momentum" : "momentum",
                  static_cast<double>(t.momentum));
  } else {
    std::snprintf(step_desc, sizeof step_desc, "%s", t.step == fmnist::local_step::adam ? "Adam" : "plain SGD");
  }
  std::printf("  lr %g (%s), %s, seed %llu\n", t.lr,
              t.schedule == fmnist::lr_schedule::cosine ? "cosine decay" : "constant", step_desc,
              static_cast<unsigned long long>(t.seed));
  std::fflush(stdout);

  const bool tty = ::isatty(::fileno(stdout)) != 0;
  std::size_t last_width = 0;
  // Without a terminal (CI, a pipe) print plain progress lines at each quarter of an epoch.
  const std::size_t plain_every = std::max<std::size_t>(1, steps_per_epoch / 4);
  std::size_t next_plain = plain_every;

  fmnist::output_file csv_file(s.csv);  // written under a temporary name, renamed when complete
  std::ofstream csv(csv_file.temp_path());
  if (!csv) throw tether::runtime_error(csv_file.temp_path() + ": cannot open for writing");
  csv << fmnist::epoch_csv_header << '\n';

  fmnist::train_callbacks cb;
  cb.on_progress = [&](const fmnist::progress_report& p) {
    const std::uint64_t in_epoch = p.step - (p.epoch - 1) * steps_per_epoch;
    if (!tty) {
      if (in_epoch < next_plain || in_epoch == steps_per_epoch) return;  // the epoch line follows the last step
      while (next_plain <= in_epoch) next_plain += plain_every;
    }
    char line[256];
    const int len = std::snprintf(
        line, sizeof line,
        "epoch %zu/%zu  step %llu/%llu  loss %.4f  test acc %5.2f%%  comm %s/worker  elapsed %s  remaining %s",
        p.epoch, p.epochs, static_cast<unsigned long long>(p.step), static_cast<unsigned long long>(p.steps_total),
        p.loss, 100.0 * p.test_accuracy, fmnist::human_bytes(p.bytes_per_worker).c_str(),
        format_duration(p.elapsed_s).c_str(), format_duration(p.remaining_s).c_str());
    if (tty) {
      const auto w = static_cast<std::size_t>(len);
      std::printf("\r%s%*s", line, static_cast<int>(last_width > w ? last_width - w : 0), "");
      last_width = w;
    } else {
      std::printf("  %s\n", line);
    }
    std::fflush(stdout);
  };
  cb.on_epoch = [&](const fmnist::epoch_record& e) {
    next_plain = plain_every;
    csv << fmnist::epoch_csv_row(e) << '\n';
    csv.flush();
    char line[256];
    if (e.epoch == 0) {
      std::snprintf(line, sizeof line, "epoch %2zu  initial model          test acc %5.2f%%", e.epoch,
                    100.0 * e.test_accuracy);
    } else {
      std::snprintf(line, sizeof line,
                    "epoch %2zu  step %6llu  loss %.4f  test acc %5.2f%%  comm %s/worker  elapsed %s", e.epoch,
                    static_cast<unsigned long long>(e.step), e.train_loss, 100.0 * e.test_accuracy,
                    fmnist::human_bytes(e.bytes_per_worker).c_str(), format_duration(e.elapsed_s).c_str());
    }
    if (tty) {
      const std::size_t w = std::string_view(line).size();
      std::printf("\r%s%*s\n", line, static_cast<int>(last_width > w ? last_width - w : 0), "");
      last_width = 0;
    } else {
      std::printf("%s\n", line);
    }
    std::fflush(stdout);
  };

  const fmnist::train_result r = fmnist::train(train, test, t, cb);
  csv.close();
  if (!csv) throw tether::runtime_error(s.csv + ": write failed");

  const fmnist::epoch_record& last = r.epochs.back();
  const double train_total = last.gradient_s + last.step_s;
  std::printf("\nfinal test accuracy %.2f%% (best %.2f%%) after %zu epochs in %s (%s training, %s evaluating)\n",
              100.0 * r.final_accuracy(), 100.0 * r.best_accuracy(), t.epochs, format_duration(r.wall_s).c_str(),
              format_duration(last.train_s).c_str(), format_duration(r.eval_s).c_str());
  std::printf("communication: %s received per worker in %llu rounds", fmnist::human_bytes(last.bytes_per_worker).c_str(),
              static_cast<unsigned long long>(last.rounds));
  if (t.algo == fmnist::algorithm::lsgd || t.algo == fmnist::algorithm::lsgd_grouped ||
      t.algo == fmnist::algorithm::async_lsgd) {
    std::printf(", %llu leader changes", static_cast<unsigned long long>(last.leader_changes));
  }
  std::printf("\n");
  if (train_total > 0.0) {
    std::printf("time per worker: gradient %.1f%%, optimizer step %.1f%% (fused kernel %.1f%%, communication %.1f%%)\n",
                100.0 * last.gradient_s / train_total, 100.0 * last.step_s / train_total,
                100.0 * last.kernel_s / train_total, 100.0 * last.comm_s / train_total);
  }
  // gnuplot plots the CSV while it is still under its temporary name and writes the plot under one too; then
  // both move into place. A plot that gnuplot could not write, or left empty, is a failure (exit status 1); so
  // is a CSV that cannot be moved into place. Without gnuplot the demo says so and still succeeds: the plot is a
  // convenience, the CSV is the record.
  fmnist::output_file png_file(s.png);
  const std::string err =
      fmnist::run_gnuplot(plot_script(s), {png_file.temp_path(), csv_file.temp_path(), plot_title(s, r)});
  std::error_code ec;
  const bool plotted = err.empty() && std::filesystem::file_size(png_file.temp_path(), ec) > 0 && !ec;
  csv_file.commit();
  std::printf("wrote %s\n", s.csv.c_str());
  if (!plotted) {
    std::printf("no plot: %s; the CSV log is at %s\n", err.empty() ? "gnuplot wrote no plot" : err.c_str(),
                s.csv.c_str());
    return err.rfind("gnuplot not found", 0) == 0 ? 0 : 1;
  }
  png_file.commit();
  std::printf("wrote %s\n", s.png.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage().c_str(), stdout);
      return 0;
    }
  }
  settings s;
  try {
    s = parse_args(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "tether_demo: %s (see --help)\n", e.message.c_str());
    return 2;
  }
  try {
    return run(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\ntether_demo: %s\n", e.what());
    return 1;
  }
}
