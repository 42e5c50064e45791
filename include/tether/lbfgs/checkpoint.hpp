#pragma once
/// \file
/// Sandblaster L-BFGS's checkpoint files (docs/algorithms/sandblaster_lbfgs.md#checkpoints): what one worker
/// writes at the end of an iteration and reads back to resume, inside the container of core/checkpoint.hpp
/// (magic, version, size, FNV-1a-64, written to path.tmp and renamed). The payload:
///
///     u64 kind | u32 revision | identity (value size, n, m, rank, workers, coordinator, shards, portions,
///     samples, options) | u64 iteration | u64 shards held, each: index, x, g, s_0..s_{m-1}, y_0..y_{m-1} |
///     u8 coordinator section present | [the coordinator's state and counters]
///
/// Reading checks every field before anything is used: a damaged or mismatched file is a tether::error
/// naming the file and what differs.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/core/checkpoint.hpp"
#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"
#include "tether/lbfgs/coordinator.hpp"
#include "tether/lbfgs/options.hpp"

namespace tether::lbfgs {

/// The checkpoint file of worker `rank` for the stem `stem` (options::checkpoint.path or .resume_from).
[[nodiscard]] inline std::string checkpoint_file(const std::string& stem, int rank) {
  return stem + ".rank" + std::to_string(rank);
}

/// What a worker's checkpoint must match to be resumed by this run.
struct checkpoint_identity {
  std::uint64_t value_bytes = 0;  ///< sizeof(T)
  std::uint64_t n = 0;
  std::uint64_t history = 0;
  std::int32_t rank = 0;
  std::int32_t workers = 0;
  std::int32_t coordinator = 0;
  std::uint64_t shards = 0;
  std::uint64_t portions = 0;  ///< portions per batch (min(options::portions, samples))
  std::uint64_t samples = 0;
  std::uint64_t options = 0;  ///< iterate_fingerprint of the options
};

/// A fingerprint of the options that decide the iterates of a run (beyond history, shards, portions and the
/// coordinator, which the identity names): a resumed run must have the same. epsilon, delta, max_iterations,
/// the timeout and the backup settings only decide when to stop or who computes what, and may differ.
[[nodiscard]] inline std::uint64_t iterate_fingerprint(const options& o) {
  std::uint64_t h = tether::detail::fnv1a_offset;
  using tether::detail::fingerprint_impl::hash_into;
  hash_into(h, o.past);
  hash_into(h, o.line_search);
  hash_into(h, o.curvature_epsilon);
  hash_into(h, o.seed);
  return h;
}

/// One shard's slices in a checkpoint: the committed x and g and the m history slots.
template <class T>
struct shard_checkpoint {
  std::uint64_t index = 0;
  std::vector<T> x, g;
  std::vector<std::vector<T>> s, y;
};

/// The coordinator's part of a checkpoint: its state and the run's counters.
struct coordinator_checkpoint {
  coordinator_state logic;
  std::uint64_t portions = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t backups = 0;
  std::uint64_t coordinator_bytes = 0;
};

/// What one worker's checkpoint holds.
template <class T>
struct worker_checkpoint {
  std::uint64_t iteration = 0;
  std::vector<shard_checkpoint<T>> shards;            ///< the shards this worker holds, by index
  std::optional<coordinator_checkpoint> coordinator;  ///< on the coordinator's file only
};

namespace checkpoint_format {

/// The payload's first field: tells a Sandblaster L-BFGS checkpoint from another algorithm's.
inline std::uint64_t kind() {
  return tether::detail::fnv1a(std::string_view("tether::lbfgs::minimize checkpoint"));
}
inline constexpr std::uint32_t revision = 1;

inline void put_identity(checkpoint_writer& w, const checkpoint_identity& id) {
  w.put<std::uint64_t>(kind());
  w.put<std::uint32_t>(revision);
  w.put(id.value_bytes);
  w.put(id.n);
  w.put(id.history);
  w.put(id.rank);
  w.put(id.workers);
  w.put(id.coordinator);
  w.put(id.shards);
  w.put(id.portions);
  w.put(id.samples);
  w.put(id.options);
}

/// Throws unless the value in the file equals this run's.
template <class V>
void expect(const checkpoint_reader& r, const char* what, const V& in_file, const V& here) {
  if (!(in_file == here))
    throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": it was written with ", what, " = ",
                                       in_file, ", this run has ", what, " = ", here));
}

inline void read_identity(checkpoint_reader& r, const checkpoint_identity& id) {
  if (r.get<std::uint64_t>("the kind of checkpoint") != kind())
    throw error(
        tether::detail::concat("tether: checkpoint ", r.path(),
                               ": not a Sandblaster L-BFGS checkpoint (another algorithm's file, such "
                               "as a tether::optimizer checkpoint)"));
  expect(r, "the lbfgs checkpoint revision", r.get<std::uint32_t>("the revision"), revision);
  expect(r, "the value size in bytes", r.get<std::uint64_t>("the value size"), id.value_bytes);
  expect(r, "n", r.get<std::uint64_t>("n"), id.n);
  expect(r, "history (m)", r.get<std::uint64_t>("the history"), id.history);
  expect(r, "the rank", r.get<std::int32_t>("the rank"), id.rank);
  expect(r, "the worker count", r.get<std::int32_t>("the worker count"), id.workers);
  expect(r, "coordinator", r.get<std::int32_t>("the coordinator"), id.coordinator);
  expect(r, "the shard count", r.get<std::uint64_t>("the shard count"), id.shards);
  expect(r, "the portions per batch", r.get<std::uint64_t>("the portions"), id.portions);
  expect(r, "the objective's samples", r.get<std::uint64_t>("the samples"), id.samples);
  if (r.get<std::uint64_t>("the options") != id.options)
    throw error(tether::detail::concat("tether: checkpoint ", r.path(),
                                       ": it was written with other options that decide the iterates (past, "
                                       "line_search, curvature_epsilon or seed) than this run's"));
}

inline void put_coordinator(checkpoint_writer& w, const coordinator_checkpoint& c) {
  const coordinator_state& s = c.logic;
  w.put<std::uint64_t>(s.count);
  w.put<std::uint64_t>(s.newest);
  w.put_array(std::span<const double>(s.matrix));
  w.put(s.batch);
  w.put<std::uint64_t>(s.iterations);
  w.put<std::uint64_t>(s.evaluations);
  w.put<std::uint64_t>(s.restarts);
  w.put<std::uint64_t>(s.pairs_skipped);
  w.put(s.f);
  w.put(s.gradient_norm);
  w.put(s.x_norm);
  w.put_array(std::span<const double>(s.past));
  w.put<std::uint64_t>(s.history.size());
  for (const iteration_record& h : s.history) {
    w.put<std::uint64_t>(h.iteration);
    w.put(h.f);
    w.put(h.gradient_norm);
    w.put(h.step);
    w.put<std::uint64_t>(h.evaluations);
    w.put<std::uint64_t>(h.portions);
    w.put<std::uint64_t>(h.duplicates);
    w.put<std::uint64_t>(h.backups);
    w.put(h.coordinator_bytes);
    w.put(h.seconds);
    w.put<std::uint8_t>(static_cast<std::uint8_t>((h.restarted ? 1u : 0u) | (h.pair_skipped ? 2u : 0u)));
  }
  w.put(c.portions);
  w.put(c.duplicates);
  w.put(c.backups);
  w.put(c.coordinator_bytes);
}

inline coordinator_checkpoint get_coordinator(checkpoint_reader& r, const options& o,
                                              std::uint64_t iteration) {
  coordinator_checkpoint c;
  coordinator_state& s = c.logic;
  const std::size_t m = o.history;
  auto size = [&](const char* what) { return static_cast<std::size_t>(r.get<std::uint64_t>(what)); };
  s.count = size("the stored pairs");
  s.newest = size("the newest slot");
  if (s.count > m || s.newest >= m)
    throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": ", s.count,
                                       " stored pairs with the newest in slot ", s.newest,
                                       " do not fit history m = ", m));
  s.matrix.resize((2 * m + 1) * (2 * m + 1));
  r.get_array(std::span<double>(s.matrix), "the dot-product matrix");
  s.batch = r.get<std::uint64_t>("the batch number");
  s.iterations = size("the iterations");
  expect(r, "the coordinator's iteration", static_cast<std::uint64_t>(s.iterations), iteration);
  s.evaluations = size("the evaluations");
  s.restarts = size("the restarts");
  s.pairs_skipped = size("the pairs skipped");
  s.f = r.get<double>("f");
  s.gradient_norm = r.get<double>("|g|");
  s.x_norm = r.get<double>("|x|");
  s.past.resize(o.past);
  r.get_array(std::span<double>(s.past), "the past window");
  const std::size_t records = size("the iteration records");
  if (records != s.iterations)
    throw error(tether::detail::concat("tether: checkpoint ", r.path(), ": ", records,
                                       " iteration records for ", s.iterations, " iterations"));
  // One record at a time: a damaged count runs out of bytes (truncated) before it allocates much.
  for (std::size_t i = 0; i < records; ++i) {
    iteration_record& h = s.history.emplace_back();
    h.iteration = size("an iteration record");
    h.f = r.get<double>("an iteration record");
    h.gradient_norm = r.get<double>("an iteration record");
    h.step = r.get<double>("an iteration record");
    h.evaluations = size("an iteration record");
    h.portions = size("an iteration record");
    h.duplicates = size("an iteration record");
    h.backups = size("an iteration record");
    h.coordinator_bytes = r.get<std::uint64_t>("an iteration record");
    h.seconds = r.get<double>("an iteration record");
    const auto flags = r.get<std::uint8_t>("an iteration record");
    h.restarted = (flags & 1u) != 0;
    h.pair_skipped = (flags & 2u) != 0;
  }
  c.portions = r.get<std::uint64_t>("the portion count");
  c.duplicates = r.get<std::uint64_t>("the duplicate count");
  c.backups = r.get<std::uint64_t>("the backup count");
  c.coordinator_bytes = r.get<std::uint64_t>("the coordinator's bytes");
  return c;
}

}  // namespace checkpoint_format

/// The size of one shard in a checkpoint: its index and its slice's length.
struct held_shard {
  std::uint64_t index = 0;
  std::uint64_t size = 0;
};

/// Writes one worker's checkpoint of `iteration` to `path`: `shards` (with x(), g(), s(j), y(j), index())
/// and, on the coordinator, its part.
template <class T, class Shards>
void write_worker_checkpoint(const std::string& path, const checkpoint_identity& id, std::uint64_t iteration,
                             const Shards& shards, const coordinator_checkpoint* coordinator) {
  namespace cf = checkpoint_format;
  checkpoint_writer w;
  cf::put_identity(w, id);
  w.put(iteration);
  w.put<std::uint64_t>(shards.size());
  for (const auto& sh : shards) {
    w.put<std::uint64_t>(sh.index());
    w.put_array(std::span<const T>(sh.x()));
    w.put_array(std::span<const T>(sh.g()));
    for (std::size_t j = 0; j < id.history; ++j) w.put_array(std::span<const T>(sh.s(j)));
    for (std::size_t j = 0; j < id.history; ++j) w.put_array(std::span<const T>(sh.y(j)));
  }
  w.put<std::uint8_t>(coordinator != nullptr ? 1 : 0);
  if (coordinator != nullptr) cf::put_coordinator(w, *coordinator);
  write_checkpoint_file(path, w.bytes());
}

/// Reads and checks one worker's checkpoint: this run's identity, the shards it holds (`held`, in order) and
/// the coordinator's part exactly on the coordinator. Throws tether::error naming the file and what is wrong.
template <class T>
[[nodiscard]] worker_checkpoint<T> read_worker_checkpoint(const std::string& path,
                                                          const checkpoint_identity& id, const options& o,
                                                          std::span<const held_shard> held) {
  namespace cf = checkpoint_format;
  const std::vector<unsigned char> bytes = read_checkpoint_file(path);
  checkpoint_reader r(bytes, path);
  cf::read_identity(r, id);
  worker_checkpoint<T> c;
  c.iteration = r.get<std::uint64_t>("the iteration");
  if (c.iteration == 0)
    throw error(tether::detail::concat("tether: checkpoint ", path,
                                       ": iteration 0 (no checkpoint is written "
                                       "before the first iteration)"));
  cf::expect(r, "the shards held by this worker", r.get<std::uint64_t>("the shards held"),
             static_cast<std::uint64_t>(held.size()));
  c.shards.resize(held.size());
  for (std::size_t k = 0; k < held.size(); ++k) {
    shard_checkpoint<T>& sh = c.shards[k];
    sh.index = r.get<std::uint64_t>("a shard's index");
    cf::expect(r, "a shard's index", sh.index, held[k].index);
    const auto len = static_cast<std::size_t>(held[k].size);
    sh.x.resize(len);
    sh.g.resize(len);
    r.get_array(std::span<T>(sh.x), "a shard's x");
    r.get_array(std::span<T>(sh.g), "a shard's g");
    sh.s.assign(id.history, std::vector<T>(len));
    sh.y.assign(id.history, std::vector<T>(len));
    for (auto& v : sh.s) r.get_array(std::span<T>(v), "a shard's history s");
    for (auto& v : sh.y) r.get_array(std::span<T>(v), "a shard's history y");
  }
  const bool has_coordinator = r.get<std::uint8_t>("the coordinator flag") != 0;
  const bool is_coordinator = id.rank == id.coordinator;
  if (has_coordinator != is_coordinator)
    throw error(tether::detail::concat("tether: checkpoint ", path, ": ",
                                       has_coordinator ? "it holds" : "it lacks",
                                       " the coordinator's state, and this worker (rank ", id.rank, ") ",
                                       is_coordinator ? "is" : "is not", " the coordinator"));
  if (has_coordinator) c.coordinator = cf::get_coordinator(r, o, c.iteration);
  r.expect_end();
  return c;
}

}  // namespace tether::lbfgs
