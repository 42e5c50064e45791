// The step x pull grid of the execution-space benchmarks (exec_cpu.cpp, exec_gpu.cu): the optimizer's own
// fused_update functors with per-step contexts, and the bytes each moves per element
// (../shared/PERFORMANCE.md, docs/benchmarks.md).
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "tether/tether.hpp"

namespace exec_bench {

/// One step x pull kernel of the grid.
template <class Step, class Pull>
struct kernel_case {
  using step = Step;
  using pull = Pull;
  using functor = tether::fused_update<Step, Pull, float, true, (Pull::buffers > 0)>;
  /// Bytes per element: x read and written, g read, each state buffer read and written, each target read.
  static constexpr double bytes = 4.0 * (3 + 2 * Step::state_size + Pull::buffers);
  static constexpr std::size_t buffers = 2 + Step::state_size + Pull::buffers;

  /// The kernel over buffers p[0] = x, p[1] = g, then state, then targets. Small rates keep every value
  /// normal (no denormal slow paths) however many times the kernel runs.
  static functor make(const std::array<float*, 6>& p) {
    functor f{};
    f.x = p[0];
    f.g = p[1];
    for (std::size_t k = 0; k != Step::state_size; ++k) f.s[k] = p[2 + k];
    for (std::size_t k = 0; k != Pull::buffers; ++k) f.b[k] = p[2 + Step::state_size + k];
    f.sc = Step{}.template prepare<float>(10, 1e-6f);
    if constexpr (Pull::buffers > 0) {
      f.pc.a_global = 1e-3f;
      if constexpr (Pull::buffers > 1) f.pc.a_local = 1e-3f;
    }
    return f;
  }
};

using sgd = kernel_case<tether::step::sgd, tether::pull::none>;
using sgd_leader = kernel_case<tether::step::sgd, tether::pull::leader>;
using sgd_group_leader = kernel_case<tether::step::sgd, tether::pull::group_leader>;
using momentum = kernel_case<tether::step::momentum, tether::pull::none>;
using momentum_leader = kernel_case<tether::step::momentum, tether::pull::leader>;
using adam = kernel_case<tether::step::adam, tether::pull::none>;
using adam_leader = kernel_case<tether::step::adam, tether::pull::leader>;

}  // namespace exec_bench
