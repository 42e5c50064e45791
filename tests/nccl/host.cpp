// comm::nccl without a GPU (plain C++: the header needs no nvcc): option and shape validation throw
// tether::error before any CUDA or NCCL call; constructing the communicator where no CUDA device is usable
// throws tether::runtime_error naming the CUDA call and its error, on every worker of a team, without a
// hang. Where a GPU is present the no-device checks are replaced by a device index out of range. Also the
// decision of one poll of a host wait or request::test() (NCCL error, timeout, settled) and the device
// guard's errors.
#include <tether/comm/nccl.hpp>
#include <tether/comm/shared_memory.hpp>

#include <catch2/catch.hpp>

#include <cuda_runtime_api.h>

#include <array>
#include <atomic>
#include <limits>
#include <new>
#include <string>

namespace {

using Catch::Matchers::Contains;
using tether::comm::nccl;

/// Visible CUDA devices, 0 when the runtime cannot find any (no driver, no device).
int visible_devices() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

}  // namespace

TEST_CASE("comm::nccl is a communicator", "[nccl]") {
  STATIC_REQUIRE(tether::communicator<nccl>);
  STATIC_REQUIRE(tether::communicator<tether::team::worker>);
}

TEST_CASE("comm::nccl: bad options and shapes are tether::error, before any CUDA call", "[nccl]") {
  const ncclUniqueId id{};
  REQUIRE_THROWS_WITH(nccl(id, 1, 0, {.timeout = std::numeric_limits<double>::quiet_NaN()}),
                      Contains("timeout must be a number of seconds"));
  REQUIRE_THROWS_WITH(nccl(id, 1, 0, {.device = -2}),
                      Contains("device must be >= 0") && Contains("device = -2"));
  REQUIRE_THROWS_WITH(nccl(id, 1, 0, {.group_size = -1}), Contains("group_size = -1"));
  REQUIRE_THROWS_WITH(nccl(id, 0, 0), Contains("size must be >= 1, got size = 0"));
  REQUIRE_THROWS_WITH(nccl(id, 2, 2), Contains("rank must be in [0, 2), got rank = 2"));
  REQUIRE_THROWS_WITH(nccl(id, 6, 0, {.group_size = 4}), Contains("multiple of group_size (4)"));
  REQUIRE_THROWS_AS(nccl(id, 2, -1), tether::error);
  REQUIRE_NOTHROW(nccl::validate({.device = 3, .timeout = 0.0, .group_size = 2}));
  REQUIRE_THROWS_AS(nccl::validate({.device = -7}), tether::error);

  // From a team: validated on every worker before the device is touched.
  tether::team team(2);
  REQUIRE_THROWS_WITH(team.run([](tether::team::worker& w) { nccl c(w, {.group_size = 3}); }),
                      Contains("multiple of group_size (3)"));

  // Only worker 0's options are bad: it throws its tether::error, and worker 1 is not left waiting (it throws
  // too: its own CUDA error without a GPU, otherwise that a worker could not set up).
  std::array<std::string, 2> what;
  std::array<bool, 2> bad_input{};
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    try {
      nccl c(w, {.group_size = w.rank() == 0 ? 3 : 0});
    } catch (const tether::error& e) {
      what[me] = e.what();
      bad_input[me] = true;
    } catch (const tether::runtime_error& e) {
      what[me] = e.what();
    }
  });
  CAPTURE(what[0], what[1]);
  REQUIRE(bad_input[0]);
  REQUIRE_THAT(what[0], Contains("multiple of group_size (3)"));
  REQUIRE_FALSE(bad_input[1]);
  REQUIRE_THAT(what[1], Contains("cudaGetDeviceCount failed") || Contains("1 of 2 workers could not set up"));
}

TEST_CASE("comm::nccl: no usable CUDA device is a tether::runtime_error naming the call", "[nccl]") {
  const int devices = visible_devices();
  if (devices > 0) {
    WARN("a CUDA device is visible: the no-device checks do not apply; checking a device index out of range");
    REQUIRE_THROWS_WITH(nccl(nccl::unique_id(), 1, 0, {.device = 4096}),
                        Contains("device = 4096 but only") && Contains("CUDA device(s) are visible"));
    // Workers that disagree on the timeout all throw before NCCL starts (both may use device 0 for that).
    tether::team team(2);
    std::atomic<int> disagree{0};
    team.run([&](tether::team::worker& w) {
      try {
        nccl c(w, {.device = 0, .timeout = w.rank() == 0 ? 10.0 : 20.0});
      } catch (const tether::error& e) {
        if (std::string(e.what()).find("disagree on the comm::nccl options") != std::string::npos) ++disagree;
      }
    });
    REQUIRE(disagree == 2);
    return;
  }
  // Alone.
  try {
    nccl c(nccl::unique_id(), 1, 0);
    FAIL("constructed without a CUDA device");
  } catch (const tether::runtime_error& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK_THAT(what, Contains("comm::nccl") && Contains("cudaGetDeviceCount failed: cuda"));
  }

  // A team of 3: every worker fails on its own device and none waits for another (the host agreement).
  tether::team team(3);
  std::atomic<int> failed{0};
  std::atomic<int> named{0};
  team.run([&](tether::team::worker& w) {
    try {
      nccl c(w);
    } catch (const tether::runtime_error& e) {
      ++failed;
      if (std::string(e.what()).find("cudaGetDeviceCount failed") != std::string::npos) ++named;
    }
  });
  REQUIRE(failed == 3);
  REQUIRE(named == 3);

  // The exception reaches the team's caller when it is not caught.
  REQUIRE_THROWS_AS(team.run([](tether::team::worker& w) { nccl c(w); }), tether::runtime_error);
}

TEST_CASE("comm::nccl: one poll of a host wait or request::test() (error, timeout, settled)", "[nccl]") {
  using tether::comm::detail::nccl_poll;
  using tether::comm::detail::nccl_poll_step;
  // Still running: keep waiting until the timeout; never with timeout <= 0.
  STATIC_REQUIRE(nccl_poll_step(ncclInProgress, false, 0.5, 1.0) == nccl_poll::wait);
  STATIC_REQUIRE(nccl_poll_step(ncclSuccess, false, 0.5, 1.0) == nccl_poll::wait);
  STATIC_REQUIRE(nccl_poll_step(ncclSuccess, false, 1.5, 1.0) == nccl_poll::timed_out);
  STATIC_REQUIRE(nccl_poll_step(ncclInProgress, false, 1e9, 0.0) == nccl_poll::wait);
  STATIC_REQUIRE(nccl_poll_step(ncclInProgress, false, 1e9, -1.0) == nccl_poll::wait);
  // An asynchronous NCCL error fails at once, before the timeout, and wins over it.
  STATIC_REQUIRE(nccl_poll_step(ncclRemoteError, false, 0.0, 1.0) == nccl_poll::error);
  STATIC_REQUIRE(nccl_poll_step(ncclSystemError, false, 5.0, 1.0) == nccl_poll::error);
  STATIC_REQUIRE(nccl_poll_step(ncclUnhandledCudaError, true, 0.0, 0.0) == nccl_poll::error);
  // Settling a non-blocking call: done when the state is ncclSuccess, still bounded while in progress.
  STATIC_REQUIRE(nccl_poll_step(ncclSuccess, true, 5.0, 1.0) == nccl_poll::settled);
  STATIC_REQUIRE(nccl_poll_step(ncclInProgress, true, 0.5, 1.0) == nccl_poll::wait);
  STATIC_REQUIRE(nccl_poll_step(ncclInProgress, true, 1.5, 1.0) == nccl_poll::timed_out);
}

TEST_CASE("comm::nccl: a failed cudaGetDevice/cudaSetDevice in the device guard is a runtime_error",
          "[nccl]") {
  using tether::comm::detail::nccl_device_guard;
  REQUIRE_NOTHROW(nccl_device_guard(-1, 0));  // nothing to do
  if (visible_devices() == 0) {
    REQUIRE_THROWS_WITH(nccl_device_guard(0, 3), Contains("rank 3: cudaGetDevice failed: cuda"));
  } else {
    REQUIRE_NOTHROW(nccl_device_guard(0, 3));
    REQUIRE_THROWS_WITH(nccl_device_guard(4096, 3), Contains("rank 3: cudaSetDevice failed: cuda"));
  }
  // The cleanup form never throws.
  REQUIRE_NOTHROW(nccl_device_guard(4096, std::nothrow));
  STATIC_REQUIRE(noexcept(nccl_device_guard(0, std::nothrow)));
}
