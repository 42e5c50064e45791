#pragma once
/// \file
/// Command-line helpers of the Fashion-MNIST demo and study: strict number parsing with errors that name the flag
/// and the value.

#include <charconv>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace fmnist::cli {

/// A bad command line; `message` names the flag and the value. Programs print it and exit with status 2.
struct usage_error {
  std::string message;
};

/// Throws usage_error "<flag>: <why>, got '<value>'".
[[noreturn]] inline void bad_value(std::string_view flag, std::string_view value, std::string_view why) {
  throw usage_error{std::string(flag) + ": " + std::string(why) + ", got '" + std::string(value) + "'"};
}

/// `text` as a V (an integer or floating-point type), all of it; a usage_error naming `flag` otherwise.
template <class V>
[[nodiscard]] V parse_number(std::string_view flag, std::string_view text) {
  V v{};
  const char* first = text.data();
  const char* last = text.data() + text.size();
  bool ok = !text.empty();
  if constexpr (std::is_unsigned_v<V>) ok = ok && text.front() != '-';
  if (ok) {
    const auto [end, ec] = std::from_chars(first, last, v);
    ok = ec == std::errc{} && end == last;
  }
  if (!ok) bad_value(flag, text, std::is_integral_v<V> ? "expected a whole number" : "expected a number");
  return v;
}

/// `text` split at commas (empty items kept, so that callers can reject them).
[[nodiscard]] inline std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> items;
  for (;;) {
    const std::size_t comma = text.find(',');
    items.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return items;
}

}  // namespace fmnist::cli
