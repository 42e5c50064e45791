#pragma once
/// \file
/// codec::identity: fp32/fp64 values as they are, in the same message framing as the quantizing codecs
/// (header, no scales, N*sizeof(T) payload bytes). The baseline a quantized exchange is compared with, and a
/// drop-in where a codec is expected but full precision is wanted (docs/codecs.md#identity).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "tether/codec/codec.hpp"
#include "tether/codec/detail/quantizer.hpp"
#include "tether/codec/format.hpp"
#include "tether/core/config.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"

namespace tether::codec {

namespace detail {

/// Value i into its payload bytes.
template <class T>
struct identity_store {
  /// clang does not vectorise this memcpy under `omp for simd`: not a SIMD lane (exec::simd_items); the
  /// compiler may still vectorise the plain loop.
  static constexpr bool simd = false;
  const T* x;
  std::byte* payload;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    std::memcpy(payload + i * sizeof(T), x + i, sizeof(T));
  }
};

/// Payload bytes of value i into out[i].
template <class T>
struct identity_load {
  /// clang does not vectorise this memcpy under `omp for simd`: not a SIMD lane (exec::simd_items); the
  /// compiler may still vectorise the plain loop.
  static constexpr bool simd = false;
  const std::byte* payload;
  T* out;
  TETHER_HOST_DEVICE void operator()(std::size_t i) const {
    std::memcpy(out + i, payload + i * sizeof(T), sizeof(T));
  }
};

}  // namespace detail

/// Full-precision passthrough (see docs/codecs.md).
template <class T = float>
class identity : public detail::serial_overloads<identity<T>> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "tether::codec::identity<T>: T must be float or double");

 public:
  using value_type = T;

  /// Exact bytes of the message of n values: 20 + n*sizeof(T).
  [[nodiscard]] std::size_t encoded_size(std::size_t n) const noexcept { return header_size + n * sizeof(T); }

  /// Copies x into out[0, encoded_size(n)) after the header; returns the bytes written. The seed is unused.
  template <class Exec, buffer X, buffer O>
  requires execution_space<Exec> std::size_t encode(const Exec& e, X&& x, O&& out, std::uint64_t /*seed*/ = 0)
  const {
    detail::check_buffer<Exec, X, T, false>();
    detail::check_buffer<Exec, O, std::byte, true>();
    const auto xv = detail::const_view(x);
    const auto ov = as_view(out);
    const std::size_t need = encoded_size(xv.size());
    tether::detail::require(ov.size() >= need, "codec identity: encode: out has ", ov.size(),
                            " bytes, a message of ", xv.size(), " values needs ", need);
    header h;
    h.kind = static_cast<std::uint8_t>(kind::identity);
    h.value_type = static_cast<std::uint8_t>(value_code_of<T>);
    h.bits = static_cast<std::uint8_t>(8 * sizeof(T));
    h.block = 0;
    h.count = xv.size();
    detail::write_header<Exec, typename decltype(ov)::memory_space>(e, h, ov.data());
    e.parallel_for(xv.size(), detail::identity_store<T>{xv.data(), ov.data() + header_size});
    return need;
  }
  using detail::serial_overloads<identity>::encode;

  /// Decodes message `in` into out, after checking its header and size (tether::error, out unchanged).
  template <class Exec, buffer I, buffer O>
  requires execution_space<Exec>
  void decode(const Exec& e, I&& in, O&& out) const {
    detail::check_buffer<Exec, I, std::byte, false>();
    detail::check_buffer<Exec, O, T, true>();
    const auto iv = detail::const_view(in);
    const auto ov = as_view(out);
    const char* who = "codec identity: decode";
    const auto hb = detail::bytes_to_host<Exec, typename decltype(iv)::memory_space>(
        e, iv.data(), iv.size() < header_size ? iv.size() : header_size);
    const header h = read_header(std::span<const std::byte>(hb.data(), hb.size()), who);
    detail::check_header(
        h, {who, static_cast<std::uint8_t>(kind::identity), static_cast<std::uint8_t>(value_code_of<T>),
            8 * sizeof(T), 8 * sizeof(T), false, 0, iv.size(), ov.size()});
    e.parallel_for(ov.size(), detail::identity_load<T>{iv.data() + header_size, ov.data()});
  }
  using detail::serial_overloads<identity>::decode;
};

}  // namespace tether::codec
