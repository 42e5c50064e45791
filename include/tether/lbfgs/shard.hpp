#pragma once
/// \file
/// lbfgs::shard: one shard of Sandblaster's sharded vectors: its slices of the parameters x, the gradient g,
/// the direction d, the trial point and the batch gradient being summed, and of the m history pairs (s, y);
/// the commands it runs on them with the execution space's kernels; and the scalars it sends back.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/core/kernels.hpp"
#include "tether/core/sums.hpp"
#include "tether/lbfgs/kernels.hpp"

namespace tether::lbfgs {

/// What a shard does at the start of a batch (sent by the coordinator as a `trial` command).
struct trial_command {
  std::uint64_t batch = 0;  ///< the batch this trial is evaluated by
  double alpha = 0.0;       ///< the trial point is x + alpha * d
  bool initial = false;     ///< the start point: the trial point is x itself
  bool commit = false;      ///< the previous trial was accepted: x <- its point, g <- its gradient
  bool store = false;       ///< with commit: keep that trial's (s, y) in history slot `slot`
  std::size_t slot = 0;
  std::vector<double> delta;  ///< empty, or the new direction's coefficients on [s_0.., y_0.., g] (2m + 1)
};

/// The dot products a shard returns after each batch, all on its slices; index of each in the reply.
struct dot_index {
  static constexpr std::size_t gt_d = 0;   ///< g_t . d: the line search's slope (with the other shards')
  static constexpr std::size_t gt_gt = 1;  ///< |g_t|^2
  static constexpr std::size_t xt_xt = 2;  ///< |x_t|^2
  static constexpr std::size_t s_y = 3;    ///< candidate pair s = x_t - x, y = g_t - g: s . y
  static constexpr std::size_t y_y = 4;
  static constexpr std::size_t s_s = 5;
  static constexpr std::size_t s_gt = 6;
  static constexpr std::size_t y_gt = 7;
  static constexpr std::size_t fixed = 8;  ///< then, for each history slot j, six products:
  /// s . s_j, s . y_j, y . s_j, y . y_j, g_t . s_j, g_t . y_j
  static constexpr std::size_t slot(std::size_t j, std::size_t which) noexcept {
    return fixed + 6 * j + which;
  }
  /// Number of dot products with history m.
  static constexpr std::size_t count(std::size_t m) noexcept { return fixed + 6 * m; }
};

/// One shard's slices and commands. Host-memory execution spaces (the replicas read the trial point and add
/// their contributions from host buffers).
template <class Exec, class T>
class shard {
 public:
  using buffer = typename Exec::template buffer<T>;

  /// Shard `index` holding elements [begin, begin + x0.size()) of N, starting at x0, with history m, for
  /// batches of `portions` portions.
  shard(const Exec& exec, std::size_t index, std::size_t begin, std::span<const T> x0, std::size_t m,
        std::size_t portions)
      : exec_(exec),
        index_(index),
        begin_(begin),
        n_(x0.size()),
        m_(m),
        portions_(portions),
        x_(exec.template allocate<T>(n_, T(0))),
        g_(exec.template allocate<T>(n_, T(0))),
        d_(exec.template allocate<T>(n_, T(0))),
        xt_(exec.template allocate<T>(n_, T(0))),
        gt_(exec.template allocate<T>(n_, T(0))),
        sc_(exec.template allocate<T>(n_, T(0))),
        yc_(exec.template allocate<T>(n_, T(0))),
        seen_(portions, false) {
    for (std::size_t i = 0; i < n_; ++i) x_.data()[i] = x0[i];
    s_.reserve(m);
    y_.reserve(m);
    for (std::size_t j = 0; j < m; ++j) {
      s_.push_back(exec.template allocate<T>(n_, T(0)));
      y_.push_back(exec.template allocate<T>(n_, T(0)));
    }
  }

  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] std::size_t begin() const noexcept { return begin_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] std::uint64_t batch() const noexcept { return batch_; }

  /// Runs a trial command: commit the previous trial (and store its pair), form the new direction, then the
  /// trial point x_t = x + alpha d and an empty batch gradient.
  void start_trial(const trial_command& c) {
    if (c.commit) commit(c.store, c.slot);
    if (!c.delta.empty()) form_direction(c.delta);
    if (c.initial)
      exec_.parallel_for(n_, tether::kernels::copy<T>{x_.data(), xt_.data()});
    else
      exec_.parallel_for(n_,
                         kernels::trial_point<T>{x_.data(), d_.data(), xt_.data(), static_cast<T>(c.alpha)});
    exec_.parallel_for(n_, kernels::fill<T>{gt_.data(), T(0)});
    batch_ = c.batch;
    next_ = 0;
    pending_.clear();
    seen_.assign(portions_, false);
  }

  /// This shard's slice of the current trial point (what replicas fetch).
  [[nodiscard]] std::span<const T> trial_point() const noexcept { return {xt_.data(), n_}; }

  /// What add() did with a contribution.
  enum class added : std::uint8_t { used, duplicate, stale };

  /// Portion k's contribution to this batch's gradient (this shard's slice). Contributions are added in
  /// portion order: one that arrives early waits until every earlier portion was added; a second copy of a
  /// portion, or one of another batch, is dropped.
  added add(std::uint64_t batch, std::size_t k, std::span<const T> c) {
    if (batch != batch_ || k >= portions_) return added::stale;
    if (seen_[k]) return added::duplicate;
    detail::require(c.size() == n_, "sandblaster_lbfgs: shard ", index_, ": a contribution has ", c.size(),
                    " values, the shard has ", n_);
    seen_[k] = true;
    if (k != next_) {
      pending_.emplace(k, std::vector<T>(c.begin(), c.end()));
      return added::used;
    }
    accumulate(c);
    while (!pending_.empty() && pending_.begin()->first == next_) {
      accumulate(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    return added::used;
  }

  /// True when every portion of the current batch was added.
  [[nodiscard]] bool complete() const noexcept { return next_ == portions_; }

  /// After complete(): forms the candidate pair (s = x_t - x, y = g_t - g) and returns the dot products of
  /// dot_index, all of them in one reduction pass over the slices.
  [[nodiscard]] std::vector<double> dot_products() {
    exec_.parallel_for(n_, kernels::pair_difference<T>{xt_.data(), x_.data(), gt_.data(), g_.data(),
                                                       sc_.data(), yc_.data()});
    std::vector<std::pair<const T*, const T*>> pairs;
    pairs.reserve(dot_index::count(m_));
    pairs.emplace_back(gt_.data(), d_.data());
    pairs.emplace_back(gt_.data(), gt_.data());
    pairs.emplace_back(xt_.data(), xt_.data());
    pairs.emplace_back(sc_.data(), yc_.data());
    pairs.emplace_back(yc_.data(), yc_.data());
    pairs.emplace_back(sc_.data(), sc_.data());
    pairs.emplace_back(sc_.data(), gt_.data());
    pairs.emplace_back(yc_.data(), gt_.data());
    for (std::size_t j = 0; j < m_; ++j) {
      pairs.emplace_back(sc_.data(), s_[j].data());
      pairs.emplace_back(sc_.data(), y_[j].data());
      pairs.emplace_back(yc_.data(), s_[j].data());
      pairs.emplace_back(yc_.data(), y_[j].data());
      pairs.emplace_back(gt_.data(), s_[j].data());
      pairs.emplace_back(gt_.data(), y_[j].data());
    }
    // One pass: a tether::sums as wide as the smallest of 16, 32, 64, 128 or the maximum that holds them.
    const std::size_t k = pairs.size();
    if (k <= 16) return dots_in_one_pass<16>(pairs);
    if (k <= 32) return dots_in_one_pass<32>(pairs);
    if (k <= 64) return dots_in_one_pass<64>(pairs);
    if (k <= 128) return dots_in_one_pass<128>(pairs);
    return dots_in_one_pass<dot_index::count(max_history)>(pairs);
  }

  /// The end of the run: commit the last trial or keep the last committed point.
  void finish(bool commit_last) {
    if (commit_last) commit(false, 0);
  }

  /// After finish(true): keeps the last trial's pair in history slot `slot` too, as a commit with `store`
  /// would have (a checkpoint at the end of a run holds the history the coordinator's matrix describes).
  void keep_last_pair(std::size_t slot) {
    detail::require(slot < m_, "sandblaster_lbfgs: shard ", index_, ": history slot ", slot,
                    " out of range [0, ", m_, ")");
    std::swap(s_[slot], sc_);
    std::swap(y_[slot], yc_);
  }

  /// The committed parameters and gradient of this shard.
  [[nodiscard]] std::span<const T> x() const noexcept { return {x_.data(), n_}; }
  [[nodiscard]] std::span<const T> g() const noexcept { return {g_.data(), n_}; }
  /// History slot j's slices of s and y (a checkpoint keeps them with x() and g()).
  [[nodiscard]] std::span<const T> s(std::size_t j) const noexcept { return {s_[j].data(), n_}; }
  [[nodiscard]] std::span<const T> y(std::size_t j) const noexcept { return {y_[j].data(), n_}; }

  /// Starts from a checkpoint: the committed x and g and every history slot's s and y (each of size()
  /// values, m slots; lbfgs/checkpoint.hpp checked the sizes when it read them).
  void restore(std::span<const T> x, std::span<const T> g, const std::vector<std::vector<T>>& s,
               const std::vector<std::vector<T>>& y) {
    detail::require(x.size() == n_ && g.size() == n_ && s.size() == m_ && y.size() == m_,
                    "sandblaster_lbfgs: shard ", index_, ": a checkpoint's slices do not fit the shard");
    std::copy(x.begin(), x.end(), x_.data());
    std::copy(g.begin(), g.end(), g_.data());
    for (std::size_t j = 0; j < m_; ++j) {
      detail::require(s[j].size() == n_ && y[j].size() == n_, "sandblaster_lbfgs: shard ", index_,
                      ": a checkpoint's history slot ", j, " does not fit the shard");
      std::copy(s[j].begin(), s[j].end(), s_[j].data());
      std::copy(y[j].begin(), y[j].end(), y_[j].data());
    }
  }

  /// The current direction (tests compare it with a serial two-loop).
  [[nodiscard]] std::span<const T> direction() const noexcept { return {d_.data(), n_}; }

 private:
  template <std::size_t K>
  std::vector<double> dots_in_one_pass(const std::vector<std::pair<const T*, const T*>>& pairs) const {
    kernels::dots<T, K> f{};
    f.count = pairs.size();
    for (std::size_t k = 0; k < f.count; ++k) {
      f.a[k] = pairs[k].first;
      f.b[k] = pairs[k].second;
    }
    const sums<double, K> r = exec_.reduce(n_, sums<double, K>{}, f);
    return std::vector<double>(r.v, r.v + f.count);
  }

  void commit(bool store, std::size_t slot) {
    std::swap(x_, xt_);
    std::swap(g_, gt_);
    if (store) {
      detail::require(slot < m_, "sandblaster_lbfgs: shard ", index_, ": history slot ", slot,
                      " out of range [0, ", m_, ")");
      std::swap(s_[slot], sc_);
      std::swap(y_[slot], yc_);
    }
  }

  void form_direction(const std::vector<double>& delta) {
    detail::require(delta.size() == 2 * m_ + 1, "sandblaster_lbfgs: shard ", index_, ": a direction of ",
                    delta.size(), " coefficients, expected ", 2 * m_ + 1);
    kernels::combination<T> f{};
    f.d = d_.data();
    f.count = 0;
    auto term = [&](const T* v, double c) {
      if (c == 0.0) return;
      f.v[f.count] = v;
      f.c[f.count] = c;
      ++f.count;
    };
    for (std::size_t j = 0; j < m_; ++j) term(s_[j].data(), delta[j]);
    for (std::size_t j = 0; j < m_; ++j) term(y_[j].data(), delta[m_ + j]);
    term(g_.data(), delta[2 * m_]);
    exec_.parallel_for(n_, f);
  }

  void accumulate(std::span<const T> c) {
    exec_.parallel_for(n_, kernels::add<T>{gt_.data(), c.data()});
    ++next_;
  }

  Exec exec_;
  std::size_t index_;
  std::size_t begin_;
  std::size_t n_;
  std::size_t m_;
  std::size_t portions_;
  buffer x_, g_, d_, xt_, gt_, sc_, yc_;
  std::vector<buffer> s_, y_;
  std::uint64_t batch_ = 0;
  std::size_t next_ = 0;                           // the next portion to add
  std::map<std::size_t, std::vector<T>> pending_;  // portions that arrived before their turn
  std::vector<bool> seen_;
};

}  // namespace tether::lbfgs
