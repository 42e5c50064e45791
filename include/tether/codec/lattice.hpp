#pragma once
/// \file
/// codec::lattice: values on the lattice s*Z, sent as their residue mod 2^b; the receiver decodes each value
/// to the lattice point of that residue nearest its own reference model (docs/codecs.md#lattice).
///
/// Exact recovery: with k the encoder's lattice index (x/s rounded stochastically, |k - x/s| < 1), decoding
/// next to reference y gives s*k exactly when |x - y| <= (2^(b-1) - 1) * s (then |k - y/s| < 2^(b-1)).
/// Otherwise the decoded value is s*(k + j*2^b) for some nonzero integer j: wrong by a multiple of 2^b * s,
/// silently (the receiver cannot tell). Choose s from a bound on the distance between the two models.
///
///     tether::codec::lattice<float> q({.bits = 8, .block = 256, .step = 1e-3f});
///     q.encode(exec, x_mine, msg, seed);          // sent to my partner
///     q.decode(exec, msg_partner, y, x_mine);     // the partner's model, decoded next to mine

#include <cmath>
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

/// Options of codec::lattice.
struct lattice_options {
  unsigned bits = 8;        ///< bits per value, 2..8
  std::size_t block = 256;  ///< values per (scale) block, 1..2^24
  float step = 1e-3f;       ///< the lattice step s, >= 2^-126 and finite; fp32 values: <= 2^96
  codec::plan plan = codec::plan::automatic;  ///< how kernels split the work (same bytes either way)
};

/// Lattice quantization with a reference (see docs/codecs.md).
template <class T = float>
class lattice : public detail::serial_overloads<lattice<T>> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tether::codec::lattice<T>: T must be float or double");

 public:
  using value_type = T;
  using options = lattice_options;

  /// Validates the options (tether::error naming the option otherwise).
  explicit lattice(options o = {}) : opt_(o) {
    detail::validate_bits_block("codec lattice", o.bits, 2, o.block);
    // Above step_max (fp32: 2^96) lattice points near the fp32 limit would decode to infinity (rules.hpp).
    tether::detail::require(
        std::isfinite(o.step) && o.step >= detail::float_min && o.step <= detail::lattice_rule<T>::step_max,
        "codec lattice: step must be finite and >= 2^-126 (a normal float)",
        sizeof(T) == 4 ? " and <= 2^96 for fp32 values (larger steps' lattice points can overflow)" : "",
        ", got step = ", o.step);
  }

  [[nodiscard]] const options& opts() const noexcept { return opt_; }

  /// The largest |x - y| at which decoding next to y is exact: (2^(b-1) - 1) * s.
  [[nodiscard]] double exact_radius() const noexcept {
    return static_cast<double>((1u << (opt_.bits - 1)) - 1) * static_cast<double>(opt_.step);
  }

  /// Exact bytes of the message of n values: 20 + 4*ceil(n/B) + payload_size(n, b, B).
  [[nodiscard]] std::size_t encoded_size(std::size_t n) const noexcept { return driver().encoded_size(n); }

  /// Encodes x into out[0, encoded_size(n)) with the stochastic rounding of `seed`; returns the bytes
  /// written. A block holding a value x with x/s not finite gets a NaN scale: the message then fails to
  /// decode.
  template <class Exec, buffer X, buffer O>
  requires execution_space<Exec> std::size_t encode(const Exec& e, X&& x, O&& out, std::uint64_t seed)
  const {
    detail::check_buffer<Exec, X, T, false>();
    detail::check_buffer<Exec, O, std::byte, true>();
    return driver().encode(e, detail::const_view(x), as_view(out), seed);
  }
  using detail::serial_overloads<lattice>::encode;

  /// Decodes message `in` into out next to `reference` (the receiver's own values; it may be out itself).
  /// Everything is checked before out is written: tether::error naming the field otherwise, out unchanged.
  template <class Exec, buffer I, buffer O, buffer R>
  requires execution_space<Exec>
  void decode(const Exec& e, I&& in, O&& out, R&& reference) const {
    detail::check_buffer<Exec, I, std::byte, false>();
    detail::check_buffer<Exec, O, T, true>();
    detail::check_buffer<Exec, R, T, false>();
    const auto ov = as_view(out);
    const auto rv = detail::const_view(reference);
    tether::detail::require(rv.size() == ov.size(), "codec lattice: decode: reference has ", rv.size(),
                            " values, the output has ", ov.size());
    driver().decode(e, detail::const_view(in), ov, rv.data());
  }
  using detail::serial_overloads<lattice>::decode;

 private:
  [[nodiscard]] detail::quantizer<detail::lattice_rule<T>> driver() const noexcept {
    return {{opt_.step}, opt_.bits, opt_.block, opt_.plan};
  }
  options opt_;
};

}  // namespace tether::codec
