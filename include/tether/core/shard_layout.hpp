#pragma once
/// \file
/// tether::shard_layout: which contiguous slice of N parameters each of S shards owns. The one layout of every
/// sharded protocol (Downpour's parameter server, Sandblaster's sharded vectors, the one-sided store).

#include <cstddef>
#include <cstdint>

#include "tether/core/error.hpp"

namespace tether {

/// N elements split into S contiguous shards, balanced: with N = q*S + r, the first r shards own q + 1
/// elements and the others q, so sizes differ by at most one and every element is owned by exactly one
/// shard (begin(s) = s*q + min(s, r)). S > N is allowed: the last S - N shards are then empty. Cheap to
/// copy; every worker computes the same layout.
class shard_layout {
 public:
  shard_layout() = default;

  /// `n` elements in `shards` shards. tether::error when shards is 0.
  shard_layout(std::size_t n, std::size_t shards) : n_(n), s_(shards) {
    detail::require(shards > 0, "shard_layout: shards must be > 0, got shards = ", shards);
    q_ = n / shards;
    r_ = n % shards;
  }

  /// Number of elements N.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Number of shards S.
  [[nodiscard]] std::size_t shards() const noexcept { return s_; }

  /// First element of shard `s` (s in [0, S]; begin(S) = N).
  [[nodiscard]] std::size_t begin(std::size_t s) const noexcept { return s * q_ + (s < r_ ? s : r_); }
  /// One past the last element of shard `s`.
  [[nodiscard]] std::size_t end(std::size_t s) const noexcept { return begin(s + 1); }
  /// Number of elements of shard `s`: floor(N/S) or floor(N/S) + 1.
  [[nodiscard]] std::size_t count(std::size_t s) const noexcept { return end(s) - begin(s); }

  /// The shard that owns element `i` (i < N).
  [[nodiscard]] std::size_t owner(std::size_t i) const noexcept {
    const std::size_t big = r_ * (q_ + 1);  // elements of the first r shards (q + 1 each)
    return i < big ? i / (q_ + 1) : r_ + (i - big) / q_;
  }

  friend bool operator==(const shard_layout&, const shard_layout&) = default;

 private:
  std::size_t n_ = 0;
  std::size_t s_ = 1;
  std::size_t q_ = 0;  // n / s
  std::size_t r_ = 0;  // n % s
};

}  // namespace tether
