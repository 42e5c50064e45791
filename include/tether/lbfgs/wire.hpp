#pragma once
/// \file
/// Sandblaster's messages: their kinds, a byte writer and reader (host byte order: every worker is the same
/// program), and the encodings of a trial command and of a result.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/error.hpp"
#include "tether/lbfgs/options.hpp"
#include "tether/lbfgs/shard.hpp"

namespace tether::lbfgs::wire {

/// What a message is. Between one sender and one receiver messages arrive in the order they were sent.
enum class tag : std::int32_t {
  trial = 1,  ///< coordinator -> every worker: a trial command (scalars)
  params,     ///< shard holder -> every worker: its slice of the trial point
  assign,     ///< coordinator -> replica: compute portion k of batch b
  grad,       ///< replica -> shard holder: a portion's contribution to the shard's slice of the gradient
  done,       ///< replica -> coordinator: portion k of batch b is done, with its loss
  skipped,    ///< replica -> coordinator: an assignment dropped (a newer batch started, or it was cancelled)
  dots,       ///< shard holder -> coordinator: the shard's dot products after a batch
  stop,       ///< coordinator -> every worker: the run is over (with the result)
  final,      ///< shard holder -> every worker: the shard's slices of the final x and g
  bye,        ///< every worker -> every worker: nothing more will come from me
  heartbeat,  ///< coordinator -> workers: still alive (while a batch waits on a slow replica)
  abort,      ///< a worker failed: the text of its error
  cancel,  ///< coordinator -> replica: portion k of batch b is done elsewhere; drop your copy if not started
  save,    ///< coordinator -> every worker: write your checkpoint of the iteration just committed
};

/// A received message.
struct message {
  tag kind = tag::bye;
  int from = 0;
  std::vector<std::byte> bytes;
};

/// Appends values to a message.
class writer {
 public:
  template <class V>
  writer& put(const V& v) {
    static_assert(std::is_trivially_copyable_v<V>);
    append(&v, sizeof(V));
    return *this;
  }
  template <class V>
  writer& put_span(std::span<const V> v) {
    static_assert(std::is_trivially_copyable_v<V>);
    put<std::uint64_t>(v.size());
    append(v.data(), v.size_bytes());
    return *this;
  }
  writer& put_string(const std::string& s) { return put_span(std::span<const char>(s.data(), s.size())); }
  [[nodiscard]] std::vector<std::byte> take() { return std::move(b_); }
  void reserve(std::size_t n) { b_.reserve(n); }

 private:
  void append(const void* p, std::size_t n) {
    if (n == 0) return;
    const std::size_t at = b_.size();
    b_.resize(at + n);
    std::memcpy(b_.data() + at, p, n);
  }
  std::vector<std::byte> b_;
};

/// Reads values back in the order they were written; tether::runtime_error on a short message.
class reader {
 public:
  explicit reader(const message& m) : m_(m) {}

  template <class V>
  V get() {
    static_assert(std::is_trivially_copyable_v<V>);
    need(sizeof(V));
    V v;
    std::memcpy(&v, m_.bytes.data() + pos_, sizeof(V));
    pos_ += sizeof(V);
    return v;
  }
  /// A span written by put_span, copied into `out` (resized).
  template <class V>
  void get_span(std::vector<V>& out) {
    const auto n = static_cast<std::size_t>(get<std::uint64_t>());
    need(n * sizeof(V));
    out.resize(n);
    if (n > 0) std::memcpy(out.data(), m_.bytes.data() + pos_, n * sizeof(V));
    pos_ += n * sizeof(V);
  }
  std::string get_string() {
    std::vector<char> c;
    get_span(c);
    return {c.begin(), c.end()};
  }

 private:
  void need(std::size_t n) const {
    if (pos_ + n > m_.bytes.size())
      throw runtime_error(detail::concat("tether: sandblaster_lbfgs: a message of kind ",
                                         static_cast<int>(m_.kind), " from worker ", m_.from,
                                         " is shorter than its content (", m_.bytes.size(), " bytes)"));
  }
  const message& m_;
  std::size_t pos_ = 0;
};

inline std::vector<std::byte> encode(const trial_command& c) {
  writer w;
  const std::uint32_t flags = (c.initial ? 1u : 0u) | (c.commit ? 2u : 0u) | (c.store ? 4u : 0u);
  w.put(c.batch).put(c.alpha).put(flags).put<std::uint64_t>(c.slot);
  w.put_span(std::span<const double>(c.delta));
  return w.take();
}

inline trial_command decode_trial(const message& m) {
  reader r(m);
  trial_command c;
  c.batch = r.get<std::uint64_t>();
  c.alpha = r.get<double>();
  const auto flags = r.get<std::uint32_t>();
  c.initial = (flags & 1u) != 0;
  c.commit = (flags & 2u) != 0;
  c.store = (flags & 4u) != 0;
  c.slot = static_cast<std::size_t>(r.get<std::uint64_t>());
  r.get_span(c.delta);
  return c;
}

inline void put_result(writer& w, const result& res) {
  w.put(static_cast<std::uint8_t>(res.status));
  w.put_string(res.message);
  w.put<std::uint64_t>(res.iterations).put<std::uint64_t>(res.function_evaluations);
  w.put<std::uint64_t>(res.gradient_evaluations).put(res.f).put(res.gradient_norm);
  w.put<std::uint64_t>(res.restarts).put<std::uint64_t>(res.pairs_skipped).put<std::uint64_t>(res.portions);
  w.put<std::uint64_t>(res.duplicates).put<std::uint64_t>(res.backups).put<std::uint64_t>(res.lost_workers);
  w.put(res.coordinator_bytes).put(res.seconds);
  w.put<std::uint64_t>(res.history.size());
  for (const auto& h : res.history) {
    w.put<std::uint64_t>(h.iteration)
        .put(h.f)
        .put(h.gradient_norm)
        .put(h.step)
        .put<std::uint64_t>(h.evaluations);
    w.put<std::uint64_t>(h.portions).put<std::uint64_t>(h.duplicates).put<std::uint64_t>(h.backups);
    w.put(h.coordinator_bytes).put(h.seconds);
    w.put(static_cast<std::uint8_t>((h.restarted ? 1u : 0u) | (h.pair_skipped ? 2u : 0u)));
  }
}

inline result get_result(reader& r) {
  result res;
  res.status = static_cast<outcome>(r.get<std::uint8_t>());
  res.message = r.get_string();
  auto size = [&] { return static_cast<std::size_t>(r.get<std::uint64_t>()); };
  res.iterations = size();
  res.function_evaluations = size();
  res.gradient_evaluations = size();
  res.f = r.get<double>();
  res.gradient_norm = r.get<double>();
  res.restarts = size();
  res.pairs_skipped = size();
  res.portions = size();
  res.duplicates = size();
  res.backups = size();
  res.lost_workers = size();
  res.coordinator_bytes = r.get<std::uint64_t>();
  res.seconds = r.get<double>();
  res.history.resize(size());
  for (auto& h : res.history) {
    h.iteration = size();
    h.f = r.get<double>();
    h.gradient_norm = r.get<double>();
    h.step = r.get<double>();
    h.evaluations = size();
    h.portions = size();
    h.duplicates = size();
    h.backups = size();
    h.coordinator_bytes = r.get<std::uint64_t>();
    h.seconds = r.get<double>();
    const auto flags = r.get<std::uint8_t>();
    h.restarted = (flags & 1u) != 0;
    h.pair_skipped = (flags & 2u) != 0;
  }
  return res;
}

}  // namespace tether::lbfgs::wire
