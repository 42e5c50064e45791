#pragma once
/// \file
/// The ring all-reduce of comm::mpi's polled (timeout > 0) path for large floating-point buffers: a
/// reduce-scatter then an all-gather over MPI_Isend / MPI_Irecv, every wait polled against the timeout.
///
/// Why not MPI_Iallreduce: Open MPI 4.1 runs MPI_Iallreduce through libnbc, whose algorithm for up to 4 ranks
/// reduces the whole buffer to one rank and broadcasts it back (2 N*s on the critical path, through temporary
/// buffers); at 2 ranks and 64 MiB it took 1.4-2.3x the blocking MPI_Allreduce (docs/benchmarks.md, "Communication
/// (MPI)"). Point-to-point messages progress under MPI_Test as fast as under the blocking calls, and the ring
/// moves the all-reduce's 2(p-1)/p N*s per rank. Each chunk of the buffer is reduced by one rank and then
/// copied to the others, so every rank ends with the same bits.

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "tether/comm/mpi/support.hpp"
#include "tether/core/shard_layout.hpp"

namespace tether::comm::detail {

/// Buffers of at least this many bytes take the ring (below it, MPI_Iallreduce's latency wins).
inline constexpr std::size_t ring_allreduce_min_bytes = std::size_t{64} << 10;
/// Elements are sent in segments of at most this many bytes, each reduced as soon as it arrived (while it is
/// still in cache) and while the next ones are in flight.
inline constexpr std::size_t ring_segment_bytes = std::size_t{256} << 10;
/// The tag of the ring's messages (on comm::mpi's private communicator for them).
inline constexpr int ring_tag = 0x7e7e;

/// dst[i] = a[i] + b[i] (dst may be a).
template <class T>
void ring_add(T* dst, const T* a, const T* __restrict b, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = a[i] + b[i];
}
/// dst[i] = (a[i] + b[i]) * factor (dst may be a): the last addition of a scaled sum.
template <class T>
void ring_add_scaled(T* dst, const T* a, const T* __restrict b, std::size_t n, T factor) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = (a[i] + b[i]) * factor;
}

/// Sum over the ranks of `comm` of every rank's `send`, times `factor`, into `recv` (n elements each; in place
/// when send == recv), as a ring reduce-scatter then a ring all-gather over the shards of
/// shard_layout(n, size). The factor multiplies each element once, after its last addition: the same bits as
/// the sum followed by a pass of `recv[i] *= factor`. `size` must be at least 2.
/// `scratch` receives one shard at a time; `wait(reqs, what)` completes requests (comm::mpi::wait_all:
/// polled against the timeout) and `check(rc, call)` turns an MPI error into tether::runtime_error.
template <class T, class Wait, class Check>
void ring_allreduce_sum(MPI_Comm comm, int rank, int size, const T* send, T* recv, std::size_t n,
                        std::size_t max_count, std::vector<std::byte>& scratch, Wait&& wait, Check&& check,
                        T factor = T(1)) {
  static_assert(std::is_floating_point_v<T>, "ring_allreduce_sum: floating-point element types only");
  const shard_layout layout(n, static_cast<std::size_t>(size));
  std::size_t largest = 0;
  for (int s = 0; s < size; ++s) largest = std::max(largest, layout.count(static_cast<std::size_t>(s)));
  if (scratch.size() < largest * sizeof(T)) scratch.resize(largest * sizeof(T));
  T* tmp = reinterpret_cast<T*>(scratch.data());
  const MPI_Datatype dt = mpi_datatype<T>();
  const std::size_t segment = std::max<std::size_t>(1, std::min(max_count, ring_segment_bytes / sizeof(T)));
  const int next = (rank + 1) % size;
  const int prev = (rank + size - 1) % size;
  auto shard = [&](int k) { return static_cast<std::size_t>(((k % size) + size) % size); };

  std::vector<MPI_Request> recvs;
  std::vector<MPI_Request> sends;
  // One step of either phase: send shard `out` (from `from`) to the next rank, receive shard `in` from the
  // previous one into `into` (+ the shard's begin), and call reduce(lo, len) on each received segment.
  auto step = [&](std::size_t out, const T* from, std::size_t in, T* into_base, bool into_is_shard, auto reduce) {
    recvs.clear();
    sends.clear();
    const std::size_t in_begin = layout.begin(in);
    const std::size_t in_count = layout.count(in);
    const std::size_t out_begin = layout.begin(out);
    const std::size_t out_count = layout.count(out);
    for (std::size_t lo = 0; lo < in_count; lo += segment) {
      recvs.push_back(MPI_REQUEST_NULL);
      T* dst = into_is_shard ? into_base + in_begin + lo : into_base + lo;
      check(MPI_Irecv(dst, static_cast<int>(std::min(segment, in_count - lo)), dt, prev, ring_tag, comm,
                      &recvs.back()),
            "MPI_Irecv (ring all-reduce)");
    }
    for (std::size_t lo = 0; lo < out_count; lo += segment) {
      sends.push_back(MPI_REQUEST_NULL);
      check(MPI_Isend(from + out_begin + lo, static_cast<int>(std::min(segment, out_count - lo)), dt, next,
                      ring_tag, comm, &sends.back()),
            "MPI_Isend (ring all-reduce)");
    }
    std::size_t j = 0;
    for (std::size_t lo = 0; lo < in_count; lo += segment, ++j) {
      wait(std::span<MPI_Request>(&recvs[j], 1), "MPI_Allreduce");
      reduce(in_begin + lo, std::min(segment, in_count - lo), lo);
    }
    wait(std::span<MPI_Request>(sends), "MPI_Allreduce");
  };

  // Reduce-scatter: in step k rank r sends shard r-k (its partial sum; at k = 0 its own values) and adds
  // shard r-k-1 from the previous rank into its own values of it. After p-1 steps rank r holds shard r+1
  // summed over every rank.
  for (int k = 0; k + 1 < size; ++k) {
    const std::size_t out = shard(rank - k);
    const std::size_t in = shard(rank - k - 1);
    const T* from = k == 0 ? send : recv;
    const bool last = k + 2 == size;
    step(out, from, in, tmp, false, [&](std::size_t at, std::size_t len, std::size_t lo) {
      if (last && factor != T(1))
        ring_add_scaled(recv + at, send + at, tmp + lo, len, factor);
      else
        ring_add(recv + at, send + at, tmp + lo, len);
    });
  }
  // All-gather: in step k rank r passes on shard r+1-k (summed) and receives shard r-k in place.
  for (int k = 0; k + 1 < size; ++k)
    step(shard(rank + 1 - k), recv, shard(rank - k), recv, true, [](std::size_t, std::size_t, std::size_t) {});
}

}  // namespace tether::comm::detail
