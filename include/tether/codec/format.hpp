#pragma once
/// \file
/// The codecs' wire format (docs/codecs.md#wire-format): a 20-byte header, then the per-block scales, then
/// the packed payload. Every multi-byte field is little-endian. Reading and checking a header happens on the
/// host.
///
///     offset  size  field
///          0     4  magic "TCOD"
///          4     1  version (1)
///          5     1  codec kind (codec::kind; 128..255 for users' codecs)
///          6     1  value type (1 = fp32, 2 = fp64)
///          7     1  bits per value
///          8     4  block size B (values per scale; 0 for codecs without blocks)
///         12     8  element count N

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "tether/core/error.hpp"

namespace tether::codec {

static_assert(
    std::endian::native == std::endian::little,
    "tether codecs write scales and values in the machine's byte order, which must be little-endian");

/// Codec kinds written into a message header. Users' codecs pick a value in [128, 255].
enum class kind : std::uint8_t {
  identity = 1,                    ///< fp32/fp64 values as they are
  stochastic_uniform_max_abs = 2,  ///< per-block max-abs scale, stochastic rounding
  stochastic_uniform_min_max = 3,  ///< per-block minimum and range, stochastic rounding
  lattice = 4,                     ///< round(x/s) mod 2^b, decoded next to a reference
};

/// The first byte of the kinds reserved for users' codecs.
inline constexpr std::uint8_t first_user_kind = 128;

/// Value types of a message.
enum class value_code : std::uint8_t { fp32 = 1, fp64 = 2 };

/// The value-type code of T (float or double).
template <class T>
inline constexpr value_code value_code_of = sizeof(T) == 4 ? value_code::fp32 : value_code::fp64;

inline constexpr std::array<unsigned char, 4> magic{'T', 'C', 'O', 'D'};  ///< the first four bytes
inline constexpr std::uint8_t format_version = 1;                         ///< the version this code writes
inline constexpr std::size_t header_size = 20;                            ///< bytes before the scales
inline constexpr std::size_t max_block = std::size_t{1} << 24;            ///< largest block size B

/// A message header, as read from (or to be written to) the first header_size bytes.
struct header {
  std::uint8_t version = format_version;
  std::uint8_t kind = 0;
  std::uint8_t value_type = 0;
  std::uint8_t bits = 0;
  std::uint32_t block = 0;
  std::uint64_t count = 0;
};

/// The header's bytes.
[[nodiscard]] inline std::array<unsigned char, header_size> header_bytes(const header& h) noexcept {
  std::array<unsigned char, header_size> b{};
  for (std::size_t i = 0; i < 4; ++i) b[i] = magic[i];
  b[4] = h.version;
  b[5] = h.kind;
  b[6] = h.value_type;
  b[7] = h.bits;
  for (std::size_t i = 0; i < 4; ++i) b[8 + i] = static_cast<unsigned char>(h.block >> (8 * i));
  for (std::size_t i = 0; i < 8; ++i) b[12 + i] = static_cast<unsigned char>(h.count >> (8 * i));
  return b;
}

/// A printable name of a kind byte.
[[nodiscard]] inline std::string kind_name(std::uint8_t k) {
  switch (k) {
    case static_cast<std::uint8_t>(kind::identity):
      return "identity (1)";
    case static_cast<std::uint8_t>(kind::stochastic_uniform_max_abs):
      return "stochastic_uniform max_abs (2)";
    case static_cast<std::uint8_t>(kind::stochastic_uniform_min_max):
      return "stochastic_uniform min_max (3)";
    case static_cast<std::uint8_t>(kind::lattice):
      return "lattice (4)";
    default:
      return (k >= first_user_kind ? "user codec (" : "unknown kind (") + std::to_string(unsigned{k}) + ")";
  }
}

/// Reads a header from a message in host memory, checking its length, magic and version (tether::error naming
/// the field otherwise). `who` prefixes the message ("codec lattice: decode").
[[nodiscard]] inline header read_header(std::span<const std::byte> msg, const char* who = "codec: decode") {
  tether::detail::require(msg.size() >= header_size, who, ": message truncated: ", msg.size(),
                          " bytes, shorter than the ", header_size, "-byte header");
  std::array<unsigned char, header_size> b{};
  std::memcpy(b.data(), msg.data(), header_size);
  for (std::size_t i = 0; i < 4; ++i) {
    if (b[i] != magic[i]) {
      throw error(tether::detail::concat("tether: ", who, ": magic: bytes 0-3 are ", unsigned{b[0]}, " ",
                                         unsigned{b[1]}, " ", unsigned{b[2]}, " ", unsigned{b[3]},
                                         ", expected \"TCOD\" (84 67 79 68): not a tether codec message"));
    }
  }
  header h;
  h.version = b[4];
  h.kind = b[5];
  h.value_type = b[6];
  h.bits = b[7];
  for (std::size_t i = 0; i < 4; ++i) h.block |= static_cast<std::uint32_t>(b[8 + i]) << (8 * i);
  for (std::size_t i = 0; i < 8; ++i) h.count |= static_cast<std::uint64_t>(b[12 + i]) << (8 * i);
  tether::detail::require(h.version == format_version, who, ": version: message has version ",
                          unsigned{h.version}, ", this build reads version ", unsigned{format_version});
  return h;
}

/// Bytes of the packed payload of n values of `bits` bits in blocks of `block` values: every block starts on
/// a byte boundary, so the blocks can be packed and unpacked independently.
[[nodiscard]] constexpr std::size_t payload_size(std::size_t n, unsigned bits, std::size_t block) noexcept {
  if (block == 0) return 0;
  const std::size_t full = n / block;
  const std::size_t rest = n % block;
  return full * ((block * bits + 7) / 8) + (rest * bits + 7) / 8;
}

/// Exact size of a block-quantized message: header + ceil(n/B) scales of `scale_bytes` + payload.
/// With B a multiple of 8: header_size + scale_bytes*ceil(N/B) + ceil(N*b/8).
[[nodiscard]] constexpr std::size_t quantized_size(std::size_t n, unsigned bits, std::size_t block,
                                                   std::size_t scale_bytes) noexcept {
  const std::size_t blocks = block == 0 ? 0 : (n + block - 1) / block;
  return header_size + blocks * scale_bytes + payload_size(n, bits, block);
}

namespace detail {

using tether::detail::concat;
using tether::detail::require;

/// What a codec expects of a message header; check_header throws tether::error naming the first bad field.
struct expected_header {
  const char* who;            ///< "codec stochastic_uniform: decode"
  std::uint8_t kind;          ///< the codec's kind
  std::uint8_t value_type;    ///< value_code of the output
  unsigned bits_min;          ///< smallest valid bits
  unsigned bits_max;          ///< largest valid bits
  bool blocks;                ///< false: block must be 0 (no scales)
  std::size_t scale_bytes;    ///< bytes of one block's scale
  std::size_t message_bytes;  ///< the message's length
  std::size_t out_count;      ///< elements of the output buffer
};

/// Checks every field of `h` against `e` (kind, value type, bits, block, count, then the exact size).
inline void check_header(const header& h, const expected_header& e) {
  const char* who = e.who;
  require(h.kind == e.kind, who, ": kind: message is ", kind_name(h.kind), ", this codec decodes ",
          kind_name(e.kind));
  const auto vt_name = [](unsigned v) {
    return v == 1   ? std::string("fp32 (1)")
           : v == 2 ? std::string("fp64 (2)")
                    : "unknown (" + std::to_string(v) + ")";
  };
  require(h.value_type == e.value_type, who, ": value type: message holds ", vt_name(h.value_type),
          ", output is ", vt_name(e.value_type));
  require(h.bits >= e.bits_min && h.bits <= e.bits_max, who, ": bits: message has bits = ", unsigned{h.bits},
          ", valid: ", e.bits_min, "..", e.bits_max);
  if (e.blocks) {
    require(h.block >= 1 && h.block <= max_block, who, ": block: message has block = ", h.block,
            ", valid: 1..", max_block);
  } else {
    require(h.block == 0, who, ": block: message has block = ", h.block, ", this codec has no blocks (0)");
  }
  require(h.count == e.out_count, who, ": count: message holds ", h.count, " values, the output has ",
          e.out_count);
  const std::size_t need = e.blocks ? quantized_size(e.out_count, h.bits, h.block, e.scale_bytes)
                                    : header_size + e.out_count * (h.bits / 8);
  require(e.message_bytes == need, who, ": size: message is ", e.message_bytes, " bytes, its header (count ",
          h.count, ", bits ", unsigned{h.bits}, ", block ", h.block, ") needs ", need, " bytes",
          e.message_bytes < need ? " (truncated)" : " (trailing bytes)");
}

}  // namespace detail
}  // namespace tether::codec
