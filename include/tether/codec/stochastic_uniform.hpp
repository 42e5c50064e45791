#pragma once
/// \file
/// codec::stochastic_uniform: per block of B values one scale, each value rounded stochastically to one of
/// 2^b evenly spaced levels so that E[decode(encode(x))] = x (docs/codecs.md#stochastic_uniform).
///
///     tether::codec::stochastic_uniform<float> q({.bits = 8, .block = 256});
///     std::vector<std::byte> msg(q.encoded_size(x.size()));
///     q.encode(exec, x, msg, tether::derive_seed(seed, rank, round));   // N*b/8 + 4*ceil(N/B) + 20 bytes
///     q.decode(exec, msg, y);                                            // y[i] = lo + level * delta

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tether/codec/codec.hpp"
#include "tether/codec/detail/quantizer.hpp"
#include "tether/codec/detail/rules.hpp"
#include "tether/codec/format.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"

namespace tether::codec {

/// The scale of a block: symmetric around zero, or the block's own range.
enum class scale_mode : std::uint8_t {
  max_abs,  ///< grid [-s, s], s = max |x| of the block; 4 scale bytes per block
  min_max,  ///< grid [lo, lo + w] over the block's minimum and range; 8 scale bytes per block
};

/// Options of codec::stochastic_uniform.
struct stochastic_uniform_options {
  unsigned bits = 8;                          ///< bits per value, 1..8
  std::size_t block = 256;                    ///< values per scale, 1..2^24
  scale_mode scale = scale_mode::max_abs;     ///< how a block's grid is placed
  codec::plan plan = codec::plan::automatic;  ///< how kernels split the work (same bytes either way)
};

/// Unbiased stochastic uniform quantization of fp32 or fp64 values (see docs/codecs.md).
template <class T = float>
class stochastic_uniform : public detail::serial_overloads<stochastic_uniform<T>> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tether::codec::stochastic_uniform<T>: T must be float or double");

 public:
  using value_type = T;
  using options = stochastic_uniform_options;

  /// Validates the options (tether::error naming the option otherwise).
  explicit stochastic_uniform(options o = {}) : opt_(o) {
    detail::validate_bits_block("codec stochastic_uniform", o.bits, 1, o.block);
    tether::detail::require(o.scale == scale_mode::max_abs || o.scale == scale_mode::min_max,
                            "codec stochastic_uniform: scale must be max_abs or min_max, got ",
                            static_cast<unsigned>(o.scale));
  }

  [[nodiscard]] const options& opts() const noexcept { return opt_; }

  /// The kind byte of this codec's messages.
  [[nodiscard]] codec::kind message_kind() const noexcept {
    return opt_.scale == scale_mode::max_abs ? kind::stochastic_uniform_max_abs
                                             : kind::stochastic_uniform_min_max;
  }

  /// Exact bytes of the message of n values: 20 + S*ceil(n/B) + payload_size(n, b, B), S = 4 (max_abs) or 8.
  [[nodiscard]] std::size_t encoded_size(std::size_t n) const noexcept {
    return opt_.scale == scale_mode::max_abs ? max_abs().encoded_size(n) : min_max().encoded_size(n);
  }

  /// Encodes x into out[0, encoded_size(n)) with the stochastic rounding of `seed`; returns the bytes
  /// written. A block holding a non-finite value gets a NaN scale: the message then fails to decode.
  template <class Exec, buffer X, buffer O>
  requires execution_space<Exec> std::size_t encode(const Exec& e, X&& x, O&& out, std::uint64_t seed)
  const {
    detail::check_buffer<Exec, X, T, false>();
    detail::check_buffer<Exec, O, std::byte, true>();
    const auto xv = detail::const_view(x);
    const auto ov = as_view(out);
    return opt_.scale == scale_mode::max_abs ? max_abs().encode(e, xv, ov, seed)
                                             : min_max().encode(e, xv, ov, seed);
  }
  using detail::serial_overloads<stochastic_uniform>::encode;

  /// Decodes a whole message `in` into out (out.size() must be the message's count). Everything is checked
  /// before out is written: tether::error naming the field otherwise, and out unchanged.
  template <class Exec, buffer I, buffer O>
  requires execution_space<Exec>
  void decode(const Exec& e, I&& in, O&& out) const {
    detail::check_buffer<Exec, I, std::byte, false>();
    detail::check_buffer<Exec, O, T, true>();
    const auto iv = detail::const_view(in);
    const auto ov = as_view(out);
    if (opt_.scale == scale_mode::max_abs)
      max_abs().decode(e, iv, ov, nullptr);
    else
      min_max().decode(e, iv, ov, nullptr);
  }
  using detail::serial_overloads<stochastic_uniform>::decode;

 private:
  [[nodiscard]] detail::quantizer<detail::max_abs_rule<T>> max_abs() const noexcept {
    return {{}, opt_.bits, opt_.block, opt_.plan};
  }
  [[nodiscard]] detail::quantizer<detail::min_max_rule<T>> min_max() const noexcept {
    return {{}, opt_.bits, opt_.block, opt_.plan};
  }
  options opt_;
};

}  // namespace tether::codec
