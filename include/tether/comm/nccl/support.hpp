#pragma once
/// \file
/// What comm::nccl's parts share: NCCL datatypes, the execution-space traits it needs, the options every
/// worker must agree on, the state of a host wait, and the device guard.

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "tether/core/error.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/detail/cuda_check.hpp"

namespace tether::comm {

namespace detail {

/// The NCCL datatype of an element type (integers of 1, 4 and 8 bytes, float, double).
template <class T>
[[nodiscard]] constexpr ncclDataType_t nccl_datatype() {
  using U = std::remove_cv_t<T>;
  static_assert((std::is_integral_v<U> && !std::is_same_v<U, bool> && sizeof(U) != 2) ||
                    std::is_same_v<U, float> || std::is_same_v<U, double>,
                "tether::comm::nccl: collectives take float, double or 1-, 4- or 8-byte integers");
  if constexpr (std::is_same_v<U, float>)
    return ncclFloat32;
  else if constexpr (std::is_same_v<U, double>)
    return ncclFloat64;
  else if constexpr (std::is_signed_v<U>) {
    if constexpr (sizeof(U) == 1)
      return ncclInt8;
    else if constexpr (sizeof(U) == 4)
      return ncclInt32;
    else
      return ncclInt64;
  } else {
    if constexpr (sizeof(U) == 1)
      return ncclUint8;
    else if constexpr (sizeof(U) == 4)
      return ncclUint32;
    else
      return ncclUint64;
  }
}

/// An execution space whose kernels run on a CUDA stream it names (`exec.stream`, as exec::cuda).
template <class Exec>
concept cuda_stream_space = std::same_as<typename Exec::memory_space, mem::cuda> && requires(const Exec& e) {
  { e.stream } -> std::convertible_to<cudaStream_t>;
};

/// An execution space of GPU memory (exec::cuda, Thrust's CUDA system, ...).
template <class Exec>
concept cuda_memory_space = std::same_as<typename Exec::memory_space, mem::cuda>;

/// The options every worker of a communicator must share (the device may differ).
struct nccl_agreed {
  double timeout;
  int group_size;
};

/// What a host wait does after one poll of NCCL's asynchronous state (nccl's waits, polled by
/// tether::detail::poll_until, and request::test()): keep waiting, stop because the communicator settled,
/// fail on an NCCL error, or fail because `elapsed` seconds exceeded a positive `timeout` (a peer may have
/// died). An error wins over a timeout; `settling` waits for the communicator's state itself (after a
/// non-blocking NCCL call).
enum class nccl_poll { wait, settled, error, timed_out };

[[nodiscard]] constexpr nccl_poll nccl_poll_step(ncclResult_t state, bool settling, double elapsed,
                                                 double timeout) noexcept {
  if (state != ncclSuccess && state != ncclInProgress) return nccl_poll::error;
  if (settling && state == ncclSuccess) return nccl_poll::settled;
  if (timeout > 0 && elapsed > timeout) return nccl_poll::timed_out;
  return nccl_poll::wait;
}

/// Makes `device` current for a scope and restores the previous one. The throwing constructor reports a
/// failed cudaGetDevice/cudaSetDevice as tether::runtime_error (naming `rank`); the std::nothrow one, for
/// destructors and cleanup, ignores them (the cleanup then runs on whatever device is current).
class nccl_device_guard {
 public:
  /// A negative `device` does nothing.
  nccl_device_guard(int device, int rank) {
    if (device < 0) return;
    int current = -1;
    exec::detail::cuda_check(cudaGetDevice(&current), "comm::nccl: rank ", rank, ": cudaGetDevice");
    if (current == device) return;
    exec::detail::cuda_check(cudaSetDevice(device), "comm::nccl: rank ", rank, ": cudaSetDevice");
    previous_ = current;
  }
  nccl_device_guard(int device, std::nothrow_t) noexcept {
    if (device < 0 || cudaGetDevice(&previous_) != cudaSuccess || previous_ == device) {
      previous_ = -1;
      return;
    }
    if (cudaSetDevice(device) != cudaSuccess) previous_ = -1;
  }
  nccl_device_guard(const nccl_device_guard&) = delete;
  nccl_device_guard& operator=(const nccl_device_guard&) = delete;
  ~nccl_device_guard() {
    if (previous_ >= 0) static_cast<void>(cudaSetDevice(previous_));
  }

 private:
  int previous_ = -1;
};

}  // namespace detail

}  // namespace tether::comm
