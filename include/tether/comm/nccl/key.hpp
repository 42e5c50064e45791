#pragma once
/// \file
/// The 8-byte election key of comm::nccl: a (score, id) pair packed into one unsigned 64-bit integer whose
/// order is the election's order, so that one ncclAllReduce with ncclMin over ncclUint64 elects the leader.
///
///   key = order(score) << 32 | id
///
/// order() maps a float's bits to an unsigned integer that preserves the order of finite values (negative
/// floats have their bits inverted, non-negative ones their sign bit set; -0 counts as +0, as it compares
/// equal), and maps every non-finite value (NaN, +inf, -inf) to the maximum 0xffffffff, above every finite
/// score. So the minimum key has the lowest finite score, ties go to the lowest id, and a non-finite score
/// never wins. Pure functions, callable on the host and (compiled by nvcc) on the device.

#include <bit>
#include <cstdint>

#include "tether/core/config.hpp"

namespace tether::comm::detail {

/// The order() of every non-finite score: larger than that of any finite score.
inline constexpr std::uint32_t election_nonfinite_order = 0xffffffffu;

/// An order-preserving map of finite floats to unsigned integers; non-finite values map to
/// election_nonfinite_order and -0 maps as +0.
TETHER_HOST_DEVICE constexpr std::uint32_t election_order(float score) noexcept {
  const auto bits = std::bit_cast<std::uint32_t>(score);
  if ((bits & 0x7f800000u) == 0x7f800000u) return election_nonfinite_order;  // exponent all ones: inf, NaN
  if (bits == 0x80000000u) return 0x80000000u;                               // -0 as +0
  return (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
}

/// The inverse of election_order on the orders of finite values.
TETHER_HOST_DEVICE constexpr float election_score(std::uint32_t order) noexcept {
  const std::uint32_t bits = (order & 0x80000000u) != 0 ? (order & 0x7fffffffu) : ~order;
  return std::bit_cast<float>(bits);
}

/// The key of worker `id` (>= 0) with `score`: smaller keys win an election.
TETHER_HOST_DEVICE constexpr std::uint64_t election_key(float score, int id) noexcept {
  return (static_cast<std::uint64_t>(election_order(score)) << 32) | static_cast<std::uint32_t>(id);
}

/// The winning score and id of a reduced key; `finite` is false when no worker had a finite score.
struct election_decoded {
  float score = 0.0f;
  int id = -1;
  bool finite = false;
};

/// Unpacks a key made by election_key (the minimum over the workers, typically).
TETHER_HOST_DEVICE constexpr election_decoded election_decode(std::uint64_t key) noexcept {
  const auto order = static_cast<std::uint32_t>(key >> 32);
  if (order == election_nonfinite_order) return {};
  return {election_score(order), static_cast<int>(static_cast<std::uint32_t>(key & 0xffffffffu)), true};
}

}  // namespace tether::comm::detail
