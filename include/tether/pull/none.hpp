#pragma once
/// \file
/// pull::none: no force between workers; each worker runs its step policy alone.

#include <cstddef>

#include "tether/core/config.hpp"
#include "tether/core/step_env.hpp"

namespace tether::pull {

/// No pull: p independent runs that share nothing.
struct none {
  struct options {};
  options opt{};
  static constexpr std::size_t buffers = 0;
  template <class T>
  struct context {};

  void validate(int /*workers*/) const {}
  template <class Env, class T, class S>
  void start(Env&, view<T, S>, pull_buffers<T, 0, S>) {}
  template <class Env, class T, class S>
  bool before(Env&, view<T, S>, pull_buffers<T, 0, S>, context<T>&) {
    return false;
  }
  template <class Env, class T, class S>
  void after(Env&, view<T, S>, pull_buffers<T, 0, S>) {}
  /// No state: checkpoints (core/checkpoint.hpp) hold none.
  template <class Writer>
  void save(Writer&) const {}
  template <class Reader>
  void load(Reader&) {}

  template <class T>
  TETHER_HOST_DEVICE static T force(const context<T>&, T /*x*/) {
    return T(0);
  }
};

}  // namespace tether::pull
