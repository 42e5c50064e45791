#pragma once
/// \file
/// ps::shard_clocks: what one shard knows about each replica: the pushes of it that the shard applied (its
/// clock on the shard, from its membership base), the version it last read and its own updates since, from
/// which the staleness of its next push follows. No locking: the placement serialises calls on a shard.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "tether/core/checkpoint.hpp"
#include "tether/ps/membership.hpp"

namespace tether::ps {

/// Per-replica counters of one shard. See the file comment.
class shard_clocks {
 public:
  explicit shard_clocks(int replicas)
      : applied_(static_cast<std::size_t>(replicas)), last_read_(static_cast<std::size_t>(replicas)),
        own_since_(static_cast<std::size_t>(replicas)) {}

  /// Replica r's clock on this shard: its membership base plus its pushes applied here.
  [[nodiscard]] std::uint64_t clock(const membership& m, int r) const noexcept { return m.base(r) + applied_[at(r)]; }

  /// The smallest clock of the live replicas (the largest value when none is live).
  [[nodiscard]] std::uint64_t slowest(const membership& m) const noexcept {
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (int r = 0; r < m.size(); ++r)
      if (m.live(r) && clock(m, r) < low) low = clock(m, r);
    return low;
  }

  /// The staleness of a push of replica r applied now, the shard being at `version`: the updates of other
  /// replicas since r last read the shard.
  [[nodiscard]] std::uint64_t staleness(int r, std::uint64_t version) const noexcept {
    const std::uint64_t since = version - last_read_[at(r)];
    return since > own_since_[at(r)] ? since - own_since_[at(r)] : 0;
  }

  /// A push of replica r was applied (on its own, or as part of a round's sum).
  void applied(int r) noexcept {
    ++applied_[at(r)];
    ++own_since_[at(r)];
  }
  /// Replica r read the shard at `version`.
  void read(int r, std::uint64_t version) noexcept {
    last_read_[at(r)] = version;
    own_since_[at(r)] = 0;
  }

  /// Writes the counters (a checkpoint's).
  void save(checkpoint_writer& w) const {
    for (const auto* v : {&applied_, &last_read_, &own_since_}) w.put_array<std::uint64_t>(std::span<const std::uint64_t>(*v));
  }
  /// Reads what save() wrote (as many replicas as here) into `out`; changes nothing here.
  void read(checkpoint_reader& r, shard_clocks& out) const {
    out = *this;
    for (auto* v : {&out.applied_, &out.last_read_, &out.own_since_})
      r.get_array<std::uint64_t>(std::span<std::uint64_t>(*v), "a shard's clocks");
  }

  /// Pushes of replica r applied on this shard.
  [[nodiscard]] std::uint64_t applied_count(int r) const noexcept { return applied_[at(r)]; }

 private:
  static std::size_t at(int r) noexcept { return static_cast<std::size_t>(r); }
  std::vector<std::uint64_t> applied_;
  std::vector<std::uint64_t> last_read_;
  std::vector<std::uint64_t> own_since_;
};

}  // namespace tether::ps
