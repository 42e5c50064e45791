#pragma once
/// \file
/// Small, portable, seeded generators: the same stream on every platform and standard library.

#include <cmath>
#include <cstdint>
#include <numbers>

namespace tether {

/// SplitMix64 step: mixes a 64-bit state into a well-distributed value. Used to derive seeds.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// A seed derived from a base seed and up to three stream ids (worker, epoch, step...).
[[nodiscard]] constexpr std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a = 0, std::uint64_t b = 0,
                                                  std::uint64_t c = 0) noexcept {
  std::uint64_t s = seed;
  std::uint64_t r = splitmix64(s);
  s ^= a * 0xD1B54A32D192ED03ull;
  r ^= splitmix64(s);
  s ^= b * 0xABC98388FB8FAC03ull;
  r ^= splitmix64(s);
  s ^= c * 0x8CB92BA72F3D8DD7ull;
  return r ^ splitmix64(s);
}

/// xoshiro256** (Blackman and Vigna): fast, 256-bit state, seeded through SplitMix64.
class rng {
 public:
  using result_type = std::uint64_t;
  explicit constexpr rng(std::uint64_t seed = 0) noexcept {
    for (auto& w : s_) w = splitmix64(seed);
  }
  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return ~result_type{0}; }
  constexpr result_type operator()() noexcept {
    const std::uint64_t r = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n) without modulo bias (Lemire's method). n must be > 0.
  std::uint64_t below(std::uint64_t n) noexcept {
    u128 m = static_cast<u128>((*this)()) * n;
    auto lo = static_cast<std::uint64_t>(m);
    if (lo < n) {
      const std::uint64_t t = (0 - n) % n;
      while (lo < t) {
        m = static_cast<u128>((*this)()) * n;
        lo = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }
  /// Standard normal (Box-Muller, no cached second value, so streams are simple to reason about).
  double normal() noexcept {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }

 private:
  __extension__ typedef unsigned __int128 u128;  // NOLINT(modernize-use-using): nvcc rejects __extension__ using
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
};

}  // namespace tether
