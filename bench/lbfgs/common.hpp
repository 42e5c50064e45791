#pragma once
// Shared by the Sandblaster L-BFGS benchmark programs: wall-clock timing, medians, the CPU's name, a run of
// lbfgs::minimize on a thread team, and a strict command-line reader.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tether/comm/shared_memory.hpp"
#include "tether/lbfgs/minimize.hpp"

namespace lbfgs_bench {

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
}

/// CPU seconds (user + system) used by this process so far, all its threads.
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// "model name" of /proc/cpuinfo, and the number of CPUs.
inline std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::string name = "unknown CPU";
  int cpus = 0;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0 && name == "unknown CPU") name = line.substr(line.find(':') + 2);
    if (line.rfind("processor", 0) == 0) ++cpus;
  }
  return name + ", " + std::to_string(cpus) + " CPUs";
}

/// One run of lbfgs::minimize on p worker threads: worker 0's result and x, and the wall time of the run.
template <class T>
struct team_run {
  tether::lbfgs::result r;
  std::vector<T> x;
  double seconds = 0.0;
};

template <class O, class T>
team_run<T> run_team(int p, O& objective, const std::vector<T>& x0, const tether::lbfgs::options& o) {
  team_run<T> out;
  tether::team team(p);
  const auto t0 = clock::now();
  team.run([&](tether::team::worker& w) {
    std::vector<T> x = x0;
    auto r = tether::lbfgs::minimize(w, objective, x, o);
    if (w.rank() == 0) {
      out.r = std::move(r);
      out.x = std::move(x);
    }
  });
  out.seconds = seconds_since(t0);
  return out;
}

/// Flags of the form --name value.
class args {
 public:
  args(int argc, char** argv) : v_(argv + 1, argv + argc) {}
  [[nodiscard]] bool has(std::string_view flag) const {
    return std::find(v_.begin(), v_.end(), flag) != v_.end();
  }
  [[nodiscard]] std::string get(std::string_view flag, std::string fallback) const {
    for (std::size_t i = 0; i + 1 < v_.size(); ++i)
      if (v_[i] == flag) return v_[i + 1];
    return fallback;
  }
  [[nodiscard]] double number(std::string_view flag, double fallback) const {
    const std::string s = get(flag, "");
    if (s.empty()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0')
      throw std::invalid_argument(std::string(flag) + ": not a number: " + s);
    return v;
  }
  /// A comma-separated list.
  [[nodiscard]] std::vector<std::string> list(std::string_view flag, std::string fallback) const {
    std::vector<std::string> out;
    std::string s = get(flag, std::move(fallback));
    std::size_t start = 0;
    for (;;) {
      const std::size_t comma = s.find(',', start);
      out.push_back(s.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  }

 private:
  std::vector<std::string> v_;
};

}  // namespace lbfgs_bench
