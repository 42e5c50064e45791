#pragma once
/// \file
/// Counter-based randomness for stochastic rounding: the uniform of element i is a hash of (seed, i), so
/// every execution space, thread count and work split draws the same numbers (docs/codecs.md#randomness).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tether/core/config.hpp"

namespace tether::codec::detail {

/// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mix (used once per message, to
/// turn the caller's seed into the stream key).
TETHER_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// The stream key of a caller's seed (mixed once, so that neighbouring seeds give unrelated streams).
TETHER_HOST_DEVICE constexpr std::uint64_t stream_key(std::uint64_t seed) noexcept {
  return mix64(seed ^ 0x6A09E667F3BCC909ull);
}

/// A bijective 32-bit integer hash: two multiply-xorshift rounds (C. Wellons' "lowbias32", found by search
/// for low avalanche bias). Only 32-bit multiplies, so compilers vectorise it on any SIMD width (SSE2
/// included).
TETHER_HOST_DEVICE constexpr std::uint32_t hash32(std::uint32_t x) noexcept {
  x ^= x >> 16;
  x *= 0x7FEB352Du;
  x ^= x >> 15;
  x *= 0x846CA68Bu;
  x ^= x >> 16;
  return x;
}

/// The second-round key of the elements whose index has high word `hi` (every element of a block but at most
/// one 2^32 boundary shares it).
TETHER_HOST_DEVICE constexpr std::uint32_t round_key(std::uint64_t key, std::uint32_t hi) noexcept {
  return static_cast<std::uint32_t>(key >> 32) + hi * 0x9E3779B9u;
}

/// 32 random bits for the element whose index has low word `lo`: hash32(hash32(lo + k0) ^ k1), k0 the low
/// word of the stream key, k1 = round_key(key, high word of the index).
TETHER_HOST_DEVICE constexpr std::uint32_t counter_bits(std::uint32_t lo, std::uint32_t k0,
                                                        std::uint32_t k1) noexcept {
  return hash32(hash32(lo + k0) ^ k1);
}

/// 32 random bits for element i of the stream `key` (docs/codecs.md#randomness).
TETHER_HOST_DEVICE constexpr std::uint32_t random_bits(std::uint64_t key, std::size_t i) noexcept {
  const auto j = static_cast<std::uint64_t>(i);
  return counter_bits(static_cast<std::uint32_t>(j), static_cast<std::uint32_t>(key),
                      round_key(key, static_cast<std::uint32_t>(j >> 32)));
}

/// A uniform in [0, 1) from 32 random bits, exact in T: the top 24 bits for float, all 32 for double.
template <class T>
TETHER_HOST_DEVICE constexpr T unit_uniform(std::uint32_t r) noexcept {
  if constexpr (sizeof(T) == 4)
    return static_cast<T>(static_cast<std::int32_t>(r >> 8)) *
           T(5.9604644775390625e-8);  // 2^-24 (int: vectorises)
  else
    return static_cast<T>(r) * T(2.3283064365386962890625e-10);  // 2^-32
}

/// The next float above a finite f (toward +infinity).
TETHER_HOST_DEVICE inline float next_up(float f) noexcept {
  if (f == 0.0f) return 1.40129846e-45f;  // the smallest denormal
  std::uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  u = f > 0.0f ? u + 1 : u - 1;
  std::memcpy(&f, &u, sizeof u);
  return f;
}

/// The smallest float >= v (v >= 0 or any sign; +inf when v exceeds the float range, NaN stays NaN).
template <class T>
TETHER_HOST_DEVICE inline float float_up(T v) noexcept {
  constexpr T big = T(3.40282346638528859812e+38);  // FLT_MAX; beyond it the conversion is undefined
  if (v > big) return INFINITY;
  if (v < -big) return -3.40282346638528859812e+38f;
  const float f = static_cast<float>(v);
  return static_cast<T>(f) < v ? next_up(f) : f;
}

/// The largest float <= v.
template <class T>
TETHER_HOST_DEVICE inline float float_down(T v) noexcept {
  constexpr T big = T(3.40282346638528859812e+38);
  if (v > big) return 3.40282346638528859812e+38f;
  if (v < -big) return -INFINITY;
  const float f = static_cast<float>(v);
  return static_cast<T>(f) > v ? -next_up(-f) : f;
}

/// A float from 4 little-endian bytes (any alignment).
TETHER_HOST_DEVICE inline float load_float(const std::byte* p) noexcept {
  float f = 0.0f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

/// A float into 4 little-endian bytes (any alignment).
TETHER_HOST_DEVICE inline void store_float(std::byte* p, float f) noexcept {
  std::memcpy(p, &f, sizeof f);
}

}  // namespace tether::codec::detail
