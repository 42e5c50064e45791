// Writes the seed corpus of the idx_parse fuzz target: valid IDX image and label files, raw and gzip-compressed,
// of 0, 1 and 3 images (labels 0..9), plus a gzip file of two members (as concatenated gzip files are).
// Usage: make_idx_corpus <folder>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

int files = 0;

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::string next_path(const std::string& dir) { return dir + "/seed_" + std::to_string(files++); }

void write_raw(const std::string& dir, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(next_path(dir), std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// `parts` as consecutive gzip members of one file.
void write_gz(const std::string& dir, const std::vector<std::vector<std::uint8_t>>& parts) {
  const std::string path = next_path(dir);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    gzFile f = gzopen(path.c_str(), i == 0 ? "wb9" : "ab9");
    if (f == nullptr) {
      std::fprintf(stderr, "make_idx_corpus: cannot write %s\n", path.c_str());
      std::exit(1);
    }
    if (!parts[i].empty()) gzwrite(f, parts[i].data(), static_cast<unsigned>(parts[i].size()));
    gzclose(f);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_idx_corpus <folder>\n");
    return 2;
  }
  const std::string dir = argv[1];
  for (std::uint32_t n : {0u, 1u, 3u}) {
    std::vector<std::uint8_t> images;
    put_u32(images, 0x00000803);
    put_u32(images, n);
    put_u32(images, 28);
    put_u32(images, 28);
    for (std::uint32_t i = 0; i < n * 28 * 28; ++i) images.push_back(static_cast<std::uint8_t>((i * 37) % 256));
    std::vector<std::uint8_t> labels;
    put_u32(labels, 0x00000801);
    put_u32(labels, 10 * n);
    for (std::uint32_t i = 0; i < 10 * n; ++i) labels.push_back(static_cast<std::uint8_t>(i % 10));
    write_raw(dir, images);
    write_raw(dir, labels);
    write_gz(dir, {images});
    write_gz(dir, {labels});
    if (n == 3) {  // the header in one member, the data in a second
      write_gz(dir, {std::vector<std::uint8_t>(images.begin(), images.begin() + 16),
                     std::vector<std::uint8_t>(images.begin() + 16, images.end())});
    }
  }
  std::printf("make_idx_corpus: %d seed files in %s\n", files, dir.c_str());
  return 0;
}
