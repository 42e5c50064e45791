#pragma once
/// \file
/// The ranks agree on the validity of their options before any collective that could hang: each rank finds
/// its first invalid option, one bounded MPI_Iallgather on the caller's communicator tells every rank which
/// ranks have one, and every rank throws the same tether::error naming the rank, the option and its value.
/// Without it a rank with a bad option throws alone and the others wait forever in MPI_Comm_dup.

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "tether/comm/mpi/support.hpp"
#include "tether/core/error.hpp"
#include "tether/core/poll.hpp"

namespace tether::comm::detail {

/// One option a rank checks: its name, its value (as a double: every such option is a number), whether it is
/// valid, and the rule it breaks when it is not. Every rank must check the same options in the same order.
struct option_check {
  const char* name = "";
  double value = 0.0;
  bool valid = true;
  const char* rule = "";
};

/// The wait of the agreement: the rank's own timeout when it is a positive number of seconds, the default
/// timeout (`fallback`) when the timeout is itself invalid (NaN), 0 (wait forever, as asked) when it is <= 0.
[[nodiscard]] inline double agreement_wait(double timeout, double fallback) noexcept {
  if (std::isnan(timeout)) return fallback;
  return timeout > 0 ? timeout : 0.0;
}

/// Collective over `comm`: every rank's first invalid option (its index in `checks` and its value) is
/// gathered with one MPI_Iallgather (16 bytes per rank) polled for at most `wait` seconds (tether::timeout
/// past it; `wait` <= 0 waits as long as it takes). When any rank has an invalid option, every rank throws the
/// same tether::error: `who`, the lowest such rank, the option, its value and the rule, and how many ranks
/// have one. `comm` must be valid and MPI initialized.
inline void agree_on_options(MPI_Comm comm, const char* who, std::span<const option_check> checks, double wait) {
  int size = 1;
  if (const int rc = MPI_Comm_size(comm, &size); rc != MPI_SUCCESS)
    throw runtime_error(tether::detail::concat("tether: ", who, ": MPI_Comm_size failed: ", mpi_error_text(rc)));
  double mine[2] = {-1.0, 0.0};  // index of the first invalid option (-1: none), its value
  for (std::size_t i = 0; i < checks.size(); ++i) {
    if (!checks[i].valid) {
      mine[0] = static_cast<double>(i);
      mine[1] = checks[i].value;
      break;
    }
  }
  std::vector<double> all(2 * static_cast<std::size_t>(size));
  MPI_Request r = MPI_REQUEST_NULL;
  if (const int rc = MPI_Iallgather(mine, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, comm, &r); rc != MPI_SUCCESS)
    throw runtime_error(tether::detail::concat("tether: ", who, ": MPI_Iallgather (options) failed: ",
                                               mpi_error_text(rc)));
  tether::detail::poll_until(
      wait,
      [&] {
        int done = 0;
        if (const int rc = MPI_Test(&r, &done, MPI_STATUS_IGNORE); rc != MPI_SUCCESS)
          throw runtime_error(tether::detail::concat("tether: ", who, ": MPI_Test (options) failed: ",
                                                     mpi_error_text(rc)));
        return done != 0;
      },
      [&] {
        return tether::detail::concat("tether: ", who, ": the ranks did not all construct it within ", wait,
                                      " s (checking every rank's options): a rank may have died or not started");
      });
  int first = -1;
  int count = 0;
  for (int k = 0; k < size; ++k) {
    const double index = all[2 * static_cast<std::size_t>(k)];
    if (index < 0) continue;
    if (first < 0) first = k;
    ++count;
  }
  if (first < 0) return;
  const auto at = 2 * static_cast<std::size_t>(first);
  const auto index = static_cast<std::size_t>(all[at]);
  const option_check& bad = checks[index];
  throw error(tether::detail::concat("tether: ", who, ": rank ", first, " has an invalid option: ", bad.name, " = ",
                                     all[at + 1], " (", bad.name, " ", bad.rule, ")",
                                     count > 1 ? tether::detail::concat("; ", count - 1, " more rank",
                                                                        count > 2 ? "s have" : " has",
                                                                        " an invalid option")
                                               : std::string()));
}

}  // namespace tether::comm::detail
