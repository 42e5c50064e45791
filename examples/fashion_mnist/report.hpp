#pragma once
/// \file
/// Output helpers of the Fashion-MNIST demo and study: CSV files of epoch records, gnuplot, human-readable sizes.

#include "train.hpp"

#include <cmath>
#include <cstdio>
#include <iterator>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

namespace fmnist {

/// Creates the parent folder of `path` if it has one and it does not exist yet. Throws tether::runtime_error.
inline void make_parent_dirs(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) throw tether::runtime_error(path + ": cannot create folder " + parent.string() + ": " + ec.message());
}

/// Opens `path` for writing (creating its folder). Throws tether::runtime_error naming the path on failure.
inline std::ofstream open_output(const std::string& path) {
  make_parent_dirs(path);
  std::ofstream f(path);
  if (!f) throw tether::runtime_error(path + ": cannot open for writing");
  return f;
}

/// The header of epoch_csv_row().
inline constexpr const char* epoch_csv_header =
    "epoch,step,train_loss,test_accuracy,average_accuracy,bytes_per_worker,elapsed_s,train_s,gradient_s,step_s,"
    "kernel_s,comm_s,rounds";

/// One CSV row of an epoch record, in the columns of epoch_csv_header (train_loss empty for epoch 0).
inline std::string epoch_csv_row(const epoch_record& e) {
  char buf[512];
  char loss[32] = "";
  char avg[32] = "";
  if (std::isfinite(e.train_loss)) std::snprintf(loss, sizeof loss, "%.6f", e.train_loss);
  if (std::isfinite(e.average_accuracy)) std::snprintf(avg, sizeof avg, "%.4f", e.average_accuracy);
  std::snprintf(buf, sizeof buf, "%zu,%llu,%s,%.4f,%s,%.0f,%.3f,%.3f,%.4f,%.4f,%.4f,%.4f,%llu", e.epoch,
                static_cast<unsigned long long>(e.step), loss, e.test_accuracy, avg, e.bytes_per_worker, e.elapsed_s,
                e.train_s, e.gradient_s, e.step_s, e.kernel_s, e.comm_s,
                static_cast<unsigned long long>(e.rounds));
  return buf;
}

/// `bytes` in B, kB, MB or GB (powers of 1000), 3 significant digits.
inline std::string human_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  std::size_t u = 0;
  while (bytes >= 999.5 && u + 1 < std::size(units)) {
    bytes /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.3g %s", bytes, units[u]);
  return buf;
}

/// The full path of the executable `name` found in $PATH, or empty.
inline std::string find_in_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string_view rest = path;
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string_view dir = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (dir.empty()) continue;
    std::error_code ec;
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (std::filesystem::is_regular_file(candidate, ec)) {
      const auto perms = std::filesystem::status(candidate, ec).permissions();
      if ((perms & std::filesystem::perms::others_exec) != std::filesystem::perms::none ||
          (perms & std::filesystem::perms::owner_exec) != std::filesystem::perms::none)
        return candidate.string();
    }
  }
  return {};
}

/// `s` as a single-quoted gnuplot string ('' stands for a quote inside).
inline std::string gnuplot_quote(std::string_view s) {
  std::string q = "'";
  for (const char c : s) {
    q += c;
    if (c == '\'') q += '\'';
  }
  q += '\'';
  return q;
}

/// gnuplot lines that pick the pngcairo terminal when gnuplot has it, else the libgd png terminal.
inline std::string gnuplot_png_terminal(int width, int height) {
  const std::string size = std::to_string(width) + "," + std::to_string(height);
  return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo enhanced size " + size +
         " font 'Sans,10' } else { set terminal png size " + size + " }\n";
}

/// Runs gnuplot on `script`. Returns an empty string on success, else what went wrong (gnuplot missing or failing).
inline std::string run_gnuplot(const std::string& script) {
  const std::string gnuplot = find_in_path("gnuplot");
  if (gnuplot.empty()) return "gnuplot not found in PATH (Debian: apt-get install gnuplot-nox)";
  std::FILE* pipe = ::popen("gnuplot", "w");
  if (pipe == nullptr) return "cannot start gnuplot";
  std::fwrite(script.data(), 1, script.size(), pipe);
  const int status = ::pclose(pipe);
  if (status != 0) return "gnuplot failed (status " + std::to_string(status) + ")";
  return {};
}

}  // namespace fmnist
