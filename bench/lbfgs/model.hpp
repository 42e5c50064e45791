#pragma once
// The byte model of one Sandblaster batch (docs/algorithms/sandblaster_lbfgs.md#bytes): what the
// coordinator's commands and the replies to it carry (scalars only), and what all workers send in total (the
// trial point to every replica, each portion's contribution to the shard holders, and the scalars).

#include <cstddef>

namespace lbfgs_model {

struct bytes {
  double coordinator = 0.0;  ///< bytes of messages the coordinator sends to or receives from other workers
  double all_workers = 0.0;  ///< bytes all workers send, scalars and vectors
};

/// One batch with a new direction (2m + 1 coefficients), N values of s bytes, P portions, p workers, S shards
/// (shard s on worker s % p), every portion computed once.
inline bytes per_batch(std::size_t n, std::size_t s, std::size_t m, std::size_t portions, std::size_t p,
                       std::size_t shards) {
  const double others = static_cast<double>(p - 1);
  const double trial =
      8 + 8 + 4 + 8 + 8 + 8.0 * static_cast<double>(2 * m + 1);          // batch, alpha, flags, slot, delta
  const double assign = 16;                                              // batch, portion
  const double done = 24;                                                // batch, portion, f
  const double dots = 8 + 8 + 8 + 8.0 * static_cast<double>(8 + 6 * m);  // batch, shard, count, values
  const double remote_portions = static_cast<double>(portions) * others / static_cast<double>(p);
  const double remote_shards =
      static_cast<double>(shards) - static_cast<double>(shards) / static_cast<double>(p);
  bytes b;
  b.coordinator = others * trial + remote_portions * (assign + done) + remote_shards * dots;
  // Vectors: every shard's slice of the trial point to the p - 1 other workers; every portion's contribution
  // to the shard holders other than its replica (about (p - 1) / p of N each).
  const double params =
      static_cast<double>(n) * static_cast<double>(s) * others + 24.0 * static_cast<double>(shards) * others;
  const double grads = static_cast<double>(portions) * static_cast<double>(n) * static_cast<double>(s) *
                       others / static_cast<double>(p);
  b.all_workers = b.coordinator + params + grads;
  return b;
}

}  // namespace lbfgs_model
