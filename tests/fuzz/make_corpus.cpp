// Writes the seed corpus of the codec_decode fuzz target: valid messages of every codec and value type, for a
// few counts, bits and block sizes (the first byte selects the decoder as codec_decode.cpp reads it).
// Usage: make_corpus <folder>
#include <tether/codec/identity.hpp>
#include <tether/codec/lattice.hpp>
#include <tether/codec/stochastic_uniform.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace {

int files = 0;

template <class T, class Codec>
void write(const std::string& dir, std::uint8_t sel, const Codec& c, std::size_t n) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<T>(std::sin(0.37 * static_cast<double>(i)) * 2.5);
  std::vector<std::byte> msg(c.encoded_size(n));
  c.encode(tether::exec::serial{}, x, msg, 42);
  std::ofstream f(dir + "/seed_" + std::to_string(files++), std::ios::binary);
  f.put(static_cast<char>(sel));
  f.write(reinterpret_cast<const char*>(msg.data()), static_cast<std::streamsize>(msg.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <folder>\n");
    return 2;
  }
  const std::string dir = argv[1];
  using tether::codec::scale_mode;
  for (std::size_t n : {0u, 1u, 7u, 100u, 300u}) {
    write<float>(dir, 0, tether::codec::identity<float>{}, n);
    write<double>(dir, 1, tether::codec::identity<double>{}, n);
    for (unsigned bits : {1u, 3u, 4u, 8u}) {
      for (std::size_t block : {1u, 8u, 64u, 256u}) {
        write<float>(dir, 2, tether::codec::stochastic_uniform<float>({.bits = bits, .block = block}), n);
        write<float>(dir, 3, tether::codec::stochastic_uniform<float>({.bits = bits, .block = block, .scale = scale_mode::min_max}), n);
        write<double>(dir, 4, tether::codec::stochastic_uniform<double>({.bits = bits, .block = block}), n);
        write<double>(dir, 5, tether::codec::stochastic_uniform<double>({.bits = bits, .block = block, .scale = scale_mode::min_max}), n);
        if (bits >= 2) {
          write<float>(dir, 6, tether::codec::lattice<float>({.bits = bits, .block = block, .step = 0.01f}), n);
          write<double>(dir, 7, tether::codec::lattice<double>({.bits = bits, .block = block, .step = 0.01f}), n);
        }
      }
    }
  }
  std::printf("make_corpus: %d seed messages in %s\n", files, dir.c_str());
  return 0;
}
