#pragma once
/// \file
/// tether's one check of a CUDA runtime call: the GPU execution spaces, their buffers and comm::nccl all
/// throw through it. Host code only (cuda_runtime_api.h).

#include <cuda_runtime_api.h>

#include "tether/core/error.hpp"

namespace tether::exec::detail {

/// Throws tether::runtime_error "tether: <what...> failed: <error name>: <error text>" when a CUDA runtime
/// call did not return cudaSuccess. `what` names the call and, where it helps, the worker (comm::nccl passes
/// "comm::nccl: rank ", r, ": ", call); the message is built only on failure.
template <class... What>
void cuda_check(cudaError_t e, const What&... what) {
  if (e != cudaSuccess)
    throw runtime_error(tether::detail::concat("tether: ", what..., " failed: ", cudaGetErrorName(e), ": ",
                                               cudaGetErrorString(e)));
}

}  // namespace tether::exec::detail
