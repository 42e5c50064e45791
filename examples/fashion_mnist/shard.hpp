#pragma once
/// \file
/// Per-worker data shards with reproducible shuffling, and the small portable random generator behind them.
///
/// The training indices 0..n-1 are shuffled once with the run's seed; worker r of p then owns a contiguous part of
/// that order (sizes differ by at most one), so the parts are disjoint and cover all samples. Each epoch the worker
/// reshuffles its own part with a generator seeded from (seed, rank, epoch) and walks it in minibatches of B indices,
/// dropping the last partial batch. The generator and the Fisher-Yates shuffle are implemented here, so the order is
/// the same on every platform and standard library.

#include <tether/core/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <utility>
#include <vector>

namespace fmnist {

/// One step of splitmix64: advances `state` and returns a well-mixed 64-bit value.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Mixes a list of 64-bit words (a seed, a rank, an epoch, ...) into one seed.
[[nodiscard]] constexpr std::uint64_t mix_seed(std::initializer_list<std::uint64_t> words) noexcept {
  std::uint64_t state = 0x6a09e667f3bcc909ULL;
  std::uint64_t out = 0;
  for (const std::uint64_t w : words) {
    state ^= w;
    out = splitmix64(state);
    state = out;
  }
  return out;
}

/// xoshiro256** generator, its state filled by splitmix64 from a 64-bit seed.
class rng {
 public:
  /// Seeds the four state words from `seed` through splitmix64 (never all zero).
  constexpr explicit rng(std::uint64_t seed) noexcept {
    for (auto& w : s_) w = splitmix64(seed);
  }

  /// The next 64 random bits.
  constexpr std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// A uniform integer in [0, n) without modulo bias (rejection sampling); n must be positive.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n: values below it would favour small results
    for (;;) {
      const std::uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }

  /// A uniform float in [0, 1) with 24 random bits.
  constexpr float uniform01() noexcept { return static_cast<float>(next() >> 40) * 0x1.0p-24F; }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
};

/// Fisher-Yates shuffle of `v` with `gen`: every permutation equally likely, same result on every platform.
template <class T>
void shuffle(std::span<T> v, rng& gen) noexcept {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(gen.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

/// The minibatches of one epoch of a shard: `size()` spans of exactly `batch_size` indices each.
/// A view into the shard's buffer, valid until the shard's next `epoch()` call.
class batch_view {
 public:
  /// Iterates over the minibatches, yielding `std::span<const std::size_t>`.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::span<const std::size_t>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    /// An iterator at the batch starting at `p`, batches being `b` indices long.
    iterator(const std::size_t* p, std::size_t b) noexcept : p_(p), b_(b) {}
    /// The current minibatch.
    value_type operator*() const noexcept { return {p_, b_}; }
    /// Moves to the next minibatch.
    iterator& operator++() noexcept {
      p_ += b_;
      return *this;
    }
    /// Moves to the next minibatch, returning the iterator before the move.
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    /// Whether both iterators are at the same minibatch.
    bool operator==(const iterator&) const = default;

   private:
    const std::size_t* p_ = nullptr;
    std::size_t b_ = 0;
  };

  /// The full minibatches of `batch_size` (> 0) consecutive indices of `order`.
  batch_view(std::span<const std::size_t> order, std::size_t batch_size) noexcept
      : order_(order), b_(batch_size), n_(order.size() / batch_size) {}

  /// Number of full minibatches.
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Minibatch `k` (k < size()).
  [[nodiscard]] std::span<const std::size_t> operator[](std::size_t k) const noexcept {
    return order_.subspan(k * b_, b_);
  }
  /// The first minibatch.
  [[nodiscard]] iterator begin() const noexcept { return {order_.data(), b_}; }
  /// Past the last full minibatch.
  [[nodiscard]] iterator end() const noexcept { return {order_.data() + n_ * b_, b_}; }

 private:
  std::span<const std::size_t> order_;
  std::size_t b_;
  std::size_t n_;
};

/// Worker `rank`'s shard of `n` training samples among `workers`, walked in minibatches of `batch_size`.
///
/// Usage: `for (auto e = 0u; e < epochs; ++e) for (std::span<const std::size_t> idx : s.epoch(e)) ...`.
/// The part is fixed by (n, workers, rank, seed); the order within an epoch by (seed, rank, epoch) alone, so any
/// epoch can be replayed. Shard sizes differ by at most one: use `common_batches_per_epoch` when every worker
/// must take the same number of steps.
class shard {
 public:
  /// Throws tether::error unless workers > 0, rank < workers, batch_size > 0.
  shard(std::size_t n, std::size_t rank, std::size_t workers, std::size_t batch_size, std::uint64_t seed)
      : rank_(rank), batch_size_(batch_size), seed_(seed) {
    tether::detail::require(workers > 0, "fmnist::shard: workers must be positive, got ", workers);
    tether::detail::require(rank < workers, "fmnist::shard: rank ", rank, " must be below workers ", workers);
    tether::detail::require(batch_size > 0, "fmnist::shard: batch_size must be positive, got ", batch_size);
    std::vector<std::size_t> all(n);
    for (std::size_t i = 0; i < n; ++i) all[i] = i;
    rng gen(mix_seed({seed, 0x676c6f62616cULL /* "global" */}));
    shuffle(std::span<std::size_t>(all), gen);
    const std::size_t base = n / workers;
    const std::size_t extra = n % workers;
    const std::size_t begin = rank * base + std::min(rank, extra);
    const std::size_t size = base + (rank < extra ? 1 : 0);
    part_.assign(all.begin() + static_cast<std::ptrdiff_t>(begin),
                 all.begin() + static_cast<std::ptrdiff_t>(begin + size));
    order_ = part_;
  }

  /// This worker's sample indices, in the order of the global shuffle (not the epoch order).
  [[nodiscard]] std::span<const std::size_t> indices() const noexcept { return part_; }
  /// Number of samples in this shard.
  [[nodiscard]] std::size_t size() const noexcept { return part_.size(); }
  /// Minibatch size.
  [[nodiscard]] std::size_t batch_size() const noexcept { return batch_size_; }
  /// Full minibatches per epoch in this shard.
  [[nodiscard]] std::size_t batches_per_epoch() const noexcept { return part_.size() / batch_size_; }

  /// Full minibatches per epoch that every shard of `n` samples among `workers` has (the smallest shard's count).
  [[nodiscard]] static std::size_t common_batches_per_epoch(std::size_t n, std::size_t workers,
                                                            std::size_t batch_size) noexcept {
    return workers == 0 || batch_size == 0 ? 0 : (n / workers) / batch_size;
  }

  /// Reshuffles this shard for `epoch` (from the fixed part, with a generator seeded by (seed, rank, epoch)) and
  /// returns its minibatches; the last partial batch is dropped. Invalidates views of earlier epochs.
  batch_view epoch(std::uint64_t epoch) {
    order_ = part_;
    rng gen(mix_seed({seed_, rank_, epoch}));
    shuffle(std::span<std::size_t>(order_), gen);
    return {order_, batch_size_};
  }

  /// A seed for minibatch `k` of `epoch` on this worker, for tether::batch::seed.
  [[nodiscard]] std::uint64_t batch_seed(std::uint64_t epoch, std::uint64_t k) const noexcept {
    return mix_seed({seed_, rank_, epoch, k});
  }

 private:
  std::size_t rank_;
  std::size_t batch_size_;
  std::uint64_t seed_;
  std::vector<std::size_t> part_;
  std::vector<std::size_t> order_;
};

}  // namespace fmnist
