// Groups of a thread team: tether::team(4, {.group_size = 2}) gives each worker a group handle with group
// rank 0/1 and size 2, and the group's collectives (all-reduce, broadcast, election, non-blocking sum) only
// involve the workers of that group, interleaved freely with collectives of the whole team.

#include "team_test_util.hpp"

#include <tether/comm/shared_memory.hpp>
#include <tether/core/error.hpp>
#include <tether/core/request.hpp>
#include <tether/core/stats.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

using team_test::bit_equal;
using team_test::data_of;
using team_test::value_of;

namespace {

/// What one worker observed about its place in the team.
struct placement {
  int rank = -1;
  int size = -1;
  int group_rank = -1;
  int group_size = -1;
  int group_id = -1;
  int group_count = -1;
  bool group_is_self = false;
};

/// Rank-order sum of value_of(first_rank + k + shift, i) over the `count` ranks of a group.
std::vector<float> group_sum(int first_rank, int count, int shift, std::size_t n) {
  std::vector<float> s(n);
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = value_of<float>(first_rank + shift, i);
    for (int k = 1; k < count; ++k) s[i] += value_of<float>(first_rank + k + shift, i);
  }
  return s;
}

}  // namespace

TEST_CASE("team(4, {.group_size = 2}) gives group ranks 0/1 of size 2", "[comm][groups]") {
  tether::team team(4, {.group_size = 2});
  CHECK(team.size() == 4);
  CHECK(team.group_size() == 2);
  std::vector<placement> seen(4);
  team.run([&](tether::team::worker& w) {
    auto& g = w.group();
    seen[static_cast<std::size_t>(w.rank())] = {w.rank(),     w.size(),        g.rank(), g.size(),
                                                w.group_id(), w.group_count(), &g == &w};
  });
  for (int r = 0; r < 4; ++r) {
    const auto& s = seen[static_cast<std::size_t>(r)];
    CAPTURE(r);
    CHECK(s.rank == r);
    CHECK(s.size == 4);
    CHECK(s.group_rank == r % 2);
    CHECK(s.group_size == 2);
    CHECK(s.group_id == r / 2);
    CHECK(s.group_count == 2);
    CHECK_FALSE(s.group_is_self);
  }
}

TEST_CASE("without groups, a worker's group is the worker itself", "[comm][groups]") {
  tether::team team(3);
  CHECK(team.group_size() == 3);
  std::vector<placement> seen(3);
  team.run([&](tether::team::worker& w) {
    auto& g = w.group();
    seen[static_cast<std::size_t>(w.rank())] = {w.rank(),     w.size(),        g.rank(), g.size(),
                                                w.group_id(), w.group_count(), &g == &w};
  });
  for (const auto& s : seen) {
    CHECK(s.group_is_self);
    CHECK(s.group_rank == s.rank);
    CHECK(s.group_size == 3);
    CHECK(s.group_id == 0);
    CHECK(s.group_count == 1);
  }
}

TEST_CASE("a team whose size is not a multiple of the group size is a tether::error",
          "[comm][groups][errors]") {
  CHECK_THROWS_AS(tether::team(4, {.group_size = 3}), tether::error);
  CHECK_THROWS_AS(tether::team(4, {.group_size = -1}), tether::error);
  CHECK_THROWS_AS(tether::team(0), tether::error);
}

TEST_CASE("group collectives stay inside the group, interleaved with team collectives", "[comm][groups]") {
  const std::size_t n = 1001;
  const int rounds = 5;
  tether::team team(4, {.group_size = 2});

  struct seen_t {
    std::vector<std::vector<float>> group_sum, group_bcast, group_isum, world_sum;
    std::vector<int> group_winner, world_winner;
    std::vector<tether::comm_counters> bcast_delta, elect_delta;
  };
  std::vector<seen_t> seen(4);
  team.run([&](tether::team::worker& w) {
    auto& me = seen[static_cast<std::size_t>(w.rank())];
    auto& g = w.group();
    for (int k = 0; k < rounds; ++k) {
      // Group all-reduce of value_of(rank + k, .), then a non-blocking group sum left in flight across a
      // team all-reduce, a group broadcast from group rank 1 and two elections.
      auto gs = data_of<float>(w.rank() + k, n);
      g.allreduce_sum(std::span<float>(gs));
      me.group_sum.push_back(std::move(gs));

      const auto send = data_of<float>(w.rank() + 100 + k, n);
      std::vector<float> isum(n, 0.0f);
      tether::request req = g.iallreduce_sum(std::span<const float>(send), std::span<float>(isum));

      auto ws = data_of<float>(w.rank() + 50 + k, n);
      w.allreduce_sum(std::span<float>(ws));
      me.world_sum.push_back(std::move(ws));

      auto gb = data_of<float>(w.rank() + 200 + k, n);
      const auto c0 = w.counters();
      g.broadcast(std::span<float>(gb), 1);
      const auto c1 = w.counters();
      me.bcast_delta.push_back({c1.bytes_sent - c0.bytes_sent, c1.bytes_received - c0.bytes_received, 0});
      me.group_bcast.push_back(std::move(gb));

      // Scores: rank r scores (r * 7 + k) mod 5 (distinct within each group for every k).
      const float score = static_cast<float>((w.rank() * 7 + k) % 5);
      const auto e0 = w.counters();
      me.group_winner.push_back(g.min_loc(score).rank);
      const auto e1 = w.counters();
      me.elect_delta.push_back({e1.bytes_sent - e0.bytes_sent, e1.bytes_received - e0.bytes_received, 0});
      me.world_winner.push_back(w.min_loc(score).rank);

      req.wait();
      me.group_isum.push_back(std::move(isum));
    }
  });

  auto score_of = [](int r, int k) { return static_cast<float>((r * 7 + k) % 5); };
  for (int r = 0; r < 4; ++r) {
    const auto& me = seen[static_cast<std::size_t>(r)];
    const int first = (r / 2) * 2;  // global rank of group rank 0 of r's group
    REQUIRE(me.group_sum.size() == static_cast<std::size_t>(rounds));
    for (int k = 0; k < rounds; ++k) {
      const auto uk = static_cast<std::size_t>(k);
      CAPTURE(r, k);
      CHECK(bit_equal(me.group_sum[uk], group_sum(first, 2, k, n)));
      CHECK(bit_equal(me.group_isum[uk], group_sum(first, 2, 100 + k, n)));
      CHECK(bit_equal(me.world_sum[uk], group_sum(0, 4, 50 + k, n)));
      CHECK(bit_equal(me.group_bcast[uk], data_of<float>(first + 1 + 200 + k, n)));

      // Group election: in group rank terms; team election: in team rank terms.
      const float s0 = score_of(first, k);
      const float s1 = score_of(first + 1, k);
      CHECK(me.group_winner[uk] == (s1 < s0 ? 1 : 0));
      int world_best = 0;
      for (int q = 1; q < 4; ++q)
        if (score_of(q, k) < score_of(world_best, k)) world_best = q;
      CHECK(me.world_winner[uk] == world_best);

      // Counters: a group broadcast moves n floats once (root sends to its one peer); an election 12 bytes.
      const std::uint64_t bytes = n * sizeof(float);
      if (r % 2 == 1) {
        CHECK(me.bcast_delta[uk].bytes_sent == bytes);
        CHECK(me.bcast_delta[uk].bytes_received == 0);
      } else {
        CHECK(me.bcast_delta[uk].bytes_sent == 0);
        CHECK(me.bcast_delta[uk].bytes_received == bytes);
      }
      CHECK(me.elect_delta[uk].bytes_sent == 12);
      CHECK(me.elect_delta[uk].bytes_received == 12);
    }
  }
}
