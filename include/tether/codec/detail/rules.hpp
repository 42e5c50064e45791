#pragma once
/// \file
/// The per-block arithmetic of the quantizing codecs ("rules"): a block's scale from its values, the level of
/// one value, the value of one level. Every function is TETHER_HOST_DEVICE and depends only on its arguments,
/// so all execution spaces compute the same bits (docs/codecs.md#arithmetic states it as the reference).

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "tether/codec/detail/random.hpp"
#include "tether/codec/format.hpp"
#include "tether/core/config.hpp"

namespace tether::codec::detail {

inline constexpr float float_max = 3.40282346638528859812e+38f;

/// An affine grid lo + q*delta, q in [0, 2^Bits - 1]; inv = 1/delta (0 when delta is 0).
template <class T>
struct affine_grid {
  T lo;
  T inv;
  T delta;
};

/// Stochastic rounding of u (expected in [0, L]) to an integer level: floor(u) + [r < u - floor(u)], so that
/// E[level] = u. u is clamped to [0, L] first (NaN to 0), so the conversions are always defined.
template <class T, unsigned Bits>
TETHER_HOST_DEVICE inline unsigned stochastic_level(T u, std::uint32_t r) noexcept {
  constexpr T L = static_cast<T>((1u << Bits) - 1);
  u = u >= T(0) ? (u <= L ? u : L) : T(0);
  const T fl = static_cast<T>(static_cast<int>(u));
  return static_cast<unsigned>(fl) + (unit_uniform<T>(r) < u - fl ? 1u : 0u);
}

/// floor(u) through a 64-bit integer conversion (std::floor is a library call without SSE4.1). Values of
/// magnitude 2^52 and more are integers already, and NaN and infinities are returned as they are, so this
/// equals std::floor up to the sign of a zero result.
template <class T>
TETHER_HOST_DEVICE inline T floor_of(T u) noexcept {
  if (!(u > T(-4503599627370496.0) && u < T(4503599627370496.0))) return u;
  const T t = static_cast<T>(static_cast<std::int64_t>(u));
  return t > u ? t - T(1) : t;
}

/// Levels and values on an affine grid: the shared half of max_abs_rule and min_max_rule.
template <class T>
struct affine_rule {
  using value_type = T;
  static constexpr bool uses_reference = false;
  static constexpr unsigned bits_min = 1;
  static constexpr const char* name = "stochastic_uniform";
  template <unsigned Bits>
  TETHER_HOST_DEVICE static unsigned level(const affine_grid<T>& c, T x, std::uint32_t r) noexcept {
    return stochastic_level<T, Bits>((x - c.lo) * c.inv, r);
  }
  template <unsigned Bits>
  TETHER_HOST_DEVICE static T value(const affine_grid<T>& c, unsigned q, T /*reference*/) noexcept {
    return c.lo + static_cast<T>(q) * c.delta;
  }
};

/// Stochastic uniform quantization with a symmetric per-block scale s = max |x| (rounded up to fp32): the
/// grid -s + q * 2s/(2^b - 1). Scale bytes: 4 (s).
template <class T>
struct max_abs_rule : affine_rule<T> {
  static constexpr std::size_t scale_bytes = 4;
  static constexpr std::uint8_t kind = static_cast<std::uint8_t>(codec::kind::stochastic_uniform_max_abs);
  struct params {
    float s;
  };

  /// s = the smallest float >= max |x|; NaN when a value is not finite (the message then fails to decode).
  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    T m = T(0);
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T a = x[i] < T(0) ? -x[i] : x[i];
      m = a > m ? a : m;
      bad |= !(a <= T(float_max)) ? 1u : 0u;
    }
    return {bad != 0 ? NAN : float_up(m)};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept { store_float(p, s.s); }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept { return {load_float(p)}; }
  /// A scale read from a message is usable when finite and >= 0.
  TETHER_HOST_DEVICE static bool valid(params s) noexcept { return s.s >= 0.0f && s.s <= float_max; }
  template <unsigned Bits>
  TETHER_HOST_DEVICE static affine_grid<T> prepare(params p) noexcept {
    constexpr T L = static_cast<T>((1u << Bits) - 1);
    const T s = static_cast<T>(p.s);
    if (!(s > T(0))) return {T(0), T(0), T(0)};
    return {-s, L / (s + s), (s + s) / L};
  }
};

/// Stochastic uniform quantization over each block's range: lo = min x (rounded down to fp32), w = max x - lo
/// (rounded up to fp32), the grid lo + q * w/(2^b - 1). Scale bytes: 8 (lo, w).
template <class T>
struct min_max_rule : affine_rule<T> {
  static constexpr std::size_t scale_bytes = 8;
  static constexpr std::uint8_t kind = static_cast<std::uint8_t>(codec::kind::stochastic_uniform_min_max);
  struct params {
    float lo;
    float w;
  };

  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    T mn = x[0];
    T mx = x[0];
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T v = x[i];
      mn = v < mn ? v : mn;
      mx = v > mx ? v : mx;
      bad |= !(v >= T(-float_max) && v <= T(float_max)) ? 1u : 0u;
    }
    if (bad != 0) return {NAN, NAN};
    const float lo = float_down(mn);
    return {lo, float_up(static_cast<double>(mx) - static_cast<double>(lo))};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept {
    store_float(p, s.lo);
    store_float(p + 4, s.w);
  }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept { return {load_float(p), load_float(p + 4)}; }
  /// Usable when lo is finite and w is finite and >= 0.
  TETHER_HOST_DEVICE static bool valid(params s) noexcept {
    return s.lo >= -float_max && s.lo <= float_max && s.w >= 0.0f && s.w <= float_max;
  }
  template <unsigned Bits>
  TETHER_HOST_DEVICE static affine_grid<T> prepare(params p) noexcept {
    constexpr T L = static_cast<T>((1u << Bits) - 1);
    const T w = static_cast<T>(p.w);
    return {static_cast<T>(p.lo), w > T(0) ? L / w : T(0), w / L};
  }
};

/// The lattice s*Z: k = stochastic rounding of x/s, sent as k mod 2^b; the receiver takes the k' = q (mod 2^b)
/// nearest y/s for its reference y. Scale bytes: 4 (s, the same in every block; NaN marks a block holding a
/// value that is not finite or whose x/s is not).
template <class T>
struct lattice_rule {
  using value_type = T;
  static constexpr std::size_t scale_bytes = 4;
  static constexpr bool uses_reference = true;
  static constexpr std::uint8_t kind = static_cast<std::uint8_t>(codec::kind::lattice);
  static constexpr unsigned bits_min = 2;
  static constexpr const char* name = "lattice";
  struct params {
    float s;
  };
  struct grid {
    T s;
  };
  float step = 1.0f;  ///< the lattice step s

  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    const T s = static_cast<T>(step);
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T a = (x[i] < T(0) ? -x[i] : x[i]) / s;
      bad |= !(a <= T(float_max)) ? 1u : 0u;
    }
    return {bad != 0 ? NAN : step};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept { store_float(p, s.s); }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept { return {load_float(p)}; }
  /// Usable when finite and > 0.
  TETHER_HOST_DEVICE static bool valid(params s) noexcept { return s.s > 0.0f && s.s <= float_max; }
  template <unsigned Bits>
  TETHER_HOST_DEVICE static grid prepare(params p) noexcept {
    return {static_cast<T>(p.s)};
  }
  /// k mod 2^Bits, k = floor(x/s) + [r < frac(x/s)].
  template <unsigned Bits>
  TETHER_HOST_DEVICE static unsigned level(const grid& c, T x, std::uint32_t r) noexcept {
    constexpr T M = static_cast<T>(1u << Bits);
    const T u = x / c.s;
    const T fl = floor_of(u);
    const T k = fl + (unit_uniform<T>(r) < u - fl ? T(1) : T(0));
    const T q = k - M * floor_of(k / M);
    return q >= T(0) && q < M ? static_cast<unsigned>(q) : 0u;
  }
  /// s * k' with k' = q + M*round((y/s - q)/M): the lattice point of residue q nearest the reference y.
  template <unsigned Bits>
  TETHER_HOST_DEVICE static T value(const grid& c, unsigned q, T y) noexcept {
    constexpr T M = static_cast<T>(1u << Bits);
    const T qf = static_cast<T>(q);
    const T j = floor_of((y / c.s - qf) / M + T(0.5));
    return (qf + M * j) * c.s;
  }
};

}  // namespace tether::codec::detail
