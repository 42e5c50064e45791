#pragma once
/// \file
/// What comm::mpi's parts share: MPI datatypes of element types, CUDA-awareness, error texts, chunking above
/// INT_MAX, and the state of a non-blocking operation.

#include <mpi.h>
// Open MPI's extensions: MPIX_CUDA_AWARE_SUPPORT and MPIX_Query_cuda_support (CUDA-aware builds).
#if defined(OPEN_MPI) && __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif

#include <algorithm>
#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "tether/core/error.hpp"

namespace tether::comm {

namespace detail {

/// The MPI datatype of an arithmetic element type.
template <class T>
[[nodiscard]] MPI_Datatype mpi_datatype() {
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<U, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<U, long double>) return MPI_LONG_DOUBLE;
  else if constexpr (std::is_same_v<U, bool>) return MPI_CXX_BOOL;
  else if constexpr (std::is_integral_v<U> && std::is_signed_v<U>) {
    if constexpr (sizeof(U) == 1) return MPI_INT8_T;
    else if constexpr (sizeof(U) == 2) return MPI_INT16_T;
    else if constexpr (sizeof(U) == 4) return MPI_INT32_T;
    else return MPI_INT64_T;
  } else if constexpr (std::is_integral_v<U>) {
    if constexpr (sizeof(U) == 1) return MPI_UINT8_T;
    else if constexpr (sizeof(U) == 2) return MPI_UINT16_T;
    else if constexpr (sizeof(U) == 4) return MPI_UINT32_T;
    else return MPI_UINT64_T;
  } else {
    static_assert(std::is_arithmetic_v<U>, "tether::comm::mpi: collectives need an arithmetic element type");
    return MPI_BYTE;
  }
}

/// True when the MPI library accepts CUDA device pointers, asked at run time: Open MPI built with CUDA
/// support (MPIX_CUDA_AWARE_SUPPORT) whose MPIX_Query_cuda_support() says so. Other MPIs: false.
[[nodiscard]] inline bool mpi_cuda_aware() noexcept {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

/// The text of an MPI error code.
[[nodiscard]] inline std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return tether::detail::concat("MPI error code ", code);
  return std::string(text, static_cast<std::size_t>(std::max(len, 0)));
}

/// `f(offset, count)` for consecutive chunks of at most `max_count` elements covering [0, n).
template <class F>
void for_each_chunk(std::size_t n, std::size_t max_count, F&& f) {
  for (std::size_t lo = 0; lo < n; lo += max_count) f(lo, static_cast<int>(std::min(max_count, n - lo)));
}

/// The (score, rank) pair of MPI_DOUBLE_INT.
struct double_int {
  double value;
  int index;
};

/// A non-blocking operation of comm::mpi: its requests and what to do once they completed.
struct pending_mpi {
  std::vector<MPI_Request> requests;
  std::function<void()> on_complete;  // runs once, after every request completed
  bool completed = false;
  // The buffers of an election live here, so the request may outlive the caller's frame.
  double_int in{};
  double_int out{};
};

}  // namespace detail

}  // namespace tether::comm
