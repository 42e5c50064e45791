#pragma once
/// \file
/// tether's exception types and the argument checks that raise them.

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tether {

/// Bad input: a size, count, period or rate that cannot work. The message names the argument and its value.
struct error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

/// A failure while running: a collective that cannot complete, a corrupt message, a non-finite value by option.
struct runtime_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Raised in the other workers of a team when one worker failed; the caller sees the original exception.
struct aborted : runtime_error {
  using runtime_error::runtime_error;
};

/// A bounded wait ran out of time: a peer may have died or stalled (comm::mpi's and comm::nccl's timeouts).
/// The message names the operation, the worker and the limit.
struct timeout : runtime_error {
  using runtime_error::runtime_error;
};

/// Raised inside a communicator's bounded wait when a rank that already finished its run (its optimizer's
/// finish()) never joins the collective this rank waits in: that rank stopped early. The optimizer turns it
/// into the error every rank raises, naming the rank, its step count and the others' (comm::mpi).
struct peer_finished : error {
  using error::error;
};

namespace detail {

template <class... A>
[[nodiscard]] std::string concat(A&&... a) {
  std::ostringstream os;
  (os << ... << std::forward<A>(a));
  return os.str();
}

/// Throws tether::error with the concatenated message when `ok` is false.
template <class... A>
void require(bool ok, A&&... a) {
  if (!ok) throw error(concat("tether: ", std::forward<A>(a)...));
}

/// Throws tether::error when the send and receive buffers of a non-blocking sum differ in size.
inline void require_send_recv(std::size_t send, std::size_t recv) {
  require(send == recv, "iallreduce_sum: send and recv sizes differ: send has ", send, ", recv has ", recv);
}

}  // namespace detail
}  // namespace tether
