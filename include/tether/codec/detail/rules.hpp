#pragma once
/// \file
/// The per-block arithmetic of the quantizing codecs ("rules"): a block's scale from its values, the level of
/// one value, the value of one level. Every function is TETHER_HOST_DEVICE and depends only on its arguments,
/// so all execution spaces compute the same bits (docs/codecs.md#arithmetic states it as the reference).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tether/codec/detail/random.hpp"
#include "tether/codec/format.hpp"
#include "tether/core/config.hpp"

namespace tether::codec::detail {

inline constexpr float float_max = 3.40282346638528859812e+38f;
inline constexpr float float_min = 1.17549435082228750797e-38f;  ///< the smallest normal float, 2^-126

/// The smallest nonzero scale of an fp32 grid (max_abs s, min_max w): 2^-118. Smaller ones are raised to it,
/// so that L/(2s) and L/w stay finite (at most 2^126) and delta = w/L stays a normal float for L <= 255.
inline constexpr float scale_floor = 0x1p-118f;

/// The largest grid top lo + w of an fp32 grid, and its largest width: 2^128 * (1 - 2^-20). Below it,
/// lo + q*(w/L) cannot round past FLT_MAX (the products carry a relative 2^-23 at most), so no fp32 value
/// decodes to infinity.
inline constexpr float grid_limit = 0x1.ffffep+127f;

/// The bounds of the stored scales of a grid for values of type T. fp32 values are decoded in fp32, so their
/// grids are kept inside [-grid_limit, grid_limit] with nonzero widths >= scale_floor; fp64 values are
/// decoded in fp64, where any finite fp32 scale is safe.
template <class T>
struct scale_bounds {
  static constexpr bool fp32 = sizeof(T) == 4;
  static constexpr float floor = fp32 ? scale_floor : 0.0f;          ///< smallest nonzero width (or s)
  static constexpr float width = fp32 ? grid_limit : float_max;      ///< largest width w
  static constexpr float half = fp32 ? 0x1.ffffep+126f : float_max;  ///< largest max_abs s

  /// A nonzero scale below the floor, raised to it (0 stays 0: such a block decodes exactly).
  TETHER_HOST_DEVICE static float raise(float v) noexcept { return v != 0.0f && v < floor ? floor : v; }
  /// min_max: lo finite, w = 0 or in [floor, width], and (fp32) lo + w <= grid_limit.
  TETHER_HOST_DEVICE static bool fits(float lo, float w) noexcept {
    const bool top = !fp32 || static_cast<double>(lo) + static_cast<double>(w) <= static_cast<double>(width);
    return lo >= -float_max && lo <= float_max && (w == 0.0f || (w >= floor && w <= width)) && top;
  }
};

/// v, hidden from the optimiser (a volatile round trip, once per block): constants the kernels' selects
/// compare with must be run-time values for those loops to vectorise (see stochastic_level). Host code only:
/// GPU code has nothing to vectorise, and the round trip would cost a stack frame in every per-byte and
/// per-element work item (the value is the same either way).
template <class T>
TETHER_HOST_DEVICE inline T opaque(T v) noexcept {
#if defined(__CUDA_ARCH__)
  return v;
#else
  volatile T t = v;
  return t;
#endif
}

/// An affine grid lo + q*delta, q in [0, top], top = 2^Bits - 1; inv = 1/delta (0 when delta is 0).
template <class T>
struct affine_grid {
  T lo;
  T inv;
  T delta;
  T top;  ///< 2^Bits - 1 as a run-time value (see stochastic_level)
};

/// Stochastic rounding of u (expected in [0, top]) to an integer level: floor(u) + [r < u - floor(u)], so
/// that E[level] = u. u is clamped to [0, top] first (NaN to 0), so the conversion is always defined.
///
/// Written so that loops calling it vectorise (GCC 12, SSE2): one select per comparison, no && or nesting,
/// and `top` a run-time value: with the constant, GCC threads the path u >= top (where the fraction is known
/// to be 0) into a branch, and under the default -ftrapping-math it will not turn that back into selects.
template <class T>
TETHER_HOST_DEVICE inline unsigned stochastic_level(T u, T top, std::uint32_t r) noexcept {
  const T a = u > T(0) ? u : T(0);  // NaN -> 0
  const T c = a < top ? a : top;
  const int i = static_cast<int>(c);
  const T frac = c - static_cast<T>(i);
  return static_cast<unsigned>(i + (unit_uniform<T>(r) < frac ? 1 : 0));
}

/// floor(u) for |u| < exact, without a library call (std::floor is one without SSE4.1) and without branches:
/// u clamped to [-exact, exact] (NaN to -exact), its integer conversion, minus one where that rounded up.
/// `exact` is integer_from<T>, passed at run time for the reason given at stochastic_level; the result is
/// always finite and in [-exact, exact]. The correction is an integer subtraction: a floating-point one after
/// the comparison is, again, something GCC will not vectorise. float goes through int32 (a SIMD conversion on
/// every x86-64), double through int64.
template <class T>
TETHER_HOST_DEVICE inline T floor_of(T u, T exact) noexcept {
  using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
  const T a = u > -exact ? u : -exact;
  const T v = a < exact ? a : exact;
  const I t = static_cast<I>(v);
  return static_cast<T>(t - (static_cast<T>(t) > v ? 1 : 0));
}

/// 2^23 for float, 2^52 for double: the magnitude from which every value is an integer.
template <class T>
inline constexpr T integer_from = sizeof(T) == 4 ? T(8388608.0) : T(4503599627370496.0);

/// Levels and values on an affine grid: the shared half of max_abs_rule and min_max_rule.
template <class T>
struct affine_rule {
  using value_type = T;
  static constexpr bool uses_reference = false;
  static constexpr unsigned bits_min = 1;
  static constexpr const char* name = "stochastic_uniform";
  template <unsigned Bits>
  TETHER_HOST_DEVICE static unsigned level(const affine_grid<T>& c, T x, std::uint32_t r) noexcept {
    return stochastic_level<T>((x - c.lo) * c.inv, c.top, r);
  }
  template <unsigned Bits>
  TETHER_HOST_DEVICE static T value(const affine_grid<T>& c, unsigned q, T /*reference*/) noexcept {
    return c.lo + static_cast<T>(static_cast<int>(q)) * c.delta;
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

  /// s = the smallest float >= max |x|, raised to scale_bounds::floor when smaller and nonzero; NaN when a
  /// value is not finite or (fp32) |x| > scale_bounds::half, where 2s would leave the fp32 range (the message
  /// then fails to decode).
  ///
  /// The maximum is taken over the bit patterns of |x| (sign bit cleared), an integer reduction that
  /// vectorises (a float max reduction does not: it is not associative under NaN). For non-negative floats
  /// the order of the patterns is the order of the values, and NaN patterns lie above infinity's, so one
  /// comparison at the end finds both non-finite values and fp64 values beyond the fp32 range.
  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr U magnitude = ~U(0) >> 1;
    U m = 0;
    for (std::size_t i = 0; i < n; ++i) {
      U b;
      std::memcpy(&b, x + i, sizeof b);
      b &= magnitude;
      m = b > m ? b : m;
    }
    constexpr T big = T(scale_bounds<T>::half);
    U limit;
    std::memcpy(&limit, &big, sizeof limit);
    T a;
    std::memcpy(&a, &m, sizeof a);
    return {m > limit ? NAN : scale_bounds<T>::raise(float_up(a))};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept { store_float(p, s.s); }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept { return {load_float(p)}; }
  /// A scale read from a message is usable when 0 or in [scale_bounds::floor, scale_bounds::half] (what
  /// compute writes; for fp64 values: finite and >= 0).
  TETHER_HOST_DEVICE static bool valid(params s) noexcept {
    return s.s == 0.0f || (s.s >= scale_bounds<T>::floor && s.s <= scale_bounds<T>::half);
  }
  /// What valid() requires, for error messages.
  static constexpr const char* requirement = scale_bounds<T>::fp32
                                                 ? "must be 0 or in [2^-118, 2^127*(1-2^-20)] for fp32 values"
                                                 : "must be finite and >= 0";
  template <unsigned Bits>
  TETHER_HOST_DEVICE static affine_grid<T> prepare(params p) noexcept {
    constexpr T L = static_cast<T>((1u << Bits) - 1);
    const T s = static_cast<T>(p.s);
    if (!(s > T(0))) return {T(0), T(0), T(0), opaque(L)};
    return {-s, L / (s + s), (s + s) / L, opaque(L)};
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

  /// lo and w (w raised to scale_bounds::floor when smaller and nonzero), or NaN for both when a value is not
  /// finite, (fp64) beyond the fp32 range, or the grid does not fit (scale_bounds::fits: a range beyond the
  /// fp32 range, or for fp32 values lo + w above grid_limit).
  ///
  /// As max_abs_rule::compute, integer reductions that vectorise: each value's bits become the signed integer
  /// +-|bits| (sign-magnitude to two's complement), whose order is the values' order with -0 = +0; the
  /// minimum and maximum come back as floats with zeros as +0. The largest |bits| finds the non-finite
  /// values.
  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    using S = std::make_signed_t<U>;
    constexpr U magnitude = ~U(0) >> 1;
    constexpr int top_bit = 8 * sizeof(U) - 1;
    U worst = 0;
    S kmin = static_cast<S>(magnitude);
    S kmax = -static_cast<S>(magnitude);
    for (std::size_t i = 0; i < n; ++i) {
      U b;
      std::memcpy(&b, x + i, sizeof b);
      const U mag = b & magnitude;
      worst = mag > worst ? mag : worst;
      const S sign = -static_cast<S>(b >> top_bit);  // 0 or -1
      const S k = (static_cast<S>(mag) ^ sign) - sign;
      kmin = k < kmin ? k : kmin;
      kmax = k > kmax ? k : kmax;
    }
    constexpr T big = T(float_max);
    U limit;
    std::memcpy(&limit, &big, sizeof limit);
    if (worst > limit) return {NAN, NAN};
    const auto value_of = [](S k) {
      U b = k < 0 ? (static_cast<U>(-k) | (U(1) << top_bit)) : static_cast<U>(k);
      T v;
      std::memcpy(&v, &b, sizeof v);
      return v;
    };
    const T mn = value_of(kmin);
    const T mx = value_of(kmax);
    const float lo = float_down(mn);
    // w: the smallest float with lo + w >= mx. The double difference d may round down (when lo is far below
    // mx in magnitude); its rounding error (TwoSum: d + err = mx - lo exactly) says whether the float above d
    // is needed.
    const double a = static_cast<double>(mx);
    const double b = -static_cast<double>(lo);
    const double d = a + b;
    const double bv = d - a;
    const double err = (a - (d - bv)) + (b - bv);
    float up = float_up(d);
    if (err > 0.0 && static_cast<double>(up) <= d) up = next_up(up);
    const float w = scale_bounds<T>::raise(up);
    if (!scale_bounds<T>::fits(lo, w)) return {NAN, NAN};
    return {lo, w};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept {
    store_float(p, s.lo);
    store_float(p + 4, s.w);
  }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept {
    return {load_float(p), load_float(p + 4)};
  }
  /// Usable when the grid fits (scale_bounds::fits: what compute writes).
  TETHER_HOST_DEVICE static bool valid(params s) noexcept { return scale_bounds<T>::fits(s.lo, s.w); }
  /// What valid() requires, for error messages.
  static constexpr const char* requirement =
      scale_bounds<T>::fp32
          ? "lo must be finite, range 0 or in [2^-118, 2^128*(1-2^-20)] and lo + range <= 2^128*(1-2^-20) "
            "for fp32 values"
          : "lo must be finite, range finite and >= 0";
  template <unsigned Bits>
  TETHER_HOST_DEVICE static affine_grid<T> prepare(params p) noexcept {
    constexpr T L = static_cast<T>((1u << Bits) - 1);
    const T w = static_cast<T>(p.w);
    return {static_cast<T>(p.lo), w > T(0) ? L / w : T(0), w / L, opaque(L)};
  }
};

/// The lattice s*Z: k = stochastic rounding of x/s, sent as k mod 2^b; the receiver takes the k' = q (mod
/// 2^b) nearest y/s for its reference y. Scale bytes: 4 (s, the same in every block; NaN marks a block
/// holding a value that is not finite or whose x/s is not).
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
    T inv;    ///< 1/s, rounded: every value is multiplied by it (no division per value)
    T exact;  ///< integer_from<T>, at run time (see floor_of)
  };
  float step = 1.0f;  ///< the lattice step s

  /// s (validated by codec::lattice: in [2^-126, step_max]), or NaN when a value's |x * (1/s)| is not below
  /// integer_from<T> (2^23 for float: from there on every float is an integer, there is nothing left to
  /// round, and floor_of's range ends).
  TETHER_HOST_DEVICE params compute(const T* x, std::size_t n) const noexcept {
    const T inv = T(1) / static_cast<T>(step);
    unsigned bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const T a = (x[i] < T(0) ? -x[i] : x[i]) * inv;
      bad |= !(a < integer_from<T>) ? 1u : 0u;
    }
    return {bad != 0 ? NAN : step};
  }
  TETHER_HOST_DEVICE static void store(std::byte* p, params s) noexcept { store_float(p, s.s); }
  TETHER_HOST_DEVICE static params load(const std::byte* p) noexcept { return {load_float(p)}; }
  /// The largest step: 2^96 for fp32 values, FLT_MAX for fp64. fp32 decoding clamps j to |j| <= 2^23
  /// (floor_of), so every decoded k' = q + 2^b*j has |k'| <= 2^31 + 2^8 after rounding, and |k' s| <= 2^127 +
  /// 2^104 stays finite for any reference; the encoder's |k| <= 2^23 + 1 likewise. Above 2^96 (up to 2^97) a
  /// reference near FLT_MAX, or a value whose k rounds up, could give a lattice point beyond FLT_MAX:
  /// infinity, silently. In fp64, |k' s| <= 2^61 * FLT_MAX is finite.
  static constexpr float step_max = sizeof(T) == 4 ? 0x1p96f : float_max;
  /// Usable when a normal float (>= 2^-126, so that 1/s is finite) and <= step_max.
  TETHER_HOST_DEVICE static bool valid(params s) noexcept { return s.s >= float_min && s.s <= step_max; }
  /// What valid() requires, for error messages.
  static constexpr const char* requirement =
      sizeof(T) == 4 ? "must be >= 2^-126 and <= 2^96 for fp32 values" : "must be finite and >= 2^-126";
  template <unsigned Bits>
  TETHER_HOST_DEVICE static grid prepare(params p) noexcept {
    const T s = static_cast<T>(p.s);
    return {s, T(1) / s, opaque(integer_from<T>)};
  }
  /// k mod 2^Bits, k = floor(u) + [r < u - floor(u)], u = x * (1/s); 0 when k is not finite (a block whose
  /// scale is NaN: the message does not decode).
  template <unsigned Bits>
  TETHER_HOST_DEVICE static unsigned level(const grid& c, T x, std::uint32_t r) noexcept {
    constexpr T M = static_cast<T>(1u << Bits);
    const T u = x * c.inv;
    const T fl = floor_of(u, c.exact);
    const T k = fl + static_cast<T>(unit_uniform<T>(r) < u - fl ? 1 : 0);
    // k is an integer of magnitude <= 2^23 + 1 (floor_of is clamped, NaN included), so every step is exact
    // and q is in [0, M).
    const T q = k - M * floor_of(k * (T(1) / M), c.exact);
    return static_cast<unsigned>(static_cast<int>(q));
  }
  /// s * k' with k' = q + M*floor((y*(1/s) - q)/M + 1/2): the lattice point of residue q nearest the
  /// reference y.
  template <unsigned Bits>
  TETHER_HOST_DEVICE static T value(const grid& c, unsigned q, T y) noexcept {
    constexpr T M = static_cast<T>(1u << Bits);
    const T qf = static_cast<T>(static_cast<int>(q));
    const T j = floor_of((y * c.inv - qf) * (T(1) / M) + T(0.5), c.exact);
    return (qf + M * j) * c.s;
  }
};

}  // namespace tether::codec::detail
