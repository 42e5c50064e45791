#pragma once
/// \file
/// comm::mpi_environment: RAII for MPI_Init_thread / MPI_Finalize.

#include <mpi.h>

#include <exception>
#include <string>

#include "tether/comm/mpi/support.hpp"
#include "tether/core/error.hpp"

namespace tether::comm {

/// Options of mpi_environment.
struct mpi_environment_options {
  int requested = MPI_THREAD_MULTIPLE;  ///< thread level asked of MPI_Init_thread
  int required = MPI_THREAD_SERIALIZED; ///< below this level the constructor throws (hierarchical needs it)
  bool abort_on_exception = true;       ///< destroyed by an exception: MPI_Abort instead of a hanging Finalize
};

/// RAII for MPI_Init_thread / MPI_Finalize, for programs that want one. Does nothing (and finalizes nothing)
/// when MPI is already initialized by the caller.
class mpi_environment {
 public:
  using options = mpi_environment_options;

  mpi_environment(int& argc, char**& argv, options o = {}) : opt_(o) { init(&argc, &argv); }
  explicit mpi_environment(options o = {}) : opt_(o) { init(nullptr, nullptr); }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  mpi_environment(mpi_environment&&) = delete;
  mpi_environment& operator=(mpi_environment&&) = delete;

  ~mpi_environment() {
    if (!owns_) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    if (opt_.abort_on_exception && std::uncaught_exceptions() > exceptions_at_start_) {
      MPI_Abort(MPI_COMM_WORLD, 1);
      return;
    }
    MPI_Finalize();
  }

  /// The thread level MPI provides (MPI_THREAD_SINGLE ... MPI_THREAD_MULTIPLE).
  [[nodiscard]] int provided() const noexcept { return provided_; }
  /// True when this object initialized MPI (and will finalize it).
  [[nodiscard]] bool owns() const noexcept { return owns_; }

  /// A readable name of a thread level.
  [[nodiscard]] static const char* level_name(int level) noexcept {
    if (level == MPI_THREAD_SINGLE) return "MPI_THREAD_SINGLE";
    if (level == MPI_THREAD_FUNNELED) return "MPI_THREAD_FUNNELED";
    if (level == MPI_THREAD_SERIALIZED) return "MPI_THREAD_SERIALIZED";
    if (level == MPI_THREAD_MULTIPLE) return "MPI_THREAD_MULTIPLE";
    return "an unknown thread level";
  }

 private:
  void init(int* argc, char*** argv) {
    exceptions_at_start_ = std::uncaught_exceptions();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) throw runtime_error("tether: mpi_environment: MPI was already finalized");
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized != 0) {
      MPI_Query_thread(&provided_);
    } else {
      const int rc = MPI_Init_thread(argc, argv, opt_.requested, &provided_);
      if (rc != MPI_SUCCESS)
        throw runtime_error(tether::detail::concat("tether: MPI_Init_thread failed: ", detail::mpi_error_text(rc)));
      owns_ = true;
    }
    if (provided_ < opt_.required) {
      const std::string msg = tether::detail::concat(
          "tether: mpi_environment: MPI provides ", level_name(provided_), " but ", level_name(opt_.required),
          " is required (requested ", level_name(opt_.requested), ")");
      if (owns_) MPI_Finalize();
      owns_ = false;
      throw runtime_error(msg);
    }
  }

  options opt_;
  int provided_ = MPI_THREAD_SINGLE;
  bool owns_ = false;
  int exceptions_at_start_ = 0;
};

}  // namespace tether::comm
