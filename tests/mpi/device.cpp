// comm::mpi's collectives on buffers in device memory: detection of a CUDA-aware MPI, the device_direct option,
// and staging through host memory when MPI cannot take device pointers. Run on the CPU with a test execution
// space whose memory space is not mem::host (host memory underneath) and that counts its staging copies and
// fences. Results are checked against closed forms and against the host-span collectives.
#include <catch2/catch.hpp>

#include <mpi.h>
#if defined(OPEN_MPI) && __has_include(<mpi-ext.h>)
#include <mpi-ext.h>
#endif

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

#include "tether/comm/mpi.hpp"
#include "tether/core/collectives.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"

namespace {

/// A memory space MPI knows nothing about.
struct test_device_memory {};

/// What the test space did.
struct tally {
  int fences = 0;
  int to_host = 0;
  int from_host = 0;
};

/// Serial loops claiming test_device_memory; stages through std::vector and counts.
struct test_device {
  using memory_space = test_device_memory;
  tally* t = nullptr;

  template <class F>
  void parallel_for(std::size_t n, const F& f) const {
    for (std::size_t i = 0; i < n; ++i) f(i);
  }
  void fence() const { ++t->fences; }
  template <class T>
  [[nodiscard]] std::vector<T> allocate_host(std::size_t n) const {
    return std::vector<T>(n);
  }
  template <class T>
  void copy_to_host(const T* src, T* dst, std::size_t n) const {
    ++t->to_host;
    if (n != 0) std::memcpy(dst, src, n * sizeof(T));
  }
  template <class T>
  void copy_from_host(const T* src, T* dst, std::size_t n) const {
    ++t->from_host;
    if (n != 0) std::memcpy(dst, src, n * sizeof(T));
  }
};

template <class T>
tether::view<T, test_device_memory> dev(std::vector<T>& v) {
  return tether::as_view<test_device_memory>(v.data(), v.size());
}
template <class T>
tether::view<const T, test_device_memory> cdev(const std::vector<T>& v) {
  return tether::as_view<test_device_memory>(v.data(), v.size());
}

/// What this build's MPI says about CUDA device pointers, asked independently of comm::mpi.
bool reference_cuda_aware() {
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
  return MPIX_Query_cuda_support() == 1;
#else
  return false;
#endif
}

/// rank * 1000 + i + 0.5: small integers and halves, so float sums over a few ranks are exact.
float value(int rank, std::size_t i) { return static_cast<float>(rank * 1000 + static_cast<int>(i)) + 0.5f; }

}  // namespace

TEST_CASE("comm::mpi detects whether MPI takes device pointers", "[mpi][device]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0});
  CHECK(comm.device_aware(tether::mem::host{}));
  CHECK_FALSE(comm.device_aware(test_device_memory{}));
  CHECK(comm.device_aware(tether::mem::cuda{}) == reference_cuda_aware());
  CHECK(comm.group().device_aware(tether::mem::cuda{}) == reference_cuda_aware());
#if defined(OPEN_MPI) && !(defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT)
  // Open MPI without CUDA support (Debian's): never aware.
  CHECK_FALSE(comm.device_aware(tether::mem::cuda{}));
#endif
  // automatic: direct exactly when aware; memory MPI cannot reach is staged.
  CHECK(comm.device_direct(tether::mem::cuda{}) == reference_cuda_aware());
  CHECK_FALSE(comm.device_direct(test_device_memory{}));
  CHECK(comm.device_direct(tether::mem::host{}));

  tether::comm::mpi never(MPI_COMM_WORLD, {.timeout = 60.0, .device_direct = tether::comm::mpi_device_direct::never});
  CHECK_FALSE(never.device_direct(tether::mem::cuda{}));
  CHECK(never.device_direct(tether::mem::host{}));
}

TEST_CASE("comm::mpi stages device buffers through host memory when MPI is not device-aware", "[mpi][device]") {
  using tether::comm::mpi_device_direct;
  for (const auto mode : {mpi_device_direct::automatic, mpi_device_direct::never}) {
    for (const std::size_t max_count : {std::size_t{0}, std::size_t{3}}) {
      tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0, .max_count = max_count, .device_direct = mode});
      const int p = comm.size();
      const int me = comm.rank();
      for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
        CAPTURE(static_cast<int>(mode), max_count, n, p, me);
        // Closed form: sum over r of (r*1000 + i + 0.5) = 1000*p(p-1)/2 + p*(i + 0.5).
        std::vector<float> want(n);
        for (std::size_t i = 0; i < n; ++i)
          want[i] = static_cast<float>(500 * p * (p - 1)) + static_cast<float>(p) * (static_cast<float>(i) + 0.5f);

        std::vector<float> mine(n);
        for (std::size_t i = 0; i < n; ++i) mine[i] = value(me, i);

        // All-reduce: host path, then the device path through the pulls' entry point.
        std::vector<float> host = mine;
        const auto before_host = comm.counters();
        comm.allreduce_sum(std::span<float>(host));
        const auto host_bytes = comm.counters().bytes_sent - before_host.bytes_sent;
        tally t;
        std::vector<float> device = mine;
        const auto before_dev = comm.counters();
        tether::allreduce_sum(test_device{&t}, comm, dev(device));
        CHECK(device == want);
        CHECK(device == host);
        CHECK(comm.counters().bytes_sent - before_dev.bytes_sent == host_bytes);
        CHECK(t.to_host == 1);
        CHECK(t.from_host == 1);
        CHECK(t.fences >= 1);

        // The overload called directly.
        tally t2;
        device = mine;
        comm.allreduce_sum(test_device{&t2}, dev(device));
        CHECK(device == want);
        CHECK(t2.to_host == 1);
        CHECK(t2.from_host == 1);

        // Broadcast from the last rank: the root copies out, every other rank copies in.
        const int root = p - 1;
        tally tb;
        std::vector<float> b = mine;
        tether::broadcast(test_device{&tb}, comm, dev(b), root);
        std::vector<float> want_b(n);
        for (std::size_t i = 0; i < n; ++i) want_b[i] = value(root, i);
        CHECK(b == want_b);
        CHECK(tb.to_host == (me == root ? 1 : 0));
        CHECK(tb.from_host == (me == root ? 0 : 1));
        CHECK(tb.fences >= 1);

        // Non-blocking all-reduce: send copied out at the call, recv written at wait().
        tally ti;
        const std::vector<float> send = mine;
        std::vector<float> recv(n, -1.0f);
        auto req = tether::iallreduce_sum(test_device{&ti}, comm, cdev(send), dev(recv));
        CHECK(ti.to_host == 1);
        CHECK(ti.from_host == 0);
        CHECK(ti.fences >= 1);
        CHECK(recv == std::vector<float>(n, -1.0f));
        req.wait();
        CHECK(recv == want);
        CHECK(ti.from_host == 1);
        CHECK(send == mine);
      }
    }
  }
}

TEST_CASE("comm::mpi staged collectives handle other element types", "[mpi][device]") {
  tether::comm::mpi comm(MPI_COMM_WORLD, {.timeout = 60.0});
  const int p = comm.size();
  std::vector<double> d(5);
  std::vector<int> k(5);
  for (std::size_t i = 0; i < 5; ++i) {
    d[i] = 0.25 * static_cast<double>(comm.rank() + 1) * static_cast<double>(i);
    k[i] = comm.rank() * 10 + static_cast<int>(i);
  }
  tally t;
  tether::allreduce_sum(test_device{&t}, comm, dev(d));
  tether::allreduce_sum(test_device{&t}, comm, dev(k));
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(d[i] == 0.25 * static_cast<double>(p * (p + 1) / 2) * static_cast<double>(i));
    CHECK(k[i] == 10 * p * (p - 1) / 2 + p * static_cast<int>(i));
  }
  CHECK(t.to_host == 2);
  CHECK(t.from_host == 2);
}

TEST_CASE("comm::mpi device_direct = always throws a clear error when MPI cannot take the pointers",
          "[mpi][device]") {
  tether::comm::mpi comm(MPI_COMM_WORLD,
                         {.timeout = 60.0, .device_direct = tether::comm::mpi_device_direct::always});
  std::vector<float> v(4, 1.0f);
  std::vector<float> r(4, 0.0f);
  tally t;
  const char* says = "device_direct = always, but this MPI library cannot take pointers";
  // A memory space MPI never reaches: every collective refuses before any MPI call (so no rank waits).
  REQUIRE_THROWS_AS(comm.allreduce_sum(test_device{&t}, dev(v)), tether::error);
  REQUIRE_THROWS_WITH(comm.allreduce_sum(test_device{&t}, dev(v)), Catch::Contains(says));
  REQUIRE_THROWS_WITH(tether::broadcast(test_device{&t}, comm, dev(v), 0), Catch::Contains(says));
  REQUIRE_THROWS_WITH((void)tether::iallreduce_sum(test_device{&t}, comm, cdev(v), dev(r)),
                      Catch::Contains(says));
  CHECK(t.to_host == 0);
  CHECK(t.from_host == 0);
  CHECK(v == std::vector<float>(4, 1.0f));
  CHECK(comm.device_direct(tether::mem::host{}));
  // CUDA memory: direct exactly when MPI is CUDA-aware, the error otherwise.
  if (reference_cuda_aware()) {
    CHECK(comm.device_direct(tether::mem::cuda{}));
  } else {
    REQUIRE_THROWS_WITH(comm.device_direct(tether::mem::cuda{}), Catch::Contains(says));
  }
  // Nothing was started: the communicator still works.
  std::vector<float> h(3, 1.0f);
  comm.allreduce_sum(std::span<float>(h));
  CHECK(h == std::vector<float>(3, static_cast<float>(comm.size())));
}
