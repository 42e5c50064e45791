#pragma once
/// \file
/// Output helpers of the Fashion-MNIST demo and study: CSV files of epoch records, files renamed into place when
/// complete, gnuplot run without a shell, human-readable sizes.

#include "train.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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

/// A file written under a temporary name and moved to `path` by commit(), so that a run that fails (or a disk
/// that fills up) never leaves a partial file behind nor replaces a good one. For a regular file (or a new one)
/// the temporary file is next to `path` and commit() renames it (atomic within a file system). A `path` that
/// exists and is not a regular file (/dev/null, a pipe) is never replaced: the temporary file is in the system's
/// temporary folder and commit() copies its bytes into `path`, checking every write. The temporary file is
/// removed when the object goes without a commit.
class output_file {
 public:
  explicit output_file(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(path_, ec);
    if (fs::is_directory(st)) throw tether::runtime_error(path_ + ": is a folder, not a file");
    special_ = fs::exists(st) && !fs::is_regular_file(st);
    const std::string pid = std::to_string(static_cast<long>(::getpid()));
    if (special_) {
      temp_ = (fs::temp_directory_path() / ("tether-output-" + pid + "-" + fs::path(path_).filename().string()))
                  .string();
    } else {
      make_parent_dirs(path_);
      temp_ = path_ + ".tmp-" + pid;
    }
  }
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;
  ~output_file() {
    std::error_code ec;
    if (!committed_) std::filesystem::remove(temp_, ec);
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  /// Where to write until commit().
  [[nodiscard]] const std::string& temp_path() const noexcept { return temp_; }

  /// Moves the temporary file's contents to `path`. Throws tether::runtime_error naming the path.
  void commit() {
    std::error_code ec;
    if (!std::filesystem::exists(temp_, ec)) throw tether::runtime_error(path_ + ": nothing was written");
    if (!special_) {
      std::filesystem::rename(temp_, path_, ec);
      if (ec) throw tether::runtime_error(path_ + ": cannot move " + temp_ + " into place: " + ec.message());
    } else {
      std::ifstream in(temp_, std::ios::binary);
      std::ofstream out(path_, std::ios::binary);
      out << in.rdbuf();
      out.flush();
      if (!in || !out) throw tether::runtime_error(path_ + ": write failed");
      std::filesystem::remove(temp_, ec);
    }
    committed_ = true;
  }

 private:
  std::string path_;
  std::string temp_;
  bool special_ = false;  // path exists and is not a regular file: copy into it, never replace it
  bool committed_ = false;
};

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

/// gnuplot lines that pick the pngcairo terminal when gnuplot has it, else the libgd png terminal.
inline std::string gnuplot_png_terminal(int width, int height) {
  const std::string size = std::to_string(width) + "," + std::to_string(height);
  return "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo enhanced size " + size +
         " font 'Sans,10' } else { set terminal png size " + size + " }\n";
}

/// Runs `gnuplot -c <script> <args...>`: the script reads the arguments as the strings ARG1, ARG2, ..., so
/// file names and titles never become gnuplot code (a quote or a newline in a path is just a character). No
/// shell is involved. Returns an empty string on success, else what went wrong (gnuplot missing or failing).
inline std::string run_gnuplot(const std::string& script, const std::vector<std::string>& args) {
  const std::string gnuplot = find_in_path("gnuplot");
  if (gnuplot.empty()) return "gnuplot not found in PATH (Debian: apt-get install gnuplot-nox)";
  std::string file = (std::filesystem::temp_directory_path() / "tether-plot-XXXXXX").string();
  const int fd = ::mkstemp(file.data());
  if (fd < 0) return "cannot create a temporary gnuplot script";
  const bool written = ::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
  ::close(fd);
  std::string err;
  if (!written) {
    err = "cannot write the temporary gnuplot script";
  } else {
    std::vector<char*> argv{const_cast<char*>(gnuplot.c_str()), const_cast<char*>("-c"), file.data()};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, gnuplot.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      err = "cannot start gnuplot";
    } else {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        err = "gnuplot failed (status " + std::to_string(status) + ")";
    }
  }
  ::unlink(file.c_str());
  return err;
}

}  // namespace fmnist
