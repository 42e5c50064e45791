// comm::nccl's election keys (comm/nccl/key.hpp), on the CPU: the two-step election (the minimum order, then
// the minimum id key) over a set of (score, id) pairs must name what a scalar reference picks: the lowest
// finite score compared as a double (-0 equal to +0), ties to the lowest id, non-finite scores never; no
// winner when no score is finite. The reference is std::min over std::pair<double, int> of the finite pairs.
// Also: the score map is monotone and invertible.
#include <tether/comm/nccl/key.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace {

namespace d = tether::comm::detail;
using lim = std::numeric_limits<double>;

/// The election by a scalar loop: std::min over the finite (score, id) pairs; {0, -1} when none is finite.
std::pair<double, int> reference(const std::vector<double>& scores, const std::vector<int>& ids) {
  bool any = false;
  std::pair<double, int> best{0.0, -1};
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) continue;
    const std::pair<double, int> cand{scores[i], ids[i]};
    best = any ? std::min(best, cand) : cand;
    any = true;
  }
  return best;
}

/// The election by keys, as comm::nccl runs it with two ncclMin all-reduces: the minimum order, then the
/// minimum id key given that order, decoded.
d::election_decoded by_keys(const std::vector<double>& scores, const std::vector<int>& ids) {
  std::uint64_t best = std::numeric_limits<std::uint64_t>::max();
  for (double s : scores) best = std::min(best, d::election_order(s));
  std::uint64_t id = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < scores.size(); ++i)
    id = std::min(id, d::election_id_key(d::election_order(scores[i]), best, ids[i]));
  return d::election_decode(best, id);
}

/// Scores that stress the map: signed zeros, denormals, extremes, values outside float's range or closer than
/// its precision, infinities, NaNs, small integers (ties).
const std::vector<double> specials{1e39,
                                  -1e39,
                                  1.0 + 1e-12,
                                  1e-50,
                                  0.0f,
                                  -0.0f,
                                  lim::denorm_min(),
                                  -lim::denorm_min(),
                                  lim::min(),
                                  -lim::min(),
                                  lim::max(),
                                  lim::lowest(),
                                  lim::infinity(),
                                  -lim::infinity(),
                                  lim::quiet_NaN(),
                                  -lim::quiet_NaN(),
                                  1.0f,
                                  -1.0f,
                                  2.0f,
                                  0.5f};

}  // namespace

TEST_CASE("election key: the order of finite scores is kept, non-finite scores sort last", "[nccl][key]") {
  STATIC_REQUIRE(d::election_order(-1.0) < d::election_order(0.0));
  STATIC_REQUIRE(d::election_order(0.0) == d::election_order(-0.0));
  STATIC_REQUIRE(d::election_order(-1e39) < d::election_order(-3.4e38));
  STATIC_REQUIRE(d::election_order(1.0) < d::election_order(1.0 + 1e-12));
  STATIC_REQUIRE(d::election_order(lim::max()) < d::election_order(lim::infinity()));
  STATIC_REQUIRE(d::election_order(lim::quiet_NaN()) == d::election_nonfinite_order);
  STATIC_REQUIRE(d::election_order(-lim::infinity()) == d::election_nonfinite_order);

  std::vector<double> finite;
  for (double s : specials)
    if (std::isfinite(s)) finite.push_back(s);
  std::mt19937_64 gen(7);
  std::uniform_int_distribution<std::uint64_t> bits;
  while (finite.size() < 4000) {
    const double s = std::bit_cast<double>(bits(gen));
    if (std::isfinite(s)) finite.push_back(s);
  }
  for (double a : finite) {
    for (std::size_t j = 0; j < 40; ++j) {
      const double b = finite[(std::bit_cast<std::uint64_t>(a) + j * 97u) % finite.size()];
      CAPTURE(a, b);
      REQUIRE((a < b) == (d::election_order(a) < d::election_order(b)));
      REQUIRE((a == b) == (d::election_order(a) == d::election_order(b)));
    }
    // Invertible: the decoded score has the same bits, except that -0 comes back as +0.
    const double back = d::election_score(d::election_order(a));
    REQUIRE(std::bit_cast<std::uint64_t>(back) == std::bit_cast<std::uint64_t>(a == 0.0 ? 0.0 : a));
    REQUIRE(d::election_order(a) < d::election_nonfinite_order);
  }
}

TEST_CASE("election key: the minimum key is the reference's (score, id) winner", "[nccl][key]") {
  std::mt19937 gen(11);
  std::uniform_int_distribution<std::size_t> pick(0, specials.size() - 1);
  std::uniform_int_distribution<int> coin(0, 3);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (int trial = 0; trial < 20000; ++trial) {
    const std::size_t p = 1 + static_cast<std::size_t>(trial % 9);
    std::vector<double> scores(p);
    std::vector<int> ids(p);
    for (std::size_t i = 0; i < p; ++i) {
      // Specials, rounded normals (many ties) and plain normals.
      const int c = coin(gen);
      scores[i] = c == 0 ? specials[pick(gen)] : c == 1 ? std::round(normal(gen)) : normal(gen);
      ids[i] = static_cast<int>(i);
    }
    std::shuffle(ids.begin(), ids.end(), gen);  // workers need not report in id order
    if (trial % 5 == 0)
      for (auto& id : ids) id += 1 << 20;  // large indices (hierarchical elections pass global ranks)
    const auto want = reference(scores, ids);
    const auto got = by_keys(scores, ids);
    CAPTURE(trial, scores, ids);
    REQUIRE(got.finite == (want.second >= 0));
    if (!got.finite) {
      REQUIRE(got.id == -1);
      continue;
    }
    REQUIRE(got.id == want.second);
    REQUIRE(got.score == want.first);  // == : a -0 winner comes back as +0
  }
}

TEST_CASE("election key: no finite score elects nobody; ties go to the lowest id", "[nccl][key]") {
  const std::vector<double> none{lim::quiet_NaN(), lim::infinity(), -lim::infinity()};
  const auto e = by_keys(none, {0, 1, 2});
  REQUIRE_FALSE(e.finite);
  REQUIRE(e.id == -1);

  const auto tie = by_keys({3.0, -0.0, 0.0, -0.0}, {0, 3, 1, 2});
  REQUIRE(tie.finite);
  REQUIRE(tie.id == 1);
  REQUIRE(tie.score == 0.0f);

  // A NaN anywhere does not hide a finite score behind it, even the largest finite one.
  const auto big = by_keys({lim::quiet_NaN(), lim::max()}, {0, 1});
  REQUIRE(big.id == 1);
  REQUIRE(big.score == lim::max());

  // Outside float's range and closer than float's precision, the double order decides.
  const auto low = by_keys({-3.0e38, -1e39, -2e39 / 2.0}, {0, 1, 2});
  REQUIRE(low.id == 1);
  REQUIRE(low.score == -1e39);
  const auto close = by_keys({1.0 + 2e-12, 1.0 + 1e-12}, {0, 1});
  REQUIRE(close.id == 1);
}
