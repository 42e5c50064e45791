#pragma once
/// \file
/// What a benchmark or a zero-cost check of a fused update runs: the step's and pull's options and the
/// contexts they prepare (tether::bench::update_options, prepare_pull). No dependency on Google Benchmark.

#include <cstdint>

#include "tether/core/concepts.hpp"

namespace tether::bench {

/// What an update benchmark runs: the step's options and its prepare(k, lr) arguments, the pull's options,
/// its worker count and, for pulls without prepare(workers), its context.
template <class Step, class Pull>
struct update_options {
  typename Step::options step{};              ///< the step policy's options
  typename Pull::options pull{};              ///< the pull policy's options
  std::uint64_t k = 10;                       ///< the applied-step count given to Step::prepare
  double lr = 1e-6;                           ///< the rate given to Step::prepare (small: values stay normal)
  int workers = 4;                            ///< the team size given to Pull::prepare
  typename Pull::template context<float> pull_context{};  ///< used when Pull has no prepare(workers)
};

/// The pull's context for a benchmark: its prepare(workers) when it has one, else the one in the options.
template <class Step, class Pull>
[[nodiscard]] typename Pull::template context<float> prepare_pull(const update_options<Step, Pull>& o) {
  if constexpr (requires(const Pull& p) {
                  { p.template prepare<float>(o.workers) } -> std::same_as<typename Pull::template context<float>>;
                }) {
    Pull p{};
    p.opt = o.pull;
    return p.template prepare<float>(o.workers);
  } else {
    return o.pull_context;
  }
}

}  // namespace tether::bench
