#pragma once
/// \file
/// pull::loss_window: a worker's score in LSGD's elections, the mean of its last k losses. One type for the
/// synchronous leader pulls and the asynchronous one.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"

namespace tether::pull {

/// The last `k` losses of a worker and their mean.
class loss_window {
 public:
  /// Forgets every loss and keeps the last `k` (> 0) from now on.
  void reset(std::size_t k) {
    window_.assign(k, 0.0);
    filled_ = 0;
    pos_ = 0;
  }

  /// Records one step's loss (NaN for a step skipped as non-finite).
  void record(double loss) {
    window_[pos_] = loss;
    pos_ = (pos_ + 1) % window_.size();
    if (filled_ < window_.size()) ++filled_;
  }

  /// Writes the window to a checkpoint (see core/checkpoint.hpp).
  template <class Writer>
  void save(Writer& w) const {
    w.template put_array<double>(window_);
    w.template put<std::uint64_t>(filled_);
    w.template put<std::uint64_t>(pos_);
  }
  /// Reads a window written by save(); it must hold `k` losses.
  template <class Reader>
  void load(Reader& r, std::size_t k) {
    std::vector<double> w(k);
    r.template get_array<double>(std::span<double>(w), "the loss window");
    const auto filled = r.template get<std::uint64_t>("the loss window's count");
    const auto pos = r.template get<std::uint64_t>("the loss window's position");
    if (filled > k || pos >= k) throw error(detail::concat("tether: checkpoint ", r.path(), ": corrupted loss window"));
    window_ = std::move(w);
    filled_ = static_cast<std::size_t>(filled);
    pos_ = static_cast<std::size_t>(pos);
  }

  /// The mean of the recorded losses: +infinity before the first, NaN while any of them is non-finite (a
  /// non-finite score never wins an election).
  [[nodiscard]] double score() const noexcept {
    if (filled_ == 0) return std::numeric_limits<double>::infinity();
    double s = 0.0;
    for (std::size_t i = 0; i < filled_; ++i) s += window_[i];
    return s / static_cast<double>(filled_);
  }

 private:
  std::vector<double> window_;
  std::size_t filled_ = 0;
  std::size_t pos_ = 0;
};

}  // namespace tether::pull
