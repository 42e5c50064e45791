// The device-memory path of the pulls and of the thread team, run on the CPU. A test execution space whose
// memory space is not mem::host (but is host memory underneath) forces every pull through the collectives
// for buffers in another memory space:
//   - with the team's handle: the team's (view, exec) overloads (slice-wise rank-order sums, copies and the
//     progress thread's reduction all run as the space's kernels), which is what GPU-resident workers use;
//   - with a handle that only has host collectives (like MPI without CUDA support): staging through the
//     space's host buffers.
// Both must give exec::serial's parameters bit for bit.
#include "equivalence.hpp"
#include "../common/fake_device.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace {

using tether_test::fake_device;
using fake_device_memory = tether_test::fake_memory;

/// User buffers are host vectors handed to tether as views in fake_device_memory.
struct fake_device_adapter {
  using buffer = std::vector<float>;
  buffer make(std::size_t n) const { return buffer(n); }
  void upload(buffer& b, const std::vector<float>& v) const { b = v; }
  std::vector<float> download(const buffer& b) const { return b; }
  tether::view<float, fake_device_memory> param(buffer& b) const {
    return tether::as_view<fake_device_memory>(b.data(), b.size());
  }
};

}  // namespace

TEMPLATE_LIST_TEST_CASE("device-memory collectives of the team match exec::serial", "[exec][device]",
                        exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(fake_device{}, fake_device_adapter{}, 0, exec_test::team_handle{});
}

TEMPLATE_LIST_TEST_CASE("device buffers staged through host memory match exec::serial", "[exec][device]",
                        exec_test::all_combos) {
  exec_test::check_equivalent<TestType>(fake_device{}, fake_device_adapter{}, 0,
                                        exec_test::host_only_handle{});
}

TEST_CASE("the team's device all-reduce sums in rank order across many workers", "[exec][device]") {
  // More workers than one accumulate kernel takes (8 sources), sizes that do not split evenly.
  for (const int p : {1, 3, 10}) {
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1023}}) {
      CAPTURE(p, n);
      tether::team team(p);
      std::vector<std::vector<float>> got(static_cast<std::size_t>(p));
      std::vector<std::vector<float>> avg(static_cast<std::size_t>(p));
      team.run([&](tether::team::worker& w) {
        const auto r = static_cast<std::size_t>(w.rank());
        std::vector<float> v(n);
        std::vector<float> s(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = exec_test::hash_unit(i * 977 + r * 13 + 5);
        const std::vector<float> snapshot = v;
        w.allreduce_sum(fake_device{}, tether::as_view<fake_device_memory>(v.data(), n));
        got[r] = v;
        auto req = w.iallreduce_sum(
            fake_device{}, tether::as_view<fake_device_memory>(static_cast<const float*>(snapshot.data()), n),
            tether::as_view<fake_device_memory>(s.data(), n));
        req.wait();
        avg[r] = s;
      });
      // Reference: the host loop adding the workers' values in rank order.
      std::vector<float> want(n, 0.0f);
      for (std::size_t i = 0; i < n; ++i) {
        float a = exec_test::hash_unit(i * 977 + 5);
        for (std::size_t r = 1; r < static_cast<std::size_t>(p); ++r)
          a += exec_test::hash_unit(i * 977 + r * 13 + 5);
        want[i] = a;
      }
      for (std::size_t r = 0; r < static_cast<std::size_t>(p); ++r) {
        REQUIRE(got[r] == want);
        REQUIRE(avg[r] == want);
      }
    }
  }
}

TEST_CASE("the team's device broadcast copies the root's buffer", "[exec][device]") {
  tether::team team(3);
  std::vector<std::vector<float>> got(3);
  std::vector<std::uint64_t> received(3);
  team.run([&](tether::team::worker& w) {  // no Catch2 assertions in the workers: Catch2 is not thread-safe
    std::vector<float> v(5, static_cast<float>(w.rank()));
    w.broadcast(fake_device{}, tether::as_view<fake_device_memory>(v.data(), v.size()), 2);
    got[static_cast<std::size_t>(w.rank())] = v;
    received[static_cast<std::size_t>(w.rank())] = w.counters().bytes_received;
  });
  for (const auto& v : got) REQUIRE(v == std::vector<float>(5, 2.0f));
  REQUIRE(received == std::vector<std::uint64_t>{5 * sizeof(float), 5 * sizeof(float), 0});
}

TEST_CASE("memory spaces are accessible only from their own execution spaces", "[exec][device]") {
  STATIC_REQUIRE(tether::mem::accessible_v<tether::mem::host, tether::mem::host>);
  STATIC_REQUIRE(tether::mem::accessible_v<tether::mem::cuda, tether::mem::cuda>);
  STATIC_REQUIRE_FALSE(tether::mem::accessible_v<tether::mem::host, tether::mem::cuda>);
  STATIC_REQUIRE_FALSE(tether::mem::accessible_v<tether::mem::cuda, tether::mem::host>);
  STATIC_REQUIRE_FALSE(tether::mem::accessible_v<fake_device_memory, tether::mem::host>);
  STATIC_REQUIRE(tether::execution_space<fake_device>);
}
