#pragma once
/// \file
/// ps::consistency: how far the replicas of a parameter server may drift apart (asynchronous Downpour, bounded
/// staleness, bulk-synchronous), and the rule every shard applies before it takes a push.
/// See docs/algorithms/downpour.md#consistency.

#include <cstdint>

#include "tether/core/error.hpp"

namespace tether::ps {

/// The consistency modes of a parameter server.
enum class consistency_mode : std::uint8_t {
  asynchronous,      ///< Downpour: a push is applied when it arrives; nobody waits for anybody
  bounded,           ///< bounded staleness: a replica may run at most `staleness` pushes ahead of the slowest
  bulk_synchronous,  ///< rounds: a shard applies one step on the sum of every live replica's push of a round
};

/// How far replicas may drift apart, as a policy value: `{.consistency = tether::ps::consistency::bounded(2)}`.
///
/// A shard counts the pushes it applied from each replica (the replica's *clock* on that shard). Bounded
/// staleness s: a replica whose clock is c may have its next push applied only when every live replica's
/// clock is at least c - s, i.e. it is at most s pushes ahead of the slowest live replica (s = 0: lock-step
/// pushes, each applied on its own). Bulk-synchronous: the pushes of round c + 1 are held until every live
/// replica made its own, then the shard applies one step of its policy on their sum (added in replica order)
/// and every replica's fetch waits for the round it pushed. A replica that finished or was declared lost is
/// no longer live: it never holds the others back.
struct consistency {
  /// The fields' names, in order (the error of a cross-rank mismatch names them: core/options_description.hpp).
  static constexpr const char* field_names[] = {"mode", "staleness"};
  consistency_mode mode = consistency_mode::asynchronous;
  std::uint32_t staleness = 0;  ///< bounded: s, the most pushes a replica may run ahead of the slowest live one

  /// Downpour's default: every push is applied when it arrives.
  [[nodiscard]] static constexpr consistency asynchronous() noexcept { return {}; }
  /// At most `s` pushes ahead of the slowest live replica.
  [[nodiscard]] static constexpr consistency bounded(std::uint32_t s) noexcept {
    return {consistency_mode::bounded, s};
  }
  /// One step per round on the sum of every live replica's push.
  [[nodiscard]] static constexpr consistency bulk_synchronous() noexcept {
    return {consistency_mode::bulk_synchronous, 0};
  }

  /// tether::error on a mode that does not exist or a staleness given without the bounded mode.
  void validate() const {
    detail::require(mode == consistency_mode::asynchronous || mode == consistency_mode::bounded ||
                        mode == consistency_mode::bulk_synchronous,
                    "ps::consistency: mode must be asynchronous, bounded or bulk_synchronous, got mode = ",
                    static_cast<int>(mode));
    detail::require(mode == consistency_mode::bounded || staleness == 0,
                    "ps::consistency: staleness is the bound of the bounded mode; with another mode it must be 0, "
                    "got staleness = ",
                    staleness);
  }

  /// True when a push of a replica whose clock is `clock` may be applied (bounded) or staged
  /// (bulk-synchronous) now, the slowest live replica's clock being `slowest`.
  [[nodiscard]] constexpr bool may_push(std::uint64_t clock, std::uint64_t slowest) const noexcept {
    switch (mode) {
      case consistency_mode::asynchronous: return true;
      case consistency_mode::bounded: return clock <= slowest + staleness;
      case consistency_mode::bulk_synchronous: return clock <= slowest;
    }
    return true;
  }
};

}  // namespace tether::ps
