#pragma once
/// \file
/// A readable description of an options aggregate, for the error of a failed cross-rank check: one
/// "name=value" line per arithmetic or enum field, recursively through nested options (dotted names:
/// "pull.period=16"; callables and other classes are left out, as options_fingerprint leaves them out). Field
/// names come from where the options are defined: an options struct lists them, in declaration order, as
/// `static constexpr const char* field_names[]` (a static_assert keeps the list whole); a nested aggregate
/// without the list is not described (its fields still count in the fingerprint). On a mismatch of fingerprints,
/// comm::mpi gathers the descriptions and names the first field that differs with both ranks' values.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "tether/core/consistency.hpp"

namespace tether {

namespace detail::describe_impl {

template <class V>
concept named_fields = requires { std::size(V::field_names); };

template <class V>
void describe_into(std::string& out, const std::string& name, const V& v) {
  using fingerprint_impl::count_fields;
  using fingerprint_impl::max_fields;
  const auto line = [&](const auto& value) {
    std::ostringstream os;
    if constexpr (std::is_floating_point_v<std::remove_cvref_t<decltype(value)>>)
      os.precision(std::numeric_limits<std::remove_cvref_t<decltype(value)>>::max_digits10);
    os << value;
    out += name.empty() ? std::string("value") : name;
    out += '=';
    out += os.str();
    out += '\n';
  };
  if constexpr (std::is_same_v<V, bool>) {
    line(v ? "true" : "false");
  } else if constexpr (std::is_floating_point_v<V>) {
    line(v);
  } else if constexpr (std::is_integral_v<V>) {
    if constexpr (sizeof(V) == 1)
      line(static_cast<int>(v));
    else
      line(v);
  } else if constexpr (std::is_enum_v<V>) {
    line(static_cast<long long>(static_cast<std::underlying_type_t<V>>(v)));
  } else if constexpr (named_fields<V>) {
    static_assert(std::is_aggregate_v<V> && count_fields<V>() <= max_fields &&
                      std::size(V::field_names) == count_fields<V>(),
                  "tether: an options struct's field_names must name every field, in order (see "
                  "docs/reliability.md)");
    std::size_t i = 0;
    fingerprint_impl::for_each_field(v, [&](const auto& field) {
      describe_into(out, name.empty() ? std::string(V::field_names[i]) : concat(name, '.', V::field_names[i]), field);
      ++i;
    });
  }
  // Callables and other classes are not compared by options_fingerprint; aggregates that do not name their
  // fields are left out of the description (a mismatch there is reported by fingerprint).
}

template <class Options>
std::string describe_erased(const void* subject) {
  std::string out;
  describe_into(out, std::string(), *static_cast<const Options*>(subject));
  return out;
}

}  // namespace detail::describe_impl

/// The fields of `o` that options_fingerprint compares, one "name=value" line each (nested fields dotted:
/// "pull.period=16"). Floating-point values print with enough digits to tell any two apart.
template <class Options>
[[nodiscard]] std::string describe_options(const Options& o) {
  return detail::describe_impl::describe_erased<Options>(&o);
}

/// A consistency item for options `o`: its fingerprint (or `value`, for aggregates with their own
/// fingerprint) and its description, so that a mismatch names the first field that differs. `o` must live
/// until the check returns.
template <class Options>
[[nodiscard]] consistency_item options_item(const Options& o, const char* what) {
  return {options_fingerprint(o), what, &detail::describe_impl::describe_erased<Options>, &o};
}
template <class Options>
[[nodiscard]] consistency_item options_item(std::uint64_t value, const Options& o, const char* what) {
  return {value, what, &detail::describe_impl::describe_erased<Options>, &o};
}

namespace detail {

/// The first line where two descriptions differ, as "name: rank a has x, rank b has y"; nothing when they are
/// equal (the fingerprints then differ in something the description leaves out).
[[nodiscard]] inline std::optional<std::string> first_difference(std::string_view a, std::string_view b, int rank_a,
                                                                 int rank_b) {
  const auto next = [](std::string_view& s) {
    const std::size_t end = s.find('\n');
    const std::string_view l = s.substr(0, end);
    s.remove_prefix(end == std::string_view::npos ? s.size() : end + 1);
    return l;
  };
  const auto split = [](std::string_view l) {
    const std::size_t eq = l.find('=');
    if (eq == std::string_view::npos) return std::pair{l, std::string_view()};
    return std::pair{l.substr(0, eq), l.substr(eq + 1)};
  };
  while (!a.empty() || !b.empty()) {
    const auto [na, va] = split(next(a));
    const auto [nb, vb] = split(next(b));
    if (na == nb && va == vb) continue;
    if (na == nb)
      return concat(na, ": rank ", rank_a, " has ", va, ", rank ", rank_b, " has ", vb);
    return concat("the fields themselves (rank ", rank_a, " has ", na.empty() ? "no more fields" : na, ", rank ",
                  rank_b, " has ", nb.empty() ? "no more fields" : nb, ": different builds?)");
  }
  return std::nullopt;
}

}  // namespace detail

}  // namespace tether
