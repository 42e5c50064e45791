#pragma once
/// \file
/// Checkpoint files: a versioned, checksummed container written to a temporary name and renamed, so that a
/// crash mid-write never replaces the last good checkpoint; and the writer and bounds-checked reader of its
/// payload. tether::optimizer::save/load use them (docs/reliability.md#checkpoints).
///
///     magic "TETHERCK" | u32 version | u32 zero | u64 payload bytes | u64 FNV-1a-64 of the payload | payload
///
/// Numbers are in the machine's byte order: a checkpoint is read back on the platform that wrote it.

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tether/core/consistency.hpp"
#include "tether/core/error.hpp"
#include "tether/core/fnv1a.hpp"

namespace tether {

/// The version of the checkpoint format this build writes and reads.
inline constexpr std::uint32_t checkpoint_version = 1;

namespace detail::checkpoint_impl {

inline constexpr std::array<char, 8> magic{'T', 'E', 'T', 'H', 'E', 'R', 'C', 'K'};
inline constexpr std::size_t header_bytes = 8 + 4 + 4 + 8 + 8;

inline std::string system_error_text() { return std::strerror(errno); }

}  // namespace detail::checkpoint_impl

/// Appends trivially copyable values and arrays to a checkpoint's payload.
class checkpoint_writer {
 public:
  template <class V>
  void put(const V& v) {
    static_assert(std::is_trivially_copyable_v<V>, "checkpoint_writer::put: V must be trivially copyable");
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(V));
  }
  /// The element count, then the elements.
  template <class V>
  void put_array(std::span<const V> v) {
    static_assert(std::is_trivially_copyable_v<V>, "checkpoint_writer::put_array: V must be trivially copyable");
    put<std::uint64_t>(v.size());
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    bytes_.insert(bytes_.end(), p, p + v.size_bytes());
  }
  [[nodiscard]] std::span<const unsigned char> bytes() const noexcept { return bytes_; }

 private:
  std::vector<unsigned char> bytes_;
};

/// Reads values back from a payload; every read is bounds-checked and names the file and the field.
class checkpoint_reader {
 public:
  checkpoint_reader(std::span<const unsigned char> bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {}

  template <class V>
  [[nodiscard]] V get(const char* what) {
    static_assert(std::is_trivially_copyable_v<V>, "checkpoint_reader::get: V must be trivially copyable");
    need(sizeof(V), what);
    V v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(V));
    pos_ += sizeof(V);
    return v;
  }
  /// An array written by put_array, which must hold exactly `expected` elements.
  template <class V>
  void get_array(std::span<V> out, const char* what) {
    const auto count = get<std::uint64_t>(what);
    if (count != out.size())
      throw error(detail::concat("tether: checkpoint ", path_, ": ", what, " has ", count, " elements, expected ",
                                 out.size()));
    get_array_into(out, what);
  }
  /// An array written by put_array, of any length up to `max` elements.
  template <class V>
  [[nodiscard]] std::vector<V> get_vector(std::size_t max, const char* what) {
    const auto count = get<std::uint64_t>(what);
    if (count > max)
      throw error(detail::concat("tether: checkpoint ", path_, ": ", what, " has ", count, " elements, at most ",
                                 max, " expected"));
    std::vector<V> v(static_cast<std::size_t>(count));
    get_array_into(std::span<V>(v), what);
    return v;
  }
  /// Throws unless every byte was read.
  void expect_end() const {
    if (pos_ != bytes_.size())
      throw error(detail::concat("tether: checkpoint ", path_, ": ", bytes_.size() - pos_,
                                 " bytes left after the last field (a checkpoint of something else?)"));
  }
  /// Throws tether::error naming the file: `a`'s value in the checkpoint differs from `b`'s here.
  template <class V>
  void expect_equal(const V& in_file, const V& here, const char* what) const {
    if (!(in_file == here))
      throw error(detail::concat("tether: checkpoint ", path_, ": it holds ", what, " = ", in_file, ", this ",
                                 "optimizer has ", what, " = ", here));
  }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  template <class V>
  void get_array_into(std::span<V> out, const char* what) {
    need(out.size_bytes(), what);
    if (!out.empty()) std::memcpy(out.data(), bytes_.data() + pos_, out.size_bytes());
    pos_ += out.size_bytes();
  }
  void need(std::size_t n, const char* what) const {
    if (bytes_.size() - pos_ < n)
      throw error(detail::concat("tether: checkpoint ", path_, ": truncated in ", what, " (", n, " bytes needed, ",
                                 bytes_.size() - pos_, " left)"));
  }
  std::span<const unsigned char> bytes_;
  std::size_t pos_ = 0;
  std::string path_;
};

/// Writes `payload` as a checkpoint file at `path`: to `path.tmp` first, flushed to disk, then renamed over
/// `path`. On any failure the temporary file is removed, `path` is left as it was, and tether::runtime_error
/// names the file and the system's reason.
inline void write_checkpoint_file(const std::string& path, std::span<const unsigned char> payload) {
  namespace ci = detail::checkpoint_impl;
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    throw runtime_error(detail::concat("tether: checkpoint ", path, ": cannot create ", tmp, ": ",
                                       ci::system_error_text()));
  const std::uint32_t version = checkpoint_version;
  const std::uint32_t zero = 0;
  const std::uint64_t size = payload.size();
  const std::uint64_t sum = detail::fnv1a(payload);
  bool ok = std::fwrite(ci::magic.data(), 1, ci::magic.size(), f) == ci::magic.size() &&
            std::fwrite(&version, sizeof version, 1, f) == 1 && std::fwrite(&zero, sizeof zero, 1, f) == 1 &&
            std::fwrite(&size, sizeof size, 1, f) == 1 && std::fwrite(&sum, sizeof sum, 1, f) == 1 &&
            (payload.empty() || std::fwrite(payload.data(), 1, payload.size(), f) == payload.size());
  ok = std::fflush(f) == 0 && ok;
  ok = ok && ::fsync(::fileno(f)) == 0;
  const std::string reason = ok ? std::string() : ci::system_error_text();
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = reason.empty() ? ci::system_error_text() : reason;
    std::remove(tmp.c_str());
    throw runtime_error(detail::concat("tether: checkpoint ", path, ": cannot write it: ", why,
                                       " (the previous checkpoint, if any, is unchanged)"));
  }
}

/// Reads and validates a checkpoint file: magic, version, size and checksum. Returns its payload.
[[nodiscard]] inline std::vector<unsigned char> read_checkpoint_file(const std::string& path) {
  namespace ci = detail::checkpoint_impl;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw error(detail::concat("tether: checkpoint ", path, ": cannot open it: ", ci::system_error_text()));
  std::vector<unsigned char> all;
  std::array<unsigned char, 1 << 16> chunk{};
  std::size_t got = 0;
  while ((got = std::fread(chunk.data(), 1, chunk.size(), f)) > 0) all.insert(all.end(), chunk.data(), chunk.data() + got);
  const bool read_error = std::ferror(f) != 0;
  std::fclose(f);
  if (read_error) throw error(detail::concat("tether: checkpoint ", path, ": read error"));
  if (all.size() < ci::header_bytes)
    throw error(detail::concat("tether: checkpoint ", path, ": truncated: ", all.size(), " bytes, less than the ",
                               ci::header_bytes, "-byte header"));
  if (std::memcmp(all.data(), ci::magic.data(), ci::magic.size()) != 0)
    throw error(detail::concat("tether: checkpoint ", path, ": not a tether checkpoint (bad magic)"));
  std::uint32_t version = 0;
  std::uint64_t size = 0;
  std::uint64_t sum = 0;
  std::memcpy(&version, all.data() + 8, sizeof version);
  std::memcpy(&size, all.data() + 16, sizeof size);
  std::memcpy(&sum, all.data() + 24, sizeof sum);
  if (version != checkpoint_version)
    throw error(detail::concat("tether: checkpoint ", path, ": format version ", version, ", this build reads version ",
                               checkpoint_version));
  if (size != all.size() - ci::header_bytes)
    throw error(detail::concat("tether: checkpoint ", path, ": truncated or extended: the header says ", size,
                               " payload bytes, the file has ", all.size() - ci::header_bytes));
  std::vector<unsigned char> payload(all.begin() + static_cast<std::ptrdiff_t>(ci::header_bytes), all.end());
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // fuzzers reach the field checks behind the checksum
  if (detail::fnv1a(payload) != sum)
    throw error(detail::concat("tether: checkpoint ", path, ": corrupted (checksum mismatch)"));
#else
  (void)sum;
#endif
  return payload;
}

namespace detail {

/// After each rank read its checkpoint (a failure to read kept in `failure`): on a communicator across
/// processes (one with check_consistent) the ranks agree, in one bounded collective, that they read checkpoints
/// of the same step, so that a mismatch is an error on every rank rather than a hang in the first round (a rank
/// that could not read its file takes part with all ones and rethrows its own error). Then `failure`, if any,
/// is rethrown.
template <class Comm>
void agree_on_checkpoint_step(Comm& comm, const std::exception_ptr& failure, std::uint64_t step) {
  if constexpr (requires(std::span<const consistency_item> s) { comm.check_consistent(s); }) {
    const std::array<consistency_item, 1> items{
        {{failure ? ~std::uint64_t{0} : step,
          "the step of their checkpoints (all ones: the rank could not read its checkpoint)"}}};
    try {
      comm.check_consistent(std::span<const consistency_item>(items));
    } catch (const error&) {
      if (failure) std::rethrow_exception(failure);  // the rank that could not read says why
      throw;
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace detail
}  // namespace tether
