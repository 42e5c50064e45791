// comm::shared_memory::iallreduce_sum: the non-blocking sum completes with the rank-order sum while the
// workers do other work (local arithmetic, blocking collectives, a second request) before wait(); test()
// becomes true without wait(); the send buffer is left untouched.

#include "team_test_util.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/request.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <span>
#include <thread>
#include <vector>

using team_test::bit_equal;
using team_test::data_of;
using team_test::rank_order_sum;

TEMPLATE_TEST_CASE("iallreduce_sum completes with the rank-order sum while workers do other things",
                   "[comm][iallreduce]", float, double) {
  const int p = GENERATE(1, 3, 4);
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{1001});
  CAPTURE(p, n);
  const auto up = static_cast<std::size_t>(p);

  tether::team team(p);
  std::vector<std::vector<TestType>> recv(up);
  std::vector<std::vector<TestType>> send_after(up);
  std::vector<std::vector<TestType>> blocking(up);
  std::vector<double> local_work(up);
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    const auto send = data_of<TestType>(w.rank(), n);
    std::vector<TestType> out(n, TestType(-7));
    tether::request req = w.iallreduce_sum(std::span<const TestType>(send), std::span<TestType>(out));

    // Other work while the sum is in flight: local arithmetic, then a blocking all-reduce and a barrier.
    double acc = 0.0;
    for (int k = 0; k < 20000; ++k) acc += 1.0 / (1.0 + k + w.rank());
    local_work[me] = acc;
    auto other = data_of<TestType>(w.rank() + 10, n);
    w.allreduce_sum(std::span<TestType>(other));
    w.barrier();

    req.wait();
    recv[me] = std::move(out);
    send_after[me] = send;
    blocking[me] = std::move(other);
  });

  const auto ref = rank_order_sum<TestType>(p, n);
  std::vector<TestType> ref_other(n, TestType(0));
  for (std::size_t i = 0; i < n; ++i) {
    ref_other[i] = team_test::value_of<TestType>(10, i);
    for (int r = 1; r < p; ++r) ref_other[i] += team_test::value_of<TestType>(r + 10, i);
  }
  for (int r = 0; r < p; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    CAPTURE(r);
    CHECK(bit_equal(recv[ur], ref));
    CHECK(bit_equal(send_after[ur], data_of<TestType>(r, n)));
    CHECK(bit_equal(blocking[ur], ref_other));
    CHECK(local_work[ur] > 0.0);
  }
}

TEST_CASE("request::test() eventually becomes true without wait()", "[comm][iallreduce]") {
  // Each worker polls test() (sleeping 1 ms between polls; the bound of 20000 polls only keeps a broken
  // implementation from hanging the suite) and reads the result once it reports completion.
  const int p = 4;
  const std::size_t n = 1001;
  tether::team team(p);
  std::vector<int> completed(static_cast<std::size_t>(p), 0);
  std::vector<int> active_before(static_cast<std::size_t>(p), 0);
  std::vector<int> active_after(static_cast<std::size_t>(p), 1);
  std::vector<std::vector<float>> recv(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    const auto send = data_of<float>(w.rank(), n);
    std::vector<float> out(n, 0.0f);
    tether::request req = w.iallreduce_sum(std::span<const float>(send), std::span<float>(out));
    active_before[me] = req.active() ? 1 : 0;
    bool done = false;
    for (int poll = 0; poll < 20000 && !done; ++poll) {
      done = req.test();
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    completed[me] = done ? 1 : 0;
    req.wait();  // completes at once when test() was true; also the fallback when it never was
    active_after[me] = req.active() ? 1 : 0;
    recv[me] = std::move(out);
  });
  const auto ref = rank_order_sum<float>(p, n);
  for (std::size_t r = 0; r < recv.size(); ++r) {
    CAPTURE(r);
    CHECK(completed[r] == 1);
    CHECK(active_before[r] == 1);
    CHECK(active_after[r] == 0);
    CHECK(bit_equal(recv[r], ref));
  }
}

TEST_CASE("several requests in flight at once complete independently, waited in any order",
          "[comm][iallreduce]") {
  const int p = 3;
  const std::vector<std::size_t> sizes{1001, 5, 0, 4097};
  tether::team team(p);
  std::vector<std::vector<std::vector<double>>> got(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    std::vector<std::vector<double>> send;
    std::vector<std::vector<double>> out;
    std::vector<tether::request> reqs;
    send.reserve(sizes.size());
    out.reserve(sizes.size());
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      send.push_back(data_of<double>(w.rank() + static_cast<int>(k), sizes[k]));
      out.emplace_back(sizes[k], 0.0);
      reqs.push_back(w.iallreduce_sum(std::span<const double>(send[k]), std::span<double>(out[k])));
    }
    // Waited in reverse order of posting; rank 1 waits in posting order, which must not matter.
    if (w.rank() == 1) {
      for (auto& r : reqs) r.wait();
    } else {
      for (std::size_t k = reqs.size(); k-- > 0;) reqs[k].wait();
    }
    got[me] = std::move(out);
  });
  for (int r = 0; r < p; ++r) {
    const auto& g = got[static_cast<std::size_t>(r)];
    REQUIRE(g.size() == sizes.size());
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      std::vector<double> ref(sizes[k], 0.0);
      for (std::size_t i = 0; i < sizes[k]; ++i) {
        ref[i] = team_test::value_of<double>(static_cast<int>(k), i);
        for (int q = 1; q < p; ++q) ref[i] += team_test::value_of<double>(q + static_cast<int>(k), i);
      }
      CAPTURE(r, k);
      CHECK(bit_equal(g[k], ref));
    }
  }
}

TEST_CASE("iallreduce_sum with send and recv of different sizes is a tether::error",
          "[comm][iallreduce][errors]") {
  tether::team team(2);
  CHECK_THROWS_AS(team.run([&](tether::team::worker& w) {
    std::vector<float> send(4, 1.0f);
    std::vector<float> out(3, 0.0f);
    auto req = w.iallreduce_sum(std::span<const float>(send), std::span<float>(out));
    req.wait();
  }),
                  tether::error);
}
