// tether::shard_layout: every element owned by exactly one shard, balanced sizes, S > N, owner() against a
// linear scan, bad input. The reference is an ownership map built by walking the shards, element by element.

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "support.hpp"

#include <tether/core/shard_layout.hpp>

namespace {

/// The owner of every element, from walking begin(s)..end(s) of each shard (-1 if none, -2 if twice).
std::vector<long> ownership(const tether::shard_layout& l) {
  std::vector<long> own(l.size(), -1);
  for (std::size_t s = 0; s < l.shards(); ++s)
    for (std::size_t i = l.begin(s); i < l.end(s); ++i) own[i] = own[i] == -1 ? static_cast<long>(s) : -2;
  return own;
}

}  // namespace

TEST_CASE("shard_layout: every element is owned exactly once, shards are contiguous and balanced", "[core]") {
  for (std::size_t n : {0u, 1u, 2u, 7u, 10u, 64u, 1000u, 4097u})
    for (std::size_t s : {1u, 2u, 3u, 4u, 7u, 8u, 16u, 100u, 5000u}) {
      CAPTURE(n, s);
      const tether::shard_layout l(n, s);
      REQUIRE(l.size() == n);
      REQUIRE(l.shards() == s);
      REQUIRE(l.begin(0) == 0);
      REQUIRE(l.end(s - 1) == n);
      std::size_t smallest = n, largest = 0, total = 0;
      for (std::size_t k = 0; k < s; ++k) {
        REQUIRE(l.begin(k) <= l.end(k));
        if (k > 0) REQUIRE(l.begin(k) == l.end(k - 1));
        smallest = std::min(smallest, l.count(k));
        largest = std::max(largest, l.count(k));
        total += l.count(k);
      }
      REQUIRE(total == n);
      REQUIRE(largest - smallest <= 1);  // balanced, S > N included (sizes 0 and 1)
      REQUIRE(largest == (n + s - 1) / s);
      const auto own = ownership(l);
      for (std::size_t i = 0; i < n; ++i) {
        REQUIRE(own[i] >= 0);
        REQUIRE(l.owner(i) == static_cast<std::size_t>(own[i]));
      }
    }
}

TEST_CASE("shard_layout: large sizes do not overflow", "[core]") {
  const std::size_t n = (std::size_t{1} << 40) + 12345;
  const tether::shard_layout l(n, 1000003);
  REQUIRE(l.end(l.shards() - 1) == n);
  std::mt19937_64 rng(7);
  for (int k = 0; k < 10000; ++k) {
    const std::size_t i = rng() % n;
    const std::size_t s = l.owner(i);
    REQUIRE(s < l.shards());
    REQUIRE(l.begin(s) <= i);
    REQUIRE(i < l.end(s));
  }
}

TEST_CASE("shard_layout: zero shards is an error naming the argument", "[core]") {
  REQUIRE_THROWS_MATCHES(tether::shard_layout(10, 0), tether::error, tt::message_has({"shard_layout", "shards = 0"}));
  const tether::shard_layout a(10, 3), b(10, 3), c(10, 4);
  REQUIRE(a == b);
  REQUIRE_FALSE(a == c);
}
