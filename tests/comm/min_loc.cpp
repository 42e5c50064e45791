// comm::shared_memory::min_loc, the election of LSGD: the lowest finite score wins, ties go to the lowest
// rank, NaN and +-Inf never win, and no finite score at all gives rank -1. Scores compare as doubles, also
// outside float's range and closer than float's precision. 12 bytes each way.

#include <tether/comm/shared_memory.hpp>
#include <tether/core/request.hpp>
#include <tether/core/stats.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

namespace {

constexpr double nan_v = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_v = std::numeric_limits<double>::infinity();

struct election_case {
  std::string name;
  std::vector<double> scores;  // one per worker
  int rank;                    // expected winner, -1 for none
  double score;                // expected winning score (when rank >= 0)
};

/// The reference election, written as the rule reads: scan the finite scores, keep the strictly smaller.
tether::election reference_min_loc(const std::vector<double>& s) {
  tether::election best{};
  for (std::size_t r = 0; r < s.size(); ++r) {
    if (s[r] != s[r] || s[r] == inf_v || s[r] == -inf_v) continue;
    if (best.rank < 0 || s[r] < best.score) best = {s[r], static_cast<int>(r)};
  }
  return best;
}

}  // namespace

TEST_CASE("min_loc elects the lowest finite score, ties to the lowest rank, non-finite never",
          "[comm][min_loc]") {
  const std::vector<election_case> cases{
      {"distinct", {3.0f, 1.0f, 2.0f, 4.0f}, 1, 1.0f},
      {"tie goes to the lowest rank", {3.0f, 1.0f, 2.0f, 1.0f}, 1, 1.0f},
      {"all equal", {0.5f, 0.5f, 0.5f, 0.5f}, 0, 0.5f},
      {"negative scores", {2.0f, -3.0f, -3.0f, 1.0f}, 1, -3.0f},
      {"NaN on rank 0 never wins", {nan_v, 7.0f, 7.0f, 9.0f}, 1, 7.0f},
      {"NaN elsewhere", {nan_v, 2.0f, nan_v, 1.0f}, 3, 1.0f},
      {"-Inf and +Inf never win", {-inf_v, 5.0f, 4.0f, inf_v}, 2, 4.0f},
      {"huge finite beats Inf",
       {inf_v, std::numeric_limits<float>::max(), inf_v, nan_v},
       1,
       std::numeric_limits<float>::max()},
      {"lowest finite",
       {std::numeric_limits<float>::lowest(), -inf_v, 0.0f, nan_v},
       0,
       std::numeric_limits<float>::lowest()},
      {"below float's range", {2.0, -1e39, 1.0, -inf_v}, 1, -1e39},
      {"above float's range", {inf_v, 3e39, 2e39, nan_v}, 2, 2e39},
      {"closer than float's precision", {1.0 + 3e-12, 1.0 + 1e-12, 1.0 + 2e-12, 2.0}, 1, 1.0 + 1e-12},
      {"lowest double", {0.0, std::numeric_limits<double>::lowest(), nan_v, -1e300}, 1,
       std::numeric_limits<double>::lowest()},
      {"no finite score", {nan_v, inf_v, -inf_v, nan_v}, -1, 0.0f},
      {"all NaN", {nan_v, nan_v, nan_v, nan_v}, -1, 0.0f},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      // The table itself agrees with the reference rule.
      const auto ref = reference_min_loc(c.scores);
      REQUIRE(ref.rank == c.rank);

      const int p = static_cast<int>(c.scores.size());
      tether::team team(p);
      std::vector<tether::election> got(c.scores.size());
      std::vector<tether::comm_counters> delta(c.scores.size());
      team.run([&](tether::team::worker& w) {
        const auto me = static_cast<std::size_t>(w.rank());
        const auto c0 = w.counters();
        got[me] = w.min_loc(c.scores[me]);
        const auto c1 = w.counters();
        delta[me] = {c1.bytes_sent - c0.bytes_sent, c1.bytes_received - c0.bytes_received,
                     c1.collectives - c0.collectives};
      });
      for (std::size_t r = 0; r < got.size(); ++r) {
        CAPTURE(r);
        CHECK(got[r].rank == c.rank);
        if (c.rank >= 0) CHECK(got[r].score == c.score);
        CHECK(delta[r].bytes_sent == 12);
        CHECK(delta[r].bytes_received == 12);
        CHECK(delta[r].collectives == 1);
      }
    }
  }
}

TEST_CASE("min_loc on a team of one", "[comm][min_loc]") {
  tether::team team(1);
  tether::election finite{};
  tether::election nan_score{};
  team.run([&](tether::team::worker& w) {
    finite = w.min_loc(2.5f);
    nan_score = w.min_loc(nan_v);
  });
  CHECK(finite.rank == 0);
  CHECK(finite.score == 2.5f);
  CHECK(nan_score.rank == -1);
}

TEST_CASE("successive elections with changing scores each see their own scores", "[comm][min_loc]") {
  // 50 elections in a row; in election k the winner is rank (k mod p) unless k is a multiple of 7, where
  // every score is NaN. A slot overwritten before everyone read it would elect the wrong worker.
  const int p = 4;
  const int rounds = 50;
  tether::team team(p);
  std::vector<std::vector<int>> got(static_cast<std::size_t>(p));
  team.run([&](tether::team::worker& w) {
    for (int k = 0; k < rounds; ++k) {
      double s = (w.rank() == k % p) ? -1.0 : static_cast<double>(w.rank() + k);
      if (k % 7 == 0) s = nan_v;
      got[static_cast<std::size_t>(w.rank())].push_back(w.min_loc(s).rank);
    }
  });
  for (int r = 0; r < p; ++r) {
    const auto& g = got[static_cast<std::size_t>(r)];
    REQUIRE(g.size() == static_cast<std::size_t>(rounds));
    for (int k = 0; k < rounds; ++k) {
      CAPTURE(r, k);
      CHECK(g[static_cast<std::size_t>(k)] == (k % 7 == 0 ? -1 : k % p));
    }
  }
}
