// Must NOT compile: a type without encode/decode checked as a codec. The CTest codec_concept_compile_error
// builds this target and expects the static_assert naming docs/codecs.md.
#include "tether/codec/codec.hpp"

struct half_a_codec {
  using value_type = float;
  std::size_t encoded_size(std::size_t n) const { return n; }
};

int main() {
  return tether::codec::check_codec<half_a_codec>() ? 0 : 1;
}
