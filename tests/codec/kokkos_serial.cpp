// exec::kokkos<Kokkos::Serial> against exec::serial: the same message bytes and decoded values, bit for bit,
// on the user's Kokkos::View buffers.
#include "equivalence.hpp"

#include <Kokkos_Core.hpp>

#include "tether/exec/kokkos.hpp"

namespace {

/// Kokkos::Views in host space, handed to the codecs directly (through tether::buffer_traits).
struct view_adapter {
  template <class T>
  Kokkos::View<T*, Kokkos::HostSpace> make(std::size_t n) const {
    return Kokkos::View<T*, Kokkos::HostSpace>("codec", n);
  }
  template <class T>
  void upload(Kokkos::View<T*, Kokkos::HostSpace>& b, const std::vector<T>& v) const {
    for (std::size_t i = 0; i < v.size(); ++i) b(i) = v[i];
  }
  template <class T>
  std::vector<T> download(const Kokkos::View<T*, Kokkos::HostSpace>& b) const {
    return std::vector<T>(b.data(), b.data() + b.size());
  }
  template <class T>
  Kokkos::View<T*, Kokkos::HostSpace>& view(Kokkos::View<T*, Kokkos::HostSpace>& b) const {
    return b;
  }
  template <class T>
  Kokkos::View<const T*, Kokkos::HostSpace> cview(Kokkos::View<T*, Kokkos::HostSpace>& b) const {
    return b;
  }
};

}  // namespace

TEMPLATE_TEST_CASE("codecs on exec::kokkos<Serial> match exec::serial", "[codec][kokkos]", float, double) {
  // Kokkos lives for the whole run (finalised at exit, after every test's Views are gone).
  static const Kokkos::ScopeGuard kokkos;
  codec_test::check_space<TestType>(tether::exec::kokkos<Kokkos::Serial>{}, view_adapter{});
}
