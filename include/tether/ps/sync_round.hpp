#pragma once
/// \file
/// ps::sync_round: a shard's bulk-synchronous round: every live replica's push is staged in its own slot, and
/// once all are in, the shard applies one update of its step policy on their sum, added in replica order (the
/// same bits on every run, whatever order the pushes arrived in). No locking: the placement serialises calls.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tether/core/kernels.hpp"
#include "tether/ps/membership.hpp"
#include "tether/ps/shard.hpp"
#include "tether/ps/shard_clocks.hpp"

namespace tether::ps {

/// One shard's pending round. See the file comment. Slots are allocated on first use (bulk-synchronous mode
/// only): one slice per replica, in Exec's memory.
template <class Step, class Exec, class T>
class sync_round {
 public:
  using shard_type = shard<Step, Exec, T>;

  explicit sync_round(int replicas)
      : slots_(static_cast<std::size_t>(replicas)), staged_(static_cast<std::size_t>(replicas), 0),
        lr_(static_cast<std::size_t>(replicas), T(0)) {}

  /// True when replica r's push of the pending round is staged.
  [[nodiscard]] bool staged(int r) const noexcept { return staged_[at(r)] != 0; }

  /// Stages replica r's push `g[0, s.size())` (copied) at rate `lr`.
  void stage(shard_type& s, int r, const T* g, T lr) {
    auto& slot = slots_[at(r)];
    if (slot.size() != s.size()) slot = s.make_buffer();
    if (s.size() > 0) s.exec().parallel_for(s.size(), kernels::copy<T>{g, slot.data()});
    staged_[at(r)] = 1;
    lr_[at(r)] = lr;
  }

  /// True when at least one push is staged and every live replica has staged its own.
  [[nodiscard]] bool complete(const membership& m) const noexcept {
    bool any = false;
    for (int r = 0; r < m.size(); ++r) {
      if (staged(r)) any = true;
      else if (m.live(r)) return false;
    }
    return any;
  }

  /// Applies the round: the staged pushes summed in replica order, one update at the rate of the lowest
  /// staged replica; each staged replica's push counts as applied in `clocks`. The slots are then free.
  void apply(shard_type& s, shard_clocks& clocks) {
    int first = -1;
    std::vector<const T*> rest;
    for (int r = 0; r < static_cast<int>(staged_.size()); ++r) {
      if (!staged(r)) continue;
      if (first < 0) first = r;
      else rest.push_back(slots_[at(r)].data());
    }
    if (first < 0) return;
    T* sum = slots_[at(first)].data();
    s.add_in_order(sum, rest);
    s.apply(sum, lr_[at(first)]);
    for (int r = 0; r < static_cast<int>(staged_.size()); ++r) {
      if (!staged(r)) continue;
      clocks.applied(r);
      staged_[at(r)] = 0;
    }
  }

 private:
  static std::size_t at(int r) noexcept { return static_cast<std::size_t>(r); }
  std::vector<typename shard_type::buffer_type> slots_;
  std::vector<char> staged_;
  std::vector<T> lr_;
};

}  // namespace tether::ps
