#pragma once
/// \file
/// FNV-1a-64, the one hash behind checkpoint checksums, fingerprints and the examples' parameter checksums.
/// Byte-wise FNV-1a (fnv1a, fnv1a_u64) and its word-wise variant (fnv1a_word, fnv1a_words: one step per whole
/// word, a different function) are kept apart; each caller's values depend on the exact arithmetic here.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace tether::detail {

inline constexpr std::uint64_t fnv1a_offset = 0xcbf29ce484222325ull;
inline constexpr std::uint64_t fnv1a_prime = 0x100000001b3ull;

/// Byte-wise FNV-1a-64 of `bytes`, continuing from `h`.
constexpr std::uint64_t fnv1a(std::span<const unsigned char> bytes, std::uint64_t h = fnv1a_offset) noexcept {
  for (unsigned char b : bytes) h = (h ^ b) * fnv1a_prime;
  return h;
}

/// Byte-wise FNV-1a-64 of the characters of `s`, continuing from `h`.
constexpr std::uint64_t fnv1a(std::string_view s, std::uint64_t h = fnv1a_offset) noexcept {
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * fnv1a_prime;
  return h;
}

/// Byte-wise FNV-1a-64 of the 8 bytes of `v`, least significant first (the same on every platform),
/// continuing from `h`.
constexpr std::uint64_t fnv1a_u64(std::uint64_t v, std::uint64_t h) noexcept {
  for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xffu)) * fnv1a_prime;
  return h;
}

/// One FNV-1a step over a whole word `w`, from `h`: the word-wise variant, not byte-wise FNV-1a.
constexpr std::uint64_t fnv1a_word(std::uint64_t w, std::uint64_t h) noexcept {
  return (h ^ w) * fnv1a_prime;
}

/// The word-wise variant over the 32-bit patterns of `x` in order, continuing from `h`.
inline std::uint64_t fnv1a_words(std::span<const float> x, std::uint64_t h) noexcept {
  for (const float v : x) {
    std::uint32_t w = 0;
    std::memcpy(&w, &v, sizeof w);
    h = fnv1a_word(w, h);
  }
  return h;
}

}  // namespace tether::detail
