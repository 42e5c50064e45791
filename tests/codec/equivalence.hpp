// Every codec on an execution space against exec::serial: the same message bytes and the same decoded values,
// bit for bit, for float and double, every bit width and two block sizes, N in {0, 1, 7, B-1, B, B+1, 4099,
// 70000} (70000 for 1, 3, 4 and 8 bits), every kernel plan. An adapter moves data between the host and the
// space's buffers:
//   buffer<T> make<T>(n); void upload(buffer<T>&, const std::vector<T>&); std::vector<T> download(const
//   buffer<T>&) auto view(buffer<T>&)   a tether::view in the space's memory
#pragma once

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tether/codec/identity.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"
#include "tether/core/rng.hpp"

namespace codec_test {

namespace cd = tether::codec;

template <class T>
std::vector<T> values(std::size_t n, std::uint64_t seed) {
  tether::rng g(seed);
  std::vector<T> x(n);
  for (auto& v : x) v = static_cast<T>(4.0 * g.uniform() - 2.0);
  return x;
}

/// One codec on `exec` (through adapter `ad`) against the same codec on exec::serial.
template <class Codec, class Exec, class Adapter>
void check_codec_on(const Codec& c, const Exec& exec, const Adapter& ad, std::size_t n, std::uint64_t seed) {
  using T = typename Codec::value_type;
  const auto x = values<T>(n, seed);
  auto y = x;
  for (auto& v : y) v += T(0.003);  // the lattice's reference: well within its radius
  const std::size_t bytes = c.encoded_size(n);

  std::vector<std::byte> want(bytes);
  std::vector<T> want_out(n);
  REQUIRE(c.encode(tether::exec::serial{}, x, want, seed) == bytes);
  if constexpr (cd::reference_decoding<Codec, tether::exec::serial>)
    c.decode(tether::exec::serial{}, want, want_out, y);
  else
    c.decode(tether::exec::serial{}, want, want_out);

  auto xd = ad.template make<T>(n);
  auto yd = ad.template make<T>(n);
  auto outd = ad.template make<T>(n);
  auto msgd = ad.template make<std::byte>(bytes);
  ad.upload(xd, x);
  ad.upload(yd, y);
  REQUIRE(c.encode(exec, ad.cview(xd), ad.view(msgd), seed) == bytes);
  if constexpr (cd::reference_decoding<Codec, tether::exec::serial>)
    c.decode(exec, ad.cview(msgd), ad.view(outd), ad.cview(yd));
  else
    c.decode(exec, ad.cview(msgd), ad.view(outd));
  if constexpr (requires { exec.fence(); }) exec.fence();
  REQUIRE(ad.download(msgd) == want);
  REQUIRE(ad.download(outd) == want_out);
}

/// The grid of codecs, sizes and plans.
template <class T, class Exec, class Adapter>
void check_space(const Exec& exec, const Adapter& ad) {
  for (auto pl : {cd::plan::automatic, cd::plan::per_block, cd::plan::per_byte}) {
    for (std::size_t B : {std::size_t{5}, std::size_t{256}}) {
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, B - 1, B, B + 1,
                            std::size_t{4099}, std::size_t{70000}}) {
        for (unsigned b = 1; b <= 8; ++b) {
          // every width (odd ones take the straddling packing path); the largest N only for 1, 3, 4, 8
          if (n == 70000 && b != 1 && b != 3 && b != 4 && b != 8) continue;
          CAPTURE(int(pl), B, n, b);
          check_codec_on(cd::stochastic_uniform<T>({.bits = b, .block = B, .plan = pl}), exec, ad, n, 1 + b);
          check_codec_on(cd::stochastic_uniform<T>(
                             {.bits = b, .block = B, .scale = cd::scale_mode::min_max, .plan = pl}),
                         exec, ad, n, 2 + b);
          if (b >= 2)
            check_codec_on(cd::lattice<T>({.bits = b, .block = B, .step = 0.01f, .plan = pl}), exec, ad, n,
                           3 + b);
        }
        check_codec_on(cd::identity<T>{}, exec, ad, n, 4);
      }
    }
  }
}

/// std::vector buffers in host memory (any host space).
struct host_adapter {
  template <class T>
  using buffer = std::vector<T>;
  template <class T>
  std::vector<T> make(std::size_t n) const {
    return std::vector<T>(n);
  }
  template <class T>
  void upload(std::vector<T>& b, const std::vector<T>& v) const {
    b = v;
  }
  template <class T>
  std::vector<T> download(const std::vector<T>& b) const {
    return b;
  }
  template <class T>
  tether::view<T> view(std::vector<T>& b) const {
    return {b.data(), b.size()};
  }
  template <class T>
  tether::view<const T> cview(std::vector<T>& b) const {
    return {b.data(), b.size()};
  }
};

}  // namespace codec_test
