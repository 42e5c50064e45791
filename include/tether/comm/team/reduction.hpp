#pragma once
/// \file
/// The thread team's non-blocking operations in flight and their rank-order reductions (host loops, or
/// kernels of an execution space), carried out by the team's progress thread.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "tether/core/collectives.hpp"
#include "tether/core/kernels.hpp"

namespace tether::comm {

namespace detail {

/// A non-blocking collective in flight (all-reduce, broadcast, election): posted by each worker, carried out
/// by the team's progress thread once every worker has posted.
struct pending_reduction {
  enum class phase { collecting, queued, running, done, cancelled };
  std::vector<const void*> send;
  std::vector<void*> recv;
  std::size_t count = 0;
  std::uint64_t seq = 0;             // its place in every worker's sequence of non-blocking operations
  long tag = 0;                      // must agree across workers too (a broadcast's root)
  const char* what = "iallreduce_sum";  // the operation, for error messages
  int posted = 0;
  phase state = phase::collecting;
  std::function<void(pending_reduction&)> reduce;
  std::string failure;  // set when the workers disagreed on the size or the tag, or on a fault
  bool fault = false;   // the failure is a fault of the system (a thread it refused), not the workers' input
};

/// The rank-order sum of a pending reduction on the host, `block` elements at a time: recv[r] = send[0] +
/// send[1] + ... for every r, the running sum of a block kept in a buffer that stays in the L1 cache.
template <class T>
void reduce_in_rank_order(pending_reduction& op, std::size_t block) {
  std::vector<T> acc(std::min(block, op.count));
  const std::size_t p = op.send.size();
  for (std::size_t lo = 0; lo < op.count; lo += block) {
    const std::size_t len = std::min(block, op.count - lo);
    const T* s0 = static_cast<const T*>(op.send[0]) + lo;
    for (std::size_t i = 0; i < len; ++i) acc[i] = s0[i];
    for (std::size_t r = 1; r < p; ++r) {
      const T* s = static_cast<const T*>(op.send[r]) + lo;
      for (std::size_t i = 0; i < len; ++i) acc[i] += s[i];
    }
    for (std::size_t r = 0; r < p; ++r) std::memcpy(static_cast<T*>(op.recv[r]) + lo, acc.data(), len * sizeof(T));
  }
}

/// The rank-order sum of a pending reduction by kernels of an execution space (buffers in its memory):
/// recv[0] = send[0] + send[1] + ..., then copied into every other recv buffer.
template <class T, class Exec>
void reduce_in_rank_order_on(const Exec& exec, pending_reduction& op) {
  const std::size_t p = op.send.size();
  if (op.count == 0) return;
  T* dst = static_cast<T*>(op.recv[0]);
  std::vector<const T*> src(p);
  for (std::size_t r = 0; r < p; ++r) src[r] = static_cast<const T*>(op.send[r]);
  exec.parallel_for(op.count, kernels::copy<T>{src[0], dst});
  tether::detail::accumulate_in_order<T>(exec, op.count, dst, std::span<const T* const>(src).subspan(1));
  for (std::size_t r = 1; r < p; ++r)
    exec.parallel_for(op.count, kernels::copy<T>{dst, static_cast<T*>(op.recv[r])});
  tether::detail::fence(exec);
}

}  // namespace detail

}  // namespace tether::comm
