#pragma once
// Helpers of the SwarmSGD algorithm tests: the quadratic problem, starting points, scalar references (the
// pair average, serial SGD and momentum written out here), a codec that damages its messages on one node,
// and summaries of the nodes' final models against the known optimum.
#include <tether/algo/swarm_sgd.hpp>
#include <tether/codec/identity.hpp>
#include <tether/core/rng.hpp>
#include <tether/problems/quadratic.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace swarm_test {

inline const tether::problems::quadratic<float>& quad() {
  static const tether::problems::quadratic<float> q(64, {.a_min = 0.5, .a_max = 4.0, .noise = 0.3, .seed = 11});
  return q;
}

/// A starting point in [-1, 1]^n, different per node (or the same for every node with `same`).
inline std::vector<float> start(std::size_t n, int rank, bool same = false) {
  tether::rng r(tether::derive_seed(5, same ? 0 : static_cast<std::uint64_t>(rank) + 1));
  std::vector<float> x(n);
  for (auto& v : x) v = static_cast<float>(2.0 * r.uniform() - 1.0);
  return x;
}

/// Mean squared distance of x to the quadratic's optimum.
inline double distance2(std::span<const float> x) {
  const auto c = quad().optimum();
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - double(c[i])) * (double(x[i]) - double(c[i]));
  return s / static_cast<double>(x.size());
}

/// Largest mean squared distance of a node's model to the nodes' mean (the consensus error).
inline double consensus2(const std::vector<std::vector<float>>& xs) {
  const std::size_t n = xs.front().size();
  std::vector<double> mean(n, 0.0);
  for (const auto& x : xs)
    for (std::size_t i = 0; i < n; ++i) mean[i] += x[i];
  for (auto& m : mean) m /= static_cast<double>(xs.size());
  double worst = 0;
  for (const auto& x : xs) {
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) s += (x[i] - mean[i]) * (x[i] - mean[i]);
    worst = std::max(worst, s / static_cast<double>(n));
  }
  return worst;
}

/// A codec that damages its messages on the nodes where `mode` is set: the identity codec's message with its
/// magic flipped (corrupt), 8 bytes short (truncated) or 8 bytes long (oversized).
struct faulty_codec {
  enum class fault { none, corrupt, truncate, oversize };
  using value_type = float;
  tether::codec::identity<float> inner{};
  fault mode = fault::none;

  [[nodiscard]] std::size_t encoded_size(std::size_t n) const {
    const std::size_t s = inner.encoded_size(n);
    return mode == fault::truncate ? s - 8 : mode == fault::oversize ? s + 8 : s;
  }
  template <class Exec, class X, class O>
  std::size_t encode(const Exec& e, X&& x, O&& out, std::uint64_t seed) const {
    auto xv = tether::as_view(x);
    auto ov = tether::as_view(out);
    std::vector<std::byte> full(inner.encoded_size(xv.size()));
    inner.encode(e, tether::view<const float>{xv.data(), xv.size()}, full, seed);
    if (mode == fault::corrupt) full[0] = std::byte{'X'};
    const std::size_t n = encoded_size(xv.size());
    std::memset(ov.data(), 0, n);
    std::memcpy(ov.data(), full.data(), std::min(n, full.size()));
    return n;
  }
  template <class Exec, class I, class O>
  void decode(const Exec& e, I&& in, O&& out) const {
    inner.decode(e, in, out);
  }
};

}  // namespace swarm_test
