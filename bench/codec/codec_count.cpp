/// \file
/// codec_count: one encode or decode of N = 2^20 fp32 values on exec::serial, for instruction counting with
/// callgrind (repeatable where timings are not; docs/codecs.md#performance):
///
///     valgrind --tool=callgrind --toggle-collect='*run_once*' codec_count encode su8
///
/// op: encode | decode; codec: identity su8 su4 su8_minmax lattice8. Instructions per value = Ir / 2^20.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tether/codec/identity.hpp"
#include "tether/codec/lattice.hpp"
#include "tether/codec/stochastic_uniform.hpp"

namespace {

namespace cd = tether::codec;
constexpr std::size_t n = std::size_t{1} << 20;

template <class Codec>
[[gnu::noinline]] void run_once(const Codec& c, bool encode, const std::vector<float>& x,
                                const std::vector<float>& y, std::vector<float>& z,
                                std::vector<std::byte>& msg) {
  if (encode) {
    c.encode(x, msg, 12345);
  } else if constexpr (cd::reference_decoding<Codec, tether::exec::serial>) {
    c.decode(msg, z, y);
  } else {
    c.decode(msg, z);
  }
}

template <class Codec>
int run(const Codec& c, bool encode) {
  std::vector<float> x(n), y(n), z(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = 0.001f * static_cast<float>(static_cast<int>((i * 2654435761u) % 2001u) - 1000);
    y[i] = x[i] + 0.0005f;
  }
  std::vector<std::byte> msg(c.encoded_size(n));
  c.encode(x, msg, 12345);
  run_once(c, encode, x, y, z, msg);
  unsigned sum = 0;
  for (std::size_t i = 0; i < msg.size(); i += 4097) sum += static_cast<unsigned>(msg[i]);
  std::printf("checksum %u %g\n", sum, static_cast<double>(z[n / 3]));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: codec_count encode|decode identity|su8|su4|su8_minmax|lattice8\n");
    return 2;
  }
  const bool encode = std::string(argv[1]) == "encode";
  const std::string name = argv[2];
  if (name == "identity") return run(cd::identity<float>{}, encode);
  if (name == "su8") return run(cd::stochastic_uniform<float>({.bits = 8, .block = 256}), encode);
  if (name == "su4") return run(cd::stochastic_uniform<float>({.bits = 4, .block = 256}), encode);
  if (name == "su8_minmax")
    return run(cd::stochastic_uniform<float>({.bits = 8, .block = 256, .scale = cd::scale_mode::min_max}),
               encode);
  if (name == "lattice8") return run(cd::lattice<float>({.bits = 8, .block = 256, .step = 1e-4f}), encode);
  std::fprintf(stderr, "unknown codec %s\n", name.c_str());
  return 2;
}
