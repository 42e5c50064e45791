#pragma once
/// \file
/// The election keys of comm::nccl: a (score, id) election as two ncclAllReduce calls with ncclMin over one
/// unsigned 64-bit integer each, so that NCCL, which has no MINLOC, elects exactly what MPI_MINLOC would.
///
///   1. the score key  order(score)                      -> its minimum is the best score's order
///   2. the id key     id if order(score) == best, else max  -> its minimum is the lowest id with that score
///
/// order() maps a double's bits to an unsigned integer that preserves the order of finite values (negative
/// doubles have their bits inverted, non-negative ones their sign bit set; -0 counts as +0, as it compares
/// equal), and maps every non-finite value (NaN, +inf, -inf) to the maximum, above every finite score. So the
/// lowest finite score wins, compared as a double, ties go to the lowest id, and a non-finite score never
/// wins. Pure functions, callable on the host and (compiled by nvcc) on the device.

#include <bit>
#include <cstdint>

#include "tether/core/config.hpp"

namespace tether::comm::detail {

/// The order() of every non-finite score, and the id key of a worker that does not hold the best score:
/// larger than any other key.
inline constexpr std::uint64_t election_nonfinite_order = 0xffffffffffffffffull;

/// An order-preserving map of finite doubles to unsigned integers; non-finite values map to
/// election_nonfinite_order and -0 maps as +0.
TETHER_HOST_DEVICE constexpr std::uint64_t election_order(double score) noexcept {
  constexpr std::uint64_t sign = 0x8000000000000000ull;
  constexpr std::uint64_t exponent = 0x7ff0000000000000ull;
  const auto bits = std::bit_cast<std::uint64_t>(score);
  if ((bits & exponent) == exponent) return election_nonfinite_order;  // exponent all ones: inf, NaN
  if (bits == sign) return sign;                                       // -0 as +0
  return (bits & sign) != 0 ? ~bits : (bits | sign);
}

/// The inverse of election_order on the orders of finite values.
TETHER_HOST_DEVICE constexpr double election_score(std::uint64_t order) noexcept {
  constexpr std::uint64_t sign = 0x8000000000000000ull;
  const std::uint64_t bits = (order & sign) != 0 ? (order & ~sign) : ~order;
  return std::bit_cast<double>(bits);
}

/// The second key of worker `id` (>= 0) whose score has order `mine`, once the minimum order `best` is
/// known: its id when it holds the best finite score, the maximum otherwise.
TETHER_HOST_DEVICE constexpr std::uint64_t election_id_key(std::uint64_t mine, std::uint64_t best,
                                                           int id) noexcept {
  return mine == best && best != election_nonfinite_order ? static_cast<std::uint64_t>(static_cast<std::uint32_t>(id))
                                                          : election_nonfinite_order;
}

/// The winning score and id; `finite` is false when no worker had a finite score.
struct election_decoded {
  double score = 0.0;
  int id = -1;
  bool finite = false;
};

/// The election from the minimum order (step 1) and the minimum id key (step 2) over the workers.
TETHER_HOST_DEVICE constexpr election_decoded election_decode(std::uint64_t best_order,
                                                              std::uint64_t best_id) noexcept {
  if (best_order == election_nonfinite_order) return {};
  return {election_score(best_order), static_cast<int>(static_cast<std::uint32_t>(best_id)), true};
}

}  // namespace tether::comm::detail
