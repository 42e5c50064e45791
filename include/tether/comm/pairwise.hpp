#pragma once
/// \file
/// What the pairwise links of every communicator share (the pairwise tier, docs/concepts.md#pairwise-tier):
/// their options and counters, and the rules of a serve callback. The links themselves are
/// comm/team/pairwise.hpp (the thread team) and comm/mpi/pairwise.hpp (comm::mpi).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

/// Options of a pairwise link, given to the communicator's `open_pairs(bytes, options)`.
struct pair_options {
  /// Seconds an exchange waits for its peer before the peer counts as lost (and `finish`/`sync` wait for a
  /// silent worker). Must be finite and > 0.
  double timeout = 60.0;
};

/// What one worker's link did (each exchange counted once on each side).
struct pair_counters {
  std::uint64_t started = 0;  ///< exchanges this worker started
  std::uint64_t done = 0;     ///< of those, answered by the peer (crossings included)
  std::uint64_t crossed = 0;  ///< of those, met by the peer's own exchange with this worker (no serve on either side)
  std::uint64_t lost = 0;     ///< of those, lost: the peer was gone, refused, or did not answer in time
  std::uint64_t served = 0;   ///< exchanges other workers started with this one, answered by serve
  std::uint64_t swaps = 0;    ///< agreed swaps completed (the replay mode)
};

/// The pairwise link SwarmSGD needs: a tether::pairwise_link that also starts an exchange without waiting and
/// tests it later (`start`, `test`, `wait`, `in_flight`: the non-blocking variant), swaps with a peer that names
/// this worker too (`swap`: the replay mode's agreed schedule), and ends with barriers that keep serving (`sync`,
/// `finish`). The thread team's team_pairs and comm::mpi's mpi_pairs model it. See
/// docs/algorithms/swarm_sgd.md#the-pairwise-link.
template <class L>
concept gossip_link =
    pairwise_link<L> &&
    requires(L& l, const L& cl, int peer, std::span<const std::byte> send, std::span<std::byte> recv,
             void (*serve)(int, std::span<const std::byte>, std::span<std::byte>)) {
      { l.start(peer, send, recv) } -> std::same_as<std::optional<pair_status>>;
      { l.test(serve) } -> std::same_as<std::optional<pair_status>>;
      { l.wait(serve) } -> std::same_as<pair_status>;
      { cl.in_flight() } -> std::convertible_to<bool>;
      { l.swap(peer, send, recv) } -> std::same_as<pair_status>;
      l.sync(serve);
      l.finish(serve);
      { cl.counters() } -> std::convertible_to<const pair_counters&>;
    };

namespace detail {

/// Checks a link's options (tether::error naming the field).
inline void validate_pair_options(const pair_options& o, std::size_t bytes) {
  tether::detail::require(std::isfinite(o.timeout) && o.timeout > 0.0,
                          "open_pairs: timeout must be a finite number of seconds > 0, got timeout = ", o.timeout);
  tether::detail::require(bytes >= 1, "open_pairs: bytes (the largest message) must be >= 1, got bytes = ", bytes);
}

/// Calls a serve callback: `serve(from, message, reply)` writes this worker's reply (all of `reply`) to the
/// message a peer started an exchange with.
template <class Serve>
void call_serve(Serve& serve, int from, std::span<const std::byte> message, std::span<std::byte> reply) {
  static_assert(std::is_invocable_v<Serve&, int, std::span<const std::byte>, std::span<std::byte>>,
                "tether: a pairwise link's serve callback is called as serve(int from, std::span<const std::byte> "
                "message, std::span<std::byte> reply) (see docs/concepts.md#pairwise-tier)");
  serve(from, message, reply);
}

}  // namespace detail

}  // namespace tether::comm
