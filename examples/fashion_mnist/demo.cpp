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
#include "demo_args.hpp"
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

using fmnist::demo::parse_args;
using fmnist::demo::settings;
using fmnist::demo::usage;
using fmnist::cli::usage_error;

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
