#pragma once
/// \file
/// ps::sync_round: a shard's bulk-synchronous round: every live replica's push is staged in its own slot, and
/// once all are in, the shard applies one update of its step policy on their sum, added in replica order (the
/// same bits on every run, whatever order the pushes arrived in). No locking: the placement serialises calls.

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "tether/core/checkpoint.hpp"
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

  /// The staged pushes as a checkpoint holds them: flags, rates and each staged push (host memory).
  struct saved {
    std::vector<char> staged;
    std::vector<T> lr;
    std::vector<std::vector<T>> slots;  // empty for a replica with nothing staged
  };
  /// Writes the staged flags, rates and pushes (a checkpoint's).
  void save(checkpoint_writer& w) const {
    w.put_array<char>(std::span<const char>(staged_));
    w.put_array<T>(std::span<const T>(lr_));
    for (std::size_t r = 0; r < staged_.size(); ++r)
      if (staged_[r] != 0) w.put_array<T>(std::span<const T>(slots_[r].data(), slots_[r].size()));
  }
  /// Reads what save() wrote for a shard of `count` parameters; changes nothing here.
  [[nodiscard]] saved read(checkpoint_reader& r, std::size_t count) const {
    saved s;
    s.staged.resize(staged_.size());
    s.lr.resize(lr_.size());
    r.get_array<char>(std::span<char>(s.staged), "a round's staged flags");
    r.get_array<T>(std::span<T>(s.lr), "a round's rates");
    s.slots.resize(staged_.size());
    for (std::size_t k = 0; k < staged_.size(); ++k) {
      if (s.staged[k] == 0) continue;
      s.slots[k].resize(count);
      r.get_array<T>(std::span<T>(s.slots[k]), "a round's staged push");
    }
    return s;
  }
  /// Sets the state read by read().
  void restore(shard_type& sh, const saved& s) {
    for (std::size_t k = 0; k < staged_.size(); ++k) {
      staged_[k] = s.staged[k];
      lr_[k] = s.lr[k];
      if (s.staged[k] == 0) continue;
      if (slots_[k].size() != sh.size()) slots_[k] = sh.make_buffer();
      std::copy(s.slots[k].begin(), s.slots[k].end(), slots_[k].data());
    }
  }

 private:
  static std::size_t at(int r) noexcept { return static_cast<std::size_t>(r); }
  std::vector<typename shard_type::buffer_type> slots_;
  std::vector<char> staged_;
  std::vector<T> lr_;
};

}  // namespace tether::ps
