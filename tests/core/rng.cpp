// tether::rng, splitmix64 and derive_seed: reference values of the published generators (SplitMix64 by Vigna,
// xoshiro256** by Blackman and Vigna, computed with an independent implementation), stream independence,
// range and uniformity of below(), and the moments of normal().

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "support.hpp"

TEST_CASE("rng: splitmix64 and xoshiro256** give the published streams", "[core][rng]") {
  std::uint64_t s = 0;
  REQUIRE(tether::splitmix64(s) == 0xE220A8397B1DCDAFull);
  REQUIRE(tether::splitmix64(s) == 0x6E789E6AA1B965F4ull);
  REQUIRE(tether::splitmix64(s) == 0x06C45D188009454Full);

  // xoshiro256** whose four state words are the first four SplitMix64 outputs of the seed.
  tether::rng r0(0);
  REQUIRE(r0() == 0x99EC5F36CB75F2B4ull);
  REQUIRE(r0() == 0xBF6E1F784956452Aull);
  REQUIRE(r0() == 0x1A5F849D4933E6E0ull);
  tether::rng r42(42);
  REQUIRE(r42() == 0x15780B2E0C2EC716ull);
  REQUIRE(r42() == 0x6104D9866D113A7Eull);
  REQUIRE(r42() == 0xAE17533239E499A1ull);
}

TEST_CASE("rng: the same seed gives the same stream, different seeds differ", "[core][rng]") {
  tether::rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto va = a();
    REQUIRE(va == b());
    differs = differs || va != c();
  }
  REQUIRE(differs);
}

TEST_CASE("rng: derive_seed differs for different streams", "[core][rng]") {
  // Every (seed, a, b, c) in a small grid gives a distinct seed: 5 * 8^3 = 2560 values.
  std::set<std::uint64_t> seen;
  std::size_t count = 0;
  for (std::uint64_t seed : {0ull, 1ull, 2ull, 42ull, 0xFFFFFFFFFFFFFFFFull}) {
    for (std::uint64_t a = 0; a < 8; ++a)
      for (std::uint64_t b = 0; b < 8; ++b)
        for (std::uint64_t c = 0; c < 8; ++c) {
          seen.insert(tether::derive_seed(seed, a, b, c));
          ++count;
        }
  }
  REQUIRE(seen.size() == count);
  // Stream ids are not interchangeable, and the derived seed is not the base seed.
  REQUIRE(tether::derive_seed(1, 2, 3) != tether::derive_seed(1, 3, 2));
  REQUIRE(tether::derive_seed(1, 2) != tether::derive_seed(1, 0, 2));
  REQUIRE(tether::derive_seed(5) != 5);
  // Deterministic, and usable at compile time.
  static_assert(tether::derive_seed(3, 4, 5, 6) == tether::derive_seed(3, 4, 5, 6));
  // Neighbouring worker streams are uncorrelated enough that their first draws differ in about half the bits.
  int bits = 0;
  for (std::uint64_t w = 0; w < 64; ++w)
    bits += std::popcount(tether::derive_seed(9, w) ^ tether::derive_seed(9, w + 1));
  REQUIRE(bits > 64 * 24);
  REQUIRE(bits < 64 * 40);
}

TEST_CASE("rng: below(n) stays in [0, n)", "[core][rng]") {
  tether::rng r(123);
  for (std::uint64_t n : {1ull, 2ull, 3ull, 7ull, 10ull, 1000ull, (1ull << 32) + 1, (1ull << 63) + 12345,
                          0xFFFFFFFFFFFFFFFFull}) {
    CAPTURE(n);
    std::uint64_t max_seen = 0;
    int out_of_range = 0;
    for (int i = 0; i < 20000; ++i) {
      const auto v = r.below(n);
      out_of_range += v >= n ? 1 : 0;
      max_seen = std::max(max_seen, v);
    }
    REQUIRE(out_of_range == 0);
    if (n == 1) REQUIRE(max_seen == 0);
    if (n <= 1000) REQUIRE(max_seen == n - 1);  // every small range is covered up to its top
  }
}

TEST_CASE("rng: below(n) is uniform (chi-square with a fixed seed)", "[core][rng]") {
  // 1e5 draws into k cells; the chi-square statistic has k-1 degrees of freedom. The bounds are far in the
  // tails (mean k-1, standard deviation sqrt(2(k-1))), and the seed is fixed, so the test is deterministic.
  for (std::uint64_t k : {2ull, 7ull, 10ull, 97ull}) {
    CAPTURE(k);
    tether::rng r(2024 + k);
    constexpr int draws = 100000;
    std::vector<double> cells(k, 0.0);
    for (int i = 0; i < draws; ++i) cells[r.below(k)] += 1.0;
    const double expected = double(draws) / double(k);
    double chi2 = 0.0;
    for (double c : cells) chi2 += (c - expected) * (c - expected) / expected;
    const double dof = double(k - 1);
    CAPTURE(chi2);
    REQUIRE(chi2 < dof + 6.0 * std::sqrt(2.0 * dof) + 10.0);
  }
  // n = 3 * 2^62, where 2^64 / n = 4/3 exactly: a plain modulo would give the lower third of the range half
  // of the draws, and a multiply-shift without rejection would give the multiples of 3 half of the draws.
  tether::rng r(77);
  const std::uint64_t n = 0xC000000000000000ull;
  constexpr int draws = 60000;
  int lower_third = 0;
  int multiple_of_3 = 0;
  for (int i = 0; i < draws; ++i) {
    const std::uint64_t v = r.below(n);
    lower_third += v < n / 3 ? 1 : 0;
    multiple_of_3 += v % 3 == 0 ? 1 : 0;
  }
  REQUIRE(std::abs(lower_third - draws / 3) < 1000);  // sd about 115
  REQUIRE(std::abs(multiple_of_3 - draws / 3) < 1000);
}

TEST_CASE("rng: uniform() is in [0, 1) with mean 1/2 and variance 1/12", "[core][rng]") {
  tether::rng r(5);
  constexpr int draws = 100000;
  double sum = 0.0, sum2 = 0.0;
  int out_of_range = 0;
  for (int i = 0; i < draws; ++i) {
    const double u = r.uniform();
    out_of_range += (u >= 0.0 && u < 1.0) ? 0 : 1;
    sum += u;
    sum2 += u * u;
  }
  REQUIRE(out_of_range == 0);
  const double mean = sum / draws;
  REQUIRE(std::abs(mean - 0.5) < 0.005);  // sd of the mean is 0.0009
  REQUIRE(std::abs(sum2 / draws - mean * mean - 1.0 / 12.0) < 0.002);
}

TEST_CASE("rng: normal() has mean 0 and variance 1 over 1e5 draws", "[core][rng]") {
  tether::rng r(31337);
  constexpr int draws = 100000;
  double sum = 0.0, sum2 = 0.0, sum4 = 0.0;
  int beyond_3 = 0;
  for (int i = 0; i < draws; ++i) {
    const double z = r.normal();
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
    beyond_3 += std::abs(z) > 3.0 ? 1 : 0;
  }
  REQUIRE(std::isfinite(sum4));
  const double mean = sum / draws;
  const double var = sum2 / draws - mean * mean;
  REQUIRE(std::abs(mean) < 0.02);                // sd of the mean: 0.0032
  REQUIRE(std::abs(var - 1.0) < 0.03);           // sd of the variance: 0.0045
  REQUIRE(std::abs(sum4 / draws - 3.0) < 0.15);  // kurtosis of a normal
  REQUIRE(beyond_3 > 200);                       // P(|z| > 3) = 0.0027: about 270 of 1e5
  REQUIRE(beyond_3 < 340);
}
