#pragma once
/// \file
/// What a pull policy sees around each step: the communicator, the execution space, the step index, the
/// step's loss and the worker's counters.

#include <array>
#include <cstddef>
#include <cstdint>

#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether {

/// The environment handed to a pull's start/before/after/finish hooks.
template <class Comm, class Exec>
struct step_env {
  using comm_type = Comm;
  using exec_type = Exec;
  Comm& comm;
  const Exec& exec;
  std::uint64_t step = 0;  ///< index of the step being taken, from 0
  double loss = 0.0;       ///< this step's loss; NaN when the step is skipped as non-finite
  worker_stats& stats;
  bool round = false;      ///< the pull sets it when it communicated in this step
};

/// The K target buffers of a pull, as views in the execution space's memory.
template <class T, std::size_t K, class Space = mem::host>
using pull_buffers = std::array<view<T, Space>, K>;

}  // namespace tether
