#pragma once
/// \file
/// Collectives on buffers in any memory space: `tether::allreduce_sum(exec, comm, v)`, `broadcast` and
/// `iallreduce_sum`, what the pulls (tether's and a user's, through the step environment) call instead of
/// the communicator directly. The execution space comes first, as in every tether function that takes one.
///
/// Host views go to the communicator's `std::span` collectives (the path every communicator has). Views in
/// another memory space (GPU memory) go to the communicator's `(exec, view)` overloads when it has them (the
/// thread team does: device-to-device copies and device reductions, no host round trip; comm::mpi does:
/// device pointers to a CUDA-aware MPI, else the staging below; comm::nccl does); otherwise they are staged
/// through host memory the execution space provides (pinned on CUDA), by the detail::staged_* helpers. See
/// docs/exec.md.

#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/kernels.hpp"
#include "tether/core/request.hpp"
#include "tether/core/view.hpp"

namespace tether::detail {

/// Waits for the kernels an execution space has queued (asynchronous device spaces); no-op otherwise.
template <class Exec>
void fence(const Exec& exec) {
  if constexpr (requires { exec.fence(); }) exec.fence();
}

/// dst[i] = dst[i] + src[0][i] + src[1][i] + ... for i in [0, n), added in the order of `src` (the same
/// bits as a host loop that adds the buffers one after another). Kernels run on `exec`.
template <class T, class Exec>
void accumulate_in_order(const Exec& exec, std::size_t n, T* dst, std::span<const T* const> src) {
  using kernel = kernels::accumulate<T>;
  for (std::size_t k = 0; k < src.size(); k += kernel::max_sources) {
    kernel f{dst, {}, 0};
    for (; f.count < kernel::max_sources && k + f.count < src.size(); ++f.count)
      f.src[f.count] = src[k + f.count];
    exec.parallel_for(n, f);
  }
}

/// An execution space that can stage its memory through host buffers (device spaces).
template <class Exec, class T>
concept stages_through_host = requires(const Exec& e, const T* cs, T* s, std::size_t n) {
  e.copy_to_host(cs, s, n);
  e.copy_from_host(cs, s, n);
  { e.template allocate_host<T>(n).data() } -> std::convertible_to<T*>;
};

/// The host buffer an execution space stages through (pinned memory on CUDA).
template <class Exec, class T>
using host_buffer_t = decltype(std::declval<const Exec&>().template allocate_host<T>(std::size_t{}));

/// A buffer in the execution space's memory when `Direct`, in the host memory it stages through otherwise.
template <class Exec, class T, bool Direct>
struct staging_buffer {
  using type = typename Exec::template buffer<T>;
};
template <class Exec, class T>
struct staging_buffer<Exec, T, false> {
  using type = host_buffer_t<Exec, T>;
};

/// allreduce_sum of a device buffer staged through host memory the execution space provides (pinned on
/// CUDA): copy out, the communicator's host all-reduce, copy back. Also used by communicators whose device
/// overloads fall back to staging (comm::mpi without a CUDA-aware MPI).
template <class Exec, class Comm, class T, class S>
void staged_allreduce_sum(const Exec& exec, Comm& comm, view<T, S> v) {
  static_assert(stages_through_host<Exec, T>,
                "tether: this communicator has no collectives for device memory and the "
                "execution space cannot stage through host memory (see docs/exec.md)");
  auto h = exec.template allocate_host<T>(v.size());
  fence(exec);
  exec.copy_to_host(v.data(), h.data(), v.size());
  comm.allreduce_sum(std::span<T>(h.data(), v.size()));
  exec.copy_from_host(h.data(), v.data(), v.size());
}

/// broadcast of a device buffer staged through host memory (the root copies out, every other worker copies
/// back in).
template <class Exec, class Comm, class T, class S>
void staged_broadcast(const Exec& exec, Comm& comm, view<T, S> v, int root) {
  static_assert(stages_through_host<Exec, T>,
                "tether: this communicator has no collectives for device memory and the "
                "execution space cannot stage through host memory (see docs/exec.md)");
  auto h = exec.template allocate_host<T>(v.size());
  fence(exec);
  if (comm.rank() == root) exec.copy_to_host(v.data(), h.data(), v.size());
  comm.broadcast(std::span<T>(h.data(), v.size()), root);
  if (comm.rank() != root) exec.copy_from_host(h.data(), v.data(), v.size());
}

/// iallreduce_sum of device buffers staged through host memory: `send` is copied out now, the host buffers
/// live in the request, and `recv` is written when the request is waited on.
template <class Exec, class Comm, class T, class S>
[[nodiscard]] request staged_iallreduce_sum(const Exec& exec, Comm& comm, view<const T, S> send,
                                            view<T, S> recv) {
  static_assert(stages_through_host<Exec, T>,
                "tether: this communicator has no collectives for device memory and the "
                "execution space cannot stage through host memory (see docs/exec.md)");
  using host_buffer = host_buffer_t<Exec, T>;
  struct staged {
    host_buffer send, recv;
    request inner;
  };
  const std::size_t n = send.size();
  auto st = std::make_shared<staged>(
      staged{exec.template allocate_host<T>(n), exec.template allocate_host<T>(n), {}});
  fence(exec);
  exec.copy_to_host(send.data(), st->send.data(), n);
  st->inner = comm.iallreduce_sum(std::span<const T>(st->send.data(), n), std::span<T>(st->recv.data(), n));
  return request(
      [st, exec, dst = recv.data(), n] {
        st->inner.wait();
        exec.copy_from_host(st->recv.data(), dst, n);
      },
      [st] { return st->inner.test(); });
}

}  // namespace tether::detail

namespace tether {

/// In-place sum over the workers of `comm` of a buffer in `exec`'s memory (every worker ends with the sum).
template <class Exec, class Comm, class T, class S>
void allreduce_sum(const Exec& exec, Comm& comm, view<T, S> v) {
  if constexpr (std::same_as<S, mem::host>) {
    comm.allreduce_sum(v.span());
  } else if constexpr (requires { comm.allreduce_sum(exec, v); }) {
    comm.allreduce_sum(exec, v);
  } else {
    detail::staged_allreduce_sum(exec, comm, v);
  }
}

/// Copies `root`'s buffer into every other worker's buffer (a buffer in `exec`'s memory).
template <class Exec, class Comm, class T, class S>
void broadcast(const Exec& exec, Comm& comm, view<T, S> v, int root) {
  if constexpr (std::same_as<S, mem::host>) {
    comm.broadcast(v.span(), root);
  } else if constexpr (requires { comm.broadcast(exec, v, root); }) {
    comm.broadcast(exec, v, root);
  } else {
    detail::staged_broadcast(exec, comm, v, root);
  }
}

/// Non-blocking sum over the workers: `recv` holds the sum of every worker's `send` once the request
/// completes (buffers in `exec`'s memory; neither may be touched before).
template <class Exec, class Comm, class T, class S>
[[nodiscard]] request iallreduce_sum(const Exec& exec, Comm& comm, view<const T, S> send, view<T, S> recv) {
  if constexpr (std::same_as<S, mem::host>) {
    return comm.iallreduce_sum(std::span<const T>(send.data(), send.size()), recv.span());
  } else if constexpr (requires { comm.iallreduce_sum(exec, send, recv); }) {
    return comm.iallreduce_sum(exec, send, recv);
  } else {
    return detail::staged_iallreduce_sum(exec, comm, send, recv);
  }
}

}  // namespace tether
