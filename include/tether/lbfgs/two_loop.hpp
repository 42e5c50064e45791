#pragma once
/// \file
/// The vector-free L-BFGS two-loop recursion (Chen, Wang, Zhou and Gao, "Large-scale L-BFGS using MapReduce",
/// NIPS 2014): the coordinator keeps the (2m+1)^2 dot products among the base vectors
/// b = [s_0 .. s_{m-1}, y_0 .. y_{m-1}, g] and runs the recursion on coefficients, so the direction
/// d = -H g comes out as d = sum_j delta_j b_j, which every shard forms from its own slices.

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"

namespace tether::lbfgs {

/// The dot products among the base vectors [s_0 .. s_{m-1}, y_0 .. y_{m-1}, g] and the ring of (s, y) slots:
/// `count()` pairs are stored, the newest in slot `newest()`, the oldest `count() - 1` slots before it (mod
/// m). Base vector indices: s of slot j is j, y of slot j is m + j, g is 2m.
class dot_matrix {
 public:
  dot_matrix() = default;
  explicit dot_matrix(std::size_t m) : m_(m), b_((2 * m + 1) * (2 * m + 1), 0.0) {
    detail::require(m >= 1, "dot_matrix: m must be >= 1, got m = ", m);
  }

  [[nodiscard]] std::size_t m() const noexcept { return m_; }
  /// Number of base vectors, 2m + 1.
  [[nodiscard]] std::size_t size() const noexcept { return 2 * m_ + 1; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] std::size_t newest() const noexcept { return newest_; }

  [[nodiscard]] std::size_t s(std::size_t slot) const noexcept { return slot; }
  [[nodiscard]] std::size_t y(std::size_t slot) const noexcept { return m_ + slot; }
  [[nodiscard]] std::size_t g() const noexcept { return 2 * m_; }

  /// The slot of the i-th pair from the oldest (i < count()).
  [[nodiscard]] std::size_t slot(std::size_t i) const noexcept {
    return (newest_ + m_ + 1 - count_ + i) % m_;
  }
  /// The slot the next stored pair goes to: the oldest one when the ring is full.
  [[nodiscard]] std::size_t next_slot() const noexcept { return count_ == 0 ? 0 : (newest_ + 1) % m_; }

  [[nodiscard]] double at(std::size_t i, std::size_t j) const noexcept { return b_[i * size() + j]; }
  /// Sets b_i . b_j (and b_j . b_i).
  void set(std::size_t i, std::size_t j, double v) noexcept {
    b_[i * size() + j] = v;
    b_[j * size() + i] = v;
  }

  /// Records that the pair written last went to next_slot().
  void push() noexcept {
    newest_ = next_slot();
    if (count_ < m_) ++count_;
  }
  /// Every b_i . b_j, row by row ((2m + 1)^2 values): with count() and newest(), the whole state (a
  /// checkpoint).
  [[nodiscard]] const std::vector<double>& values() const noexcept { return b_; }
  /// Restores a state read from values(), count() and newest() (lbfgs/checkpoint.hpp checks them).
  void restore(std::size_t count, std::size_t newest, std::vector<double> values) {
    detail::require(count <= m_ && newest < m_ && values.size() == b_.size(), "dot_matrix: restore: count ",
                    count, ", newest ", newest, " and ", values.size(), " values do not fit m = ", m_);
    count_ = count;
    newest_ = newest;
    b_ = std::move(values);
  }
  /// Forgets every pair (a steepest-descent restart); the dot products of g stay.
  void clear() noexcept {
    count_ = 0;
    newest_ = 0;
  }

 private:
  std::size_t m_ = 0;
  std::size_t count_ = 0;
  std::size_t newest_ = 0;
  std::vector<double> b_;
};

/// The two-loop recursion on the dot products: returns delta (2m + 1 coefficients) with
/// d = sum_j delta_j b_j = -H g, H the L-BFGS inverse Hessian of the stored pairs with the initial scaling
/// gamma = s'y / y'y of the newest pair (the identity without pairs). Slots not stored get 0.
///
/// With q = sum_j delta_j b_j, each dot product b_i . q is sum_j delta_j B_ij, so the recursion on vectors,
///   q = -g; for i newest..oldest: a_i = rho_i s_i.q, q -= a_i y_i;  q *= gamma;
///   for i oldest..newest: beta = rho_i y_i.q, q += (a_i - beta) s_i,
/// becomes the same recursion on delta, one O(2m+1) dot with a row of B per step.
[[nodiscard]] inline std::vector<double> two_loop(const dot_matrix& b) {
  const std::size_t n = b.size();
  std::vector<double> delta(n, 0.0);
  delta[b.g()] = -1.0;
  const std::size_t k = b.count();
  if (k == 0) return delta;
  auto dot_row = [&](std::size_t i) {
    double acc = 0.0;
    for (std::size_t j = 0; j < n; ++j)
      if (delta[j] != 0.0) acc += delta[j] * b.at(i, j);
    return acc;
  };
  std::vector<double> alpha(k, 0.0);
  for (std::size_t i = k; i-- > 0;) {
    const std::size_t slot = b.slot(i);
    const double rho = 1.0 / b.at(b.y(slot), b.s(slot));
    alpha[i] = rho * dot_row(b.s(slot));
    delta[b.y(slot)] -= alpha[i];
  }
  const std::size_t newest = b.newest();
  const double gamma = b.at(b.s(newest), b.y(newest)) / b.at(b.y(newest), b.y(newest));
  for (double& v : delta) v *= gamma;
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t slot = b.slot(i);
    const double rho = 1.0 / b.at(b.y(slot), b.s(slot));
    const double beta = rho * dot_row(b.y(slot));
    delta[b.s(slot)] += alpha[i] - beta;
  }
  return delta;
}

/// sum_j delta_j (b_j . b_i) for the base vector i: the dot product of b_i with the combination.
[[nodiscard]] inline double combination_dot(const dot_matrix& b, const std::vector<double>& delta,
                                            std::size_t i) {
  double acc = 0.0;
  for (std::size_t j = 0; j < b.size(); ++j) acc += delta[j] * b.at(i, j);
  return acc;
}

/// |sum_j delta_j b_j|^2 = delta' B delta.
[[nodiscard]] inline double combination_norm2(const dot_matrix& b, const std::vector<double>& delta) {
  double acc = 0.0;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (delta[i] != 0.0) acc += delta[i] * combination_dot(b, delta, i);
  return acc;
}

}  // namespace tether::lbfgs
