#pragma once
/// \file
/// detail::keep_forever: leaves objects alive and reachable until the process ends, never destroyed. For the
/// operations of a peer that was given up as lost (asynchronous LSGD's lost round, asynchronous EASGD's
/// silent rank): a rank that only stalled may still take part in them and must not write into freed memory,
/// and their destructors would wait for it. A few buffers; the program is expected to end soon after.

#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace tether::detail {

/// Moves `parts` into storage that is never freed (reachable from a static list, so leak checkers stay
/// quiet). Never throws: out of memory, the parts are left where they are.
template <class... Parts>
void keep_forever(Parts&&... parts) noexcept {
  static std::mutex m;
  static auto* kept = new std::vector<void*>();  // NOLINT(cppcoreguidelines-owning-memory)
  try {
    const std::lock_guard lk(m);
    kept->reserve(kept->size() + 1);
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): kept for good on purpose
    kept->push_back(new std::tuple<std::remove_cvref_t<Parts>...>(std::move(parts)...));
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; nothing better to do
  }
}

}  // namespace tether::detail
