// comm::shared_memory::allreduce_sum: every worker ends with the sum of all workers' buffers added in rank
// order, bit for bit, whatever the thread timing; sizes 0, 1 and 1001 (not a multiple of the team size).

#include "team_test_util.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/core/stats.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using team_test::bit_equal;
using team_test::data_of;
using team_test::rank_order_sum;

TEMPLATE_TEST_CASE("allreduce_sum equals the rank-order sum bit-exactly on every worker", "[comm][allreduce]",
                   float, double) {
  const int p = GENERATE(1, 2, 3, 4);
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{1001});
  CAPTURE(p, n);

  tether::team team(p);
  std::vector<std::vector<TestType>> got(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    auto v = data_of<TestType>(w.rank(), n);
    w.allreduce_sum(std::span<TestType>(v));
    got[static_cast<std::size_t>(w.rank())] = std::move(v);
  });

  const auto ref = rank_order_sum<TestType>(p, n);
  for (int r = 0; r < p; ++r) {
    CAPTURE(r);
    CHECK(bit_equal(got[static_cast<std::size_t>(r)], ref));
  }
}

TEST_CASE("the inputs of the all-reduce tests are sensitive to the order of addition", "[comm][allreduce]") {
  // Guards the test above: if rank order and reverse order gave the same bits everywhere, a reduction in
  // another order would pass unnoticed.
  const auto fwd = rank_order_sum<float>(4, 1001);
  const auto rev = team_test::reverse_order_sum<float>(4, 1001);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < fwd.size(); ++i) differ += fwd[i] != rev[i];
  CHECK(differ > 50);
}

TEST_CASE("repeated all-reduces of changing sizes reuse the team's scratch safely", "[comm][allreduce]") {
  // Sizes grow and shrink from one collective to the next, in float and double, in one run: each result
  // must still be the rank-order sum (a slot or scratch overwritten too early would show here).
  const int p = 3;
  const std::vector<std::size_t> sizes{1001, 1, 0, 5000, 7, 4096, 4097};
  tether::team team(p);
  std::vector<std::vector<std::vector<float>>> got_f(static_cast<std::size_t>(p));
  std::vector<std::vector<std::vector<double>>> got_d(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    for (int rep = 0; rep < 3; ++rep) {
      for (const std::size_t n : sizes) {
        auto f = data_of<float>(w.rank(), n);
        w.allreduce_sum(std::span<float>(f));
        got_f[static_cast<std::size_t>(w.rank())].push_back(std::move(f));
        auto d = data_of<double>(w.rank(), n);
        w.allreduce_sum(std::span<double>(d));
        got_d[static_cast<std::size_t>(w.rank())].push_back(std::move(d));
      }
    }
  });
  for (int r = 0; r < p; ++r) {
    const auto& gf = got_f[static_cast<std::size_t>(r)];
    const auto& gd = got_d[static_cast<std::size_t>(r)];
    REQUIRE(gf.size() == 3 * sizes.size());
    REQUIRE(gd.size() == 3 * sizes.size());
    for (std::size_t k = 0; k < gf.size(); ++k) {
      CAPTURE(r, k);
      CHECK(bit_equal(gf[k], rank_order_sum<float>(p, sizes[k % sizes.size()])));
      CHECK(bit_equal(gd[k], rank_order_sum<double>(p, sizes[k % sizes.size()])));
    }
  }
}

TEST_CASE("allreduce_sum counts (p-1)/p of the buffer each way per phase", "[comm][allreduce][counters]") {
  // The shared-memory all-reduce is a reduce-scatter then an all-gather: worker r owns the slice
  // [n*r/p, n*(r+1)/p) and moves everything else in and out: 2*(n - slice) elements each way.
  const int p = 3;
  const std::size_t n = 1001;
  tether::team team(p);
  std::vector<tether::comm_counters> before(static_cast<std::size_t>(p));
  std::vector<tether::comm_counters> after(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    before[static_cast<std::size_t>(w.rank())] = w.counters();
    auto v = data_of<double>(w.rank(), n);
    w.allreduce_sum(std::span<double>(v));
    after[static_cast<std::size_t>(w.rank())] = w.counters();
  });
  for (int r = 0; r < p; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    const std::size_t slice = n * (ur + 1) / p - n * ur / p;
    const std::uint64_t expect = 2 * (n - slice) * sizeof(double);
    CAPTURE(r);
    CHECK(after[ur].bytes_sent - before[ur].bytes_sent == expect);
    CHECK(after[ur].bytes_received - before[ur].bytes_received == expect);
    CHECK(after[ur].collectives - before[ur].collectives == 1);
    CHECK(team.counters(r).bytes_sent == after[ur].bytes_sent);
  }
}
