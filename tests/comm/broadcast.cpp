// comm::shared_memory::broadcast: from every root, every worker ends with the root's buffer; non-roots count
// N*sizeof(T) bytes received, the root (p-1)*N*sizeof(T) sent; a root out of range is a tether::error.

#include "team_test_util.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/stats.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using team_test::bit_equal;
using team_test::data_of;

TEMPLATE_TEST_CASE("broadcast copies the root's buffer to every worker, from each root", "[comm][broadcast]",
                   float, double) {
  const int p = GENERATE(1, 3, 4);
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, std::size_t{1001});
  CAPTURE(p, n);
  const auto up = static_cast<std::size_t>(p);

  tether::team team(p);
  // got[root][rank], and the counter deltas of that broadcast.
  std::vector<std::vector<std::vector<TestType>>> got(up, std::vector<std::vector<TestType>>(up));
  std::vector<std::vector<tether::comm_counters>> delta(up, std::vector<tether::comm_counters>(up));
  team.run([&](tether::team::worker& w) {
    const auto me = static_cast<std::size_t>(w.rank());
    for (int root = 0; root < p; ++root) {
      auto v = data_of<TestType>(w.rank(), n);
      const tether::comm_counters c0 = w.counters();
      w.broadcast(std::span<TestType>(v), root);
      const tether::comm_counters c1 = w.counters();
      delta[static_cast<std::size_t>(root)][me] = {c1.bytes_sent - c0.bytes_sent,
                                                   c1.bytes_received - c0.bytes_received,
                                                   c1.collectives - c0.collectives};
      got[static_cast<std::size_t>(root)][me] = std::move(v);
    }
  });

  const std::uint64_t bytes = n * sizeof(TestType);
  for (int root = 0; root < p; ++root) {
    const auto expect = data_of<TestType>(root, n);
    for (int r = 0; r < p; ++r) {
      CAPTURE(root, r);
      const auto& d = delta[static_cast<std::size_t>(root)][static_cast<std::size_t>(r)];
      CHECK(bit_equal(got[static_cast<std::size_t>(root)][static_cast<std::size_t>(r)], expect));
      CHECK(d.collectives == 1);
      if (r == root) {
        CHECK(d.bytes_sent == bytes * static_cast<std::uint64_t>(p - 1));
        CHECK(d.bytes_received == 0);
      } else {
        CHECK(d.bytes_sent == 0);
        CHECK(d.bytes_received == bytes);
      }
    }
  }
}

TEST_CASE("broadcast with a root outside the team is a tether::error", "[comm][broadcast][errors]") {
  const int bad_root = GENERATE(-1, 4);
  CAPTURE(bad_root);
  tether::team team(4);
  CHECK_THROWS_AS(team.run([&](tether::team::worker& w) {
    std::vector<float> v(3, static_cast<float>(w.rank()));
    w.broadcast(std::span<float>(v), bad_root);
  }),
                  tether::error);
}
