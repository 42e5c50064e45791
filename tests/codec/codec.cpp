// The codecs on exec::serial: bit-for-bit against the scalar reference (reference.hpp), the statistical and
// exactness properties of docs/codecs.md, message sizes, and every corrupt-message case.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "reference.hpp"
#include "tether/codec/codec.hpp"
#include "tether/codec/identity.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"
#include "tether/core/rng.hpp"

namespace cd = tether::codec;

namespace {

template <class T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  tether::rng g(seed);
  std::vector<T> x(n);
  for (auto& v : x) v = static_cast<T>(scale * (2.0 * g.uniform() - 1.0));
  return x;
}

std::vector<unsigned char> as_uchar(const std::vector<std::byte>& m) {
  std::vector<unsigned char> r(m.size());
  std::memcpy(r.data(), m.data(), m.size());
  return r;
}

const std::size_t sizes_for_block[] = {0, 1, 7};

template <class T>
std::vector<std::size_t> sizes(std::size_t B) {
  std::vector<std::size_t> s(std::begin(sizes_for_block), std::end(sizes_for_block));
  for (std::size_t n : {B - 1, B, B + 1, std::size_t{4099}}) s.push_back(n);
  return s;
}

/// Checks that `what()` of the exception mentions every word.
template <class F>
void require_error(F&& f, std::initializer_list<const char*> words) {
  try {
    f();
    FAIL("no tether::error thrown");
  } catch (const tether::error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    for (const char* w : words) CHECK(msg.find(w) != std::string::npos);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("stochastic_uniform matches the scalar reference bit for bit", "[codec]", float, double) {
  using T = TestType;
  for (auto md : {codec_ref::mode::max_abs, codec_ref::mode::min_max}) {
    for (unsigned b = 1; b <= 8; ++b) {
      for (std::size_t B : {std::size_t{5}, std::size_t{64}, std::size_t{256}}) {
        for (std::size_t n : sizes<T>(B)) {
          for (auto pl : {cd::plan::per_block, cd::plan::per_byte}) {
            CAPTURE(int(md), b, B, n, int(pl));
            // 1e-37: fp32 scales below 2^-118, raised to it (docs/codecs.md)
            const auto x = random_values<T>(n, 1000 + n + b, n % 2 == 0 ? 3.0 : b % 3 == 0 ? 1e-37 : 0.01);
            const std::uint64_t seed = 77 + b;
            const auto ref = codec_ref::encode(md, x, b, B, seed);
            cd::stochastic_uniform<T> q(
                {.bits = b,
                 .block = B,
                 .scale = md == codec_ref::mode::max_abs ? cd::scale_mode::max_abs : cd::scale_mode::min_max,
                 .plan = pl});
            REQUIRE(q.encoded_size(n) == ref.msg.size());
            std::vector<std::byte> msg(q.encoded_size(n));
            REQUIRE(q.encode(x, msg, seed) == msg.size());
            REQUIRE(as_uchar(msg) == ref.msg);
            std::vector<T> y(n, T(-7));
            q.decode(msg, y);
            REQUIRE(y == ref.decoded);
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("lattice matches the scalar reference bit for bit", "[codec]", float, double) {
  using T = TestType;
  for (unsigned b = 2; b <= 8; ++b) {
    for (std::size_t B : {std::size_t{3}, std::size_t{256}}) {
      for (std::size_t n : sizes<T>(B)) {
        for (auto pl : {cd::plan::per_block, cd::plan::per_byte}) {
          CAPTURE(b, B, n, int(pl));
          const float s = 0.01f;
          const auto x = random_values<T>(n, 5 + n, 2.0);
          // The receiver's model: within (and for some elements beyond) the exact radius.
          const double radius = ((1u << (b - 1)) - 1) * double(s);
          auto yref = x;
          tether::rng g(9 + b);
          for (auto& v : yref) v += static_cast<T>(radius * 2.5 * (2.0 * g.uniform() - 1.0));
          const auto ref = codec_ref::encode(codec_ref::mode::lattice, x, b, B, 3, s, &yref);
          cd::lattice<T> q({.bits = b, .block = B, .step = s, .plan = pl});
          std::vector<std::byte> msg(q.encoded_size(n));
          REQUIRE(q.encode(x, msg, 3) == msg.size());
          REQUIRE(as_uchar(msg) == ref.msg);
          std::vector<T> y(n);
          q.decode(msg, y, yref);
          REQUIRE(y == ref.decoded);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("identity: header and raw values", "[codec]", float, double) {
  using T = TestType;
  for (std::size_t n : {0, 1, 7, 4099}) {
    const auto x = random_values<T>(n, n);
    cd::identity<T> id;
    std::vector<std::byte> msg(id.encoded_size(n));
    REQUIRE(msg.size() == 20 + n * sizeof(T));
    REQUIRE(id.encode(x, msg) == msg.size());
    auto want = codec_ref::header(1, sizeof(T) == 4 ? 1 : 2, 8 * sizeof(T), 0, n);
    want.resize(20 + n * sizeof(T));
    if (n != 0) std::memcpy(want.data() + 20, x.data(), n * sizeof(T));
    REQUIRE(as_uchar(msg) == want);
    std::vector<T> y(n);
    id.decode(msg, y);
    REQUIRE(y == x);
  }
}

TEMPLATE_TEST_CASE("stochastic_uniform error is below one grid step", "[codec]", float, double) {
  // Bound: |Q(x) - x| <= delta = 2s/(2^b - 1) (max_abs) or w/(2^b - 1) (min_max), plus the rounding of the
  // decode's lo + q*delta (a few ulps of the block's magnitude).
  using T = TestType;
  const auto x = random_values<T>(4099, 3, 5.0);
  for (auto sm : {cd::scale_mode::max_abs, cd::scale_mode::min_max}) {
    for (unsigned b : {1u, 2u, 4u, 8u}) {
      cd::stochastic_uniform<T> q({.bits = b, .block = 256, .scale = sm});
      std::vector<std::byte> msg(q.encoded_size(x.size()));
      std::vector<T> y(x.size());
      for (std::uint64_t seed = 0; seed < 20; ++seed) {
        q.encode(x, msg, seed);
        q.decode(msg, y);
        for (std::size_t base = 0; base < x.size(); base += 256) {
          const std::size_t end = std::min(x.size(), base + 256);
          T mn = x[base], mx = x[base], m = 0;
          for (std::size_t i = base; i < end; ++i) {
            mn = std::min(mn, x[i]);
            mx = std::max(mx, x[i]);
            m = std::max(m, std::abs(x[i]));
          }
          const double L = std::pow(2.0, b) - 1;
          // The scale is rounded up to fp32: at most 2^-23 relative above the exact one.
          const double delta =
              (sm == cd::scale_mode::max_abs ? 2.0 * m : double(mx) - double(mn)) / L * (1.0 + 3e-7);
          const double slack = 8.0 * std::numeric_limits<T>::epsilon() * 5.0;
          for (std::size_t i = base; i < end; ++i) {
            CAPTURE(b, int(sm), seed, i);
            REQUIRE(std::abs(double(y[i]) - double(x[i])) <= delta + slack);
          }
        }
      }
    }
  }
}

TEST_CASE("stochastic_uniform is unbiased over seeds", "[codec]") {
  // K independent roundings of each value: Q(x) takes one of two neighbouring levels a grid step delta apart,
  // so Var Q(x) <= delta^2/4 and the mean of K draws has standard deviation <= delta/(2 sqrt K). Each of the
  // n elements must lie within 5 such deviations (false-alarm probability < n * 6e-7), and the average
  // standardised deviation over the n elements within 5/sqrt(n).
  constexpr std::size_t n = 300;
  constexpr int K = 4000;
  const auto x = random_values<float>(n, 11, 1.0);
  for (auto sm : {cd::scale_mode::max_abs, cd::scale_mode::min_max}) {
    for (unsigned b : {1u, 2u, 4u, 8u}) {
      cd::stochastic_uniform<float> q({.bits = b, .block = 64, .scale = sm});
      std::vector<std::byte> msg(q.encoded_size(n));
      std::vector<float> y(n);
      std::vector<double> sum(n, 0.0);
      for (int k = 0; k < K; ++k) {
        q.encode(x, msg, tether::derive_seed(123, static_cast<std::uint64_t>(k)));
        q.decode(msg, y);
        for (std::size_t i = 0; i < n; ++i) sum[i] += y[i];
      }
      // delta per element from the block (same for every draw: the scale does not depend on the seed)
      q.encode(x, msg, 0);
      double zsum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t base = i / 64 * 64;
        const std::size_t end = std::min(n, base + 64);
        double mn = x[base], mx = x[base], m = 0;
        for (std::size_t j = base; j < end; ++j)
          mn = std::min<double>(mn, x[j]), mx = std::max<double>(mx, x[j]),
          m = std::max<double>(m, std::abs(x[j]));
        const double delta = (sm == cd::scale_mode::max_abs ? 2 * m : mx - mn) / (std::pow(2.0, b) - 1);
        const double sd = delta / (2.0 * std::sqrt(double(K)));
        const double dev = sum[i] / K - x[i];
        CAPTURE(b, int(sm), i, dev, sd);
        REQUIRE(std::abs(dev) <= 5 * sd + 1e-6);
        zsum += dev / sd;
      }
      CAPTURE(b, int(sm), zsum / n);
      REQUIRE(std::abs(zsum / n) <= 5.0 / std::sqrt(double(n)));
    }
  }
}

TEMPLATE_TEST_CASE("lattice: exact within the radius, off by multiples of 2^b s beyond it", "[codec]", float,
                   double) {
  using T = TestType;
  const float s = 0.0625f;
  for (unsigned b = 2; b <= 8; ++b) {
    cd::lattice<T> q({.bits = b, .block = 100, .step = s});
    const double radius = q.exact_radius();
    REQUIRE(radius == ((1u << (b - 1)) - 1) * double(s));
    const auto x = random_values<T>(1000, b, 4.0);
    std::vector<std::byte> msg(q.encoded_size(x.size()));
    q.encode(x, msg, 99);
    // The encoder's lattice points: floor(x/s) or floor(x/s)+1 (the reference's levels).
    const auto ref = codec_ref::encode(codec_ref::mode::lattice, x, b, 100, 99, s, &x);
    std::vector<T> near(x.size()), far(x.size()), y(x.size());
    tether::rng g(b);
    for (std::size_t i = 0; i < x.size(); ++i) {
      near[i] = x[i] + static_cast<T>(radius * 0.999 * (2.0 * g.uniform() - 1.0));
      far[i] = x[i] + static_cast<T>((i % 2 ? 1 : -1) * (radius + 2.0 * s + std::pow(2.0, b) * s * (i % 3)));
    }
    q.decode(msg, y, near);
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(b, i);
      const T exact = static_cast<T>(ref.levels[i]) * static_cast<T>(s);
      REQUIRE(y[i] == exact);
      REQUIRE(std::abs(double(y[i]) - double(x[i])) < s);
    }
    q.decode(msg, y, far);
    const double M = std::pow(2.0, b);
    for (std::size_t i = 0; i < x.size(); ++i) {
      CAPTURE(b, i);
      const double j = (double(y[i]) / s - double(ref.levels[i])) / M;
      REQUIRE(j == std::round(j));  // still a point of residue k mod 2^b
      REQUIRE(j != 0.0);            // but not k: the reference was too far
    }
    // Decoding in place (out == reference) gives the same values.
    auto inplace = near;
    q.decode(msg, inplace, inplace);
    q.decode(msg, y, near);
    REQUIRE(inplace == y);
  }
}

TEST_CASE("pair averaging conserves the pair's sum up to quantization error", "[codec]") {
  constexpr std::size_t n = 1000;
  const auto xi = random_values<float>(n, 1, 1.0);
  auto xj = xi;
  tether::rng g(2);
  for (auto& v : xj) v += static_cast<float>(0.05 * (2 * g.uniform() - 1));
  SECTION("stochastic_uniform: (Q(xi)+Q(xj))/2, error <= (delta_i + delta_j)/2 per element, exact in mean") {
    cd::stochastic_uniform<float> q({.bits = 4, .block = 50});
    std::vector<std::byte> mi(q.encoded_size(n)), mj(q.encoded_size(n));
    std::vector<float> qi(n), qj(n);
    std::vector<double> mean(n, 0.0);
    constexpr int K = 400;
    for (int k = 0; k < K; ++k) {
      q.encode(xi, mi, tether::derive_seed(5, 0, k));
      q.encode(xj, mj, tether::derive_seed(5, 1, k));
      q.decode(mi, qi);
      q.decode(mj, qj);
      for (std::size_t e = 0; e < n; ++e) {
        const double avg = (double(qi[e]) + double(qj[e])) / 2;
        const std::size_t base = e / 50 * 50;
        double si = 0, sj = 0;
        for (std::size_t t = base; t < base + 50; ++t)
          si = std::max<double>(si, std::abs(xi[t])), sj = std::max<double>(sj, std::abs(xj[t]));
        const double bound = (2 * si + 2 * sj) / 15 * (1 + 1e-6) + 1e-6;
        REQUIRE(std::abs(2 * avg - (double(xi[e]) + xj[e])) <= bound);
        mean[e] += 2 * avg / K;
      }
    }
    // In expectation the pair sum is exact: the mean over K draws within 5 standard deviations,
    // sd <= sqrt(2) * delta / (2 sqrt K) with delta <= 2/15.
    for (std::size_t e = 0; e < n; ++e)
      REQUIRE(std::abs(mean[e] - (double(xi[e]) + xj[e])) <=
              5 * std::sqrt(2.0) * (2.0 / 15) / (2 * std::sqrt(double(K))));
  }
  SECTION("lattice: both sides agree on (s k_i + s k_j)/2, within s of the true mean") {
    cd::lattice<float> q({.bits = 6, .block = 64, .step = 0.01f});  // radius 0.31 > 0.05
    std::vector<std::byte> mi(q.encoded_size(n)), mj(q.encoded_size(n));
    q.encode(xi, mi, 1);
    q.encode(xj, mj, 2);
    std::vector<float> own_i(n), own_j(n), got_j(n), got_i(n);
    q.decode(mi, own_i, xi);  // each side's own quantized model
    q.decode(mj, own_j, xj);
    q.decode(mj, got_j, xi);  // the partner's, decoded next to one's own
    q.decode(mi, got_i, xj);
    for (std::size_t e = 0; e < n; ++e) {
      REQUIRE(got_j[e] == own_j[e]);
      REQUIRE(got_i[e] == own_i[e]);
      const double side_i = (double(own_i[e]) + got_j[e]) / 2;
      const double side_j = (double(got_i[e]) + own_j[e]) / 2;
      REQUIRE(side_i == side_j);
      REQUIRE(std::abs(2 * side_i - (double(xi[e]) + xj[e])) < 2 * 0.01);
    }
  }
}

TEST_CASE("message sizes: N*b/8 + S*ceil(N/B) + 20 bytes", "[codec]") {
  for (unsigned b = 1; b <= 8; ++b) {
    for (std::size_t B : {std::size_t{1}, std::size_t{3}, std::size_t{8}, std::size_t{256}}) {
      for (std::size_t n :
           {std::size_t{0}, std::size_t{1}, std::size_t{7}, B - 1, B, B + 1, std::size_t{4099}}) {
        CAPTURE(b, B, n);
        const std::size_t blocks = (n + B - 1) / B;
        // each block's payload is byte-aligned: full blocks ceil(B*b/8), the last ceil(rest*b/8)
        const std::size_t payload = (n / B) * ((B * b + 7) / 8) + ((n % B) * b + 7) / 8;
        REQUIRE(cd::stochastic_uniform<float>({.bits = b, .block = B}).encoded_size(n) ==
                20 + 4 * blocks + payload);
        REQUIRE(cd::stochastic_uniform<double>({.bits = b, .block = B, .scale = cd::scale_mode::min_max})
                    .encoded_size(n) == 20 + 8 * blocks + payload);
        if (b >= 2)
          REQUIRE(cd::lattice<float>({.bits = b, .block = B}).encoded_size(n) == 20 + 4 * blocks + payload);
        if (B % 8 == 0) REQUIRE(payload == (n * b + 7) / 8);
      }
    }
  }
  // ALGORITHMS.md section 7: 8-bit, B = 256: 3.94x smaller than fp32; 4-bit: 7.76x.
  const std::size_t N = std::size_t{1} << 24;
  const double fp32 = 4.0 * N;
  CHECK(fp32 / double(cd::stochastic_uniform<float>({.bits = 8, .block = 256}).encoded_size(N)) ==
        Approx(3.94).margin(0.005));
  CHECK(fp32 / double(cd::stochastic_uniform<float>({.bits = 4, .block = 256}).encoded_size(N)) ==
        Approx(7.76).margin(0.005));
  CHECK(cd::identity<float>{}.encoded_size(N) == 20 + 4 * N);
  CHECK(cd::identity<double>{}.encoded_size(N) == 20 + 8 * N);
}

TEST_CASE("options are validated at construction", "[codec]") {
  require_error([] { cd::stochastic_uniform<float>({.bits = 0}); }, {"bits", "1..8", "bits = 0"});
  require_error([] { cd::stochastic_uniform<float>({.bits = 9}); }, {"bits", "bits = 9"});
  require_error([] { cd::stochastic_uniform<float>({.block = 0}); }, {"block", "block = 0"});
  require_error([] { cd::stochastic_uniform<float>({.block = (std::size_t{1} << 24) + 1}); }, {"block"});
  require_error([] { cd::lattice<float>({.bits = 1}); }, {"bits", "2..8", "bits = 1"});
  require_error([] { cd::lattice<float>({.bits = 9}); }, {"bits", "bits = 9"});
  require_error([] { cd::lattice<float>({.block = 0}); }, {"block", "block = 0"});
  require_error([] { cd::lattice<float>({.step = 0.0f}); }, {"step", "step = 0"});
  require_error([] { cd::lattice<float>({.step = -1.0f}); }, {"step"});
  require_error([] { cd::lattice<float>({.step = NAN}); }, {"step", "nan"});
  require_error([] { cd::lattice<float>({.step = 1e-39f}); }, {"step", "2^-126"});  // denormal: 1/s overflows
  // Too small an output buffer: a clear error, nothing written.
  cd::stochastic_uniform<float> q;
  std::vector<float> x(100, 1.0f);
  std::vector<std::byte> small(q.encoded_size(100) - 1, std::byte{0x5A});
  require_error([&] { q.encode(x, small, 1); }, {"encode", "out has", "needs"});
  REQUIRE(std::all_of(small.begin(), small.end(), [](std::byte c) { return c == std::byte{0x5A}; }));
  cd::lattice<float> l;
  std::vector<std::byte> msg(l.encoded_size(100));
  l.encode(x, msg, 1);
  std::vector<float> y(100), ref(99);
  require_error([&] { l.decode(msg, y, ref); }, {"reference has 99", "output has 100"});
}

namespace {

/// Decodes a (possibly corrupt) message with codec c into a buffer of n sentinels; returns the error message
/// ("" when it decoded) and checks the buffer is untouched on error.
template <class C, class... R>
std::string try_decode(const C& c, const std::vector<std::byte>& msg, std::size_t n, const R&... ref) {
  using T = typename C::value_type;
  std::vector<T> y(n, T(-123.5));
  try {
    c.decode(msg, y, ref...);
  } catch (const tether::error& e) {
    REQUIRE(std::all_of(y.begin(), y.end(), [](T v) { return v == T(-123.5); }));
    return e.what();
  }
  return "";
}

void put_f32(std::vector<std::byte>& m, std::size_t at, float f) {
  std::memcpy(m.data() + at, &f, 4);
}

}  // namespace

TEST_CASE("corrupt messages: tether::error naming the field, output untouched", "[codec]") {
  constexpr std::size_t n = 600;
  const auto x = random_values<float>(n, 4);
  cd::stochastic_uniform<float> q({.bits = 4, .block = 256});
  std::vector<std::byte> good(q.encoded_size(n));
  q.encode(x, good, 8);
  REQUIRE(try_decode(q, good, n).empty());
  auto check = [&](auto mutate, std::initializer_list<const char*> words, std::size_t out_n = 600) {
    auto m = good;
    mutate(m);
    const std::string msg = try_decode(q, m, out_n);
    CAPTURE(msg);
    REQUIRE(!msg.empty());
    for (const char* w : words) CHECK(msg.find(w) != std::string::npos);
  };
  check([](auto& m) { m[0] = std::byte{'X'}; }, {"magic", "TCOD"});
  check([](auto& m) { m[4] = std::byte{2}; }, {"version", "version 2"});
  check([](auto& m) { m[5] = std::byte{4}; }, {"kind", "lattice (4)"});
  check([](auto& m) { m[5] = std::byte{200}; }, {"kind", "user codec (200)"});
  check([](auto& m) { m[6] = std::byte{2}; }, {"value type", "fp64", "fp32"});
  check([](auto& m) { m[6] = std::byte{7}; }, {"value type", "unknown (7)"});
  check([](auto& m) { m[7] = std::byte{0}; }, {"bits", "bits = 0", "1..8"});
  check([](auto& m) { m[7] = std::byte{9}; }, {"bits", "bits = 9"});
  check([](auto& m) { std::memset(m.data() + 8, 0, 4); }, {"block", "block = 0"});
  check([](auto& m) { m[11] = std::byte{0x10}; }, {"block", "1..16777216"});
  check([](auto& m) { m[12] = std::byte{0x59}; }, {"count", "holds 601 values", "output has 600"});
  check([](auto&) {}, {"count", "holds 600 values", "output has 599"}, n - 1);
  check([](auto& m) { m.pop_back(); }, {"size", "truncated", "needs"});
  check([](auto& m) { m.push_back(std::byte{0}); }, {"size", "trailing"});
  check([](auto& m) { m.resize(19); }, {"truncated", "19 bytes", "20-byte header"});
  check([](auto& m) { m.clear(); }, {"truncated", "0 bytes"});
  check([](auto& m) { m[7] = std::byte{8}; },
        {"size", "bits 8", "needs"});  // a consistent header, wrong length
  check([](auto& m) { put_f32(m, 20 + 4, NAN); }, {"scale", "block 1", "nan"});
  check([](auto& m) { put_f32(m, 20 + 8, INFINITY); }, {"scale", "block 2", "inf"});
  check([](auto& m) { put_f32(m, 20, -1.0f); }, {"scale", "block 0", "-1"});

  SECTION("min_max and lattice scales") {
    cd::stochastic_uniform<double> mm({.bits = 3, .block = 10, .scale = cd::scale_mode::min_max});
    const auto xd = random_values<double>(35, 1);
    std::vector<std::byte> m(mm.encoded_size(35));
    mm.encode(xd, m, 1);
    put_f32(m, 20 + 8 * 2 + 4, -0.5f);
    const std::string e1 = try_decode(mm, m, 35);
    CHECK(e1.find("block 2") != std::string::npos);
    CHECK(e1.find("range = -0.5") != std::string::npos);
    cd::lattice<float> l({.bits = 5, .block = 10});
    std::vector<std::byte> ml(l.encoded_size(35));
    l.encode(std::vector<float>(35, 0.5f), ml, 1);
    put_f32(ml, 20 + 4 * 3, 0.0f);
    const std::vector<float> ref(35, 0.0f);
    const std::string e2 = try_decode(l, ml, 35, ref);
    CHECK(e2.find("block 3") != std::string::npos);
    CHECK(e2.find(">= 2^-126") != std::string::npos);
  }
  SECTION("non-finite values encode to a message that does not decode") {
    auto bad = x;
    bad[300] = NAN;
    std::vector<std::byte> m(q.encoded_size(n));
    q.encode(bad, m, 1);
    const std::string e = try_decode(q, m, n);
    CHECK(e.find("block 1") != std::string::npos);
    bad[300] = INFINITY;
    cd::lattice<float> l({.bits = 8, .block = 256});
    std::vector<std::byte> ml(l.encoded_size(n));
    l.encode(bad, ml, 1);
    CHECK(try_decode(l, ml, n, x).find("block 1") != std::string::npos);
  }
  SECTION("identity") {
    cd::identity<double> id;
    const auto xd = random_values<double>(10, 1);
    std::vector<std::byte> m(id.encoded_size(10));
    id.encode(xd, m);
    auto m2 = m;
    m2[7] = std::byte{32};
    CHECK(try_decode(id, m2, 10).find("bits = 32") != std::string::npos);
    m2 = m;
    m2[8] = std::byte{1};
    CHECK(try_decode(id, m2, 10).find("no blocks") != std::string::npos);
    m2 = m;
    m2.resize(m2.size() - 8);
    CHECK(try_decode(id, m2, 10).find("truncated") != std::string::npos);
    CHECK(try_decode(cd::identity<float>{}, m, 10).find("value type") != std::string::npos);
  }
}

TEST_CASE("fuzz: random byte flips and truncations never crash", "[codec]") {
  // Each corrupted message either decodes (payload bits are all valid levels) or throws tether::error with
  // the output untouched (try_decode checks it). ASan/UBSan builds run this too.
  constexpr std::size_t n = 300;
  const auto x = random_values<float>(n, 6);
  cd::stochastic_uniform<float> su({.bits = 5, .block = 64, .scale = cd::scale_mode::min_max});
  cd::lattice<float> la({.bits = 3, .block = 64});
  cd::identity<float> id;
  std::vector<std::byte> m1(su.encoded_size(n)), m2(la.encoded_size(n)), m3(id.encoded_size(n));
  su.encode(x, m1, 1);
  la.encode(x, m2, 1);
  id.encode(x, m3, 1);
  tether::rng g(2024);
  int errors = 0;
  for (int t = 0; t < 400; ++t) {
    for (int which = 0; which < 3; ++which) {
      auto m = which == 0 ? m1 : which == 1 ? m2 : m3;
      const int flips = 1 + static_cast<int>(g.below(3));
      for (int f = 0; f < flips; ++f) {
        // bias towards the header and scales, where corruption is detectable
        const std::size_t span = g.below(2) ? std::min<std::size_t>(m.size(), 64) : m.size();
        m[g.below(span)] ^= std::byte{static_cast<unsigned char>(1 + g.below(255))};
      }
      if (g.below(4) == 0) m.resize(g.below(m.size() + 1));
      const std::string e = which == 0   ? try_decode(su, m, n)
                            : which == 1 ? try_decode(la, m, n, x)
                                         : try_decode(id, m, n);
      errors += e.empty() ? 0 : 1;
    }
  }
  CHECK(errors > 100);
}

namespace {

/// The scale bytes of block k of a message, as floats (1 for max_abs and the lattice, 2 for min_max).
float scale_at(const std::vector<std::byte>& m, std::size_t k, std::size_t per = 1, std::size_t j = 0) {
  float f;
  std::memcpy(&f, m.data() + 20 + 4 * (k * per + j), 4);
  return f;
}

/// Grid step of a block of x[base, end) by docs/codecs.md, in double: max_abs 2s/L with s = max |x|, min_max
/// (max - min)/L; for fp32 values a nonzero s or range below 2^-118 counts as 2^-118.
template <class T>
double grid_step(const std::vector<T>& x, std::size_t base, std::size_t end, cd::scale_mode sm, unsigned b) {
  double mn = double(x[base]), mx = mn, m = 0;
  for (std::size_t i = base; i < end; ++i)
    mn = std::min<double>(mn, x[i]), mx = std::max<double>(mx, x[i]), m = std::max<double>(m, std::abs(x[i]));
  double w = sm == cd::scale_mode::max_abs ? 2 * m : mx - mn;
  const double floor = sm == cd::scale_mode::max_abs ? 2 * 0x1p-118 : 0x1p-118;
  if (sizeof(T) == 4 && w != 0 && w < floor) w = floor;
  return w / (std::pow(2.0, b) - 1);
}

/// The rounding of the decode's lo + q*delta: a few ulps of the block's magnitude m (for fp32 at least
/// 2^-118, the smallest grid).
template <class T>
double decode_slack(double m) {
  return 8.0 * std::numeric_limits<T>::epsilon() * std::max(m, sizeof(T) == 4 ? 0x1p-118 : 0.0);
}

}  // namespace

TEMPLATE_TEST_CASE("min_max grids cover their block: lo + range >= max exactly", "[codec]", float, double) {
  // docs/codecs.md: lo is the largest float <= min x and the range the smallest float >= max x - lo, so the
  // grid [lo, lo + range] covers the block. max x - lo computed in double rounds down when lo is tiny next to
  // max x; then the range must be the float above. Checked exactly (codec_ref::covers: TwoSum) on blocks whose
  // minimum is tiny and negative next to a large maximum, and on random blocks of wide magnitudes.
  using T = TestType;
  cd::stochastic_uniform<T> q({.bits = 8, .block = 2, .scale = cd::scale_mode::min_max});
  const auto check = [&](T a, T b) {
    const std::vector<T> x{a, b};
    std::vector<std::byte> m(q.encoded_size(2));
    q.encode(x, m, 1);
    const float lo = scale_at(m, 0, 2, 0);
    const float w = scale_at(m, 0, 2, 1);
    const double mx = double(std::max(a, b));
    INFO("block {" << a << ", " << b << "}: lo = " << lo << ", range = " << w);
    CHECK(double(lo) <= double(std::min(a, b)));
    CHECK(codec_ref::covers(double(lo), double(w), mx));
    // And the smallest such float: one float less no longer covers (unless raised to the 2^-118 floor).
    const float less = std::nextafter(w, 0.0f);
    if (w > 0x1p-118f) CHECK_FALSE(codec_ref::covers(double(lo), double(less), mx));
  };
  check(T(-1e-30), T(1e10));  // the case found: d = 1e10 exactly, the range must exceed it
  check(T(-1e-20), T(3.0));
  check(T(-0x1p-60), T(1.0));
  std::mt19937_64 rng(99);
  std::uniform_real_distribution<double> mant(1.0, 2.0);
  std::uniform_int_distribution<int> ex(-80, 80);
  for (int k = 0; k < 20000; ++k) {
    const T a = T(-mant(rng) * std::ldexp(1.0, ex(rng)));
    const T b = T(mant(rng) * std::ldexp(1.0, ex(rng)));
    check(a, b);
  }
}

TEST_CASE("fp32 blocks of tiny values: bounded and unbiased (scales raised to 2^-118)", "[codec]") {
  // Below 2^-118, L/(2s) or L/w would overflow fp32 and every value would round to the top level.
  const std::vector<float> blocks[] = {{1e-37f, 0.0f, -5e-38f, 3e-38f, -1e-37f, 2e-39f, 0.0f, 7e-38f},
                                       {-1e-38f, 0.0f, 1e-38f, 5e-39f, 1e-45f, -3e-39f, 0.0f, 8e-39f}};
  constexpr int K = 2000;
  for (const auto& x : blocks) {
    for (auto sm : {cd::scale_mode::max_abs, cd::scale_mode::min_max}) {
      for (unsigned b : {1u, 4u, 8u}) {
        cd::stochastic_uniform<float> q({.bits = b, .block = 8, .scale = sm});
        std::vector<std::byte> msg(q.encoded_size(x.size()));
        std::vector<float> y(x.size());
        std::vector<double> sum(x.size(), 0.0);
        const double delta = grid_step(x, 0, x.size(), sm, b);
        double worst = 0;
        for (int k = 0; k < K; ++k) {
          q.encode(x, msg, tether::derive_seed(7, static_cast<std::uint64_t>(k)));
          q.decode(msg, y);
          for (std::size_t i = 0; i < x.size(); ++i) {
            worst = std::max(worst, std::abs(double(y[i]) - double(x[i])));
            sum[i] += y[i];
          }
        }
        CAPTURE(b, int(sm), worst, delta);
        REQUIRE(worst <= delta * (1 + 1e-6) + decode_slack<float>(1e-37));
        // the stored scale: 2^-118 (max_abs s; min_max w)
        CHECK(double(scale_at(msg, 0, sm == cd::scale_mode::max_abs ? 1 : 2,
                              sm == cd::scale_mode::max_abs ? 0 : 1)) == 0x1p-118);
        for (std::size_t i = 0; i < x.size(); ++i) {
          const double sd = delta / (2.0 * std::sqrt(double(K)));
          CAPTURE(b, int(sm), i, x[i], sum[i] / K, sd);
          REQUIRE(std::abs(sum[i] / K - double(x[i])) <= 5 * sd);
        }
      }
    }
  }
  // An all-zero block keeps scale 0 and decodes exactly.
  cd::stochastic_uniform<float> q({.bits = 8, .block = 4});
  const std::vector<float> z(4, 0.0f);
  std::vector<std::byte> msg(q.encoded_size(4));
  q.encode(z, msg, 3);
  std::vector<float> y(4, 1.0f);
  q.decode(msg, y);
  REQUIRE(y == z);
  REQUIRE(scale_at(msg, 0) == 0.0f);
}

TEMPLATE_TEST_CASE("blocks near the top of the fp32 range: finite and bounded, or rejected", "[codec]", float,
                   double) {
  // fp32 values decode in fp32: a grid reaching beyond 2^128 * (1 - 2^-20) (max_abs: s beyond half that) is
  // not encodable and its block gets a NaN scale; every other block decodes to finite values within one step.
  using T = TestType;
  constexpr bool fp32 = sizeof(T) == 4;
  const double top = 0x1p128 * (1.0 - 0x1p-20);
  const double fmax = double(std::numeric_limits<float>::max());
  tether::rng g(31);
  std::size_t rejected = 0, decoded = 0;
  for (auto sm : {cd::scale_mode::max_abs, cd::scale_mode::min_max}) {
    for (unsigned b : {1u, 3u, 8u}) {
      constexpr std::size_t B = 16, blocks = 200;
      std::vector<T> x(B * blocks);
      for (std::size_t k = 0; k < blocks; ++k) {
        // block k: values in [lo_k, hi_k] close to the top (every 4th block spans both signs)
        const double hi = (sm == cd::scale_mode::max_abs ? fmax / 2 : fmax) * (1.0 - 0x1p-18 * double(k % 8));
        const double lo = k % 4 == 3 ? -hi * 0.6 : hi * (0.9 + 0.0005 * double(k % 20));
        for (std::size_t i = 0; i < B; ++i) x[k * B + i] = static_cast<T>(lo + (hi - lo) * g.uniform());
        if (k % 5 == 0) x[k * B] = static_cast<T>(hi);
      }
      cd::stochastic_uniform<T> q({.bits = b, .block = B, .scale = sm});
      std::vector<std::byte> msg(q.encoded_size(B));
      std::vector<T> y(B);
      for (std::size_t k = 0; k < blocks; ++k) {
        const std::vector<T> xb(x.begin() + std::ptrdiff_t(k * B), x.begin() + std::ptrdiff_t(k * B + B));
        double mn = double(xb[0]), mx = mn, m = 0;
        for (T v : xb)
          mn = std::min<double>(mn, v), mx = std::max<double>(mx, v), m = std::max<double>(m, std::abs(v));
        // encodable by the rule above (fp64 values: any finite fp32 range)
        const bool fits = sm == cd::scale_mode::max_abs
                              ? (!fp32 || m <= top / 2)
                              : (mx - mn <= (fp32 ? top : fmax) && (!fp32 || mx <= top));
        for (std::uint64_t seed = 0; seed < 3; ++seed) {
          CAPTURE(int(sm), b, k, seed, mn, mx);
          q.encode(xb, msg, seed);
          const std::string e = try_decode(q, msg, B);
          if (!fits) {
            REQUIRE(e.find("scale: block 0") != std::string::npos);
            ++rejected;
            continue;
          }
          REQUIRE(e.empty());
          q.decode(msg, y);
          const double delta = grid_step(xb, 0, B, sm, b);
          for (std::size_t i = 0; i < B; ++i) {
            CAPTURE(i, double(xb[i]), double(y[i]), delta);
            REQUIRE(std::isfinite(y[i]));
            REQUIRE(std::abs(double(y[i]) - double(xb[i])) <= delta * (1 + 1e-6) + decode_slack<T>(m));
          }
          ++decoded;
        }
      }
    }
  }
  CHECK(decoded > 0);
  CHECK(rejected > 0);
}

TEST_CASE("fp32 values beyond the encodable range: a NaN scale at encode, rejected at decode", "[codec]") {
  // The reviewer's cases: max_abs s > 2^127 (2s overflows fp32), a min_max range beyond the fp32 range.
  cd::stochastic_uniform<float> ma({.bits = 8, .block = 4});
  const std::vector<float> x{3e38f, 1.0f, -2e38f, 0.0f};
  std::vector<std::byte> m(ma.encoded_size(4));
  ma.encode(x, m, 1);
  REQUIRE(std::isnan(scale_at(m, 0)));
  CHECK(try_decode(ma, m, 4).find("scale: block 0") != std::string::npos);
  cd::stochastic_uniform<float> mm({.bits = 8, .block = 2, .scale = cd::scale_mode::min_max});
  const std::vector<float> wide{-2e38f, 2e38f};
  std::vector<std::byte> m2(mm.encoded_size(2));
  mm.encode(wide, m2, 1);
  REQUIRE(std::isnan(scale_at(m2, 0, 2, 0)));
  REQUIRE(std::isnan(scale_at(m2, 0, 2, 1)));
  CHECK(try_decode(mm, m2, 2).find("scale: block 0") != std::string::npos);
  // The same for fp64 values, whose range is beyond the fp32 range of the stored scale.
  cd::stochastic_uniform<double> mmd({.bits = 8, .block = 2, .scale = cd::scale_mode::min_max});
  std::vector<std::byte> m3(mmd.encoded_size(2));
  mmd.encode(std::vector<double>{-2e38, 2e38}, m3, 1);
  REQUIRE(std::isnan(scale_at(m3, 0, 2, 1)));
  CHECK(try_decode(mmd, m3, 2).find("scale: block 0") != std::string::npos);
  // fp64 values up to the fp32 range encode (decoded in fp64: no overflow).
  cd::stochastic_uniform<double> mad({.bits = 8, .block = 4});
  std::vector<std::byte> m4(mad.encoded_size(4));
  mad.encode(std::vector<double>{3e38, 1.0, -2e38, 0.0}, m4, 1);
  REQUIRE(try_decode(mad, m4, 4).empty());
}

TEST_CASE("hostile fp32 scales outside the encoder's range are rejected", "[codec]") {
  // A message whose scale is finite but would decode to infinity or NaN (too large) or would make 1/delta
  // overflow (too small) is rejected naming the block, output untouched.
  const auto x = random_values<float>(40, 8);
  cd::stochastic_uniform<float> ma({.bits = 4, .block = 10});
  std::vector<std::byte> good(ma.encoded_size(40));
  ma.encode(x, good, 2);
  for (float bad : {3e38f, 0x1.fffffp+126f, 1e-37f, 1e-40f}) {
    auto m = good;
    put_f32(m, 20 + 4 * 2, bad);
    const std::string e = try_decode(ma, m, 40);
    CAPTURE(bad, e);
    CHECK(e.find("scale: block 2") != std::string::npos);
    CHECK(e.find("2^-118") != std::string::npos);
  }
  cd::stochastic_uniform<float> mm({.bits = 4, .block = 10, .scale = cd::scale_mode::min_max});
  good.resize(mm.encoded_size(40));
  mm.encode(x, good, 2);
  const std::pair<float, float> bad_pairs[] = {
      {3.2e38f, 3e37f}, {-1.0f, 0x1.fffffep+127f}, {1.0f, 1e-37f}, {-1.0f, 1e-40f}};
  for (auto [lo, w] : bad_pairs) {
    auto m = good;
    put_f32(m, 20 + 8 * 3, lo);
    put_f32(m, 20 + 8 * 3 + 4, w);
    const std::string e = try_decode(mm, m, 40);
    CAPTURE(lo, w, e);
    CHECK(e.find("scale: block 3") != std::string::npos);
  }
  // Zero scales (a block of zeros, a constant block) stay valid.
  auto m = good;
  put_f32(m, 20 + 8 * 3 + 4, 0.0f);
  CHECK(try_decode(mm, m, 40).empty());
}

TEMPLATE_TEST_CASE("lattice: huge steps never decode to infinity (fp32 steps above 2^96 rejected)", "[codec]",
                   float, double) {
  // The reviewer's case: with s = 2^127, x = FLT_MAX = (2 - 2^-23) * 2^127 rounds to k = 2 (with probability
  // 1 - 2^-23), whose lattice point 2 * 2^127 = 2^128 is beyond FLT_MAX; and x = 0 (k = 0) decoded next to
  // y = FLT_MAX with 2 bits gives k' = 256, 256 * 2^120 = 2^128 for s = 2^120. In fp32 both are infinity.
  using T = TestType;
  constexpr bool fp32 = sizeof(T) == 4;
  const float flt_max = std::numeric_limits<float>::max();
  static_assert(2.0 * 0x1p127 > double(std::numeric_limits<float>::max()));
  static_assert(256.0 * 0x1p120 > double(std::numeric_limits<float>::max()));
  for (unsigned b : {2u, 8u}) {
    for (float s : {0x1p97f, 0x1p120f, 0x1p127f, flt_max}) {
      CAPTURE(b, s);
      if constexpr (fp32) {
        // fp32: such a step is refused at construction ...
        require_error([&] { cd::lattice<T>({.bits = b, .block = 4, .step = s}); }, {"step", "2^96"});
        // ... and a message carrying it (made by hand from a valid one) is refused at decode.
        cd::lattice<T> q({.bits = b, .block = 4, .step = 1.0f});
        const std::vector<T> x{1, 2, 3, 4, 5, 6};
        std::vector<std::byte> m(q.encoded_size(x.size()));
        q.encode(x, m, 1);
        put_f32(m, 20 + 4 * 1, s);
        const std::string e = try_decode(q, m, x.size(), x);
        CAPTURE(e);
        CHECK(e.find("scale: block 1") != std::string::npos);
        CHECK(e.find("2^96") != std::string::npos);
      } else {
        // fp64 decodes in fp64: |k' s| <= 2^61 FLT_MAX is finite. Values x = k s (k integer, exact in
        // double): k is x/s exactly, and decoding next to y = x gives x bit for bit.
        cd::lattice<T> q({.bits = b, .block = 4, .step = s});
        const double sd = s;
        const std::vector<T> x{0.0, sd, -sd, 2 * sd, -3 * sd, 1000 * sd, -(0x1p51 - 1) * sd};
        std::vector<std::byte> m(q.encoded_size(x.size()));
        q.encode(x, m, 1);
        std::vector<T> y(x.size());
        q.decode(m, y, x);
        REQUIRE(y == x);
        // References as far as fp64 goes: finite lattice points.
        for (double far : {1e300, -1e300, std::numeric_limits<double>::max()}) {
          const std::vector<T> r(x.size(), far);
          q.decode(m, y, r);
          for (T v : y) REQUIRE(std::isfinite(v));
        }
      }
    }
  }
  if constexpr (fp32) {
    // The largest fp32 step, 2^96: x = k * 2^96 for integers |k| < 2^23 (exact), decoded next to y = x gives
    // x; next to y = x + (radius + 2s) (|y/s| < 2^24) a point of residue k mod 2^b other than k; next to
    // references at the fp32 limit a finite value.
    const float s = 0x1p96f;
    for (unsigned b : {2u, 5u, 8u}) {
      for (cd::plan pl : {cd::plan::per_block, cd::plan::per_byte}) {
        CAPTURE(b, pl);
        cd::lattice<T> q({.bits = b, .block = 3, .step = s, .plan = pl});
        const std::vector<double> k{0, 1, -1, 12345, 0x1p22, -(0x1p23 - 1), 0x1p23 - 1};
        std::vector<T> x;
        for (double kk : k) x.push_back(static_cast<T>(kk * double(s)));
        std::vector<std::byte> m(q.encoded_size(x.size()));
        q.encode(x, m, 7);
        std::vector<T> y(x.size());
        q.decode(m, y, x);
        REQUIRE(y == x);
        const double M = std::pow(2.0, b);
        std::vector<T> off(x.size());
        for (std::size_t i = 0; i < x.size(); ++i)
          off[i] = static_cast<T>((k[i] + (k[i] > 0 ? -1 : 1) * (M / 2 + 1)) * double(s));
        q.decode(m, y, off);
        for (std::size_t i = 0; i < x.size(); ++i) {
          CAPTURE(i);
          REQUIRE(std::isfinite(y[i]));
          const double j = (double(y[i]) / double(s) - k[i]) / M;
          REQUIRE(j == std::round(j));
          REQUIRE(j != 0.0);
        }
        for (float far : {flt_max, -flt_max, 0x1p127f, -0x1p127f}) {
          CAPTURE(far);
          const std::vector<T> r(x.size(), far);
          q.decode(m, y, r);
          for (T v : y) REQUIRE(std::isfinite(v));
        }
      }
    }
  }
}

namespace {

/// A user's codec, written only against the public concept: signs (1 bit per value) and one fp32 mean
/// magnitude per message.
struct sign_codec {
  using value_type = float;
  [[nodiscard]] std::size_t encoded_size(std::size_t n) const { return 4 + (n + 7) / 8; }
  template <class Exec>
  std::size_t encode(const Exec&, tether::view<const float> x, tether::view<std::byte> out,
                     std::uint64_t) const {
    float m = 0;
    for (std::size_t i = 0; i < x.size(); ++i) m += std::abs(x.data()[i]) / float(x.size());
    std::memcpy(out.data(), &m, 4);
    std::memset(out.data() + 4, 0, (x.size() + 7) / 8);
    for (std::size_t i = 0; i < x.size(); ++i)
      if (x.data()[i] >= 0) out.data()[4 + i / 8] |= std::byte(1u << (i % 8));
    return encoded_size(x.size());
  }
  template <class Exec>
  void decode(const Exec&, tether::view<const std::byte> in, tether::view<float> y) const {
    float m = 0;
    std::memcpy(&m, in.data(), 4);
    for (std::size_t i = 0; i < y.size(); ++i)
      y.data()[i] = (std::to_integer<unsigned>(in.data()[4 + i / 8]) >> (i % 8)) & 1u ? m : -m;
  }
};

struct not_a_codec {
  using value_type = float;
};

/// c.decode(args...) resolves (the overloads without an execution space).
template <class C, class... A>
concept serial_decodable = requires(const C& c, A&... a) {
  c.decode(a...);
};

}  // namespace

TEST_CASE("the codec concept: tether's codecs and a user's own", "[codec]") {
  STATIC_REQUIRE(cd::message_codec<cd::identity<float>>);
  STATIC_REQUIRE(cd::message_codec<cd::stochastic_uniform<double>>);
  STATIC_REQUIRE(cd::message_codec<cd::lattice<float>>);
  STATIC_REQUIRE(cd::self_decoding<cd::stochastic_uniform<float>, tether::exec::serial>);
  STATIC_REQUIRE(cd::reference_decoding<cd::lattice<float>, tether::exec::serial>);
  STATIC_REQUIRE_FALSE(cd::self_decoding<cd::lattice<float>, tether::exec::serial>);
  // The forms without an execution space: only the one the codec has (a requires-check of the other is false,
  // not a hard error in the body).
  using fv = std::vector<float>;
  using bv = std::vector<std::byte>;
  STATIC_REQUIRE(serial_decodable<cd::stochastic_uniform<float>, bv, fv>);
  STATIC_REQUIRE_FALSE(serial_decodable<cd::stochastic_uniform<float>, bv, fv, fv>);
  STATIC_REQUIRE(serial_decodable<cd::lattice<float>, bv, fv, fv>);
  STATIC_REQUIRE_FALSE(serial_decodable<cd::lattice<float>, bv, fv>);
  STATIC_REQUIRE(serial_decodable<cd::identity<float>, bv, fv>);
  STATIC_REQUIRE_FALSE(serial_decodable<cd::identity<float>, bv, fv, fv>);
  STATIC_REQUIRE(cd::message_codec<sign_codec>);
  STATIC_REQUIRE(cd::check_codec<sign_codec>());
  STATIC_REQUIRE_FALSE(cd::message_codec<not_a_codec>);
  sign_codec c;
  const std::vector<float> x{1.0f, -3.0f, 2.0f};
  std::vector<std::byte> m(c.encoded_size(3));
  REQUIRE(c.encode(tether::exec::serial{}, tether::view<const float>{x.data(), 3}, tether::as_view(m), 0) ==
          5);
  std::vector<float> y(3);
  c.decode(tether::exec::serial{}, tether::view<const std::byte>{m.data(), m.size()}, tether::as_view(y));
  REQUIRE(y == std::vector<float>{2.0f, -2.0f, 2.0f});
}
