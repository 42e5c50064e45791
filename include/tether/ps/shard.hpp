#pragma once
/// \file
/// ps::shard: one shard of a parameter server: its slice of the parameters and its step policy's state, in the
/// execution space's memory, updated by the step policy with tether's fused kernel. No locking here: a
/// placement (ps/team_store.hpp, ps/mpi_store.hpp) serialises the calls on a shard.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "tether/core/checkpoint.hpp"
#include "tether/core/concepts.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/optimizer.hpp"
#include "tether/core/view.hpp"
#include "tether/pull/none.hpp"

namespace tether::ps {

/// A shard: `count` parameters and the `Step::state_size` state buffers of its step policy (Adagrad's h lives
/// here, not on the replicas), allocated by `Exec`. `apply(g, lr)` is the step policy's k-th update of the
/// slice, `x -= Step::delta(ctx_k, x, g, state...)`, run as `fused_update<Step, pull::none, T>` on `Exec`: the
/// kernel every tether optimizer runs, so any step policy (SGD, momentum, Adagrad, Adam, a user's) works on
/// the shards and runs at the fused kernel's speed. The shard's version is the number of updates applied.
template <class Step, class Exec, class T>
class shard {
  static_assert(step_policy<Step, T>, "tether::ps::shard: Step does not satisfy tether::step_policy "
                                      "(see docs/concepts.md#step-policy)");
  static_assert(execution_space<Exec>, "tether::ps::shard: Exec does not satisfy tether::execution_space "
                                       "(see docs/concepts.md#execution-space)");

 public:
  using memory_space = typename Exec::memory_space;
  using buffer_type = typename Exec::template buffer<T>;

  /// A shard of `count` parameters (zero until assign()) whose updates are `step`'s, run on `exec`.
  shard(Exec exec, Step step, std::size_t count)
      : exec_(std::move(exec)), step_(std::move(step)), x_(exec_.template allocate<T>(count, T(0))) {
    for (std::size_t k = 0; k != Step::state_size; ++k)
      state_[k] = exec_.template allocate<T>(count, step_.template initial<T>(k));
  }

  /// Number of parameters of the slice.
  [[nodiscard]] std::size_t size() const noexcept { return x_.size(); }
  /// Updates applied so far.
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }

  /// Sets the parameters to `src[0, size())` (memory of Exec's space).
  void assign(const T* src) { copy(src, x_.data()); }
  /// Copies the parameters into `dst[0, size())` (memory of Exec's space).
  void read(T* dst) const { copy(x_.data(), dst); }

  /// One update of the step policy with gradient `g[0, size())` at rate `lr`: its (version + 1)-th.
  void apply(const T* g, T lr) {
    ++version_;
    if (size() == 0) return;
    fused_update<Step, pull::none, T, true, false> k{x_.data(), g, {}, {}, step_.prepare(version_, lr), {}};
    for (std::size_t j = 0; j != Step::state_size; ++j) k.s[j] = state_[j].data();
    exec_.parallel_for(size(), k);
  }

  /// Bulk-synchronous rounds: `dst[i] += src[0][i] + src[1][i] + ...` in the order given (the round's sum in
  /// replica order: the same bits on every run).
  void add_in_order(T* dst, const std::vector<const T*>& src) const {
    constexpr std::size_t chunk = kernels::accumulate<T>::max_sources;
    for (std::size_t first = 0; first < src.size(); first += chunk) {
      kernels::accumulate<T> k{dst, {}, 0};
      for (std::size_t j = first; j < src.size() && j < first + chunk; ++j) k.src[k.count++] = src[j];
      if (size() > 0) exec_.parallel_for(size(), k);
    }
  }

  /// A buffer of the slice's size in Exec's memory (a bulk-synchronous round's staging area).
  [[nodiscard]] buffer_type make_buffer() const { return exec_.template allocate<T>(size(), T(0)); }

  /// A shard's state as a checkpoint holds it (host memory): version, parameters, step state.
  struct saved {
    std::uint64_t version = 0;
    std::vector<T> x;
    std::array<std::vector<T>, Step::state_size> state;
  };
  /// Writes the version, the parameters and the step state (host memory only).
  void save(checkpoint_writer& w) const {
    w.put<std::uint64_t>(version_);
    w.put_array<T>(std::span<const T>(x_.data(), x_.size()));
    for (const auto& b : state_) w.put_array<T>(std::span<const T>(b.data(), b.size()));
  }
  /// Reads what save() wrote, checking the sizes against this shard's; changes nothing here.
  [[nodiscard]] saved read(checkpoint_reader& r) const {
    saved s;
    s.version = r.template get<std::uint64_t>("a shard's version");
    s.x.resize(size());
    r.template get_array<T>(std::span<T>(s.x), "a shard's parameters");
    for (auto& b : s.state) {
      b.resize(size());
      r.template get_array<T>(std::span<T>(b), "a shard's step state");
    }
    return s;
  }
  /// Sets the state read by read().
  void restore(const saved& s) {
    version_ = s.version;
    std::copy(s.x.begin(), s.x.end(), x_.data());
    for (std::size_t k = 0; k != Step::state_size; ++k) std::copy(s.state[k].begin(), s.state[k].end(), state_[k].data());
  }

  /// The parameters and step state buffer k, in Exec's memory.
  [[nodiscard]] view<T, memory_space> parameters() noexcept { return {x_.data(), x_.size()}; }
  [[nodiscard]] view<T, memory_space> state(std::size_t k) noexcept { return {state_[k].data(), state_[k].size()}; }
  [[nodiscard]] const Exec& exec() const noexcept { return exec_; }

 private:
  void copy(const T* src, T* dst) const {
    if (size() > 0) exec_.parallel_for(size(), kernels::copy<T>{src, dst});
  }

  Exec exec_;
  Step step_;
  buffer_type x_;
  std::array<buffer_type, Step::state_size> state_{};
  std::uint64_t version_ = 0;
};

}  // namespace tether::ps
