#pragma once
/// \file
/// The files of the checkpoint tests: a scratch folder per test program, a worker's file in it, and a file's
/// bytes read and written whole (to damage a checkpoint on purpose).

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace tether_test {

/// A folder of this process's own under the system's temporary folder: `stem` followed by the process id.
inline std::filesystem::path scratch_dir(const std::string& stem) {
  const std::filesystem::path d = std::filesystem::temp_directory_path() / (stem + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

/// The checkpoint file of worker `rank` in `dir`: `<stem>.<rank>.ckpt`.
inline std::string file_of(const std::filesystem::path& dir, int rank, const std::string& stem = "opt") {
  return (dir / (stem + "." + std::to_string(rank) + ".ckpt")).string();
}

/// A file's bytes.
inline std::vector<char> bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

/// Replaces a file's contents with `b`.
inline void write_bytes(const std::string& path, const std::vector<char>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

}  // namespace tether_test
