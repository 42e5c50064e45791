#pragma once
/// \file
/// Fashion-MNIST loading: a strict reader for IDX files (gzip-compressed, through zlib's inflate, or raw)
/// and the standardized in-memory dataset the examples train on. The same parser reads a file or bytes in
/// memory (read_idx_images / parse_idx_images); tests/fuzz/idx_parse.cpp fuzzes it.
///
/// Every problem with a file (missing, unreadable, wrong magic number, wrong image size, truncated,
/// trailing bytes, labels out of range, image/label counts that disagree) throws
/// `tether::runtime_error` with a message that starts with the file's path (or the bytes' name) and says
/// what is wrong.

#include <tether/core/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace fmnist {

/// Side length of a Fashion-MNIST image in pixels.
inline constexpr std::size_t image_side = 28;
/// Number of pixels (features) of one image: 28 x 28.
inline constexpr std::size_t image_size = image_side * image_side;
/// Number of classes; labels are 0..9.
inline constexpr std::size_t classes = 10;
/// "No limit" for the sample count arguments.
inline constexpr std::size_t all_samples = std::numeric_limits<std::size_t>::max();
/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
inline constexpr std::uint32_t images_magic = 0x00000803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
inline constexpr std::uint32_t labels_magic = 0x00000801;
/// Where Debian's dataset-fashion-mnist package installs the files.
inline constexpr const char* default_directory_path = "/usr/share/datasets/fashion-mnist";
/// Environment variable that overrides default_directory_path.
inline constexpr const char* directory_env_var = "TETHER_FASHION_MNIST_DIR";

/// Which part of Fashion-MNIST: the 60000 training or the 10000 test samples.
enum class split { train, test };

/// The raw content of an IDX image file: `count` images of `rows` x `cols` bytes, row-major, image after image.
struct raw_images {
  std::size_t count = 0;              ///< number of images
  std::size_t rows = 0;               ///< pixel rows per image (28)
  std::size_t cols = 0;               ///< pixel columns per image (28)
  std::vector<std::uint8_t> pixels;   ///< count x rows x cols bytes, 0 = background
};

/// Per-pixel standardization `(p / 255 - mean) / stddev`, shared by all pixels.
struct normalization {
  double mean = 0.0;    ///< mean of the pixel values scaled to [0,1]
  double stddev = 1.0;  ///< population standard deviation of the scaled pixel values
};

/// Standardized Fashion-MNIST samples in memory.
struct dataset {
  std::size_t count = 0;               ///< number of samples
  std::size_t features = image_size;   ///< values per sample (784)
  std::vector<float> images;           ///< count x features, row-major: pixels scaled to [0,1], then standardized with `norm`
  std::vector<std::uint8_t> labels;    ///< count labels in 0..9
  normalization norm{};                ///< the standardization applied (computed from the training set)

  /// The `features` values of sample `i`.
  [[nodiscard]] std::span<const float> image(std::size_t i) const {
    return std::span<const float>(images).subspan(i * features, features);
  }
};

namespace detail {

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

/// An open IDX file, or an IDX file's bytes in memory, gzip-compressed (one or more gzip members, as gzip
/// writes them) or raw. zlib's inflate runs here rather than behind gzread, because gzread silently ignores
/// whatever follows the last gzip member: bytes after the stream that are not another member are an error here,
/// as trailing bytes of a raw file are. Only read_source() differs between a file and memory.
class idx_file {
 public:
  /// Opens the file at `path` (its errors start with the path).
  explicit idx_file(std::string path) : path_(std::move(path)), in_(1U << 17) {
    file_.reset(std::fopen(path_.c_str(), "rb"));
    if (!file_) fail("cannot open file: " + std::generic_category().message(errno));
    start();
  }
  /// Reads `bytes`, which must outlive this object (its errors start with `name`).
  idx_file(std::string name, std::span<const std::uint8_t> bytes)
      : path_(std::move(name)), memory_(bytes), in_(std::clamp<std::size_t>(bytes.size(), 2, std::size_t{1} << 17)) {
    start();
  }
  idx_file(const idx_file&) = delete;
  idx_file& operator=(const idx_file&) = delete;
  ~idx_file() {
    if (inflating_) inflateEnd(&zs_);
  }

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

  /// Reads up to `n` bytes into `out`; returns how many were read (fewer only at end of data: the end of the
  /// raw file, or of the last gzip member; a gzip member cut short also ends the data, and the caller reports
  /// the file as truncated).
  std::size_t read_some(std::uint8_t* out, std::size_t n) {
    if (!gzip_) return read_raw(out, n);
    return read_gzip(out, n);
  }

  /// Reads a big-endian 32-bit header word, `what` naming it for the error message.
  std::uint32_t read_u32(const char* what) {
    std::array<std::uint8_t, 4> b{};
    const std::size_t got = read_some(b.data(), b.size());
    if (got != b.size()) fail(tether::detail::concat("truncated: header ends before the ", what));
    return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
  }

  /// Reads the magic number and checks it is `expected` (an IDX `kind` file: "image" or "label").
  void expect_magic(std::uint32_t expected, const char* kind) {
    const std::uint32_t magic = read_u32("magic number");
    if (magic != expected) {
      fail(tether::detail::concat("wrong magic number 0x", hex(magic), " (expected 0x", hex(expected), " for an IDX ",
                                  kind, " file)"));
    }
  }

  /// Reads exactly `expected` bytes of `what` and checks that nothing follows them.
  std::vector<std::uint8_t> read_payload(std::uint64_t expected, const char* what) {
    std::vector<std::uint8_t> data;
    // Grow while reading (at most 1 MiB reserved up front), so that a corrupt header costs nothing before the
    // data runs out: neither terabytes nor, for every short input, tens of megabytes.
    data.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected, std::uint64_t{1} << 20)));
    std::uint64_t got = 0;
    while (got < expected) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(expected - got, std::uint64_t{1} << 20));
      data.resize(static_cast<std::size_t>(got) + chunk);
      const std::size_t r = read_some(data.data() + got, chunk);
      got += r;
      if (r < chunk) break;
    }
    if (got != expected) {
      fail(tether::detail::concat("truncated: expected ", expected, " ", what, " bytes, got ", got));
    }
    std::uint8_t extra = 0;
    if (read_some(&extra, 1) != 0) {
      fail(tether::detail::concat("trailing data after the expected ", expected, " ", what, " bytes"));
    }
    return data;
  }

  [[noreturn]] void fail(const std::string& what) const { throw tether::runtime_error(path_ + ": " + what); }

 private:
  /// Fills the buffer and detects gzip by its first two bytes.
  void start() {
    refill();
    gzip_ = have_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_) {
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) fail("cannot start zlib's inflate");
      inflating_ = true;
    }
  }

  /// Inflated bytes: up to `n`, fewer at the end of the last member or where a member is cut short.
  std::size_t read_gzip(std::uint8_t* out, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      if (member_done_) {
        // After a member: nothing (the end), another member (concatenated gzip), or an error.
        if (pos_ == have_) refill();
        if (pos_ == have_) break;
        if (have_ - pos_ < 2) refill_keep();
        if (have_ - pos_ < 2 || in_[pos_] != 0x1f || in_[pos_ + 1] != 0x8b)
          fail("trailing data after the gzip stream");
        if (inflateReset(&zs_) != Z_OK) fail("cannot restart zlib's inflate");
        member_done_ = false;
      }
      if (pos_ == have_) {
        refill();
        if (pos_ == have_) break;  // the member is cut short: the caller says "truncated"
      }
      zs_.next_in = in_.data() + pos_;
      zs_.avail_in = static_cast<uInt>(have_ - pos_);
      zs_.next_out = out + got;
      zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - got, std::size_t{1} << 30));
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      got = static_cast<std::size_t>(zs_.next_out - out);
      pos_ = static_cast<std::size_t>(zs_.next_in - in_.data());
      if (rc == Z_STREAM_END) {
        member_done_ = true;
      } else if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR) {
        fail(tether::detail::concat("corrupt gzip data: ", zs_.msg != nullptr ? zs_.msg : "zlib error ", rc));
      }
    }
    return got;
  }

  static std::string hex(std::uint32_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(8, '0');
    for (int i = 7; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xFU];
    return s;
  }

  /// Raw bytes: what is buffered, then the file.
  std::size_t read_raw(std::uint8_t* out, std::size_t n) {
    std::size_t got = std::min(n, have_ - pos_);
    std::copy_n(in_.data() + pos_, got, out);
    pos_ += got;
    if (got < n) got += read_source(out + got, n - got);
    return got;
  }
  /// Up to `n` next bytes of the file (all that are left below n only at its end) or of the memory.
  std::size_t read_source(std::uint8_t* out, std::size_t n) {
    if (!file_) {
      const std::size_t k = std::min(n, memory_.size());
      std::copy_n(memory_.begin(), k, out);
      memory_ = memory_.subspan(k);
      return k;
    }
    std::size_t got = 0;
    while (got < n) {
      const std::size_t r = std::fread(out + got, 1, n - got, file_.get());
      if (r == 0) {
        if (std::ferror(file_.get()) != 0) fail("read error: " + std::generic_category().message(errno));
        break;
      }
      got += r;
    }
    return got;
  }
  /// Replaces the input buffer with the next bytes of the source.
  void refill() {
    pos_ = 0;
    have_ = read_source(in_.data(), in_.size());
  }
  /// Keeps the unread bytes at the front of the buffer and appends the file's next ones.
  void refill_keep() {
    const std::size_t left = have_ - pos_;
    std::copy(in_.begin() + static_cast<std::ptrdiff_t>(pos_), in_.begin() + static_cast<std::ptrdiff_t>(have_),
              in_.begin());
    pos_ = 0;
    have_ = left + read_source(in_.data() + left, in_.size() - left);
  }

  std::string path_;
  file_ptr file_;                          // the file, or null when reading memory_
  std::span<const std::uint8_t> memory_;  // the bytes not yet read, without a file
  std::vector<std::uint8_t> in_;  // input buffer: raw bytes, or compressed ones
  std::size_t pos_ = 0;           // next unread byte of in_
  std::size_t have_ = 0;          // bytes of in_ filled
  bool gzip_ = false;
  bool inflating_ = false;  // zs_ was initialised
  bool member_done_ = false;
  z_stream zs_{};
};

inline std::string file_name(split which, bool images) {
  const char* part = which == split::train ? "train" : "t10k";
  return std::string(part) + (images ? "-images-idx3-ubyte" : "-labels-idx1-ubyte");
}

/// `dir/name.gz` if it exists, else `dir/name` if that exists, else `dir/name.gz` (whose opening then fails).
inline std::string find_file(const std::string& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path gz = fs::path(dir) / (name + ".gz");
  const fs::path raw = fs::path(dir) / name;
  std::error_code ec;
  if (!fs::exists(gz, ec) && fs::exists(raw, ec)) return raw.string();
  return gz.string();
}

}  // namespace detail

namespace detail {

/// The images of an open IDX image file (see read_idx_images).
inline raw_images read_images(idx_file& f) {
  f.expect_magic(images_magic, "image");
  raw_images out;
  out.count = f.read_u32("image count");
  out.rows = f.read_u32("row count");
  out.cols = f.read_u32("column count");
  if (out.rows != image_side || out.cols != image_side) {
    f.fail(tether::detail::concat("wrong image dimensions ", out.rows, "x", out.cols, " (expected ", image_side, "x",
                                  image_side, ")"));
  }
  out.pixels = f.read_payload(std::uint64_t{out.count} * out.rows * out.cols, "pixel");
  return out;
}

/// The labels of an open IDX label file (see read_idx_labels).
inline std::vector<std::uint8_t> read_labels(idx_file& f) {
  f.expect_magic(labels_magic, "label");
  const std::uint32_t count = f.read_u32("label count");
  std::vector<std::uint8_t> labels = f.read_payload(count, "label");
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= classes) {
      f.fail(tether::detail::concat("label ", int{labels[i]}, " of sample ", i, " is out of range 0..", classes - 1));
    }
  }
  return labels;
}

}  // namespace detail

/// Reads an IDX image file (magic 0x00000803, 28 x 28 images), gzip-compressed or not.
/// Throws tether::runtime_error naming the file when it cannot be opened, has a wrong magic number or image size,
/// is truncated, or has bytes after the last image.
[[nodiscard]] inline raw_images read_idx_images(const std::string& path) {
  detail::idx_file f(path);
  return detail::read_images(f);
}

/// Parses an IDX image file's bytes in memory, gzip-compressed or not, as read_idx_images reads a file: the
/// same checks, and tether::runtime_error messages that start with `name`.
[[nodiscard]] inline raw_images parse_idx_images(std::span<const std::uint8_t> bytes,
                                                 const std::string& name = "IDX bytes") {
  detail::idx_file f(name, bytes);
  return detail::read_images(f);
}

/// Reads an IDX label file (magic 0x00000801), gzip-compressed or not, and checks every label is in 0..9.
/// Throws tether::runtime_error naming the file when it cannot be opened, has a wrong magic number, is truncated,
/// has bytes after the last label, or holds a label above 9.
[[nodiscard]] inline std::vector<std::uint8_t> read_idx_labels(const std::string& path) {
  detail::idx_file f(path);
  return detail::read_labels(f);
}

/// Parses an IDX label file's bytes in memory, gzip-compressed or not, as read_idx_labels reads a file: the
/// same checks, and tether::runtime_error messages that start with `name`.
[[nodiscard]] inline std::vector<std::uint8_t> parse_idx_labels(std::span<const std::uint8_t> bytes,
                                                                const std::string& name = "IDX bytes") {
  detail::idx_file f(name, bytes);
  return detail::read_labels(f);
}

/// Mean and population standard deviation of `pixels` scaled to [0,1] (exact, via a byte histogram).
/// Throws tether::runtime_error when there are no pixels or they are all equal.
[[nodiscard]] inline normalization compute_normalization(std::span<const std::uint8_t> pixels) {
  std::array<std::uint64_t, 256> histogram{};
  for (const std::uint8_t p : pixels) ++histogram[p];
  double sum = 0.0;
  for (std::size_t v = 0; v < histogram.size(); ++v) sum += static_cast<double>(histogram[v]) * static_cast<double>(v) / 255.0;
  if (pixels.empty()) throw tether::runtime_error("fmnist: cannot standardize an empty image set");
  // All pixels equal is decided on the histogram, exactly (the variance formula leaves a small positive
  // value from cancellation); the variance is then a second pass over the 256 bins around the mean.
  const auto distinct = std::count_if(histogram.begin(), histogram.end(), [](std::uint64_t c) { return c != 0; });
  if (distinct < 2) throw tether::runtime_error("fmnist: cannot standardize images whose pixels are all equal");
  const double n = static_cast<double>(pixels.size());
  const double mean = sum / n;
  double ss = 0.0;
  for (std::size_t v = 0; v < histogram.size(); ++v) {
    const double d = static_cast<double>(v) / 255.0 - mean;
    ss += static_cast<double>(histogram[v]) * d * d;
  }
  return {mean, std::sqrt(ss / n)};
}

/// The directory to load from: $TETHER_FASHION_MNIST_DIR if set and not empty, else the Debian package's path.
[[nodiscard]] inline std::string default_directory() {
  const char* env = std::getenv(directory_env_var);
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(default_directory_path);
}

/// Path of the image (or label) file of `which` in `dir`: the `.gz` name, or the uncompressed name if only that exists.
[[nodiscard]] inline std::string dataset_file(const std::string& dir, split which, bool images) {
  return detail::find_file(dir, detail::file_name(which, images));
}

/// Whether all four Fashion-MNIST files (compressed or not) exist in `dir`.
[[nodiscard]] inline bool dataset_present(const std::string& dir) {
  std::error_code ec;
  for (const split s : {split::train, split::test}) {
    for (const bool images : {true, false}) {
      if (!std::filesystem::exists(dataset_file(dir, s, images), ec)) return false;
    }
  }
  return true;
}

/// Loads one split of Fashion-MNIST from `dir` (files `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
/// `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`, or the same names without `.gz`).
///
/// Pixels are scaled to [0,1] and standardized with `norm`; without it, with the mean and standard deviation of the
/// whole training set in `dir` (about 0.2860 and 0.3530), which for the test split reads the training images too:
/// pass the training dataset's `norm` to avoid that. Only the first `limit` samples are kept (the files are still
/// validated in full). Throws tether::runtime_error naming the file on any problem with the files, including
/// image and label counts that disagree.
[[nodiscard]] inline dataset load_fashion_mnist(const std::string& dir, split which, std::size_t limit = all_samples,
                                                std::optional<normalization> norm = std::nullopt) {
  const std::string images_path = dataset_file(dir, which, true);
  const std::string labels_path = dataset_file(dir, which, false);
  raw_images raw = read_idx_images(images_path);
  std::vector<std::uint8_t> labels = read_idx_labels(labels_path);
  if (labels.size() != raw.count) {
    throw tether::runtime_error(tether::detail::concat(labels_path, ": image/label count mismatch: ", labels.size(),
                                                       " labels but ", images_path, " has ", raw.count, " images"));
  }
  if (!norm) {
    if (which == split::train) {
      norm = compute_normalization(raw.pixels);
    } else {
      norm = compute_normalization(read_idx_images(dataset_file(dir, split::train, true)).pixels);
    }
  }

  dataset d;
  d.count = std::min(limit, raw.count);
  d.norm = *norm;
  std::array<float, 256> lut{};
  for (std::size_t v = 0; v < lut.size(); ++v) {
    lut[v] = static_cast<float>((static_cast<double>(v) / 255.0 - norm->mean) / norm->stddev);
  }
  const std::size_t n = d.count * d.features;
  d.images.resize(n);
  std::transform(raw.pixels.begin(), raw.pixels.begin() + static_cast<std::ptrdiff_t>(n), d.images.begin(),
                 [&lut](std::uint8_t p) { return lut[p]; });
  labels.resize(d.count);
  d.labels = std::move(labels);
  return d;
}

/// Loads one split from default_directory() ($TETHER_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist).
[[nodiscard]] inline dataset load_fashion_mnist(split which, std::size_t limit = all_samples,
                                                std::optional<normalization> norm = std::nullopt) {
  return load_fashion_mnist(default_directory(), which, limit, norm);
}

}  // namespace fmnist
