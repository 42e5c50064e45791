#pragma once
/// \file
/// The kernels and the host-side driver shared by the block-quantizing codecs (stochastic_uniform, lattice).
///
/// Kernels are functors run through an execution space's parallel_for (docs/codecs.md#kernels):
///   encode_blocks   one work item per block: the block's scale, then its payload bytes (host spaces)
///   encode_scales   one work item per block: the scale only               } device spaces: coalesced
///   encode_bytes    one work item per payload byte, reading its block's scale } payload writes
///   decode_blocks   one work item per block (host spaces)
///   decode_values   one work item per element (device spaces)
/// Both plans call the same per-byte and per-value functions, so they write the same bytes. Known GPU
/// limitation (docs/codecs.md#kernels-and-execution-spaces): encode_scales loops over a whole block in one
/// work item (strided, uncoalesced reads), and every per-byte/per-element item re-derives its block's grid.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "tether/codec/detail/random.hpp"
#include "tether/codec/detail/rules.hpp"
#include "tether/codec/detail/tuning.hpp"
#include "tether/codec/format.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"

namespace tether::codec {

/// How a codec's kernels split the work (a tuning knob; every plan writes the same bytes).
enum class plan : std::uint8_t {
  automatic,  ///< per_block for host memory, per_byte for device memory
  per_block,  ///< one work item per block (long sequential loops: CPUs)
  per_byte,   ///< one work item per payload byte to encode, per element to decode (GPUs)
};

namespace detail {

/// Where the parts of a block-quantized message are.
struct message_layout {
  std::size_t n;            ///< values
  std::size_t block;        ///< values per block
  std::size_t blocks;       ///< ceil(n / block)
  std::size_t block_bytes;  ///< payload bytes of a full block: ceil(block * bits / 8)
  std::size_t payload;      ///< payload bytes in all
};

[[nodiscard]] constexpr message_layout layout_of(std::size_t n, unsigned bits, std::size_t block) noexcept {
  return {n, block, (n + block - 1) / block, (block * bits + 7) / 8, payload_size(n, bits, block)};
}

/// The payload byte jj of a block: the bits of the levels of the values it covers (least significant first).
template <class Rule, unsigned Bits, class Grid>
TETHER_HOST_DEVICE inline unsigned char pack_byte(const Grid& c, const typename Rule::value_type* x,
                                                  std::size_t base, std::size_t nk, std::size_t jj,
                                                  std::uint64_t key) noexcept {
  unsigned acc = 0;
  if constexpr (8 % Bits == 0) {
    constexpr std::size_t per = 8 / Bits;
    for (std::size_t t = 0; t < per; ++t) {
      const std::size_t v = jj * per + t;
      if (v < nk) acc |= Rule::template level<Bits>(c, x[base + v], random_bits(key, base + v)) << (t * Bits);
    }
  } else {
    const std::size_t first = (8 * jj) / Bits;
    const std::size_t last_bit = (8 * jj + 7) / Bits;
    const std::size_t last = last_bit < nk - 1 ? last_bit : nk - 1;
    for (std::size_t v = first; v <= last; ++v) {
      const unsigned q = Rule::template level<Bits>(c, x[base + v], random_bits(key, base + v));
      const std::size_t bit = v * Bits;
      acc |= bit >= 8 * jj ? q << (bit - 8 * jj) : q >> (8 * jj - bit);
    }
  }
  return static_cast<unsigned char>(acc & 0xFFu);
}

/// The level of value v of a block whose payload starts at p.
template <unsigned Bits>
TETHER_HOST_DEVICE inline unsigned unpack(const std::byte* p, std::size_t v) noexcept {
  constexpr unsigned mask = (1u << Bits) - 1;
  if constexpr (8 % Bits == 0) {
    constexpr std::size_t per = 8 / Bits;
    return (static_cast<unsigned>(p[v / per]) >> ((v % per) * Bits)) & mask;
  } else {
    const std::size_t bit = v * Bits;
    const std::size_t byte = bit / 8;
    const unsigned sh = static_cast<unsigned>(bit % 8);
    unsigned w = static_cast<unsigned>(p[byte]);
    if (sh + Bits > 8) w |= static_cast<unsigned>(p[byte + 1]) << 8;
    return (w >> sh) & mask;
  }
}

/// Values per chunk of the per-block kernels (codec_tuning::chunk_values). Levels are computed into (or read
/// from) a small array by a loop without branches or 64-bit arithmetic, which compilers vectorise, then packed
/// (unpacked) separately.
inline constexpr std::size_t chunk_values = tuning.chunk_values;

/// lv[t] = the level of x[t], the element of index i0 + t, for t in [0, m).
template <class Rule, unsigned Bits, class Grid>
TETHER_HOST_DEVICE inline void levels_of(const Grid& c, const typename Rule::value_type* TETHER_RESTRICT x,
                                         std::size_t i0, std::size_t m, std::uint64_t key,
                                         unsigned char* TETHER_RESTRICT lv) noexcept {
  const auto j0 = static_cast<std::uint64_t>(i0);
  const auto lo0 = static_cast<std::uint32_t>(j0);
  if (static_cast<std::uint64_t>(lo0) + m <= (std::uint64_t{1} << 32)) {  // one high word: 32-bit counters
    const auto k0 = static_cast<std::uint32_t>(key);
    const std::uint32_t k1 = round_key(key, static_cast<std::uint32_t>(j0 >> 32));
    const auto mm = static_cast<std::uint32_t>(m);
    for (std::uint32_t t = 0; t < mm; ++t)
      lv[t] = static_cast<unsigned char>(Rule::template level<Bits>(c, x[t], counter_bits(lo0 + t, k0, k1)));
  } else {  // the chunk crosses a multiple of 2^32
    for (std::size_t t = 0; t < m; ++t)
      lv[t] = static_cast<unsigned char>(Rule::template level<Bits>(c, x[t], random_bits(key, i0 + t)));
  }
}

/// Packs levels lv[0, m) (zero up to the next multiple of 8) into ceil(m*Bits/8) bytes.
template <unsigned Bits>
TETHER_HOST_DEVICE inline void pack_levels(const unsigned char* TETHER_RESTRICT lv, std::size_t m,
                                           std::byte* TETHER_RESTRICT out) noexcept {
  const std::size_t nb = (m * Bits + 7) / 8;
  if constexpr (8 % Bits == 0) {
    constexpr std::size_t per = 8 / Bits;
    for (std::size_t j = 0; j < nb; ++j) {
      unsigned acc = 0;
      for (std::size_t t = 0; t < per; ++t) acc |= static_cast<unsigned>(lv[j * per + t]) << (t * Bits);
      out[j] = std::byte{static_cast<unsigned char>(acc)};
    }
  } else {  // 8 values make Bits bytes
    for (std::size_t g = 0; g * Bits < nb; ++g) {
      std::uint64_t acc = 0;
      for (std::size_t t = 0; t < 8; ++t) acc |= static_cast<std::uint64_t>(lv[8 * g + t]) << (t * Bits);
      const std::size_t end = nb - g * Bits < Bits ? nb - g * Bits : Bits;
      for (std::size_t b = 0; b < end; ++b)
        out[g * Bits + b] = std::byte{static_cast<unsigned char>(acc >> (8 * b))};
    }
  }
}

/// Unpacks the levels of values [0, m) of the bytes at p into lv.
template <unsigned Bits>
TETHER_HOST_DEVICE inline void unpack_levels(const std::byte* TETHER_RESTRICT p, std::size_t m,
                                             unsigned char* TETHER_RESTRICT lv) noexcept {
  if constexpr (Bits == 4) {
    const std::size_t pairs = m / 2;
    for (std::size_t j = 0; j < pairs; ++j) {
      const auto b = static_cast<unsigned>(p[j]);
      lv[2 * j] = static_cast<unsigned char>(b & 15u);
      lv[2 * j + 1] = static_cast<unsigned char>(b >> 4);
    }
    if (m % 2 != 0) lv[m - 1] = static_cast<unsigned char>(static_cast<unsigned>(p[pairs]) & 15u);
  } else {
    for (std::size_t v = 0; v < m; ++v) lv[v] = static_cast<unsigned char>(unpack<Bits>(p, v));
  }
}

/// Encoder state shared by the encode kernels.
template <class Rule>
struct encode_args {
  using T = typename Rule::value_type;
  Rule rule;
  const T* x;
  std::byte* scales;
  std::byte* payload;
  message_layout m;
  std::uint64_t key;
};

/// One block: scale, then payload bytes.
template <class Rule, unsigned Bits>
struct encode_blocks {
  /// An item loops over a block or over the values of a byte: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  encode_args<Rule> a;
  TETHER_HOST_DEVICE void operator()(std::size_t k) const {
    const std::size_t base = k * a.m.block;
    const std::size_t nk = a.m.n - base < a.m.block ? a.m.n - base : a.m.block;
    const auto p = a.rule.compute(a.x + base, nk);
    Rule::store(a.scales + k * Rule::scale_bytes, p);
    const auto c = Rule::template prepare<Bits>(p);
    std::byte* out = a.payload + k * a.m.block_bytes;
    unsigned char lv[chunk_values];
    for (std::size_t v0 = 0; v0 < nk; v0 += chunk_values) {
      const std::size_t m = nk - v0 < chunk_values ? nk - v0 : chunk_values;
      if constexpr (Bits == 8) {  // the levels are the bytes
        levels_of<Rule, Bits>(c, a.x + base + v0, base + v0, m, a.key,
                              reinterpret_cast<unsigned char*>(out + v0));
      } else {
        levels_of<Rule, Bits>(c, a.x + base + v0, base + v0, m, a.key, lv);
        for (std::size_t t = m; t % 8 != 0; ++t) lv[t] = 0;
        pack_levels<Bits>(lv, m, out + v0 / 8 * Bits);
      }
    }
  }
};

/// One block's scale.
template <class Rule>
struct encode_scales {
  /// An item loops over a block or over the values of a byte: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  encode_args<Rule> a;
  TETHER_HOST_DEVICE void operator()(std::size_t k) const {
    const std::size_t base = k * a.m.block;
    const std::size_t nk = a.m.n - base < a.m.block ? a.m.n - base : a.m.block;
    Rule::store(a.scales + k * Rule::scale_bytes, a.rule.compute(a.x + base, nk));
  }
};

/// One payload byte (after encode_scales).
template <class Rule, unsigned Bits>
struct encode_bytes {
  /// An item loops over a block or over the values of a byte: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  encode_args<Rule> a;
  TETHER_HOST_DEVICE void operator()(std::size_t j) const {
    const std::size_t k = j / a.m.block_bytes;
    const std::size_t jj = j - k * a.m.block_bytes;
    const std::size_t base = k * a.m.block;
    const std::size_t nk = a.m.n - base < a.m.block ? a.m.n - base : a.m.block;
    const auto c = Rule::template prepare<Bits>(Rule::load(a.scales + k * Rule::scale_bytes));
    a.payload[j] = std::byte{pack_byte<Rule, Bits>(c, a.x, base, nk, jj, a.key)};
  }
};

/// Decoder state shared by the decode kernels.
template <class Rule>
struct decode_args {
  using T = typename Rule::value_type;
  const std::byte* scales;
  const std::byte* payload;
  const T* reference;  ///< lattice only; may equal out
  T* out;
  message_layout m;
};

/// One block.
template <class Rule, unsigned Bits>
struct decode_blocks {
  using T = typename Rule::value_type;
  /// An item loops over a block or over the values of a byte: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  decode_args<Rule> a;
  TETHER_HOST_DEVICE void operator()(std::size_t k) const {
    const std::size_t base = k * a.m.block;
    const std::size_t nk = a.m.n - base < a.m.block ? a.m.n - base : a.m.block;
    const auto c = Rule::template prepare<Bits>(Rule::load(a.scales + k * Rule::scale_bytes));
    const std::byte* p = a.payload + k * a.m.block_bytes;
    T* out = a.out + base;
    const T* y = Rule::uses_reference ? a.reference + base : nullptr;
    unsigned char buf[chunk_values];
    for (std::size_t v0 = 0; v0 < nk; v0 += chunk_values) {
      const std::size_t m = nk - v0 < chunk_values ? nk - v0 : chunk_values;
      const unsigned char* lv = buf;
      if constexpr (Bits == 8)
        lv = reinterpret_cast<const unsigned char*>(p + v0);
      else
        unpack_levels<Bits>(p + v0 / 8 * Bits, m, buf);
      T* o = out + v0;
      if constexpr (Rule::uses_reference) {
        const T* r = y + v0;  // may equal o (decoding in place): element t is read before it is written
        for (std::size_t t = 0; t < m; ++t) o[t] = Rule::template value<Bits>(c, lv[t], r[t]);
      } else {
        for (std::size_t t = 0; t < m; ++t) o[t] = Rule::template value<Bits>(c, lv[t], T(0));
      }
    }
  }
};

/// One element.
template <class Rule, unsigned Bits>
struct decode_values {
  using T = typename Rule::value_type;
  /// Unpacking a level and the rule's value() vectorise for some widths only: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  decode_args<Rule> a;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    const std::size_t k = i / a.m.block;
    const std::size_t v = i - k * a.m.block;
    const auto c = Rule::template prepare<Bits>(Rule::load(a.scales + k * Rule::scale_bytes));
    const T y = Rule::uses_reference ? a.reference[i] : T(0);
    a.out[i] = Rule::template value<Bits>(c, unpack<Bits>(a.payload + k * a.m.block_bytes, v), y);
  }
};

/// True for block k whose scale read from a message is unusable.
template <class Rule>
struct bad_scale {
  /// A scale's load and check do not vectorise for every rule: not a SIMD lane (exec::simd_items).
  static constexpr bool simd = false;
  const std::byte* scales;
  TETHER_HOST_DEVICE bool operator()(std::size_t k) const {
    return !Rule::valid(Rule::load(scales + k * Rule::scale_bytes));
  }
};

/// Writes a header's bytes (a kernel, for messages in device memory).
struct store_header {
  unsigned char b[header_size];
  std::byte* dst;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const { dst[i] = std::byte{b[i]}; }
};

/// Calls f.template operator()<B>() with B = bits, for bits in [1, 8].
template <class F>
decltype(auto) with_bits(unsigned bits, F&& f) {
  switch (bits) {
    case 1:
      return f.template operator()<1>();
    case 2:
      return f.template operator()<2>();
    case 3:
      return f.template operator()<3>();
    case 4:
      return f.template operator()<4>();
    case 5:
      return f.template operator()<5>();
    case 6:
      return f.template operator()<6>();
    case 7:
      return f.template operator()<7>();
    default:
      return f.template operator()<8>();
  }
}

/// True when `Exec` can hand a device message's bytes to the host (exec::cuda, exec::thrust on CUDA,
/// exec::kokkos on a device space).
template <class Exec>
concept host_copier = requires(const Exec& e, const std::byte* src, std::byte* dst, std::size_t n) {
  e.template copy_to_host<std::byte>(src, dst, n);
};

/// Bytes [offset, offset + n) of a message in the memory of Exec, copied to the host.
template <class Exec, class Space>
std::vector<std::byte> bytes_to_host(const Exec& e, const std::byte* p, std::size_t n) {
  std::vector<std::byte> h(n);
  if (n == 0) return h;
  if constexpr (std::is_same_v<Space, mem::host>) {
    std::memcpy(h.data(), p, n);
  } else {
    static_assert(
        host_copier<Exec>,
        "tether::codec: decoding a message in device memory needs the execution space's "
        "copy_to_host (exec::cuda, exec::thrust on CUDA, exec::kokkos have it); see docs/codecs.md");
    e.template copy_to_host<std::byte>(p, h.data(), n);
  }
  return h;
}

/// Writes header h at the start of a message in the memory of Exec.
template <class Exec, class Space>
void write_header(const Exec& e, const header& h, std::byte* dst) {
  const auto b = header_bytes(h);
  if constexpr (std::is_same_v<Space, mem::host>) {
    std::memcpy(dst, b.data(), header_size);
  } else {
    store_header k{};
    for (std::size_t i = 0; i < header_size; ++i) k.b[i] = b[i];
    k.dst = dst;
    e.parallel_for(header_size, k);
  }
}

/// The encode/decode driver of a block-quantizing codec with rule Rule.
template <class Rule>
struct quantizer {
  using T = typename Rule::value_type;
  Rule rule;
  unsigned bits;
  std::size_t block;
  codec::plan plan;

  [[nodiscard]] std::size_t encoded_size(std::size_t n) const noexcept {
    return quantized_size(n, bits, block, Rule::scale_bytes);
  }

  template <class Exec, class Space>
  [[nodiscard]] bool blockwise() const noexcept {
    return plan == codec::plan::per_block ||
           (plan == codec::plan::automatic && std::is_same_v<Space, mem::host>);
  }

  template <class Exec, class XS, class OS>
  std::size_t encode(const Exec& e, view<const T, XS> x, view<std::byte, OS> out, std::uint64_t seed) const {
    const std::size_t need = encoded_size(x.size());
    tether::detail::require(out.size() >= need, "codec ", Rule::name, ": encode: out has ", out.size(),
                            " bytes, a message of ", x.size(), " values needs ", need);
    header h;
    h.kind = Rule::kind;
    h.value_type = static_cast<std::uint8_t>(value_code_of<T>);
    h.bits = static_cast<std::uint8_t>(bits);
    h.block = static_cast<std::uint32_t>(block);
    h.count = x.size();
    write_header<Exec, OS>(e, h, out.data());
    if (x.size() == 0) return need;
    const message_layout m = layout_of(x.size(), bits, block);
    const encode_args<Rule> a{rule,
                              x.data(),
                              out.data() + header_size,
                              out.data() + header_size + m.blocks * Rule::scale_bytes,
                              m,
                              stream_key(seed)};
    const bool per_block = blockwise<Exec, OS>();
    with_bits(bits, [&]<unsigned B>() {
      if (per_block) {
        e.parallel_for(m.blocks, encode_blocks<Rule, B>{a});
      } else {
        e.parallel_for(m.blocks, encode_scales<Rule>{a});
        e.parallel_for(m.payload, encode_bytes<Rule, B>{a});
      }
    });
    return need;
  }

  /// Validates the whole message (header on the host, scales where they live) before writing to out.
  template <class Exec, class IS, class OS>
  void decode(const Exec& e, view<const std::byte, IS> in, view<T, OS> out, const T* reference) const {
    const char* who = Rule::uses_reference ? "codec lattice: decode" : "codec stochastic_uniform: decode";
    const auto hb = bytes_to_host<Exec, IS>(e, in.data(), in.size() < header_size ? in.size() : header_size);
    const header h = read_header(std::span<const std::byte>(hb.data(), hb.size()), who);
    check_header(h, {who, Rule::kind, static_cast<std::uint8_t>(value_code_of<T>), Rule::bits_min, 8, true,
                     Rule::scale_bytes, in.size(), out.size()});
    if (out.size() == 0) return;
    const message_layout m = layout_of(out.size(), h.bits, h.block);
    const std::byte* scales = in.data() + header_size;
    if (e.any(m.blocks, bad_scale<Rule>{scales})) {
      const auto sb = bytes_to_host<Exec, IS>(e, scales, m.blocks * Rule::scale_bytes);
      for (std::size_t k = 0; k < m.blocks; ++k) {
        const auto p = Rule::load(sb.data() + k * Rule::scale_bytes);
        if (!Rule::valid(p)) {
          if constexpr (Rule::scale_bytes == 8)
            throw error(concat("tether: ", who, ": scale: block ", k, " has lo = ", p.lo, ", range = ", p.w,
                               " (", Rule::requirement, ")"));
          else
            throw error(concat("tether: ", who, ": scale: block ", k, " has scale = ", p.s, " (",
                               Rule::requirement, ")"));
        }
      }
    }
    const decode_args<Rule> a{scales, scales + m.blocks * Rule::scale_bytes, reference, out.data(), m};
    const bool per_block = blockwise<Exec, OS>();
    with_bits(h.bits, [&]<unsigned B>() {
      if (per_block)
        e.parallel_for(m.blocks, decode_blocks<Rule, B>{a});
      else
        e.parallel_for(m.n, decode_values<Rule, B>{a});
    });
  }
};

}  // namespace detail
}  // namespace tether::codec
