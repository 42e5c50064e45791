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
#include "tether/core/fnv1a.hpp"

namespace tether {

/// A value every worker must hold identically, and what it is (named in the error message). When the value
/// is the fingerprint of an options aggregate, `describe(subject)` may give its fields as "name=value" lines
/// (tether::options_item, core/options_description.hpp): a mismatch then names the first field that differs
/// and both ranks' values. `subject` must live until the check returns.
struct consistency_item {
  std::uint64_t value = 0;
  const char* what = "";
  std::string (*describe)(const void* subject) = nullptr;
  const void* subject = nullptr;
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

inline constexpr std::size_t max_fields = 20;

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
  h = fnv1a_u64(v, h);
}

template <class V>
void hash_into(std::uint64_t& h, const V& v);

template <class T, class F>
void for_each_field(const T& t, F&& f) {
  constexpr std::size_t n = count_fields<T>();
  if constexpr (n == 1) {
    const auto& [f0] = t;
    f(f0);
  }
  else if constexpr (n == 2) {
    const auto& [f0, f1] = t;
    f(f0); f(f1);
  }
  else if constexpr (n == 3) {
    const auto& [f0, f1, f2] = t;
    f(f0); f(f1); f(f2);
  }
  else if constexpr (n == 4) {
    const auto& [f0, f1, f2, f3] = t;
    f(f0); f(f1); f(f2); f(f3);
  }
  else if constexpr (n == 5) {
    const auto& [f0, f1, f2, f3, f4] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4);
  }
  else if constexpr (n == 6) {
    const auto& [f0, f1, f2, f3, f4, f5] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5);
  }
  else if constexpr (n == 7) {
    const auto& [f0, f1, f2, f3, f4, f5, f6] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6);
  }
  else if constexpr (n == 8) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7);
  }
  else if constexpr (n == 9) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8);
  }
  else if constexpr (n == 10) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9);
  }
  else if constexpr (n == 11) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9); f(f10);
  }
  else if constexpr (n == 12) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9); f(f10); f(f11);
  }
  else if constexpr (n == 13) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9); f(f10); f(f11); f(f12);
  }
  else if constexpr (n == 14) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9); f(f10); f(f11); f(f12); f(f13);
  }
  else if constexpr (n == 15) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9); f(f10); f(f11); f(f12); f(f13); f(f14);
  }
  else if constexpr (n == 16) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7);
    f(f8); f(f9); f(f10); f(f11); f(f12); f(f13); f(f14); f(f15);
  }
  else if constexpr (n == 17) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7);
    f(f8); f(f9); f(f10); f(f11); f(f12); f(f13); f(f14); f(f15); f(f16);
  }
  else if constexpr (n == 18) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8);
    f(f9); f(f10); f(f11); f(f12); f(f13); f(f14); f(f15); f(f16); f(f17);
  }
  else if constexpr (n == 19) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8);
    f(f9); f(f10); f(f11); f(f12); f(f13); f(f14); f(f15); f(f16); f(f17); f(f18);
  }
  else if constexpr (n == 20) {
    const auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19] = t;
    f(f0); f(f1); f(f2); f(f3); f(f4); f(f5); f(f6); f(f7); f(f8); f(f9);
    f(f10); f(f11); f(f12); f(f13); f(f14); f(f15); f(f16); f(f17); f(f18); f(f19);
  }
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

/// A 64-bit fingerprint of an options aggregate: its arithmetic, enum and nested-aggregate fields (up to 20
/// per level), recursively. Callables and other class types are left out, so a logging callback set on one
/// rank only does not count as a disagreement. Equal options give equal fingerprints on every platform
/// of the same build.
template <class Options>
[[nodiscard]] std::uint64_t options_fingerprint(const Options& o) {
  std::uint64_t h = detail::fnv1a_offset;
  detail::fingerprint_impl::hash_into(h, o);
  return h;
}

}  // namespace tether
