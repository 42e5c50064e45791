#pragma once
/// \file
/// Helpers of the algorithm tests: bitwise and ulp comparisons, and the per-step gradients of the reference
/// simulations.
///
/// Catch2 v2 assertions are not thread-safe, so worker code only records what it saw (into slots indexed by
/// rank); every REQUIRE/CHECK runs on the test's own thread after team.run() has returned.
///
/// The reference simulations are plain scalar loops over the p workers written from the algorithms' equations
/// (shared/ALGORITHMS.md), never calls into tether's optimizer or pulls.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

namespace algo_test {

/// True when both sequences have the same length and the same bits.
template <class T>
[[nodiscard]] bool bit_equal(std::span<const T> a, std::span<const T> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
template <class T>
[[nodiscard]] bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return bit_equal(std::span<const T>(a), std::span<const T>(b));
}

/// Largest |a_i - b_i| measured in units of epsilon * max(|a_i|, |b_i|, scale): "ulps of the magnitude
/// involved", where `scale` is the problem's typical magnitude so that values near 0 are compared in
/// absolute terms (an ulp of a value that happens to pass close to 0 is meaninglessly small).
template <class T>
[[nodiscard]] double max_ulps(std::span<const T> a, std::span<const T> b, double scale = 1.0) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a[i];
    const double y = b[i];
    if (!std::isfinite(x) || !std::isfinite(y)) return std::numeric_limits<double>::infinity();
    const double unit = std::numeric_limits<T>::epsilon() * std::max({std::abs(x), std::abs(y), scale});
    worst = std::max(worst, std::abs(x - y) / unit);
  }
  return worst;
}
template <class T>
[[nodiscard]] double max_ulps(const std::vector<T>& a, const std::vector<T>& b, double scale = 1.0) {
  return max_ulps(std::span<const T>(a), std::span<const T>(b), scale);
}

/// Largest |a_i - b_i|.
template <class T>
[[nodiscard]] double max_abs_diff(std::span<const T> a, std::span<const T> b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
  return worst;
}

/// Index of the lowest finite score, ties to the lowest index, -1 when none is finite: the election rule
/// written out for the reference simulations.
[[nodiscard]] inline int argmin_finite(std::span<const float> scores) {
  int best = -1;
  for (std::size_t r = 0; r < scores.size(); ++r) {
    if (!std::isfinite(scores[r])) continue;
    if (best < 0 || scores[r] < scores[static_cast<std::size_t>(best)]) best = static_cast<int>(r);
  }
  return best;
}

/// Mean of the last `k` values of `history` (all of them while fewer than k), summed oldest first.
[[nodiscard]] inline double mean_of_last(const std::vector<double>& history, std::size_t k) {
  const std::size_t m = std::min(k, history.size());
  double s = 0.0;
  for (std::size_t i = history.size() - m; i < history.size(); ++i) s += history[i];
  return s / static_cast<double>(m);
}

}  // namespace algo_test
