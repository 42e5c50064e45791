// libFuzzer target over every codec decoder (docs/codecs.md#fuzzing): identity, stochastic_uniform (max_abs and
// min_max) and lattice, for fp32 and fp64 outputs. The first input byte picks the decoder and seeds the lattice's
// reference; the rest is the message. The output buffer has the count the message's header claims (capped), so
// that the fuzzer reaches past the header checks. What must hold, for any input:
//   - decode either returns or throws tether::error (nothing else, no crash, no sanitizer report);
//   - when it throws, the output is left exactly as it was;
//   - when it returns, every value of stochastic_uniform and lattice (finite reference) is finite.
// The forms without an execution space (exec::serial) are called, as docs/codecs.md shows them; they run the
// forms with one. Built and run by scripts/fuzz.sh (clang++ -fsanitize=fuzzer,address,undefined); any violation
// aborts.
#include <tether/codec/identity.hpp>
#include <tether/codec/lattice.hpp>
#include <tether/codec/stochastic_uniform.hpp>
#include <tether/core/error.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

namespace {

constexpr std::uint64_t max_count = 1 << 16;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "codec_decode fuzz: %s\n", what);
  std::abort();
}

template <class T, class Decode>
void check(std::span<const std::byte> msg, std::uint8_t salt, bool must_be_finite, Decode&& decode) {
  std::uint64_t count = 0;
  if (msg.size() >= 20) std::memcpy(&count, msg.data() + 12, sizeof count);
  if (count > max_count) count = salt % 64;  // a huge claimed count: decode into a small buffer (count error)
  std::vector<T> out(static_cast<std::size_t>(count));
  std::vector<T> reference(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<T>(-7.25);  // a sentinel
    reference[i] = static_cast<T>((static_cast<int>((i * 131 + salt) % 512) - 256) * 0.01);
  }
  const std::vector<T> before = out;
  try {
    decode(msg, std::span<T>(out), std::span<const T>(reference));
  } catch (const tether::error&) {
    if (!out.empty() && std::memcmp(out.data(), before.data(), out.size() * sizeof(T)) != 0)
      violated("a failed decode wrote its output");
    return;
  } catch (...) {
    violated("decode threw something other than tether::error");
  }
  if (must_be_finite)
    for (const T v : out)
      if (!std::isfinite(v)) violated("a decoded value is not finite");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t sel = data[0];
  const std::span<const std::byte> msg(reinterpret_cast<const std::byte*>(data + 1), size - 1);
  const auto plain = [](const auto& codec) {
    return [&codec](std::span<const std::byte> m, auto out, auto) { codec.decode(m, out); };
  };
  const auto referenced = [](const auto& codec) {
    return [&codec](std::span<const std::byte> m, auto out, auto ref) { codec.decode(m, out, ref); };
  };
  using tether::codec::scale_mode;
  switch (sel % 8) {
    case 0: check<float>(msg, sel, false, plain(tether::codec::identity<float>{})); break;
    case 1: check<double>(msg, sel, false, plain(tether::codec::identity<double>{})); break;
    case 2: {
      const tether::codec::stochastic_uniform<float> c({.scale = scale_mode::max_abs});
      check<float>(msg, sel, true, plain(c));
      break;
    }
    case 3: {
      const tether::codec::stochastic_uniform<float> c({.scale = scale_mode::min_max});
      check<float>(msg, sel, true, plain(c));
      break;
    }
    case 4: {
      const tether::codec::stochastic_uniform<double> c({.scale = scale_mode::max_abs});
      check<double>(msg, sel, true, plain(c));
      break;
    }
    case 5: {
      const tether::codec::stochastic_uniform<double> c({.scale = scale_mode::min_max});
      check<double>(msg, sel, true, plain(c));
      break;
    }
    case 6: check<float>(msg, sel, true, referenced(tether::codec::lattice<float>{})); break;
    case 7: check<double>(msg, sel, true, referenced(tether::codec::lattice<double>{})); break;
  }
  return 0;
}
