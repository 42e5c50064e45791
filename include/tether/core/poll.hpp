#pragma once
/// \file
/// tether::detail::poll_until: the one bounded wait of tether's communicators. It polls a non-blocking test
/// (MPI_Testall, a CUDA event and NCCL's asynchronous state, a pairwise exchange) until it reports completion,
/// and throws tether::timeout once a positive time limit has passed.

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "tether/core/error.hpp"

namespace tether::detail {

/// How poll_until spends its time: polls spun before it yields between polls, and polls between clock reads
/// (reading the clock costs more than MPI_Testall on a shared-memory transport).
struct poll_tuning {
  std::uint64_t spins_before_yield = 1024;
  std::uint64_t polls_per_clock_read = 256;
};

/// Calls `done()` until it returns true. With `timeout` > 0 seconds, once that much time has passed it calls
/// `on_timeout()` (which may clean up: comm::nccl aborts its communicator there) and throws tether::timeout
/// with the message it returns. `timeout` <= 0 waits for as long as it takes. `done()` runs before each clock
/// check, so an error it throws wins over a timeout.
template <class Done, class OnTimeout>
void poll_until(double timeout, Done&& done, OnTimeout&& on_timeout, poll_tuning tuning = {}) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  for (std::uint64_t spins = 1;; ++spins) {
    if (done()) return;
    if (spins >= tuning.spins_before_yield) std::this_thread::yield();
    if (timeout > 0 && spins % tuning.polls_per_clock_read == 0 &&
        std::chrono::duration<double>(clock::now() - start).count() > timeout)
      throw tether::timeout(std::string(on_timeout()));
  }
}

}  // namespace tether::detail
