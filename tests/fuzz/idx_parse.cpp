// libFuzzer target over the Fashion-MNIST IDX reader (examples/fashion_mnist/idx.hpp): every input is parsed in
// memory both as an image file and as a label file, gzip-compressed or raw, by parse_idx_images and
// parse_idx_labels, the parser that read_idx_images and read_idx_labels run on files. What must hold, for any
// input (docs/reliability.md):
//   - each parse either returns or throws tether::runtime_error (nothing else, no crash, no sanitizer report,
//     no leak), and the error message starts with the name given;
//   - a parsed image file has 28 x 28 images and exactly count * 784 pixels;
//   - a parsed label file has every label in 0..9.
// Built and run by scripts/fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined, linked with zlib); any
// violation aborts. Seeds: raw and gzip IDX files written by make_idx_corpus.cpp.
#include "idx.hpp"

#include <tether/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace {

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "idx_parse fuzz: %s\n", what);
  std::abort();
}

constexpr const char* name = "fuzz input";

void check_error(const tether::runtime_error& e) {
  if (std::string_view(e.what()).rfind(std::string_view(name), 0) != 0)
    violated("an error message does not start with the input's name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> bytes(data, size);
  try {
    const fmnist::raw_images r = fmnist::parse_idx_images(bytes, name);
    if (r.rows != fmnist::image_side || r.cols != fmnist::image_side) violated("parsed images are not 28 x 28");
    if (r.pixels.size() != r.count * fmnist::image_size) violated("pixel count differs from count * 784");
  } catch (const tether::runtime_error& e) {
    check_error(e);
  } catch (...) {
    violated("parse_idx_images threw something other than tether::runtime_error");
  }
  try {
    const auto labels = fmnist::parse_idx_labels(bytes, name);
    for (const std::uint8_t l : labels)
      if (l >= fmnist::classes) violated("a parsed label is above 9");
  } catch (const tether::runtime_error& e) {
    check_error(e);
  } catch (...) {
    violated("parse_idx_labels threw something other than tether::runtime_error");
  }
  return 0;
}
