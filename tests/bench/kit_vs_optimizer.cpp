// For the test bench_kit_instructions: the kit's kernel and the optimizer's step, each in its own counted
// function, so that callgrind can compare the instructions they run (tests/bench/callgrind_compare.cmake).
//
//     kit_vs_optimizer <kit|optimizer> [N] [K]
//
// "kit" runs K times the kernel tether::bench::register_update measures (make_update + the space's
// parallel_for); "optimizer" runs K steps of a one-worker optimizer with the same step and a pull whose
// force acts at every step (check_gradient off). Adam + that pull: 32 bytes and about 10 floating-point
// operations per element, so the optimizer's host work per step is a small fraction of a kernel of N = 2^16.

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <tether/bench/register.hpp>
#include <tether/exec/serial.hpp>

#include "support.hpp"

namespace {

using namespace tether;
using step_t = step::adam;
using pull_t = bench_test::toward_target;

__attribute__((noinline)) void kit_entry(bench::space<exec::serial>& sp, std::size_t n, int reps) {
  const auto k = bench::make_update(sp, bench::update_options<step_t, pull_t>{});
  for (int r = 0; r < reps; ++r) sp.exec().parallel_for(n, k);
}

__attribute__((noinline)) void optimizer_entry(optimizer<step_t, pull_t, bench_test::solo>& opt,
                                               std::vector<float>& x, const std::vector<float>& g, int reps) {
  for (int r = 0; r < reps; ++r) opt.step(x, g, 1.0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  const std::size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 65536;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 10;
  if (mode == "kit") {
    bench::space<exec::serial> sp("serial", exec::serial{}, {.sizes = {n}});
    (void)sp.buffer(0);  // allocate outside the counted function
    kit_entry(sp, n, reps);
    std::printf("%f\n", static_cast<double>(sp.buffer(0)[n / 2]));
  } else if (mode == "optimizer") {
    bench_test::solo comm;
    optimizer<step_t, pull_t, bench_test::solo> opt(comm, n, {.lr = 1e-6, .check_gradient = false});
    std::vector<float> x(n, 1.0f), g(n, 0.75f);
    opt.step(x, g, 1.0);  // the first step starts the pull: not counted
    optimizer_entry(opt, x, g, reps);
    std::printf("%f\n", static_cast<double>(x[n / 2]));
  } else {
    return 2;
  }
  return 0;
}
