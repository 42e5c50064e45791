#pragma once
/// \file
/// Helpers of the thread-team tests: deterministic per-rank data and bitwise comparisons.
///
/// Catch2 v2 assertions are not thread-safe, so worker code only records what it saw; every REQUIRE/CHECK
/// runs on the test's own thread after team.run() has returned.

#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

namespace team_test {

/// A value owned by worker `rank` at index `i`, spread over many binades and both signs so that the order in
/// which values of several workers are added shows in the rounded result.
template <class T>
[[nodiscard]] T value_of(int rank, std::size_t i) {
  const int exponent = static_cast<int>((i * 7 + static_cast<std::size_t>(rank) * 13) % 41) - 20;
  const double sign = ((i + static_cast<std::size_t>(rank)) % 3 == 0) ? -1.0 : 1.0;
  return static_cast<T>(sign * std::ldexp(1.0 + 0.1234567 * rank + 1e-3 * static_cast<double>(i), exponent));
}

/// The vector worker `rank` holds: value_of(rank, i) for i < n.
template <class T>
[[nodiscard]] std::vector<T> data_of(int rank, std::size_t n) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = value_of<T>(rank, i);
  return v;
}

/// The reference sum over workers 0..p-1, added one worker after the other in rank order.
template <class T>
[[nodiscard]] std::vector<T> rank_order_sum(int p, std::size_t n) {
  std::vector<T> s = data_of<T>(0, n);
  for (int r = 1; r < p; ++r)
    for (std::size_t i = 0; i < n; ++i) s[i] += value_of<T>(r, i);
  return s;
}

/// The same sum added in reverse rank order (used to show the inputs are order-sensitive).
template <class T>
[[nodiscard]] std::vector<T> reverse_order_sum(int p, std::size_t n) {
  std::vector<T> s = data_of<T>(p - 1, n);
  for (int r = p - 2; r >= 0; --r)
    for (std::size_t i = 0; i < n; ++i) s[i] += value_of<T>(r, i);
  return s;
}

/// True when both vectors have the same length and the same bits.
template <class T>
[[nodiscard]] bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace team_test
