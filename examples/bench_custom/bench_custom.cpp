/// \file
/// Benchmarking your own kernel with tether's benchmark kit (tether/bench.hpp): the step and pull of
/// examples/custom_solver (RMSprop, a leader pull with a dead zone) against tether's SGD and leader pull, on
/// exec::serial and exec::openmp, with the bytes each moves derived from the policies and the space's own copy
/// and triad measured in the same run. Google Benchmark prints its usual table; a summary follows:
///
///     kernel                          space     N          bytes/el   GB/s   % of copy  % of triad
///
///     bench_custom [--n 16777216] [Google Benchmark flags, e.g. --benchmark_min_time=0.2]

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <tether/bench.hpp>
#include <tether/exec/openmp.hpp>

#include "../custom_solver/policies.hpp"

namespace {

/// Collects the runs for the summary while the console reporter prints them.
class summary final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "median") rows.push_back(r);
  }
  void print() const {
    std::printf("\n%-28s %-10s %10s %9s %8s %10s %10s\n", "kernel", "space", "N", "bytes/el", "GB/s", "% of copy",
                "% of triad");
    for (const auto& r : rows) {
      // The name is <kernel>/<space>/N:<n>.
      const std::string name = r.benchmark_name();
      const auto a = name.find('/'), b = name.find('/', a + 1);
      const auto get = [&](const char* c) {
        const auto it = r.counters.find(c);
        return it == r.counters.end() ? 0.0 : it->second.value;
      };
      const auto c = name.find('/', b + 1);  // "/real_time" and the like after N:<n>
      std::printf("%-28s %-10s %10s %9.0f %8.1f %10.0f %10.0f\n", name.substr(0, a).c_str(),
                  name.substr(a + 1, b - a - 1).c_str(), name.substr(b + 3, c - (b + 3)).c_str(), get("bytes_per_elem"),
                  get("bytes_per_second") * 1e-9, get("pct_of_copy"), get("pct_of_triad"));
    }
  }
  std::vector<Run> rows;
};

template <class Exec>
void register_grid(const tether::bench::space<Exec>& sp) {
  using namespace tether;
  using bench::register_update;
  bench::register_references(sp);
  register_update<step::sgd, pull::none>(sp, "sgd");
  register_update<step::sgd, pull::leader>(sp, "sgd+leader");
  register_update<my::rmsprop, pull::none>(sp, "rmsprop");
  register_update<step::sgd, my::deadzone_leader>(sp, "sgd+deadzone_leader");
  register_update<my::rmsprop, my::deadzone_leader>(sp, "rmsprop+deadzone_leader");
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = std::size_t{1} << 24;
  // Our own flag first (Google Benchmark rejects flags it does not know).
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      char* end = nullptr;
      n = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || n == 0) {
        std::fprintf(stderr, "bench_custom: --n must be a positive integer, got '%s'\n", argv[i]);
        return 2;
      }
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rc = static_cast<int>(rest.size());
  benchmark::Initialize(&rc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rc, rest.data())) return 2;
  try {
    register_grid(tether::bench::space<tether::exec::serial>("serial", {}, {.sizes = {n}}));
    register_grid(tether::bench::space<tether::exec::openmp>("openmp", {}, {.sizes = {n}, .threaded = true}));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_custom: %s\n", e.what());
    return 2;
  }
  summary rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  tether::bench::release_buffers();
  rep.print();
  return 0;
}
