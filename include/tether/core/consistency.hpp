#pragma once
/// \file
/// Cross-rank consistency checks: the values every rank must agree on (parameter count, options) and a
/// fingerprint of an options aggregate. A communicator whose workers live in different processes (comm::mpi,
/// comm::hierarchical) provides `check_consistent(std::span<const consistency_item>)`; the optimizer calls it
/// once at construction, so ranks that disagree fail with a clear tether::error instead of a hang in MPI.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "tether/core/error.hpp"

namespace tether {

/// A value every worker must hold identically, and what it is (named in the error message).
struct consistency_item {
  std::uint64_t value = 0;
  const char* what = "";
};

namespace detail {

/// The error of a failed consistency check on rank `rank`: what the ranks disagree on and the values of the
/// first eight (`all[r]` is rank r's value).
[[noreturn]] inline void throw_inconsistent(int rank, const char* what, std::span<const std::uint64_t> all) {
  std::string listing;
  const std::size_t shown = std::min<std::size_t>(all.size(), 8);
  for (std::size_t r = 0; r < shown; ++r) listing += concat(r == 0 ? "" : ", ", "rank ", r, " has ", all[r]);
  if (shown < all.size()) listing += ", ...";
  throw error(concat("tether: rank ", rank, ": ranks disagree on ", what, ": ", listing));
}

}  // namespace detail

namespace detail::fingerprint_impl {

/// Converts to any field type; used only in unevaluated contexts to count an aggregate's fields.
struct any_field {
  template <class U>
  constexpr operator U() const noexcept;  // NOLINT(google-explicit-constructor): declared, never defined
};

inline constexpr std::size_t max_fields = 12;

template <class T, class... A>
constexpr std::size_t count_fields() {
  if constexpr (sizeof...(A) > max_fields)
    return sizeof...(A);
  else if constexpr (requires { T{A{}..., any_field{}}; })
    return count_fields<T, A..., any_field>();
  else
    return sizeof...(A);
}

constexpr void mix(std::uint64_t& h, std::uint64_t v) noexcept {
  // FNV-1a over the 8 bytes of v.
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xffu;
    h *= 0x100000001b3ull;
  }
}

template <class V>
void hash_into(std::uint64_t& h, const V& v);

template <class T, class F>
void for_each_field(const T& t, F&& f) {
  constexpr std::size_t n = count_fields<T>();
  // clang-format off
  if constexpr (n == 1) { const auto& [a] = t; f(a); }
  else if constexpr (n == 2) { const auto& [a, b] = t; f(a); f(b); }
  else if constexpr (n == 3) { const auto& [a, b, c] = t; f(a); f(b); f(c); }
  else if constexpr (n == 4) { const auto& [a, b, c, d] = t; f(a); f(b); f(c); f(d); }
  else if constexpr (n == 5) { const auto& [a, b, c, d, e] = t; f(a); f(b); f(c); f(d); f(e); }
  else if constexpr (n == 6) { const auto& [a, b, c, d, e, g] = t; f(a); f(b); f(c); f(d); f(e); f(g); }
  else if constexpr (n == 7) { const auto& [a, b, c, d, e, g, i] = t; f(a); f(b); f(c); f(d); f(e); f(g); f(i); }
  else if constexpr (n == 8) {
    const auto& [a, b, c, d, e, g, i, j] = t; f(a); f(b); f(c); f(d); f(e); f(g); f(i); f(j); }
  else if constexpr (n == 9) {
    const auto& [a, b, c, d, e, g, i, j, k] = t; f(a); f(b); f(c); f(d); f(e); f(g); f(i); f(j); f(k); }
  else if constexpr (n == 10) {
    const auto& [a, b, c, d, e, g, i, j, k, l] = t;
    f(a); f(b); f(c); f(d); f(e); f(g); f(i); f(j); f(k); f(l); }
  else if constexpr (n == 11) {
    const auto& [a, b, c, d, e, g, i, j, k, l, m] = t;
    f(a); f(b); f(c); f(d); f(e); f(g); f(i); f(j); f(k); f(l); f(m); }
  else if constexpr (n == 12) {
    const auto& [a, b, c, d, e, g, i, j, k, l, m, o] = t;
    f(a); f(b); f(c); f(d); f(e); f(g); f(i); f(j); f(k); f(l); f(m); f(o); }
  // clang-format on
}

template <class V>
void hash_into(std::uint64_t& h, const V& v) {
  if constexpr (std::is_same_v<V, bool>) {
    mix(h, v ? 1u : 0u);
  } else if constexpr (std::is_floating_point_v<V>) {
    const double d = static_cast<double>(v);
    mix(h, d == 0.0 ? 0u : (d != d ? 0x7ff8000000000000ull : std::bit_cast<std::uint64_t>(d)));
  } else if constexpr (std::is_integral_v<V>) {
    mix(h, static_cast<std::uint64_t>(v));
  } else if constexpr (std::is_enum_v<V>) {
    mix(h, static_cast<std::uint64_t>(static_cast<std::underlying_type_t<V>>(v)));
  } else if constexpr (std::is_aggregate_v<V> && !std::is_array_v<V> && count_fields<V>() <= max_fields) {
    mix(h, count_fields<V>());
    for_each_field(v, [&h](const auto& field) { hash_into(h, field); });
  }
  // Anything else (callbacks such as on_round, custom schedules, containers) is not compared: ranks may
  // legitimately differ there (only rank 0 logs, for instance).
}

}  // namespace detail::fingerprint_impl

/// A 64-bit fingerprint of an options aggregate: its arithmetic, enum and nested-aggregate fields (up to 12
/// per level), recursively. Callables and other class types are left out, so a logging callback set on one
/// rank only does not count as a disagreement. Equal options give equal fingerprints on every platform
/// of the same build.
template <class Options>
[[nodiscard]] std::uint64_t options_fingerprint(const Options& o) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  detail::fingerprint_impl::hash_into(h, o);
  return h;
}

}  // namespace tether
