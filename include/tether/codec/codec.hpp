#pragma once
/// \file
/// The codec concept (docs/codecs.md#your-own-codec): what tether's codecs satisfy and what a user's own
/// codec must provide to be used where tether takes a codec (SwarmSGD's quantized gossip).
///
///     struct my_codec {
///       using value_type = float;
///       std::size_t encoded_size(std::size_t n) const;                         // exact bytes of a message
///       template <class Exec> std::size_t encode(const Exec&, view<const float, S> x, view<std::byte, S>
///       out,
///                                                std::uint64_t seed) const;    // returns encoded_size(n)
///       template <class Exec> void decode(const Exec&, view<const std::byte, S> in, view<float, S> out)
///       const;
///       // or, for codecs that decode next to the receiver's own values (codec::lattice):
///       template <class Exec> void decode(const Exec&, view<const std::byte, S> in, view<float, S> out,
///                                         view<const float, S> reference) const;
///     };

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "tether/codec/format.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/error.hpp"
#include "tether/core/view.hpp"
#include "tether/exec/serial.hpp"

namespace tether::codec {

/// A codec decodable on its own: decode(exec, in, out).
template <class C, class Exec>
concept self_decoding = requires(const C& c, const Exec& e,
                                 view<const std::byte, typename Exec::memory_space> in,
                                 view<typename C::value_type, typename Exec::memory_space> y) {
  c.decode(e, in, y);
};

/// A codec whose receiver decodes next to its own values: decode(exec, in, out, reference).
template <class C, class Exec>
concept reference_decoding = requires(const C& c, const Exec& e,
                                      view<const std::byte, typename Exec::memory_space> in,
                                      view<typename C::value_type, typename Exec::memory_space> y,
                                      view<const typename C::value_type, typename Exec::memory_space> ref) {
  c.decode(e, in, y, ref);
};

/// A codec of values of C::value_type that runs on execution space Exec: exact message sizes, encode with a
/// caller's seed, and one of the two decode forms.
template <class C, class Exec = exec::serial>
concept message_codec = execution_space<Exec> && std::is_floating_point_v<typename C::value_type> &&
    requires(const C& c, const Exec& e, std::size_t n,
             view<const typename C::value_type, typename Exec::memory_space> x,
             view<std::byte, typename Exec::memory_space> out, std::uint64_t seed) {
  { c.encoded_size(n) } -> std::same_as<std::size_t>;
  { c.encode(e, x, out, seed) } -> std::same_as<std::size_t>;
} &&(self_decoding<C, Exec> || reference_decoding<C, Exec>);

/// Checks at compile time that C is a codec on Exec, with a message naming the documentation.
template <class C, class Exec = exec::serial>
constexpr bool check_codec() {
  static_assert(
      message_codec<C, Exec>,
      "tether: this type does not satisfy tether::codec::message_codec on this execution space: it needs "
      "value_type, encoded_size(n), encode(exec, x, out, seed) -> std::size_t and decode(exec, in, out) "
      "or decode(exec, in, out, reference); see docs/codecs.md#your-own-codec");
  return true;
}

namespace detail {

/// Compile-time checks of a codec call's buffers: element types and memory-space accessibility.
template <class Exec, class X, class Expect, bool Mutable>
constexpr void check_buffer() {
  static_assert(execution_space<Exec>,
                "tether::codec: the first argument must be an execution space (see docs/exec.md)");
  static_assert(std::is_same_v<std::remove_const_t<buffer_value_t<X>>, Expect>,
                "tether::codec: values must be the codec's value type and messages std::byte buffers (see "
                "docs/codecs.md)");
  static_assert(
      mem::accessible_v<typename Exec::memory_space, buffer_space_t<X>>,
      "tether::codec: buffers must be accessible from the execution space (a host space cannot touch "
      "GPU memory, a GPU space cannot touch host memory: see docs/exec.md and docs/codecs.md)");
  static_assert(!Mutable || !std::is_const_v<buffer_value_t<X>>,
                "tether::codec: output buffers must be mutable");
}

/// A const view of a buffer in its own memory space.
template <class X>
auto const_view(X&& x) {
  auto v = as_view(x);
  using V = std::remove_const_t<typename decltype(v)::value_type>;
  return view<const V, typename decltype(v)::memory_space>{v.data(), v.size()};
}

/// True when codec D has decode(exec::serial, in, out, reference...) for these buffers. A named concept rather
/// than a requires-expression in serial_overloads' clause: clang (14, at least) substitutes D into a member
/// template's requires-expression when it instantiates the base class serial_overloads<D>, while D is still
/// incomplete, and so rejects every call; a concept's body is only substituted when it is checked, at the call.
template <class D, class I, class O, class... R>
concept serial_decodable = requires(const D& d, I& in, O& out, R&... reference) {
  d.decode(exec::serial{}, in, out, reference...);
};

/// The overloads without an execution space (exec::serial) of a codec D. D declares `using
/// detail::serial_overloads<D>::encode; using ...::decode;` next to its own (exec, ...) forms.
template <class D>
struct serial_overloads {
  /// encode on exec::serial.
  template <buffer X, buffer O>
  std::size_t encode(X&& x, O&& out, std::uint64_t seed = 0) const {
    return static_cast<const D&>(*this).encode(exec::serial{}, x, out, seed);
  }
  /// decode on exec::serial (with the reference for codecs that need one): only the form D has, so that a
  /// requires-check of the other form is false, as for the forms with an execution space.
  template <buffer I, buffer O, buffer... R>
  requires(sizeof...(R) <= 1) && serial_decodable<D, I, O, R...>
  void decode(I&& in, O&& out, R&&... reference) const {
    static_cast<const D&>(*this).decode(exec::serial{}, in, out, reference...);
  }
};

/// Checks bits in [bits_min, 8] and block in [1, max_block] (tether::error naming the option).
inline void validate_bits_block(const char* who, unsigned bits, unsigned bits_min, std::size_t block) {
  tether::detail::require(bits >= bits_min && bits <= 8, who, ": bits must be in ", bits_min,
                          "..8, got bits = ", bits);
  tether::detail::require(block >= 1 && block <= max_block, who, ": block must be in 1..", max_block,
                          ", got block = ", block);
}

}  // namespace detail
}  // namespace tether::codec
