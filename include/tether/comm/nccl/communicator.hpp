#pragma once
/// \file
/// comm::nccl: one worker per GPU (see comm/nccl.hpp for the whole picture): construction from a host
/// communicator, host and device collectives, elections, groups, bounded host waits.

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/comm/nccl/key.hpp"
#include "tether/comm/nccl/options.hpp"
#include "tether/comm/nccl/support.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/poll.hpp"
#include "tether/core/request.hpp"
#include "tether/core/stats.hpp"
#include "tether/core/view.hpp"

namespace tether::comm {

/// One worker per GPU over an NCCL communicator. Satisfies tether::communicator; see the file comment.
class nccl {
 public:
  using options = nccl_options;

  /// A fresh NCCL id (ncclGetUniqueId), to hand to every worker of a new communicator.
  [[nodiscard]] static ncclUniqueId unique_id() {
    ncclUniqueId id{};
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess)
      throw runtime_error(
          tether::detail::concat("tether: comm::nccl: ncclGetUniqueId failed: ", ncclGetErrorString(r)));
    return id;
  }

  /// Throws tether::error when an option cannot work (before any CUDA or NCCL call).
  static void validate(const options& o) {
    tether::detail::require(!std::isnan(o.timeout),
                            "comm::nccl: timeout must be a number of seconds, got timeout = ", o.timeout);
    tether::detail::require(
        o.device >= -1, "comm::nccl: device must be >= 0 (or -1: rank % devices), got device = ", o.device);
    tether::detail::require(o.group_size >= 0,
                            "comm::nccl: group_size must be >= 0, got group_size = ", o.group_size);
  }

  /// Worker `rank` of `size` on the NCCL communicator named by `id` (from unique_id(), distributed by the
  /// caller). Collective: blocks until every worker has joined, or until the timeout.
  nccl(const ncclUniqueId& id, int size, int rank, options o = {}) : opt_(o), counters_(&own_counters_) {
    check_shape(size, rank);
    try {
      open_device(rank);
      connect(id);
    } catch (...) {
      release(true);
      throw;
    }
  }

  /// Worker `host.rank()` of `host.size()`: a thread of a tether::team, a comm::mpi rank, any tether
  /// communicator. Collective over `host`: rank 0 makes the id and `host` broadcasts it with a fingerprint of
  /// the options that must agree (timeout, group_size; devices may differ). Every worker checks its options
  /// and opens its device first, and all agree (one host all-reduce) before NCCL is touched, so a worker
  /// with bad options or without a usable GPU makes every worker throw instead of leaving them waiting.
  template <class Host>
  requires(communicator<Host> && !std::same_as<std::remove_cv_t<Host>, nccl>) explicit nccl(Host& host,
                                                                                            options o = {})
      : opt_(o), counters_(&own_counters_) {
    const int rank = host.rank();
    rank_ = rank;
    std::exception_ptr local;
    ncclUniqueId id{};
    try {
      check_shape(host.size(), rank);
      open_device(rank);
      if (rank == 0) id = unique_id();
    } catch (...) {
      local = std::current_exception();
    }
    // Rank 0's id and options fingerprint, then one sum of {failed, disagrees} over the workers.
    const std::uint64_t mine = options_fingerprint(detail::nccl_agreed{opt_.timeout, opt_.group_size});
    std::array<char, sizeof(std::uint64_t) + sizeof(ncclUniqueId)> blob{};
    if (rank == 0) {
      std::memcpy(blob.data(), &mine, sizeof mine);
      std::memcpy(blob.data() + sizeof mine, &id, sizeof id);
    }
    try {
      host.broadcast(std::span<char>(blob), 0);
      std::uint64_t root = 0;
      std::memcpy(&root, blob.data(), sizeof root);
      std::memcpy(&id, blob.data() + sizeof root, sizeof id);
      std::array<double, 2> flags{local ? 1.0 : 0.0, root != mine ? 1.0 : 0.0};
      host.allreduce_sum(std::span<double>(flags));
      if (local) std::rethrow_exception(local);
      if (flags[0] > 0.0)
        throw runtime_error(tether::detail::concat(
            "tether: comm::nccl: rank ", rank, ": ", flags[0], " of ", host.size(),
            " workers could not set up (bad options or no usable GPU; each reports its error); no NCCL "
            "communicator was made"));
      tether::detail::require(
          flags[1] == 0.0, "rank ", rank,
          ": comm::nccl: workers disagree on the comm::nccl options timeout and group_size: "
          "pass the same values everywhere");
      connect(id);
    } catch (...) {
      release(true);
      throw;
    }
  }

  nccl(const nccl&) = delete;
  nccl& operator=(const nccl&) = delete;
  nccl(nccl&&) = delete;
  nccl& operator=(nccl&&) = delete;

  /// Finalizes and destroys the NCCL communicator (bounded by the timeout; aborted instead when it fails,
  /// when the communicator was aborted, or when the destructor runs during an exception).
  ~nccl() { release(std::uncaught_exceptions() > 0); }

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }
  /// This worker's group (`group_size` consecutive ranks, split off by ncclCommSplit); the communicator
  /// itself when there is one group.
  [[nodiscard]] nccl& group() noexcept { return group_ ? *group_ : *this; }
  [[nodiscard]] int group_id() const noexcept { return group_id_; }
  [[nodiscard]] int group_count() const noexcept { return group_count_; }

  /// Payload bytes moved by this worker (its group's collectives included).
  [[nodiscard]] const comm_counters& counters() const noexcept { return *counters_; }
  /// Adds traffic done directly on native() or stream().
  void count(std::uint64_t sent, std::uint64_t received) noexcept { counters_->add(sent, received); }

  /// The NCCL communicator (nullptr once aborted). Owned by this object.
  [[nodiscard]] ncclComm_t native() const noexcept { return comm_; }
  /// The CUDA device of this worker and the stream NCCL runs on.
  [[nodiscard]] int device() const noexcept { return device_; }
  [[nodiscard]] cudaStream_t stream() const noexcept { return stream_; }
  [[nodiscard]] const options& opts() const noexcept { return opt_; }
  /// True until the communicator is aborted (after an NCCL error or a timeout).
  [[nodiscard]] bool usable() const noexcept { return comm_ != nullptr; }

  /// Every worker waits here (an all-reduce of one int; not counted).
  void barrier() {
    auto* d = scratch<int>(1);
    const detail::nccl_device_guard guard(device_, rank_);
    cuda(cudaMemsetAsync(d, 0, sizeof(int), stream_), "cudaMemsetAsync");
    call(ncclAllReduce(d, d, 1, ncclInt32, ncclSum, comm_, stream_), "ncclAllReduce (barrier)");
    wait_stream("ncclAllReduce (barrier)");
  }

  /// In-place sum of host memory over the workers: copied to the device, ncclAllReduce, copied back.
  template <class T>
  void allreduce_sum(std::span<T> data) {
    const std::size_t bytes = data.size_bytes();
    if (!data.empty()) {
      T* d = scratch<T>(data.size());
      const detail::nccl_device_guard guard(device_, rank_);
      cuda(cudaMemcpyAsync(d, data.data(), bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      call(ncclAllReduce(d, d, data.size(), detail::nccl_datatype<T>(), ncclSum, comm_, stream_),
           "ncclAllReduce");
      wait_stream("ncclAllReduce");
      copy_back(data.data(), d, bytes);
    }
    const std::uint64_t moved = allreduce_bytes(data.size(), sizeof(T));
    count(moved, moved);
  }

  /// Non-blocking sum of host memory: `send` is copied to the device now; `recv` is written by wait().
  /// Neither buffer may be touched, and this communicator must live, until wait() returns.
  template <class T>
  [[nodiscard]] request iallreduce_sum(std::span<const T> send, std::span<T> recv) {
    tether::detail::require_send_recv(send.size(), recv.size());
    const std::uint64_t moved = allreduce_bytes(recv.size(), sizeof(T));
    count(moved, moved);
    if (recv.empty()) return {};
    require_usable("iallreduce_sum");
    const detail::nccl_device_guard guard(device_, rank_);
    auto op = std::make_shared<pending>(this);
    cuda(cudaMallocAsync(&op->buffer, send.size_bytes(), stream_), "cudaMallocAsync");
    cuda(cudaMemcpyAsync(op->buffer, send.data(), send.size_bytes(), cudaMemcpyHostToDevice, stream_),
         "cudaMemcpyAsync");
    call(ncclAllReduce(op->buffer, op->buffer, send.size(), detail::nccl_datatype<T>(), ncclSum, comm_,
                       stream_),
         "ncclAllReduce");
    op->record();
    return request(
        [op, dst = static_cast<void*>(recv.data()), bytes = recv.size_bytes()] {
          op->self->wait_event(op->event, op->what);
          op->self->copy_back(dst, op->buffer, bytes);
        },
        [op] { return op->done(); });
  }

  /// Copies `root`'s host buffer into every other worker's (through the device: ncclBroadcast).
  template <class T>
  void broadcast(std::span<T> data, int root) {
    check_root(root, "broadcast");
    if (!data.empty()) {
      const std::size_t bytes = data.size_bytes();
      T* d = scratch<T>(data.size());
      const detail::nccl_device_guard guard(device_, rank_);
      if (rank_ == root)
        cuda(cudaMemcpyAsync(d, data.data(), bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      call(ncclBroadcast(d, d, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
      wait_stream("ncclBroadcast");
      if (rank_ != root) copy_back(data.data(), d, bytes);
    }
    count_broadcast(data.size_bytes(), root);
  }

  /// In-place sum of GPU memory (see the file comment): starts after the work queued on `exec` (its stream
  /// when it names one, otherwise exec.fence()) and returns when NCCL is done (a bounded host wait). `v`
  /// must live on this worker's device.
  template <class Exec, class T>
  requires detail::cuda_memory_space<Exec>
  void allreduce_sum(const Exec& exec, view<T, mem::cuda> v) {
    if (!v.empty())
      ordered(exec, "ncclAllReduce", [&] {
        return ncclAllReduce(v.data(), v.data(), v.size(), detail::nccl_datatype<T>(), ncclSum, comm_,
                             stream_);
      });
    const std::uint64_t moved = allreduce_bytes(v.size(), sizeof(T));
    count(moved, moved);
  }

  /// Broadcast of GPU memory from `root`, ordered and waited for as allreduce_sum(exec, view).
  template <class Exec, class T>
  requires detail::cuda_memory_space<Exec>
  void broadcast(const Exec& exec, view<T, mem::cuda> v, int root) {
    check_root(root, "broadcast");
    if (!v.empty())
      ordered(exec, "ncclBroadcast", [&] {
        return ncclBroadcast(v.data(), v.data(), v.size(), detail::nccl_datatype<T>(), root, comm_, stream_);
      });
    count_broadcast(v.size() * sizeof(T), root);
  }

  /// Non-blocking sum of GPU memory: NCCL starts on the communicator's stream once the work queued on
  /// `exec` so far is done, and the request completes with a CUDA event recorded after it. Neither buffer
  /// may be touched until wait() returns. test() never blocks, but like wait() it aborts and throws on an
  /// NCCL error or once the timeout has passed since the call. In place when both are the same buffer.
  template <class Exec, class T>
  requires detail::cuda_memory_space<Exec>
  [[nodiscard]] request iallreduce_sum(const Exec& exec, view<const T, mem::cuda> send,
                                       view<T, mem::cuda> recv) {
    tether::detail::require_send_recv(send.size(), recv.size());
    const std::uint64_t moved = allreduce_bytes(recv.size(), sizeof(T));
    count(moved, moved);
    if (recv.empty()) return {};
    const detail::nccl_device_guard guard(device_, rank_);
    enter(exec, "ncclAllReduce (iallreduce_sum)");
    call(ncclAllReduce(send.data(), recv.data(), recv.size(), detail::nccl_datatype<T>(), ncclSum, comm_,
                       stream_),
         "ncclAllReduce");
    auto op = std::make_shared<pending>(this);
    op->record();
    return request([op] { op->self->wait_event(op->event, op->what); }, [op] { return op->done(); });
  }

  /// The (score, rank) min-reduction of an election: two ncclAllReduce (ncclMin) of one 8-byte key each, the
  /// score's order and then the id among the workers holding the best score (see nccl/key.hpp). The lowest
  /// finite score wins, compared as a double, ties go to the lowest rank, a non-finite score never wins
  /// (rank -1 and score 0 when no score is finite). 16 bytes each way.
  [[nodiscard]] election min_loc(double score) { return min_loc(score, rank_); }

  /// min_loc with an explicit index (>= 0) per worker; ties go to the lowest index.
  [[nodiscard]] election min_loc(double score, int index) {
    tether::detail::require(index >= 0, "comm::nccl: min_loc: index must be >= 0, got index = ", index);
    const std::uint64_t mine = detail::election_order(score);
    std::uint64_t best = min_u64(mine);
    const std::uint64_t id = min_u64(detail::election_id_key(mine, best, index));
    count(16, 16);
    const auto e = detail::election_decode(best, id);
    if (!e.finite) return {};
    return {e.score, e.id};
  }

  /// Collective check that every worker holds the same values: one ncclAllReduce (ncclMin of v and ~v). On
  /// a mismatch every worker throws tether::error naming the value and what each worker holds.
  void check_consistent(std::span<const consistency_item> items) {
    const std::size_t k = items.size();
    if (k == 0) return;
    std::vector<std::uint64_t> v(2 * k);
    for (std::size_t i = 0; i < k; ++i) {
      v[2 * i] = items[i].value;
      v[2 * i + 1] = ~items[i].value;
    }
    auto* d = scratch<std::uint64_t>(std::max<std::size_t>(2 * k, static_cast<std::size_t>(size_) + 1));
    const detail::nccl_device_guard guard(device_, rank_);
    cuda(cudaMemcpyAsync(d, v.data(), v.size() * sizeof(std::uint64_t), cudaMemcpyHostToDevice, stream_),
         "cudaMemcpyAsync");
    call(ncclAllReduce(d, d, v.size(), ncclUint64, ncclMin, comm_, stream_),
         "ncclAllReduce (consistency check)");
    wait_stream("ncclAllReduce (consistency check)");
    copy_back(v.data(), d, v.size() * sizeof(std::uint64_t));
    std::size_t bad = k;
    for (std::size_t i = 0; i < k && bad == k; ++i)
      if (v[2 * i] != ~v[2 * i + 1]) bad = i;
    if (bad == k) return;
    // Every worker saw the mismatch: gather each worker's value to name them (d[0] sends, d[1..p] receive).
    const std::uint64_t mine = items[bad].value;
    cuda(cudaMemcpyAsync(d, &mine, sizeof mine, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    call(ncclAllGather(d, d + 1, 1, ncclUint64, comm_, stream_), "ncclAllGather (consistency check)");
    wait_stream("ncclAllGather (consistency check)");
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    copy_back(all.data(), d + 1, all.size() * sizeof(std::uint64_t));
    tether::detail::throw_inconsistent(rank_, items[bad].what, all);
  }
  /// check_consistent for one value.
  void check_consistent(std::uint64_t value, const char* what) {
    const consistency_item item{value, what};
    check_consistent(std::span<const consistency_item>(&item, 1));
  }

  /// Waits for everything queued on the communicator's stream (the timeout and error polling apply).
  void synchronize() {
    const detail::nccl_device_guard guard(device_, rank_);
    wait_stream("comm::nccl synchronize");
  }

  /// Aborts the NCCL communicator (and its group's): operations in flight stop, later ones throw.
  void abort() noexcept {
    if (group_) group_->abort();
    if (comm_ != nullptr) static_cast<void>(ncclCommAbort(comm_));
    comm_ = nullptr;
  }

 private:
  using clock = std::chrono::steady_clock;

  /// A non-blocking operation: its completion event and, for host buffers, its device copy.
  struct pending {
    explicit pending(nccl* s) : self(s) {}
    pending(const pending&) = delete;
    pending& operator=(const pending&) = delete;
    ~pending() {
      const detail::nccl_device_guard guard(self->device_, std::nothrow);
      if (buffer != nullptr) static_cast<void>(cudaFreeAsync(buffer, self->stream_));
      if (event != nullptr) static_cast<void>(cudaEventDestroy(event));
    }
    void record() {
      self->cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
      self->cuda(cudaEventRecord(event, self->stream_), "cudaEventRecord");
    }
    /// request::test(): true once the event completed; otherwise one poll of NCCL's asynchronous state, so
    /// that an NCCL error or the timeout (counted from the start of the operation) aborts and throws here as
    /// in wait(), and `while (!r.test())` cannot spin forever on a dead peer.
    [[nodiscard]] bool done() const {
      self->require_usable(what);
      const detail::nccl_device_guard guard(self->device_, self->rank_);
      const cudaError_t e = cudaEventQuery(event);
      if (e == cudaSuccess) return true;
      if (e != cudaErrorNotReady) self->cuda(e, what);
      static_cast<void>(self->progress(what, false, seconds_since(start)));
      return false;
    }
    nccl* self;
    const char* what = "ncclAllReduce (iallreduce_sum)";
    clock::time_point start = clock::now();
    cudaEvent_t event = nullptr;
    void* buffer = nullptr;
  };

  /// Validates the options and the worker's place; records it.
  void check_shape(int size, int rank) {
    validate(opt_);
    tether::detail::require(size >= 1, "comm::nccl: size must be >= 1, got size = ", size);
    tether::detail::require(rank >= 0 && rank < size, "comm::nccl: rank must be in [0, ", size,
                            "), got rank = ", rank);
    tether::detail::require(opt_.group_size == 0 || size % opt_.group_size == 0, "comm::nccl: the ", size,
                            " workers must be a multiple of group_size (", opt_.group_size, ")");
    size_ = size;
    rank_ = rank;
  }

  /// Chooses and sets this worker's device, makes its stream and events.
  void open_device(int rank) {
    int count = 0;
    cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (count <= 0)
      throw runtime_error(
          tether::detail::concat("tether: comm::nccl: rank ", rank_, ": no CUDA device is visible"));
    device_ = opt_.device >= 0 ? opt_.device : rank % count;
    tether::detail::require(device_ < count, "rank ", rank_, ": comm::nccl: device = ", device_, " but only ",
                            count, " CUDA device(s) are visible");
    cuda(cudaSetDevice(device_), "cudaSetDevice");
    make_stream();
  }

  void make_stream() {
    cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    make_events();
  }

  void make_events() {
    cuda(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cuda(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }

  /// ncclCommInitRankConfig (non-blocking, so that the timeout applies to it too), then the group split.
  void connect(const ncclUniqueId& id) {
    const detail::nccl_device_guard guard(device_, rank_);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    const ncclResult_t r = ncclCommInitRankConfig(&comm, size_, id, rank_, &config);
    comm_ = comm;
    if (r != ncclSuccess && r != ncclInProgress) fail(r, "ncclCommInitRankConfig");
    settle("ncclCommInitRankConfig");
    make_groups(config);
  }

  void make_groups(ncclConfig_t& config) {
    const int gsize = opt_.group_size == 0 ? size_ : opt_.group_size;
    group_id_ = rank_ / gsize;
    group_count_ = size_ / gsize;
    if (gsize == size_) return;
    ncclComm_t child = nullptr;
    const ncclResult_t r = ncclCommSplit(comm_, group_id_, rank_, &child, &config);
    if (r != ncclSuccess && r != ncclInProgress) fail(r, "ncclCommSplit");
    // The child is polled like the parent: a temporary group object owns it from here.
    group_.reset(new nccl(child, *this, settling{}));
    group_->settle("ncclCommSplit");
    settle("ncclCommSplit");  // the parent may report the split in progress too
    group_->finish_group(*this);
  }

  struct settling {};
  // A group (split from `parent`) whose communicator may still be in creation (non-blocking split): it
  // shares the parent's device, options and counters; finish_group() completes it once settled.
  nccl(ncclComm_t comm, const nccl& parent, settling)
      : opt_(parent.opt_),
        rank_(parent.rank_),
        comm_(comm),
        device_(parent.device_),
        counters_(parent.counters_) {}

  void finish_group(const nccl& parent) {
    call(ncclCommCount(comm_, &size_), "ncclCommCount");
    call(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    group_id_ = parent.group_id_;
    group_count_ = parent.group_count_;
    // The parent's stream, not one of its own: NCCL kernels of the two communicators must not run
    // concurrently (NCCL's "Using multiple NCCL communicators concurrently"), and one stream serializes them
    // in the order they were called. The group has its own events; release() leaves the stream to the parent.
    stream_ = parent.stream_;
    owns_stream_ = false;
    make_events();
  }

  /// Frees everything; aborts the communicator when `abort_comm` (or when finalizing fails).
  void release(bool abort_comm) noexcept {
    if (group_) group_->release(abort_comm);
    group_.reset();
    const detail::nccl_device_guard guard(device_, std::nothrow);
    if (comm_ != nullptr) {
      bool clean = !abort_comm;
      if (clean) {
        try {
          // Flush what is queued, then free (ncclCommFinalize is non-blocking here: poll it).
          wait_stream("comm::nccl destructor");
          const ncclResult_t r = ncclCommFinalize(comm_);
          if (r != ncclSuccess && r != ncclInProgress) clean = false;
          if (clean) settle("ncclCommFinalize");
        } catch (...) {
          clean = false;
        }
      }
      if (comm_ != nullptr) static_cast<void>(clean ? ncclCommDestroy(comm_) : ncclCommAbort(comm_));
      comm_ = nullptr;
    }
    if (ready_ != nullptr) static_cast<void>(cudaEventDestroy(ready_));
    if (done_ != nullptr) static_cast<void>(cudaEventDestroy(done_));
    if (scratch_ != nullptr) static_cast<void>(cudaFree(scratch_));
    if (stream_ != nullptr && owns_stream_) static_cast<void>(cudaStreamDestroy(stream_));
    ready_ = done_ = nullptr;
    scratch_ = nullptr;
    stream_ = nullptr;
  }

  /// The device scratch buffer, grown to at least `n` elements of T (after a bounded wait for the stream).
  template <class T>
  T* scratch(std::size_t n) {
    require_usable("a collective");
    const std::size_t bytes = std::max<std::size_t>(n * sizeof(T), 64);
    if (bytes > scratch_bytes_) {
      const detail::nccl_device_guard guard(device_, rank_);
      // cudaFree synchronizes the device: first wait, bounded, for the communicator's stream (and its
      // group's, the same stream), so that only the caller's own kernels can delay it, never a dead peer.
      if (scratch_ != nullptr) wait_stream("comm::nccl scratch regrowth");
      if (scratch_ != nullptr) cuda(cudaFree(scratch_), "cudaFree");
      scratch_ = nullptr;
      scratch_bytes_ = 0;
      cuda(cudaMalloc(&scratch_, bytes), "cudaMalloc");
      scratch_bytes_ = bytes;
    }
    return static_cast<T*>(scratch_);
  }

  /// Orders the communicator's stream after the work queued on `exec` so far.
  template <class Exec>
  void enter(const Exec& exec, const char* what) {
    require_usable(what);
    if constexpr (detail::cuda_stream_space<Exec>) {
      cuda(cudaEventRecord(ready_, static_cast<cudaStream_t>(exec.stream)), "cudaEventRecord");
      cuda(cudaStreamWaitEvent(stream_, ready_, 0), "cudaStreamWaitEvent");
    } else if constexpr (requires { exec.fence(); }) {
      exec.fence();
    }
  }

  /// A blocking device collective: `start()` queues it on the communicator's stream after enter(), then the
  /// host waits for it, bounded by the timeout (wait_stream). So `exec`'s stream never waits on NCCL: a
  /// dead peer surfaces here, as an abort and a tether::runtime_error, and never as an unbounded
  /// cudaStreamSynchronize (exec.fence()) of the caller's stream.
  template <class Exec, class Start>
  void ordered(const Exec& exec, const char* what, Start&& start) {
    const detail::nccl_device_guard guard(device_, rank_);
    enter(exec, what);
    call(start(), what);
    wait_stream(what);
  }

  /// The minimum of one unsigned 64-bit value over the workers (ncclAllReduce with ncclMin, bounded wait).
  std::uint64_t min_u64(std::uint64_t v) {
    auto* d = scratch<std::uint64_t>(1);
    {
      const detail::nccl_device_guard guard(device_, rank_);
      cuda(cudaMemcpyAsync(d, &v, sizeof v, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
      call(ncclAllReduce(d, d, 1, ncclUint64, ncclMin, comm_, stream_), "ncclAllReduce (election)");
      wait_stream("ncclAllReduce (election)");
      copy_back(&v, d, sizeof v);
    }
    return v;
  }

  /// Copies `bytes` from the device to host memory on the stream and waits (after the operation completed).
  void copy_back(void* dst, const void* src, std::size_t bytes) {
    const detail::nccl_device_guard guard(device_, rank_);
    cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    wait_stream("cudaMemcpyAsync");
  }

  /// Waits for everything queued on the stream so far.
  void wait_stream(const char* what) {
    cuda(cudaEventRecord(done_, stream_), "cudaEventRecord");
    wait_event(done_, what);
  }

  /// Polls `event` and NCCL's asynchronous error until the event completes; aborts and throws on an NCCL
  /// error or after `timeout` seconds.
  void wait_event(cudaEvent_t event, const char* what) {
    require_usable(what);
    const detail::nccl_device_guard guard(device_, rank_);
    poll_until(what, [&] {
      const cudaError_t e = cudaEventQuery(event);
      if (e != cudaErrorNotReady) cuda(e, what);
      return e == cudaSuccess;
    });
  }

  /// After an NCCL call that may still be in progress (non-blocking communicator): polls its state.
  void settle(const char* what) {
    poll_until(
        what, [] { return false; }, true);
  }

  /// Polls until `done()`, or with `settling` until the communicator's state is ncclSuccess, by
  /// tether::detail::poll_until: each round reads NCCL's asynchronous state (an error aborts and throws), and
  /// past the timeout the communicator is aborted and tether::timeout thrown.
  template <class Done>
  void poll_until(const char* what, Done&& done, bool settling = false) {
    tether::detail::poll_until(
        opt_.timeout, [&] { return done() || progress(what, settling, 0.0); },
        [&] { return abort_on_timeout(what); });
  }

  /// One poll of NCCL's asynchronous state after `elapsed` seconds of waiting: true when settled (with
  /// `settling`); aborts and throws on an NCCL error or past the timeout (detail::nccl_poll_step).
  bool progress(const char* what, bool settling, double elapsed) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
    if (r != ncclSuccess) fail(r, "ncclCommGetAsyncError");
    switch (detail::nccl_poll_step(state, settling, elapsed, opt_.timeout)) {
      case detail::nccl_poll::settled:
        return true;
      case detail::nccl_poll::error:
        fail(state, what);
      case detail::nccl_poll::timed_out:
        fail_timeout(what);
      case detail::nccl_poll::wait:
        break;
    }
    return false;
  }

  [[nodiscard]] static double seconds_since(clock::time_point start) {
    return std::chrono::duration<double>(clock::now() - start).count();
  }

  /// Checks an NCCL call: in progress is settled, an error aborts and throws.
  void call(ncclResult_t r, const char* what) {
    if (r == ncclSuccess) return;
    if (r == ncclInProgress) {
      settle(what);
      return;
    }
    fail(r, what);
  }

  [[noreturn]] void fail(ncclResult_t r, const char* what) {
    std::string detail_text;
    if (comm_ != nullptr) {
      const char* last = ncclGetLastError(comm_);
      if (last != nullptr && *last != '\0') detail_text = tether::detail::concat(" (", last, ")");
    }
    abort();
    throw runtime_error(tether::detail::concat("tether: comm::nccl: rank ", rank_, ": ", what,
                                               " failed: ", ncclGetErrorString(r), detail_text,
                                               "; the communicator was aborted"));
  }

  /// Aborts the communicator after a wait ran out of time; returns the message of its tether::timeout.
  std::string abort_on_timeout(const char* what) {
    abort();
    return tether::detail::concat("tether: comm::nccl: rank ", rank_, ": ", what, " did not complete within ",
                                  opt_.timeout,
                                  " s: a worker may have died (comm::nccl timeout); the communicator was aborted");
  }

  [[noreturn]] void fail_timeout(const char* what) { throw tether::timeout(abort_on_timeout(what)); }

  /// Throws tether::runtime_error naming the CUDA call and its error (exec::detail::cuda_check).
  void cuda(cudaError_t e, const char* what) const {
    exec::detail::cuda_check(e, "comm::nccl: rank ", rank_, ": ", what);
  }

  void require_usable(const char* what) const {
    if (comm_ == nullptr)
      throw runtime_error(tether::detail::concat("tether: comm::nccl: rank ", rank_, ": ", what,
                                                 " on an aborted communicator"));
  }

  void check_root(int root, const char* what) const {
    tether::detail::require(root >= 0 && root < size_, what, ": root must be in [0, ", size_,
                            "), got root = ", root);
  }

  /// NCCL's ring all-reduce is a reduce-scatter then an all-gather: comm::mpi's model.
  [[nodiscard]] std::uint64_t allreduce_bytes(std::size_t n, std::size_t s) const noexcept {
    return tether::detail::allreduce_payload_bytes(n, s, rank_, size_);
  }
  void count_broadcast(std::uint64_t bytes, int root) noexcept {
    tether::detail::count_broadcast(*counters_, bytes, rank_, root, size_);
  }

  options opt_;
  int rank_ = 0;
  int size_ = 1;
  int group_id_ = 0;
  int group_count_ = 1;
  ncclComm_t comm_ = nullptr;
  int device_ = -1;
  cudaStream_t stream_ = nullptr;
  bool owns_stream_ = true;      // false in a group: it borrows the parent's stream
  cudaEvent_t ready_ = nullptr;  // recorded on the execution space's stream: where NCCL may start
  cudaEvent_t done_ = nullptr;   // recorded on the communicator's stream: where the last operation ended
  void* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
  std::unique_ptr<nccl> group_;
  comm_counters own_counters_{};
  comm_counters* counters_;
};

}  // namespace tether::comm
