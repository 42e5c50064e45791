// Tests of the Fashion-MNIST example support: the MLP's gradient against finite differences, the IDX reader on
// synthetic files (and its errors), the real dataset when installed, and the per-worker shards.

#include "idx.hpp"
#include "mlp.hpp"
#include "shard.hpp"

#include <tether/core/error.hpp>
#include <tether/core/objective.hpp>

#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------- helpers

/// A fresh directory under the system temp directory, removed with its content at the end of the scope.
struct temp_dir {
  fs::path path;
  temp_dir() {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    for (std::uint64_t i = 0;; ++i) {
      path = fs::temp_directory_path() / ("tether_fmnist_test_" + std::to_string(stamp) + "_" + std::to_string(i));
      if (fs::create_directory(path)) break;
    }
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return (path / name).string(); }
};

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::vector<std::uint8_t> idx_images(std::uint32_t magic, std::uint32_t count, std::uint32_t rows, std::uint32_t cols,
                                     const std::vector<std::uint8_t>& pixels) {
  std::vector<std::uint8_t> out;
  put_u32(out, magic);
  put_u32(out, count);
  put_u32(out, rows);
  put_u32(out, cols);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

std::vector<std::uint8_t> idx_labels(std::uint32_t magic, std::uint32_t count, const std::vector<std::uint8_t>& labels) {
  std::vector<std::uint8_t> out;
  put_u32(out, magic);
  put_u32(out, count);
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

void write_raw(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

void write_gz(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const int written = bytes.empty() ? 0 : gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
  REQUIRE(written == static_cast<int>(bytes.size()));
}

/// Deterministic pseudo-random pixels with both dark and bright values.
std::vector<std::uint8_t> synthetic_pixels(std::size_t count, std::uint64_t seed) {
  fmnist::rng gen(seed);
  std::vector<std::uint8_t> p(count * fmnist::image_size);
  for (auto& v : p) v = static_cast<std::uint8_t>(gen.below(256));
  return p;
}

std::vector<std::uint8_t> synthetic_labels(std::size_t count) {
  std::vector<std::uint8_t> l(count);
  for (std::size_t i = 0; i < count; ++i) l[i] = static_cast<std::uint8_t>((i * 7 + 3) % 10);
  return l;
}

/// The message of the tether::runtime_error thrown by `f` ("" and a failed check when none is thrown).
std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const tether::runtime_error& e) {
    return e.what();
  }
  FAIL_CHECK("no tether::runtime_error thrown");
  return {};
}

// ---------------------------------------------------------------------------------------------- MLP

fmnist::dataset synthetic_dataset(std::size_t count, std::uint64_t seed) {
  fmnist::dataset d;
  d.count = count;
  d.images.resize(count * d.features);
  d.labels = synthetic_labels(count);
  fmnist::rng gen(seed);
  for (auto& v : d.images) v = 3.0F * gen.uniform01() - 1.5F;
  return d;
}

}  // namespace

static_assert(tether::objective<fmnist::mlp>);
static_assert(fmnist::mlp::parameter_count == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);

TEST_CASE("mlp gradient matches central finite differences", "[fmnist][mlp]") {
  const fmnist::dataset data = synthetic_dataset(32, 7);
  fmnist::mlp model(data);
  REQUIRE(model.dimension() == 235146);
  std::vector<float> x(model.dimension());
  model.init(x, 123);
  // Non-zero biases, so that their gradients flow through every path.
  fmnist::rng gen(99);
  for (std::size_t i = fmnist::mlp::b1_offset; i < fmnist::mlp::w2_offset; ++i) x[i] = 0.1F * (gen.uniform01() - 0.5F);
  for (std::size_t i = fmnist::mlp::b2_offset; i < fmnist::mlp::w3_offset; ++i) x[i] = 0.1F * (gen.uniform01() - 0.5F);
  for (std::size_t i = fmnist::mlp::b3_offset; i < x.size(); ++i) x[i] = 0.1F * (gen.uniform01() - 0.5F);

  const std::vector<std::size_t> samples = {3, 17, 0, 29, 8, 11, 22, 5, 30, 14, 9, 26, 1, 19, 24, 12};
  const tether::batch b{samples, 1};
  std::vector<float> g(model.dimension());
  const double loss = model.evaluate(x, g, b);
  REQUIRE(std::isfinite(loss));
  REQUIRE(loss > 0.0);

  // Same loss computed again, and the gradient overwritten rather than accumulated.
  std::vector<float> g2(model.dimension(), 5.0F);
  CHECK(model.evaluate(x, g2, b) == loss);
  CHECK(g2 == g);

  // 5 random coordinates in each of the 6 blocks (W1, b1, W2, b2, W3, b3).
  const std::array<std::size_t, 7> bounds = {fmnist::mlp::w1_offset, fmnist::mlp::b1_offset, fmnist::mlp::w2_offset,
                                             fmnist::mlp::b2_offset, fmnist::mlp::w3_offset, fmnist::mlp::b3_offset,
                                             fmnist::mlp::parameter_count};
  std::vector<float> scratch(model.dimension());
  const float eps = 1e-3F;
  int significant = 0;
  for (std::size_t block = 0; block + 1 < bounds.size(); ++block) {
    for (int t = 0; t < 5; ++t) {
      const std::size_t i = bounds[block] + static_cast<std::size_t>(gen.below(bounds[block + 1] - bounds[block]));
      const float saved = x[i];
      x[i] = saved + eps;
      const double up = model.evaluate(x, scratch, b);
      x[i] = saved - eps;
      const double down = model.evaluate(x, scratch, b);
      x[i] = saved;
      const double fd = (up - down) / (2.0 * static_cast<double>(eps));
      const double an = g[i];
      INFO("block " << block << " coordinate " << i << ": analytic " << an << ", finite difference " << fd);
      CHECK(std::abs(fd - an) <= 1e-2 * std::max(std::abs(fd), std::abs(an)) + 1e-5);
      if (std::abs(an) > 1e-4) ++significant;
    }
  }
  // The check means something only if most of the probed gradients are not (near) zero.
  CHECK(significant >= 25);
}

TEST_CASE("mlp rejects bad arguments", "[fmnist][mlp]") {
  const fmnist::dataset data = synthetic_dataset(4, 1);
  fmnist::mlp model(data);
  std::vector<float> x(model.dimension());
  std::vector<float> g(model.dimension());
  std::vector<float> short_g(10);
  const std::vector<std::size_t> ok = {0, 1};
  const std::vector<std::size_t> bad = {0, 4};
  CHECK_THROWS_AS(model.evaluate(x, short_g, tether::batch{ok, 0}), tether::error);
  CHECK_THROWS_AS(model.evaluate(x, g, tether::batch{bad, 0}), tether::error);
  CHECK_THROWS_AS(model.evaluate(x, g, tether::batch{}), tether::error);
  fmnist::dataset wrong = data;
  wrong.features = 100;
  CHECK_THROWS_AS(fmnist::mlp(wrong), tether::error);
}

TEST_CASE("mlp init is He uniform with zero biases and deterministic", "[fmnist][mlp]") {
  const fmnist::dataset data = synthetic_dataset(4, 1);
  fmnist::mlp model(data);
  std::vector<float> a(model.dimension());
  std::vector<float> b(model.dimension());
  model.init(a, 5);
  model.init(b, 5);
  CHECK(a == b);
  model.init(b, 6);
  CHECK(a != b);
  const float bound1 = std::sqrt(6.0F / 784.0F);
  const auto w1 = std::span<const float>(a).subspan(fmnist::mlp::w1_offset, 256 * 784);
  CHECK(std::all_of(w1.begin(), w1.end(), [&](float v) { return std::abs(v) <= bound1; }));
  CHECK(*std::max_element(w1.begin(), w1.end()) > 0.95F * bound1);
  const auto b1 = std::span<const float>(a).subspan(fmnist::mlp::b1_offset, 256);
  CHECK(std::all_of(b1.begin(), b1.end(), [](float v) { return v == 0.0F; }));
  const auto b3 = std::span<const float>(a).subspan(fmnist::mlp::b3_offset, 10);
  CHECK(std::all_of(b3.begin(), b3.end(), [](float v) { return v == 0.0F; }));
}

TEST_CASE("mlp learns a small synthetic problem", "[fmnist][mlp]") {
  // Labels follow the sign pattern of a few pixels: a few SGD steps must fit 64 samples.
  fmnist::dataset data = synthetic_dataset(64, 3);
  for (std::size_t i = 0; i < data.count; ++i) data.labels[i] = static_cast<std::uint8_t>(i % 10);
  fmnist::mlp model(data);
  std::vector<float> x(model.dimension());
  std::vector<float> g(model.dimension());
  model.init(x, 1);
  std::vector<std::size_t> all(data.count);
  std::iota(all.begin(), all.end(), std::size_t{0});
  const double before = model.evaluate(x, g, tether::batch{all, 0});
  for (int step = 0; step < 200; ++step) {
    model.evaluate(x, g, tether::batch{all, 0});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] -= 0.05F * g[i];
  }
  const double after = model.evaluate(x, g, tether::batch{all, 0});
  CHECK(after < 0.1 * before);
  CHECK(model.accuracy(x, data) == 1.0);
  CHECK(model.accuracy(x, data, 10) == 1.0);
}

// ---------------------------------------------------------------------------------------------- reader

TEST_CASE("IDX reader round-trips gzip and raw files", "[fmnist][idx]") {
  const temp_dir dir;
  const std::size_t n = 12;
  const auto pixels = synthetic_pixels(n, 11);
  const auto labels = synthetic_labels(n);
  const auto image_bytes = idx_images(fmnist::images_magic, n, 28, 28, pixels);
  const auto label_bytes = idx_labels(fmnist::labels_magic, n, labels);

  SECTION("gzip") {
    write_gz(dir.file("i.gz"), image_bytes);
    write_gz(dir.file("l.gz"), label_bytes);
    const fmnist::raw_images r = fmnist::read_idx_images(dir.file("i.gz"));
    CHECK(r.count == n);
    CHECK(r.rows == 28);
    CHECK(r.cols == 28);
    CHECK(r.pixels == pixels);
    CHECK(fmnist::read_idx_labels(dir.file("l.gz")) == labels);
  }
  SECTION("raw") {
    write_raw(dir.file("i"), image_bytes);
    write_raw(dir.file("l"), label_bytes);
    CHECK(fmnist::read_idx_images(dir.file("i")).pixels == pixels);
    CHECK(fmnist::read_idx_labels(dir.file("l")) == labels);
  }
}

TEST_CASE("IDX parser reads bytes in memory as the file reader reads files", "[fmnist][idx]") {
  const temp_dir dir;
  // 200 images: 156 KiB, more than the reader's 128 KiB buffer, so that the memory source is refilled.
  const std::size_t n = 200;
  const auto pixels = synthetic_pixels(n, 5);
  const auto labels = synthetic_labels(n);
  const auto image_bytes = idx_images(fmnist::images_magic, n, 28, 28, pixels);
  const auto label_bytes = idx_labels(fmnist::labels_magic, n, labels);
  write_gz(dir.file("i.gz"), image_bytes);
  write_gz(dir.file("l.gz"), label_bytes);
  const auto file_bytes = [&](const std::string& name) {
    std::ifstream in(dir.file(name), std::ios::binary);
    return std::vector<std::uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const auto image_gz = file_bytes("i.gz");
  const auto label_gz = file_bytes("l.gz");
  REQUIRE(image_gz.size() > 2);
  REQUIRE(image_gz[0] == 0x1f);  // really gzip
  for (const auto* bytes : {&image_bytes, &image_gz}) {
    const fmnist::raw_images r = fmnist::parse_idx_images(*bytes);
    CHECK(r.count == n);
    CHECK(r.rows == 28);
    CHECK(r.cols == 28);
    CHECK(r.pixels == pixels);
  }
  CHECK(fmnist::parse_idx_labels(label_bytes) == labels);
  CHECK(fmnist::parse_idx_labels(label_gz) == labels);

  // The file reader's errors, named after the bytes.
  auto cut = image_bytes;
  cut.pop_back();
  CHECK_THAT(error_message([&] { (void)fmnist::parse_idx_images(cut, "upload"); }),
             Catch::StartsWith("upload: truncated: expected 156800 pixel bytes, got 156799"));
  auto longer = label_bytes;
  longer.push_back(1);
  CHECK_THAT(error_message([&] { (void)fmnist::parse_idx_labels(longer, "upload"); }),
             Catch::StartsWith("upload: trailing data after the expected 200 label bytes"));
  auto bad_label = label_bytes;
  bad_label[8 + 17] = 10;
  CHECK_THAT(error_message([&] { (void)fmnist::parse_idx_labels(bad_label, "upload"); }),
             Catch::StartsWith("upload: label 10 of sample 17 is out of range 0..9"));
  auto half_gz = image_gz;
  half_gz.resize(half_gz.size() / 2);
  CHECK_THAT(error_message([&] { (void)fmnist::parse_idx_images(half_gz, "upload"); }),
             Catch::StartsWith("upload: "));
  CHECK_THAT(error_message([&] { (void)fmnist::parse_idx_images(std::span<const std::uint8_t>{}, "upload"); }),
             Catch::StartsWith("upload: truncated: header ends before the magic number"));
}

TEST_CASE("load_fashion_mnist standardizes with the training statistics", "[fmnist][idx]") {
  const temp_dir dir;
  const std::size_t n_train = 20;
  const std::size_t n_test = 6;
  const auto train_pixels = synthetic_pixels(n_train, 1);
  const auto test_pixels = synthetic_pixels(n_test, 2);
  // Training files gzipped, test files uncompressed under the names without .gz.
  write_gz(dir.file("train-images-idx3-ubyte.gz"), idx_images(fmnist::images_magic, n_train, 28, 28, train_pixels));
  write_gz(dir.file("train-labels-idx1-ubyte.gz"), idx_labels(fmnist::labels_magic, n_train, synthetic_labels(n_train)));
  write_raw(dir.file("t10k-images-idx3-ubyte"), idx_images(fmnist::images_magic, n_test, 28, 28, test_pixels));
  write_raw(dir.file("t10k-labels-idx1-ubyte"), idx_labels(fmnist::labels_magic, n_test, synthetic_labels(n_test)));
  CHECK(fmnist::dataset_present(dir.path.string()));

  double sum = 0.0;
  double sum_sq = 0.0;
  for (const auto p : train_pixels) {
    sum += p / 255.0;
    sum_sq += (p / 255.0) * (p / 255.0);
  }
  const double mean = sum / static_cast<double>(train_pixels.size());
  const double stddev = std::sqrt(sum_sq / static_cast<double>(train_pixels.size()) - mean * mean);

  const fmnist::dataset train = fmnist::load_fashion_mnist(dir.path.string(), fmnist::split::train);
  CHECK(train.count == n_train);
  CHECK(train.features == 784);
  CHECK(train.labels == synthetic_labels(n_train));
  CHECK(train.norm.mean == Approx(mean).epsilon(1e-12));
  CHECK(train.norm.stddev == Approx(stddev).epsilon(1e-9));
  REQUIRE(train.images.size() == n_train * 784);
  for (std::size_t i = 0; i < train.images.size(); i += 97) {
    CHECK(train.images[i] == Approx((train_pixels[i] / 255.0 - mean) / stddev).margin(1e-5));
  }
  CHECK(train.image(3).size() == 784);
  CHECK(train.image(3).data() == train.images.data() + 3 * 784);

  // The test split is standardized with the training statistics, computed or passed.
  const fmnist::dataset test = fmnist::load_fashion_mnist(dir.path.string(), fmnist::split::test);
  const fmnist::dataset test2 = fmnist::load_fashion_mnist(dir.path.string(), fmnist::split::test, fmnist::all_samples,
                                                           train.norm);
  CHECK(test.count == n_test);
  CHECK(test.norm.mean == train.norm.mean);
  CHECK(test.norm.stddev == train.norm.stddev);
  CHECK(test.images == test2.images);
  CHECK(test.images[5] == Approx((test_pixels[5] / 255.0 - mean) / stddev).margin(1e-5));

  const fmnist::dataset limited = fmnist::load_fashion_mnist(dir.path.string(), fmnist::split::train, 5);
  CHECK(limited.count == 5);
  CHECK(limited.labels.size() == 5);
  CHECK(limited.images == std::vector<float>(train.images.begin(), train.images.begin() + 5 * 784));
  CHECK(limited.norm.mean == train.norm.mean);
}

TEST_CASE("IDX reader rejects bad files with the file's name", "[fmnist][idx]") {
  const temp_dir dir;
  const std::size_t n = 5;
  const auto pixels = synthetic_pixels(n, 3);
  const auto labels = synthetic_labels(n);
  const auto good_images = idx_images(fmnist::images_magic, n, 28, 28, pixels);
  const auto good_labels = idx_labels(fmnist::labels_magic, n, labels);

  for (const bool gz : {true, false}) {
    const auto write = [&](const std::string& name, const std::vector<std::uint8_t>& bytes) {
      const std::string path = dir.file(gz ? name + ".gz" : name);
      if (gz) {
        write_gz(path, bytes);
      } else {
        write_raw(path, bytes);
      }
      return path;
    };
    INFO((gz ? "gzip" : "raw"));

    SECTION(std::string("truncated images ") + (gz ? "gz" : "raw")) {
      const auto bytes = std::vector<std::uint8_t>(good_images.begin(), good_images.end() - 100);
      const std::string path = write("cut-images", bytes);
      const std::string msg = error_message([&] { (void)fmnist::read_idx_images(path); });
      CHECK_THAT(msg, Catch::Contains(path) && Catch::Contains("truncated") && Catch::Contains("3920") &&
                          Catch::Contains("3820"));
    }
    SECTION(std::string("truncated header ") + (gz ? "gz" : "raw")) {
      const std::string path = write("tiny-images", std::vector<std::uint8_t>(good_images.begin(), good_images.begin() + 10));
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
                 Catch::Contains(path) && Catch::Contains("truncated"));
    }
    SECTION(std::string("truncated labels ") + (gz ? "gz" : "raw")) {
      const std::string path = write("cut-labels", std::vector<std::uint8_t>(good_labels.begin(), good_labels.end() - 1));
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_labels(path); }),
                 Catch::Contains(path) && Catch::Contains("truncated"));
    }
    SECTION(std::string("trailing data ") + (gz ? "gz" : "raw")) {
      auto bytes = good_images;
      bytes.push_back(0);
      const std::string path = write("long-images", bytes);
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
                 Catch::Contains(path) && Catch::Contains("trailing"));
      auto lbytes = good_labels;
      lbytes.push_back(1);
      const std::string lpath = write("long-labels", lbytes);
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_labels(lpath); }),
                 Catch::Contains(lpath) && Catch::Contains("trailing"));
    }
    SECTION(std::string("wrong magic ") + (gz ? "gz" : "raw")) {
      const std::string path = write("magic-images", idx_images(0x00000804, n, 28, 28, pixels));
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
                 Catch::Contains(path) && Catch::Contains("magic"));
      // A label file where images are expected, and the other way round.
      const std::string lpath = write("labels-as-images", good_labels);
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(lpath); }),
                 Catch::Contains(lpath) && Catch::Contains("magic"));
      const std::string ipath = write("images-as-labels", good_images);
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_labels(ipath); }),
                 Catch::Contains(ipath) && Catch::Contains("magic"));
    }
    SECTION(std::string("wrong dimensions ") + (gz ? "gz" : "raw")) {
      const std::string path = write("dims-images", idx_images(fmnist::images_magic, n, 28, 27,
                                                               std::vector<std::uint8_t>(n * 28 * 27, 1)));
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
                 Catch::Contains(path) && Catch::Contains("28x27"));
    }
    SECTION(std::string("label above 9 ") + (gz ? "gz" : "raw")) {
      auto bad = labels;
      bad[2] = 10;
      const std::string path = write("big-labels", idx_labels(fmnist::labels_magic, n, bad));
      CHECK_THAT(error_message([&] { (void)fmnist::read_idx_labels(path); }),
                 Catch::Contains(path) && Catch::Contains("label 10"));
    }
    SECTION(std::string("count mismatch ") + (gz ? "gz" : "raw")) {
      const temp_dir sub;
      const std::string ipath = sub.file(gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte");
      const std::string lpath = sub.file(gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte");
      const auto fewer = std::vector<std::uint8_t>(labels.begin(), labels.end() - 1);
      if (gz) {
        write_gz(ipath, good_images);
        write_gz(lpath, idx_labels(fmnist::labels_magic, n - 1, fewer));
      } else {
        write_raw(ipath, good_images);
        write_raw(lpath, idx_labels(fmnist::labels_magic, n - 1, fewer));
      }
      const std::string msg =
          error_message([&] { (void)fmnist::load_fashion_mnist(sub.path.string(), fmnist::split::train); });
      CHECK_THAT(msg, Catch::Contains(lpath) && Catch::Contains(ipath) && Catch::Contains("mismatch"));
    }
  }

  SECTION("missing file") {
    const std::string path = dir.file("nowhere.gz");
    CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
               Catch::Contains(path) && Catch::Contains("cannot open"));
    CHECK_FALSE(fmnist::dataset_present(dir.path.string()));
    CHECK_THAT(error_message([&] { (void)fmnist::load_fashion_mnist(dir.path.string(), fmnist::split::test); }),
               Catch::Contains("t10k-images-idx3-ubyte.gz"));
  }
  SECTION("corrupt gzip stream") {
    // A valid gzip file cut in the middle of its compressed data.
    write_gz(dir.file("whole.gz"), good_images);
    std::ifstream in(dir.file("whole.gz"), std::ios::binary);
    std::vector<char> gz_bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    gz_bytes.resize(gz_bytes.size() / 2);
    std::ofstream out(dir.file("half.gz"), std::ios::binary);
    out.write(gz_bytes.data(), static_cast<std::streamsize>(gz_bytes.size()));
    out.close();
    CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(dir.file("half.gz")); }),
               Catch::Contains(dir.file("half.gz")));
  }
}

TEST_CASE("IDX reader: bytes after the gzip stream are an error, a second gzip member is data", "[fmnist][idx]") {
  temp_dir dir;
  const std::size_t n = 3;
  const auto images = idx_images(fmnist::images_magic, n, 28, 28, synthetic_pixels(n, 5));
  write_gz(dir.file("i.gz"), images);
  std::ifstream in(dir.file("i.gz"), std::ios::binary);
  const std::vector<char> gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto write_bytes = [&](const std::string& name, const std::vector<char>& bytes) {
    std::ofstream out(dir.file(name), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
    return dir.file(name);
  };
  SECTION("garbage after the stream") {
    auto bytes = gz;
    for (const char c : std::string("GARBAGE")) bytes.push_back(c);
    const std::string path = write_bytes("garbage.gz", bytes);
    CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
               Catch::Contains(path) && Catch::Contains("trailing data after the gzip stream"));
  }
  SECTION("one stray byte after the stream") {
    auto bytes = gz;
    bytes.push_back('\0');
    const std::string path = write_bytes("byte.gz", bytes);
    CHECK_THAT(error_message([&] { (void)fmnist::read_idx_images(path); }),
               Catch::Contains(path) && Catch::Contains("trailing data after the gzip stream"));
  }
  SECTION("the data split over two gzip members (as `cat a.gz b.gz` makes)") {
    const std::vector<std::uint8_t> head(images.begin(), images.begin() + 100);
    const std::vector<std::uint8_t> tail(images.begin() + 100, images.end());
    write_gz(dir.file("a.gz"), head);
    write_gz(dir.file("b.gz"), tail);
    std::ifstream ia(dir.file("a.gz"), std::ios::binary), ib(dir.file("b.gz"), std::ios::binary);
    std::vector<char> both((std::istreambuf_iterator<char>(ia)), std::istreambuf_iterator<char>());
    both.insert(both.end(), std::istreambuf_iterator<char>(ib), std::istreambuf_iterator<char>());
    const fmnist::raw_images r = fmnist::read_idx_images(write_bytes("two.gz", both));
    CHECK(r.count == n);
    CHECK(std::equal(r.pixels.begin(), r.pixels.end(), images.begin() + 16));
  }
}

TEST_CASE("standardization refuses images whose pixels are all one value", "[fmnist][idx]") {
  // Every constant value, and a large set: the variance formula left a small positive number for some.
  for (int v = 0; v < 256; ++v) {
    const std::vector<std::uint8_t> same(60000, static_cast<std::uint8_t>(v));
    CHECK_THROWS_WITH(fmnist::compute_normalization(same), Catch::Contains("all equal"));
  }
  // One pixel different: accepted, and the statistics are the exact ones (mean and population deviation).
  std::vector<std::uint8_t> almost(1000, 77);
  almost[3] = 78;
  const auto nrm = fmnist::compute_normalization(almost);
  const double mean = (999.0 * 77 + 78) / 1000.0 / 255.0;
  const double var = (999.0 * std::pow(77 / 255.0 - mean, 2) + std::pow(78 / 255.0 - mean, 2)) / 1000.0;
  CHECK(nrm.mean == Approx(mean).epsilon(1e-12));
  CHECK(nrm.stddev == Approx(std::sqrt(var)).epsilon(1e-9));
}

TEST_CASE("default directory honours TETHER_FASHION_MNIST_DIR", "[fmnist][idx]") {
  const char* env = std::getenv(fmnist::directory_env_var);
  if (env != nullptr && *env != '\0') {
    CHECK(fmnist::default_directory() == env);
  } else {
    CHECK(fmnist::default_directory() == fmnist::default_directory_path);
  }
}

// ---------------------------------------------------------------------------------------------- real data

TEST_CASE("the real Fashion-MNIST loads", "[fmnist][data]") {
  // Passes with a message when no file is there; any file present makes the whole dataset required and checked.
  const std::string dir = fmnist::default_directory();
  std::size_t present = 0;
  for (const auto which : {fmnist::split::train, fmnist::split::test}) {
    for (const bool images : {true, false}) {
      std::error_code ec;
      if (fs::exists(fmnist::dataset_file(dir, which, images), ec)) ++present;
    }
  }
  if (present == 0) {
    SUCCEED("Fashion-MNIST not found in " << dir << " (set TETHER_FASHION_MNIST_DIR); nothing to check");
    return;
  }
  CHECK(fmnist::dataset_present(dir));
  const fmnist::dataset train = fmnist::load_fashion_mnist(dir, fmnist::split::train);
  const fmnist::dataset test = fmnist::load_fashion_mnist(dir, fmnist::split::test, fmnist::all_samples, train.norm);
  CHECK(train.count == 60000);
  CHECK(test.count == 10000);
  CHECK(train.images.size() == 60000 * 784);
  CHECK(test.images.size() == 10000 * 784);
  CHECK(train.norm.mean == Approx(0.2860).margin(5e-4));
  CHECK(train.norm.stddev == Approx(0.3530).margin(5e-4));
  std::array<std::size_t, 10> train_counts{};
  std::array<std::size_t, 10> test_counts{};
  for (const auto l : train.labels) ++train_counts.at(l);
  for (const auto l : test.labels) ++test_counts.at(l);
  for (std::size_t c = 0; c < 10; ++c) {
    INFO("class " << c);
    CHECK(train_counts[c] == 6000);
    CHECK(test_counts[c] == 1000);
  }
  // Standardized training pixels have mean 0 and variance 1.
  double sum = 0.0;
  double sum_sq = 0.0;
  for (const float f : train.images) {
    const auto v = static_cast<double>(f);
    sum += v;
    sum_sq += v * v;
  }
  const double n = static_cast<double>(train.images.size());
  CHECK(sum / n == Approx(0.0).margin(1e-4));
  CHECK(sum_sq / n == Approx(1.0).margin(1e-4));
}

// ---------------------------------------------------------------------------------------------- shards

TEST_CASE("splitmix64 and the uniform integer", "[fmnist][shard]") {
  std::uint64_t state = 0;
  CHECK(fmnist::splitmix64(state) == 0xe220a8397b1dcdafULL);  // the reference generator's first output for seed 0
  fmnist::rng a(1);
  fmnist::rng b(1);
  for (int i = 0; i < 100; ++i) CHECK(a.next() == b.next());
  std::array<std::size_t, 7> counts{};
  for (int i = 0; i < 70000; ++i) {
    const auto v = a.below(7);
    REQUIRE(v < 7);
    ++counts[v];
  }
  for (const auto c : counts) CHECK(c == Approx(10000).margin(500));
  for (int i = 0; i < 1000; ++i) {
    const float u = a.uniform01();
    REQUIRE(u >= 0.0F);
    REQUIRE(u < 1.0F);
  }
}

TEST_CASE("shards are disjoint, covering, deterministic and reshuffled per epoch", "[fmnist][shard]") {
  const std::size_t n = 1003;
  const std::size_t workers = 3;
  const std::size_t batch = 16;
  const std::uint64_t seed = 2024;

  std::vector<int> seen(n, 0);
  for (std::size_t r = 0; r < workers; ++r) {
    fmnist::shard s(n, r, workers, batch, seed);
    CHECK((s.size() == n / workers || s.size() == n / workers + 1));
    for (const auto i : s.indices()) {
      REQUIRE(i < n);
      ++seen[i];
    }
    CHECK(s.batches_per_epoch() == s.size() / batch);
    CHECK(s.batches_per_epoch() >= fmnist::shard::common_batches_per_epoch(n, workers, batch));

    // Each epoch: full batches only, a permutation of the shard's prefix, same for the same (seed, rank, epoch).
    fmnist::shard twin(n, r, workers, batch, seed);
    std::vector<std::size_t> previous;
    for (std::uint64_t e = 0; e < 3; ++e) {
      const fmnist::batch_view view = s.epoch(e);
      REQUIRE(view.size() == s.batches_per_epoch());
      std::vector<std::size_t> order;
      std::size_t k = 0;
      for (const std::span<const std::size_t> idx : view) {
        REQUIRE(idx.size() == batch);
        CHECK(std::equal(idx.begin(), idx.end(), view[k].begin()));
        order.insert(order.end(), idx.begin(), idx.end());
        ++k;
      }
      CHECK(k == view.size());
      std::set<std::size_t> unique(order.begin(), order.end());
      CHECK(unique.size() == order.size());
      const std::set<std::size_t> own(s.indices().begin(), s.indices().end());
      CHECK(std::includes(own.begin(), own.end(), unique.begin(), unique.end()));

      std::vector<std::size_t> again;
      for (const auto idx : twin.epoch(e)) again.insert(again.end(), idx.begin(), idx.end());
      CHECK(again == order);
      if (!previous.empty()) CHECK(order != previous);
      previous = order;
    }
    // Replaying an earlier epoch gives its order again.
    std::vector<std::size_t> e0;
    for (const auto idx : s.epoch(0)) e0.insert(e0.end(), idx.begin(), idx.end());
    std::vector<std::size_t> e0_twin;
    for (const auto idx : twin.epoch(0)) e0_twin.insert(e0_twin.end(), idx.begin(), idx.end());
    CHECK(e0 == e0_twin);
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; }));

  // Another seed: another partition.
  fmnist::shard a(n, 0, workers, batch, seed);
  fmnist::shard b(n, 0, workers, batch, seed + 1);
  CHECK(!std::equal(a.indices().begin(), a.indices().end(), b.indices().begin(), b.indices().end()));
  // Different ranks shuffle differently even for the same epoch.
  fmnist::shard r0(90, 0, 2, 5, seed);
  fmnist::shard r1(90, 1, 2, 5, seed);
  CHECK(r0.batch_seed(0, 0) != r1.batch_seed(0, 0));
  CHECK(r0.batch_seed(0, 0) != r0.batch_seed(1, 0));
  CHECK(r0.batch_seed(0, 0) != r0.batch_seed(0, 1));
}

TEST_CASE("shard edge cases", "[fmnist][shard]") {
  CHECK_THROWS_AS(fmnist::shard(10, 0, 0, 2, 1), tether::error);
  CHECK_THROWS_AS(fmnist::shard(10, 2, 2, 2, 1), tether::error);
  CHECK_THROWS_AS(fmnist::shard(10, 0, 2, 0, 1), tether::error);
  fmnist::shard s(10, 0, 1, 4, 1);  // 10 samples, batches of 4: 2 batches, 2 samples dropped per epoch
  CHECK(s.epoch(0).size() == 2);
  fmnist::shard tiny(3, 3, 4, 1, 1);  // fewer samples than workers: the last worker gets nothing
  CHECK(tiny.size() == 0);
  CHECK(tiny.epoch(0).size() == 0);
  CHECK(tiny.epoch(0).begin() == tiny.epoch(0).end());
}
