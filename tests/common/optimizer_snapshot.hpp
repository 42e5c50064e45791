#pragma once
/// \file
/// What an optimizer holds at the end of a run, as plain values that compare bit for bit: x, the step state,
/// the pull's buffers, the counters and, for the asynchronous pulls, their exchange or round count, leader
/// and score. The reference side of the checkpoint tests (read through the accessors, not the file).

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tether_test {

struct optimizer_snapshot {
  std::vector<float> x, state, targets;
  std::uint64_t steps = 0, rounds = 0, pull_count = 0;
  int leader = -2;
  double score = 0.0;
  bool operator==(const optimizer_snapshot&) const = default;
};

/// The snapshot of `opt` (a tether::optimizer on host memory) and its parameters `x`.
template <class Opt>
optimizer_snapshot snapshot_of(Opt& opt, const std::vector<float>& x) {
  optimizer_snapshot s;
  s.x = x;
  const std::size_t n = x.size();
  for (std::size_t k = 0; k < Opt::step_type::state_size; ++k)
    s.state.insert(s.state.end(), opt.state(k).data(), opt.state(k).data() + n);
  for (std::size_t k = 0; k < Opt::pull_type::buffers; ++k)
    s.targets.insert(s.targets.end(), opt.target(k).data(), opt.target(k).data() + n);
  s.steps = opt.stats().steps;
  s.rounds = opt.stats().rounds;
  if constexpr (requires { opt.pull_policy().exchanges(); }) {
    s.pull_count = opt.pull_policy().exchanges();
  } else if constexpr (requires { opt.pull_policy().rounds_completed(); }) {
    s.pull_count = opt.pull_policy().rounds_completed();
    s.leader = opt.pull_policy().leader();
    s.score = opt.pull_policy().score();
  }
  return s;
}

}  // namespace tether_test
