// libFuzzer target: Sandblaster L-BFGS resumed from arbitrary checkpoint files (lbfgs/checkpoint.hpp, options
// checkpoint.resume_from). The promise (docs/algorithms/sandblaster_lbfgs.md#checkpoints): a file is either
// resumed or refused with tether::error, and a refused file leaves x exactly as it was. Any other exception,
// crash, hang (libFuzzer's -timeout) or sanitizer report is a failure. One worker on the thread team holds the
// coordinator and both shards, on Rosenbrock in 6 dimensions, at most 3 more iterations. With the argument
// `--make-corpus DIR`, writes valid checkpoints of iterations 1, 2, 4 and 7 into DIR as the seed corpus.

#include <tether/comm/shared_memory.hpp>
#include <tether/lbfgs/minimize.hpp>
#include <tether/problems/rosenbrock.hpp>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "file_input.hpp"

namespace {

constexpr std::size_t n = 6;

tether::lbfgs::options base_options() {
  tether::lbfgs::options o;
  o.history = 3;
  o.shards = 2;
  o.epsilon = 1e-30;
  o.timeout = 10.0;
  return o;
}

/// minimize on one worker of a team from x; the worker's error, if any ("" when it ran).
std::string minimize_once(std::vector<double>& x, const tether::lbfgs::options& o, bool& refused) {
  static tether::problems::rosenbrock<double> problem(n);
  std::string what;
  refused = false;
  tether::team team(1);
  team.run([&](tether::team::worker& w) {
    try {
      std::vector<double> g(n, 0.0);
      (void)tether::lbfgs::minimize(tether::exec::serial{}, w, problem, x, g, o);
    } catch (const tether::error& e) {
      refused = true;
      what = e.what();
    }
  });
  return what;
}

void make_corpus(const std::string& dir) {
  for (std::size_t k : {1, 2, 4, 7}) {
    auto o = base_options();
    o.max_iterations = k;
    o.checkpoint = {.path = dir + "/it" + std::to_string(k), .every = k};
    std::vector<double> x(n, -1.0);
    bool refused = false;
    const std::string what = minimize_once(x, o, refused);
    if (refused) {
      std::fprintf(stderr, "lbfgs_checkpoint_load: making the corpus failed: %s\n", what.c_str());
      std::exit(1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  fuzz::make_corpus_if_asked(*argc, *argv, make_corpus);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string stem = std::string("/tmp/tether_fuzz_lbfgs_") + std::to_string(::getpid());
  const std::string path = tether::lbfgs::checkpoint_file(stem, 0);
  fuzz::write_input(path, data, size);

  auto o = base_options();
  o.max_iterations = 10;  // at most 3 more iterations than the corpus's last checkpoint
  o.checkpoint.resume_from = stem;
  std::vector<double> x(n, 0.5);
  const std::vector<double> before = x;
  bool refused = false;
  (void)minimize_once(x, o, refused);  // anything but tether::error escapes the worker, and run() rethrows it
  if (refused && std::memcmp(x.data(), before.data(), n * sizeof(double)) != 0) {
    std::fprintf(stderr, "lbfgs_checkpoint_load: a refused checkpoint changed x\n");
    std::abort();
  }
  return 0;
}
